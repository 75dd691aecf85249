//! One group member: identity (member id, `group.instance.id`, client id and
//! host), the protocols it supports with their metadata, the assignment the
//! leader gave it, and the bookkeeping of its timers and pending requests.
//! Lives inside its `Group` on the group's coordinator shard.

use bytes::Bytes;

/// One protocol (assignor) a member supports, with its metadata bytes
/// (for consumers: subscription, owned partitions, user data).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Protocol {
    pub name: String,
    pub metadata: Bytes,
}

impl Protocol {
    pub fn new(name: &str, metadata: impl Into<Bytes>) -> Self {
        Protocol {
            name: name.to_string(),
            metadata: metadata.into(),
        }
    }
}

/// A member of a group. Read it through `Group::members`; only the group
/// changes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    /// In the member's order of preference.
    pub protocols: Vec<Protocol>,
    /// What the leader assigned it in the current generation.
    pub assignment: Bytes,
    /// It has a JoinGroup waiting for the current join round.
    pub(super) awaiting_join: bool,
    /// It has a SyncGroup waiting for the leader's assignment.
    pub(super) awaiting_sync: bool,
    /// Joined in the current round and not yet part of a generation
    /// (KIP-394: such a member expires after `NEW_MEMBER_JOIN_TIMEOUT_MS`
    /// even while awaiting the join).
    pub(super) is_new: bool,
    /// When it expires unless it heartbeats (or is kept alive by a pending
    /// request, see `expires_at`).
    pub(super) heartbeat_deadline_ms: i64,
}

impl Member {
    /// The metadata this member sent for `protocol`, if it supports it.
    pub fn metadata(&self, protocol: &str) -> Option<&Bytes> {
        self.protocols
            .iter()
            .find(|p| p.name == protocol)
            .map(|p| &p.metadata)
    }

    /// Whether it supports `protocol`.
    pub fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|p| p.name == protocol)
    }

    /// Its first choice among `candidates` (Kafka's `MemberMetadata.vote`).
    pub(super) fn vote<'a>(&'a self, candidates: &[&str]) -> Option<&'a str> {
        self.protocols
            .iter()
            .map(|p| p.name.as_str())
            .find(|name| candidates.contains(name))
    }

    /// Same protocol names with the same metadata, in the same order.
    pub(super) fn has_same_protocols(&self, protocols: &[Protocol]) -> bool {
        self.protocols == protocols
    }

    pub(super) fn is_static(&self) -> bool {
        self.group_instance_id.is_some()
    }

    /// When the session timer fires for this member, or `None` while a
    /// pending request keeps it alive: a member waiting in a join round or
    /// for its assignment cannot heartbeat on that connection, so Kafka does
    /// not expire it (`MemberMetadata.hasSatisfiedHeartbeat`); new members
    /// are the exception (KIP-394).
    pub(super) fn expires_at(&self) -> Option<i64> {
        if self.is_new || !(self.awaiting_join || self.awaiting_sync) {
            Some(self.heartbeat_deadline_ms)
        } else {
            None
        }
    }

    /// Record liveness: the next heartbeat is due a session timeout later.
    pub(super) fn heartbeat_received(&mut self, now_ms: i64) {
        self.heartbeat_deadline_ms = now_ms + i64::from(self.session_timeout_ms);
    }
}

/// A dynamic member that got its id with MEMBER_ID_REQUIRED and has not
/// joined with it yet. It counts toward the group size and holds up the
/// join round until it joins or its session timeout passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PendingMember {
    pub(super) member_id: String,
    pub(super) deadline_ms: i64,
}
