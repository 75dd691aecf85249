package franz

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/corelog/corelog/tests/go/internal/suite"
)

// TestTransactionalConsumeTransformProduce runs kgo.GroupTransactSession: it consumes an
// input topic in a group and writes each poll's transformed records to an output topic,
// committing the input offsets in the same transaction (TxnOffsetCommit, EndTxn). Then a
// session that produces transformed records (acknowledged, so they are in the log) and
// ends with TryAbort leaves the group's offsets where they were. A read_committed reader
// of the output sees exactly the committed transformed records, in input order per
// partition; a read_uncommitted reader sees the aborted ones too.
func TestTransactionalConsumeTransformProduce(t *testing.T) {
	plan := suite.TransactionPlan{Partitions: 2, CommittedCount: 60, AbortedCount: 20}
	ctx := suite.Context(t)
	admin := newAdmin(t)
	input, output := uniqueName("txn-input"), uniqueName("txn-output")
	group, transactionalID := uniqueName("txn"), uniqueName("txn")
	createTopic(ctx, t, admin, input, int32(plan.Partitions))
	createTopic(ctx, t, admin, output, int32(plan.Partitions))
	produceSpread(ctx, t, input, 0, plan.CommittedCount, plan.Partitions)

	session, err := kgo.NewGroupTransactSession(append(commonOptions(),
		kgo.TransactionalID(transactionalID),
		kgo.TransactionTimeout(30*time.Second),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(input),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.DefaultProduceTopic(output),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)...)
	if err != nil {
		t.Fatalf("NewGroupTransactSession: %v", err)
	}
	defer session.Close()

	committedValues := map[int32][]string{}
	processed := 0
	for processed < plan.CommittedCount {
		if err := session.Begin(); err != nil {
			t.Fatalf("begin: %v", err)
		}
		polled := pollOnce(ctx, t, session.PollFetches)
		for _, record := range polled {
			transformed := &kgo.Record{Partition: record.Partition, Key: record.Key, Value: []byte(suite.Transform(record.Value))}
			if err := session.ProduceSync(ctx, transformed).FirstErr(); err != nil {
				t.Fatalf("transactional produce: %v", err)
			}
			committedValues[record.Partition] = append(committedValues[record.Partition], string(transformed.Value))
		}
		committed, err := session.End(ctx, kgo.TryCommit)
		if err != nil || !committed {
			t.Fatalf("end with TryCommit after %d records: committed %v, err %v", len(polled), committed, err)
		}
		processed += len(polled)
	}
	if processed != plan.CommittedCount {
		t.Fatalf("processed %d input records, produced %d", processed, plan.CommittedCount)
	}
	inputEnds := expectGroupAtEnd(ctx, t, admin, group, input)

	// The aborted session: its records reach the log, then the abort marker hides them.
	produceSpread(ctx, t, input, plan.CommittedCount, plan.AbortedCount, plan.Partitions)
	if err := session.Begin(); err != nil {
		t.Fatalf("begin: %v", err)
	}
	aborted := 0
	for aborted < plan.AbortedCount {
		for _, record := range pollOnce(ctx, t, session.PollFetches) {
			transformed := &kgo.Record{Partition: record.Partition, Key: record.Key, Value: []byte(suite.Transform(record.Value))}
			if err := session.ProduceSync(ctx, transformed).FirstErr(); err != nil {
				t.Fatalf("transactional produce: %v", err)
			}
			aborted++
		}
	}
	committed, err := session.End(ctx, kgo.TryAbort)
	if err != nil || committed {
		t.Fatalf("end with TryAbort: committed %v, err %v", committed, err)
	}
	committedOffsets, err := admin.FetchOffsets(ctx, group)
	if err != nil || committedOffsets.Error() != nil {
		t.Fatalf("fetch offsets: %v %v", err, committedOffsets.Error())
	}
	inputEnds.Each(func(end kadm.ListedOffset) {
		if at, _ := committedOffsets.Lookup(input, end.Partition); at.At != end.Offset {
			t.Fatalf("after the abort, partition %d is committed at %d, expected %d", end.Partition, at.At, end.Offset)
		}
	})

	writeEndMarkers(ctx, t, output, plan.Partitions)
	visible := readUntilEndMarkers(ctx, t, output, plan.Partitions, kgo.ReadCommitted())
	plan.ExpectOutput(t, committedValues, visible, readUntilEndMarkers(ctx, t, output, plan.Partitions, kgo.ReadUncommitted()))
}

// pollOnce polls once, failing on fetch errors and at the deadline.
func pollOnce(ctx context.Context, t *testing.T, poll func(context.Context) kgo.Fetches) []*kgo.Record {
	t.Helper()
	fetches := poll(ctx)
	if ctx.Err() != nil {
		t.Fatalf("deadline passed while polling")
	}
	fetches.EachError(func(topic string, partition int32, err error) {
		t.Fatalf("fetch %s[%d]: %v", topic, partition, err)
	})
	return fetches.Records()
}

// expectGroupAtEnd checks that the group committed the end offset of every partition of
// `topic`, and returns those end offsets.
func expectGroupAtEnd(ctx context.Context, t *testing.T, admin *kadm.Client, group, topic string) kadm.ListedOffsets {
	t.Helper()
	ends, err := admin.ListEndOffsets(ctx, topic)
	if err != nil || ends.Error() != nil {
		t.Fatalf("list end offsets: %v %v", err, ends.Error())
	}
	// EndTxn returns before the coordinator has written the markers (Kafka writes them
	// asynchronously), so the transaction's offsets become visible a moment later.
	var committed kadm.OffsetResponses
	suite.WaitFor(ctx, t, "the transaction's offsets to be committed", func() bool {
		committed, err = admin.FetchOffsets(ctx, group)
		if err != nil || committed.Error() != nil {
			return false
		}
		atEnd := true
		ends.Each(func(end kadm.ListedOffset) {
			at, ok := committed.Lookup(topic, end.Partition)
			atEnd = atEnd && ok && at.At == end.Offset
		})
		return atEnd
	})
	return ends
}

func writeEndMarkers(ctx context.Context, t *testing.T, topic string, partitions int) {
	t.Helper()
	producer := newClient(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	defer producer.Close()
	for partition := range int32(partitions) {
		if err := producer.ProduceSync(ctx, &kgo.Record{Partition: partition, Value: []byte(suite.EndMarker)}).FirstErr(); err != nil {
			t.Fatalf("produce the end marker: %v", err)
		}
	}
}

// readUntilEndMarkers reads `topic` from the start with the isolation level until every
// partition's end marker, and returns the values before the markers by partition.
func readUntilEndMarkers(ctx context.Context, t *testing.T, topic string, partitions int, isolation kgo.IsolationLevel) map[int32][]string {
	t.Helper()
	reader := newClient(t,
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(isolation),
		kgo.FetchMaxWait(500*time.Millisecond))
	defer reader.Close()
	values := suite.NewEndMarkerReader(partitions)
	for more := true; more; {
		for _, record := range pollOnce(ctx, t, reader.PollFetches) {
			more = values.Add(t, record.Partition, record.Value)
		}
	}
	return values.Values()
}
