//! OffsetCommit v10 and OffsetFetch v10 (KIP-848, Kafka 4.2) on the
//! connection's shard: topics arrive by id only. Each id is resolved to its
//! name through this shard's catalog, the v9 path (`offsets`) does the work,
//! and the answer goes back by id. The coordinator shard never sees an id:
//! offsets stay keyed by topic name, as in `__consumer_offsets`.
//!
//! An id the catalog does not know is answered UNKNOWN_TOPIC_ID on each of
//! its partitions, as Kafka 4.2 does, without asking the coordinator.

use std::collections::HashMap;
use std::rc::Rc;

use futures::future::join_all;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{GroupId, OffsetCommitRequest, TopicName};
use uuid::Uuid;

use super::offsets::{fetch_group_offsets, offset_commit};
use super::str_bytes;
use crate::metadata::catalog::Catalog;
use crate::protocol::errors::{KafkaError, NONE};
use crate::protocol::offsets_v10::{
    CommitResponsePartitionV10, CommitResponseTopicV10, FetchResponseGroupV10,
    FetchResponsePartitionV10, FetchResponseTopicV10, OffsetCommitRequestV10,
    OffsetCommitResponseV10, OffsetFetchRequestV10, OffsetFetchResponseV10,
};
use crate::server::groups::offsets::FetchedPartition;
use crate::server::shard::Shard;

/// The v9 request version the id-free work is done at: v10 changes only how
/// topics are named, so the coordinator applies v9's rules.
const NAMED_VERSION: i16 = 9;

fn topic_name(catalog: &Catalog, topic_id: &Uuid) -> Option<String> {
    catalog
        .topic_by_id(topic_id)
        .map(|topic| topic.name.to_string())
}

pub async fn offset_commit_v10(
    shard: &Rc<Shard>,
    request: OffsetCommitRequestV10,
) -> OffsetCommitResponseV10 {
    let catalog = shard.catalog();
    let mut ids_by_name: HashMap<String, Uuid> = HashMap::new();
    let mut named_topics = Vec::new();
    let mut unknown_topics = Vec::new();
    for topic in request.topics {
        let Some(name) = topic_name(&catalog, &topic.topic_id) else {
            unknown_topics.push(CommitResponseTopicV10 {
                topic_id: topic.topic_id,
                partitions: topic
                    .partitions
                    .iter()
                    .map(|partition| CommitResponsePartitionV10 {
                        partition_index: partition.partition_index,
                        error_code: KafkaError::UnknownTopicId.code(),
                    })
                    .collect(),
            });
            continue;
        };
        ids_by_name.insert(name.clone(), topic.topic_id);
        let partitions = topic
            .partitions
            .into_iter()
            .map(|partition| {
                OffsetCommitRequestPartition::default()
                    .with_partition_index(partition.partition_index)
                    .with_committed_offset(partition.committed_offset)
                    .with_committed_leader_epoch(partition.committed_leader_epoch)
                    .with_committed_metadata(partition.committed_metadata.as_deref().map(str_bytes))
            })
            .collect();
        named_topics.push(
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(str_bytes(&name)))
                .with_partitions(partitions),
        );
    }
    let mut topics = Vec::new();
    if !named_topics.is_empty() {
        let named = OffsetCommitRequest::default()
            .with_group_id(GroupId(str_bytes(&request.group_id)))
            .with_generation_id_or_member_epoch(request.generation_id_or_member_epoch)
            .with_member_id(str_bytes(&request.member_id))
            .with_group_instance_id(request.group_instance_id.as_deref().map(str_bytes))
            .with_topics(named_topics);
        let response = offset_commit(shard, named, NAMED_VERSION).await;
        for topic in response.topics {
            let Some(topic_id) = ids_by_name.get(topic.name.0.as_str()) else {
                // The coordinator answers for the names it was given.
                debug_assert!(false, "commit answered an unasked topic {:?}", topic.name);
                continue;
            };
            topics.push(CommitResponseTopicV10 {
                topic_id: *topic_id,
                partitions: topic
                    .partitions
                    .iter()
                    .map(|partition| CommitResponsePartitionV10 {
                        partition_index: partition.partition_index,
                        error_code: partition.error_code,
                    })
                    .collect(),
            });
        }
    }
    topics.extend(unknown_topics);
    OffsetCommitResponseV10 {
        throttle_time_ms: 0,
        topics,
    }
}

pub async fn offset_fetch_v10(
    shard: &Rc<Shard>,
    request: OffsetFetchRequestV10,
) -> OffsetFetchResponseV10 {
    let require_stable = request.require_stable;
    let fetches = request.groups.into_iter().map(|group| async move {
        let catalog = shard.catalog();
        let mut unknown_topics = Vec::new();
        let named_topics = group.topics.map(|topics| {
            let mut named = Vec::new();
            for topic in topics {
                match topic_name(&catalog, &topic.topic_id) {
                    Some(name) => named.push((name, topic.partition_indexes)),
                    None => unknown_topics
                        .push(unknown_topic_id(topic.topic_id, &topic.partition_indexes)),
                }
            }
            named
        });
        let member = group
            .member_id
            .map(|member_id| (member_id, group.member_epoch));
        let fetched = fetch_group_offsets(
            shard,
            group.group_id.clone(),
            named_topics,
            require_stable,
            member,
        )
        .await;
        if fetched.error_code != NONE {
            // A group-level error answers the whole group, as in v8-9.
            return FetchResponseGroupV10 {
                group_id: group.group_id,
                topics: Vec::new(),
                error_code: fetched.error_code,
            };
        }
        // Offsets of a topic deleted since its commit have no id to be
        // named by; a v10 client cannot ask for them, so they are left out.
        let mut topics: Vec<FetchResponseTopicV10> = fetched
            .topics
            .into_iter()
            .filter_map(|(name, partitions)| {
                let topic = catalog.topic(&name)?;
                Some(FetchResponseTopicV10 {
                    topic_id: topic.topic_id,
                    partitions: partitions.into_iter().map(wire_partition).collect(),
                })
            })
            .collect();
        topics.extend(unknown_topics);
        FetchResponseGroupV10 {
            group_id: group.group_id,
            topics,
            error_code: NONE,
        }
    });
    OffsetFetchResponseV10 {
        throttle_time_ms: 0,
        groups: join_all(fetches).await,
    }
}

fn wire_partition(partition: FetchedPartition) -> FetchResponsePartitionV10 {
    FetchResponsePartitionV10 {
        partition_index: partition.partition,
        committed_offset: partition.offset,
        committed_leader_epoch: partition.leader_epoch,
        metadata: Some(partition.metadata),
        error_code: partition.error_code,
    }
}

fn unknown_topic_id(topic_id: Uuid, partition_indexes: &[i32]) -> FetchResponseTopicV10 {
    FetchResponseTopicV10 {
        topic_id,
        partitions: partition_indexes
            .iter()
            .map(|index| FetchResponsePartitionV10 {
                partition_index: *index,
                committed_offset: -1,
                committed_leader_epoch: -1,
                metadata: Some(String::new()),
                error_code: KafkaError::UnknownTopicId.code(),
            })
            .collect(),
    }
}
