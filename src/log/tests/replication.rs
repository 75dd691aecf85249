//! The log as a replica: a high watermark the replication layer owns, reads
//! for followers past it, batches copied from a leader unchanged (offsets,
//! leader epoch, producer state), and the copy surviving a restart.

use bytes::Bytes;

use crate::runtime::memlock::run_on_test_executor;

use crate::protocol::batch_builder::ControlType;
use crate::protocol::record_batch::tests::sample_batch;

use crate::replication::leader_epochs::EpochEndOffset;

use super::super::{LogConfig, LogError, PartitionLog};
use super::*;

/// Every batch of `leader` from `offset` on, as a follower fetch sees them.
async fn fetch_as_follower(leader: &PartitionLog, offset: i64) -> Vec<Bytes> {
    let mut batches = Vec::new();
    let mut next = offset;
    while next < leader.written_end_offset() {
        let read = leader
            .read_for_replica(next, 1 << 20)
            .await
            .expect("replica read");
        let last = read.batches.last().expect("a batch below the written end");
        next = BatchHeader::parse(last).expect("header").last_offset() + 1;
        batches.extend(read.batches);
    }
    batches
}

#[test]
fn a_replicated_log_shows_consumers_only_what_its_high_watermark_allows() {
    run_on_test_executor(|| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = PartitionLog::open(dir.path().join("p-0"), config())
            .await
            .expect("open");
        append_batches(&log, 2, 1_000).await;
        log.replicate(3);
        assert_eq!(log.high_watermark(), 3);
        let last = append_batches(&log, 2, 2_000).await;
        assert_eq!(log.written_end_offset(), last + 1);
        assert_eq!(log.high_watermark(), 3, "writes alone do not move it");

        // Consumers read below it; past it (up to the log end) they get
        // nothing, as Kafka answers, and past the log end out of range.
        let read = log.read(0, 1 << 20).await.expect("read");
        assert_eq!(headers(&read).len(), 1);
        assert_eq!(read.high_watermark, 3);
        let ahead = log.read(6, 1 << 20).await.expect("between hw and end");
        assert!(ahead.batches.is_empty());
        assert!(matches!(
            log.read(last + 2, 1 << 20).await,
            Err(LogError::OffsetOutOfRange { .. })
        ));
        // Followers read everything written.
        assert_eq!(fetch_as_follower(&log, 0).await.len(), 4);
        assert!(log
            .read_for_replica(12, 1 << 20)
            .await
            .expect("at end")
            .batches
            .is_empty());
        assert!(matches!(
            log.read_for_replica(13, 1 << 20).await,
            Err(LogError::OffsetOutOfRange { .. })
        ));

        // It moves forward only, never past the written end, and wakes fetches.
        let woken = log.subscribe();
        assert!(log.advance_high_watermark(9));
        assert!(woken.await.is_ok());
        assert!(!log.advance_high_watermark(6));
        assert!(log.advance_high_watermark(100));
        assert_eq!(log.high_watermark(), 12);
        assert_eq!(log.last_stable_offset(), 12);
        log.close().await.expect("close");
    });
}

#[test]
fn a_follower_holds_the_leaders_batches_unchanged_and_survives_a_restart() {
    run_on_test_executor(|| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let leader = PartitionLog::open(dir.path().join("leader"), config())
            .await
            .expect("open leader");
        leader.set_leader_epoch(5);
        append_batches(&leader, 3, 1_000).await;
        let follower_dir = dir.path().join("follower");
        let follower = PartitionLog::open(follower_dir.clone(), config())
            .await
            .expect("open follower");
        follower.replicate(0);

        let copied = fetch_as_follower(&leader, 0).await;
        for batch in &copied {
            follower
                .append_replicated(batch.clone(), 0)
                .expect("append at the log end");
        }
        // A batch that does not continue the log is refused.
        assert!(matches!(
            follower.append_replicated(copied[0].clone(), 0),
            Err(LogError::InvalidBatch(_))
        ));
        follower.wait_written(8).await.expect("written");
        assert_eq!(follower.high_watermark(), 0, "nothing committed yet");
        follower.advance_high_watermark(leader.high_watermark());
        let held = fetch_as_follower(&follower, 0).await;
        assert_eq!(held, copied, "the same bytes at the same offsets");
        assert!(headers(&follower.read(0, 1 << 20).await.expect("read"))
            .iter()
            .all(|header| header.partition_leader_epoch == 5));
        follower.close().await.expect("close");

        let reopened = PartitionLog::open(follower_dir, config())
            .await
            .expect("reopen");
        assert_eq!(reopened.log_end_offset(), 9);
        assert_eq!(fetch_as_follower(&reopened, 0).await, copied);
        reopened.close().await.expect("close");
        leader.close().await.expect("close");
    });
}

#[test]
fn a_follower_that_becomes_leader_still_knows_each_producers_last_batches() {
    run_on_test_executor(|| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let leader = PartitionLog::open(dir.path().join("leader"), config())
            .await
            .expect("open leader");
        let mut originals = Vec::new();
        for index in 0..3 {
            let batch = producer_batch(11, 0, index * RECORDS_PER_BATCH, false);
            originals.push(leader.append_from_producer(&batch, 1_000).expect("append"));
        }
        leader.wait_written(8).await.expect("written");
        let follower = PartitionLog::open(dir.path().join("follower"), config())
            .await
            .expect("open follower");
        follower.replicate(0);
        for batch in fetch_as_follower(&leader, 0).await {
            follower.append_replicated(batch, 1_000).expect("replicate");
        }
        // The producer retries its last batch against the new leader.
        let retry = producer_batch(11, 0, 2 * RECORDS_PER_BATCH, false);
        let answer = follower
            .append_from_producer(&retry, 2_000)
            .expect("a duplicate");
        assert_eq!(
            (answer.base_offset, answer.last_offset),
            (originals[2].base_offset, originals[2].last_offset)
        );
        assert_eq!(follower.log_end_offset(), 9, "nothing appended");
        // And its next sequence continues.
        let next = producer_batch(11, 0, 3 * RECORDS_PER_BATCH, false);
        assert_eq!(
            follower
                .append_from_producer(&next, 2_000)
                .expect("next")
                .base_offset,
            9
        );
        follower.close().await.expect("close");
        leader.close().await.expect("close");
    });
}

#[test]
fn truncation_cuts_at_batch_boundaries_and_the_log_goes_on_from_there() {
    run_on_test_executor(|| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = PartitionLog::open(dir.path().join("p-0"), config())
            .await
            .expect("open");
        log.set_leader_epoch(3);
        log.replicate(0);
        append_batches(&log, 5, 1_000).await;
        log.advance_high_watermark(15);
        // An offset inside batch [9, 11] cuts before that batch.
        let log = log.truncate_to(10).await.expect("truncate");
        assert_eq!(log.log_end_offset(), 9);
        assert_eq!(log.written_end_offset(), 9);
        assert_eq!(log.high_watermark(), 9, "capped at the new end");
        assert_eq!(read_everything(&log, 0, 1 << 20).await.len(), 3);
        // Appends continue at the cut, stamped with the same epoch.
        let info = log
            .append(&sample_batch(0, RECORDS_PER_BATCH, 5_000), 0)
            .expect("append");
        assert_eq!(info.base_offset, 9);
        log.wait_written(info.last_offset).await.expect("written");
        let read = log.read_for_replica(9, 1 << 20).await.expect("read");
        assert_eq!(headers(&read)[0].partition_leader_epoch, 3);
        // Emptied and restarted below its start.
        let log = log.truncate_to(0).await.expect("truncate fully");
        assert!(log.is_empty());
        assert_eq!(log.log_end_offset(), 0);
        log.close().await.expect("close");
    });
}

#[test]
fn truncation_across_segments_removes_later_ones_and_rebuilds_indexes() {
    run_on_test_executor(|| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p-0");
        let small = LogConfig {
            segment_bytes: 1_000,
            ..config()
        };
        let log = PartitionLog::open(path.clone(), small.clone())
            .await
            .expect("open");
        append_batches(&log, 60, 1_000).await;
        let segments_before = log_files(&path).len();
        assert!(segments_before > 4, "{segments_before} segments");
        let log = log.truncate_to(60).await.expect("truncate");
        assert_eq!(log.log_end_offset(), 60);
        let segments_after = log_files(&path).len();
        assert!(segments_after < segments_before);
        check_every_offset(&log).await;
        append_batches(&log, 10, 9_000).await;
        assert_eq!(log.log_end_offset(), 90);
        check_every_offset(&log).await;
        log.close().await.expect("close");
        // A restart sees the same log.
        let reopened = PartitionLog::open(path, small).await.expect("reopen");
        assert_eq!(reopened.log_end_offset(), 90);
        check_every_offset(&reopened).await;
        reopened.close().await.expect("close");
    });
}

#[test]
fn truncation_rolls_producer_state_back_with_the_log() {
    run_on_test_executor(|| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = PartitionLog::open(dir.path().join("p-0"), config())
            .await
            .expect("open");
        for index in 0..5 {
            let batch = producer_batch(21, 0, index * RECORDS_PER_BATCH, false);
            log.append_from_producer(&batch, 1_000).expect("append");
        }
        log.wait_written(14).await.expect("written");
        let log = log.truncate_to(9).await.expect("truncate");
        // Batch 2 [6, 8] is still there: its retry is a duplicate.
        let retry = producer_batch(21, 0, 2 * RECORDS_PER_BATCH, false);
        let answer = log.append_from_producer(&retry, 2_000).expect("duplicate");
        assert_eq!((answer.base_offset, answer.last_offset), (6, 8));
        // Batch 3 was cut: its retry appends again, at the new end.
        let again = producer_batch(21, 0, 3 * RECORDS_PER_BATCH, false);
        assert_eq!(
            log.append_from_producer(&again, 2_000)
                .expect("append")
                .base_offset,
            9
        );
        log.close().await.expect("close");
    });
}

#[test]
fn truncation_before_an_abort_marker_reopens_the_transaction() {
    run_on_test_executor(|| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = PartitionLog::open(dir.path().join("p-0"), config())
            .await
            .expect("open");
        append_batches(&log, 1, 1_000).await;
        let batch = producer_batch(31, 0, 0, true);
        log.append_from_producer(&batch, 1_000)
            .expect("transactional");
        let marker = log
            .append_marker(31, 0, 0, ControlType::Abort, 2_000)
            .expect("abort marker");
        assert_eq!(marker.base_offset, 6);
        log.wait_written(6).await.expect("written");
        assert!(!log.has_open_transaction(31, 0));
        let aborted = log.read_committed(0, 1 << 20).await.expect("read");
        assert_eq!(aborted.aborted_transactions.len(), 1);

        let log = log.truncate_to(6).await.expect("truncate");
        assert!(log.has_open_transaction(31, 0), "its marker was cut");
        assert_eq!(
            log.last_stable_offset(),
            3,
            "held at the transaction's start"
        );
        let read = log.read_committed(0, 1 << 20).await.expect("read");
        assert!(read.aborted_transactions.is_empty());
        log.close().await.expect("close");
    });
}

#[test]
fn the_leader_epoch_cache_follows_appends_truncations_and_restarts() {
    run_on_test_executor(|| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p-0");
        let leader = PartitionLog::open(path.clone(), config())
            .await
            .expect("open");
        append_batches(&leader, 2, 1_000).await;
        leader.set_leader_epoch(3);
        append_batches(&leader, 2, 2_000).await;
        let end = |epoch, end_offset| EpochEndOffset { epoch, end_offset };
        assert_eq!(leader.end_offset_for_epoch(0), end(0, 6));
        assert_eq!(leader.end_offset_for_epoch(2), end(0, 6));
        assert_eq!(leader.end_offset_for_epoch(3), end(3, 12));
        assert_eq!(leader.end_offset_for_epoch(4), EpochEndOffset::UNDEFINED);
        // The writer task stores the checkpoint after the round; close waits for it.
        leader.close().await.expect("close");
        let checkpoint =
            std::fs::read_to_string(path.join("leader-epoch-checkpoint")).expect("checkpoint");
        assert_eq!(checkpoint, "0\n2\n0 0\n3 6\n");
        let leader = PartitionLog::open(path.clone(), config())
            .await
            .expect("reopen");
        leader.set_leader_epoch(3);

        // A follower copying the batches gets the same epochs.
        let follower = PartitionLog::open(dir.path().join("follower"), config())
            .await
            .expect("open follower");
        follower.replicate(0);
        for batch in fetch_as_follower(&leader, 0).await {
            follower.append_replicated(batch, 0).expect("replicate");
        }
        assert_eq!(follower.leader_epochs(), leader.leader_epochs());
        follower.close().await.expect("close");

        // Cutting epoch 3 away leaves epoch 0 the latest, on disk too.
        let leader = leader.truncate_to(6).await.expect("truncate");
        assert_eq!(leader.end_offset_for_epoch(0), end(0, 6));
        assert_eq!(leader.end_offset_for_epoch(3), EpochEndOffset::UNDEFINED);
        leader.close().await.expect("close");
        let checkpoint =
            std::fs::read_to_string(path.join("leader-epoch-checkpoint")).expect("checkpoint");
        assert_eq!(checkpoint, "0\n1\n0 0\n");

        // A log without a checkpoint (an older release) rebuilds it from its batches.
        std::fs::remove_file(path.join("leader-epoch-checkpoint")).expect("remove");
        let reopened = PartitionLog::open(path.clone(), config())
            .await
            .expect("reopen");
        reopened.set_leader_epoch(7);
        append_batches(&reopened, 1, 3_000).await;
        assert_eq!(reopened.end_offset_for_epoch(0), end(0, 6));
        assert_eq!(reopened.end_offset_for_epoch(7), end(7, 9));
        reopened.close().await.expect("close");
        let reopened = PartitionLog::open(path, config()).await.expect("reopen");
        assert_eq!(reopened.end_offset_for_epoch(0), end(0, 6));
        reopened.close().await.expect("close");
    });
}
