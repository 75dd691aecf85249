//! `MetadataImage`: the cluster metadata as replayed from the log (Kafka's
//! `MetadataImage`), its queries, its snapshot as records, and its view as the
//! `Catalog` the shards read. Replay itself (`apply`) is in `replay.rs`.
//!
//! Every node keeps one on shard 0 (the controller decides against it, the
//! broker side turns it into a new `Catalog` after each applied entry). Plain
//! ordered maps so that equal histories give equal (`==`) images, which the
//! replay tests rely on, and iteration (snapshots, live brokers) is sorted.

use std::collections::BTreeMap;
use std::sync::Arc;

use uuid::Uuid;

use super::records::{BrokerRegistrationRecord, MetadataRecord, PartitionRecord};
use crate::metadata::catalog::{BrokerMetadata, Catalog, PartitionAssignment, TopicMetadata};
use crate::metadata::topic_config::TopicConfigs;

/// Kafka's "no leader" broker id (LEADER_NOT_AVAILABLE in Metadata).
pub const NO_LEADER: i32 = crate::metadata::catalog::NO_BROKER;

/// A broker's current registration (Kafka's `BrokerRegistration`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerRegistration {
    /// The registration as recorded.
    pub record: BrokerRegistrationRecord,
    /// Fenced brokers lead nothing and are not listed to clients.
    pub fenced: bool,
}

impl BrokerRegistration {
    /// The broker id.
    pub fn broker_id(&self) -> i32 {
        self.record.broker_id
    }

    /// The registration's epoch.
    pub fn broker_epoch(&self) -> i64 {
        self.record.broker_epoch
    }
}

/// A partition's replication state (Kafka's `PartitionRegistration`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRegistration {
    /// Replicas, preferred leader first.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// The recorded leader or [`NO_LEADER`]; see
    /// [`MetadataImage::partition_leader`] for the one to report.
    pub leader: i32,
    /// The leader epoch.
    pub leader_epoch: i32,
    /// The partition epoch.
    pub partition_epoch: i32,
    /// Replicas an ongoing reassignment adds (KIP-455), in `replicas`.
    pub adding_replicas: Vec<i32>,
    /// Replicas an ongoing reassignment removes, in `replicas`.
    pub removing_replicas: Vec<i32>,
}

impl PartitionRegistration {
    /// Whether a reassignment is under way.
    pub fn is_reassigning(&self) -> bool {
        !self.adding_replicas.is_empty() || !self.removing_replicas.is_empty()
    }
}

/// A topic as replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicImage {
    /// Topic name.
    pub name: String,
    /// Topic id.
    pub topic_id: Uuid,
    /// Config overrides (validated names and values).
    pub configs: BTreeMap<String, String>,
    /// Partitions by index, 0 first.
    pub partitions: Vec<PartitionRegistration>,
}

/// The state replayed from the metadata log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataImage {
    pub(super) cluster_id: Option<String>,
    pub(super) brokers: BTreeMap<i32, BrokerRegistration>,
    pub(super) topics: BTreeMap<Uuid, TopicImage>,
    pub(super) topic_ids_by_name: BTreeMap<String, Uuid>,
    pub(super) next_producer_id: i64,
    pub(super) last_offset: Option<u64>,
}

impl MetadataImage {
    /// The cluster id, once its record is applied.
    pub fn cluster_id(&self) -> Option<&str> {
        self.cluster_id.as_deref()
    }

    /// The Raft log index of the last applied record (`None` for an empty
    /// image).
    pub fn last_offset(&self) -> Option<u64> {
        self.last_offset
    }

    /// The first producer id of the next block to hand out.
    pub fn next_producer_id(&self) -> i64 {
        self.next_producer_id
    }

    /// A broker's registration, fenced or not.
    pub fn broker(&self, broker_id: i32) -> Option<&BrokerRegistration> {
        self.brokers.get(&broker_id)
    }

    /// Every registered broker, by id.
    pub fn brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values()
    }

    /// Unfenced brokers sorted by id: what Metadata and DescribeCluster list.
    pub fn live_brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values().filter(|broker| !broker.fenced)
    }

    /// Ids of the unfenced brokers, sorted (the input of partition assignment).
    pub fn live_broker_ids(&self) -> Vec<i32> {
        self.live_brokers()
            .map(BrokerRegistration::broker_id)
            .collect()
    }

    /// Whether `broker_id` is registered and unfenced.
    pub fn is_live(&self, broker_id: i32) -> bool {
        self.brokers
            .get(&broker_id)
            .is_some_and(|broker| !broker.fenced)
    }

    /// A topic by id.
    pub fn topic(&self, topic_id: &Uuid) -> Option<&TopicImage> {
        self.topics.get(topic_id)
    }

    /// A topic by name.
    pub fn topic_by_name(&self, name: &str) -> Option<&TopicImage> {
        self.topic_ids_by_name
            .get(name)
            .and_then(|topic_id| self.topics.get(topic_id))
    }

    /// Every topic, by id.
    pub fn topics(&self) -> impl Iterator<Item = &TopicImage> {
        self.topics.values()
    }

    /// A partition's replication state.
    pub fn partition(&self, topic_id: &Uuid, partition: i32) -> Option<&PartitionRegistration> {
        let index = usize::try_from(partition).ok()?;
        self.topics.get(topic_id)?.partitions.get(index)
    }

    /// The leader to report for a partition: `None` when it has none or its
    /// leader is fenced or gone, so Metadata answers LEADER_NOT_AVAILABLE
    /// (leader -1). The controller elects in the same decision that fences
    /// a broker, so a recorded leader is live unless the log predates that;
    /// the check stays for such logs.
    pub fn partition_leader(&self, topic_id: &Uuid, partition: i32) -> Option<i32> {
        let leader = self.partition(topic_id, partition)?.leader;
        (leader != NO_LEADER && self.is_live(leader)).then_some(leader)
    }

    /// The image as records (Kafka's snapshots are records too): replaying
    /// them into an empty image at the snapshot's offset gives an equal image.
    pub fn to_records(&self) -> Vec<MetadataRecord> {
        let mut records = Vec::new();
        if let Some(cluster_id) = &self.cluster_id {
            records.push(MetadataRecord::ClusterId {
                cluster_id: cluster_id.clone(),
            });
        }
        for broker in self.brokers.values() {
            records.push(MetadataRecord::BrokerRegistered(broker.record.clone()));
            if !broker.fenced {
                records.push(MetadataRecord::BrokerUnfenced {
                    broker_id: broker.broker_id(),
                    broker_epoch: broker.broker_epoch(),
                });
            }
        }
        for topic in self.topics.values() {
            let topic_id = *topic.topic_id.as_bytes();
            records.push(MetadataRecord::TopicCreated {
                name: topic.name.clone(),
                topic_id,
            });
            for (key, value) in &topic.configs {
                records.push(MetadataRecord::TopicConfigChanged {
                    topic_id,
                    key: key.clone(),
                    value: Some(value.clone()),
                });
            }
            for (index, partition) in topic.partitions.iter().enumerate() {
                records.push(MetadataRecord::PartitionCreated(PartitionRecord {
                    topic_id,
                    partition: index as i32,
                    replicas: partition.replicas.clone(),
                    isr: partition.isr.clone(),
                    leader: partition.leader,
                    leader_epoch: partition.leader_epoch,
                    partition_epoch: partition.partition_epoch,
                    adding_replicas: partition.adding_replicas.clone(),
                    removing_replicas: partition.removing_replicas.clone(),
                }));
            }
        }
        if self.next_producer_id > 0 {
            // No broker: the block's owner does not matter once handed out.
            records.push(MetadataRecord::ProducerIdsAllocated {
                broker_id: -1,
                broker_epoch: -1,
                next_producer_id: self.next_producer_id,
            });
        }
        records
    }

    /// The image as the `Catalog` the shards read, with Kafka's defaults for
    /// configs a topic does not override; `controller_id` is the quorum's
    /// leader as this node knows it (not part of the image: Kafka's
    /// `MetadataCache` learns it from the Raft layer too).
    pub fn to_catalog(&self, version: u64, controller_id: i32) -> Catalog {
        self.to_catalog_with(version, controller_id, &BTreeMap::new())
    }

    /// Like [`to_catalog`](Self::to_catalog), with the broker's defaults
    /// (`--log-retention-ms`...) for configs a topic does not override.
    /// `broker_defaults` must be valid (start-up checks them). The catalog's
    /// brokers are the live ones; fenced registrations go to its separate
    /// fenced list (DescribeCluster v2, KIP-1073). A partition whose leader
    /// is fenced or gone gets leader -1, as
    /// [`partition_leader`](Self::partition_leader) reports.
    pub fn to_catalog_with(
        &self,
        version: u64,
        controller_id: i32,
        broker_defaults: &BTreeMap<String, String>,
    ) -> Catalog {
        let as_metadata = |broker: &BrokerRegistration| BrokerMetadata {
            node_id: broker.broker_id(),
            host: Arc::from(broker.record.host.as_str()),
            port: broker.record.port,
            rack: broker.record.rack.as_deref().map(Arc::from),
        };
        let (fenced, live): (Vec<&BrokerRegistration>, Vec<&BrokerRegistration>) =
            self.brokers.values().partition(|broker| broker.fenced);
        let brokers = live.into_iter().map(as_metadata).collect();
        let fenced_brokers = fenced.into_iter().map(as_metadata).collect();
        let topics = self.topics.values().map(|topic| {
            let overrides = topic.configs.clone();
            // Replay validated the overrides and start-up the defaults, and
            // each parsed value comes from one of them, so this cannot fail.
            let configs = TopicConfigs::from_overrides_with(overrides.clone(), broker_defaults)
                .or_else(|_| TopicConfigs::from_overrides(overrides))
                .unwrap_or_default();
            let partitions = topic
                .partitions
                .iter()
                .enumerate()
                .map(|(index, partition)| PartitionAssignment {
                    replicas: partition.replicas.clone(),
                    isr: partition.isr.clone(),
                    leader: self
                        .partition_leader(&topic.topic_id, index as i32)
                        .unwrap_or(NO_LEADER),
                    leader_epoch: partition.leader_epoch,
                    partition_epoch: partition.partition_epoch,
                    adding_replicas: partition.adding_replicas.clone(),
                    removing_replicas: partition.removing_replicas.clone(),
                })
                .collect();
            let metadata = TopicMetadata {
                name: Arc::from(topic.name.as_str()),
                topic_id: topic.topic_id,
                partition_count: topic.partitions.len() as i32,
                configs,
            };
            (metadata, partitions)
        });
        let cluster_id = Arc::from(self.cluster_id.as_deref().unwrap_or(""));
        let mut catalog = Catalog::new(cluster_id, controller_id, brokers, topics)
            .with_fenced_brokers(fenced_brokers);
        catalog.version = version;
        catalog
    }
}
