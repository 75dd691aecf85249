package dev.corelog.streams;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.InvalidConfigurationException;
import org.apache.kafka.common.serialization.LongDeserializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.junit.jupiter.api.Test;

/**
 * A stateful topology, {@code groupByKey().count()} into a state store, needs a compacted
 * changelog topic ({@code cleanup.policy=compact}), which Streams creates when the group first
 * assigns tasks. corelog does not compact yet and refuses such a topic with INVALID_CONFIG
 * ("cleanup.policy=compact is not supported by corelog yet"), its documented limitation. So
 * against corelog the application must fail clearly and at once: the error reaches the uncaught
 * exception handler with an {@link InvalidConfigurationException} that names the config, the
 * application goes to ERROR, and no changelog topic is left behind. Against Kafka
 * ({@code -Dcorelog.broker=kafka}) the same topology counts, which proves it right.
 */
class StatefulCountTest {
    private static final String STORE = "word-counts";
    private static final Map<String, Long> COUNTS = Map.of("apple", 3L, "pear", 2L, "fig", 1L);

    @Test
    void countingByKeyNeedsACompactedChangelogTopic() {
        String words = Corelog.unique("words");
        String counts = Corelog.unique("word-counts");
        String applicationId = Corelog.unique("count-app");
        String changelog = applicationId + "-" + STORE + "-changelog";
        try (Admin admin = Corelog.admin()) {
            Corelog.createTopics(admin, 1, words, counts);
        }
        try (KafkaProducer<String, String> producer = Corelog.producer()) {
            COUNTS.forEach((word, count) -> {
                for (long n = 0; n < count; n++) {
                    producer.send(new ProducerRecord<>(words, word, word + " #" + n));
                }
            });
            producer.flush();
        }

        KafkaStreams streams = new KafkaStreams(topology(words, counts),
                Corelog.streamsConfig(applicationId, "only"));
        AtomicReference<Throwable> uncaught = new AtomicReference<>();
        streams.setUncaughtExceptionHandler(exception -> {
            uncaught.compareAndSet(null, exception);
            return StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        try (Admin admin = Corelog.admin()) {
            streams.start();
            if (Corelog.againstKafka()) {
                assertEquals(COUNTS, latestCounts(counts));
                assertNull(uncaught.get(), "no error expected");
                assertEquals("compact", Corelog.topicConfigs(admin, changelog).get("cleanup.policy"),
                        "the changelog topic Streams created");
            } else {
                Corelog.waitUntil("the application fails (state " + streams.state() + ")",
                        () -> uncaught.get() != null && streams.state() == KafkaStreams.State.ERROR);
                Throwable cause = causeOfType(uncaught.get(), InvalidConfigurationException.class);
                assertNotNull(cause, "InvalidConfigurationException in the cause chain of " + chain(uncaught.get()));
                String message = String.valueOf(cause.getMessage());
                assertTrue(message.contains("cleanup.policy") && message.contains("compact"),
                        "the error names the refused config: " + message);
                assertFalse(Corelog.get(admin.listTopics().names()).contains(changelog),
                        "no changelog topic " + changelog + " was created");
            }
        } finally {
            streams.close(Corelog.WAIT);
        }
    }

    private static Topology topology(String words, String counts) {
        StreamsBuilder builder = new StreamsBuilder();
        builder.<String, String>stream(words)
                .groupByKey()
                .count(Materialized.as(STORE))
                .toStream()
                .to(counts, Produced.with(Serdes.String(), Serdes.Long()));
        return builder.build();
    }

    /** Reads {@code topic} read_committed until the latest count of every word is known. */
    private static Map<String, Long> latestCounts(String topic) {
        Map<String, Long> latest = new TreeMap<>();
        try (KafkaConsumer<String, Long> consumer = Corelog.consumer("read_committed", LongDeserializer.class)) {
            TopicPartition partition = new TopicPartition(topic, 0);
            consumer.assign(List.of(partition));
            consumer.seekToBeginning(List.of(partition));
            Corelog.waitUntil("the counts " + COUNTS + " are in " + topic + " (read so far: " + latest + ")", () -> {
                for (ConsumerRecord<String, Long> record : consumer.poll(Corelog.POLL)) {
                    latest.put(record.key(), record.value());
                }
                return latest.equals(COUNTS);
            });
        }
        return latest;
    }

    private static Throwable causeOfType(Throwable throwable, Class<? extends Throwable> type) {
        for (Throwable cause = throwable; cause != null; cause = cause.getCause()) {
            if (type.isInstance(cause)) {
                return cause;
            }
        }
        return null;
    }

    private static String chain(Throwable throwable) {
        List<String> causes = new ArrayList<>();
        for (Throwable cause = throwable; cause != null; cause = cause.getCause()) {
            causes.add(cause.toString());
        }
        return String.join(" <- ", causes);
    }
}
