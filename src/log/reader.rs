//! The fetch path on the partition's owning shard: whole batches starting
//! with the one containing the requested offset (Kafka returns the whole
//! containing batch; clients skip the records before their offset), up to
//! `max_bytes` but at least one batch (KIP-74), only below the high
//! watermark. Recent batches come from the tail cache; older ones from disk
//! via the sparse offset index and bounded `DmaFile::read_at` chunks.

use std::io;
use std::rc::Rc;

use bytes::Bytes;
use glommio::io::DmaFile;

use super::batch_cursor::{BatchCursor, NextBatch};
use super::limits::{READ_CHUNK_BYTES_MAX, READ_CHUNK_BYTES_MIN};
use super::partition::LogInner;
use super::{LogError, ReadResult};

pub(crate) async fn read(
    inner: &LogInner,
    offset: i64,
    max_bytes: usize,
) -> Result<ReadResult, LogError> {
    let high_watermark = inner.high_watermark.get();
    let log_start_offset = inner.log_start_offset.get();
    if offset < log_start_offset || offset > high_watermark {
        return Err(LogError::OffsetOutOfRange {
            offset,
            log_start_offset,
            high_watermark,
        });
    }
    let cached = if offset == high_watermark {
        Some(Vec::new())
    } else {
        inner
            .tail_cache
            .borrow()
            .read(offset, high_watermark, max_bytes)
    };
    let batches = match cached {
        Some(batches) => batches,
        None => read_from_disk(inner, offset, max_bytes).await?,
    };
    Ok(ReadResult {
        batches,
        high_watermark: inner.high_watermark.get(),
        log_start_offset: inner.log_start_offset.get(),
    })
}

/// What a disk read needs of one segment, copied out of the shared state.
struct SegmentView {
    base_offset: i64,
    file: Rc<DmaFile>,
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

async fn read_from_disk(inner: &LogInner, offset: i64, max_bytes: usize) -> io::Result<Vec<Bytes>> {
    let mut after = None;
    // A read that ends a segment returns just that segment's batches; an
    // empty one moves on (the offset can sit past a segment's last batch).
    while let Some(view) = segment_view(inner, offset, after) {
        let batches = read_segment(&view, offset, max_bytes).await?;
        if !batches.is_empty() {
            return Ok(batches);
        }
        after = Some(view.base_offset);
    }
    Ok(Vec::new())
}

async fn read_segment(view: &SegmentView, offset: i64, max_bytes: usize) -> io::Result<Vec<Bytes>> {
    let chunk_bytes = max_bytes.clamp(READ_CHUNK_BYTES_MIN, READ_CHUNK_BYTES_MAX);
    let mut cursor = BatchCursor::new(&view.file, view.start_position, view.size, chunk_bytes);
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
