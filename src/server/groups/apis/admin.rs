//! DescribeGroups, ListGroups (every shard's groups) and DeleteGroups on
//! the connection's shard.

use std::rc::Rc;

use futures::future::join_all;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::list_groups_response::ListedGroup as WireListedGroup;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::{str_bytes, unexpected};
use crate::protocol::errors::{KafkaError, NONE};
use crate::server::groups::describe::{DescribedGroupState, ListGroupsFilter, ListedGroup};
use crate::server::groups::{
    offsets_topic, route, GroupAnswer, GroupCall, ListGroupsCall, GROUP_AUTHORIZED_OPERATIONS,
};
use crate::server::routing;
use crate::server::shard::Shard;

pub async fn describe_groups(
    shard: &Rc<Shard>,
    request: DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let include_operations = version >= 3 && request.include_authorized_operations;
    let described = request.groups.into_iter().map(|group_id| async move {
        let state = described_state(shard, group_id.0.as_str()).await;
        wire_described(group_id, state, version, include_operations)
    });
    DescribeGroupsResponse::default().with_groups(join_all(described).await)
}

/// A group as its coordinator describes it (NOT_COORDINATOR when that is
/// another broker).
async fn described_state(shard: &Rc<Shard>, group_id: &str) -> DescribedGroupState {
    if shard
        .catalog()
        .topic(offsets_topic::OFFSETS_TOPIC)
        .is_none()
    {
        // No group was ever coordinated: do not create the topic to say so.
        return DescribedGroupState::not_found();
    }
    let call = GroupCall::Describe {
        group_id: group_id.to_string(),
    };
    match route(shard, group_id, call).await {
        GroupAnswer::Described(state) => state,
        other => DescribedGroupState::error(unexpected(other)),
    }
}

fn wire_described(
    group_id: GroupId,
    mut state: DescribedGroupState,
    version: i16,
    include_operations: bool,
) -> DescribedGroup {
    // KIP-1043: from v6 an unknown group is an error with Kafka's message
    // (GroupMetadataManager's "Group %s not found."), still in state Dead.
    let error_message = if version >= 6 && !state.exists && state.error_code == NONE {
        state.error_code = KafkaError::GroupIdNotFound.code();
        let message = if state.consumer_group {
            format!("Group {} is not a classic group.", group_id.0.as_str())
        } else {
            format!("Group {} not found.", group_id.0.as_str())
        };
        Some(str_bytes(&message))
    } else {
        None
    };
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
    let wire = if version >= 6 {
        wire.with_error_message(error_message)
    } else {
        wire
    };
    // Kafka fills the operations in only for groups described without error.
    if include_operations && wire.error_code == NONE {
        wire.with_authorized_operations(GROUP_AUTHORIZED_OPERATIONS)
    } else {
        wire
    }
}

/// ConsumerGroupDescribe (KIP-848): each group from its coordinator. A
/// classic group is GROUP_ID_NOT_FOUND ("Group X is not a consumer
/// group."), which sends the Java Admin client on to DescribeGroups.
pub async fn consumer_group_describe(
    shard: &Rc<Shard>,
    request: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let include_operations = request.include_authorized_operations;
    let described = request.group_ids.into_iter().map(|group_id| async move {
        let id = group_id.0.as_str().to_string();
        let wire = consumer_group_describe_response::DescribedGroup::default()
            .with_group_id(group_id.clone());
        if id.is_empty() {
            return wire
                .with_error_code(KafkaError::InvalidGroupId.code())
                .with_error_message(Some(str_bytes("Group ID can't be empty.")));
        }
        if shard
            .catalog()
            .topic(offsets_topic::OFFSETS_TOPIC)
            .is_none()
        {
            return wire
                .with_error_code(KafkaError::GroupIdNotFound.code())
                .with_error_message(Some(str_bytes(&format!("Group {id} not found."))));
        }
        let call = GroupCall::ConsumerDescribe {
            group_id: id.clone(),
            include_operations,
        };
        match route(shard, &id, call).await {
            GroupAnswer::ConsumerDescribed(described) => described,
            other => wire.with_error_code(unexpected(other)),
        }
    });
    ConsumerGroupDescribeResponse::default().with_groups(join_all(described).await)
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
    let mut listed = Vec::new();
    let mut error_code = NONE;
    for reply in routing::call_every_shard(shard, ListGroupsCall(filter)).await {
        match reply {
            Ok(groups) => listed.extend(groups),
            Err(_) => error_code = KafkaError::CoordinatorNotAvailable.code(),
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
                wire.with_group_type(StrBytes::from_static_str(group.group_type))
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
