//! The metadata layer's typed errors: [`ReplayError`] (a record that cannot
//! be applied: a bug or a corrupt log, never a client's fault) and
//! [`ControllerError`] (a refused request, mapping one-to-one to the Kafka
//! error code of the answer, with Kafka's message where it has one). One file
//! so the codes a controller can answer with are listed in one place.

use uuid::Uuid;

use super::assignment::AssignmentError;
use crate::protocol::errors::KafkaError;

/// A record that cannot be applied to the image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// Records are applied in log order; a snapshot's records share its offset.
    #[error("record at offset {offset} after offset {last}")]
    OffsetWentBackwards {
        /// The last applied offset.
        last: u64,
        /// The record's offset.
        offset: u64,
    },
    /// A second, different cluster id.
    #[error("cluster id {record} replayed over cluster id {current}")]
    ClusterIdChanged {
        /// The image's cluster id.
        current: String,
        /// The record's.
        record: String,
    },
    /// A record about a broker that is not registered.
    #[error("broker {0} is not registered")]
    UnknownBroker(i32),
    /// A broker record for another registration than the current one, or a
    /// re-registration that does not raise the broker epoch.
    #[error(
        "broker {broker_id}: record epoch {record} does not match registration epoch {current}"
    )]
    StaleBrokerEpoch {
        /// The broker.
        broker_id: i32,
        /// The current registration's epoch.
        current: i64,
        /// The record's epoch.
        record: i64,
    },
    /// A topic with this name already exists.
    #[error("topic {0} already exists")]
    DuplicateTopicName(String),
    /// A topic with this id already exists.
    #[error("topic id {0} already exists")]
    DuplicateTopicId(Uuid),
    /// A record about a topic that does not exist.
    #[error("unknown topic id {0}")]
    UnknownTopic(Uuid),
    /// Partitions are created in order, from 0.
    #[error("topic {topic_id}: partition {partition} created, partition {expected} expected")]
    PartitionOutOfOrder {
        /// The topic.
        topic_id: Uuid,
        /// The record's partition.
        partition: i32,
        /// The next partition index.
        expected: i32,
    },
    /// A change to a partition that does not exist.
    #[error("topic {topic_id} has no partition {partition}")]
    UnknownPartition {
        /// The topic.
        topic_id: Uuid,
        /// The partition.
        partition: i32,
    },
    /// Replicas, ISR and leader that do not fit together.
    #[error("topic {topic_id} partition {partition}: {reason}")]
    InvalidPartition {
        /// The topic.
        topic_id: Uuid,
        /// The partition.
        partition: i32,
        /// Which rule is broken.
        reason: &'static str,
    },
    /// A config name or value the topic-config rules refuse.
    #[error("topic {topic_id}: {message}")]
    InvalidConfig {
        /// The topic.
        topic_id: Uuid,
        /// Kafka's message.
        message: String,
    },
    /// Producer-id blocks only move forward (Kafka checks the same).
    #[error("next producer id {record} is not above {current}")]
    ProducerIdWentBackwards {
        /// The image's next producer id.
        current: i64,
        /// The record's.
        record: i64,
    },
}

/// A refused request; `kafka_error()` is the code, `Display` the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControllerError {
    /// The broker belongs to another cluster.
    #[error("Expected cluster id {expected}, but the broker sent {found}")]
    InconsistentClusterId {
        /// The log's cluster id.
        expected: String,
        /// The request's.
        found: String,
    },
    /// Another live process already registered this broker id.
    #[error("Another broker is registered with id {broker_id}")]
    DuplicateBrokerRegistration {
        /// The broker id in use.
        broker_id: i32,
    },
    /// The broker is not registered.
    #[error("Broker {broker_id} is not registered")]
    BrokerIdNotRegistered {
        /// The broker.
        broker_id: i32,
    },
    /// A request from an older registration of the broker.
    #[error("Broker {broker_id}: epoch {request} is not the current {current}")]
    StaleBrokerEpoch {
        /// The broker.
        broker_id: i32,
        /// Its current registration's epoch.
        current: i64,
        /// The request's epoch.
        request: i64,
    },
    /// The topic name breaks Kafka's rules (the message says which).
    #[error("{0}")]
    InvalidTopicName(String),
    /// The topic exists.
    #[error("Topic '{0}' already exists.")]
    TopicAlreadyExists(String),
    /// No topic with this name.
    #[error("The topic '{0}' does not exist.")]
    UnknownTopic(String),
    /// No topic with this id.
    #[error("Topic id {0} does not exist.")]
    UnknownTopicId(Uuid),
    /// The topic id passed in is nil or in use (retry with a new one).
    #[error("Topic id {0} cannot be used for a new topic")]
    UnusableTopicId(Uuid),
    /// A bad partition count.
    #[error("{0}")]
    InvalidPartitions(String),
    /// A bad replication factor, or not enough live brokers.
    #[error("{0}")]
    InvalidReplicationFactor(String),
    /// A bad config name or value.
    #[error("{0}")]
    InvalidConfig(String),
    /// A node limit would be passed (the message names it).
    #[error("{0}")]
    PolicyViolation(String),
    /// Producer ids are 64-bit; this would take a lifetime, but not panic.
    #[error("Exhausted all producer ids")]
    ProducerIdsExhausted,
    /// A manual replica assignment Kafka refuses (the message says why).
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    /// A request that contradicts itself (the message says how).
    #[error("{0}")]
    InvalidRequest(String),
    /// AlterPartition from a broker with no registration at all (Kafka's
    /// `checkBrokerEpoch` answers STALE_BROKER_EPOCH for it too).
    #[error("No broker registration found for broker {broker_id}")]
    NoBrokerRegistration {
        /// The broker.
        broker_id: i32,
    },
    /// The topic exists but not this partition.
    #[error("Topic {topic_id} has no partition {partition}.")]
    UnknownPartition {
        /// The topic.
        topic_id: Uuid,
        /// The partition asked for.
        partition: i32,
    },
    /// AlterPartition from a broker that does not lead the partition.
    #[error(
        "Broker {broker_id} is not the leader of {topic_id}-{partition} (the leader is {leader})"
    )]
    NotLeader {
        /// The requester.
        broker_id: i32,
        /// The topic.
        topic_id: Uuid,
        /// The partition.
        partition: i32,
        /// The current leader (-1 for none).
        leader: i32,
    },
    /// AlterPartition with another leader epoch than the partition's.
    #[error("Leader epoch {request} is not the partition's current leader epoch {current}")]
    FencedLeaderEpoch {
        /// The partition's leader epoch.
        current: i32,
        /// The request's.
        request: i32,
    },
    /// AlterPartition with another partition epoch than the partition's
    /// (KIP-497: the leader's view is out of date).
    #[error("Partition epoch {request} is not the partition's current partition epoch {current}")]
    InvalidUpdateVersion {
        /// The partition's partition epoch.
        current: i32,
        /// The request's.
        request: i32,
    },
    /// A proposed ISR with a member that may not be in it (not a replica,
    /// not the leader's ISR, or a fenced or unregistered broker).
    #[error("{0}")]
    IneligibleReplica(String),
}

impl ControllerError {
    /// The Kafka error code to answer with.
    pub fn kafka_error(&self) -> KafkaError {
        match self {
            ControllerError::InconsistentClusterId { .. } => KafkaError::InconsistentClusterId,
            ControllerError::DuplicateBrokerRegistration { .. } => {
                KafkaError::DuplicateBrokerRegistration
            }
            ControllerError::BrokerIdNotRegistered { .. } => KafkaError::BrokerIdNotRegistered,
            ControllerError::StaleBrokerEpoch { .. } => KafkaError::StaleBrokerEpoch,
            ControllerError::InvalidTopicName(_) => KafkaError::InvalidTopicException,
            ControllerError::TopicAlreadyExists(_) => KafkaError::TopicAlreadyExists,
            ControllerError::UnknownTopic(_) => KafkaError::UnknownTopicOrPartition,
            ControllerError::UnknownTopicId(_) => KafkaError::UnknownTopicId,
            ControllerError::InvalidPartitions(_) => KafkaError::InvalidPartitions,
            ControllerError::InvalidReplicationFactor(_) => KafkaError::InvalidReplicationFactor,
            ControllerError::InvalidConfig(_) => KafkaError::InvalidConfig,
            ControllerError::PolicyViolation(_) => KafkaError::PolicyViolation,
            ControllerError::UnusableTopicId(_) | ControllerError::ProducerIdsExhausted => {
                KafkaError::UnknownServerError
            }
            ControllerError::InvalidReplicaAssignment(_) => KafkaError::InvalidReplicaAssignment,
            ControllerError::InvalidRequest(_) => KafkaError::InvalidRequest,
            ControllerError::NoBrokerRegistration { .. } => KafkaError::StaleBrokerEpoch,
            ControllerError::UnknownPartition { .. } => KafkaError::UnknownTopicOrPartition,
            ControllerError::NotLeader { .. } => KafkaError::NotLeaderOrFollower,
            ControllerError::FencedLeaderEpoch { .. } => KafkaError::FencedLeaderEpoch,
            ControllerError::InvalidUpdateVersion { .. } => KafkaError::InvalidUpdateVersion,
            ControllerError::IneligibleReplica(_) => KafkaError::IneligibleReplica,
        }
    }
}

impl From<AssignmentError> for ControllerError {
    fn from(error: AssignmentError) -> Self {
        ControllerError::InvalidReplicationFactor(error.to_string())
    }
}
