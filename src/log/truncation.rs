//! Cutting a closed partition log back to an offset: a follower whose tail
//! diverged from its new leader's (KIP-101's truncation, see
//! `replication::truncation` for where). Runs on the partition's owning shard
//! between `close` and the next `open`, so it only touches files: segments
//! wholly at or past the offset go, the segment holding it is cut at the
//! first batch boundary at or past it, and the next open's recovery rebuilds
//! everything derived (indexes of the active segment, producer state from the
//! newest snapshot below the new end, `.txnindex` entries past it dropped,
//! snapshots past it removed).
//!
//! Kafka cuts at batch boundaries too: a follower's batches are the leader's,
//! and the offset a leader names is the start of one of its batches.

use std::io;
use std::path::Path;
use std::rc::Rc;

use glommio::io::DmaFile;

use crate::runtime::durable_file::sync_directory;

use super::batch_cursor::{BatchCursor, NextBatch};
use super::dma_writer::open_segment_file;
use super::leader_epoch_file;
use super::limits::RECOVERY_CHUNK_BYTES;
use super::producer_snapshot::snapshot_path;
use super::recovery::list_directory;
use super::segment::{segment_path, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use super::txn_index;
use crate::replication::leader_epochs::LeaderEpochCache;

/// Truncates the log in `dir` (closed) so that it ends at `end_offset`, or
/// at the start of the batch holding it. With `end_offset` at or below the
/// first segment's base, the log is emptied and restarts at `end_offset`
/// (Kafka's `truncateFullyAndStartAt`). Returns the new log end.
pub(crate) async fn truncate_directory(dir: &Path, end_offset: i64) -> io::Result<i64> {
    let listing = list_directory(dir).await?;
    let bases = &listing.segment_bases;
    let first_base = bases.first().copied().unwrap_or(0);
    if end_offset <= first_base {
        for &base in bases {
            remove_segment(dir, base).await?;
        }
        let path = segment_path(dir, end_offset.max(0), LOG_SUFFIX);
        open_segment_file(&path, true)
            .await?
            .close()
            .await
            .map_err(io::Error::from)?;
        sync_directory(dir).await?;
        return Ok(end_offset.max(0));
    }
    for &base in bases.iter().filter(|base| **base >= end_offset) {
        remove_segment(dir, base).await?;
    }
    let holding = bases
        .iter()
        .copied()
        .rfind(|base| *base < end_offset)
        .unwrap_or(first_base);
    let new_end = cut_segment(dir, holding, end_offset).await?;
    // The holding segment is the active one now: its index files are
    // rebuilt by the next open's scan.
    remove_if_present(&segment_path(dir, holding, INDEX_SUFFIX)).await?;
    remove_if_present(&segment_path(dir, holding, TIME_INDEX_SUFFIX)).await?;
    sync_directory(dir).await?;
    Ok(new_end)
}

/// Cuts the segment at `base` after its last batch that ends below
/// `end_offset` (a batch holding `end_offset` goes whole); returns the
/// offset after the last batch kept.
async fn cut_segment(dir: &Path, base: i64, end_offset: i64) -> io::Result<i64> {
    let path = segment_path(dir, base, LOG_SUFFIX);
    let file = Rc::new(open_segment_file(&path, false).await?);
    let result = cut_open_segment(&file, base, end_offset).await;
    let closed = file.close_rc().await.map_err(io::Error::from);
    let new_end = result?;
    closed?;
    Ok(new_end)
}

async fn cut_open_segment(file: &DmaFile, base: i64, end_offset: i64) -> io::Result<i64> {
    let size = file.file_size().await.map_err(io::Error::from)?;
    let mut cursor = BatchCursor::new(file, 0, size, RECOVERY_CHUNK_BYTES);
    let mut kept_end = base;
    loop {
        match cursor.next_header().await? {
            NextBatch::Batch(header) if header.last_offset() < end_offset => {
                kept_end = header.last_offset() + 1;
                let length = header.total_bytes().ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidData, "batch length out of range")
                })?;
                cursor.advance(length);
            }
            // The batch holding or past `end_offset`, or the end of the data
            // (zeros, a torn tail: the open's recovery would cut there too).
            _ => break,
        }
    }
    let position = cursor.position();
    if position < size {
        file.truncate(position).await.map_err(io::Error::from)?;
        file.fdatasync().await.map_err(io::Error::from)?;
    }
    Ok(kept_end)
}

/// Empties the log in `dir` (closed) and restarts it at `start_offset`,
/// wherever its end was (Kafka's `truncateFullyAndStartAt` for a follower
/// whose end is below its leader's log start): every segment and producer
/// snapshot goes, the leader-epoch checkpoint empties, and the log start
/// offset is recorded so the next open starts there.
pub(crate) async fn restart_directory_at(dir: &Path, start_offset: i64) -> io::Result<()> {
    let start_offset = start_offset.max(0);
    let listing = list_directory(dir).await?;
    for &base in &listing.segment_bases {
        remove_segment(dir, base).await?;
    }
    for &offset in &listing.snapshot_offsets {
        remove_if_present(&snapshot_path(dir, offset)).await?;
    }
    for &base in &listing.txn_index_bases {
        txn_index::remove(dir, base).await?;
    }
    leader_epoch_file::store(dir, &LeaderEpochCache::default()).await?;
    open_segment_file(&segment_path(dir, start_offset, LOG_SUFFIX), true)
        .await?
        .close()
        .await
        .map_err(io::Error::from)?;
    super::log_start::write(dir, start_offset).await?;
    sync_directory(dir).await
}

/// Removes a segment's files (log, indexes, transaction index).
async fn remove_segment(dir: &Path, base: i64) -> io::Result<()> {
    for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
        remove_if_present(&segment_path(dir, base, suffix)).await?;
    }
    txn_index::remove(dir, base).await
}

async fn remove_if_present(path: &Path) -> io::Result<()> {
    match glommio::io::remove(path).await.map_err(io::Error::from) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}
