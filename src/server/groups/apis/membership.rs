//! JoinGroup, SyncGroup, Heartbeat and LeaveGroup on the connection's
//! shard: route to the group's coordinator, answer its errors in the shape
//! of the request's version.

use std::rc::Rc;

use kafka_protocol::messages::*;

use super::unexpected;
use kafka_protocol::protocol::StrBytes;

use crate::group::{JoinResponse, SyncResponse};
use crate::protocol::errors::KafkaError;
use crate::server::groups::{
    membership as coordinator_side, route, ClientInfo, GroupAnswer, GroupCall,
};
use crate::server::shard::Shard;

pub async fn join_group(
    shard: &Rc<Shard>,
    request: JoinGroupRequest,
    version: i16,
    client: ClientInfo,
) -> JoinGroupResponse {
    let group_id = request.group_id.0.as_str().to_string();
    let member_id = request.member_id.as_str().to_string();
    let call = GroupCall::Join {
        request,
        version,
        client,
    };
    match route(shard, &group_id, call).await {
        GroupAnswer::Join(response) => response,
        other => {
            let code = unexpected(other);
            coordinator_side::join_response(JoinResponse::error(&member_id, code), version)
        }
    }
}

pub async fn sync_group(
    shard: &Rc<Shard>,
    request: SyncGroupRequest,
    version: i16,
) -> SyncGroupResponse {
    let group_id = request.group_id.0.as_str().to_string();
    match route(shard, &group_id, GroupCall::Sync { request, version }).await {
        GroupAnswer::Sync(response) => response,
        other => coordinator_side::sync_response(SyncResponse::error(unexpected(other)), version),
    }
}

pub async fn heartbeat(shard: &Rc<Shard>, request: HeartbeatRequest) -> HeartbeatResponse {
    let group_id = request.group_id.0.as_str().to_string();
    let code = match route(shard, &group_id, GroupCall::Heartbeat { request }).await {
        GroupAnswer::Heartbeat(code) => code,
        other => unexpected(other),
    };
    HeartbeatResponse::default().with_error_code(code)
}

/// ConsumerGroupHeartbeat (KIP-848): to the group's coordinator, which
/// answers once what the heartbeat changed is durable.
pub async fn consumer_group_heartbeat(
    shard: &Rc<Shard>,
    request: ConsumerGroupHeartbeatRequest,
    version: i16,
    client: ClientInfo,
) -> ConsumerGroupHeartbeatResponse {
    let group_id = request.group_id.0.as_str().to_string();
    if group_id.is_empty() {
        // Kafka validates the request before routing it.
        return ConsumerGroupHeartbeatResponse::default()
            .with_error_code(KafkaError::InvalidRequest.code())
            .with_error_message(Some(StrBytes::from_static_str("GroupId can't be empty.")));
    }
    let call = GroupCall::ConsumerHeartbeat {
        request,
        version,
        client,
    };
    match route(shard, &group_id, call).await {
        GroupAnswer::ConsumerHeartbeat(response) => response,
        other => ConsumerGroupHeartbeatResponse::default().with_error_code(unexpected(other)),
    }
}

pub async fn leave_group(
    shard: &Rc<Shard>,
    request: LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    let group_id = request.group_id.0.as_str().to_string();
    match route(shard, &group_id, GroupCall::Leave { request, version }).await {
        GroupAnswer::Leave(response) => response,
        other => LeaveGroupResponse::default().with_error_code(unexpected(other)),
    }
}
