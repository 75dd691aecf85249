//! Waiting on the group coordinator's clocks and rounds: a silent member is removed after
//! its session timeout (not before), and a join round waits until every known member has
//! rejoined before answering anyone.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::*;

use crate::common::wire::connect;
use crate::common::{poll_until, Broker};
use crate::flows::{describe_group, find_group_coordinator, heartbeat, stable_single_member_group};
use crate::requests::{consumer_subscription, join_request, sync_request};
use crate::wire::{call, receive, send};
use crate::{
    BROKER_FLAGS, MEMBER_ID_REQUIRED, MIN_SESSION_TIMEOUT_MS, NONE, REBALANCE_IN_PROGRESS,
    SESSION_TIMEOUT_MS, UNKNOWN_MEMBER_ID,
};

#[test]
fn silent_member_is_removed_after_its_session_timeout() {
    let broker = Broker::start(2, BROKER_FLAGS);
    let mut stream = connect(&broker.bootstrap());
    find_group_coordinator(&mut stream, "silent");
    let subscription = consumer_subscription(&["orders"]);
    let first = call(
        &mut stream,
        9,
        &join_request(9, "silent", "", &subscription, MIN_SESSION_TIMEOUT_MS),
    );
    let member_id = first.member_id.to_string();
    let joined = call(
        &mut stream,
        9,
        &join_request(
            9,
            "silent",
            &member_id,
            &subscription,
            MIN_SESSION_TIMEOUT_MS,
        ),
    );
    assert_eq!(joined.error_code, NONE);
    let assignment = Bytes::from_static(b"a");
    let synced = call(
        &mut stream,
        5,
        &sync_request(
            5,
            "silent",
            joined.generation_id,
            &member_id,
            &[(&member_id, &assignment)],
        ),
    );
    assert_eq!(synced.error_code, NONE);
    let last_heard = Instant::now();
    assert_eq!(
        describe_group(&mut stream, 5, "silent")
            .group_state
            .as_str(),
        "Stable"
    );

    poll_until(Duration::from_secs(15), "silent member removed", || {
        let described = describe_group(&mut stream, 5, "silent");
        (described.group_state.as_str() == "Empty" && described.members.is_empty()).then_some(())
    });
    let waited = last_heard.elapsed();
    assert!(
        waited >= Duration::from_millis(5_000),
        "member removed after {waited:?}, before its {MIN_SESSION_TIMEOUT_MS} ms session timeout"
    );
    assert_eq!(
        heartbeat(&mut stream, 4, "silent", joined.generation_id, &member_id),
        UNKNOWN_MEMBER_ID,
        "heartbeat of the expired member"
    );
}

#[test]
fn join_round_waits_until_every_member_rejoins() {
    let broker = Broker::start(2, BROKER_FLAGS);
    let mut first = connect(&broker.bootstrap());
    let mut second = connect(&broker.bootstrap());
    find_group_coordinator(&mut first, "waiting");
    let subscription = consumer_subscription(&["orders"]);

    // Round 1: the first member alone and Stable, then the second joins, the first
    // learns it by heartbeat and rejoins.
    let (first_id, first_generation) =
        stable_single_member_group(&mut first, "waiting", &["orders"]);
    let step = call(
        &mut second,
        9,
        &join_request(9, "waiting", "", &subscription, SESSION_TIMEOUT_MS),
    );
    assert_eq!(step.error_code, MEMBER_ID_REQUIRED);
    let second_id = step.member_id.to_string();
    let second_join = send(
        &mut second,
        9,
        &join_request(9, "waiting", &second_id, &subscription, SESSION_TIMEOUT_MS),
    );
    poll_until(
        Duration::from_secs(5),
        "first member told to rejoin",
        || {
            let code = heartbeat(&mut first, 4, "waiting", first_generation, &first_id);
            (code == REBALANCE_IN_PROGRESS).then_some(())
        },
    );
    let rejoined = call(
        &mut first,
        9,
        &join_request(9, "waiting", &first_id, &subscription, SESSION_TIMEOUT_MS),
    );
    let second_joined = receive::<JoinGroupRequest>(&mut second, 9, second_join)
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(
        (rejoined.error_code, second_joined.error_code),
        (NONE, NONE)
    );
    let generation_id = rejoined.generation_id;
    assert_eq!(generation_id, first_generation + 1);
    assert_eq!(second_joined.generation_id, generation_id);
    let leader = rejoined.leader.to_string();
    assert_eq!(rejoined.members.len(), 2, "the leader sees both members");

    // Sync: the follower waits for the leader's assignment.
    let (leader_stream, follower_stream, leader_id, follower_id) = if leader == first_id {
        (&mut first, &mut second, first_id.clone(), second_id.clone())
    } else {
        (&mut second, &mut first, second_id.clone(), first_id.clone())
    };
    let follower_assignment = Bytes::from_static(b"follower");
    let leader_assignment = Bytes::from_static(b"leader");
    let follower_sync = send(
        follower_stream,
        5,
        &sync_request(5, "waiting", generation_id, &follower_id, &[]),
    );
    let synced = call(
        leader_stream,
        5,
        &sync_request(
            5,
            "waiting",
            generation_id,
            &leader_id,
            &[
                (&leader_id, &leader_assignment),
                (&follower_id, &follower_assignment),
            ],
        ),
    );
    assert_eq!(synced.error_code, NONE);
    assert_eq!(synced.assignment, leader_assignment);
    let followed = receive::<SyncGroupRequest>(follower_stream, 5, follower_sync)
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(followed.error_code, NONE);
    assert_eq!(followed.assignment, follower_assignment);

    // Round 2: the first member's JoinGroup waits for the second to rejoin.
    let mut waiting_stream = first.try_clone().expect("clone socket");
    let (answer_sender, answer_receiver) = mpsc::channel();
    let rejoin = join_request(9, "waiting", &first_id, &subscription, SESSION_TIMEOUT_MS);
    let waiter = thread::spawn(move || {
        let answer = call(&mut waiting_stream, 9, &rejoin);
        let _ = answer_sender.send(answer);
    });
    assert!(
        answer_receiver
            .recv_timeout(Duration::from_secs(1))
            .is_err(),
        "JoinGroup answered before the other member rejoined"
    );
    poll_until(
        Duration::from_secs(5),
        "second member told to rejoin",
        || {
            let code = heartbeat(&mut second, 4, "waiting", generation_id, &second_id);
            (code == REBALANCE_IN_PROGRESS).then_some(())
        },
    );
    assert!(
        answer_receiver.try_recv().is_err(),
        "JoinGroup answered before the other member rejoined"
    );
    let second_rejoined = call(
        &mut second,
        9,
        &join_request(9, "waiting", &second_id, &subscription, SESSION_TIMEOUT_MS),
    );
    let first_rejoined = answer_receiver
        .recv_timeout(Duration::from_secs(10))
        .expect("the waiting JoinGroup is answered once every member rejoined");
    waiter.join().expect("join thread");
    assert_eq!(
        (first_rejoined.error_code, second_rejoined.error_code),
        (NONE, NONE)
    );
    assert_eq!(first_rejoined.generation_id, generation_id + 1);
    assert_eq!(second_rejoined.generation_id, generation_id + 1);
    let leader_answer = if first_rejoined.leader.as_str() == first_id {
        &first_rejoined
    } else {
        &second_rejoined
    };
    assert_eq!(
        leader_answer.members.len(),
        2,
        "both members in the new generation"
    );
}
