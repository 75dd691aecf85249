//! A consumer group lives in `__consumer_offsets` (KIP-848's records): after a restart the
//! coordinator replays the same group epoch, members, member epochs and assignments, the
//! members keep heartbeating at their epochs, and a member that goes silent is still
//! removed by its session timeout, its partitions moving to the member that stayed.

use std::collections::BTreeSet;
use std::thread;
use std::time::{Duration, Instant};

use kafka_protocol::messages::consumer_group_describe_response::DescribedGroup;

use crate::common::Broker;
use crate::member::{settle, RawMember};
use crate::requests::*;
use crate::*;

/// Short session so expiry is seen quickly; the interval is Kafka's rule (below it).
const SESSION_TIMEOUT_MS: u64 = 3_000;
const PERSISTENCE_FLAGS: &[&str] = &[
    "--group-initial-rebalance-delay-ms",
    "0",
    "--group-consumer-session-timeout-ms",
    "3000",
    "--group-consumer-heartbeat-interval-ms",
    "1000",
];

/// `(member id, member epoch, sorted assigned partitions)`.
type MemberDigest = (String, i32, Vec<i32>);

/// What a restart must keep of a described group: group epoch, assignment epoch, and its
/// members sorted by id.
fn digest(group: &DescribedGroup) -> (i32, i32, Vec<MemberDigest>) {
    assert_eq!(group.error_code, NONE, "{group:?}");
    let mut members: Vec<MemberDigest> = group
        .members
        .iter()
        .map(|member| {
            let mut partitions: Vec<i32> = member
                .assignment
                .topic_partitions
                .iter()
                .flat_map(|topic| topic.partitions.iter().copied())
                .collect();
            partitions.sort_unstable();
            (
                member.member_id.to_string(),
                member.member_epoch,
                partitions,
            )
        })
        .collect();
    members.sort();
    (group.group_epoch, group.assignment_epoch, members)
}

#[test]
fn consumer_group_survives_restart_and_expires_a_silent_member() {
    let mut broker = Broker::start(2, PERSISTENCE_FLAGS);
    let mut stream = crate::common::wire::connect(&broker.bootstrap());
    let group = common::unique_topic("kip848-restart-group");
    let topic = common::unique_topic("kip848-restart-topic");
    find_coordinator(&mut stream, &group);
    create_topic(&mut stream, &topic);

    let first = RawMember::join(&mut stream, &group, &topic);
    let second = RawMember::join(&mut stream, &group, &topic);
    let mut members = [first, second];
    settle(&mut stream, &mut members);
    for member in &members {
        let offsets: Vec<(i32, i64)> = member
            .partitions()
            .iter()
            .map(|&p| (p, 100 + i64::from(p)))
            .collect();
        let errors = commit_v9(
            &mut stream,
            &group,
            &member.id,
            member.epoch,
            &topic,
            &offsets,
        );
        assert!(errors.iter().all(|(_, code)| *code == NONE), "{errors:?}");
    }
    let before = digest(&describe_consumer_group(&mut stream, &group));
    assert_eq!(before.2.len(), 2, "{before:?}");

    drop(stream);
    broker.restart();
    let mut stream = crate::common::wire::connect(&broker.bootstrap());
    find_coordinator(&mut stream, &group);
    let after = digest(&describe_consumer_group(&mut stream, &group));
    assert_eq!(after, before, "the group as replayed after the restart");

    // Both members go on at the epochs they had: no fencing, no new assignment.
    for member in members.iter_mut() {
        let (epoch, owned) = (member.epoch, member.partitions());
        member.heartbeat(&mut stream);
        assert_eq!((member.epoch, member.partitions()), (epoch, owned));
    }
    let committed = fetch_v9(
        &mut stream,
        &group,
        Some((&members[0].id, members[0].epoch)),
        &topic,
    );
    let expected: Vec<(i32, i64)> = (0..PARTITIONS).map(|p| (p, 100 + i64::from(p))).collect();
    assert_eq!(fetched_offsets(&committed), expected);

    // The second member stops; the first keeps heartbeating and, once the session of the
    // second expired, is given the whole topic.
    let [mut survivor, silent] = members;
    let all: BTreeSet<i32> = (0..PARTITIONS).collect();
    let deadline = Instant::now() + Duration::from_millis(SESSION_TIMEOUT_MS * 5);
    while survivor.partitions() != all {
        assert!(
            Instant::now() < deadline,
            "{} still owns {:?}, not the silent member's partitions\n{}",
            survivor.id,
            survivor.partitions(),
            broker.recent_log()
        );
        thread::sleep(Duration::from_millis(300));
        survivor.heartbeat(&mut stream);
    }
    let view = describe_consumer_group(&mut stream, &group);
    let left: Vec<&str> = view
        .members
        .iter()
        .map(|member| member.member_id.as_str())
        .collect();
    assert_eq!(left, vec![survivor.id.as_str()], "{} expired", silent.id);
    assert_eq!(view.members[0].member_epoch, survivor.epoch);
    assert!(
        survivor.epoch > after.0,
        "a new group epoch after the expiry"
    );
}
