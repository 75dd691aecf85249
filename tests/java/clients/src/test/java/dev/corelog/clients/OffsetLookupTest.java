package dev.corelog.clients;

import static dev.corelog.clients.Corelog.bytes;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;

/**
 * Consumer-side offset lookups on records whose timestamps the test chose
 * ({@code ProducerRecord} timestamps, CreateTime): {@code beginningOffsets}, {@code endOffsets},
 * {@code offsetsForTimes} (the earliest offset whose timestamp is at or after the target, null
 * past the last record or on an empty partition), and {@code seek} / {@code seekToBeginning} /
 * {@code seekToEnd} with {@code position}.
 */
@Order(3)
class OffsetLookupTest {
    private static final int RECORDS = 10;
    private static final long STEP_MS = 1_000;

    @Test
    void seekOffsetsForTimesAndBoundaryOffsetsFollowRecordTimestamps() {
        String topic = Corelog.unique("offsets");
        Corelog.createTopic(topic, 3);
        TopicPartition timed = new TopicPartition(topic, 0);
        TopicPartition empty = new TopicPartition(topic, 1);
        TopicPartition backwards = new TopicPartition(topic, 2);
        // Whole seconds an hour ago: inside any retention, and well before "now".
        long base = (System.currentTimeMillis() - 3_600_000L) / 1000 * 1000;

        try (KafkaProducer<byte[], byte[]> producer = Corelog.producer()) {
            for (int i = 0; i < RECORDS; i++) {
                producer.send(new ProducerRecord<>(topic, 0, base + i * STEP_MS, bytes("k" + i), bytes("v" + i)));
                // One batch per record for half of them, so lookups cross batch boundaries.
                if (i % 2 == 0) {
                    producer.flush();
                }
            }
            // Timestamps that go backwards, one batch each: 5 s, 1 s, 3 s after base.
            for (long offsetMs : new long[] {5_000, 1_000, 3_000}) {
                producer.send(new ProducerRecord<>(topic, 2, base + offsetMs, null, bytes("t" + offsetMs)));
                producer.flush();
            }
        }

        try (KafkaConsumer<byte[], byte[]> consumer = Corelog.consumer(Corelog.unique("lookup"), null, Map.of())) {
            List<TopicPartition> partitions = List.of(timed, empty, backwards);
            assertEquals(Map.of(timed, 0L, empty, 0L, backwards, 0L), consumer.beginningOffsets(partitions));
            assertEquals(Map.of(timed, (long) RECORDS, empty, 0L, backwards, 3L), consumer.endOffsets(partitions));

            assertLookup(consumer, timed, base - 60_000, 0, base);
            assertLookup(consumer, timed, base, 0, base);
            assertLookup(consumer, timed, base + 2_500, 3, base + 3_000);
            assertLookup(consumer, timed, base + 4_000, 4, base + 4_000);
            assertLookup(consumer, timed, base + 9_000, 9, base + 9_000);
            assertLookup(consumer, timed, base + 9_001, -1, -1);
            assertLookup(consumer, empty, base, -1, -1);
            // The first record at or after the target in offset order, not the closest time.
            assertLookup(consumer, backwards, base + 2_000, 0, base + 5_000);
            assertLookup(consumer, backwards, base + 5_000, 0, base + 5_000);
            assertLookup(consumer, backwards, base + 5_001, -1, -1);

            consumer.assign(List.of(timed));
            consumer.seek(timed, 5);
            assertEquals(5, consumer.position(timed));
            List<ConsumerRecord<byte[], byte[]>> tail = Corelog.pollExactly(consumer, RECORDS - 5);
            for (int i = 0; i < tail.size(); i++) {
                ConsumerRecord<byte[], byte[]> record = tail.get(i);
                assertEquals(5 + i, record.offset());
                assertEquals(base + (5 + i) * STEP_MS, record.timestamp());
                assertEquals("v" + (5 + i), Corelog.text(record.value()));
            }
            assertEquals(RECORDS, consumer.position(timed));

            consumer.seekToBeginning(List.of(timed));
            assertEquals(0, consumer.position(timed));
            consumer.seekToEnd(List.of(timed));
            assertEquals(RECORDS, consumer.position(timed));

            // Seek to what offsetsForTimes found, and read from there.
            OffsetAndTimestamp found = consumer.offsetsForTimes(Map.of(timed, base + 6_500)).get(timed);
            assertNotNull(found);
            consumer.seek(timed, found.offset());
            ConsumerRecord<byte[], byte[]> first = Corelog.pollExactly(consumer, RECORDS - 7).get(0);
            assertEquals(7, first.offset());
            assertEquals(base + 7_000, first.timestamp());
            Corelog.assertNothingMore(consumer, java.time.Duration.ofMillis(300));
        }
    }

    /** offsetsForTimes for one partition: {@code offset == -1} means Kafka answers null. */
    private static void assertLookup(KafkaConsumer<byte[], byte[]> consumer, TopicPartition partition, long target,
            long offset, long timestamp) {
        Map<TopicPartition, Long> query = new HashMap<>();
        query.put(partition, target);
        Map<TopicPartition, OffsetAndTimestamp> answer = consumer.offsetsForTimes(query);
        String what = "offsetsForTimes(" + partition + ", " + target + ")";
        if (offset < 0) {
            assertNull(answer.get(partition), what + " past the last record is null");
        } else {
            OffsetAndTimestamp found = answer.get(partition);
            assertNotNull(found, what);
            assertEquals(offset, found.offset(), what + " offset");
            assertEquals(timestamp, found.timestamp(), what + " timestamp");
        }
    }
}
