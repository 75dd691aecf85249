//! Response encoding: header (v0, or v1 with tagged fields for flexible
//! versions) plus body, behind a 4-byte length prefix, into one buffer ready
//! for a single socket write.

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Encodable;

use super::offsets_v10::{OffsetCommitResponseV10, OffsetFetchResponseV10, TOPIC_ID_VERSION};

/// A typed response body.
#[derive(Debug)]
pub enum ResponseBody {
    Produce(ProduceResponse),
    Fetch(FetchResponse),
    ListOffsets(ListOffsetsResponse),
    Metadata(MetadataResponse),
    ApiVersions(ApiVersionsResponse),
    CreateTopics(CreateTopicsResponse),
    DeleteTopics(DeleteTopicsResponse),
    InitProducerId(InitProducerIdResponse),
    DescribeConfigs(DescribeConfigsResponse),
    DescribeCluster(DescribeClusterResponse),
    DescribeQuorum(DescribeQuorumResponse),
    FindCoordinator(FindCoordinatorResponse),
    JoinGroup(JoinGroupResponse),
    SyncGroup(SyncGroupResponse),
    Heartbeat(HeartbeatResponse),
    LeaveGroup(LeaveGroupResponse),
    OffsetCommit(OffsetCommitResponse),
    OffsetFetch(OffsetFetchResponse),
    /// v10+, encoded by hand (see `offsets_v10`).
    OffsetCommitV10(OffsetCommitResponseV10),
    /// v10+, encoded by hand (see `offsets_v10`).
    OffsetFetchV10(OffsetFetchResponseV10),
    ListGroups(ListGroupsResponse),
    DescribeGroups(DescribeGroupsResponse),
    DeleteGroups(DeleteGroupsResponse),
    ConsumerGroupDescribe(ConsumerGroupDescribeResponse),
    ConsumerGroupHeartbeat(ConsumerGroupHeartbeatResponse),
    OffsetDelete(OffsetDeleteResponse),
    AlterConfigs(AlterConfigsResponse),
    IncrementalAlterConfigs(IncrementalAlterConfigsResponse),
    CreatePartitions(CreatePartitionsResponse),
    DeleteRecords(DeleteRecordsResponse),
    OffsetForLeaderEpoch(OffsetForLeaderEpochResponse),
    AddPartitionsToTxn(AddPartitionsToTxnResponse),
    AddOffsetsToTxn(AddOffsetsToTxnResponse),
    EndTxn(EndTxnResponse),
    TxnOffsetCommit(TxnOffsetCommitResponse),
    WriteTxnMarkers(WriteTxnMarkersResponse),
    DescribeTransactions(DescribeTransactionsResponse),
    ListTransactions(ListTransactionsResponse),
    ElectLeaders(ElectLeadersResponse),
    AlterPartitionReassignments(AlterPartitionReassignmentsResponse),
    ListPartitionReassignments(ListPartitionReassignmentsResponse),
    DescribeLogDirs(DescribeLogDirsResponse),
    DescribeTopicPartitions(DescribeTopicPartitionsResponse),
}

impl ResponseBody {
    /// Bytes the body will take when encoded at `version`.
    pub fn encoded_size(&self, version: i16) -> anyhow::Result<usize> {
        match self {
            ResponseBody::Produce(body) => body.compute_size(version),
            ResponseBody::Fetch(body) => body.compute_size(version),
            ResponseBody::ListOffsets(body) => body.compute_size(version),
            ResponseBody::Metadata(body) => body.compute_size(version),
            ResponseBody::ApiVersions(body) => body.compute_size(version),
            ResponseBody::CreateTopics(body) => body.compute_size(version),
            ResponseBody::DeleteTopics(body) => body.compute_size(version),
            ResponseBody::InitProducerId(body) => body.compute_size(version),
            ResponseBody::DescribeConfigs(body) => body.compute_size(version),
            ResponseBody::DescribeCluster(body) => body.compute_size(version),
            ResponseBody::DescribeQuorum(body) => body.compute_size(version),
            ResponseBody::FindCoordinator(body) => body.compute_size(version),
            ResponseBody::JoinGroup(body) => body.compute_size(version),
            ResponseBody::SyncGroup(body) => body.compute_size(version),
            ResponseBody::Heartbeat(body) => body.compute_size(version),
            ResponseBody::LeaveGroup(body) => body.compute_size(version),
            ResponseBody::OffsetCommit(body) => body.compute_size(version),
            ResponseBody::OffsetFetch(body) => body.compute_size(version),
            ResponseBody::OffsetCommitV10(_) | ResponseBody::OffsetFetchV10(_) => {
                let mut scratch = BytesMut::new();
                self.encode_into(&mut scratch, version)?;
                Ok(scratch.len())
            }
            ResponseBody::ListGroups(body) => body.compute_size(version),
            ResponseBody::DescribeGroups(body) => body.compute_size(version),
            ResponseBody::DeleteGroups(body) => body.compute_size(version),
            ResponseBody::ConsumerGroupDescribe(body) => body.compute_size(version),
            ResponseBody::ConsumerGroupHeartbeat(body) => body.compute_size(version),
            ResponseBody::OffsetDelete(body) => body.compute_size(version),
            ResponseBody::AlterConfigs(body) => body.compute_size(version),
            ResponseBody::IncrementalAlterConfigs(body) => body.compute_size(version),
            ResponseBody::CreatePartitions(body) => body.compute_size(version),
            ResponseBody::DeleteRecords(body) => body.compute_size(version),
            ResponseBody::OffsetForLeaderEpoch(body) => body.compute_size(version),
            ResponseBody::AddPartitionsToTxn(body) => body.compute_size(version),
            ResponseBody::AddOffsetsToTxn(body) => body.compute_size(version),
            ResponseBody::EndTxn(body) => body.compute_size(version),
            ResponseBody::TxnOffsetCommit(body) => body.compute_size(version),
            ResponseBody::WriteTxnMarkers(body) => body.compute_size(version),
            ResponseBody::DescribeTransactions(body) => body.compute_size(version),
            ResponseBody::ListTransactions(body) => body.compute_size(version),
            ResponseBody::ElectLeaders(body) => body.compute_size(version),
            ResponseBody::AlterPartitionReassignments(body) => body.compute_size(version),
            ResponseBody::ListPartitionReassignments(body) => body.compute_size(version),
            ResponseBody::DescribeLogDirs(body) => body.compute_size(version),
            ResponseBody::DescribeTopicPartitions(body) => body.compute_size(version),
        }
    }

    fn encode_into(&self, out: &mut BytesMut, version: i16) -> anyhow::Result<()> {
        match self {
            ResponseBody::Produce(body) => body.encode(out, version),
            ResponseBody::Fetch(body) => body.encode(out, version),
            ResponseBody::ListOffsets(body) => body.encode(out, version),
            ResponseBody::Metadata(body) => body.encode(out, version),
            ResponseBody::ApiVersions(body) => body.encode(out, version),
            ResponseBody::CreateTopics(body) => body.encode(out, version),
            ResponseBody::DeleteTopics(body) => body.encode(out, version),
            ResponseBody::InitProducerId(body) => body.encode(out, version),
            ResponseBody::DescribeConfigs(body) => body.encode(out, version),
            ResponseBody::DescribeCluster(body) => body.encode(out, version),
            ResponseBody::DescribeQuorum(body) => body.encode(out, version),
            ResponseBody::FindCoordinator(body) => body.encode(out, version),
            ResponseBody::JoinGroup(body) => body.encode(out, version),
            ResponseBody::SyncGroup(body) => body.encode(out, version),
            ResponseBody::Heartbeat(body) => body.encode(out, version),
            ResponseBody::LeaveGroup(body) => body.encode(out, version),
            ResponseBody::OffsetCommit(body) => body.encode(out, version),
            ResponseBody::OffsetFetch(body) => body.encode(out, version),
            ResponseBody::OffsetCommitV10(body) => {
                debug_assert!(version >= TOPIC_ID_VERSION);
                body.encode(out);
                Ok(())
            }
            ResponseBody::OffsetFetchV10(body) => {
                debug_assert!(version >= TOPIC_ID_VERSION);
                body.encode(out);
                Ok(())
            }
            ResponseBody::ListGroups(body) => body.encode(out, version),
            ResponseBody::DescribeGroups(body) => body.encode(out, version),
            ResponseBody::DeleteGroups(body) => body.encode(out, version),
            ResponseBody::ConsumerGroupDescribe(body) => body.encode(out, version),
            ResponseBody::ConsumerGroupHeartbeat(body) => body.encode(out, version),
            ResponseBody::OffsetDelete(body) => body.encode(out, version),
            ResponseBody::AlterConfigs(body) => body.encode(out, version),
            ResponseBody::IncrementalAlterConfigs(body) => body.encode(out, version),
            ResponseBody::CreatePartitions(body) => body.encode(out, version),
            ResponseBody::DeleteRecords(body) => body.encode(out, version),
            ResponseBody::OffsetForLeaderEpoch(body) => body.encode(out, version),
            ResponseBody::AddPartitionsToTxn(body) => body.encode(out, version),
            ResponseBody::AddOffsetsToTxn(body) => body.encode(out, version),
            ResponseBody::EndTxn(body) => body.encode(out, version),
            ResponseBody::TxnOffsetCommit(body) => body.encode(out, version),
            ResponseBody::WriteTxnMarkers(body) => body.encode(out, version),
            ResponseBody::DescribeTransactions(body) => body.encode(out, version),
            ResponseBody::ListTransactions(body) => body.encode(out, version),
            ResponseBody::ElectLeaders(body) => body.encode(out, version),
            ResponseBody::AlterPartitionReassignments(body) => body.encode(out, version),
            ResponseBody::ListPartitionReassignments(body) => body.encode(out, version),
            ResponseBody::DescribeLogDirs(body) => body.encode(out, version),
            ResponseBody::DescribeTopicPartitions(body) => body.encode(out, version),
        }
    }
}

/// Appends one complete response frame (length prefix, header, body) to `out`.
///
/// ApiVersions always uses response header v0, even for flexible versions,
/// so that a client that does not yet know our versions can read it (KIP-511).
pub fn encode_response(
    out: &mut BytesMut,
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseBody,
) -> anyhow::Result<()> {
    let start = out.len();
    out.put_i32(0);
    let header_version = api_key.response_header_version(version);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(out, header_version)?;
    body.encode_into(out, version)?;
    let length = i32::try_from(out.len() - start - 4)?;
    out[start..start + 4].copy_from_slice(&length.to_be_bytes());
    Ok(())
}
