//! One member of a consumer group: who it is, what it subscribes to, its
//! epochs and the partitions it holds or must give up. Kafka's
//! `ConsumerGroupMember`. Lives inside its `ConsumerGroup` on the group's
//! coordinator shard; only replayed records change it.

use std::collections::BTreeSet;

use super::Assignment;

/// Where a member stands in reconciling towards its target assignment
/// (Kafka's `MemberState`, stored as its byte value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MemberState {
    /// At its target epoch with all its target partitions it may have.
    #[default]
    Stable,
    /// Must stop consuming partitions before it moves to the next epoch.
    UnrevokedPartitions,
    /// At its target epoch, waiting for partitions other members still hold.
    UnreleasedPartitions,
    /// A state a newer broker wrote; the member is fenced and rejoins.
    Unknown,
}

impl MemberState {
    pub fn value(self) -> i8 {
        match self {
            MemberState::Stable => 0,
            MemberState::UnrevokedPartitions => 1,
            MemberState::UnreleasedPartitions => 2,
            MemberState::Unknown => 127,
        }
    }

    /// Any byte Kafka did not define reads as `Unknown`.
    pub fn from_value(value: i8) -> MemberState {
        match value {
            0 => MemberState::Stable,
            1 => MemberState::UnrevokedPartitions,
            2 => MemberState::UnreleasedPartitions,
            _ => MemberState::Unknown,
        }
    }
}

/// A member as the group holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerMember {
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: BTreeSet<String>,
    pub subscribed_topic_regex: Option<String>,
    /// How long it may take to revoke partitions (`max.poll.interval.ms`).
    pub rebalance_timeout_ms: i32,
    /// The assignor it asked for, if any.
    pub server_assignor: Option<String>,
    /// The epoch it must send in its next heartbeat.
    pub member_epoch: i32,
    /// The epoch before the last bump: a member whose response with the
    /// bump got lost may still send it.
    pub previous_member_epoch: i32,
    pub state: MemberState,
    /// What it may consume now.
    pub assigned_partitions: Assignment,
    /// What it must stop consuming before it gets anything new.
    pub partitions_pending_revocation: Assignment,
}

impl ConsumerMember {
    /// A member as a first record about it creates it: epoch 0, nothing held.
    pub fn new(member_id: &str) -> ConsumerMember {
        ConsumerMember {
            member_id: member_id.to_string(),
            ..ConsumerMember::default()
        }
    }

    /// Kafka's `isReconciledTo`: Stable at the target assignment's epoch.
    pub fn is_reconciled_to(&self, target_assignment_epoch: i32) -> bool {
        self.state == MemberState::Stable && self.member_epoch == target_assignment_epoch
    }

    pub fn is_static(&self) -> bool {
        self.instance_id.is_some()
    }

    /// The topic names it subscribes to by name (not through its regex).
    pub fn subscribes_to(&self, topic: &str) -> bool {
        self.subscribed_topic_names.contains(topic)
    }
}

/// Count of partitions in an assignment.
pub fn partition_count(assignment: &Assignment) -> usize {
    assignment.values().map(BTreeSet::len).sum()
}
