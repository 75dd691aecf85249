//! Restarts, torn tails, durability waits and the release of waiters on close.

use std::path::Path;

use crate::config::FlushPolicy;
use crate::protocol::record_batch::tests::sample_batch;
use crate::runtime::memlock::run_on_test_executor;

use super::super::{LogConfig, LogError, PartitionLog};
use super::*;

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
