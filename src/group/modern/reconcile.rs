//! One member's next step towards its target assignment (Kafka's
//! `CurrentAssignmentBuilder`), pure: the member, the target and which
//! partitions other members still hold go in, the member's next state comes
//! out. Revoke first, then assign: a member keeps its epoch while it must
//! revoke partitions, and gets a partition only once no other member holds
//! it (its epoch is -1), so no partition is ever consumed twice. Members
//! move one at a time and never stop the whole group.

use std::collections::BTreeSet;

use uuid::Uuid;

use super::error::HeartbeatError;
use super::member::{ConsumerMember, MemberState};
use super::messages::OwnedTopicPartitions;
use super::Assignment;

/// A member in the `Unknown` state (written by a newer broker) that still
/// owns partitions, or does not say, must give them all up and rejoin.
/// Checked before anything changes, so `next_member_state` cannot fail.
pub(super) fn check_known_state(
    member: &ConsumerMember,
    owned: Option<&[OwnedTopicPartitions]>,
) -> Result<(), HeartbeatError> {
    if member.state == MemberState::Unknown && owned.is_none_or(|owned| !owned.is_empty()) {
        return Err(HeartbeatError::FencedMemberEpoch(
            "The consumer group member is in a unknown state. The member must abandon all its \
             partitions and rejoin."
                .to_string(),
        ));
    }
    Ok(())
}

/// The member's next state. `owned` is what it reported in this heartbeat
/// (`None`: not reported); `partition_epoch` gives the epoch of a
/// partition's holder or -1. Returns the member unchanged when it cannot
/// move.
pub(super) fn next_member_state(
    member: &ConsumerMember,
    target_epoch: i32,
    target: &Assignment,
    owned: Option<&[OwnedTopicPartitions]>,
    partition_epoch: &dyn Fn(Uuid, i32) -> i32,
) -> ConsumerMember {
    let step = Step {
        member,
        target_epoch,
        target,
        owned,
        partition_epoch,
    };
    match member.state {
        MemberState::Stable if member.member_epoch == target_epoch => member.clone(),
        MemberState::Stable | MemberState::UnreleasedPartitions => {
            step.compute(member.member_epoch)
        }
        MemberState::UnrevokedPartitions => {
            if owns_any(owned, &member.partitions_pending_revocation) {
                return member.clone();
            }
            // Revoked everything: the member moves on to the next epoch.
            step.compute(member.member_epoch + 1)
        }
        // `check_known_state` let it through: it owns nothing.
        MemberState::Unknown => step.compute(target_epoch),
    }
}

/// Does the member still report any partition of `pending`? Not reporting
/// counts as owning them all (Kafka's `ownsRevokedPartitions`).
fn owns_any(owned: Option<&[OwnedTopicPartitions]>, pending: &Assignment) -> bool {
    let Some(owned) = owned else {
        return true;
    };
    owned.iter().any(|topic| {
        pending
            .get(&topic.topic_id)
            .is_some_and(|partitions| topic.partitions.iter().any(|p| partitions.contains(p)))
    })
}

struct Step<'a> {
    member: &'a ConsumerMember,
    target_epoch: i32,
    target: &'a Assignment,
    owned: Option<&'a [OwnedTopicPartitions]>,
    partition_epoch: &'a dyn Fn(Uuid, i32) -> i32,
}

impl Step<'_> {
    /// Kafka's `computeNextAssignment`, starting at `member_epoch`.
    fn compute(&self, member_epoch: i32) -> ConsumerMember {
        let current = &self.member.assigned_partitions;
        let mut kept = Assignment::new();
        let mut revoking = Assignment::new();
        let mut to_assign = Assignment::new();
        let mut has_unreleased = false;
        let topic_ids: BTreeSet<Uuid> = self.target.keys().chain(current.keys()).copied().collect();
        let empty = BTreeSet::new();
        for topic_id in topic_ids {
            let target = self.target.get(&topic_id).unwrap_or(&empty);
            let held = current.get(&topic_id).unwrap_or(&empty);
            let keep: BTreeSet<i32> = held.intersection(target).copied().collect();
            let revoke: BTreeSet<i32> = held.difference(&keep).copied().collect();
            let mut assign = BTreeSet::new();
            for partition in target.difference(&keep) {
                if (self.partition_epoch)(topic_id, *partition) == -1 {
                    assign.insert(*partition);
                } else {
                    has_unreleased = true;
                }
            }
            insert_nonempty(&mut kept, topic_id, keep);
            insert_nonempty(&mut revoking, topic_id, revoke);
            insert_nonempty(&mut to_assign, topic_id, assign);
        }
        let mut next = self.member.clone();
        if !revoking.is_empty() && owns_any(self.owned, &revoking) {
            // Keep the epoch and ask for the revocation first.
            set_epoch(&mut next, member_epoch);
            next.state = MemberState::UnrevokedPartitions;
            next.assigned_partitions = kept;
            next.partitions_pending_revocation = revoking;
            return next;
        }
        for (topic_id, partitions) in to_assign {
            kept.entry(topic_id).or_default().extend(partitions);
        }
        set_epoch(&mut next, self.target_epoch);
        next.state = if has_unreleased {
            MemberState::UnreleasedPartitions
        } else {
            MemberState::Stable
        };
        next.assigned_partitions = kept;
        next.partitions_pending_revocation = Assignment::new();
        next
    }
}

/// Kafka's `updateMemberEpoch`: the old epoch becomes the previous one.
fn set_epoch(member: &mut ConsumerMember, epoch: i32) {
    member.previous_member_epoch = member.member_epoch;
    member.member_epoch = epoch;
}

fn insert_nonempty(assignment: &mut Assignment, topic_id: Uuid, partitions: BTreeSet<i32>) {
    if !partitions.is_empty() {
        assignment.insert(topic_id, partitions);
    }
}
