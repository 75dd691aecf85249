//! Deterministic scenarios of the transaction coordinator: simulated time,
//! producer ids from a counter, every record written kept so that replaying
//! it must rebuild the same state.

use super::records::{encode_key, encode_value};
use super::state::{NO_PRODUCER_EPOCH, NO_PRODUCER_ID};
use super::*;
use crate::protocol::batch_builder::ControlType;

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

#[test]
fn init_of_a_new_id_allocates_a_producer_id_at_epoch_0() {
    let mut harness = Harness::new();
    assert_eq!(harness.init("tx", None, T0), (1_001, 0));
    let metadata = harness.transactions.get("tx").unwrap();
    assert_eq!(metadata.state, TransactionState::Empty);
    assert_eq!(metadata.timeout_ms, TIMEOUT_MS);
    assert_eq!(metadata.start_timestamp_ms, -1);
    assert_eq!(metadata.last_update_timestamp_ms, T0);
    assert_eq!(metadata.last_producer_id, NO_PRODUCER_ID);
    // A forgotten id with an expected producer (KIP-360 recovery) is new too.
    assert_eq!(harness.init("other", Some((77, 5)), T0), (1_002, 0));
}

#[test]
fn init_refuses_bad_ids_and_timeouts() {
    let harness = Harness::new();
    let init = |id: &str, timeout_ms| {
        harness
            .transactions
            .init_producer_id(id, timeout_ms, None, T0, || Ok(1))
            .err()
    };
    assert_eq!(init("", TIMEOUT_MS), Some(TxnError::InvalidRequest));
    let long = "x".repeat(NAME_BYTES_MAX + 1);
    assert_eq!(init(&long, TIMEOUT_MS), Some(TxnError::InvalidRequest));
    assert_eq!(init(&"x".repeat(NAME_BYTES_MAX), TIMEOUT_MS), None);
    assert_eq!(init("tx", 0), Some(TxnError::InvalidTransactionTimeout));
    assert_eq!(init("tx", -1), Some(TxnError::InvalidTransactionTimeout));
    assert_eq!(
        init("tx", 900_001),
        Some(TxnError::InvalidTransactionTimeout)
    );
    assert_eq!(init("tx", 900_000), None);
    // Allocation failures are the caller's error.
    let failed = harness
        .transactions
        .init_producer_id("tx", TIMEOUT_MS, None, T0, || {
            Err(TxnError::CoordinatorLoadInProgress)
        });
    assert_eq!(failed, Err(TxnError::CoordinatorLoadInProgress));
}

#[test]
fn init_of_a_known_id_bumps_the_epoch_and_takes_the_new_timeout() {
    let mut harness = Harness::new();
    let (pid, epoch) = harness.init("tx", None, T0);
    let plan = harness
        .transactions
        .init_producer_id("tx", 5_000, None, T0 + 10, no_new_producer_id)
        .unwrap();
    let InitProducerIdPlan::Initialized(metadata) = plan else {
        panic!("{plan:?}")
    };
    assert_eq!(
        (metadata.producer_id, metadata.producer_epoch),
        (pid, epoch + 1)
    );
    assert_eq!(metadata.last_producer_id, pid);
    assert_eq!(metadata.last_producer_epoch, NO_PRODUCER_EPOCH);
    assert_eq!(metadata.timeout_ms, 5_000);
    assert_eq!(metadata.last_update_timestamp_ms, T0 + 10);
    harness.persist(metadata);

    // After a committed transaction too, and the old epoch is fenced.
    harness.add("tx", (pid, 1), &[("t", 0)], T0 + 20);
    let plan = harness
        .transactions
        .end_txn("tx", pid, 1, true, T0 + 30)
        .unwrap()
        .unwrap();
    harness.carry_out(plan, T0 + 40);
    assert_eq!(harness.init("tx", None, T0 + 50), (pid, 2));
    assert_eq!(
        harness
            .transactions
            .add_partitions("tx", pid, 1, &owned(&[("t", 0)]), T0 + 60),
        Err(TxnError::ProducerFenced)
    );
}

#[test]
fn init_during_a_transaction_fences_and_aborts_it_first() {
    let mut harness = Harness::new();
    let (pid, epoch) = harness.init("tx", None, T0);
    harness.add("tx", (pid, epoch), &[("b", 1), ("a", 0)], T0 + 1);

    let plan = harness.init_plan("tx", None, T0 + 2).unwrap();
    let InitProducerIdPlan::FenceOngoing(plan) = plan else {
        panic!("{plan:?}")
    };
    assert_eq!(plan.metadata.state, TransactionState::PrepareAbort);
    assert_eq!(plan.metadata.producer_epoch, epoch + 1);
    assert_eq!(plan.metadata.last_update_timestamp_ms, T0 + 2);
    assert_eq!(plan.metadata.start_timestamp_ms, T0 + 1);
    assert_eq!(
        plan.markers,
        Some(MarkerPlan {
            transactional_id: "tx".into(),
            producer_id: pid,
            producer_epoch: epoch + 1,
            control: ControlType::Abort,
            partitions: owned(&[("a", 0), ("b", 1)]),
        })
    );
    harness.persist(plan.metadata);

    // While the markers are written: the new producer retries, the old is fenced.
    assert_eq!(
        harness.init_plan("tx", None, T0 + 3),
        Err(TxnError::ConcurrentTransactions)
    );
    assert_eq!(
        harness.transactions.end_txn("tx", pid, epoch, true, T0 + 3),
        Err(TxnError::ProducerFenced)
    );
    let completed = harness.transactions.complete("tx", T0 + 4).unwrap();
    assert_eq!(completed.state, TransactionState::CompleteAbort);
    assert!(completed.partitions.is_empty());
    harness.persist(completed);
    assert_eq!(harness.init("tx", None, T0 + 5), (pid, epoch + 2));
}

#[test]
fn ending_a_transaction_without_partitions_completes_at_once() {
    let mut harness = Harness::new();
    let (pid, epoch) = harness.init("tx", None, T0);
    // An empty AddPartitionsToTxn starts a transaction, as in Kafka.
    harness.add("tx", (pid, epoch), &[], T0 + 1);
    assert_eq!(harness.state("tx"), TransactionState::Ongoing);
    let InitProducerIdPlan::FenceOngoing(plan) = harness.init_plan("tx", None, T0 + 2).unwrap()
    else {
        panic!("not fenced")
    };
    assert_eq!(plan.markers, None);
    assert_eq!(plan.metadata.state, TransactionState::CompleteAbort);
    assert_eq!(plan.metadata.producer_epoch, epoch + 1);

    for (commit, state) in [
        (true, TransactionState::CompleteCommit),
        (false, TransactionState::CompleteAbort),
    ] {
        let mut harness = Harness::new();
        let (pid, epoch) = harness.init("tx", None, T0);
        harness.add("tx", (pid, epoch), &[], T0 + 1);
        let plan = harness
            .transactions
            .end_txn("tx", pid, epoch, commit, T0 + 2)
            .unwrap()
            .unwrap();
        assert_eq!((plan.metadata.state, plan.markers), (state, None));
        assert_eq!(plan.metadata.producer_epoch, epoch);
    }
}

#[test]
fn init_while_markers_are_written_is_concurrent() {
    for state in [
        TransactionState::PrepareCommit,
        TransactionState::PrepareAbort,
        TransactionState::PrepareEpochFence,
    ] {
        let mut harness = Harness::new();
        let (pid, epoch) = harness.init("tx", None, T0);
        harness.add("tx", (pid, epoch), &[("t", 0)], T0);
        let mut metadata = harness.transactions.get("tx").unwrap().clone();
        metadata.state = state;
        harness.persist(metadata);
        assert_eq!(
            harness.init_plan("tx", None, T0),
            Err(TxnError::ConcurrentTransactions)
        );
        assert_eq!(
            harness.init_plan("tx", Some((pid, epoch)), T0),
            Err(TxnError::ConcurrentTransactions)
        );
    }
}

#[test]
fn exhausted_epochs_rotate_the_producer_id() {
    let mut harness = Harness::new();
    let (pid, _) = harness.init("tx", None, T0);
    let mut metadata = harness.transactions.get("tx").unwrap().clone();
    metadata.producer_epoch = i16::MAX - 1;
    harness.persist(metadata);

    // No expected epoch: new id at epoch 0, no last epoch.
    let InitProducerIdPlan::Initialized(rotated) = harness.init_plan("tx", None, T0 + 1).unwrap()
    else {
        panic!("not rotated")
    };
    assert_eq!((rotated.producer_id, rotated.producer_epoch), (pid + 1, 0));
    assert_eq!(rotated.last_producer_id, pid);
    assert_eq!(rotated.last_producer_epoch, NO_PRODUCER_EPOCH);

    // With the exhausted epoch expected (KIP-360): rotated, last epoch kept,
    // and a retry of that call (old id, exhausted epoch) gets the same answer.
    let answer = harness.init("tx", Some((pid, i16::MAX - 1)), T0 + 2);
    assert_eq!(answer, (pid + 2, 0));
    let metadata = harness.transactions.get("tx").unwrap();
    assert_eq!(metadata.last_producer_id, pid);
    assert_eq!(metadata.last_producer_epoch, i16::MAX - 1);
    let retry = harness.init("tx", Some((pid, i16::MAX - 1)), T0 + 3);
    assert_eq!(retry, (pid + 2, 0));
    // An old id at a non-exhausted epoch is fenced.
    assert_eq!(
        harness.init_plan("tx", Some((pid, 5)), T0 + 4),
        Err(TxnError::ProducerFenced)
    );
}

#[test]
fn expected_producer_follows_kip_360() {
    let mut harness = Harness::new();
    let (pid, epoch) = harness.init("tx", None, T0);
    // The current producer re-initialises: bumped, last epoch remembered.
    assert_eq!(
        harness.init("tx", Some((pid, epoch)), T0 + 1),
        (pid, epoch + 1)
    );
    assert_eq!(
        harness.transactions.get("tx").unwrap().last_producer_epoch,
        epoch
    );
    // Its retry (answer lost) gets the same epoch, no second bump.
    assert_eq!(
        harness.init("tx", Some((pid, epoch)), T0 + 2),
        (pid, epoch + 1)
    );
    // A stale epoch, or another producer id, is fenced.
    assert_eq!(
        harness.init_plan("tx", Some((pid, 7)), T0 + 3),
        Err(TxnError::ProducerFenced)
    );
    assert_eq!(
        harness.init_plan("tx", Some((pid + 50, epoch + 1)), T0 + 3),
        Err(TxnError::ProducerFenced)
    );
    // A plain InitProducerId (a new producer instance) clears the last epoch,
    // so the old instance's retry is now fenced.
    assert_eq!(harness.init("tx", None, T0 + 4), (pid, epoch + 2));
    assert_eq!(
        harness.init_plan("tx", Some((pid, epoch + 1)), T0 + 5),
        Err(TxnError::ProducerFenced)
    );
}

#[test]
fn adding_partitions_starts_and_grows_a_transaction() {
    let mut harness = Harness::new();
    let (pid, epoch) = harness.init("tx", None, T0);
    let add = |harness: &Harness, pid, epoch, partitions: &[(&str, i32)]| {
        harness
            .transactions
            .add_partitions("tx", pid, epoch, &owned(partitions), T0 + 100)
    };
    assert_eq!(
        harness
            .transactions
            .add_partitions("nope", pid, epoch, &owned(&[("t", 0)]), T0),
        Err(TxnError::InvalidProducerIdMapping)
    );
    assert_eq!(
        add(&harness, pid + 1, epoch, &[("t", 0)]),
        Err(TxnError::InvalidProducerIdMapping)
    );
    assert_eq!(
        add(&harness, pid, epoch + 1, &[("t", 0)]),
        Err(TxnError::ProducerFenced)
    );
    assert_eq!(
        harness
            .transactions
            .add_partitions("", pid, epoch, &owned(&[("t", 0)]), T0),
        Err(TxnError::InvalidRequest)
    );
    let long_topic = "t".repeat(NAME_BYTES_MAX + 1);
    assert_eq!(
        harness
            .transactions
            .add_partitions("tx", pid, epoch, &[(long_topic, 0)], T0),
        Err(TxnError::InvalidRequest)
    );

    harness.add("tx", (pid, epoch), &[("t", 0), ("t", 1)], T0 + 10);
    let metadata = harness.transactions.get("tx").unwrap().clone();
    assert_eq!(metadata.state, TransactionState::Ongoing);
    assert_eq!(metadata.start_timestamp_ms, T0 + 10);
    assert_eq!(metadata.last_update_timestamp_ms, T0 + 10);

    // Already in: nothing to write.
    assert_eq!(add(&harness, pid, epoch, &[("t", 1)]), Ok(None));
    // More: union, start unchanged.
    harness.add("tx", (pid, epoch), &[("u", 3), ("t", 1)], T0 + 20);
    let metadata = harness.transactions.get("tx").unwrap().clone();
    assert_eq!(
        metadata.partitions,
        owned(&[("t", 0), ("t", 1), ("u", 3)]).into_iter().collect()
    );
    assert_eq!(metadata.start_timestamp_ms, T0 + 10);
    assert_eq!(metadata.last_update_timestamp_ms, T0 + 20);

    // While markers are written: concurrent.
    let plan = harness
        .transactions
        .end_txn("tx", pid, epoch, true, T0 + 30)
        .unwrap()
        .unwrap();
    harness.persist(plan.metadata);
    assert_eq!(
        add(&harness, pid, epoch, &[("t", 0)]),
        Err(TxnError::ConcurrentTransactions)
    );
    // After completion a new transaction starts with only its own partitions.
    let completed = harness.transactions.complete("tx", T0 + 40).unwrap();
    harness.persist(completed);
    harness.add("tx", (pid, epoch), &[("v", 0)], T0 + 50);
    let metadata = harness.transactions.get("tx").unwrap();
    assert_eq!(
        metadata.partitions,
        owned(&[("v", 0)]).into_iter().collect()
    );
    assert_eq!(metadata.start_timestamp_ms, T0 + 50);
}

#[test]
fn verify_only_reports_partitions_outside_the_transaction() {
    let mut harness = Harness::new();
    let (pid, epoch) = harness.init("tx", None, T0);
    let verify = |harness: &Harness, id, pid, epoch| {
        harness
            .transactions
            .verify_partitions(id, pid, epoch, &owned(&[("t", 0), ("t", 1)]))
    };
    assert_eq!(
        verify(&harness, "tx", pid, epoch),
        Ok(owned(&[("t", 0), ("t", 1)]))
    );
    harness.add("tx", (pid, epoch), &[("t", 0)], T0 + 1);
    assert_eq!(verify(&harness, "tx", pid, epoch), Ok(owned(&[("t", 1)])));
    assert_eq!(
        verify(&harness, "nope", pid, epoch),
        Err(TxnError::InvalidProducerIdMapping)
    );
    assert_eq!(
        verify(&harness, "tx", pid + 1, epoch),
        Err(TxnError::InvalidProducerIdMapping)
    );
    assert_eq!(
        verify(&harness, "tx", pid, epoch + 1),
        Err(TxnError::ProducerFenced)
    );
    assert_eq!(
        verify(&harness, "", pid, epoch),
        Err(TxnError::InvalidRequest)
    );
    // Verification never writes anything.
    assert_eq!(harness.state("tx"), TransactionState::Ongoing);
    let plan = harness
        .transactions
        .end_txn("tx", pid, epoch, false, T0 + 2)
        .unwrap()
        .unwrap();
    harness.persist(plan.metadata);
    assert_eq!(
        verify(&harness, "tx", pid, epoch),
        Err(TxnError::ConcurrentTransactions)
    );
}

#[test]
fn commit_prepares_marks_completes_and_answers_retries() {
    let mut harness = Harness::new();
    let (pid, epoch) = harness.init("tx", None, T0);
    harness.add("tx", (pid, epoch), &[("t", 1), ("t", 0)], T0 + 1);
    let end = |harness: &Harness, commit| {
        harness
            .transactions
            .end_txn("tx", pid, epoch, commit, T0 + 9)
    };

    let plan = end(&harness, true).unwrap().unwrap();
    assert_eq!(plan.metadata.state, TransactionState::PrepareCommit);
    assert_eq!(plan.metadata.producer_epoch, epoch);
    assert_eq!(plan.metadata.last_update_timestamp_ms, T0 + 9);
    assert_eq!(
        plan.markers,
        Some(MarkerPlan {
            transactional_id: "tx".into(),
            producer_id: pid,
            producer_epoch: epoch,
            control: ControlType::Commit,
            partitions: owned(&[("t", 0), ("t", 1)]),
        })
    );
    harness.persist(plan.metadata);
    assert_eq!(end(&harness, true), Err(TxnError::ConcurrentTransactions));
    assert_eq!(end(&harness, false), Err(TxnError::InvalidTxnState));

    let completed = harness.transactions.complete("tx", T0 + 10).unwrap();
    assert_eq!(completed.state, TransactionState::CompleteCommit);
    assert!(completed.partitions.is_empty());
    assert_eq!(completed.start_timestamp_ms, T0 + 1);
    assert_eq!(completed.last_update_timestamp_ms, T0 + 10);
    harness.persist(completed);
    assert_eq!(end(&harness, true), Ok(None));
    assert_eq!(end(&harness, false), Err(TxnError::InvalidTxnState));
    assert_eq!(
        harness.transactions.complete("tx", T0 + 11),
        Err(TxnError::InvalidTxnState)
    );
}

#[test]
fn abort_prepares_marks_completes_and_answers_retries() {
    let mut harness = Harness::new();
    let (pid, epoch) = harness.init("tx", None, T0);
    harness.add("tx", (pid, epoch), &[("t", 0)], T0 + 1);
    let end = |harness: &Harness, commit| {
        harness
            .transactions
            .end_txn("tx", pid, epoch, commit, T0 + 9)
    };

    let plan = end(&harness, false).unwrap().unwrap();
    assert_eq!(plan.metadata.state, TransactionState::PrepareAbort);
    assert_eq!(
        plan.markers.as_ref().map(|markers| markers.control),
        Some(ControlType::Abort)
    );
    let markers = harness.carry_out(plan, T0 + 10).unwrap();
    assert_eq!(markers.partitions, owned(&[("t", 0)]));
    assert_eq!(harness.state("tx"), TransactionState::CompleteAbort);
    assert_eq!(end(&harness, false), Ok(None));
    assert_eq!(end(&harness, true), Err(TxnError::InvalidTxnState));
}

#[test]
fn end_txn_refuses_strangers_and_empty_transactions() {
    let mut harness = Harness::new();
    let (pid, epoch) = harness.init("tx", None, T0);
    let transactions = &harness.transactions;
    assert_eq!(
        transactions.end_txn("tx", pid, epoch, true, T0),
        Err(TxnError::InvalidTxnState)
    );
    assert_eq!(
        transactions.end_txn("tx", pid, epoch, false, T0),
        Err(TxnError::InvalidTxnState)
    );
    assert_eq!(
        transactions.end_txn("nope", pid, epoch, true, T0),
        Err(TxnError::InvalidProducerIdMapping)
    );
    assert_eq!(
        transactions.end_txn("tx", pid + 1, epoch, true, T0),
        Err(TxnError::InvalidProducerIdMapping)
    );
    assert_eq!(
        transactions.end_txn("tx", pid, epoch + 1, true, T0),
        Err(TxnError::ProducerFenced)
    );
    assert_eq!(
        transactions.end_txn("", pid, epoch, true, T0),
        Err(TxnError::InvalidRequest)
    );
    assert_eq!(
        transactions.complete("nope", T0),
        Err(TxnError::InvalidProducerIdMapping)
    );
    assert_eq!(
        transactions.complete("tx", T0),
        Err(TxnError::InvalidTxnState)
    );
    // A fenced producer ending its transaction is told so.
    harness.add("tx", (pid, epoch), &[("t", 0)], T0);
    let InitProducerIdPlan::FenceOngoing(plan) = harness.init_plan("tx", None, T0).unwrap() else {
        panic!("not fenced")
    };
    harness.persist(plan.metadata);
    assert_eq!(
        harness.transactions.end_txn("tx", pid, epoch, true, T0),
        Err(TxnError::ProducerFenced)
    );
}

#[test]
fn transactions_past_their_timeout_are_fenced_and_aborted() {
    let mut harness = Harness::new();
    let (pid, epoch) = harness.init("slow", None, T0);
    harness.add("slow", (pid, epoch), &[("t", 0)], T0);
    harness.init("idle", None, T0);
    let (ending, ending_epoch) = harness.init("ending", None, T0);
    harness.add("ending", (ending, ending_epoch), &[("t", 1)], T0);
    let plan = harness
        .transactions
        .end_txn("ending", ending, ending_epoch, true, T0)
        .unwrap()
        .unwrap();
    harness.persist(plan.metadata);

    let deadline = T0 + i64::from(TIMEOUT_MS);
    assert!(
        harness.transactions.timed_out(deadline).is_empty(),
        "strictly after"
    );
    let plans = harness.transactions.timed_out(deadline + 1);
    assert_eq!(plans.len(), 1);
    let plan = plans.into_iter().next().unwrap();
    assert_eq!(plan.metadata.transactional_id, "slow");
    assert_eq!(plan.metadata.state, TransactionState::PrepareAbort);
    assert_eq!(plan.metadata.producer_epoch, epoch + 1);
    assert_eq!(plan.metadata.last_producer_epoch, NO_PRODUCER_EPOCH);
    let markers = plan.markers.clone().unwrap();
    assert_eq!(
        (markers.producer_epoch, markers.control),
        (epoch + 1, ControlType::Abort)
    );
    harness.persist(plan.metadata);
    // Not aborted twice while the markers are written.
    assert!(harness.transactions.timed_out(deadline + 2).is_empty());
    let completed = harness.transactions.complete("slow", deadline + 3).unwrap();
    harness.persist(completed);
    // The timed-out producer is fenced; it must InitProducerId again, and
    // its KIP-360 re-initialisation with its old epoch is fenced too.
    assert_eq!(
        harness
            .transactions
            .end_txn("slow", pid, epoch, false, deadline + 4),
        Err(TxnError::ProducerFenced)
    );
    assert_eq!(
        harness.init_plan("slow", Some((pid, epoch)), deadline + 4),
        Err(TxnError::ProducerFenced)
    );
    assert_eq!(harness.init("slow", None, deadline + 5), (pid, epoch + 2));
}

#[test]
fn timing_out_at_the_top_epoch_does_not_overflow() {
    let mut harness = Harness::new();
    let (pid, _) = harness.init("tx", None, T0);
    let mut metadata = harness.transactions.get("tx").unwrap().clone();
    metadata.producer_epoch = i16::MAX - 1;
    harness.persist(metadata);
    harness.add("tx", (pid, i16::MAX - 1), &[("t", 0)], T0);
    let plan = harness
        .transactions
        .timed_out(T0 + 1_000_000)
        .pop()
        .unwrap();
    assert_eq!(plan.metadata.producer_epoch, i16::MAX);
    harness.carry_out(plan, T0 + 1_000_001);
    // Exhausted: the next producer gets a new id.
    assert_eq!(harness.init("tx", None, T0 + 1_000_002), (pid + 1, 0));

    // Corrupt input (Ongoing at i16::MAX) saturates instead of panicking.
    let mut metadata = harness.transactions.get("tx").unwrap().clone();
    metadata.state = TransactionState::Ongoing;
    metadata.producer_epoch = i16::MAX;
    metadata.partitions.insert(("t".into(), 0));
    metadata.start_timestamp_ms = i64::MAX;
    metadata.timeout_ms = i32::MAX;
    harness.persist(metadata);
    assert!(harness.transactions.timed_out(i64::MAX).is_empty());
    let mut metadata = harness.transactions.get("tx").unwrap().clone();
    metadata.start_timestamp_ms = 0;
    harness.persist(metadata);
    let plan = harness.transactions.timed_out(i64::MAX).pop().unwrap();
    assert_eq!(plan.metadata.producer_epoch, i16::MAX);
}

#[test]
fn idle_transactional_ids_expire() {
    let mut harness = Harness::new();
    let expiration_ms = TxnConfig::default().transactional_id_expiration_ms;
    harness.init("empty", None, T0);
    let (pid, epoch) = harness.init("running", None, T0);
    harness.add("running", (pid, epoch), &[("t", 0)], T0);
    let (pid, epoch) = harness.init("committed", None, T0);
    harness.add("committed", (pid, epoch), &[("t", 0)], T0);
    let plan = harness
        .transactions
        .end_txn("committed", pid, epoch, true, T0)
        .unwrap()
        .unwrap();
    harness.carry_out(plan, T0 + 5);

    assert!(harness
        .transactions
        .expired(T0 + expiration_ms - 1)
        .is_empty());
    assert_eq!(
        harness.transactions.expired(T0 + expiration_ms),
        vec!["empty".to_string()]
    );
    assert_eq!(
        harness.transactions.expired(T0 + expiration_ms + 5),
        vec!["committed".to_string(), "empty".to_string()]
    );
    for id in harness.transactions.expired(T0 + expiration_ms + 5) {
        harness.tombstone(&id);
    }
    assert_eq!(harness.transactions.len(), 1);
    assert_eq!(
        harness.transactions.describe("empty"),
        Err(TxnError::TransactionalIdNotFound)
    );
    // An expired id starts over with a new producer id.
    assert_eq!(harness.init("empty", None, T0 + expiration_ms + 6).1, 0);
    assert_eq!(harness.replayed().len(), 2);
}

#[test]
fn replay_rebuilds_the_same_state_and_finds_unfinished_ends() {
    let mut harness = Harness::new();
    let (a, a_epoch) = harness.init("a", None, T0);
    harness.add("a", (a, a_epoch), &[("t", 0), ("u", 1)], T0 + 1);
    let plan = harness
        .transactions
        .end_txn("a", a, a_epoch, true, T0 + 2)
        .unwrap()
        .unwrap();
    harness.persist(plan.metadata); // crash before the markers
    let (b, b_epoch) = harness.init("b", None, T0);
    harness.add("b", (b, b_epoch), &[("t", 2)], T0 + 3);
    let InitProducerIdPlan::FenceOngoing(plan) = harness.init_plan("b", None, T0 + 4).unwrap()
    else {
        panic!("not fenced")
    };
    harness.persist(plan.metadata); // fenced, abort not yet complete
    let (c, c_epoch) = harness.init("c", None, T0);
    harness.add("c", (c, c_epoch), &[("v", 0)], T0 + 5);
    harness.init("d", None, T0);
    harness.tombstone("d");
    harness.init("e", Some((9, 9)), T0);
    harness.init(
        "e",
        Some((harness.transactions.get("e").unwrap().producer_id, 0)),
        T0 + 6,
    );

    let replayed = harness.replayed();
    let live: Vec<_> = harness.transactions.iter().map(as_stored).collect();
    let rebuilt: Vec<_> = replayed.iter().cloned().collect();
    assert_eq!(live, rebuilt);
    assert_eq!(replayed.get("d"), None);

    let pending = replayed.pending_completion();
    assert_eq!(pending, harness.transactions.pending_completion());
    assert_eq!(pending.len(), 2);
    assert_eq!(
        pending[0],
        MarkerPlan {
            transactional_id: "a".into(),
            producer_id: a,
            producer_epoch: a_epoch,
            control: ControlType::Commit,
            partitions: owned(&[("t", 0), ("u", 1)]),
        }
    );
    assert_eq!(
        (
            pending[1].transactional_id.as_str(),
            pending[1].producer_epoch,
            pending[1].control
        ),
        ("b", b_epoch + 1, ControlType::Abort)
    );
    // The server completes them after re-writing the markers.
    let completed = replayed.complete("a", T0 + 7).unwrap();
    assert_eq!(completed.state, TransactionState::CompleteCommit);
}

#[test]
fn a_replayed_epoch_fence_is_a_pending_abort() {
    let mut harness = Harness::new();
    let (pid, epoch) = harness.init("tx", None, T0);
    harness.add("tx", (pid, epoch), &[("t", 0)], T0);
    let mut metadata = harness.transactions.get("tx").unwrap().clone();
    metadata.state = TransactionState::PrepareEpochFence;
    harness.persist(metadata);
    let pending = harness.transactions.pending_completion();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].control, ControlType::Abort);
    assert_eq!(
        harness.transactions.end_txn("tx", pid, epoch, true, T0),
        Err(TxnError::ConcurrentTransactions)
    );
    let completed = harness.transactions.complete("tx", T0 + 1).unwrap();
    assert_eq!(completed.state, TransactionState::CompleteAbort);
}

#[test]
fn replay_reports_garbage_and_dead_metadata_removes_the_id() {
    let mut harness = Harness::new();
    harness.init("tx", None, T0);
    let mut transactions = harness.replayed();
    assert!(transactions.replay(&[0, 7], None).is_err());
    assert!(transactions
        .replay(&encode_key("tx"), Some(&[0, 0, 1]))
        .is_err());
    assert_eq!(transactions.len(), 1, "a bad record changes nothing");

    let mut dead = transactions.get("tx").unwrap().clone();
    dead.state = TransactionState::Dead;
    transactions.apply("tx", Some(dead));
    assert!(transactions.is_empty());
}

#[test]
fn describe_shows_the_transaction() {
    let mut harness = Harness::new();
    let (pid, epoch) = harness.init("tx", None, T0);
    harness.add("tx", (pid, epoch), &[("b", 2), ("a", 1), ("a", 0)], T0 + 1);
    let metadata = harness.transactions.describe("tx").unwrap();
    assert_eq!(metadata.state.name(), "Ongoing");
    assert_eq!(
        (metadata.producer_id, metadata.producer_epoch),
        (pid, epoch)
    );
    assert_eq!(
        (metadata.timeout_ms, metadata.start_timestamp_ms),
        (TIMEOUT_MS, T0 + 1)
    );
    assert_eq!(
        metadata.partitions_by_topic(),
        vec![("a", vec![0, 1]), ("b", vec![2])]
    );
    assert_eq!(
        harness.transactions.describe("nope"),
        Err(TxnError::TransactionalIdNotFound)
    );
    assert_eq!(
        harness.transactions.describe(""),
        Err(TxnError::InvalidRequest)
    );
}

#[test]
fn list_filters_by_state_producer_and_duration() {
    let mut harness = Harness::new();
    let empty = harness.init("empty", None, T0);
    let long = harness.init("long", None, T0);
    harness.add("long", long, &[("t", 0)], T0);
    let short = harness.init("short", None, T0);
    harness.add("short", short, &[("t", 1)], T0 + 900);
    let now = T0 + 1_000;
    let list = |state_names: &[&str], producer_ids: &[i64], duration_ms| {
        let (filter, unknown) = ListFilter::new(
            state_names.iter().copied(),
            producer_ids.iter().copied(),
            duration_ms,
        );
        let ids: Vec<String> = harness
            .transactions
            .list(&filter, now)
            .into_iter()
            .map(|listed| listed.transactional_id)
            .collect();
        (ids, unknown)
    };
    let ids = |names: &[&str]| {
        names
            .iter()
            .map(|name| name.to_string())
            .collect::<Vec<_>>()
    };

    assert_eq!(
        list(&[], &[], -1),
        (ids(&["empty", "long", "short"]), vec![])
    );
    assert_eq!(
        list(&["Ongoing"], &[], -1),
        (ids(&["long", "short"]), vec![])
    );
    assert_eq!(
        list(&["Ongoing", "Bogus"], &[], -1),
        (ids(&["long", "short"]), ids(&["Bogus"]))
    );
    // Only unknown names: nothing matches (Kafka).
    assert_eq!(list(&["Bogus"], &[], -1), (vec![], ids(&["Bogus"])));
    assert_eq!(
        list(&[], &[empty.0, short.0], -1),
        (ids(&["empty", "short"]), vec![])
    );
    // v1 duration: running longer than 500 ms. "empty" (start -1) passes, as in Kafka.
    assert_eq!(list(&[], &[], 500), (ids(&["empty", "long"]), vec![]));
    assert_eq!(list(&["Ongoing"], &[], 1_000), (vec![], vec![]));
    assert_eq!(list(&["Ongoing"], &[], 999), (ids(&["long"]), vec![]));

    let (filter, _) = ListFilter::new(["Empty"], [], -1);
    let listed = harness.transactions.list(&filter, now);
    assert_eq!(
        listed,
        vec![ListedTransaction {
            transactional_id: "empty".into(),
            producer_id: empty.0,
            state: TransactionState::Empty,
        }]
    );
}
