//! Deterministic scenarios of the transaction coordinator: simulated time,
//! producer ids from a counter, every record written kept so that replaying
//! it must rebuild the same state.
//!
//! - `init`: InitProducerId (new ids, epochs, fencing, KIP-360), AddPartitionsToTxn
//! - `end`: EndTxn, completion, timeouts, expiry, replay, Describe/List

mod end;
mod init;

use super::records::{encode_key, encode_value};
use super::state::{NO_PRODUCER_EPOCH, NO_PRODUCER_ID};
use super::*;

const TIMEOUT_MS: i32 = 60_000;
const T0: i64 = 1_000_000;

/// A coordinator plus the `__transaction_state` records it wrote.
struct Harness {
    transactions: Transactions,
    log: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    next_producer_id: i64,
}

impl Harness {
    fn new() -> Self {
        Harness {
            transactions: Transactions::new(TxnConfig::default()),
            log: Vec::new(),
            next_producer_id: 1_000,
        }
    }

    /// Appends the record of `metadata` and applies it, as the server does.
    fn persist(&mut self, metadata: TransactionMetadata) {
        let id = metadata.transactional_id.clone();
        self.log
            .push((encode_key(&id), Some(encode_value(&metadata))));
        self.transactions.apply(&id, Some(metadata));
    }

    fn tombstone(&mut self, id: &str) {
        self.log.push((encode_key(id), None));
        self.transactions.apply(id, None);
    }

    fn init_plan(
        &mut self,
        id: &str,
        expected: Option<(i64, i16)>,
        now_ms: i64,
    ) -> Result<InitProducerIdPlan, TxnError> {
        let next = &mut self.next_producer_id;
        self.transactions
            .init_producer_id(id, TIMEOUT_MS, expected, now_ms, || {
                *next += 1;
                Ok(*next)
            })
    }

    /// InitProducerId that must succeed: persisted, returns (pid, epoch).
    fn init(&mut self, id: &str, expected: Option<(i64, i16)>, now_ms: i64) -> (i64, i16) {
        match self.init_plan(id, expected, now_ms) {
            Ok(InitProducerIdPlan::Initialized(metadata)) => {
                let answer = (metadata.producer_id, metadata.producer_epoch);
                self.persist(metadata);
                answer
            }
            other => panic!("init of {id}: {other:?}"),
        }
    }

    fn add(&mut self, id: &str, (pid, epoch): (i64, i16), partitions: &[(&str, i32)], now_ms: i64) {
        let partitions = owned(partitions);
        let next = self
            .transactions
            .add_partitions(id, pid, epoch, &partitions, now_ms)
            .expect("add partitions");
        if let Some(next) = next {
            self.persist(next);
        }
    }

    /// Persists an end plan and, if it has markers, "writes" them and
    /// completes; returns the markers.
    fn carry_out(&mut self, plan: EndPlan, now_ms: i64) -> Option<MarkerPlan> {
        let id = plan.metadata.transactional_id.clone();
        self.persist(plan.metadata);
        let markers = plan.markers?;
        let completed = self.transactions.complete(&id, now_ms).expect("complete");
        self.persist(completed);
        Some(markers)
    }

    fn state(&self, id: &str) -> TransactionState {
        self.transactions.get(id).expect("known id").state
    }

    /// A fresh coordinator rebuilt from every record written so far.
    fn replayed(&self) -> Transactions {
        let mut replayed = Transactions::new(TxnConfig::default());
        for (key, value) in &self.log {
            replayed.replay(key, value.as_deref()).expect("replay");
        }
        replayed
    }
}

fn owned(partitions: &[(&str, i32)]) -> Vec<(String, i32)> {
    partitions
        .iter()
        .map(|(topic, partition)| (topic.to_string(), *partition))
        .collect()
}

fn no_new_producer_id() -> Result<i64, TxnError> {
    panic!("no new producer id expected")
}

/// Metadata as replay sees it: the fields v0 records do not carry are unknown.
fn as_stored(metadata: &TransactionMetadata) -> TransactionMetadata {
    TransactionMetadata {
        last_producer_id: NO_PRODUCER_ID,
        last_producer_epoch: NO_PRODUCER_EPOCH,
        ..metadata.clone()
    }
}
