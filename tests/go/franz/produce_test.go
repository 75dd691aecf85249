package franz

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/corelog/corelog/tests/go/internal/suite"
)

// TestIdempotentProduceReadBack, with kgo's default compression (snappy) and with none,
// gzip, lz4 and zstd, produces with kgo's defaults (acks=all, idempotent: an
// InitProducerId, then sequence numbers per partition) records with keys, values and
// headers across the partitions of a topic, reads them back from the start, and compares
// every record at every offset, the offsets' order per partition and the end offsets.
func TestIdempotentProduceReadBack(t *testing.T) {
	codecs := map[string]kgo.CompressionCodec{
		"default": {}, // kgo's default preference: snappy, else none
		"none":    kgo.NoCompression(),
		"gzip":    kgo.GzipCompression(),
		"lz4":     kgo.Lz4Compression(),
		"zstd":    kgo.ZstdCompression(),
	}
	for _, name := range slices.Sorted(maps.Keys(codecs)) {
		t.Run(name, func(t *testing.T) {
			var options []kgo.Opt
			if name != "default" {
				options = append(options, kgo.ProducerBatchCompression(codecs[name]))
			}
			produceAndReadBack(t, options...)
		})
	}
}

func produceAndReadBack(t *testing.T, producerOptions ...kgo.Opt) {
	const partitions = 3
	const recordCount = 300
	ctx := suite.Context(t)
	admin := newAdmin(t)
	topic := uniqueName("produce")
	createTopic(ctx, t, admin, topic, partitions)

	producer := newClient(t, append(producerOptions, kgo.DefaultProduceTopic(topic))...)
	defer producer.Close()
	sent := make([]*kgo.Record, 0, recordCount)
	for i := range recordCount {
		record := &kgo.Record{
			Key:   []byte(fmt.Sprintf("key-%d", i%37)),
			Value: []byte(fmt.Sprintf("value-%d", i)),
			Headers: []kgo.RecordHeader{
				{Key: "index", Value: []byte(fmt.Sprint(i))},
				{Key: "empty", Value: nil},
			},
		}
		if i%10 == 0 {
			record.Headers = nil
		}
		sent = append(sent, record)
	}
	if err := producer.ProduceSync(ctx, sent...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}

	byPosition := map[int32]map[int64]*kgo.Record{}
	lastOffset := map[int32]int64{}
	for i, record := range sent {
		if record.ProducerID < 0 {
			t.Fatalf("record %d has no producer id: the idempotent producer did not run", i)
		}
		if previous, seen := lastOffset[record.Partition]; seen && record.Offset <= previous {
			t.Fatalf("record %d at offset %d of partition %d, after offset %d: produce order lost",
				i, record.Offset, record.Partition, previous)
		}
		lastOffset[record.Partition] = record.Offset
		if byPosition[record.Partition] == nil {
			byPosition[record.Partition] = map[int64]*kgo.Record{}
		}
		byPosition[record.Partition][record.Offset] = record
	}
	if len(byPosition) < 2 {
		t.Fatalf("keys went to %d partition(s), expected them spread over %d", len(byPosition), partitions)
	}

	consumer := newClient(t,
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer consumer.Close()
	received := pollRecords(ctx, t, consumer, recordCount)
	nextOffset := map[int32]int64{}
	for _, record := range received {
		want := byPosition[record.Partition][record.Offset]
		if want == nil {
			t.Fatalf("read partition %d offset %d, which was never produced", record.Partition, record.Offset)
		}
		if record.Offset != nextOffset[record.Partition] {
			t.Fatalf("partition %d: read offset %d, expected %d (offsets must be dense and in order)",
				record.Partition, record.Offset, nextOffset[record.Partition])
		}
		nextOffset[record.Partition]++
		if !bytes.Equal(record.Key, want.Key) || !bytes.Equal(record.Value, want.Value) {
			t.Fatalf("partition %d offset %d: read %q=%q, produced %q=%q", record.Partition,
				record.Offset, record.Key, record.Value, want.Key, want.Value)
		}
		if !sameHeaders(record.Headers, want.Headers) {
			t.Fatalf("partition %d offset %d: headers %v, produced %v", record.Partition,
				record.Offset, record.Headers, want.Headers)
		}
		if record.ProducerID != want.ProducerID {
			t.Fatalf("partition %d offset %d: producer id %d, produced with %d", record.Partition,
				record.Offset, record.ProducerID, want.ProducerID)
		}
	}

	ends, err := admin.ListEndOffsets(ctx, topic)
	if err != nil || ends.Error() != nil {
		t.Fatalf("list end offsets: %v %v", err, ends.Error())
	}
	for partition := range int32(partitions) {
		end, ok := ends.Lookup(topic, partition)
		if !ok || end.Offset != int64(len(byPosition[partition])) {
			t.Fatalf("partition %d: end offset %+v, expected %d", partition, end, len(byPosition[partition]))
		}
	}
}

// pollRecords polls until it has `count` records and fails on any fetch error or when the
// test's deadline passes first.
func pollRecords(ctx context.Context, t *testing.T, client *kgo.Client, count int) []*kgo.Record {
	t.Helper()
	var records []*kgo.Record
	for len(records) < count {
		fetches := client.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("got %d of %d records before the deadline", len(records), count)
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			t.Fatalf("fetch %s[%d]: %v", topic, partition, err)
		})
		records = append(records, fetches.Records()...)
	}
	if len(records) != count {
		t.Fatalf("got %d records, expected %d", len(records), count)
	}
	return records
}

func sameHeaders(got, want []kgo.RecordHeader) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i].Key != want[i].Key || !bytes.Equal(got[i].Value, want[i].Value) {
			return false
		}
	}
	return true
}
