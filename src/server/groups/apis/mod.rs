//! The group API handlers on the connection's shard: FindCoordinator, and
//! for every other group API the split by group, the call to each group's
//! coordinator shard, and the response shaped for the request's version
//! (including the errors answered when a coordinator cannot be reached).
//!
//! Inside: `membership` (JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//! ConsumerGroupHeartbeat),
//! `offsets` (OffsetCommit, OffsetFetch, OffsetDelete), `offsets_v10` (their
//! v10, topics by id), `txn_offsets`
//! (TxnOffsetCommit), `admin` (DescribeGroups, ConsumerGroupDescribe, ListGroups,
//! DeleteGroups);
//! FindCoordinator is here.

mod admin;
mod membership;
mod offsets;
mod offsets_v10;
mod txn_offsets;

pub use admin::{consumer_group_describe, delete_groups, describe_groups, list_groups};
pub use membership::{consumer_group_heartbeat, heartbeat, join_group, leave_group, sync_group};
pub use offsets::{offset_commit, offset_delete, offset_fetch};
pub use offsets_v10::{offset_commit_v10, offset_fetch_v10};
pub use txn_offsets::handle_txn_offset_commit;

use std::net::SocketAddr;
use std::rc::Rc;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::{offsets_topic, ClientInfo, GroupAnswer};
use crate::protocol::errors::{KafkaError, NONE};
use crate::server::shard::Shard;

/// FindCoordinator key type of a consumer group (1 is a transactional id).
const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

pub(super) use super::str_bytes;

/// The client's identity for DescribeGroups: its client id and `/<ip>`.
pub fn client_info(header: &RequestHeader, peer: Option<SocketAddr>) -> ClientInfo {
    ClientInfo {
        client_id: header
            .client_id
            .as_ref()
            .map(|id| id.as_str().to_string())
            .unwrap_or_default(),
        client_host: peer.map(|p| format!("/{}", p.ip())).unwrap_or_default(),
    }
}

/// FindCoordinator: a group's (transactional id's) coordinator is the
/// leader of its partition of the offsets (transaction state) topic, on
/// whichever node that is; the topics are created on first use. Inside that
/// node its shards forward among themselves.
pub async fn find_coordinator(
    shard: &Rc<Shard>,
    request: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let topic = match request.key_type {
        KEY_TYPE_GROUP => offsets_topic::ensure(shard).await,
        KEY_TYPE_TRANSACTION => crate::server::txn::state_topic::ensure(shard).await,
        // Share groups (key type 2, FindCoordinator v6, KIP-932) are not
        // offered: INVALID_REQUEST, as Kafka answers a share key it cannot
        // serve (below v6, or a key that is not "group:topicId:partition").
        // Any other type is INVALID_REQUEST in Kafka too.
        _ => Err(KafkaError::InvalidRequest.code()),
    };
    let locate = |key: &str| -> Result<(i32, StrBytes, i32), i16> {
        let topic = topic.as_ref().map_err(|code| *code)?;
        let partition = if request.key_type == KEY_TYPE_GROUP {
            offsets_topic::partition_for(key, topic.partition_count)
        } else {
            crate::server::txn::state_topic::partition_for(key, topic.partition_count)
        };
        shard.read_catalog(|catalog| {
            let leader = catalog
                .partition_leader(&topic.name, partition)
                .ok_or(KafkaError::CoordinatorNotAvailable.code())?;
            catalog
                .brokers()
                .iter()
                .find(|broker| broker.node_id == leader)
                .map(|broker| (leader, str_bytes(&broker.host), i32::from(broker.port)))
                .ok_or(KafkaError::CoordinatorNotAvailable.code())
        })
    };
    let message = |code: i16| {
        (code != NONE).then(|| {
            KafkaError::try_from_code(code)
                .map(|e| e.to_string())
                .unwrap_or_default()
        })
    };
    let answer = |key: &str| match locate(key) {
        Ok((node_id, host, port)) => (NONE, node_id, host, port),
        Err(code) => (code, -1, StrBytes::default(), -1),
    };
    if version >= 4 {
        let coordinators = request
            .coordinator_keys
            .iter()
            .map(|key| {
                let (code, node_id, host, port) = answer(key.as_str());
                Coordinator::default()
                    .with_key(key.clone())
                    .with_node_id(BrokerId(node_id))
                    .with_host(host)
                    .with_port(port)
                    .with_error_code(code)
                    .with_error_message(message(code).map(|m| str_bytes(&m)))
            })
            .collect();
        return FindCoordinatorResponse::default()
            .with_error_message(None)
            .with_coordinators(coordinators);
    }
    let (code, node_id, host, port) = answer(request.key.as_str());
    let response = FindCoordinatorResponse::default()
        .with_error_code(code)
        .with_node_id(BrokerId(node_id))
        .with_host(host)
        .with_port(port);
    if version >= 1 {
        response.with_error_message(message(code).map(|m| str_bytes(&m)))
    } else {
        response
    }
}
/// The error to answer when the coordinator gave no answer of the right
/// kind (it could not be reached or is not loaded here).
pub(super) fn unexpected(answer: GroupAnswer) -> i16 {
    match answer {
        GroupAnswer::Unavailable(code) => code,
        other => {
            tracing::error!(?other, "group coordinator answered the wrong kind");
            KafkaError::CoordinatorNotAvailable.code()
        }
    }
}
