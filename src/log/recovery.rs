//! Opening a partition directory on its owning shard: creating it if absent,
//! loading sealed segments with their index files (rebuilding an index that
//! is missing, short or corrupt by scanning), and recovering the last
//! segment by checking every batch (length, offsets, crc32c): the first torn,
//! corrupt or zero batch and everything after it is truncated and logged,
//! never served. Zeros are where preallocated space begins after a crash.
//! Producer and transaction state is rebuilt last, from a snapshot and the
//! log after it (`producer_recovery.rs`).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use glommio::io::{Directory, DmaFile};

use crate::protocol::record_batch::{validate_batch, BatchError};
use crate::replication::leader_epochs::{EpochEntry, LeaderEpochCache};

use super::batch_cursor::{BatchCursor, NextBatch};
use super::dma_writer::{open_segment_file, prime_iopoll_detection, DmaWriter};
use super::index_file::{read_small_file, EncodedIndexes, TEMPORARY_SUFFIX};
use super::leader_epoch_file;
use super::limits::{RECOVERY_CHUNK_BYTES, SEGMENT_BYTES_LIMIT, SEGMENT_RELATIVE_OFFSET_MAX};
use super::offset_index::OffsetIndex;
use super::partition::{AppendHead, Lifecycle, LogInner};
use super::preallocation::Preallocation;
use super::producer_recovery;
use super::producer_snapshot::parse_snapshot_file_name;
use super::segment::{
    parse_log_file_name, parse_txn_index_file_name, segment_path, BatchMeta, Segment, INDEX_SUFFIX,
    LOG_SUFFIX, TIME_INDEX_SUFFIX,
};
use super::segment_file::SegmentFile;
use super::tail_cache::TailCache;
use super::time_index::TimeIndex;
use super::waiters::{OffsetWaiters, Subscribers};
use super::LogConfig;
use crate::runtime::clock::now_ms;

/// Why a segment scan stopped.
#[derive(Debug)]
enum ScanStop {
    Clean,
    Zeroes,
    Corrupt(BatchError),
}

struct ScanEnd {
    valid_bytes: u64,
    stop: ScanStop,
    first_batch_timestamp: Option<i64>,
    /// Each leader epoch's first batch in the segment, in order.
    epoch_starts: Vec<EpochEntry>,
}

/// Opens the partition log in `dir`.
pub(crate) async fn open(
    dir: PathBuf,
    config: LogConfig,
    tail_cache_bytes: usize,
) -> io::Result<Rc<LogInner>> {
    create_dir_all(&dir).await?;
    prime_iopoll_detection(&dir).await?;
    let listing = list_directory(&dir).await?;
    let mut bases = listing.segment_bases.clone();
    let segment_bytes_max = config.segment_bytes.clamp(1, SEGMENT_BYTES_LIMIT);
    if bases.is_empty() {
        let path = segment_path(&dir, 0, LOG_SUFFIX);
        open_segment_file(&path, true)
            .await?
            .close()
            .await
            .map_err(io::Error::from)?;
        bases.push(0);
    }
    let mut segments = Vec::with_capacity(bases.len());
    for pair in bases.windows(2) {
        segments.push(load_sealed(&dir, pair[0], pair[1], &config).await?);
    }
    let last_base = bases[bases.len() - 1];
    let (active, first_batch_timestamp, epoch_starts) =
        recover_active(&dir, last_base, &config).await?;
    let writer = DmaWriter::resume(
        active.file.clone(),
        last_base,
        active.size,
        segment_bytes_max,
        Preallocation::default(),
    )
    .await?;
    let log_end_offset = active.next_offset;
    let head = AppendHead {
        segment_base: last_base,
        segment_bytes: active.size,
        first_batch_timestamp,
        created_ms: now_ms(),
    };
    segments.push(active);
    let first_base = segments.first().map_or(0, |segment| segment.base_offset);
    // DeleteRecords may have moved the start inside the first segment.
    let log_start_offset = match super::log_start::read(&dir).await {
        Some(recorded) if recorded > first_base && recorded <= log_end_offset => recorded,
        _ => first_base,
    };
    let producers =
        producer_recovery::recover(&dir, &segments, &listing, log_start_offset, log_end_offset)
            .await?;
    let epochs = recover_epochs(&dir, &epoch_starts, log_start_offset, log_end_offset).await?;
    let checkpointed_high_watermark =
        super::offset_file::read(&dir, super::offset_file::HIGH_WATERMARK).await;
    Ok(Rc::new(LogInner {
        dir,
        config: RefCell::new(config),
        segment_bytes_max: Cell::new(segment_bytes_max),
        lifecycle: Cell::new(Lifecycle::Open),
        written_end: Cell::new(log_end_offset),
        high_watermark: Cell::new(log_end_offset),
        replicated: Cell::new(false),
        checkpointed_high_watermark: Cell::new(checkpointed_high_watermark),
        leader_epoch: Cell::new(0),
        epochs: RefCell::new(epochs),
        epochs_changed: Cell::new(false),
        log_start_offset: Cell::new(log_start_offset),
        log_end_offset: Cell::new(log_end_offset),
        durable_offset: Cell::new(log_end_offset),
        pending_bytes: Cell::new(0),
        writer_running: Cell::new(false),
        failure: RefCell::new(None),
        segments: RefCell::new(segments),
        pending: RefCell::new(VecDeque::new()),
        head: Cell::new(head),
        tail_cache: RefCell::new(TailCache::new(tail_cache_bytes)),
        writer: RefCell::new(Some(writer)),
        written_waiters: RefCell::new(OffsetWaiters::default()),
        durable_waiters: RefCell::new(OffsetWaiters::default()),
        high_watermark_waiters: RefCell::new(OffsetWaiters::default()),
        end_listener: RefCell::new(None),
        subscribers: RefCell::new(Subscribers::default()),
        writer_idle: RefCell::new(Subscribers::default()),
        producers: RefCell::new(producers.states),
        snapshot_offsets: RefCell::new(producers.snapshot_offsets),
        log_start_writer: glommio::sync::Semaphore::new(1),
    }))
}

/// The leader-epoch cache: the checkpoint, completed with the epochs the
/// active segment's batches carry (a crash may have come before a store),
/// cut to `[log_start_offset, log_end_offset)`; stored again if that
/// changed it.
async fn recover_epochs(
    dir: &Path,
    epoch_starts: &[EpochEntry],
    log_start_offset: i64,
    log_end_offset: i64,
) -> io::Result<LeaderEpochCache> {
    let loaded = leader_epoch_file::load(dir).await?;
    let mut epochs = loaded.clone();
    for start in epoch_starts {
        if start.epoch > epochs.latest_epoch() {
            epochs.assign(start.epoch, start.start_offset);
        }
    }
    epochs.truncate_from_end(log_end_offset);
    epochs.truncate_from_start(log_start_offset);
    if epochs != loaded {
        leader_epoch_file::store(dir, &epochs).await?;
    }
    Ok(epochs)
}

/// `mkdir -p` through glommio (it only offers a one-level create).
async fn create_dir_all(dir: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut current = dir;
    loop {
        match Directory::create(current).await.map_err(io::Error::from) {
            Ok(directory) => {
                directory.close().await.map_err(io::Error::from)?;
                break;
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                missing.push(current);
                current = current.parent().ok_or(error)?;
            }
            Err(error) => return Err(error),
        }
    }
    for path in missing.into_iter().rev() {
        Directory::create(path)
            .await
            .map_err(io::Error::from)?
            .close()
            .await
            .map_err(io::Error::from)?;
    }
    Ok(())
}

/// What a partition directory holds, by file kind.
#[derive(Debug, Default)]
pub(crate) struct DirListing {
    /// Base offsets of the `.log` files, sorted.
    pub segment_bases: Vec<i64>,
    /// Offsets of the producer `.snapshot` files.
    pub snapshot_offsets: Vec<i64>,
    /// Base offsets of the `.txnindex` files.
    pub txn_index_bases: Vec<i64>,
}

/// Lists the segments, snapshots and transaction indexes in `dir`;
/// leftover temporary files of an interrupted write are removed.
pub(crate) async fn list_directory(dir: &Path) -> io::Result<DirListing> {
    let directory = Directory::open(dir).await.map_err(io::Error::from)?;
    // glommio 0.9 has no asynchronous directory listing; this is one
    // getdents per partition open, a metadata read the shard can afford.
    let entries = directory.sync_read_dir().map_err(io::Error::from);
    directory.close().await.map_err(io::Error::from)?;
    let mut listing = DirListing::default();
    let mut leftovers = Vec::new();
    for entry in entries? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(base) = parse_log_file_name(name) {
            listing.segment_bases.push(base);
        } else if let Some(offset) = parse_snapshot_file_name(name) {
            listing.snapshot_offsets.push(offset);
        } else if let Some(base) = parse_txn_index_file_name(name) {
            listing.txn_index_bases.push(base);
        } else if name.ends_with(TEMPORARY_SUFFIX) {
            leftovers.push(dir.join(name));
        }
    }
    for path in leftovers {
        glommio::io::remove(&path).await.map_err(io::Error::from)?;
    }
    listing.segment_bases.sort_unstable();
    listing.snapshot_offsets.sort_unstable();
    listing.txn_index_bases.sort_unstable();
    Ok(listing)
}

/// A segment that is not the last one: trusted, indexes loaded from disk.
async fn load_sealed(
    dir: &Path,
    base_offset: i64,
    next_base: i64,
    config: &LogConfig,
) -> io::Result<Segment> {
    let path = segment_path(dir, base_offset, LOG_SUFFIX);
    let opened = DmaFile::open(&path).await.map_err(io::Error::from)?;
    let size = opened.file_size().await.map_err(io::Error::from)?;
    let file = SegmentFile::opened(path, opened);
    let offset_bytes = read_small_file(&segment_path(dir, base_offset, INDEX_SUFFIX)).await?;
    let time_bytes = read_small_file(&segment_path(dir, base_offset, TIME_INDEX_SUFFIX)).await?;
    let offset_index = offset_bytes.and_then(|bytes| OffsetIndex::decode(&bytes, size));
    let time_index = time_bytes.and_then(|bytes| TimeIndex::decode(&bytes));
    if let (Some(offset_index), Some(time_index)) = (offset_index, time_index) {
        return Ok(Segment::sealed(
            base_offset,
            file,
            size,
            next_base,
            offset_index,
            time_index,
        ));
    }
    tracing::warn!(dir = %dir.display(), base_offset, "segment index missing or corrupt; rebuilding");
    let mut segment = Segment::new(base_offset, file);
    let end = scan_segment(&mut segment, size, false, config.index_interval_bytes).await?;
    if let ScanStop::Corrupt(error) = end.stop {
        tracing::warn!(dir = %dir.display(), base_offset, valid_bytes = end.valid_bytes, %error,
            "sealed segment has unreadable bytes; serving its valid prefix");
    }
    segment.seal();
    segment.next_offset = next_base;
    EncodedIndexes::of(&segment).write(dir).await?;
    Ok(segment)
}

/// Scans the last segment batch by batch and truncates a torn or corrupt tail.
async fn recover_active(
    dir: &Path,
    base_offset: i64,
    config: &LogConfig,
) -> io::Result<(Segment, Option<i64>, Vec<EpochEntry>)> {
    let path = segment_path(dir, base_offset, LOG_SUFFIX);
    let opened = open_segment_file(&path, false).await?;
    let file_size = opened.file_size().await.map_err(io::Error::from)?;
    let segment_file = SegmentFile::opened(path, opened);
    let mut segment = Segment::new(base_offset, segment_file.clone());
    let end = scan_segment(&mut segment, file_size, true, config.index_interval_bytes).await?;
    match &end.stop {
        ScanStop::Clean => {}
        ScanStop::Zeroes => tracing::debug!(dir = %dir.display(), base_offset,
            valid_bytes = end.valid_bytes, "segment data ends where preallocated zeros begin"),
        ScanStop::Corrupt(error) => tracing::warn!(dir = %dir.display(), base_offset,
            valid_bytes = end.valid_bytes, file_size, %error,
            "truncating torn or corrupt tail of the last segment"),
    }
    if end.valid_bytes < file_size {
        let file = segment_file.file().await?;
        file.truncate(end.valid_bytes)
            .await
            .map_err(io::Error::from)?;
        file.fdatasync().await.map_err(io::Error::from)?;
    }
    Ok((segment, end.first_batch_timestamp, end.epoch_starts))
}

/// Feeds every batch of `[0, file_size)` to `segment.record_batch`, stopping
/// at the first one that is not a plausible (and, with `validate`, crc-valid)
/// continuation of the segment.
async fn scan_segment(
    segment: &mut Segment,
    file_size: u64,
    validate: bool,
    index_interval_bytes: u32,
) -> io::Result<ScanEnd> {
    let file = segment.file.file().await?;
    let mut cursor = BatchCursor::new(&file, 0, file_size, RECOVERY_CHUNK_BYTES);
    let mut first_batch_timestamp = None;
    let mut epoch_starts: Vec<EpochEntry> = Vec::new();
    let stop = loop {
        let header = match cursor.next_header().await? {
            NextBatch::Batch(header) => header,
            NextBatch::End => break ScanStop::Clean,
            NextBatch::Zeroes => break ScanStop::Zeroes,
            NextBatch::Corrupt(error) => break ScanStop::Corrupt(error),
        };
        let Some(meta) = BatchMeta::from_header(&header) else {
            break ScanStop::Corrupt(BatchError::Truncated);
        };
        if meta.base_offset < segment.next_offset
            || meta.last_offset < meta.base_offset
            || meta.last_offset - segment.base_offset > SEGMENT_RELATIVE_OFFSET_MAX
        {
            break ScanStop::Corrupt(BatchError::InvalidHeader);
        }
        if validate {
            match cursor.batch_bytes(meta.size as usize).await? {
                None => break ScanStop::Corrupt(BatchError::Truncated),
                Some(bytes) => {
                    if let Err(error) = validate_batch(bytes) {
                        break ScanStop::Corrupt(error);
                    }
                }
            }
        }
        first_batch_timestamp.get_or_insert(meta.max_timestamp);
        if epoch_starts
            .last()
            .is_none_or(|last| last.epoch != header.partition_leader_epoch)
        {
            epoch_starts.push(EpochEntry {
                epoch: header.partition_leader_epoch,
                start_offset: meta.base_offset,
            });
        }
        segment.record_batch(cursor.position(), &meta, index_interval_bytes);
        cursor.advance(meta.size as usize);
    };
    Ok(ScanEnd {
        valid_bytes: cursor.position(),
        stop,
        first_batch_timestamp,
        epoch_starts,
    })
}
