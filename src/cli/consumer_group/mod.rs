//! `corelog consume --group`: membership of a classic consumer group, as
//! Kafka's Java consumer does it with the `range` assignor. JoinGroup (with
//! the MEMBER_ID_REQUIRED second step of KIP-394), the leader's range
//! assignment over every member's subscription, SyncGroup, heartbeats,
//! OffsetFetch/OffsetCommit with the generation and member id, LeaveGroup.
//!
//! Runs on the CLI's main thread; requests go to `Node::Coordinator(group)`.
//! The consume loop calls `heartbeat_if_due` between fetches, so fetches wait
//! at most `FETCH_MAX_WAIT` and heartbeats stay near `HEARTBEAT_INTERVAL`.
//!
//! This file owns the member's state, joining and the error codes that
//! decide between "join again" and "give up".
//!
//! Inside:
//! - `join_sync`: JoinGroup, the leader's assignment, SyncGroup, Heartbeat
//!   and LeaveGroup: the membership lifecycle
//! - `offsets`: OffsetFetch and OffsetCommit for the member's generation
//! - `assignment`: the `range` assignor and the consumer protocol's
//!   subscription and assignment bytes

mod assignment;
mod join_sync;
mod offsets;

use std::time::{Duration, Instant};

use kafka_protocol::messages::ApiKey;

use crate::cli::kafka::{KafkaClient, Node, ToolError};
pub use assignment::{
    assignment_bytes, parse_assignment, parse_subscription, range_assign, subscription_bytes,
};

/// How often the consume loop heartbeats (Java's heartbeat.interval.ms is 3 s;
/// 1 s notices a rebalance sooner).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// Within corelog's default [6 s, 30 min] session timeout bounds.
const SESSION_TIMEOUT_MS: i32 = 10_000;
/// How long the coordinator waits for members to rejoin; below the client's
/// 30 s read timeout, since JoinGroup answers only when the round ends.
const REBALANCE_TIMEOUT_MS: i32 = 20_000;
/// How long joining may keep failing with retriable errors.
const JOIN_DEADLINE: Duration = Duration::from_secs(60);
const RETRY_BACKOFF: Duration = Duration::from_millis(200);
const PROTOCOL_TYPE: &str = "consumer";
const ASSIGNOR: &str = "range";

pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
pub const NOT_COORDINATOR: i16 = 16;
pub const ILLEGAL_GENERATION: i16 = 22;
pub const UNKNOWN_MEMBER_ID: i16 = 25;
pub const REBALANCE_IN_PROGRESS: i16 = 27;
pub const MEMBER_ID_REQUIRED: i16 = 79;

/// Whether an error means "join again" rather than "give up".
pub fn needs_rejoin(error: &ToolError) -> bool {
    matches!(
        error.kafka_code(),
        Some(ILLEGAL_GENERATION | UNKNOWN_MEMBER_ID | REBALANCE_IN_PROGRESS)
    )
}

/// Versions negotiated with the coordinator once.
struct Versions {
    join: i16,
    sync: i16,
    heartbeat: i16,
    leave: i16,
    commit: i16,
    fetch: i16,
}

/// This process as a member of one group, subscribed to one topic.
pub struct GroupMember {
    group: String,
    node: Node,
    topic: String,
    member_id: String,
    generation: i32,
    versions: Versions,
    last_heartbeat: Instant,
}

impl GroupMember {
    /// Joins `group` subscribed to `topic`; returns the member and the
    /// partitions of `topic` assigned to it.
    pub fn join(
        client: &mut KafkaClient,
        group: &str,
        topic: &str,
    ) -> Result<(GroupMember, Vec<i32>), ToolError> {
        let node = Node::Coordinator(group.to_string());
        let versions = Versions {
            join: client.version(&node, ApiKey::JoinGroup, 7)?,
            sync: client.version(&node, ApiKey::SyncGroup, 5)?,
            heartbeat: client.version(&node, ApiKey::Heartbeat, 4)?,
            leave: client.version(&node, ApiKey::LeaveGroup, 5)?,
            commit: client.version(&node, ApiKey::OffsetCommit, 8)?,
            fetch: client.version(&node, ApiKey::OffsetFetch, 7)?,
        };
        let mut member = GroupMember {
            group: group.to_string(),
            node,
            topic: topic.to_string(),
            member_id: String::new(),
            generation: -1,
            versions,
            last_heartbeat: Instant::now(),
        };
        let assigned = member.rejoin(client)?;
        Ok((member, assigned))
    }

    pub fn generation(&self) -> i32 {
        self.generation
    }

    pub fn group(&self) -> &str {
        &self.group
    }
}
