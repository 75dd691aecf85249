package franz

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/corelog/corelog/tests/go/internal/suite"
)

// member is one group consumer with the partitions it owns, tracked through kgo's
// rebalance callbacks.
type member struct {
	name    string
	client  *kgo.Client
	mu      sync.Mutex
	owned   map[int32]bool
	revoked []int32
}

func newMember(t *testing.T, name, group, topic string, options ...kgo.Opt) *member {
	t.Helper()
	m := &member{name: name, owned: map[int32]bool{}}
	all := append([]kgo.Opt{
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500 * time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, partition := range assigned[topic] {
				m.owned[partition] = true
			}
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, partition := range revoked[topic] {
				delete(m.owned, partition)
				m.revoked = append(m.revoked, partition)
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, partition := range lost[topic] {
				delete(m.owned, partition)
			}
		}),
	}, options...)
	m.client = newClient(t, all...)
	return m
}

func (m *member) partitions() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.owned))
}

// pollInBackground polls the member until ctx ends, sending what it gets to `records`, and
// commits each poll's records with CommitRecords (its auto-commit is off).
func (m *member) pollInBackground(ctx context.Context, records chan<- *kgo.Record, errs chan<- error) *sync.WaitGroup {
	var done sync.WaitGroup
	done.Add(1)
	go func() {
		defer done.Done()
		for ctx.Err() == nil {
			fetches := m.client.PollFetches(ctx)
			if ctx.Err() != nil {
				return
			}
			fetches.EachError(func(topic string, partition int32, err error) {
				errs <- fmt.Errorf("%s: fetch %s[%d]: %w", m.name, topic, partition, err)
			})
			polled := fetches.Records()
			for _, record := range polled {
				records <- record
			}
			if len(polled) > 0 {
				if err := m.client.CommitRecords(ctx, polled...); err != nil && ctx.Err() == nil {
					errs <- fmt.Errorf("%s: CommitRecords: %w", m.name, err)
				}
			}
		}
	}()
	return &done
}

func produceSpread(ctx context.Context, t *testing.T, topic string, first, count, partitions int) {
	t.Helper()
	producer := newClient(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	defer producer.Close()
	records := make([]*kgo.Record, 0, count)
	for i := first; i < first+count; i++ {
		records = append(records, &kgo.Record{
			Partition: int32(i % partitions),
			Key:       []byte(fmt.Sprintf("key-%d", i)),
			Value:     []byte(fmt.Sprintf("value-%d", i)),
		})
	}
	if err := producer.ProduceSync(ctx, records...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// TestGroupCooperativeStickySplitCommitResume: two members of one group with kgo's default
// balancer (cooperative-sticky) split a 4-partition topic, the first giving up only what
// the second takes (KIP-429). They consume everything once, committing with CommitRecords.
// After both leave, a new member resumes exactly at the commits, and kgo's auto-commit of
// the records it marks moves the group to the end offsets. When it has left too, the empty
// group is listed, described and deleted with kadm.
func TestGroupCooperativeStickySplitCommitResume(t *testing.T) {
	const partitions = 4
	const firstBatch = 200
	const secondBatch = 80
	ctx := suite.Context(t)
	admin := newAdmin(t)
	topic := uniqueName("group")
	group := uniqueName("group")
	createTopic(ctx, t, admin, topic, partitions)

	first := newMember(t, "first", group, topic, kgo.DisableAutoCommit())
	defer first.client.Close()
	records := make(chan *kgo.Record, firstBatch+secondBatch)
	errs := make(chan error, 16)
	pollCtx, stopPolling := context.WithCancel(ctx)
	defer stopPolling()
	firstDone := first.pollInBackground(pollCtx, records, errs)
	suite.WaitFor(ctx, t, "the first member to own all partitions", func() bool {
		return len(first.partitions()) == partitions
	})

	second := newMember(t, "second", group, topic, kgo.DisableAutoCommit())
	defer second.client.Close()
	secondDone := second.pollInBackground(pollCtx, records, errs)
	suite.WaitFor(ctx, t, "the two members to split the partitions 2 and 2", func() bool {
		a, b := first.partitions(), second.partitions()
		return len(a) == partitions/2 && len(b) == partitions/2 &&
			len(slices.Compact(slices.Sorted(slices.Values(append(a, b...))))) == partitions
	})
	first.mu.Lock()
	revoked := slices.Clone(first.revoked)
	first.mu.Unlock()
	slices.Sort(revoked)
	if !slices.Equal(revoked, second.partitions()) {
		t.Fatalf("cooperative-sticky: the first member revoked %v, the second took %v; "+
			"it must give up exactly what the second takes", revoked, second.partitions())
	}

	expectDescribedGroup(ctx, t, admin, group, topic, first, second)

	produceSpread(ctx, t, topic, 0, firstBatch, partitions)
	seen := map[string]bool{}
	for len(seen) < firstBatch {
		select {
		case record := <-records:
			if seen[string(record.Value)] {
				t.Fatalf("%s consumed twice", record.Value)
			}
			seen[string(record.Value)] = true
		case err := <-errs:
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatalf("consumed %d of %d records before the deadline", len(seen), firstBatch)
		}
	}
	// Each poll commits before polling again; the members may still be committing their
	// last poll, so wait for the group's commits to reach the end offsets.
	waitForCommits(ctx, t, admin, group, topic, partitions, firstBatch/partitions)
	stopPolling()
	firstDone.Wait()
	secondDone.Wait()
	if len(first.partitions()) != partitions/2 || len(second.partitions()) != partitions/2 {
		t.Fatalf("assignment changed while consuming: first %v, second %v", first.partitions(), second.partitions())
	}
	first.client.Close()
	second.client.Close()

	produceSpread(ctx, t, topic, firstBatch, secondBatch, partitions)
	// Auto-commit of marked records: the commit loop (every 250 ms) commits what the
	// member marks after processing.
	resumed := newClient(t,
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(250*time.Millisecond),
		kgo.FetchMaxWait(500*time.Millisecond))
	defer resumed.Close() // Close is idempotent: the test closes it below too
	got := pollRecords(ctx, t, resumed, secondBatch)
	for _, record := range got {
		if record.Offset < firstBatch/partitions {
			t.Fatalf("the new member read %s at offset %d of partition %d, before the committed offset %d",
				record.Value, record.Offset, record.Partition, firstBatch/partitions)
		}
		if seen[string(record.Value)] {
			t.Fatalf("the new member read %s again", record.Value)
		}
	}
	resumed.MarkCommitRecords(got...)
	waitForCommits(ctx, t, admin, group, topic, partitions, (firstBatch+secondBatch)/partitions)
	resumed.Close()
	expectEmptyGroupDeleted(ctx, t, admin, group, topic)
}

// expectEmptyGroupDeleted: once its last member left, the group is Empty in DescribeGroups
// and ListGroups (a classic group of protocol type consumer), DeleteGroups removes it, and
// its offsets go with it.
func expectEmptyGroupDeleted(ctx context.Context, t *testing.T, admin *kadm.Client, group, topic string) {
	t.Helper()
	suite.WaitFor(ctx, t, "DescribeGroups to show the group Empty", func() bool {
		groups, err := admin.DescribeGroups(ctx, group)
		return err == nil && groups[group].Err == nil && groups[group].State == "Empty" &&
			len(groups[group].Members) == 0
	})
	listed, err := admin.ListGroups(ctx)
	if err != nil {
		t.Fatalf("ListGroups: %v", err)
	}
	if entry, ok := listed[group]; !ok || entry.ProtocolType != "consumer" || entry.State != "Empty" ||
		(entry.GroupType != "" && entry.GroupType != "classic") {
		t.Fatalf("ListGroups: %s is %+v (listed %v)", group, entry, ok)
	}
	deleted, err := admin.DeleteGroup(ctx, group)
	if err != nil {
		t.Fatalf("DeleteGroup: %v (%+v)", err, deleted)
	}
	committed, err := admin.FetchOffsets(ctx, group)
	if err != nil || committed.Error() != nil {
		t.Fatalf("FetchOffsets after DeleteGroup: %v %v", err, committed.Error())
	}
	committed.DeleteFunc(func(o kadm.OffsetResponse) bool { return o.At < 0 })
	if len(committed) != 0 {
		t.Fatalf("the deleted group still has offsets: %v", committed)
	}
	listed, err = admin.ListGroups(ctx)
	if _, still := listed[group]; err != nil || still {
		t.Fatalf("ListGroups after DeleteGroup: %v, still listed: %v", err, listed[group])
	}
}

// waitForCommits waits until the group's committed offset of every partition is `offset`.
func waitForCommits(ctx context.Context, t *testing.T, admin *kadm.Client, group, topic string, partitions int, offset int64) {
	t.Helper()
	var last kadm.OffsetResponses
	for {
		committed, err := admin.FetchOffsets(ctx, group)
		if err == nil && committed.Error() == nil {
			last = committed
			done := true
			for partition := range int32(partitions) {
				at, ok := committed.Lookup(topic, partition)
				done = done && ok && at.At == offset
			}
			if done {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("group %s never committed offset %d on every partition: last fetch %v (err %v)", group, offset, last, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// expectDescribedGroup checks DescribeGroups once the group is Stable: protocol type
// consumer, protocol cooperative-sticky (kgo's default), and each member with its client
// id, host and the assignment its client owns.
func expectDescribedGroup(ctx context.Context, t *testing.T, admin *kadm.Client, group, topic string, members ...*member) {
	t.Helper()
	var described kadm.DescribedGroup
	suite.WaitFor(ctx, t, "DescribeGroups to show the group Stable", func() bool {
		groups, err := admin.DescribeGroups(ctx, group)
		described = groups[group]
		return err == nil && described.Err == nil && described.State == "Stable"
	})
	if described.ProtocolType != "consumer" || described.Protocol != "cooperative-sticky" ||
		len(described.Members) != len(members) {
		t.Fatalf("DescribeGroups: %+v", described)
	}
	for _, m := range members {
		memberID, _ := m.client.GroupMetadata()
		index := slices.IndexFunc(described.Members, func(d kadm.DescribedGroupMember) bool {
			return d.MemberID == memberID
		})
		if index < 0 {
			t.Fatalf("DescribeGroups does not list %s's member id %s: %+v", m.name, memberID, described.Members)
		}
		d := described.Members[index]
		assignment, ok := d.Assigned.AsConsumer()
		if !ok || d.ClientID != "kgo" || d.ClientHost == "" {
			t.Fatalf("DescribeGroups: member %s: %+v", m.name, d)
		}
		var assigned []int32
		for _, owned := range assignment.Topics {
			if owned.Topic == topic {
				assigned = append(assigned, owned.Partitions...)
			}
		}
		slices.Sort(assigned)
		if !slices.Equal(assigned, m.partitions()) {
			t.Fatalf("DescribeGroups: %s is assigned %v, its client owns %v", m.name, assigned, m.partitions())
		}
	}
}
