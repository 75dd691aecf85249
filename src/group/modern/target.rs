//! The target assignment of a group epoch (Kafka's `TargetAssignmentBuilder`):
//! every member's subscription resolved to topic ids through the group's
//! subscription metadata, handed with the previous target to the group's
//! assignor; the members whose target changed get a record, then the
//! target assignment epoch moves to the group epoch.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::assignor::{self, MemberSpec};
use super::group::ConsumerGroup;
use super::records::ConsumerGroupRecord;

impl ConsumerGroup {
    /// Compute and apply the target assignment for the current group epoch.
    pub(super) fn update_target_assignment(&mut self, records: &mut Vec<ConsumerGroupRecord>) {
        debug_assert!(self.group_epoch > self.target_assignment_epoch);
        let topics: BTreeMap<Uuid, i32> = self
            .subscription_metadata
            .values()
            .map(|topic| (topic.topic_id, topic.partition_count))
            .collect();
        let specs: Vec<MemberSpec> = self
            .members
            .values()
            .map(|member| {
                let mut names: BTreeSet<&String> = member.subscribed_topic_names.iter().collect();
                if let Some(resolved) = member
                    .subscribed_topic_regex
                    .as_ref()
                    .and_then(|regex| self.resolved_regexes.get(regex))
                {
                    names.extend(resolved.topics.iter());
                }
                MemberSpec {
                    member_id: member.member_id.clone(),
                    instance_id: member.instance_id.clone(),
                    topic_ids: names
                        .into_iter()
                        .filter_map(|name| self.subscription_metadata.get(name))
                        .map(|topic| topic.topic_id)
                        .collect(),
                    previous: self
                        .target_assignment
                        .get(&member.member_id)
                        .cloned()
                        .unwrap_or_default(),
                }
            })
            .collect();
        let targets = assignor::assign(self.preferred_assignor(), &specs, &topics);
        for (member_id, target) in targets {
            // A member without a target yet gets one, even an empty one.
            if self.target_assignment.get(&member_id) != Some(&target) {
                self.apply(
                    ConsumerGroupRecord::TargetAssignmentMember {
                        member_id,
                        partitions: Some(target),
                    },
                    records,
                );
            }
        }
        self.apply(
            ConsumerGroupRecord::TargetAssignmentEpoch(Some(self.group_epoch)),
            records,
        );
    }

    /// Append a record the group produced and apply it. A record of our own
    /// that does not apply is a bug in this module.
    pub(super) fn apply(
        &mut self,
        record: ConsumerGroupRecord,
        records: &mut Vec<ConsumerGroupRecord>,
    ) {
        if let Err(error) = self.replay(&record) {
            panic!(
                "group {}: own record {record:?} failed: {error}",
                self.group_id
            );
        }
        records.push(record);
    }
}
