package dev.corelog.clients;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BooleanSupplier;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * What every test needs: the broker address, unique names, client configs and bounded waits.
 *
 * <p>The broker comes from the system property {@code CORELOG_BOOTSTRAP} (set by the pom from
 * {@code mvn -DCORELOG_BOOTSTRAP=host:port}), else the environment variable of that name,
 * else {@code 127.0.0.1:9092}. Nothing here is corelog-specific: the suite runs against any
 * Kafka broker, and every assertion is Kafka's documented behaviour.
 */
final class Corelog {
    /** Bound on every admin call and on every "until" wait in the suite. */
    static final Duration WAIT = Duration.ofSeconds(30);
    /** One poll of a consumer inside a bounded loop. */
    static final Duration POLL = Duration.ofMillis(100);

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

    /** {@code prefix-<run>}: a topic, group or client id no other test or run uses. */
    static String unique(String prefix) {
        return prefix + "-" + RUN + "-" + UUID.randomUUID().toString().substring(0, 6);
    }

    static Admin admin() {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
        props.put(AdminClientConfig.CLIENT_ID_CONFIG, unique("admin"));
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) WAIT.toMillis());
        return Admin.create(props);
    }

    /**
     * The Java producer's defaults (acks=all, enable.idempotence=true) with byte-array
     * serializers; {@code overrides} are applied last.
     */
    static KafkaProducer<byte[], byte[]> producer(String clientId, Map<String, Object> overrides) {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
        props.put(ProducerConfig.CLIENT_ID_CONFIG, clientId);
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, (int) WAIT.toMillis());
        props.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, (int) WAIT.toMillis() / 2);
        props.putAll(overrides);
        return new KafkaProducer<>(props);
    }

    static KafkaProducer<byte[], byte[]> producer() {
        return producer(unique("producer"), Map.of());
    }

    /**
     * A consumer with byte-array deserializers, auto commit off and earliest reset; a
     * {@code null} group id makes a group-less consumer for {@code assign}.
     */
    static KafkaConsumer<byte[], byte[]> consumer(String clientId, String groupId, Map<String, Object> overrides) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
        props.put(ConsumerConfig.CLIENT_ID_CONFIG, clientId);
        if (groupId != null) {
            props.put(ConsumerConfig.GROUP_ID_CONFIG, groupId);
        }
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) WAIT.toMillis());
        props.putAll(overrides);
        return new KafkaConsumer<>(props);
    }

    /** Creates a topic with replication factor 1 and waits until every partition has a leader. */
    static void createTopic(Admin admin, String topic, int partitions, Map<String, String> configs) {
        NewTopic newTopic = new NewTopic(topic, partitions, (short) 1).configs(configs);
        get(admin.createTopics(List.of(newTopic)).all());
        waitForLeaders(admin, topic, partitions);
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

    static void createTopic(String topic, int partitions) {
        try (Admin admin = admin()) {
            createTopic(admin, topic, partitions, Map.of());
        }
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

    /**
     * The exception a Kafka future fails with (asserting that it fails within {@link #WAIT}).
     */
    static Throwable failure(KafkaFuture<?> future) {
        try {
            Object value = future.get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
            throw new AssertionError("expected the call to fail, it returned " + value);
        } catch (ExecutionException e) {
            return e.getCause();
        } catch (TimeoutException e) {
            throw new AssertionError("Kafka call did not complete within " + WAIT, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
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

    /**
     * Polls {@code consumer} until it returned {@code count} records in total (failing after
     * {@link #WAIT}), then returns them in the order they came.
     */
    static List<ConsumerRecord<byte[], byte[]>> pollExactly(KafkaConsumer<byte[], byte[]> consumer, int count) {
        List<ConsumerRecord<byte[], byte[]>> records = new ArrayList<>();
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (records.size() < count) {
            if (System.nanoTime() > deadline) {
                fail("timed out after " + WAIT + " with " + records.size() + " of " + count + " records");
            }
            ConsumerRecords<byte[], byte[]> batch = consumer.poll(POLL);
            batch.forEach(records::add);
        }
        assertTrue(records.size() == count, "expected " + count + " records, got " + records.size());
        return records;
    }

    /** Polls for {@code quiet} and asserts that nothing more arrives. */
    static void assertNothingMore(KafkaConsumer<byte[], byte[]> consumer, Duration quiet) {
        long deadline = System.nanoTime() + quiet.toNanos();
        while (System.nanoTime() < deadline) {
            ConsumerRecords<byte[], byte[]> batch = consumer.poll(POLL);
            if (!batch.isEmpty()) {
                ConsumerRecord<byte[], byte[]> first = batch.iterator().next();
                fail("expected no more records, got " + batch.count() + " starting at "
                        + first.topic() + "-" + first.partition() + "@" + first.offset());
            }
        }
    }

    static byte[] bytes(String text) {
        return text == null ? null : text.getBytes(StandardCharsets.UTF_8);
    }

    static String text(byte[] bytes) {
        return bytes == null ? null : new String(bytes, StandardCharsets.UTF_8);
    }

    static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }
}
