//! The log as a replica: a high watermark the replication layer owns, reads
//! for followers past it, batches copied from a leader unchanged (offsets,
//! leader epoch, producer state), and the copy surviving a restart.

use bytes::Bytes;

use crate::runtime::memlock::run_on_test_executor;

use super::super::{LogError, PartitionLog};
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

        // Consumers read below it; a fetch past it is out of range.
        let read = log.read(0, 1 << 20).await.expect("read");
        assert_eq!(headers(&read).len(), 1);
        assert_eq!(read.high_watermark, 3);
        assert!(matches!(
            log.read(6, 1 << 20).await,
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
