//! Ending a partition log on its owning shard: `sync` (an fdatasync through
//! the writer task, for the interval flusher and shutdown), `close` (drain
//! the writer, trim the active segment's preallocation, sync what is not
//! durable yet, write the producer snapshot at the log end when there is
//! producer state, close files, release every waiter) and `delete`.
//!
//! A close writes only what the next open reads. The active segment's
//! indexes are not written: the next open scans the last segment anyway
//! (`recovery::recover_active`), and a segment's indexes are written when it
//! rolls. A partition that is durable already gets no fdatasync, and one
//! with no producer state and no snapshot gets no snapshot. Before, every
//! close wrote two index files and a snapshot, each a durable replace, and
//! synced the segment: about eight syncs per partition, so a node of
//! 100,000 partitions took many minutes to stop.

use std::io;
use std::path::PathBuf;
use std::rc::Rc;

use glommio::io::Directory;

use super::dma_writer::DmaWriter;
use super::leader_epoch_file;
use super::partition::{Lifecycle, LogInner};
use super::producer_snapshot;
use super::writer_task::mark_durable;
use super::LogError;

pub(crate) async fn sync(inner: &Rc<LogInner>) -> Result<(), LogError> {
    let written_end = inner.written_end.get();
    if written_end <= inner.durable_offset.get() {
        return Ok(());
    }
    inner.wait_synced(written_end - 1).await
}

pub(crate) async fn close(inner: &Rc<LogInner>) -> Result<(), LogError> {
    if inner.lifecycle.get() != Lifecycle::Open {
        return Ok(());
    }
    inner.lifecycle.set(Lifecycle::Closing);
    if inner.writer_running.get() {
        let idle = inner.writer_idle.borrow_mut().subscribe();
        // The writer task notifies when it exits; its queue only shrinks now.
        let _ = idle.await;
    }
    let mut result = match inner.failure.borrow().as_ref() {
        Some(failure) => Err(LogError::Io(failure.to_error())),
        None => Ok(()),
    };
    let writer = inner.writer.borrow_mut().take();
    if let Some(mut writer) = writer {
        let sealed = seal_active(inner, &mut writer).await;
        match sealed {
            Ok(()) if result.is_ok() => {
                mark_durable(inner, inner.written_end.get());
                if inner.has_producer_state() {
                    save_producer_snapshot(inner).await;
                }
                if let Err(error) = leader_epoch_file::store_if_changed(inner).await {
                    result = Err(LogError::Io(error));
                }
            }
            Ok(()) => {}
            Err(error) => {
                if result.is_ok() {
                    result = Err(LogError::Io(error));
                }
            }
        }
    }
    inner.lifecycle.set(Lifecycle::Closed);
    inner.written_waiters.borrow_mut().clear();
    inner.durable_waiters.borrow_mut().clear();
    inner.high_watermark_waiters.borrow_mut().clear();
    inner.end_listener.borrow_mut().take();
    inner.subscribers.borrow_mut().notify_all();
    inner.pending.borrow_mut().clear();
    inner.pending_bytes.set(0);
    inner.tail_cache.borrow_mut().clear();
    let segments = std::mem::take(&mut *inner.segments.borrow_mut());
    for segment in segments {
        if let Err(error) = segment.file.close().await {
            if result.is_ok() {
                result = Err(LogError::Io(error));
            }
        }
    }
    result
}

/// The producer snapshot at the log end: with it, the next open replays
/// nothing. Every `.txnindex` entry is durable already (the writer task
/// syncs each one), and every appended batch is written.
async fn save_producer_snapshot(inner: &LogInner) {
    let log_end_offset = inner.log_end_offset.get();
    debug_assert_eq!(log_end_offset, inner.written_end.get());
    let bytes = producer_snapshot::encode(&inner.producers.borrow(), log_end_offset);
    producer_snapshot::save(inner, log_end_offset, bytes).await;
}

/// Trims the active file and syncs it unless every write is durable
/// already. The trim itself needs no sync: if it is lost, the next open
/// finds zeros after the last batch, which is where it stops scanning.
async fn seal_active(inner: &LogInner, writer: &mut DmaWriter) -> io::Result<()> {
    writer.trim().await?;
    if inner.durable_offset.get() >= inner.written_end.get() {
        return Ok(());
    }
    writer
        .file()
        .file()
        .await?
        .fdatasync()
        .await
        .map_err(io::Error::from)
}

pub(crate) async fn delete(inner: &Rc<LogInner>) -> Result<(), LogError> {
    if let Err(error) = close(inner).await {
        tracing::warn!(dir = %inner.dir.display(), %error, "closing a deleted partition failed");
    }
    let files = match list_files(inner).await {
        Ok(files) => files,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(LogError::Io(error)),
    };
    for path in files {
        glommio::io::remove(&path).await.map_err(io::Error::from)?;
    }
    // glommio 0.9 can unlink files but has no rmdir; removing the (now
    // empty) directory is a single metadata syscall.
    match std::fs::remove_dir(&inner.dir) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(LogError::Io(error)),
        _ => Ok(()),
    }
}

async fn list_files(inner: &LogInner) -> io::Result<Vec<PathBuf>> {
    let directory = Directory::open(&inner.dir).await.map_err(io::Error::from)?;
    // glommio 0.9 has no asynchronous directory listing (see recovery.rs).
    let listing = directory.sync_read_dir().map_err(io::Error::from);
    directory.close().await.map_err(io::Error::from)?;
    let mut files = Vec::new();
    for entry in listing? {
        files.push(entry?.path());
    }
    Ok(files)
}
