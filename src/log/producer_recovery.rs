//! Rebuilding a partition's producer and transaction state at open, on its
//! owning shard, after the segments are recovered (Kafka's
//! `loadProducerState`):
//!
//! 1. snapshots past the recovered log end offset describe batches that are
//!    gone (a torn tail was truncated) and are removed;
//! 2. the newest snapshot that decodes is loaded (undecodable ones are
//!    removed and the next older one tried; none means an empty state);
//! 3. the aborted transactions below the replay start come from the
//!    segments' `.txnindex` files (durable before the snapshot was written);
//! 4. batch headers from the snapshot offset (or the first segment) to the
//!    log end are replayed, reading the bytes of control batches only;
//! 5. each `.txnindex` is rewritten when it differs from what the log says
//!    (entries replayed again, entries beyond the log end dropped, torn
//!    tails repaired), and indexes without a segment are removed.
//!
//! Replayed producers are stamped with the open time as their last write:
//! the broker cannot know when it wrote them, and an early expiry would
//! forget a live producer's sequence.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use crate::protocol::batch_builder::parse_control_marker;

use super::batch_cursor::{BatchCursor, NextBatch};
use super::limits::RECOVERY_CHUNK_BYTES;
use super::producer_snapshot;
use super::producer_state::{AbortedTxn, ProducerBatch, ProducerStates};
use super::recovery::DirListing;
use super::segment::Segment;
use super::txn_index;
use crate::runtime::clock::now_ms;

pub(crate) struct RecoveredProducers {
    pub states: ProducerStates,
    /// Snapshot files left on disk, oldest first.
    pub snapshot_offsets: Vec<i64>,
}

pub(crate) async fn recover(
    dir: &Path,
    segments: &[Segment],
    listing: &DirListing,
    log_start_offset: i64,
    log_end_offset: i64,
) -> io::Result<RecoveredProducers> {
    let (loaded, snapshot_offsets) = load_newest_snapshot(dir, listing, log_end_offset).await?;
    let first_base = segments.first().map_or(0, |segment| segment.base_offset);
    let (mut states, replay_start) = match loaded {
        Some((offset, states)) => (states, offset.max(first_base)),
        None => (ProducerStates::default(), first_base),
    };
    let mut indexes = read_indexes(dir, segments, replay_start).await?;
    states.restore_aborted(
        indexes
            .values()
            .flat_map(|index| index.entries.iter().copied())
            .collect(),
    );
    let replayed = replay(&mut states, segments, replay_start, now_ms()).await?;
    for (segment_base, entries) in replayed {
        if let Some(index) = indexes.get_mut(&segment_base) {
            index.entries.extend(entries);
        }
    }
    for (segment_base, index) in &indexes {
        if txn_index::encode(&index.entries) != index.on_disk {
            tracing::info!(dir = %dir.display(), segment_base, entries = index.entries.len(),
                "rewriting the transaction index from the log");
            txn_index::rewrite(dir, *segment_base, &index.entries).await?;
        }
    }
    for base in &listing.txn_index_bases {
        if !indexes.contains_key(base) {
            txn_index::remove(dir, *base).await?;
        }
    }
    states.forget_aborted_below(log_start_offset);
    states.forget_stable(log_end_offset);
    Ok(RecoveredProducers {
        states,
        snapshot_offsets,
    })
}

/// The newest usable snapshot `(offset, state)` and the snapshot files left.
async fn load_newest_snapshot(
    dir: &Path,
    listing: &DirListing,
    log_end_offset: i64,
) -> io::Result<(Option<(i64, ProducerStates)>, Vec<i64>)> {
    let mut offsets = listing.snapshot_offsets.clone();
    offsets.sort_unstable();
    while offsets
        .last()
        .is_some_and(|offset| *offset > log_end_offset)
    {
        if let Some(offset) = offsets.pop() {
            tracing::info!(dir = %dir.display(), offset, "removing a snapshot past the log end");
            producer_snapshot::remove(dir, offset).await?;
        }
    }
    while let Some(&offset) = offsets.last() {
        if let Some(states) = producer_snapshot::read(dir, offset).await? {
            return Ok((Some((offset, states)), offsets));
        }
        tracing::warn!(dir = %dir.display(), offset,
            "producer snapshot unreadable; ignoring it and rebuilding from the log");
        producer_snapshot::remove(dir, offset).await?;
        offsets.pop();
    }
    Ok((None, offsets))
}

/// One segment's `.txnindex`: its bytes on disk and the entries the log says it holds.
struct SegmentTxnIndex {
    on_disk: Vec<u8>,
    entries: Vec<AbortedTxn>,
}

/// Every segment's index with only the trusted entries: markers inside the
/// segment and below `replay_start` (the replay re-creates the others).
async fn read_indexes(
    dir: &Path,
    segments: &[Segment],
    replay_start: i64,
) -> io::Result<BTreeMap<i64, SegmentTxnIndex>> {
    let mut indexes = BTreeMap::new();
    for segment in segments {
        let on_disk = txn_index::read_bytes(dir, segment.base_offset).await?;
        let entries = txn_index::decode(&on_disk)
            .into_iter()
            .filter(|entry| {
                entry.last_offset >= segment.base_offset
                    && entry.last_offset < segment.next_offset
                    && entry.last_offset < replay_start
            })
            .collect();
        indexes.insert(segment.base_offset, SegmentTxnIndex { on_disk, entries });
    }
    Ok(indexes)
}

/// Applies every batch from `from` to the end of the log to `states`;
/// returns the aborts found, by segment base offset.
async fn replay(
    states: &mut ProducerStates,
    segments: &[Segment],
    from: i64,
    now_ms: i64,
) -> io::Result<BTreeMap<i64, Vec<AbortedTxn>>> {
    let mut aborts: BTreeMap<i64, Vec<AbortedTxn>> = BTreeMap::new();
    for segment in segments.iter().filter(|segment| segment.next_offset > from) {
        let file = segment.file.file().await?;
        let start = segment.start_position(from);
        let mut cursor = BatchCursor::new(&file, start, segment.size, RECOVERY_CHUNK_BYTES);
        // Recovery already cut the active segment at its first bad batch;
        // an unreadable sealed segment is served only up to that point too.
        while let NextBatch::Batch(header) = cursor.next_header().await? {
            let Some(length) = header.total_bytes() else {
                break;
            };
            if header.last_offset() >= from && header.producer_id >= 0 {
                let marker = if header.is_control() {
                    cursor
                        .batch_bytes(length)
                        .await?
                        .and_then(parse_control_marker)
                } else {
                    None
                };
                if let Some(batch) = ProducerBatch::from_header(&header, marker) {
                    let aborted =
                        states.apply(&batch, header.base_offset, header.last_offset(), now_ms);
                    if let Some(aborted) = aborted {
                        aborts.entry(segment.base_offset).or_default().push(aborted);
                    }
                }
            }
            cursor.advance(length);
        }
    }
    Ok(aborts)
}
