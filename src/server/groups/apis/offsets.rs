//! OffsetCommit, OffsetFetch (one group, or several from v8) and
//! OffsetDelete on the connection's shard.

use std::rc::Rc;

use futures::future::join_all;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::*;

use super::{str_bytes, unexpected};
use crate::protocol::errors::NONE;
use crate::server::groups::offsets::{FetchedOffsets, FetchedPartition};
use crate::server::groups::{route, GroupAnswer, GroupCall};
use crate::server::shard::Shard;

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
pub(super) async fn fetch_group_offsets(
    shard: &Rc<Shard>,
    group_id: String,
    topics: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
    member: Option<(String, i32)>,
) -> FetchedOffsets {
    let call = GroupCall::FetchOffsets {
        group_id: group_id.clone(),
        topics,
        require_stable,
        member,
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
    // v7+ (KIP-447); the decoder leaves it false for older versions.
    let require_stable = request.require_stable;
    if version >= 8 {
        let fetches = request.groups.into_iter().map(|group| {
            let topics = group.topics.map(|topics| {
                topics
                    .into_iter()
                    .map(|t| (t.name.0.as_str().to_string(), t.partition_indexes))
                    .collect()
            });
            let group_id = group.group_id;
            // v9+ (KIP-848): a consumer-protocol member names itself.
            let member = group
                .member_id
                .map(|member_id| (member_id.as_str().to_string(), group.member_epoch));
            async move {
                let fetched = fetch_group_offsets(
                    shard,
                    group_id.0.as_str().to_string(),
                    topics,
                    require_stable,
                    member,
                )
                .await;
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
    let group_id = request.group_id.0.as_str().to_string();
    let fetched = fetch_group_offsets(shard, group_id, topics, require_stable, None).await;
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
                        .map(|partition| FetchedPartition {
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
