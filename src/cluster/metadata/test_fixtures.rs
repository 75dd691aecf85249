//! Shared fixtures of the metadata tests: a small cluster driven through the
//! controller and applied as a log, requests, and record strategies for the
//! codec's property tests.

use std::collections::BTreeMap;

use proptest::prelude::*;
use uuid::Uuid;

use super::controller::{BrokerRegistrationRequest, Controller, ControllerSettings};
use super::image::MetadataImage;
use super::records::{MetadataRecord, PartitionChangeRecord, PartitionRecord};
use super::topic_control::CreateTopic;

pub(super) const CLUSTER_ID: &str = "cluster-1";
pub(super) const SESSION_TIMEOUT_MS: i64 = 9_000;

/// A live controller-side image with its offsets and heartbeats.
pub(super) struct Cluster {
    pub image: MetadataImage,
    pub log: Vec<(u64, Vec<MetadataRecord>)>,
    pub heartbeats_ms: BTreeMap<i32, i64>,
    pub now_ms: i64,
}

impl Cluster {
    pub fn new() -> Cluster {
        let mut cluster = Cluster {
            image: MetadataImage::default(),
            log: Vec::new(),
            heartbeats_ms: BTreeMap::new(),
            now_ms: 1_000,
        };
        cluster.commit(super::controller::bootstrap_records(CLUSTER_ID));
        cluster
    }

    pub fn controller(&self) -> Controller<'_> {
        Controller::new(&self.image, ControllerSettings::default())
    }

    /// Applies one decision's records as one log entry.
    pub fn commit(&mut self, records: Vec<MetadataRecord>) {
        let offset = self.image.last_offset().map_or(0, |last| last + 1);
        self.image
            .apply_all(offset, &records)
            .expect("live records apply");
        self.log.push((offset, records));
    }

    pub fn register(&mut self, broker_id: i32, incarnation: u8) -> i64 {
        let request = registration(broker_id, incarnation);
        let registered = self
            .controller()
            .register_broker(
                &request,
                self.now_ms,
                SESSION_TIMEOUT_MS,
                &self.heartbeats_ms,
            )
            .expect("registers");
        self.commit(registered.records);
        registered.broker_epoch
    }

    pub fn heartbeat(&mut self, broker_id: i32) {
        let epoch = self
            .image
            .broker(broker_id)
            .expect("registered")
            .broker_epoch();
        let records = self
            .controller()
            .broker_heartbeat(broker_id, epoch)
            .expect("heartbeat");
        self.heartbeats_ms.insert(broker_id, self.now_ms);
        self.commit(records);
    }

    /// Brokers `ids`, registered and unfenced.
    pub fn with_brokers(ids: &[i32]) -> Cluster {
        let mut cluster = Cluster::new();
        for id in ids {
            cluster.register(*id, 0);
            cluster.heartbeat(*id);
        }
        cluster
    }

    pub fn create_topic(&mut self, name: &str, partitions: i32) -> Uuid {
        self.create_replicated_topic(name, partitions, -1)
    }

    /// A topic with `replication_factor` replicas per partition, placed by
    /// the controller (from start 7).
    pub fn create_replicated_topic(
        &mut self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
    ) -> Uuid {
        let topic_id = Uuid::from_u128(0x1000 + self.log.len() as u128);
        let request = topic(name, partitions, replication_factor);
        let records = self
            .controller()
            .create_topic(&request, topic_id, 7)
            .expect("creates");
        self.commit(records);
        topic_id
    }

    /// A topic whose partitions have exactly these replicas (index order).
    pub fn create_assigned_topic(&mut self, name: &str, assignments: &[&[i32]]) -> Uuid {
        let topic_id = Uuid::from_u128(0x1000 + self.log.len() as u128);
        let mut request = topic(name, -1, -1);
        request.assignments = assignments
            .iter()
            .zip(0..)
            .map(|(replicas, partition)| (partition, replicas.to_vec()))
            .collect();
        let records = self
            .controller()
            .create_topic(&request, topic_id, 0)
            .expect("creates");
        self.commit(records);
        topic_id
    }

    /// Lets `broker_id`'s session run out (every other broker heartbeats)
    /// and commits the fence with its elections; answers those records.
    pub fn fence(&mut self, broker_id: i32) -> Vec<MetadataRecord> {
        self.fence_all(&[broker_id])
    }

    /// Like [`fence`](Self::fence) for several brokers in one decision.
    pub fn fence_all(&mut self, broker_ids: &[i32]) -> Vec<MetadataRecord> {
        self.now_ms += SESSION_TIMEOUT_MS + 1;
        let live = self.image.live_broker_ids();
        for id in live {
            let last = if broker_ids.contains(&id) {
                self.now_ms - SESSION_TIMEOUT_MS - 1
            } else {
                self.now_ms
            };
            self.heartbeats_ms.insert(id, last);
        }
        let records =
            self.controller()
                .expire_sessions(self.now_ms, SESSION_TIMEOUT_MS, &self.heartbeats_ms);
        self.commit(records.clone());
        records
    }
}

pub(super) fn registration(broker_id: i32, incarnation: u8) -> BrokerRegistrationRequest {
    BrokerRegistrationRequest {
        cluster_id: CLUSTER_ID.to_string(),
        broker_id,
        incarnation_id: [incarnation; 16],
        host: format!("node{broker_id}"),
        port: 9092,
        rack: (broker_id % 2 == 0).then(|| "rack-a".to_string()),
    }
}

pub(super) fn topic(name: &str, num_partitions: i32, replication_factor: i16) -> CreateTopic {
    CreateTopic {
        name: name.to_string(),
        num_partitions,
        replication_factor,
        configs: BTreeMap::new(),
        assignments: Vec::new(),
    }
}

/// Records of every kind with small, arbitrary fields (not necessarily
/// consistent: for codec tests).
pub(crate) fn arbitrary_records() -> impl Strategy<Value = Vec<MetadataRecord>> {
    let ids = prop::collection::vec(-1i32..8, 0..4);
    let record = prop_oneof![
        "[a-z0-9-]{0,12}".prop_map(|cluster_id| MetadataRecord::ClusterId { cluster_id }),
        (any::<i32>(), any::<i64>()).prop_map(|(broker_id, broker_epoch)| {
            MetadataRecord::BrokerFenced {
                broker_id,
                broker_epoch,
            }
        }),
        ("[a-z.]{1,20}", any::<[u8; 16]>())
            .prop_map(|(name, topic_id)| MetadataRecord::TopicCreated { name, topic_id }),
        (
            any::<[u8; 16]>(),
            0i32..100,
            ids.clone(),
            ids.clone(),
            -1i32..8,
            0i32..9,
            0i32..9
        )
            .prop_map(
                |(topic_id, partition, replicas, isr, leader, leader_epoch, partition_epoch)| {
                    MetadataRecord::PartitionCreated(PartitionRecord {
                        topic_id,
                        partition,
                        replicas,
                        isr,
                        leader,
                        leader_epoch,
                        partition_epoch,
                        ..Default::default()
                    })
                }
            ),
        (
            any::<[u8; 16]>(),
            any::<i32>(),
            proptest::option::of(-1i32..8),
            proptest::option::of(ids)
        )
            .prop_map(|(topic_id, partition, leader, isr)| {
                MetadataRecord::PartitionChanged(PartitionChangeRecord {
                    topic_id,
                    partition,
                    leader,
                    isr,
                    replicas: None,
                    ..Default::default()
                })
            }),
        (
            any::<[u8; 16]>(),
            "[a-z.]{1,20}",
            proptest::option::of("[0-9]{0,6}")
        )
            .prop_map(
                |(topic_id, key, value)| MetadataRecord::TopicConfigChanged {
                    topic_id,
                    key,
                    value
                }
            ),
        (any::<i32>(), any::<i64>(), any::<i64>()).prop_map(
            |(broker_id, broker_epoch, next_producer_id)| MetadataRecord::ProducerIdsAllocated {
                broker_id,
                broker_epoch,
                next_producer_id,
            }
        ),
    ];
    prop::collection::vec(record, 0..8)
}
