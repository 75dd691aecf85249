//! Consume-transform-produce (KIP-98's exactly-once stream processing): a read_committed
//! group member reads an input topic, a transactional producer writes one output message
//! per input message and commits the member's offsets in the same transaction
//! (AddOffsetsToTxn + TxnOffsetCommit with the member's generation). An aborted round
//! leaves the committed offsets where they were, so a restarted member reads that part
//! again, and the output holds every input exactly once; so does a transaction left open
//! by a broker crash and aborted by the producer's successor.

use std::collections::BTreeMap;

use rdkafka::consumer::Consumer;
use rdkafka::producer::Producer;

use crate::common::{create_topic, watermarks, Broker, Consumed, TestProducer};
use crate::group::{committed_offsets, next_offsets, GroupMember};
use crate::producing::{
    abort, commit, delivered, enqueue, initialised_producer, produce_plain, spread, Outgoing,
    TXN_CALL_TIMEOUT,
};
use crate::reading::{expected_by_partition, read_topic, value_of, values_by_partition, Isolation};
use crate::NO_JOIN_DELAY;

const PARTITIONS: i32 = 3;
const INPUT: &str = "ctp-input";
const OUTPUT: &str = "ctp-output";
const GROUP: &str = "ctp-group";

/// The output message for one input message: same partition, value prefixed.
fn transformed(input: &Consumed) -> Outgoing {
    Outgoing {
        topic: OUTPUT.to_string(),
        partition: input.partition,
        value: format!("out-{}", value_of(input)),
    }
}

/// What the output should hold for these input messages.
fn transformed_all(inputs: &[Outgoing]) -> Vec<Outgoing> {
    inputs
        .iter()
        .map(|input| Outgoing {
            topic: OUTPUT.to_string(),
            partition: input.partition,
            value: format!("out-{}", input.value),
        })
        .collect()
}

/// Begins a transaction, writes one output message per record in `read` and adds the
/// member's offsets after `read` to the transaction; the caller ends it.
fn transform(producer: &TestProducer, member: &GroupMember, read: &[Consumed]) {
    producer.begin_transaction().expect("begin_transaction");
    let outputs: Vec<Outgoing> = read.iter().map(transformed).collect();
    enqueue(producer, &outputs);
    let group_metadata = member
        .consumer
        .group_metadata()
        .expect("a subscribed member has group metadata");
    producer
        .send_offsets_to_transaction(
            &next_offsets(INPUT, read),
            &group_metadata,
            TXN_CALL_TIMEOUT,
        )
        .unwrap_or_else(|error| panic!("send_offsets_to_transaction failed: {error}"));
    // Every output message is in the log before the caller ends the transaction.
    delivered(producer, &outputs);
}

/// Partition -> Some(high watermark) of the input: what the group has committed once it
/// processed everything.
fn input_end_offsets(bootstrap: &str) -> BTreeMap<i32, Option<i64>> {
    (0..PARTITIONS)
        .map(|partition| (partition, Some(watermarks(bootstrap, INPUT, partition).1)))
        .collect()
}

#[test]
fn consume_transform_produce_commits_output_and_input_offsets_together() {
    let broker = Broker::start(2, NO_JOIN_DELAY);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, INPUT, PARTITIONS);
    create_topic(&bootstrap, OUTPUT, PARTITIONS);
    let first_inputs = spread(INPUT, PARTITIONS, "in", 300);
    produce_plain(&bootstrap, &first_inputs);
    let producer = initialised_producer(&bootstrap, "ctp-transformer");

    // Round 1: everything read is transformed and committed with the member's offsets.
    let member = GroupMember::join(&bootstrap, GROUP, INPUT, PARTITIONS);
    let read = member.read(first_inputs.len());
    assert_eq!(read.len(), first_inputs.len(), "each input read once");
    transform(&producer, &member, &read);
    commit(&producer, "round 1");
    let after_first = input_end_offsets(&bootstrap);
    assert_eq!(
        committed_offsets(&bootstrap, GROUP, INPUT, PARTITIONS),
        after_first,
        "the transaction committed the group's offsets at the input's end"
    );

    // Round 2: aborted; the group's committed offsets stay where round 1 left them.
    let second_inputs = spread(INPUT, PARTITIONS, "more", 90);
    produce_plain(&bootstrap, &second_inputs);
    let read = member.read(second_inputs.len());
    assert_eq!(
        values_by_partition(&read),
        expected_by_partition(&[&second_inputs])
    );
    transform(&producer, &member, &read);
    abort(&producer, "round 2");
    assert_eq!(
        committed_offsets(&bootstrap, GROUP, INPUT, PARTITIONS),
        after_first,
        "an aborted transaction must not move the group's committed offsets"
    );
    drop(member); // LeaveGroup; nothing committed outside the transactions.

    // Round 3: a restarted member resumes at the committed offsets: the aborted part again.
    let member = GroupMember::join(&bootstrap, GROUP, INPUT, PARTITIONS);
    let reread = member.read(second_inputs.len());
    assert_eq!(
        values_by_partition(&reread),
        expected_by_partition(&[&second_inputs]),
        "the restarted member re-reads exactly what the aborted round had read"
    );
    transform(&producer, &member, &reread);
    commit(&producer, "round 3");
    assert_eq!(
        committed_offsets(&bootstrap, GROUP, INPUT, PARTITIONS),
        input_end_offsets(&bootstrap)
    );

    // The output holds every input exactly once, in input order per partition.
    let expected_output = [
        transformed_all(&first_inputs),
        transformed_all(&second_inputs),
    ];
    let output = read_topic(
        &bootstrap,
        OUTPUT,
        PARTITIONS,
        Isolation::ReadCommitted,
        first_inputs.len() + second_inputs.len(),
    );
    assert_eq!(
        values_by_partition(&output),
        expected_by_partition(&[&expected_output[0], &expected_output[1]]),
        "read_committed output: each input transformed exactly once"
    );
    let everything = read_topic(
        &bootstrap,
        OUTPUT,
        PARTITIONS,
        Isolation::ReadUncommitted,
        first_inputs.len() + 2 * second_inputs.len(),
    );
    assert_eq!(
        everything.len(),
        first_inputs.len() + 2 * second_inputs.len(),
        "read_uncommitted output includes the aborted round"
    );
}

#[test]
fn offsets_sent_in_a_transaction_open_at_a_crash_are_discarded_when_it_aborts() {
    let mut broker = Broker::start(2, NO_JOIN_DELAY);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, INPUT, PARTITIONS);
    create_topic(&bootstrap, OUTPUT, PARTITIONS);
    let first_inputs = spread(INPUT, PARTITIONS, "in", 60);
    produce_plain(&bootstrap, &first_inputs);
    let producer = initialised_producer(&bootstrap, "ctp-crash");
    let member = GroupMember::join(&bootstrap, GROUP, INPUT, PARTITIONS);
    let read = member.read(first_inputs.len());
    transform(&producer, &member, &read);
    commit(&producer, "before the crash");
    let after_first = input_end_offsets(&bootstrap);

    // The offsets of this round are written to __consumer_offsets as a pending
    // transactional commit; the broker dies before the transaction ends.
    let second_inputs = spread(INPUT, PARTITIONS, "more", 30);
    produce_plain(&bootstrap, &second_inputs);
    let read = member.read(second_inputs.len());
    transform(&producer, &member, &read);
    drop(member);
    broker.kill9();
    broker.restart_on_same_port();

    // A successor fences the producer and aborts the open transaction, offsets included.
    let successor = initialised_producer(&bootstrap, "ctp-crash");
    assert_eq!(
        committed_offsets(&bootstrap, GROUP, INPUT, PARTITIONS),
        after_first,
        "the aborted transaction's offsets must not become the group's committed offsets"
    );
    let member = GroupMember::join(&bootstrap, GROUP, INPUT, PARTITIONS);
    let reread = member.read(second_inputs.len());
    assert_eq!(
        values_by_partition(&reread),
        expected_by_partition(&[&second_inputs]),
        "a new member resumes at the offsets committed before the crash"
    );
    transform(&successor, &member, &reread);
    commit(&successor, "after the crash");
    assert_eq!(
        committed_offsets(&bootstrap, GROUP, INPUT, PARTITIONS),
        input_end_offsets(&bootstrap)
    );
    let output = read_topic(
        &bootstrap,
        OUTPUT,
        PARTITIONS,
        Isolation::ReadCommitted,
        first_inputs.len() + second_inputs.len(),
    );
    assert_eq!(
        values_by_partition(&output),
        expected_by_partition(&[
            &transformed_all(&first_inputs),
            &transformed_all(&second_inputs)
        ]),
    );
    drop(producer);
}

#[test]
fn a_transaction_with_only_consumer_offsets_commits_them() {
    let broker = Broker::start(2, NO_JOIN_DELAY);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, INPUT, PARTITIONS);
    let inputs = spread(INPUT, PARTITIONS, "in", 30);
    produce_plain(&bootstrap, &inputs);
    let producer = initialised_producer(&bootstrap, "ctp-offsets-only");
    let member = GroupMember::join(&bootstrap, GROUP, INPUT, PARTITIONS);
    let read = member.read(inputs.len());
    let group_metadata = member
        .consumer
        .group_metadata()
        .expect("a subscribed member has group metadata");

    // Aborted first: nothing committed; then committed: the input's end.
    for (commit_it, expected) in [
        (
            false,
            (0..PARTITIONS).map(|partition| (partition, None)).collect(),
        ),
        (true, input_end_offsets(&bootstrap)),
    ] {
        producer.begin_transaction().expect("begin_transaction");
        producer
            .send_offsets_to_transaction(
                &next_offsets(INPUT, &read),
                &group_metadata,
                TXN_CALL_TIMEOUT,
            )
            .unwrap_or_else(|error| panic!("send_offsets_to_transaction failed: {error}"));
        if commit_it {
            commit(&producer, "offsets only");
        } else {
            abort(&producer, "offsets only");
        }
        assert_eq!(
            committed_offsets(&bootstrap, GROUP, INPUT, PARTITIONS),
            expected,
            "after the offsets-only transaction (committed: {commit_it})"
        );
    }
}
