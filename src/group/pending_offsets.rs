//! Transactional offset commits (KIP-98 TxnOffsetCommit) of one offsets
//! partition that wait for their transaction's marker: kept per producer id,
//! invisible to OffsetFetch, until a commit marker materialises them into
//! the committed offsets or an abort marker drops them.
//!
//! Which cores: part of a `CommittedOffsets`, on the shard that owns the
//! offsets partition.
//!
//! Why this shape: a producer has at most one open transaction per
//! partition, so "pending" is keyed by producer id alone, as in Kafka's
//! `GroupMetadata.pendingTransactionalOffsetCommits` and the KIP-848
//! coordinator's `OffsetMetadataManager.pendingTransactionalOffsets`. The
//! open transactions of one partition are few (one per transactional
//! producer writing to its groups), so the lookups that ask "any producer?"
//! walk the producers.

use std::collections::BTreeMap;

use super::committed_offsets::CommittedOffset;
use super::offset_records::OffsetCommitKey;

/// How a transaction ended: the control type of its marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionResult {
    Commit,
    Abort,
}

/// producer id -> (group, topic, partition) -> the offset it committed in
/// its open transaction (with the log offset of that record).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PendingOffsets {
    by_producer: BTreeMap<i64, BTreeMap<OffsetCommitKey, CommittedOffset>>,
}

impl PendingOffsets {
    /// Records `committed` for `key` in `producer_id`'s open transaction; a
    /// later commit of the same key in the same transaction replaces it.
    pub fn insert(&mut self, producer_id: i64, key: OffsetCommitKey, committed: CommittedOffset) {
        self.by_producer
            .entry(producer_id)
            .or_default()
            .insert(key, committed);
    }

    /// Drops `key` from `producer_id`'s transaction (a tombstone inside a
    /// transactional batch, which Kafka's loader applies to pending only).
    pub fn remove(&mut self, producer_id: i64, key: &OffsetCommitKey) {
        if let Some(pending) = self.by_producer.get_mut(&producer_id) {
            pending.remove(key);
            if pending.is_empty() {
                self.by_producer.remove(&producer_id);
            }
        }
    }

    /// Drops `key` from every open transaction: what a non-transactional
    /// tombstone does (KIP-848 coordinator `replayOffsetCommit`), so that
    /// DeleteGroups, OffsetDelete and expiry cannot be undone by a later
    /// commit marker.
    pub fn remove_everywhere(&mut self, key: &OffsetCommitKey) {
        self.by_producer.retain(|_, pending| {
            pending.remove(key);
            !pending.is_empty()
        });
    }

    /// Ends `producer_id`'s transaction: its pending offsets, sorted by key.
    pub fn take(&mut self, producer_id: i64) -> Vec<(OffsetCommitKey, CommittedOffset)> {
        self.by_producer
            .remove(&producer_id)
            .map(|pending| pending.into_iter().collect())
            .unwrap_or_default()
    }

    /// The offset `producer_id` committed for `key` in its open transaction.
    pub fn get(&self, producer_id: i64, key: &OffsetCommitKey) -> Option<&CommittedOffset> {
        self.by_producer.get(&producer_id)?.get(key)
    }

    /// Whether any producer has a pending offset for `key`.
    pub fn contains(&self, key: &OffsetCommitKey) -> bool {
        self.by_producer
            .values()
            .any(|pending| pending.contains_key(key))
    }

    /// Whether any producer has a pending offset of `group`.
    pub fn has_group(&self, group: &str) -> bool {
        self.by_producer
            .values()
            .any(|pending| first_key_of(pending, group).is_some())
    }

    /// The (topic, partition)s of `group` pending in any transaction, sorted,
    /// each once.
    pub fn partitions_of(&self, group: &str) -> Vec<(String, i32)> {
        let mut partitions: Vec<(String, i32)> = self
            .by_producer
            .values()
            .flat_map(|pending| {
                let start = group_start(group);
                pending
                    .range(start..)
                    .take_while(move |(key, _)| key.group == group)
                    .map(|(key, _)| (key.topic.clone(), key.partition))
            })
            .collect();
        partitions.sort_unstable();
        partitions.dedup();
        partitions
    }

    /// Every group with a pending offset, sorted, possibly repeated.
    pub fn groups(&self) -> impl Iterator<Item = &str> {
        self.by_producer
            .values()
            .flat_map(|pending| pending.keys().map(|key| key.group.as_str()))
    }

    /// Producers with an open transaction holding offsets, ascending.
    pub fn producers(&self) -> impl Iterator<Item = i64> + '_ {
        self.by_producer.keys().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.by_producer.is_empty()
    }
}

/// The smallest key of `group`: keys sort by group, then topic, then
/// partition.
fn group_start(group: &str) -> OffsetCommitKey {
    OffsetCommitKey {
        group: group.to_string(),
        topic: String::new(),
        partition: i32::MIN,
    }
}

fn first_key_of<'a>(
    pending: &'a BTreeMap<OffsetCommitKey, CommittedOffset>,
    group: &str,
) -> Option<&'a OffsetCommitKey> {
    pending
        .range(group_start(group)..)
        .next()
        .map(|(key, _)| key)
        .filter(|key| key.group == group)
}
