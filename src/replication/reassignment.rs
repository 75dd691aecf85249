//! Partition reassignment (KIP-455) as the controller decides it: pure
//! functions of a partition's replica set, ISR and leader, after Kafka's
//! `PartitionReassignmentReplicas` and `PartitionReassignmentRevert`.
//!
//! A reassignment to `target` runs in three steps:
//! 1. The replica set becomes `target` followed by the replicas it drops
//!    (`removing`); replicas new to it are `adding`. The adding replicas
//!    start copying from the leader like any follower.
//! 2. The leader adds each to the ISR once caught up (AlterPartition).
//! 3. When the ISR holds every target replica, the reassignment completes:
//!    the replica set becomes `target`, the ISR drops the removed replicas,
//!    and a removed leader hands over to the first target replica in sync.
//!
//! A reassignment that only reorders or shrinks the replicas completes at
//! once (step 3 holds right away). Cancelling goes back to the replicas as
//! they were, minus what was being added.

use super::election::{clean_leader, Eligibility, NO_LEADER};

/// A partition's replicas with an ongoing reassignment's two lists (both
/// empty when none is under way).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReplicaSet {
    /// Every replica: the target ones first, then those being removed.
    pub replicas: Vec<i32>,
    /// Replicas being added (sorted).
    pub adding: Vec<i32>,
    /// Replicas being removed (sorted).
    pub removing: Vec<i32>,
}

/// A partition's full state after a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionTarget {
    pub replicas: ReplicaSet,
    pub leader: i32,
    pub isr: Vec<i32>,
}

fn sorted_difference(from: &[i32], without: &[i32]) -> Vec<i32> {
    let mut difference: Vec<i32> = from
        .iter()
        .copied()
        .filter(|replica| !without.contains(replica))
        .collect();
    difference.sort_unstable();
    difference
}

impl ReplicaSet {
    /// Replicas with no reassignment.
    pub fn settled(replicas: &[i32]) -> ReplicaSet {
        ReplicaSet {
            replicas: replicas.to_vec(),
            adding: Vec::new(),
            removing: Vec::new(),
        }
    }

    /// A reassignment from `current` (all of the partition's replicas now)
    /// to `target`.
    pub fn reassign(current: &[i32], target: &[i32]) -> ReplicaSet {
        let removing = sorted_difference(current, target);
        let adding = sorted_difference(target, current);
        let mut replicas = target.to_vec();
        replicas.extend(&removing);
        ReplicaSet {
            replicas,
            adding,
            removing,
        }
    }

    /// Whether a reassignment is under way.
    pub fn is_reassigning(&self) -> bool {
        !self.adding.is_empty() || !self.removing.is_empty()
    }

    /// The replicas before the reassignment (what cancelling returns to).
    pub fn original(&self) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|replica| !self.adding.contains(replica))
            .collect()
    }

    /// The reassignment completed with `isr`: the target replicas and the
    /// ISR without the removed ones, if every target replica is in sync and
    /// some stays in the ISR. `None` when it must wait (or none runs).
    pub fn complete(&self, isr: &[i32]) -> Option<(ReplicaSet, Vec<i32>)> {
        if !self.is_reassigning() {
            return None;
        }
        let target: Vec<i32> = self
            .replicas
            .iter()
            .copied()
            .filter(|replica| !self.removing.contains(replica))
            .collect();
        let target_isr: Vec<i32> = isr
            .iter()
            .copied()
            .filter(|replica| !self.removing.contains(replica))
            .collect();
        if target.is_empty() || target_isr.is_empty() {
            return None;
        }
        if !target.iter().all(|replica| target_isr.contains(replica)) {
            return None;
        }
        Some((ReplicaSet::settled(&target), target_isr))
    }
}

/// The partition once `replicas` and `isr` are set: a reassignment
/// completes if it can, and a leader that left the ISR or cannot lead is
/// replaced by the first eligible ISR member in replica order (or none:
/// the partition waits, as after a fence).
pub fn settle(
    replicas: ReplicaSet,
    leader: i32,
    isr: Vec<i32>,
    brokers: &impl Eligibility,
) -> PartitionTarget {
    let (replicas, isr) = match replicas.complete(&isr) {
        Some(completed) => completed,
        None => (replicas, isr),
    };
    let leader_stays =
        leader != NO_LEADER && isr.contains(&leader) && replicas.replicas.contains(&leader);
    let leader = if leader_stays && brokers.eligible(leader) {
        leader
    } else {
        clean_leader(&replicas.replicas, &isr, brokers).unwrap_or(if leader_stays {
            leader
        } else {
            NO_LEADER
        })
    };
    PartitionTarget {
        replicas,
        leader,
        isr,
    }
}

/// Cancelling the reassignment: the original replicas, the ISR without
/// the replicas being added. `unclean` when only added replicas were in
/// sync: the first original replica becomes the ISR, which Kafka allows
/// only where unclean leader election is.
pub fn revert(current: &ReplicaSet, isr: &[i32]) -> (ReplicaSet, Vec<i32>, bool) {
    let original = current.original();
    let kept: Vec<i32> = isr
        .iter()
        .copied()
        .filter(|replica| !current.adding.contains(replica))
        .collect();
    let (isr, unclean) = match (kept.is_empty(), original.first()) {
        (true, Some(first)) => (vec![*first], true),
        _ => (kept, false),
    };
    (ReplicaSet::settled(&original), isr, unclean)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn everyone(_: i32) -> bool {
        true
    }

    #[test]
    fn moving_a_replica_adds_the_target_first_then_completes_once_it_is_in_sync() {
        let moving = ReplicaSet::reassign(&[1, 2, 3], &[4, 2, 3]);
        assert_eq!(moving.replicas, vec![4, 2, 3, 1]);
        assert_eq!(
            (moving.adding.clone(), moving.removing.clone()),
            (vec![4], vec![1])
        );
        // Broker 4 not in sync yet: nothing completes, broker 1 still leads.
        let waiting = settle(moving.clone(), 1, vec![1, 2, 3], &everyone);
        assert_eq!(waiting.replicas, moving);
        assert_eq!(waiting.leader, 1);
        // In sync: the set becomes the target and leadership leaves broker 1.
        let done = settle(moving, 1, vec![1, 2, 3, 4], &everyone);
        assert_eq!(done.replicas, ReplicaSet::settled(&[4, 2, 3]));
        assert_eq!((done.leader, done.isr), (4, vec![2, 3, 4]));
    }

    #[test]
    fn reordering_or_shrinking_completes_at_once() {
        let reordered = settle(
            ReplicaSet::reassign(&[1, 2, 3], &[3, 1, 2]),
            1,
            vec![1, 2, 3],
            &everyone,
        );
        assert_eq!(reordered.replicas, ReplicaSet::settled(&[3, 1, 2]));
        assert_eq!(reordered.leader, 1, "the leader is still in sync");
        let shrunk = settle(
            ReplicaSet::reassign(&[1, 2, 3], &[2]),
            1,
            vec![1, 2, 3],
            &everyone,
        );
        assert_eq!(shrunk.replicas, ReplicaSet::settled(&[2]));
        assert_eq!((shrunk.leader, shrunk.isr), (2, vec![2]));
    }

    #[test]
    fn a_target_with_no_replica_in_sync_waits() {
        let moving = ReplicaSet::reassign(&[1], &[2]);
        let waiting = settle(moving.clone(), 1, vec![1], &everyone);
        assert_eq!((waiting.replicas, waiting.leader), (moving, 1));
    }

    #[test]
    fn cancelling_returns_to_the_original_replicas_without_the_added_ones() {
        let moving = ReplicaSet::reassign(&[1, 2, 3], &[4, 5, 3]);
        assert_eq!(moving.original(), vec![3, 1, 2]);
        let (replicas, isr, unclean) = revert(&moving, &[1, 3, 4]);
        assert_eq!(replicas, ReplicaSet::settled(&[3, 1, 2]));
        assert_eq!((isr, unclean), (vec![1, 3], false));
        let (_, isr, unclean) = revert(&moving, &[4, 5]);
        assert_eq!((isr, unclean), (vec![3], true));
    }

    #[test]
    fn a_fenced_leader_is_replaced_and_an_ineligible_target_waits() {
        let only_2 = |broker: i32| broker == 2;
        let moved = settle(ReplicaSet::settled(&[1, 2]), 1, vec![1, 2], &only_2);
        assert_eq!(moved.leader, 2);
        let none = |_: i32| false;
        let kept = settle(ReplicaSet::settled(&[1, 2]), 1, vec![1, 2], &none);
        assert_eq!(kept.leader, 1, "no one else can lead: the leader stays");
    }
}
