//! Leaving a consumer group: epoch -1 (the member is gone: fenced out,
//! its partitions freed, the group epoch bumped so the others rebalance)
//! and -2 (a static member that will come back within its session timeout
//! keeps its place and its partitions until then, KIP-345 for KIP-848).
//! Fencing on a timer goes through the same `fence_member`.

use super::error::HeartbeatError;
use super::group::ConsumerGroup;
use super::heartbeat::{fenced_instance, unknown_instance};
use super::messages::{HeartbeatRequest, HeartbeatResponse};
use super::records::{self, ConsumerGroupRecord, CurrentAssignmentValue};
use super::LEAVE_GROUP_STATIC_MEMBER_EPOCH;

impl ConsumerGroup {
    /// Leave with -1 (gone) or -2 (a static member that will come back
    /// within its session timeout and keeps its place until then).
    pub(super) fn leave(
        &mut self,
        request: &HeartbeatRequest,
        records: &mut Vec<ConsumerGroupRecord>,
    ) -> Result<HeartbeatResponse, HeartbeatError> {
        if self.deleted || self.is_unborn() {
            return Err(self.not_found());
        }
        let member_id = request.member_id.as_str();
        let response = |epoch| HeartbeatResponse {
            error_code: 0,
            error_message: None,
            member_id: Some(member_id.to_string()),
            member_epoch: epoch,
            heartbeat_interval_ms: 0,
            assignment: None,
        };
        let Some(instance_id) = request.instance_id.as_deref() else {
            if !self.members.contains_key(member_id) {
                return Err(HeartbeatError::UnknownMemberId(format!(
                    "Member {member_id} is not a member of group {}.",
                    self.group_id
                )));
            }
            self.fence_member(member_id, records);
            return Ok(response(request.member_epoch));
        };
        let Some(holder) = self
            .static_member_id(instance_id)
            .and_then(|id| self.members.get(id))
            .cloned()
        else {
            return Err(unknown_instance(instance_id));
        };
        if holder.member_id != member_id {
            return Err(fenced_instance(instance_id, member_id, &holder.member_id));
        }
        if request.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
            // Keeps its partitions (at epoch -2, so nobody else gets them)
            // until it returns or its session expires.
            let mut left = holder;
            left.member_epoch = LEAVE_GROUP_STATIC_MEMBER_EPOCH;
            left.partitions_pending_revocation.clear();
            self.rebalance_deadlines_ms.remove(member_id);
            self.apply(
                ConsumerGroupRecord::CurrentAssignment {
                    member_id: member_id.to_string(),
                    value: Some(CurrentAssignmentValue {
                        member_epoch: left.member_epoch,
                        previous_member_epoch: left.previous_member_epoch,
                        state: left.state.value(),
                        assigned_partitions: left.assigned_partitions,
                        partitions_pending_revocation: left.partitions_pending_revocation,
                    }),
                },
                records,
            );
            return Ok(response(LEAVE_GROUP_STATIC_MEMBER_EPOCH));
        }
        self.fence_member(member_id, records);
        Ok(response(request.member_epoch))
    }

    /// Kafka's `consumerGroupFenceMember`: remove the member, shrink the
    /// subscriptions and bump the group epoch so the others rebalance.
    pub(super) fn fence_member(&mut self, member_id: &str, records: &mut Vec<ConsumerGroupRecord>) {
        if !self.members.contains_key(member_id) {
            return;
        }
        for tombstone in records::member_tombstones(member_id) {
            self.apply(tombstone, records);
        }
        self.forget_timers(member_id);
        self.shrink_subscriptions(records);
        self.apply(
            ConsumerGroupRecord::GroupEpoch(Some(self.group_epoch + 1)),
            records,
        );
    }
}
