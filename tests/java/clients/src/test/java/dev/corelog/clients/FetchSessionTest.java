package dev.corelog.clients;

import static dev.corelog.clients.Corelog.bytes;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;

/**
 * A long-running consume over incremental fetch sessions (KIP-227), which the Java consumer
 * uses by default: 20 rounds of produce + poll over 3 partitions, where each round writes to a
 * changing subset of the partitions (so incremental fetch responses leave partitions out) and
 * one partition is paused and resumed mid-way (so the session forgets it and adds it back).
 * Every record must arrive exactly once, in offset order; and the client's log must show a
 * session created by a full fetch, then incremental fetches, and no session error.
 */
@Order(5)
class FetchSessionTest {
    private static final int PARTITIONS = 3;
    private static final int ROUNDS = 20;
    /** Partition 1 is paused from the start of this round up to (not including) RESUME_ROUND. */
    private static final int PAUSE_ROUND = 8;
    private static final int RESUME_ROUND = 12;

    @Test
    void longRunningConsumeOverFetchSessionsLosesAndDuplicatesNothing() {
        String topic = Corelog.unique("fetch-sessions");
        Corelog.createTopic(topic, PARTITIONS);
        List<TopicPartition> partitions = new ArrayList<>();
        for (int p = 0; p < PARTITIONS; p++) {
            partitions.add(new TopicPartition(topic, p));
        }
        TopicPartition paused = partitions.get(1);
        String clientId = Corelog.unique("session-consumer");

        Map<TopicPartition, Long> produced = new HashMap<>();
        Map<TopicPartition, Long> consumed = new HashMap<>();
        partitions.forEach(tp -> {
            produced.put(tp, 0L);
            consumed.put(tp, 0L);
        });
        try (KafkaProducer<byte[], byte[]> producer = Corelog.producer();
                KafkaConsumer<byte[], byte[]> consumer = Corelog.consumer(clientId, null,
                        Map.of(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, 100))) {
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            for (int round = 0; round < ROUNDS; round++) {
                if (round == PAUSE_ROUND) {
                    consumer.pause(List.of(paused));
                }
                if (round == RESUME_ROUND) {
                    consumer.resume(List.of(paused));
                }
                // Round r writes 1..5 records to the partitions p with (r + p) % 3 != 0, and to
                // all of them every fifth round.
                for (TopicPartition tp : partitions) {
                    if ((round + tp.partition()) % 3 == 0 && round % 5 != 0) {
                        continue;
                    }
                    int count = 1 + (round + tp.partition()) % 5;
                    for (int i = 0; i < count; i++) {
                        long offset = produced.get(tp);
                        producer.send(new ProducerRecord<>(topic, tp.partition(), bytes("k" + offset),
                                bytes(tp.partition() + "-" + offset + "-round-" + round)));
                        produced.put(tp, offset + 1);
                    }
                }
                producer.flush();

                boolean pausedNow = round >= PAUSE_ROUND && round < RESUME_ROUND;
                Map<TopicPartition, Long> expected = new HashMap<>(produced);
                if (pausedNow) {
                    expected.put(paused, consumed.get(paused));
                }
                pollUntilConsumed(consumer, consumed, expected, round);
            }
            // Nothing beyond what was produced turns up later.
            Corelog.assertNothingMore(consumer, Duration.ofMillis(500));
            assertEquals(produced, consumed);
        }

        List<String> log = ClientLog.linesOf(clientId);
        assertTrue(log.stream().anyMatch(line -> line.contains("created a new incremental fetch session")),
                "the broker never created a fetch session for " + clientId + " (a session id of 0 in every full"
                        + " fetch response); fetch session lines:\n" + sessionLines(log));
        long incremental = log.stream().filter(line -> line.contains("sent an incremental fetch response")).count();
        assertTrue(incremental >= ROUNDS, "only " + incremental + " incremental fetch responses:\n" + sessionLines(log));
        List<String> problems = log.stream()
                .filter(line -> line.contains("FETCH_SESSION_ID_NOT_FOUND") || line.contains("INVALID_FETCH_SESSION_EPOCH")
                        || line.contains("sent an invalid") || line.contains("was unable to process the fetch request"))
                .collect(Collectors.toList());
        assertTrue(problems.isEmpty(), "fetch session errors:\n" + String.join("\n", problems));
    }

    /**
     * Polls until every partition's next offset reaches {@code expected}; fails on a gap, a
     * duplicate, a record of a paused partition, or a record beyond what was produced.
     */
    private static void pollUntilConsumed(KafkaConsumer<byte[], byte[]> consumer, Map<TopicPartition, Long> consumed,
            Map<TopicPartition, Long> expected, int round) {
        long deadline = System.nanoTime() + Corelog.WAIT.toNanos();
        while (!consumed.equals(expected)) {
            if (System.nanoTime() > deadline) {
                fail("round " + round + ": timed out after " + Corelog.WAIT + "; consumed up to " + consumed
                        + ", expected " + expected);
            }
            for (ConsumerRecord<byte[], byte[]> record : consumer.poll(Corelog.POLL)) {
                TopicPartition tp = new TopicPartition(record.topic(), record.partition());
                long next = consumed.get(tp);
                assertEquals(next, record.offset(), "round " + round + ": " + tp + " skipped or repeated an offset");
                assertTrue(record.offset() < expected.get(tp),
                        "round " + round + ": " + tp + " returned offset " + record.offset() + " but only "
                                + expected.get(tp) + " are expected now (paused or not produced)");
                String value = Corelog.text(record.value());
                assertTrue(value.startsWith(tp.partition() + "-" + record.offset() + "-"), "value " + value);
                consumed.put(tp, next + 1);
            }
        }
    }

    private static String sessionLines(List<String> log) {
        return log.stream().filter(line -> line.contains("FetchSessionHandler")).limit(40)
                .collect(Collectors.joining("\n"));
    }
}
