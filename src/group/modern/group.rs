//! The `ConsumerGroup`: one KIP-848 group's epochs, members, subscribed
//! topic metadata, resolved regexes and target assignment, plus the indexes
//! derived from them (static members, the epoch at which each partition is
//! held) and the timers. Lives on the group's coordinator shard.
//!
//! Only `replay` (records.rs) changes the persisted part, so a group rebuilt
//! from its records equals the live one; timers are soft state that
//! `on_loaded` restarts after a rebuild.

use std::collections::{BTreeMap, HashMap};

use uuid::Uuid;

use super::assignor::AssignorName;
use super::member::ConsumerMember;
use super::messages::TopicInfo;
use super::records::ResolvedRegex;
use super::Assignment;

/// Kafka's `ConsumerGroupState`, with the names ConsumerGroupDescribe and
/// ListGroups report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerGroupState {
    Empty,
    /// The group epoch moved past the target assignment's.
    Assigning,
    /// Some member has not reached the target assignment yet.
    Reconciling,
    Stable,
    Dead,
}

impl ConsumerGroupState {
    pub fn name(self) -> &'static str {
        match self {
            ConsumerGroupState::Empty => "Empty",
            ConsumerGroupState::Assigning => "Assigning",
            ConsumerGroupState::Reconciling => "Reconciling",
            ConsumerGroupState::Stable => "Stable",
            ConsumerGroupState::Dead => "Dead",
        }
    }
}

/// Broker settings the group obeys (Kafka's names in the comments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupConfig {
    /// `group.consumer.session.timeout.ms`
    pub session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms`
    pub heartbeat_interval_ms: i32,
    /// `group.consumer.max.size`: Kafka's default is `Integer.MAX_VALUE`;
    /// ours is bounded by `GROUP_SIZE_MAX` like classic groups, so the
    /// assignors' and the describe response's work stay bounded.
    pub group_size_max: usize,
    /// `group.consumer.assignors`; the first is the default.
    pub assignors: Vec<AssignorName>,
}

impl Default for ConsumerGroupConfig {
    fn default() -> Self {
        ConsumerGroupConfig {
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 5_000,
            group_size_max: crate::group::GROUP_SIZE_MAX,
            assignors: vec![AssignorName::Uniform, AssignorName::Range],
        }
    }
}

/// One KIP-848 consumer group.
#[derive(Debug, Clone)]
pub struct ConsumerGroup {
    pub(super) group_id: String,
    pub(super) config: ConsumerGroupConfig,
    // ---- persisted: changed only by `replay` ----
    pub(super) group_epoch: i32,
    pub(super) members: BTreeMap<String, ConsumerMember>,
    /// The subscribed topics that exist, by name.
    pub(super) subscription_metadata: BTreeMap<String, TopicInfo>,
    pub(super) resolved_regexes: BTreeMap<String, ResolvedRegex>,
    pub(super) target_assignment_epoch: i32,
    pub(super) target_assignment: BTreeMap<String, Assignment>,
    /// A group tombstone was replayed.
    pub(super) deleted: bool,
    // ---- derived from the persisted part ----
    /// Instance id -> member id.
    pub(super) static_members: BTreeMap<String, String>,
    /// Partition -> epoch of the member holding it (assigned or pending
    /// revocation): Kafka's `currentPartitionEpoch`.
    pub(super) partition_epochs: HashMap<(Uuid, i32), i32>,
    // ---- soft state ----
    /// Member id -> when its session expires.
    pub(super) session_deadlines_ms: BTreeMap<String, i64>,
    /// Member id -> (when, at which member epoch) it is fenced unless it
    /// has revoked its partitions.
    pub(super) rebalance_deadlines_ms: BTreeMap<String, (i64, i32)>,
}

impl ConsumerGroup {
    /// A new group at epoch 0 with no members.
    pub fn new(group_id: &str, config: ConsumerGroupConfig) -> ConsumerGroup {
        assert!(!config.assignors.is_empty());
        assert!(config.group_size_max <= crate::group::GROUP_SIZE_MAX);
        assert!(config.session_timeout_ms > 0 && config.heartbeat_interval_ms > 0);
        ConsumerGroup {
            group_id: group_id.to_string(),
            config,
            group_epoch: 0,
            members: BTreeMap::new(),
            subscription_metadata: BTreeMap::new(),
            resolved_regexes: BTreeMap::new(),
            target_assignment_epoch: 0,
            target_assignment: BTreeMap::new(),
            deleted: false,
            static_members: BTreeMap::new(),
            partition_epochs: HashMap::new(),
            session_deadlines_ms: BTreeMap::new(),
            rebalance_deadlines_ms: BTreeMap::new(),
        }
    }

    pub fn group_id(&self) -> &str {
        &self.group_id
    }
    pub fn config(&self) -> &ConsumerGroupConfig {
        &self.config
    }
    pub fn group_epoch(&self) -> i32 {
        self.group_epoch
    }
    pub fn assignment_epoch(&self) -> i32 {
        self.target_assignment_epoch
    }
    pub fn members(&self) -> impl Iterator<Item = &ConsumerMember> {
        self.members.values()
    }
    pub fn member(&self, member_id: &str) -> Option<&ConsumerMember> {
        self.members.get(member_id)
    }
    pub fn member_count(&self) -> usize {
        self.members.len()
    }
    pub fn target_assignment(&self, member_id: &str) -> Option<&Assignment> {
        self.target_assignment.get(member_id)
    }
    pub fn subscription_metadata(&self) -> &BTreeMap<String, TopicInfo> {
        &self.subscription_metadata
    }
    /// Nothing was ever stored for it: a caller that created the group for
    /// a join that failed may drop it.
    pub fn is_unborn(&self) -> bool {
        self.group_epoch == 0 && self.members.is_empty() && !self.deleted
    }

    /// A group tombstone was replayed: the group is gone.
    pub fn is_deleted(&self) -> bool {
        self.deleted
    }

    /// The records that delete this group (DeleteGroups, or an empty group
    /// replaced by a classic one): Kafka's `createGroupTombstoneRecords`,
    /// in its order. `None` while it has members (NON_EMPTY_GROUP).
    pub fn tombstones(&self) -> Option<Vec<super::ConsumerGroupRecord>> {
        use super::ConsumerGroupRecord as Record;
        if !self.members.is_empty() {
            return None;
        }
        let mut records: Vec<Record> = self
            .resolved_regexes
            .keys()
            .map(|regex| Record::RegularExpression {
                regex: regex.clone(),
                value: None,
            })
            .collect();
        records.push(Record::TargetAssignmentEpoch(None));
        records.push(Record::SubscriptionMetadata(None));
        records.push(Record::GroupEpoch(None));
        Some(records)
    }

    /// Kafka's `maybeUpdateGroupState`, computed rather than stored.
    pub fn state(&self) -> ConsumerGroupState {
        if self.deleted {
            ConsumerGroupState::Dead
        } else if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.group_epoch > self.target_assignment_epoch {
            ConsumerGroupState::Assigning
        } else if self
            .members
            .values()
            .any(|m| !m.is_reconciled_to(self.target_assignment_epoch))
        {
            ConsumerGroupState::Reconciling
        } else {
            ConsumerGroupState::Stable
        }
    }

    /// The assignor the members asked for most (ties to the first name in
    /// the configured order), else the configured default. Kafka breaks
    /// ties by hash map order; we keep them deterministic.
    pub fn preferred_assignor(&self) -> AssignorName {
        let mut best: Option<(usize, AssignorName)> = None;
        for assignor in &self.config.assignors {
            let votes = self
                .members
                .values()
                .filter(|m| m.server_assignor.as_deref() == Some(assignor.name()))
                .count();
            if votes > 0 && best.is_none_or(|(most, _)| votes > most) {
                best = Some((votes, *assignor));
            }
        }
        best.map_or(self.config.assignors[0], |(_, name)| name)
    }

    /// The epoch of the member holding a partition, -1 when it is free.
    pub fn partition_epoch(&self, topic_id: Uuid, partition: i32) -> i32 {
        self.partition_epochs
            .get(&(topic_id, partition))
            .copied()
            .unwrap_or(-1)
    }

    pub(super) fn static_member_id(&self, instance_id: &str) -> Option<&str> {
        self.static_members.get(instance_id).map(String::as_str)
    }

    /// Check every derived index against the persisted state (tests, and
    /// debug builds after each event).
    pub fn assert_consistent(&self) {
        let mut epochs = HashMap::new();
        for member in self.members.values() {
            for assignment in [
                &member.assigned_partitions,
                &member.partitions_pending_revocation,
            ] {
                for (topic_id, partitions) in assignment {
                    for partition in partitions {
                        let previous = epochs.insert((*topic_id, *partition), member.member_epoch);
                        assert!(
                            previous.is_none(),
                            "partition {topic_id}-{partition} held twice in group {}",
                            self.group_id
                        );
                    }
                }
            }
        }
        assert_eq!(epochs, self.partition_epochs, "group {}", self.group_id);
        let statics: BTreeMap<String, String> = self
            .members
            .values()
            .filter_map(|m| Some((m.instance_id.clone()?, m.member_id.clone())))
            .collect();
        assert_eq!(statics, self.static_members, "group {}", self.group_id);
    }

    // ---- derived index upkeep, used by replay ----

    pub(super) fn index_member(&mut self, member: &ConsumerMember) {
        if let Some(instance_id) = &member.instance_id {
            self.static_members
                .insert(instance_id.clone(), member.member_id.clone());
        }
        for assignment in [
            &member.assigned_partitions,
            &member.partitions_pending_revocation,
        ] {
            for (topic_id, partitions) in assignment {
                for partition in partitions {
                    self.partition_epochs
                        .insert((*topic_id, *partition), member.member_epoch);
                }
            }
        }
    }

    pub(super) fn unindex_member(&mut self, member: &ConsumerMember) {
        if let Some(instance_id) = &member.instance_id {
            if self.static_member_id(instance_id) == Some(member.member_id.as_str()) {
                self.static_members.remove(instance_id);
            }
        }
        for assignment in [
            &member.assigned_partitions,
            &member.partitions_pending_revocation,
        ] {
            for (topic_id, partitions) in assignment {
                for partition in partitions {
                    self.partition_epochs.remove(&(*topic_id, *partition));
                }
            }
        }
    }

    /// A partition of `member`'s new assignment that another member holds
    /// (a replayed record that would make two owners).
    pub(super) fn conflicting_partition(
        &self,
        member_id: &str,
        assignment: &Assignment,
    ) -> Option<(Uuid, i32)> {
        let old = self.members.get(member_id);
        let held_by_member = |topic_id: &Uuid, partition: &i32| {
            old.is_some_and(|m| {
                [&m.assigned_partitions, &m.partitions_pending_revocation]
                    .iter()
                    .any(|a| a.get(topic_id).is_some_and(|p| p.contains(partition)))
            })
        };
        assignment.iter().find_map(|(topic_id, partitions)| {
            partitions.iter().find_map(|partition| {
                let taken = self.partition_epochs.contains_key(&(*topic_id, *partition))
                    && !held_by_member(topic_id, partition);
                taken.then_some((*topic_id, *partition))
            })
        })
    }
}
