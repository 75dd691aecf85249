//! min.insync.replicas as a producer sees it: with min.insync.replicas 3 and a follower
//! killed, the ISR shrinks to two and the leader refuses acks=all (NOT_ENOUGH_REPLICAS)
//! while still taking acks=1; once the follower is restarted and back in the ISR, acks=all
//! is accepted again. Everything acknowledged is read back at its offset, and the refused
//! record is not there.

use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::replica_logs::assert_replicas_identical;
use super::{
    assert_no_node_panicked, bootstrap_of, create_replicated_topic, isr_holds_all, others,
    produce_one, wait_for_replicas, REJOIN_TIMEOUT,
};
use crate::common::{producer, record, send, wait_for_successful_deliveries};
use crate::{read_positions, serial, three_voters_with, Positions, DATA_TIMEOUT};

/// How long the ISR may take to drop a killed follower (fencing after 3 s, or the lag
/// time the test sets).
const ISR_SHRINK_TIMEOUT: Duration = Duration::from_secs(30);

/// Produces `records` records (key = value = `<prefix>-<id>`) to partition 0 of `topic`
/// through a default (acks=all) producer bootstrapped at `bootstrap`, waits for every one
/// to be acknowledged and notes each at its position in `expected`.
fn produce_acknowledged(
    bootstrap: &str,
    topic: &str,
    prefix: &str,
    records: usize,
    expected: &mut Positions,
) {
    let all_acks = producer(bootstrap, &[]);
    for id in 0..records {
        let value = format!("{prefix}-{id}");
        send(
            &all_acks,
            record(topic, id, value.as_bytes(), value.as_bytes()).partition(0),
        );
    }
    let placed = wait_for_successful_deliveries(&all_acks, records, DATA_TIMEOUT);
    for (id, position) in placed.into_iter().enumerate() {
        insert_acked(expected, format!("{prefix}-{id}"), position);
    }
}

/// Notes an acknowledged record (key = value) at its position.
fn insert_acked(expected: &mut Positions, value: String, position: (i32, i64)) {
    let previous = expected.insert(position, (Some(value.clone()), value));
    assert!(
        previous.is_none(),
        "two records acknowledged at {position:?}"
    );
}

#[test]
fn min_insync_replicas_refuses_acks_all_when_isr_too_small() {
    const RECORDS: usize = 10;
    let _serial = serial();
    let mut cluster = three_voters_with(&["--replica-lag-time-max-ms", "2000"]);
    let node_ids = cluster.node_ids();
    let topic = "min-insync-three";
    create_replicated_topic(
        &cluster.bootstrap(0),
        topic,
        1,
        3,
        &[("min.insync.replicas", "3")],
    );
    let replicas = wait_for_replicas(
        &cluster,
        &node_ids,
        topic,
        DATA_TIMEOUT,
        "three replicas, all in sync",
        |replicas| isr_holds_all(replicas, &node_ids),
    );
    let leader = replicas[&0].leader;
    let follower = node_ids
        .iter()
        .copied()
        .find(|id| *id != leader)
        .expect("a follower");
    let survivors = others(&cluster, follower);

    let mut expected = Positions::new();
    produce_acknowledged(
        &cluster.bootstrap_all(),
        topic,
        "before",
        RECORDS,
        &mut expected,
    );

    cluster.kill9(follower);
    let killed_at = Instant::now();
    wait_for_replicas(
        &cluster,
        &survivors,
        topic,
        ISR_SHRINK_TIMEOUT,
        &format!("an ISR of two without the killed follower {follower}"),
        |replicas| {
            replicas
                .get(&0)
                .is_some_and(|state| state.isr == survivors && state.leader == leader)
        },
    );
    eprintln!(
        "ISR shrank to {survivors:?} {} ms after kill -9 of follower {follower}",
        killed_at.elapsed().as_millis()
    );

    // No retries: librdkafka retries NOT_ENOUGH_REPLICAS, which would end in a timeout.
    let survivors_bootstrap = bootstrap_of(&cluster, &survivors);
    let strict = producer(
        &survivors_bootstrap,
        &[
            ("acks", "all"),
            ("retries", "0"),
            ("enable.idempotence", "false"),
        ],
    );
    let refused = produce_one(&strict, topic, "refused-acks-all");
    match &refused {
        Err(KafkaError::MessageProduction(RDKafkaErrorCode::NotEnoughReplicas)) => {}
        other => panic!(
            "acks=all with an ISR of 2 < min.insync.replicas 3 answered {other:?}, expected \
             NotEnoughReplicas"
        ),
    }
    let leader_only = producer(&survivors_bootstrap, &[("acks", "1")]);
    let value = "acks-1-while-isr-2".to_string();
    let position = produce_one(&leader_only, topic, &value)
        .unwrap_or_else(|error| panic!("acks=1 with an ISR of 2 failed: {error}"));
    insert_acked(&mut expected, value, position);

    cluster.restart(follower);
    let restarted_at = Instant::now();
    wait_for_replicas(
        &cluster,
        &node_ids,
        topic,
        REJOIN_TIMEOUT,
        &format!("the restarted follower {follower} back in the ISR"),
        |replicas| isr_holds_all(replicas, &node_ids),
    );
    eprintln!(
        "follower {follower} back in the ISR {} ms after its restart",
        restarted_at.elapsed().as_millis()
    );
    produce_acknowledged(
        &cluster.bootstrap_all(),
        topic,
        "after",
        RECORDS,
        &mut expected,
    );

    let read = read_positions(&cluster.bootstrap_all(), topic, 1, expected.len(), &[]);
    assert_eq!(
        read, expected,
        "{topic}: everything acknowledged, at its offsets, and not the refused record"
    );
    assert_replicas_identical(&cluster, topic, 1);
    assert_no_node_panicked(&cluster);
}
