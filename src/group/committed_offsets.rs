//! Committed offsets and group metadata of one offsets partition, rebuilt by
//! replaying its records (see `offset_records`) in log order, and the
//! offsets.retention.minutes expiry decision over them.
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

use std::collections::BTreeMap;

use super::offset_records::{
    decode_record, DecodeError, GroupMetadataKey, GroupMetadataValue, OffsetCommitKey,
    OffsetCommitValue, OffsetsRecord,
};

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

/// The state of one offsets partition, as of `last_record_offset`.
#[derive(Debug, Default)]
pub struct CommittedOffsets {
    offsets: OffsetsByGroup,
    groups: BTreeMap<String, StoredGroup>,
    last_record_offset: Option<i64>,
}

impl CommittedOffsets {
    pub fn new() -> Self {
        Self::default()
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
                self.offsets
                    .entry(key.group)
                    .or_default()
                    .entry(key.topic)
                    .or_default()
                    .insert(key.partition, committed);
            }
            OffsetsRecord::OffsetCommit { key, value: None } => self.remove_offset(&key),
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
        }
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

    /// Every group with metadata or committed offsets, sorted, each once.
    /// Groups known only by their commits are standalone consumers
    /// (Kafka lists them as Empty groups with no protocol type).
    pub fn groups(&self) -> Vec<&str> {
        let mut groups: Vec<&str> = self
            .groups
            .keys()
            .chain(self.offsets.keys())
            .map(String::as_str)
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
        offsets + self.groups.len()
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
        records
    }

    /// The log offset of the last record applied.
    pub fn last_record_offset(&self) -> Option<i64> {
        self.last_record_offset
    }

    /// Offsets that have expired at `now_ms` under `retention_ms`
    /// (offsets.retention.minutes), sorted; see [`offset_is_expired`].
    pub fn expired(&self, now_ms: i64, retention_ms: i64) -> Vec<OffsetCommitKey> {
        let mut expired = Vec::new();
        for (group, topics) in &self.offsets {
            let metadata = self.groups.get(group).map(|stored| &stored.value);
            for (topic, partitions) in topics {
                for (partition, committed) in partitions {
                    if offset_is_expired(metadata, &committed.value, now_ms, retention_ms) {
                        expired.push(OffsetCommitKey {
                            group: group.clone(),
                            topic: topic.clone(),
                            partition: *partition,
                        });
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
}
