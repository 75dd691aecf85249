//! Partition assignment, rack-unaware, as Kafka's `AdminUtils`
//! (`assignReplicasToBrokersRackUnaware`) does it: partition `p`'s first
//! replica (its preferred leader) is broker `(start + p) % n` of the live
//! brokers sorted by id, so leaders spread evenly and a per-topic random
//! start keeps the first partitions of many small topics off one broker; the
//! other replicas follow at a shift that grows every `n` partitions so
//! replica sets vary too. CreatePartitions continues from the existing count
//! with the topic's original start, keeping the spread.
//!
//! Pure: the randomness is an `rng` value passed in, so tests and replays
//! are deterministic. Runs on the active controller (shard 0).

use crate::protocol::errors::KafkaError;

/// Why replicas cannot be assigned (INVALID_REPLICATION_FACTOR, as Kafka).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssignmentError {
    /// Replication factor below 1.
    #[error("Replication factor must be larger than 0.")]
    ReplicationFactorTooSmall,
    /// More replicas than live brokers (also: no live broker at all).
    #[error(
        "Unable to replicate the partition {replication_factor} time(s): The target replication \
         factor of {replication_factor} cannot be reached because only {live_brokers} broker(s) \
         are registered."
    )]
    NotEnoughBrokers {
        /// The replication factor asked for.
        replication_factor: i32,
        /// Live (unfenced) brokers.
        live_brokers: usize,
    },
}

impl AssignmentError {
    /// The Kafka error code for this error.
    pub fn kafka_error(&self) -> KafkaError {
        KafkaError::InvalidReplicationFactor
    }
}

/// Where to start the round robin: Kafka draws both numbers at random per
/// topic; CreatePartitions recovers them from the existing assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssignmentStart {
    /// Index (into the sorted live brokers) of partition 0's first replica.
    pub start_index: usize,
    /// Base shift of the second replica from the first.
    pub replica_shift: usize,
}

impl AssignmentStart {
    /// A start drawn from `rng` for `live_brokers` brokers (any `rng` value
    /// is fine: it is reduced modulo the broker count).
    pub fn from_rng(rng: u64, live_brokers: usize) -> AssignmentStart {
        let brokers = live_brokers.max(1) as u64;
        AssignmentStart {
            start_index: (rng % brokers) as usize,
            replica_shift: ((rng / brokers) % brokers) as usize,
        }
    }

    /// The start that continues an existing topic's spread: partition 0's
    /// first replica's position among the live brokers (Kafka's choice in
    /// `createPartitions`), or a drawn one if that broker is no longer live.
    pub fn continuing(
        first_replica_of_partition_0: Option<i32>,
        live_brokers: &[i32],
        rng: u64,
    ) -> AssignmentStart {
        let drawn = AssignmentStart::from_rng(rng, live_brokers.len());
        let existing = first_replica_of_partition_0
            .and_then(|broker| live_brokers.iter().position(|live| *live == broker));
        match existing {
            Some(start_index) => AssignmentStart {
                start_index,
                ..drawn
            },
            None => drawn,
        }
    }
}

/// Replicas for partitions `first_partition..first_partition + count`, each
/// list preferred leader first. `live_brokers` must be sorted by id.
pub fn assign_replicas(
    live_brokers: &[i32],
    first_partition: i32,
    count: i32,
    replication_factor: i32,
    start: AssignmentStart,
) -> Result<Vec<Vec<i32>>, AssignmentError> {
    debug_assert!(live_brokers.windows(2).all(|pair| pair[0] < pair[1]));
    if replication_factor < 1 {
        return Err(AssignmentError::ReplicationFactorTooSmall);
    }
    let brokers = live_brokers.len();
    if brokers == 0 || replication_factor as usize > brokers {
        return Err(AssignmentError::NotEnoughBrokers {
            replication_factor,
            live_brokers: brokers,
        });
    }
    let first_partition = first_partition.max(0) as usize;
    let assignment = (first_partition..first_partition + count.max(0) as usize)
        .map(|partition| {
            let first = (start.start_index + partition) % brokers;
            // Kafka bumps the shift every `brokers` partitions.
            let shift = start.replica_shift + partition / brokers;
            let mut replicas = Vec::with_capacity(replication_factor as usize);
            replicas.push(live_brokers[first]);
            for replica in 0..replication_factor as usize - 1 {
                // 1..brokers-1 away from the first, never the first itself.
                let offset = 1 + (shift + replica) % (brokers - 1);
                replicas.push(live_brokers[(first + offset) % brokers]);
            }
            replicas
        })
        .collect();
    Ok(assignment)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn leaders_per_broker(assignment: &[Vec<i32>]) -> BTreeMap<i32, usize> {
        let mut counts = BTreeMap::new();
        for replicas in assignment {
            *counts.entry(replicas[0]).or_default() += 1;
        }
        counts
    }

    #[test]
    fn twelve_partitions_on_three_brokers_give_four_leaders_each() {
        let brokers = [1, 2, 3];
        for rng in 0..20 {
            let start = AssignmentStart::from_rng(rng, brokers.len());
            let assignment = assign_replicas(&brokers, 0, 12, 1, start).expect("assigns");
            assert_eq!(assignment.len(), 12);
            let counts = leaders_per_broker(&assignment);
            assert_eq!(
                counts,
                BTreeMap::from([(1, 4), (2, 4), (3, 4)]),
                "rng {rng}"
            );
        }
    }

    #[test]
    fn growing_six_to_twelve_keeps_the_spread() {
        let brokers = [0, 5, 9];
        for rng in 0..20 {
            let start = AssignmentStart::from_rng(rng, brokers.len());
            let mut assignment = assign_replicas(&brokers, 0, 6, 1, start).expect("assigns");
            let start = AssignmentStart::continuing(Some(assignment[0][0]), &brokers, rng + 7);
            assignment.extend(assign_replicas(&brokers, 6, 6, 1, start).expect("assigns"));
            let counts = leaders_per_broker(&assignment);
            assert_eq!(
                counts,
                BTreeMap::from([(0, 4), (5, 4), (9, 4)]),
                "rng {rng}"
            );
            let all_at_once = assign_replicas(
                &brokers,
                0,
                12,
                1,
                AssignmentStart::from_rng(rng, brokers.len()),
            )
            .expect("assigns");
            assert_eq!(assignment, all_at_once, "growing equals creating at once");
        }
    }

    #[test]
    fn replication_factor_three_on_three_brokers_uses_every_broker_once() {
        let brokers = [1, 2, 3];
        for rng in 0..20 {
            let start = AssignmentStart::from_rng(rng, brokers.len());
            for replicas in assign_replicas(&brokers, 0, 9, 3, start).expect("assigns") {
                let mut sorted = replicas.clone();
                sorted.sort_unstable();
                assert_eq!(sorted, brokers, "rng {rng}: {replicas:?}");
            }
        }
    }

    #[test]
    fn replicas_are_distinct_for_every_factor() {
        let brokers = [1, 2, 3, 4, 5];
        for replication_factor in 1..=5 {
            let start = AssignmentStart::from_rng(12_345, brokers.len());
            for replicas in
                assign_replicas(&brokers, 0, 25, replication_factor, start).expect("assigns")
            {
                let mut sorted = replicas.clone();
                sorted.sort_unstable();
                sorted.dedup();
                assert_eq!(sorted.len(), replication_factor as usize);
            }
        }
    }

    #[test]
    fn bad_replication_factors_are_refused() {
        let start = AssignmentStart::from_rng(0, 2);
        let error = assign_replicas(&[1, 2], 0, 1, 0, start).expect_err("too small");
        assert_eq!(error, AssignmentError::ReplicationFactorTooSmall);
        let error = assign_replicas(&[1, 2], 0, 1, 3, start).expect_err("too large");
        assert!(matches!(error, AssignmentError::NotEnoughBrokers { .. }));
        let error = assign_replicas(&[], 0, 1, 1, start).expect_err("no brokers");
        assert_eq!(error.kafka_error(), KafkaError::InvalidReplicationFactor);
    }
}
