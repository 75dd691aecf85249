//! The `Group`: one consumer group's membership and rebalance state, its
//! states (Empty, PreparingRebalance, CompletingRebalance, Stable, Dead),
//! its timers and the join round machinery shared by every event.
//! Lives on the group's coordinator shard; no I/O, time is passed in.
//!
//! Timers (see `timers.rs`) are deadlines stored in the group: every
//! event and `tick(now_ms)` first fires, in time order, every timer due at
//! or before `now_ms`, so the outcome depends only on the sequence of events
//! and their times. `next_deadline_ms` tells the shard when to tick next.

use super::error;
use super::member::{Member, PendingMember};
use super::messages::{Effect, JoinMember, JoinResponse, RemovalReason, SyncResponse};
use super::GROUP_SIZE_MAX;

/// Kafka's group states, with the names DescribeGroups reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The name DescribeGroups and ListGroups report.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// Broker settings the group obeys (Kafka's names in the comments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// `group.min.session.timeout.ms`
    pub session_timeout_min_ms: i32,
    /// `group.max.session.timeout.ms`
    pub session_timeout_max_ms: i32,
    /// `group.initial.rebalance.delay.ms`: the first join round of an Empty
    /// group waits this long for more members (0 is common in tests).
    pub initial_rebalance_delay_ms: i32,
    /// `group.max.size`, at most `GROUP_SIZE_MAX`.
    pub group_size_max: usize,
}

impl Default for GroupConfig {
    /// Kafka's defaults, with the group size bounded.
    fn default() -> Self {
        GroupConfig {
            session_timeout_min_ms: 6_000,
            session_timeout_max_ms: 1_800_000,
            initial_rebalance_delay_ms: 3_000,
            group_size_max: GROUP_SIZE_MAX,
        }
    }
}

/// One consumer group (Kafka's `GroupMetadata` plus the coordinator logic
/// that drives it).
#[derive(Debug, Clone)]
pub struct Group {
    pub(super) group_id: String,
    pub(super) config: GroupConfig,
    pub(super) state: GroupState,
    pub(super) generation_id: i32,
    pub(super) protocol_type: Option<String>,
    pub(super) protocol_name: Option<String>,
    pub(super) leader_id: Option<String>,
    /// In the order they joined; lookups are linear, bounded by the size.
    pub(super) members: Vec<Member>,
    pub(super) pending_members: Vec<PendingMember>,
    /// When the current join round completes (PreparingRebalance only).
    pub(super) join_deadline_ms: Option<i64>,
    /// Some while the round is the initial delayed join of an Empty group:
    /// how much longer new joiners may still extend it.
    pub(super) initial_delay_remaining_ms: Option<i64>,
    /// A member joined since the initial delay last fired.
    pub(super) new_member_added: bool,
}

impl Group {
    /// A new, Empty group at generation 0.
    pub fn new(group_id: &str, config: GroupConfig) -> Self {
        assert!(config.group_size_max <= GROUP_SIZE_MAX);
        assert!(config.initial_rebalance_delay_ms >= 0);
        Group {
            group_id: group_id.to_string(),
            config,
            state: GroupState::Empty,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader_id: None,
            members: Vec::new(),
            pending_members: Vec::new(),
            join_deadline_ms: None,
            initial_delay_remaining_ms: None,
            new_member_added: false,
        }
    }

    pub fn group_id(&self) -> &str {
        &self.group_id
    }
    pub fn state(&self) -> GroupState {
        self.state
    }
    pub fn generation_id(&self) -> i32 {
        self.generation_id
    }
    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }
    /// The assignor chosen for the current generation.
    pub fn protocol_name(&self) -> Option<&str> {
        self.protocol_name.as_deref()
    }
    pub fn leader_id(&self) -> Option<&str> {
        self.leader_id.as_deref()
    }
    /// Members in the order they joined (DescribeGroups).
    pub fn members(&self) -> &[Member] {
        &self.members
    }
    /// Members that got an id with MEMBER_ID_REQUIRED and have not joined
    /// with it yet.
    pub fn pending_member_count(&self) -> usize {
        self.pending_members.len()
    }
    pub fn member(&self, member_id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.member_id == member_id)
    }

    /// Fire every timer due at `now_ms`: session expiry, pending-member
    /// expiry, the rebalance timeout and the initial rebalance delay.
    pub fn tick(&mut self, now_ms: i64) -> Vec<Effect> {
        let mut effects = Vec::new();
        self.fire_due_timers(now_ms, &mut effects);
        effects
    }

    /// The earliest time a timer is due, for the shard to schedule `tick`.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        self.next_timer().map(|(at, _)| at)
    }

    /// DeleteGroups: only an Empty group can go (Kafka answers
    /// NON_EMPTY_GROUP otherwise, GROUP_ID_NOT_FOUND when already Dead).
    pub fn delete(&mut self) -> Result<(), error::GroupError> {
        match self.state {
            GroupState::Empty => {
                self.state = GroupState::Dead;
                Ok(())
            }
            GroupState::Dead => Err(error::GroupError::GroupIdNotFound),
            _ => Err(error::GroupError::NonEmptyGroup),
        }
    }

    /// The coordinator gives the group up (partition moved, shutdown):
    /// every pending request is answered with NOT_COORDINATOR so the
    /// client finds the new coordinator, and the group is Dead here.
    pub fn unload(&mut self) -> Vec<Effect> {
        let mut effects = Vec::new();
        for member in &mut self.members {
            if member.awaiting_join {
                member.awaiting_join = false;
                effects.push(Effect::Join {
                    member_id: member.member_id.clone(),
                    response: JoinResponse::error(&member.member_id, error::NOT_COORDINATOR),
                });
            }
            if member.awaiting_sync {
                member.awaiting_sync = false;
                effects.push(Effect::Sync {
                    member_id: member.member_id.clone(),
                    response: SyncResponse::error(error::NOT_COORDINATOR),
                });
            }
        }
        self.state = GroupState::Dead;
        self.join_deadline_ms = None;
        effects
    }

    // ---- shared machinery -------------------------------------------------

    pub(super) fn member_index(&self, member_id: &str) -> Option<usize> {
        self.members.iter().position(|m| m.member_id == member_id)
    }

    pub(super) fn static_member_index(&self, instance_id: &str) -> Option<usize> {
        self.members
            .iter()
            .position(|m| m.group_instance_id.as_deref() == Some(instance_id))
    }

    /// KIP-345: a request naming an instance id now held by another member
    /// id comes from a fenced (older) incarnation.
    pub(super) fn is_static_member_fenced(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> bool {
        instance_id
            .and_then(|id| self.static_member_index(id))
            .is_some_and(|i| self.members[i].member_id != member_id)
    }

    /// Kafka's `validateCurrentMember`: fenced first, then unknown.
    pub(super) fn validate_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<usize, i16> {
        if self.is_static_member_fenced(member_id, instance_id) {
            return Err(error::FENCED_INSTANCE_ID);
        }
        self.member_index(member_id).ok_or(error::UNKNOWN_MEMBER_ID)
    }

    /// Protocols every member supports, in the first member's order.
    pub(super) fn candidate_protocols(&self) -> Vec<&str> {
        let Some(first) = self.members.first() else {
            return Vec::new();
        };
        first
            .protocols
            .iter()
            .map(|p| p.name.as_str())
            .filter(|name| self.members.iter().all(|m| m.supports(name)))
            .collect()
    }

    /// Kafka's `selectProtocol`: each member votes for its first choice
    /// among the candidates; most votes wins. Ties go to the candidate that
    /// comes first in the candidates' order (Kafka leaves ties to a hash
    /// map; we keep them deterministic).
    pub(super) fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidate_protocols();
        let mut votes = vec![0usize; candidates.len()];
        for member in &self.members {
            if let Some(choice) = member.vote(&candidates) {
                if let Some(i) = candidates.iter().position(|c| *c == choice) {
                    votes[i] += 1;
                }
            }
        }
        let mut best: Option<usize> = None;
        for (i, count) in votes.iter().enumerate() {
            if best.is_none_or(|b| *count > votes[b]) {
                best = Some(i);
            }
        }
        best.map(|i| candidates[i].to_string())
    }

    /// Longest rebalance timeout of any member bounds a join round.
    pub(super) fn rebalance_timeout_ms(&self) -> i64 {
        self.members
            .iter()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0)
    }

    pub(super) fn has_all_members_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.iter().all(|m| m.awaiting_join)
    }

    /// Start a join round unless one is running (or the group is Dead).
    pub(super) fn maybe_prepare_rebalance(&mut self, now_ms: i64, effects: &mut Vec<Effect>) {
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty => {
                self.prepare_rebalance(now_ms, effects)
            }
            GroupState::PreparingRebalance | GroupState::Dead => {}
        }
    }

    fn prepare_rebalance(&mut self, now_ms: i64, effects: &mut Vec<Effect>) {
        if self.state == GroupState::CompletingRebalance {
            // Followers waiting for an assignment of a generation that will
            // never be Stable learn to rejoin (Kafka's
            // resetAndPropagateAssignmentError).
            self.propagate_sync_error(error::REBALANCE_IN_PROGRESS, now_ms, effects);
        }
        if self.state == GroupState::Empty {
            // InitialDelayedJoin: wait for more members before the first
            // generation, extended by joiners up to the rebalance timeout.
            let delay_ms = i64::from(self.config.initial_rebalance_delay_ms);
            self.join_deadline_ms = Some(now_ms + delay_ms);
            self.initial_delay_remaining_ms = Some((self.rebalance_timeout_ms() - delay_ms).max(0));
        } else {
            self.join_deadline_ms = Some(now_ms + self.rebalance_timeout_ms());
            self.initial_delay_remaining_ms = None;
        }
        self.new_member_added = false;
        self.state = GroupState::PreparingRebalance;
    }

    /// Complete the join round now if everyone is in (Kafka's
    /// `DelayedJoin.tryComplete`; the initial delay never completes early).
    pub(super) fn try_complete_join(&mut self, now_ms: i64, effects: &mut Vec<Effect>) {
        if self.state == GroupState::PreparingRebalance
            && self.initial_delay_remaining_ms.is_none()
            && self.has_all_members_joined()
        {
            self.complete_join(now_ms, effects);
        }
    }

    /// Every member awaiting a sync gets `error_code`; assignments reset.
    pub(super) fn propagate_sync_error(
        &mut self,
        error_code: i16,
        now_ms: i64,
        effects: &mut Vec<Effect>,
    ) {
        for member in &mut self.members {
            member.assignment = bytes::Bytes::new();
            if member.awaiting_sync {
                member.awaiting_sync = false;
                member.heartbeat_received(now_ms);
                effects.push(Effect::Sync {
                    member_id: member.member_id.clone(),
                    response: SyncResponse::error(error_code),
                });
            }
        }
    }

    /// Kafka's `onCompleteJoin`.
    pub(super) fn complete_join(&mut self, now_ms: i64, effects: &mut Vec<Effect>) {
        debug_assert_eq!(self.state, GroupState::PreparingRebalance);
        // Dynamic members that did not rejoin are gone; static members keep
        // their place until their session expires (KIP-345).
        let not_rejoined: Vec<String> = self
            .members
            .iter()
            .filter(|m| !m.awaiting_join && !m.is_static())
            .map(|m| m.member_id.clone())
            .collect();
        for member_id in not_rejoined {
            self.remove_member(&member_id, RemovalReason::NotRejoined, effects);
        }
        // Members still in their first join step did not make this round,
        // but keep their ids until their session expires: Kafka's
        // `completeClassicGroupJoin` leaves them pending, and their second
        // JoinGroup starts the next round (clearing them answered that
        // join UNKNOWN_MEMBER_ID, seen with Spring's 3-consumer containers).
        if !self.members.is_empty() && !self.maybe_elect_joined_leader() {
            // Only static members that have not rejoined are left: wait
            // another round for them to rejoin or expire.
            self.join_deadline_ms = Some(now_ms + self.rebalance_timeout_ms());
            self.initial_delay_remaining_ms = None;
            return;
        }
        self.join_deadline_ms = None;
        self.initial_delay_remaining_ms = None;
        self.generation_id += 1;
        if self.members.is_empty() {
            self.protocol_name = None;
            self.state = GroupState::Empty;
            effects.push(Effect::StoreGroup {
                generation_id: self.generation_id,
            });
            return;
        }
        self.protocol_name = self.select_protocol();
        self.state = GroupState::CompletingRebalance;
        let leader_members = self.join_members();
        for i in 0..self.members.len() {
            let is_leader = self.leader_id.as_deref() == Some(&self.members[i].member_id);
            let member = &mut self.members[i];
            if member.awaiting_join {
                member.awaiting_join = false;
                let response = JoinResponse {
                    error_code: error::NONE,
                    generation_id: self.generation_id,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol_name.clone(),
                    leader: self.leader_id.clone().unwrap_or_default(),
                    skip_assignment: false,
                    member_id: member.member_id.clone(),
                    members: if is_leader {
                        leader_members.clone()
                    } else {
                        Vec::new()
                    },
                };
                effects.push(Effect::Join {
                    member_id: member.member_id.clone(),
                    response,
                });
            }
            member.is_new = false;
            member.heartbeat_received(now_ms);
        }
    }

    /// Every member's metadata for the chosen protocol (the leader's view).
    pub(super) fn join_members(&self) -> Vec<JoinMember> {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        self.members
            .iter()
            .map(|m| JoinMember {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                metadata: m.metadata(protocol).cloned().unwrap_or_default(),
            })
            .collect()
    }

    /// Keep the leader if it rejoined, else pick the first member that did.
    fn maybe_elect_joined_leader(&mut self) -> bool {
        let leader_joined = self
            .leader_id
            .as_deref()
            .and_then(|id| self.member(id))
            .is_some_and(|m| m.awaiting_join);
        if leader_joined {
            return true;
        }
        match self.members.iter().find(|m| m.awaiting_join) {
            Some(m) => {
                self.leader_id = Some(m.member_id.clone());
                true
            }
            None => false,
        }
    }

    /// Take a member out, answering any request it still has pending, and
    /// keep the leader pointing at a member.
    pub(super) fn remove_member(
        &mut self,
        member_id: &str,
        reason: RemovalReason,
        effects: &mut Vec<Effect>,
    ) {
        let Some(index) = self.member_index(member_id) else {
            return;
        };
        let member = self.members.remove(index);
        if member.awaiting_join {
            effects.push(Effect::Join {
                member_id: member.member_id.clone(),
                response: JoinResponse::error(&member.member_id, error::UNKNOWN_MEMBER_ID),
            });
        }
        if member.awaiting_sync {
            effects.push(Effect::Sync {
                member_id: member.member_id.clone(),
                response: SyncResponse::error(error::UNKNOWN_MEMBER_ID),
            });
        }
        if self.leader_id.as_deref() == Some(member_id) {
            self.leader_id = self.members.first().map(|m| m.member_id.clone());
        }
        effects.push(Effect::MemberRemoved {
            member_id: member.member_id,
            group_instance_id: member.group_instance_id,
            reason,
        });
    }

    /// Kafka's `removeMemberAndUpdateGroup`: a member leaving a running
    /// generation starts a rebalance; leaving a join round may complete it.
    pub(super) fn remove_member_and_update(
        &mut self,
        member_id: &str,
        reason: RemovalReason,
        now_ms: i64,
        effects: &mut Vec<Effect>,
    ) {
        self.remove_member(member_id, reason, effects);
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.maybe_prepare_rebalance(now_ms, effects)
            }
            GroupState::PreparingRebalance => self.try_complete_join(now_ms, effects),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// Drop a pending (first-step) member; a join round may now complete.
    pub(super) fn remove_pending_member(
        &mut self,
        member_id: &str,
        now_ms: i64,
        effects: &mut Vec<Effect>,
    ) -> bool {
        let before = self.pending_members.len();
        self.pending_members.retain(|p| p.member_id != member_id);
        let removed = self.pending_members.len() != before;
        if removed {
            self.try_complete_join(now_ms, effects);
        }
        removed
    }
}
