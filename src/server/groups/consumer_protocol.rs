//! The consumer group protocol of Kafka 4 (KIP-848) on the coordinator
//! shard: ConsumerGroupHeartbeat and ConsumerGroupDescribe, fed into the
//! pure state machine of `group::modern`, whose records are appended to the
//! offsets partition before the member hears the answer.
//!
//! Which cores: the coordinator shard of the group (the owner of its
//! offsets partition); the groups live in that partition's
//! `CommittedOffsets`, beside the committed offsets, because both are the
//! replay of the same log.
//!
//! Classic and consumer groups share one name space, and corelog does not
//! convert a group with members from one protocol to the other (Kafka's
//! online migration, `group.consumer.migration.policy`): it answers as
//! Kafka does with the migration disabled. A heartbeat for a classic group
//! with members is GROUP_ID_NOT_FOUND ("Cannot upgrade classic group X to
//! consumer group because online upgrade is disabled."),
//! a JoinGroup for a consumer group with members is
//! INCONSISTENT_GROUP_PROTOCOL; an empty group of the other type is deleted
//! and replaced (its committed offsets stay), as in Kafka.

use std::rc::Rc;

use kafka_protocol::messages::consumer_group_describe_response as describe_wire;
use kafka_protocol::messages::consumer_group_heartbeat_response as heartbeat_wire;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::coordinator::OffsetsPartition;
use super::{str_bytes, ClientInfo, GROUP_AUTHORIZED_OPERATIONS};
use crate::cluster::node_identity::random_uuid_base64;
use crate::group::modern::{
    self, validate_heartbeat, Assignment, ConsumerGroupRecord, DescribedTopicPartitions,
    HeartbeatError, HeartbeatResponse, OwnedTopicPartitions,
};
use crate::group::offset_records::{GroupMetadataKey, OffsetsRecord};
use crate::protocol::errors::{KafkaError, NONE};
use crate::runtime::clock::now_ms;
use crate::server::shard::Shard;

/// The records of `group_id`, as offsets partition records.
fn offsets_records(group_id: &str, records: Vec<ConsumerGroupRecord>) -> Vec<OffsetsRecord> {
    records
        .into_iter()
        .map(|record| OffsetsRecord::ConsumerGroup {
            group: group_id.to_string(),
            record,
        })
        .collect()
}

/// ConsumerGroupHeartbeat: join, heartbeat, reconcile or leave. Answers
/// once the records it wrote are durable.
pub async fn heartbeat(
    shard: &Rc<Shard>,
    partition: &OffsetsPartition,
    request: ConsumerGroupHeartbeatRequest,
    version: i16,
    client: ClientInfo,
) -> ConsumerGroupHeartbeatResponse {
    let event = heartbeat_event(&request, version, client);
    let assignors = partition
        .offsets
        .borrow()
        .consumer_group_config()
        .assignors
        .clone();
    if let Err(error) = validate_heartbeat(&event, &assignors) {
        return wire_response(HeartbeatResponse::error(&error));
    }
    let group_id = event.group_id.clone();
    let mut records = match replace_empty_classic_group(partition, &group_id) {
        Ok(records) => records,
        Err(error) => return wire_response(HeartbeatResponse::error(&error)),
    };
    let catalog = shard.catalog();
    let now = now_ms();
    let (outcome, deadline) = {
        let mut offsets = partition.offsets.borrow_mut();
        let Some(group) = offsets.consumer_group_mut(&group_id, true) else {
            return error_response(KafkaError::CoordinatorNotAvailable.code());
        };
        let outcome = group.heartbeat(&event, catalog.as_ref(), now, random_uuid_base64);
        let deadline = group.next_deadline_ms();
        offsets.prune_consumer_group(&group_id);
        (outcome, deadline)
    };
    shard.groups.schedule(deadline);
    records.extend(offsets_records(&group_id, outcome.records));
    let code = partition.append_durably(records, now).await;
    if code != NONE {
        return error_response(code);
    }
    wire_response(outcome.response)
}

/// A consumer-protocol member arriving at a classic group: an empty one is
/// deleted (the tombstone of its stored metadata is returned, to be
/// written before the new group's records), one with members refuses the
/// heartbeat as Kafka does with online migration disabled.
fn replace_empty_classic_group(
    partition: &OffsetsPartition,
    group_id: &str,
) -> Result<Vec<OffsetsRecord>, HeartbeatError> {
    let mut groups = partition.groups.borrow_mut();
    let Some(slot) = groups.get(group_id) else {
        return Ok(Vec::new());
    };
    let empty = slot.group.members().is_empty()
        && slot.group.pending_member_count() == 0
        && slot.join_waiters.is_empty()
        && slot.sync_waiters.is_empty();
    if !empty {
        return Err(HeartbeatError::GroupIdNotFound(format!(
            "Cannot upgrade classic group {group_id} to consumer group because online upgrade is disabled."
        )));
    }
    groups.remove(group_id);
    let stored = partition
        .offsets
        .borrow()
        .group_metadata(group_id)
        .is_some();
    Ok(if stored {
        vec![OffsetsRecord::GroupMetadata {
            key: GroupMetadataKey {
                group: group_id.to_string(),
            },
            value: None,
        }]
    } else {
        Vec::new()
    })
}

/// A classic JoinGroup arriving at a consumer group: refused while it has
/// members (INCONSISTENT_GROUP_PROTOCOL, Kafka's answer with migration
/// disabled); an empty one is deleted, and its tombstones returned for the
/// caller to write.
pub fn replace_empty_consumer_group(
    partition: &OffsetsPartition,
    group_id: &str,
) -> Result<Vec<OffsetsRecord>, (i16, String)> {
    let mut offsets = partition.offsets.borrow_mut();
    let Some(group) = offsets.consumer_group_mut(group_id, false) else {
        return Ok(Vec::new());
    };
    let Some(tombstones) = group.tombstones() else {
        return Err((
            KafkaError::InconsistentGroupProtocol.code(),
            format!(
                "Cannot join the consumer group {group_id} with the classic protocol because the group migration is disabled."
            ),
        ));
    };
    for record in &tombstones {
        if let Err(error) = group.replay(record) {
            tracing::warn!(group = group_id, %error, "cannot delete empty consumer group");
        }
    }
    offsets.prune_consumer_group(group_id);
    Ok(offsets_records(group_id, tombstones))
}

/// ConsumerGroupDescribe for one group on its coordinator.
pub fn describe(
    shard: &Shard,
    partition: &OffsetsPartition,
    group_id: &str,
    include_operations: bool,
) -> describe_wire::DescribedGroup {
    let wire = describe_wire::DescribedGroup::default()
        .with_group_id(GroupId(str_bytes(group_id)))
        .with_authorized_operations(i32::MIN);
    let offsets = partition.offsets.borrow();
    let Some(group) = offsets
        .consumer_group(group_id)
        .filter(|group| !group.is_unborn())
    else {
        let classic = partition.groups.borrow().contains_key(group_id);
        let message = if classic {
            format!("Group {group_id} is not a consumer group.")
        } else {
            format!("Group {group_id} not found.")
        };
        return wire
            .with_error_code(KafkaError::GroupIdNotFound.code())
            .with_error_message(Some(str_bytes(&message)));
    };
    let catalog = shard.catalog();
    let described = group.describe(catalog.as_ref());
    let members = described
        .members
        .into_iter()
        .map(|member| {
            describe_wire::Member::default()
                .with_member_id(str_bytes(&member.member_id))
                .with_instance_id(member.instance_id.as_deref().map(str_bytes))
                .with_rack_id(member.rack_id.as_deref().map(str_bytes))
                .with_member_epoch(member.member_epoch)
                .with_client_id(str_bytes(&member.client_id))
                .with_client_host(str_bytes(&member.client_host))
                .with_subscribed_topic_names(
                    member
                        .subscribed_topic_names
                        .iter()
                        .map(|name| TopicName(str_bytes(name)))
                        .collect(),
                )
                .with_subscribed_topic_regex(
                    member.subscribed_topic_regex.as_deref().map(str_bytes),
                )
                .with_assignment(described_assignment(&member.assignment))
                .with_target_assignment(described_assignment(&member.target_assignment))
                .with_member_type(member.member_type)
        })
        .collect();
    let wire = wire
        .with_group_state(StrBytes::from_static_str(described.group_state))
        .with_group_epoch(described.group_epoch)
        .with_assignment_epoch(described.assignment_epoch)
        .with_assignor_name(str_bytes(&described.assignor_name))
        .with_members(members);
    if include_operations {
        wire.with_authorized_operations(GROUP_AUTHORIZED_OPERATIONS)
    } else {
        wire
    }
}

fn described_assignment(topics: &[DescribedTopicPartitions]) -> describe_wire::Assignment {
    describe_wire::Assignment::default().with_topic_partitions(
        topics
            .iter()
            .map(|topic| {
                describe_wire::TopicPartitions::default()
                    .with_topic_id(topic.topic_id)
                    .with_topic_name(TopicName(str_bytes(&topic.topic_name)))
                    .with_partitions(topic.partitions.clone())
            })
            .collect(),
    )
}

/// The request as the state machine takes it.
fn heartbeat_event(
    request: &ConsumerGroupHeartbeatRequest,
    version: i16,
    client: ClientInfo,
) -> modern::HeartbeatRequest {
    let text = |value: &StrBytes| value.as_str().to_string();
    modern::HeartbeatRequest {
        api_version: version,
        group_id: text(&request.group_id.0),
        member_id: text(&request.member_id),
        member_epoch: request.member_epoch,
        instance_id: request.instance_id.as_ref().map(text),
        rack_id: request.rack_id.as_ref().map(text),
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        subscribed_topic_names: request
            .subscribed_topic_names
            .as_ref()
            .map(|names| names.iter().map(|name| text(&name.0)).collect()),
        subscribed_topic_regex: request.subscribed_topic_regex.as_ref().map(text),
        server_assignor: request.server_assignor.as_ref().map(text),
        topic_partitions: request.topic_partitions.as_ref().map(|topics| {
            topics
                .iter()
                .map(|topic| OwnedTopicPartitions {
                    topic_id: topic.topic_id,
                    partitions: topic.partitions.clone(),
                })
                .collect()
        }),
        client_id: client.client_id,
        client_host: client.client_host,
    }
}

fn error_response(code: i16) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse::default()
        .with_error_code(code)
        .with_heartbeat_interval_ms(0)
}

fn wire_response(response: HeartbeatResponse) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse::default()
        .with_error_code(response.error_code)
        .with_error_message(response.error_message.as_deref().map(str_bytes))
        .with_member_id(response.member_id.as_deref().map(str_bytes))
        .with_member_epoch(response.member_epoch)
        .with_heartbeat_interval_ms(response.heartbeat_interval_ms)
        .with_assignment(response.assignment.as_ref().map(wire_assignment))
}

fn wire_assignment(assignment: &Assignment) -> heartbeat_wire::Assignment {
    heartbeat_wire::Assignment::default().with_topic_partitions(
        assignment
            .iter()
            .map(|(topic_id, partitions)| {
                heartbeat_wire::TopicPartitions::default()
                    .with_topic_id(*topic_id)
                    .with_partitions(partitions.iter().copied().collect())
            })
            .collect(),
    )
}
