package dev.corelog.streams;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Repartitioned;
import org.junit.jupiter.api.Test;

/**
 * A stateless topology that changes the key, and so goes through an internal repartition topic
 * that Streams creates itself (CreateTopics with its own configs: cleanup.policy=delete,
 * retention.ms=-1, segment.bytes, message.timestamp.type), writes and reads back inside its
 * transactions, and purges with DeleteRecords once the records are committed. No state store:
 * corelog can run it. Every valid order comes out once, under its new key.
 */
class RepartitionTopicTest {
    private static final int ORDERS = 200;
    private static final int REPARTITION_PARTITIONS = 2;

    @Test
    void rekeyedOrdersGoThroughARepartitionTopicThatStreamsCreatesAndPurges() {
        String orders = Corelog.unique("rekey-orders");
        String bySize = Corelog.unique("rekey-by-size");
        String applicationId = Corelog.unique("rekey-app");
        String repartition = applicationId + "-by-size-repartition";
        try (Admin admin = Corelog.admin()) {
            Corelog.createTopics(admin, Orders.PARTITIONS, orders, bySize);
        }
        List<KeyValue<String, String>> batch = Orders.batch("order", ORDERS);
        Orders.produce(new Orders.Topics(orders, bySize, bySize), batch);
        List<String> expected = new ArrayList<>();
        for (KeyValue<String, String> order : batch) {
            OptionalLong cents = Orders.cents(order.value);
            if (cents.isPresent()) {
                expected.add(sizeClass(cents.getAsLong()) + "=" + order.key + ":" + cents.getAsLong());
            }
        }
        expected.sort(null);

        Properties config = Corelog.streamsConfig(applicationId, "only");
        // Purge the repartition topic at every commit rather than every 30 s (Kafka's default).
        config.put(StreamsConfig.REPARTITION_PURGE_INTERVAL_MS_CONFIG, Corelog.COMMIT_INTERVAL_MS);
        KafkaStreams streams = new KafkaStreams(topology(orders, bySize), config);
        try (OutputReader committed = new OutputReader("read_committed", bySize);
                Admin admin = Corelog.admin()) {
            Corelog.startAndAwaitRunning(streams);
            committed.awaitCount(expected.size());
            committed.drain(Duration.ofSeconds(2));
            assertEquals(expected, committed.lines(bySize), "orders by size class");

            Map<String, String> configs = Corelog.topicConfigs(admin, repartition);
            assertEquals("delete", configs.get("cleanup.policy"), "the repartition topic's configs: " + configs);
            assertEquals("-1", configs.get("retention.ms"), "the repartition topic's configs: " + configs);
            // Streams deletes what it consumed and committed from the repartition topic.
            Corelog.waitUntil("Streams purged the repartition topic " + repartition, () -> {
                long purged = 0;
                for (ListOffsetsResultInfo earliest : earliestOffsets(admin, repartition).values()) {
                    purged += earliest.offset();
                }
                return purged >= expected.size();
            });
        } finally {
            streams.close(Corelog.WAIT);
        }
    }

    /** Valid orders re-keyed by their size class, through a named repartition topic. */
    private static Topology topology(String orders, String bySize) {
        StreamsBuilder builder = new StreamsBuilder();
        builder.<String, String>stream(orders)
                .filter((id, amount) -> Orders.cents(amount).isPresent())
                .map((id, amount) -> {
                    long cents = Orders.cents(amount).getAsLong();
                    return KeyValue.pair(sizeClass(cents), id + ":" + cents);
                })
                .repartition(Repartitioned.<String, String>as("by-size").withNumberOfPartitions(REPARTITION_PARTITIONS))
                .to(bySize);
        return builder.build();
    }

    private static String sizeClass(long cents) {
        if (cents >= Orders.LARGE_CENTS) {
            return "large";
        }
        return cents > 0 ? "small" : "free";
    }

    private static Map<TopicPartition, ListOffsetsResultInfo> earliestOffsets(Admin admin, String topic) {
        Map<TopicPartition, OffsetSpec> request = new HashMap<>();
        for (int partition = 0; partition < REPARTITION_PARTITIONS; partition++) {
            request.put(new TopicPartition(topic, partition), OffsetSpec.earliest());
        }
        return Corelog.get(admin.listOffsets(request).all());
    }
}
