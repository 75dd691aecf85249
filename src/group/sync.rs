//! SyncGroup (the leader hands out assignments, followers wait for them),
//! Heartbeat (how members learn a rebalance started), LeaveGroup (one or a
//! batch of members) and the membership checks of OffsetCommit and
//! TxnOffsetCommit. Kafka's
//! `GroupCoordinator` handlers of the same names, on the group's shard.

use bytes::Bytes;

use super::error;
use super::messages::{
    Effect, HeartbeatRequest, LeaveMember, LeaveMemberResult, LeaveResponse, RemovalReason, Reply,
    SyncOutcome, SyncRequest, SyncResponse,
};
use super::state_machine::{Group, GroupState};

impl Group {
    /// Handle a SyncGroup at `now_ms`. The leader's request completes every
    /// pending SyncGroup (see the effects) and makes the group Stable.
    pub fn sync(&mut self, request: SyncRequest, now_ms: i64) -> Reply<SyncOutcome> {
        let mut reply = self.with_timers(now_ms, |group, effects| {
            group.handle_sync(request, now_ms, effects)
        });
        if let SyncOutcome::Pending { member_id } = &reply.outcome {
            let own = reply.effects.iter().position(
                |effect| matches!(effect, Effect::Sync { member_id: id, .. } if id == member_id),
            );
            if let Some(i) = own {
                if let Effect::Sync { response, .. } = reply.effects.remove(i) {
                    reply.outcome = SyncOutcome::Response(response);
                }
            }
        }
        reply
    }

    fn handle_sync(
        &mut self,
        request: SyncRequest,
        now_ms: i64,
        effects: &mut Vec<Effect>,
    ) -> SyncOutcome {
        let refuse = |code| SyncOutcome::Response(SyncResponse::error(code));
        if self.state == GroupState::Dead {
            return refuse(error::COORDINATOR_NOT_AVAILABLE);
        }
        let index =
            match self.validate_member(&request.member_id, request.group_instance_id.as_deref()) {
                Ok(index) => index,
                Err(code) => return refuse(code),
            };
        if request.generation_id != self.generation_id {
            return refuse(error::ILLEGAL_GENERATION);
        }
        let type_differs = request
            .protocol_type
            .as_ref()
            .is_some_and(|t| self.protocol_type.as_ref() != Some(t));
        let name_differs = request
            .protocol_name
            .as_ref()
            .is_some_and(|n| self.protocol_name.as_ref() != Some(n));
        if type_differs || name_differs {
            return refuse(error::INCONSISTENT_GROUP_PROTOCOL);
        }
        match self.state {
            GroupState::Empty | GroupState::Dead => refuse(error::UNKNOWN_MEMBER_ID),
            GroupState::PreparingRebalance => refuse(error::REBALANCE_IN_PROGRESS),
            GroupState::Stable => {
                self.members[index].heartbeat_received(now_ms);
                let assignment = self.members[index].assignment.clone();
                SyncOutcome::Response(self.sync_response(assignment))
            }
            GroupState::CompletingRebalance => {
                self.members[index].awaiting_sync = true;
                if self.leader_id.as_deref() == Some(request.member_id.as_str()) {
                    self.set_and_propagate_assignment(request.assignments, now_ms, effects);
                }
                SyncOutcome::Pending {
                    member_id: request.member_id,
                }
            }
        }
    }

    fn sync_response(&self, assignment: Bytes) -> SyncResponse {
        SyncResponse {
            error_code: error::NONE,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment,
        }
    }

    /// The leader's assignments become the members' (members it left out
    /// get an empty one, ids it made up are ignored) and the group is Stable.
    fn set_and_propagate_assignment(
        &mut self,
        assignments: Vec<(String, Bytes)>,
        now_ms: i64,
        effects: &mut Vec<Effect>,
    ) {
        effects.push(Effect::StoreGroup {
            generation_id: self.generation_id,
        });
        for i in 0..self.members.len() {
            let assignment = assignments
                .iter()
                .find(|(id, _)| *id == self.members[i].member_id)
                .map(|(_, bytes)| bytes.clone())
                .unwrap_or_default();
            let response = self.sync_response(assignment.clone());
            let member = &mut self.members[i];
            member.assignment = assignment;
            if member.awaiting_sync {
                member.awaiting_sync = false;
                // Its session restarts now: while it waited it could not
                // heartbeat, and its timer was suspended.
                member.heartbeat_received(now_ms);
                effects.push(Effect::Sync {
                    member_id: member.member_id.clone(),
                    response,
                });
            }
        }
        self.state = GroupState::Stable;
    }

    /// Handle a Heartbeat at `now_ms`; the answer is an error code.
    /// REBALANCE_IN_PROGRESS is how members learn to rejoin.
    pub fn heartbeat(&mut self, request: HeartbeatRequest, now_ms: i64) -> Reply<i16> {
        self.with_timers(now_ms, |group, _| {
            if group.state == GroupState::Dead {
                return error::COORDINATOR_NOT_AVAILABLE;
            }
            let index = match group
                .validate_member(&request.member_id, request.group_instance_id.as_deref())
            {
                Ok(index) => index,
                Err(code) => return code,
            };
            if request.generation_id != group.generation_id {
                return error::ILLEGAL_GENERATION;
            }
            group.members[index].heartbeat_received(now_ms);
            match group.state {
                GroupState::PreparingRebalance => error::REBALANCE_IN_PROGRESS,
                // Clients may heartbeat between JoinGroup and SyncGroup.
                GroupState::CompletingRebalance | GroupState::Stable => error::NONE,
                GroupState::Empty | GroupState::Dead => error::UNKNOWN_MEMBER_ID,
            }
        })
    }

    /// Handle a LeaveGroup at `now_ms` for one or many members (v3+). A
    /// static member may leave by instance id alone (member id empty).
    pub fn leave(&mut self, members: &[LeaveMember], now_ms: i64) -> Reply<LeaveResponse> {
        self.with_timers(now_ms, |group, effects| {
            if group.state == GroupState::Dead {
                return LeaveResponse {
                    error_code: error::COORDINATOR_NOT_AVAILABLE,
                    members: Vec::new(),
                };
            }
            let results = members
                .iter()
                .map(|leaving| LeaveMemberResult {
                    member_id: leaving.member_id.clone(),
                    group_instance_id: leaving.group_instance_id.clone(),
                    error_code: group.leave_one(leaving, now_ms, effects),
                })
                .collect();
            LeaveResponse {
                error_code: error::NONE,
                members: results,
            }
        })
    }

    fn leave_one(&mut self, leaving: &LeaveMember, now_ms: i64, effects: &mut Vec<Effect>) -> i16 {
        let member_id = match leaving.group_instance_id.as_deref() {
            Some(instance_id) => match self.static_member_index(instance_id) {
                None => return error::UNKNOWN_MEMBER_ID,
                Some(i)
                    if !leaving.member_id.is_empty()
                        && self.members[i].member_id != leaving.member_id =>
                {
                    return error::FENCED_INSTANCE_ID
                }
                Some(i) => self.members[i].member_id.clone(),
            },
            None => {
                if self.remove_pending_member(&leaving.member_id, now_ms, effects) {
                    return error::NONE;
                }
                if self.member_index(&leaving.member_id).is_none() {
                    return error::UNKNOWN_MEMBER_ID;
                }
                leaving.member_id.clone()
            }
        };
        self.remove_member_and_update(&member_id, RemovalReason::Left, now_ms, effects);
        error::NONE
    }

    /// May this member commit offsets for this generation? Kafka's checks
    /// in `handleCommitOffsets`/`doCommitOffsets`: generation < 0 on an
    /// Empty group is a standalone (assign()) consumer and always may; a
    /// good commit counts as a heartbeat. (A group that does not exist is
    /// the caller's: it creates an Empty group for generation < 0 and
    /// answers ILLEGAL_GENERATION otherwise.)
    pub fn validate_offset_commit(
        &mut self,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
        now_ms: i64,
    ) -> Reply<i16> {
        self.with_timers(now_ms, |group, _| {
            if group.state == GroupState::Dead {
                return error::COORDINATOR_NOT_AVAILABLE;
            }
            if generation_id < 0 && group.state == GroupState::Empty {
                return error::NONE;
            }
            if group.state == GroupState::CompletingRebalance {
                // It has the new generation but no assignment yet.
                return error::REBALANCE_IN_PROGRESS;
            }
            let index = match group.validate_member(member_id, group_instance_id) {
                Ok(index) => index,
                Err(code) => return code,
            };
            if generation_id != group.generation_id {
                return error::ILLEGAL_GENERATION;
            }
            group.members[index].heartbeat_received(now_ms);
            error::NONE
        })
    }

    /// May a transactional producer commit offsets for this group
    /// (TxnOffsetCommit)? Kafka's `validateOffsetCommit` with
    /// `isTransactional`: a request naming no member and no generation
    /// (v0-2, or a producer outside group management) always may, whatever
    /// the group's state; one that names them (v3+, KIP-447) must be the
    /// current member at the current generation. Unlike OffsetCommit there
    /// is no REBALANCE_IN_PROGRESS and the commit is no heartbeat.
    pub fn validate_txn_offset_commit(
        &self,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
    ) -> i16 {
        if self.state == GroupState::Dead {
            return error::COORDINATOR_NOT_AVAILABLE;
        }
        if generation_id < 0 && member_id.is_empty() && group_instance_id.is_none() {
            return error::NONE;
        }
        if let Err(code) = self.validate_member(member_id, group_instance_id) {
            return code;
        }
        if generation_id != self.generation_id {
            return error::ILLEGAL_GENERATION;
        }
        error::NONE
    }
}
