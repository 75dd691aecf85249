//! The small request/answer exchanges the tests repeat: find the coordinator, create a
//! topic, join as a new member (with KIP-394's member id round trip from JoinGroup v4),
//! form a Stable one-member group, heartbeat, fetch offsets, describe and delete groups.
//! Each asserts the success it needs and panics naming the API otherwise.

use std::net::TcpStream;

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::*;

use crate::requests::{
    consumer_subscription, group_id, join_request, sync_request, text, topic_name,
};
use crate::wire::call;
use crate::{MEMBER_ID_REQUIRED, NONE, SESSION_TIMEOUT_MS};

/// FindCoordinator v3 for a group; also creates `__consumer_offsets` on first use.
pub(crate) fn find_group_coordinator(stream: &mut TcpStream, group: &str) {
    let response = call(
        stream,
        3,
        &FindCoordinatorRequest::default()
            .with_key(text(group))
            .with_key_type(0),
    );
    assert_eq!(response.error_code, NONE, "FindCoordinator for {group}");
}

pub(crate) fn create_topic(stream: &mut TcpStream, name: &str, partitions: i32) {
    let request = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(name))
            .with_num_partitions(partitions)
            .with_replication_factor(1)])
        .with_timeout_ms(10_000);
    let response = call(stream, 5, &request);
    assert_eq!(response.topics.len(), 1);
    assert_eq!(response.topics[0].error_code, NONE, "create topic {name}");
}

/// Joins `group` as a new member the way a client of `version` does: v0-3 in one step,
/// v4+ (KIP-394) first getting MEMBER_ID_REQUIRED with a member id, then joining with it.
/// Returns the successful JoinGroup answer.
pub(crate) fn join_new_member(
    stream: &mut TcpStream,
    version: i16,
    group: &str,
    metadata: &Bytes,
) -> JoinGroupResponse {
    let member_id = if version >= 4 {
        let first = call(
            stream,
            version,
            &join_request(version, group, "", metadata, SESSION_TIMEOUT_MS),
        );
        assert_eq!(
            first.error_code, MEMBER_ID_REQUIRED,
            "JoinGroup v{version} without a member id: {first:?}"
        );
        assert!(
            !first.member_id.is_empty(),
            "JoinGroup v{version}: MEMBER_ID_REQUIRED without a member id"
        );
        first.member_id.to_string()
    } else {
        String::new()
    };
    let response = call(
        stream,
        version,
        &join_request(version, group, &member_id, metadata, SESSION_TIMEOUT_MS),
    );
    assert_eq!(
        response.error_code, NONE,
        "JoinGroup v{version} of {group}: {response:?}"
    );
    assert!(
        !response.member_id.is_empty(),
        "JoinGroup v{version}: no member id"
    );
    if version >= 4 {
        assert_eq!(response.member_id.as_str(), member_id, "member id kept");
    }
    response
}

pub(crate) fn heartbeat(
    stream: &mut TcpStream,
    version: i16,
    group: &str,
    generation_id: i32,
    member_id: &str,
) -> i16 {
    let request = HeartbeatRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id(generation_id)
        .with_member_id(text(member_id));
    call(stream, version, &request).error_code
}

/// A one-member consumer group, Stable: joined (JoinGroup v9) and synced as leader.
/// Returns `(member_id, generation_id)`.
pub(crate) fn stable_single_member_group(
    stream: &mut TcpStream,
    group: &str,
    topics: &[&str],
) -> (String, i32) {
    let joined = join_new_member(stream, 9, group, &consumer_subscription(topics));
    let member_id = joined.member_id.to_string();
    let assignment = Bytes::from_static(b"assignment");
    let synced = call(
        stream,
        5,
        &sync_request(
            5,
            group,
            joined.generation_id,
            &member_id,
            &[(&member_id, &assignment)],
        ),
    );
    assert_eq!(synced.error_code, NONE, "SyncGroup of {group}: {synced:?}");
    (member_id, joined.generation_id)
}

/// OffsetFetch v8 for one group: `(group error, [(partition, offset, metadata, error)])`.
pub(crate) fn fetch_offsets(
    stream: &mut TcpStream,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> (i16, Vec<(i32, i64, String, i16)>) {
    let request =
        OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(group_id(group))
            .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                .with_name(topic_name(topic))
                .with_partition_indexes(partitions.to_vec())]))]);
    let response = call(stream, 8, &request);
    assert_eq!(response.groups.len(), 1, "one group fetched: {response:?}");
    let group = &response.groups[0];
    let offsets = group
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| {
            let metadata = p
                .metadata
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default();
            (
                p.partition_index,
                p.committed_offset,
                metadata,
                p.error_code,
            )
        })
        .collect();
    (group.error_code, offsets)
}

pub(crate) fn describe_group(stream: &mut TcpStream, version: i16, group: &str) -> DescribedGroup {
    let mut response = call(
        stream,
        version,
        &DescribeGroupsRequest::default().with_groups(vec![group_id(group)]),
    );
    assert_eq!(
        response.groups.len(),
        1,
        "DescribeGroups v{version} of {group}"
    );
    response.groups.remove(0)
}

pub(crate) fn delete_groups(
    stream: &mut TcpStream,
    version: i16,
    groups: &[&str],
) -> Vec<(String, i16)> {
    let request = DeleteGroupsRequest::default()
        .with_groups_names(groups.iter().map(|g| group_id(g)).collect());
    call(stream, version, &request)
        .results
        .iter()
        .map(|result| (result.group_id.to_string(), result.error_code))
        .collect()
}

pub(crate) fn offset_delete(
    stream: &mut TcpStream,
    group: &str,
    topics: &[(&str, &[i32])],
) -> OffsetDeleteResponse {
    let request = OffsetDeleteRequest::default()
        .with_group_id(group_id(group))
        .with_topics(
            topics
                .iter()
                .map(|(topic, partitions)| {
                    OffsetDeleteRequestTopic::default()
                        .with_name(topic_name(topic))
                        .with_partitions(
                            partitions
                                .iter()
                                .map(|&index| {
                                    OffsetDeleteRequestPartition::default()
                                        .with_partition_index(index)
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    call(stream, 0, &request)
}
