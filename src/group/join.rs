//! JoinGroup: new dynamic members (with the MEMBER_ID_REQUIRED two-step of
//! KIP-394), known members rejoining, and static members (KIP-345) whose new
//! incarnation takes over the old one's place. Kafka's
//! `GroupCoordinator.handleJoinGroup` and its helpers, on the group's shard.

use uuid::Uuid;

use super::error;
use super::member::{Member, PendingMember};
use super::messages::{Effect, JoinOutcome, JoinRequest, JoinResponse, RemovalReason, Reply};
use super::state_machine::{Group, GroupState};
use super::NEW_MEMBER_JOIN_TIMEOUT_MS;

impl Group {
    /// Handle a JoinGroup at `now_ms`. `member_id_suffix` makes the id of a
    /// new member (`<client.id or group.instance.id>-<uuid>`, as Kafka
    /// names them); pass `Uuid::new_v4()`, tests pass fixed ones.
    ///
    /// The caller checks metadata sizes (`MEMBER_METADATA_BYTES_MAX`) and
    /// the group id before calling.
    pub fn join(
        &mut self,
        request: JoinRequest,
        now_ms: i64,
        member_id_suffix: Uuid,
    ) -> Reply<JoinOutcome> {
        debug_assert!(request
            .protocols
            .iter()
            .all(|p| p.metadata.len() <= super::MEMBER_METADATA_BYTES_MAX));
        let mut reply = self.with_timers(now_ms, |group, effects| {
            group.handle_join(request, now_ms, member_id_suffix, effects)
        });
        // The round may have completed within this call: answer directly.
        if let JoinOutcome::Pending { member_id } = &reply.outcome {
            let own = reply.effects.iter().position(
                |effect| matches!(effect, Effect::Join { member_id: id, .. } if id == member_id),
            );
            if let Some(i) = own {
                if let Effect::Join { response, .. } = reply.effects.remove(i) {
                    reply.outcome = JoinOutcome::Response(response);
                }
            }
        }
        reply
    }

    fn handle_join(
        &mut self,
        request: JoinRequest,
        now_ms: i64,
        member_id_suffix: Uuid,
        effects: &mut Vec<Effect>,
    ) -> JoinOutcome {
        let refuse = |code| JoinOutcome::Response(JoinResponse::error(&request.member_id, code));
        if request.session_timeout_ms < self.config.session_timeout_min_ms
            || request.session_timeout_ms > self.config.session_timeout_max_ms
        {
            return refuse(error::INVALID_SESSION_TIMEOUT);
        }
        if self.state == GroupState::Dead {
            return refuse(error::COORDINATOR_NOT_AVAILABLE);
        }
        if request.protocol_type.is_empty() || request.protocols.is_empty() {
            return refuse(error::INCONSISTENT_GROUP_PROTOCOL);
        }
        if request.member_id.is_empty() {
            self.join_new_member(request, now_ms, member_id_suffix, effects)
        } else {
            self.join_known_member(request, now_ms, effects)
        }
    }

    /// Kafka's `supportsProtocols`: the type matches and some protocol of
    /// the request is supported by every other member.
    fn supports_protocols(&self, request: &JoinRequest) -> bool {
        let mut others = self
            .members
            .iter()
            .filter(|m| m.member_id != request.member_id)
            .peekable();
        if others.peek().is_none() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(request.protocol_type.as_str()) {
            return false;
        }
        let others: Vec<&Member> = others.collect();
        request
            .protocols
            .iter()
            .any(|p| others.iter().all(|m| m.supports(&p.name)))
    }

    fn is_full(&self) -> bool {
        self.members.len() + self.pending_members.len() >= self.config.group_size_max
    }

    fn join_new_member(
        &mut self,
        request: JoinRequest,
        now_ms: i64,
        member_id_suffix: Uuid,
        effects: &mut Vec<Effect>,
    ) -> JoinOutcome {
        if !self.supports_protocols(&request) {
            return JoinOutcome::Response(JoinResponse::error(
                "",
                error::INCONSISTENT_GROUP_PROTOCOL,
            ));
        }
        let prefix = request
            .group_instance_id
            .as_deref()
            .unwrap_or(&request.client_id);
        let member_id = format!("{prefix}-{member_id_suffix}");
        if let Some(instance_id) = request.group_instance_id.as_deref() {
            if let Some(index) = self.static_member_index(instance_id) {
                return self.replace_static_member(index, member_id, request, now_ms, effects);
            }
        }
        if self.is_full() {
            return JoinOutcome::Response(JoinResponse::error("", error::GROUP_MAX_SIZE_REACHED));
        }
        if request.group_instance_id.is_none() && request.require_known_member_id {
            // KIP-394: hand out the id first, so a client that times out
            // and retries does not leave a trail of orphan members.
            self.pending_members.push(PendingMember {
                member_id: member_id.clone(),
                deadline_ms: now_ms + i64::from(request.session_timeout_ms),
            });
            return JoinOutcome::Response(JoinResponse::error(
                &member_id,
                error::MEMBER_ID_REQUIRED,
            ));
        }
        self.add_member_and_rebalance(member_id, request, now_ms, effects)
    }

    fn join_known_member(
        &mut self,
        request: JoinRequest,
        now_ms: i64,
        effects: &mut Vec<Effect>,
    ) -> JoinOutcome {
        let refuse = |code| JoinOutcome::Response(JoinResponse::error(&request.member_id, code));
        if let Some(pending) = self
            .pending_members
            .iter()
            .position(|p| p.member_id == request.member_id)
        {
            if !self.supports_protocols(&request) {
                return refuse(error::INCONSISTENT_GROUP_PROTOCOL);
            }
            self.pending_members.remove(pending);
            let member_id = request.member_id.clone();
            return self.add_member_and_rebalance(member_id, request, now_ms, effects);
        }
        let index =
            match self.validate_member(&request.member_id, request.group_instance_id.as_deref()) {
                Ok(index) => index,
                Err(code) => return refuse(code),
            };
        if !self.supports_protocols(&request) {
            return refuse(error::INCONSISTENT_GROUP_PROTOCOL);
        }
        let same_protocols = self.members[index].has_same_protocols(&request.protocols);
        let is_leader = self.leader_id.as_deref() == Some(request.member_id.as_str());
        match self.state {
            GroupState::PreparingRebalance => {
                self.update_member_and_rebalance(index, request, now_ms, effects)
            }
            // It lost its JoinGroup response: send it again.
            GroupState::CompletingRebalance if same_protocols => {
                JoinOutcome::Response(self.current_generation_response(index, is_leader, None))
            }
            // A follower with unchanged metadata just gets the generation;
            // the leader rejoining asks for a rebalance (for example after
            // topic metadata changed), as in Kafka.
            GroupState::Stable if same_protocols && !is_leader => {
                self.members[index].heartbeat_received(now_ms);
                JoinOutcome::Response(self.current_generation_response(index, false, None))
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.update_member_and_rebalance(index, request, now_ms, effects)
            }
            GroupState::Empty | GroupState::Dead => refuse(error::UNKNOWN_MEMBER_ID),
        }
    }

    /// The JoinGroup response of the current generation for one member.
    fn current_generation_response(
        &self,
        index: usize,
        with_members: bool,
        leader_override: Option<String>,
    ) -> JoinResponse {
        JoinResponse {
            error_code: error::NONE,
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: leader_override
                .or_else(|| self.leader_id.clone())
                .unwrap_or_default(),
            skip_assignment: false,
            member_id: self.members[index].member_id.clone(),
            members: if with_members {
                self.join_members()
            } else {
                Vec::new()
            },
        }
    }

    fn add_member_and_rebalance(
        &mut self,
        member_id: String,
        request: JoinRequest,
        now_ms: i64,
        effects: &mut Vec<Effect>,
    ) -> JoinOutcome {
        if self.members.is_empty() {
            self.protocol_type = Some(request.protocol_type.clone());
        }
        if self.leader_id.is_none() {
            self.leader_id = Some(member_id.clone());
        }
        self.members.push(Member {
            member_id: member_id.clone(),
            group_instance_id: request.group_instance_id,
            client_id: request.client_id,
            client_host: request.client_host,
            session_timeout_ms: request.session_timeout_ms,
            rebalance_timeout_ms: request.rebalance_timeout_ms,
            protocols: request.protocols,
            assignment: bytes::Bytes::new(),
            awaiting_join: true,
            awaiting_sync: false,
            is_new: true,
            heartbeat_deadline_ms: now_ms + NEW_MEMBER_JOIN_TIMEOUT_MS,
        });
        if self.state == GroupState::PreparingRebalance && self.initial_delay_remaining_ms.is_some()
        {
            self.new_member_added = true;
        }
        self.maybe_prepare_rebalance(now_ms, effects);
        self.try_complete_join(now_ms, effects);
        JoinOutcome::Pending { member_id }
    }

    fn update_member_and_rebalance(
        &mut self,
        index: usize,
        request: JoinRequest,
        now_ms: i64,
        effects: &mut Vec<Effect>,
    ) -> JoinOutcome {
        let member = &mut self.members[index];
        member.protocols = request.protocols;
        member.session_timeout_ms = request.session_timeout_ms;
        member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        member.awaiting_join = true;
        let member_id = member.member_id.clone();
        self.maybe_prepare_rebalance(now_ms, effects);
        self.try_complete_join(now_ms, effects);
        JoinOutcome::Pending { member_id }
    }

    /// KIP-345: a static member restarted and joined without its member id.
    /// The new incarnation takes the old one's place (and assignment); the
    /// old member id is fenced.
    fn replace_static_member(
        &mut self,
        index: usize,
        new_member_id: String,
        request: JoinRequest,
        now_ms: i64,
        effects: &mut Vec<Effect>,
    ) -> JoinOutcome {
        let leader_before = self.leader_id.clone();
        let member = &mut self.members[index];
        let old_member_id = std::mem::replace(&mut member.member_id, new_member_id.clone());
        if std::mem::take(&mut member.awaiting_join) {
            effects.push(Effect::Join {
                member_id: old_member_id.clone(),
                response: JoinResponse::error(&old_member_id, error::FENCED_INSTANCE_ID),
            });
        }
        if std::mem::take(&mut member.awaiting_sync) {
            effects.push(Effect::Sync {
                member_id: old_member_id.clone(),
                response: super::messages::SyncResponse::error(error::FENCED_INSTANCE_ID),
            });
        }
        effects.push(Effect::MemberRemoved {
            member_id: old_member_id.clone(),
            group_instance_id: member.group_instance_id.clone(),
            reason: RemovalReason::Fenced,
        });
        member.client_id = request.client_id.clone();
        member.client_host = request.client_host.clone();
        member.heartbeat_received(now_ms);
        if self.leader_id.as_deref() == Some(old_member_id.as_str()) {
            self.leader_id = Some(new_member_id);
        }
        let same_protocols = self.members[index].has_same_protocols(&request.protocols);
        if self.state == GroupState::Stable && same_protocols {
            // Nothing the assignment depends on changed: no rebalance. The
            // response names the leader as it was, so a restarted leader
            // does not run an assignment a Stable group would never hand out
            // (Kafka does the same before JoinGroup v9's skip_assignment).
            effects.push(Effect::StoreGroup {
                generation_id: self.generation_id,
            });
            return JoinOutcome::Response(self.current_generation_response(
                index,
                false,
                leader_before,
            ));
        }
        self.update_member_and_rebalance(index, request, now_ms, effects)
    }
}
