//! TxnOffsetCommit (versions 0-4) on the connection's shard: the request
//! goes whole to the group's coordinator shard, which answers every
//! partition; when it cannot be reached, every partition carries the error.
//! The response has the same fields at every version (v3+ only changes the
//! encoding), so nothing is shaped by version here.

use std::rc::Rc;

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::*;

use super::unexpected;
use crate::protocol::errors::KafkaError;
use crate::server::groups::{route, GroupAnswer, GroupCall};
use crate::server::shard::Shard;

pub async fn handle_txn_offset_commit(
    shard: &Rc<Shard>,
    request: TxnOffsetCommitRequest,
    version: i16,
) -> TxnOffsetCommitResponse {
    let group_id = request.group_id.0.as_str().to_string();
    // Kept to answer every partition if the coordinator cannot be reached.
    let named: Vec<(TopicName, Vec<i32>)> = request
        .topics
        .iter()
        .map(|t| {
            let partitions = t.partitions.iter().map(|p| p.partition_index).collect();
            (t.name.clone(), partitions)
        })
        .collect();
    // Only OffsetCommit and friends accept the empty group id, for old
    // clients; transactional commits need a real group (Kafka's
    // `isValidGroupId`).
    let code = if group_id.is_empty() {
        KafkaError::InvalidGroupId.code()
    } else {
        match route(shard, &group_id, GroupCall::TxnCommit { request, version }).await {
            GroupAnswer::TxnCommit(response) => return response,
            other => unexpected(other),
        }
    };
    let topics = named
        .into_iter()
        .map(|(name, partitions)| {
            TxnOffsetCommitResponseTopic::default()
                .with_name(name)
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|index| {
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(index)
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}
