package suite

import (
	"slices"
	"strings"
	"testing"
)

// EndMarker is a non-transactional record written to every output partition at the end of
// a transaction test: a reader that reaches it has read everything visible before it.
const EndMarker = "end-of-test"

// Transform is what a consume-transform-produce test writes for an input record's value.
func Transform(value []byte) string {
	return "transformed:" + strings.ToUpper(string(value))
}

// EndMarkerReader collects, by partition, the values read before each partition's
// EndMarker, and fails the test on a record after one.
type EndMarkerReader struct {
	partitions int
	values     map[int32][]string
	ended      map[int32]bool
}

// NewEndMarkerReader reads a topic with `partitions` partitions.
func NewEndMarkerReader(partitions int) *EndMarkerReader {
	return &EndMarkerReader{partitions: partitions, values: map[int32][]string{}, ended: map[int32]bool{}}
}

// Add takes the next record of `partition`, and reports whether a partition's marker is
// still to come.
func (r *EndMarkerReader) Add(t *testing.T, partition int32, value []byte) bool {
	t.Helper()
	switch {
	case r.ended[partition]:
		t.Fatalf("partition %d: %q after the end marker", partition, value)
	case string(value) == EndMarker:
		r.ended[partition] = true
	default:
		r.values[partition] = append(r.values[partition], string(value))
	}
	return len(r.ended) < r.partitions
}

// Values are the values before the markers, by partition.
func (r *EndMarkerReader) Values() map[int32][]string {
	return r.values
}

// TransactionPlan is the shape of a consume-transform-produce test: an input topic and an
// output topic with Partitions partitions each, CommittedCount input records transformed
// in committed transactions, then AbortedCount in an aborted one.
type TransactionPlan struct {
	Partitions     int
	CommittedCount int
	AbortedCount   int
}

// ExpectOutput checks what readers of the output saw: read_committed exactly the committed
// transformed records, in input order per partition; read_uncommitted the aborted ones too.
func (plan TransactionPlan) ExpectOutput(t *testing.T, committed, readCommitted, readUncommitted map[int32][]string) {
	t.Helper()
	for partition := range int32(plan.Partitions) {
		if !slices.Equal(readCommitted[partition], committed[partition]) {
			t.Fatalf("read_committed sees on partition %d:\n%v\nexpected exactly the committed transformed records:\n%v",
				partition, readCommitted[partition], committed[partition])
		}
	}
	total := 0
	for _, values := range readUncommitted {
		total += len(values)
	}
	if total != plan.CommittedCount+plan.AbortedCount {
		t.Fatalf("read_uncommitted sees %d records, expected %d committed and %d aborted",
			total, plan.CommittedCount, plan.AbortedCount)
	}
}
