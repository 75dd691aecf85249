//! The guarantees checked after every step (`check_invariants`) and at the
//! end of a healed run (`check_converged`), and the ledger they are
//! checked against. Per partition, the ledger keeps:
//!
//! - the records below any replica's high watermark, offset by offset: a
//!   replica whose high watermark passes an offset must hold the record
//!   every other replica held there (two replicas never differ below their
//!   high watermarks), checked incrementally as high watermarks move;
//! - the records acknowledged to acks=all producers, with the leader epoch
//!   and broker that acknowledged them: one broker per leader epoch, and
//!   every leader of a later epoch holds them all.

use std::collections::BTreeMap;

use crate::replication::leader_epochs::LeaderEpochCache;

use super::broker::Role;
use super::{Record, Simulation, ASSIGNMENTS, BROKER_IDS};

#[derive(Default)]
struct PartitionLedger {
    /// The record at each offset below some replica's high watermark.
    committed: Vec<Record>,
    /// (offset, record, leader epoch) of every acks=all acknowledgement.
    acknowledged: Vec<(i64, Record, i32)>,
    /// The broker that acknowledged in each leader epoch.
    acknowledging_broker: BTreeMap<i32, i32>,
}

pub(super) struct Ledger {
    partitions: Vec<PartitionLedger>,
}

impl Ledger {
    pub fn new(partitions: usize) -> Ledger {
        Ledger {
            partitions: (0..partitions)
                .map(|_| PartitionLedger::default())
                .collect(),
        }
    }

    /// Replica `broker` of `partition` has a high watermark of
    /// `high_watermark` over `log`, and its records below `verified_end`
    /// were checked already: check the rest, answer the new verified end.
    pub fn check_committed(
        &mut self,
        partition: usize,
        broker: i32,
        log: &[Record],
        verified_end: i64,
        high_watermark: i64,
    ) -> i64 {
        let committed = &mut self.partitions[partition].committed;
        for offset in verified_end.max(0)..high_watermark {
            let record = log[offset as usize];
            match committed.get(offset as usize) {
                Some(expected) => assert_eq!(
                    *expected, record,
                    "partition {partition}: broker {broker} holds {record:?} at {offset} below its \
                     high watermark {high_watermark}, another replica {expected:?}"
                ),
                None => {
                    assert_eq!(
                        committed.len() as i64,
                        offset,
                        "committed offsets are contiguous"
                    );
                    committed.push(record);
                }
            }
        }
        high_watermark.max(verified_end)
    }

    /// `broker`, leading `partition` at `leader_epoch`, acknowledged
    /// `record` at `offset` to an acks=all producer.
    pub fn acknowledged(
        &mut self,
        partition: usize,
        broker: i32,
        leader_epoch: i32,
        offset: i64,
        record: Record,
    ) {
        let ledger = &mut self.partitions[partition];
        let acknowledging = *ledger
            .acknowledging_broker
            .entry(leader_epoch)
            .or_insert(broker);
        assert_eq!(
            acknowledging, broker,
            "partition {partition}: brokers {acknowledging} and {broker} both acknowledged \
             acks=all writes in leader epoch {leader_epoch}"
        );
        assert_eq!(
            record.epoch, leader_epoch,
            "a leader acknowledges only what it wrote"
        );
        ledger.acknowledged.push((offset, record, leader_epoch));
    }

    /// Every acknowledged record of an epoch before `leader_epoch` must be
    /// in the log of a broker leading at `leader_epoch`.
    pub fn check_leader(&self, partition: usize, broker: i32, leader_epoch: i32, log: &[Record]) {
        for &(offset, record, epoch) in &self.partitions[partition].acknowledged {
            if epoch >= leader_epoch {
                continue;
            }
            assert_eq!(
                log.get(offset as usize),
                Some(&record),
                "partition {partition}: {record:?}, acknowledged at {offset} in leader epoch \
                 {epoch}, is missing on broker {broker} leading epoch {leader_epoch}"
            );
        }
    }

    /// Like `check_leader` for one acknowledgement, against a broker that
    /// already leads a later epoch.
    pub fn check_later_leader(
        partition: usize,
        broker: i32,
        leader_epoch: i32,
        log: &[Record],
        offset: i64,
        record: Record,
    ) {
        assert_eq!(
            log.get(offset as usize),
            Some(&record),
            "partition {partition}: {record:?}, acknowledged at {offset} in leader epoch {}, is \
             missing on broker {broker} already leading epoch {leader_epoch}",
            record.epoch
        );
    }

    pub fn acknowledged_count(&self) -> usize {
        self.partitions
            .iter()
            .map(|ledger| ledger.acknowledged.len())
            .sum()
    }
}

impl Simulation {
    /// The per-step guarantees (the controller's are checked at commit).
    pub(super) fn check_invariants(&mut self) {
        let mut leaders: Vec<(usize, i32, i32)> = Vec::new();
        for broker in &mut self.brokers {
            for (partition, replica) in broker.replicas.iter_mut().enumerate() {
                // The former rule let a follower count, and take a high
                // watermark over, records it has not synced.
                let counted_end = if self.former_rules.fetch_offset {
                    replica.log_end()
                } else {
                    replica.durable_end
                };
                assert!(
                    replica.high_watermark <= counted_end
                        && replica.durable_end <= replica.log_end(),
                    "broker {} partition {partition}: high watermark {}, durable end {}, log end {}",
                    broker.id,
                    replica.high_watermark,
                    replica.durable_end,
                    replica.log_end()
                );
                replica.verified_end = self.ledger.check_committed(
                    partition,
                    broker.id,
                    &replica.log,
                    replica.verified_end,
                    replica.high_watermark,
                );
                let Role::Leader(leading) = &mut replica.role else {
                    continue;
                };
                let view = &leading.view;
                assert_eq!(view.high_watermark, replica.high_watermark);
                assert!(
                    view.high_watermark >= leading.last_high_watermark,
                    "broker {} partition {partition}: high watermark went back from {} to {} in \
                     leader epoch {}",
                    broker.id,
                    leading.last_high_watermark,
                    view.high_watermark,
                    view.leader_epoch
                );
                leading.last_high_watermark = view.high_watermark;
                assert!(
                    view.isr.contains(&broker.id) && view.maximal_isr().contains(&broker.id),
                    "broker {} partition {partition}: leader outside its ISR {:?}",
                    broker.id,
                    view.isr
                );
                let epoch = view.leader_epoch;
                if let Some((_, _, other)) = leaders
                    .iter()
                    .find(|(p, e, _)| *p == partition && *e == epoch)
                {
                    panic!(
                        "partition {partition}: brokers {other} and {} both lead epoch {epoch}",
                        broker.id
                    );
                }
                leaders.push((partition, epoch, broker.id));
            }
        }
    }

    /// After healing: every partition led by its elected leader, every
    /// replica in sync, logs and epoch caches identical, all committed.
    pub(super) fn check_converged(&self) {
        let topic_id = self.controller.topic_id;
        for (partition, replicas) in ASSIGNMENTS.iter().enumerate() {
            let state = self
                .controller
                .image
                .partition(&topic_id, partition as i32)
                .expect("exists");
            let mut isr = state.isr.clone();
            isr.sort_unstable();
            assert_eq!(
                isr, BROKER_IDS,
                "partition {partition}: every replica back in sync"
            );
            let leader = &self.brokers[(state.leader - 1) as usize];
            let leading = leader.replicas[partition]
                .leading()
                .expect("the elected leader leads");
            assert_eq!(leading.view.leader_epoch, state.leader_epoch);
            let expected = &leader.replicas[partition];
            for broker_id in replicas.iter() {
                let replica = &self.brokers[(broker_id - 1) as usize].replicas[partition];
                assert_eq!(
                    replica.log, expected.log,
                    "partition {partition}: broker {broker_id} did not converge"
                );
                assert_eq!(replica.high_watermark, replica.log_end());
                let started = replica.leading().map(|leading| {
                    (
                        leading.view.leader_epoch,
                        leading.view.leader_epoch_start_offset,
                    )
                });
                assert_eq!(
                    replica.epochs,
                    epochs_of(&replica.log, started),
                    "partition {partition}: broker {broker_id}'s epochs"
                );
            }
        }
    }
}

/// The epoch cache a log's records imply, with the epoch a leader started
/// (at its log end, records or not).
fn epochs_of(log: &[Record], started: Option<(i32, i64)>) -> LeaderEpochCache {
    let mut epochs = LeaderEpochCache::default();
    for (offset, record) in log.iter().enumerate() {
        epochs.assign(record.epoch, offset as i64);
    }
    if let Some((epoch, start_offset)) = started {
        epochs.assign(epoch, start_offset);
    }
    epochs
}
