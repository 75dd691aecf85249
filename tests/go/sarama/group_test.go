package sarama

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/corelog/corelog/tests/go/internal/suite"
)

// groupMember is one sarama ConsumerGroup member running Consume in a loop, with the
// partitions of its current session.
type groupMember struct {
	name     string
	topic    string
	group    sarama.ConsumerGroup
	messages chan<- *sarama.ConsumerMessage
	errs     chan<- error
	stop     context.CancelFunc
	done     sync.WaitGroup
	mu       sync.Mutex
	claims   []int32
	memberID string
}

func (m *groupMember) Setup(session sarama.ConsumerGroupSession) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.claims = slices.Sorted(slices.Values(session.Claims()[m.topic]))
	m.memberID = session.MemberID()
	return nil
}

func (m *groupMember) Cleanup(sarama.ConsumerGroupSession) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.claims = nil
	return nil
}

// ConsumeClaim marks every message and commits whenever it has caught up with what was
// fetched (the members run with auto-commit off, unless the test turns it on).
func (m *groupMember) ConsumeClaim(session sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case message, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			select {
			case m.messages <- message:
			case <-session.Context().Done():
				return nil
			}
			session.MarkMessage(message, m.name)
			if len(claim.Messages()) == 0 {
				session.Commit()
			}
		case <-session.Context().Done():
			return nil
		}
	}
}

func (m *groupMember) partitions() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.claims)
}

// startMember joins `group` and consumes `topic` until closed.
func startMember(ctx context.Context, t *testing.T, name, groupID, topic string, strategy sarama.BalanceStrategy,
	autoCommit bool, messages chan<- *sarama.ConsumerMessage, errs chan<- error) *groupMember {
	t.Helper()
	config := newConfig()
	config.Consumer.Offsets.Initial = sarama.OffsetOldest
	config.Consumer.Offsets.AutoCommit.Enable = autoCommit
	config.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{strategy}
	config.Consumer.MaxWaitTime = 250 * time.Millisecond
	// Members learn of a rebalance from their heartbeats: every 500 ms instead of 3 s.
	config.Consumer.Group.Heartbeat.Interval = 500 * time.Millisecond
	config.Consumer.Return.Errors = true
	group, err := sarama.NewConsumerGroup(suite.Bootstrap(), groupID, config)
	if err != nil {
		t.Fatalf("NewConsumerGroup: %v", err)
	}
	runCtx, stop := context.WithCancel(ctx)
	m := &groupMember{name: name, topic: topic, group: group, messages: messages, errs: errs, stop: stop}
	m.done.Add(2)
	go func() {
		defer m.done.Done()
		for runCtx.Err() == nil {
			if err := group.Consume(runCtx, []string{topic}, m); err != nil &&
				!errors.Is(err, sarama.ErrClosedConsumerGroup) && runCtx.Err() == nil {
				errs <- fmt.Errorf("%s: Consume: %w", name, err)
				return
			}
		}
	}()
	go func() {
		defer m.done.Done()
		for err := range group.Errors() {
			if runCtx.Err() == nil {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		}
	}()
	t.Cleanup(m.close)
	return m
}

// close leaves the group (committing what was marked) and waits for the loops to end.
func (m *groupMember) close() {
	m.stop()
	_ = m.group.Close()
	m.done.Wait()
}

// TestConsumerGroupSplitCommitResume runs the same scenario with sarama's default balancer
// (range) and with sticky: two members split a 4-partition topic 2 and 2 and consume each
// record once, marking every message and committing. After both leave, a new member (auto-
// commit on, sarama's default) resumes exactly at the committed offsets, and its commits
// on leaving bring the group to the end offsets, read back with the admin's
// ListConsumerGroupOffsets. The empty group is then listed, described and deleted.
func TestConsumerGroupSplitCommitResume(t *testing.T) {
	strategies := map[string]func() sarama.BalanceStrategy{
		"range":  sarama.NewBalanceStrategyRange,
		"sticky": sarama.NewBalanceStrategySticky,
	}
	for _, name := range slices.Sorted(maps.Keys(strategies)) {
		t.Run(name, func(t *testing.T) {
			consumerGroupScenario(t, name, strategies[name])
		})
	}
}

func consumerGroupScenario(t *testing.T, strategyName string, strategy func() sarama.BalanceStrategy) {
	const partitions = 4
	const firstBatch = 160
	const secondBatch = 40
	ctx := suite.Context(t)
	admin := newAdmin(t)
	topic, groupID := uniqueName("group-"+strategyName), uniqueName("group-"+strategyName)
	createTopic(t, admin, topic, partitions)
	messages := make(chan *sarama.ConsumerMessage, firstBatch+secondBatch)
	errs := make(chan error, 16)

	first := startMember(ctx, t, "first", groupID, topic, strategy(), false, messages, errs)
	suite.WaitFor(ctx, t, "the first member to claim every partition", func() bool {
		return len(first.partitions()) == partitions
	})
	second := startMember(ctx, t, "second", groupID, topic, strategy(), false, messages, errs)
	suite.WaitFor(ctx, t, "the two members to split the partitions 2 and 2", func() bool {
		a, b := first.partitions(), second.partitions()
		return len(a) == partitions/2 && len(b) == partitions/2 &&
			len(slices.Compact(slices.Sorted(slices.Values(append(a, b...))))) == partitions
	})

	expectDescribedGroup(ctx, t, admin, groupID, topic, strategyName, first, second)

	produce(t, topic, 0, firstBatch, partitions)
	seen := map[string]bool{}
	for len(seen) < firstBatch {
		select {
		case message := <-messages:
			value := string(message.Value)
			if seen[value] {
				t.Fatalf("%s consumed twice", value)
			}
			seen[value] = true
		case err := <-errs:
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatalf("consumed %d of %d records before the deadline", len(seen), firstBatch)
		}
	}
	waitForGroupOffsets(ctx, t, admin, groupID, topic, partitions, firstBatch/partitions)
	if a, b := first.partitions(), second.partitions(); len(a) != partitions/2 || len(b) != partitions/2 {
		t.Fatalf("assignment changed while consuming: first %v, second %v", a, b)
	}
	first.close()
	second.close()

	produce(t, topic, firstBatch, secondBatch, partitions)
	resumed := startMember(ctx, t, "resumed", groupID, topic, strategy(), true, messages, errs)
	for got := 0; got < secondBatch; got++ {
		select {
		case message := <-messages:
			if message.Offset < firstBatch/partitions {
				t.Fatalf("the new member read %s at offset %d of partition %d, before the committed offset %d",
					message.Value, message.Offset, message.Partition, firstBatch/partitions)
			}
			if seen[string(message.Value)] {
				t.Fatalf("the new member read %s again", message.Value)
			}
		case err := <-errs:
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatalf("the new member read %d of %d records before the deadline", got, secondBatch)
		}
	}
	resumed.close()
	waitForGroupOffsets(ctx, t, admin, groupID, topic, partitions, (firstBatch+secondBatch)/partitions)
	expectEmptyGroupDeleted(ctx, t, admin, groupID, topic)
}

// expectEmptyGroupDeleted: with every member gone the group is Empty in
// DescribeConsumerGroups, listed with protocol type consumer, DeleteConsumerGroup removes
// it and its offsets read -1 again.
func expectEmptyGroupDeleted(ctx context.Context, t *testing.T, admin sarama.ClusterAdmin, groupID, topic string) {
	t.Helper()
	suite.WaitFor(ctx, t, "DescribeConsumerGroups to show the group Empty", func() bool {
		groups, err := admin.DescribeConsumerGroups([]string{groupID})
		return err == nil && len(groups) == 1 && groups[0].Err == sarama.ErrNoError &&
			groups[0].State == "Empty" && len(groups[0].Members) == 0
	})
	listed, err := admin.ListConsumerGroups()
	if err != nil || listed[groupID] != "consumer" {
		t.Fatalf("ListConsumerGroups: %v, %s is %q", err, groupID, listed[groupID])
	}
	if err := admin.DeleteConsumerGroup(groupID); err != nil {
		t.Fatalf("DeleteConsumerGroup: %v", err)
	}
	response, err := admin.ListConsumerGroupOffsets(groupID, map[string][]int32{topic: {0}})
	if err != nil || response.Err != sarama.ErrNoError {
		t.Fatalf("ListConsumerGroupOffsets after DeleteConsumerGroup: %v %v", err, response)
	}
	if block := response.GetBlock(topic, 0); block == nil || block.Offset != -1 {
		t.Fatalf("the deleted group still has an offset: %+v", block)
	}
	listed, err = admin.ListConsumerGroups()
	if _, still := listed[groupID]; err != nil || still {
		t.Fatalf("ListConsumerGroups after DeleteConsumerGroup: %v, still listed %v", err, still)
	}
}

// produce writes values value-<first>..., record i to partition i % partitions.
func produce(t *testing.T, topic string, first, count, partitions int) {
	t.Helper()
	producer := newPartitionProducer(t)
	defer producer.Close()
	messages := make([]*sarama.ProducerMessage, 0, count)
	for i := first; i < first+count; i++ {
		messages = append(messages, &sarama.ProducerMessage{
			Topic:     topic,
			Partition: int32(i % partitions),
			Key:       sarama.StringEncoder(fmt.Sprintf("key-%d", i)),
			Value:     sarama.StringEncoder(fmt.Sprintf("value-%d", i)),
		})
	}
	if err := producer.SendMessages(messages); err != nil {
		t.Fatalf("SendMessages: %v", err)
	}
}

// newPartitionProducer is a SyncProducer that writes each message to the partition it
// names.
func newPartitionProducer(t *testing.T) sarama.SyncProducer {
	t.Helper()
	config := newConfig()
	config.Producer.Return.Successes = true
	config.Producer.Partitioner = sarama.NewManualPartitioner
	producer, err := sarama.NewSyncProducer(suite.Bootstrap(), config)
	if err != nil {
		t.Fatalf("NewSyncProducer: %v", err)
	}
	return producer
}

// waitForGroupOffsets waits until the group's committed offset of every partition is
// `offset` (ListConsumerGroupOffsets, the admin's OffsetFetch).
func waitForGroupOffsets(ctx context.Context, t *testing.T, admin sarama.ClusterAdmin, groupID, topic string, partitions int, offset int64) {
	t.Helper()
	all := make([]int32, partitions)
	for i := range all {
		all[i] = int32(i)
	}
	var last string
	for {
		response, err := admin.ListConsumerGroupOffsets(groupID, map[string][]int32{topic: all})
		done := err == nil && response.Err == sarama.ErrNoError
		if done {
			last = ""
			for _, partition := range all {
				block := response.GetBlock(topic, partition)
				done = done && block != nil && block.Err == sarama.ErrNoError && block.Offset == offset
				if block != nil {
					last += fmt.Sprintf(" %d:%d", partition, block.Offset)
				}
			}
		}
		if done {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("group %s never committed offset %d on every partition: last %s (err %v)", groupID, offset, last, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// expectDescribedGroup checks DescribeConsumerGroups once the group is Stable: protocol
// type consumer, the balancer's protocol name, and each member with its client id, host
// and the claims of its session.
func expectDescribedGroup(ctx context.Context, t *testing.T, admin sarama.ClusterAdmin, groupID, topic, protocol string, members ...*groupMember) {
	t.Helper()
	var described *sarama.GroupDescription
	suite.WaitFor(ctx, t, "DescribeConsumerGroups to show the group Stable", func() bool {
		groups, err := admin.DescribeConsumerGroups([]string{groupID})
		if err != nil || len(groups) != 1 {
			return false
		}
		described = groups[0]
		return described.Err == sarama.ErrNoError && described.State == "Stable"
	})
	if described.ProtocolType != "consumer" || described.Protocol != protocol || len(described.Members) != len(members) {
		t.Fatalf("DescribeConsumerGroups: %+v", described)
	}
	for _, m := range members {
		m.mu.Lock()
		memberID := m.memberID
		m.mu.Unlock()
		d, ok := described.Members[memberID]
		if !ok {
			t.Fatalf("DescribeConsumerGroups does not list %s's member id %s: %+v", m.name, memberID, described.Members)
		}
		assignment, err := d.GetMemberAssignment()
		if err != nil || d.ClientId != "corelog-sarama-suite" || d.ClientHost == "" {
			t.Fatalf("DescribeConsumerGroups: member %s: %+v (assignment error %v)", m.name, d, err)
		}
		assigned := slices.Sorted(slices.Values(assignment.Topics[topic]))
		if !slices.Equal(assigned, m.partitions()) {
			t.Fatalf("DescribeConsumerGroups: %s is assigned %v, its session claims %v", m.name, assigned, m.partitions())
		}
	}
}
