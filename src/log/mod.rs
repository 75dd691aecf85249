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
//! - `free_space`: the per-shard free-space guard that refuses Produce
//!   while the disk is below its reserve
//! - `truncation`: cutting a replica's log back to an offset
//! - `producer_state`: idempotent producers and transactions (pure logic),
//!   `producer_snapshot` + `producer_recovery`: their persistence,
//!   `txn_index`: the per-segment aborted-transaction index
//!
//! Idempotent producers and transactions (KIP-98) live in the log because
//! their state is a function of the log: every append checks and updates
//! it synchronously, in offset order, on the owning shard. Produce goes
//! through `append_from_producer` (duplicates answered with the original
//! offsets, sequence gaps and fenced epochs refused); coordinators on this
//! broker use `append` and `append_marker` (epoch fencing only). The last
//! stable offset and the aborted-transaction list serve read_committed
//! fetches (`read_committed`). The state survives restarts through
//! `<offset>.snapshot` files (at each roll and at close) plus a replay of
//! the batch headers after the newest one, and `<base>.txnindex` files.
//!
//! Replicas (issue 12): the written end (everything written, readable by
//! followers through `read_for_replica`) and the high watermark (what
//! consumers see) are the same offset until `replicate` hands the high
//! watermark to the replication layer, which then moves it with
//! `advance_high_watermark`. A follower copies its leader's batches with
//! `append_replicated` (offsets, leader epoch and producer state as the
//! leader wrote them); a leader stamps its epoch (`set_leader_epoch`). A
//! follower whose tail diverged cuts it with `truncate_to` (`truncation`:
//! files only, between a close and an open that rebuilds the rest).

use std::path::PathBuf;
use std::rc::Rc;

use bytes::Bytes;
use thiserror::Error;

use crate::config::FlushPolicy;
use crate::protocol::batch_builder::{control_batch, ControlType};
use crate::protocol::errors::KafkaError;
use crate::replication::leader_epochs::{EpochEndOffset, LeaderEpochCache};

use partition::{Lifecycle, LogInner};
use producer_state::{AppendOrigin, ProducerError};

mod batch_cursor;
mod dma_writer;
pub mod free_space;
mod index_file;
mod leader_epoch_file;
mod lifecycle;
mod limits;
mod log_start;
mod offset_file;
mod offset_index;
mod partition;
mod preallocation;
mod producer_recovery;
mod producer_snapshot;
pub mod producer_state;
mod reader;
mod recovery;
mod retention;
mod segment;
mod segment_file;
mod tail_cache;
mod time_index;
mod timestamp_lookup;
mod truncation;
mod txn_index;
mod waiters;
mod writer_task;

pub use segment_file::{open_file_budget, set_open_file_budget};
pub use waiters::{DataSignal, SessionWatch};

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
    /// A batch or marker from an older producer epoch than the partition
    /// knows: a fenced zombie (INVALID_PRODUCER_EPOCH).
    #[error("producer epoch is older than the one this partition knows")]
    InvalidProducerEpoch,
    /// A sequence gap, or a new epoch not starting at 0 (OUT_OF_ORDER_SEQUENCE_NUMBER).
    #[error("producer sequence number out of order")]
    OutOfOrderSequence,
    /// A non-transactional batch while the producer's transaction is open on
    /// this partition, or a control batch from a client (INVALID_TXN_STATE).
    #[error("batch does not fit the producer's transaction state")]
    InvalidTxnState,
    /// A marker whose coordinator epoch is older than the one of the
    /// producer's last marker on this partition: its coordinator was
    /// replaced (TRANSACTION_COORDINATOR_FENCED).
    #[error("transaction marker from a coordinator older than the producer's last")]
    TransactionCoordinatorFenced,
    /// The partition's write queue holds `PENDING_BYTES_MAX` already: the
    /// disk is behind. Not an I/O error; answered as KAFKA_STORAGE_ERROR,
    /// which clients retry after a metadata refresh.
    #[error("partition write queue is full")]
    QueueFull,
    /// A batch whose header is unreadable or whose length or offsets
    /// disagree (CORRUPT_MESSAGE). Produce validates client batches before
    /// they get here, so this is a broker bug or an internal writer's.
    #[error("record batch is invalid: {0}")]
    InvalidBatch(&'static str),
}

impl LogError {
    /// The Kafka error a client sees for this failure (the protocol
    /// boundary's one mapping of log errors).
    pub fn kafka_error(&self) -> KafkaError {
        match self {
            LogError::Io(_) | LogError::QueueFull => KafkaError::KafkaStorageError,
            LogError::OffsetOutOfRange { .. } => KafkaError::OffsetOutOfRange,
            LogError::Closed => KafkaError::NotLeaderOrFollower,
            LogError::InvalidProducerEpoch => KafkaError::InvalidProducerEpoch,
            LogError::OutOfOrderSequence => KafkaError::OutOfOrderSequenceNumber,
            LogError::InvalidTxnState => KafkaError::InvalidTxnState,
            LogError::TransactionCoordinatorFenced => KafkaError::TransactionCoordinatorFenced,
            LogError::InvalidBatch(_) => KafkaError::CorruptMessage,
        }
    }

    /// [`LogError::kafka_error`] as the wire's error code.
    pub fn code(&self) -> i16 {
        self.kafka_error().code()
    }
}

impl From<ProducerError> for LogError {
    fn from(error: ProducerError) -> Self {
        match error {
            ProducerError::InvalidProducerEpoch => LogError::InvalidProducerEpoch,
            ProducerError::OutOfOrderSequence => LogError::OutOfOrderSequence,
            ProducerError::InvalidTxnState => LogError::InvalidTxnState,
            ProducerError::TransactionCoordinatorFenced => LogError::TransactionCoordinatorFenced,
        }
    }
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

/// An aborted transaction a read_committed consumer must drop: the records
/// of `producer_id` from `first_offset` up to its abort marker (Fetch
/// `AbortedTransactions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTransaction {
    pub producer_id: i64,
    pub first_offset: i64,
}

/// What `read` found: whole batches, the first one containing the requested offset.
#[derive(Debug, Clone, Default)]
pub struct ReadResult {
    pub batches: Vec<Bytes>,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub last_stable_offset: i64,
    /// Aborted transactions overlapping the returned batches; empty unless
    /// the read was `read_committed`.
    pub aborted_transactions: Vec<AbortedTransaction>,
}

impl ReadResult {
    pub fn total_bytes(&self) -> usize {
        self.batches.iter().map(Bytes::len).sum()
    }
}

/// What a log keeps when it is closed and its directory opened again
/// (truncation, a reopen after a full disk): where it is, its config and
/// tail cache bound, its replication mode with the high watermark, and the
/// stamped leader epoch (the stamp only: a reopen does not start an epoch).
struct Carried {
    dir: PathBuf,
    config: LogConfig,
    tail_cache_bytes: usize,
    /// `Some` when the log is replicated.
    high_watermark: Option<i64>,
    leader_epoch: i32,
}

impl Carried {
    fn of(inner: &LogInner) -> Carried {
        Carried {
            dir: inner.dir.clone(),
            config: inner.config.borrow().clone(),
            tail_cache_bytes: inner.tail_cache.borrow().capacity_bytes(),
            high_watermark: inner.replicated.get().then(|| inner.high_watermark.get()),
            leader_epoch: inner.leader_epoch.get(),
        }
    }

    /// Opens the directory again (recovering its last segment) and puts
    /// back what was carried; the high watermark is capped at the new end.
    async fn open_again(self) -> Result<PartitionLog, LogError> {
        let log = PartitionLog::open_with_tail_cache(self.dir, self.config, self.tail_cache_bytes)
            .await?;
        log.inner.leader_epoch.set(self.leader_epoch);
        if let Some(high_watermark) = self.high_watermark {
            log.replicate(high_watermark.min(log.log_end_offset()));
        }
        Ok(log)
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

    /// Appends one batch that `protocol::record_batch::validate_batch` accepted,
    /// written by a coordinator on this broker (Kafka's origin "coordinator").
    /// Synchronous: assigns offsets (base offset = log end offset), rewrites the
    /// base offset (and LogAppendTime if configured) in a copy, queues it for the
    /// DMA writer. Not visible to readers until written.
    ///
    /// A batch with a producer id updates the producer state (a transactional
    /// batch opens the producer's transaction, a marker ends it); an older
    /// producer epoch is `InvalidProducerEpoch`, a plain batch inside an open
    /// transaction `InvalidTxnState`. No sequence or duplicate checks.
    pub fn append(&self, batch: &[u8], now_ms: i64) -> Result<AppendInfo, LogError> {
        self.inner.append(batch, now_ms, AppendOrigin::Coordinator)
    }

    /// Appends a batch from a Produce request with every idempotence check
    /// (KIP-98): a retry of one of the producer's last 5 batches returns
    /// `Ok` with the ORIGINAL batch's offsets and appends nothing
    /// (`log_append_time_ms` -1); a sequence gap is `OutOfOrderSequence`, an
    /// older epoch `InvalidProducerEpoch`, a plain batch inside the
    /// producer's open transaction or a control batch `InvalidTxnState`.
    ///
    /// ```ignore
    /// let first = log.append_from_producer(&batch, now_ms)?;
    /// let retry = log.append_from_producer(&batch, now_ms)?; // lost response
    /// assert_eq!(retry.base_offset, first.base_offset);
    /// ```
    pub fn append_from_producer(&self, batch: &[u8], now_ms: i64) -> Result<AppendInfo, LogError> {
        self.inner.append(batch, now_ms, AppendOrigin::Client)
    }

    /// Appends the marker ending `producer_id`'s transaction on this partition
    /// (WriteTxnMarkers): a commit makes its records visible to read_committed
    /// consumers once written, an abort adds them to the aborted list and the
    /// segment's `.txnindex`. An older `producer_epoch` is `InvalidProducerEpoch`,
    /// a `coordinator_epoch` older than the one of the producer's last marker
    /// here `TransactionCoordinatorFenced` (nothing is written).
    pub fn append_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        control: ControlType,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        let batch = control_batch(
            producer_id,
            producer_epoch,
            coordinator_epoch,
            control,
            now_ms,
        );
        self.inner.append(&batch, now_ms, AppendOrigin::Coordinator)
    }

    /// Whether `producer_id` (at `producer_epoch`) has a transaction open on
    /// this partition: its next transactional batches need no check with
    /// the coordinator (Kafka's transaction verification, KIP-890).
    pub fn has_open_transaction(&self, producer_id: i64, producer_epoch: i16) -> bool {
        self.inner
            .producers
            .borrow()
            .producer(producer_id)
            .is_some_and(|entry| {
                entry.epoch == producer_epoch && entry.current_txn_first_offset.is_some()
            })
    }

    /// The last stable offset: min(first offset of every transaction whose
    /// marker is not written yet, high watermark). read_committed consumers
    /// see only the batches below it.
    pub fn last_stable_offset(&self) -> i64 {
        self.inner.last_stable_offset()
    }

    /// Forgets producers that have not written for `expiration_ms` or more
    /// (Kafka `producer.id.expiration.ms`), except those with an open
    /// transaction. Returns how many. The server calls it periodically.
    pub fn expire_producers(&self, now_ms: i64, expiration_ms: i64) -> usize {
        self.inner
            .producers
            .borrow_mut()
            .expire(now_ms, expiration_ms)
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

    /// What consumers may read up to: the written end, or for a replicated
    /// partition the end every in-sync replica has (see `replicate`).
    pub fn high_watermark(&self) -> i64 {
        self.inner.high_watermark.get()
    }

    /// Offset after the last written batch: readable here and by followers.
    pub fn written_end_offset(&self) -> i64 {
        self.inner.written_end.get()
    }

    /// Every offset below this is covered by an fdatasync.
    pub fn durable_end_offset(&self) -> i64 {
        self.inner.durable_offset.get()
    }

    /// From now on the replication layer owns the high watermark: it starts
    /// at `high_watermark` (from the replica's checkpoint or its leader;
    /// never past the written end) and moves only through
    /// `advance_high_watermark`.
    pub fn replicate(&self, high_watermark: i64) {
        let inner = &self.inner;
        inner.replicated.set(true);
        // A checkpoint from an earlier run knows better than a guess.
        let start = inner
            .checkpointed_high_watermark
            .get()
            .unwrap_or(high_watermark)
            .clamp(inner.log_start_offset.get(), inner.written_end.get());
        inner.high_watermark.set(start);
    }

    /// Stores a replicated partition's high watermark if it moved since the
    /// last store (Kafka checkpoints it every
    /// replica.high.watermark.checkpoint.interval.ms), so a restarted
    /// replica starts from it instead of from its log start.
    pub async fn checkpoint_high_watermark(&self) -> Result<(), LogError> {
        let inner = &self.inner;
        let high_watermark = inner.high_watermark.get();
        if !inner.replicated.get()
            || inner.checkpointed_high_watermark.get() == Some(high_watermark)
            || inner.lifecycle.get() == Lifecycle::Closed
        {
            return Ok(());
        }
        offset_file::write(&inner.dir, offset_file::HIGH_WATERMARK, high_watermark).await?;
        inner.checkpointed_high_watermark.set(Some(high_watermark));
        Ok(())
    }

    /// A replicated partition's new high watermark (the ISR's smallest end on
    /// a leader, the leader's on a follower), capped at the written end. It
    /// never moves back. Wakes waiting fetches; `true` if it moved.
    pub fn advance_high_watermark(&self, high_watermark: i64) -> bool {
        let inner = &self.inner;
        assert!(
            inner.replicated.get(),
            "only a replicated partition's high watermark is set from outside"
        );
        let next = high_watermark.min(inner.written_end.get());
        if next <= inner.high_watermark.get() {
            return false;
        }
        inner.high_watermark.set(next);
        inner
            .high_watermark_waiters
            .borrow_mut()
            .release_below(next);
        inner.subscribers.borrow_mut().notify_all();
        true
    }

    /// Resolves once `last_offset` is committed: below the high watermark on
    /// a replicated partition (on every in-sync replica, as Kafka's
    /// coordinators and markers append with acks=all), durable under the
    /// flush policy otherwise.
    pub async fn wait_committed(&self, last_offset: i64) -> Result<(), LogError> {
        if self.is_replicated() {
            self.wait_high_watermark(last_offset).await
        } else {
            self.wait_durable(last_offset).await
        }
    }

    /// Whether the replication layer owns the high watermark (`replicate`).
    pub fn is_replicated(&self) -> bool {
        self.inner.replicated.get()
    }

    /// Resolves once the high watermark passed `last_offset`: acks=all on a
    /// replicated partition. `Closed` (NOT_LEADER_OR_FOLLOWER) if this
    /// replica stops leading first (`release_high_watermark_waiters`).
    pub async fn wait_high_watermark(&self, last_offset: i64) -> Result<(), LogError> {
        self.inner.wait_high_watermark(last_offset).await
    }

    /// This replica no longer leads: every acks=all producer still waiting
    /// gets NOT_LEADER_OR_FOLLOWER (Kafka fails its delayed produces so);
    /// whether the new leader keeps their records is for it to decide.
    pub fn release_high_watermark_waiters(&self) {
        self.inner.high_watermark_waiters.borrow_mut().clear();
    }

    /// Calls `listener` whenever the written or durable end moves (the
    /// replication layer's view of a leader's own end), or stops (`None`).
    pub fn set_end_listener(&self, listener: Option<Rc<dyn Fn()>>) {
        *self.inner.end_listener.borrow_mut() = listener;
    }

    /// This replica's end as acks=all counts it: the durable end under
    /// `--flush always` (an acknowledged record is fdatasynced on every ISR
    /// member), the written end otherwise.
    pub fn replica_end_offset(&self) -> i64 {
        if self.inner.config.borrow().flush == FlushPolicy::Always {
            self.inner.durable_offset.get()
        } else {
            self.inner.written_end.get()
        }
    }

    /// The epoch of the last batch in this log (-1 when empty): a
    /// follower's `last_fetched_epoch`.
    pub fn latest_epoch(&self) -> i32 {
        self.inner.epochs.borrow().latest_epoch()
    }

    /// The leader epoch stamped on this replica's own appends.
    pub fn leader_epoch(&self) -> i32 {
        self.inner.leader_epoch.get()
    }

    /// This replica leads at `leader_epoch` from now on: the epoch starts at
    /// the log end (Kafka assigns it when a replica becomes leader, so even an
    /// empty log answers OffsetForLeaderEpoch) and is stamped on every batch
    /// appended after.
    pub fn set_leader_epoch(&self, leader_epoch: i32) {
        let inner = &self.inner;
        inner.leader_epoch.set(leader_epoch);
        inner.note_epoch(leader_epoch, inner.log_end_offset.get());
    }

    /// Where leader epoch `epoch` ends in this log (OffsetsForLeaderEpoch,
    /// and the diverging epoch a leader answers a follower's Fetch with).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> EpochEndOffset {
        let end = self.log_end_offset();
        self.inner.epochs.borrow().end_offset_for(epoch, end)
    }

    /// The diverging epoch to answer a follower fetching at `fetch_offset`
    /// after a record of `last_fetched_epoch`, or `None` when its log agrees
    /// with this one (see `replication::truncation::diverging_epoch`).
    pub fn diverging_epoch(
        &self,
        fetch_offset: i64,
        last_fetched_epoch: i32,
    ) -> Option<EpochEndOffset> {
        crate::replication::truncation::diverging_epoch(
            &self.inner.epochs.borrow(),
            self.log_end_offset(),
            fetch_offset,
            last_fetched_epoch,
        )
    }

    /// A copy of this replica's leader-epoch cache (a follower works out
    /// its truncation point from it).
    pub fn leader_epochs(&self) -> LeaderEpochCache {
        self.inner.epochs.borrow().clone()
    }

    /// Appends a batch fetched from the partition's leader unchanged (its
    /// offsets, leader epoch and timestamps); it must start at the log end.
    /// Producer state follows the batch without checks, so idempotent
    /// producers keep their duplicates detected after a failover.
    pub fn append_replicated(&self, batch: Bytes, now_ms: i64) -> Result<AppendInfo, LogError> {
        self.inner.append_replicated(batch, now_ms)
    }

    /// Cuts this replica's log back to `end_offset`, or to the start of the
    /// batch holding it (a follower whose tail diverged from its leader's):
    /// closes the log, truncates its files and opens it again, rebuilding
    /// indexes and producer state. Every other handle to the old log sees it
    /// closed; callers keep the returned one. Replication mode and the
    /// stamped leader epoch carry over; the high watermark is capped at the
    /// new end.
    pub async fn truncate_to(self, end_offset: i64) -> Result<PartitionLog, LogError> {
        let carried = Carried::of(&self.inner);
        self.close().await?;
        let new_end = truncation::truncate_directory(&carried.dir, end_offset).await?;
        let log = carried.open_again().await?;
        debug_assert_eq!(log.log_end_offset(), new_end);
        Ok(log)
    }

    /// Whether a write of this log met a full file system (ENOSPC or a
    /// quota): the log then answers KAFKA_STORAGE_ERROR to everything until
    /// it is [`reopen`](Self::reopen)ed. Other storage failures are not
    /// reopened: like Kafka's offline log directory, they wait for a restart.
    pub fn storage_full(&self) -> bool {
        self.inner
            .failure
            .borrow()
            .as_ref()
            .is_some_and(|failure| failure.is_out_of_space())
    }

    /// Whether `other` is a handle to this same log (not a reopened one).
    pub fn same_log(&self, other: &PartitionLog) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }

    /// Closes a failed log and opens its directory again, as a restart
    /// would: the close cuts the active segment back to the last whole write
    /// (`DmaWriter::trim`; a round that failed half way leaves nothing), and
    /// the open rebuilds the log end, indexes and producer state from disk.
    /// What was acknowledged stays; what failed is gone, its offsets are
    /// free again. Replication mode and the stamped leader epoch carry over,
    /// as in [`truncate_to`](Self::truncate_to); callers keep the returned
    /// log. Also on a log already closed by an earlier, failed reopen.
    pub async fn reopen(self) -> Result<PartitionLog, LogError> {
        let carried = Carried::of(&self.inner);
        // The close answers the failure it found; the files are closed and
        // trimmed all the same.
        if let Err(error) = self.close().await {
            tracing::debug!(dir = %carried.dir.display(), %error, "closing the failed log before reopening it");
        }
        carried.open_again().await
    }

    /// Empties this replica's log and restarts it at `start_offset` (a
    /// follower whose end fell below its leader's log start: what it has
    /// is all older than anything the leader still holds). Like
    /// [`truncate_to`](Self::truncate_to), callers keep the returned log.
    pub async fn truncate_fully_and_start_at(
        self,
        start_offset: i64,
    ) -> Result<PartitionLog, LogError> {
        let mut carried = Carried::of(&self.inner);
        self.close().await?;
        truncation::restart_directory_at(&carried.dir, start_offset).await?;
        // The emptied replica's high watermark is its new end (capped there).
        if let Some(high_watermark) = carried.high_watermark.as_mut() {
            *high_watermark = i64::MAX;
        }
        let log = carried.open_again().await?;
        debug_assert_eq!(log.log_start_offset(), start_offset.max(0));
        Ok(log)
    }

    /// `read` for a follower: whole batches up to the written end, past the
    /// high watermark too (outside [log start offset, written end] is
    /// `OffsetOutOfRange`).
    pub async fn read_for_replica(
        &self,
        offset: i64,
        max_bytes: usize,
    ) -> Result<ReadResult, LogError> {
        if self.inner.lifecycle.get() == Lifecycle::Closed {
            return Err(LogError::Closed);
        }
        reader::read(&self.inner, offset, max_bytes, reader::Isolation::Replica).await
    }

    pub fn log_start_offset(&self) -> i64 {
        self.inner.log_start_offset.get()
    }

    /// Next offset `append` will assign (includes queued, unwritten batches).
    pub fn log_end_offset(&self) -> i64 {
        self.inner.log_end_offset.get()
    }

    /// Bytes of written batches in the log's segment files: Kafka's
    /// `UnifiedLog.size`, which DescribeLogDirs reports as `partition_size`
    /// and size retention counts. Preallocated space past the last batch,
    /// index files and queued (unwritten) batches are not counted.
    pub fn size_bytes(&self) -> u64 {
        self.inner
            .segments
            .borrow()
            .iter()
            .map(|segment| segment.size)
            .sum()
    }

    /// True when the log holds no records (log start offset == log end offset).
    pub fn is_empty(&self) -> bool {
        self.log_start_offset() == self.log_end_offset()
    }

    /// Reads whole batches starting with the one containing `offset`, up to
    /// `max_bytes` but always at least one batch if any exists (KIP-74).
    /// `offset == high_watermark` gives no batches; outside
    /// [log start offset, high watermark] is `OffsetOutOfRange`. This is
    /// read_uncommitted: the last stable offset is reported, no aborted
    /// transactions.
    pub async fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadResult, LogError> {
        if self.inner.lifecycle.get() == Lifecycle::Closed {
            return Err(LogError::Closed);
        }
        reader::read(
            &self.inner,
            offset,
            max_bytes,
            reader::Isolation::ReadUncommitted,
        )
        .await
    }

    /// `read` (or `read_committed`) answered without waiting when it needs
    /// no disk: nothing to return yet, or batches still in the tail cache.
    /// `Ok(None)`: the batches are on disk only; call the async read.
    pub fn read_now(
        &self,
        offset: i64,
        max_bytes: usize,
        read_committed: bool,
    ) -> Result<Option<ReadResult>, LogError> {
        if self.inner.lifecycle.get() == Lifecycle::Closed {
            return Err(LogError::Closed);
        }
        let isolation = if read_committed {
            reader::Isolation::ReadCommitted
        } else {
            reader::Isolation::ReadUncommitted
        };
        Ok(
            match reader::read_now(&self.inner, offset, max_bytes, isolation)? {
                reader::ReadNow::Done(result) => Some(result),
                reader::ReadNow::FromDisk { .. } => None,
            },
        )
    }

    /// `read` for isolation_level=1 (read_committed): only batches below the
    /// last stable offset (`offset` at or past it gives no batches; outside
    /// [log start offset, high watermark] is `OffsetOutOfRange`), and the
    /// aborted transactions overlapping the returned batches.
    pub async fn read_committed(
        &self,
        offset: i64,
        max_bytes: usize,
    ) -> Result<ReadResult, LogError> {
        if self.inner.lifecycle.get() == Lifecycle::Closed {
            return Err(LogError::Closed);
        }
        reader::read(
            &self.inner,
            offset,
            max_bytes,
            reader::Isolation::ReadCommitted,
        )
        .await
    }

    /// Fires `signal` the next time the written end or the high watermark
    /// advances (or the log closes): one signal serves a fetch waiting on
    /// many partitions.
    pub fn register_signal(&self, signal: &std::rc::Rc<DataSignal>) {
        self.inner.subscribers.borrow_mut().register(signal);
        if self.inner.lifecycle.get() == Lifecycle::Closed {
            self.inner.subscribers.borrow_mut().notify_all();
        }
    }

    /// Registers a fetch session's `watch` (`id`: this partition in the
    /// session) if a consumer at `fetch_offset`, last told this high
    /// watermark and log start offset, has nothing to hear from this log
    /// now: nothing below the high watermark to read and both values
    /// unchanged. The watch then fires on the next move (written end, high
    /// watermark, log start offset, close, failure). False, and nothing
    /// registered, when there is news or the log is closed or failed.
    pub fn watch_while_quiet(
        &self,
        fetch_offset: i64,
        high_watermark_told: i64,
        log_start_offset_told: i64,
        watch: &std::rc::Rc<SessionWatch>,
        id: u32,
    ) -> bool {
        let inner = &self.inner;
        let quiet = inner.lifecycle.get() != Lifecycle::Closed
            && inner.failure.borrow().is_none()
            && inner.high_watermark.get() == high_watermark_told
            && inner.log_start_offset.get() == log_start_offset_told
            && fetch_offset >= high_watermark_told;
        if quiet {
            inner.subscribers.borrow_mut().watch(watch, id);
        }
        quiet
    }

    /// A receiver resolved the next time the written end or the high
    /// watermark advances (or the log closes).
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
        // The write awaits: hold the permit and decide again after getting it,
        // so two DeleteRecords never move the start backwards.
        let _writer = self.inner.log_start_writer.acquire_permit(1).await;
        if target > self.log_start_offset() {
            log_start::write(&self.inner.dir, target).await?;
            self.inner.log_start_offset.set(target);
            // News for fetch sessions watching this partition.
            self.inner.subscribers.borrow_mut().notify_all();
            self.inner.epochs_start_at(target);
            retention::forget_below_log_start(&self.inner);
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
