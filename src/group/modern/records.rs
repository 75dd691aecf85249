//! The records a KIP-848 group writes to `__consumer_offsets` (Kafka's
//! `ConsumerGroup*Key/Value` in group-coordinator/src/main/resources/common/
//! message), as plain data, and `replay`: the only way a group changes.
//! A `None` value is a tombstone. Records carry no group id: they are
//! keyed by the group they belong to, which the caller adds when it writes
//! them. The byte encoding is not here (yet).
//!
//! Replay follows Kafka's `GroupMetadataManager.replay` for these records,
//! including its order rules (a member's current assignment is tombstoned
//! before its metadata, a group's members before the group), but reports a
//! broken rule as a `ReplayError` instead of throwing: the records come
//! from disk, and a bad one must not take the shard down.

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;
use uuid::Uuid;

use super::group::ConsumerGroup;
use super::member::{ConsumerMember, MemberState};
use super::messages::TopicInfo;
use super::{Assignment, LEAVE_GROUP_MEMBER_EPOCH};

/// `ConsumerGroupMemberMetadataValue`: who the member is and what it
/// subscribes to (classic-protocol member metadata is not modelled).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberMetadataValue {
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub server_assignor: Option<String>,
}

/// `ConsumerGroupCurrentMemberAssignmentValue`: where the member stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CurrentAssignmentValue {
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    /// `MemberState::value`.
    pub state: i8,
    pub assigned_partitions: Assignment,
    pub partitions_pending_revocation: Assignment,
}

/// `ConsumerGroupRegularExpressionValue` (Kafka 4.0): the topics a regex
/// matched, at which metadata version and when.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedRegex {
    pub topics: BTreeSet<String>,
    pub version: u64,
    pub timestamp_ms: i64,
}

/// One record of a consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerGroupRecord {
    /// `ConsumerGroupMetadata`: the group epoch; a tombstone deletes the group.
    GroupEpoch(Option<i32>),
    /// `ConsumerGroupPartitionMetadata`: the subscribed topics that exist.
    SubscriptionMetadata(Option<BTreeMap<String, TopicInfo>>),
    /// `ConsumerGroupMemberMetadata`.
    MemberMetadata {
        member_id: String,
        value: Option<MemberMetadataValue>,
    },
    /// `ConsumerGroupRegularExpression`.
    RegularExpression {
        regex: String,
        value: Option<ResolvedRegex>,
    },
    /// `ConsumerGroupTargetAssignmentMember`.
    TargetAssignmentMember {
        member_id: String,
        partitions: Option<Assignment>,
    },
    /// `ConsumerGroupTargetAssignmentMetadata`: the target assignment epoch.
    TargetAssignmentEpoch(Option<i32>),
    /// `ConsumerGroupCurrentMemberAssignment`.
    CurrentAssignment {
        member_id: String,
        value: Option<CurrentAssignmentValue>,
    },
}

/// A record that cannot apply to the group as it is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReplayError {
    #[error("member {0} deleted before its current assignment")]
    MemberDeletedWhileAssigned(String),
    #[error("member {0} deleted before its target assignment")]
    MemberDeletedWithTarget(String),
    #[error("group deleted while it still has members or a target assignment")]
    GroupDeletedWhileInUse,
    #[error("partition {0}-{1} would be held by two members")]
    PartitionHeldTwice(Uuid, i32),
}

impl ConsumerGroup {
    /// Apply one record. On error nothing changed.
    pub fn replay(&mut self, record: &ConsumerGroupRecord) -> Result<(), ReplayError> {
        match record {
            ConsumerGroupRecord::GroupEpoch(Some(epoch)) => {
                self.deleted = false;
                self.group_epoch = *epoch;
            }
            ConsumerGroupRecord::GroupEpoch(None) => {
                if !self.members.is_empty()
                    || !self.target_assignment.is_empty()
                    || self.target_assignment_epoch != -1
                {
                    return Err(ReplayError::GroupDeletedWhileInUse);
                }
                self.deleted = true;
                self.subscription_metadata.clear();
                self.resolved_regexes.clear();
            }
            ConsumerGroupRecord::SubscriptionMetadata(topics) => {
                self.subscription_metadata = topics.clone().unwrap_or_default();
            }
            ConsumerGroupRecord::MemberMetadata { member_id, value } => {
                self.replay_member_metadata(member_id, value.as_ref())?
            }
            ConsumerGroupRecord::RegularExpression { regex, value } => match value {
                Some(resolved) => {
                    self.resolved_regexes
                        .insert(regex.clone(), resolved.clone());
                }
                None => {
                    self.resolved_regexes.remove(regex);
                }
            },
            ConsumerGroupRecord::TargetAssignmentMember {
                member_id,
                partitions,
            } => match partitions {
                Some(partitions) => {
                    self.target_assignment
                        .insert(member_id.clone(), partitions.clone());
                }
                None => {
                    self.target_assignment.remove(member_id);
                }
            },
            ConsumerGroupRecord::TargetAssignmentEpoch(epoch) => {
                self.target_assignment_epoch = epoch.unwrap_or(-1);
            }
            ConsumerGroupRecord::CurrentAssignment { member_id, value } => {
                self.replay_current_assignment(member_id, value.as_ref())?
            }
        }
        Ok(())
    }

    fn replay_member_metadata(
        &mut self,
        member_id: &str,
        value: Option<&MemberMetadataValue>,
    ) -> Result<(), ReplayError> {
        let Some(value) = value else {
            let Some(member) = self.members.get(member_id) else {
                return Ok(());
            };
            if member.member_epoch != LEAVE_GROUP_MEMBER_EPOCH {
                return Err(ReplayError::MemberDeletedWhileAssigned(member_id.into()));
            }
            if self.target_assignment.contains_key(member_id) {
                return Err(ReplayError::MemberDeletedWithTarget(member_id.into()));
            }
            if let Some(member) = self.members.remove(member_id) {
                self.unindex_member(&member);
            }
            return Ok(());
        };
        let mut member = self
            .members
            .get(member_id)
            .cloned()
            .unwrap_or_else(|| ConsumerMember::new(member_id));
        self.unindex_member(&member);
        member.instance_id = value.instance_id.clone();
        member.rack_id = value.rack_id.clone();
        member.client_id = value.client_id.clone();
        member.client_host = value.client_host.clone();
        member.subscribed_topic_names = value.subscribed_topic_names.iter().cloned().collect();
        member.subscribed_topic_regex = value.subscribed_topic_regex.clone();
        member.rebalance_timeout_ms = value.rebalance_timeout_ms;
        member.server_assignor = value.server_assignor.clone();
        self.index_member(&member);
        self.members.insert(member_id.to_string(), member);
        Ok(())
    }

    fn replay_current_assignment(
        &mut self,
        member_id: &str,
        value: Option<&CurrentAssignmentValue>,
    ) -> Result<(), ReplayError> {
        let mut member = match (self.members.get(member_id), value) {
            (Some(member), _) => member.clone(),
            (None, Some(_)) => ConsumerMember::new(member_id),
            (None, None) => return Ok(()),
        };
        match value {
            Some(value) => {
                for assignment in [
                    &value.assigned_partitions,
                    &value.partitions_pending_revocation,
                ] {
                    if let Some((topic_id, partition)) =
                        self.conflicting_partition(member_id, assignment)
                    {
                        return Err(ReplayError::PartitionHeldTwice(topic_id, partition));
                    }
                }
                self.unindex_member(&member);
                member.member_epoch = value.member_epoch;
                member.previous_member_epoch = value.previous_member_epoch;
                member.state = MemberState::from_value(value.state);
                member.assigned_partitions = value.assigned_partitions.clone();
                member.partitions_pending_revocation = value.partitions_pending_revocation.clone();
            }
            None => {
                self.unindex_member(&member);
                member.member_epoch = LEAVE_GROUP_MEMBER_EPOCH;
                member.previous_member_epoch = LEAVE_GROUP_MEMBER_EPOCH;
                member.assigned_partitions.clear();
                member.partitions_pending_revocation.clear();
            }
        }
        self.index_member(&member);
        self.members.insert(member_id.to_string(), member);
        Ok(())
    }

    /// Every record needed to rebuild the group as it is now: what a
    /// compacted `__consumer_offsets` keeps of it. Replaying them into
    /// `ConsumerGroup::new` gives this group back (without its timers).
    pub fn to_records(&self) -> Vec<ConsumerGroupRecord> {
        let mut records = Vec::new();
        for member in self.members.values() {
            records.push(member_metadata_record(member));
        }
        for (regex, resolved) in &self.resolved_regexes {
            records.push(ConsumerGroupRecord::RegularExpression {
                regex: regex.clone(),
                value: Some(resolved.clone()),
            });
        }
        records.push(ConsumerGroupRecord::SubscriptionMetadata(Some(
            self.subscription_metadata.clone(),
        )));
        records.push(ConsumerGroupRecord::GroupEpoch(Some(self.group_epoch)));
        for (member_id, partitions) in &self.target_assignment {
            records.push(ConsumerGroupRecord::TargetAssignmentMember {
                member_id: member_id.clone(),
                partitions: Some(partitions.clone()),
            });
        }
        records.push(ConsumerGroupRecord::TargetAssignmentEpoch(Some(
            self.target_assignment_epoch,
        )));
        for member in self.members.values() {
            records.push(current_assignment_record(member));
        }
        records
    }

    /// After a rebuild from records: start every member's session timer (and
    /// the rebalance timer of members revoking partitions) from `now_ms`, as
    /// Kafka's `onLoaded` does.
    pub fn on_loaded(&mut self, now_ms: i64) {
        let session_ms = i64::from(self.config.session_timeout_ms);
        let members: Vec<(String, MemberState, i32, i32)> = self
            .members
            .values()
            .map(|m| {
                let id = m.member_id.clone();
                (id, m.state, m.member_epoch, m.rebalance_timeout_ms)
            })
            .collect();
        for (member_id, state, epoch, rebalance_timeout_ms) in members {
            self.session_deadlines_ms
                .insert(member_id.clone(), now_ms + session_ms);
            if state == MemberState::UnrevokedPartitions {
                let deadline = now_ms + i64::from(rebalance_timeout_ms.max(0));
                self.rebalance_deadlines_ms
                    .insert(member_id, (deadline, epoch));
            }
        }
    }
}

pub(super) fn member_metadata_record(member: &ConsumerMember) -> ConsumerGroupRecord {
    ConsumerGroupRecord::MemberMetadata {
        member_id: member.member_id.clone(),
        value: Some(MemberMetadataValue {
            instance_id: member.instance_id.clone(),
            rack_id: member.rack_id.clone(),
            client_id: member.client_id.clone(),
            client_host: member.client_host.clone(),
            subscribed_topic_names: member.subscribed_topic_names.iter().cloned().collect(),
            subscribed_topic_regex: member.subscribed_topic_regex.clone(),
            rebalance_timeout_ms: member.rebalance_timeout_ms,
            server_assignor: member.server_assignor.clone(),
        }),
    }
}

pub(super) fn current_assignment_record(member: &ConsumerMember) -> ConsumerGroupRecord {
    ConsumerGroupRecord::CurrentAssignment {
        member_id: member.member_id.clone(),
        value: Some(CurrentAssignmentValue {
            member_epoch: member.member_epoch,
            previous_member_epoch: member.previous_member_epoch,
            state: member.state.value(),
            assigned_partitions: member.assigned_partitions.clone(),
            partitions_pending_revocation: member.partitions_pending_revocation.clone(),
        }),
    }
}

/// The three tombstones that remove a member, in Kafka's order.
pub(super) fn member_tombstones(member_id: &str) -> [ConsumerGroupRecord; 3] {
    [
        ConsumerGroupRecord::CurrentAssignment {
            member_id: member_id.to_string(),
            value: None,
        },
        ConsumerGroupRecord::TargetAssignmentMember {
            member_id: member_id.to_string(),
            partitions: None,
        },
        ConsumerGroupRecord::MemberMetadata {
            member_id: member_id.to_string(),
            value: None,
        },
    ]
}
