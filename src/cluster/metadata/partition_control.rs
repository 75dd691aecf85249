//! The controller's partition decisions (Kafka's `ReplicationControlManager`
//! in miniature): AlterPartition, a leader's request to change its ISR
//! (KIP-497), and the leader elections that follow a broker leaving (fenced,
//! unregistered, or registering again after an unclean stop) or returning
//! (unfenced). The election rules themselves are `replication::election`'s
//! pure functions; this file applies them to the image and turns their
//! answers into `PartitionChanged` records. Replay bumps the partition
//! epoch on every change and the leader epoch when the leader changes.
//!
//! Pure; runs on shard 0 of the active controller (see `controller.rs` for
//! the rules of use). Elections scan every partition of the image: a fence
//! is rare, and thousands of partitions take microseconds (Kafka keeps a
//! broker -> partitions index for clusters far larger than ours).

use uuid::Uuid;

use super::controller::Controller;
use super::errors::ControllerError;
use super::image::{PartitionRegistration, TopicImage, NO_LEADER};
use super::reassignments::{replica_set, target_record};
use super::records::{MetadataRecord, PartitionChangeRecord};
use crate::metadata::topic_config::TopicConfigs;
use crate::replication::election::{self, LeaderAndIsr};
use crate::replication::reassignment;

/// Kafka's AlterPartition for one partition: the leader's proposed ISR,
/// with the epochs of the partition state it was computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterPartitionRequest {
    /// The requesting broker (the partition's leader).
    pub broker_id: i32,
    /// Its registration's epoch.
    pub broker_epoch: i64,
    /// The topic.
    pub topic_id: Uuid,
    /// The partition.
    pub partition: i32,
    /// The leader epoch the leader holds.
    pub leader_epoch: i32,
    /// The partition epoch the leader last saw.
    pub partition_epoch: i32,
    /// The ISR it proposes.
    pub new_isr: Vec<i32>,
}

/// A partition's leader and ISR with their epochs: what AlterPartition
/// answers (Kafka's AlterPartitionResponse partition data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    /// The leader, or -1.
    pub leader: i32,
    /// The leader epoch.
    pub leader_epoch: i32,
    /// The in-sync replicas.
    pub isr: Vec<i32>,
    /// The partition epoch.
    pub partition_epoch: i32,
}

impl PartitionState {
    fn of(partition: &PartitionRegistration) -> PartitionState {
        PartitionState {
            leader: partition.leader,
            leader_epoch: partition.leader_epoch,
            isr: partition.isr.clone(),
            partition_epoch: partition.partition_epoch,
        }
    }
}

/// An accepted AlterPartition: the state once `records` are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionAltered {
    /// The partition after the change.
    pub state: PartitionState,
    /// Records to propose (none when the ISR is unchanged).
    pub records: Vec<MetadataRecord>,
}

/// Whether the topic allows unclean leader elections
/// (`unclean.leader.election.enable`; replay validated the value).
pub(super) fn unclean_allowed(topic: &TopicImage) -> bool {
    TopicConfigs::from_overrides(topic.configs.clone())
        .is_ok_and(|configs| configs.unclean_leader_election_enable)
}

/// The record taking `current` to `next` (only what changed).
pub(super) fn change_record(
    topic_id: Uuid,
    partition: usize,
    current: &PartitionRegistration,
    next: LeaderAndIsr,
) -> MetadataRecord {
    MetadataRecord::PartitionChanged(PartitionChangeRecord {
        topic_id: *topic_id.as_bytes(),
        partition: partition as i32,
        leader: (next.leader != current.leader).then_some(next.leader),
        isr: (next.isr != current.isr).then_some(next.isr),
        replicas: None,
        ..Default::default()
    })
}

fn leader_and_isr(partition: &PartitionRegistration) -> LeaderAndIsr {
    LeaderAndIsr {
        leader: partition.leader,
        isr: partition.isr.clone(),
    }
}

impl Controller<'_> {
    /// The partition changes when `leaving` brokers leave: each leaves every
    /// ISR (except as a last member, KIP-841) and what it led gets a new
    /// leader, clean, or unclean where the topic allows it. Eligible are the
    /// registered, unfenced brokers that are not leaving.
    pub(super) fn elections_after_brokers_left(&self, leaving: &[i32]) -> Vec<MetadataRecord> {
        let eligible =
            |broker_id: i32| !leaving.contains(&broker_id) && self.image.is_live(broker_id);
        let mut records = Vec::new();
        for topic in self.image.topics() {
            let mut unclean = None;
            for (index, partition) in topic.partitions.iter().enumerate() {
                let involved = leaving.contains(&partition.leader)
                    || partition.isr.iter().any(|member| leaving.contains(member));
                if !involved {
                    continue;
                }
                let unclean = *unclean.get_or_insert_with(|| unclean_allowed(topic));
                let current = leader_and_isr(partition);
                let next =
                    election::after_brokers_left(&partition.replicas, &current, &eligible, unclean);
                if let Some(next) = next {
                    records.push(change_record(topic.topic_id, index, partition, next));
                }
            }
        }
        records
    }

    /// The partition changes when `returning` is unfenced: it leads every
    /// partition without a leader whose ISR it is in (or, where the topic
    /// allows unclean elections, any such partition it is a replica of).
    pub(super) fn elections_after_broker_returned(&self, returning: i32) -> Vec<MetadataRecord> {
        // The image still has it fenced: this decision unfences it.
        let eligible = |broker_id: i32| broker_id == returning || self.image.is_live(broker_id);
        let mut records = Vec::new();
        for topic in self.image.topics() {
            let mut unclean = None;
            for (index, partition) in topic.partitions.iter().enumerate() {
                if partition.leader != NO_LEADER || !partition.replicas.contains(&returning) {
                    continue;
                }
                let current = leader_and_isr(partition);
                let clean =
                    election::after_broker_returned(&partition.replicas, &current, &eligible);
                let next = clean.or_else(|| {
                    let unclean = *unclean.get_or_insert_with(|| unclean_allowed(topic));
                    unclean
                        .then(|| election::unclean_leader(&partition.replicas, &eligible))
                        .flatten()
                        .map(|leader| LeaderAndIsr {
                            leader,
                            isr: vec![leader],
                        })
                });
                if let Some(next) = next {
                    records.push(change_record(topic.topic_id, index, partition, next));
                }
            }
        }
        records
    }

    /// Preferred-leader elections (Kafka's auto.leader.rebalance.enable and
    /// ElectLeaders with PREFERRED): every partition whose first replica is
    /// live, in its ISR and not leading moves its leadership back to it.
    pub fn preferred_elections(&self) -> Vec<MetadataRecord> {
        let eligible = |broker_id: i32| self.image.is_live(broker_id);
        let mut records = Vec::new();
        for topic in self.image.topics() {
            for (index, partition) in topic.partitions.iter().enumerate() {
                let current = leader_and_isr(partition);
                if let Some(next) =
                    election::preferred_leader(&partition.replicas, &current, &eligible)
                {
                    records.push(change_record(topic.topic_id, index, partition, next));
                }
            }
        }
        records
    }

    /// AlterPartition (KIP-497): the leader of a partition sets its ISR.
    /// Checked in this order: the broker's epoch (STALE_BROKER_EPOCH), the
    /// topic (UNKNOWN_TOPIC_ID) and partition (UNKNOWN_TOPIC_OR_PARTITION),
    /// that the requester leads it (NOT_LEADER_OR_FOLLOWER), its leader epoch
    /// (FENCED_LEADER_EPOCH) and partition epoch (INVALID_UPDATE_VERSION),
    /// then the ISR: not empty and without duplicates (INVALID_REQUEST),
    /// holding the leader and only live replicas (INELIGIBLE_REPLICA). An
    /// ISR with the same members as the current one writes nothing and
    /// answers the current state.
    pub fn alter_partition(
        &self,
        request: &AlterPartitionRequest,
    ) -> Result<PartitionAltered, ControllerError> {
        let broker_id = request.broker_id;
        let broker = self
            .image
            .broker(broker_id)
            .ok_or(ControllerError::NoBrokerRegistration { broker_id })?;
        if broker.broker_epoch() != request.broker_epoch {
            return Err(ControllerError::StaleBrokerEpoch {
                broker_id,
                current: broker.broker_epoch(),
                request: request.broker_epoch,
            });
        }
        let topic_id = request.topic_id;
        let topic = self
            .image
            .topic(&topic_id)
            .ok_or(ControllerError::UnknownTopicId(topic_id))?;
        let index = usize::try_from(request.partition).ok();
        let partition = index.and_then(|index| topic.partitions.get(index)).ok_or(
            ControllerError::UnknownPartition {
                topic_id,
                partition: request.partition,
            },
        )?;
        if partition.leader != broker_id {
            return Err(ControllerError::NotLeader {
                broker_id,
                topic_id,
                partition: request.partition,
                leader: partition.leader,
            });
        }
        if request.leader_epoch != partition.leader_epoch {
            return Err(ControllerError::FencedLeaderEpoch {
                current: partition.leader_epoch,
                request: request.leader_epoch,
            });
        }
        if request.partition_epoch != partition.partition_epoch {
            return Err(ControllerError::InvalidUpdateVersion {
                current: partition.partition_epoch,
                request: request.partition_epoch,
            });
        }
        self.check_new_isr(partition, &request.new_isr)?;
        let mut proposed = request.new_isr.clone();
        let mut current = partition.isr.clone();
        proposed.sort_unstable();
        current.sort_unstable();
        if proposed == current {
            return Ok(PartitionAltered {
                state: PartitionState::of(partition),
                records: Vec::new(),
            });
        }
        let partition_epoch = partition.partition_epoch.checked_add(1).ok_or_else(|| {
            ControllerError::InvalidRequest("The partition epoch cannot grow any further.".into())
        })?;
        if partition.is_reassigning() {
            // The ISR change may complete the reassignment (KIP-455 step 3).
            let eligible = |broker_id: i32| self.image.is_live(broker_id);
            let target = reassignment::settle(
                replica_set(partition),
                partition.leader,
                request.new_isr.clone(),
                &eligible,
            );
            let leader_epoch = if target.leader == partition.leader {
                partition.leader_epoch
            } else {
                partition.leader_epoch.saturating_add(1)
            };
            let state = PartitionState {
                leader: target.leader,
                leader_epoch,
                isr: target.isr.clone(),
                partition_epoch,
            };
            let records = target_record(topic_id, request.partition, partition, target)
                .into_iter()
                .collect();
            return Ok(PartitionAltered { state, records });
        }
        Ok(PartitionAltered {
            state: PartitionState {
                leader: partition.leader,
                leader_epoch: partition.leader_epoch,
                isr: request.new_isr.clone(),
                partition_epoch,
            },
            records: vec![MetadataRecord::PartitionChanged(PartitionChangeRecord {
                topic_id: *topic_id.as_bytes(),
                partition: request.partition,
                leader: None,
                isr: Some(request.new_isr.clone()),
                replicas: None,
                ..Default::default()
            })],
        })
    }

    /// The proposed ISR's own rules (see [`alter_partition`](Self::alter_partition)).
    fn check_new_isr(
        &self,
        partition: &PartitionRegistration,
        new_isr: &[i32],
    ) -> Result<(), ControllerError> {
        if new_isr.is_empty() {
            return Err(ControllerError::InvalidRequest(
                "The new ISR is empty; it must hold at least the leader.".into(),
            ));
        }
        for (index, member) in new_isr.iter().enumerate() {
            if new_isr[..index].contains(member) {
                return Err(ControllerError::InvalidRequest(format!(
                    "The new ISR {new_isr:?} names broker {member} more than once."
                )));
            }
        }
        if !new_isr.contains(&partition.leader) {
            return Err(ControllerError::IneligibleReplica(format!(
                "The new ISR {new_isr:?} does not hold the leader {}.",
                partition.leader
            )));
        }
        if let Some(stranger) = new_isr
            .iter()
            .find(|member| !partition.replicas.contains(member))
        {
            return Err(ControllerError::IneligibleReplica(format!(
                "The new ISR {new_isr:?} names broker {stranger}, which is not a replica of the partition (replicas {:?}).",
                partition.replicas
            )));
        }
        if let Some(offline) = new_isr.iter().find(|member| !self.image.is_live(**member)) {
            return Err(ControllerError::IneligibleReplica(format!(
                "The new ISR {new_isr:?} names broker {offline}, which is fenced or not registered."
            )));
        }
        Ok(())
    }
}
