package dev.corelog.clients;

import static dev.corelog.clients.Corelog.bytes;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;

/**
 * Consumer groups with the classic protocol ({@code group.protocol=classic}) and the
 * cooperative-sticky assignor: two members share a 4-partition topic, moving only the
 * partitions that change hands (incremental cooperative rebalancing, KIP-429); one leaves and
 * the other takes everything over from the leaver's committed offsets; commitSync and
 * commitAsync; and a new member resumes exactly where the group's commits stand.
 */
@Order(2)
class ConsumerGroupTest {
    private static final int PARTITIONS = 4;
    private static final int FIRST_ROUND_PER_PARTITION = 10;

    /** Remembers what a member's rebalance listener was told, in order. */
    private static final class Rebalances implements ConsumerRebalanceListener {
        final ConcurrentLinkedQueue<Set<TopicPartition>> revoked = new ConcurrentLinkedQueue<>();
        final ConcurrentLinkedQueue<Set<TopicPartition>> assigned = new ConcurrentLinkedQueue<>();
        final ConcurrentLinkedQueue<Set<TopicPartition>> lost = new ConcurrentLinkedQueue<>();

        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
            if (!partitions.isEmpty()) {
                revoked.add(Set.copyOf(partitions));
            }
        }

        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
            if (!partitions.isEmpty()) {
                assigned.add(Set.copyOf(partitions));
            }
        }

        @Override
        public void onPartitionsLost(Collection<TopicPartition> partitions) {
            lost.add(Set.copyOf(partitions));
        }
    }

    private static Map<String, Object> classicCooperative() {
        return Map.of(
                ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic",
                ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, CooperativeStickyAssignor.class.getName(),
                ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 10_000,
                ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, 500,
                ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, 100);
    }

    @Test
    void cooperativeStickyMembersShareCommitAndResumeFromCommittedOffsets() {
        String topic = Corelog.unique("group-coop");
        String group = Corelog.unique("group-coop");
        Corelog.createTopic(topic, PARTITIONS);
        Set<TopicPartition> all = IntStream.range(0, PARTITIONS)
                .mapToObj(p -> new TopicPartition(topic, p))
                .collect(Collectors.toSet());

        Rebalances rebalancesA = new Rebalances();
        Rebalances rebalancesB = new Rebalances();
        try (KafkaConsumer<byte[], byte[]> a = Corelog.consumer(Corelog.unique("member-a"), group, classicCooperative());
                KafkaProducer<byte[], byte[]> producer = Corelog.producer()) {
            // A alone owns every partition.
            a.subscribe(List.of(topic), rebalancesA);
            pollUntil("member A owns all partitions", List.of(a), () -> a.assignment().equals(all));

            Set<TopicPartition> ownedByB;
            try (KafkaConsumer<byte[], byte[]> b = Corelog.consumer(Corelog.unique("member-b"), group, classicCooperative())) {
                // B joins: the cooperative rebalance moves half the partitions to B.
                b.subscribe(List.of(topic), rebalancesB);
                pollUntil("A and B own two partitions each", List.of(a, b),
                        () -> a.assignment().size() == 2 && b.assignment().size() == 2
                                && union(a.assignment(), b.assignment()).equals(all));
                ownedByB = Set.copyOf(b.assignment());
                Set<TopicPartition> ownedByA = Set.copyOf(a.assignment());
                // Cooperative: A gave up only what B took, never its whole assignment.
                assertEquals(List.of(all), List.copyOf(rebalancesA.assigned).subList(0, 1),
                        "A's first assignment is every partition");
                assertEquals(List.of(ownedByB), List.copyOf(rebalancesA.revoked),
                        "A's only revocation is of the partitions B took");
                assertTrue(rebalancesA.lost.isEmpty(), "A lost no partition: " + rebalancesA.lost);
                assertEquals(List.of(ownedByB), List.copyOf(rebalancesB.assigned), "B was assigned once");

                produce(producer, topic, 0, FIRST_ROUND_PER_PARTITION);
                Map<TopicPartition, List<Long>> seenA = new HashMap<>();
                Map<TopicPartition, List<Long>> seenB = new HashMap<>();
                pollRecords(List.of(a, b), List.of(seenA, seenB), PARTITIONS * FIRST_ROUND_PER_PARTITION);
                assertEquals(ownedByA, seenA.keySet(), "A read exactly its partitions");
                assertEquals(ownedByB, seenB.keySet(), "B read exactly its partitions");
                for (Map<TopicPartition, List<Long>> seen : List.of(seenA, seenB)) {
                    seen.values().forEach(offsets -> assertEquals(offsetRange(0, FIRST_ROUND_PER_PARTITION), offsets));
                }

                // A commits synchronously, B asynchronously with a callback.
                a.commitSync();
                AtomicReference<Map<TopicPartition, OffsetAndMetadata>> asyncCommitted = new AtomicReference<>();
                AtomicReference<Exception> asyncError = new AtomicReference<>();
                b.commitAsync((offsets, exception) -> {
                    asyncError.set(exception);
                    asyncCommitted.set(offsets);
                });
                pollUntil("B's commitAsync callback ran", List.of(a, b), () -> asyncCommitted.get() != null);
                assertNull(asyncError.get(), "commitAsync failed: " + asyncError.get());
                assertEquals(ownedByB, asyncCommitted.get().keySet());
                asyncCommitted.get().values().forEach(o -> assertEquals(FIRST_ROUND_PER_PARTITION, o.offset()));

                assertCommitted(a, ownedByA, FIRST_ROUND_PER_PARTITION);
                assertCommitted(b, ownedByB, FIRST_ROUND_PER_PARTITION);
            } // B closes and leaves the group.

            // A takes B's partitions over, starting from B's committed offsets.
            pollUntil("A owns all partitions after B left", List.of(a), () -> a.assignment().equals(all));
            assertEquals(ownedByB, List.copyOf(rebalancesA.assigned).get(rebalancesA.assigned.size() - 1),
                    "A was assigned only B's former partitions in the last rebalance");

            produce(producer, topic, FIRST_ROUND_PER_PARTITION, 4);
            Map<TopicPartition, List<Long>> seen = new HashMap<>();
            pollRecords(List.of(a), List.of(seen), PARTITIONS * 4);
            assertEquals(all, seen.keySet());
            seen.values().forEach(offsets -> assertEquals(offsetRange(FIRST_ROUND_PER_PARTITION, 14), offsets,
                    "A resumed every partition at the committed offset 10"));
            a.commitSync();
            assertCommitted(a, all, 14);
        } // A leaves too: the group is empty, its offsets stay.

        // A new member resumes from the group's committed offsets.
        try (KafkaConsumer<byte[], byte[]> c = Corelog.consumer(Corelog.unique("member-c"), group, classicCooperative());
                KafkaProducer<byte[], byte[]> producer = Corelog.producer()) {
            assertCommitted(c, all, 14);
            produce(producer, topic, 14, 1);
            c.subscribe(List.of(topic));
            Map<TopicPartition, List<Long>> seen = new HashMap<>();
            pollRecords(List.of(c), List.of(seen), PARTITIONS);
            assertEquals(all, seen.keySet());
            seen.values().forEach(offsets -> assertEquals(List.of(14L), offsets,
                    "the new member starts at the committed offset"));
            all.forEach(tp -> assertEquals(15, c.position(tp)));
        }
    }

    private static Set<TopicPartition> union(Set<TopicPartition> a, Set<TopicPartition> b) {
        Set<TopicPartition> union = new HashSet<>(a);
        union.addAll(b);
        return union;
    }

    private static List<Long> offsetRange(long from, long to) {
        return java.util.stream.LongStream.range(from, to).boxed().collect(Collectors.toList());
    }

    /** Writes records {@code first..first+count-1} (value "p-n") to every partition. */
    private static void produce(KafkaProducer<byte[], byte[]> producer, String topic, int first, int count) {
        for (int p = 0; p < PARTITIONS; p++) {
            for (int n = first; n < first + count; n++) {
                producer.send(new ProducerRecord<>(topic, p, bytes("key-" + n), bytes(p + "-" + n)));
            }
        }
        producer.flush();
    }

    private static void assertCommitted(KafkaConsumer<byte[], byte[]> consumer, Set<TopicPartition> partitions, long offset) {
        Map<TopicPartition, OffsetAndMetadata> committed = consumer.committed(partitions);
        assertEquals(partitions, committed.keySet(), "committed() answers for every partition");
        committed.forEach((tp, o) -> {
            assertNotNull(o, tp + " has a committed offset");
            assertEquals(offset, o.offset(), tp + " committed offset");
        });
    }

    /** Polls every consumer in turn (they share this thread) until {@code done} holds. */
    private static void pollUntil(String what, List<KafkaConsumer<byte[], byte[]>> consumers, java.util.function.BooleanSupplier done) {
        long deadline = System.nanoTime() + Corelog.WAIT.toNanos();
        while (!done.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                fail("timed out after " + Corelog.WAIT + " waiting until " + what + "; assignments: "
                        + consumers.stream().map(c -> c.assignment().toString()).collect(Collectors.joining(" / ")));
            }
            for (KafkaConsumer<byte[], byte[]> consumer : consumers) {
                assertTrue(consumer.poll(Corelog.POLL).isEmpty(), "no records were produced yet");
            }
        }
    }

    /**
     * Polls every consumer in turn until they returned {@code total} records between them,
     * recording each consumer's offsets per partition in {@code seen}; fails on a duplicate.
     */
    private static void pollRecords(List<KafkaConsumer<byte[], byte[]>> consumers,
            List<Map<TopicPartition, List<Long>>> seen, int total) {
        long deadline = System.nanoTime() + Corelog.WAIT.toNanos();
        int count = 0;
        while (count < total) {
            if (System.nanoTime() > deadline) {
                fail("timed out after " + Corelog.WAIT + " with " + count + " of " + total + " records: " + seen);
            }
            for (int i = 0; i < consumers.size(); i++) {
                for (ConsumerRecord<byte[], byte[]> record : consumers.get(i).poll(Corelog.POLL)) {
                    TopicPartition tp = new TopicPartition(record.topic(), record.partition());
                    List<Long> offsets = seen.get(i).computeIfAbsent(tp, k -> new ArrayList<>());
                    assertTrue(offsets.isEmpty() || offsets.get(offsets.size() - 1) < record.offset(),
                            "offset " + record.offset() + " of " + tp + " arrived twice or out of order: " + offsets);
                    assertEquals(record.partition() + "-" + record.offset(), Corelog.text(record.value()));
                    offsets.add(record.offset());
                    count++;
                }
            }
        }
        assertEquals(total, count, "records beyond the expected ones arrived");
    }
}
