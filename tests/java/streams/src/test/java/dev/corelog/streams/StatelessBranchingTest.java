package dev.corelog.streams;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.junit.jupiter.api.Test;

/**
 * A stateless topology (filter, mapValues, split into branches) under exactly_once_v2: the
 * orders a plain producer wrote come out routed to the "large" and "small" topics, each exactly
 * once, the invalid and free ones nowhere, as a {@code read_committed} consumer sees them.
 */
class StatelessBranchingTest {
    private static final int ORDERS = 300;

    @Test
    void ordersAreFilteredMappedAndSplitIntoTopicsExactlyOnce() {
        Orders.Topics topics = Orders.Topics.unique("stateless");
        String applicationId = Corelog.unique("stateless-app");
        try (Admin admin = Corelog.admin()) {
            Corelog.createTopics(admin, Orders.PARTITIONS, topics.all());
        }
        List<KeyValue<String, String>> orders = Orders.batch("order", ORDERS);
        Orders.produce(topics, orders);
        Map<String, List<String>> expected = Orders.expected(topics, orders);
        // The routing itself, spelled out once: the boundaries land where they should.
        assertTrue(expected.get(topics.large()).contains("order-0004=10000"), expected.toString());
        assertTrue(expected.get(topics.small()).contains("order-0005=9999"), expected.toString());
        int invalid = ORDERS - Orders.total(expected);
        assertTrue(invalid >= ORDERS * 4 / 10, "a good share of the orders are dropped: " + invalid);

        KafkaStreams streams = new KafkaStreams(Orders.topology(topics, 0),
                Corelog.streamsConfig(applicationId, "only"));
        try (OutputReader committed = new OutputReader("read_committed", topics.outputs())) {
            Corelog.startAndAwaitRunning(streams);
            committed.awaitCount(Orders.total(expected));
            // Several commit intervals: a duplicate or a stray record would show up by now.
            committed.drain(Duration.ofSeconds(2));
            assertEquals(expected.get(topics.large()), committed.lines(topics.large()), "large orders");
            assertEquals(expected.get(topics.small()), committed.lines(topics.small()), "small orders");
        } finally {
            streams.close(Corelog.WAIT);
        }

        // Each output partition that took records also holds the commit markers of the
        // transactions that wrote them, so its end offset lies past its records.
        try (Admin admin = Corelog.admin()) {
            for (String topic : topics.outputs()) {
                long records = expected.get(topic).size();
                long endOffsets = Corelog.endOffsets(admin, topic, Orders.PARTITIONS).values().stream().mapToLong(Long::longValue).sum();
                assertTrue(endOffsets > records, topic + ": end offsets " + endOffsets
                        + " must count the transaction markers after " + records + " records");
            }
        }
    }
}
