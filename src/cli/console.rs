//! What `corelog produce` and `corelog consume` both need on top of the
//! blocking client in `cli::kafka`: a topic's partitions and their leaders
//! (optionally creating the topic, as Kafka's producer does), ListOffsets for
//! earliest/latest, and a Ctrl-C flag so the tools stop cleanly. Runs on the
//! CLI's main thread.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{ApiKey, BrokerId, ListOffsetsRequest, MetadataRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::cli::kafka::{KafkaClient, Node, ToolError};

pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
pub const LEADER_NOT_AVAILABLE: i16 = 5;
pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
pub const OFFSET_OUT_OF_RANGE: i16 = 1;

/// How long a topic that exists but has no leader yet (just created) is waited for.
const LEADER_WAIT: Duration = Duration::from_secs(10);
const RETRY_BACKOFF: Duration = Duration::from_millis(100);
/// Metadata v4 added `allow_auto_topic_creation`; 12 is corelog's highest.
const METADATA_VERSION_MAX: i16 = 12;
/// ListOffsets v1+ answers one offset per partition; v7 is plenty (names, not ids).
const LIST_OFFSETS_VERSION_MAX: i16 = 7;

/// Kafka's special ListOffsets timestamps.
pub const EARLIEST_TIMESTAMP: i64 = -2;
pub const LATEST_TIMESTAMP: i64 = -1;

/// A topic's partitions and the addresses of the brokers that lead them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicLayout {
    /// Sorted by partition; every leader is a live broker id.
    pub partitions: Vec<PartitionLeader>,
    /// Broker id -> `host:port`, from the same Metadata answer.
    pub brokers: HashMap<i32, String>,
}

/// One partition of a topic and the broker leading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionLeader {
    pub partition: i32,
    pub leader: i32,
}

/// The partitions of `topic`, sorted, each with its leader. With
/// `auto_create`, a first Metadata request asks the broker to create the
/// topic (Kafka's producer does this; the broker may refuse). An unknown topic
/// is a `Kafka` error naming UNKNOWN_TOPIC_OR_PARTITION.
pub fn topic_partitions(
    client: &mut KafkaClient,
    topic: &str,
    auto_create: bool,
) -> Result<TopicLayout, ToolError> {
    if auto_create {
        request_auto_creation(client, topic)?;
    }
    let deadline = Instant::now() + LEADER_WAIT;
    loop {
        let response = client.metadata(Some(&[topic.to_string()]))?;
        let found = response
            .topics
            .iter()
            .find(|candidate| candidate.name.as_ref().map(|name| &*name.0) == Some(topic));
        let code = match found {
            None => UNKNOWN_TOPIC_OR_PARTITION,
            Some(found) if found.error_code != 0 => found.error_code,
            Some(found) => {
                let mut partitions: Vec<PartitionLeader> = found
                    .partitions
                    .iter()
                    .map(|partition| PartitionLeader {
                        partition: partition.partition_index,
                        leader: partition.leader_id.0,
                    })
                    .collect();
                partitions.sort_by_key(|partition| partition.partition);
                if !partitions.is_empty() && partitions.iter().all(|p| p.leader >= 0) {
                    let brokers = response
                        .brokers
                        .iter()
                        .map(|broker| {
                            (broker.node_id.0, format!("{}:{}", broker.host, broker.port))
                        })
                        .collect();
                    return Ok(TopicLayout {
                        partitions,
                        brokers,
                    });
                }
                LEADER_NOT_AVAILABLE
            }
        };
        if code == UNKNOWN_TOPIC_OR_PARTITION {
            return Err(ToolError::kafka(
                format!("topic {topic} does not exist"),
                code,
            ));
        }
        if code != LEADER_NOT_AVAILABLE || Instant::now() >= deadline {
            return Err(ToolError::kafka(format!("topic {topic}"), code));
        }
        thread::sleep(RETRY_BACKOFF);
    }
}

/// A Metadata request for `topic` with `allow_auto_topic_creation`; the answer
/// is read again by `topic_partitions`, so only transport errors matter here.
fn request_auto_creation(client: &mut KafkaClient, topic: &str) -> Result<(), ToolError> {
    let version = client.version(&Node::Any, ApiKey::Metadata, METADATA_VERSION_MAX)?;
    if version < 4 {
        return Ok(()); // before v4 every Metadata request may auto-create
    }
    let request = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(
            TopicName(StrBytes::from_string(topic.to_string())),
        ))]))
        .with_allow_auto_topic_creation(true);
    client.send(&Node::Any, version, &request)?;
    Ok(())
}

/// The offset ListOffsets answers for `timestamp` (EARLIEST_TIMESTAMP,
/// LATEST_TIMESTAMP or a time in ms) on each of `partitions` of `topic`.
pub fn list_offsets(
    client: &mut KafkaClient,
    topic: &str,
    partitions: &[PartitionLeader],
    timestamp: i64,
) -> Result<Vec<(i32, i64)>, ToolError> {
    let mut offsets = Vec::with_capacity(partitions.len());
    let mut leaders: Vec<i32> = partitions.iter().map(|p| p.leader).collect();
    leaders.sort_unstable();
    leaders.dedup();
    for leader in leaders {
        let node = Node::Broker(leader);
        let version = client.version(&node, ApiKey::ListOffsets, LIST_OFFSETS_VERSION_MAX)?;
        let asked: Vec<ListOffsetsPartition> = partitions
            .iter()
            .filter(|p| p.leader == leader)
            .map(|p| {
                ListOffsetsPartition::default()
                    .with_partition_index(p.partition)
                    .with_timestamp(timestamp)
            })
            .collect();
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(asked)]);
        let response = client.send(&node, version, &request)?;
        for answered in response.topics.iter().flat_map(|t| t.partitions.iter()) {
            if answered.error_code != 0 {
                return Err(ToolError::kafka(
                    format!(
                        "ListOffsets for {topic} partition {}",
                        answered.partition_index
                    ),
                    answered.error_code,
                ));
            }
            offsets.push((answered.partition_index, answered.offset));
        }
    }
    offsets.sort_unstable();
    Ok(offsets)
}

/// Set by SIGINT/SIGTERM: the tools finish what they hold (commit, leave the
/// group, flush output) and exit 0, as Kafka's console consumer does.
pub fn stop_flag() -> Result<Arc<AtomicBool>, ToolError> {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&flag)).map_err(|source| ToolError::Io {
            peer: "signal handler".into(),
            source,
        })?;
    }
    Ok(flag)
}

pub fn stopped(flag: &AtomicBool) -> bool {
    flag.load(Ordering::Relaxed)
}
