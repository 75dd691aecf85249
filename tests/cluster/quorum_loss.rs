//! Brokers down on a five-node cluster (three voters, two broker-only nodes), with and
//! without the controller quorum (issue 12's "fewer in-sync replicas than
//! min.insync.replicas" fault, Kafka's KRaft behaviour as the reference):
//!
//! - Two brokers down while a majority of voters lives: an RF=3 partition whose ISR is down
//!   to its leader refuses acks=all with NOT_ENOUGH_REPLICAS (min.insync.replicas 2) and
//!   still takes acks=1, the quorum still creates topics, and once the two are back they
//!   rejoin the ISR, acks=all works again and every acknowledged record is there.
//! - Two of the three voters down (no controller can be elected): a broker that cannot reach
//!   any controller keeps its leaderships and ISR, since only the controller could change
//!   them, so leaders on the broker-only nodes keep answering Fetch and acks=all Produce
//!   (waiting for their whole ISR, which keeps fetching). When the voters return the brokers
//!   get fresh sessions from the new controller, keep leading, and nothing acknowledged is
//!   lost.
//!
//! Each test ends with every replica holding the same batches below the high watermark
//! ([`assert_replicas_identical`]).

use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant};

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    describe_quorum_request, DescribeQuorumRequest, MetadataRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::codec;
use crate::common::cluster::{Cluster, QUICK_BROKER_SESSIONS};
use crate::common::cluster_view::wait_for_full_view;
use crate::common::wire::connect;
use crate::common::{
    admin, assign_consumer, assign_from_beginning, consume_from, producer, record, send,
    wait_for_deliveries, TestProducer, ADMIN_TIMEOUT,
};
use crate::replication::replica_logs::assert_replicas_identical;
use crate::replication::{wait_for_replicas, Replicas};
use crate::{
    agreed_controller, read_positions, serial, Positions, DATA_TIMEOUT, MEMBERSHIP_TIMEOUT, VOTERS,
};

/// The broker-only nodes; the voters are 0, 1 and 2.
const BROKER_ONLY: [i32; 2] = [3, 4];
/// How long the ISR may take to drop killed replicas: a controller election when the
/// active controller is among them, then their broker sessions (3 s) run out.
const ISR_SHRINK_TIMEOUT: Duration = Duration::from_secs(30);
/// How long restarted replicas may take to catch up and be back in the ISR.
const REJOIN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the test keeps writing and reading while the quorum is lost: longer than a
/// broker session (3 s) and than a broker's call to the controller (`CALL_TIMEOUT`, 15 s),
/// so every heartbeat of the surviving brokers has failed and been given up on at least
/// once before the last round.
const QUORUM_LOST_WINDOW: Duration = Duration::from_secs(18);
/// Records written to each partition per round while the quorum is lost, and the pause
/// between rounds.
const ROUND_RECORDS: usize = 20;
const ROUND_PAUSE: Duration = Duration::from_millis(500);
/// Bound on a DescribeQuorum answer from a broker that cannot reach a controller: its call
/// gives up after `CALL_TIMEOUT` (15 s) and answers the error.
const DESCRIBE_QUORUM_TIMEOUT: Duration = Duration::from_secs(25);
/// Bound on one acks=all delivery: librdkafka gives a record up after this
/// (`message.timeout.ms`), so a leader that holds acks=all writes fails the test with the
/// error rather than a missing report.
const DELIVERY_TIMEOUT_MS: &str = "10000";

/// Three voters and [`BROKER_ONLY`], with quick broker sessions, returned once every node
/// lists all five brokers and a controller. Call [`serial`] first and keep its guard.
fn five_nodes() -> Cluster {
    let mut cluster = Cluster::start(VOTERS, QUICK_BROKER_SESSIONS);
    for node_id in BROKER_ONLY {
        cluster.add_broker_only(node_id);
    }
    for node_id in cluster.node_ids() {
        wait_for_full_view(&cluster, node_id, MEMBERSHIP_TIMEOUT);
    }
    cluster
}

/// Voters have ids `0..VOTERS`.
fn is_voter(node_id: i32) -> bool {
    (0..VOTERS as i32).contains(&node_id)
}

/// `node_ids` sorted, as [`Replicas`] lists replicas and ISR.
fn sorted(node_ids: &[i32]) -> Vec<i32> {
    let mut node_ids = node_ids.to_vec();
    node_ids.sort_unstable();
    node_ids
}

/// Comma-separated bootstrap addresses of `node_ids`.
fn bootstrap_of(cluster: &Cluster, node_ids: &[i32]) -> String {
    let addresses: Vec<String> = node_ids.iter().map(|id| cluster.bootstrap(*id)).collect();
    addresses.join(",")
}

/// CreateTopics for `new_topic` through the node at `bootstrap`; panics on any error.
fn create(bootstrap: &str, new_topic: &NewTopic<'_>) {
    let options = AdminOptions::new()
        .request_timeout(Some(ADMIN_TIMEOUT))
        .operation_timeout(Some(ADMIN_TIMEOUT));
    let admin = admin(bootstrap);
    let results = futures::executor::block_on(admin.create_topics([new_topic], &options))
        .unwrap_or_else(|error| panic!("CreateTopics {}: {error}", new_topic.name));
    if let [Err((_, code))] = results.as_slice() {
        panic!(
            "CreateTopics {} through {bootstrap}: {code:?}",
            new_topic.name
        );
    }
}

/// Where a record was acknowledged (partition, offset), or why it was not.
type Delivery = Result<(i32, i64), KafkaError>;

/// Sends `values` (key = value) to `partition` of `topic` through `producer` and waits for
/// every delivery report: each value with where it was acknowledged, or why it was not.
fn produce_values(
    producer: &TestProducer,
    topic: &str,
    partition: i32,
    values: &[String],
) -> Vec<(String, Delivery)> {
    for (id, value) in values.iter().enumerate() {
        let bytes = value.as_bytes();
        send(
            producer,
            record(topic, id, bytes, bytes).partition(partition),
        );
    }
    let mut deliveries = wait_for_deliveries(producer, values.len(), DATA_TIMEOUT);
    deliveries.sort_by_key(|delivery| delivery.id);
    deliveries
        .into_iter()
        .map(|delivery| (values[delivery.id].clone(), delivery.outcome))
        .collect()
}

/// [`produce_values`] where every record must be acknowledged; notes each in `expected`.
fn produce_acknowledged(
    producer: &TestProducer,
    topic: &str,
    partition: i32,
    values: &[String],
    expected: &mut Positions,
    what: &str,
) {
    for (value, outcome) in produce_values(producer, topic, partition, values) {
        let position = outcome.unwrap_or_else(|error| {
            panic!("{what}: {value:?} to {topic}/{partition} was not acknowledged: {error}")
        });
        let previous = expected.insert(position, (Some(value.clone()), value));
        assert!(
            previous.is_none(),
            "{what}: two records acknowledged at {position:?}"
        );
    }
}

/// `count` values named `<prefix>-<i>`.
fn values(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|id| format!("{prefix}-{id}")).collect()
}

/// Whether every partition of `view` is led by `leaders[partition]` with all of `isr` in
/// sync.
fn led_with_isr(view: &Replicas, leaders: &[i32], isr: &[i32]) -> bool {
    view.len() == leaders.len()
        && leaders.iter().enumerate().all(|(partition, leader)| {
            view.get(&(partition as i32))
                .is_some_and(|state| state.leader == *leader && state.isr == isr)
        })
}

#[test]
fn two_of_five_brokers_down_refuse_acks_all_below_min_insync_while_the_quorum_serves() {
    const RECORDS: usize = 10;
    let _serial = serial();
    let mut cluster = five_nodes();
    let node_ids = cluster.node_ids();
    let topic = "min-insync-two-brokers-down";
    // Led by a broker-only node; its followers are the active controller and the other
    // broker-only node. Killing both leaves the leader alone in the ISR while two voters
    // keep the quorum, which has to elect a new controller to fence them.
    let [leader, follower] = BROKER_ONLY;
    let controller = agreed_controller(&cluster, &node_ids, "a voter as controller", is_voter);
    let assignment = [leader, controller, follower];
    let all_in_sync = sorted(&assignment);
    create(
        &cluster.bootstrap(leader),
        &NewTopic::new(topic, 1, TopicReplication::Variable(&[&assignment]))
            .set("min.insync.replicas", "2"),
    );
    wait_for_replicas(
        &cluster,
        &node_ids,
        topic,
        DATA_TIMEOUT,
        &format!("leader {leader} and ISR {all_in_sync:?}"),
        |view| led_with_isr(view, &[leader], &all_in_sync),
    );

    let mut expected = Positions::new();
    let all_acks = producer(&cluster.bootstrap_all(), &[]);
    let before = values("before", RECORDS);
    produce_acknowledged(&all_acks, topic, 0, &before, &mut expected, "acks=all");
    drop(all_acks);

    let down = [controller, follower];
    for node_id in down {
        cluster.kill9(node_id);
    }
    let killed_at = Instant::now();
    let survivors: Vec<i32> = node_ids
        .iter()
        .copied()
        .filter(|id| !down.contains(id))
        .collect();
    wait_for_replicas(
        &cluster,
        &survivors,
        topic,
        ISR_SHRINK_TIMEOUT,
        &format!("leader {leader} alone in the ISR after nodes {down:?} died"),
        |view| led_with_isr(view, &[leader], &[leader]),
    );
    eprintln!(
        "ISR of {topic} down to [{leader}] {} ms after kill -9 of nodes {down:?}",
        killed_at.elapsed().as_millis()
    );

    // No retries: librdkafka retries NOT_ENOUGH_REPLICAS, which would end in a timeout.
    let survivors_bootstrap = bootstrap_of(&cluster, &survivors);
    let strict = producer(
        &survivors_bootstrap,
        &[("retries", "0"), ("enable.idempotence", "false")],
    );
    let refused = produce_values(&strict, topic, 0, &["refused-acks-all".to_string()]);
    match refused.as_slice() {
        [(_, Err(KafkaError::MessageProduction(RDKafkaErrorCode::NotEnoughReplicas)))] => {}
        other => panic!(
            "acks=all with an ISR of 1 < min.insync.replicas 2 answered {other:?}, expected \
             NotEnoughReplicas"
        ),
    }
    let leader_only = producer(&survivors_bootstrap, &[("acks", "1")]);
    let acks_one = values("acks-1-while-isr-1", RECORDS);
    produce_acknowledged(
        &leader_only,
        topic,
        0,
        &acks_one,
        &mut expected,
        "acks=1 with an ISR of 1",
    );
    drop((strict, leader_only));

    // The quorum lives on: a new controller among the surviving voters creates a topic
    // over the three live brokers.
    let new_controller = agreed_controller(&cluster, &survivors, "a surviving voter", |id| {
        is_voter(id) && survivors.contains(&id)
    });
    let created = "created-while-two-brokers-are-down";
    create(
        &cluster.bootstrap(leader),
        &NewTopic::new(created, 1, TopicReplication::Fixed(3)),
    );
    wait_for_replicas(
        &cluster,
        &survivors,
        created,
        DATA_TIMEOUT,
        &format!("a leader and the live brokers {survivors:?} as replicas, all in sync"),
        |view| {
            view.get(&0).is_some_and(|state| {
                state.leader >= 0 && state.replicas == survivors && state.isr == survivors
            })
        },
    );
    eprintln!("node {new_controller} took over as controller and created {created}");

    let restarted_at = Instant::now();
    for node_id in down {
        cluster.restart(node_id);
    }
    wait_for_replicas(
        &cluster,
        &node_ids,
        topic,
        REJOIN_TIMEOUT,
        &format!("the restarted nodes {down:?} back in the ISR"),
        |view| led_with_isr(view, &[leader], &all_in_sync),
    );
    eprintln!(
        "nodes {down:?} back in the ISR of {topic} {} ms after the restarts began",
        restarted_at.elapsed().as_millis()
    );
    let all_acks = producer(&cluster.bootstrap_all(), &[]);
    let after = values("after", RECORDS);
    produce_acknowledged(&all_acks, topic, 0, &after, &mut expected, "acks=all");
    drop(all_acks);

    let read = read_positions(&cluster.bootstrap_all(), topic, 1, expected.len(), &[]);
    assert_eq!(
        read, expected,
        "{topic}: everything acknowledged, at its offsets, and not the refused record"
    );
    assert_replicas_identical(&cluster, topic, 1);
    cluster.assert_no_node_panicked();
}

/// DescribeQuorum v0 through the node at `bootstrap`: the error code its answer carries for
/// the metadata partition (0 when a leader answered), or why no answer came within
/// [`DESCRIBE_QUORUM_TIMEOUT`].
fn describe_quorum_error(bootstrap: &str) -> Result<i16, String> {
    let mut stream = connect(bootstrap);
    stream
        .set_read_timeout(Some(DESCRIBE_QUORUM_TIMEOUT))
        .map_err(|error| format!("set read timeout: {error}"))?;
    let request = DescribeQuorumRequest::default().with_topics(vec![
        describe_quorum_request::TopicData::default()
            .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
            .with_partitions(vec![
                describe_quorum_request::PartitionData::default().with_partition_index(0)
            ]),
    ]);
    let correlation_id = codec::send(&mut stream, 0, &request);
    let answer = codec::receive::<DescribeQuorumRequest>(&mut stream, 0, correlation_id)?;
    if answer.error_code != 0 {
        return Ok(answer.error_code);
    }
    answer
        .topics
        .first()
        .and_then(|topic| topic.partitions.first())
        .map(|partition| partition.error_code)
        .ok_or_else(|| format!("DescribeQuorum answered no partition: {answer:?}"))
}

/// Partition -> leader epoch of `topic`, as the node at `bootstrap` answers Metadata v12
/// (librdkafka's metadata API does not expose leader epochs).
fn leader_epochs(bootstrap: &str, topic: &str) -> BTreeMap<i32, i32> {
    let mut stream = connect(bootstrap);
    let request = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(
            TopicName(StrBytes::from_string(topic.to_string())),
        ))]))
        .with_allow_auto_topic_creation(false);
    let response = codec::call(&mut stream, 12, &request);
    let entry = response
        .topics
        .iter()
        .find(|entry| entry.name.as_ref().map(|name| name.0.as_str()) == Some(topic))
        .unwrap_or_else(|| panic!("Metadata through {bootstrap} does not list {topic}"));
    assert_eq!(
        entry.error_code, 0,
        "Metadata of {topic} through {bootstrap}"
    );
    entry
        .partitions
        .iter()
        .map(|partition| (partition.partition_index, partition.leader_epoch))
        .collect()
}

#[test]
fn leaders_keep_serving_reads_and_acks_all_writes_while_the_controller_quorum_is_lost() {
    const RECORDS: usize = 10;
    const PARTITIONS: i32 = 2;
    let _serial = serial();
    let mut cluster = five_nodes();
    let node_ids = cluster.node_ids();
    let topic = "served-without-a-quorum";
    // Both replicas of each partition on the broker-only nodes, one leading each partition,
    // and min.insync.replicas 2: every acks=all write needs both, and both survive.
    let [first, second] = BROKER_ONLY;
    let leaders = [first, second];
    let isr = sorted(&BROKER_ONLY);
    create(
        &cluster.bootstrap(first),
        &NewTopic::new(
            topic,
            PARTITIONS,
            TopicReplication::Variable(&[&[first, second], &[second, first]]),
        )
        .set("min.insync.replicas", "2"),
    );
    wait_for_replicas(
        &cluster,
        &node_ids,
        topic,
        DATA_TIMEOUT,
        &format!("leaders {leaders:?} and ISR {isr:?}"),
        |view| led_with_isr(view, &leaders, &isr),
    );
    let epochs = leader_epochs(&cluster.bootstrap(first), topic);

    let controller = agreed_controller(&cluster, &node_ids, "a voter as controller", is_voter);
    let survivor = (0..VOTERS as i32)
        .find(|id| *id != controller)
        .expect("three voters");
    let lost: Vec<i32> = (0..VOTERS as i32).filter(|id| *id != survivor).collect();
    let survivors = [survivor, first, second];
    let survivors_bootstrap = bootstrap_of(&cluster, &survivors);
    // Plain acks=all (no idempotence: a new producer id needs the controller), giving a
    // record up after DELIVERY_TIMEOUT_MS.
    let all_acks = producer(
        &survivors_bootstrap,
        &[
            ("enable.idempotence", "false"),
            ("message.timeout.ms", DELIVERY_TIMEOUT_MS),
        ],
    );
    let reader = assign_consumer(&survivors_bootstrap, &[]);
    assign_from_beginning(&reader, topic, PARTITIONS);
    let mut expected = Positions::new();
    for partition in 0..PARTITIONS {
        let before = values(&format!("p{partition}-before"), RECORDS);
        produce_acknowledged(
            &all_acks,
            topic,
            partition,
            &before,
            &mut expected,
            "acks=all",
        );
    }
    let read_along = consume_from(&reader, PARTITIONS, expected.len(), DATA_TIMEOUT);
    assert_eq!(read_along.len(), expected.len(), "read before the loss");

    for node_id in &lost {
        cluster.kill9(*node_id);
    }
    let lost_at = Instant::now();
    eprintln!("voters {lost:?} killed (the controller was {controller}); {survivor} is left");
    // Asked while the leaders serve: a broker finds no controller and answers an error.
    let quorum_probe = {
        let bootstrap = cluster.bootstrap(first);
        thread::spawn(move || describe_quorum_error(&bootstrap))
    };

    let mut rounds = 0usize;
    while rounds == 0 || lost_at.elapsed() < QUORUM_LOST_WINDOW {
        let mut written = 0;
        for partition in 0..PARTITIONS {
            let round = values(&format!("p{partition}-lost-{rounds}"), ROUND_RECORDS);
            let what = format!(
                "acks=all {} ms into the quorum loss",
                lost_at.elapsed().as_millis()
            );
            produce_acknowledged(&all_acks, topic, partition, &round, &mut expected, &what);
            written += round.len();
        }
        let read = consume_from(&reader, PARTITIONS, written, DATA_TIMEOUT);
        assert_eq!(
            read.len(),
            written,
            "the consumer read {} of the {written} records acknowledged in round {rounds}, \
             {} ms into the quorum loss",
            read.len(),
            lost_at.elapsed().as_millis()
        );
        for consumed in read {
            let value = consumed
                .value
                .map(|value| String::from_utf8_lossy(&value).into_owned());
            let position = (consumed.partition, consumed.offset);
            assert_eq!(
                expected.get(&position).map(|(_, value)| value),
                value.as_ref(),
                "round {rounds}: the consumer read {value:?} at {position:?}"
            );
        }
        rounds += 1;
        thread::sleep(ROUND_PAUSE);
    }
    eprintln!(
        "{rounds} rounds of acks=all writes and reads acknowledged and read back over {} ms \
         without a quorum",
        lost_at.elapsed().as_millis()
    );
    let quorum_answer = quorum_probe.join().expect("DescribeQuorum thread");
    eprintln!("DescribeQuorum through node {first} without a quorum: {quorum_answer:?}");
    match quorum_answer {
        Ok(code) if code != 0 => {}
        other => panic!(
            "node {first} answered DescribeQuorum with {other:?} while voters {lost:?} were \
             down: the quorum was not lost, or the broker did not answer"
        ),
    }
    // Nothing could change the ISR: the leaders still lead with both replicas in sync.
    wait_for_replicas(
        &cluster,
        &survivors,
        topic,
        DATA_TIMEOUT,
        &format!("leaders {leaders:?} and ISR {isr:?} unchanged without a quorum"),
        |view| led_with_isr(view, &leaders, &isr),
    );
    // A client that only now bootstraps at the survivors reads everything.
    let read = read_positions(&survivors_bootstrap, topic, PARTITIONS, expected.len(), &[]);
    assert_eq!(
        read, expected,
        "{topic} read by a new consumer without a quorum"
    );

    let restarted_at = Instant::now();
    for node_id in &lost {
        cluster.restart(*node_id);
    }
    for node_id in &node_ids {
        wait_for_full_view(&cluster, *node_id, MEMBERSHIP_TIMEOUT);
    }
    let new_controller = agreed_controller(&cluster, &node_ids, "a voter as controller", is_voter);
    // The new controller starts every broker session afresh: the broker-only nodes, which
    // kept heartbeating, are not fenced and keep their leaderships, in the same epochs.
    wait_for_replicas(
        &cluster,
        &node_ids,
        topic,
        DATA_TIMEOUT,
        &format!("leaders {leaders:?} and ISR {isr:?} after the quorum returned"),
        |view| led_with_isr(view, &leaders, &isr),
    );
    for node_id in &node_ids {
        assert_eq!(
            leader_epochs(&cluster.bootstrap(*node_id), topic),
            epochs,
            "{topic}'s leader epochs through node {node_id} after the quorum returned: a \
             leadership changed (fenced and unfenced?) though its brokers never stopped"
        );
    }
    eprintln!(
        "quorum back with controller {new_controller} {} ms after the restarts began",
        restarted_at.elapsed().as_millis()
    );
    let created = "created-after-the-quorum-returned";
    create(
        &cluster.bootstrap(first),
        &NewTopic::new(created, 1, TopicReplication::Fixed(3)),
    );
    for partition in 0..PARTITIONS {
        let after = values(&format!("p{partition}-after"), RECORDS);
        produce_acknowledged(
            &all_acks,
            topic,
            partition,
            &after,
            &mut expected,
            "acks=all",
        );
    }
    drop((all_acks, reader));

    let read = read_positions(
        &cluster.bootstrap_all(),
        topic,
        PARTITIONS,
        expected.len(),
        &[],
    );
    assert_eq!(
        read, expected,
        "{topic}: everything acknowledged, at its offsets"
    );
    assert_replicas_identical(&cluster, topic, PARTITIONS);
    cluster.assert_no_node_panicked();
}
