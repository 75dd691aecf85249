package dev.corelog.clients;

import static dev.corelog.clients.Corelog.bytes;
import static dev.corelog.clients.Corelog.get;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ConsumerGroupListing;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.SubscriptionPattern;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.GroupType;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;

/**
 * The consumer group protocol of Kafka 4 ({@code group.protocol=consumer}, KIP-848):
 * ConsumerGroupHeartbeat with server-side assignment (the {@code uniform} and {@code range}
 * assignors, chosen with {@code group.remote.assignor}), incremental revoke-then-assign
 * rebalances, commits, and ConsumerGroupDescribe (group type, member epochs, target
 * assignments).
 *
 * <p>Runs against corelog and against the reference Kafka alike.
 */
@Order(7)
class ConsumerGroupProtocolKip848Test {
    private static final int PARTITIONS = 4;
    private static final int RECORDS_PER_PARTITION = 10;

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

    private static Map<String, Object> consumerProtocol(String assignor) {
        return Map.of(
                ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer",
                ConsumerConfig.GROUP_REMOTE_ASSIGNOR_CONFIG, assignor,
                ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, 100);
    }

    @Test
    void uniformAssignorMovesOnlyTheTakenPartitionsAndMembersResumeFromCommits() {
        String topic = Corelog.unique("kip848-uniform");
        String group = Corelog.unique("kip848-uniform");
        Corelog.createTopic(topic, PARTITIONS);
        Set<TopicPartition> all = partitions(topic);

        Rebalances rebalancesA = new Rebalances();
        String clientIdB = Corelog.unique("kip848-b");
        try (Admin admin = Corelog.admin();
                KafkaProducer<byte[], byte[]> producer = Corelog.producer();
                KafkaConsumer<byte[], byte[]> a = Corelog.consumer(Corelog.unique("kip848-a"), group,
                        consumerProtocol("uniform"))) {
            a.subscribe(List.of(topic), rebalancesA);
            pollUntil("member A owns all partitions", List.of(a), () -> a.assignment().equals(all));

            Set<TopicPartition> ownedByB;
            try (KafkaConsumer<byte[], byte[]> b = Corelog.consumer(clientIdB, group,
                    consumerProtocol("uniform"))) {
                Rebalances rebalancesB = new Rebalances();
                b.subscribe(List.of(topic), rebalancesB);
                pollUntil("A and B own two partitions each", List.of(a, b),
                        () -> a.assignment().size() == 2 && b.assignment().size() == 2
                                && union(a.assignment(), b.assignment()).equals(all));
                ownedByB = Set.copyOf(b.assignment());
                Set<TopicPartition> ownedByA = Set.copyOf(a.assignment());
                // Incremental: A revoked only what B took; nobody stopped the whole group.
                assertEquals(List.of(ownedByB), List.copyOf(rebalancesA.revoked), "A's only revocation");
                assertTrue(rebalancesA.lost.isEmpty(), "A lost no partition: " + rebalancesA.lost);
                assertEquals(List.of(ownedByB), List.copyOf(rebalancesB.assigned), "B was assigned once");

                // ConsumerGroupDescribe: a consumer group, its epochs and target assignments.
                ConsumerGroupDescription described = get(admin.describeConsumerGroups(List.of(group)).all()).get(group);
                assertEquals(GroupType.CONSUMER, described.type());
                assertEquals(GroupState.STABLE, described.groupState());
                assertEquals("uniform", described.partitionAssignor());
                assertEquals(2, described.members().size());
                int groupEpoch = described.groupEpoch().orElseThrow();
                assertTrue(groupEpoch >= 2, "two joins bumped the group epoch: " + groupEpoch);
                assertEquals(groupEpoch, described.targetAssignmentEpoch().orElseThrow(), "target assignment epoch");
                for (MemberDescription member : described.members()) {
                    Set<TopicPartition> expected = member.clientId().equals(clientIdB) ? ownedByB : ownedByA;
                    assertEquals(expected, member.assignment().topicPartitions(), member.clientId() + " assignment");
                    assertEquals(expected, member.targetAssignment().orElseThrow().topicPartitions(),
                            member.clientId() + " target assignment");
                    assertEquals(groupEpoch, member.memberEpoch().orElseThrow(), member.clientId() + " member epoch");
                }
                Map<String, ConsumerGroupListing> listed = get(admin.listConsumerGroups().all()).stream()
                        .collect(Collectors.toMap(ConsumerGroupListing::groupId, listing -> listing));
                assertEquals(GroupType.CONSUMER, listed.get(group).type().orElseThrow(), "listConsumerGroups type");

                produce(producer, topic, 0, RECORDS_PER_PARTITION);
                Map<TopicPartition, List<Long>> seenA = new HashMap<>();
                Map<TopicPartition, List<Long>> seenB = new HashMap<>();
                pollRecords(List.of(a, b), List.of(seenA, seenB), PARTITIONS * RECORDS_PER_PARTITION);
                assertEquals(ownedByA, seenA.keySet(), "A read exactly its partitions");
                assertEquals(ownedByB, seenB.keySet(), "B read exactly its partitions");

                a.commitSync();
                AtomicReference<Map<TopicPartition, OffsetAndMetadata>> asyncCommitted = new AtomicReference<>();
                AtomicReference<Exception> asyncError = new AtomicReference<>();
                b.commitAsync((offsets, exception) -> {
                    asyncError.set(exception);
                    asyncCommitted.set(offsets);
                });
                pollUntil("B's commitAsync callback ran", List.of(a, b), () -> asyncCommitted.get() != null);
                assertNull(asyncError.get(), "commitAsync failed: " + asyncError.get());
                Map<TopicPartition, OffsetAndMetadata> committed =
                        get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
                all.forEach(tp -> assertEquals(RECORDS_PER_PARTITION, committed.get(tp).offset(), tp + " committed"));
            } // B leaves the group.

            pollUntil("A owns all partitions after B left", List.of(a), () -> a.assignment().equals(all));
            produce(producer, topic, RECORDS_PER_PARTITION, 2);
            Map<TopicPartition, List<Long>> seen = new HashMap<>();
            pollRecords(List.of(a), List.of(seen), PARTITIONS * 2);
            seen.forEach((tp, offsets) -> assertEquals(List.of(10L, 11L), offsets,
                    tp + ": A resumed at the committed offset"));
        }
    }

    @Test
    void theRangeAssignorIsChosenByTheMember() {
        String topic = Corelog.unique("kip848-range");
        String group = Corelog.unique("kip848-range");
        Corelog.createTopic(topic, PARTITIONS);
        try (Admin admin = Corelog.admin();
                KafkaConsumer<byte[], byte[]> a = Corelog.consumer(Corelog.unique("kip848-range-a"), group,
                        consumerProtocol("range"));
                KafkaConsumer<byte[], byte[]> b = Corelog.consumer(Corelog.unique("kip848-range-b"), group,
                        consumerProtocol("range"))) {
            a.subscribe(List.of(topic));
            b.subscribe(List.of(topic));
            pollUntil("A and B own two partitions each", List.of(a, b),
                    () -> a.assignment().size() == 2 && b.assignment().size() == 2);
            // Range: each member a contiguous block of partitions.
            for (KafkaConsumer<byte[], byte[]> member : List.of(a, b)) {
                List<Integer> owned = member.assignment().stream().map(TopicPartition::partition).sorted()
                        .collect(Collectors.toList());
                assertEquals(owned.get(0) + 1, owned.get(1), "a range assignment is contiguous: " + owned);
            }
            ConsumerGroupDescription described = get(admin.describeConsumerGroups(List.of(group)).all()).get(group);
            assertEquals("range", described.partitionAssignor());
            assertEquals(GroupType.CONSUMER, described.type());
        }
    }

    /**
     * {@code subscribe(SubscriptionPattern)}: the broker resolves the RE2 pattern against whole
     * topic names, leaves other topics out, and assigns a matching topic created later (Kafka
     * re-resolves patterns at most every 10 s after a metadata change).
     *
     * <p>With a {@code SubscriptionPattern} the Java client knows its partitions by topic id
     * only, so this also drives OffsetFetch v10 and OffsetCommit v10 (topic ids).
     */
    @Test
    void aPatternSubscriptionIsResolvedOnTheBrokerAndPicksUpNewTopics() {
        String prefix = Corelog.unique("kip848-re");
        String a = prefix + "-a";
        String b = prefix + "-b";
        String c = prefix + "-c";
        String other = Corelog.unique("kip848-other");
        for (String topic : List.of(a, b, other)) {
            Corelog.createTopic(topic, PARTITIONS);
        }
        String group = Corelog.unique("kip848-re");
        try (KafkaProducer<byte[], byte[]> producer = Corelog.producer();
                KafkaConsumer<byte[], byte[]> consumer = Corelog.consumer(Corelog.unique("kip848-re"), group,
                        consumerProtocol("uniform"))) {
            consumer.subscribe(new SubscriptionPattern(prefix + "-.*"));
            Set<TopicPartition> matched = union(partitions(a), partitions(b));
            pollUntil("the two matching topics are assigned", List.of(consumer),
                    () -> consumer.assignment().equals(matched));
            Corelog.createTopic(c, PARTITIONS);
            Set<TopicPartition> all = union(matched, partitions(c));
            pollUntil("the matching topic created later is assigned too", List.of(consumer),
                    () -> consumer.assignment().equals(all));
            for (String topic : List.of(a, b, c, other)) {
                produce(producer, topic, 0, 5);
            }
            Set<String> topics = new HashSet<>();
            Corelog.pollExactly(consumer, 3 * PARTITIONS * 5).forEach(record -> topics.add(record.topic()));
            assertEquals(Set.of(a, b, c), topics, "records only from the topics the pattern matches");
            Corelog.assertNothingMore(consumer, Duration.ofSeconds(1));
        }
    }

    private static Set<TopicPartition> partitions(String topic) {
        return IntStream.range(0, PARTITIONS).mapToObj(p -> new TopicPartition(topic, p)).collect(Collectors.toSet());
    }

    private static Set<TopicPartition> union(Set<TopicPartition> a, Set<TopicPartition> b) {
        Set<TopicPartition> union = new HashSet<>(a);
        union.addAll(b);
        return union;
    }

    private static void produce(KafkaProducer<byte[], byte[]> producer, String topic, int first, int count) {
        for (int p = 0; p < PARTITIONS; p++) {
            for (int n = first; n < first + count; n++) {
                producer.send(new ProducerRecord<>(topic, p, bytes("key-" + n), bytes(p + "-" + n)));
            }
        }
        producer.flush();
    }

    /** Polls every consumer in turn (they share this thread) until {@code done} holds. */
    private static void pollUntil(String what, List<KafkaConsumer<byte[], byte[]>> consumers, BooleanSupplier done) {
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
                    offsets.add(record.offset());
                    count++;
                }
            }
        }
        assertEquals(total, count, "records beyond the expected ones arrived");
    }
}
