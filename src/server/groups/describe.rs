//! DescribeGroups, ListGroups and DeleteGroups on the coordinator shard:
//! what a group looks like from outside (Kafka's `GroupMetadata.summary`),
//! the groups a shard coordinates, and deleting an Empty group with its
//! committed offsets.

use std::rc::Rc;

use bytes::Bytes;

use super::coordinator::OffsetsPartition;
use crate::group::offset_records::{GroupMetadataKey, OffsetCommitKey, OffsetsRecord};
use crate::group::GroupState;
use crate::protocol::errors::{KafkaError, NONE};
use crate::runtime::clock::now_ms;
use crate::server::shard::Shard;

/// One member as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedGroupState {
    pub error_code: i16,
    /// False for a group this coordinator does not have: DescribeGroups v6+
    /// answers GROUP_ID_NOT_FOUND for it (KIP-1043), older versions Dead.
    pub exists: bool,
    /// The group id is a consumer (KIP-848) group: DescribeGroups, a
    /// classic-protocol API, answers as for an unknown group with Kafka's
    /// "Group X is not a classic group." (ConsumerGroupDescribe shows it).
    pub consumer_group: bool,
    pub state: &'static str,
    pub protocol_type: String,
    /// The chosen assignor; empty unless Stable (as Kafka reports).
    pub protocol: String,
    pub members: Vec<DescribedMember>,
}

impl DescribedGroupState {
    /// An unknown group: Kafka answers Dead, with no error before v6.
    pub fn not_found() -> DescribedGroupState {
        DescribedGroupState {
            error_code: NONE,
            exists: false,
            consumer_group: false,
            state: GroupState::Dead.name(),
            protocol_type: String::new(),
            protocol: String::new(),
            members: Vec::new(),
        }
    }

    pub fn error(code: i16) -> DescribedGroupState {
        DescribedGroupState {
            error_code: code,
            ..DescribedGroupState::not_found()
        }
    }
}

/// DescribeGroups for one group. Members carry their metadata and
/// assignment only while the group is Stable, as in Kafka.
pub fn describe(partition: &OffsetsPartition, group_id: &str) -> DescribedGroupState {
    let consumer_group = partition
        .offsets
        .borrow()
        .consumer_group(group_id)
        .is_some_and(|group| !group.is_unborn());
    if consumer_group {
        return DescribedGroupState {
            consumer_group: true,
            ..DescribedGroupState::not_found()
        };
    }
    partition
        .with_group(group_id, false, |slot| {
            let group = &slot.group;
            let stable = group.state() == GroupState::Stable;
            let protocol = if stable {
                group.protocol_name().unwrap_or("").to_string()
            } else {
                String::new()
            };
            let members = group
                .members()
                .iter()
                .map(|member| DescribedMember {
                    member_id: member.member_id.clone(),
                    group_instance_id: member.group_instance_id.clone(),
                    client_id: member.client_id.clone(),
                    client_host: member.client_host.clone(),
                    metadata: if stable {
                        member.metadata(&protocol).cloned().unwrap_or_default()
                    } else {
                        Bytes::new()
                    },
                    assignment: if stable {
                        member.assignment.clone()
                    } else {
                        Bytes::new()
                    },
                })
                .collect();
            DescribedGroupState {
                error_code: NONE,
                exists: true,
                consumer_group: false,
                state: group.state().name(),
                protocol_type: group.protocol_type().unwrap_or("").to_string(),
                protocol,
                members,
            }
        })
        .unwrap_or_else(DescribedGroupState::not_found)
}

/// DeleteGroups for one group: only an Empty group can go; its committed
/// offsets, its offsets pending in transactions and its stored metadata
/// get tombstones.
pub async fn delete(partition: &OffsetsPartition, group_id: &str) -> i16 {
    let consumer_tombstones = match delete_consumer_group(partition, group_id) {
        Ok(tombstones) => tombstones,
        Err(code) => return code,
    };
    let deleted = partition.with_group(group_id, false, |slot| {
        slot.group.delete().map_err(|error| error.code())
    });
    match (deleted, consumer_tombstones.is_empty()) {
        (None, true) => return KafkaError::GroupIdNotFound.code(),
        (Some(Err(code)), true) => return code,
        _ => {}
    }
    let records: Vec<OffsetsRecord> = {
        let offsets = partition.offsets.borrow();
        let mut records: Vec<OffsetsRecord> = offsets
            .offsets_of(group_id)
            .map(|(topic, index, _)| OffsetsRecord::OffsetCommit {
                key: OffsetCommitKey {
                    group: group_id.to_string(),
                    topic: topic.to_string(),
                    partition: index,
                },
                value: None,
            })
            .collect();
        // Offsets pending in open transactions go too (Kafka's KIP-848
        // coordinator, `deleteAllOffsets`): one tombstone per key, which
        // drops it from every transaction, so no later commit marker
        // brings the group back.
        for (topic, index) in offsets.pending_partitions_of(group_id) {
            if offsets.committed(group_id, &topic, index).is_none() {
                records.push(OffsetsRecord::OffsetCommit {
                    key: OffsetCommitKey {
                        group: group_id.to_string(),
                        topic,
                        partition: index,
                    },
                    value: None,
                });
            }
        }
        if offsets.group_metadata(group_id).is_some() {
            records.push(OffsetsRecord::GroupMetadata {
                key: GroupMetadataKey {
                    group: group_id.to_string(),
                },
                value: None,
            });
        }
        records.extend(consumer_tombstones);
        records
    };
    partition.groups.borrow_mut().remove(group_id);
    partition.append_durably(records, now_ms()).await
}

/// A consumer group (KIP-848) to delete: NON_EMPTY_GROUP while it has
/// members; else it is deleted in memory and its tombstones returned (none
/// when `group_id` is not a consumer group).
fn delete_consumer_group(
    partition: &OffsetsPartition,
    group_id: &str,
) -> Result<Vec<OffsetsRecord>, i16> {
    let mut offsets = partition.offsets.borrow_mut();
    let Some(group) = offsets
        .consumer_group_mut(group_id, false)
        .filter(|group| !group.is_unborn())
    else {
        return Ok(Vec::new());
    };
    let tombstones = group.tombstones().ok_or(KafkaError::NonEmptyGroup.code())?;
    for record in &tombstones {
        if let Err(error) = group.replay(record) {
            tracing::warn!(group = group_id, %error, "cannot delete consumer group");
            return Err(KafkaError::UnknownServerError.code());
        }
    }
    offsets.prune_consumer_group(group_id);
    Ok(tombstones
        .into_iter()
        .map(|record| OffsetsRecord::ConsumerGroup {
            group: group_id.to_string(),
            record,
        })
        .collect())
}

/// ListGroups filters (v4+ states, v5+ types); empty = no filter.
#[derive(Debug, Clone, Default)]
pub struct ListGroupsFilter {
    pub states: Vec<String>,
    pub types: Vec<String>,
}

/// One group as ListGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedGroup {
    pub group_id: String,
    pub protocol_type: String,
    pub state: &'static str,
    /// "classic" or "consumer" (ListGroups v5+, KIP-848).
    pub group_type: &'static str,
}

/// The groups this shard coordinates that pass `filter`: classic groups,
/// and consumer groups (protocol type "consumer", as Kafka lists them).
pub fn list_local_groups(shard: &Rc<Shard>, filter: &ListGroupsFilter) -> Vec<ListedGroup> {
    let type_ok = |group_type: &str| {
        filter.types.is_empty()
            || filter
                .types
                .iter()
                .any(|t| t.eq_ignore_ascii_case(group_type))
    };
    let state_ok = |state: &str| {
        filter.states.is_empty() || filter.states.iter().any(|s| s.eq_ignore_ascii_case(state))
    };
    let mut listed = Vec::new();
    for partition in shard.groups.partitions() {
        let offsets = partition.offsets.borrow();
        if type_ok("consumer") {
            for group in offsets.consumer_groups() {
                let state = group.state().name();
                if group.is_unborn() || group.is_deleted() || !state_ok(state) {
                    continue;
                }
                listed.push(ListedGroup {
                    group_id: group.group_id().to_string(),
                    protocol_type: "consumer".to_string(),
                    state,
                    group_type: "consumer",
                });
            }
        }
        if !type_ok("classic") {
            continue;
        }
        for (group_id, slot) in partition.groups.borrow().iter() {
            let state = slot.group.state();
            let shadowed = offsets
                .consumer_group(group_id)
                .is_some_and(|group| !group.is_unborn());
            if state == GroupState::Dead || shadowed || !state_ok(state.name()) {
                continue;
            }
            listed.push(ListedGroup {
                group_id: group_id.clone(),
                protocol_type: slot.group.protocol_type().unwrap_or("").to_string(),
                state: state.name(),
                group_type: "classic",
            });
        }
    }
    listed
}
