package dev.corelog.streams;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Exactly once across a restart of a Streams application (exactly_once_v2): an instance
 * processes a first batch of orders, is stopped while it processes a second one, and a new
 * instance with the same application.id (and a state directory of its own, as on another
 * machine) takes over and processes the rest and a third batch. Every order then appears in the
 * output exactly once for a {@code read_committed} reader (none lost, none twice), and the
 * application's consumer group has committed exactly the input's end offsets.
 *
 * <p>Three ways to stop the first instance: {@code close()} (a clean shutdown commits what was
 * processed), {@code close(Duration.ZERO)} (the new instance joins while the old one is still
 * shutting down), and SIGKILL of the instance's own JVM (a crash: its open transaction and its
 * transactional offset commit stay pending until the transaction coordinator aborts them, and
 * the new instance must wait for that and reprocess those orders).
 */
class ExactlyOnceRestartTest {
    private static final int ORDERS_PER_BATCH = 200;
    /** Slows processing to ~1 s a batch, so that the stop lands in the middle of a batch. */
    private static final long DELAY_PER_ORDER_MS = 5;

    enum Stop {
        CLOSE,
        CLOSE_WITHOUT_WAITING,
        KILL
    }

    @ParameterizedTest(name = "stopped by {0}")
    @EnumSource(Stop.class)
    void everyOrderIsProcessedExactlyOnceAcrossARestart(Stop stop) throws IOException {
        Orders.Topics topics = Orders.Topics.unique("restart-" + stop.name().toLowerCase());
        String applicationId = Corelog.unique("restart-app-" + stop.name().toLowerCase());
        try (Admin admin = Corelog.admin()) {
            Corelog.createTopics(admin, Orders.PARTITIONS, topics.all());
        }
        List<KeyValue<String, String>> first = Orders.batch("first", ORDERS_PER_BATCH);
        List<KeyValue<String, String>> second = Orders.batch("second", ORDERS_PER_BATCH);
        List<KeyValue<String, String>> third = Orders.batch("third", ORDERS_PER_BATCH);
        List<KeyValue<String, String>> all = new ArrayList<>(first);
        all.addAll(second);
        all.addAll(third);
        Map<String, List<String>> expected = Orders.expected(topics, all);

        try (OutputReader committed = new OutputReader("read_committed", topics.outputs());
                OutputReader uncommitted = new OutputReader("read_uncommitted", topics.outputs())) {
            KafkaStreams firstInstance = null;
            OrdersApplication firstProcess = null;
            if (stop == Stop.KILL) {
                firstProcess = OrdersApplication.start(applicationId, "first", topics, DELAY_PER_ORDER_MS);
            } else {
                firstInstance = new KafkaStreams(Orders.topology(topics, DELAY_PER_ORDER_MS),
                        Corelog.streamsConfig(applicationId, "first"));
                Corelog.startAndAwaitRunning(firstInstance);
            }
            KafkaStreams secondInstance = null;
            try {
                Orders.produce(topics, first);
                committed.awaitCount(Orders.total(Orders.expected(topics, first)));
                Orders.produce(topics, second);
                uncommitted.awaitAny("an output record of the second batch",
                        record -> record.key().startsWith("second-"));
                switch (stop) {
                    case CLOSE -> firstInstance.close();
                    case CLOSE_WITHOUT_WAITING -> firstInstance.close(Duration.ZERO);
                    case KILL -> firstProcess.kill();
                }

                secondInstance = new KafkaStreams(Orders.topology(topics, DELAY_PER_ORDER_MS),
                        Corelog.streamsConfig(applicationId, "second"));
                Corelog.startAndAwaitRunning(secondInstance);
                Orders.produce(topics, third);
                committed.awaitCount(Orders.total(expected));
                // Several commit intervals: a duplicate would show up by now.
                committed.drain(Duration.ofSeconds(2));
                assertEquals(expected.get(topics.large()), committed.lines(topics.large()), "large orders");
                assertEquals(expected.get(topics.small()), committed.lines(topics.small()), "small orders");
                assertCommittedOffsetsAreTheInputEndOffsets(applicationId, topics);
            } finally {
                if (secondInstance != null) {
                    secondInstance.close(Corelog.WAIT);
                }
                if (firstInstance != null) {
                    firstInstance.close(Corelog.WAIT);
                }
                if (firstProcess != null) {
                    firstProcess.kill();
                }
            }
            uncommitted.drain(Duration.ofSeconds(1));
            // For the log: how many output records aborted transactions left behind (read
            // uncommitted they show, read_committed they must not).
            System.out.printf("stopped by %s: %d output records read_committed, %d read_uncommitted%n",
                    stop, committed.count(), uncommitted.count());
        }
    }

    /**
     * The group's committed offsets (Admin listConsumerGroupOffsets, OffsetFetch) are the input
     * topic's end offsets: the last transaction committed the offsets of the last orders.
     */
    private static void assertCommittedOffsetsAreTheInputEndOffsets(String applicationId, Orders.Topics topics) {
        try (Admin admin = Corelog.admin()) {
            Map<TopicPartition, Long> endOffsets = Corelog.endOffsets(admin, topics.orders(), Orders.PARTITIONS);
            Map<TopicPartition, Long> committedOffsets = new HashMap<>();
            // Streams commits its offsets in the transaction that wrote the output just read;
            // their commit marker may land a moment after the output's.
            Corelog.waitUntil("the group's committed offsets reach the input end offsets " + endOffsets, () -> {
                committedOffsets.clear();
                committedOffsets.putAll(committedOffsets(admin, applicationId));
                return committedOffsets.equals(endOffsets);
            });
            assertEquals(endOffsets, committedOffsets, "committed offsets of group " + applicationId);
        }
    }

    private static Map<TopicPartition, Long> committedOffsets(Admin admin, String groupId) {
        Map<TopicPartition, OffsetAndMetadata> offsets =
                Corelog.get(admin.listConsumerGroupOffsets(groupId).partitionsToOffsetAndMetadata());
        Map<TopicPartition, Long> committed = new HashMap<>();
        offsets.forEach((partition, offset) -> {
            if (offset != null) {
                committed.put(partition, offset.offset());
            }
        });
        return committed;
    }
}
