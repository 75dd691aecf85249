//! Behaviour tests of `PartitionLog` on a real glommio executor and real
//! files in a temporary directory: what a produce/fetch/ListOffsets caller
//! and a restart observe. They assert behaviour, never speed.

use std::path::{Path, PathBuf};

use crate::config::FlushPolicy;
use crate::protocol::record_batch::tests::sample_batch;
use crate::protocol::record_batch::{validate_batch, BatchHeader};
use crate::runtime::memlock::run_on_test_executor;

use super::{LogConfig, LogError, PartitionLog, ReadResult, TimestampType};

const RECORDS_PER_BATCH: i32 = 3;

fn config() -> LogConfig {
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

fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "log"))
        .collect();
    files.sort();
    files
}

fn headers(result: &ReadResult) -> Vec<BatchHeader> {
    result
        .batches
        .iter()
        .map(|batch| validate_batch(batch).expect("served batches are intact"))
        .collect()
}

async fn append_batches(log: &PartitionLog, count: usize, first_timestamp: i64) -> i64 {
    let mut last = -1;
    for index in 0..count {
        let batch = sample_batch(0, RECORDS_PER_BATCH, first_timestamp + index as i64);
        last = log.append(&batch, 0).expect("append").last_offset;
    }
    log.wait_written(last).await.expect("written");
    last
}

/// Follows reads from `offset` to the high watermark, checking continuity.
async fn read_everything(log: &PartitionLog, offset: i64, max_bytes: usize) -> Vec<BatchHeader> {
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

async fn check_every_offset(log: &PartitionLog) {
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

#[test]
fn round_trip_reads_every_offset_from_tail_cache_and_disk() {
    run_on_test_executor(|| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = PartitionLog::open_with_tail_cache(dir.path().join("p-0"), config(), 2_000)
            .await
            .expect("open");
        assert!(log.is_empty());
        let last = append_batches(&log, 200, 1_000).await;
        assert_eq!(last, 599);
        assert_eq!(log.high_watermark(), 600);
        assert_eq!(log.log_end_offset(), 600);
        check_every_offset(&log).await;
        let all = read_everything(&log, 0, 1 << 20).await;
        assert_eq!(all.len(), 200);
        let from_middle = read_everything(&log, 301, 4_000).await;
        assert_eq!(from_middle[0].base_offset, 300);
        let at_end = log.read(600, 1 << 20).await.expect("read at hw");
        assert!(at_end.batches.is_empty());
        assert_eq!(at_end.high_watermark, 600);
        log.close().await.expect("close");
    });
}

#[test]
fn out_of_range_offsets_are_refused() {
    run_on_test_executor(|| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = PartitionLog::open(dir.path().to_path_buf(), config())
            .await
            .expect("open");
        append_batches(&log, 2, 1_000).await;
        for offset in [-1, 7, 100] {
            match log.read(offset, 1 << 20).await {
                Err(LogError::OffsetOutOfRange {
                    offset: refused,
                    high_watermark: 6,
                    ..
                }) => {
                    assert_eq!(refused, offset)
                }
                other => panic!("expected OffsetOutOfRange for {offset}, got {other:?}"),
            }
        }
        assert!(log
            .read(6, 1 << 20)
            .await
            .expect("at hw")
            .batches
            .is_empty());
        log.close().await.expect("close");
    });
}

#[test]
fn sparse_index_serves_disk_reads_after_reopen() {
    run_on_test_executor(|| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p-0");
        let log = PartitionLog::open(path.clone(), config())
            .await
            .expect("open");
        append_batches(&log, 100, 1_000).await;
        log.close().await.expect("close");

        let log = PartitionLog::open(path, config()).await.expect("reopen");
        {
            let segments = log.inner.segments.borrow();
            assert_eq!(segments.len(), 1);
            assert!(
                segments[0].offset_index.len() > 10,
                "one entry per 256 bytes"
            );
            let position = segments[0].start_position(250);
            assert!(position > 0);
        }
        check_every_offset(&log).await;
        assert_eq!(read_everything(&log, 0, 1_000).await.len(), 100);
        log.close().await.expect("close");
    });
}

#[test]
fn segments_roll_by_size_and_reads_cross_them_before_and_after_reopen() {
    run_on_test_executor(|| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p-0");
        let small = LogConfig {
            segment_bytes: 1_000,
            ..config()
        };
        let log = PartitionLog::open_with_tail_cache(path.clone(), small.clone(), 500)
            .await
            .expect("open");
        append_batches(&log, 100, 1_000).await;
        let files = log_files(&path);
        assert!(files.len() >= 8, "got {} segments", files.len());
        for file in &files {
            assert!(
                std::fs::metadata(file).expect("stat").len() <= 1_000
                    || file == files.last().expect("last")
            );
        }
        check_every_offset(&log).await;
        assert_eq!(read_everything(&log, 0, 1 << 20).await.len(), 100);
        log.close().await.expect("close");

        let log = PartitionLog::open(path.clone(), small)
            .await
            .expect("reopen");
        assert_eq!(log.log_end_offset(), 300);
        check_every_offset(&log).await;
        assert_eq!(read_everything(&log, 0, 1 << 20).await.len(), 100);
        let info = log.append(&sample_batch(0, 2, 5_000), 0).expect("append");
        assert_eq!(info.base_offset, 300);
        log.close().await.expect("close");
    });
}

#[test]
fn segments_roll_when_the_first_batch_is_older_than_segment_ms() {
    run_on_test_executor(|| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let timed = LogConfig {
            segment_ms: 1_000,
            ..config()
        };
        let log = PartitionLog::open(dir.path().to_path_buf(), timed)
            .await
            .expect("open");
        log.append(&sample_batch(0, 1, 10_000), 0).expect("append");
        log.append(&sample_batch(0, 1, 10_900), 0).expect("append");
        assert_eq!(log.inner.head.get().segment_base, 0);
        let last = log
            .append(&sample_batch(0, 1, 11_001), 0)
            .expect("append")
            .last_offset;
        log.wait_written(last).await.expect("written");
        assert_eq!(log_files(dir.path()).len(), 2);
        assert_eq!(log.inner.segments.borrow()[1].base_offset, 2);
        assert_eq!(read_everything(&log, 0, 1 << 20).await.len(), 3);
        log.close().await.expect("close");
    });
}

#[test]
fn reopen_after_close_keeps_offsets_and_continues_appending() {
    run_on_test_executor(|| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p-0");
        let log = PartitionLog::open(path.clone(), config())
            .await
            .expect("open");
        append_batches(&log, 20, 1_000).await;
        let before = read_everything(&log, 0, 1 << 20).await;
        log.close().await.expect("close");
        assert!(matches!(
            log.append(&sample_batch(0, 1, 1), 0),
            Err(LogError::Closed)
        ));

        let log = PartitionLog::open(path.clone(), config())
            .await
            .expect("reopen");
        assert_eq!((log.log_start_offset(), log.high_watermark()), (0, 60));
        assert_eq!(read_everything(&log, 0, 1 << 20).await, before);
        assert_eq!(append_batches(&log, 5, 2_000).await, 74);
        log.close().await.expect("close");
        let log = PartitionLog::open(path, config())
            .await
            .expect("reopen again");
        assert_eq!(read_everything(&log, 0, 1 << 20).await.len(), 25);
        log.close().await.expect("close");
    });
}

/// Writes 10 batches (30 offsets), closes, applies `damage` to the .log file
/// and reopens: returns the reopened log and the file size right after open.
async fn reopen_damaged(dir: &Path, damage: impl FnOnce(&Path, u64)) -> (PartitionLog, u64) {
    let log = PartitionLog::open(dir.to_path_buf(), config())
        .await
        .expect("open");
    append_batches(&log, 10, 1_000).await;
    log.close().await.expect("close");
    let file = log_files(dir).pop().expect("one segment");
    let batch_bytes = sample_batch(0, RECORDS_PER_BATCH, 0).len() as u64;
    damage(&file, batch_bytes);
    let log = PartitionLog::open(dir.to_path_buf(), config())
        .await
        .expect("reopen");
    let size = std::fs::metadata(&file).expect("stat").len();
    (log, size)
}

fn append_bytes(file: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut handle = std::fs::OpenOptions::new()
        .append(true)
        .open(file)
        .expect("open");
    handle.write_all(bytes).expect("write");
}

#[test]
fn recovery_truncates_a_torn_or_corrupt_tail() {
    run_on_test_executor(|| async move {
        type Damage = Box<dyn FnOnce(&Path, u64)>;
        let cases: Vec<(&str, Damage, i64)> = vec![
            (
                "garbage",
                Box::new(|file, _| append_bytes(file, &[0xab; 100])),
                30,
            ),
            (
                "partial batch",
                Box::new(|file, _| append_bytes(file, &sample_batch(30, 3, 9)[..40])),
                30,
            ),
            (
                "zero fill",
                Box::new(|file, _| append_bytes(file, &[0; 8192])),
                30,
            ),
            (
                "crc mismatch in the last batch",
                Box::new(|file, batch_bytes| {
                    let mut bytes = std::fs::read(file).expect("read");
                    let at = bytes.len() - batch_bytes as usize + 70;
                    bytes[at] ^= 0xff;
                    std::fs::write(file, bytes).expect("write");
                }),
                27,
            ),
            (
                "length cut short",
                Box::new(|file, _| {
                    let handle = std::fs::OpenOptions::new()
                        .write(true)
                        .open(file)
                        .expect("open");
                    let length = handle.metadata().expect("stat").len();
                    handle.set_len(length - 10).expect("truncate");
                }),
                27,
            ),
        ];
        for (name, damage, expected_end) in cases {
            let dir = tempfile::tempdir().expect("tempdir");
            let (log, size) = reopen_damaged(dir.path(), damage).await;
            let batch_bytes = sample_batch(0, RECORDS_PER_BATCH, 0).len() as u64;
            assert_eq!(log.log_end_offset(), expected_end, "{name}");
            assert_eq!(
                size,
                batch_bytes * expected_end as u64 / 3,
                "{name}: file truncated"
            );
            assert_eq!(
                read_everything(&log, 0, 1 << 20).await.len() as i64,
                expected_end / 3
            );
            let info = log.append(&sample_batch(0, 2, 5_000), 0).expect("append");
            assert_eq!(info.base_offset, expected_end, "{name}");
            log.wait_written(info.last_offset).await.expect("written");
            log.close().await.expect("close");
            let log = PartitionLog::open(dir.path().to_path_buf(), config())
                .await
                .expect("again");
            assert_eq!(log.log_end_offset(), expected_end + 2, "{name}");
            log.close().await.expect("close");
        }
    });
}

#[test]
fn wait_durable_and_sync_resolve_under_every_flush_policy() {
    run_on_test_executor(|| async move {
        let interval = FlushPolicy::Interval(std::time::Duration::from_millis(10));
        for flush in [FlushPolicy::Always, interval, FlushPolicy::Never] {
            let dir = tempfile::tempdir().expect("tempdir");
            let log = PartitionLog::open(dir.path().to_path_buf(), LogConfig { flush, ..config() })
                .await
                .expect("open");
            let mut last = 0;
            for index in 0..50 {
                last = log
                    .append(&sample_batch(0, 2, index), 0)
                    .expect("append")
                    .last_offset;
            }
            log.wait_durable(last).await.expect("durable");
            assert_eq!(log.high_watermark(), 100);
            log.sync().await.expect("sync");
            assert_eq!(log.inner.durable_offset.get(), 100, "{flush:?}");
            log.close().await.expect("close");
        }
    });
}

#[test]
fn subscribers_and_waiters_are_released_by_writes_and_by_close() {
    run_on_test_executor(|| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = PartitionLog::open(dir.path().to_path_buf(), config())
            .await
            .expect("open");
        let advanced = log.subscribe();
        let last = log
            .append(&sample_batch(0, 1, 1), 0)
            .expect("append")
            .last_offset;
        advanced.await.expect("high watermark moved");
        log.wait_written(last).await.expect("written");
        let on_close = log.subscribe();
        let future_offset = {
            let log = log.clone();
            glommio::spawn_local(async move { log.wait_written(1_000).await })
        };
        glommio::yield_if_needed().await;
        log.close().await.expect("close");
        on_close.await.expect("released on close");
        assert!(matches!(future_offset.await, Err(LogError::Closed)));
        assert!(matches!(log.read(0, 100).await, Err(LogError::Closed)));
    });
}

async fn check_timestamp_lookups(log: &PartitionLog) {
    let lookup = |timestamp_ms| log.offset_for_timestamp(timestamp_ms);
    assert_eq!(lookup(0).await.expect("lookup"), Some((0, 1_000)));
    assert_eq!(lookup(1_002).await.expect("lookup"), Some((2, 1_002)));
    assert_eq!(lookup(1_500).await.expect("lookup"), Some((5, 2_000)));
    assert_eq!(lookup(17_003).await.expect("lookup"), Some((83, 17_003)));
    assert_eq!(lookup(20_004).await.expect("lookup"), Some((99, 20_004)));
    assert_eq!(
        lookup(20_005).await.expect("lookup"),
        None,
        "all records older"
    );
}

#[test]
fn offset_for_timestamp_finds_the_first_record_at_or_after() {
    run_on_test_executor(|| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p-0");
        let small = LogConfig {
            segment_bytes: 400,
            index_interval_bytes: 0,
            ..config()
        };
        let log = PartitionLog::open(path.clone(), small.clone())
            .await
            .expect("open");
        assert_eq!(log.offset_for_timestamp(0).await.expect("empty log"), None);
        let mut last = 0;
        for index in 0..20 {
            // Batch `index` holds offsets 5*index.. with timestamps 1000*(index+1) + 0..4.
            let batch = batch_spanning(5, 1_000 * (index + 1));
            last = log.append(&batch, 0).expect("append").last_offset;
        }
        log.wait_written(last).await.expect("written");
        assert!(log_files(&path).len() > 2);
        check_timestamp_lookups(&log).await;
        log.close().await.expect("close");
        let log = PartitionLog::open(path, small).await.expect("reopen");
        check_timestamp_lookups(&log).await;
        log.close().await.expect("close");
    });
}

#[test]
fn log_append_time_stamps_batches_and_answers_lookups_with_it() {
    run_on_test_executor(|| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let appended = LogConfig {
            timestamp_type: TimestampType::LogAppendTime,
            ..config()
        };
        let log = PartitionLog::open(dir.path().to_path_buf(), appended)
            .await
            .expect("open");
        let first = log.append(&batch_spanning(4, 10), 77_000).expect("append");
        assert_eq!(first.log_append_time_ms, 77_000);
        let second = log.append(&batch_spanning(4, 10), 88_000).expect("append");
        log.wait_written(second.last_offset).await.expect("written");
        let found = headers(&log.read(0, 1).await.expect("read"));
        assert!(found[0].is_log_append_time());
        assert_eq!(found[0].max_timestamp, 77_000);
        assert_eq!(
            log.offset_for_timestamp(77_001).await.expect("lookup"),
            Some((4, 88_000))
        );
        assert_eq!(
            log.offset_for_timestamp(12).await.expect("lookup"),
            Some((0, 77_000))
        );
        log.close().await.expect("close");
    });
}

#[test]
fn retention_deletes_old_segments_and_moves_the_log_start() {
    run_on_test_executor(|| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let retained = LogConfig {
            segment_bytes: 300,
            retention_ms: 10_000,
            ..config()
        };
        let log = PartitionLog::open_with_tail_cache(dir.path().to_path_buf(), retained, 0)
            .await
            .expect("open");
        // 30 batches, timestamps 1_000 ..= 30_000, about 3 per segment.
        let mut last = 0;
        for index in 0..30 {
            last = log
                .append(&sample_batch(0, 3, 1_000 * (index + 1)), 0)
                .expect("append")
                .last_offset;
        }
        log.wait_written(last).await.expect("written");
        let segments_before = log_files(dir.path()).len();
        assert_eq!(log.enforce_retention(5_000).await.expect("nothing old"), 0);
        let deleted = log.enforce_retention(25_000).await.expect("retention");
        assert!(deleted > 0);
        assert_eq!(log_files(dir.path()).len(), segments_before - deleted);
        let start = log.log_start_offset();
        assert!(start > 0);
        let oldest = headers(&log.read(start, 1).await.expect("read at start"));
        assert!(
            oldest[0].max_timestamp >= 15_000 - 3_000,
            "only old segments went"
        );
        assert!(matches!(
            log.read(0, 100).await,
            Err(LogError::OffsetOutOfRange { .. })
        ));
        assert_eq!(
            read_everything(&log, start, 1 << 20)
                .await
                .last()
                .map(|h| h.last_offset()),
            Some(89)
        );
        // Everything expired: the active segment still stays.
        log.enforce_retention(1_000_000).await.expect("retention");
        assert_eq!(log_files(dir.path()).len(), 1);
        assert_eq!(log.high_watermark(), 90);
        log.close().await.expect("close");
    });
}

#[test]
fn size_retention_keeps_the_newest_bytes() {
    run_on_test_executor(|| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let retained = LogConfig {
            segment_bytes: 300,
            retention_ms: -1,
            retention_bytes: 600,
            ..config()
        };
        let log = PartitionLog::open(dir.path().to_path_buf(), retained)
            .await
            .expect("open");
        append_batches(&log, 30, 1_000).await;
        assert!(log.enforce_retention(0).await.expect("retention") > 0);
        log.close()
            .await
            .expect("close trims the active segment's preallocation");
        let total: u64 = log_files(dir.path())
            .iter()
            .map(|file| std::fs::metadata(file).expect("stat").len())
            .sum();
        let sizes: Vec<u64> = log_files(dir.path())
            .iter()
            .map(|file| std::fs::metadata(file).expect("stat").len())
            .collect();
        assert!((600..900).contains(&total), "kept {total} bytes: {sizes:?}");
    });
}

#[test]
fn delete_removes_the_partition_directory() {
    run_on_test_executor(|| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("topic-3");
        let log = PartitionLog::open(path.clone(), config())
            .await
            .expect("open");
        append_batches(&log, 5, 1).await;
        log.delete().await.expect("delete");
        assert!(!path.exists());
        assert!(matches!(
            log.append(&sample_batch(0, 1, 1), 0),
            Err(LogError::Closed)
        ));
    });
}
