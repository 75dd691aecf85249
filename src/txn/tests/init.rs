//! InitProducerId and AddPartitionsToTxn scenarios.

use super::*;
use crate::protocol::batch_builder::ControlType;
use crate::txn::state::{NO_PRODUCER_EPOCH, NO_PRODUCER_ID};
use crate::txn::*;

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
