//! A consumer group built from hand-made ConsumerGroupHeartbeat v1 requests, met by every
//! API that checks a member epoch or sees the group's type (KIP-848), and a heartbeat for
//! a classic group, which Kafka without online migration refuses.

use std::collections::BTreeSet;

use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ConsumerGroupHeartbeatRequest, DescribeGroupsRequest, SyncGroupRequest,
};

use crate::member::{new_member_id, RawMember};
use crate::requests::*;
use crate::wire::call;
use crate::*;

#[test]
fn consumer_group_member_epochs_are_checked_by_every_group_api() {
    let target = Target::start();
    let mut stream = target.connect();
    let group = fresh_name("kip848-group");
    let topic = fresh_name("kip848-topic");
    find_coordinator(&mut stream, &group);
    create_topic(&mut stream, &topic);

    let mut member = RawMember::join(&mut stream, &group, &topic);
    crate::member::settle(&mut stream, std::slice::from_mut(&mut member));
    assert_eq!(
        member.partitions(),
        (0..PARTITIONS).collect::<BTreeSet<_>>()
    );

    // A heartbeat at an epoch the coordinator never gave is fenced; the member stays.
    let wrong = call(
        &mut stream,
        HEARTBEAT_VERSION,
        &member.request(member.epoch + 5),
    );
    assert_eq!(wrong.error_code, FENCED_MEMBER_EPOCH, "{wrong:?}");
    // A member id the group does not know, at an epoch above 0.
    let stranger = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(group_id(&group))
        .with_member_id(text(&new_member_id()))
        .with_member_epoch(1)
        .with_rebalance_timeout_ms(-1);
    let unknown = call(&mut stream, HEARTBEAT_VERSION, &stranger);
    assert_eq!(unknown.error_code, UNKNOWN_MEMBER_ID, "{unknown:?}");
    member.heartbeat(&mut stream);

    // OffsetCommit v9 carries the member epoch: only the current one commits.
    let offsets: Vec<(i32, i64)> = (0..PARTITIONS).map(|p| (p, 10 + i64::from(p))).collect();
    let stale = commit_v9(
        &mut stream,
        &group,
        &member.id,
        member.epoch + 1,
        &topic,
        &offsets,
    );
    assert!(
        stale.iter().all(|(_, code)| *code == STALE_MEMBER_EPOCH),
        "{stale:?}"
    );
    let current = commit_v9(
        &mut stream,
        &group,
        &member.id,
        member.epoch,
        &topic,
        &offsets,
    );
    assert!(current.iter().all(|(_, code)| *code == NONE), "{current:?}");

    // OffsetFetch v9 as the member: a stale epoch is refused, the current one reads.
    let stale_fetch = fetch_v9(
        &mut stream,
        &group,
        Some((&member.id, member.epoch + 1)),
        &topic,
    );
    assert_eq!(
        stale_fetch.error_code, STALE_MEMBER_EPOCH,
        "{stale_fetch:?}"
    );
    let fetched = fetch_v9(
        &mut stream,
        &group,
        Some((&member.id, member.epoch)),
        &topic,
    );
    assert_eq!(fetched.error_code, NONE, "{fetched:?}");
    assert_eq!(fetched_offsets(&fetched), offsets);

    // ListGroups v5 knows the group's type; DescribeGroups is for classic groups only.
    let listed = list_groups_v5(&mut stream);
    let entry = listed.iter().find(|(id, _, _)| *id == group);
    assert_eq!(
        entry.map(|(_, kind, state)| (kind.as_str(), state.as_str())),
        Some(("consumer", "Stable")),
        "{listed:?}"
    );
    let classic_view = call(
        &mut stream,
        6,
        &DescribeGroupsRequest::default().with_groups(vec![group_id(&group)]),
    );
    let described = &classic_view.groups[0];
    assert_eq!(described.error_code, GROUP_ID_NOT_FOUND, "{described:?}");
    assert_eq!(
        described.error_message.as_deref(),
        Some(format!("Group {group} is not a classic group.").as_str())
    );

    // ConsumerGroupDescribe shows the epochs and the assignment.
    let view = describe_consumer_group(&mut stream, &group);
    assert_eq!(view.error_code, NONE, "{view:?}");
    assert_eq!(view.group_state.as_str(), "Stable");
    assert_eq!(view.group_epoch, member.epoch);
    assert_eq!(view.assignment_epoch, member.epoch);
    assert_eq!(view.members.len(), 1);
    let described_member = &view.members[0];
    assert_eq!(described_member.member_id.as_str(), member.id);
    assert_eq!(described_member.member_epoch, member.epoch);
    assert_eq!(described_member.client_id.as_str(), CLIENT_ID);
    let assigned = &described_member.assignment.topic_partitions;
    assert_eq!(assigned.len(), 1, "{assigned:?}");
    assert_eq!(assigned[0].topic_name.0.as_str(), topic);
    assert_eq!(assigned[0].topic_id, member.owned[0].0);
    let mut partitions = assigned[0].partitions.clone();
    partitions.sort_unstable();
    assert_eq!(partitions, (0..PARTITIONS).collect::<Vec<_>>());

    // A classic consumer may not join a consumer group that has members.
    let classic = join_group_v9(&mut stream, &group, "", &topic);
    assert_eq!(
        classic.error_code, INCONSISTENT_GROUP_PROTOCOL,
        "{classic:?}"
    );
    // Nor may the group be deleted while it has one.
    assert_eq!(delete_group(&mut stream, &group), NON_EMPTY_GROUP);

    // Once the member left, the group and its offsets can go.
    member.leave(&mut stream);
    assert_eq!(delete_group(&mut stream, &group), NONE);
    let listed = list_groups_v5(&mut stream);
    assert!(listed.iter().all(|(id, _, _)| *id != group), "{listed:?}");
    let after = fetch_v9(&mut stream, &group, None, &topic);
    assert_eq!(after.error_code, NONE, "{after:?}");
    let none_committed: Vec<(i32, i64)> = (0..PARTITIONS).map(|p| (p, -1)).collect();
    assert_eq!(fetched_offsets(&after), none_committed);
}

#[test]
fn heartbeat_for_a_classic_group_with_members_is_group_id_not_found() {
    let target = Target::start();
    let mut stream = target.connect();
    let group = fresh_name("classic-group");
    let topic = fresh_name("classic-topic");
    find_coordinator(&mut stream, &group);
    create_topic(&mut stream, &topic);

    // A classic member, joined (KIP-394 member id round trip) and synced: group Stable.
    let first = join_group_v9(&mut stream, &group, "", &topic);
    assert_eq!(first.error_code, MEMBER_ID_REQUIRED, "{first:?}");
    let member_id = first.member_id.to_string();
    let joined = join_group_v9(&mut stream, &group, &member_id, &topic);
    assert_eq!(joined.error_code, NONE, "{joined:?}");
    let sync = SyncGroupRequest::default()
        .with_group_id(group_id(&group))
        .with_generation_id(joined.generation_id)
        .with_member_id(text(&member_id))
        .with_protocol_type(Some(text("consumer")))
        .with_protocol_name(Some(text("range")))
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(text(&member_id))
            .with_assignment(bytes::Bytes::new())]);
    let synced = call(&mut stream, 5, &sync);
    assert_eq!(synced.error_code, NONE, "{synced:?}");

    let join = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(group_id(&group))
        .with_member_id(text(&new_member_id()))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(REBALANCE_TIMEOUT_MS)
        .with_subscribed_topic_names(Some(vec![topic_name(&topic)]))
        .with_topic_partitions(Some(Vec::new()));
    let refused = call(&mut stream, HEARTBEAT_VERSION, &join);
    assert_eq!(refused.error_code, GROUP_ID_NOT_FOUND, "{refused:?}");
    // Kafka 4.4's words with group.consumer.migration.policy=disabled.
    let message = refused.error_message.as_deref().unwrap_or_default();
    assert_eq!(
        message,
        format!(
            "Cannot upgrade classic group {group} to consumer group because online upgrade is disabled."
        ),
        "{refused:?}"
    );
}
