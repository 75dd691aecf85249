//! Errors as Kafka gives them for JoinGroup, SyncGroup and Heartbeat (invalid group id and
//! session timeout, unknown member, wrong generation, a rebalance learnt by heartbeat),
//! for oversized join metadata, and for FindCoordinator key types and the internal
//! offsets topic.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::*;

use crate::common::wire::{
    connect, frame, parse_produce_response_v3, produce_request_v3, read_frame, record_batch_v2,
    write_lenient,
};
use crate::common::{poll_until, Broker};
use crate::flows::{create_topic, find_group_coordinator, heartbeat, stable_single_member_group};
use crate::requests::{consumer_subscription, join_request, sync_request, text};
use crate::wire::{call, receive, send};
use crate::{
    BROKER_FLAGS, ILLEGAL_GENERATION, INVALID_GROUP_ID, INVALID_REQUEST, INVALID_SESSION_TIMEOUT,
    INVALID_TOPIC_EXCEPTION, MEMBER_ID_REQUIRED, MIN_SESSION_TIMEOUT_MS, NONE, OFFSETS_TOPIC,
    OFFSETS_TOPIC_PARTITIONS, REBALANCE_IN_PROGRESS, SESSION_TIMEOUT_MS, UNKNOWN_MEMBER_ID,
};

#[test]
fn join_sync_and_heartbeat_errors_match_kafka() {
    let broker = Broker::start(2, BROKER_FLAGS);
    let mut stream = connect(&broker.bootstrap());
    find_group_coordinator(&mut stream, "errors");
    let subscription = consumer_subscription(&["orders"]);

    for version in [0, 4, 9] {
        let response = call(
            &mut stream,
            version,
            &join_request(version, "", "", &subscription, SESSION_TIMEOUT_MS),
        );
        assert_eq!(
            response.error_code, INVALID_GROUP_ID,
            "JoinGroup v{version} empty group id"
        );
    }
    for session_timeout_ms in [MIN_SESSION_TIMEOUT_MS - 1, 1_800_001] {
        for version in [0, 9] {
            let response = call(
                &mut stream,
                version,
                &join_request(version, "errors", "", &subscription, session_timeout_ms),
            );
            assert_eq!(
                response.error_code, INVALID_SESSION_TIMEOUT,
                "JoinGroup v{version} with session timeout {session_timeout_ms}"
            );
        }
    }

    let (member_id, generation_id) = stable_single_member_group(&mut stream, "errors", &["orders"]);
    assert_eq!(
        heartbeat(&mut stream, 4, "errors", generation_id, "nobody"),
        UNKNOWN_MEMBER_ID,
        "Heartbeat of an unknown member"
    );
    let assignment = Bytes::from_static(b"x");
    let synced = call(
        &mut stream,
        5,
        &sync_request(
            5,
            "errors",
            generation_id,
            "nobody",
            &[("nobody", &assignment)],
        ),
    );
    assert_eq!(
        synced.error_code, UNKNOWN_MEMBER_ID,
        "SyncGroup of an unknown member"
    );
    assert_eq!(
        heartbeat(&mut stream, 4, "errors", generation_id + 1, &member_id),
        ILLEGAL_GENERATION,
        "Heartbeat with a wrong generation"
    );
    let synced = call(
        &mut stream,
        5,
        &sync_request(5, "errors", generation_id + 1, &member_id, &[]),
    );
    assert_eq!(
        synced.error_code, ILLEGAL_GENERATION,
        "SyncGroup with a wrong generation"
    );
    assert_eq!(
        heartbeat(&mut stream, 4, "errors", generation_id, &member_id),
        NONE
    );

    // A second member joins: the group rebalances, and the first learns it by heartbeat.
    let mut second = connect(&broker.bootstrap());
    let first_try = call(
        &mut second,
        9,
        &join_request(9, "errors", "", &subscription, SESSION_TIMEOUT_MS),
    );
    assert_eq!(first_try.error_code, MEMBER_ID_REQUIRED);
    let second_id = first_try.member_id.to_string();
    let pending_join = send(
        &mut second,
        9,
        &join_request(9, "errors", &second_id, &subscription, SESSION_TIMEOUT_MS),
    );
    poll_until(
        Duration::from_secs(5),
        "first member told to rejoin",
        || {
            let code = heartbeat(&mut stream, 4, "errors", generation_id, &member_id);
            (code == REBALANCE_IN_PROGRESS).then_some(())
        },
    );
    // The first member rejoins; the round completes for both.
    let rejoined = call(
        &mut stream,
        9,
        &join_request(9, "errors", &member_id, &subscription, SESSION_TIMEOUT_MS),
    );
    assert_eq!(rejoined.error_code, NONE, "rejoin: {rejoined:?}");
    assert_eq!(rejoined.generation_id, generation_id + 1);
    let second_joined = receive::<JoinGroupRequest>(&mut second, 9, pending_join)
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(
        second_joined.error_code, NONE,
        "second join: {second_joined:?}"
    );
    assert_eq!(second_joined.generation_id, generation_id + 1);
}

#[test]
fn oversized_join_metadata_is_refused_and_broker_keeps_serving() {
    let mut broker = Broker::start(2, BROKER_FLAGS);
    let mut stream = connect(&broker.bootstrap());
    find_group_coordinator(&mut stream, "big");
    let huge = Bytes::from(vec![7u8; 2 * 1024 * 1024]);
    for version in [0, 9] {
        let response = call(
            &mut stream,
            version,
            &join_request(version, "big", "", &huge, SESSION_TIMEOUT_MS),
        );
        assert_eq!(
            response.error_code, INVALID_REQUEST,
            "JoinGroup v{version} with 2 MiB of metadata: {:?}",
            response.error_code
        );
    }
    broker.assert_alive();
    // The same connection and a new one still get served.
    let (member_id, generation_id) = stable_single_member_group(&mut stream, "big", &["orders"]);
    let mut other = connect(&broker.bootstrap());
    assert_eq!(
        heartbeat(&mut other, 4, "big", generation_id, &member_id),
        NONE
    );
}

#[test]
fn coordinator_key_types_and_the_offsets_topic_follow_kafka() {
    let broker = Broker::start(2, BROKER_FLAGS);
    let mut stream = connect(&broker.bootstrap());

    // Key type 1: a transactional id's coordinator is this broker too.
    let port = i32::from(broker.port());
    for version in 1..=3 {
        let response = call(
            &mut stream,
            version,
            &FindCoordinatorRequest::default()
                .with_key(text("a-transactional-id"))
                .with_key_type(1),
        );
        assert_eq!(
            (response.error_code, response.port),
            (NONE, port),
            "FindCoordinator v{version} for a transaction"
        );
    }
    let response = call(
        &mut stream,
        4,
        &FindCoordinatorRequest::default()
            .with_key_type(1)
            .with_coordinator_keys(vec![text("a-transactional-id")]),
    );
    let codes: Vec<(i16, i32)> = response
        .coordinators
        .iter()
        .map(|c| (c.error_code, c.port))
        .collect();
    assert_eq!(
        codes,
        vec![(NONE, port)],
        "FindCoordinator v4 for a transaction"
    );

    create_topic(&mut stream, "plain", 1);
    find_group_coordinator(&mut stream, "any-group");
    for version in [1, 12] {
        let response = call(
            &mut stream,
            version,
            &MetadataRequest::default().with_topics(None),
        );
        let topic = |name: &str| {
            response
                .topics
                .iter()
                .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == name))
                .unwrap_or_else(|| panic!("Metadata v{version} lacks {name}: {response:?}"))
        };
        let offsets = topic(OFFSETS_TOPIC);
        assert!(
            offsets.is_internal,
            "Metadata v{version}: {OFFSETS_TOPIC} is internal"
        );
        assert_eq!(offsets.partitions.len(), OFFSETS_TOPIC_PARTITIONS);
        assert!(
            !topic("plain").is_internal,
            "Metadata v{version}: plain is not internal"
        );
    }

    // Clients may not write to the internal topic (Kafka: "Cannot append to internal topic").
    let batch = record_batch_v2(&[(b"k".as_slice(), b"v".as_slice())], 1_700_000_000_000);
    write_lenient(
        &mut stream,
        &frame(&produce_request_v3(77, OFFSETS_TOPIC, 0, 1, &batch)),
    );
    let payload = read_frame(&mut stream).unwrap_or_else(|error| panic!("Produce: {error}"));
    let (code, _) = parse_produce_response_v3(&payload, 77);
    assert_eq!(code, INVALID_TOPIC_EXCEPTION, "Produce to {OFFSETS_TOPIC}");
}
