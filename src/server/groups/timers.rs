//! The coordinator's clock: one task per shard fires group timers (session
//! expiry, join rounds, the initial rebalance delay) when they fall due and
//! removes expired offsets and empty groups every
//! `offsets.retention.check.interval.ms`.
//!
//! Which cores: each shard's task looks only at that shard's groups.
//!
//! Why this shape: the groups keep their deadlines as data; this task sleeps
//! until the earliest one (at most a second), and events that bring a
//! deadline closer wake it early (`GroupCoordinator::schedule`).

use std::rc::Rc;
use std::time::Duration;

use futures::channel::oneshot;
use futures::future::{select, Either};

use super::coordinator::OffsetsPartition;
use crate::group::offset_records::{GroupMetadataKey, OffsetsRecord};
use crate::group::GroupState;
use crate::runtime::clock::now_ms;
use crate::server::shard::Shard;

/// Longest the timer sleeps without looking at the groups again.
const TICK_INTERVAL_MAX_MS: i64 = 1_000;

impl OffsetsPartition {
    pub(super) fn next_deadline_ms(&self) -> Option<i64> {
        let classic = self
            .groups
            .borrow()
            .values()
            .filter_map(|slot| slot.group.next_deadline_ms())
            .min();
        let consumer = self
            .offsets
            .borrow()
            .consumer_groups()
            .filter_map(|group| group.next_deadline_ms())
            .min();
        classic.into_iter().chain(consumer).min()
    }

    /// Fires every group timer due at `now_ms`.
    fn tick(&self, now_ms: i64) {
        let mut groups = self.groups.borrow_mut();
        for slot in groups.values_mut() {
            if slot.group.next_deadline_ms().is_some_and(|at| at <= now_ms) {
                let effects = slot.group.tick(now_ms);
                self.deliver(slot, effects, now_ms);
            }
        }
        drop(groups);
        self.tick_consumer_groups(now_ms);
    }

    /// KIP-848 groups: fences members whose session or rebalance timeout
    /// passed and writes what that changed. Nobody waits on these records;
    /// a failed append is only logged (the members left in memory, and a
    /// restart replays the log without that change, then times them out
    /// again).
    fn tick_consumer_groups(&self, now_ms: i64) {
        let records: Vec<OffsetsRecord> = {
            let mut offsets = self.offsets.borrow_mut();
            let mut records = Vec::new();
            for group in offsets.consumer_groups_mut() {
                if group.next_deadline_ms().is_some_and(|at| at <= now_ms) {
                    let group_id = group.group_id().to_string();
                    records.extend(group.tick(now_ms).into_iter().map(|record| {
                        OffsetsRecord::ConsumerGroup {
                            group: group_id.clone(),
                            record,
                        }
                    }));
                }
            }
            records
        };
        if let Err(code) = self.append(records, now_ms) {
            tracing::warn!(
                partition = self.partition,
                code,
                "cannot write consumer group timeouts"
            );
        }
    }

    /// offsets.retention.minutes: tombstones for expired offsets, then
    /// Empty groups left with no offsets, committed or pending in a
    /// transaction, are deleted (Kafka's `cleanupGroupMetadata`).
    fn expire(&self, now_ms: i64, retention_ms: i64) {
        let expired = self.offsets.borrow().expired(now_ms, retention_ms);
        // Offsets of groups with live members never expire, even if the
        // stored metadata lags behind the group.
        let expired: Vec<OffsetsRecord> = {
            let groups = self.groups.borrow();
            expired
                .into_iter()
                .filter(|key| {
                    groups
                        .get(&key.group)
                        .is_none_or(|slot| slot.group.state() == GroupState::Empty)
                })
                .map(|key| OffsetsRecord::OffsetCommit { key, value: None })
                .collect()
        };
        let expired_count = expired.len();
        if let Err(code) = self.append(expired, now_ms) {
            tracing::warn!(
                partition = self.partition,
                code,
                "cannot write expiry tombstones"
            );
            return;
        }
        let empty_groups: Vec<String> = {
            let groups = self.groups.borrow();
            let offsets = self.offsets.borrow();
            groups
                .iter()
                .filter(|(id, slot)| {
                    slot.group.state() == GroupState::Empty
                        && slot.group.pending_member_count() == 0
                        && slot.join_waiters.is_empty()
                        && slot.sync_waiters.is_empty()
                        && offsets.offsets_of(id).next().is_none()
                        && !offsets.has_pending_offsets_of(id)
                })
                .map(|(id, _)| id.clone())
                .collect()
        };
        let group_tombstones: Vec<OffsetsRecord> = {
            let offsets = self.offsets.borrow();
            empty_groups
                .iter()
                .filter(|group| offsets.group_metadata(group).is_some())
                .map(|group| OffsetsRecord::GroupMetadata {
                    key: GroupMetadataKey {
                        group: group.clone(),
                    },
                    value: None,
                })
                .collect()
        };
        if let Err(code) = self.append(group_tombstones, now_ms) {
            tracing::warn!(
                partition = self.partition,
                code,
                "cannot write group tombstones"
            );
            return;
        }
        let mut groups = self.groups.borrow_mut();
        for group in &empty_groups {
            groups.remove(group);
        }
        drop(groups);
        let consumer_groups = self.expire_empty_consumer_groups(now_ms);
        if expired_count > 0 || !empty_groups.is_empty() || consumer_groups > 0 {
            tracing::info!(
                partition = self.partition,
                offsets = expired_count,
                groups = empty_groups.len(),
                consumer_groups,
                "expired committed offsets and empty groups"
            );
        }
    }
}

impl OffsetsPartition {
    /// Consumer groups (KIP-848) with no members left and no offsets,
    /// committed or pending, are deleted (Kafka's `cleanupGroupMetadata`):
    /// how many.
    fn expire_empty_consumer_groups(&self, now_ms: i64) -> usize {
        let records: Vec<OffsetsRecord> = {
            let mut offsets = self.offsets.borrow_mut();
            let unused: Vec<String> = offsets
                .consumer_groups()
                .filter(|group| group.member_count() == 0)
                .map(|group| group.group_id().to_string())
                .filter(|id| {
                    offsets.offsets_of(id).next().is_none() && !offsets.has_pending_offsets_of(id)
                })
                .collect();
            let mut records = Vec::new();
            for group_id in unused {
                let Some(group) = offsets.consumer_group_mut(&group_id, false) else {
                    continue;
                };
                let Some(tombstones) = group.tombstones() else {
                    continue;
                };
                if tombstones.iter().all(|record| group.replay(record).is_ok()) {
                    records.extend(tombstones.into_iter().map(|record| {
                        OffsetsRecord::ConsumerGroup {
                            group: group_id.clone(),
                            record,
                        }
                    }));
                }
                offsets.prune_consumer_group(&group_id);
            }
            records
        };
        let count = records
            .iter()
            .filter(|record| {
                matches!(
                    record,
                    OffsetsRecord::ConsumerGroup {
                        record: crate::group::modern::ConsumerGroupRecord::GroupEpoch(None),
                        ..
                    }
                )
            })
            .count();
        if let Err(code) = self.append(records, now_ms) {
            tracing::warn!(
                partition = self.partition,
                code,
                "cannot write consumer group tombstones"
            );
        }
        count
    }
}

/// The shard's timer task: fires group timers when due, and expires
/// offsets every `offsets_retention_check_ms`.
pub fn spawn_timer(shard: &Rc<Shard>) {
    let shard = Rc::clone(shard);
    glommio::spawn_local(async move {
        let settings = shard.config.groups.clone();
        let mut next_expiry = now_ms() + settings.offsets_retention_check_ms as i64;
        loop {
            let now = now_ms();
            let coordinator = &shard.groups;
            for partition in coordinator.partitions() {
                partition.tick(now);
            }
            if now >= next_expiry {
                for partition in coordinator.partitions() {
                    partition.expire(now, settings.offsets_retention_ms);
                    partition.compact(now).await;
                }
                next_expiry = now + settings.offsets_retention_check_ms as i64;
            }
            let next_deadline = coordinator
                .partitions()
                .iter()
                .filter_map(|partition| partition.next_deadline_ms())
                .min();
            let wake_at = next_deadline
                .unwrap_or(i64::MAX)
                .min(now + TICK_INTERVAL_MAX_MS)
                .min(next_expiry);
            coordinator.next_tick_ms.set(wake_at);
            let (sender, receiver) = oneshot::channel();
            *coordinator.wake.borrow_mut() = Some(sender);
            let sleep_ms = (wake_at - now_ms()).max(0) as u64;
            let sleep = Box::pin(glommio::timer::sleep(Duration::from_millis(sleep_ms)));
            if let Either::Right((Err(_), _)) = select(sleep, receiver).await {
                // The sender was dropped without a wake: only at shutdown.
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    })
    .detach();
}
