package franz

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// endMarker is a non-transactional record written to every output partition at the end:
// a reader that reaches it has read everything visible before it.
const endMarker = "end-of-test"

func transform(value []byte) []byte {
	return []byte("transformed:" + strings.ToUpper(string(value)))
}

// TestTransactionalConsumeTransformProduce runs kgo.GroupTransactSession: it consumes an
// input topic in a group and writes each poll's transformed records to an output topic,
// committing the input offsets in the same transaction (TxnOffsetCommit, EndTxn). Then a
// session that produces transformed records (acknowledged, so they are in the log) and
// ends with TryAbort leaves the group's offsets where they were. A read_committed reader
// of the output sees exactly the committed transformed records, in input order per
// partition; a read_uncommitted reader sees the aborted ones too.
func TestTransactionalConsumeTransformProduce(t *testing.T) {
	const partitions = 2
	const committedCount = 60
	const abortedCount = 20
	ctx := testContext(t)
	admin := newAdmin(t)
	input, output := uniqueName("txn-input"), uniqueName("txn-output")
	group, transactionalID := uniqueName("txn"), uniqueName("txn")
	createTopic(ctx, t, admin, input, partitions)
	createTopic(ctx, t, admin, output, partitions)
	produceSpread(ctx, t, input, 0, committedCount, partitions)

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
	for processed < committedCount {
		if err := session.Begin(); err != nil {
			t.Fatalf("begin: %v", err)
		}
		polled := pollOnce(ctx, t, session.PollFetches)
		for _, record := range polled {
			transformed := &kgo.Record{Partition: record.Partition, Key: record.Key, Value: transform(record.Value)}
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
	if processed != committedCount {
		t.Fatalf("processed %d input records, produced %d", processed, committedCount)
	}
	inputEnds := expectGroupAtEnd(ctx, t, admin, group, input)

	// The aborted session: its records reach the log, then the abort marker hides them.
	produceSpread(ctx, t, input, committedCount, abortedCount, partitions)
	if err := session.Begin(); err != nil {
		t.Fatalf("begin: %v", err)
	}
	aborted := 0
	for aborted < abortedCount {
		for _, record := range pollOnce(ctx, t, session.PollFetches) {
			transformed := &kgo.Record{Partition: record.Partition, Key: record.Key, Value: transform(record.Value)}
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

	writeEndMarkers(ctx, t, output, partitions)
	visible := readUntilEndMarkers(ctx, t, output, partitions, kgo.ReadCommitted())
	for partition := range int32(partitions) {
		if !slices.Equal(visible[partition], committedValues[partition]) {
			t.Fatalf("read_committed sees on partition %d:\n%v\nexpected exactly the committed transformed records:\n%v",
				partition, visible[partition], committedValues[partition])
		}
	}
	all := readUntilEndMarkers(ctx, t, output, partitions, kgo.ReadUncommitted())
	total := 0
	for _, values := range all {
		total += len(values)
	}
	if total != committedCount+abortedCount {
		t.Fatalf("read_uncommitted sees %d records, expected %d committed and %d aborted",
			total, committedCount, abortedCount)
	}
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
	waitFor(ctx, t, "the transaction's offsets to be committed", func() bool {
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
		if err := producer.ProduceSync(ctx, &kgo.Record{Partition: partition, Value: []byte(endMarker)}).FirstErr(); err != nil {
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
	values := map[int32][]string{}
	ended := map[int32]bool{}
	for len(ended) < partitions {
		for _, record := range pollOnce(ctx, t, reader.PollFetches) {
			switch {
			case ended[record.Partition]:
				t.Fatalf("partition %d: %q after the end marker", record.Partition, record.Value)
			case string(record.Value) == endMarker:
				ended[record.Partition] = true
			default:
				values[record.Partition] = append(values[record.Partition], string(record.Value))
			}
		}
	}
	return values
}
