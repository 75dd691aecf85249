//! Keeping an offsets partition short so start-up replay stays fast: when
//! the records written since the last snapshot outnumber the live keys by
//! far, the coordinator appends the live state as a snapshot and deletes the
//! sealed segments wholly below it. Kafka compacts `__consumer_offsets`
//! instead; the effect for replay is the same (about one record per live
//! key, plus the tail written since and the unsealed segment).
//!
//! Which cores: the owner of the offsets partition, from its timer task.
//!
//! Why this is correct: the snapshot re-writes every live key with its
//! current value and omits dead ones, and segments are deleted only as a
//! prefix, so replaying what is left (older records of the active segment,
//! then the snapshot, then newer records) ends in the same state: any key's
//! older records are overridden by the snapshot, and a key deleted before
//! the snapshot had its tombstone after any of its surviving records.
//!
//! Transactions: a snapshot holds committed state only, and the pending
//! offsets of an open transaction live in its transactional batches, which
//! deleting segments below the snapshot could remove before their marker
//! arrives. So no snapshot is written while any producer has offsets
//! pending on the partition (the check runs again at the next expiry
//! interval). Deleting below an older snapshot stays safe: every batch of
//! a transaction still open was written after the last snapshot, since that
//! snapshot was taken with nothing pending. Kafka's log cleaner has the
//! same rule in another form: it never cleans above the last stable offset.

use super::coordinator::OffsetsPartition;
use crate::server::coordinator_log::{compact, SnapshotPolicy};

/// Records written since the last snapshot before one is considered.
const SNAPSHOT_MIN_RECORDS: i64 = 1_000_000;
/// ... and only when they are this many times the live keys.
const SNAPSHOT_RATIO: i64 = 4;
/// Records per batch of a snapshot (batches stay well under a megabyte).
const SNAPSHOT_BATCH_RECORDS: usize = 1_000;

impl OffsetsPartition {
    /// Writes a snapshot if the partition has grown enough since the last
    /// one (`min_records` and `ratio`, see the constants) and no transaction
    /// has offsets pending here, then deletes the segments below the latest
    /// snapshot. Returns the segments deleted.
    pub async fn compact(&self, now_ms: i64) -> usize {
        self.compact_with(now_ms, SNAPSHOT_MIN_RECORDS, SNAPSHOT_RATIO)
            .await
    }

    pub(super) async fn compact_with(&self, now_ms: i64, min_records: i64, ratio: i64) -> usize {
        let (live, pending) = {
            let offsets = self.offsets.borrow();
            (
                offsets.live_record_count() as i64,
                offsets.has_pending_transactions(),
            )
        };
        compact(
            &self.log,
            super::offsets_topic::OFFSETS_TOPIC,
            self.partition,
            &self.snapshot_offset,
            (!pending).then_some(live),
            SnapshotPolicy { min_records, ratio },
            self.write_snapshot(now_ms),
        )
        .await
    }

    /// Appends the live state in one synchronous step (no other append can
    /// land between its batches) and waits until it is durable.
    async fn write_snapshot(&self, now_ms: i64) -> Result<(), i16> {
        let records = self.offsets.borrow().live_records();
        let first = self.log.log_end_offset();
        let mut last = -1;
        let mut records = records.into_iter().peekable();
        while records.peek().is_some() {
            let batch: Vec<_> = records.by_ref().take(SNAPSHOT_BATCH_RECORDS).collect();
            last = self.append(batch, now_ms)?;
        }
        self.wait_durable(last).await?;
        self.snapshot_offset.set(first);
        tracing::info!(
            partition = self.partition,
            snapshot_offset = first,
            records = last - first + 1,
            "wrote offsets snapshot"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::GroupSettings;
    use crate::group::offset_records::{OffsetCommitKey, OffsetCommitValue, OffsetsRecord};
    use crate::log::{LogConfig, PartitionLog};
    use crate::runtime::memlock::run_on_test_executor;
    use crate::server::groups::coordinator::GroupCoordinator;

    fn commit(group: &str, partition: i32, offset: i64) -> OffsetsRecord {
        OffsetsRecord::OffsetCommit {
            key: OffsetCommitKey {
                group: group.to_string(),
                topic: "orders".to_string(),
                partition,
            },
            value: Some(OffsetCommitValue {
                offset,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp_ms: 1_700_000_000_000,
                expire_timestamp_ms: -1,
            }),
        }
    }

    #[test]
    fn snapshot_deletes_old_segments_and_replay_gives_the_same_state() {
        run_on_test_executor(|| async move {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("__consumer_offsets-0");
            let config = LogConfig {
                segment_bytes: 16 << 10,
                ..LogConfig::default()
            };
            let settings = GroupSettings::default();
            let log = PartitionLog::open(path.clone(), config.clone())
                .await
                .expect("open");
            let coordinator = GroupCoordinator::default();
            coordinator.load(&settings, 0, log.clone()).await;
            let partition = coordinator.partition(0).expect("loaded");
            // 3 groups x 4 partitions, committed 500 times each.
            for round in 0..500 {
                let records = (0..12)
                    .map(|i| commit(&format!("g{}", i % 3), i / 3, round))
                    .collect();
                partition.append(records, 0).expect("append");
            }
            assert_eq!(partition.log.log_start_offset(), 0);
            let deleted = partition.compact_with(0, 1_000, 4).await;
            assert!(deleted > 10, "only {deleted} segments deleted");
            let start = partition.log.log_start_offset();
            assert!(start > 5_000, "log start {start}");
            // More commits after the snapshot, then a restart.
            partition
                .append(vec![commit("g1", 2, 777)], 0)
                .expect("append");
            let end = partition.log.log_end_offset();
            partition
                .log
                .wait_committed(end - 1)
                .await
                .expect("durable");
            log.close().await.expect("close");
            drop(partition);
            let log = PartitionLog::open(path, config).await.expect("reopen");
            let restarted = GroupCoordinator::default();
            restarted.load(&settings, 0, log.clone()).await;
            let partition = restarted.partition(0).expect("loaded");
            {
                let offsets = partition.offsets.borrow();
                for i in 0..12 {
                    let (group, index) = (format!("g{}", i % 3), i / 3);
                    let expected = if (group.as_str(), index) == ("g1", 2) {
                        777
                    } else {
                        499
                    };
                    assert_eq!(
                        offsets.fetch(&group, "orders", index).map(|v| v.offset),
                        Some(expected),
                        "{group} {index}"
                    );
                }
                assert_eq!(offsets.live_record_count(), 12);
            }
            log.close().await.expect("close");
        });
    }
}
