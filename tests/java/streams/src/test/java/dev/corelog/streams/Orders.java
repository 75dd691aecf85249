package dev.corelog.streams;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.TreeMap;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Branched;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Named;

/**
 * The stateless order-routing application of {@link StatelessBranchingTest} and
 * {@link ExactlyOnceRestartTest}: orders (key: order id, value: an amount such as
 * {@code "12.50"}) are filtered (a missing, malformed or negative amount, or one with more than
 * two decimals, is dropped), mapped to their amount in cents, and split: 100.00 and more go to
 * the "large" topic, other positive amounts to the "small" one, and free (0.00) orders nowhere.
 * No state store, so no changelog topic: corelog can run it.
 */
final class Orders {
    /** Orders of at least this many cents are large. */
    static final long LARGE_CENTS = 100_00;
    /** Partitions of every topic of the application. */
    static final int PARTITIONS = 3;

    /** The application's input and output topics. */
    record Topics(String orders, String large, String small) {
        static Topics unique(String prefix) {
            return new Topics(Corelog.unique(prefix + "-orders"), Corelog.unique(prefix + "-large"),
                    Corelog.unique(prefix + "-small"));
        }

        String[] all() {
            return new String[] {orders, large, small};
        }

        String[] outputs() {
            return new String[] {large, small};
        }
    }

    private Orders() {}

    /**
     * The topology; {@code delayPerOrderMs > 0} slows processing down so that a test can stop
     * an instance while a batch is half processed (and its transaction open).
     */
    static Topology topology(Topics topics, long delayPerOrderMs) {
        StreamsBuilder builder = new StreamsBuilder();
        KStream<String, String> orders = builder.stream(topics.orders());
        if (delayPerOrderMs > 0) {
            orders = orders.peek((id, amount) -> Corelog.sleep(delayPerOrderMs));
        }
        orders.filter((id, amount) -> cents(amount).isPresent(), Named.as("valid-orders"))
                .mapValues(amount -> Long.toString(cents(amount).getAsLong()), Named.as("to-cents"))
                .split(Named.as("by-size-"))
                .branch((id, cents) -> Long.parseLong(cents) >= LARGE_CENTS,
                        Branched.<String, String>withConsumer(large -> large.to(topics.large())).withName("large"))
                .branch((id, cents) -> Long.parseLong(cents) > 0,
                        Branched.<String, String>withConsumer(small -> small.to(topics.small())).withName("small"))
                .noDefaultBranch();
        return builder.build();
    }

    /** The amount in cents, or empty for an invalid order. */
    static OptionalLong cents(String amount) {
        if (amount == null) {
            return OptionalLong.empty();
        }
        try {
            BigDecimal value = new BigDecimal(amount.trim());
            if (value.signum() < 0 || value.scale() > 2) {
                return OptionalLong.empty();
            }
            return OptionalLong.of(value.movePointRight(2).longValueExact());
        } catch (NumberFormatException | ArithmeticException e) {
            return OptionalLong.empty();
        }
    }

    /**
     * {@code count} orders with ids {@code <prefix>-<n>}: valid ones of every size, the
     * boundaries, and invalid ones of every kind (a null value, text, a negative amount, three
     * decimals).
     */
    static List<KeyValue<String, String>> batch(String prefix, int count) {
        List<KeyValue<String, String>> orders = new ArrayList<>();
        for (int n = 0; n < count; n++) {
            String amount = switch (n % 10) {
                case 0 -> null;
                case 1 -> "twelve";
                case 2 -> "-3.50";
                case 3 -> "0.00";
                case 4 -> "100.00";
                case 5 -> "99.99";
                case 6 -> "1.234";
                default -> String.format("%d.%02d", (n * 7919) % 500, n % 100);
            };
            orders.add(KeyValue.pair(String.format("%s-%04d", prefix, n), amount));
        }
        return orders;
    }

    /** Writes {@code orders} with a plain (non-transactional) producer and flushes. */
    static void produce(Topics topics, List<KeyValue<String, String>> orders) {
        try (KafkaProducer<String, String> producer = Corelog.producer()) {
            for (KeyValue<String, String> order : orders) {
                producer.send(new ProducerRecord<>(topics.orders(), order.key, order.value));
            }
            producer.flush();
        }
    }

    /**
     * What each output topic must hold after {@code orders} were processed exactly once:
     * {@code id=cents} lines, sorted, by topic.
     */
    static Map<String, List<String>> expected(Topics topics, List<KeyValue<String, String>> orders) {
        Map<String, List<String>> expected = new TreeMap<>();
        expected.put(topics.large(), new ArrayList<>());
        expected.put(topics.small(), new ArrayList<>());
        for (KeyValue<String, String> order : orders) {
            OptionalLong cents = cents(order.value);
            if (cents.isEmpty() || cents.getAsLong() == 0) {
                continue;
            }
            String topic = cents.getAsLong() >= LARGE_CENTS ? topics.large() : topics.small();
            expected.get(topic).add(order.key + "=" + cents.getAsLong());
        }
        expected.values().forEach(lines -> lines.sort(null));
        return expected;
    }

    static int total(Map<String, List<String>> byTopic) {
        return byTopic.values().stream().mapToInt(List::size).sum();
    }
}
