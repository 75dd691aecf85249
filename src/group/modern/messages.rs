//! What goes into the consumer group state machine and what comes out:
//! the decoded ConsumerGroupHeartbeat request (v0/v1), its response, the
//! records to persist, and the view of topic metadata the group resolves
//! subscriptions against. Plain data, no codecs: the protocol layer copies
//! fields to and from the `kafka-protocol` messages.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::error::HeartbeatError;
use super::records::ConsumerGroupRecord;
use super::Assignment;
use crate::metadata::catalog::Catalog;

/// Partitions the member owns, as it reports them (one entry per topic).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnedTopicPartitions {
    pub topic_id: Uuid,
    pub partitions: Vec<i32>,
}

/// One ConsumerGroupHeartbeat request. `None` (and -1 for the rebalance
/// timeout) means "unchanged since the last heartbeat", as on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeartbeatRequest {
    /// The request's version: from v1 the client must send its member id.
    pub api_version: i16,
    pub group_id: String,
    /// v0 may leave it empty when joining; the coordinator then picks one.
    pub member_id: String,
    /// 0 joins, -1 leaves, -2 leaves a static member that will come back.
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub subscribed_topic_names: Option<Vec<String>>,
    /// v1: an RE2 regex matched against whole topic names.
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    /// The partitions the member owns now.
    pub topic_partitions: Option<Vec<OwnedTopicPartitions>>,
    /// From the request header and the connection.
    pub client_id: String,
    pub client_host: String,
}

/// A ConsumerGroupHeartbeat response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatResponse {
    pub error_code: i16,
    pub error_message: Option<String>,
    pub member_id: Option<String>,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// The member's whole assignment, sent only when it changed or the
    /// member sent a full request (see `heartbeat.rs`).
    pub assignment: Option<Assignment>,
}

impl HeartbeatResponse {
    /// The response to a refused heartbeat: no member id, epoch 0.
    pub fn error(error: &HeartbeatError) -> Self {
        HeartbeatResponse {
            error_code: error.code(),
            error_message: Some(error.to_string()),
            member_id: None,
            member_epoch: 0,
            heartbeat_interval_ms: 0,
            assignment: None,
        }
    }
}

/// A heartbeat's answer plus the records to append to the offsets
/// partition (records of timers that fell due first, then the request's).
/// The group has already applied them; the caller persists them and sends
/// the response once they are durable, as Kafka does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatOutcome {
    pub response: HeartbeatResponse,
    pub records: Vec<ConsumerGroupRecord>,
}

/// One topic as the group needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TopicInfo {
    pub topic_id: Uuid,
    pub partition_count: i32,
}

/// The topic metadata a group resolves subscriptions against. `version`
/// must change whenever a topic is created, deleted or grows, so the group
/// can skip re-resolving regexes while nothing changed.
pub trait TopicView {
    fn version(&self) -> u64;
    fn topic(&self, name: &str) -> Option<TopicInfo>;
    fn topic_name(&self, topic_id: &Uuid) -> Option<String>;
    /// Every topic name, in any order.
    fn for_each_topic_name(&self, visit: &mut dyn FnMut(&str));
}

impl TopicView for Catalog {
    fn version(&self) -> u64 {
        self.version
    }
    fn topic(&self, name: &str) -> Option<TopicInfo> {
        Catalog::topic(self, name).map(|topic| TopicInfo {
            topic_id: topic.topic_id,
            partition_count: topic.partition_count,
        })
    }
    fn topic_name(&self, topic_id: &Uuid) -> Option<String> {
        self.topic_by_id(topic_id)
            .map(|topic| topic.name.to_string())
    }
    fn for_each_topic_name(&self, visit: &mut dyn FnMut(&str)) {
        for topic in self.topics() {
            visit(&topic.name);
        }
    }
}

/// A plain table of topics, for tests and tools.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicTable {
    pub version: u64,
    pub topics: BTreeMap<String, TopicInfo>,
}

impl TopicTable {
    /// Add or grow a topic, bumping the version.
    pub fn put(&mut self, name: &str, topic_id: Uuid, partition_count: i32) {
        self.version += 1;
        self.topics.insert(
            name.to_string(),
            TopicInfo {
                topic_id,
                partition_count,
            },
        );
    }

    /// Delete a topic, bumping the version.
    pub fn remove(&mut self, name: &str) {
        self.version += 1;
        self.topics.remove(name);
    }
}

impl TopicView for TopicTable {
    fn version(&self) -> u64 {
        self.version
    }
    fn topic(&self, name: &str) -> Option<TopicInfo> {
        self.topics.get(name).copied()
    }
    fn topic_name(&self, topic_id: &Uuid) -> Option<String> {
        self.topics
            .iter()
            .find(|(_, topic)| topic.topic_id == *topic_id)
            .map(|(name, _)| name.clone())
    }
    fn for_each_topic_name(&self, visit: &mut dyn FnMut(&str)) {
        for name in self.topics.keys() {
            visit(name);
        }
    }
}
