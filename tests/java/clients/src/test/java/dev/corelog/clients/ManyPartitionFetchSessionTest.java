package dev.corelog.clients;

import static dev.corelog.clients.Corelog.bytes;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BooleanSupplier;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Incremental fetch sessions (KIP-227) of the Java consumer at scale, against a corelog the
 * cargo driver started for each method with its own settings ({@code tests/java_client.rs}):
 * a consumer of 2,000 partitions across a broker restart, and two consumers sharing a cache of
 * one session slot. Excluded from the suite's normal run (see the pom); each method runs alone
 * ({@code -Dtest=ManyPartitionFetchSessionTest#method}).
 *
 * <p>Evidence that sessions were used is the client's own log (FetchSessionHandler at DEBUG,
 * each line tagged with the client id): "created a new incremental fetch session" when a full
 * fetch response carries a session id, "sent an incremental fetch response" for each answer
 * within a session, and FETCH_SESSION_ID_NOT_FOUND when the broker no longer has it. These are
 * the client's decisions, counted, never timed.
 */
class ManyPartitionFetchSessionTest {
    private static final String SESSION_CREATED = "created a new incremental fetch session";
    private static final String INCREMENTAL_RESPONSE = "sent an incremental fetch response";
    private static final String SESSION_NOT_FOUND = "FETCH_SESSION_ID_NOT_FOUND";
    /** A wait for records long enough for 2,000 partitions on a busy 2-core machine. */
    private static final Duration CONSUME_WAIT = Duration.ofSeconds(60);
    /**
     * The broker's {@code --min-incremental-fetch-session-eviction-ms} for the one-slot test
     * (set by {@code tests/java_client.rs}): a session younger than this keeps its slot.
     */
    private static final Duration EVICTION_AGE = Duration.ofSeconds(1);
    /** How often a wait re-reads the client log (the whole file) for its condition. */
    private static final Duration LOG_CHECK_INTERVAL = Duration.ofMillis(500);

    /**
     * Two topics of 1,000 partitions, one consumer group member subscribed to both. It reads
     * two records per partition over a session (full fetch, then incremental fetches that name
     * no partition when nothing moved), commits as it goes, keeps polling while the broker is
     * stopped by its PID and started again on the same port and data directory, and then reads
     * the two records per partition produced after the restart. Every partition's records
     * arrive in offset order, none is missing, and none arrives twice unless the group had not
     * committed it yet. After the restart the consumer opens a new session.
     */
    @Test
    @Timeout(value = 240)
    void aConsumerOf2000PartitionsFetchesIncrementallyAndCarriesOnAfterABrokerRestart() {
        int topics = 2;
        int partitionsPerTopic = 1_000;
        int perRound = 2;
        List<String> names = new ArrayList<>();
        List<TopicPartition> partitions = new ArrayList<>();
        try (Admin admin = Corelog.admin()) {
            for (int t = 0; t < topics; t++) {
                String topic = Corelog.unique("sessions-2000-" + t);
                Corelog.createTopic(admin, topic, partitionsPerTopic, Map.of());
                names.add(topic);
                for (int p = 0; p < partitionsPerTopic; p++) {
                    partitions.add(new TopicPartition(topic, p));
                }
            }
        }
        assertEquals(2_000, partitions.size());
        String clientId = Corelog.unique("consumer-2000");
        Ledger ledger = new Ledger(partitions, true);
        produce(partitions, 0, perRound);
        try (KafkaConsumer<byte[], byte[]> consumer = Corelog.consumer(clientId, Corelog.unique("sessions-2000"),
                Map.of(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, 100,
                        ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 2_000,
                        ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic"))) {
            consumer.subscribe(names);
            pollUntil(consumer, ledger, "the records before the restart", () -> ledger.allReached(perRound));
            pollUntil(consumer, ledger, "a session and incremental fetches in " + clientId + "'s log",
                    everyLogCheck(() -> count(clientId, SESSION_CREATED) >= 1
                            && count(clientId, INCREMENTAL_RESPONSE) >= 5));
            List<String> before = ClientLog.linesOf(clientId);
            assertTrue(before.stream().anyMatch(line -> line.contains("Built incremental fetch")
                    && line.contains("out of 2000 partition")),
                    "no incremental fetch over all 2,000 partitions:\n" + sessionLines(before));
            long sessionsBefore = count(clientId, SESSION_CREATED);

            // The broker goes away and comes back while the consumer keeps polling.
            Path restarted = BrokerControl.requestRestart();
            long asked = System.nanoTime();
            pollUntil(consumer, ledger, "the broker's restart", () -> BrokerControl.restarted(restarted, asked));

            produce(partitions, perRound, perRound);
            pollUntil(consumer, ledger, "the records produced after the restart",
                    () -> ledger.allReached(2 * perRound));
            Corelog.assertNothingMore(consumer, Duration.ofMillis(500));
            ledger.assertConsumedExactly(2 * perRound);
            pollUntil(consumer, ledger, "a new session after the restart",
                    everyLogCheck(() -> count(clientId, SESSION_CREATED) > sessionsBefore));
        }
    }

    /**
     * A broker keeping one session (started with {@code --max-incremental-fetch-session-cache-slots
     * 1} and a one-second eviction age): consumer A (10 partitions) has the slot; once its
     * session is older than the eviction age, consumer B's full fetch (20 partitions, so worth
     * more by Kafka's rules) evicts it. A hears FETCH_SESSION_ID_NOT_FOUND and carries on with
     * full fetches (its smaller session cannot evict B's). Both receive every record of their
     * partitions, in order and once.
     */
    @Test
    void aSecondConsumersLargerSessionEvictsTheFirstFromTheOnlySlotAndBothReceiveEverything() {
        String topic = Corelog.unique("sessions-one-slot");
        Corelog.createTopic(topic, 30);
        List<TopicPartition> ofA = new ArrayList<>();
        List<TopicPartition> ofB = new ArrayList<>();
        for (int p = 0; p < 30; p++) {
            (p < 10 ? ofA : ofB).add(new TopicPartition(topic, p));
        }
        List<TopicPartition> all = new ArrayList<>(ofA);
        all.addAll(ofB);
        int perRound = 3;
        produce(all, 0, perRound);
        String idA = Corelog.unique("one-slot-a");
        String idB = Corelog.unique("one-slot-b");
        Map<String, Object> fast = Map.of(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, 100);
        Ledger ledgerA = new Ledger(ofA, false);
        Ledger ledgerB = new Ledger(ofB, false);
        try (KafkaConsumer<byte[], byte[]> a = Corelog.consumer(idA, null, fast);
                KafkaConsumer<byte[], byte[]> b = Corelog.consumer(idB, null, fast)) {
            a.assign(ofA);
            ofA.forEach(tp -> a.seek(tp, 0));
            pollUntil(a, ledgerA, "A's first records", () -> ledgerA.allReached(perRound));
            pollUntil(a, ledgerA, "A's session", everyLogCheck(() -> count(idA, SESSION_CREATED) >= 1));
            // Kafka's rule: a session younger than the eviction age keeps its slot, so A fetches
            // on for twice that before B asks (the broker's setting, not a guess at speed).
            long until = System.nanoTime() + EVICTION_AGE.multipliedBy(2).toNanos();
            pollUntil(a, ledgerA, "A's session to age", () -> System.nanoTime() > until);

            b.assign(ofB);
            ofB.forEach(tp -> b.seek(tp, 0));
            produce(all, perRound, perRound);
            long deadline = System.nanoTime() + CONSUME_WAIT.toNanos();
            while (!(ledgerA.allReached(2 * perRound) && ledgerB.allReached(2 * perRound))) {
                if (System.nanoTime() > deadline) {
                    fail("timed out after " + CONSUME_WAIT + "; A consumed " + ledgerA.next + ", B consumed " + ledgerB.next);
                }
                ledgerA.take(a, a.poll(Corelog.POLL));
                ledgerB.take(b, b.poll(Corelog.POLL));
            }
            ledgerA.assertConsumedExactly(2 * perRound);
            ledgerB.assertConsumedExactly(2 * perRound);
        }
        assertTrue(count(idB, SESSION_CREATED) >= 1,
                "B never got a session (it should have evicted A's):\n" + sessionLines(ClientLog.linesOf(idB)));
        assertTrue(count(idA, SESSION_NOT_FOUND) >= 1,
                "A's session was never evicted:\n" + sessionLines(ClientLog.linesOf(idA)));
    }

    /** Writes records {@code from .. from + count - 1} to every partition, valued "partition-offset". */
    private static void produce(List<TopicPartition> partitions, int from, int count) {
        try (KafkaProducer<byte[], byte[]> producer = Corelog.producer(Corelog.unique("producer"),
                Map.of("linger.ms", 20))) {
            for (int i = from; i < from + count; i++) {
                for (TopicPartition tp : partitions) {
                    producer.send(new ProducerRecord<>(tp.topic(), tp.partition(), bytes("k" + i),
                            bytes(tp.partition() + "-" + i)));
                }
            }
            producer.flush();
        }
    }

    /** Polls (and checks what arrives) until {@code done}, failing after {@link #CONSUME_WAIT}. */
    private static void pollUntil(KafkaConsumer<byte[], byte[]> consumer, Ledger ledger, String what,
            BooleanSupplier done) {
        long deadline = System.nanoTime() + CONSUME_WAIT.toNanos();
        while (!done.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                fail("timed out after " + CONSUME_WAIT + " waiting for " + what);
            }
            ledger.take(consumer, consumer.poll(Corelog.POLL));
        }
    }

    /** {@code condition}, evaluated at most once per {@link #LOG_CHECK_INTERVAL} (false between). */
    private static BooleanSupplier everyLogCheck(BooleanSupplier condition) {
        long[] last = {System.nanoTime() - LOG_CHECK_INTERVAL.toNanos()};
        return () -> {
            long now = System.nanoTime();
            if (now - last[0] < LOG_CHECK_INTERVAL.toNanos()) {
                return false;
            }
            last[0] = now;
            return condition.getAsBoolean();
        };
    }

    private static long count(String clientId, String needle) {
        return ClientLog.linesOf(clientId).stream().filter(line -> line.contains(needle)).count();
    }

    private static String sessionLines(List<String> log) {
        return log.stream()
                .filter(line -> line.contains("FetchSessionHandler") || line.contains(SESSION_NOT_FOUND))
                .limit(40)
                .map(line -> line.length() > 400 ? line.substring(0, 400) + "..." : line)
                .collect(Collectors.joining("\n"));
    }

    /**
     * What a consumer received, per partition: the next offset expected and the group's last
     * commit. A record is the next offset (its value names partition and offset), or one
     * already received that the group had not committed (redelivered after a rebalance);
     * anything else is a gap, a reordering or a duplicate.
     */
    private static final class Ledger {
        final Map<TopicPartition, Long> next = new HashMap<>();
        final Map<TopicPartition, Long> committed = new HashMap<>();
        /** Whether the consumer is a group member that commits what it received. */
        final boolean commits;

        Ledger(List<TopicPartition> partitions, boolean commits) {
            this.commits = commits;
            partitions.forEach(tp -> {
                next.put(tp, 0L);
                committed.put(tp, 0L);
            });
        }

        void take(KafkaConsumer<byte[], byte[]> consumer, Iterable<ConsumerRecord<byte[], byte[]>> records) {
            Map<TopicPartition, OffsetAndMetadata> positions = new HashMap<>();
            for (ConsumerRecord<byte[], byte[]> record : records) {
                TopicPartition tp = new TopicPartition(record.topic(), record.partition());
                Long expected = next.get(tp);
                assertTrue(expected != null, "a record of " + tp + ", which this consumer does not read");
                long offset = record.offset();
                if (offset < expected && commits) {
                    assertTrue(offset >= committed.get(tp), tp + " redelivered offset " + offset
                            + ", below the committed " + committed.get(tp));
                    continue;
                }
                assertEquals(expected.longValue(), offset, tp + ": expected offset " + expected + ", got " + offset);
                assertEquals(tp.partition() + "-" + offset, Corelog.text(record.value()), tp + "@" + offset);
                next.put(tp, offset + 1);
                positions.put(tp, new OffsetAndMetadata(offset + 1));
            }
            if (positions.isEmpty() || !commits) {
                return;
            }
            try {
                consumer.commitSync(positions);
                positions.forEach((tp, position) -> committed.put(tp, position.offset()));
            } catch (KafkaException e) {
                // The broker went away or the group rebalanced: these may come again.
            }
        }

        boolean allReached(long offset) {
            return next.values().stream().allMatch(position -> position >= offset);
        }

        void assertConsumedExactly(long offset) {
            List<String> wrong = next.entrySet().stream()
                    .filter(entry -> entry.getValue() != offset)
                    .map(entry -> entry.getKey() + "=" + entry.getValue())
                    .limit(20)
                    .collect(Collectors.toList());
            assertTrue(wrong.isEmpty(), "partitions not at offset " + offset + ": " + wrong);
        }
    }
}
