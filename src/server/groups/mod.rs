//! The consumer-group coordinator in the server: the group APIs
//! (FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//! OffsetCommit, OffsetFetch, ListGroups, DescribeGroups, DeleteGroups,
//! OffsetDelete, TxnOffsetCommit), routing each group's requests to its
//! coordinator shard, and the per-shard coordinator state.
//!
//! Which cores: a group's coordinator is the shard owning the partition of
//! `__consumer_offsets` that the group id hashes to; group state lives only
//! there. The connection's shard decodes a request, names the group(s),
//! and routes a [`GroupCall`] per group to the coordinator shard
//! ([`CoordinateGroup`] through `server::routing`: in place, or over the
//! mesh); the coordinator answers
//! with a [`GroupAnswer`] and the connection's shard shapes the response for
//! the request's version.
//!
//! Inside:
//! - `offsets_topic`: the internal topic, group -> partition, records, replay
//! - `coordinator`: per-shard state: offsets partitions, groups, waiters
//! - `timers`: the task firing group timers, and offset expiry
//! - `compaction`: snapshots that keep an offsets partition short
//! - `membership`: JoinGroup, SyncGroup, Heartbeat, LeaveGroup on the coordinator
//! - `offsets`: OffsetCommit, OffsetFetch, OffsetDelete on the coordinator
//! - `txn_offsets`: TxnOffsetCommit on the coordinator, and a transaction's
//!   marker on an offsets partition (pending offsets committed or dropped)
//! - `consumer_protocol`: ConsumerGroupHeartbeat and ConsumerGroupDescribe
//!   (KIP-848) on the coordinator
//! - `describe`: DescribeGroups, ListGroups, DeleteGroups on the coordinator
//! - `apis`: the request handlers on the connection's shard (FindCoordinator
//!   and version-specific request/response shapes)

pub mod apis;
mod compaction;
pub mod consumer_protocol;
pub mod coordinator;
pub mod describe;
pub mod membership;
pub mod offsets;
pub mod offsets_topic;
pub mod timers;
pub mod txn_offsets;

use std::rc::Rc;

use futures::future::LocalBoxFuture;
use futures::FutureExt;
use kafka_protocol::messages::*;

pub use coordinator::GroupCoordinator;
pub use describe::{list_local_groups, DescribedGroupState, ListGroupsFilter, ListedGroup};
pub use offsets::FetchedOffsets;

use crate::protocol::errors::KafkaError;
use crate::server::routing::{self, ShardCall};
use crate::server::shard::Shard;

/// A group's `authorized_operations` (DescribeGroups, ConsumerGroupDescribe)
/// when asked for: READ, DELETE and DESCRIBE (bits 3, 6, 8), everything a
/// group allows with no authorizer.
pub(crate) const GROUP_AUTHORIZED_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);

/// A wire string from a Rust one.
pub(crate) fn str_bytes(value: &str) -> kafka_protocol::protocol::StrBytes {
    kafka_protocol::protocol::StrBytes::from_string(value.to_string())
}

/// Who sent a request (DescribeGroups reports it per member).
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub client_id: String,
    /// Kafka prints it as `/<ip>`.
    pub client_host: String,
}

/// One group's part of a request, sent to its coordinator shard.
#[derive(Debug)]
pub enum GroupCall {
    Join {
        request: JoinGroupRequest,
        version: i16,
        client: ClientInfo,
    },
    Sync {
        request: SyncGroupRequest,
        version: i16,
    },
    Heartbeat {
        request: HeartbeatRequest,
    },
    Leave {
        request: LeaveGroupRequest,
        version: i16,
    },
    Commit {
        request: OffsetCommitRequest,
        version: i16,
    },
    /// OffsetFetch for one group; `None` topics = every committed offset.
    FetchOffsets {
        group_id: String,
        topics: Option<Vec<(String, Vec<i32>)>>,
        /// OffsetFetch v7+: pending transactional commits make a partition
        /// UNSTABLE_OFFSET_COMMIT instead of answering the last committed.
        require_stable: bool,
        /// OffsetFetch v9+: the member id and epoch of a consumer-protocol
        /// member (checked against its consumer group).
        member: Option<(String, i32)>,
    },
    /// TxnOffsetCommit (KIP-98) for one group.
    TxnCommit {
        request: TxnOffsetCommitRequest,
        version: i16,
    },
    Describe {
        group_id: String,
    },
    /// ConsumerGroupHeartbeat (KIP-848).
    ConsumerHeartbeat {
        request: ConsumerGroupHeartbeatRequest,
        version: i16,
        client: ClientInfo,
    },
    /// ConsumerGroupDescribe (KIP-848) for one group.
    ConsumerDescribe {
        group_id: String,
        include_operations: bool,
    },
    Delete {
        group_id: String,
    },
    DeleteOffsets {
        request: OffsetDeleteRequest,
    },
}

/// The coordinator's answer to a [`GroupCall`].
#[derive(Debug)]
pub enum GroupAnswer {
    /// The coordinator could not take the call (partition not loaded here,
    /// shard stopping): the client looks the coordinator up again.
    Unavailable(i16),
    Join(JoinGroupResponse),
    Sync(SyncGroupResponse),
    Heartbeat(i16),
    Leave(LeaveGroupResponse),
    Commit(OffsetCommitResponse),
    FetchedOffsets(FetchedOffsets),
    Described(DescribedGroupState),
    ConsumerHeartbeat(ConsumerGroupHeartbeatResponse),
    ConsumerDescribed(consumer_group_describe_response::DescribedGroup),
    Deleted(i16),
    DeletedOffsets(OffsetDeleteResponse),
    TxnCommit(TxnOffsetCommitResponse),
}

/// Runs `call` on this shard, which owns offsets `partition`.
async fn coordinate(shard: &Rc<Shard>, partition: i32, call: GroupCall) -> GroupAnswer {
    shard.assert_owner(offsets_topic::OFFSETS_TOPIC, partition);
    let Some(loaded) = shard.groups.partition(partition) else {
        return GroupAnswer::Unavailable(KafkaError::NotCoordinator.code());
    };
    match call {
        GroupCall::Join {
            request,
            version,
            client,
        } => GroupAnswer::Join(membership::join(shard, &loaded, request, version, client).await),
        GroupCall::Sync { request, version } => {
            GroupAnswer::Sync(membership::sync(shard, &loaded, request, version).await)
        }
        GroupCall::Heartbeat { request } => {
            GroupAnswer::Heartbeat(membership::heartbeat(shard, &loaded, request))
        }
        GroupCall::Leave { request, version } => {
            GroupAnswer::Leave(membership::leave(shard, &loaded, request, version))
        }
        GroupCall::Commit { request, version } => {
            GroupAnswer::Commit(offsets::commit(shard, &loaded, request, version).await)
        }
        GroupCall::FetchOffsets {
            group_id,
            topics,
            require_stable,
            member,
        } => GroupAnswer::FetchedOffsets(offsets::fetch(
            &loaded,
            &group_id,
            topics.as_deref(),
            require_stable,
            member,
        )),
        GroupCall::TxnCommit { request, version } => {
            GroupAnswer::TxnCommit(txn_offsets::txn_commit(shard, &loaded, request, version).await)
        }
        GroupCall::Describe { group_id } => {
            GroupAnswer::Described(describe::describe(&loaded, &group_id))
        }
        GroupCall::ConsumerHeartbeat {
            request,
            version,
            client,
        } => GroupAnswer::ConsumerHeartbeat(
            consumer_protocol::heartbeat(shard, &loaded, request, version, client).await,
        ),
        GroupCall::ConsumerDescribe {
            group_id,
            include_operations,
        } => GroupAnswer::ConsumerDescribed(consumer_protocol::describe(
            shard,
            &loaded,
            &group_id,
            include_operations,
        )),
        GroupCall::Delete { group_id } => {
            GroupAnswer::Deleted(describe::delete(&loaded, &group_id).await)
        }
        GroupCall::DeleteOffsets { request } => {
            GroupAnswer::DeletedOffsets(offsets::delete_offsets(shard, &loaded, request).await)
        }
    }
}

/// Sends `call` for `group_id` to its coordinator shard (creating the
/// offsets topic on first use) and returns the answer.
pub async fn route(shard: &Rc<Shard>, group_id: &str, call: GroupCall) -> GroupAnswer {
    let topic = match offsets_topic::ensure(shard).await {
        Ok(topic) => topic,
        Err(code) => return GroupAnswer::Unavailable(code),
    };
    let partition = offsets_topic::partition_for(group_id, topic.partition_count);
    let owner = shard.owner_of(offsets_topic::OFFSETS_TOPIC, partition);
    routing::call(shard, owner, CoordinateGroup { partition, call })
        .await
        .unwrap_or(GroupAnswer::Unavailable(
            KafkaError::CoordinatorNotAvailable.code(),
        ))
}

/// Any shard -> the coordinator shard of a group (the owner of the group's
/// offsets partition `partition`).
pub struct CoordinateGroup {
    pub partition: i32,
    pub call: GroupCall,
}

impl ShardCall<Shard> for CoordinateGroup {
    type Reply = GroupAnswer;
    fn start(self, shard: &Rc<Shard>) -> LocalBoxFuture<'static, GroupAnswer> {
        let shard = Rc::clone(shard);
        async move { coordinate(&shard, self.partition, self.call).await }.boxed_local()
    }
}

/// Any shard -> every shard: the groups it coordinates (ListGroups).
#[derive(Clone)]
pub struct ListGroupsCall(pub ListGroupsFilter);

impl ShardCall<Shard> for ListGroupsCall {
    type Reply = Vec<ListedGroup>;
    fn start(self, shard: &Rc<Shard>) -> LocalBoxFuture<'static, Vec<ListedGroup>> {
        let listed = list_local_groups(shard, &self.0);
        async move { listed }.boxed_local()
    }
}
