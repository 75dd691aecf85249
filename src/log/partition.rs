//! The shared state of one partition log (`LogInner`, behind the `Rc` of a
//! `PartitionLog` handle) and the synchronous append path: producer checks
//! (`producer_state.rs`), offset assignment, the roll decision (with the
//! producer snapshot it triggers) and queueing for the writer task. Lives
//! on the partition's owning shard only; every `RefCell` here is borrowed
//! for a few statements and never across an `.await`.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::path::PathBuf;

use bytes::{Bytes, BytesMut};

use crate::protocol::batch_builder::parse_control_marker;
use crate::protocol::record_batch::{
    set_base_offset, set_log_append_time, set_partition_leader_epoch, BatchHeader,
};

use crate::replication::leader_epochs::LeaderEpochCache;

use super::dma_writer::DmaWriter;
use super::limits::{PENDING_BYTES_MAX, SEGMENT_RELATIVE_OFFSET_MAX};
use super::producer_snapshot;
use super::producer_state::{AbortedTxn, Admission, AppendOrigin, ProducerBatch, ProducerStates};
use super::segment::{BatchMeta, Segment};
use super::tail_cache::TailCache;
use super::waiters::{OffsetWaiters, StorageFailure, Subscribers};
use super::writer_task;
use super::{AppendInfo, LogConfig, LogError, TimestampType};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    Open,
    Closing,
    Closed,
}

/// One appended batch waiting for the writer task.
pub(crate) struct PendingBatch {
    /// The segment the batch belongs to; a new value means "roll first".
    pub segment_base: i64,
    pub meta: BatchMeta,
    pub bytes: Bytes,
    /// On the first batch of a new segment: the producer snapshot covering
    /// every batch below it, written by the writer task after the roll.
    pub snapshot: Option<Vec<u8>>,
    /// On an abort marker: its `.txnindex` entry, appended once it is written.
    pub aborted: Option<AbortedTxn>,
}

/// The append side's view of the active segment, which includes queued
/// batches the writer has not reached yet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AppendHead {
    pub segment_base: i64,
    pub segment_bytes: u64,
    /// Max timestamp of the segment's first batch (Kafka's rolling-based timestamp).
    pub first_batch_timestamp: Option<i64>,
    pub created_ms: i64,
}

/// Kafka's `LogSegment.shouldRoll`: the active segment is non-empty and the
/// batch would overflow its size or its offsets, or it is older than `segment_ms`.
pub(crate) fn should_roll(
    head: &AppendHead,
    config: &LogConfig,
    segment_bytes_max: u64,
    batch: &BatchMeta,
    now_ms: i64,
) -> bool {
    if head.segment_bytes == 0 {
        return false;
    }
    let waited_ms = match head.first_batch_timestamp {
        Some(first) if first >= 0 => batch.max_timestamp.saturating_sub(first),
        _ => now_ms.saturating_sub(head.created_ms),
    };
    head.segment_bytes + batch.size > segment_bytes_max
        || batch.last_offset - head.segment_base > SEGMENT_RELATIVE_OFFSET_MAX
        || waited_ms > config.segment_ms
}

/// The header of `batch`, checked against its length and offsets.
fn parse_consistent(batch: &[u8]) -> Result<BatchHeader, LogError> {
    let header =
        BatchHeader::parse(batch).map_err(|_| LogError::InvalidBatch("unreadable header"))?;
    if header.total_bytes() != Some(batch.len()) || header.last_offset_delta < 0 {
        return Err(LogError::InvalidBatch(
            "record batch length or offsets inconsistent",
        ));
    }
    Ok(header)
}

pub(crate) struct LogInner {
    pub dir: PathBuf,
    /// Changed at runtime by `PartitionLog::update_config` (AlterConfigs).
    pub config: RefCell<LogConfig>,
    /// `config.segment_bytes` clamped to what u32 index positions can address.
    pub segment_bytes_max: Cell<u64>,
    pub lifecycle: Cell<Lifecycle>,
    /// Offset after the last written batch: everything below is readable
    /// here (by followers too, when the partition is replicated).
    pub written_end: Cell<i64>,
    /// What consumers may read. Follows `written_end` unless `replicated`,
    /// when the replication layer moves it (the ISR's smallest end).
    pub high_watermark: Cell<i64>,
    pub replicated: Cell<bool>,
    /// The high watermark last stored in `offset_file::HIGH_WATERMARK`.
    pub checkpointed_high_watermark: Cell<Option<i64>>,
    /// Stamped on every batch this replica appends as leader (KIP-101).
    pub leader_epoch: Cell<i32>,
    /// Where each leader epoch starts in this log (`leader_epoch_file`).
    pub epochs: RefCell<LeaderEpochCache>,
    /// The cache changed since the writer task last stored it.
    pub epochs_changed: Cell<bool>,
    pub log_start_offset: Cell<i64>,
    pub log_end_offset: Cell<i64>,
    /// Every offset below this is covered by an fdatasync.
    pub durable_offset: Cell<i64>,
    pub pending_bytes: Cell<usize>,
    pub writer_running: Cell<bool>,
    pub failure: RefCell<Option<StorageFailure>>,
    pub segments: RefCell<Vec<Segment>>,
    pub pending: RefCell<VecDeque<PendingBatch>>,
    pub head: Cell<AppendHead>,
    pub tail_cache: RefCell<TailCache>,
    /// Taken by the writer task while it runs (so it can await with it).
    pub writer: RefCell<Option<DmaWriter>>,
    pub written_waiters: RefCell<OffsetWaiters>,
    pub durable_waiters: RefCell<OffsetWaiters>,
    /// acks=all producers of a replicated partition, released as the high
    /// watermark passes their offsets.
    pub high_watermark_waiters: RefCell<OffsetWaiters>,
    /// Told when the written or durable end moves (a replicated leader's
    /// own end counts towards its high watermark).
    pub end_listener: RefCell<Option<std::rc::Rc<dyn Fn()>>>,
    pub subscribers: RefCell<Subscribers>,
    /// `close` waits here for the writer task to finish its last round.
    pub writer_idle: RefCell<Subscribers>,
    /// Idempotent producers and transactions; updated by every append.
    pub producers: RefCell<ProducerStates>,
    /// Producer snapshot files on disk, oldest first.
    pub snapshot_offsets: RefCell<Vec<i64>>,
    /// One DeleteRecords at a time writes `log-start-offset` (the write
    /// awaits, and two writes must neither share the temporary file nor
    /// land out of order).
    pub log_start_writer: glommio::sync::Semaphore,
}

impl LogInner {
    pub fn check_usable(&self) -> Result<(), LogError> {
        if self.lifecycle.get() != Lifecycle::Open {
            return Err(LogError::Closed);
        }
        if let Some(failure) = self.failure.borrow().as_ref() {
            return Err(LogError::Io(failure.to_error()));
        }
        Ok(())
    }

    /// Appends one batch: producer checks for `origin`, offsets, the roll
    /// decision, then the producer state update and the queueing, all
    /// synchronously so the next append sees this one.
    pub fn append(
        self: &std::rc::Rc<Self>,
        batch: &[u8],
        now_ms: i64,
        origin: AppendOrigin,
    ) -> Result<AppendInfo, LogError> {
        self.check_usable()?;
        let header = parse_consistent(batch)?;
        if origin == AppendOrigin::Client && header.is_control() {
            // Only coordinators write markers (Kafka refuses client control batches).
            return Err(LogError::InvalidTxnState);
        }
        let marker = header
            .is_control()
            .then(|| parse_control_marker(batch))
            .flatten();
        let producer = ProducerBatch::from_header(&header, marker);
        if let Some(producer) = &producer {
            let admission = self.producers.borrow().validate(producer, origin)?;
            if let Admission::Duplicate(original) = admission {
                return Ok(AppendInfo {
                    base_offset: original.base_offset,
                    last_offset: original.last_offset,
                    log_append_time_ms: -1,
                    log_start_offset: self.log_start_offset.get(),
                });
            }
        }
        self.check_room(batch.len())?;
        let log_append_time = self.config.borrow().timestamp_type == TimestampType::LogAppendTime;
        let base_offset = self.log_end_offset.get();
        let max_timestamp = if log_append_time {
            now_ms
        } else {
            header.max_timestamp
        };
        // The one copy of the produce path: the request buffer is released
        // when the response goes out, the log keeps its own bytes.
        let mut copy = BytesMut::from(batch);
        set_base_offset(&mut copy, base_offset);
        set_partition_leader_epoch(&mut copy, self.leader_epoch.get());
        if log_append_time {
            set_log_append_time(&mut copy, now_ms);
        }
        self.queue(copy.freeze(), &header, producer, max_timestamp, now_ms)?;
        self.note_epoch(self.leader_epoch.get(), base_offset);
        Ok(AppendInfo {
            base_offset,
            last_offset: base_offset + i64::from(header.last_offset_delta),
            log_append_time_ms: if log_append_time { now_ms } else { -1 },
            log_start_offset: self.log_start_offset.get(),
        })
    }

    /// Appends a batch copied from the partition's leader as it is: its
    /// offsets, leader epoch and timestamps are the leader's (Kafka's
    /// `appendAsFollower`). It must start at this log's end. Producer state
    /// is updated without checks, as on the leader, so a producer's retry
    /// after a failover is still recognised as a duplicate.
    pub fn append_replicated(
        self: &std::rc::Rc<Self>,
        batch: Bytes,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        self.check_usable()?;
        let header = parse_consistent(&batch)?;
        if header.base_offset != self.log_end_offset.get() {
            return Err(LogError::InvalidBatch(
                "replicated batch does not start at the log end",
            ));
        }
        let marker = header
            .is_control()
            .then(|| parse_control_marker(&batch))
            .flatten();
        let producer = ProducerBatch::from_header(&header, marker);
        self.queue(batch, &header, producer, header.max_timestamp, now_ms)?;
        self.note_epoch(header.partition_leader_epoch, header.base_offset);
        Ok(AppendInfo {
            base_offset: header.base_offset,
            last_offset: header.last_offset(),
            log_append_time_ms: -1,
            log_start_offset: self.log_start_offset.get(),
        })
    }

    /// A batch of `epoch` was appended at `base_offset`: a new epoch starts
    /// there (one comparison when it does not).
    pub fn note_epoch(&self, epoch: i32, base_offset: i64) {
        if self.epochs.borrow_mut().assign(epoch, base_offset) {
            self.epochs_changed.set(true);
        }
    }

    /// The log starts at `log_start_offset` now: epochs before it are gone.
    pub fn epochs_start_at(&self, log_start_offset: i64) {
        self.epochs
            .borrow_mut()
            .truncate_from_start(log_start_offset);
        self.epochs_changed.set(true);
    }

    /// Whether `len` more bytes fit the write queue (one batch always does).
    fn check_room(&self, len: usize) -> Result<(), LogError> {
        let pending_bytes = self.pending_bytes.get();
        if pending_bytes > 0 && pending_bytes + len > PENDING_BYTES_MAX {
            return Err(LogError::QueueFull);
        }
        Ok(())
    }

    /// Queues `bytes` (offsets final) for the writer: the roll decision and
    /// the producer snapshot it triggers, the producer state update, the
    /// tail cache, and the log end.
    fn queue(
        self: &std::rc::Rc<Self>,
        bytes: Bytes,
        header: &BatchHeader,
        producer: Option<ProducerBatch>,
        max_timestamp: i64,
        now_ms: i64,
    ) -> Result<(), LogError> {
        self.check_room(bytes.len())?;
        let base_offset = self.log_end_offset.get();
        let meta = BatchMeta {
            base_offset,
            last_offset: base_offset + i64::from(header.last_offset_delta),
            max_timestamp,
            size: bytes.len() as u64,
        };

        let mut head = self.head.get();
        let roll = should_roll(
            &head,
            &self.config.borrow(),
            self.segment_bytes_max.get(),
            &meta,
            now_ms,
        );
        // The state before this batch is exactly "every batch below the new
        // segment's base": the snapshot a restart can start from.
        let snapshot =
            roll.then(|| producer_snapshot::encode(&self.producers.borrow(), base_offset));
        if roll {
            head = AppendHead {
                segment_base: base_offset,
                segment_bytes: 0,
                first_batch_timestamp: None,
                created_ms: now_ms,
            };
        }
        head.segment_bytes += meta.size;
        head.first_batch_timestamp.get_or_insert(meta.max_timestamp);
        self.head.set(head);

        let aborted = producer.and_then(|producer| {
            let mut producers = self.producers.borrow_mut();
            producers.forget_stable(self.high_watermark.get());
            producers.apply(&producer, base_offset, meta.last_offset, now_ms)
        });

        self.tail_cache
            .borrow_mut()
            .push(meta.base_offset, meta.last_offset, bytes.clone());
        self.pending.borrow_mut().push_back(PendingBatch {
            segment_base: head.segment_base,
            meta,
            bytes: bytes.clone(),
            snapshot,
            aborted,
        });
        self.pending_bytes
            .set(self.pending_bytes.get() + bytes.len());
        self.log_end_offset.set(meta.last_offset + 1);
        writer_task::ensure_running(self);
        Ok(())
    }

    /// The LSO now (forgetting transactions whose markers got written).
    /// Never below the log start offset: a transaction whose first batches
    /// were deleted holds it at the start, as Kafka's `updateFirstUnstableOffset`.
    pub fn last_stable_offset(&self) -> i64 {
        let high_watermark = self.high_watermark.get();
        let mut producers = self.producers.borrow_mut();
        producers.forget_stable(high_watermark);
        let unstable = producers.last_stable_offset(high_watermark);
        unstable
            .max(self.log_start_offset.get())
            .min(high_watermark)
    }

    /// Durability waits go through the writer task, which runs one
    /// fdatasync for every waiter below the written end (group commit).
    pub async fn wait_synced(self: &std::rc::Rc<Self>, last_offset: i64) -> Result<(), LogError> {
        if last_offset < self.durable_offset.get() {
            return Ok(());
        }
        if let Some(failure) = self.failure.borrow().as_ref() {
            return Err(LogError::Io(failure.to_error()));
        }
        if self.lifecycle.get() == Lifecycle::Closed {
            return Err(LogError::Closed);
        }
        let receiver = self.durable_waiters.borrow_mut().register(last_offset);
        writer_task::ensure_running(self);
        wait_outcome(receiver).await
    }

    /// Resolves once the high watermark passed `last_offset` (acks=all on a
    /// replicated partition); `Closed` when this replica stops leading.
    pub async fn wait_high_watermark(&self, last_offset: i64) -> Result<(), LogError> {
        self.wait_below(
            &self.high_watermark,
            &self.high_watermark_waiters,
            last_offset,
        )
        .await
    }

    /// Tells the end listener, if any, that the written or durable end moved.
    pub fn end_advanced(&self) {
        let listener = self.end_listener.borrow().clone();
        if let Some(listener) = listener {
            listener();
        }
    }

    pub async fn wait_written(&self, last_offset: i64) -> Result<(), LogError> {
        self.wait_below(&self.written_end, &self.written_waiters, last_offset)
            .await
    }

    /// Resolves once `done_below` passed `last_offset` (released through
    /// `waiters`); a storage failure or a closed log answers at once.
    async fn wait_below(
        &self,
        done_below: &Cell<i64>,
        waiters: &RefCell<OffsetWaiters>,
        last_offset: i64,
    ) -> Result<(), LogError> {
        if last_offset < done_below.get() {
            return Ok(());
        }
        if let Some(failure) = self.failure.borrow().as_ref() {
            return Err(LogError::Io(failure.to_error()));
        }
        if self.lifecycle.get() == Lifecycle::Closed {
            return Err(LogError::Closed);
        }
        let receiver = waiters.borrow_mut().register(last_offset);
        wait_outcome(receiver).await
    }

    /// Whether a close must write a producer snapshot: there are producers,
    /// or a snapshot on disk that one at the log end must supersede.
    pub fn has_producer_state(&self) -> bool {
        !self.producers.borrow().is_empty() || !self.snapshot_offsets.borrow().is_empty()
    }

    /// Records a failed write or sync: every waiter and every later append
    /// gets a storage error (the partition goes offline, as a Kafka log
    /// directory does; after a full disk the server reopens it once space is
    /// back, `PartitionLog::reopen`); data below the high watermark stays
    /// readable.
    pub fn fail(&self, error: &io::Error) {
        tracing::error!(dir = %self.dir.display(), %error, "partition log storage failure");
        let failure = StorageFailure::from_error(error);
        self.written_waiters.borrow_mut().fail_all(&failure);
        self.durable_waiters.borrow_mut().fail_all(&failure);
        self.high_watermark_waiters.borrow_mut().fail_all(&failure);
        self.pending.borrow_mut().clear();
        self.pending_bytes.set(0);
        *self.failure.borrow_mut() = Some(failure);
        self.subscribers.borrow_mut().notify_all();
    }
}

async fn wait_outcome(
    receiver: futures::channel::oneshot::Receiver<super::waiters::WaitOutcome>,
) -> Result<(), LogError> {
    match receiver.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(failure)) => Err(LogError::Io(failure.to_error())),
        Err(_) => Err(LogError::Closed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(segment_bytes: u64, first: Option<i64>) -> AppendHead {
        AppendHead {
            segment_base: 0,
            segment_bytes,
            first_batch_timestamp: first,
            created_ms: 1_000,
        }
    }

    fn batch(size: u64, max_timestamp: i64) -> BatchMeta {
        BatchMeta {
            base_offset: 10,
            last_offset: 12,
            max_timestamp,
            size,
        }
    }

    #[test]
    fn rolls_on_size_only_when_the_segment_has_data() {
        let config = LogConfig::default();
        assert!(!should_roll(
            &head(0, None),
            &config,
            100,
            &batch(500, 1),
            1
        ));
        assert!(should_roll(
            &head(50, Some(1)),
            &config,
            100,
            &batch(51, 1),
            1
        ));
        assert!(!should_roll(
            &head(50, Some(1)),
            &config,
            100,
            &batch(50, 1),
            1
        ));
    }

    #[test]
    fn rolls_on_age_of_the_first_batch_or_creation_time() {
        let config = LogConfig {
            segment_ms: 1_000,
            ..LogConfig::default()
        };
        assert!(!should_roll(
            &head(10, Some(5_000)),
            &config,
            1 << 20,
            &batch(10, 6_000),
            0
        ));
        assert!(should_roll(
            &head(10, Some(5_000)),
            &config,
            1 << 20,
            &batch(10, 6_001),
            0
        ));
        assert!(should_roll(
            &head(10, None),
            &config,
            1 << 20,
            &batch(10, -1),
            2_001
        ));
        assert!(!should_roll(
            &head(10, Some(-1)),
            &config,
            1 << 20,
            &batch(10, -1),
            2_000
        ));
    }
}
