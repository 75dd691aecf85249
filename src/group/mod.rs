//! Consumer-group coordinator: the classic Kafka group protocol (JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup) as a pure state machine.
//!
//! Which cores: a group's state lives only on the shard that owns the
//! offsets partition its group id hashes to (like Kafka's
//! `__consumer_offsets`); other shards forward group requests there.
//!
//! Why this shape: membership and rebalancing decide who reads what, so they
//! are plain code with no I/O, no glommio and no protocol codecs. Time is
//! passed in (`now_ms`), every outcome is data: a response now, a response
//! that completes later (keyed by member id) and [`Effect`]s for the caller
//! to deliver. The behaviour follows the Java broker's `GroupCoordinator` /
//! `GroupMetadata` (classic protocol, KIP-345 static membership, KIP-394
//! member id required); the cooperative protocol rides on the same machinery.
//!
//! Inside:
//! - `error`: Kafka error codes the coordinator answers with
//! - `messages`: requests, responses and effects (plain data)
//! - `member`: one member's identity, protocols, assignment and timers
//! - `state_machine`: the `Group`, its states, timers and rebalance rounds
//! - `timers`: session expiry, rebalance timeout, initial rebalance delay
//! - `join`: JoinGroup, including MEMBER_ID_REQUIRED and static members
//! - `sync`: SyncGroup, Heartbeat, LeaveGroup and the offset-commit check
//! - `persist`: a group to and from its stored group metadata record
//! - `offset_records`, `committed_offsets`: the offsets partition's records
//!   and the committed offsets replayed from them
//! - `consumer_group_records`: the bytes of the KIP-848 groups' records
//! - `modern`: the KIP-848 consumer group protocol
//! - `pending_offsets`: transactional offset commits waiting for their
//!   transaction's marker

pub mod committed_offsets;
pub mod consumer_group_records;
pub mod error;
pub mod member;
pub mod messages;
pub mod modern;
pub mod offset_records;
pub mod pending_offsets;
pub mod state_machine;

mod join;
mod persist;
mod sync;
mod timers;

#[cfg(test)]
mod tests;

pub use error::GroupError;
pub use member::{Member, Protocol};
pub use messages::{
    Effect, HeartbeatRequest, JoinMember, JoinOutcome, JoinRequest, JoinResponse, LeaveMember,
    LeaveMemberResult, LeaveResponse, RemovalReason, Reply, SyncOutcome, SyncRequest, SyncResponse,
};
pub use state_machine::{Group, GroupConfig, GroupState};

/// Most members (joined plus awaiting their second join step) one group may
/// hold. Kafka's `group.max.size` defaults to unbounded; we bound it so that
/// a leader's JoinGroup response (every member's metadata) and per-tick work
/// stay small. The configured limit may be lower, never higher.
pub const GROUP_SIZE_MAX: usize = 1024;

/// How long a member added in a join round may stay silent before that round
/// completes (KIP-394, Kafka's `GroupCoordinator.NewMemberJoinTimeoutMs`): a
/// client that got its member id and vanished must not hold a round forever.
pub const NEW_MEMBER_JOIN_TIMEOUT_MS: i64 = 5 * 60 * 1000;

/// Largest protocol metadata or assignment the caller should hand in, per
/// member and protocol. Checked by the caller (the protocol layer) so that
/// oversized metadata is refused before it reaches the group; this module
/// only asserts it in debug builds.
pub const MEMBER_METADATA_BYTES_MAX: usize = 1024 * 1024;
