//! ListOffsets for many partitions at once, each request sent to the
//! partition's leader (Kafka answers NOT_LEADER_OR_FOLLOWER elsewhere).
//! Used by `topic describe`, `group describe`, `group reset-offsets` and
//! `consume`.

use std::collections::BTreeMap;

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::{KafkaClient, Node, ToolError};

/// ListOffsets timestamp for the log start offset.
pub const EARLIEST_TIMESTAMP: i64 = -2;
/// ListOffsets timestamp for the log end offset (high watermark).
pub const LATEST_TIMESTAMP: i64 = -1;
/// corelog serves ListOffsets 1-9; v1 is the first with one offset per partition.
const LIST_OFFSETS_VERSION_MAX: i16 = 9;

/// Topic and partition.
pub type TopicPartition = (String, i32);

/// The offset at `timestamp` (or `EARLIEST_TIMESTAMP` / `LATEST_TIMESTAMP`)
/// of each partition. A partition with no record at or after `timestamp`
/// maps to -1, as Kafka answers.
pub fn list_offsets(
    client: &mut KafkaClient,
    partitions: &[TopicPartition],
    timestamp: i64,
) -> Result<BTreeMap<TopicPartition, i64>, ToolError> {
    let leaders = leaders(client, partitions)?;
    let mut by_leader: BTreeMap<i32, BTreeMap<String, Vec<i32>>> = BTreeMap::new();
    for (topic, partition) in partitions {
        let leader = match leaders.get(&(topic.clone(), *partition)) {
            Some(leader) => *leader,
            // Not in one Metadata answer: ask again, partition by partition, for its error.
            None => client.leader(topic, *partition)?,
        };
        by_leader
            .entry(leader)
            .or_default()
            .entry(topic.clone())
            .or_default()
            .push(*partition);
    }
    let mut offsets = BTreeMap::new();
    for (leader, topics) in by_leader {
        let node = Node::Broker(leader);
        let version = client.version(&node, ApiKey::ListOffsets, LIST_OFFSETS_VERSION_MAX)?;
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(
                topics
                    .iter()
                    .map(|(topic, partitions)| {
                        ListOffsetsTopic::default()
                            .with_name(TopicName(StrBytes::from_string(topic.clone())))
                            .with_partitions(
                                partitions
                                    .iter()
                                    .map(|partition| {
                                        ListOffsetsPartition::default()
                                            .with_partition_index(*partition)
                                            .with_current_leader_epoch(-1)
                                            .with_timestamp(timestamp)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let response = client.send(&node, version, &request)?;
        for topic in response.topics {
            for partition in topic.partitions {
                let context = format!(
                    "listing offsets of topic {} partition {}",
                    topic.name.0, partition.partition_index
                );
                if partition.error_code != 0 {
                    return Err(ToolError::kafka(context, partition.error_code));
                }
                offsets.insert(
                    (topic.name.0.to_string(), partition.partition_index),
                    partition.offset,
                );
            }
        }
    }
    for topic_partition in partitions {
        if !offsets.contains_key(topic_partition) {
            return Err(ToolError::Protocol(format!(
                "ListOffsets answered nothing for topic {} partition {}",
                topic_partition.0, topic_partition.1
            )));
        }
    }
    Ok(offsets)
}

/// Leaders of the partitions that have one, from a single Metadata request.
fn leaders(
    client: &mut KafkaClient,
    partitions: &[TopicPartition],
) -> Result<BTreeMap<TopicPartition, i32>, ToolError> {
    let mut topics: Vec<String> = partitions.iter().map(|(topic, _)| topic.clone()).collect();
    topics.sort();
    topics.dedup();
    if topics.is_empty() {
        return Ok(BTreeMap::new());
    }
    let metadata = client.metadata(Some(&topics))?;
    let mut leaders = BTreeMap::new();
    for topic in metadata.topics.iter().filter(|topic| topic.error_code == 0) {
        let Some(name) = &topic.name else { continue };
        for partition in &topic.partitions {
            if partition.error_code == 0 && partition.leader_id.0 >= 0 {
                leaders.insert(
                    (name.0.to_string(), partition.partition_index),
                    partition.leader_id.0,
                );
            }
        }
    }
    Ok(leaders)
}
