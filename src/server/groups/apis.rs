//! The group API handlers on the connection's shard: FindCoordinator, and
//! for every other group API the split by group, the call to each group's
//! coordinator shard, and the response shaped for the request's version
//! (including the errors answered when a coordinator cannot be reached).

use std::net::SocketAddr;
use std::rc::Rc;

use futures::future::join_all;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::list_groups_response::ListedGroup as WireListedGroup;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::describe::{DescribedGroupState, ListGroupsFilter, ListedGroup};
use super::offsets::FetchedOffsets;
use super::{offsets_topic, route, ClientInfo, GroupAnswer, GroupCall};
use crate::group::{JoinResponse, SyncResponse};
use crate::protocol::errors::{KafkaError, NONE};
use crate::server::forward::{ShardReply, ShardRequest};
use crate::server::shard::Shard;

/// FindCoordinator key type of a consumer group (1 is a transactional id).
const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

/// DescribeGroups `authorized_operations` when asked for: READ, DELETE and
/// DESCRIBE (bits 3, 6, 8), everything a group allows with no authorizer.
const GROUP_AUTHORIZED_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);

fn str_bytes(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

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

/// FindCoordinator: every group's coordinator is this broker (its shards
/// forward among themselves); the offsets topic is created on first use.
pub async fn find_coordinator(
    shard: &Rc<Shard>,
    request: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let code = match request.key_type {
        KEY_TYPE_GROUP => offsets_topic::ensure(shard).await.err().unwrap_or(NONE),
        // Transactions are not implemented (yet): no coordinator to give.
        KEY_TYPE_TRANSACTION => KafkaError::CoordinatorNotAvailable.code(),
        _ => KafkaError::InvalidRequest.code(),
    };
    let config = &shard.config;
    let (node_id, host, port) = if code == NONE {
        (
            config.node_id,
            str_bytes(&config.advertised_host),
            i32::from(config.advertised_port),
        )
    } else {
        (-1, StrBytes::default(), -1)
    };
    let message = |code: i16| {
        (code != NONE).then(|| {
            KafkaError::try_from_code(code)
                .map(|e| e.to_string())
                .unwrap_or_default()
        })
    };
    if version >= 4 {
        let coordinators = request
            .coordinator_keys
            .iter()
            .map(|key| {
                Coordinator::default()
                    .with_key(key.clone())
                    .with_node_id(BrokerId(node_id))
                    .with_host(host.clone())
                    .with_port(port)
                    .with_error_code(code)
                    .with_error_message(message(code).map(|m| str_bytes(&m)))
            })
            .collect();
        return FindCoordinatorResponse::default()
            .with_error_message(None)
            .with_coordinators(coordinators);
    }
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
            super::membership::join_response(JoinResponse::error(&member_id, code), version)
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
        other => super::membership::sync_response(SyncResponse::error(unexpected(other)), version),
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

pub async fn offset_commit(
    shard: &Rc<Shard>,
    request: OffsetCommitRequest,
    version: i16,
) -> OffsetCommitResponse {
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
    match route(shard, &group_id, GroupCall::Commit { request, version }).await {
        GroupAnswer::Commit(response) => response,
        other => {
            let code = unexpected(other);
            let topics = named
                .into_iter()
                .map(|(name, partitions)| {
                    OffsetCommitResponseTopic::default()
                        .with_name(name)
                        .with_partitions(
                            partitions
                                .into_iter()
                                .map(|index| {
                                    OffsetCommitResponsePartition::default()
                                        .with_partition_index(index)
                                        .with_error_code(code)
                                })
                                .collect(),
                        )
                })
                .collect();
            OffsetCommitResponse::default().with_topics(topics)
        }
    }
}

/// One group's OffsetFetch, wherever its coordinator is.
async fn fetch_group_offsets(
    shard: &Rc<Shard>,
    group_id: String,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> FetchedOffsets {
    let call = GroupCall::FetchOffsets {
        group_id: group_id.clone(),
        topics,
    };
    match route(shard, &group_id, call).await {
        GroupAnswer::FetchedOffsets(fetched) => fetched,
        other => FetchedOffsets {
            error_code: unexpected(other),
            topics: Vec::new(),
        },
    }
}

pub async fn offset_fetch(
    shard: &Rc<Shard>,
    request: OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    if version >= 8 {
        let fetches = request.groups.into_iter().map(|group| {
            let topics = group.topics.map(|topics| {
                topics
                    .into_iter()
                    .map(|t| (t.name.0.as_str().to_string(), t.partition_indexes))
                    .collect()
            });
            let group_id = group.group_id;
            async move {
                let fetched =
                    fetch_group_offsets(shard, group_id.0.as_str().to_string(), topics).await;
                wire_group(group_id, fetched)
            }
        });
        return OffsetFetchResponse::default().with_groups(join_all(fetches).await);
    }
    let topics = request.topics.map(|topics| {
        topics
            .into_iter()
            .map(|t| (t.name.0.as_str().to_string(), t.partition_indexes))
            .collect::<Vec<_>>()
    });
    let requested = topics.clone();
    let fetched = fetch_group_offsets(shard, request.group_id.0.as_str().to_string(), topics).await;
    // v0-1 have no group-level error: each requested partition carries it.
    let fetched = if version < 2 && fetched.error_code != NONE {
        let code = fetched.error_code;
        FetchedOffsets {
            error_code: NONE,
            topics: requested
                .unwrap_or_default()
                .into_iter()
                .map(|(topic, partitions)| {
                    let parts = partitions
                        .into_iter()
                        .map(|partition| super::offsets::FetchedPartition {
                            partition,
                            offset: -1,
                            leader_epoch: -1,
                            metadata: String::new(),
                            error_code: code,
                        })
                        .collect();
                    (topic, parts)
                })
                .collect(),
        }
    } else {
        fetched
    };
    let topics = fetched
        .topics
        .into_iter()
        .map(|(topic, partitions)| {
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(str_bytes(&topic)))
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|p| {
                            let wire = OffsetFetchResponsePartition::default()
                                .with_partition_index(p.partition)
                                .with_committed_offset(p.offset)
                                .with_metadata(Some(str_bytes(&p.metadata)))
                                .with_error_code(p.error_code);
                            if version >= 5 {
                                wire.with_committed_leader_epoch(p.leader_epoch)
                            } else {
                                wire
                            }
                        })
                        .collect(),
                )
        })
        .collect();
    let response = OffsetFetchResponse::default().with_topics(topics);
    if version >= 2 {
        response.with_error_code(fetched.error_code)
    } else {
        response
    }
}

fn wire_group(group_id: GroupId, fetched: FetchedOffsets) -> OffsetFetchResponseGroup {
    OffsetFetchResponseGroup::default()
        .with_group_id(group_id)
        .with_error_code(fetched.error_code)
        .with_topics(
            fetched
                .topics
                .into_iter()
                .map(|(topic, partitions)| {
                    OffsetFetchResponseTopics::default()
                        .with_name(TopicName(str_bytes(&topic)))
                        .with_partitions(
                            partitions
                                .into_iter()
                                .map(|p| {
                                    OffsetFetchResponsePartitions::default()
                                        .with_partition_index(p.partition)
                                        .with_committed_offset(p.offset)
                                        .with_committed_leader_epoch(p.leader_epoch)
                                        .with_metadata(Some(str_bytes(&p.metadata)))
                                        .with_error_code(p.error_code)
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
}

pub async fn describe_groups(
    shard: &Rc<Shard>,
    request: DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let include_operations = version >= 3 && request.include_authorized_operations;
    let described = request.groups.into_iter().map(|group_id| async move {
        let id = group_id.0.as_str().to_string();
        let state = if shard
            .catalog()
            .topic(offsets_topic::OFFSETS_TOPIC)
            .is_none()
        {
            // No group was ever coordinated: do not create the topic to say so.
            DescribedGroupState::dead()
        } else {
            match route(
                shard,
                &id,
                GroupCall::Describe {
                    group_id: id.clone(),
                },
            )
            .await
            {
                GroupAnswer::Described(state) => state,
                other => DescribedGroupState::error(unexpected(other)),
            }
        };
        wire_described(group_id, state, version, include_operations)
    });
    DescribeGroupsResponse::default().with_groups(join_all(described).await)
}

fn wire_described(
    group_id: GroupId,
    state: DescribedGroupState,
    version: i16,
    include_operations: bool,
) -> DescribedGroup {
    let members = state
        .members
        .into_iter()
        .map(|member| {
            let wire = DescribedGroupMember::default()
                .with_member_id(str_bytes(&member.member_id))
                .with_client_id(str_bytes(&member.client_id))
                .with_client_host(str_bytes(&member.client_host))
                .with_member_metadata(member.metadata)
                .with_member_assignment(member.assignment);
            if version >= 4 {
                wire.with_group_instance_id(member.group_instance_id.as_deref().map(str_bytes))
            } else {
                wire
            }
        })
        .collect();
    let wire = DescribedGroup::default()
        .with_error_code(state.error_code)
        .with_group_id(group_id)
        .with_group_state(StrBytes::from_static_str(state.state))
        .with_protocol_type(str_bytes(&state.protocol_type))
        .with_protocol_data(str_bytes(&state.protocol))
        .with_members(members);
    if include_operations {
        wire.with_authorized_operations(GROUP_AUTHORIZED_OPERATIONS)
    } else {
        wire
    }
}

pub async fn list_groups(
    shard: &Rc<Shard>,
    request: ListGroupsRequest,
    version: i16,
) -> ListGroupsResponse {
    let filter = ListGroupsFilter {
        states: if version >= 4 {
            request
                .states_filter
                .iter()
                .map(|s| s.to_string())
                .collect()
        } else {
            Vec::new()
        },
        types: if version >= 5 {
            request.types_filter.iter().map(|s| s.to_string()).collect()
        } else {
            Vec::new()
        },
    };
    let mut listed = super::list_local_groups(shard, &filter);
    let mut error_code = NONE;
    let others = (0..shard.shard_count).filter(|&s| s != shard.id);
    let replies = join_all(others.map(|other| {
        let filter = filter.clone();
        async move {
            shard
                .call_shard(other, ShardRequest::ListGroups(filter))
                .await
        }
    }))
    .await;
    for reply in replies {
        match reply {
            Ok(ShardReply::ListedGroups(groups)) => listed.extend(groups),
            _ => error_code = KafkaError::CoordinatorNotAvailable.code(),
        }
    }
    listed.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    let groups = listed
        .into_iter()
        .map(|group: ListedGroup| {
            let wire = WireListedGroup::default()
                .with_group_id(GroupId(str_bytes(&group.group_id)))
                .with_protocol_type(str_bytes(&group.protocol_type));
            let wire = if version >= 4 {
                wire.with_group_state(StrBytes::from_static_str(group.state))
            } else {
                wire
            };
            if version >= 5 {
                wire.with_group_type(StrBytes::from_static_str("classic"))
            } else {
                wire
            }
        })
        .collect();
    ListGroupsResponse::default()
        .with_error_code(error_code)
        .with_groups(groups)
}

pub async fn delete_groups(
    shard: &Rc<Shard>,
    request: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let results = request.groups_names.into_iter().map(|group_id| async move {
        let id = group_id.0.as_str().to_string();
        let code = if shard
            .catalog()
            .topic(offsets_topic::OFFSETS_TOPIC)
            .is_none()
        {
            KafkaError::GroupIdNotFound.code()
        } else {
            match route(
                shard,
                &id,
                GroupCall::Delete {
                    group_id: id.clone(),
                },
            )
            .await
            {
                GroupAnswer::Deleted(code) => code,
                other => unexpected(other),
            }
        };
        DeletableGroupResult::default()
            .with_group_id(group_id)
            .with_error_code(code)
    });
    DeleteGroupsResponse::default().with_results(join_all(results).await)
}

pub async fn offset_delete(
    shard: &Rc<Shard>,
    request: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let group_id = request.group_id.0.as_str().to_string();
    match route(shard, &group_id, GroupCall::DeleteOffsets { request }).await {
        GroupAnswer::DeletedOffsets(response) => response,
        other => OffsetDeleteResponse::default().with_error_code(unexpected(other)),
    }
}

/// The error to answer when the coordinator gave no answer of the right
/// kind (it could not be reached or is not loaded here).
fn unexpected(answer: GroupAnswer) -> i16 {
    match answer {
        GroupAnswer::Unavailable(code) => code,
        other => {
            tracing::error!(?other, "group coordinator answered the wrong kind");
            KafkaError::CoordinatorNotAvailable.code()
        }
    }
}
