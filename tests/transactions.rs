//! Transactions (KIP-98) as librdkafka drives them: a transactional producer commits and
//! aborts across partitions and topics, and read_committed consumers see exactly the
//! committed messages while read_uncommitted consumers see everything; the last stable
//! offset holds read_committed consumers at the first offset of an open transaction; a
//! second producer with the same transactional id fences the first and aborts its open
//! transaction; the broker aborts a transaction past its timeout; consume-transform-produce
//! commits the consumer's offsets in the transaction (`pipeline`); interleaved, partially
//! fetched and segment-spanning aborted transactions (`aborted`); several producers'
//! transactions at once (`concurrent`); and open or just committed transactions across
//! restarts and kill -9 of the broker (`crash`).
//!
//! Brokers run with `--group-initial-rebalance-delay-ms 0` so groups form at once, and on
//! two shards so coordinators, markers and partitions sit on different cores.

#[path = "transactions/aborted.rs"]
mod aborted;
mod common;
#[path = "transactions/concurrent.rs"]
mod concurrent;
#[path = "transactions/crash.rs"]
mod crash;
#[path = "transactions/group.rs"]
mod group;
#[path = "transactions/pipeline.rs"]
mod pipeline;
#[path = "transactions/producing.rs"]
mod producing;
#[path = "transactions/reading.rs"]
mod reading;

use std::collections::BTreeSet;
use std::time::Duration;

use rdkafka::producer::Producer;

use common::{create_topic, wait_for_deliveries, Broker, Consumed};
use producing::{
    abort, begin_and_deliver, commit, delivered, enqueue, initialised_producer, is_fatal,
    produce_plain, spread, transactional_producer, Outgoing, Placement, TXN_CALL_TIMEOUT,
};
use reading::{
    expected_by_partition, read_topic, values_by_partition, watermarks_with, Isolation, Reader,
};

/// No initial rebalance delay: groups form as soon as the first member joins.
const NO_JOIN_DELAY: &[&str] = &["--group-initial-rebalance-delay-ms", "0"];
const PARTITIONS: i32 = 3;
/// Messages per topic per transaction in the multi-partition tests.
const MESSAGES_PER_ROUND: usize = 30;

/// The messages of `round` that go to `topic`.
fn to_topic(round: &[Outgoing], topic: &str) -> Vec<Outgoing> {
    round
        .iter()
        .filter(|message| message.topic == topic)
        .cloned()
        .collect()
}

/// (partition, offset) of each placement in `topic`.
fn positions_in(placements: &[&[Placement]], topic: &str) -> BTreeSet<(i32, i64)> {
    placements
        .iter()
        .flat_map(|round| round.iter())
        .filter(|(placed_topic, _, _)| placed_topic == topic)
        .map(|(_, partition, offset)| (*partition, *offset))
        .collect()
}

fn positions_read(records: &[Consumed]) -> BTreeSet<(i32, i64)> {
    records
        .iter()
        .map(|consumed| (consumed.partition, consumed.offset))
        .collect()
}

/// Asserts that read_committed sees exactly `committed` (in order per partition, at the
/// offsets they were acknowledged at) and read_uncommitted exactly `all`, in `topic`.
fn assert_isolation_views(
    bootstrap: &str,
    topic: &str,
    committed: &[&[Outgoing]],
    committed_placements: &[&[Placement]],
    all: &[&[Outgoing]],
) {
    let committed_count: usize = committed.iter().map(|round| round.len()).sum();
    let seen = read_topic(
        bootstrap,
        topic,
        PARTITIONS,
        Isolation::ReadCommitted,
        committed_count,
    );
    assert_eq!(
        values_by_partition(&seen),
        expected_by_partition(committed),
        "{topic}: read_committed must see exactly the committed messages, in order"
    );
    assert_eq!(
        positions_read(&seen),
        positions_in(committed_placements, topic),
        "{topic}: read_committed records are at the offsets they were acknowledged at"
    );
    let all_count: usize = all.iter().map(|round| round.len()).sum();
    let everything = read_topic(
        bootstrap,
        topic,
        PARTITIONS,
        Isolation::ReadUncommitted,
        all_count,
    );
    assert_eq!(
        values_by_partition(&everything),
        expected_by_partition(all),
        "{topic}: read_uncommitted must see every message, aborted ones included"
    );
}

#[test]
fn read_committed_sees_only_committed_transactions_across_partitions_and_topics() {
    let broker = Broker::start(2, NO_JOIN_DELAY);
    let bootstrap = broker.bootstrap();
    let topics = ["txn-orders", "txn-audit"];
    for topic in topics {
        create_topic(&bootstrap, topic, PARTITIONS);
    }
    let round = |label: &str| -> Vec<Outgoing> {
        topics
            .iter()
            .flat_map(|topic| {
                spread(
                    topic,
                    PARTITIONS,
                    &format!("{label}-{topic}"),
                    MESSAGES_PER_ROUND,
                )
            })
            .collect()
    };
    let (first, aborted, third) = (round("first"), round("aborted"), round("third"));
    let producer = initialised_producer(&bootstrap, "orders-writer");

    // Committed while its messages may still be in flight: commit_transaction flushes.
    producer.begin_transaction().expect("begin_transaction");
    enqueue(&producer, &first);
    commit(&producer, "first");
    let first_placed = delivered(&producer, &first);
    // Aborted after every message is in the log.
    begin_and_deliver(&producer, &aborted);
    abort(&producer, "aborted after delivery");
    let third_placed = begin_and_deliver(&producer, &third);
    commit(&producer, "third");

    for topic in topics {
        let (first, aborted, third) = (
            to_topic(&first, topic),
            to_topic(&aborted, topic),
            to_topic(&third, topic),
        );
        assert_isolation_views(
            &bootstrap,
            topic,
            &[&first, &third],
            &[&first_placed, &third_placed],
            &[&first, &aborted, &third],
        );
        // Each transaction wrote one control record (its marker) into every partition.
        let per_partition = (3 * MESSAGES_PER_ROUND) as i64 / i64::from(PARTITIONS);
        for partition in 0..PARTITIONS {
            for isolation in [Isolation::ReadUncommitted, Isolation::ReadCommitted] {
                assert_eq!(
                    watermarks_with(&bootstrap, topic, partition, isolation),
                    (0, per_partition + 3),
                    "{topic}/{partition} {isolation:?}: messages plus three markers"
                );
            }
        }
    }
}

#[test]
fn read_committed_consumers_wait_at_the_first_offset_of_an_open_transaction() {
    let broker = Broker::start(2, NO_JOIN_DELAY);
    let bootstrap = broker.bootstrap();
    let topic = "txn-lso";
    create_topic(&bootstrap, topic, 1);
    let producer = initialised_producer(&bootstrap, "slow-writer");
    let open = spread(topic, 1, "open", 5);
    begin_and_deliver(&producer, &open);
    // Written after the open transaction's first message, outside any transaction.
    let plain = spread(topic, 1, "plain", 5);
    produce_plain(&bootstrap, &plain);

    let committed_reader = Reader::new(&bootstrap, topic, 1, Isolation::ReadCommitted);
    let uncommitted = read_topic(&bootstrap, topic, 1, Isolation::ReadUncommitted, 10);
    assert_eq!(
        values_by_partition(&uncommitted),
        expected_by_partition(&[&open, &plain])
    );
    let held_back = committed_reader.read_for(Duration::from_secs(2));
    assert!(
        held_back.is_empty(),
        "read_committed read past the last stable offset: {held_back:?}"
    );
    assert_eq!(
        watermarks_with(&bootstrap, topic, 0, Isolation::ReadCommitted),
        (0, 0),
        "ListOffsets latest in read_committed is the last stable offset"
    );
    assert_eq!(
        watermarks_with(&bootstrap, topic, 0, Isolation::ReadUncommitted),
        (0, 10)
    );

    commit(&producer, "the open transaction");
    let released = committed_reader.read(10);
    assert_eq!(
        values_by_partition(&released),
        expected_by_partition(&[&open, &plain]),
        "after the commit the same consumer reads the transaction and what followed it"
    );
    for isolation in [Isolation::ReadCommitted, Isolation::ReadUncommitted] {
        assert_eq!(
            watermarks_with(&bootstrap, topic, 0, isolation),
            (0, 11),
            "{isolation:?}: ten messages and the commit marker"
        );
    }
}

#[test]
fn a_second_producer_with_the_same_transactional_id_fences_the_first_and_aborts_its_transaction() {
    let broker = Broker::start(2, NO_JOIN_DELAY);
    let bootstrap = broker.bootstrap();
    let topic = "txn-fenced-commit";
    create_topic(&bootstrap, topic, PARTITIONS);
    let old = initialised_producer(&bootstrap, "fenced-writer");
    let pending = spread(topic, PARTITIONS, "pending", MESSAGES_PER_ROUND);
    begin_and_deliver(&old, &pending);

    // InitProducerId for the same id aborts the old transaction before it answers.
    let new = initialised_producer(&bootstrap, "fenced-writer");
    let per_partition = MESSAGES_PER_ROUND as i64 / i64::from(PARTITIONS);
    for partition in 0..PARTITIONS {
        assert_eq!(
            watermarks_with(&bootstrap, topic, partition, Isolation::ReadCommitted),
            (0, per_partition + 1),
            "partition {partition}: the fenced transaction ended with an abort marker"
        );
    }
    let error = old
        .commit_transaction(TXN_CALL_TIMEOUT)
        .expect_err("the fenced producer's commit must fail");
    assert!(
        is_fatal(&error),
        "a fenced producer's commit fails fatally, got {error}"
    );

    let fresh = spread(topic, PARTITIONS, "fresh", MESSAGES_PER_ROUND);
    let fresh_placed = begin_and_deliver(&new, &fresh);
    commit(&new, "the new producer's transaction");
    assert_isolation_views(
        &bootstrap,
        topic,
        &[&fresh],
        &[&fresh_placed],
        &[&pending, &fresh],
    );
}

#[test]
fn a_fenced_producer_cannot_add_to_its_aborted_transaction() {
    let broker = Broker::start(2, NO_JOIN_DELAY);
    let bootstrap = broker.bootstrap();
    let topic = "txn-fenced-send";
    create_topic(&bootstrap, topic, PARTITIONS);
    let old = initialised_producer(&bootstrap, "fenced-sender");
    let pending = spread(topic, PARTITIONS, "pending", MESSAGES_PER_ROUND);
    begin_and_deliver(&old, &pending);
    let new = initialised_producer(&bootstrap, "fenced-sender");

    // Same partitions as before, so librdkafka sends them straight away with its old epoch.
    let late = spread(topic, PARTITIONS, "late", MESSAGES_PER_ROUND);
    enqueue(&old, &late);
    let reports = wait_for_deliveries(&old, late.len(), TXN_CALL_TIMEOUT);
    let accepted: Vec<_> = reports
        .iter()
        .filter(|report| report.outcome.is_ok())
        .collect();
    assert!(
        accepted.is_empty(),
        "a fenced producer's messages were accepted: {accepted:?}"
    );
    let error = old
        .commit_transaction(TXN_CALL_TIMEOUT)
        .expect_err("the fenced producer's commit must fail");
    eprintln!(
        "fenced producer: first delivery error {:?}, commit error {error} (fatal: {})",
        reports.first().map(|report| &report.outcome),
        is_fatal(&error)
    );

    let fresh = spread(topic, PARTITIONS, "fresh", MESSAGES_PER_ROUND);
    let fresh_placed = begin_and_deliver(&new, &fresh);
    commit(&new, "the new producer's transaction");
    assert_isolation_views(
        &bootstrap,
        topic,
        &[&fresh],
        &[&fresh_placed],
        &[&pending, &fresh],
    );
}

#[test]
fn the_broker_aborts_an_abandoned_transaction_after_its_timeout() {
    let mut args = NO_JOIN_DELAY.to_vec();
    args.extend(["--transaction-abort-check-interval-ms", "500"]);
    let broker = Broker::start(2, &args);
    let bootstrap = broker.bootstrap();
    let topic = "txn-abandoned";
    create_topic(&bootstrap, topic, 1);
    let abandoned = transactional_producer(
        &bootstrap,
        "abandoned-writer",
        &[("transaction.timeout.ms", "3000")],
    );
    abandoned
        .init_transactions(TXN_CALL_TIMEOUT)
        .expect("init_transactions");
    let dropped = spread(topic, 1, "abandoned", 10);
    begin_and_deliver(&abandoned, &dropped);
    // The producer now goes quiet: no commit, no abort, nothing polled.
    let after = spread(topic, 1, "after", 10);
    produce_plain(&bootstrap, &after);

    // Held back at the abandoned transaction until the broker aborts it.
    let reader = Reader::new(&bootstrap, topic, 1, Isolation::ReadCommitted);
    let seen = reader.read(after.len());
    assert_eq!(
        values_by_partition(&seen),
        expected_by_partition(&[&after]),
        "read_committed gets past the timed-out transaction and never sees its messages"
    );
    assert_eq!(
        watermarks_with(&bootstrap, topic, 0, Isolation::ReadUncommitted),
        (0, 21),
        "ten abandoned messages, the abort marker, ten later messages"
    );

    let error = abandoned
        .commit_transaction(TXN_CALL_TIMEOUT)
        .expect_err("a transaction the broker aborted must not commit");
    eprintln!(
        "commit after the timeout abort: {error} (fatal: {})",
        is_fatal(&error)
    );
    let everything = read_topic(&bootstrap, topic, 1, Isolation::ReadCommitted, after.len());
    assert_eq!(
        values_by_partition(&everything),
        expected_by_partition(&[&after]),
        "the failed commit made nothing visible"
    );
}
