//! Routes a decoded request to its API handler and turns the handler's answer
//! into an encoded response frame. Returns the response as a future so the
//! connection can read the next request while this one waits (pipelining),
//! and write responses strictly in request order.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::future::LocalBoxFuture;
use futures::FutureExt;
use kafka_protocol::messages::ApiKey;

use super::delete_records;
use super::describe_configs;
use super::describe_log_dirs;
use super::describe_topic_partitions;
use super::groups::apis as group_apis;
use super::leader_elections;
use super::reassignments;
use super::shard::Shard;
use super::topic_changes::apis as topic_change_apis;
use super::txn::apis as txn_apis;
use super::txn::verification as txn_verification;
use super::{
    admin, api_versions, cluster, fetch, list_offsets, metadata, offset_for_leader_epoch, produce,
    producer_ids,
};
use crate::metadata::catalog::TopicMetadata;
use crate::protocol::errors::{error_from_code, KafkaError};
use crate::protocol::fetch_frame;
use crate::protocol::request::{Request, RequestBody};
use crate::protocol::response::{encode_response, ResponseBody};

/// The control plane's services that data-plane handlers are given (they
/// do not import the control plane; dispatch, above both, ties them).
struct ControlPlane;

impl produce::ProduceControl for ControlPlane {
    async fn topic(&self, shard: &Rc<Shard>, name: &str) -> Result<Arc<TopicMetadata>, KafkaError> {
        admin::ensure_topic(shard, name)
            .await
            .map_err(error_from_code)
    }

    async fn verify_transaction(
        &self,
        shard: &Rc<Shard>,
        transactional_id: Option<&str>,
        parts: &[(Arc<str>, i32, i64, i16)],
    ) -> Vec<(Arc<str>, i32, KafkaError)> {
        txn_verification::verify(shard, transactional_id, parts).await
    }
}

/// What the connection writes for one request.
pub enum Outgoing {
    /// An encoded response frame.
    Frame(BytesMut),
    /// A frame in pieces, written in order (a Fetch response whose record
    /// batches are not copied: `protocol::fetch_frame`).
    Chunks(Vec<Bytes>),
    /// No response (Produce with acks=0).
    Nothing,
    /// Close the connection after the responses before this one.
    Close,
}

pub type PendingResponse = LocalBoxFuture<'static, Outgoing>;

/// Encodes `body` as the answer to a request with this header.
pub fn encode(api_key: ApiKey, version: i16, correlation_id: i32, body: ResponseBody) -> Outgoing {
    if let ResponseBody::Fetch(response) = &body {
        if let Some(chunks) = fetch_frame::encode_fetch_frame(version, correlation_id, response) {
            return Outgoing::Chunks(chunks);
        }
    }
    // Sized up front so the records copied in never make the buffer regrow.
    let mut frame = BytesMut::with_capacity(body.encoded_size(version).unwrap_or(0) + 64);
    match encode_response(&mut frame, api_key, version, correlation_id, &body) {
        Ok(()) => Outgoing::Frame(frame),
        Err(error) => {
            tracing::error!(?api_key, version, %error, "cannot encode response; closing connection");
            Outgoing::Close
        }
    }
}

/// Stage one of a request (in the connection's read order); the returned
/// future is stage two. Only Produce does work in stage one.
pub async fn dispatch(
    shard: &Rc<Shard>,
    request: Request,
    peer: Option<SocketAddr>,
) -> PendingResponse {
    let api_key = request.api_key;
    let version = request.version();
    let correlation_id = request.correlation_id();
    let reply = move |body| encode(api_key, version, correlation_id, body);
    if let RequestBody::Produce(produce_request) = request.body {
        let pending =
            produce::dispatch_produce(shard, produce_request, version, &ControlPlane).await;
        return async move {
            match pending.await {
                Some(response) => reply(ResponseBody::Produce(response)),
                None => Outgoing::Nothing,
            }
        }
        .boxed_local();
    }
    let shard = Rc::clone(shard);
    async move {
        let body = match request.body {
            RequestBody::Produce(_) => unreachable!("handled in stage one"),
            RequestBody::Fetch(body) => {
                ResponseBody::Fetch(fetch::handle_fetch(&shard, body, version).await)
            }
            RequestBody::ListOffsets(body) => ResponseBody::ListOffsets(
                list_offsets::handle_list_offsets(&shard, body, version).await,
            ),
            RequestBody::OffsetForLeaderEpoch(body) => ResponseBody::OffsetForLeaderEpoch(
                offset_for_leader_epoch::handle_offset_for_leader_epoch(&shard, body).await,
            ),
            RequestBody::Metadata(body) => {
                ResponseBody::Metadata(metadata::handle_metadata(&shard, body, version).await)
            }
            RequestBody::ApiVersions(_) => {
                ResponseBody::ApiVersions(api_versions::api_versions_response())
            }
            RequestBody::CreateTopics(body) => {
                ResponseBody::CreateTopics(admin::create_topics(&shard, body, version).await)
            }
            RequestBody::DeleteTopics(body) => {
                ResponseBody::DeleteTopics(admin::delete_topics(&shard, body, version).await)
            }
            RequestBody::InitProducerId(body) => ResponseBody::InitProducerId(
                producer_ids::handle_init_producer_id(&shard, body, version).await,
            ),
            RequestBody::DescribeConfigs(body) => ResponseBody::DescribeConfigs(
                describe_configs::handle_describe_configs(&shard, body, version),
            ),
            RequestBody::DescribeCluster(body) => ResponseBody::DescribeCluster(
                cluster::handle_describe_cluster(&shard, body, version),
            ),
            RequestBody::DescribeQuorum(body) => ResponseBody::DescribeQuorum(
                cluster::handle_describe_quorum(&shard, body, version).await,
            ),
            RequestBody::FindCoordinator(body) => ResponseBody::FindCoordinator(
                group_apis::find_coordinator(&shard, body, version).await,
            ),
            RequestBody::JoinGroup(body) => {
                let client = group_apis::client_info(&request.header, peer);
                ResponseBody::JoinGroup(group_apis::join_group(&shard, body, version, client).await)
            }
            RequestBody::SyncGroup(body) => {
                ResponseBody::SyncGroup(group_apis::sync_group(&shard, body, version).await)
            }
            RequestBody::Heartbeat(body) => {
                ResponseBody::Heartbeat(group_apis::heartbeat(&shard, body).await)
            }
            RequestBody::LeaveGroup(body) => {
                ResponseBody::LeaveGroup(group_apis::leave_group(&shard, body, version).await)
            }
            RequestBody::OffsetCommit(body) => {
                ResponseBody::OffsetCommit(group_apis::offset_commit(&shard, body, version).await)
            }
            RequestBody::OffsetFetch(body) => {
                ResponseBody::OffsetFetch(group_apis::offset_fetch(&shard, body, version).await)
            }
            RequestBody::OffsetCommitV10(body) => {
                ResponseBody::OffsetCommitV10(group_apis::offset_commit_v10(&shard, body).await)
            }
            RequestBody::OffsetFetchV10(body) => {
                ResponseBody::OffsetFetchV10(group_apis::offset_fetch_v10(&shard, body).await)
            }
            RequestBody::ListGroups(body) => {
                ResponseBody::ListGroups(group_apis::list_groups(&shard, body, version).await)
            }
            RequestBody::DescribeGroups(body) => ResponseBody::DescribeGroups(
                group_apis::describe_groups(&shard, body, version).await,
            ),
            RequestBody::DeleteGroups(body) => {
                ResponseBody::DeleteGroups(group_apis::delete_groups(&shard, body).await)
            }
            RequestBody::ConsumerGroupDescribe(body) => ResponseBody::ConsumerGroupDescribe(
                group_apis::consumer_group_describe(&shard, body).await,
            ),
            RequestBody::ConsumerGroupHeartbeat(body) => {
                let client = group_apis::client_info(&request.header, peer);
                ResponseBody::ConsumerGroupHeartbeat(
                    group_apis::consumer_group_heartbeat(&shard, body, version, client).await,
                )
            }
            RequestBody::OffsetDelete(body) => {
                ResponseBody::OffsetDelete(group_apis::offset_delete(&shard, body).await)
            }
            RequestBody::AlterConfigs(body) => {
                ResponseBody::AlterConfigs(topic_change_apis::alter_configs(&shard, body).await)
            }
            RequestBody::IncrementalAlterConfigs(body) => ResponseBody::IncrementalAlterConfigs(
                topic_change_apis::incremental_alter_configs(&shard, body).await,
            ),
            RequestBody::CreatePartitions(body) => ResponseBody::CreatePartitions(
                topic_change_apis::create_partitions(&shard, body).await,
            ),
            RequestBody::DeleteRecords(body) => ResponseBody::DeleteRecords(
                delete_records::handle_delete_records(&shard, body).await,
            ),
            RequestBody::AddPartitionsToTxn(body) => ResponseBody::AddPartitionsToTxn(
                txn_apis::add_partitions_to_txn(&shard, body, version).await,
            ),
            RequestBody::AddOffsetsToTxn(body) => ResponseBody::AddOffsetsToTxn(
                txn_apis::add_offsets_to_txn(&shard, body, version).await,
            ),
            RequestBody::EndTxn(body) => {
                ResponseBody::EndTxn(txn_apis::end_txn(&shard, body, version).await)
            }
            RequestBody::TxnOffsetCommit(body) => ResponseBody::TxnOffsetCommit(
                group_apis::handle_txn_offset_commit(&shard, body, version).await,
            ),
            RequestBody::WriteTxnMarkers(body) => {
                ResponseBody::WriteTxnMarkers(txn_apis::write_txn_markers(&shard, body).await)
            }
            RequestBody::DescribeTransactions(body) => ResponseBody::DescribeTransactions(
                txn_apis::describe_transactions(&shard, body).await,
            ),
            RequestBody::ListTransactions(body) => ResponseBody::ListTransactions(
                txn_apis::list_transactions(&shard, body, version).await,
            ),
            RequestBody::ElectLeaders(body) => ResponseBody::ElectLeaders(
                leader_elections::elect_leaders(&shard, body, version).await,
            ),
            RequestBody::AlterPartitionReassignments(body) => {
                ResponseBody::AlterPartitionReassignments(
                    reassignments::alter_partition_reassignments(&shard, body, version).await,
                )
            }
            RequestBody::ListPartitionReassignments(body) => {
                ResponseBody::ListPartitionReassignments(
                    reassignments::list_partition_reassignments(&shard, &body),
                )
            }
            RequestBody::DescribeLogDirs(body) => ResponseBody::DescribeLogDirs(
                describe_log_dirs::describe_log_dirs(&shard, body, version).await,
            ),
            RequestBody::DescribeTopicPartitions(body) => ResponseBody::DescribeTopicPartitions(
                describe_topic_partitions::describe_topic_partitions(&shard, body),
            ),
        };
        reply(body)
    }
    .boxed_local()
}
