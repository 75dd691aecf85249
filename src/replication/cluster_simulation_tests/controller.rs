//! The active controller of the simulation: corelog's own decisions
//! (`cluster::metadata::Controller`: registration, heartbeats, session
//! expiry, controlled shutdown, AlterPartition, preferred elections, all of
//! them electing through `replication::election`) against a real
//! `MetadataImage`, committed as a metadata log the brokers replay. Only
//! the quorum is left out: a decision is committed the moment it is made.
//!
//! Every commit is checked: the ISR never empties, a new leader comes from
//! the previous ISR (clean elections only) and is live.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::cluster::metadata::{
    bootstrap_records, AlterPartitionRequest, BrokerRegistrationRequest, Controller,
    ControllerSettings, CreateTopic, MetadataImage, MetadataRecord, PartitionRegistration,
    PartitionState, NO_LEADER,
};
use crate::protocol::errors::KafkaError;

use super::network::{Message, Node};
use super::{Simulation, ASSIGNMENTS, BROKER_IDS, TOPIC};

const CLUSTER_ID: &str = "simulated";

fn registration(broker_id: i32, incarnation: u64) -> BrokerRegistrationRequest {
    let mut incarnation_id = [0u8; 16];
    incarnation_id[..8].copy_from_slice(&incarnation.to_le_bytes());
    incarnation_id[8..12].copy_from_slice(&broker_id.to_le_bytes());
    BrokerRegistrationRequest {
        cluster_id: CLUSTER_ID.to_string(),
        broker_id,
        incarnation_id,
        host: format!("broker{broker_id}"),
        port: 9092,
        rack: None,
    }
}

pub(super) struct ControllerNode {
    pub image: MetadataImage,
    /// The committed metadata log: (offset of the entry, its records).
    pub log: Vec<(u64, Vec<MetadataRecord>)>,
    /// The controller's soft state: last heartbeat per broker.
    heartbeats: BTreeMap<i32, i64>,
    pub topic_id: Uuid,
    session_timeout: i64,
    pub elections: usize,
    pub isr_changes: usize,
    /// Each commit's partition changes, when tracing.
    pub changes: Option<Vec<String>>,
}

impl ControllerNode {
    /// A cluster of `BROKER_IDS`, registered and unfenced at tick 0, with
    /// the topic of `ASSIGNMENTS`; answers it and each broker's epoch.
    pub fn new(min_insync_replicas: i32, session_timeout: i64) -> (ControllerNode, Vec<i64>) {
        let mut controller = ControllerNode {
            image: MetadataImage::default(),
            log: Vec::new(),
            heartbeats: BTreeMap::new(),
            topic_id: Uuid::from_u128(0x5151_0000),
            session_timeout,
            elections: 0,
            isr_changes: 0,
            changes: None,
        };
        controller.commit(bootstrap_records(CLUSTER_ID));
        let mut epochs = Vec::new();
        for broker_id in BROKER_IDS {
            let broker_epoch = controller.register(broker_id, 0, 0).expect("registers");
            controller
                .heartbeat(broker_id, broker_epoch, 0)
                .expect("unfences");
            epochs.push(broker_epoch);
        }
        let request = CreateTopic {
            name: TOPIC.to_string(),
            num_partitions: -1,
            replication_factor: -1,
            configs: BTreeMap::from([(
                "min.insync.replicas".to_string(),
                min_insync_replicas.to_string(),
            )]),
            assignments: ASSIGNMENTS
                .iter()
                .zip(0..)
                .map(|(replicas, partition)| (partition, replicas.to_vec()))
                .collect(),
        };
        let records = controller
            .decide()
            .create_topic(&request, controller.topic_id, 0)
            .expect("creates the topic");
        controller.commit(records);
        (controller, epochs)
    }

    fn decide(&self) -> Controller<'_> {
        Controller::new(&self.image, ControllerSettings::default())
    }

    fn partitions(&self) -> Vec<PartitionRegistration> {
        self.image
            .topic(&self.topic_id)
            .map(|topic| topic.partitions.clone())
            .unwrap_or_default()
    }

    /// Applies one decision's records as one log entry, checking what the
    /// elections did.
    pub fn commit(&mut self, records: Vec<MetadataRecord>) {
        if records.is_empty() {
            return;
        }
        let before = self.partitions();
        let offset = self.image.last_offset().map_or(0, |last| last + 1);
        self.image
            .apply_all(offset, &records)
            .expect("the controller's own records replay");
        self.log.push((offset, records));
        for (index, after) in self.partitions().iter().enumerate() {
            assert!(!after.isr.is_empty(), "partition {index}: empty ISR");
            let Some(before) = before.get(index) else {
                continue;
            };
            if let Some(changes) = &mut self.changes {
                if after != before {
                    changes.push(format!(
                        "controller commits partition {index}: leader {} epoch {} ISR {:?} \
                         partition epoch {} (entry {})",
                        after.leader,
                        after.leader_epoch,
                        after.isr,
                        after.partition_epoch,
                        self.log.len()
                    ));
                }
            }
            if after.leader != before.leader {
                self.elections += 1;
            } else if after.isr != before.isr {
                self.isr_changes += 1;
            }
            if after.leader == NO_LEADER {
                continue;
            }
            assert!(
                after.isr.contains(&after.leader),
                "partition {index}: leader {} outside its ISR {:?}",
                after.leader,
                after.isr
            );
            assert!(
                self.image.is_live(after.leader),
                "partition {index}: leader {} is fenced",
                after.leader
            );
            if after.leader != before.leader {
                assert!(
                    before.isr.contains(&after.leader),
                    "partition {index}: unclean election of {} (ISR was {:?})",
                    after.leader,
                    before.isr
                );
            }
        }
    }

    /// Fences the brokers whose session ran out (Kafka's
    /// broker.session.timeout.ms) and elects for what they led.
    pub fn expire_sessions(&mut self, now: i64) {
        let records = self
            .decide()
            .expire_sessions(now, self.session_timeout, &self.heartbeats);
        self.commit(records);
    }

    /// auto.leader.rebalance.enable's periodic check.
    pub fn preferred_elections(&mut self) {
        let records = self.decide().preferred_elections();
        self.commit(records);
    }

    /// BrokerRegistration: the broker epoch.
    pub fn register(
        &mut self,
        broker_id: i32,
        incarnation: u64,
        now: i64,
    ) -> Result<i64, KafkaError> {
        let request = registration(broker_id, incarnation);
        let registered = self
            .decide()
            .register_broker(&request, now, self.session_timeout, &self.heartbeats)
            .map_err(|error| error.kafka_error())?;
        self.commit(registered.records);
        self.heartbeats.insert(broker_id, now);
        Ok(registered.broker_epoch)
    }

    /// BrokerHeartbeat: renews the session, unfences.
    pub fn heartbeat(
        &mut self,
        broker_id: i32,
        broker_epoch: i64,
        now: i64,
    ) -> Result<(), KafkaError> {
        let records = self
            .decide()
            .broker_heartbeat(broker_id, broker_epoch)
            .map_err(|error| error.kafka_error())?;
        self.commit(records);
        self.heartbeats.insert(broker_id, now);
        Ok(())
    }

    pub fn controlled_shutdown(
        &mut self,
        broker_id: i32,
        broker_epoch: i64,
    ) -> Result<(), KafkaError> {
        let records = self
            .decide()
            .controlled_shutdown(broker_id, broker_epoch)
            .map_err(|error| error.kafka_error())?;
        self.commit(records);
        Ok(())
    }

    /// AlterPartition: the partition's state once the change is committed.
    pub fn alter_partition(
        &mut self,
        request: &AlterPartitionRequest,
    ) -> Result<PartitionState, KafkaError> {
        let altered = self
            .decide()
            .alter_partition(request)
            .map_err(|error| error.kafka_error())?;
        self.commit(altered.records);
        Ok(altered.state)
    }
}

impl Simulation {
    /// The controller answers one request.
    pub(super) fn controller_receives(&mut self, from: i32, message: Message) {
        let now = self.now;
        let controller = &mut self.controller;
        let answer = match message {
            Message::BrokerRegistration { incarnation } => Message::BrokerRegistered {
                incarnation,
                result: controller.register(from, incarnation, now),
            },
            Message::BrokerHeartbeat { broker_epoch } => Message::BrokerHeartbeatAnswer {
                result: controller.heartbeat(from, broker_epoch, now),
            },
            Message::ControlledShutdown { broker_epoch } => Message::ControlledShutdownAnswer {
                result: controller.controlled_shutdown(from, broker_epoch),
            },
            Message::AlterPartition {
                request,
                leadership,
                request_id,
            } => {
                let result = controller.alter_partition(&request);
                if result.is_err() {
                    self.stats.isr_changes_refused += 1;
                }
                Message::AlterPartitionAnswer {
                    partition: request.partition,
                    leadership,
                    request_id,
                    result,
                }
            }
            other => panic!("the controller does not take {other:?}"),
        };
        self.send(Node::Controller, Node::Broker(from), answer);
        self.publish_metadata();
    }

    /// Brokers learn of new metadata quickly (they long-poll the log); a
    /// lost update is repaired by the next one.
    pub(super) fn publish_metadata(&mut self) {
        let entries = self.controller.log.len();
        if entries == self.published_entries {
            return;
        }
        self.published_entries = entries;
        for broker_id in BROKER_IDS {
            self.send(
                Node::Controller,
                Node::Broker(broker_id),
                Message::Metadata { entries },
            );
        }
    }
}
