//! Reading a coordinator's internal partition back at start-up: the group
//! coordinator (`__consumer_offsets`) and the transaction coordinator
//! (`__transaction_state`) both rebuild their state by visiting every batch
//! of the partition, oldest first. Runs on the partition's owning shard.

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

/// Hands every batch of `log` between its log start offset and its high
/// watermark to `visit`, in log order, with its parsed header and the first
/// offset not seen before (a read can return a batch that starts below the
/// offset asked for: records below it were already visited). Stops at a
/// batch whose header does not parse, with a warning naming `what`.
pub async fn visit_batches(
    log: &PartitionLog,
    what: &str,
    mut visit: impl FnMut(&BatchHeader, &Bytes, i64),
) -> Result<(), LogError> {
    let mut next = log.log_start_offset();
    let end = log.high_watermark();
    while next < end {
        let read = log.read(next, REPLAY_CHUNK_BYTES).await?;
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
