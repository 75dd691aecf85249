package sarama

import (
	"errors"
	"testing"

	"github.com/IBM/sarama"

	"github.com/corelog/corelog/tests/go/internal/suite"
)

// TestClusterAdminTopicLifecycle: CreateTopic with a config, a second CreateTopic fails
// with TOPIC_ALREADY_EXISTS, ListTopics and DescribeTopics show the partitions (leader,
// replicas, ISR) and DescribeConfig the config; after DeleteTopic the topic is no longer
// listed and deleting it again gives UNKNOWN_TOPIC_OR_PARTITION.
func TestClusterAdminTopicLifecycle(t *testing.T) {
	ctx := suite.Context(t)
	admin := newAdmin(t)
	topic := uniqueName("admin")
	retention := "7200000"
	detail := &sarama.TopicDetail{
		NumPartitions:     3,
		ReplicationFactor: 1,
		ConfigEntries:     map[string]*string{"retention.ms": &retention},
	}
	if err := admin.CreateTopic(topic, detail, false); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	if err := admin.CreateTopic(topic, detail, false); !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		t.Fatalf("CreateTopic again: %v, expected TOPIC_ALREADY_EXISTS", err)
	}

	// Kafka answers CreateTopics once the controller has the topic; a broker's metadata may
	// list it a moment later.
	var listed map[string]sarama.TopicDetail
	suite.WaitFor(ctx, t, "the created topic in ListTopics", func() bool {
		var err error
		listed, err = admin.ListTopics()
		return err == nil && listed[topic].NumPartitions == 3
	})
	if got := listed[topic]; got.ReplicationFactor != 1 ||
		got.ConfigEntries["retention.ms"] == nil || *got.ConfigEntries["retention.ms"] != retention {
		t.Fatalf("ListTopics shows %s as %+v", topic, got)
	}

	described, err := admin.DescribeTopics([]string{topic})
	if err != nil || len(described) != 1 {
		t.Fatalf("DescribeTopics: %v %v", described, err)
	}
	metadata := described[0]
	if metadata.Err != sarama.ErrNoError || metadata.Name != topic || metadata.IsInternal || len(metadata.Partitions) != 3 {
		t.Fatalf("DescribeTopics: %+v", metadata)
	}
	if metadata.Uuid == (sarama.Uuid{}) {
		t.Fatalf("DescribeTopics: no topic id")
	}
	for _, partition := range metadata.Partitions {
		if partition.Err != sarama.ErrNoError || partition.Leader < 0 || len(partition.Replicas) != 1 ||
			len(partition.Isr) != 1 || partition.Replicas[0] != partition.Leader {
			t.Fatalf("DescribeTopics: partition %+v", partition)
		}
	}

	configs, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
	if err != nil {
		t.Fatalf("DescribeConfig: %v", err)
	}
	found := false
	for _, entry := range configs {
		if entry.Name == "retention.ms" {
			found = true
			if entry.Value != retention || entry.Default || entry.Source != sarama.SourceTopic {
				t.Fatalf("DescribeConfig: retention.ms %+v", entry)
			}
		}
	}
	if !found {
		t.Fatalf("DescribeConfig has no retention.ms: %v", configs)
	}

	if err := admin.DeleteTopic(topic); err != nil {
		t.Fatalf("DeleteTopic: %v", err)
	}
	suite.WaitFor(ctx, t, "the deleted topic to leave ListTopics", func() bool {
		listed, err := admin.ListTopics()
		_, present := listed[topic]
		return err == nil && !present
	})
	if err := admin.DeleteTopic(topic); !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		t.Fatalf("DeleteTopic again: %v, expected UNKNOWN_TOPIC_OR_PARTITION", err)
	}
}

// TestOffsetManagerCommitAndFetch: the OffsetManager of a group with no members marks and
// commits offsets with metadata; a new OffsetManager resumes from them (NextOffset), the
// admin's ListConsumerGroupOffsets reads the same, a partition never committed reads -1,
// and ResetOffset moves a commit back.
func TestOffsetManagerCommitAndFetch(t *testing.T) {
	admin := newAdmin(t)
	topic, groupID := uniqueName("offsets"), uniqueName("offsets")
	createTopic(t, admin, topic, 3)
	produce(t, topic, 0, 30, 3)

	config := newConfig()
	config.Consumer.Offsets.AutoCommit.Enable = false
	config.Consumer.Offsets.Initial = sarama.OffsetOldest
	client := newClient(t, config)
	commit := func(apply func(map[int32]sarama.PartitionOffsetManager)) {
		t.Helper()
		manager, err := sarama.NewOffsetManagerFromClient(groupID, client)
		if err != nil {
			t.Fatalf("NewOffsetManager: %v", err)
		}
		managed := map[int32]sarama.PartitionOffsetManager{}
		for partition := range int32(2) {
			if managed[partition], err = manager.ManagePartition(topic, partition); err != nil {
				t.Fatalf("ManagePartition %d: %v", partition, err)
			}
		}
		apply(managed)
		manager.Commit()
		for partition, partitionManager := range managed {
			select {
			case err := <-partitionManager.Errors():
				t.Fatalf("partition %d: %v", partition, err)
			default:
			}
			partitionManager.AsyncClose()
		}
		if err := manager.Close(); err != nil {
			t.Fatalf("close the offset manager: %v", err)
		}
	}
	expect := func(want map[int32]int64, metadata map[int32]string) {
		t.Helper()
		response, err := admin.ListConsumerGroupOffsets(groupID, map[string][]int32{topic: {0, 1, 2}})
		if err != nil || response.Err != sarama.ErrNoError {
			t.Fatalf("ListConsumerGroupOffsets: %v %v", err, response)
		}
		for partition, offset := range want {
			block := response.GetBlock(topic, partition)
			if block == nil || block.Err != sarama.ErrNoError || block.Offset != offset || block.Metadata != metadata[partition] {
				t.Fatalf("partition %d: fetched %+v, expected offset %d metadata %q", partition, block, offset, metadata[partition])
			}
		}
	}

	commit(func(managed map[int32]sarama.PartitionOffsetManager) {
		if next, _ := managed[0].NextOffset(); next != sarama.OffsetOldest {
			t.Fatalf("a group without commits starts at %d, expected Consumer.Offsets.Initial (OffsetOldest)", next)
		}
		managed[0].MarkOffset(7, "seven")
		managed[1].MarkOffset(10, "ten")
	})
	expect(map[int32]int64{0: 7, 1: 10, 2: -1}, map[int32]string{0: "seven", 1: "ten"})

	commit(func(managed map[int32]sarama.PartitionOffsetManager) {
		for partition, want := range map[int32]int64{0: 7, 1: 10} {
			if next, _ := managed[partition].NextOffset(); next != want {
				t.Fatalf("partition %d: a new offset manager resumes at %d, expected %d", partition, next, want)
			}
		}
		managed[1].ResetOffset(4, "back")
	})
	expect(map[int32]int64{0: 7, 1: 4}, map[int32]string{0: "seven", 1: "back"})
}
