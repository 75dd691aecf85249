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
    let deleted = partition.with_group(group_id, false, |slot| {
        slot.group.delete().map_err(|error| error.code())
    });
    match deleted {
        None => return KafkaError::GroupIdNotFound.code(),
        Some(Err(code)) => return code,
        Some(Ok(())) => {}
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
        records
    };
    partition.groups.borrow_mut().remove(group_id);
    partition.append_durably(records, now_ms()).await
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
}

/// The groups this shard coordinates that pass `filter`.
pub fn list_local_groups(shard: &Rc<Shard>, filter: &ListGroupsFilter) -> Vec<ListedGroup> {
    // Every group here is a classic-protocol group.
    let type_ok = filter.types.is_empty()
        || filter
            .types
            .iter()
            .any(|t| t.eq_ignore_ascii_case("classic"));
    if !type_ok {
        return Vec::new();
    }
    let mut listed = Vec::new();
    for partition in shard.groups.partitions() {
        for (group_id, slot) in partition.groups.borrow().iter() {
            let state = slot.group.state();
            if state == GroupState::Dead {
                continue;
            }
            let state_ok = filter.states.is_empty()
                || filter
                    .states
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(state.name()));
            if state_ok {
                listed.push(ListedGroup {
                    group_id: group_id.clone(),
                    protocol_type: slot.group.protocol_type().unwrap_or("").to_string(),
                    state: state.name(),
                });
            }
        }
    }
    listed
}
