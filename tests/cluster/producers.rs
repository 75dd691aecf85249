//! Producers across nodes: InitProducerId answered by different nodes never hands out the
//! same producer id (each node's ids come from its own block, allocated by the active
//! controller), so idempotent producers bootstrapped at different nodes write to the same
//! partitions without tripping over each other's sequence numbers; and a transaction that
//! spans partitions led by different nodes is committed or aborted on all of them, as
//! read_committed and read_uncommitted consumers see it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rdkafka::producer::Producer;

use crate::common::wire::{connect, init_producer_id_v0};
use crate::common::{
    producer, record, send, try_create_topic, wait_for_successful_deliveries, TestProducer,
};
use crate::poll::poll_until_ok;
use crate::{leaders_agreed_by, read_positions, serial, three_voters, Positions, DATA_TIMEOUT};

/// Kafka error codes InitProducerId may answer while a node obtains its first block of
/// producer ids from the active controller: REQUEST_TIMED_OUT (7),
/// COORDINATOR_LOAD_IN_PROGRESS (14), COORDINATOR_NOT_AVAILABLE (15), NOT_CONTROLLER (41).
const RETRIABLE_INIT_PRODUCER_ID: &[i16] = &[7, 14, 15, 41];
/// Bound on one node's first InitProducerId, retries included.
const PRODUCER_ID_TIMEOUT: Duration = Duration::from_secs(20);
/// Bound on one transactional call (init, commit, abort): a coordinator look-up and a few
/// CONCURRENT_TRANSACTIONS retries while markers reach other nodes.
const TXN_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A raw InitProducerId (no transactional id) answered by `node_id` itself: its producer id
/// and epoch.
fn init_producer_id_at(bootstrap: &str, node_id: i32) -> (i64, i16) {
    let mut answers = Vec::new();
    let what = format!("InitProducerId at node {node_id} kept failing");
    poll_until_ok(
        PRODUCER_ID_TIMEOUT,
        Duration::from_millis(100),
        &what,
        || {
            let mut stream = connect(bootstrap);
            let (error_code, producer_id, producer_epoch) = init_producer_id_v0(&mut stream, 1);
            if error_code == 0 {
                return Ok((producer_id, producer_epoch));
            }
            answers.push(error_code);
            assert!(
            RETRIABLE_INIT_PRODUCER_ID.contains(&error_code),
            "InitProducerId at node {node_id} answered error {error_code}; answers: {answers:?}"
        );
            Err(format!("answers: {answers:?}"))
        },
    )
}

#[test]
fn idempotent_producers_at_different_nodes_get_distinct_producer_ids() {
    const PARTITIONS: i32 = 3;
    const RECORDS_PER_PRODUCER: usize = 200;
    let _serial = serial();
    let cluster = three_voters();
    let node_ids = cluster.node_ids();

    let mut producer_ids = BTreeMap::new();
    for node_id in &node_ids {
        for round in 0..2 {
            let (producer_id, epoch) = init_producer_id_at(&cluster.bootstrap(*node_id), *node_id);
            assert!(
                producer_id >= 0,
                "node {node_id}: producer id {producer_id}"
            );
            assert_eq!(
                epoch, 0,
                "node {node_id}: a new idempotent producer's epoch"
            );
            if let Some(first) = producer_ids.insert(producer_id, (*node_id, round)) {
                panic!(
                    "producer id {producer_id} handed out twice: by node {} and by node \
                     {node_id}; all so far: {producer_ids:?}",
                    first.0
                );
            }
        }
    }
    eprintln!("producer id -> (node, round): {producer_ids:?}");

    // librdkafka idempotent producers, one bootstrapped at each node, all writing to the
    // three partitions (one led by each node) at once.
    let topic = "idempotent-across-nodes";
    if let Err(code) = try_create_topic(&cluster.bootstrap(0), topic, PARTITIONS) {
        panic!("CreateTopics {topic}: {code:?}");
    }
    let leaders = leaders_agreed_by(&cluster, &node_ids, topic, PARTITIONS);
    assert_eq!(
        leaders.values().copied().collect::<BTreeSet<i32>>(),
        BTreeSet::from([0, 1, 2]),
        "{leaders:?}"
    );
    let producers: Vec<(i32, TestProducer, Vec<String>)> = node_ids
        .iter()
        .map(|node_id| {
            let producer = producer(
                &cluster.bootstrap(*node_id),
                &[("enable.idempotence", "true")],
            );
            let values = (0..RECORDS_PER_PRODUCER)
                .map(|id| format!("from-node-{node_id}-{id}"))
                .collect();
            (*node_id, producer, values)
        })
        .collect();
    for id in 0..RECORDS_PER_PRODUCER {
        for (_, producer, values) in &producers {
            let value = values[id].as_bytes();
            let partition = id as i32 % PARTITIONS;
            send(
                producer,
                record(topic, id, value, value).partition(partition),
            );
        }
    }
    let mut expected = Positions::new();
    for (node_id, producer, values) in &producers {
        let placed = wait_for_successful_deliveries(producer, RECORDS_PER_PRODUCER, DATA_TIMEOUT);
        for (id, position) in placed.into_iter().enumerate() {
            let previous =
                expected.insert(position, (Some(values[id].clone()), values[id].clone()));
            assert!(
                previous.is_none(),
                "two acks at {position:?} (the second from node {node_id}'s producer)"
            );
        }
    }
    let total = node_ids.len() * RECORDS_PER_PRODUCER;
    let read = read_positions(&cluster.bootstrap(0), topic, PARTITIONS, total, &[]);
    assert_eq!(read.len(), total, "every record once");
    assert_eq!(read, expected, "records at their acknowledged offsets");
}

/// Sends `count` records per partition of `topic` in the producer's open transaction,
/// valued `<label>-<partition>-<i>`, and waits for their acks; returns them by position.
fn produce_in_transaction(
    producer: &TestProducer,
    topic: &str,
    partitions: i32,
    label: &str,
    count: usize,
) -> Positions {
    let values: Vec<(i32, String)> = (0..count * partitions as usize)
        .map(|id| {
            let partition = id as i32 % partitions;
            (partition, format!("{label}-{partition}-{id}"))
        })
        .collect();
    for (id, (partition, value)) in values.iter().enumerate() {
        let bytes = value.as_bytes();
        send(
            producer,
            record(topic, id, bytes, bytes).partition(*partition),
        );
    }
    let placed = wait_for_successful_deliveries(producer, values.len(), DATA_TIMEOUT);
    placed
        .into_iter()
        .zip(values)
        .map(|(position, (partition, value))| {
            assert_eq!(
                position.0, partition,
                "{value} acknowledged on another partition"
            );
            (position, (Some(value.clone()), value))
        })
        .collect()
}

#[test]
fn transaction_across_partitions_led_by_different_nodes_commits_and_aborts_everywhere() {
    const PARTITIONS: i32 = 3;
    const RECORDS_PER_PARTITION: usize = 20;
    let _serial = serial();
    let cluster = three_voters();
    let node_ids = cluster.node_ids();
    let topic = "transaction-across-nodes";
    if let Err(code) = try_create_topic(&cluster.bootstrap(0), topic, PARTITIONS) {
        panic!("CreateTopics {topic}: {code:?}");
    }
    let leaders = leaders_agreed_by(&cluster, &node_ids, topic, PARTITIONS);
    let leading_nodes: BTreeSet<i32> = leaders.values().copied().collect();
    assert!(
        leading_nodes.len() >= 2,
        "the transaction must span partitions led by at least two nodes: {leaders:?}"
    );

    let producer = producer(
        &cluster.bootstrap(1),
        &[("transactional.id", "transaction-across-nodes")],
    );
    producer
        .init_transactions(TXN_CALL_TIMEOUT)
        .unwrap_or_else(|error| panic!("init_transactions: {error}"));
    let round = |label: &str, commit: bool| -> Positions {
        producer
            .begin_transaction()
            .unwrap_or_else(|error| panic!("begin_transaction ({label}): {error}"));
        let written =
            produce_in_transaction(&producer, topic, PARTITIONS, label, RECORDS_PER_PARTITION);
        let ended = if commit {
            producer.commit_transaction(TXN_CALL_TIMEOUT)
        } else {
            producer.abort_transaction(TXN_CALL_TIMEOUT)
        };
        ended.unwrap_or_else(|error| panic!("ending transaction {label}: {error}"));
        written
    };
    let committed_first = round("committed-first", true);
    let aborted = round("aborted", false);
    // A committed transaction after the aborted one: read_committed consumers must skip the
    // aborted records by the aborted-transaction list, not only stop at the last stable
    // offset.
    let committed_last = round("committed-last", true);

    let committed: Positions = committed_first
        .iter()
        .chain(&committed_last)
        .map(|(position, record)| (*position, record.clone()))
        .collect();
    let everything: Positions = committed
        .iter()
        .chain(&aborted)
        .map(|(position, record)| (*position, record.clone()))
        .collect();
    let read_committed = read_positions(
        &cluster.bootstrap(2),
        topic,
        PARTITIONS,
        committed.len(),
        &[("isolation.level", "read_committed")],
    );
    assert_eq!(
        read_committed, committed,
        "read_committed through node 2 sees exactly the committed transactions"
    );
    let read_uncommitted = read_positions(
        &cluster.bootstrap(0),
        topic,
        PARTITIONS,
        everything.len(),
        &[("isolation.level", "read_uncommitted")],
    );
    assert_eq!(
        read_uncommitted, everything,
        "read_uncommitted through node 0 sees all three transactions"
    );
}
