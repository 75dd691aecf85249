//! EndTxn, completion, timeouts, expiry, replay and listing scenarios.

use super::*;
use crate::protocol::batch_builder::ControlType;
use crate::txn::state::NO_PRODUCER_EPOCH;
use crate::txn::*;

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

#[test]
fn list_filters_by_whole_transactional_id_pattern() {
    let mut harness = Harness::new();
    for id in ["orders-1", "orders-22", "payments-1", "xorders-1"] {
        harness.init(id, None, T0);
    }
    let list = |pattern: Option<&str>| {
        let (filter, _) = ListFilter::new([], [], -1);
        let filter = filter.with_transactional_id_pattern(pattern)?;
        Ok::<Vec<String>, TxnError>(
            harness
                .transactions
                .list(&filter, T0)
                .into_iter()
                .map(|listed| listed.transactional_id)
                .collect(),
        )
    };
    let all = ["orders-1", "orders-22", "payments-1", "xorders-1"];
    // Null and empty patterns filter nothing (Kafka compiles only a non-empty one).
    assert_eq!(
        list(None),
        Ok(all.iter().map(|id| id.to_string()).collect())
    );
    assert_eq!(
        list(Some("")),
        Ok(all.iter().map(|id| id.to_string()).collect())
    );
    // The whole id must match: "orders-\d" neither finds "orders-22" nor "xorders-1".
    assert_eq!(list(Some(r"orders-\d")), Ok(vec!["orders-1".to_string()]));
    // An alternation is anchored as a whole, not per branch.
    assert_eq!(
        list(Some("payments-1|orders-2")),
        Ok(vec!["payments-1".to_string()])
    );
    assert_eq!(list(Some("nothing")), Ok(vec![]));
    assert_eq!(
        list(Some("orders-(")),
        Err(TxnError::InvalidRegularExpression)
    );
}
