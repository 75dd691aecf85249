//! Losing the active controller: after `kill -9` of the node Metadata names as controller,
//! topic creation through a survivor succeeds within a bound (the time it took is printed),
//! the survivors name a new controller, and the killed node, restarted on its data
//! directory, serves the partitions it leads with everything acknowledged before the kill.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::common::cluster_view::wait_for_full_view;
use crate::common::{
    admin, producer, record, send, try_create_topic, wait_for_successful_deliveries,
};
use crate::{
    agreed_controller, leaders_agreed_by, read_positions, serial, three_voters, Positions,
    DATA_TIMEOUT, MEMBERSHIP_TIMEOUT,
};

/// How long after the controller's death a CreateTopics through a survivor may take to
/// succeed: the killed broker's session (3 s) runs out, a new quorum leader is elected
/// (an election timeout of 1-2 s), and librdkafka finds it through Metadata.
const TAKEOVER_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound of one CreateTopics attempt, so a request that went to the dead controller is
/// given up on and retried well inside [`TAKEOVER_TIMEOUT`], and the measured take-over
/// time is not rounded up by much. An attempt that the new controller completes after this
/// shows up as TOPIC_ALREADY_EXISTS on the next one, which counts as success.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);

/// One CreateTopics attempt through a client bootstrapped at `bootstrap`: `Ok` when the
/// topic was created, else what went wrong (the whole request or the topic's code).
fn create_topic_attempt(bootstrap: &str, topic: &str, partitions: i32) -> Result<(), KafkaError> {
    let admin = admin(bootstrap);
    let options = AdminOptions::new()
        .request_timeout(Some(ATTEMPT_TIMEOUT))
        .operation_timeout(Some(ATTEMPT_TIMEOUT));
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let results = futures::executor::block_on(admin.create_topics([&new_topic], &options))?;
    match results.as_slice() {
        [Ok(_)] => Ok(()),
        [Err((_, code))] => Err(KafkaError::AdminOp(*code)),
        other => panic!(
            "CreateTopics {topic}: {} results for one topic",
            other.len()
        ),
    }
}

/// Whether a failed CreateTopics may succeed when retried while a controller takes over:
/// no controller yet (NOT_CONTROLLER, the request timing out at either end, no broker to
/// send it to). Anything else is an answer the test must not paper over.
fn retriable_during_takeover(error: &KafkaError) -> bool {
    use RDKafkaErrorCode::*;
    let KafkaError::AdminOp(code) = error else {
        return false;
    };
    matches!(
        code,
        NotController
            | RequestTimedOut
            | OperationTimedOut
            | BrokerNotAvailable
            | LeaderNotAvailable
            | NetworkException
            | AllBrokersDown
            | BrokerTransportFailure
    )
}

/// Retries CreateTopics through `bootstrap` until it succeeds; returns how long that took
/// from `since`. A topic found to exist after an attempt whose outcome was unknown (a
/// timeout) counts as created by that attempt, as Kafka's admin client treats it.
fn create_topic_during_takeover(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    since: Instant,
) -> Duration {
    let mut attempts: Vec<String> = Vec::new();
    let mut outcome_unknown = false;
    loop {
        let attempt_started = since.elapsed();
        let result = create_topic_attempt(bootstrap, topic, partitions);
        match result {
            Ok(()) => {
                eprintln!("CreateTopics {topic}: failed attempts before success: {attempts:#?}");
                return since.elapsed();
            }
            Err(KafkaError::AdminOp(RDKafkaErrorCode::TopicAlreadyExists)) if outcome_unknown => {
                eprintln!(
                    "CreateTopics {topic}: created by an attempt that timed out; \
                     failed attempts: {attempts:#?}"
                );
                return since.elapsed();
            }
            Err(error) => {
                attempts.push(format!("at {attempt_started:?}: {error}"));
                assert!(
                    retriable_during_takeover(&error),
                    "CreateTopics {topic} through {bootstrap} failed for good: {error}; \
                     attempts: {attempts:#?}"
                );
                outcome_unknown |= matches!(
                    error.rdkafka_error_code(),
                    Some(RDKafkaErrorCode::RequestTimedOut | RDKafkaErrorCode::OperationTimedOut)
                );
            }
        }
        assert!(
            since.elapsed() < TAKEOVER_TIMEOUT,
            "CreateTopics {topic} through {bootstrap} did not succeed within \
             {TAKEOVER_TIMEOUT:?} of the controller's death; attempts: {attempts:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn killed_controller_is_replaced_and_comes_back_with_its_partitions_and_data() {
    const PARTITIONS: i32 = 6;
    const RECORDS: usize = 120;
    let _serial = serial();
    let mut cluster = three_voters();
    let node_ids = cluster.node_ids();
    let old_controller = agreed_controller(&cluster, &node_ids, "a controller", |id| {
        node_ids.contains(&id)
    });
    let survivors: Vec<i32> = node_ids
        .iter()
        .copied()
        .filter(|id| *id != old_controller)
        .collect();

    let topic = "written-before-failover";
    if let Err(code) = try_create_topic(&cluster.bootstrap(survivors[0]), topic, PARTITIONS) {
        panic!("CreateTopics {topic}: {code:?}");
    }
    let leaders = leaders_agreed_by(&cluster, &node_ids, topic, PARTITIONS);
    let producer = producer(&cluster.bootstrap(survivors[0]), &[]);
    let values: Vec<String> = (0..RECORDS).map(|id| format!("before-kill-{id}")).collect();
    for (id, value) in values.iter().enumerate() {
        let partition = id as i32 % PARTITIONS;
        send(
            &producer,
            record(topic, id, value.as_bytes(), value.as_bytes()).partition(partition),
        );
    }
    let mut expected = Positions::new();
    let placed = wait_for_successful_deliveries(&producer, RECORDS, DATA_TIMEOUT);
    for (id, position) in placed.into_iter().enumerate() {
        expected.insert(position, (Some(values[id].clone()), values[id].clone()));
    }
    drop(producer);
    let on_victim = expected
        .keys()
        .filter(|(partition, _)| leaders[partition] == old_controller)
        .count();
    assert_eq!(on_victim, RECORDS / 3, "two of six partitions on each node");

    cluster.kill9(old_controller);
    let killed_at = Instant::now();
    let created_during_takeover = "created-after-failover";
    let created_after = create_topic_during_takeover(
        &cluster.bootstrap(survivors[0]),
        created_during_takeover,
        3,
        killed_at,
    );
    eprintln!(
        "CreateTopics through node {} succeeded {} ms after kill -9 of controller {old_controller}",
        survivors[0],
        created_after.as_millis()
    );
    let new_controller = agreed_controller(
        &cluster,
        &survivors,
        "a new controller among the survivors",
        |id| survivors.contains(&id),
    );
    eprintln!(
        "survivors {survivors:?} name controller {new_controller} {} ms after the kill",
        killed_at.elapsed().as_millis()
    );

    cluster.restart(old_controller);
    for node_id in &node_ids {
        wait_for_full_view(&cluster, *node_id, MEMBERSHIP_TIMEOUT);
    }
    leaders_agreed_by(&cluster, &node_ids, created_during_takeover, 3);
    // One replica per partition: the restarted node leads what it led before.
    let leaders_after = leaders_agreed_by(&cluster, &node_ids, topic, PARTITIONS);
    assert_eq!(
        leaders_after, leaders,
        "leaders of {topic} after the restart"
    );
    let victim_expected: Positions = expected
        .iter()
        .filter(|((partition, _), _)| leaders[partition] == old_controller)
        .map(|(position, record)| (*position, record.clone()))
        .collect();
    let read = read_positions(
        &cluster.bootstrap(survivors[1]),
        topic,
        PARTITIONS,
        RECORDS,
        &[],
    );
    let victim_read: Positions = read
        .iter()
        .filter(|((partition, _), _)| leaders[partition] == old_controller)
        .map(|(position, record)| (*position, record.clone()))
        .collect();
    assert_eq!(
        victim_read, victim_expected,
        "partitions led by the restarted node {old_controller}"
    );
    assert_eq!(read, expected, "every partition of {topic}");
}
