package dev.corelog.streams;

import static org.junit.jupiter.api.Assertions.fail;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BooleanSupplier;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;

/**
 * What every test needs: the broker address and kind, unique names, the Streams and client
 * configs, and bounded waits.
 *
 * <p>The broker comes from the system property {@code CORELOG_BOOTSTRAP} (set by the pom from
 * {@code mvn -DCORELOG_BOOTSTRAP=host:port}), else the environment variable of that name, else
 * {@code 127.0.0.1:9092}. The system property {@code corelog.broker} says which broker that is
 * ({@code corelog}, the default, or {@code kafka}); only {@link StatefulCountTest} reads it.
 */
final class Corelog {
    /** Bound on every admin call and on every "until" wait in the suite. */
    static final Duration WAIT = Duration.ofSeconds(60);
    /** One poll of a consumer inside a bounded loop. */
    static final Duration POLL = Duration.ofMillis(100);
    /**
     * Streams commits (and so ends its transaction) this often: small, so a test sees its
     * output within a fraction of a second (Kafka's default under exactly-once is 100 ms too).
     */
    static final int COMMIT_INTERVAL_MS = 100;
    /**
     * Kafka's smallest session timeout (group.min.session.timeout.ms): a member that stopped
     * without leaving (Streams does not send LeaveGroup on close, and a killed one cannot)
     * holds the next rebalance up for this long.
     */
    static final int SESSION_TIMEOUT_MS = 6_000;
    /**
     * An open transaction of a killed instance is aborted by the transaction coordinator this
     * long after it began (Streams' exactly-once default is 10 s).
     */
    static final int TRANSACTION_TIMEOUT_MS = 5_000;

    /** Makes names unique across runs against the same (long-lived) broker. */
    private static final String RUN = UUID.randomUUID().toString().substring(0, 8);

    private Corelog() {}

    static String bootstrap() {
        String property = System.getProperty("CORELOG_BOOTSTRAP");
        if (property != null && !property.isBlank()) {
            return property.trim();
        }
        String env = System.getenv("CORELOG_BOOTSTRAP");
        if (env != null && !env.isBlank()) {
            return env.trim();
        }
        return "127.0.0.1:9092";
    }

    /** True when the suite runs against Apache Kafka (-Dcorelog.broker=kafka). */
    static boolean againstKafka() {
        String broker = System.getProperty("corelog.broker", "corelog").trim();
        return switch (broker) {
            case "", "corelog" -> false;
            case "kafka" -> true;
            default -> throw new IllegalArgumentException(
                    "corelog.broker must be corelog or kafka, not " + broker);
        };
    }

    /** {@code prefix-<run>-<random>}: a topic or application id no other test or run uses. */
    static String unique(String prefix) {
        return prefix + "-" + RUN + "-" + UUID.randomUUID().toString().substring(0, 6);
    }

    /** A fresh state.dir for one instance of one application, below target/. */
    static String stateDirectory(String applicationId, String instance) {
        String root = System.getProperty("corelog.stateDirectory", "target/state");
        return Path.of(root, applicationId, instance).toAbsolutePath().toString();
    }

    /**
     * The Streams configs every application of the suite shares: exactly_once_v2, the
     * classic group protocol (not KIP-1071's streams protocol), String serdes, one thread,
     * a small commit interval, and timeouts that keep a restart quick.
     */
    static Properties streamsConfig(String applicationId, String instance) {
        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, applicationId);
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
        props.put(StreamsConfig.CLIENT_ID_CONFIG, applicationId + "-" + instance);
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        props.put(StreamsConfig.GROUP_PROTOCOL_CONFIG, "classic");
        props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, COMMIT_INTERVAL_MS);
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
        props.put(StreamsConfig.STATE_DIR_CONFIG, stateDirectory(applicationId, instance));
        props.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG,
                Serdes.StringSerde.class.getName());
        props.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG,
                Serdes.StringSerde.class.getName());
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG), SESSION_TIMEOUT_MS);
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG), 1_000);
        props.put(StreamsConfig.producerPrefix(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG), TRANSACTION_TIMEOUT_MS);
        return props;
    }

    static Admin admin() {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
        props.put(AdminClientConfig.CLIENT_ID_CONFIG, unique("admin"));
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) WAIT.toMillis());
        return Admin.create(props);
    }

    /** A plain producer (Java's defaults: acks=all, idempotent, no transactions) of Strings. */
    static KafkaProducer<String, String> producer() {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
        props.put(ProducerConfig.CLIENT_ID_CONFIG, unique("producer"));
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        props.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, (int) WAIT.toMillis());
        props.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, (int) WAIT.toMillis() / 2);
        return new KafkaProducer<>(props);
    }

    /**
     * A group-less String consumer for {@code assign}, reading {@code read_committed} or
     * {@code read_uncommitted}.
     */
    static <V> KafkaConsumer<String, V> consumer(String isolationLevel, Class<?> valueDeserializer) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
        props.put(ConsumerConfig.CLIENT_ID_CONFIG, unique("reader"));
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, valueDeserializer.getName());
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolationLevel);
        props.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, 100);
        props.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) WAIT.toMillis());
        return new KafkaConsumer<>(props);
    }

    /** Creates topics with replication factor 1 and waits until every partition has a leader. */
    static void createTopics(Admin admin, int partitions, String... topics) {
        List<NewTopic> newTopics = Arrays.stream(topics)
                .map(topic -> new NewTopic(topic, partitions, (short) 1))
                .toList();
        get(admin.createTopics(newTopics).all());
        for (String topic : topics) {
            waitForLeaders(admin, topic, partitions);
        }
    }

    /** Waits until the broker describes every partition of a just-created topic with a leader. */
    static void waitForLeaders(Admin admin, String topic, int partitions) {
        // Kafka answers CreateTopics once its controller committed the topic; the broker may
        // learn of it a moment later (UNKNOWN_TOPIC_OR_PARTITION until then).
        waitUntil("topic " + topic + " has a leader for all " + partitions + " partitions", () -> {
            TopicDescription description;
            try {
                description = admin.describeTopics(List.of(topic)).allTopicNames()
                        .get(WAIT.toMillis(), TimeUnit.MILLISECONDS).get(topic);
            } catch (ExecutionException e) {
                if (e.getCause() instanceof UnknownTopicOrPartitionException) {
                    return false;
                }
                throw new AssertionError("describeTopics " + topic + " failed: " + e.getCause(), e.getCause());
            } catch (InterruptedException | TimeoutException e) {
                throw new AssertionError(e);
            }
            return description.partitions().size() == partitions
                    && description.partitions().stream().allMatch(p -> p.leader() != null && !p.leader().isEmpty());
        });
    }

    /** A Kafka future's value within {@link #WAIT}; its failure is rethrown as the cause. */
    static <T> T get(KafkaFuture<T> future) {
        try {
            return future.get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            throw new AssertionError("Kafka call failed: " + e.getCause(), e.getCause());
        } catch (TimeoutException e) {
            throw new AssertionError("Kafka call did not complete within " + WAIT, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    /** Starts {@code streams} and waits (within {@link #WAIT}) until it is RUNNING. */
    static void startAndAwaitRunning(KafkaStreams streams) {
        streams.start();
        waitUntil("the Streams application is RUNNING (it is " + streams.state() + ")",
                () -> streams.state() == KafkaStreams.State.RUNNING);
    }

    /** Polls {@code condition} every 50 ms until it holds, failing after {@link #WAIT}. */
    static void waitUntil(String what, BooleanSupplier condition) {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                fail("timed out after " + WAIT + " waiting until " + what);
            }
            sleep(50);
        }
    }

    static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    /** The configs of one topic, as DescribeConfigs reports them. */
    static Map<String, String> topicConfigs(Admin admin, String topic) {
        ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        var config = get(admin.describeConfigs(List.of(resource)).all()).get(resource);
        Map<String, String> values = new TreeMap<>();
        config.entries().forEach(entry -> values.put(entry.name(), entry.value()));
        return values;
    }

    /** The latest (end) offset of each partition of {@code topic}, from ListOffsets. */
    static Map<TopicPartition, Long> endOffsets(Admin admin, String topic, int partitions) {
        Map<TopicPartition, OffsetSpec> request = new HashMap<>();
        for (int partition = 0; partition < partitions; partition++) {
            request.put(new TopicPartition(topic, partition), OffsetSpec.latest());
        }
        Map<TopicPartition, ListOffsetsResultInfo> result = get(admin.listOffsets(request).all());
        Map<TopicPartition, Long> offsets = new HashMap<>();
        result.forEach((partition, info) -> offsets.put(partition, info.offset()));
        return offsets;
    }
}
