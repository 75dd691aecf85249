//! Behaviour tests of `PartitionLog` on a real glommio executor and real
//! files in a temporary directory: what a produce/fetch/ListOffsets caller
//! and a restart observe. They assert behaviour, never speed. Shared helpers
//! live here; the tests are grouped by concern in the child modules.

use std::path::{Path, PathBuf};

use crate::protocol::record_batch::tests::sample_batch;
use crate::protocol::record_batch::{validate_batch, BatchHeader};

use super::{LogConfig, PartitionLog, ReadResult};

mod durability_and_recovery;
mod idempotence;
mod lookups_and_retention;
mod read_write;
mod replication;
mod transactions;

pub(super) const RECORDS_PER_BATCH: i32 = 3;

pub(super) fn config() -> LogConfig {
    LogConfig {
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

/// A batch whose record i has timestamp `first_timestamp + i` and whose max
/// timestamp says so (the protocol helper gives every record the base
/// timestamp). Same record layout as `sample_batch`, so the sizes match.
pub(super) fn batch_spanning(count: i32, first_timestamp: i64) -> Vec<u8> {
    assert!(count < 64, "one-byte varints only");
    let mut batch = sample_batch(0, count, first_timestamp);
    let mut at = 61;
    for index in 0..count as u8 {
        // length, attributes, timestampDelta, offsetDelta, ...
        batch[at + 2] = index << 1;
        at += 8;
    }
    let max_timestamp = first_timestamp + i64::from(count) - 1;
    batch[35..43].copy_from_slice(&max_timestamp.to_be_bytes());
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch
}

/// A `RECORDS_PER_BATCH`-record batch from an idempotent producer
/// (transactional when asked), sequences from `base_sequence`.
pub(super) fn producer_batch(
    producer_id: i64,
    epoch: i16,
    base_sequence: i32,
    transactional: bool,
) -> Vec<u8> {
    let mut batch = sample_batch(0, RECORDS_PER_BATCH, 1_000);
    let attributes: i16 = if transactional { 0x10 } else { 0 };
    batch[21..23].copy_from_slice(&attributes.to_be_bytes());
    batch[43..51].copy_from_slice(&producer_id.to_be_bytes());
    batch[51..53].copy_from_slice(&epoch.to_be_bytes());
    batch[53..57].copy_from_slice(&base_sequence.to_be_bytes());
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch
}

pub(super) fn log_files(dir: &Path) -> Vec<PathBuf> {
    files_ending(dir, ".log")
}

/// The files of `dir` whose name ends with `suffix`, sorted.
pub(super) fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.ends_with(suffix))
        })
        .collect();
    files.sort();
    files
}

pub(super) fn headers(result: &ReadResult) -> Vec<BatchHeader> {
    result
        .batches
        .iter()
        .map(|batch| validate_batch(batch).expect("served batches are intact"))
        .collect()
}

pub(super) async fn append_batches(log: &PartitionLog, count: usize, first_timestamp: i64) -> i64 {
    let mut last = -1;
    for index in 0..count {
        let batch = sample_batch(0, RECORDS_PER_BATCH, first_timestamp + index as i64);
        last = log.append(&batch, 0).expect("append").last_offset;
    }
    log.wait_written(last).await.expect("written");
    last
}

/// Follows reads from `offset` to the high watermark, checking continuity.
pub(super) async fn read_everything(
    log: &PartitionLog,
    offset: i64,
    max_bytes: usize,
) -> Vec<BatchHeader> {
    let mut all: Vec<BatchHeader> = Vec::new();
    let mut next = offset;
    while next < log.high_watermark() {
        let found = headers(&log.read(next, max_bytes).await.expect("read"));
        assert!(
            !found.is_empty(),
            "a read below the high watermark returns a batch"
        );
        for header in found {
            if let Some(previous) = all.last() {
                assert_eq!(header.base_offset, previous.last_offset() + 1);
            }
            next = header.last_offset() + 1;
            all.push(header);
        }
    }
    all
}

pub(super) async fn check_every_offset(log: &PartitionLog) {
    for offset in log.log_start_offset()..log.high_watermark() {
        let result = log.read(offset, 1).await.expect("read");
        let found = headers(&result);
        assert_eq!(
            found.len(),
            1,
            "KIP-74: one whole batch even past max_bytes"
        );
        let batch_base = offset - offset % i64::from(RECORDS_PER_BATCH);
        assert_eq!(
            found[0].base_offset, batch_base,
            "containing batch for {offset}"
        );
    }
}
