//! ListOffsets by timestamp, LogAppendTime, retention and deletion.

use crate::protocol::record_batch::tests::sample_batch;
use crate::runtime::memlock::run_on_test_executor;

use super::super::{LogConfig, LogError, PartitionLog, TimestampType};
use super::*;

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
    assert_eq!(
        log.max_timestamp_offset().await.expect("max timestamp"),
        Some((99, 20_004))
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
        assert_eq!(log.max_timestamp_offset().await.expect("empty log"), None);
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
fn offset_for_timestamp_never_answers_below_the_log_start() {
    run_on_test_executor(|| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = PartitionLog::open(dir.path().join("p-0"), config())
            .await
            .expect("open");
        // Offsets 0..9 with timestamps 1000..1009, one batch.
        let last = log
            .append(&batch_spanning(10, 1_000), 0)
            .expect("append")
            .last_offset;
        log.wait_written(last).await.expect("written");
        assert_eq!(
            log.offset_for_timestamp(1_001).await.expect("lookup"),
            Some((1, 1_001))
        );
        // DeleteRecords before 4 leaves 0..3 in the batch, no longer in the log.
        log.delete_records(4).await.expect("delete records");
        for target in [0, 1_001, 1_004] {
            assert_eq!(
                log.offset_for_timestamp(target).await.expect("lookup"),
                Some((4, 1_004)),
                "target {target}"
            );
        }
        assert_eq!(
            log.offset_for_timestamp(1_007).await.expect("lookup"),
            Some((7, 1_007))
        );
        assert_eq!(log.offset_for_timestamp(1_010).await.expect("lookup"), None);
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
fn size_bytes_counts_written_batches_across_retention_and_reopen() {
    run_on_test_executor(|| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let retained = LogConfig {
            segment_bytes: 300,
            retention_ms: -1,
            retention_bytes: 600,
            ..config()
        };
        let log = PartitionLog::open(dir.path().to_path_buf(), retained.clone())
            .await
            .expect("open");
        assert_eq!(log.size_bytes(), 0);
        let batch_bytes = sample_batch(0, RECORDS_PER_BATCH, 1_000).len() as u64;
        append_batches(&log, 30, 1_000).await;
        // Every batch, in every segment; the preallocated tail is not counted.
        assert_eq!(log.size_bytes(), 30 * batch_bytes);
        assert!(log.enforce_retention(0).await.expect("retention") > 0);
        let kept = log.size_bytes();
        assert!((600..30 * batch_bytes).contains(&kept), "kept {kept}");
        log.close().await.expect("close trims the preallocation");
        // What DescribeLogDirs reports is what the segment files hold.
        let on_disk: u64 = log_files(dir.path())
            .iter()
            .map(|file| std::fs::metadata(file).expect("stat").len())
            .sum();
        assert_eq!(kept, on_disk);
        let reopened = PartitionLog::open(dir.path().to_path_buf(), retained)
            .await
            .expect("reopen");
        assert_eq!(reopened.size_bytes(), kept);
        reopened.close().await.expect("close");
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
