//! Request builders for the group APIs and digests of their answers: plain values, no
//! socket. Each builder sets only the fields the given version has, the way a client of
//! that version would.

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use crate::REBALANCE_TIMEOUT_MS;

pub(crate) fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

pub(crate) fn group_id(value: &str) -> GroupId {
    GroupId(text(value))
}

pub(crate) fn topic_name(value: &str) -> TopicName {
    TopicName(text(value))
}

/// A ConsumerProtocolSubscription v0 (the classic consumer's JoinGroup metadata): int16
/// version, int32 topic count, int16-length topic names, null user data (int32 -1).
pub(crate) fn consumer_subscription(topics: &[&str]) -> Bytes {
    let mut metadata = Vec::new();
    metadata.extend_from_slice(&0i16.to_be_bytes());
    let count = i32::try_from(topics.len()).expect("few topics");
    metadata.extend_from_slice(&count.to_be_bytes());
    for topic in topics {
        let length = i16::try_from(topic.len()).expect("short topic name");
        metadata.extend_from_slice(&length.to_be_bytes());
        metadata.extend_from_slice(topic.as_bytes());
    }
    metadata.extend_from_slice(&(-1i32).to_be_bytes());
    Bytes::from(metadata)
}

pub(crate) fn join_request(
    version: i16,
    group: &str,
    member_id: &str,
    metadata: &Bytes,
    session_timeout_ms: i32,
) -> JoinGroupRequest {
    let request = JoinGroupRequest::default()
        .with_group_id(group_id(group))
        .with_session_timeout_ms(session_timeout_ms)
        .with_member_id(text(member_id))
        .with_protocol_type(text("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(text("range"))
            .with_metadata(metadata.clone())]);
    // v0 has no rebalance timeout (Kafka uses the session timeout).
    if version >= 1 {
        request.with_rebalance_timeout_ms(REBALANCE_TIMEOUT_MS)
    } else {
        request
    }
}

pub(crate) fn sync_request(
    version: i16,
    group: &str,
    generation_id: i32,
    member_id: &str,
    assignments: &[(&str, &Bytes)],
) -> SyncGroupRequest {
    let request = SyncGroupRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id(generation_id)
        .with_member_id(text(member_id))
        .with_assignments(
            assignments
                .iter()
                .map(|(member, assignment)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(text(member))
                        .with_assignment((*assignment).clone())
                })
                .collect(),
        );
    if version >= 5 {
        request
            .with_protocol_type(Some(text("consumer")))
            .with_protocol_name(Some(text("range")))
    } else {
        request
    }
}

pub(crate) fn commit_request(
    version: i16,
    group: &str,
    generation_id: i32,
    member_id: &str,
    topic: &str,
    partitions: &[(i32, i64, &str)],
) -> OffsetCommitRequest {
    let partitions = partitions
        .iter()
        .map(|&(index, offset, metadata)| {
            let partition = OffsetCommitRequestPartition::default()
                .with_partition_index(index)
                .with_committed_offset(offset)
                .with_committed_metadata(Some(text(metadata)));
            if version >= 6 {
                partition.with_committed_leader_epoch(3)
            } else {
                partition
            }
        })
        .collect();
    OffsetCommitRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id_or_member_epoch(generation_id)
        .with_member_id(text(member_id))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(partitions)])
}

/// `(partition, error_code)` for every partition of an OffsetCommit answer.
pub(crate) fn commit_errors(response: &OffsetCommitResponse) -> Vec<(i32, i16)> {
    response
        .topics
        .iter()
        .flat_map(|topic| topic.partitions.iter())
        .map(|partition| (partition.partition_index, partition.error_code))
        .collect()
}

/// `(topic, partition, error_code)` for every partition of an OffsetDelete answer.
pub(crate) fn offset_delete_errors(response: &OffsetDeleteResponse) -> Vec<(String, i32, i16)> {
    response
        .topics
        .iter()
        .flat_map(|topic| {
            topic
                .partitions
                .iter()
                .map(|p| (topic.name.to_string(), p.partition_index, p.error_code))
        })
        .collect()
}
