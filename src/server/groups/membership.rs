//! JoinGroup, SyncGroup, Heartbeat and LeaveGroup on the coordinator shard:
//! wire requests into the group state machine's events, its outcomes into
//! wire responses (shaped for the request's version), waiting for the join
//! round or the leader's assignment when the state machine says so.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::consumer_protocol;
use super::coordinator::OffsetsPartition;
use super::str_bytes;
use super::ClientInfo;
use crate::group::{
    HeartbeatRequest as GroupHeartbeat, JoinOutcome, JoinRequest, JoinResponse, LeaveMember,
    Protocol, SyncOutcome, SyncRequest, SyncResponse, MEMBER_METADATA_BYTES_MAX,
};
use crate::protocol::errors::{KafkaError, NONE};
use crate::runtime::clock::now_ms;
use crate::server::shard::Shard;

/// Most protocols (assignors) one member may offer; clients offer one to
/// three. Bounds what one JoinGroup makes the coordinator keep.
pub const PROTOCOLS_PER_MEMBER_MAX: usize = 64;

fn text(value: &StrBytes) -> String {
    value.as_str().to_string()
}

/// JoinGroup: answers at once (errors, MEMBER_ID_REQUIRED) or when the join
/// round completes.
pub async fn join(
    shard: &Rc<Shard>,
    partition: &OffsetsPartition,
    request: JoinGroupRequest,
    version: i16,
    client: ClientInfo,
) -> JoinGroupResponse {
    let group_id = text(&request.group_id.0);
    let member_id = text(&request.member_id);
    let refuse = |code: i16| join_response(JoinResponse::error(&member_id, code), version);
    if group_id.is_empty() {
        return refuse(KafkaError::InvalidGroupId.code());
    }
    let metadata_bytes: usize = request.protocols.iter().map(|p| p.metadata.len()).sum();
    if request.protocols.len() > PROTOCOLS_PER_MEMBER_MAX
        || metadata_bytes > MEMBER_METADATA_BYTES_MAX
    {
        tracing::warn!(
            group = group_id,
            protocols = request.protocols.len(),
            metadata_bytes,
            "JoinGroup with oversized member metadata refused"
        );
        return refuse(KafkaError::InvalidRequest.code());
    }
    let event = JoinRequest {
        member_id: member_id.clone(),
        group_instance_id: request.group_instance_id.as_ref().map(text),
        client_id: client.client_id,
        client_host: client.client_host,
        session_timeout_ms: request.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if version >= 1 {
            request.rebalance_timeout_ms
        } else {
            request.session_timeout_ms
        },
        protocol_type: text(&request.protocol_type),
        protocols: request
            .protocols
            .iter()
            .map(|p| Protocol::new(p.name.as_str(), p.metadata.clone()))
            .collect(),
        require_known_member_id: version >= 4,
    };
    let now = now_ms();
    match consumer_protocol::replace_empty_consumer_group(partition, &group_id) {
        Err((code, message)) => {
            tracing::info!(group = group_id, "JoinGroup refused: {message}");
            return refuse(code);
        }
        Ok(tombstones) => {
            if let Err(code) = partition.append(tombstones, now) {
                return refuse(code);
            }
        }
    }
    let waiting = partition.with_group(&group_id, true, |slot| {
        let reply = slot.group.join(event, now, Uuid::new_v4());
        let outcome = match reply.outcome {
            JoinOutcome::Response(response) => Ok(response),
            JoinOutcome::Pending { member_id } => Err(slot.wait_for_join(&member_id)),
        };
        partition.deliver(slot, reply.effects, now);
        outcome
    });
    shard.groups.schedule_group(partition, &group_id);
    let response = match waiting {
        None => JoinResponse::error(&member_id, KafkaError::CoordinatorNotAvailable.code()),
        Some(Ok(response)) => response,
        Some(Err(receiver)) => receiver.await.unwrap_or_else(|_| {
            JoinResponse::error(&member_id, KafkaError::CoordinatorNotAvailable.code())
        }),
    };
    if response.error_code != NONE {
        partition.prune_if_unused(&group_id);
    }
    join_response(response, version)
}

pub fn join_response(response: JoinResponse, version: i16) -> JoinGroupResponse {
    let members = response
        .members
        .into_iter()
        .map(|member| {
            let wire = JoinGroupResponseMember::default()
                .with_member_id(str_bytes(&member.member_id))
                .with_metadata(member.metadata);
            if version >= 5 {
                wire.with_group_instance_id(member.group_instance_id.as_deref().map(str_bytes))
            } else {
                wire
            }
        })
        .collect();
    let wire = JoinGroupResponse::default()
        .with_error_code(response.error_code)
        .with_generation_id(response.generation_id)
        .with_leader(str_bytes(&response.leader))
        .with_member_id(str_bytes(&response.member_id))
        .with_members(members);
    if version >= 7 {
        wire.with_protocol_type(response.protocol_type.as_deref().map(str_bytes))
            .with_protocol_name(response.protocol_name.as_deref().map(str_bytes))
    } else {
        // Non-nullable before v7.
        wire.with_protocol_name(Some(str_bytes(
            response.protocol_name.as_deref().unwrap_or(""),
        )))
    }
}

/// SyncGroup: the leader's assignment for every member; followers wait for it.
pub async fn sync(
    shard: &Rc<Shard>,
    partition: &OffsetsPartition,
    request: SyncGroupRequest,
    version: i16,
) -> SyncGroupResponse {
    let group_id = text(&request.group_id.0);
    if group_id.is_empty() {
        return sync_response(
            SyncResponse::error(KafkaError::InvalidGroupId.code()),
            version,
        );
    }
    let oversized = request
        .assignments
        .iter()
        .any(|a| a.assignment.len() > MEMBER_METADATA_BYTES_MAX);
    if oversized {
        return sync_response(
            SyncResponse::error(KafkaError::InvalidRequest.code()),
            version,
        );
    }
    let event = SyncRequest {
        member_id: text(&request.member_id),
        group_instance_id: request.group_instance_id.as_ref().map(text),
        generation_id: request.generation_id,
        protocol_type: request.protocol_type.as_ref().map(text),
        protocol_name: request.protocol_name.as_ref().map(text),
        assignments: request
            .assignments
            .iter()
            .map(|a| (text(&a.member_id), a.assignment.clone()))
            .collect(),
    };
    let now = now_ms();
    let waiting = partition.with_group(&group_id, false, |slot| {
        let reply = slot.group.sync(event, now);
        let outcome = match reply.outcome {
            SyncOutcome::Response(response) => Ok(response),
            SyncOutcome::Pending { member_id } => Err(slot.wait_for_sync(&member_id)),
        };
        partition.deliver(slot, reply.effects, now);
        outcome
    });
    shard.groups.schedule_group(partition, &group_id);
    let response = match waiting {
        None => SyncResponse::error(KafkaError::UnknownMemberId.code()),
        Some(Ok(response)) => response,
        Some(Err(receiver)) => receiver
            .await
            .unwrap_or_else(|_| SyncResponse::error(KafkaError::CoordinatorNotAvailable.code())),
    };
    sync_response(response, version)
}

pub fn sync_response(response: SyncResponse, version: i16) -> SyncGroupResponse {
    let wire = SyncGroupResponse::default()
        .with_error_code(response.error_code)
        .with_assignment(response.assignment);
    if version >= 5 {
        wire.with_protocol_type(response.protocol_type.as_deref().map(str_bytes))
            .with_protocol_name(response.protocol_name.as_deref().map(str_bytes))
    } else {
        wire
    }
}

/// Heartbeat: the error code is the whole answer (REBALANCE_IN_PROGRESS
/// tells the member to rejoin).
pub fn heartbeat(
    shard: &Rc<Shard>,
    partition: &OffsetsPartition,
    request: HeartbeatRequest,
) -> i16 {
    let group_id = text(&request.group_id.0);
    if group_id.is_empty() {
        return KafkaError::InvalidGroupId.code();
    }
    let event = GroupHeartbeat {
        member_id: text(&request.member_id),
        group_instance_id: request.group_instance_id.as_ref().map(text),
        generation_id: request.generation_id,
    };
    let now = now_ms();
    let code = partition
        .with_group(&group_id, false, |slot| {
            let reply = slot.group.heartbeat(event, now);
            partition.deliver(slot, reply.effects, now);
            reply.outcome
        })
        .unwrap_or(KafkaError::UnknownMemberId.code());
    shard.groups.schedule_group(partition, &group_id);
    code
}

/// LeaveGroup: one member (v0-2) or a batch (v3+, KIP-345).
pub fn leave(
    shard: &Rc<Shard>,
    partition: &OffsetsPartition,
    request: LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    let group_id = text(&request.group_id.0);
    let leaving: Vec<LeaveMember> = if version >= 3 {
        request
            .members
            .iter()
            .map(|m| LeaveMember {
                member_id: text(&m.member_id),
                group_instance_id: m.group_instance_id.as_ref().map(text),
            })
            .collect()
    } else {
        vec![LeaveMember {
            member_id: text(&request.member_id),
            group_instance_id: None,
        }]
    };
    if group_id.is_empty() {
        return LeaveGroupResponse::default().with_error_code(KafkaError::InvalidGroupId.code());
    }
    let now = now_ms();
    let outcome = partition.with_group(&group_id, false, |slot| {
        let reply = slot.group.leave(&leaving, now);
        partition.deliver(slot, reply.effects, now);
        reply.outcome
    });
    shard.groups.schedule_group(partition, &group_id);
    let unknown = KafkaError::UnknownMemberId.code();
    let (error_code, members) = match outcome {
        Some(outcome) => (
            outcome.error_code,
            outcome
                .members
                .into_iter()
                .map(|m| (m.member_id, m.group_instance_id, m.error_code))
                .collect(),
        ),
        // Kafka: an unknown group answers each member UNKNOWN_MEMBER_ID.
        None => (
            NONE,
            leaving
                .into_iter()
                .map(|m| (m.member_id, m.group_instance_id, unknown))
                .collect::<Vec<_>>(),
        ),
    };
    if version >= 3 {
        LeaveGroupResponse::default()
            .with_error_code(error_code)
            .with_members(
                members
                    .into_iter()
                    .map(|(member_id, instance_id, code)| {
                        MemberResponse::default()
                            .with_member_id(str_bytes(&member_id))
                            .with_group_instance_id(instance_id.as_deref().map(str_bytes))
                            .with_error_code(code)
                    })
                    .collect(),
            )
    } else {
        // One member: its own error is the answer.
        let member_code = members.first().map_or(unknown, |(_, _, code)| *code);
        let code = if error_code != NONE {
            error_code
        } else {
            member_code
        };
        LeaveGroupResponse::default().with_error_code(code)
    }
}

/// Topics a consumer-protocol subscription names (ConsumerProtocolSubscription
/// v0+: version, then an array of topic strings), `None` if it does not parse.
/// OffsetDelete uses it to refuse deleting offsets of subscribed topics.
pub fn subscribed_topics(metadata: &Bytes) -> Option<Vec<String>> {
    let bytes = metadata.as_ref();
    let mut at = 2usize; // version
    let count = i32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?);
    at += 4;
    if count < 0 || count as usize > bytes.len() {
        return None;
    }
    let mut topics = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let length = i16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?);
        at += 2;
        let length = usize::try_from(length).ok()?;
        let name = std::str::from_utf8(bytes.get(at..at + length)?).ok()?;
        at += length;
        topics.push(name.to_string());
    }
    Some(topics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_parse_and_garbage_does_not() {
        let mut metadata = vec![0, 1, 0, 0, 0, 2];
        metadata.extend_from_slice(&[0, 6]);
        metadata.extend_from_slice(b"orders");
        metadata.extend_from_slice(&[0, 1]);
        metadata.extend_from_slice(b"x");
        metadata.extend_from_slice(&[0, 0, 0, 0]); // user data etc.
        assert_eq!(
            subscribed_topics(&Bytes::from(metadata)),
            Some(vec!["orders".to_string(), "x".to_string()])
        );
        assert_eq!(subscribed_topics(&Bytes::from_static(b"")), None);
        assert_eq!(
            subscribed_topics(&Bytes::from_static(&[0, 0, 0x7f, 0xff, 0xff, 0xff])),
            None
        );
        assert_eq!(
            subscribed_topics(&Bytes::from_static(&[0, 0, 0, 0, 0, 1, 0x7f, 0xff])),
            None
        );
    }
}
