package dev.corelog.clients;

import static dev.corelog.clients.Corelog.bytes;
import static dev.corelog.clients.Corelog.text;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.fail;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;

/**
 * Exactly-once processing with the Java client: a consume-transform-produce loop that commits
 * its output and its input offsets in one transaction ({@code sendOffsetsToTransaction} with
 * the consumer's group metadata, KIP-447), an aborted transaction whose records and offsets
 * leave no trace for {@code read_committed} readers and the group, an open transaction that
 * holds {@code read_committed} readers at the last stable offset, and a second producer with
 * the same {@code transactional.id} fencing the first.
 */
@Order(6)
class TransactionalProcessingTest {
    private static final int PARTITIONS = 2;
    private static final int RECORDS_PER_PARTITION = 15;
    private static final int ABORTED_RECORDS = 3;

    private static Map<String, Object> readCommitted() {
        return Map.of(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed",
                ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, 100);
    }

    private static Map<String, Object> transactional(String transactionalId) {
        return Map.of(ProducerConfig.TRANSACTIONAL_ID_CONFIG, transactionalId,
                ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, 60_000);
    }

    @Test
    void consumeTransformProduceCommitsOutputAndInputOffsetsAtomically() throws Exception {
        String input = Corelog.unique("txn-input");
        String output = Corelog.unique("txn-output");
        String group = Corelog.unique("txn-group");
        Corelog.createTopic(input, PARTITIONS);
        Corelog.createTopic(output, PARTITIONS);
        List<TopicPartition> inputPartitions = partitions(input);
        List<TopicPartition> outputPartitions = partitions(output);
        TopicPartition output0 = outputPartitions.get(0);

        try (KafkaProducer<byte[], byte[]> plain = Corelog.producer()) {
            for (int n = 0; n < RECORDS_PER_PARTITION; n++) {
                for (int p = 0; p < PARTITIONS; p++) {
                    plain.send(new ProducerRecord<>(input, p, bytes("k-" + n), bytes("in-" + p + "-" + n)));
                }
            }
            plain.flush();
        }

        Map<String, Object> consumerConfig = new HashMap<>(readCommitted());
        consumerConfig.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
        String transactionalId = Corelog.unique("txn-processor");
        long pendingOffset;
        try (KafkaConsumer<byte[], byte[]> consumer = Corelog.consumer(Corelog.unique("txn-consumer"), group, consumerConfig);
                KafkaProducer<byte[], byte[]> producer = Corelog.producer(Corelog.unique("txn-producer"),
                        transactional(transactionalId))) {
            producer.initTransactions();
            consumer.subscribe(List.of(input));

            // The loop: every poll's records are transformed and written, and the offsets
            // after them committed for the group, in one transaction.
            int processed = 0;
            int transactions = 0;
            long deadline = System.nanoTime() + Corelog.WAIT.toNanos();
            while (processed < PARTITIONS * RECORDS_PER_PARTITION) {
                if (System.nanoTime() > deadline) {
                    fail("timed out after " + Corelog.WAIT + " with " + processed + " records processed");
                }
                ConsumerRecords<byte[], byte[]> records = consumer.poll(Corelog.POLL);
                if (records.isEmpty()) {
                    continue;
                }
                producer.beginTransaction();
                Map<TopicPartition, OffsetAndMetadata> next = new HashMap<>();
                for (ConsumerRecord<byte[], byte[]> record : records) {
                    producer.send(new ProducerRecord<>(output, record.partition(), record.key(),
                            bytes("out:" + text(record.value()))));
                    next.put(new TopicPartition(record.topic(), record.partition()),
                            new OffsetAndMetadata(record.offset() + 1));
                    processed++;
                }
                producer.sendOffsetsToTransaction(next, consumer.groupMetadata());
                producer.commitTransaction();
                transactions++;
            }
            assertEquals(PARTITIONS * RECORDS_PER_PARTITION, processed, "records processed");
            assertCommitted(group, inputPartitions, RECORDS_PER_PARTITION, "after " + transactions + " transactions");

            // An aborted transaction rewinding the group's offsets: neither its records nor its
            // offsets count.
            producer.beginTransaction();
            for (int i = 0; i < ABORTED_RECORDS; i++) {
                producer.send(new ProducerRecord<>(output, 0, null, bytes("aborted-" + i)));
            }
            producer.sendOffsetsToTransaction(Map.of(inputPartitions.get(0), new OffsetAndMetadata(0)),
                    consumer.groupMetadata());
            producer.flush();
            producer.abortTransaction();
            assertCommitted(group, inputPartitions, RECORDS_PER_PARTITION, "after an aborted transaction");

            // An open transaction: its first record is the partition's first unstable offset.
            producer.beginTransaction();
            RecordMetadata pending = producer.send(new ProducerRecord<>(output, 0, null, bytes("pending"))).get();
            pendingOffset = pending.offset();

            try (KafkaConsumer<byte[], byte[]> committed = Corelog.consumer(Corelog.unique("txn-read-committed"), null,
                    readCommitted());
                    KafkaConsumer<byte[], byte[]> uncommitted = Corelog.consumer(Corelog.unique("txn-read-uncommitted"),
                            null, Map.of(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_uncommitted"))) {
                committed.assign(outputPartitions);
                committed.seekToBeginning(outputPartitions);
                Map<Integer, List<String>> values = valuesByPartition(Corelog.pollExactly(committed,
                        PARTITIONS * RECORDS_PER_PARTITION));
                for (int p = 0; p < PARTITIONS; p++) {
                    int partition = p;
                    assertEquals(IntStream.range(0, RECORDS_PER_PARTITION).mapToObj(n -> "out:in-" + partition + "-" + n)
                            .collect(Collectors.toList()), values.get(p),
                            "read_committed sees each committed output once, in order, and no aborted record");
                }
                Corelog.assertNothingMore(committed, Duration.ofMillis(500));
                // read_committed stops at the last stable offset: the open transaction's first record.
                assertEquals(pendingOffset, committed.endOffsets(List.of(output0)).get(output0),
                        "read_committed endOffsets is the last stable offset");
                assertEquals(pendingOffset, committed.position(output0), "read_committed position stops at the LSO");

                uncommitted.assign(List.of(output0));
                uncommitted.seekToBeginning(List.of(output0));
                assertEquals(pendingOffset + 1, uncommitted.endOffsets(List.of(output0)).get(output0),
                        "read_uncommitted endOffsets is the high watermark");
                List<String> all = Corelog.pollExactly(uncommitted, RECORDS_PER_PARTITION + ABORTED_RECORDS + 1)
                        .stream().map(record -> text(record.value())).collect(Collectors.toList());
                assertEquals(List.of("aborted-0", "aborted-1", "aborted-2", "pending"),
                        all.subList(RECORDS_PER_PARTITION, all.size()),
                        "read_uncommitted sees aborted and open transactions' records");

                producer.commitTransaction();
                List<ConsumerRecord<byte[], byte[]>> released = Corelog.pollExactly(committed, 1);
                assertEquals("pending", text(released.get(0).value()), "the committed record is released");
                assertEquals(pendingOffset, released.get(0).offset());
                Corelog.assertNothingMore(committed, Duration.ofMillis(300));
            }
        }
        assertCommitted(group, inputPartitions, RECORDS_PER_PARTITION, "after the processor closed");
    }

    @Test
    void aNewProducerWithTheSameTransactionalIdFencesTheOldOneAndAbortsItsTransaction() throws Exception {
        String topic = Corelog.unique("txn-fencing");
        Corelog.createTopic(topic, 1);
        TopicPartition partition = new TopicPartition(topic, 0);
        String transactionalId = Corelog.unique("txn-fenced");

        try (KafkaProducer<byte[], byte[]> first = Corelog.producer(Corelog.unique("txn-first"),
                transactional(transactionalId))) {
            first.initTransactions();
            first.beginTransaction();
            first.send(new ProducerRecord<>(topic, 0, null, bytes("from the fenced producer"))).get();

            try (KafkaProducer<byte[], byte[]> second = Corelog.producer(Corelog.unique("txn-second"),
                    transactional(transactionalId))) {
                // InitProducerId with the same transactional.id bumps the epoch and aborts the
                // first producer's open transaction.
                second.initTransactions();
                KafkaException fenced = assertThrows(KafkaException.class, first::commitTransaction,
                        "the first producer's commit after it was fenced");
                assertInstanceOf(ProducerFencedException.class, fenced instanceof ProducerFencedException
                        ? fenced : fenced.getCause(), "fenced: " + fenced);

                second.beginTransaction();
                second.send(new ProducerRecord<>(topic, 0, null, bytes("from the new producer")));
                second.commitTransaction();
            }
        }

        try (KafkaConsumer<byte[], byte[]> reader = Corelog.consumer(Corelog.unique("txn-fencing-reader"), null,
                readCommitted())) {
            reader.assign(List.of(partition));
            reader.seekToBeginning(List.of(partition));
            List<ConsumerRecord<byte[], byte[]>> records = Corelog.pollExactly(reader, 1);
            assertEquals("from the new producer", text(records.get(0).value()));
            Corelog.assertNothingMore(reader, Duration.ofMillis(300));
        }
    }

    private static List<TopicPartition> partitions(String topic) {
        return IntStream.range(0, PARTITIONS).mapToObj(p -> new TopicPartition(topic, p)).collect(Collectors.toList());
    }

    private static Map<Integer, List<String>> valuesByPartition(List<ConsumerRecord<byte[], byte[]>> records) {
        Map<Integer, List<String>> values = new HashMap<>();
        for (ConsumerRecord<byte[], byte[]> record : records) {
            values.computeIfAbsent(record.partition(), p -> new ArrayList<>()).add(text(record.value()));
        }
        return values;
    }

    private static void assertCommitted(String group, List<TopicPartition> partitions, long offset, String when) {
        try (Admin admin = Corelog.admin()) {
            Map<TopicPartition, OffsetAndMetadata> committed =
                    Corelog.get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
            for (TopicPartition partition : partitions) {
                OffsetAndMetadata found = committed.get(partition);
                assertEquals(offset, found == null ? -1 : found.offset(),
                        "group " + group + " committed offset of " + partition + " " + when + ": " + committed);
            }
        }
    }
}
