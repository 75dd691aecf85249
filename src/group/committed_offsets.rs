//! Committed offsets and group metadata of one offsets partition, rebuilt by
//! replaying its records (see `offset_records`) in log order, the
//! transactional offset commits still waiting for their marker (see
//! `pending_offsets`), and the offsets.retention.minutes expiry decision.
//!
//! Which cores: one `CommittedOffsets` per offsets partition, on the shard
//! that owns that partition (the coordinator of the groups hashing to it).
//!
//! Why this shape: the log is the source of truth and this is only its
//! materialised view, so `apply` is the single way to change it, both while
//! replaying on start-up and after a live append completes; a later record
//! for a key overrides an earlier one and a tombstone removes it, exactly as
//! compaction of the partition would. Expiry is a pure decision with time
//! passed in; the caller turns the keys it returns into tombstones and
//! appends them, and applying those tombstones removes the offsets here.
//!
//! Transactions (KIP-98, KIP-447), following Kafka's coordinator: records of
//! a transactional batch go to their producer's pending offsets
//! ([`apply_transactional`](CommittedOffsets::apply_transactional)); its
//! marker ([`complete_transaction`](CommittedOffsets::complete_transaction))
//! either materialises them, each only if its record is newer than the
//! committed one (a plain OffsetCommit written after the TxnOffsetCommit but
//! before the marker wins, as in Kafka), or drops them. A plain tombstone
//! also drops the key from every open transaction (Kafka's KIP-848
//! coordinator), so a deleted group cannot come back through a marker.

use std::collections::BTreeMap;

use super::modern::{ConsumerGroup, ConsumerGroupConfig, ConsumerGroupRecord};
use super::offset_records::{
    decode_record, DecodeError, GroupMetadataKey, GroupMetadataValue, OffsetCommitKey,
    OffsetCommitValue, OffsetsRecord,
};
use super::pending_offsets::{PendingOffsets, TransactionResult};

/// A committed offset and the log offset of the record that carried it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub value: OffsetCommitValue,
    pub record_offset: i64,
}

/// A group's latest metadata and the log offset of its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredGroup {
    pub value: GroupMetadataValue,
    pub record_offset: i64,
}

/// group -> topic -> partition -> committed offset.
type OffsetsByGroup = BTreeMap<String, BTreeMap<String, BTreeMap<i32, CommittedOffset>>>;

/// The KIP-848 consumer groups of a partition, by group id. Two views are
/// equal when their groups would write the same records (the timers are
/// soft state).
#[derive(Default)]
pub struct ConsumerGroups(BTreeMap<String, ConsumerGroup>);

impl std::fmt::Debug for ConsumerGroups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl PartialEq for ConsumerGroups {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(&other.0)
                .all(|((a, ga), (b, gb))| a == b && ga.to_records() == gb.to_records())
    }
}

impl Eq for ConsumerGroups {}

/// The state of one offsets partition, as of `last_record_offset`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CommittedOffsets {
    offsets: OffsetsByGroup,
    groups: BTreeMap<String, StoredGroup>,
    /// KIP-848 groups, rebuilt from their records like everything else.
    consumer_groups: ConsumerGroups,
    /// The settings a consumer group created while replaying gets.
    consumer_group_config: ConsumerGroupConfig,
    /// Transactional commits waiting for their marker, by producer id.
    pending: PendingOffsets,
    last_record_offset: Option<i64>,
}

impl CommittedOffsets {
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty state whose consumer groups obey `config`.
    pub fn with_consumer_group_config(config: ConsumerGroupConfig) -> Self {
        CommittedOffsets {
            consumer_group_config: config,
            ..Self::default()
        }
    }

    /// Notes the record at `record_offset` that a live consumer group has
    /// already applied to itself (every KIP-848 change is applied by the
    /// group, then written): only the log position moves.
    pub fn note_applied(&mut self, record_offset: i64) {
        self.advance_to(record_offset);
    }

    /// The settings of this partition's consumer groups.
    pub fn consumer_group_config(&self) -> &ConsumerGroupConfig {
        &self.consumer_group_config
    }

    /// The consumer group `group_id`, if it exists.
    pub fn consumer_group(&self, group_id: &str) -> Option<&ConsumerGroup> {
        self.consumer_groups.0.get(group_id)
    }

    /// The consumer group `group_id`, created empty when `create`.
    pub fn consumer_group_mut(
        &mut self,
        group_id: &str,
        create: bool,
    ) -> Option<&mut ConsumerGroup> {
        if create && !self.consumer_groups.0.contains_key(group_id) {
            let group = ConsumerGroup::new(group_id, self.consumer_group_config.clone());
            self.consumer_groups.0.insert(group_id.to_string(), group);
        }
        self.consumer_groups.0.get_mut(group_id)
    }

    /// Forgets a consumer group that holds nothing (a refused first
    /// heartbeat, a deleted group).
    pub fn prune_consumer_group(&mut self, group_id: &str) {
        let unused = self
            .consumer_groups
            .0
            .get(group_id)
            .is_some_and(|group| group.is_unborn() || group.is_deleted());
        if unused {
            self.consumer_groups.0.remove(group_id);
        }
    }

    /// Every consumer group, by id.
    pub fn consumer_groups(&self) -> impl Iterator<Item = &ConsumerGroup> {
        self.consumer_groups.0.values()
    }

    /// Every consumer group, mutable (the timer task ticks them).
    pub fn consumer_groups_mut(&mut self) -> impl Iterator<Item = &mut ConsumerGroup> {
        self.consumer_groups.0.values_mut()
    }

    fn replay_consumer_group(&mut self, group_id: String, record: ConsumerGroupRecord) {
        let config = &self.consumer_group_config;
        let group = self
            .consumer_groups
            .0
            .entry(group_id)
            .or_insert_with_key(|id| ConsumerGroup::new(id, config.clone()));
        if let Err(error) = group.replay(&record) {
            tracing::warn!(group = group.group_id(), %error, "skipping consumer group record");
        }
        if group.is_deleted() {
            let id = group.group_id().to_string();
            self.consumer_groups.0.remove(&id);
        }
    }

    /// Applies the record at `record_offset`; `value` is `None` for a
    /// tombstone. Records must come in log order (offsets strictly
    /// increasing). A record that does not decode leaves the state as it
    /// was and returns the error; the caller decides whether to skip it.
    pub fn apply(
        &mut self,
        key: &[u8],
        value: Option<&[u8]>,
        record_offset: i64,
    ) -> Result<(), DecodeError> {
        self.advance_to(record_offset);
        let record = decode_record(key, value)?;
        self.apply_decoded(record, record_offset);
        Ok(())
    }

    /// Same as [`apply`](Self::apply) for a record the caller already has in
    /// decoded form (the live commit path, which just encoded it).
    pub fn apply_record(&mut self, record: OffsetsRecord, record_offset: i64) {
        self.advance_to(record_offset);
        self.apply_decoded(record, record_offset);
    }

    /// Applies a record of a transactional batch of `producer_id`: an
    /// offset commit waits in that producer's pending offsets until its
    /// marker (a tombstone there drops the pending key only, as Kafka's
    /// loader does); group metadata applies at once, as Kafka's loaders do
    /// for any batch. Same ordering and error rules as
    /// [`apply`](Self::apply).
    pub fn apply_transactional(
        &mut self,
        producer_id: i64,
        key: &[u8],
        value: Option<&[u8]>,
        record_offset: i64,
    ) -> Result<(), DecodeError> {
        self.advance_to(record_offset);
        let record = decode_record(key, value)?;
        self.apply_pending(producer_id, record, record_offset);
        Ok(())
    }

    /// [`apply_transactional`](Self::apply_transactional) for a record the
    /// caller already has decoded (the live TxnOffsetCommit path).
    pub fn apply_transactional_record(
        &mut self,
        producer_id: i64,
        record: OffsetsRecord,
        record_offset: i64,
    ) {
        self.advance_to(record_offset);
        self.apply_pending(producer_id, record, record_offset);
    }

    /// Applies `producer_id`'s transaction marker at `marker_offset`: on
    /// commit its pending offsets become committed, each unless the key's
    /// committed record is newer (Kafka's `completePendingTxnOffsetCommit`
    /// keeps the most recent record); on abort they are dropped. A marker
    /// for a producer with nothing pending changes nothing else.
    pub fn complete_transaction(
        &mut self,
        producer_id: i64,
        result: TransactionResult,
        marker_offset: i64,
    ) {
        self.advance_to(marker_offset);
        let pending = self.pending.take(producer_id);
        if result == TransactionResult::Abort {
            return;
        }
        for (key, committed) in pending {
            let newer = self
                .committed(&key.group, &key.topic, key.partition)
                .is_none_or(|current| current.record_offset < committed.record_offset);
            if newer {
                self.insert_offset(key, committed);
            }
        }
    }

    fn apply_pending(&mut self, producer_id: i64, record: OffsetsRecord, record_offset: i64) {
        match record {
            OffsetsRecord::OffsetCommit {
                key,
                value: Some(value),
            } => {
                let committed = CommittedOffset {
                    value,
                    record_offset,
                };
                self.pending.insert(producer_id, key, committed);
            }
            OffsetsRecord::OffsetCommit { key, value: None } => {
                self.pending.remove(producer_id, &key)
            }
            group @ (OffsetsRecord::GroupMetadata { .. } | OffsetsRecord::ConsumerGroup { .. }) => {
                self.apply_decoded(group, record_offset)
            }
        }
    }

    fn advance_to(&mut self, record_offset: i64) {
        // Replaying out of order would let an older commit override a newer one.
        if let Some(last) = self.last_record_offset {
            assert!(
                record_offset > last,
                "offsets records applied out of order: {record_offset} after {last}"
            );
        }
        self.last_record_offset = Some(record_offset);
    }

    fn apply_decoded(&mut self, record: OffsetsRecord, record_offset: i64) {
        match record {
            OffsetsRecord::OffsetCommit {
                key,
                value: Some(value),
            } => {
                let committed = CommittedOffset {
                    value,
                    record_offset,
                };
                self.insert_offset(key, committed);
            }
            OffsetsRecord::OffsetCommit { key, value: None } => {
                self.pending.remove_everywhere(&key);
                self.remove_offset(&key);
            }
            OffsetsRecord::GroupMetadata {
                key,
                value: Some(value),
            } => {
                let stored = StoredGroup {
                    value,
                    record_offset,
                };
                self.groups.insert(key.group, stored);
            }
            OffsetsRecord::GroupMetadata { key, value: None } => {
                self.groups.remove(&key.group);
            }
            OffsetsRecord::ConsumerGroup { group, record } => {
                self.replay_consumer_group(group, record)
            }
        }
    }

    fn insert_offset(&mut self, key: OffsetCommitKey, committed: CommittedOffset) {
        self.offsets
            .entry(key.group)
            .or_default()
            .entry(key.topic)
            .or_default()
            .insert(key.partition, committed);
    }

    /// Removes one offset, dropping maps that become empty so that a group
    /// without offsets or metadata disappears from [`groups`](Self::groups).
    fn remove_offset(&mut self, key: &OffsetCommitKey) {
        let Some(topics) = self.offsets.get_mut(&key.group) else {
            return;
        };
        if let Some(partitions) = topics.get_mut(&key.topic) {
            partitions.remove(&key.partition);
            if partitions.is_empty() {
                topics.remove(&key.topic);
            }
        }
        if topics.is_empty() {
            self.offsets.remove(&key.group);
        }
    }

    /// The committed offset of a partition for a group (OffsetFetch).
    pub fn fetch(&self, group: &str, topic: &str, partition: i32) -> Option<&OffsetCommitValue> {
        self.committed(group, topic, partition)
            .map(|committed| &committed.value)
    }

    /// Like [`fetch`](Self::fetch), with the log offset of the record.
    pub fn committed(&self, group: &str, topic: &str, partition: i32) -> Option<&CommittedOffset> {
        self.offsets.get(group)?.get(topic)?.get(&partition)
    }

    /// The latest metadata of a group, if it has any.
    pub fn group_metadata(&self, group: &str) -> Option<&StoredGroup> {
        self.groups.get(group)
    }

    /// Every group with metadata, committed or pending offsets, sorted, each
    /// once. Groups known only by their commits are standalone consumers
    /// (Kafka lists them as Empty groups with no protocol type); those known
    /// only by pending transactional commits are loaded too, as Kafka does.
    pub fn groups(&self) -> Vec<&str> {
        let mut groups: Vec<&str> = self
            .groups
            .keys()
            .chain(self.offsets.keys())
            .map(String::as_str)
            .chain(self.pending.groups())
            .collect();
        groups.sort_unstable();
        groups.dedup();
        groups
    }

    /// All committed offsets of a group as (topic, partition, offset),
    /// sorted by topic and partition (OffsetFetch with null topics).
    pub fn offsets_of<'a>(
        &'a self,
        group: &str,
    ) -> impl Iterator<Item = (&'a str, i32, &'a CommittedOffset)> + 'a {
        self.offsets
            .get(group)
            .into_iter()
            .flat_map(|topics| topics.iter())
            .flat_map(|(topic, partitions)| {
                partitions
                    .iter()
                    .map(move |(partition, committed)| (topic.as_str(), *partition, committed))
            })
    }

    /// How many keys are live (committed offsets plus stored groups): what
    /// a snapshot of this state writes.
    pub fn live_record_count(&self) -> usize {
        let offsets: usize = self
            .offsets
            .values()
            .flat_map(|topics| topics.values())
            .map(|partitions| partitions.len())
            .sum();
        let consumer_groups: usize = self
            .consumer_groups()
            .map(|group| group.to_records().len())
            .sum();
        offsets + self.groups.len() + consumer_groups
    }

    /// Every live key with its current value, as records that rebuild this
    /// state when replayed on their own: the group coordinator appends them
    /// as a snapshot, after which everything before it can be deleted.
    pub fn live_records(&self) -> Vec<OffsetsRecord> {
        let mut records = Vec::with_capacity(self.live_record_count());
        for (group, topics) in &self.offsets {
            for (topic, partitions) in topics {
                for (partition, committed) in partitions {
                    records.push(OffsetsRecord::OffsetCommit {
                        key: OffsetCommitKey {
                            group: group.clone(),
                            topic: topic.clone(),
                            partition: *partition,
                        },
                        value: Some(committed.value.clone()),
                    });
                }
            }
        }
        for (group, stored) in &self.groups {
            records.push(OffsetsRecord::GroupMetadata {
                key: GroupMetadataKey {
                    group: group.clone(),
                },
                value: Some(stored.value.clone()),
            });
        }
        for group in self.consumer_groups() {
            for record in group.to_records() {
                records.push(OffsetsRecord::ConsumerGroup {
                    group: group.group_id().to_string(),
                    record,
                });
            }
        }
        records
    }

    /// Whether any open transaction has a pending offset for this partition
    /// of `group` (OffsetFetch with require_stable answers
    /// UNSTABLE_OFFSET_COMMIT then; expiry leaves the offset alone).
    pub fn has_pending(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.pending.contains(&OffsetCommitKey {
            group: group.to_string(),
            topic: topic.to_string(),
            partition,
        })
    }

    /// The offset `producer_id` committed for this partition of `group` in
    /// its open transaction, if any.
    pub fn pending_offset(
        &self,
        producer_id: i64,
        group: &str,
        topic: &str,
        partition: i32,
    ) -> Option<&CommittedOffset> {
        let key = OffsetCommitKey {
            group: group.to_string(),
            topic: topic.to_string(),
            partition,
        };
        self.pending.get(producer_id, &key)
    }

    /// Whether `group` has pending transactional offsets (Kafka's
    /// `hasOffsets` counts them: such a group is not cleaned up).
    pub fn has_pending_offsets_of(&self, group: &str) -> bool {
        self.pending.has_group(group)
    }

    /// The (topic, partition)s of `group` pending in any open transaction,
    /// sorted (DeleteGroups writes tombstones for them too).
    pub fn pending_partitions_of(&self, group: &str) -> Vec<(String, i32)> {
        self.pending.partitions_of(group)
    }

    /// Whether any producer has an open transaction holding offsets here.
    /// A snapshot of the live state cannot carry them (see the compaction
    /// of the offsets partition), so none is taken meanwhile.
    pub fn has_pending_transactions(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Producers with pending offsets, ascending.
    pub fn pending_producers(&self) -> impl Iterator<Item = i64> + '_ {
        self.pending.producers()
    }

    /// The log offset of the last record applied.
    pub fn last_record_offset(&self) -> Option<i64> {
        self.last_record_offset
    }

    /// Offsets that have expired at `now_ms` under `retention_ms`
    /// (offsets.retention.minutes), sorted; see [`offset_is_expired`]. An
    /// offset with a pending transactional commit is kept (Kafka's KIP-848
    /// coordinator): its tombstone would also drop the pending commit.
    pub fn expired(&self, now_ms: i64, retention_ms: i64) -> Vec<OffsetCommitKey> {
        let mut expired = Vec::new();
        for (group, topics) in &self.offsets {
            // A consumer group with members keeps its offsets, like a
            // classic one.
            if self
                .consumer_group(group)
                .is_some_and(|group| group.member_count() > 0)
            {
                continue;
            }
            let metadata = self.groups.get(group).map(|stored| &stored.value);
            for (topic, partitions) in topics {
                for (partition, committed) in partitions {
                    if offset_is_expired(metadata, &committed.value, now_ms, retention_ms) {
                        let key = OffsetCommitKey {
                            group: group.clone(),
                            topic: topic.clone(),
                            partition: *partition,
                        };
                        if !self.pending.contains(&key) {
                            expired.push(key);
                        }
                    }
                }
            }
        }
        expired
    }
}

/// Whether a committed offset has expired, following Kafka's
/// `GroupMetadata.removeExpiredOffsets` after KIP-211:
/// - a group with members keeps all its offsets (Kafka's KIP-496 expiry
///   of unsubscribed topics in Stable consumer groups is not done here);
/// - an Empty group (metadata without members) counts from the time it
///   became Empty (`state_timestamp_ms`, or the commit time if unknown);
/// - a group with no metadata (standalone consumers that only commit)
///   counts from the commit time;
/// - in the last two cases an explicit `expire_timestamp_ms >= 0`
///   (OffsetCommit v1..v4 retention) replaces `base + retention_ms`.
pub fn offset_is_expired(
    group: Option<&GroupMetadataValue>,
    commit: &OffsetCommitValue,
    now_ms: i64,
    retention_ms: i64,
) -> bool {
    let base_timestamp_ms = match group {
        Some(group) if !group.members.is_empty() => return false,
        Some(group) if group.state_timestamp_ms >= 0 => group.state_timestamp_ms,
        Some(_) | None => commit.commit_timestamp_ms,
    };
    if commit.expire_timestamp_ms >= 0 {
        return now_ms >= commit.expire_timestamp_ms;
    }
    // Saturating: a corrupt or far-future timestamp must not wrap around
    // into "expired long ago".
    now_ms.saturating_sub(base_timestamp_ms) >= retention_ms
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::offset_records::{GroupMetadataKey, MemberMetadata};
    use crate::group::pending_offsets::TransactionResult;

    const RETENTION_MS: i64 = 7 * 24 * 60 * 60 * 1000;

    fn commit(offset: i64, commit_timestamp_ms: i64) -> OffsetCommitValue {
        OffsetCommitValue {
            offset,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms,
            expire_timestamp_ms: -1,
        }
    }

    fn key(group: &str, topic: &str, partition: i32) -> Vec<u8> {
        OffsetCommitKey {
            group: group.into(),
            topic: topic.into(),
            partition,
        }
        .encode()
    }

    fn group_key(group: &str) -> Vec<u8> {
        GroupMetadataKey {
            group: group.into(),
        }
        .encode()
    }

    fn group(members: usize, state_timestamp_ms: i64) -> GroupMetadataValue {
        GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation: 3,
            protocol: Some("range".into()),
            leader: None,
            state_timestamp_ms,
            members: (0..members)
                .map(|index| MemberMetadata {
                    member_id: format!("m-{index}"),
                    group_instance_id: None,
                    client_id: "client".into(),
                    client_host: "/127.0.0.1".into(),
                    rebalance_timeout_ms: 60_000,
                    session_timeout_ms: 10_000,
                    subscription: vec![],
                    assignment: vec![],
                })
                .collect(),
        }
    }

    fn offset_of(
        state: &CommittedOffsets,
        group: &str,
        topic: &str,
        partition: i32,
    ) -> Option<i64> {
        state
            .fetch(group, topic, partition)
            .map(|value| value.offset)
    }

    #[test]
    fn replay_overrides_deletes_and_re_adds() {
        let mut state = CommittedOffsets::new();
        let value = |offset| commit(offset, 0).encode();
        state.apply(&key("g", "t", 0), Some(&value(10)), 0).unwrap();
        state.apply(&key("g", "t", 1), Some(&value(5)), 1).unwrap();
        state.apply(&key("g", "t", 0), Some(&value(20)), 2).unwrap();
        assert_eq!(offset_of(&state, "g", "t", 0), Some(20));
        assert_eq!(state.committed("g", "t", 0).unwrap().record_offset, 2);

        state.apply(&key("g", "t", 0), None, 3).unwrap();
        assert_eq!(offset_of(&state, "g", "t", 0), None);
        assert_eq!(offset_of(&state, "g", "t", 1), Some(5));

        state.apply(&key("g", "t", 0), Some(&value(30)), 4).unwrap();
        assert_eq!(offset_of(&state, "g", "t", 0), Some(30));
        assert_eq!(state.last_record_offset(), Some(4));
    }

    #[test]
    fn tombstones_remove_groups_and_their_last_offsets() {
        let mut state = CommittedOffsets::new();
        let metadata = group(1, 100).encode();
        state.apply(&group_key("a"), Some(&metadata), 10).unwrap();
        state
            .apply(&key("b", "t", 0), Some(&commit(1, 0).encode()), 11)
            .unwrap();
        assert_eq!(state.groups(), vec!["a", "b"]);
        assert_eq!(state.group_metadata("a").unwrap().value, group(1, 100));

        state.apply(&group_key("a"), None, 12).unwrap();
        state.apply(&key("b", "t", 0), None, 13).unwrap();
        assert!(state.groups().is_empty());
        assert!(state.group_metadata("a").is_none());
        // Tombstone for something never seen is harmless.
        state.apply(&key("c", "t", 9), None, 14).unwrap();
    }

    #[test]
    fn offsets_of_lists_a_group_sorted_and_groups_lists_each_once() {
        let mut state = CommittedOffsets::new();
        let records = [
            ("g", "t2", 0),
            ("g", "t1", 1),
            ("g", "t1", 0),
            ("h", "t1", 0),
        ];
        for (offset, (group_id, topic, partition)) in records.into_iter().enumerate() {
            let value = commit(offset as i64, 0).encode();
            state
                .apply(
                    &key(group_id, topic, partition),
                    Some(&value),
                    offset as i64,
                )
                .unwrap();
        }
        state
            .apply(&group_key("g"), Some(&group(0, 0).encode()), 10)
            .unwrap();
        let listed: Vec<(&str, i32, i64)> = state
            .offsets_of("g")
            .map(|(topic, partition, committed)| (topic, partition, committed.value.offset))
            .collect();
        assert_eq!(listed, vec![("t1", 0, 2), ("t1", 1, 1), ("t2", 0, 0)]);
        assert_eq!(state.offsets_of("missing").count(), 0);
        assert_eq!(state.groups(), vec!["g", "h"]);
    }

    #[test]
    fn undecodable_record_leaves_state_unchanged() {
        let mut state = CommittedOffsets::new();
        state
            .apply(&key("g", "t", 0), Some(&commit(7, 0).encode()), 0)
            .unwrap();
        assert!(state.apply(&key("g", "t", 0), Some(&[0, 0, 1]), 1).is_err());
        assert!(state.apply(&[0xff; 3], None, 2).is_err());
        assert_eq!(offset_of(&state, "g", "t", 0), Some(7));
        assert_eq!(state.last_record_offset(), Some(2));
    }

    #[test]
    #[should_panic(expected = "out of order")]
    fn applying_out_of_log_order_is_a_bug() {
        let mut state = CommittedOffsets::new();
        let value = commit(1, 0).encode();
        state.apply(&key("g", "t", 0), Some(&value), 5).unwrap();
        let _ = state.apply(&key("g", "t", 0), Some(&value), 5);
    }

    #[test]
    fn group_with_members_never_expires_its_offsets() {
        let mut state = CommittedOffsets::new();
        state
            .apply(&key("g", "t", 0), Some(&commit(1, 0).encode()), 0)
            .unwrap();
        state
            .apply(&group_key("g"), Some(&group(2, 0).encode()), 1)
            .unwrap();
        assert!(state.expired(i64::MAX, RETENTION_MS).is_empty());
        // Not even with an explicit expire timestamp long past.
        let explicit = OffsetCommitValue {
            expire_timestamp_ms: 1,
            ..commit(1, 0)
        };
        assert!(!offset_is_expired(Some(&group(1, 0)), &explicit, 1_000, 1));
    }

    #[test]
    fn empty_group_expires_after_retention_from_its_state_timestamp() {
        let mut state = CommittedOffsets::new();
        let became_empty_ms = 5_000;
        state
            .apply(&key("g", "t", 0), Some(&commit(1, 0).encode()), 0)
            .unwrap();
        state
            .apply(
                &group_key("g"),
                Some(&group(0, became_empty_ms).encode()),
                1,
            )
            .unwrap();
        // Commit time (0) is long enough ago, but the group only became Empty at 5s.
        assert!(state.expired(RETENTION_MS, RETENTION_MS).is_empty());
        assert!(state
            .expired(became_empty_ms + RETENTION_MS - 1, RETENTION_MS)
            .is_empty());
        let expired = state.expired(became_empty_ms + RETENTION_MS, RETENTION_MS);
        assert_eq!(
            expired,
            vec![OffsetCommitKey {
                group: "g".into(),
                topic: "t".into(),
                partition: 0
            }]
        );
        // Unknown state timestamp falls back to the commit time.
        assert!(offset_is_expired(
            Some(&group(0, -1)),
            &commit(1, 0),
            RETENTION_MS,
            RETENTION_MS
        ));
    }

    #[test]
    fn standalone_commits_expire_after_retention_from_commit_time() {
        let mut state = CommittedOffsets::new();
        state
            .apply(&key("s", "t", 0), Some(&commit(1, 1_000).encode()), 0)
            .unwrap();
        state
            .apply(&key("s", "t", 1), Some(&commit(1, 9_000).encode()), 1)
            .unwrap();
        let now_ms = 1_000 + RETENTION_MS;
        let expired = state.expired(now_ms, RETENTION_MS);
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].partition, 0);

        // Replaying the tombstones the caller appends removes them here.
        for (offset, expired_key) in expired.iter().enumerate() {
            state
                .apply(&expired_key.encode(), None, 2 + offset as i64)
                .unwrap();
        }
        assert_eq!(offset_of(&state, "s", "t", 0), None);
        assert_eq!(offset_of(&state, "s", "t", 1), Some(1));
        // A commit timestamp in the far future never wraps into "expired".
        assert!(!offset_is_expired(None, &commit(1, i64::MAX), i64::MIN, 1));
    }

    #[test]
    fn explicit_expire_timestamp_wins_over_retention() {
        let explicit = |expire_timestamp_ms| OffsetCommitValue {
            expire_timestamp_ms,
            ..commit(1, 0)
        };
        // Earlier than commit time + retention.
        assert!(!offset_is_expired(None, &explicit(500), 499, RETENTION_MS));
        assert!(offset_is_expired(None, &explicit(500), 500, RETENTION_MS));
        // Later than commit time + retention.
        let later = RETENTION_MS * 2;
        assert!(!offset_is_expired(
            None,
            &explicit(later),
            RETENTION_MS,
            RETENTION_MS
        ));
        // Same for an Empty group.
        assert!(offset_is_expired(
            Some(&group(0, 0)),
            &explicit(500),
            500,
            RETENTION_MS
        ));
    }

    // ---- transactional offset commits ------------------------------------

    fn commit_record(group: &str, partition: i32, offset: i64) -> OffsetsRecord {
        OffsetsRecord::OffsetCommit {
            key: OffsetCommitKey {
                group: group.into(),
                topic: "t".into(),
                partition,
            },
            value: Some(commit(offset, 0)),
        }
    }

    fn tombstone_record(group: &str, partition: i32) -> OffsetsRecord {
        OffsetsRecord::OffsetCommit {
            key: OffsetCommitKey {
                group: group.into(),
                topic: "t".into(),
                partition,
            },
            value: None,
        }
    }

    #[test]
    fn transactional_commits_stay_pending_until_the_commit_marker() {
        let mut state = CommittedOffsets::new();
        state.apply_record(commit_record("g", 0, 5), 0);
        state.apply_transactional_record(7, commit_record("g", 0, 10), 1);
        state.apply_transactional_record(7, commit_record("g", 1, 11), 2);
        // Invisible to OffsetFetch, but known as pending.
        assert_eq!(offset_of(&state, "g", "t", 0), Some(5));
        assert_eq!(offset_of(&state, "g", "t", 1), None);
        assert!(state.has_pending("g", "t", 0) && state.has_pending("g", "t", 1));
        assert!(!state.has_pending("g", "t", 2) && !state.has_pending("h", "t", 0));
        assert_eq!(
            state.pending_offset(7, "g", "t", 1).map(|p| p.value.offset),
            Some(11)
        );
        assert!(state.has_pending_transactions());
        assert_eq!(state.pending_producers().collect::<Vec<_>>(), vec![7]);
        assert_eq!(
            state.live_record_count(),
            1,
            "snapshots hold committed state only"
        );

        state.complete_transaction(7, TransactionResult::Commit, 3);
        assert_eq!(offset_of(&state, "g", "t", 0), Some(10));
        assert_eq!(offset_of(&state, "g", "t", 1), Some(11));
        assert_eq!(
            state.committed("g", "t", 1).map(|c| c.record_offset),
            Some(2)
        );
        assert!(!state.has_pending("g", "t", 0) && !state.has_pending_transactions());
        assert_eq!(state.last_record_offset(), Some(3));
    }

    #[test]
    fn abort_marker_drops_pending_commits() {
        let mut state = CommittedOffsets::new();
        state.apply_record(commit_record("g", 0, 5), 0);
        state.apply_transactional_record(7, commit_record("g", 0, 10), 1);
        state.apply_transactional_record(7, commit_record("fresh", 0, 1), 2);
        assert_eq!(
            state.groups(),
            vec!["fresh", "g"],
            "pending-only groups load"
        );
        assert!(state.has_pending_offsets_of("fresh"));
        state.complete_transaction(7, TransactionResult::Abort, 3);
        assert_eq!(offset_of(&state, "g", "t", 0), Some(5));
        assert_eq!(offset_of(&state, "fresh", "t", 0), None);
        assert!(!state.has_pending_transactions());
        assert_eq!(state.groups(), vec!["g"]);
    }

    #[test]
    fn interleaved_producers_complete_independently() {
        let mut state = CommittedOffsets::new();
        state.apply_transactional_record(1, commit_record("g", 0, 100), 0);
        state.apply_transactional_record(2, commit_record("g", 0, 200), 1);
        state.apply_transactional_record(2, commit_record("g", 1, 201), 2);
        state.apply_transactional_record(1, commit_record("g", 1, 101), 3);
        // Producer 2 aborts, producer 1 commits.
        state.complete_transaction(2, TransactionResult::Abort, 4);
        assert!(state.has_pending("g", "t", 0), "producer 1 still open");
        assert_eq!(offset_of(&state, "g", "t", 0), None);
        state.complete_transaction(1, TransactionResult::Commit, 5);
        assert_eq!(offset_of(&state, "g", "t", 0), Some(100));
        assert_eq!(offset_of(&state, "g", "t", 1), Some(101));
        // A marker for a producer with nothing pending changes nothing else.
        state.complete_transaction(3, TransactionResult::Commit, 6);
        assert_eq!(offset_of(&state, "g", "t", 0), Some(100));
        assert_eq!(state.last_record_offset(), Some(6));
    }

    #[test]
    fn the_most_recent_record_wins_when_plain_and_transactional_commits_mix() {
        let mut state = CommittedOffsets::new();
        // Plain commit before the transactional one: the marker overrides it.
        state.apply_record(commit_record("g", 0, 1), 0);
        state.apply_transactional_record(9, commit_record("g", 0, 2), 1);
        // Plain commit after the transactional one, before its marker: it
        // stays (Kafka's completePendingTxnOffsetCommit).
        state.apply_transactional_record(9, commit_record("g", 1, 20), 2);
        state.apply_record(commit_record("g", 1, 30), 3);
        state.complete_transaction(9, TransactionResult::Commit, 4);
        assert_eq!(offset_of(&state, "g", "t", 0), Some(2));
        assert_eq!(offset_of(&state, "g", "t", 1), Some(30));
        // Within one transaction the later commit of a key replaces the earlier.
        state.apply_transactional_record(9, commit_record("g", 0, 3), 5);
        state.apply_transactional_record(9, commit_record("g", 0, 4), 6);
        state.complete_transaction(9, TransactionResult::Commit, 7);
        assert_eq!(offset_of(&state, "g", "t", 0), Some(4));
    }

    #[test]
    fn plain_tombstones_drop_the_key_from_every_open_transaction() {
        let mut state = CommittedOffsets::new();
        state.apply_transactional_record(1, commit_record("g", 0, 10), 0);
        state.apply_transactional_record(2, commit_record("g", 0, 20), 1);
        state.apply_transactional_record(2, commit_record("g", 1, 21), 2);
        assert_eq!(
            state.pending_partitions_of("g"),
            vec![("t".to_string(), 0), ("t".to_string(), 1)]
        );
        // DeleteGroups / OffsetDelete / expiry write plain tombstones.
        state.apply_record(tombstone_record("g", 0), 3);
        assert!(!state.has_pending("g", "t", 0));
        assert_eq!(state.pending_producers().collect::<Vec<_>>(), vec![2]);
        state.complete_transaction(1, TransactionResult::Commit, 4);
        state.complete_transaction(2, TransactionResult::Commit, 5);
        assert_eq!(offset_of(&state, "g", "t", 0), None, "not brought back");
        assert_eq!(offset_of(&state, "g", "t", 1), Some(21));
        // A tombstone inside a transaction drops that transaction's key only.
        state.apply_transactional_record(1, commit_record("g", 2, 1), 6);
        state.apply_transactional_record(2, commit_record("g", 2, 2), 7);
        state.apply_transactional_record(1, tombstone_record("g", 2), 8);
        assert_eq!(state.pending_producers().collect::<Vec<_>>(), vec![2]);
        state.complete_transaction(2, TransactionResult::Commit, 9);
        assert_eq!(offset_of(&state, "g", "t", 2), Some(2));
    }

    #[test]
    fn group_metadata_in_a_transactional_batch_applies_at_once() {
        let mut state = CommittedOffsets::new();
        let metadata = OffsetsRecord::GroupMetadata {
            key: GroupMetadataKey { group: "g".into() },
            value: Some(group(0, 7)),
        };
        state.apply_transactional_record(1, metadata, 0);
        assert!(state.group_metadata("g").is_some());
        assert!(!state.has_pending_transactions());
    }

    #[test]
    fn offsets_with_a_pending_commit_do_not_expire() {
        let mut state = CommittedOffsets::new();
        state.apply_record(commit_record("s", 0, 1), 0);
        state.apply_record(commit_record("s", 1, 1), 1);
        state.apply_transactional_record(4, commit_record("s", 0, 2), 2);
        let expired = state.expired(RETENTION_MS, RETENTION_MS);
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].partition, 1);
        state.complete_transaction(4, TransactionResult::Abort, 3);
        assert_eq!(state.expired(RETENTION_MS, RETENTION_MS).len(), 2);
    }

    /// One step of a history of an offsets partition.
    #[derive(Debug, Clone)]
    enum Step {
        Commit {
            group: u8,
            partition: i32,
            offset: i64,
        },
        Tombstone {
            group: u8,
            partition: i32,
        },
        Transactional {
            producer_id: i64,
            group: u8,
            partition: i32,
            offset: i64,
        },
        Marker {
            producer_id: i64,
            commit: bool,
        },
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            (0..3u8, 0..3i32, 0..1_000i64).prop_map(|(group, partition, offset)| Step::Commit {
                group,
                partition,
                offset
            }),
            (0..3u8, 0..3i32).prop_map(|(group, partition)| Step::Tombstone { group, partition }),
            (0..3i64, 0..3u8, 0..3i32, 0..1_000i64).prop_map(
                |(producer_id, group, partition, offset)| Step::Transactional {
                    producer_id,
                    group,
                    partition,
                    offset
                }
            ),
            (0..3i64, any::<bool>()).prop_map(|(producer_id, commit)| Step::Marker {
                producer_id,
                commit
            }),
        ]
    }

    fn record_of(step: &Step) -> Option<OffsetsRecord> {
        match *step {
            Step::Commit {
                group,
                partition,
                offset,
            }
            | Step::Transactional {
                group,
                partition,
                offset,
                ..
            } => Some(commit_record(&format!("g{group}"), partition, offset)),
            Step::Tombstone { group, partition } => {
                Some(tombstone_record(&format!("g{group}"), partition))
            }
            Step::Marker { .. } => None,
        }
    }

    fn result_of(commit: bool) -> TransactionResult {
        if commit {
            TransactionResult::Commit
        } else {
            TransactionResult::Abort
        }
    }

    /// Live: the decoded records as the coordinator applies them after
    /// appending.
    fn live(steps: &[Step]) -> CommittedOffsets {
        let mut state = CommittedOffsets::new();
        for (offset, step) in steps.iter().enumerate() {
            let offset = offset as i64;
            match (step, record_of(step)) {
                (
                    Step::Marker {
                        producer_id,
                        commit,
                    },
                    _,
                ) => state.complete_transaction(*producer_id, result_of(*commit), offset),
                (Step::Transactional { producer_id, .. }, Some(record)) => {
                    state.apply_transactional_record(*producer_id, record, offset)
                }
                (_, Some(record)) => state.apply_record(record, offset),
                (_, None) => unreachable!("every other step has a record"),
            }
        }
        state
    }

    /// Replay: the same history as key and value bytes, as read back from
    /// the log.
    fn replayed(steps: &[Step]) -> CommittedOffsets {
        let mut state = CommittedOffsets::new();
        for (offset, step) in steps.iter().enumerate() {
            let offset = offset as i64;
            let bytes = record_of(step).map(|record| match record {
                OffsetsRecord::OffsetCommit { key, value } => {
                    (key.encode(), value.map(|v| v.encode()))
                }
                OffsetsRecord::GroupMetadata { .. } | OffsetsRecord::ConsumerGroup { .. } => {
                    unreachable!("only commits here")
                }
            });
            match (step, bytes) {
                (
                    Step::Marker {
                        producer_id,
                        commit,
                    },
                    _,
                ) => state.complete_transaction(*producer_id, result_of(*commit), offset),
                (Step::Transactional { producer_id, .. }, Some((key, value))) => state
                    .apply_transactional(*producer_id, &key, value.as_deref(), offset)
                    .expect("decodes"),
                (_, Some((key, value))) => state
                    .apply(&key, value.as_deref(), offset)
                    .expect("decodes"),
                (_, None) => unreachable!("every other step has a record"),
            }
        }
        state
    }

    proptest::proptest! {
        #[test]
        fn replay_equals_live(steps in proptest::collection::vec(step(), 0..60)) {
            let live = live(&steps);
            proptest::prop_assert_eq!(&live, &replayed(&steps));
            // And every commit marker leaves nothing of its producer pending.
            for producer_id in live.pending_producers() {
                let last_marker = steps.iter().rposition(|step| {
                    matches!(step, Step::Marker { producer_id: p, .. } if *p == producer_id)
                });
                let last_write = steps.iter().rposition(|step| {
                    matches!(step, Step::Transactional { producer_id: p, .. } if *p == producer_id)
                });
                proptest::prop_assert!(last_write > last_marker);
            }
        }
    }
}
