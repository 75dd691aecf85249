//! The metadata log's records: one typed enum, Kafka's KRaft records
//! (KIP-500, KIP-631) in corelog's words. These are what the quorum
//! replicates and what snapshots are made of, so they are plain data with no
//! behaviour: the controller (`controller.rs`) decides which records to
//! write, the image (`image.rs`) replays them. They carry final values
//! (epochs, the end of a producer-id block) rather than deltas wherever Kafka
//! does, so replaying a record never depends on anything but the image.
//!
//! Encoded with rkyv inside the versioned frames of `frame.rs`. An rkyv
//! archive is a fixed layout (an archived enum is as large as its largest
//! variant), so any change here, even a new variant, changes the layout: it
//! needs a new `FRAME_FORMAT_VERSION` and a decoder kept for the old one, as
//! logs and snapshots on disk outlive a release.

use uuid::Uuid;

/// A topic id as the records carry it (Kafka's topic `Uuid`, 16 bytes).
pub type TopicIdBytes = [u8; 16];

/// One record of the cluster metadata log.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum MetadataRecord {
    /// The cluster id, chosen once by the first controller: the first
    /// record of a new log. Every node compares it with its data directory's.
    ClusterId {
        /// Kafka's cluster id (a base64 uuid in Kafka, any text here).
        cluster_id: String,
    },
    /// Kafka's `RegisterBrokerRecord`: a broker (re)registered. Replaces any
    /// earlier registration of the same broker id. A registered broker starts
    /// fenced until its first heartbeat.
    BrokerRegistered(BrokerRegistrationRecord),
    /// Kafka's `FenceBrokerRecord`: the broker missed its session timeout.
    /// The controller writes the elections that follow (`PartitionChanged`)
    /// in the same entry.
    BrokerFenced {
        /// The broker.
        broker_id: i32,
        /// The registration this applies to (fences nothing if it is stale).
        broker_epoch: i64,
    },
    /// Kafka's `UnfenceBrokerRecord`: the broker heartbeats again.
    BrokerUnfenced {
        /// The broker.
        broker_id: i32,
        /// The registration this applies to.
        broker_epoch: i64,
    },
    /// Kafka's `UnregisterBrokerRecord`: the broker left the cluster.
    BrokerUnregistered {
        /// The broker.
        broker_id: i32,
        /// The registration this applies to.
        broker_epoch: i64,
    },
    /// Kafka's `TopicRecord`: a topic exists, with no partitions yet (they
    /// follow as `PartitionCreated` in the same log entry).
    TopicCreated {
        /// Topic name (already validated against Kafka's rules).
        name: String,
        /// Topic id.
        topic_id: TopicIdBytes,
    },
    /// Kafka's `PartitionRecord`: a new partition and its assignment.
    PartitionCreated(PartitionRecord),
    /// Kafka's `PartitionChangeRecord`: the leader, the ISR or the replicas of
    /// a partition changed. Replay bumps the partition epoch on every change
    /// and the leader epoch when the leader changes, as Kafka does.
    PartitionChanged(PartitionChangeRecord),
    /// Kafka's `RemoveTopicRecord`: the topic and its partitions are gone.
    TopicRemoved {
        /// Topic id.
        topic_id: TopicIdBytes,
    },
    /// Kafka's `ConfigRecord` for a topic resource: one config set
    /// (`Some`) or back to its default (`None`).
    TopicConfigChanged {
        /// Topic id (Kafka names the resource; the id survives re-creation).
        topic_id: TopicIdBytes,
        /// Kafka's config name (see `metadata::topic_config`).
        key: String,
        /// New value, or `None` to remove the override.
        value: Option<String>,
    },
    /// Kafka's `ProducerIdsRecord`: a block of producer ids was handed to a
    /// broker; `next_producer_id` is the first id of the next block.
    ProducerIdsAllocated {
        /// The broker that got the block.
        broker_id: i32,
        /// Its registration.
        broker_epoch: i64,
        /// The end (exclusive) of the block handed out.
        next_producer_id: i64,
    },
}

/// Kafka's `RegisterBrokerRecord`, with the one listener corelog has.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct BrokerRegistrationRecord {
    /// The broker id (`--node-id`).
    pub broker_id: i32,
    /// A random id chosen by each start of the broker process: tells a retry
    /// of the same process from a second process with the same id.
    pub incarnation_id: [u8; 16],
    /// The registration's epoch, strictly increasing per broker.
    pub broker_epoch: i64,
    /// The host clients connect to (`--advertised-address`).
    pub host: String,
    /// The Kafka port clients connect to.
    pub port: u16,
    /// The rack (`--rack`), if given.
    pub rack: Option<String>,
}

/// Kafka's `PartitionRecord`: a partition with its full replication state.
#[derive(
    rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq, Eq, Default,
)]
pub struct PartitionRecord {
    /// The topic.
    pub topic_id: TopicIdBytes,
    /// The partition index; partitions are created in order from 0.
    pub partition: i32,
    /// Broker ids of the replicas, preferred leader first.
    pub replicas: Vec<i32>,
    /// The in-sync replicas, a subset of `replicas`.
    pub isr: Vec<i32>,
    /// The leader's broker id, or -1 for none.
    pub leader: i32,
    /// Fences requests from older leaders (KIP-101, KIP-320).
    pub leader_epoch: i32,
    /// Bumped on every change of the partition (KIP-497's version for
    /// AlterPartition).
    pub partition_epoch: i32,
    /// Replicas an ongoing reassignment adds (KIP-455), in `replicas`.
    pub adding_replicas: Vec<i32>,
    /// Replicas an ongoing reassignment removes, in `replicas`.
    pub removing_replicas: Vec<i32>,
}

/// Kafka's `PartitionChangeRecord`: fields left `None` are unchanged.
#[derive(
    rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq, Eq, Default,
)]
pub struct PartitionChangeRecord {
    /// The topic.
    pub topic_id: TopicIdBytes,
    /// The partition index.
    pub partition: i32,
    /// A new leader (-1 for none).
    pub leader: Option<i32>,
    /// A new ISR.
    pub isr: Option<Vec<i32>>,
    /// A new replica set (a reassignment starting, ending or cancelled).
    pub replicas: Option<Vec<i32>>,
    /// New replicas being added (KIP-455; empty when it ends).
    pub adding_replicas: Option<Vec<i32>>,
    /// New replicas being removed (empty when it ends).
    pub removing_replicas: Option<Vec<i32>>,
}

impl MetadataRecord {
    /// The topic a record is about, if any.
    pub fn topic_id(&self) -> Option<Uuid> {
        match self {
            MetadataRecord::TopicCreated { topic_id, .. }
            | MetadataRecord::TopicRemoved { topic_id }
            | MetadataRecord::TopicConfigChanged { topic_id, .. } => {
                Some(Uuid::from_bytes(*topic_id))
            }
            MetadataRecord::PartitionCreated(partition) => {
                Some(Uuid::from_bytes(partition.topic_id))
            }
            MetadataRecord::PartitionChanged(change) => Some(Uuid::from_bytes(change.topic_id)),
            MetadataRecord::ClusterId { .. }
            | MetadataRecord::BrokerRegistered(_)
            | MetadataRecord::BrokerFenced { .. }
            | MetadataRecord::BrokerUnfenced { .. }
            | MetadataRecord::BrokerUnregistered { .. }
            | MetadataRecord::ProducerIdsAllocated { .. } => None,
        }
    }
}
