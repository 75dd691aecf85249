//! A consumer group through the death of its coordinator: the coordinator is the leader of
//! the group's `__consumer_offsets` partition (Kafka's hash of the group id, computed here
//! independently of the broker's), which has a replica on every node. When that node is
//! killed, FindCoordinator names the partition's new leader, the member goes on consuming
//! from where it was, and the offsets committed before the kill are still there for a new
//! member.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafka_protocol::messages::FindCoordinatorRequest;
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::{
    assert_no_node_panicked, bootstrap_of, create_replicated_topic, isr_holds_all, others,
    wait_for_replicas, FAILOVER_TIMEOUT,
};
use crate::codec;
use crate::common::wire::connect;
use crate::common::{
    group_consumer_config, poll_until, producer, record, send, wait_for_successful_deliveries,
    TestConsumer, TestContext,
};
use crate::poll::poll_until_ok;
use crate::{serial, three_voters, DATA_TIMEOUT};

/// How many partitions `__consumer_offsets` has (`--offsets-topic-partitions` default).
const OFFSETS_TOPIC_PARTITIONS: i32 = 50;
const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Kafka's `Utils.abs(groupId.hashCode) % partitions` (Java's String.hashCode over UTF-16
/// code units), computed independently of the broker's own.
fn offsets_partition_of(group: &str, partitions: i32) -> i32 {
    let hash = group.encode_utf16().fold(0i32, |hash, unit| {
        hash.wrapping_mul(31).wrapping_add(i32::from(unit))
    });
    let positive = if hash == i32::MIN { 0 } else { hash.abs() };
    positive % partitions
}

/// FindCoordinator (v2, group key) sent to the node at `bootstrap` itself: the node id it
/// names, or the error code / transport problem.
fn find_coordinator(bootstrap: &str, group: &str) -> Result<i32, String> {
    let mut stream = connect(bootstrap);
    let request = FindCoordinatorRequest::default()
        .with_key(StrBytes::from_string(group.to_string()))
        .with_key_type(0);
    let correlation_id = codec::send(&mut stream, 2, &request);
    let answer = codec::receive::<FindCoordinatorRequest>(&mut stream, 2, correlation_id)?;
    match answer.error_code {
        0 => Ok(answer.node_id.0),
        code => Err(format!("error code {code}")),
    }
}

/// Waits until the node at `bootstrap` names a coordinator for `group` that `accept` takes.
fn wait_for_coordinator(
    bootstrap: &str,
    group: &str,
    what: &str,
    accept: impl Fn(i32) -> bool,
) -> i32 {
    let mut answers = Vec::new();
    let waiting_for = format!("{bootstrap} never named {what} as the coordinator of {group}");
    poll_until_ok(
        FAILOVER_TIMEOUT,
        Duration::from_millis(100),
        &waiting_for,
        || {
            let answer = find_coordinator(bootstrap, group);
            if let Ok(node_id) = answer {
                if accept(node_id) {
                    return Ok(node_id);
                }
            }
            if answers.last() != Some(&answer) {
                answers.push(answer);
            }
            Err(format!("answers in order: {answers:?}"))
        },
    )
}

/// The offset `group` committed for partition 0 of `topic`, asked (OffsetFetch) through a
/// client bootstrapped at `bootstrap` that never joins. Retries errors until
/// [`FAILOVER_TIMEOUT`]; `None` when the coordinator answers that nothing is committed.
fn committed_offset(bootstrap: &str, group: &str, topic: &str) -> Option<i64> {
    let reader: TestConsumer = group_consumer_config(bootstrap, group, "corelog-test-outsider")
        .create_with_context(TestContext)
        .expect("create offsets reader");
    let mut request = TopicPartitionList::new();
    request.add_partition(topic, 0);
    let what = format!("OffsetFetch of {group} through {bootstrap}");
    let mut last_error = String::new();
    poll_until(FAILOVER_TIMEOUT, &what, || {
        match reader.committed_offsets(request.clone(), Duration::from_secs(5)) {
            Ok(answer) => match answer
                .elements()
                .first()
                .map(|element| (element.error(), element.offset()))
            {
                Some((Ok(()), Offset::Offset(offset))) => Some(Some(offset)),
                Some((Ok(()), Offset::Invalid)) => Some(None),
                other => {
                    last_error = format!("{other:?}");
                    eprintln!("OffsetFetch of {group}: {last_error}");
                    None
                }
            },
            Err(error) => {
                if last_error != error.to_string() {
                    last_error = error.to_string();
                    eprintln!("OffsetFetch of {group}: {last_error}");
                }
                None
            }
        }
    })
}

/// Polls `member` until it has read `count` records of partition 0; returns their values
/// as numbers (values are decimal numbers).
fn read_numbers(member: &TestConsumer, count: usize, who: &str) -> Vec<u64> {
    let deadline = Instant::now() + FAILOVER_TIMEOUT;
    let mut numbers = Vec::with_capacity(count);
    let mut errors = Vec::new();
    while numbers.len() < count {
        assert!(
            Instant::now() < deadline,
            "{who} read {} of {count} records within {FAILOVER_TIMEOUT:?}: {numbers:?}; \
             errors: {errors:?}",
            numbers.len()
        );
        match member.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let value = String::from_utf8_lossy(message.payload().unwrap_or_default());
                let number = value
                    .parse()
                    .unwrap_or_else(|_| panic!("{who} read a foreign value {value:?}"));
                numbers.push(number);
            }
            Some(Err(error)) if errors.len() < 10 => errors.push(error.to_string()),
            Some(Err(_)) | None => {}
        }
    }
    numbers
}

/// A subscribed group member bootstrapped at `bootstrap`.
fn member(bootstrap: &str, group: &str, topic: &str, client_id: &str) -> TestConsumer {
    let member: TestConsumer = group_consumer_config(bootstrap, group, client_id)
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        .create_with_context(TestContext)
        .expect("create group member");
    member.subscribe(&[topic]).expect("subscribe");
    member
}

/// Commits `offset` for partition 0 of `topic`, retrying (bounded) while the coordinator
/// moves.
fn commit_offset(member: &TestConsumer, topic: &str, offset: i64) {
    let mut commit = TopicPartitionList::new();
    commit
        .add_partition_offset(topic, 0, Offset::Offset(offset))
        .expect("add commit offset");
    let what = format!("commit of offset {offset} for {topic}/0");
    poll_until(FAILOVER_TIMEOUT, &what, || {
        match member.commit(&commit, CommitMode::Sync) {
            Ok(()) => Some(()),
            Err(error) => {
                eprintln!("{what}: {error}");
                None
            }
        }
    });
}

/// Produces values `numbers` (decimal) to partition 0 of `topic` with acks=all; waits.
fn produce_numbers(bootstrap: &str, topic: &str, numbers: std::ops::Range<u64>) {
    let producer = producer(bootstrap, &[("enable.idempotence", "true")]);
    let count = numbers.clone().count();
    for (id, number) in numbers.enumerate() {
        let value = number.to_string();
        send(
            &producer,
            record(topic, id, value.as_bytes(), value.as_bytes()).partition(0),
        );
    }
    wait_for_successful_deliveries(&producer, count, FAILOVER_TIMEOUT);
}

#[test]
fn a_consumer_group_keeps_consuming_through_a_coordinator_failover() {
    let _serial = serial();
    let mut cluster = three_voters();
    let node_ids = cluster.node_ids();
    let topic = "consumed-through-coordinator-failover";
    let group = "group-through-coordinator-failover";
    create_replicated_topic(&cluster.bootstrap(0), topic, 1, 3, &[]);
    wait_for_replicas(
        &cluster,
        &node_ids,
        topic,
        DATA_TIMEOUT,
        "all in sync",
        |replicas| isr_holds_all(replicas, &node_ids),
    );
    produce_numbers(&cluster.bootstrap_all(), topic, 0..100);

    // The first member reads everything and commits 100.
    let first = member(&cluster.bootstrap_all(), group, topic, "member-before-kill");
    let numbers = read_numbers(&first, 100, "the first member");
    assert_eq!(
        numbers,
        (0..100).collect::<Vec<_>>(),
        "the first member's records"
    );
    commit_offset(&first, topic, 100);
    assert_eq!(
        committed_offset(&cluster.bootstrap(0), group, topic),
        Some(100),
        "committed before the kill"
    );

    let offsets_partition = offsets_partition_of(group, OFFSETS_TOPIC_PARTITIONS);
    let offsets = wait_for_replicas(
        &cluster,
        &node_ids,
        OFFSETS_TOPIC,
        DATA_TIMEOUT,
        &format!("partition {offsets_partition} led and fully in sync"),
        |replicas| {
            replicas
                .get(&offsets_partition)
                .is_some_and(|state| state.leader >= 0 && state.isr == node_ids)
        },
    );
    let replication_factors: BTreeMap<usize, usize> =
        offsets.values().fold(BTreeMap::new(), |mut counts, state| {
            *counts.entry(state.replicas.len()).or_default() += 1;
            counts
        });
    eprintln!(
        "{OFFSETS_TOPIC}: {} partitions; replication factor -> partitions {replication_factors:?}; \
         partition {offsets_partition} (of {group}): {:?}",
        offsets.len(),
        offsets[&offsets_partition]
    );
    assert_eq!(
        offsets.len(),
        OFFSETS_TOPIC_PARTITIONS as usize,
        "{OFFSETS_TOPIC} partitions"
    );
    assert_eq!(
        offsets[&offsets_partition].replicas, node_ids,
        "{OFFSETS_TOPIC} partition {offsets_partition} has a replica on each of the three \
         live brokers (offsets.topic.replication.factor 3)"
    );
    let coordinator = offsets[&offsets_partition].leader;
    let named = find_coordinator(&cluster.bootstrap(0), group);
    assert_eq!(
        named,
        Ok(coordinator),
        "FindCoordinator names the leader of {OFFSETS_TOPIC} partition {offsets_partition}"
    );

    cluster.kill9(coordinator);
    let killed_at = Instant::now();
    let survivors = others(&cluster, coordinator);
    let survivors_bootstrap = bootstrap_of(&cluster, &survivors);
    let new_coordinator = wait_for_coordinator(
        &cluster.bootstrap(survivors[0]),
        group,
        "a survivor",
        |node_id| survivors.contains(&node_id),
    );
    eprintln!(
        "coordinator of {group} moved from {coordinator} to {new_coordinator} {} ms after the kill",
        killed_at.elapsed().as_millis()
    );
    wait_for_replicas(
        &cluster,
        &survivors,
        OFFSETS_TOPIC,
        FAILOVER_TIMEOUT,
        &format!("partition {offsets_partition} led by the new coordinator {new_coordinator}"),
        |replicas| {
            replicas
                .get(&offsets_partition)
                .is_some_and(|state| state.leader == new_coordinator)
        },
    );

    // The member keeps consuming what is produced after the kill, from where it was.
    produce_numbers(&survivors_bootstrap, topic, 100..150);
    let numbers = read_numbers(&first, 50, "the first member after the kill");
    assert_eq!(
        numbers,
        (100..150).collect::<Vec<_>>(),
        "the first member goes on after the coordinator's failover"
    );
    eprintln!(
        "the first member read the records produced after the kill {} ms after it",
        killed_at.elapsed().as_millis()
    );
    assert_eq!(
        committed_offset(&cluster.bootstrap(survivors[0]), group, topic),
        Some(100),
        "the offset committed before the kill, read from the new coordinator {new_coordinator}"
    );
    first.unsubscribe();
    drop(first);

    // A new member resumes at the commit made before the kill, not at the beginning.
    let second = member(&survivors_bootstrap, group, topic, "member-after-kill");
    let numbers = read_numbers(&second, 50, "the second member");
    assert_eq!(
        numbers,
        (100..150).collect::<Vec<_>>(),
        "the second member resumes at the offset committed before the kill"
    );
    commit_offset(&second, topic, 150);
    assert_eq!(
        committed_offset(&cluster.bootstrap(survivors[1]), group, topic),
        Some(150),
        "committed through the new coordinator {new_coordinator}"
    );
    second.unsubscribe();
    drop(second);
    assert_no_node_panicked(&cluster);
}
