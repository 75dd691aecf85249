//! Partition leader elections as the controller decides them (Kafka's
//! `PartitionChangeBuilder` and `Replicas` rules, KIP-841 for the ISR never
//! emptying). Pure functions of a partition's assignment and which brokers
//! may lead; the active controller (shard 0 of a voter) turns their answers
//! into `PartitionChanged` metadata records.
//!
//! - A clean election picks the first replica in assignment order that is in
//!   the ISR and eligible (registered, unfenced, not shutting down).
//! - With none, an unclean election (`unclean.leader.election.enable`) picks
//!   the first eligible replica at all, and the ISR becomes that one broker:
//!   records it never had may be lost, which is what the setting accepts.
//! - A broker that leaves (fenced, or shutting down) is removed from the ISR,
//!   except when it is the last member: the ISR keeps it and the partition
//!   has no leader until it or an unclean election brings one back.

/// Which brokers may lead or stay in sync.
pub trait Eligibility {
    fn eligible(&self, broker_id: i32) -> bool;
}

impl<F: Fn(i32) -> bool> Eligibility for F {
    fn eligible(&self, broker_id: i32) -> bool {
        self(broker_id)
    }
}

/// Kafka's NO_LEADER.
pub const NO_LEADER: i32 = -1;

/// A partition's leader and ISR after a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderAndIsr {
    pub leader: i32,
    pub isr: Vec<i32>,
}

/// The first replica that is in `isr` and eligible, in assignment order.
pub fn clean_leader(replicas: &[i32], isr: &[i32], brokers: &impl Eligibility) -> Option<i32> {
    replicas
        .iter()
        .copied()
        .find(|broker| isr.contains(broker) && brokers.eligible(*broker))
}

/// The first eligible replica, in assignment order (unclean).
pub fn unclean_leader(replicas: &[i32], brokers: &impl Eligibility) -> Option<i32> {
    replicas
        .iter()
        .copied()
        .find(|broker| brokers.eligible(*broker))
}

/// The partition after the brokers `eligibility` rules out have left (a
/// fence, a controlled shutdown): they leave the ISR unless the last member,
/// and a leader that left is replaced by a clean election, or an unclean one
/// if `unclean_allowed` and no clean one is possible. `None` when nothing
/// changes.
pub fn after_brokers_left(
    replicas: &[i32],
    current: &LeaderAndIsr,
    brokers: &impl Eligibility,
    unclean_allowed: bool,
) -> Option<LeaderAndIsr> {
    let staying: Vec<i32> = current
        .isr
        .iter()
        .copied()
        .filter(|broker| brokers.eligible(*broker))
        .collect();
    let isr = if staying.is_empty() {
        // KIP-841: the ISR never empties; the last member keeps its place.
        current.isr.clone()
    } else {
        staying
    };
    let leader_stays = current.leader != NO_LEADER && brokers.eligible(current.leader);
    let next = if leader_stays {
        LeaderAndIsr {
            leader: current.leader,
            isr,
        }
    } else if let Some(leader) = clean_leader(replicas, &isr, brokers) {
        LeaderAndIsr { leader, isr }
    } else if let Some(leader) = unclean_allowed
        .then(|| unclean_leader(replicas, brokers))
        .flatten()
    {
        LeaderAndIsr {
            leader,
            isr: vec![leader],
        }
    } else {
        LeaderAndIsr {
            leader: NO_LEADER,
            isr,
        }
    };
    (next != *current).then_some(next)
}

/// The preferred replica (the first assigned) as leader, if it is not
/// leading, is in the ISR and eligible (Kafka's preferred election, run by
/// `auto.leader.rebalance.enable` and ElectLeaders). `None` otherwise.
pub fn preferred_leader(
    replicas: &[i32],
    current: &LeaderAndIsr,
    brokers: &impl Eligibility,
) -> Option<LeaderAndIsr> {
    let preferred = *replicas.first()?;
    (current.leader != preferred && current.isr.contains(&preferred) && brokers.eligible(preferred))
        .then(|| LeaderAndIsr {
            leader: preferred,
            isr: current.isr.clone(),
        })
}

/// A broker that came back (unfenced) leads a partition left without a
/// leader if it is the ISR's last member, or an eligible ISR member.
pub fn after_broker_returned(
    replicas: &[i32],
    current: &LeaderAndIsr,
    brokers: &impl Eligibility,
) -> Option<LeaderAndIsr> {
    if current.leader != NO_LEADER {
        return None;
    }
    clean_leader(replicas, &current.isr, brokers).map(|leader| LeaderAndIsr {
        leader,
        isr: current.isr.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(leader: i32, isr: &[i32]) -> LeaderAndIsr {
        LeaderAndIsr {
            leader,
            isr: isr.to_vec(),
        }
    }

    fn all_but(gone: &'static [i32]) -> impl Fn(i32) -> bool {
        move |broker| !gone.contains(&broker)
    }

    #[test]
    fn a_fenced_leader_is_replaced_by_the_first_live_isr_member_in_assignment_order() {
        let replicas = [3, 1, 2];
        let next = after_brokers_left(&replicas, &state(3, &[1, 2, 3]), &all_but(&[3]), false);
        assert_eq!(next, Some(state(1, &[1, 2])));
        // 1 is out of sync: 2 leads even though 1 comes first.
        let next = after_brokers_left(&replicas, &state(3, &[3, 2]), &all_but(&[3]), false);
        assert_eq!(next, Some(state(2, &[2])));
    }

    #[test]
    fn a_fenced_follower_leaves_the_isr_and_the_leader_stays() {
        let next = after_brokers_left(&[1, 2, 3], &state(1, &[1, 2, 3]), &all_but(&[2]), false);
        assert_eq!(next, Some(state(1, &[1, 3])));
        // Nothing to do when every member is eligible.
        assert_eq!(
            after_brokers_left(&[1, 2, 3], &state(1, &[1, 2, 3]), &all_but(&[]), false),
            None
        );
    }

    #[test]
    fn the_last_isr_member_stays_and_the_partition_goes_offline() {
        let next = after_brokers_left(&[1, 2], &state(1, &[1]), &all_but(&[1]), false);
        assert_eq!(next, Some(state(NO_LEADER, &[1])));
        // Offline already: nothing changes while it stays away.
        assert_eq!(
            after_brokers_left(&[1, 2], &state(NO_LEADER, &[1]), &all_but(&[1]), false),
            None
        );
        // It returns and leads again.
        assert_eq!(
            after_broker_returned(&[1, 2], &state(NO_LEADER, &[1]), &all_but(&[])),
            Some(state(1, &[1]))
        );
        // 2 alone coming back cannot lead cleanly.
        assert_eq!(
            after_broker_returned(&[1, 2], &state(NO_LEADER, &[1]), &all_but(&[1])),
            None
        );
    }

    #[test]
    fn unclean_election_takes_any_live_replica_and_resets_the_isr() {
        let next = after_brokers_left(&[1, 2, 3], &state(1, &[1]), &all_but(&[1]), true);
        assert_eq!(next, Some(state(2, &[2])));
        assert_eq!(
            after_brokers_left(&[1, 2, 3], &state(1, &[1]), &all_but(&[1, 2, 3]), true),
            Some(state(NO_LEADER, &[1]))
        );
    }

    #[test]
    fn the_preferred_replica_takes_leadership_back_when_in_sync() {
        let replicas = [1, 2, 3];
        assert_eq!(
            preferred_leader(&replicas, &state(2, &[1, 2, 3]), &all_but(&[])),
            Some(state(1, &[1, 2, 3]))
        );
        assert_eq!(
            preferred_leader(&replicas, &state(2, &[2, 3]), &all_but(&[])),
            None,
            "not in sync"
        );
        assert_eq!(
            preferred_leader(&replicas, &state(2, &[1, 2, 3]), &all_but(&[1])),
            None,
            "fenced"
        );
        assert_eq!(
            preferred_leader(&replicas, &state(1, &[1, 2, 3]), &all_but(&[])),
            None,
            "already leads"
        );
    }
}
