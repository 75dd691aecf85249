package dev.corelog.clients;

import static dev.corelog.clients.Corelog.bytes;
import static dev.corelog.clients.Corelog.text;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Future;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.record.TimestampType;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The Java producer with its defaults (acks=all, enable.idempotence=true, so InitProducerId
 * and sequence numbers) and every compression codec; what it wrote is read back with
 * {@code assign} + {@code seekToBeginning} and compared record by record: offsets, keys
 * (including null), values (including a null tombstone), headers (including a null header
 * value and records without headers) and timestamps.
 */
@Order(1)
class IdempotentProducerTest {
    private static final int RECORDS = 300;

    @ParameterizedTest(name = "compression.type={0}")
    @ValueSource(strings = {"none", "gzip", "snappy", "lz4", "zstd"})
    void idempotentProducerRoundTripsRecordsWithEveryCodec(String codec) throws Exception {
        String topic = Corelog.unique("idempotent-" + codec);
        Corelog.createTopic(topic, 1);
        TopicPartition partition = new TopicPartition(topic, 0);

        String producerId = Corelog.unique("producer-" + codec);
        List<ProducerRecord<byte[], byte[]>> sent = new ArrayList<>();
        List<RecordMetadata> acked = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer = Corelog.producer(producerId,
                Map.of(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec, ProducerConfig.LINGER_MS_CONFIG, 5))) {
            List<Future<RecordMetadata>> futures = new ArrayList<>();
            for (int i = 0; i < RECORDS; i++) {
                ProducerRecord<byte[], byte[]> record = record(topic, i);
                sent.add(record);
                futures.add(producer.send(record));
                // Several flushes, so the partition holds several (compressed) batches.
                if (i % 100 == 99) {
                    producer.flush();
                }
            }
            producer.flush();
            for (Future<RecordMetadata> future : futures) {
                acked.add(future.get());
            }
        }

        for (int i = 0; i < RECORDS; i++) {
            RecordMetadata metadata = acked.get(i);
            assertEquals(0, metadata.partition(), "record " + i + " partition");
            assertEquals(i, metadata.offset(), "record " + i + " was acked at the wrong offset");
        }

        List<ConsumerRecord<byte[], byte[]>> received;
        try (KafkaConsumer<byte[], byte[]> consumer = Corelog.consumer(Corelog.unique("reader-" + codec), null, Map.of())) {
            consumer.assign(List.of(partition));
            consumer.seekToBeginning(List.of(partition));
            received = Corelog.pollExactly(consumer, RECORDS);
            assertEquals(Map.of(partition, (long) RECORDS), consumer.endOffsets(List.of(partition)));
            Corelog.assertNothingMore(consumer, java.time.Duration.ofMillis(300));
        }

        for (int i = 0; i < RECORDS; i++) {
            ProducerRecord<byte[], byte[]> expected = sent.get(i);
            ConsumerRecord<byte[], byte[]> actual = received.get(i);
            String where = codec + " record " + i;
            assertEquals(i, actual.offset(), where + " offset");
            assertEquals(0, actual.partition(), where + " partition");
            assertArrayEquals(expected.key(), actual.key(), where + " key");
            assertArrayEquals(expected.value(), actual.value(), where + " value");
            assertEquals(TimestampType.CREATE_TIME, actual.timestampType(), where + " timestamp type");
            assertEquals(acked.get(i).timestamp(), actual.timestamp(), where + " timestamp");
            assertHeadersEqual(expected.headers().toArray(), actual.headers().toArray(), where);
        }
        assertNull(received.get(3).key(), "record 3 has a null key");
        assertNull(received.get(7).value(), "record 7 is a tombstone");
        assertTrue(received.get(5).headers().toArray().length == 0, "record 5 has no headers");

        // The idempotent producer asked for a producer id (InitProducerId) before producing.
        assertTrue(ClientLog.linesOf(producerId).stream().anyMatch(line -> line.contains("apiKey=INIT_PRODUCER_ID")),
                "the idempotent producer " + producerId + " sent no InitProducerId request");
    }

    /**
     * Record {@code i}: a null key when {@code i % 10 == 3}, a null value when
     * {@code i % 10 == 7}, no headers when {@code i % 10 == 5}, else two headers of which the
     * second has a null value every fourth record. Values are repetitive so codecs compress.
     */
    private static ProducerRecord<byte[], byte[]> record(String topic, int i) {
        byte[] key = i % 10 == 3 ? null : bytes("key-" + i);
        byte[] value = i % 10 == 7 ? null : bytes(("value-" + i + " ").repeat(1 + i % 13));
        List<Header> headers = new ArrayList<>();
        if (i % 10 != 5) {
            headers.add(new RecordHeader("index", ByteBuffer.allocate(4).putInt(i).array()));
            headers.add(new RecordHeader("trace", i % 4 == 0 ? null : bytes("trace-" + i)));
        }
        return new ProducerRecord<>(topic, 0, null, key, value, headers);
    }

    private static void assertHeadersEqual(Header[] expected, Header[] actual, String where) {
        assertEquals(expected.length, actual.length, where + " header count");
        for (int h = 0; h < expected.length; h++) {
            assertEquals(expected[h].key(), actual[h].key(), where + " header " + h + " key");
            assertArrayEquals(expected[h].value(), actual[h].value(),
                    where + " header " + h + " value (" + text(actual[h].value()) + ")");
        }
    }
}
