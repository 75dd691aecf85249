package dev.corelog.streams;

import static org.junit.jupiter.api.Assertions.fail;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Predicate;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;

/**
 * Reads every partition of some topics from the beginning, with one isolation level, and keeps
 * what it read: the view of the application's output that a downstream consumer gets.
 */
final class OutputReader implements AutoCloseable {
    private final KafkaConsumer<String, String> consumer;
    private final List<ConsumerRecord<String, String>> records = new ArrayList<>();

    OutputReader(String isolationLevel, String... topics) {
        consumer = Corelog.consumer(isolationLevel, StringDeserializer.class);
        List<TopicPartition> partitions = new ArrayList<>();
        for (String topic : topics) {
            consumer.partitionsFor(topic, Corelog.WAIT)
                    .forEach(info -> partitions.add(new TopicPartition(topic, info.partition())));
        }
        consumer.assign(partitions);
        consumer.seekToBeginning(partitions);
    }

    /** One poll; returns how many records it added. */
    int poll() {
        int before = records.size();
        consumer.poll(Corelog.POLL).forEach(records::add);
        return records.size() - before;
    }

    /** Polls until some record read so far matches, failing after {@link Corelog#WAIT}. */
    void awaitAny(String what, Predicate<ConsumerRecord<String, String>> matches) {
        long deadline = System.nanoTime() + Corelog.WAIT.toNanos();
        while (records.stream().noneMatch(matches)) {
            if (System.nanoTime() > deadline) {
                fail("timed out after " + Corelog.WAIT + " waiting for " + what + "; read " + records.size());
            }
            poll();
        }
    }

    /** Polls until at least {@code count} records were read, failing after {@link Corelog#WAIT}. */
    void awaitCount(int count) {
        long deadline = System.nanoTime() + Corelog.WAIT.toNanos();
        while (records.size() < count) {
            if (System.nanoTime() > deadline) {
                fail("timed out after " + Corelog.WAIT + " with " + records.size() + " of " + count
                        + " output records; by topic: " + byTopic());
            }
            poll();
        }
    }

    /** Keeps polling for {@code quiet}: whatever else arrives is kept (and shows as a surplus). */
    void drain(Duration quiet) {
        long deadline = System.nanoTime() + quiet.toNanos();
        while (System.nanoTime() < deadline) {
            poll();
        }
    }

    int count() {
        return records.size();
    }

    /** {@code key=value} lines by topic, each list sorted; duplicates stay. */
    Map<String, List<String>> byTopic() {
        Map<String, List<String>> byTopic = new TreeMap<>();
        for (ConsumerRecord<String, String> record : records) {
            byTopic.computeIfAbsent(record.topic(), topic -> new ArrayList<>())
                    .add(record.key() + "=" + record.value());
        }
        byTopic.values().forEach(lines -> lines.sort(null));
        return byTopic;
    }

    /** The sorted {@code key=value} lines read from {@code topic}. */
    List<String> lines(String topic) {
        return byTopic().getOrDefault(topic, List.of());
    }

    @Override
    public void close() {
        consumer.close();
    }
}
