package franz

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/corelog/corelog/tests/go/internal/suite"
)

// TestAdminTopicLifecycle: kadm creates two topics (one with a config), a second create
// fails with TOPIC_ALREADY_EXISTS, ListTopics and Metadata describe them (partitions,
// leader, replicas, ISR, topic id), DescribeTopicConfigs shows the config, and after
// DeleteTopics they are gone: not listed, and deleting again gives
// UNKNOWN_TOPIC_OR_PARTITION.
func TestAdminTopicLifecycle(t *testing.T) {
	ctx := suite.Context(t)
	admin := newAdmin(t)
	plain, configured := uniqueName("admin"), uniqueName("admin-configured")
	retention := "3600000"

	created, err := admin.CreateTopics(ctx, 3, 1, nil, plain)
	if err != nil || created.Error() != nil {
		t.Fatalf("create %s: %v %v", plain, err, created.Error())
	}
	withConfig, err := admin.CreateTopic(ctx, 2, 1, map[string]*string{"retention.ms": &retention}, configured)
	if err != nil {
		t.Fatalf("create %s: %v (%s)", configured, err, withConfig.ErrMessage)
	}
	for _, response := range []kadm.CreateTopicResponse{created[plain], withConfig} {
		if response.ID == (kadm.TopicID{}) {
			t.Fatalf("create %s: no topic id in the response", response.Topic)
		}
	}
	if withConfig.NumPartitions != 2 || withConfig.ReplicationFactor != 1 {
		t.Fatalf("create %s answered %d partitions, replication factor %d", configured,
			withConfig.NumPartitions, withConfig.ReplicationFactor)
	}
	if value := withConfig.Configs["retention.ms"].Value; value == nil || *value != retention {
		t.Fatalf("create %s answered retention.ms %v, expected %s", configured, value, retention)
	}

	again, err := admin.CreateTopic(ctx, 3, 1, nil, plain)
	if !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("creating %s again: %v (%+v), expected TOPIC_ALREADY_EXISTS", plain, err, again)
	}

	// Kafka answers CreateTopics once the controller has the topics; a broker's metadata
	// may list them a moment later.
	var listed kadm.TopicDetails
	suite.WaitFor(ctx, t, "created topics in ListTopics", func() bool {
		listed, err = admin.ListTopics(ctx)
		return err == nil && listed.Has(plain) && listed.Has(configured) &&
			len(listed[plain].Partitions) == 3 && len(listed[configured].Partitions) == 2
	})
	for topic, partitions := range map[string]int{plain: 3, configured: 2} {
		detail, ok := listed[topic]
		if !ok || detail.Err != nil {
			t.Fatalf("ListTopics does not list %s: %+v", topic, detail)
		}
		if len(detail.Partitions) != partitions {
			t.Fatalf("%s: %d partitions listed, expected %d", topic, len(detail.Partitions), partitions)
		}
		if created := map[string]kadm.TopicID{plain: created[plain].ID, configured: withConfig.ID}[topic]; detail.ID != created {
			t.Fatalf("%s: listed id %v, created with another", topic, detail.ID)
		}
	}

	metadata, err := admin.Metadata(ctx, plain)
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	if len(metadata.Brokers) == 0 || metadata.Controller < 0 {
		t.Fatalf("metadata: brokers %v, controller %d", metadata.Brokers, metadata.Controller)
	}
	detail := metadata.Topics[plain]
	if detail.Err != nil || detail.IsInternal || detail.ID != created[plain].ID {
		t.Fatalf("metadata of %s: %+v", plain, detail)
	}
	for partition := range int32(3) {
		p, ok := detail.Partitions[partition]
		if !ok || p.Err != nil || p.Leader < 0 || !slices.Equal(p.Replicas, []int32{p.Leader}) ||
			!slices.Equal(p.ISR, []int32{p.Leader}) {
			t.Fatalf("metadata of %s[%d]: %+v", plain, partition, p)
		}
	}

	configs, err := admin.DescribeTopicConfigs(ctx, configured)
	if err != nil {
		t.Fatalf("describe configs: %v", err)
	}
	value, err := configs.On(configured, func(config *kadm.ResourceConfig) error {
		for _, entry := range config.Configs {
			if entry.Key == "retention.ms" {
				if entry.Value == nil || *entry.Value != retention {
					return fmt.Errorf("retention.ms is %v", entry.Value)
				}
				return nil
			}
		}
		return errors.New("no retention.ms")
	})
	if err != nil {
		t.Fatalf("describe configs of %s: %v (%+v)", configured, err, value)
	}

	deleted, err := admin.DeleteTopics(ctx, plain, configured)
	if err != nil || deleted.Error() != nil {
		t.Fatalf("delete topics: %v %v", err, deleted.Error())
	}
	suite.WaitFor(ctx, t, "deleted topics to leave ListTopics", func() bool {
		listed, err := admin.ListTopics(ctx)
		return err == nil && !listed.Has(plain) && !listed.Has(configured)
	})
	if _, err := admin.DeleteTopic(ctx, plain); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("deleting %s again: %v, expected UNKNOWN_TOPIC_OR_PARTITION", plain, err)
	}
}

// TestAdminOffsetsCommitFetchAndEndOffsets: ListStartOffsets and ListEndOffsets after
// records on chosen partitions; CommitOffsets of a group that has no members (generation
// -1, as Kafka's tools do), with metadata; FetchOffsets returns exactly them; a second
// commit moves one partition; a group that never committed fetches nothing.
func TestAdminOffsetsCommitFetchAndEndOffsets(t *testing.T) {
	ctx := suite.Context(t)
	admin := newAdmin(t)
	topic, group := uniqueName("offsets"), uniqueName("offsets")
	createTopic(ctx, t, admin, topic, 2)
	producer := newClient(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	defer producer.Close()
	counts := map[int32]int{0: 5, 1: 3}
	var records []*kgo.Record
	for partition, count := range counts {
		for i := range count {
			records = append(records, &kgo.Record{Partition: partition, Value: []byte(fmt.Sprint(i))})
		}
	}
	if err := producer.ProduceSync(ctx, records...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}

	starts, err := admin.ListStartOffsets(ctx, topic)
	if err != nil || starts.Error() != nil {
		t.Fatalf("list start offsets: %v %v", err, starts.Error())
	}
	ends, err := admin.ListEndOffsets(ctx, topic)
	if err != nil || ends.Error() != nil {
		t.Fatalf("list end offsets: %v %v", err, ends.Error())
	}
	for partition, count := range counts {
		start, _ := starts.Lookup(topic, partition)
		end, _ := ends.Lookup(topic, partition)
		if start.Offset != 0 || end.Offset != int64(count) {
			t.Fatalf("partition %d: start %d, end %d; expected 0 and %d", partition, start.Offset, end.Offset, count)
		}
	}

	toCommit := kadm.Offsets{}
	toCommit.Add(kadm.Offset{Topic: topic, Partition: 0, At: 4, LeaderEpoch: -1, Metadata: "first"})
	toCommit.Add(kadm.Offset{Topic: topic, Partition: 1, At: 3, LeaderEpoch: -1, Metadata: "second"})
	if err := admin.CommitAllOffsets(ctx, group, toCommit); err != nil {
		t.Fatalf("commit offsets: %v", err)
	}
	expectCommitted(ctx, t, admin, group, topic, map[int32]kadm.Offset{
		0: {At: 4, Metadata: "first"},
		1: {At: 3, Metadata: "second"},
	})

	moved := kadm.Offsets{}
	moved.Add(kadm.Offset{Topic: topic, Partition: 0, At: 5, LeaderEpoch: -1})
	responses, err := admin.CommitOffsets(ctx, group, moved)
	if err != nil || responses.Error() != nil {
		t.Fatalf("second commit: %v %v", err, responses.Error())
	}
	expectCommitted(ctx, t, admin, group, topic, map[int32]kadm.Offset{
		0: {At: 5, Metadata: ""},
		1: {At: 3, Metadata: "second"},
	})

	nothing, err := admin.FetchOffsets(ctx, uniqueName("never-committed"))
	if err != nil || nothing.Error() != nil {
		t.Fatalf("fetch offsets of an unknown group: %v %v", err, nothing.Error())
	}
	nothing.DeleteFunc(func(o kadm.OffsetResponse) bool { return o.At < 0 })
	if len(nothing) != 0 {
		t.Fatalf("a group that never committed has offsets: %v", nothing)
	}
}

func expectCommitted(ctx context.Context, t *testing.T, admin *kadm.Client, group, topic string, want map[int32]kadm.Offset) {
	t.Helper()
	fetched, err := admin.FetchOffsets(ctx, group)
	if err != nil || fetched.Error() != nil {
		t.Fatalf("fetch offsets: %v %v", err, fetched.Error())
	}
	for partition, expected := range want {
		got, ok := fetched.Lookup(topic, partition)
		if !ok || got.At != expected.At || got.Metadata != expected.Metadata {
			t.Fatalf("partition %d: fetched %+v, committed %+v", partition, got, expected)
		}
	}
}
