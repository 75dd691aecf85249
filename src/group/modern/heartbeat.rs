//! ConsumerGroupHeartbeat: join (epoch 0), heartbeat (the current epoch),
//! leave (-1) and a static member's temporary leave (-2). Follows Kafka's
//! `GroupMetadataManager.consumerGroupHeartbeat`: (1) create or update the
//! member, bumping the group epoch when subscriptions or the subscribed
//! topics' metadata changed; (2) compute a new target assignment when the
//! group epoch is ahead of it; (3) move the member one step towards its
//! target. Every check that can refuse the request runs before the first
//! record, so a refused heartbeat changes nothing.

use super::error::HeartbeatError;
use super::group::ConsumerGroup;
use super::member::ConsumerMember;
use super::messages::{HeartbeatOutcome, HeartbeatRequest, HeartbeatResponse};
use super::messages::{OwnedTopicPartitions, TopicView};
use super::records::{self, ConsumerGroupRecord};
use super::{reconcile, subscription, Assignment, AssignorName};
use super::{
    CONSUMER_GENERATED_MEMBER_ID_REQUIRED_VERSION, LEAVE_GROUP_MEMBER_EPOCH,
    LEAVE_GROUP_STATIC_MEMBER_EPOCH, SUBSCRIBED_TOPIC_NAMES_MAX,
};

/// Kafka's `throwIfConsumerGroupHeartbeatRequestIsInvalid` (4.0): checks
/// that need no group. The caller may run it before looking the group up.
pub fn validate_heartbeat(
    request: &HeartbeatRequest,
    assignors: &[AssignorName],
) -> Result<(), HeartbeatError> {
    // Java's String.trim(): every char up to ' ' counts as blank.
    let blank = |value: &str| value.trim_matches(|c| c <= ' ').is_empty();
    let epoch = request.member_epoch;
    if (request.api_version >= CONSUMER_GENERATED_MEMBER_ID_REQUIRED_VERSION
        || epoch > 0
        || epoch == LEAVE_GROUP_MEMBER_EPOCH)
        && blank(&request.member_id)
    {
        return Err(HeartbeatError::invalid("MemberId can't be empty."));
    }
    if blank(&request.group_id) {
        return Err(HeartbeatError::invalid("GroupId can't be empty."));
    }
    if request.instance_id.as_deref().is_some_and(blank) {
        return Err(HeartbeatError::invalid("InstanceId can't be empty."));
    }
    if request.rack_id.as_deref().is_some_and(blank) {
        return Err(HeartbeatError::invalid("RackId can't be empty."));
    }
    if epoch == 0 {
        if request.rebalance_timeout_ms == -1 {
            return Err(HeartbeatError::invalid(
                "RebalanceTimeoutMs must be provided in first request.",
            ));
        }
        if request
            .topic_partitions
            .as_ref()
            .is_none_or(|p| !p.is_empty())
        {
            return Err(HeartbeatError::invalid(
                "TopicPartitions must be empty when (re-)joining.",
            ));
        }
        // Kafka accepts an empty list or an empty regex: a member of the
        // group that subscribes to nothing.
        if request.subscribed_topic_names.is_none() && request.subscribed_topic_regex.is_none() {
            return Err(HeartbeatError::invalid(
                "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when \
                 (re-)joining.",
            ));
        }
    } else if epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
        if request.instance_id.is_none() {
            return Err(HeartbeatError::invalid("InstanceId can't be null."));
        }
    } else if epoch < LEAVE_GROUP_STATIC_MEMBER_EPOCH {
        return Err(HeartbeatError::invalid("MemberEpoch is invalid."));
    }
    if request
        .subscribed_topic_names
        .as_ref()
        .is_some_and(|names| names.len() > SUBSCRIBED_TOPIC_NAMES_MAX)
    {
        return Err(HeartbeatError::invalid(
            "SubscribedTopicNames has too many topics.",
        ));
    }
    if let Some(name) = &request.server_assignor {
        if !assignors.iter().any(|a| a.name() == name) {
            let supported: Vec<&str> = assignors.iter().map(|a| a.name()).collect();
            return Err(HeartbeatError::UnsupportedAssignor(format!(
                "ServerAssignor {name} is not supported. Supported assignors: {}.",
                supported.join(", ")
            )));
        }
    }
    Ok(())
}

/// How a joining or heartbeating request maps onto the group's members.
enum Arrival {
    /// An existing member (its epoch already checked).
    Existing,
    /// A member the group does not have yet.
    New,
    /// A static member's new incarnation takes over from the member that
    /// left with epoch -2 (`old_member_id`).
    ReplaceStatic { old_member_id: String },
    /// A static member that left with -2 comes back with its own member id.
    ResetStatic,
}

impl ConsumerGroup {
    /// Handle one ConsumerGroupHeartbeat. `fresh_member_id` is called only
    /// for a v0 join without a member id (Kafka: a random uuid).
    pub fn heartbeat(
        &mut self,
        request: &HeartbeatRequest,
        topics: &dyn TopicView,
        now_ms: i64,
        fresh_member_id: impl FnOnce() -> String,
    ) -> HeartbeatOutcome {
        let mut records = Vec::new();
        self.fire_due_timers(now_ms, &mut records);
        let before = records.len();
        let response =
            match self.handle_heartbeat(request, topics, now_ms, fresh_member_id, &mut records) {
                Ok(response) => response,
                Err(error) => {
                    assert_eq!(records.len(), before, "a refused heartbeat wrote records");
                    HeartbeatResponse::error(&error)
                }
            };
        #[cfg(debug_assertions)]
        self.assert_consistent();
        HeartbeatOutcome { response, records }
    }

    fn handle_heartbeat(
        &mut self,
        request: &HeartbeatRequest,
        topics: &dyn TopicView,
        now_ms: i64,
        fresh_member_id: impl FnOnce() -> String,
        records: &mut Vec<ConsumerGroupRecord>,
    ) -> Result<HeartbeatResponse, HeartbeatError> {
        validate_heartbeat(request, &self.config.assignors)?;
        let epoch = request.member_epoch;
        if epoch == LEAVE_GROUP_MEMBER_EPOCH || epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
            return self.leave(request, records);
        }
        if epoch != 0 && (self.deleted || self.is_unborn()) {
            return Err(self.not_found());
        }
        if self.deleted {
            // A join re-creates a deleted group from scratch.
            *self = ConsumerGroup::new(&self.group_id, self.config.clone());
        }
        let size_max = self.config.group_size_max;
        if self.members.len() >= size_max
            && (request.member_id.is_empty() || !self.members.contains_key(&request.member_id))
        {
            return Err(HeartbeatError::GroupMaxSizeReached(format!(
                "The consumer group has reached its maximum capacity of {size_max} members."
            )));
        }
        let member_id = if request.member_id.is_empty() {
            fresh_member_id()
        } else {
            request.member_id.clone()
        };
        let owned = request.topic_partitions.as_deref();
        let arrival = self.arrival(request, &member_id)?;
        if let Some(member) = self.members.get(&member_id) {
            reconcile::check_known_state(member, owned)?;
        }
        if let Some(regex) = request.subscribed_topic_regex.as_deref() {
            if !regex.is_empty() && !self.resolved_regexes.contains_key(regex) {
                subscription::compile_regex(regex)?;
            }
        }
        // Nothing below refuses the request.
        match arrival {
            Arrival::ReplaceStatic { old_member_id } => {
                self.replace_static_member(&old_member_id, &member_id, records)
            }
            Arrival::ResetStatic => self.reset_static_member(&member_id, records),
            Arrival::Existing | Arrival::New => {}
        }
        let before = self
            .members
            .get(&member_id)
            .cloned()
            .unwrap_or_else(|| ConsumerMember::new(&member_id));
        let updated = updated_member(&before, request);
        let subscription_changed = updated.subscribed_topic_names != before.subscribed_topic_names
            || updated.subscribed_topic_regex != before.subscribed_topic_regex;
        if updated != before || !self.members.contains_key(&member_id) {
            self.apply(records::member_metadata_record(&updated), records);
        }
        let mut bump = self.group_epoch == 0 || subscription_changed;
        bump |= self.refresh_subscriptions(topics, now_ms, records);
        if bump {
            self.apply(
                ConsumerGroupRecord::GroupEpoch(Some(self.group_epoch + 1)),
                records,
            );
        }
        if self.group_epoch > self.target_assignment_epoch {
            self.update_target_assignment(records);
        }
        self.reconcile_member(&member_id, owned, now_ms, records);
        let session_ms = i64::from(self.config.session_timeout_ms);
        self.session_deadlines_ms
            .insert(member_id.clone(), now_ms + session_ms);

        let Some(member) = self.members.get(&member_id) else {
            unreachable!("member {member_id} vanished during its own heartbeat");
        };
        // Kafka sends the assignment on a full request (a join, or a client
        // resending everything after an error) and when it changed.
        let full_request = epoch == 0
            || (request.rebalance_timeout_ms != -1
                && (request.subscribed_topic_names.is_some()
                    || request.subscribed_topic_regex.is_some())
                && request.topic_partitions.is_some());
        let changed = member.assigned_partitions != before.assigned_partitions;
        Ok(HeartbeatResponse {
            error_code: 0,
            error_message: None,
            member_id: Some(member_id.clone()),
            member_epoch: member.member_epoch,
            heartbeat_interval_ms: self.config.heartbeat_interval_ms,
            assignment: (full_request || changed).then(|| member.assigned_partitions.clone()),
        })
    }

    pub(super) fn not_found(&self) -> HeartbeatError {
        HeartbeatError::GroupIdNotFound(format!("Consumer group {} not found.", self.group_id))
    }

    /// Kafka's `getOrMaybeSubscribe{Dynamic,Static}ConsumerGroupMember`.
    fn arrival(
        &self,
        request: &HeartbeatRequest,
        member_id: &str,
    ) -> Result<Arrival, HeartbeatError> {
        let joining = request.member_epoch == 0;
        let owned = request.topic_partitions.as_deref();
        let Some(instance_id) = request.instance_id.as_deref() else {
            return match self.members.get(member_id) {
                // KAFKA-19233: a member may always rejoin with epoch 0.
                Some(_) if joining => Ok(Arrival::Existing),
                Some(member) => {
                    check_member_epoch(member, request.member_epoch, owned)?;
                    Ok(Arrival::Existing)
                }
                None if joining => Ok(Arrival::New),
                None => Err(HeartbeatError::UnknownMemberId(format!(
                    "Member {member_id} is not a member of group {}.",
                    self.group_id
                ))),
            };
        };
        let holder = self
            .static_member_id(instance_id)
            .and_then(|id| self.members.get(id));
        if !joining {
            let Some(holder) = holder else {
                return Err(unknown_instance(instance_id));
            };
            if holder.member_id != member_id {
                return Err(fenced_instance(instance_id, member_id, &holder.member_id));
            }
            check_member_epoch(holder, request.member_epoch, owned)?;
            return Ok(Arrival::Existing);
        }
        match holder {
            None if self.members.contains_key(member_id) => Ok(Arrival::Existing),
            None => Ok(Arrival::New),
            // The same incarnation rejoins (a lost response, or after
            // FENCED_MEMBER_EPOCH): it gets its state back, as a dynamic
            // member does, instead of Kafka's UNRELEASED_INSTANCE_ID.
            Some(holder) if holder.member_id == member_id => {
                if holder.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
                    Ok(Arrival::ResetStatic)
                } else {
                    Ok(Arrival::Existing)
                }
            }
            Some(holder) if holder.member_epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH => {
                Err(HeartbeatError::UnreleasedInstanceId(format!(
                    "Static member {member_id} with instance id {instance_id} cannot join the \
                     group because the instance id is owned by {} member.",
                    holder.member_id
                )))
            }
            Some(_) if self.members.contains_key(member_id) => Err(HeartbeatError::invalid(
                "MemberId is already used by another member of the group.",
            )),
            Some(holder) => Ok(Arrival::ReplaceStatic {
                old_member_id: holder.member_id.clone(),
            }),
        }
    }

    /// Kafka's `replaceMember`: the new incarnation takes the old one's
    /// subscription, target and current assignment, at epoch 0, without a
    /// rebalance.
    fn replace_static_member(
        &mut self,
        old_member_id: &str,
        member_id: &str,
        records: &mut Vec<ConsumerGroupRecord>,
    ) {
        let Some(old) = self.members.get(old_member_id).cloned() else {
            return;
        };
        let target = self.target_assignment.get(old_member_id).cloned();
        for tombstone in records::member_tombstones(old_member_id) {
            self.apply(tombstone, records);
        }
        self.forget_timers(old_member_id);
        let mut new = old;
        new.member_id = member_id.to_string();
        new.member_epoch = 0;
        new.previous_member_epoch = 0;
        self.apply(records::member_metadata_record(&new), records);
        self.apply(
            ConsumerGroupRecord::TargetAssignmentMember {
                member_id: member_id.to_string(),
                partitions: Some(target.unwrap_or_default()),
            },
            records,
        );
        self.apply(records::current_assignment_record(&new), records);
    }

    fn reset_static_member(&mut self, member_id: &str, records: &mut Vec<ConsumerGroupRecord>) {
        let Some(mut member) = self.members.get(member_id).cloned() else {
            return;
        };
        member.member_epoch = 0;
        member.previous_member_epoch = 0;
        self.apply(records::current_assignment_record(&member), records);
    }

    /// Step 3: move the member towards the target; start or stop its
    /// rebalance timer (the time it has to revoke partitions).
    fn reconcile_member(
        &mut self,
        member_id: &str,
        owned: Option<&[OwnedTopicPartitions]>,
        now_ms: i64,
        records: &mut Vec<ConsumerGroupRecord>,
    ) {
        let Some(member) = self.members.get(member_id) else {
            return;
        };
        let target_epoch = self.target_assignment_epoch;
        if member.is_reconciled_to(target_epoch) {
            return;
        }
        let empty = Assignment::new();
        let target = self.target_assignment.get(member_id).unwrap_or(&empty);
        let next = reconcile::next_member_state(member, target_epoch, target, owned, &|t, p| {
            self.partition_epoch(t, p)
        });
        if next == *member {
            return;
        }
        if next.state == super::MemberState::UnrevokedPartitions {
            let deadline = now_ms + i64::from(next.rebalance_timeout_ms.max(0));
            self.rebalance_deadlines_ms
                .insert(member_id.to_string(), (deadline, next.member_epoch));
        } else {
            self.rebalance_deadlines_ms.remove(member_id);
        }
        self.apply(records::current_assignment_record(&next), records);
    }
}

/// The member after the request's fields; `None` (-1) leaves a field as is.
fn updated_member(member: &ConsumerMember, request: &HeartbeatRequest) -> ConsumerMember {
    let mut updated = member.clone();
    if let Some(instance_id) = &request.instance_id {
        updated.instance_id = Some(instance_id.clone());
    }
    if let Some(rack_id) = &request.rack_id {
        updated.rack_id = Some(rack_id.clone());
    }
    if request.rebalance_timeout_ms != -1 {
        updated.rebalance_timeout_ms = request.rebalance_timeout_ms;
    }
    if let Some(assignor) = &request.server_assignor {
        updated.server_assignor = Some(assignor.clone());
    }
    if let Some(names) = &request.subscribed_topic_names {
        updated.subscribed_topic_names = names.iter().cloned().collect();
    }
    if let Some(regex) = &request.subscribed_topic_regex {
        // An empty regex clears the regex subscription.
        updated.subscribed_topic_regex = (!regex.is_empty()).then(|| regex.clone());
    }
    updated.client_id = request.client_id.clone();
    updated.client_host = request.client_host.clone();
    updated
}

/// Kafka's `throwIfConsumerGroupMemberEpochIsInvalid`: the member must send
/// its epoch, or its previous one when the response with the bump was lost
/// and it owns nothing beyond what it is assigned now.
fn check_member_epoch(
    member: &ConsumerMember,
    received: i32,
    owned: Option<&[OwnedTopicPartitions]>,
) -> Result<(), HeartbeatError> {
    let known = member.member_epoch;
    if received > known {
        return Err(HeartbeatError::FencedMemberEpoch(format!(
            "The consumer group member has a greater member epoch ({received}) than the one \
             known by the group coordinator ({known}). The member must abandon all its \
             partitions and rejoin."
        )));
    }
    if received < known
        && (received != member.previous_member_epoch
            || !is_subset(owned, &member.assigned_partitions))
    {
        return Err(HeartbeatError::FencedMemberEpoch(format!(
            "The consumer group member has a smaller member epoch ({received}) than the one \
             known by the group coordinator ({known}). The member must abandon all its \
             partitions and rejoin."
        )));
    }
    Ok(())
}

/// Kafka's `isSubset`: every owned partition is in `assigned`; not
/// reporting owned partitions is not a subset.
fn is_subset(owned: Option<&[OwnedTopicPartitions]>, assigned: &Assignment) -> bool {
    let Some(owned) = owned else {
        return false;
    };
    owned.iter().all(|topic| {
        assigned
            .get(&topic.topic_id)
            .is_some_and(|partitions| topic.partitions.iter().all(|p| partitions.contains(p)))
    })
}

pub(super) fn unknown_instance(instance_id: &str) -> HeartbeatError {
    HeartbeatError::UnknownMemberId(format!("Instance id {instance_id} is unknown."))
}

pub(super) fn fenced_instance(
    instance_id: &str,
    member_id: &str,
    holder_id: &str,
) -> HeartbeatError {
    HeartbeatError::FencedInstanceId(format!(
        "Static member {member_id} with instance id {instance_id} was fenced by member \
         {holder_id}."
    ))
}
