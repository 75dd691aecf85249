//! A group to and from its stored form: the group metadata record written to
//! the offsets partition whenever a generation becomes Stable or the group
//! becomes Empty (`Effect::StoreGroup`), and the group rebuilt from that
//! record when the coordinator replays the partition after a restart.
//!
//! Which cores: pure code, used on the group's coordinator shard.
//!
//! Why this shape: like Kafka's `GroupMetadataManager.loadGroup`, a restored
//! group with members comes back Stable at its stored generation, with each
//! member's assignment and a fresh session timer, so consumers that keep
//! heartbeating across a broker restart carry on without a rebalance; those
//! that do not come back expire after their session timeout as usual.

use bytes::Bytes;

use super::member::{Member, Protocol};
use super::offset_records::{GroupMetadataValue, MemberMetadata};
use super::state_machine::{Group, GroupConfig, GroupState};

impl Group {
    /// The record to store for the group as it is now (`state_timestamp_ms`
    /// is when this state began, which KIP-211 expiry counts from).
    pub fn to_stored(&self, now_ms: i64) -> GroupMetadataValue {
        let protocol = self.protocol_name.clone();
        let members = self
            .members
            .iter()
            .map(|member| MemberMetadata {
                member_id: member.member_id.clone(),
                group_instance_id: member.group_instance_id.clone(),
                client_id: member.client_id.clone(),
                client_host: member.client_host.clone(),
                rebalance_timeout_ms: member.rebalance_timeout_ms,
                session_timeout_ms: member.session_timeout_ms,
                subscription: protocol
                    .as_deref()
                    .and_then(|name| member.metadata(name))
                    .map(|metadata| metadata.to_vec())
                    .unwrap_or_default(),
                assignment: member.assignment.to_vec(),
            })
            .collect();
        GroupMetadataValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation_id,
            protocol,
            leader: self.leader_id.clone(),
            state_timestamp_ms: now_ms,
            members,
        }
    }

    /// The group as stored: Stable with its members when it had any, Empty
    /// at the stored generation otherwise. Members' sessions restart at
    /// `now_ms`. Members beyond the configured size limit are dropped (the
    /// limit may have been lowered since), which leaves the rest to rebalance.
    pub fn restore(
        group_id: &str,
        config: GroupConfig,
        stored: &GroupMetadataValue,
        now_ms: i64,
    ) -> Group {
        let mut group = Group::new(group_id, config);
        group.generation_id = stored.generation;
        group.protocol_type =
            (!stored.protocol_type.is_empty()).then(|| stored.protocol_type.clone());
        let Some(protocol) = stored.protocol.clone() else {
            return group;
        };
        let size_max = group.config.group_size_max;
        group.members = stored
            .members
            .iter()
            .take(size_max)
            .map(|stored| {
                let mut member = Member {
                    member_id: stored.member_id.clone(),
                    group_instance_id: stored.group_instance_id.clone(),
                    client_id: stored.client_id.clone(),
                    client_host: stored.client_host.clone(),
                    session_timeout_ms: stored.session_timeout_ms.max(1),
                    rebalance_timeout_ms: stored.rebalance_timeout_ms.max(1),
                    protocols: vec![Protocol::new(
                        &protocol,
                        Bytes::copy_from_slice(&stored.subscription),
                    )],
                    assignment: Bytes::copy_from_slice(&stored.assignment),
                    awaiting_join: false,
                    awaiting_sync: false,
                    is_new: false,
                    heartbeat_deadline_ms: 0,
                };
                member.heartbeat_received(now_ms);
                member
            })
            .collect();
        if group.members.is_empty() {
            return group;
        }
        let leader_known = stored
            .leader
            .as_deref()
            .is_some_and(|leader| group.member_index(leader).is_some());
        group.leader_id = if leader_known {
            stored.leader.clone()
        } else {
            group.members.first().map(|m| m.member_id.clone())
        };
        group.protocol_name = Some(protocol);
        group.state = GroupState::Stable;
        group
    }
}
