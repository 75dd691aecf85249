//! AlterPartitionReassignments and ListPartitionReassignments (KIP-455) as
//! the controller decides them. The replica-set rules are
//! `replication::reassignment`'s; this file checks the request against the
//! image (Kafka's `validateManualPartitionAssignment`), turns each decision
//! into one `PartitionChanged` record. The
//! reassignment completes later, when the leader's AlterPartition brings
//! every target replica into the ISR (`partition_control`).
//!
//! Pure; runs on shard 0 of the active controller.

use uuid::Uuid;

use super::controller::Controller;
use super::image::{PartitionRegistration, TopicImage};
use super::records::{MetadataRecord, PartitionChangeRecord};
use crate::protocol::errors::KafkaError;
use crate::replication::reassignment::{self, PartitionTarget, ReplicaSet};

/// Why one partition's reassignment was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReassignmentRefusal {
    /// No topic by that name.
    #[error("Unable to find a topic named {0}.")]
    UnknownTopic(String),
    /// The topic has no such partition.
    #[error("Unable to find partition {topic}:{partition}.")]
    UnknownPartition {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: i32,
    },
    /// A cancel for a partition with no reassignment under way.
    #[error("No partition reassignment is in progress for the topic partition.")]
    NoReassignmentInProgress,
    /// A target Kafka refuses (empty, repeated or unregistered brokers; a
    /// cancel that would need an unclean election).
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    /// A target of another size where the request forbids it (v1's
    /// allow_replication_factor_change = false, KIP-860).
    #[error("{0}")]
    InvalidReplicationFactor(String),
}

impl ReassignmentRefusal {
    /// The Kafka error code of the answer.
    pub fn kafka_error(&self) -> KafkaError {
        match self {
            ReassignmentRefusal::UnknownTopic(_) | ReassignmentRefusal::UnknownPartition { .. } => {
                KafkaError::UnknownTopicOrPartition
            }
            ReassignmentRefusal::NoReassignmentInProgress => KafkaError::NoReassignmentInProgress,
            ReassignmentRefusal::InvalidReplicaAssignment(_) => {
                KafkaError::InvalidReplicaAssignment
            }
            ReassignmentRefusal::InvalidReplicationFactor(_) => {
                KafkaError::InvalidReplicationFactor
            }
        }
    }
}

/// One partition asked for: its target replicas, or `None` to cancel.
pub type PartitionTargetAsked = (i32, Option<Vec<i32>>);

/// One topic's answers: each partition and its result.
pub type TopicReassignments = (String, Vec<(i32, Result<(), ReassignmentRefusal>)>);

/// The decision: records to propose and each partition's answer, by topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReassignmentsDecided {
    pub records: Vec<MetadataRecord>,
    pub topics: Vec<TopicReassignments>,
}

/// The partition's replicas as a `ReplicaSet`.
pub(super) fn replica_set(partition: &PartitionRegistration) -> ReplicaSet {
    ReplicaSet {
        replicas: partition.replicas.clone(),
        adding: partition.adding_replicas.clone(),
        removing: partition.removing_replicas.clone(),
    }
}

/// The record taking `current` to `target` (only what changed); `None`
/// when nothing does.
pub(super) fn target_record(
    topic_id: Uuid,
    partition: i32,
    current: &PartitionRegistration,
    target: PartitionTarget,
) -> Option<MetadataRecord> {
    let changed = |now: &Vec<i32>, next: Vec<i32>| (*now != next).then_some(next);
    let record = PartitionChangeRecord {
        topic_id: *topic_id.as_bytes(),
        partition,
        leader: (target.leader != current.leader).then_some(target.leader),
        isr: changed(&current.isr, target.isr),
        replicas: changed(&current.replicas, target.replicas.replicas),
        adding_replicas: changed(&current.adding_replicas, target.replicas.adding),
        removing_replicas: changed(&current.removing_replicas, target.replicas.removing),
    };
    let unchanged = record.leader.is_none()
        && record.isr.is_none()
        && record.replicas.is_none()
        && record.adding_replicas.is_none()
        && record.removing_replicas.is_none();
    (!unchanged).then_some(MetadataRecord::PartitionChanged(record))
}

impl Controller<'_> {
    /// AlterPartitionReassignments: each partition starts, replaces or
    /// cancels (`None`) a reassignment. `allow_replication_factor_change`
    /// is v1's flag (v0 requests allow it).
    pub fn alter_partition_reassignments(
        &self,
        topics: &[(String, Vec<PartitionTargetAsked>)],
        allow_replication_factor_change: bool,
    ) -> ReassignmentsDecided {
        let mut records = Vec::new();
        let mut answers = Vec::with_capacity(topics.len());
        for (name, partitions) in topics {
            let topic = self.image.topic_by_name(name);
            let results = partitions
                .iter()
                .map(|(index, target)| {
                    let result = self
                        .reassign_one(
                            name,
                            topic,
                            *index,
                            target.as_deref(),
                            allow_replication_factor_change,
                        )
                        .map(|record| records.extend(record));
                    (*index, result)
                })
                .collect();
            answers.push((name.clone(), results));
        }
        ReassignmentsDecided {
            records,
            topics: answers,
        }
    }

    fn reassign_one(
        &self,
        name: &str,
        topic: Option<&TopicImage>,
        index: i32,
        target: Option<&[i32]>,
        allow_replication_factor_change: bool,
    ) -> Result<Option<MetadataRecord>, ReassignmentRefusal> {
        let topic = topic.ok_or_else(|| ReassignmentRefusal::UnknownTopic(name.to_string()))?;
        let partition = usize::try_from(index)
            .ok()
            .and_then(|i| topic.partitions.get(i))
            .ok_or_else(|| ReassignmentRefusal::UnknownPartition {
                topic: name.to_string(),
                partition: index,
            })?;
        let eligible = |broker_id: i32| self.image.is_live(broker_id);
        let target = match target {
            None => {
                if !partition.is_reassigning() {
                    return Err(ReassignmentRefusal::NoReassignmentInProgress);
                }
                let (replicas, isr, unclean) =
                    reassignment::revert(&replica_set(partition), &partition.isr);
                if unclean && !super::partition_control::unclean_allowed(topic) {
                    return Err(ReassignmentRefusal::InvalidReplicaAssignment(format!(
                        "Unable to revert partition assignment for {name}:{index} because it would require an unclean leader election."
                    )));
                }
                reassignment::settle(replicas, partition.leader, isr, &eligible)
            }
            Some(target) => {
                self.check_target(target)?;
                let current = replica_set(partition);
                let original_count = current.original().len();
                if !allow_replication_factor_change && target.len() != original_count {
                    return Err(ReassignmentRefusal::InvalidReplicationFactor(format!(
                        "The replication factor is changed from {original_count} to {} but allowReplicationFactorChange is false",
                        target.len()
                    )));
                }
                let replicas = ReplicaSet::reassign(&partition.replicas, target);
                let isr = partition
                    .isr
                    .iter()
                    .copied()
                    .filter(|member| replicas.replicas.contains(member))
                    .collect();
                reassignment::settle(replicas, partition.leader, isr, &eligible)
            }
        };
        Ok(target_record(topic.topic_id, index, partition, target))
    }

    /// Kafka's `validateManualPartitionAssignment` for a target.
    fn check_target(&self, target: &[i32]) -> Result<(), ReassignmentRefusal> {
        if target.is_empty() {
            return Err(ReassignmentRefusal::InvalidReplicaAssignment(
                "The manual partition assignment includes an empty replica list.".into(),
            ));
        }
        let mut sorted = target.to_vec();
        sorted.sort_unstable();
        for (index, broker_id) in sorted.iter().enumerate() {
            if self.image.broker(*broker_id).is_none() {
                return Err(ReassignmentRefusal::InvalidReplicaAssignment(format!(
                    "The manual partition assignment includes broker {broker_id}, but no such broker is registered."
                )));
            }
            if index > 0 && sorted[index - 1] == *broker_id {
                return Err(ReassignmentRefusal::InvalidReplicaAssignment(format!(
                    "The manual partition assignment includes the broker {broker_id} more than once."
                )));
            }
        }
        Ok(())
    }
}
