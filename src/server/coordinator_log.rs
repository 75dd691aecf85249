//! A coordinator's internal partition as a log of its state: the group
//! coordinator (`__consumer_offsets`) and the transaction coordinator
//! (`__transaction_state`) both rebuild their state at start-up by visiting
//! every batch, oldest first, and keep the partition short by appending
//! their live state as a snapshot and deleting the sealed segments below it
//! (Kafka compacts these topics instead; the effect for replay is the same).
//! Runs on the partition's owning shard.

use std::cell::Cell;
use std::future::Future;

use bytes::Bytes;

use crate::log::{LogError, PartitionLog};
use crate::protocol::record_batch::BatchHeader;

/// Bytes read at once while replaying a partition.
const REPLAY_CHUNK_BYTES: usize = 1 << 20;

/// What replaying a partition found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReplayStats {
    pub records: u64,
    /// Records that did not decode (logged and skipped, as Kafka does).
    pub skipped: u64,
}

/// Hands every batch of `log` between its log start offset and its
/// written end (a new leader's whole log: what it has is what survives, as
/// Kafka's coordinators load to the log end) to `visit`, in log order, with its parsed header and the first
/// offset not seen before (a read can return a batch that starts below the
/// offset asked for: records below it were already visited). Stops at a
/// batch whose header does not parse, with a warning naming `what`.
pub async fn visit_batches(
    log: &PartitionLog,
    what: &str,
    mut visit: impl FnMut(&BatchHeader, &Bytes, i64),
) -> Result<(), LogError> {
    let mut next = log.log_start_offset();
    let end = log.written_end_offset();
    while next < end {
        let read = log.read_for_replica(next, REPLAY_CHUNK_BYTES).await?;
        if read.batches.is_empty() {
            break;
        }
        for batch in &read.batches {
            let Ok(header) = BatchHeader::parse(batch) else {
                tracing::warn!(
                    offset = next,
                    partition = what,
                    "unreadable batch; stopping replay"
                );
                return Ok(());
            };
            visit(&header, batch, next);
            next = next.max(header.last_offset() + 1);
        }
    }
    Ok(())
}

/// When a snapshot is worth writing: more than `min_records` records since
/// the last one, and more than `ratio` times the live records.
#[derive(Debug, Clone, Copy)]
pub struct SnapshotPolicy {
    pub min_records: i64,
    pub ratio: i64,
}

/// One compaction step: runs `write_snapshot` (which appends the live state
/// and moves `snapshot_offset` to its first offset) when `policy` says the
/// partition grew enough since `snapshot_offset` for its `live_records`
/// (`None`: no snapshot may be written now), then
/// deletes the sealed segments wholly below `snapshot_offset`. Returns the
/// segments deleted. `topic` and `partition` name it in warnings.
pub async fn compact(
    log: &PartitionLog,
    topic: &str,
    partition: i32,
    snapshot_offset: &Cell<i64>,
    live_records: Option<i64>,
    policy: SnapshotPolicy,
    write_snapshot: impl Future<Output = Result<(), i16>>,
) -> usize {
    let since_snapshot = log.log_end_offset() - snapshot_offset.get();
    let due = live_records.is_some_and(|live| {
        since_snapshot > policy.min_records.max(policy.ratio.saturating_mul(live))
    });
    if due {
        if let Err(code) = write_snapshot.await {
            tracing::warn!(topic, partition, code, "cannot write snapshot");
            return 0;
        }
    }
    match log.delete_segments_before(snapshot_offset.get()).await {
        Ok(deleted) => deleted,
        Err(error) => {
            tracing::warn!(topic, partition, %error, "cannot delete segments below snapshot");
            0
        }
    }
}
