//! Setting up a bench run against any Kafka-compatible cluster: create the
//! scenario's topics, then learn every partition's leader and the brokers'
//! addresses from Metadata, then wait until every partition serves. Runs
//! once, on a short-lived executor, before the load starts; the result
//! (`ClusterView`) is plain `Send` data.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::time::Duration;

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use crate::client::connection::Connection;

/// Protocol versions the load generator speaks: old enough for Kafka 2.x,
/// Redpanda and corelog alike, new enough for RecordBatch v2 and KIP-74.
pub const METADATA_VERSION: i16 = 9;
pub const CREATE_TOPICS_VERSION: i16 = 4;
pub const PRODUCE_VERSION: i16 = 8;
pub const FETCH_VERSION: i16 = 11;
pub const LIST_OFFSETS_VERSION: i16 = 2;
/// How long a new topic's partitions may take to serve: Apache Kafka pinned
/// to one core opens 10,000 partition logs well after Metadata names their
/// leader.
const PARTITIONS_READY_TIMEOUT: Duration = Duration::from_secs(120);

/// Where each partition lives.
#[derive(Debug, Clone)]
pub struct ClusterView {
    pub brokers: HashMap<i32, SocketAddr>,
    /// (topic, partition) -> leader node id, in topic then partition order.
    pub partitions: Vec<PartitionLeader>,
}

#[derive(Debug, Clone)]
pub struct PartitionLeader {
    pub topic: String,
    pub partition: i32,
    pub leader: i32,
}

impl ClusterView {
    /// Opens a connection to broker `node`.
    pub async fn connect(&self, node: i32, client_id: &str) -> io::Result<Rc<Connection>> {
        let address = self
            .brokers
            .get(&node)
            .copied()
            .ok_or_else(|| io::Error::other(format!("no address for broker {node}")))?;
        Connection::connect(address, client_id).await
    }
}

pub fn resolve(address: &str) -> io::Result<SocketAddr> {
    address.to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cannot resolve {address}"),
        )
    })
}

/// Creates `topics` (ignoring "already exists") and waits until every
/// partition has a leader, then returns the view.
pub async fn prepare_topics(
    bootstrap: SocketAddr,
    topics: &[String],
    partitions: i32,
    replication_factor: i16,
) -> io::Result<ClusterView> {
    let connection = Connection::connect(bootstrap, "corelog-bench-setup").await?;
    let request = CreateTopicsRequest::default()
        .with_topics(
            topics
                .iter()
                .map(|name| {
                    CreatableTopic::default()
                        .with_name(TopicName(StrBytes::from_string(name.clone())))
                        .with_num_partitions(partitions)
                        .with_replication_factor(replication_factor)
                })
                .collect(),
        )
        .with_timeout_ms(30_000);
    let response: CreateTopicsResponse = connection
        .call(ApiKey::CreateTopics, CREATE_TOPICS_VERSION, &request)
        .await?;
    for result in &response.topics {
        // 36 = TOPIC_ALREADY_EXISTS: fine for a rerun against a long-lived cluster.
        if result.error_code != 0 && result.error_code != 36 {
            return Err(io::Error::other(format!(
                "creating topic {} failed with Kafka error {} ({})",
                result.name.0.as_str(),
                result.error_code,
                result.error_message.as_deref().unwrap_or("")
            )));
        }
    }
    for _attempt in 0..100 {
        if let Some(view) = metadata_view(&connection, topics, partitions).await? {
            if every_leader_knows(&view, topics, partitions).await? {
                wait_until_partitions_serve(&view).await?;
                return Ok(view);
            }
        }
        glommio::timer::sleep(Duration::from_millis(100)).await;
    }
    Err(io::Error::other("topics did not get leaders within 10 s"))
}

/// Waits until every partition's leader answers ListOffsets (latest) for it
/// without an error. Apache Kafka names a new partition's leader in Metadata
/// before its replica manager has opened the partition's log, and produce
/// requests in that gap fail with NOT_LEADER_OR_FOLLOWER; the load generator
/// does not retry, so it must not start before every partition serves.
async fn wait_until_partitions_serve(view: &ClusterView) -> io::Result<()> {
    let mut by_leader: HashMap<i32, Vec<&PartitionLeader>> = HashMap::new();
    for partition in &view.partitions {
        by_leader
            .entry(partition.leader)
            .or_default()
            .push(partition);
    }
    let deadline = std::time::Instant::now() + PARTITIONS_READY_TIMEOUT;
    for (leader, partitions) in by_leader {
        let connection = view.connect(leader, "corelog-bench-setup").await?;
        let request = list_latest_offsets_request(&partitions);
        loop {
            let response: ListOffsetsResponse = connection
                .call(ApiKey::ListOffsets, LIST_OFFSETS_VERSION, &request)
                .await?;
            let not_serving = response
                .topics
                .iter()
                .flat_map(|topic| topic.partitions.iter())
                .filter(|partition| partition.error_code != 0)
                .count();
            if not_serving == 0 {
                break;
            }
            if std::time::Instant::now() >= deadline {
                return Err(io::Error::other(format!(
                    "{not_serving} partitions on broker {leader} still refuse ListOffsets \
                     {} s after their topics were created",
                    PARTITIONS_READY_TIMEOUT.as_secs()
                )));
            }
            glommio::timer::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

fn list_latest_offsets_request(partitions: &[&PartitionLeader]) -> ListOffsetsRequest {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    /// ListOffsets timestamp -1: the log end offset.
    const LATEST_TIMESTAMP: i64 = -1;
    let entries = partitions.iter().map(|partition| {
        let entry = ListOffsetsPartition::default()
            .with_partition_index(partition.partition)
            .with_timestamp(LATEST_TIMESTAMP);
        (partition.topic.as_str(), entry)
    });
    let topics = group_by_topic(entries)
        .into_iter()
        .map(|(topic, partitions)| {
            ListOffsetsTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(topics)
}

/// Per-partition entries of a request grouped by topic, topics in the order
/// they first appear (requests name each topic once).
pub fn group_by_topic<'a, T>(
    entries: impl IntoIterator<Item = (&'a str, T)>,
) -> Vec<(&'a str, Vec<T>)> {
    let mut topics: Vec<(&'a str, Vec<T>)> = Vec::new();
    for (topic, entry) in entries {
        match topics.iter_mut().find(|(name, _)| *name == topic) {
            Some((_, grouped)) => grouped.push(entry),
            None => topics.push((topic, vec![entry])),
        }
    }
    topics
}

/// A topic name for a request.
pub fn topic_name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

/// Whether every leading broker already serves the topics: in a cluster a
/// new topic reaches each broker's metadata a moment after the one that
/// answered the create, and the load must not start before (its first
/// fetches would fail with UNKNOWN_TOPIC_OR_PARTITION and count as errors).
async fn every_leader_knows(
    view: &ClusterView,
    topics: &[String],
    partitions: i32,
) -> io::Result<bool> {
    let mut leaders: Vec<i32> = view.partitions.iter().map(|p| p.leader).collect();
    leaders.sort_unstable();
    leaders.dedup();
    for leader in leaders {
        let connection = view.connect(leader, "corelog-bench-setup").await?;
        if metadata_view(&connection, topics, partitions)
            .await?
            .is_none()
        {
            return Ok(false);
        }
    }
    Ok(true)
}

async fn metadata_view(
    connection: &Connection,
    topics: &[String],
    partitions: i32,
) -> io::Result<Option<ClusterView>> {
    let request = MetadataRequest::default().with_topics(Some(
        topics
            .iter()
            .map(|name| {
                MetadataRequestTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_string(name.clone()))))
            })
            .collect(),
    ));
    let response: MetadataResponse = connection
        .call(ApiKey::Metadata, METADATA_VERSION, &request)
        .await?;
    let mut brokers = HashMap::new();
    for broker in &response.brokers {
        let address = resolve(&format!("{}:{}", broker.host.as_str(), broker.port))?;
        brokers.insert(broker.node_id.0, address);
    }
    let mut view = ClusterView {
        brokers,
        partitions: Vec::new(),
    };
    for name in topics {
        let Some(topic) = response
            .topics
            .iter()
            .find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some(name.as_str()))
        else {
            return Ok(None);
        };
        if topic.error_code != 0 || topic.partitions.len() != partitions as usize {
            return Ok(None);
        }
        let mut found: Vec<PartitionLeader> = topic
            .partitions
            .iter()
            .map(|p| PartitionLeader {
                topic: name.clone(),
                partition: p.partition_index,
                leader: p.leader_id.0,
            })
            .collect();
        if found
            .iter()
            .any(|p| p.leader < 0 || !view.brokers.contains_key(&p.leader))
        {
            return Ok(None);
        }
        found.sort_by_key(|p| p.partition);
        view.partitions.extend(found);
    }
    Ok(Some(view))
}
