//! The fetch path on the partition's owning shard: whole batches starting
//! with the one containing the requested offset (Kafka returns the whole
//! containing batch; clients skip the records before their offset), up to
//! `max_bytes` but at least one batch (KIP-74), only below the high
//! watermark (read_committed: below the last stable offset, with the
//! aborted transactions overlapping what is returned). Recent batches come
//! from the tail cache; older ones from disk via the sparse offset index and
//! bounded `DmaFile::read_at` chunks.

use std::io;
use std::rc::Rc;

use bytes::Bytes;

use crate::protocol::record_batch::BatchHeader;

use super::batch_cursor::{BatchCursor, NextBatch};
use super::limits::{READ_CHUNK_BYTES_MAX, READ_CHUNK_BYTES_MIN};
use super::partition::LogInner;
use super::segment_file::SegmentFile;
use super::{AbortedTransaction, LogError, ReadResult};

/// Fetch `isolation_level` (KIP-98).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isolation {
    /// Everything below the high watermark.
    ReadUncommitted,
    /// Only below the last stable offset, with the aborted transactions.
    ReadCommitted,
    /// A follower's fetch: everything written, past the high watermark too.
    Replica,
}

/// Reads at `offset`: from memory when it can (see [`read_now`]), else from
/// disk.
pub(crate) async fn read(
    inner: &LogInner,
    offset: i64,
    max_bytes: usize,
    isolation: Isolation,
) -> Result<ReadResult, LogError> {
    match read_now(inner, offset, max_bytes, isolation)? {
        ReadNow::Done(result) => Ok(result),
        ReadNow::FromDisk { upper_bound } => {
            let batches = read_from_disk(inner, offset, max_bytes, upper_bound).await?;
            Ok(finish(inner, offset, upper_bound, batches, isolation))
        }
    }
}

/// A read answered without waiting, or the disk read it needs.
pub(crate) enum ReadNow {
    Done(ReadResult),
    /// The tail cache does not reach back to the offset: batches below
    /// `upper_bound` come from the segments.
    FromDisk {
        upper_bound: i64,
    },
}

/// The synchronous part of a read: range checks, nothing to read (a
/// consumer at the high watermark, the common case of a caught-up fetch
/// over many partitions), or batches from the tail cache. No future, no
/// allocation when there is nothing to return.
pub(crate) fn read_now(
    inner: &LogInner,
    offset: i64,
    max_bytes: usize,
    isolation: Isolation,
) -> Result<ReadNow, LogError> {
    let high_watermark = inner.high_watermark.get();
    let log_start_offset = inner.log_start_offset.get();
    let readable_end = match isolation {
        Isolation::Replica => inner.written_end.get(),
        Isolation::ReadUncommitted | Isolation::ReadCommitted => high_watermark,
    };
    // Out of range is past the log end, as Kafka checks it: a consumer
    // ahead of a replicated partition's high watermark (a new leader whose
    // high watermark is still catching up) gets no records, not an error
    // that would reset its position.
    let written_end = inner.written_end.get();
    if offset < log_start_offset || offset > readable_end.max(written_end) {
        return Err(LogError::OffsetOutOfRange {
            offset,
            log_start_offset,
            high_watermark: readable_end,
        });
    }
    // The LSO is a batch boundary (a transaction's first batch, or the high
    // watermark), so "base offset below it" never cuts a batch.
    let upper_bound = match isolation {
        Isolation::ReadUncommitted | Isolation::Replica => readable_end,
        Isolation::ReadCommitted => inner.last_stable_offset(),
    };
    let cached = if offset >= upper_bound {
        Some(Vec::new())
    } else {
        inner
            .tail_cache
            .borrow()
            .read(offset, upper_bound, max_bytes)
    };
    Ok(match cached {
        Some(batches) => ReadNow::Done(finish(inner, offset, upper_bound, batches, isolation)),
        None => ReadNow::FromDisk { upper_bound },
    })
}

/// The answer around `batches`: offsets as they are now, and for
/// read_committed the aborted transactions overlapping what is returned.
fn finish(
    inner: &LogInner,
    offset: i64,
    upper_bound: i64,
    batches: Vec<Bytes>,
    isolation: Isolation,
) -> ReadResult {
    let aborted_transactions = match (isolation, batches.last()) {
        (Isolation::ReadCommitted, Some(last)) => {
            let end =
                BatchHeader::parse(last).map_or(upper_bound, |header| header.last_offset() + 1);
            inner
                .producers
                .borrow()
                .aborted_overlapping(offset, end)
                .into_iter()
                .map(|aborted| AbortedTransaction {
                    producer_id: aborted.producer_id,
                    first_offset: aborted.first_offset,
                })
                .collect()
        }
        _ => Vec::new(),
    };
    ReadResult {
        batches,
        high_watermark: inner.high_watermark.get(),
        log_start_offset: inner.log_start_offset.get(),
        last_stable_offset: inner.last_stable_offset(),
        aborted_transactions,
    }
}

/// What a disk read needs of one segment, copied out of the shared state.
struct SegmentView {
    base_offset: i64,
    file: Rc<SegmentFile>,
    size: u64,
    start_position: u64,
}

/// The segment holding `offset` (the last one with base <= offset), or when
/// `after` is given, the first segment after that base offset.
fn segment_view(inner: &LogInner, offset: i64, after: Option<i64>) -> Option<SegmentView> {
    let segments = inner.segments.borrow();
    let segment = match after {
        None => {
            let next = segments.partition_point(|segment| segment.base_offset <= offset);
            segments.get(next.checked_sub(1)?)?
        }
        Some(previous) => segments
            .iter()
            .find(|segment| segment.base_offset > previous)?,
    };
    Some(SegmentView {
        base_offset: segment.base_offset,
        file: segment.file.clone(),
        size: segment.size,
        start_position: if after.is_none() {
            segment.start_position(offset)
        } else {
            0
        },
    })
}

async fn read_from_disk(
    inner: &LogInner,
    offset: i64,
    max_bytes: usize,
    upper_bound: i64,
) -> io::Result<Vec<Bytes>> {
    let mut after = None;
    // A read that ends a segment returns just that segment's batches; an
    // empty one moves on (the offset can sit past a segment's last batch).
    while let Some(view) = segment_view(inner, offset, after) {
        if view.base_offset >= upper_bound {
            break;
        }
        let batches = match read_segment(&view, offset, max_bytes, upper_bound).await {
            Ok(batches) => batches,
            // Retention deleted the segment before its closed file could be
            // reopened: nothing to serve from it; the next fetch sees the
            // new log start.
            Err(error) if error.kind() == io::ErrorKind::NotFound && !holds(inner, &view) => {
                return Ok(Vec::new())
            }
            Err(error) => return Err(error),
        };
        if !batches.is_empty() {
            return Ok(batches);
        }
        after = Some(view.base_offset);
    }
    Ok(Vec::new())
}

/// Whether the log still holds the segment `view` was taken from.
fn holds(inner: &LogInner, view: &SegmentView) -> bool {
    inner
        .segments
        .borrow()
        .iter()
        .any(|segment| Rc::ptr_eq(&segment.file, &view.file))
}

/// Whole batches of one segment from the one containing `offset`, stopping
/// before `upper_bound` (the high watermark or the last stable offset).
async fn read_segment(
    view: &SegmentView,
    offset: i64,
    max_bytes: usize,
    upper_bound: i64,
) -> io::Result<Vec<Bytes>> {
    let chunk_bytes = max_bytes.clamp(READ_CHUNK_BYTES_MIN, READ_CHUNK_BYTES_MAX);
    let file = view.file.file().await?;
    let mut cursor = BatchCursor::new(&file, view.start_position, view.size, chunk_bytes);
    let mut batches = Vec::new();
    let mut total = 0usize;
    loop {
        let header = match cursor.next_header().await? {
            NextBatch::Batch(header) => header,
            NextBatch::End | NextBatch::Zeroes => break,
            NextBatch::Corrupt(error) => {
                // Only the last segment is verified at open; never serve garbage.
                tracing::warn!(base_offset = view.base_offset, position = cursor.position(),
                    %error, "unreadable batch in segment; read stops here");
                break;
            }
        };
        let Some(length) = header.total_bytes() else {
            break;
        };
        if header.last_offset() < offset {
            cursor.advance(length);
            continue;
        }
        if header.base_offset >= upper_bound {
            break;
        }
        if !batches.is_empty() && total + length > max_bytes {
            break;
        }
        match cursor.batch_bytes(length).await? {
            Some(bytes) => batches.push(Bytes::copy_from_slice(bytes)),
            None => break,
        }
        total += length;
        cursor.advance(length);
        if total >= max_bytes {
            break;
        }
    }
    Ok(batches)
}
