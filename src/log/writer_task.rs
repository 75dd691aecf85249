//! The per-partition writer task: the only code that writes a partition's
//! segment files. Spawned lazily on the partition's owning shard
//! (`glommio::spawn_local`) when there is work and none is running; each
//! round takes ALL queued batches (the group commit), writes them through the
//! `DmaWriter`, rolls segments where the append path decided to, advances the
//! high watermark, and runs one fdatasync when any durability waiter is
//! covered. It exits when there is nothing left to do. One task at a time is
//! what keeps two writes to the same block from ever being in flight.
//! It also keeps the producer files in log order: an abort marker's
//! `.txnindex` entry is made durable before the marker is published, and the
//! producer snapshot decided with a roll is written right after that roll,
//! so every snapshot comes after the index entries it covers.

use crate::runtime::durable_file;
use std::io;
use std::rc::Rc;

use super::dma_writer::{open_segment_file, DmaWriter};
use super::index_file::EncodedIndexes;
use super::leader_epoch_file;
use super::partition::{LogInner, PendingBatch};
use super::producer_snapshot;
use super::producer_state::AbortedTxn;
use super::segment::{segment_path, Segment, LOG_SUFFIX};
use super::segment_file::SegmentFile;
use super::txn_index;
use crate::config::FlushPolicy;

/// Spawns the writer task unless it is already running.
pub(crate) fn ensure_running(inner: &Rc<LogInner>) {
    if inner.writer_running.get() {
        return;
    }
    inner.writer_running.set(true);
    glommio::spawn_local(run(inner.clone())).detach();
}

/// Someone waits for durability, or the partition is replicated under
/// `--flush always`: then every round is synced, as a replica's end counts
/// for the high watermark only once durable (see `PartitionLog::
/// replica_end_offset`).
fn sync_wanted(inner: &LogInner) -> bool {
    let written_end = inner.written_end.get();
    let replicated_unsynced = inner.replicated.get()
        && written_end > inner.durable_offset.get()
        && inner.config.borrow().flush == FlushPolicy::Always;
    replicated_unsynced || inner.durable_waiters.borrow().has_waiter_below(written_end)
}

fn stop(inner: &LogInner) {
    inner.writer_running.set(false);
    inner.writer_idle.borrow_mut().notify_all();
}

async fn run(inner: Rc<LogInner>) {
    loop {
        if inner.failure.borrow().is_some() {
            return stop(&inner);
        }
        let batches: Vec<PendingBatch> = inner.pending.borrow_mut().drain(..).collect();
        let taken: usize = batches.iter().map(|batch| batch.bytes.len()).sum();
        inner
            .pending_bytes
            .set(inner.pending_bytes.get().saturating_sub(taken));
        if batches.is_empty() && !sync_wanted(&inner) {
            return stop(&inner);
        }
        let Some(mut writer) = inner.writer.borrow_mut().take() else {
            // Closed under us: close() already trimmed and released the file.
            return stop(&inner);
        };
        let written = write_round(&inner, &mut writer, &batches).await;
        let file = writer.file().clone();
        *inner.writer.borrow_mut() = Some(writer);
        if let Err(error) = written {
            inner.fail(&error);
            return stop(&inner);
        }
        if sync_wanted(&inner) {
            let covered = inner.written_end.get();
            if let Err(error) = sync_segment(&file).await {
                inner.fail(&error);
                return stop(&inner);
            }
            mark_durable(&inner, covered);
        }
    }
}

/// Syncs a segment's data; any descriptor of the file will do, so one the
/// shard's cache closed is reopened.
async fn sync_segment(file: &Rc<SegmentFile>) -> io::Result<()> {
    file.file()
        .await?
        .fdatasync()
        .await
        .map_err(io::Error::from)
}

/// Everything below `covered` is durable: release those waiters.
pub(crate) fn mark_durable(inner: &LogInner, covered: i64) {
    if covered > inner.durable_offset.get() {
        inner.durable_offset.set(covered);
    }
    inner
        .durable_waiters
        .borrow_mut()
        .release_below(inner.durable_offset.get());
    inner.end_advanced();
}

/// Writes one round's batches, segment by segment, publishing each segment's
/// part as soon as it is on disk.
async fn write_round(
    inner: &LogInner,
    writer: &mut DmaWriter,
    batches: &[PendingBatch],
) -> io::Result<()> {
    let mut start = 0;
    while start < batches.len() {
        let segment_base = batches[start].segment_base;
        let length = batches[start..]
            .iter()
            .take_while(|batch| batch.segment_base == segment_base)
            .count();
        let group = &batches[start..start + length];
        if segment_base != writer.segment_base() {
            roll(inner, writer, segment_base).await?;
            if let Some(snapshot) = &group[0].snapshot {
                producer_snapshot::save(inner, segment_base, snapshot.clone()).await;
            }
        }
        let first_position = writer.size();
        let slices: Vec<&[u8]> = group.iter().map(|batch| &batch.bytes[..]).collect();
        writer.write(&slices).await?;
        let aborted: Vec<AbortedTxn> = group.iter().filter_map(|batch| batch.aborted).collect();
        txn_index::append(&inner.dir, segment_base, &aborted).await?;
        publish_written(inner, first_position, group);
        start += length;
    }
    Ok(())
}

/// Makes written batches visible: indexes, written end (and high watermark
/// unless replicated), waiters, fetchers.
fn publish_written(inner: &LogInner, first_position: u64, group: &[PendingBatch]) {
    let Some(last) = group.last() else {
        return;
    };
    {
        let mut segments = inner.segments.borrow_mut();
        if let Some(segment) = segments.last_mut() {
            let mut position = first_position;
            for batch in group {
                segment.record_batch(
                    position,
                    &batch.meta,
                    inner.config.borrow().index_interval_bytes,
                );
                position += batch.meta.size;
            }
        }
    }
    let written_end = last.meta.last_offset + 1;
    assert!(
        written_end > inner.written_end.get(),
        "the written end only moves forward"
    );
    inner.written_end.set(written_end);
    if !inner.replicated.get() {
        inner.high_watermark.set(written_end);
    }
    inner
        .written_waiters
        .borrow_mut()
        .release_below(written_end);
    inner.subscribers.borrow_mut().notify_all();
    inner.end_advanced();
}

/// Seals the active segment (trim, final time index entry, index files,
/// fdatasync) and starts the segment `new_base`. Sealed segments are always
/// synced, so a later fdatasync of the active file covers everything.
async fn roll(inner: &LogInner, writer: &mut DmaWriter, new_base: i64) -> io::Result<()> {
    writer.trim().await?;
    let indexes = {
        let mut segments = inner.segments.borrow_mut();
        match segments.last_mut() {
            Some(segment) => {
                segment.seal();
                Some(EncodedIndexes::of(segment))
            }
            None => None,
        }
    };
    if let Some(indexes) = indexes {
        indexes.write(&inner.dir).await?;
    }
    sync_segment(writer.file()).await?;
    mark_durable(inner, inner.written_end.get());
    // Every epoch that started in the sealed segment is noted by now; the
    // open only rescans the active one.
    leader_epoch_file::store_if_changed(inner).await?;

    let path = segment_path(&inner.dir, new_base, LOG_SUFFIX);
    let created = open_segment_file(&path, true).await?;
    let file = SegmentFile::opened(path, created);
    durable_file::sync_directory(&inner.dir).await?;
    // A busy partition keeps its step across the roll.
    let new_writer = DmaWriter::resume(
        file.clone(),
        new_base,
        0,
        inner.segment_bytes_max.get(),
        writer.preallocation(),
    )
    .await?;
    inner
        .segments
        .borrow_mut()
        .push(Segment::new(new_base, file));
    *writer = new_writer;
    tracing::debug!(dir = %inner.dir.display(), new_base, "rolled segment");
    Ok(())
}
