//! Idempotent-producer and transaction state of one partition (KIP-98), the
//! rules of the Java broker's `ProducerStateManager` / `ProducerAppendInfo`:
//!
//! - per producer id: its epoch, the sequence ranges and offsets of its last
//!   5 batches (a retried batch is answered with its original offsets and
//!   not appended twice), the coordinator epoch of its last marker, when it
//!   last wrote (for `producer.id.expiration.ms`) and the first offset of its
//!   open transaction on this partition;
//! - the open transactions by first offset, which give the last stable
//!   offset (LSO): a transaction stays unstable until its marker is written;
//! - the aborted transactions (what the segments' `.txnindex` files hold),
//!   answered to read_committed fetches.
//!
//! Pure logic, no I/O. It lives inside the partition log (`LogInner`) on the
//! partition's owning shard and is consulted and updated synchronously by the
//! append path, so checks and appends happen in one order. `validate` never
//! mutates; `apply` records a batch once its offsets are assigned. Recovery
//! replays batches through `apply` on top of a snapshot
//! (`producer_snapshot.rs`).

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::protocol::batch_builder::{ControlMarker, ControlType};
use crate::protocol::record_batch::BatchHeader;

/// Batches remembered per producer: the Java client and librdkafka keep at
/// most 5 in flight per partition with idempotence, so 5 covers every retry
/// (Kafka's `ProducerStateEntry.NUM_BATCHES_TO_RETAIN`).
pub const BATCHES_REMEMBERED_PER_PRODUCER: usize = 5;
/// Producers remembered per partition; the least recently written one
/// without an open transaction is forgotten beyond this (bounds memory
/// against clients that churn producer ids; expiry is the normal way out).
pub const PRODUCERS_REMEMBERED_PER_PARTITION: usize = 4096;
/// A producer epoch that says "unknown" (Kafka `RecordBatch.NO_PRODUCER_EPOCH`).
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// A batch without sequence numbers (Kafka `RecordBatch.NO_SEQUENCE`).
pub const NO_SEQUENCE: i32 = -1;

/// Where one batch landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSequence {
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub base_offset: i64,
    pub last_offset: i64,
}

/// Who asks for an append: a producer through Produce (every check), or a
/// coordinator on this broker (markers, transactional offset commits:
/// epoch fencing only, no sequence checks; Kafka's `AppendOrigin.Coordinator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOrigin {
    Client,
    Coordinator,
}

/// What a batch with a producer id says about its producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// `NO_SEQUENCE` for batches written without sequences (coordinators).
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub transactional: bool,
    /// The commit/abort marker of a control batch.
    pub marker: Option<ControlMarker>,
}

impl ProducerBatch {
    /// The producer side of a batch: `None` without a producer id, and for a
    /// control batch whose marker is unknown (Kafka skips those).
    pub fn from_header(header: &BatchHeader, marker: Option<ControlMarker>) -> Option<Self> {
        if header.producer_id < 0 || (header.is_control() && marker.is_none()) {
            return None;
        }
        let first_sequence = header.base_sequence;
        Some(ProducerBatch {
            producer_id: header.producer_id,
            producer_epoch: header.producer_epoch,
            first_sequence,
            last_sequence: if first_sequence < 0 {
                NO_SEQUENCE
            } else {
                last_sequence(first_sequence, header.last_offset_delta)
            },
            transactional: header.is_transactional(),
            marker: if header.is_control() { marker } else { None },
        })
    }
}

/// Why a batch is refused (mapped one-to-one onto Kafka error codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProducerError {
    /// A zombie from an older epoch (INVALID_PRODUCER_EPOCH).
    InvalidProducerEpoch,
    /// A gap, or a new epoch not starting at sequence 0 (OUT_OF_ORDER_SEQUENCE_NUMBER).
    OutOfOrderSequence,
    /// A plain batch while the producer's transaction is open, or a control
    /// batch from a client (INVALID_TXN_STATE).
    InvalidTxnState,
    /// A marker from a transaction coordinator older than the one that
    /// wrote this producer's last marker here: a coordinator that lost its
    /// `__transaction_state` partition and does not know it yet
    /// (TRANSACTION_COORDINATOR_FENCED).
    TransactionCoordinatorFenced,
}

/// What to do with a batch that passed the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Append,
    /// Already appended: answer with the original offsets, append nothing.
    Duplicate(BatchSequence),
}

/// An aborted transaction, as one `.txnindex` entry stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// The offset of the abort marker.
    pub last_offset: i64,
    /// Kafka's `lastStableOffset(completedTxn)`: the first offset of another
    /// producer's open transaction, else the marker offset + 1.
    pub last_stable_offset: i64,
}

/// One producer's state (public for the snapshot codec).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    pub epoch: i16,
    /// Coordinator epoch of the last marker, -1 before any.
    pub coordinator_epoch: i32,
    /// When the producer last wrote (broker clock), for expiry.
    pub last_timestamp_ms: i64,
    /// First offset of the producer's open transaction on this partition.
    pub current_txn_first_offset: Option<i64>,
    /// Its last batches, oldest first, at most `BATCHES_REMEMBERED_PER_PRODUCER`.
    pub recent: VecDeque<BatchSequence>,
}

impl ProducerEntry {
    fn new(epoch: i16) -> ProducerEntry {
        ProducerEntry {
            epoch,
            coordinator_epoch: -1,
            last_timestamp_ms: -1,
            current_txn_first_offset: None,
            recent: VecDeque::with_capacity(BATCHES_REMEMBERED_PER_PRODUCER),
        }
    }

    fn duplicate_of(&self, batch: &ProducerBatch) -> Option<BatchSequence> {
        if batch.producer_epoch != self.epoch {
            return None;
        }
        self.recent
            .iter()
            .find(|previous| {
                previous.first_sequence == batch.first_sequence
                    && previous.last_sequence == batch.last_sequence
            })
            .copied()
    }

    /// Kafka's `checkSequence`.
    fn check_sequence(&self, batch: &ProducerBatch) -> Result<(), ProducerError> {
        let in_order = if batch.producer_epoch != self.epoch {
            batch.first_sequence == 0 || self.epoch == NO_PRODUCER_EPOCH
        } else {
            let last = self
                .recent
                .back()
                .map_or(NO_SEQUENCE, |previous| previous.last_sequence);
            self.epoch == NO_PRODUCER_EPOCH || in_sequence(last, batch.first_sequence)
        };
        if in_order {
            Ok(())
        } else {
            Err(ProducerError::OutOfOrderSequence)
        }
    }
}

/// A transaction that makes the LSO: open, or ended by a marker that is not
/// written yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct UnstableTxn {
    producer_id: i64,
    marker_offset: Option<i64>,
}

/// All producers and transactions of one partition.
#[derive(Debug, Default)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
    /// By first offset (unique: each starts at its own batch).
    unstable: BTreeMap<i64, UnstableTxn>,
    /// In marker (last offset) order, pruned below the log start offset.
    aborted: VecDeque<AbortedTxn>,
}

/// The sequence after `sequence` (sequences wrap from i32::MAX to 0).
pub fn next_sequence(sequence: i32) -> i32 {
    if sequence == i32::MAX {
        0
    } else {
        sequence + 1
    }
}

/// Kafka's `inSequence`: `next` directly follows `last` (with the wrap).
/// A producer with no batch yet (`NO_SEQUENCE`) starts at 0.
pub fn in_sequence(last: i32, next: i32) -> bool {
    next_sequence(last) == next
}

/// Last sequence of a batch starting at `first` spanning `last_offset_delta` more records.
pub fn last_sequence(first: i32, last_offset_delta: i32) -> i32 {
    ((i64::from(first) + i64::from(last_offset_delta)) % (i64::from(i32::MAX) + 1)) as i32
}

impl ProducerStates {
    /// The checks of an append, in Kafka's order: duplicates (client only),
    /// epoch fencing, coordinator epoch fencing (markers), sequence (client
    /// only), transaction state. Never mutates.
    pub fn validate(
        &self,
        batch: &ProducerBatch,
        origin: AppendOrigin,
    ) -> Result<Admission, ProducerError> {
        let client = origin == AppendOrigin::Client;
        if batch.marker.is_some() && client {
            return Err(ProducerError::InvalidTxnState);
        }
        if client && batch.first_sequence < 0 {
            return Err(ProducerError::OutOfOrderSequence);
        }
        let Some(entry) = self.producers.get(&batch.producer_id) else {
            // An unknown producer (new, expired or evicted) starts anywhere.
            return Ok(Admission::Append);
        };
        if client {
            if let Some(previous) = entry.duplicate_of(batch) {
                return Ok(Admission::Duplicate(previous));
            }
        }
        if batch.producer_epoch < entry.epoch {
            return Err(ProducerError::InvalidProducerEpoch);
        }
        if let Some(marker) = batch.marker {
            // Kafka's `checkCoordinatorEpoch`: the coordinator epoch is the
            // leader epoch of the coordinator's `__transaction_state`
            // partition, so a lower one comes from a coordinator that has
            // been replaced. An equal one is its own retry.
            if marker.coordinator_epoch < entry.coordinator_epoch {
                return Err(ProducerError::TransactionCoordinatorFenced);
            }
            return Ok(Admission::Append);
        }
        if client {
            entry.check_sequence(batch)?;
        }
        if !batch.transactional && entry.current_txn_first_offset.is_some() {
            return Err(ProducerError::InvalidTxnState);
        }
        Ok(Admission::Append)
    }

    /// Records a batch stored at `[base_offset, last_offset]` (after
    /// `validate`, or replayed from the log). A marker ends the producer's
    /// transaction; an abort marker returns the entry for the `.txnindex`.
    pub fn apply(
        &mut self,
        batch: &ProducerBatch,
        base_offset: i64,
        last_offset: i64,
        now_ms: i64,
    ) -> Option<AbortedTxn> {
        if !self.producers.contains_key(&batch.producer_id)
            && self.producers.len() >= PRODUCERS_REMEMBERED_PER_PARTITION
        {
            self.forget_least_recently_written();
        }
        let entry = self
            .producers
            .entry(batch.producer_id)
            .or_insert_with(|| ProducerEntry::new(batch.producer_epoch));
        if entry.epoch != batch.producer_epoch {
            // Kafka's `maybeUpdateProducerEpoch`: a new epoch forgets the
            // old epoch's batches.
            entry.epoch = batch.producer_epoch;
            entry.recent.clear();
        }
        entry.last_timestamp_ms = now_ms;
        if let Some(marker) = batch.marker {
            let first_offset = entry.current_txn_first_offset.take();
            entry.coordinator_epoch = marker.coordinator_epoch;
            if let Some(txn) = first_offset.and_then(|first| self.unstable.get_mut(&first)) {
                txn.marker_offset = Some(base_offset);
            }
            if marker.control_type != ControlType::Abort {
                return None;
            }
            let aborted = AbortedTxn {
                producer_id: batch.producer_id,
                first_offset: first_offset.unwrap_or(base_offset),
                last_offset: base_offset,
                last_stable_offset: self.first_open_offset_except(batch.producer_id, base_offset),
            };
            self.push_aborted(aborted);
            return Some(aborted);
        }
        if batch.first_sequence >= 0 {
            if entry.recent.len() == BATCHES_REMEMBERED_PER_PRODUCER {
                entry.recent.pop_front();
            }
            entry.recent.push_back(BatchSequence {
                first_sequence: batch.first_sequence,
                last_sequence: batch.last_sequence,
                base_offset,
                last_offset,
            });
        }
        if batch.transactional && entry.current_txn_first_offset.is_none() {
            entry.current_txn_first_offset = Some(base_offset);
            self.unstable.insert(
                base_offset,
                UnstableTxn {
                    producer_id: batch.producer_id,
                    marker_offset: None,
                },
            );
        }
        None
    }

    /// First offset of the earliest still-open transaction of another
    /// producer, else `marker_offset + 1`.
    fn first_open_offset_except(&self, producer_id: i64, marker_offset: i64) -> i64 {
        self.unstable
            .iter()
            .find(|(_, txn)| txn.marker_offset.is_none() && txn.producer_id != producer_id)
            .map_or(marker_offset + 1, |(first, _)| *first)
    }

    fn push_aborted(&mut self, aborted: AbortedTxn) {
        debug_assert!(self
            .aborted
            .back()
            .is_none_or(|last| last.last_offset < aborted.last_offset));
        self.aborted.push_back(aborted);
    }

    fn forget_least_recently_written(&mut self) {
        let oldest = self
            .producers
            .iter()
            .filter(|(_, entry)| entry.current_txn_first_offset.is_none())
            .min_by_key(|(_, entry)| entry.last_timestamp_ms)
            .map(|(id, _)| *id);
        if let Some(id) = oldest {
            self.producers.remove(&id);
        }
    }

    /// min(first offset of every transaction not yet ended by a written
    /// marker, high watermark).
    pub fn last_stable_offset(&self, high_watermark: i64) -> i64 {
        self.unstable
            .iter()
            .find(|(_, txn)| {
                txn.marker_offset
                    .is_none_or(|marker| marker >= high_watermark)
            })
            .map_or(high_watermark, |(first, _)| (*first).min(high_watermark))
    }

    /// Forgets the transactions at the front whose marker is written (below
    /// the high watermark): they no longer hold the LSO back. Cheap enough
    /// for every append.
    pub fn forget_stable(&mut self, high_watermark: i64) {
        while let Some(entry) = self.unstable.first_entry() {
            match entry.get().marker_offset {
                Some(marker) if marker < high_watermark => entry.remove(),
                _ => break,
            };
        }
    }

    /// Aborted transactions whose `[first_offset, marker]` overlaps
    /// `[from_offset, to_offset)`: what a read_committed fetch of that range
    /// must tell the consumer to drop.
    pub fn aborted_overlapping(&self, from_offset: i64, to_offset: i64) -> Vec<AbortedTxn> {
        let start = self
            .aborted
            .partition_point(|aborted| aborted.last_offset < from_offset);
        self.aborted
            .range(start..)
            .filter(|aborted| aborted.first_offset < to_offset)
            .copied()
            .collect()
    }

    /// Every aborted transaction remembered, in marker order.
    pub fn aborted(&self) -> impl Iterator<Item = &AbortedTxn> {
        self.aborted.iter()
    }

    /// Adds aborted transactions read back from `.txnindex` files (recovery),
    /// before any replayed ones.
    pub fn restore_aborted(&mut self, mut entries: Vec<AbortedTxn>) {
        entries.sort_by_key(|aborted| aborted.last_offset);
        entries.dedup_by_key(|aborted| aborted.last_offset);
        debug_assert!(self.aborted.is_empty());
        self.aborted = entries.into();
    }

    /// Forgets aborted transactions that ended below the log start offset.
    pub fn forget_aborted_below(&mut self, log_start_offset: i64) {
        while self
            .aborted
            .front()
            .is_some_and(|aborted| aborted.last_offset < log_start_offset)
        {
            self.aborted.pop_front();
        }
    }

    /// Drops producers idle for `expiration_ms` or more, except those with an
    /// open transaction (Kafka's `isProducerExpired`). Returns how many.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, entry| {
            entry.current_txn_first_offset.is_some()
                || now_ms.saturating_sub(entry.last_timestamp_ms) < expiration_ms
        });
        before - self.producers.len()
    }

    /// Every producer, for the snapshot.
    pub fn producers(&self) -> impl Iterator<Item = (i64, &ProducerEntry)> {
        self.producers.iter().map(|(id, entry)| (*id, entry))
    }

    /// The state a snapshot describes: its producers and their open transactions.
    pub fn from_producers(producers: HashMap<i64, ProducerEntry>) -> ProducerStates {
        let unstable = producers
            .iter()
            .filter_map(|(id, entry)| {
                let first = entry.current_txn_first_offset?;
                let txn = UnstableTxn {
                    producer_id: *id,
                    marker_offset: None,
                };
                Some((first, txn))
            })
            .collect();
        ProducerStates {
            producers,
            unstable,
            aborted: VecDeque::new(),
        }
    }

    pub fn producer(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }
}

#[cfg(test)]
mod tests;
