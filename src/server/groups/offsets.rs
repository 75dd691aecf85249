//! OffsetCommit, OffsetFetch and OffsetDelete on the coordinator shard:
//! the group checks (generation, member), per-partition checks, and the
//! records appended to the offsets partition.

use std::rc::Rc;

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::*;

use super::coordinator::OffsetsPartition;
use super::membership::subscribed_topics;
use crate::group::modern::{ConsumerGroup, OffsetAccessError};
use crate::group::offset_records::{OffsetCommitKey, OffsetCommitValue, OffsetsRecord};
use crate::group::GroupState;
use crate::protocol::errors::{KafkaError, NONE};
use crate::runtime::clock::now_ms;
use crate::server::shard::Shard;

/// One partition's committed offset as OffsetFetch reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedPartition {
    pub partition: i32,
    /// -1 when nothing is committed.
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub error_code: i16,
}

/// One group's OffsetFetch answer: a group-level error and, by topic, the
/// partitions' committed offsets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchedOffsets {
    pub error_code: i16,
    pub topics: Vec<(String, Vec<FetchedPartition>)>,
}

/// Whether `topic`/`partition` exists (commits to unknown partitions are
/// refused with UNKNOWN_TOPIC_OR_PARTITION, as Kafka 4 does).
pub(super) fn partition_exists(shard: &Shard, topic: &str, partition: i32) -> bool {
    shard
        .catalog()
        .topic(topic)
        .is_some_and(|t| t.has_partition(partition))
}

/// The answer of a consumer group (KIP-848) to a commit: `None` when the
/// group id is not one (the classic checks apply), else the error code.
pub(super) fn consumer_group_commit_check(
    partition: &OffsetsPartition,
    group_id: &str,
    check: impl FnOnce(&ConsumerGroup) -> Result<(), OffsetAccessError>,
) -> Option<i16> {
    let offsets = partition.offsets.borrow();
    let group = offsets
        .consumer_group(group_id)
        .filter(|group| !group.is_unborn())?;
    Some(check(group).map_or_else(|error| error.code(), |()| NONE))
}

/// OffsetCommit for one group.
pub async fn commit(
    shard: &Rc<Shard>,
    partition: &OffsetsPartition,
    request: OffsetCommitRequest,
    version: i16,
) -> OffsetCommitResponse {
    let group_id = request.group_id.0.as_str().to_string();
    let member_id = request.member_id.as_str();
    let instance_id = request.group_instance_id.as_ref().map(|id| id.as_str());
    let generation = request.generation_id_or_member_epoch;
    let now = now_ms();
    let consumer_code = consumer_group_commit_check(partition, &group_id, |group| {
        group.validate_offset_commit(member_id, generation, false, version)
    });
    let group_code = partition.with_group(&group_id, false, |slot| {
        let reply = slot
            .group
            .validate_offset_commit(member_id, instance_id, generation, now);
        partition.deliver(slot, reply.effects, now);
        reply.outcome
    });
    let group_code = match (consumer_code, group_code) {
        (Some(code), _) => code,
        (None, Some(code)) => code,
        // A standalone (assign()) consumer: the group exists from now on.
        (None, None) if generation < 0 => {
            partition.with_group(&group_id, true, |_| ());
            NONE
        }
        // Kafka 4: v9+ says the group does not exist; older versions
        // answered ILLEGAL_GENERATION.
        (None, None) if version >= 9 => KafkaError::GroupIdNotFound.code(),
        (None, None) => KafkaError::IllegalGeneration.code(),
    };
    shard.groups.schedule_group(partition, &group_id);
    // v2-v4 could ask for an explicit retention; later versions use the broker's.
    let expire_timestamp_ms = if version <= 4 && request.retention_time_ms >= 0 {
        now.saturating_add(request.retention_time_ms)
    } else {
        -1
    };
    let metadata_max = shard.config.groups.offset_metadata_max_bytes;
    let mut records = Vec::new();
    let mut results: Vec<(usize, usize, i16)> = Vec::new();
    for (t, topic) in request.topics.iter().enumerate() {
        for (p, part) in topic.partitions.iter().enumerate() {
            let metadata = part.committed_metadata.as_ref().map_or("", |m| m.as_str());
            let code = if group_code != NONE {
                group_code
            } else if !partition_exists(shard, topic.name.0.as_str(), part.partition_index) {
                KafkaError::UnknownTopicOrPartition.code()
            } else if metadata.len() > metadata_max {
                KafkaError::OffsetMetadataTooLarge.code()
            } else {
                records.push(OffsetsRecord::OffsetCommit {
                    key: OffsetCommitKey {
                        group: group_id.clone(),
                        topic: topic.name.0.as_str().to_string(),
                        partition: part.partition_index,
                    },
                    value: Some(OffsetCommitValue {
                        offset: part.committed_offset,
                        leader_epoch: if version >= 6 {
                            part.committed_leader_epoch
                        } else {
                            -1
                        },
                        metadata: metadata.to_string(),
                        commit_timestamp_ms: now,
                        expire_timestamp_ms,
                    }),
                });
                NONE
            };
            results.push((t, p, code));
        }
    }
    let write_code = partition.append_durably(records, now).await;
    let mut topics: Vec<OffsetCommitResponseTopic> = request
        .topics
        .iter()
        .map(|topic| OffsetCommitResponseTopic::default().with_name(topic.name.clone()))
        .collect();
    for (t, p, code) in results {
        let code = if code == NONE { write_code } else { code };
        let index = request.topics[t].partitions[p].partition_index;
        topics[t].partitions.push(
            OffsetCommitResponsePartition::default()
                .with_partition_index(index)
                .with_error_code(code),
        );
    }
    OffsetCommitResponse::default().with_topics(topics)
}

/// OffsetFetch for one group: the requested partitions, or every committed
/// one when `topics` is `None`. Partitions without a commit get offset -1.
/// With `require_stable` (v7+, KIP-447) a partition with a transactional
/// commit still waiting for its marker answers UNSTABLE_OFFSET_COMMIT with
/// no offset (the client retries); without it the last committed offset
/// is answered, as Kafka does.
pub fn fetch(
    partition: &OffsetsPartition,
    group_id: &str,
    topics: Option<&[(String, Vec<i32>)]>,
    require_stable: bool,
    member: Option<(String, i32)>,
) -> FetchedOffsets {
    let offsets = partition.offsets.borrow();
    if let Some(group) = offsets.consumer_group(group_id) {
        let (member_id, member_epoch) = match &member {
            Some((member_id, epoch)) => (Some(member_id.as_str()), *epoch),
            None => (None, -1),
        };
        if let Err(error) = group.validate_offset_fetch(member_id, member_epoch) {
            return FetchedOffsets {
                error_code: error.code(),
                topics: Vec::new(),
            };
        }
    }
    let unstable =
        |topic: &str, index: i32| require_stable && offsets.has_pending(group_id, topic, index);
    let fetched = |topic: &str, index: i32| match offsets.fetch(group_id, topic, index) {
        _ if unstable(topic, index) => FetchedPartition {
            partition: index,
            offset: -1,
            leader_epoch: -1,
            metadata: String::new(),
            error_code: KafkaError::UnstableOffsetCommit.code(),
        },
        Some(value) => FetchedPartition {
            partition: index,
            offset: value.offset,
            leader_epoch: value.leader_epoch,
            metadata: value.metadata.clone(),
            error_code: NONE,
        },
        None => FetchedPartition {
            partition: index,
            offset: -1,
            leader_epoch: -1,
            metadata: String::new(),
            error_code: NONE,
        },
    };
    let topics = match topics {
        Some(topics) => topics
            .iter()
            .map(|(topic, partitions)| {
                let parts = partitions.iter().map(|&p| fetched(topic, p)).collect();
                (topic.clone(), parts)
            })
            .collect(),
        None => {
            let mut by_topic: Vec<(String, Vec<FetchedPartition>)> = Vec::new();
            for (topic, index, _) in offsets.offsets_of(group_id) {
                if by_topic.last().is_none_or(|(last, _)| last != topic) {
                    by_topic.push((topic.to_string(), Vec::new()));
                }
                if let Some((_, parts)) = by_topic.last_mut() {
                    parts.push(fetched(topic, index));
                }
            }
            by_topic
        }
    };
    FetchedOffsets {
        error_code: NONE,
        topics,
    }
}

/// OffsetDelete (KIP-496): an Empty group loses the offsets named; a
/// consumer group with members loses those of topics it is not subscribed to.
pub async fn delete_offsets(
    shard: &Rc<Shard>,
    partition: &OffsetsPartition,
    request: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let group_id = request.group_id.0.as_str().to_string();
    let refuse = |code: i16| OffsetDeleteResponse::default().with_error_code(code);
    // Topics that must keep their offsets, or the group-level refusal. A
    // consumer group (KIP-848) keeps those its members subscribe to.
    let consumer_subscribed: Option<Vec<String>> = partition
        .offsets
        .borrow()
        .consumer_group(&group_id)
        .filter(|group| !group.is_unborn())
        .map(|group| group.subscription_metadata().keys().cloned().collect());
    let subscribed: Result<Vec<String>, i16> = match consumer_subscribed {
        Some(topics) => Ok(topics),
        None => partition
            .with_group(&group_id, false, |slot| {
                let group = &slot.group;
                match group.state() {
                    GroupState::Dead => Err(KafkaError::GroupIdNotFound.code()),
                    GroupState::Empty => Ok(Vec::new()),
                    _ if group.protocol_type() == Some("consumer") => {
                        let protocol = group.protocol_name().unwrap_or("");
                        Ok(group
                            .members()
                            .iter()
                            .filter_map(|m| m.metadata(protocol).and_then(subscribed_topics))
                            .flatten()
                            .collect())
                    }
                    _ => Err(KafkaError::NonEmptyGroup.code()),
                }
            })
            .unwrap_or(Err(KafkaError::GroupIdNotFound.code())),
    };
    let subscribed = match subscribed {
        Ok(subscribed) => subscribed,
        Err(code) => return refuse(code),
    };
    let now = now_ms();
    let mut records = Vec::new();
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let name = topic.name.0.as_str();
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for part in &topic.partitions {
            let index = part.partition_index;
            let code = if !partition_exists(shard, name, index) {
                KafkaError::UnknownTopicOrPartition.code()
            } else if subscribed.iter().any(|s| s == name) {
                KafkaError::GroupSubscribedToTopic.code()
            } else {
                let committed = partition
                    .offsets
                    .borrow()
                    .fetch(&group_id, name, index)
                    .is_some();
                if committed {
                    records.push(OffsetsRecord::OffsetCommit {
                        key: OffsetCommitKey {
                            group: group_id.clone(),
                            topic: name.to_string(),
                            partition: index,
                        },
                        value: None,
                    });
                }
                NONE
            };
            partitions.push(
                OffsetDeleteResponsePartition::default()
                    .with_partition_index(index)
                    .with_error_code(code),
            );
        }
        topics.push(
            OffsetDeleteResponseTopic::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions),
        );
    }
    let write_code = partition.append_durably(records, now).await;
    if write_code != NONE {
        return refuse(write_code);
    }
    OffsetDeleteResponse::default().with_topics(topics)
}
