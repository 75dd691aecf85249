//! Transactions through the log: the last stable offset, read_committed
//! reads and their aborted transactions, markers from coordinators, the
//! `.txnindex` files across restarts, truncation and retention.

use crate::protocol::batch_builder::{encode_batch, BatchProducer, ControlType, KeyValue};
use crate::protocol::record_batch::tests::sample_batch;
use crate::runtime::memlock::run_on_test_executor;

use super::super::{AbortedTransaction, LogConfig, LogError, PartitionLog};
use super::*;

const ABORTED: i64 = 7;
const COMMITTED: i64 = 8;

fn plain() -> Vec<u8> {
    sample_batch(0, RECORDS_PER_BATCH, 1_000)
}

async fn append_all(log: &PartitionLog, batches: &[Vec<u8>]) -> i64 {
    let mut last = -1;
    for batch in batches {
        last = log
            .append_from_producer(batch, 1_000)
            .expect("append")
            .last_offset;
    }
    log.wait_written(last).await.expect("written");
    last
}

fn base_offsets(result: &super::super::ReadResult) -> Vec<i64> {
    headers(result)
        .iter()
        .map(|header| header.base_offset)
        .collect()
}

/// Offsets 0..2 plain, 3..5 transaction of `ABORTED`, 6..8 plain, 9 its
/// abort marker, 10..12 transaction of `COMMITTED`, 13 its commit marker.
async fn write_two_transactions(log: &PartitionLog) {
    append_all(
        log,
        &[plain(), producer_batch(ABORTED, 0, 0, true), plain()],
    )
    .await;
    assert_eq!(log.last_stable_offset(), 3, "the open transaction holds it");
    let before_marker = log.read_committed(0, 1 << 20).await.expect("read");
    assert_eq!(base_offsets(&before_marker), vec![0]);
    assert_eq!(before_marker.last_stable_offset, 3);
    assert_eq!(before_marker.high_watermark, 9);
    for offset in [3, 6, 9] {
        let at_or_past = log.read_committed(offset, 1 << 20).await.expect("read");
        assert!(
            at_or_past.batches.is_empty(),
            "{offset} is at or past the LSO"
        );
    }
    let uncommitted = log.read(0, 1 << 20).await.expect("read");
    assert_eq!(base_offsets(&uncommitted), vec![0, 3, 6]);
    assert_eq!(uncommitted.last_stable_offset, 3);

    let marker = log
        .append_marker(ABORTED, 0, 5, ControlType::Abort, 2_000)
        .expect("abort");
    assert_eq!(marker.base_offset, 9);
    log.wait_written(9).await.expect("written");
    append_all(log, &[producer_batch(COMMITTED, 0, 0, true)]).await;
    let commit = log
        .append_marker(COMMITTED, 0, 5, ControlType::Commit, 2_000)
        .expect("commit");
    assert_eq!(commit.base_offset, 13);
    log.wait_written(13).await.expect("written");
}

/// What read_committed sees once both transactions ended.
async fn check_ended_transactions(log: &PartitionLog) {
    assert_eq!(log.last_stable_offset(), 14);
    let aborted = vec![AbortedTransaction {
        producer_id: ABORTED,
        first_offset: 3,
    }];
    let all = log.read_committed(0, 1 << 20).await.expect("read");
    assert_eq!(base_offsets(&all), vec![0, 3, 6, 9, 10, 13]);
    assert_eq!(all.last_stable_offset, 14);
    assert_eq!(all.aborted_transactions, aborted);
    let inside = log.read_committed(4, 1).await.expect("read");
    assert_eq!(base_offsets(&inside), vec![3]);
    assert_eq!(inside.aborted_transactions, aborted);
    let before = log.read_committed(0, 1).await.expect("read");
    assert_eq!(base_offsets(&before), vec![0]);
    assert!(
        before.aborted_transactions.is_empty(),
        "ends before offset 3"
    );
    let after = log.read_committed(10, 1 << 20).await.expect("read");
    assert!(
        after.aborted_transactions.is_empty(),
        "the abort ended at 9"
    );
    let uncommitted = log.read(0, 1 << 20).await.expect("read");
    assert!(uncommitted.aborted_transactions.is_empty());
    assert!(matches!(
        log.read_committed(15, 1).await,
        Err(LogError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn read_committed_stops_at_the_last_stable_offset_and_lists_aborted_transactions() {
    run_on_test_executor(|| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        let log = PartitionLog::open(path.clone(), config())
            .await
            .expect("open");
        write_two_transactions(&log).await;
        check_ended_transactions(&log).await;
        let indexes = files_ending(&path, ".txnindex");
        assert_eq!(indexes.len(), 1);
        assert_eq!(std::fs::metadata(&indexes[0]).expect("stat").len(), 34);

        drop(log); // a crash: the state is rebuilt by replaying the whole log
        let log = PartitionLog::open(path.clone(), config())
            .await
            .expect("reopen");
        check_ended_transactions(&log).await;
        assert_eq!(std::fs::metadata(&indexes[0]).expect("stat").len(), 34);
        log.close().await.expect("close");

        let log = PartitionLog::open(path, config()).await.expect("reopen");
        check_ended_transactions(&log).await;
        log.close().await.expect("close");
    });
}

#[test]
fn an_open_transaction_holds_the_last_stable_offset_across_restarts() {
    run_on_test_executor(|| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        let log = PartitionLog::open(path.clone(), config())
            .await
            .expect("open");
        append_all(
            &log,
            &[plain(), producer_batch(ABORTED, 3, 0, true), plain()],
        )
        .await;
        assert_eq!(log.last_stable_offset(), 3);
        log.close().await.expect("close");
        let log = PartitionLog::open(path.clone(), config())
            .await
            .expect("reopen");
        assert_eq!(log.last_stable_offset(), 3, "from the snapshot");
        drop(log);
        let log = PartitionLog::open(path.clone(), config())
            .await
            .expect("reopen");
        assert_eq!(
            log.last_stable_offset(),
            3,
            "from the snapshot after a crash"
        );
        assert!(matches!(
            log.append_from_producer(&producer_batch(ABORTED, 3, 3, false), 0),
            Err(LogError::InvalidTxnState)
        ));
        assert!(matches!(
            log.append_marker(ABORTED, 2, 0, ControlType::Commit, 0),
            Err(LogError::InvalidProducerEpoch)
        ));
        let commit = log
            .append_marker(ABORTED, 3, 0, ControlType::Commit, 0)
            .expect("commit");
        assert_eq!(log.last_stable_offset(), 3, "until the marker is written");
        log.wait_written(commit.last_offset).await.expect("written");
        assert_eq!(log.last_stable_offset(), 10);
        log.close().await.expect("close");
    });
}

#[test]
fn coordinator_batches_open_transactions_without_sequences() {
    run_on_test_executor(|| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = PartitionLog::open(dir.path().to_path_buf(), config())
            .await
            .expect("open");
        let records = [KeyValue {
            key: b"offset".to_vec(),
            value: Some(b"42".to_vec()),
        }];
        let producer = BatchProducer {
            producer_id: 5,
            producer_epoch: 1,
            transactional: true,
        };
        let offsets = encode_batch(&records, producer, 0);
        log.append(&offsets, 0).expect("first");
        log.append(&offsets, 0)
            .expect("no sequence checks for coordinators");
        let fenced = BatchProducer {
            producer_epoch: 0,
            ..producer
        };
        assert!(matches!(
            log.append(&encode_batch(&records, fenced, 0), 0),
            Err(LogError::InvalidProducerEpoch)
        ));
        let abort = log
            .append_marker(5, 1, 0, ControlType::Abort, 0)
            .expect("abort");
        log.wait_written(abort.last_offset).await.expect("written");
        assert_eq!(log.last_stable_offset(), 3);
        let read = log.read_committed(0, 1 << 20).await.expect("read");
        assert_eq!(
            read.aborted_transactions,
            vec![AbortedTransaction {
                producer_id: 5,
                first_offset: 0
            }]
        );
        log.close().await.expect("close");
    });
}

#[test]
fn index_entries_and_snapshots_past_the_recovered_log_end_are_dropped() {
    run_on_test_executor(|| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        let log = PartitionLog::open(path.clone(), config())
            .await
            .expect("open");
        append_all(&log, &[plain(), producer_batch(ABORTED, 0, 0, true)]).await;
        let marker = log
            .append_marker(ABORTED, 0, 0, ControlType::Abort, 0)
            .expect("abort");
        log.wait_written(marker.last_offset).await.expect("written");
        log.close().await.expect("close");
        assert_eq!(files_ending(&path, ".txnindex").len(), 1);
        assert_eq!(files_ending(&path, ".snapshot").len(), 1);

        // Lose the marker, as a crash before its write reached the disk would.
        let segment = log_files(&path).pop().expect("segment");
        let two_batches = 2 * plain().len() as u64;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&segment)
            .expect("open");
        file.set_len(two_batches).expect("truncate");

        let log = PartitionLog::open(path.clone(), config())
            .await
            .expect("reopen");
        assert_eq!(log.log_end_offset(), 6);
        assert!(files_ending(&path, ".txnindex").is_empty(), "entry dropped");
        assert!(
            files_ending(&path, ".snapshot").is_empty(),
            "snapshot at 7 removed"
        );
        assert_eq!(log.last_stable_offset(), 3, "the transaction is open again");
        let read = log.read_committed(0, 1 << 20).await.expect("read");
        assert!(read.aborted_transactions.is_empty());
        log.close().await.expect("close");
    });
}

#[test]
fn a_txn_index_goes_with_its_segment() {
    run_on_test_executor(|| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        let retained = LogConfig {
            segment_bytes: 300,
            retention_ms: -1,
            retention_bytes: 400,
            ..config()
        };
        let log = PartitionLog::open(path.clone(), retained.clone())
            .await
            .expect("open");
        append_all(&log, &[producer_batch(ABORTED, 0, 0, true)]).await;
        let marker = log
            .append_marker(ABORTED, 0, 0, ControlType::Abort, 0)
            .expect("abort");
        log.wait_written(marker.last_offset).await.expect("written");
        let plain_batches: Vec<Vec<u8>> = (0..10).map(|_| plain()).collect();
        append_all(&log, &plain_batches).await;
        assert_eq!(files_ending(&path, ".txnindex").len(), 1);
        let aborted = log.read_committed(0, 1 << 20).await.expect("read");
        assert_eq!(aborted.aborted_transactions.len(), 1);

        assert!(log.enforce_retention(0).await.expect("retention") > 0);
        assert!(log.log_start_offset() > marker.last_offset);
        assert!(files_ending(&path, ".txnindex").is_empty());
        assert_eq!(log.inner.producers.borrow().aborted().count(), 0);
        log.close().await.expect("close");
        let log = PartitionLog::open(path, retained).await.expect("reopen");
        assert_eq!(log.inner.producers.borrow().aborted().count(), 0);
        log.close().await.expect("close");
    });
}
