//! Idempotent producers through the log: duplicates answered with their
//! original offsets, fencing, expiry, and the producer state surviving a
//! graceful restart, a crash, a snapshot at a roll and a corrupt snapshot.

use crate::runtime::memlock::run_on_test_executor;

use super::super::producer_snapshot;
use super::super::producer_state::ProducerBatch;
use super::super::{AppendInfo, LogConfig, LogError, PartitionLog};
use super::*;

const PRODUCER: i64 = 7;

fn sequenced(producer_id: i64, index: i32) -> Vec<u8> {
    producer_batch(producer_id, 0, index * RECORDS_PER_BATCH, false)
}

/// Appends batches `from..to` of `PRODUCER` (epoch 0) and waits for them.
async fn produce(log: &PartitionLog, from: i32, to: i32) -> Vec<AppendInfo> {
    let mut infos = Vec::new();
    for index in from..to {
        let info = log
            .append_from_producer(&sequenced(PRODUCER, index), 1_000)
            .expect("append");
        infos.push(info);
    }
    if let Some(last) = infos.last() {
        log.wait_written(last.last_offset).await.expect("written");
    }
    infos
}

/// The last five batches are answered with their original offsets and
/// append nothing, the sixth from the end is out of order, and the next
/// sequence continues the log (added to `infos`).
async fn check_state_survived(log: &PartitionLog, infos: &mut Vec<AppendInfo>) {
    let end = log.log_end_offset();
    let count = infos.len() as i32;
    for index in count - 5..count {
        let retry = log
            .append_from_producer(&sequenced(PRODUCER, index), 2_000)
            .expect("duplicate");
        let original = infos[index as usize];
        assert_eq!(
            (retry.base_offset, retry.last_offset),
            (original.base_offset, original.last_offset),
            "batch {index}"
        );
        assert_eq!(retry.log_append_time_ms, -1);
    }
    assert_eq!(log.log_end_offset(), end, "duplicates append nothing");
    for index in [count - 6, count + 1] {
        assert!(matches!(
            log.append_from_producer(&sequenced(PRODUCER, index), 2_000),
            Err(LogError::OutOfOrderSequence)
        ));
    }
    let next = log
        .append_from_producer(&sequenced(PRODUCER, count), 2_000)
        .expect("next");
    assert_eq!(next.base_offset, end);
    log.wait_written(next.last_offset).await.expect("written");
    infos.push(next);
}

#[test]
fn duplicates_are_recognised_after_a_graceful_restart() {
    run_on_test_executor(|| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = PartitionLog::open(dir.path().to_path_buf(), config())
            .await
            .expect("open");
        let mut infos = produce(&log, 0, 8).await;
        check_state_survived(&log, &mut infos).await;
        log.close().await.expect("close");
        let snapshots = files_ending(dir.path(), ".snapshot");
        assert_eq!(snapshots.len(), 1);
        assert!(snapshots[0].ends_with("00000000000000000027.snapshot"));
        let log = PartitionLog::open(dir.path().to_path_buf(), config())
            .await
            .expect("reopen");
        check_state_survived(&log, &mut infos).await;
        log.close().await.expect("close");
    });
}

#[test]
fn duplicates_are_recognised_after_a_crash() {
    run_on_test_executor(|| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = PartitionLog::open(dir.path().to_path_buf(), config())
            .await
            .expect("open");
        let mut infos = produce(&log, 0, 8).await;
        // A crash: no close, so no snapshot; the state comes from the log.
        drop(log);
        assert!(files_ending(dir.path(), ".snapshot").is_empty());
        let log = PartitionLog::open(dir.path().to_path_buf(), config())
            .await
            .expect("reopen");
        check_state_survived(&log, &mut infos).await;
        log.close().await.expect("close");
    });
}

#[test]
fn a_roll_writes_a_snapshot_and_reopen_replays_only_the_tail() {
    run_on_test_executor(|| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        // Three batches per segment: segments start at 0, 9, 18, 27.
        let small = LogConfig {
            segment_bytes: 300,
            ..config()
        };
        let log = PartitionLog::open(dir.path().to_path_buf(), small.clone())
            .await
            .expect("open");
        let mut infos = produce(&log, 0, 8).await;
        let snapshots = files_ending(dir.path(), ".snapshot");
        assert_eq!(snapshots.len(), 2, "{snapshots:?}");
        assert!(snapshots[0].ends_with("00000000000000000009.snapshot"));
        infos.extend(produce(&log, 8, 11).await);
        let snapshots = files_ending(dir.path(), ".snapshot");
        assert_eq!(snapshots.len(), 2, "the newest two are kept");
        assert!(snapshots[0].ends_with("00000000000000000018.snapshot"));
        assert!(snapshots[1].ends_with("00000000000000000027.snapshot"));

        // The snapshot at a roll holds exactly the batches below the new segment.
        let bytes = std::fs::read(&snapshots[1]).expect("read snapshot");
        let (offset, mut state) = producer_snapshot::decode(&bytes).expect("decodes");
        assert_eq!(offset, 27);
        let recent = &state.producer(PRODUCER).expect("known").recent;
        assert_eq!(recent.back().map(|batch| batch.last_offset), Some(26));

        // Mark the snapshot with a producer the log never saw: after the
        // crash it is known only if recovery started from this snapshot.
        let ghost = ProducerBatch {
            producer_id: 99,
            producer_epoch: 0,
            first_sequence: 0,
            last_sequence: 2,
            transactional: false,
            marker: None,
        };
        state.apply(&ghost, 0, 2, 1_000);
        let marked_bytes = producer_snapshot::encode(&state, 27);
        std::fs::write(&snapshots[1], marked_bytes).expect("mark snapshot");
        drop(log);

        let log = PartitionLog::open(dir.path().to_path_buf(), small)
            .await
            .expect("reopen");
        assert!(
            log.inner.producers.borrow().producer(99).is_some(),
            "loaded from the snapshot"
        );
        check_state_survived(&log, &mut infos).await;
        log.close().await.expect("close");
    });
}

#[test]
fn a_corrupt_snapshot_is_ignored_and_the_state_rebuilt_from_the_log() {
    run_on_test_executor(|| async move {
        type Damage = fn(&mut Vec<u8>);
        let damages: [(&str, Damage); 3] = [
            ("flipped byte", |bytes| bytes[20] ^= 0x01),
            ("cut short", |bytes| bytes.truncate(15)),
            ("garbage", |bytes| *bytes = b"not a snapshot".to_vec()),
        ];
        for (name, damage) in damages {
            let dir = tempfile::tempdir().expect("tempdir");
            let log = PartitionLog::open(dir.path().to_path_buf(), config())
                .await
                .expect("open");
            let mut infos = produce(&log, 0, 8).await;
            log.close().await.expect("close");
            let snapshot = files_ending(dir.path(), ".snapshot")
                .pop()
                .expect("snapshot");
            let mut bytes = std::fs::read(&snapshot).expect("read");
            damage(&mut bytes);
            std::fs::write(&snapshot, bytes).expect("damage");
            let log = PartitionLog::open(dir.path().to_path_buf(), config())
                .await
                .expect("reopen");
            assert!(
                !snapshot.exists(),
                "{name}: the unreadable snapshot is removed"
            );
            check_state_survived(&log, &mut infos).await;
            log.close().await.expect("close");
        }
    });
}

#[test]
fn fenced_epochs_and_epoch_bumps_reach_the_caller() {
    run_on_test_executor(|| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = PartitionLog::open(dir.path().to_path_buf(), config())
            .await
            .expect("open");
        log.append_from_producer(&producer_batch(PRODUCER, 1, 0, false), 0)
            .expect("first");
        assert!(matches!(
            log.append_from_producer(&producer_batch(PRODUCER, 0, 3, false), 0),
            Err(LogError::InvalidProducerEpoch)
        ));
        assert!(matches!(
            log.append_from_producer(&producer_batch(PRODUCER, 2, 3, false), 0),
            Err(LogError::OutOfOrderSequence)
        ));
        let bumped = log
            .append_from_producer(&producer_batch(PRODUCER, 2, 0, false), 0)
            .expect("a new epoch starts at 0");
        assert_eq!(bumped.base_offset, 3);
        let control = crate::protocol::batch_builder::control_batch(
            PRODUCER,
            2,
            0,
            crate::protocol::batch_builder::ControlType::Commit,
            0,
        );
        assert!(matches!(
            log.append_from_producer(&control, 0),
            Err(LogError::InvalidTxnState)
        ));
        assert_eq!(log.log_end_offset(), 6, "refused batches append nothing");
        log.close().await.expect("close");
    });
}

#[test]
fn idle_producers_expire_unless_a_transaction_is_open() {
    run_on_test_executor(|| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = PartitionLog::open(dir.path().to_path_buf(), config())
            .await
            .expect("open");
        log.append_from_producer(&producer_batch(1, 0, 0, false), 10_000)
            .expect("plain");
        log.append_from_producer(&producer_batch(2, 0, 0, true), 10_000)
            .expect("transactional");
        assert_eq!(log.expire_producers(10_999, 1_000), 0);
        assert_eq!(log.expire_producers(11_000, 1_000), 1);
        assert!(
            log.append_from_producer(&producer_batch(1, 0, 30, false), 11_000)
                .is_ok(),
            "an expired producer is unknown again: any sequence"
        );
        assert!(
            matches!(
                log.append_from_producer(&producer_batch(2, 0, 3, false), 11_000),
                Err(LogError::InvalidTxnState)
            ),
            "the open transaction kept its producer"
        );
        log.close().await.expect("close");
    });
}
