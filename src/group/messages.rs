//! Requests into the group state machine and what comes out: responses,
//! outcomes that complete later, and effects. Plain data, no codecs: the
//! protocol layer copies fields to and from the wire messages (and fills in
//! version-dependent defaults such as `require_known_member_id`).

use bytes::Bytes;

use super::member::Protocol;

/// One JoinGroup request, as far as the group needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JoinRequest {
    /// Empty for a member joining for the first time.
    pub member_id: String,
    /// `group.instance.id` of a static member (KIP-345).
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    /// JoinGroup v0 has none: the caller passes the session timeout.
    pub rebalance_timeout_ms: i32,
    /// "consumer" for consumers, "connect" for Connect workers.
    pub protocol_type: String,
    /// The assignors the member supports, in its order of preference.
    pub protocols: Vec<Protocol>,
    /// JoinGroup v4+: a new dynamic member first gets a member id with
    /// MEMBER_ID_REQUIRED and must join again with it (KIP-394).
    pub require_known_member_id: bool,
}

/// A member as the leader sees it in its JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// The member's metadata for the group's chosen protocol.
    pub metadata: Bytes,
}

/// A JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResponse {
    pub error_code: i16,
    /// -1 on error, as Kafka answers.
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    /// The chosen assignor.
    pub protocol_name: Option<String>,
    pub leader: String,
    /// JoinGroup v9+ (KIP-814); always false here, see `join.rs`.
    pub skip_assignment: bool,
    pub member_id: String,
    /// Every member's metadata for the leader, empty for everyone else.
    pub members: Vec<JoinMember>,
}

impl JoinResponse {
    /// The error response Kafka sends: no generation, no leader.
    pub fn error(member_id: &str, error_code: i16) -> Self {
        JoinResponse {
            error_code,
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            skip_assignment: false,
            member_id: member_id.to_string(),
            members: Vec::new(),
        }
    }
}

/// What a JoinGroup gets: an answer now, or later through
/// [`Effect::Join`] for `member_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinOutcome {
    Response(JoinResponse),
    /// The member waits for the join round to complete. If the same member
    /// joins again while pending, the newer request supersedes the older
    /// one (as in Kafka); the caller may drop the older waiter.
    Pending {
        member_id: String,
    },
}

/// One SyncGroup request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncRequest {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub generation_id: i32,
    /// SyncGroup v5+; checked against the group's when present.
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// Only the leader's are used: member id -> assignment bytes.
    pub assignments: Vec<(String, Bytes)>,
}

/// A SyncGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResponse {
    pub error_code: i16,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResponse {
    pub fn error(error_code: i16) -> Self {
        SyncResponse {
            error_code,
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// What a SyncGroup gets: an answer now, or later through [`Effect::Sync`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    Response(SyncResponse),
    /// A follower waits for the leader's assignment.
    Pending {
        member_id: String,
    },
}

/// One Heartbeat request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeartbeatRequest {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub generation_id: i32,
}

/// One member leaving (LeaveGroup v3+ carries a batch of them; older
/// versions carry one dynamic member id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaveMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

/// Per-member LeaveGroup result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveMemberResult {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub error_code: i16,
}

/// A LeaveGroup response: a group-level error and per-member results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveResponse {
    pub error_code: i16,
    pub members: Vec<LeaveMemberResult>,
}

/// Why a member left the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemovalReason {
    /// No heartbeat within its session timeout.
    SessionExpired,
    /// Did not rejoin before the join round completed.
    NotRejoined,
    /// LeaveGroup.
    Left,
    /// A static member's new incarnation took over its `group.instance.id`.
    Fenced,
}

/// Something the caller must act on, produced by any event or by `tick`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Complete the pending JoinGroup of `member_id`.
    Join {
        member_id: String,
        response: JoinResponse,
    },
    /// Complete the pending SyncGroup of `member_id`.
    Sync {
        member_id: String,
        response: SyncResponse,
    },
    /// A member left the group (for logs and metrics).
    MemberRemoved {
        member_id: String,
        group_instance_id: Option<String>,
        reason: RemovalReason,
    },
    /// The group's metadata changed where Kafka stores it in the offsets
    /// log: assignments were set (Stable) or the group became Empty.
    StoreGroup { generation_id: i32 },
}

/// An event's direct answer plus the effects it caused (completions of
/// other members' pending requests, timers that fell due).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply<T> {
    pub outcome: T,
    pub effects: Vec<Effect>,
}
