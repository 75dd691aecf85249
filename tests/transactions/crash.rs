//! Transactions across kill -9 of the broker (flush always, restarted on the same port and
//! data directory so the producer reconnects by itself). An open transaction's messages
//! are durable but uncommitted: after the restart they still hold read_committed readers
//! back (the open transaction is rebuilt from the log and `__transaction_state`), and end
//! aborted, either by the producer itself or by a successor with the same transactional id
//! that fences it. A transaction whose commit was acknowledged just before the crash is
//! completed after the restart (its markers may not have been written yet).

use rdkafka::producer::Producer;

use crate::common::create_topic;
use crate::common::Broker;
use crate::producing::{
    abort, begin_and_deliver, commit, delivered, enqueue, initialised_producer, produce_plain,
    spread, transactional_producer, Outgoing, TXN_CALL_TIMEOUT,
};
use crate::reading::{
    expected_by_partition, read_topic, values_by_partition, watermarks_with, Isolation, Reader,
};
use crate::NO_JOIN_DELAY;

const PARTITIONS: i32 = 3;
const MESSAGES_PER_ROUND: usize = 30;

/// A broker with a committed transaction ("before") and an open one ("open", every
/// message acknowledged) from `producer_id`'s producer, killed with SIGKILL and restarted
/// on the same port.
struct Crashed {
    broker: Broker,
    producer: crate::common::TestProducer,
    before: Vec<Outgoing>,
    open: Vec<Outgoing>,
}

/// How the broker goes down with the transaction open.
#[derive(Clone, Copy)]
enum Stop {
    Kill9,
    Graceful,
}

fn crash_with_an_open_transaction(topic: &str, transactional_id: &str) -> Crashed {
    stop_with_an_open_transaction(topic, transactional_id, Stop::Kill9)
}

fn stop_with_an_open_transaction(topic: &str, transactional_id: &str, stop: Stop) -> Crashed {
    let mut broker = Broker::start(2, NO_JOIN_DELAY);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, topic, PARTITIONS);
    let producer = initialised_producer(&bootstrap, transactional_id);
    let before = spread(topic, PARTITIONS, "before", MESSAGES_PER_ROUND);
    begin_and_deliver(&producer, &before);
    commit(&producer, "before the crash");
    let open = spread(topic, PARTITIONS, "open", MESSAGES_PER_ROUND);
    begin_and_deliver(&producer, &open);

    match stop {
        Stop::Kill9 => broker.kill9(),
        Stop::Graceful => {
            broker.stop_graceful();
        }
    }
    broker.restart_on_same_port();
    Crashed {
        broker,
        producer,
        before,
        open,
    }
}

/// After the restart the open transaction still holds read_committed readers back at its
/// first offset in every partition: they see exactly `before`.
fn assert_open_transaction_still_held_back(crashed: &Crashed, topic: &str) -> Reader {
    let bootstrap = crashed.broker.bootstrap();
    let reader = Reader::new(&bootstrap, topic, PARTITIONS, Isolation::ReadCommitted);
    let seen = reader.read(crashed.before.len());
    assert_eq!(
        values_by_partition(&seen),
        expected_by_partition(&[&crashed.before]),
        "after the crash read_committed sees the committed transaction only"
    );
    let per_partition = MESSAGES_PER_ROUND as i64 / i64::from(PARTITIONS);
    for partition in 0..PARTITIONS {
        assert_eq!(
            watermarks_with(&bootstrap, topic, partition, Isolation::ReadCommitted),
            (0, per_partition + 1),
            "partition {partition}: the last stable offset is the open transaction's first"
        );
    }
    reader
}

/// read_committed from the beginning sees `before` then `after`; read_uncommitted sees
/// the open (aborted) transaction in between.
fn assert_final_views(crashed: &Crashed, topic: &str, after: &[Outgoing]) {
    let bootstrap = crashed.broker.bootstrap();
    let committed = read_topic(
        &bootstrap,
        topic,
        PARTITIONS,
        Isolation::ReadCommitted,
        crashed.before.len() + after.len(),
    );
    assert_eq!(
        values_by_partition(&committed),
        expected_by_partition(&[&crashed.before, after]),
        "read_committed: the committed transactions, never the one open at the crash"
    );
    let everything = read_topic(
        &bootstrap,
        topic,
        PARTITIONS,
        Isolation::ReadUncommitted,
        crashed.before.len() + crashed.open.len() + after.len(),
    );
    assert_eq!(
        values_by_partition(&everything),
        expected_by_partition(&[&crashed.before, &crashed.open, after])
    );
}

#[test]
fn a_producer_aborts_its_transaction_left_open_by_a_broker_crash_and_carries_on() {
    let topic = "txn-crash-abort";
    let crashed = crash_with_an_open_transaction(topic, "crash-survivor");
    let reader = assert_open_transaction_still_held_back(&crashed, topic);

    abort(&crashed.producer, "the transaction open at the crash");
    let after = spread(topic, PARTITIONS, "after", MESSAGES_PER_ROUND);
    begin_and_deliver(&crashed.producer, &after);
    commit(&crashed.producer, "after the crash");

    let released = reader.read(after.len());
    assert_eq!(
        values_by_partition(&released),
        expected_by_partition(&[&after]),
        "the held-back reader continues with the next committed transaction"
    );
    assert_final_views(&crashed, topic, &after);
}

#[test]
fn a_transaction_open_across_a_graceful_restart_commits_afterwards() {
    let topic = "txn-restart-commit";
    let crashed = stop_with_an_open_transaction(topic, "restart-committer", Stop::Graceful);
    let reader = assert_open_transaction_still_held_back(&crashed, topic);

    // Its messages were durable before the restart: committing them is still valid.
    commit(&crashed.producer, "the transaction open across the restart");
    let released = reader.read(crashed.open.len());
    assert_eq!(
        values_by_partition(&released),
        expected_by_partition(&[&crashed.open]),
        "the held-back reader reads the transaction once it commits"
    );
    let all = read_topic(
        &crashed.broker.bootstrap(),
        topic,
        PARTITIONS,
        Isolation::ReadCommitted,
        crashed.before.len() + crashed.open.len(),
    );
    assert_eq!(
        values_by_partition(&all),
        expected_by_partition(&[&crashed.before, &crashed.open])
    );
}

#[test]
fn a_successor_with_the_same_transactional_id_aborts_the_transaction_open_at_a_crash() {
    let topic = "txn-crash-fence";
    let crashed = crash_with_an_open_transaction(topic, "crash-fenced");
    let bootstrap = crashed.broker.bootstrap();
    let reader = assert_open_transaction_still_held_back(&crashed, topic);

    let successor = initialised_producer(&bootstrap, "crash-fenced");
    let after = spread(topic, PARTITIONS, "after", MESSAGES_PER_ROUND);
    begin_and_deliver(&successor, &after);
    commit(&successor, "the successor's transaction");
    let released = reader.read(after.len());
    assert_eq!(
        values_by_partition(&released),
        expected_by_partition(&[&after])
    );

    let error = crashed
        .producer
        .commit_transaction(TXN_CALL_TIMEOUT)
        .expect_err("the fenced producer's commit must fail after the crash");
    eprintln!("fenced producer after the crash: {error}");
    assert_final_views(&crashed, topic, &after);
}

#[test]
fn a_transaction_committed_just_before_a_broker_crash_is_visible_after_the_restart() {
    let mut broker = Broker::start(2, NO_JOIN_DELAY);
    let bootstrap = broker.bootstrap();
    let topic = "txn-crash-committed";
    create_topic(&bootstrap, topic, PARTITIONS);
    let producer = initialised_producer(&bootstrap, "crash-committer");
    let committed = spread(topic, PARTITIONS, "committed", MESSAGES_PER_ROUND);
    producer.begin_transaction().expect("begin_transaction");
    enqueue(&producer, &committed);
    commit(&producer, "just before the crash");
    // EndTxn is answered once the decision is durable; the markers may still be on their
    // way to the partitions when the broker dies.
    broker.kill9();
    delivered(&producer, &committed);
    broker.restart_on_same_port();
    let bootstrap = broker.bootstrap();

    let seen = read_topic(
        &bootstrap,
        topic,
        PARTITIONS,
        Isolation::ReadCommitted,
        committed.len(),
    );
    assert_eq!(
        values_by_partition(&seen),
        expected_by_partition(&[&committed]),
        "a commit acknowledged before the crash is visible after the restart"
    );

    // The same transactional id goes on from there, and the commit is not undone.
    let successor = initialised_producer(&bootstrap, "crash-committer");
    let next = spread(topic, PARTITIONS, "next", MESSAGES_PER_ROUND);
    begin_and_deliver(&successor, &next);
    commit(&successor, "after the restart");
    let all = read_topic(
        &bootstrap,
        topic,
        PARTITIONS,
        Isolation::ReadCommitted,
        committed.len() + next.len(),
    );
    assert_eq!(
        values_by_partition(&all),
        expected_by_partition(&[&committed, &next])
    );
    drop(producer);
}

#[test]
fn a_transaction_open_at_a_crash_is_aborted_by_its_timeout_after_the_restart() {
    let mut args = NO_JOIN_DELAY.to_vec();
    args.extend(["--transaction-abort-check-interval-ms", "500"]);
    let mut broker = Broker::start(2, &args);
    let bootstrap = broker.bootstrap();
    let topic = "txn-crash-timeout";
    create_topic(&bootstrap, topic, PARTITIONS);
    let producer = transactional_producer(
        &bootstrap,
        "crash-abandoned",
        &[("transaction.timeout.ms", "3000")],
    );
    producer
        .init_transactions(TXN_CALL_TIMEOUT)
        .expect("init_transactions");
    let before = spread(topic, PARTITIONS, "before", MESSAGES_PER_ROUND);
    begin_and_deliver(&producer, &before);
    commit(&producer, "before the crash");
    let open = spread(topic, PARTITIONS, "open", MESSAGES_PER_ROUND);
    begin_and_deliver(&producer, &open);

    broker.kill9();
    broker.restart_on_same_port();
    // The producer never comes back to its transaction; the reloaded coordinator must
    // still abort it once its timeout has passed.
    let after = spread(topic, PARTITIONS, "after", MESSAGES_PER_ROUND);
    produce_plain(&bootstrap, &after);
    let seen = read_topic(
        &bootstrap,
        topic,
        PARTITIONS,
        Isolation::ReadCommitted,
        before.len() + after.len(),
    );
    assert_eq!(
        values_by_partition(&seen),
        expected_by_partition(&[&before, &after]),
        "read_committed gets past the transaction that timed out after the restart"
    );
    drop(producer);
}
