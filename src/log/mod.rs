//! The partition log: segments of RecordBatch v2 bytes, written with glommio
//! DMA, with a sparse offset index, a time index, a bounded in-memory tail
//! cache, and recovery of a torn tail at start-up.
//!
//! A `PartitionLog` lives on exactly one shard (the partition's owner, see
//! `runtime::placement`) and is only touched from that shard's executor.
//! It is `!Send` by construction (`Rc` inside).
//!
//! PUBLIC API CONTRACT (the server layer compiles against these signatures):
//! see the doc comment of each item.
//!
//! Inside (one file per storage concept):
//! - `partition`: shared state and the synchronous append path
//! - `writer_task` + `dma_writer`: the one writer task per partition, group
//!   commit, aligned O_DIRECT writes, preallocation, segment rolls
//! - `segment`, `offset_index`, `time_index`, `index_file`: segments and indexes
//! - `recovery`: open, index loading, torn-tail truncation
//! - `tail_cache`, `reader`, `batch_cursor`: the fetch path
//! - `timestamp_lookup`, `retention`, `lifecycle`, `waiters`, `limits`

use std::path::PathBuf;
use std::rc::Rc;

use bytes::Bytes;
use thiserror::Error;

use crate::config::FlushPolicy;

use partition::{Lifecycle, LogInner};

mod batch_cursor;
mod dma_writer;
mod index_file;
mod lifecycle;
mod limits;
mod log_start;
mod offset_index;
mod partition;
pub mod producer_state;
mod reader;
mod recovery;
mod retention;
mod segment;
mod tail_cache;
mod time_index;
mod timestamp_lookup;
mod waiters;
mod writer_task;

#[cfg(test)]
mod tests;

/// Which timestamp a batch carries once stored (Kafka `message.timestamp.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// Per-partition settings, derived from the topic's configs.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Roll to a new segment when the active one would exceed this (Kafka `segment.bytes`).
    pub segment_bytes: u64,
    /// Roll when the active segment's first batch is older than this (Kafka `segment.ms`).
    pub segment_ms: i64,
    /// Bytes between two sparse index entries (Kafka `index.interval.bytes`).
    pub index_interval_bytes: u32,
    pub timestamp_type: TimestampType,
    /// Delete segments older than this; -1 keeps forever (Kafka `retention.ms`).
    pub retention_ms: i64,
    /// Delete oldest segments while the log is larger than this; -1 = no limit.
    pub retention_bytes: i64,
    pub flush: FlushPolicy,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            index_interval_bytes: 4096,
            timestamp_type: TimestampType::CreateTime,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            flush: FlushPolicy::Always,
        }
    }
}

/// Failures of the log; mapped to Kafka error codes by the server layer.
#[derive(Debug, Error)]
pub enum LogError {
    /// Disk I/O failed (Kafka KAFKA_STORAGE_ERROR).
    #[error("storage error: {0}")]
    Io(#[from] std::io::Error),
    /// Fetch/ListOffsets outside [log start offset, high watermark] (OFFSET_OUT_OF_RANGE).
    #[error("offset {offset} is out of range [{log_start_offset}, {high_watermark}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        high_watermark: i64,
    },
    /// The log was closed or deleted while the call waited (NOT_LEADER_OR_FOLLOWER).
    #[error("partition log is closed")]
    Closed,
}

/// What `append` assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    /// -1 unless the topic uses LogAppendTime.
    pub log_append_time_ms: i64,
    pub log_start_offset: i64,
}

/// What `read` found: whole batches, the first one containing the requested offset.
#[derive(Debug, Clone, Default)]
pub struct ReadResult {
    pub batches: Vec<Bytes>,
    pub high_watermark: i64,
    pub log_start_offset: i64,
}

impl ReadResult {
    pub fn total_bytes(&self) -> usize {
        self.batches.iter().map(Bytes::len).sum()
    }
}

/// One partition's log. Cheap to clone (shared handle within one shard).
#[derive(Clone)]
pub struct PartitionLog {
    inner: Rc<LogInner>,
}

impl PartitionLog {
    /// Opens (creating if absent) the partition directory `dir`, recovering the
    /// active segment: its batches are checked (length, crc32c) and a torn or
    /// corrupt tail is truncated and logged.
    pub async fn open(dir: PathBuf, config: LogConfig) -> Result<PartitionLog, LogError> {
        Self::open_with_tail_cache(dir, config, limits::TAIL_CACHE_BYTES).await
    }

    /// `open` with a chosen tail cache bound (tests use a tiny one to reach the disk path).
    pub(crate) async fn open_with_tail_cache(
        dir: PathBuf,
        config: LogConfig,
        tail_cache_bytes: usize,
    ) -> Result<PartitionLog, LogError> {
        let inner = recovery::open(dir, config, tail_cache_bytes).await?;
        Ok(PartitionLog { inner })
    }

    /// Appends one batch that `protocol::record_batch::validate_batch` accepted.
    /// Synchronous: assigns offsets (base offset = log end offset), rewrites the
    /// base offset (and LogAppendTime if configured) in a copy, queues it for the
    /// DMA writer. Not visible to readers until written.
    pub fn append(&self, batch: &[u8], now_ms: i64) -> Result<AppendInfo, LogError> {
        self.inner.append(batch, now_ms)
    }

    /// Resolves once every offset up to `last_offset` is written to the file.
    pub async fn wait_written(&self, last_offset: i64) -> Result<(), LogError> {
        self.inner.wait_written(last_offset).await
    }

    /// Resolves once `last_offset` is durable under the flush policy: after an
    /// fdatasync covering it for `Always`, after the write otherwise.
    pub async fn wait_durable(&self, last_offset: i64) -> Result<(), LogError> {
        let flush = self.inner.config.borrow().flush;
        if flush == FlushPolicy::Always {
            self.inner.wait_synced(last_offset).await
        } else {
            self.inner.wait_written(last_offset).await
        }
    }

    /// Offset after the last written (consumer-visible) record.
    pub fn high_watermark(&self) -> i64 {
        self.inner.high_watermark.get()
    }

    pub fn log_start_offset(&self) -> i64 {
        self.inner.log_start_offset.get()
    }

    /// Next offset `append` will assign (includes queued, unwritten batches).
    pub fn log_end_offset(&self) -> i64 {
        self.inner.log_end_offset.get()
    }

    /// True when the log holds no records (log start offset == log end offset).
    pub fn is_empty(&self) -> bool {
        self.log_start_offset() == self.log_end_offset()
    }

    /// Reads whole batches starting with the one containing `offset`, up to
    /// `max_bytes` but always at least one batch if any exists (KIP-74).
    /// `offset == high_watermark` gives no batches; outside
    /// [log start offset, high watermark] is `OffsetOutOfRange`.
    pub async fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadResult, LogError> {
        if self.inner.lifecycle.get() == Lifecycle::Closed {
            return Err(LogError::Closed);
        }
        reader::read(&self.inner, offset, max_bytes).await
    }

    /// A receiver resolved the next time the high watermark advances (or the log closes).
    pub fn subscribe(&self) -> futures::channel::oneshot::Receiver<()> {
        let receiver = self.inner.subscribers.borrow_mut().subscribe();
        if self.inner.lifecycle.get() == Lifecycle::Closed {
            self.inner.subscribers.borrow_mut().notify_all();
        }
        receiver
    }

    /// First record whose timestamp is >= `timestamp_ms`: `(offset, timestamp)`,
    /// or `None` when every record is older (ListOffsets answers -1, -1).
    pub async fn offset_for_timestamp(
        &self,
        timestamp_ms: i64,
    ) -> Result<Option<(i64, i64)>, LogError> {
        if self.inner.lifecycle.get() == Lifecycle::Closed {
            return Err(LogError::Closed);
        }
        Ok(timestamp_lookup::offset_for_timestamp(&self.inner, timestamp_ms).await?)
    }

    /// The first record carrying the largest timestamp in the log (ListOffsets
    /// `MAX_TIMESTAMP`, KIP-734): `(offset, timestamp)`, or `None` when no
    /// written record has a timestamp.
    pub async fn max_timestamp_offset(&self) -> Result<Option<(i64, i64)>, LogError> {
        let largest = self
            .inner
            .segments
            .borrow()
            .iter()
            .map(|segment| segment.max_timestamp)
            .max()
            .filter(|timestamp_ms| *timestamp_ms >= 0);
        match largest {
            // The first record at or after the largest timestamp carries it.
            Some(timestamp_ms) => self.offset_for_timestamp(timestamp_ms).await,
            None => Ok(None),
        }
    }

    /// Deletes whole sealed segments past `retention_ms` (by their largest
    /// timestamp) or while the log exceeds `retention_bytes`, advancing the
    /// log start offset. Returns how many segments were deleted. The server
    /// calls it periodically with the wall clock.
    pub async fn enforce_retention(&self, now_ms: i64) -> Result<usize, LogError> {
        retention::enforce(&self.inner, now_ms).await
    }

    /// Applies changed topic configs (AlterConfigs) from the next append or
    /// retention check on; the broker's flush policy is kept.
    pub fn update_config(&self, config: LogConfig) {
        let flush = self.inner.config.borrow().flush;
        self.inner
            .segment_bytes_max
            .set(config.segment_bytes.clamp(1, limits::SEGMENT_BYTES_LIMIT));
        *self.inner.config.borrow_mut() = LogConfig { flush, ..config };
    }

    /// DeleteRecords: moves the log start offset up to `offset` (-1 = the
    /// high watermark), durably, and deletes the segments wholly below it.
    /// Returns the new log start offset (Kafka's low watermark).
    pub async fn delete_records(&self, offset: i64) -> Result<i64, LogError> {
        let high_watermark = self.high_watermark();
        let target = if offset == -1 { high_watermark } else { offset };
        if target < 0 || target > high_watermark {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset(),
                high_watermark,
            });
        }
        if target > self.log_start_offset() {
            log_start::write(&self.inner.dir, target)?;
            self.inner.log_start_offset.set(target);
            retention::delete_before(&self.inner, target).await?;
        }
        Ok(self.log_start_offset())
    }

    /// Deletes the sealed segments wholly below `offset`, advancing the log
    /// start offset; the active segment stays. Returns how many were deleted.
    pub async fn delete_segments_before(&self, offset: i64) -> Result<usize, LogError> {
        retention::delete_before(&self.inner, offset).await
    }

    /// fdatasync now if anything was written since the last sync.
    pub async fn sync(&self) -> Result<(), LogError> {
        lifecycle::sync(&self.inner).await
    }

    /// Waits for queued writes, syncs, persists indexes, trims preallocation, closes files.
    pub async fn close(&self) -> Result<(), LogError> {
        lifecycle::close(&self.inner).await
    }

    /// Closes and removes the partition directory.
    pub async fn delete(&self) -> Result<(), LogError> {
        lifecycle::delete(&self.inner).await
    }
}
