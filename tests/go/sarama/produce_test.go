package sarama

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/IBM/sarama"

	"github.com/corelog/corelog/tests/go/internal/suite"
)

// TestSyncProducerIdempotentReadBack, once per codec (none, gzip, snappy, lz4, zstd): the
// SyncProducer with acks=all and Idempotent (so InitProducerId and sequence numbers; sarama
// requires one request in flight) sends records
// with keys, values and headers, hashed over the partitions. The Consumer reads each
// partition from the oldest offset and every record, its offset's place and the newest
// offsets are compared.
func TestSyncProducerIdempotentReadBack(t *testing.T) {
	codecs := []sarama.CompressionCodec{sarama.CompressionNone, sarama.CompressionGZIP,
		sarama.CompressionSnappy, sarama.CompressionLZ4, sarama.CompressionZSTD}
	for _, codec := range codecs {
		t.Run(codec.String(), func(t *testing.T) { produceAndReadBack(t, codec) })
	}
}

func produceAndReadBack(t *testing.T, codec sarama.CompressionCodec) {
	const partitions = 3
	const recordCount = 240
	ctx := suite.Context(t)
	admin := newAdmin(t)
	topic := uniqueName("produce-" + codec.String())
	createTopic(t, admin, topic, partitions)

	config := newConfig()
	config.Producer.Compression = codec
	config.Producer.RequiredAcks = sarama.WaitForAll
	config.Producer.Idempotent = true
	config.Net.MaxOpenRequests = 1
	config.Producer.Return.Successes = true
	client := newClient(t, config)
	producer, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatalf("NewSyncProducer: %v", err)
	}
	defer producer.Close()

	messages := make([]*sarama.ProducerMessage, 0, recordCount)
	for i := range recordCount {
		message := &sarama.ProducerMessage{
			Topic: topic,
			Key:   sarama.StringEncoder(fmt.Sprintf("key-%d", i%29)),
			Value: sarama.StringEncoder(fmt.Sprintf("value-%d", i)),
		}
		if i%8 != 0 {
			message.Headers = []sarama.RecordHeader{
				{Key: []byte("index"), Value: []byte(fmt.Sprint(i))},
				{Key: []byte("source"), Value: []byte("sarama")},
			}
		}
		messages = append(messages, message)
	}
	// Half in one SendMessages call (batched), half one by one.
	if err := producer.SendMessages(messages[:recordCount/2]); err != nil {
		t.Fatalf("SendMessages: %v", err)
	}
	for _, message := range messages[recordCount/2:] {
		if _, _, err := producer.SendMessage(message); err != nil {
			t.Fatalf("SendMessage: %v", err)
		}
	}

	produced := map[int32]map[int64]*sarama.ProducerMessage{}
	for _, message := range messages {
		if produced[message.Partition] == nil {
			produced[message.Partition] = map[int64]*sarama.ProducerMessage{}
		}
		if _, taken := produced[message.Partition][message.Offset]; taken {
			t.Fatalf("two records acknowledged at offset %d of partition %d", message.Offset, message.Partition)
		}
		produced[message.Partition][message.Offset] = message
	}
	if len(produced) < 2 {
		t.Fatalf("keys went to %d partition(s), expected them spread over %d", len(produced), partitions)
	}

	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	defer consumer.Close()
	for partition := range int32(partitions) {
		newest, err := client.GetOffset(topic, partition, sarama.OffsetNewest)
		if err != nil || newest != int64(len(produced[partition])) {
			t.Fatalf("partition %d: newest offset %d (%v), expected %d", partition, newest, err, len(produced[partition]))
		}
		oldest, err := client.GetOffset(topic, partition, sarama.OffsetOldest)
		if err != nil || oldest != 0 {
			t.Fatalf("partition %d: oldest offset %d (%v), expected 0", partition, oldest, err)
		}
		if newest == 0 {
			continue
		}
		reader, err := consumer.ConsumePartition(topic, partition, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("ConsumePartition %d: %v", partition, err)
		}
		for expectedOffset := int64(0); expectedOffset < newest; expectedOffset++ {
			var message *sarama.ConsumerMessage
			select {
			case message = <-reader.Messages():
			case err := <-reader.Errors():
				t.Fatalf("consume partition %d: %v", partition, err)
			case <-ctx.Done():
				t.Fatalf("partition %d: read %d of %d records before the deadline", partition, expectedOffset, newest)
			}
			if message.Offset != expectedOffset {
				t.Fatalf("partition %d: read offset %d, expected %d", partition, message.Offset, expectedOffset)
			}
			want := produced[partition][message.Offset]
			wantKey, _ := want.Key.Encode()
			wantValue, _ := want.Value.Encode()
			if !bytes.Equal(message.Key, wantKey) || !bytes.Equal(message.Value, wantValue) {
				t.Fatalf("partition %d offset %d: read %q=%q, produced %q=%q", partition,
					message.Offset, message.Key, message.Value, wantKey, wantValue)
			}
			if len(message.Headers) != len(want.Headers) {
				t.Fatalf("partition %d offset %d: %d headers, produced %d", partition, message.Offset,
					len(message.Headers), len(want.Headers))
			}
			for i, header := range message.Headers {
				if !bytes.Equal(header.Key, want.Headers[i].Key) || !bytes.Equal(header.Value, want.Headers[i].Value) {
					t.Fatalf("partition %d offset %d: header %q=%q, produced %q=%q", partition, message.Offset,
						header.Key, header.Value, want.Headers[i].Key, want.Headers[i].Value)
				}
			}
		}
		if err := reader.Close(); err != nil {
			t.Fatalf("close partition consumer: %v", err)
		}
	}
}
