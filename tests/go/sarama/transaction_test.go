package sarama

import (
	"context"
	"fmt"
	"testing"

	"github.com/IBM/sarama"

	"github.com/corelog/corelog/tests/go/internal/suite"
)

// TestTransactionalProducerCommitAndAbort: a transactional SyncProducer (Transaction.ID,
// idempotent, acks=all) reads an input topic and, in one transaction, writes each record
// transformed to an output topic and adds the record's offset for a group
// (AddMessageToTxn: AddOffsetsToTxn, then TxnOffsetCommit), then commits (EndTxn). The
// group's offsets reach the input's end. A second transaction does the same for more
// records and aborts: the offsets stay. A read_committed Consumer sees exactly the
// committed transformed records in order per partition; a read_uncommitted one sees the
// aborted ones too.
func TestTransactionalProducerCommitAndAbort(t *testing.T) {
	plan := suite.TransactionPlan{Partitions: 2, CommittedCount: 40, AbortedCount: 10}
	// Each transaction's offsets, per partition (records are spread evenly).
	committedOffset := int64(plan.CommittedCount / plan.Partitions)
	ctx := suite.Context(t)
	admin := newAdmin(t)
	input, output := uniqueName("txn-input"), uniqueName("txn-output")
	groupID := uniqueName("txn")
	createTopic(t, admin, input, int32(plan.Partitions))
	createTopic(t, admin, output, int32(plan.Partitions))
	produce(t, input, 0, plan.CommittedCount+plan.AbortedCount, plan.Partitions)

	config := newConfig()
	config.Producer.Idempotent = true
	config.Producer.RequiredAcks = sarama.WaitForAll
	config.Producer.Return.Successes = true
	config.Producer.Transaction.ID = uniqueName("txn")
	config.Producer.Partitioner = sarama.NewManualPartitioner
	config.Net.MaxOpenRequests = 1
	producer, err := sarama.NewSyncProducer(suite.Bootstrap(), config)
	if err != nil {
		t.Fatalf("NewSyncProducer (transactional): %v", err)
	}
	defer producer.Close()

	inputs := readFrom(ctx, t, input, plan.Partitions, plan.CommittedCount+plan.AbortedCount, sarama.ReadUncommitted)
	transact := func(messages []*sarama.ConsumerMessage, commit bool) map[int32][]string {
		t.Helper()
		if err := producer.BeginTxn(); err != nil {
			t.Fatalf("BeginTxn: %v", err)
		}
		written := map[int32][]string{}
		for _, message := range messages {
			value := suite.Transform(message.Value)
			if _, _, err := producer.SendMessage(&sarama.ProducerMessage{Topic: output,
				Partition: message.Partition, Key: sarama.ByteEncoder(message.Key),
				Value: sarama.StringEncoder(value)}); err != nil {
				t.Fatalf("transactional SendMessage: %v", err)
			}
			if err := producer.AddMessageToTxn(message, groupID, nil); err != nil {
				t.Fatalf("AddMessageToTxn: %v", err)
			}
			written[message.Partition] = append(written[message.Partition], value)
		}
		if commit {
			if err := producer.CommitTxn(); err != nil {
				t.Fatalf("CommitTxn: %v", err)
			}
		} else if err := producer.AbortTxn(); err != nil {
			t.Fatalf("AbortTxn: %v", err)
		}
		return written
	}
	var first, second []*sarama.ConsumerMessage
	for _, message := range inputs {
		if message.Offset < committedOffset {
			first = append(first, message)
		} else {
			second = append(second, message)
		}
	}
	committedValues := transact(first, true)
	// Kafka writes the transaction markers (and so applies the offsets) after EndTxn answers.
	waitForGroupOffsets(ctx, t, admin, groupID, input, plan.Partitions, committedOffset)
	transact(second, false)
	response, err := admin.ListConsumerGroupOffsets(groupID, map[string][]int32{input: {0, 1}})
	if err != nil {
		t.Fatalf("ListConsumerGroupOffsets: %v", err)
	}
	for partition := range int32(plan.Partitions) {
		if block := response.GetBlock(input, partition); block == nil || block.Offset != committedOffset {
			t.Fatalf("after the abort, partition %d is committed at %+v, expected %d", partition, block, committedOffset)
		}
	}

	writeEndMarkers(t, output, plan.Partitions)
	plan.ExpectOutput(t, committedValues,
		valuesBeforeEndMarkers(ctx, t, output, plan.Partitions, sarama.ReadCommitted),
		valuesBeforeEndMarkers(ctx, t, output, plan.Partitions, sarama.ReadUncommitted))
}

func writeEndMarkers(t *testing.T, topic string, partitions int) {
	t.Helper()
	producer := newPartitionProducer(t)
	defer producer.Close()
	for partition := range int32(partitions) {
		if _, _, err := producer.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: partition,
			Value: sarama.StringEncoder(suite.EndMarker)}); err != nil {
			t.Fatalf("produce the end marker: %v", err)
		}
	}
}

// readFrom reads `count` records from the oldest offset of every partition.
func readFrom(ctx context.Context, t *testing.T, topic string, partitions, count int, isolation sarama.IsolationLevel) []*sarama.ConsumerMessage {
	t.Helper()
	var all []*sarama.ConsumerMessage
	consume(ctx, t, topic, partitions, isolation, func(message *sarama.ConsumerMessage) bool {
		all = append(all, message)
		return len(all) < count
	})
	return all
}

// valuesBeforeEndMarkers reads every partition from the oldest offset up to its end marker
// and returns the values before the markers by partition.
func valuesBeforeEndMarkers(ctx context.Context, t *testing.T, topic string, partitions int, isolation sarama.IsolationLevel) map[int32][]string {
	t.Helper()
	values := suite.NewEndMarkerReader(partitions)
	consume(ctx, t, topic, partitions, isolation, func(message *sarama.ConsumerMessage) bool {
		return values.Add(t, message.Partition, message.Value)
	})
	return values.Values()
}

// consume feeds `handle` the records of every partition from the oldest offset, with the
// isolation level, until it returns false; fails on errors and at ctx's deadline.
func consume(ctx context.Context, t *testing.T, topic string, partitions int, isolation sarama.IsolationLevel,
	handle func(*sarama.ConsumerMessage) bool) {
	t.Helper()
	config := newConfig()
	config.Consumer.IsolationLevel = isolation
	config.Consumer.Return.Errors = true
	consumer, err := sarama.NewConsumer(suite.Bootstrap(), config)
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	defer consumer.Close()
	messages := make(chan *sarama.ConsumerMessage)
	errs := make(chan error, partitions)
	done := make(chan struct{})
	defer close(done)
	for partition := range int32(partitions) {
		reader, err := consumer.ConsumePartition(topic, partition, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("ConsumePartition %d: %v", partition, err)
		}
		defer reader.AsyncClose()
		go func() {
			for {
				select {
				case message, ok := <-reader.Messages():
					if !ok {
						return
					}
					select {
					case messages <- message:
					case <-done:
						return
					}
				case err := <-reader.Errors():
					errs <- fmt.Errorf("partition %d: %w", partition, err)
					return
				case <-done:
					return
				}
			}
		}()
	}
	for {
		select {
		case message := <-messages:
			if !handle(message) {
				return
			}
		case err := <-errs:
			t.Fatalf("consume %s: %v", topic, err)
		case <-ctx.Done():
			t.Fatalf("consume %s: deadline passed", topic)
		}
	}
}
