//! The internal `__consumer_offsets` topic: its name and configs, which of
//! its partitions a group belongs to, creating it on first use, writing
//! coordinator records as RecordBatches and replaying a partition (plain
//! and transactional batches, transaction markers) into its committed
//! offsets on load.
//!
//! Which cores: any shard maps a group to its partition and creates the
//! topic (through the controller); only a partition's owner writes and
//! replays it.

use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;

use crate::group::committed_offsets::CommittedOffsets;
use crate::log::PartitionLog;
use crate::metadata::catalog::TopicMetadata;
use crate::protocol::batch_builder::{self, BatchProducer};
use crate::protocol::record_batch::{Compression, BATCH_HEADER_BYTES};
use crate::protocol::records::RecordIter;
use crate::server::admin;
use crate::server::coordinator_log::visit_batches;
use crate::server::groups::txn_offsets::transaction_result;
use crate::server::shard::Shard;

/// Kafka's name for it, so tools that hide or skip it recognise it.
pub use crate::metadata::topic_name::OFFSETS_TOPIC;

/// Kafka's `offsets.topic.segment.bytes` default. Records are never deleted
/// by time or size (the topic is compacted in Kafka; here expiry writes
/// tombstones and segments are kept), so retention is off.
const OFFSETS_TOPIC_CONFIGS: &[(&str, &str)] = &[
    ("cleanup.policy", "compact"),
    ("retention.ms", "-1"),
    ("segment.bytes", "104857600"),
];

/// The offsets partition of `group_id`: Kafka's
/// `Utils.abs(groupId.hashCode) % partitions` with Java's `String.hashCode`
/// (over UTF-16 code units), so a group lands on the partition it would in
/// Kafka.
pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
    let hash = group_id.encode_utf16().fold(0i32, |hash, unit| {
        hash.wrapping_mul(31).wrapping_add(i32::from(unit))
    });
    // Kafka's Utils.abs maps i32::MIN to 0 rather than overflowing.
    let positive = if hash == i32::MIN { 0 } else { hash.abs() };
    positive % partitions.max(1)
}

/// The offsets topic, created with `--offsets-topic-partitions` the first
/// time any shard needs it (Kafka creates it on the first FindCoordinator).
pub async fn ensure(shard: &Rc<Shard>) -> Result<Arc<TopicMetadata>, i16> {
    admin::ensure_internal_topic(
        shard,
        OFFSETS_TOPIC,
        shard.config.groups.offsets_topic_partitions,
        OFFSETS_TOPIC_CONFIGS,
    )
    .await
}

/// One key/value record for an offsets partition (`None` = tombstone).
pub use crate::protocol::batch_builder::KeyValue as OffsetsRecordBytes;

/// An uncompressed RecordBatch v2 holding `records` (base offset 0: the log
/// assigns the real one).
pub fn encode_batch(records: &[OffsetsRecordBytes], now_ms: i64) -> Bytes {
    batch_builder::encode_batch(records, BatchProducer::NONE, now_ms)
}

pub use crate::server::coordinator_log::ReplayStats;

/// Applies every record of `log`, oldest first, to `offsets`: plain
/// batches to the committed state, transactional batches to their
/// producer's pending offsets, and markers (control batches) complete those
/// (Kafka's `GroupMetadataManager.doLoadGroupsAndOffsets`). A transaction
/// still open at the end of the log stays pending for a later marker.
pub async fn replay(
    log: &PartitionLog,
    offsets: &mut CommittedOffsets,
) -> Result<ReplayStats, crate::log::LogError> {
    let mut stats = ReplayStats::default();
    visit_batches(log, "offsets", |header, batch, next| {
        if header.is_control() {
            // A transaction's marker: its producer's pending offsets are
            // committed or dropped here, as they were live.
            match batch_builder::parse_control_marker(batch) {
                Some(marker) if !already_applied(header.base_offset, next, offsets) => {
                    stats.records += 1;
                    offsets.complete_transaction(
                        header.producer_id,
                        transaction_result(marker.control_type),
                        header.base_offset,
                    );
                }
                Some(_) => {}
                None => stats.skipped += 1,
            }
            return;
        }
        if header.compression() != Compression::None {
            // We never write these; someone else did. Skip the batch.
            stats.skipped += 1;
            return;
        }
        // Records of a transactional batch wait for their marker.
        let producer_id = header
            .is_transactional()
            .then_some(header.producer_id)
            .filter(|&id| id >= 0);
        let records = batch.get(BATCH_HEADER_BYTES..).unwrap_or_default();
        for record in RecordIter::new(records, header.records_count) {
            let offset = header.base_offset + record.offset_delta;
            if already_applied(offset, next, offsets) {
                continue;
            }
            stats.records += 1;
            let Some(key) = record.key else {
                stats.skipped += 1;
                continue;
            };
            let applied = match producer_id {
                Some(producer_id) => {
                    offsets.apply_transactional(producer_id, key, record.value, offset)
                }
                None => offsets.apply(key, record.value, offset),
            };
            if let Err(error) = applied {
                tracing::warn!(offset, %error, "skipping undecodable offsets record");
                stats.skipped += 1;
            }
        }
    })
    .await?;
    Ok(stats)
}

/// Whether the record at `offset` was applied already: a read can return a
/// batch that starts before the requested offset.
fn already_applied(offset: i64, next: i64, offsets: &CommittedOffsets) -> bool {
    offset < next
        || offsets
            .last_record_offset()
            .is_some_and(|last| offset <= last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::offset_records::{OffsetCommitKey, OffsetCommitValue};
    use crate::log::LogConfig;
    use crate::protocol::record_batch::validate_batch;
    use crate::runtime::memlock::run_on_test_executor;

    fn commit(group: &str, partition: i32, offset: i64) -> OffsetsRecordBytes {
        OffsetsRecordBytes {
            key: OffsetCommitKey {
                group: group.to_string(),
                topic: "orders".to_string(),
                partition,
            }
            .encode(),
            value: Some(
                OffsetCommitValue {
                    offset,
                    leader_epoch: -1,
                    metadata: String::new(),
                    commit_timestamp_ms: 1_700_000_000_000,
                    expire_timestamp_ms: -1,
                }
                .encode(),
            ),
        }
    }

    /// Appends `batches` batches of `per_batch` commits (group `g<batch % 10>`,
    /// partition = index in batch, offset = batch number), then replays.
    async fn write_and_replay(
        batches: usize,
        per_batch: usize,
    ) -> (CommittedOffsets, ReplayStats, std::time::Duration) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("__consumer_offsets-0");
        let log = PartitionLog::open(path.clone(), LogConfig::default())
            .await
            .expect("open");
        for batch in 0..batches {
            let records: Vec<OffsetsRecordBytes> = (0..per_batch)
                .map(|p| commit(&format!("g{}", batch % 10), p as i32, batch as i64))
                .collect();
            log.append(&encode_batch(&records, 1_700_000_000_000), 0)
                .expect("append");
        }
        // One tombstone: group g0 drops partition 0.
        let tombstone = OffsetsRecordBytes {
            key: commit("g0", 0, 0).key,
            value: None,
        };
        let last = log
            .append(&encode_batch(&[tombstone], 0), 0)
            .expect("append")
            .last_offset;
        log.wait_written(last).await.expect("written");
        log.close().await.expect("close");
        let log = PartitionLog::open(path, LogConfig::default())
            .await
            .expect("reopen");
        let mut offsets = CommittedOffsets::new();
        let started = std::time::Instant::now();
        let stats = replay(&log, &mut offsets).await.expect("replay");
        let elapsed = started.elapsed();
        log.close().await.expect("close");
        (offsets, stats, elapsed)
    }

    #[test]
    fn replay_rebuilds_the_latest_commit_of_every_key() {
        let (offsets, stats, _) = run_on_test_executor(|| write_and_replay(50, 20));
        assert_eq!(stats.records, 50 * 20 + 1);
        assert_eq!(stats.skipped, 0);
        // g3 last committed in batch 43.
        assert_eq!(offsets.fetch("g3", "orders", 7).map(|v| v.offset), Some(43));
        assert_eq!(offsets.fetch("g0", "orders", 1).map(|v| v.offset), Some(40));
        assert_eq!(offsets.fetch("g0", "orders", 0), None, "tombstone applied");
        assert_eq!(offsets.groups().len(), 10);
    }

    /// Replay speed, run on purpose:
    /// `cargo test --release --lib replay_speed -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn replay_speed() {
        let (offsets, stats, elapsed) = run_on_test_executor(|| write_and_replay(20_000, 50));
        assert_eq!(offsets.groups().len(), 10);
        let per_second = stats.records as f64 / elapsed.as_secs_f64();
        println!(
            "replayed {} records in {:.3} s: {:.0} records/s",
            stats.records,
            elapsed.as_secs_f64(),
            per_second
        );
    }

    #[test]
    fn groups_land_where_kafka_puts_them() {
        // Java's String.hashCode: s[0]*31^(n-1) + ... + s[n-1], wrapping.
        let java_hash = |s: &str| {
            s.encode_utf16()
                .fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(i32::from(u)))
        };
        assert_eq!(java_hash("a"), 97);
        assert_eq!(java_hash("ab"), 97 * 31 + 98);
        assert_eq!(partition_for("a", 50), 97 % 50);
        for group in ["", "g", "orders", "very-long-group-name-with-ünïcode"] {
            let p = partition_for(group, 50);
            assert!((0..50).contains(&p));
        }
        assert_eq!(partition_for("anything", 1), 0);
        assert_eq!(partition_for("anything", 0), 0);
    }

    #[test]
    fn batches_validate_and_carry_tombstones() {
        let records = [
            OffsetsRecordBytes {
                key: b"k1".to_vec(),
                value: Some(b"v1".to_vec()),
            },
            OffsetsRecordBytes {
                key: b"k2".to_vec(),
                value: None,
            },
        ];
        let batch = encode_batch(&records, 1_700_000_000_000);
        let header = validate_batch(&batch).expect("valid batch");
        assert_eq!(header.records_count, 2);
        let parsed: Vec<_> =
            RecordIter::new(&batch[BATCH_HEADER_BYTES..], header.records_count).collect();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].key, Some(&b"k1"[..]));
        assert_eq!(parsed[0].value, Some(&b"v1"[..]));
        assert_eq!(parsed[1].offset_delta, 1);
        assert_eq!(parsed[1].value, None);
    }
}
