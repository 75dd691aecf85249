//! Retention on the partition's owning shard: whole sealed segments are
//! deleted from the front when their largest timestamp is older than
//! `retention_ms`, or while the log is larger than `retention_bytes`,
//! advancing the log start offset (Kafka's `deleteRetentionMsBreachedSegments`
//! and `deleteRetentionSizeBreachedSegments`). The active segment is never
//! deleted. The decision is a pure function; the file removal wraps it.
//! A segment's `.txnindex` goes with it, and the aborted transactions that
//! ended below the new log start offset are forgotten.

use std::io;

use super::partition::{Lifecycle, LogInner};
use super::segment::{
    segment_path, Segment, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX,
};
use super::LogError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentSummary {
    pub size: u64,
    /// -1 when no batch carried a timestamp.
    pub max_timestamp: i64,
}

/// How many segments, from the oldest, retention deletes. The last
/// (active) segment always stays.
pub(crate) fn segments_to_delete(
    segments: &[SegmentSummary],
    now_ms: i64,
    retention_ms: i64,
    retention_bytes: i64,
) -> usize {
    let sealed = &segments[..segments.len().saturating_sub(1)];
    let by_time = if retention_ms < 0 {
        0
    } else {
        // A segment without timestamps is kept by time retention (Kafka would
        // fall back to the file's mtime; size retention still applies).
        sealed
            .iter()
            .take_while(|segment| {
                segment.max_timestamp >= 0
                    && now_ms.saturating_sub(segment.max_timestamp) > retention_ms
            })
            .count()
    };
    let by_size = match u64::try_from(retention_bytes) {
        Err(_) => 0,
        Ok(limit) => {
            let total: u64 = segments.iter().map(|segment| segment.size).sum();
            let mut excess = total.saturating_sub(limit);
            sealed
                .iter()
                .take_while(|segment| {
                    let deletable = excess >= segment.size && excess > 0;
                    if deletable {
                        excess -= segment.size;
                    }
                    deletable
                })
                .count()
        }
    };
    by_time.max(by_size)
}

pub(crate) async fn enforce(inner: &LogInner, now_ms: i64) -> Result<usize, LogError> {
    if inner.lifecycle.get() != Lifecycle::Open {
        return Err(LogError::Closed);
    }
    let removed: Vec<Segment> = {
        let mut segments = inner.segments.borrow_mut();
        let summaries: Vec<SegmentSummary> = segments
            .iter()
            .map(|segment| SegmentSummary {
                size: segment.size,
                max_timestamp: segment.max_timestamp,
            })
            .collect();
        let (retention_ms, retention_bytes) = {
            let config = inner.config.borrow();
            (config.retention_ms, config.retention_bytes)
        };
        let count = segments_to_delete(&summaries, now_ms, retention_ms, retention_bytes);
        segments.drain(..count).collect()
    };
    remove_segments(inner, removed, "retention deleted segments").await
}

/// Deletes the sealed segments that lie wholly below `offset` (every record
/// in them is older than it), advancing the log start offset. The group
/// coordinator calls it after writing a snapshot of its state at `offset`.
pub(crate) async fn delete_before(inner: &LogInner, offset: i64) -> Result<usize, LogError> {
    if inner.lifecycle.get() != Lifecycle::Open {
        return Err(LogError::Closed);
    }
    let removed: Vec<Segment> = {
        let mut segments = inner.segments.borrow_mut();
        // A segment is wholly below `offset` when its successor starts at or
        // below it; the active (last) segment has none and always stays.
        let count = segments
            .windows(2)
            .take_while(|pair| pair[1].base_offset <= offset)
            .count();
        segments.drain(..count).collect()
    };
    remove_segments(inner, removed, "deleted segments below a snapshot").await
}

/// Unlinks the files of segments already taken out of the segment list.
async fn remove_segments(
    inner: &LogInner,
    removed: Vec<Segment>,
    why: &'static str,
) -> Result<usize, LogError> {
    if removed.is_empty() {
        return Ok(0);
    }
    if let Some(first) = inner.segments.borrow().first() {
        // Never backwards: DeleteRecords may have moved it inside the new
        // first segment already.
        let start = inner.log_start_offset.get().max(first.base_offset);
        if start != inner.log_start_offset.get() {
            inner.log_start_offset.set(start);
            // News for fetch sessions watching this partition.
            inner.subscribers.borrow_mut().notify_all();
        }
        inner.epochs_start_at(start);
    }
    forget_below_log_start(inner);
    tracing::info!(dir = %inner.dir.display(), segments = removed.len(),
        log_start_offset = inner.log_start_offset.get(), "{why}");
    let count = removed.len();
    for segment in removed {
        // Reads still holding the file keep reading the unlinked inode.
        for suffix in [
            LOG_SUFFIX,
            INDEX_SUFFIX,
            TIME_INDEX_SUFFIX,
            TXN_INDEX_SUFFIX,
        ] {
            let path = segment_path(&inner.dir, segment.base_offset, suffix);
            if let Err(error) = glommio::io::remove(&path).await.map_err(io::Error::from) {
                if error.kind() != io::ErrorKind::NotFound {
                    return Err(LogError::Io(error));
                }
            }
        }
        let _ = segment.file.close().await;
    }
    Ok(count)
}

/// Forgets the aborted transactions that ended below the log start offset
/// (no fetch can reach them any more).
pub(crate) fn forget_below_log_start(inner: &LogInner) {
    inner
        .producers
        .borrow_mut()
        .forget_aborted_below(inner.log_start_offset.get());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summaries(sizes_and_times: &[(u64, i64)]) -> Vec<SegmentSummary> {
        sizes_and_times
            .iter()
            .map(|(size, max_timestamp)| SegmentSummary {
                size: *size,
                max_timestamp: *max_timestamp,
            })
            .collect()
    }

    #[test]
    fn time_retention_deletes_the_expired_prefix_but_never_the_active_segment() {
        let segments = summaries(&[(10, 100), (10, 200), (10, 900), (10, 100)]);
        assert_eq!(segments_to_delete(&segments, 1_000, 500, -1), 2);
        assert_eq!(segments_to_delete(&segments, 10_000, 500, -1), 3);
        assert_eq!(segments_to_delete(&segments, 10_000, -1, -1), 0);
        assert_eq!(segments_to_delete(&summaries(&[(10, 1)]), 10_000, 5, -1), 0);
    }

    #[test]
    fn size_retention_keeps_the_log_at_or_above_the_limit() {
        let segments = summaries(&[(100, 1), (100, 1), (100, 1), (50, 1)]);
        assert_eq!(segments_to_delete(&segments, 0, -1, 350), 0);
        assert_eq!(segments_to_delete(&segments, 0, -1, 250), 1);
        assert_eq!(segments_to_delete(&segments, 0, -1, 249), 1);
        assert_eq!(segments_to_delete(&segments, 0, -1, 0), 3);
    }

    #[test]
    fn segments_without_timestamps_are_kept_by_time() {
        let segments = summaries(&[(10, -1), (10, 100), (10, 100)]);
        assert_eq!(segments_to_delete(&segments, 10_000, 5, -1), 0);
    }
}
