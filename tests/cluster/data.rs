//! Clients bootstrapped at different nodes share one cluster: records produced through one
//! node are read through another, each once, at the offset its delivery report gave, with
//! its key; a consumer group's offsets committed through one node are read back, and
//! resumed from, through a third (wherever the group's coordinator is).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::common::{
    group_consumer_config, produce_simple, producer, record, send, try_create_topic,
    wait_for_successful_deliveries, TestConsumer, TestContext, ADMIN_TIMEOUT,
};
use crate::poll::poll_until_ok;
use crate::{
    leader_counts, leaders_agreed_by, read_positions, serial, three_voters, Positions, DATA_TIMEOUT,
};

#[test]
fn records_produced_through_one_node_are_read_through_another_once_at_their_offsets() {
    const PARTITIONS: i32 = 6;
    const RECORDS: usize = 600;
    let _serial = serial();
    let cluster = three_voters();
    let node_ids = cluster.node_ids();
    let topic = "through-two-nodes";
    if let Err(code) = try_create_topic(&cluster.bootstrap(0), topic, PARTITIONS) {
        panic!("CreateTopics {topic}: {code:?}");
    }
    let leaders = leaders_agreed_by(&cluster, &node_ids, topic, PARTITIONS);
    assert_eq!(
        leader_counts(&leaders),
        BTreeMap::from([(0, 2), (1, 2), (2, 2)]),
        "{leaders:?}"
    );

    // Keyed records without a partition: librdkafka's partitioner spreads them over the
    // six partitions, so the producer bootstrapped at node 0 writes to all three leaders.
    let producer = producer(&cluster.bootstrap(0), &[]);
    let keys: Vec<String> = (0..RECORDS).map(|id| format!("key-{id}")).collect();
    let values: Vec<String> = (0..RECORDS).map(|id| format!("value-{id}")).collect();
    for id in 0..RECORDS {
        send(
            &producer,
            record(topic, id, keys[id].as_bytes(), values[id].as_bytes()),
        );
    }
    let placed = wait_for_successful_deliveries(&producer, RECORDS, DATA_TIMEOUT);
    let mut expected = Positions::new();
    for (id, position) in placed.into_iter().enumerate() {
        let previous = expected.insert(position, (Some(keys[id].clone()), values[id].clone()));
        assert!(previous.is_none(), "two acks at {position:?}");
    }
    let written_to: BTreeSet<i32> = expected
        .keys()
        .map(|(partition, _)| leaders[partition])
        .collect();
    assert_eq!(written_to, BTreeSet::from([0, 1, 2]), "leaders written to");

    let read = read_positions(&cluster.bootstrap(1), topic, PARTITIONS, RECORDS, &[]);
    assert_eq!(read.len(), RECORDS, "records read through node 1");
    assert_eq!(
        read, expected,
        "read through node 1 = acknowledged through node 0"
    );
}

/// Partition -> (offset, metadata) a group member commits in the group-offsets test.
fn planned_commits(partitions: i32) -> BTreeMap<i32, (i64, String)> {
    (0..partitions)
        .map(|partition| {
            let offset = 3 * i64::from(partition) + 2;
            (partition, (offset, format!("through-node-1-{partition}")))
        })
        .collect()
}

/// Partition -> (committed offset, metadata) of `group` for `topic`, through OffsetFetch
/// from a client bootstrapped at `bootstrap` that never joins the group. Retries transient
/// errors (the coordinator's node may still be loading the group) until [`ADMIN_TIMEOUT`].
fn committed_through(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions: i32,
) -> BTreeMap<i32, (i64, String)> {
    let reader: TestConsumer = group_consumer_config(bootstrap, group, "corelog-test-outsider")
        .create_with_context(TestContext)
        .expect("create offsets reader");
    let mut request = TopicPartitionList::new();
    for partition in 0..partitions {
        request.add_partition(topic, partition);
    }
    let what = format!("OffsetFetch of {group} through {bootstrap} never succeeded");
    poll_until_ok(ADMIN_TIMEOUT, Duration::from_millis(100), &what, || {
        let answer = reader
            .committed_offsets(request.clone(), Duration::from_secs(5))
            .map_err(|error| error.to_string())?;
        answer
            .elements()
            .iter()
            .map(|element| match (element.error(), element.offset()) {
                (Ok(()), Offset::Offset(offset)) => Ok((
                    element.partition(),
                    (offset, element.metadata().to_string()),
                )),
                (result, offset) => Err(format!(
                    "partition {}: {result:?} {offset:?}",
                    element.partition()
                )),
            })
            .collect()
    })
}

/// Polls `member` until it has read `expected` records; returns partition -> the offsets
/// read, in order.
fn read_as_member(member: &TestConsumer, expected: usize, who: &str) -> BTreeMap<i32, Vec<i64>> {
    let deadline = Instant::now() + DATA_TIMEOUT;
    let mut offsets: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    let mut read = 0;
    let mut errors = Vec::new();
    while read < expected {
        assert!(
            Instant::now() < deadline,
            "{who} read {read} of {expected} records within {DATA_TIMEOUT:?}: {offsets:?}; \
             errors: {errors:?}"
        );
        match member.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                offsets
                    .entry(message.partition())
                    .or_default()
                    .push(message.offset());
                read += 1;
            }
            Some(Err(error)) if errors.len() < 10 => errors.push(error.to_string()),
            Some(Err(_)) | None => {}
        }
    }
    offsets
}

#[test]
fn group_offsets_committed_through_one_node_are_read_back_through_a_third() {
    const PARTITIONS: i32 = 3;
    const RECORDS_PER_PARTITION: usize = 10;
    let _serial = serial();
    let cluster = three_voters();
    let topic = "group-offsets-across-nodes";
    let group = "group-across-nodes";
    if let Err(code) = try_create_topic(&cluster.bootstrap(0), topic, PARTITIONS) {
        panic!("CreateTopics {topic}: {code:?}");
    }
    leaders_agreed_by(&cluster, &cluster.node_ids(), topic, PARTITIONS);
    for partition in 0..PARTITIONS {
        produce_simple(
            &cluster.bootstrap(0),
            topic,
            partition,
            RECORDS_PER_PARTITION,
        );
    }

    // A member bootstrapped at node 1 joins, reads everything and commits.
    let member: TestConsumer = group_consumer_config(&cluster.bootstrap(1), group, "member-1")
        .create_with_context(TestContext)
        .expect("create group member");
    member.subscribe(&[topic]).expect("subscribe");
    let total = PARTITIONS as usize * RECORDS_PER_PARTITION;
    read_as_member(&member, total, "the member bootstrapped at node 1");
    let planned = planned_commits(PARTITIONS);
    let mut commits = TopicPartitionList::new();
    for (partition, (offset, metadata)) in &planned {
        let mut element = commits.add_partition(topic, *partition);
        element
            .set_offset(Offset::Offset(*offset))
            .expect("set commit offset");
        element.set_metadata(metadata.clone());
    }
    member
        .commit(&commits, CommitMode::Sync)
        .unwrap_or_else(|error| panic!("OffsetCommit through node 1: {error}"));

    let read_back = committed_through(&cluster.bootstrap(2), group, topic, PARTITIONS);
    assert_eq!(
        read_back, planned,
        "committed through node 1, read through node 2"
    );

    // The member leaves; a new one bootstrapped at node 2 resumes at the commits.
    member.unsubscribe();
    drop(member);
    let successor: TestConsumer = group_consumer_config(&cluster.bootstrap(2), group, "member-2")
        .create_with_context(TestContext)
        .expect("create second group member");
    successor.subscribe(&[topic]).expect("subscribe");
    let remaining: usize = planned
        .values()
        .map(|(offset, _)| RECORDS_PER_PARTITION - *offset as usize)
        .sum();
    let resumed = read_as_member(&successor, remaining, "the member bootstrapped at node 2");
    let first_offsets: BTreeMap<i32, i64> = resumed
        .iter()
        .map(|(partition, offsets)| (*partition, offsets[0]))
        .collect();
    let committed_offsets: BTreeMap<i32, i64> = planned
        .iter()
        .map(|(partition, (offset, _))| (*partition, *offset))
        .collect();
    assert_eq!(
        first_offsets, committed_offsets,
        "the second member starts at the committed offsets"
    );
}
