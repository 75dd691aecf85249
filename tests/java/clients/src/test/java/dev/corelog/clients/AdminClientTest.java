package dev.corelog.clients;

import static dev.corelog.clients.Corelog.bytes;
import static dev.corelog.clients.Corelog.failure;
import static dev.corelog.clients.Corelog.get;
import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ConsumerGroupListing;
import org.apache.kafka.clients.admin.CreateTopicsResult;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.DescribeConfigsOptions;
import org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.admin.TopicListing;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.GroupType;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.GroupNotEmptyException;
import org.apache.kafka.common.errors.InvalidConfigurationException;
import org.apache.kafka.common.errors.InvalidPartitionsException;
import org.apache.kafka.common.errors.OffsetOutOfRangeException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownMemberIdException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;

/**
 * The Admin client: topics (create with configs, describe, list, delete), the cluster,
 * ListOffsets (earliest, latest, max timestamp, by timestamp), topic configs (describe,
 * incremental alter), CreatePartitions, DeleteRecords, and consumer groups (list, describe,
 * list offsets, alter offsets, delete), each checked against what Kafka answers.
 */
@Order(4)
class AdminClientTest {
    private static Admin admin;

    @BeforeAll
    static void createAdmin() {
        admin = Corelog.admin();
    }

    @AfterAll
    static void closeAdmin() {
        admin.close();
    }

    @Test
    void describeClusterReportsTheBrokerWeBootstrappedFrom() {
        DescribeClusterResult cluster = admin.describeCluster();
        String clusterId = get(cluster.clusterId());
        assertNotNull(clusterId);
        assertFalse(clusterId.isBlank(), "cluster id");
        Collection<Node> nodes = get(cluster.nodes());
        assertFalse(nodes.isEmpty(), "a cluster has brokers");
        int bootstrapPort = Integer.parseInt(Corelog.bootstrap().split(",")[0].replaceAll(".*:", ""));
        assertTrue(nodes.stream().anyMatch(node -> node.port() == bootstrapPort),
                "one broker is the one at " + Corelog.bootstrap() + ": " + nodes);
        Node controller = get(cluster.controller());
        assertNotNull(controller, "a controller (in KRaft mode, some live broker) is reported");
        assertTrue(nodes.stream().anyMatch(node -> node.id() == controller.id()),
                "the controller " + controller + " is one of the brokers " + nodes);
    }

    @Test
    void createDescribeListAndDeleteTopics() {
        String withConfigs = Corelog.unique("admin-topic-configs");
        String plain = Corelog.unique("admin-topic-plain");
        Map<String, String> configs = Map.of("retention.ms", "3600000", "max.message.bytes", "200000",
                "cleanup.policy", "delete");
        CreateTopicsResult created = admin.createTopics(List.of(
                new NewTopic(withConfigs, 3, (short) 1).configs(configs),
                new NewTopic(plain, 2, (short) 1)));
        get(created.all());
        assertEquals(3, get(created.numPartitions(withConfigs)));
        assertEquals(1, get(created.replicationFactor(withConfigs)));
        assertNotEquals(Uuid.ZERO_UUID, get(created.topicId(withConfigs)));
        // CreateTopics v5+ answers with the new topic's configs.
        Config createdConfig = get(created.config(withConfigs));
        configs.forEach((name, value) -> assertEquals(value, createdConfig.get(name).value(), name));

        Throwable exists = failure(admin.createTopics(List.of(new NewTopic(plain, 1, (short) 1))).all());
        assertInstanceOf(TopicExistsException.class, exists);

        Corelog.waitForLeaders(admin, withConfigs, 3);
        Corelog.waitForLeaders(admin, plain, 2);
        Map<String, TopicDescription> described = get(admin.describeTopics(List.of(withConfigs, plain)).allTopicNames());
        assertEquals(3, described.get(withConfigs).partitions().size());
        assertEquals(2, described.get(plain).partitions().size());
        assertEquals(get(created.topicId(withConfigs)), described.get(withConfigs).topicId());
        for (TopicDescription description : described.values()) {
            assertFalse(description.isInternal());
            for (TopicPartitionInfo partition : description.partitions()) {
                assertNotNull(partition.leader(), description.name() + " partition " + partition.partition() + " leader");
                assertEquals(List.of(partition.leader()), partition.replicas());
                assertEquals(List.of(partition.leader()), partition.isr());
            }
        }

        Map<String, TopicListing> listed = get(admin.listTopics().namesToListings());
        assertTrue(listed.keySet().containsAll(List.of(withConfigs, plain)), "listTopics: " + listed.keySet());
        assertFalse(listed.get(plain).isInternal());
        assertEquals(described.get(plain).topicId(), listed.get(plain).topicId());
        assertTrue(listed.values().stream().noneMatch(TopicListing::isInternal), "internal topics are not listed by default");

        get(admin.deleteTopics(List.of(withConfigs, plain)).all());
        Corelog.waitUntil("deleted topics leave listTopics",
                () -> !get(admin.listTopics().names()).contains(withConfigs) && !get(admin.listTopics().names()).contains(plain));
        Throwable gone = failure(admin.describeTopics(List.of(plain)).allTopicNames());
        assertInstanceOf(UnknownTopicOrPartitionException.class, gone);
        assertInstanceOf(UnknownTopicOrPartitionException.class, failure(admin.deleteTopics(List.of(plain)).all()));
    }

    @Test
    void describeAndIncrementallyAlterTopicConfigs() {
        String topic = Corelog.unique("admin-configs");
        Corelog.createTopic(admin, topic, 1, Map.of("retention.ms", "3600000", "max.message.bytes", "200000"));
        ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);

        Config before = get(admin.describeConfigs(List.of(resource)).all()).get(resource);
        assertDynamic(before, "retention.ms", "3600000");
        assertDynamic(before, "max.message.bytes", "200000");
        ConfigEntry segmentBytes = before.get("segment.bytes");
        assertNotNull(segmentBytes, "every topic config is described, set or not");
        assertNotEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, segmentBytes.source());
        ConfigEntry cleanup = before.get("cleanup.policy");
        assertNotNull(cleanup);
        assertEquals("delete", cleanup.value());

        get(admin.incrementalAlterConfigs(Map.of(resource, List.of(
                new AlterConfigOp(new ConfigEntry("retention.ms", "7200000"), AlterConfigOp.OpType.SET),
                new AlterConfigOp(new ConfigEntry("max.message.bytes", null), AlterConfigOp.OpType.DELETE),
                new AlterConfigOp(new ConfigEntry("segment.ms", "600000"), AlterConfigOp.OpType.SET)))).all());

        Config after = get(admin.describeConfigs(List.of(resource)).all()).get(resource);
        assertDynamic(after, "retention.ms", "7200000");
        assertDynamic(after, "segment.ms", "600000");
        ConfigEntry maxMessageBytes = after.get("max.message.bytes");
        assertNotEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, maxMessageBytes.source(),
                "a deleted override falls back to the broker default");
        assertNotEquals("200000", maxMessageBytes.value());

        // A value of the wrong type is refused as INVALID_CONFIG and changes nothing.
        Throwable invalid = failure(admin.incrementalAlterConfigs(Map.of(resource, List.of(
                new AlterConfigOp(new ConfigEntry("retention.ms", "soon"), AlterConfigOp.OpType.SET)))).all());
        assertInstanceOf(InvalidConfigurationException.class, invalid);
        assertDynamic(get(admin.describeConfigs(List.of(resource)).all()).get(resource), "retention.ms", "7200000");

        // DescribeConfigs v3+ types every entry, and with include_synonyms lists where each
        // value comes from, most specific first (KIP-226).
        Config detailed = get(admin.describeConfigs(List.of(resource),
                new DescribeConfigsOptions().includeSynonyms(true)).all()).get(resource);
        List<ConfigEntry.ConfigSynonym> retentionSynonyms = detailed.get("retention.ms").synonyms();
        assertAll("DescribeConfigs types and synonyms",
                () -> assertEquals(ConfigEntry.ConfigType.LONG, detailed.get("retention.ms").type(), "retention.ms type"),
                () -> assertEquals(ConfigEntry.ConfigType.INT, detailed.get("segment.bytes").type(), "segment.bytes type"),
                () -> assertEquals(ConfigEntry.ConfigType.LIST, detailed.get("cleanup.policy").type(), "cleanup.policy type"),
                () -> assertEquals("retention.ms:DYNAMIC_TOPIC_CONFIG", retentionSynonyms.stream()
                        .map(synonym -> synonym.name() + ":" + synonym.source()).findFirst().orElse("none"),
                        "retention.ms's first synonym"),
                () -> assertTrue(detailed.get("segment.bytes").synonyms().stream()
                        .anyMatch(synonym -> synonym.name().equals("log.segment.bytes")),
                        "segment.bytes falls back to the broker's log.segment.bytes: "
                                + detailed.get("segment.bytes").synonyms()));

        get(admin.deleteTopics(List.of(topic)).all());
    }

    @Test
    void createPartitionsGrowsATopicAndNeverShrinksIt() throws Exception {
        String topic = Corelog.unique("admin-grow");
        Corelog.createTopic(admin, topic, 1, Map.of());
        get(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(3))).all());
        Corelog.waitUntil("the topic has 3 partitions", () ->
                get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic).partitions().size() == 3);

        Throwable shrink = failure(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(2))).all());
        assertInstanceOf(InvalidPartitionsException.class, shrink);

        try (KafkaProducer<byte[], byte[]> producer = Corelog.producer()) {
            RecordMetadata metadata = producer.send(new ProducerRecord<>(topic, 2, null, bytes("new partition"))).get();
            assertEquals(2, metadata.partition());
            assertEquals(0, metadata.offset());
        }
        get(admin.deleteTopics(List.of(topic)).all());
    }

    @Test
    void listOffsetsAndDeleteRecords() throws Exception {
        String topic = Corelog.unique("admin-offsets");
        Corelog.createTopic(admin, topic, 1, Map.of());
        TopicPartition partition = new TopicPartition(topic, 0);
        long base = (System.currentTimeMillis() - 3_600_000L) / 1000 * 1000;
        try (KafkaProducer<byte[], byte[]> producer = Corelog.producer()) {
            for (int i = 0; i < 10; i++) {
                // Record 6 carries the largest timestamp, though it is not the last.
                long timestamp = i == 6 ? base + 100_000 : base + i * 1_000L;
                producer.send(new ProducerRecord<>(topic, 0, timestamp, null, bytes("r" + i)));
                if (i % 3 == 0) {
                    producer.flush();
                }
            }
            producer.flush();
        }

        assertOffset(partition, "earliest", OffsetSpec.earliest(), 0);
        assertOffset(partition, "latest", OffsetSpec.latest(), 10);
        ListOffsetsResultInfo max = assertOffset(partition, "max timestamp", OffsetSpec.maxTimestamp(), 6);
        assertEquals(base + 100_000, max.timestamp());
        ListOffsetsResultInfo byTime =
                assertOffset(partition, "forTimestamp(base + 2.5 s)", OffsetSpec.forTimestamp(base + 2_500), 3);
        assertEquals(base + 3_000, byTime.timestamp());

        long low = get(admin.deleteRecords(Map.of(partition, RecordsToDelete.beforeOffset(4))).lowWatermarks()
                .get(partition)).lowWatermark();
        assertEquals(4, low);
        assertOffset(partition, "earliest after deleteRecords(before 4)", OffsetSpec.earliest(), 4);
        assertOffset(partition, "latest after deleteRecords", OffsetSpec.latest(), 10);

        Throwable pastEnd = failure(admin.deleteRecords(Map.of(partition, RecordsToDelete.beforeOffset(11))).all());
        assertInstanceOf(OffsetOutOfRangeException.class, pastEnd);

        try (KafkaConsumer<byte[], byte[]> consumer = Corelog.consumer(Corelog.unique("after-delete"), null, Map.of())) {
            consumer.assign(List.of(partition));
            consumer.seekToBeginning(List.of(partition));
            List<ConsumerRecord<byte[], byte[]>> records = Corelog.pollExactly(consumer, 6);
            assertEquals(4, records.get(0).offset());
            assertEquals("r4", Corelog.text(records.get(0).value()));
            assertEquals(Map.of(partition, 4L), consumer.beginningOffsets(List.of(partition)));
        }
        // Lookups by time never answer an offset below the log start offset (Kafka searches
        // from it: UnifiedLog.fetchOffsetByTimestamp passes logStartOffset as the start).
        ListOffsetsResultInfo afterDelete = assertOffset(partition,
                "forTimestamp(base + 1 s) after deleteRecords(before 4)",
                OffsetSpec.forTimestamp(base + 1_000), 4);
        assertEquals(base + 4_000, afterDelete.timestamp());
        try (KafkaConsumer<byte[], byte[]> consumer = Corelog.consumer(Corelog.unique("by-time"), null, Map.of())) {
            var found = consumer.offsetsForTimes(Map.of(partition, base + 1_000)).get(partition);
            assertNotNull(found);
            assertEquals(4, found.offset(), "consumer offsetsForTimes after deleteRecords");
        }
        get(admin.deleteTopics(List.of(topic)).all());
    }

    @Test
    @SuppressWarnings("deprecation") // listConsumerGroups: still the documented call for consumer groups.
    void consumerGroupsCanBeListedDescribedAlteredAndDeleted() throws Exception {
        String topic = Corelog.unique("admin-groups");
        Corelog.createTopic(admin, topic, 2, Map.of());
        TopicPartition p0 = new TopicPartition(topic, 0);
        TopicPartition p1 = new TopicPartition(topic, 1);
        try (KafkaProducer<byte[], byte[]> producer = Corelog.producer()) {
            for (int i = 0; i < 10; i++) {
                producer.send(new ProducerRecord<>(topic, i % 2, null, bytes("g" + i)));
            }
            producer.flush();
        }

        // A group that only stores offsets (no member ever joined): Kafka keeps it Empty.
        String offsetsOnly = Corelog.unique("admin-offsets-only");
        try (KafkaConsumer<byte[], byte[]> committer = Corelog.consumer(Corelog.unique("committer"), offsetsOnly, Map.of())) {
            committer.assign(List.of(p0, p1));
            committer.commitSync(Map.of(p0, new OffsetAndMetadata(3, "meta-0"), p1, new OffsetAndMetadata(5)));
        }
        // A group with a live member.
        String active = Corelog.unique("admin-active");
        try (KafkaConsumer<byte[], byte[]> member = Corelog.consumer(Corelog.unique("member"), active,
                Map.of(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic"))) {
            member.subscribe(List.of(topic));
            Corelog.waitUntil("the member is assigned both partitions", () -> {
                member.poll(Corelog.POLL);
                return member.assignment().size() == 2;
            });
            member.commitSync(Map.of(p0, new OffsetAndMetadata(1)));

            Map<String, ConsumerGroupListing> listed = get(admin.listConsumerGroups().all()).stream()
                    .collect(Collectors.toMap(ConsumerGroupListing::groupId, l -> l));
            assertTrue(listed.keySet().containsAll(Set.of(offsetsOnly, active)), "listConsumerGroups: " + listed.keySet());
            assertEquals(GroupState.STABLE, listed.get(active).groupState().orElseThrow());
            assertEquals(GroupState.EMPTY, listed.get(offsetsOnly).groupState().orElseThrow());
            assertFalse(listed.get(active).isSimpleConsumerGroup());

            Map<String, ConsumerGroupDescription> described =
                    get(admin.describeConsumerGroups(List.of(offsetsOnly, active)).all());
            ConsumerGroupDescription activeGroup = described.get(active);
            assertEquals(GroupState.STABLE, activeGroup.groupState());
            assertEquals(GroupType.CLASSIC, activeGroup.type());
            assertEquals("range", activeGroup.partitionAssignor(), "the Java consumer's first default assignor");
            assertEquals(1, activeGroup.members().size());
            MemberDescription memberDescription = activeGroup.members().iterator().next();
            assertFalse(memberDescription.consumerId().isBlank());
            assertEquals(Set.of(p0, p1), memberDescription.assignment().topicPartitions());
            assertNotNull(activeGroup.coordinator());
            ConsumerGroupDescription emptyGroup = described.get(offsetsOnly);
            assertEquals(GroupState.EMPTY, emptyGroup.groupState());
            assertTrue(emptyGroup.members().isEmpty());

            Map<TopicPartition, OffsetAndMetadata> offsets =
                    get(admin.listConsumerGroupOffsets(offsetsOnly).partitionsToOffsetAndMetadata());
            assertEquals(Set.of(p0, p1), offsets.keySet());
            assertEquals(3, offsets.get(p0).offset());
            assertEquals("meta-0", offsets.get(p0).metadata());
            assertEquals(5, offsets.get(p1).offset());

            // Offsets of an empty group can be changed; those of a group with members cannot.
            get(admin.alterConsumerGroupOffsets(offsetsOnly, Map.of(p0, new OffsetAndMetadata(7))).all());
            offsets = get(admin.listConsumerGroupOffsets(offsetsOnly).partitionsToOffsetAndMetadata());
            assertEquals(7, offsets.get(p0).offset());
            assertEquals(5, offsets.get(p1).offset());
            Throwable busy = failure(admin.alterConsumerGroupOffsets(active, Map.of(p0, new OffsetAndMetadata(2))).all());
            assertInstanceOf(UnknownMemberIdException.class, busy);
            assertEquals(1, get(admin.listConsumerGroupOffsets(active).partitionsToOffsetAndMetadata()).get(p0).offset());

            Throwable notEmpty = failure(admin.deleteConsumerGroups(List.of(active)).all());
            assertInstanceOf(GroupNotEmptyException.class, notEmpty);
        } // The member leaves: the active group becomes empty.

        get(admin.deleteConsumerGroups(List.of(offsetsOnly, active)).all());
        Set<String> remaining = get(admin.listConsumerGroups().all()).stream()
                .map(ConsumerGroupListing::groupId).collect(Collectors.toSet());
        assertFalse(remaining.contains(offsetsOnly), "deleted group " + offsetsOnly + " is still listed");
        assertFalse(remaining.contains(active), "deleted group " + active + " is still listed");
        assertTrue(get(admin.listConsumerGroupOffsets(offsetsOnly).partitionsToOffsetAndMetadata()).isEmpty(),
                "a deleted group has no offsets");
        get(admin.deleteTopics(List.of(topic)).all());
    }

    private static void assertDynamic(Config config, String name, String value) {
        ConfigEntry entry = config.get(name);
        assertNotNull(entry, name + " is described");
        assertEquals(value, entry.value(), name);
        assertEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, entry.source(), name + " source");
        assertFalse(entry.isDefault(), name + " is not a default");
    }

    /** ListOffsets for one partition; {@code what} names the query in the failure message. */
    private static ListOffsetsResultInfo assertOffset(TopicPartition partition, String what, OffsetSpec spec, long offset) {
        ListOffsetsResultInfo info = get(admin.listOffsets(Map.of(partition, spec)).partitionResult(partition));
        assertEquals(offset, info.offset(), "listOffsets " + what + " offset");
        return info;
    }
}
