//! Appends and reads: round trips, the containing batch, KIP-74, segment rolls.

use crate::protocol::record_batch::tests::sample_batch;
use crate::runtime::memlock::run_on_test_executor;

use super::super::{LogConfig, LogError, PartitionLog};
use super::*;

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
