//! Errors as Kafka gives them for OffsetCommit (metadata too large, unknown topic, unknown
//! group by version, member and generation checks by group state), standalone commits,
//! and for DeleteGroups and OffsetDelete (KIP-496).

use std::net::TcpStream;

use bytes::Bytes;
use kafka_protocol::messages::*;

use crate::common::wire::connect;
use crate::common::Broker;
use crate::flows::{
    create_topic, delete_groups, fetch_offsets, find_group_coordinator, heartbeat, join_new_member,
    offset_delete, stable_single_member_group,
};
use crate::requests::{
    commit_errors, commit_request, consumer_subscription, group_id, join_request,
    offset_delete_errors, sync_request, text,
};
use crate::wire::call;
use crate::{
    BROKER_FLAGS, GROUP_ID_NOT_FOUND, GROUP_SUBSCRIBED_TO_TOPIC, ILLEGAL_GENERATION,
    INCONSISTENT_GROUP_PROTOCOL, NONE, NON_EMPTY_GROUP, OFFSET_METADATA_MAX_BYTES,
    OFFSET_METADATA_TOO_LARGE, REBALANCE_IN_PROGRESS, SESSION_TIMEOUT_MS, UNKNOWN_MEMBER_ID,
    UNKNOWN_TOPIC_OR_PARTITION,
};

#[test]
fn offset_commit_errors_match_kafka() {
    let broker = Broker::start(2, BROKER_FLAGS);
    let mut stream = connect(&broker.bootstrap());
    create_topic(&mut stream, "ledger", 2);
    find_group_coordinator(&mut stream, "committer");
    let (member_id, generation_id) =
        stable_single_member_group(&mut stream, "committer", &["ledger"]);

    // Too long metadata fails only its own partition.
    let long_metadata = "m".repeat(OFFSET_METADATA_MAX_BYTES + 1);
    let response = call(
        &mut stream,
        8,
        &commit_request(
            8,
            "committer",
            generation_id,
            &member_id,
            "ledger",
            &[(0, 5, &long_metadata), (1, 6, "fits")],
        ),
    );
    assert_eq!(
        commit_errors(&response),
        vec![(0, OFFSET_METADATA_TOO_LARGE), (1, NONE)]
    );
    let (code, offsets) = fetch_offsets(&mut stream, "committer", "ledger", &[0, 1]);
    assert_eq!(code, NONE);
    assert_eq!(
        offsets,
        vec![
            (0, -1, String::new(), NONE),
            (1, 6, "fits".to_string(), NONE)
        ]
    );

    let response = call(
        &mut stream,
        8,
        &commit_request(
            8,
            "committer",
            generation_id,
            &member_id,
            "no-such-topic",
            &[(0, 1, "")],
        ),
    );
    assert_eq!(
        commit_errors(&response),
        vec![(0, UNKNOWN_TOPIC_OR_PARTITION)]
    );

    // A generation for a group that does not exist: Kafka answers ILLEGAL_GENERATION
    // before v9 (v9 is checked in its own test below).
    for version in 2..=8 {
        let response = call(
            &mut stream,
            version,
            &commit_request(version, "never-formed", 5, "ghost", "ledger", &[(0, 1, "")]),
        );
        assert_eq!(
            commit_errors(&response),
            vec![(0, ILLEGAL_GENERATION)],
            "OffsetCommit v{version} with generation 5 to an unknown group"
        );
    }

    // A standalone consumer (assign(), no group management): generation -1, no member.
    for version in [2, 9] {
        let group = format!("standalone-v{version}");
        let response = call(
            &mut stream,
            version,
            &commit_request(version, &group, -1, "", "ledger", &[(1, 42, "solo")]),
        );
        assert_eq!(
            commit_errors(&response),
            vec![(1, NONE)],
            "standalone OffsetCommit v{version}"
        );
        let (code, offsets) = fetch_offsets(&mut stream, &group, "ledger", &[1]);
        assert_eq!(code, NONE);
        assert_eq!(offsets, vec![(1, 42, "solo".to_string(), NONE)]);
    }
}

#[test]
fn offset_commit_v9_with_a_generation_to_an_unknown_group_is_group_id_not_found() {
    // Kafka 4's coordinator (OffsetMetadataManager.validateOffsetCommit): "Starting from
    // version 9 of the OffsetCommit API, we return GROUP_ID_NOT_FOUND if the group does
    // not exist"; older versions keep ILLEGAL_GENERATION.
    let broker = Broker::start(2, BROKER_FLAGS);
    let mut stream = connect(&broker.bootstrap());
    create_topic(&mut stream, "ledger", 1);
    find_group_coordinator(&mut stream, "never-formed");
    let response = call(
        &mut stream,
        9,
        &commit_request(9, "never-formed", 5, "ghost", "ledger", &[(0, 1, "")]),
    );
    assert_eq!(commit_errors(&response), vec![(0, GROUP_ID_NOT_FOUND)]);
}

#[test]
fn offset_commit_checks_member_generation_and_group_state() {
    // Kafka's ClassicGroup.validateOffsetCommit: the member and generation must match;
    // a commit without them is only taken while the group is Empty; a valid member in
    // CompletingRebalance is told REBALANCE_IN_PROGRESS.
    let broker = Broker::start(2, BROKER_FLAGS);
    let mut stream = connect(&broker.bootstrap());
    create_topic(&mut stream, "ledger", 1);
    find_group_coordinator(&mut stream, "checked");
    let joined = join_new_member(
        &mut stream,
        9,
        "checked",
        &consumer_subscription(&["ledger"]),
    );
    let member_id = joined.member_id.to_string();
    let generation_id = joined.generation_id;
    let commit = |stream: &mut TcpStream, generation_id: i32, member_id: &str| {
        let request = commit_request(
            8,
            "checked",
            generation_id,
            member_id,
            "ledger",
            &[(0, 1, "")],
        );
        commit_errors(&call(stream, 8, &request))
    };

    // Joined, not yet synced: CompletingRebalance. Heartbeats are fine meanwhile.
    assert_eq!(
        commit(&mut stream, generation_id, &member_id),
        vec![(0, REBALANCE_IN_PROGRESS)],
        "commit in CompletingRebalance"
    );
    assert_eq!(
        heartbeat(&mut stream, 4, "checked", generation_id, &member_id),
        NONE
    );

    let assignment = Bytes::from_static(b"a");
    let mismatched = sync_request(5, "checked", generation_id, &member_id, &[])
        .with_protocol_name(Some(text("roundrobin")));
    let synced = call(&mut stream, 5, &mismatched);
    assert_eq!(
        synced.error_code, INCONSISTENT_GROUP_PROTOCOL,
        "SyncGroup v5 naming another protocol"
    );
    let synced = call(
        &mut stream,
        5,
        &sync_request(
            5,
            "checked",
            generation_id,
            &member_id,
            &[(&member_id, &assignment)],
        ),
    );
    assert_eq!(synced.error_code, NONE);

    // Stable.
    assert_eq!(
        commit(&mut stream, generation_id, "ghost"),
        vec![(0, UNKNOWN_MEMBER_ID)]
    );
    assert_eq!(
        commit(&mut stream, generation_id + 1, &member_id),
        vec![(0, ILLEGAL_GENERATION)]
    );
    assert_eq!(
        commit(&mut stream, -1, ""),
        vec![(0, UNKNOWN_MEMBER_ID)],
        "a commit without member and generation while the group has members"
    );
    assert_eq!(
        commit(&mut stream, generation_id, &member_id),
        vec![(0, NONE)]
    );

    // Another protocol type cannot join a group with members.
    let mut connect_join = join_request(
        9,
        "checked",
        "",
        &Bytes::from_static(b"w"),
        SESSION_TIMEOUT_MS,
    );
    connect_join.protocol_type = text("connect");
    let refused = call(&mut stream, 9, &connect_join);
    assert_eq!(
        refused.error_code, INCONSISTENT_GROUP_PROTOCOL,
        "JoinGroup of another protocol type"
    );

    // Empty again: a standalone commit is taken, and OffsetFetch with null topics lists it.
    let left = call(
        &mut stream,
        1,
        &LeaveGroupRequest::default()
            .with_group_id(group_id("checked"))
            .with_member_id(text(&member_id)),
    );
    assert_eq!(left.error_code, NONE);
    let request = commit_request(8, "checked", -1, "", "ledger", &[(0, 9, "after")]);
    assert_eq!(
        commit_errors(&call(&mut stream, 8, &request)),
        vec![(0, NONE)]
    );
    for version in [2, 7] {
        let response = call(
            &mut stream,
            version,
            &OffsetFetchRequest::default()
                .with_group_id(group_id("checked"))
                .with_topics(None),
        );
        let all: Vec<(String, i32, i64)> = response
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.name.to_string(), p.partition_index, p.committed_offset))
            })
            .collect();
        assert_eq!(
            all,
            vec![("ledger".to_string(), 0, 9)],
            "OffsetFetch v{version} of all topics"
        );
    }
}

#[test]
fn group_and_offset_deletion_errors_match_kafka() {
    let broker = Broker::start(2, BROKER_FLAGS);
    let mut stream = connect(&broker.bootstrap());
    create_topic(&mut stream, "subscribed", 1);
    create_topic(&mut stream, "unsubscribed", 1);
    find_group_coordinator(&mut stream, "deleting");
    let (member_id, generation_id) =
        stable_single_member_group(&mut stream, "deleting", &["subscribed"]);
    for topic in ["subscribed", "unsubscribed"] {
        let response = call(
            &mut stream,
            8,
            &commit_request(
                8,
                "deleting",
                generation_id,
                &member_id,
                topic,
                &[(0, 3, "")],
            ),
        );
        assert_eq!(
            commit_errors(&response),
            vec![(0, NONE)],
            "commit to {topic}"
        );
    }

    for version in 0..=2 {
        assert_eq!(
            delete_groups(&mut stream, version, &["deleting", "no-such-group"]),
            vec![
                ("deleting".to_string(), NON_EMPTY_GROUP),
                ("no-such-group".to_string(), GROUP_ID_NOT_FOUND)
            ],
            "DeleteGroups v{version}"
        );
    }

    // KIP-496: a Stable consumer group keeps the offsets of topics it subscribes to.
    let response = offset_delete(
        &mut stream,
        "deleting",
        &[("subscribed", &[0]), ("unsubscribed", &[0])],
    );
    assert_eq!(response.error_code, NONE, "OffsetDelete: {response:?}");
    assert_eq!(
        offset_delete_errors(&response),
        vec![
            ("subscribed".to_string(), 0, GROUP_SUBSCRIBED_TO_TOPIC),
            ("unsubscribed".to_string(), 0, NONE)
        ]
    );
    let (_, offsets) = fetch_offsets(&mut stream, "deleting", "subscribed", &[0]);
    assert_eq!(offsets[0].1, 3, "subscribed topic's offset kept");
    let (_, offsets) = fetch_offsets(&mut stream, "deleting", "unsubscribed", &[0]);
    assert_eq!(offsets[0].1, -1, "unsubscribed topic's offset deleted");

    let response = offset_delete(&mut stream, "no-such-group", &[("subscribed", &[0])]);
    assert_eq!(
        response.error_code, GROUP_ID_NOT_FOUND,
        "OffsetDelete of an unknown group"
    );
}
