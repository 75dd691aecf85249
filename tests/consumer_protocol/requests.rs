//! Request builders for the APIs that meet a consumer group, and the one-call exchanges the
//! tests repeat (create a topic, find the coordinator, commit, fetch, describe, list,
//! delete). Each builder sets the fields its version has, as a client of that version would.

use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::consumer_group_describe_response::DescribedGroup;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::offset_fetch_response::OffsetFetchResponseGroup;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use crate::wire::call;
use crate::{NONE, PARTITIONS};

pub(crate) fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

pub(crate) fn group_id(value: &str) -> GroupId {
    GroupId(text(value))
}

pub(crate) fn topic_name(value: &str) -> TopicName {
    TopicName(text(value))
}

/// FindCoordinator v3 for a group; also creates `__consumer_offsets` on first use, which
/// Kafka does in the background (COORDINATOR_NOT_AVAILABLE until then).
pub(crate) fn find_coordinator(stream: &mut TcpStream, group: &str) {
    const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    let request = FindCoordinatorRequest::default()
        .with_key(text(group))
        .with_key_type(0);
    crate::common::poll_until(Duration::from_secs(30), "a group coordinator", || {
        let response = call(stream, 3, &request);
        match response.error_code {
            NONE => Some(()),
            COORDINATOR_NOT_AVAILABLE => None,
            code => panic!("FindCoordinator for {group}: error {code}"),
        }
    });
}

/// CreateTopics v5 for a [`PARTITIONS`]-partition topic.
pub(crate) fn create_topic(stream: &mut TcpStream, name: &str) {
    let request = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(name))
            .with_num_partitions(PARTITIONS)
            .with_replication_factor(1)])
        .with_timeout_ms(10_000);
    let response = call(stream, 5, &request);
    assert_eq!(response.topics[0].error_code, NONE, "create topic {name}");
}

/// OffsetCommit v9 as a consumer group member: the generation field carries the member
/// epoch (KIP-848). Returns `(partition, error_code)` per partition.
pub(crate) fn commit_v9(
    stream: &mut TcpStream,
    group: &str,
    member_id: &str,
    member_epoch: i32,
    topic: &str,
    offsets: &[(i32, i64)],
) -> Vec<(i32, i16)> {
    let partitions = offsets
        .iter()
        .map(|&(index, offset)| {
            OffsetCommitRequestPartition::default()
                .with_partition_index(index)
                .with_committed_offset(offset)
                .with_committed_leader_epoch(-1)
        })
        .collect();
    let request = OffsetCommitRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id_or_member_epoch(member_epoch)
        .with_member_id(text(member_id))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(partitions)]);
    let response = call(stream, 9, &request);
    response.topics[0]
        .partitions
        .iter()
        .map(|partition| (partition.partition_index, partition.error_code))
        .collect()
}

/// OffsetFetch v9 for every partition of `topic`, with the member id and epoch a consumer
/// group member sends (`None`: an admin fetch). Returns the group's answer.
pub(crate) fn fetch_v9(
    stream: &mut TcpStream,
    group: &str,
    member: Option<(&str, i32)>,
    topic: &str,
) -> OffsetFetchResponseGroup {
    let (member_id, member_epoch) = member.map_or((None, -1), |(id, epoch)| (Some(id), epoch));
    let request = OffsetFetchRequest::default()
        .with_require_stable(true)
        .with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(group_id(group))
            .with_member_id(member_id.map(text))
            .with_member_epoch(member_epoch)
            .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                .with_name(topic_name(topic))
                .with_partition_indexes((0..PARTITIONS).collect())]))]);
    let mut response = call(stream, 9, &request);
    assert_eq!(response.groups.len(), 1, "one group in OffsetFetch v9");
    response.groups.remove(0)
}

/// `(partition, committed_offset)` of an OffsetFetch group answer (-1: none committed).
pub(crate) fn fetched_offsets(group: &OffsetFetchResponseGroup) -> Vec<(i32, i64)> {
    group
        .topics
        .iter()
        .flat_map(|topic| topic.partitions.iter())
        .map(|partition| {
            assert_eq!(partition.error_code, NONE, "OffsetFetch partition error");
            (partition.partition_index, partition.committed_offset)
        })
        .collect()
}

/// ConsumerGroupDescribe v0 of one group.
pub(crate) fn describe_consumer_group(stream: &mut TcpStream, group: &str) -> DescribedGroup {
    let request = ConsumerGroupDescribeRequest::default()
        .with_group_ids(vec![group_id(group)])
        .with_include_authorized_operations(false);
    let mut response = call(stream, 0, &request);
    assert_eq!(response.groups.len(), 1, "one group described");
    response.groups.remove(0)
}

/// ListGroups v5 without filters: `(group_id, group_type, state)` of every group.
pub(crate) fn list_groups_v5(stream: &mut TcpStream) -> Vec<(String, String, String)> {
    let response = call(stream, 5, &ListGroupsRequest::default());
    assert_eq!(response.error_code, NONE, "ListGroups v5");
    response
        .groups
        .iter()
        .map(|group| {
            (
                group.group_id.to_string(),
                group.group_type.to_string(),
                group.group_state.to_string(),
            )
        })
        .collect()
}

/// DeleteGroups v2 of one group: its error code.
pub(crate) fn delete_group(stream: &mut TcpStream, group: &str) -> i16 {
    let request = DeleteGroupsRequest::default().with_groups_names(vec![group_id(group)]);
    let response = call(stream, 2, &request);
    assert_eq!(response.results.len(), 1, "one DeleteGroups result");
    response.results[0].error_code
}

/// A ConsumerProtocolSubscription v0 (a classic consumer's JoinGroup metadata).
pub(crate) fn classic_subscription(topic: &str) -> Bytes {
    let mut metadata = Vec::new();
    metadata.extend_from_slice(&0i16.to_be_bytes());
    metadata.extend_from_slice(&1i32.to_be_bytes());
    let length = i16::try_from(topic.len()).expect("short topic name");
    metadata.extend_from_slice(&length.to_be_bytes());
    metadata.extend_from_slice(topic.as_bytes());
    metadata.extend_from_slice(&(-1i32).to_be_bytes());
    Bytes::from(metadata)
}

/// JoinGroup v9 of a classic consumer (protocol type "consumer", assignor "range").
pub(crate) fn join_group_v9(
    stream: &mut TcpStream,
    group: &str,
    member_id: &str,
    topic: &str,
) -> JoinGroupResponse {
    let request = JoinGroupRequest::default()
        .with_group_id(group_id(group))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(crate::REBALANCE_TIMEOUT_MS)
        .with_member_id(text(member_id))
        .with_protocol_type(text("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(text("range"))
            .with_metadata(classic_subscription(topic))]);
    call(stream, 9, &request)
}
