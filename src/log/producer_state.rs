//! Idempotent-producer state of one partition (KIP-98): for each producer id,
//! its epoch and the sequence ranges of its last few batches, so a retried
//! batch is recognised as a duplicate (answered with its original offsets,
//! not appended twice) and a gap is refused as OUT_OF_ORDER_SEQUENCE_NUMBER.
//!
//! Pure logic, no I/O; owned by the partition's owning shard next to its log
//! and consulted synchronously right before each append, so checks and
//! appends happen in one order. The state is kept in memory only: after a
//! restart a producer's next batch is accepted as a new starting point
//! (Kafka rebuilds it from the log; documented as a difference in README).

use std::collections::{HashMap, VecDeque};

/// Batches remembered per producer: the Java client and librdkafka keep at
/// most 5 in flight per partition with idempotence, so 5 covers every retry.
pub const BATCHES_REMEMBERED_PER_PRODUCER: usize = 5;
/// Producers remembered per partition; the least recently used is forgotten
/// beyond this (bounds memory against clients that churn producer ids).
pub const PRODUCERS_REMEMBERED_PER_PARTITION: usize = 4096;

/// Where one batch landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSequence {
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub base_offset: i64,
    pub last_offset: i64,
}

/// What to do with an incoming idempotent batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    Append,
    /// Already appended: answer with the original offsets.
    Duplicate(BatchSequence),
    /// A zombie from an older epoch (INVALID_PRODUCER_EPOCH).
    StaleEpoch,
    /// A gap or a sequence not starting at 0 after an epoch bump.
    OutOfOrder,
}

#[derive(Debug)]
struct ProducerEntry {
    epoch: i16,
    recent: VecDeque<BatchSequence>,
    last_used: u64,
}

/// All idempotent producers of one partition.
#[derive(Debug, Default)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
    clock: u64,
}

/// The sequence after `sequence` (sequences wrap from i32::MAX to 0).
pub fn next_sequence(sequence: i32) -> i32 {
    if sequence == i32::MAX {
        0
    } else {
        sequence + 1
    }
}

/// Last sequence of a batch starting at `first` with `records` records.
pub fn last_sequence(first: i32, last_offset_delta: i32) -> i32 {
    ((i64::from(first) + i64::from(last_offset_delta)) % (i64::from(i32::MAX) + 1)) as i32
}

impl ProducerStates {
    pub fn check(
        &self,
        producer_id: i64,
        epoch: i16,
        first_sequence: i32,
        last_sequence: i32,
    ) -> SequenceCheck {
        let Some(entry) = self.producers.get(&producer_id) else {
            return SequenceCheck::Append;
        };
        if epoch < entry.epoch {
            return SequenceCheck::StaleEpoch;
        }
        if epoch > entry.epoch {
            return if first_sequence == 0 {
                SequenceCheck::Append
            } else {
                SequenceCheck::OutOfOrder
            };
        }
        if let Some(previous) = entry
            .recent
            .iter()
            .find(|b| b.first_sequence == first_sequence && b.last_sequence == last_sequence)
        {
            return SequenceCheck::Duplicate(*previous);
        }
        match entry.recent.back() {
            Some(last) if next_sequence(last.last_sequence) != first_sequence => {
                SequenceCheck::OutOfOrder
            }
            _ => SequenceCheck::Append,
        }
    }

    /// Records an appended batch (after `check` said `Append`).
    pub fn record(&mut self, producer_id: i64, epoch: i16, batch: BatchSequence) {
        self.clock += 1;
        if !self.producers.contains_key(&producer_id)
            && self.producers.len() >= PRODUCERS_REMEMBERED_PER_PARTITION
        {
            self.forget_least_recently_used();
        }
        let clock = self.clock;
        let entry = self
            .producers
            .entry(producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch,
                recent: VecDeque::with_capacity(BATCHES_REMEMBERED_PER_PRODUCER),
                last_used: clock,
            });
        if epoch != entry.epoch {
            entry.epoch = epoch;
            entry.recent.clear();
        }
        if entry.recent.len() == BATCHES_REMEMBERED_PER_PRODUCER {
            entry.recent.pop_front();
        }
        entry.recent.push_back(batch);
        entry.last_used = clock;
    }

    fn forget_least_recently_used(&mut self) {
        let oldest = self
            .producers
            .iter()
            .min_by_key(|(_, entry)| entry.last_used)
            .map(|(id, _)| *id);
        if let Some(id) = oldest {
            self.producers.remove(&id);
        }
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(first: i32, last: i32, base: i64) -> BatchSequence {
        BatchSequence {
            first_sequence: first,
            last_sequence: last,
            base_offset: base,
            last_offset: base + i64::from(last - first),
        }
    }

    #[test]
    fn in_order_batches_append_and_retries_are_duplicates() {
        let mut states = ProducerStates::default();
        assert_eq!(states.check(7, 0, 0, 9), SequenceCheck::Append);
        states.record(7, 0, batch(0, 9, 100));
        assert_eq!(states.check(7, 0, 10, 14), SequenceCheck::Append);
        states.record(7, 0, batch(10, 14, 110));
        assert_eq!(
            states.check(7, 0, 0, 9),
            SequenceCheck::Duplicate(batch(0, 9, 100))
        );
        assert_eq!(
            states.check(7, 0, 10, 14),
            SequenceCheck::Duplicate(batch(10, 14, 110))
        );
    }

    #[test]
    fn gaps_and_stale_epochs_are_refused() {
        let mut states = ProducerStates::default();
        states.record(7, 3, batch(0, 4, 0));
        assert_eq!(states.check(7, 3, 6, 8), SequenceCheck::OutOfOrder);
        assert_eq!(states.check(7, 2, 5, 8), SequenceCheck::StaleEpoch);
        assert_eq!(
            states.check(7, 4, 5, 8),
            SequenceCheck::OutOfOrder,
            "new epoch starts at 0"
        );
        assert_eq!(states.check(7, 4, 0, 2), SequenceCheck::Append);
        states.record(7, 4, batch(0, 2, 5));
        assert_eq!(states.check(7, 3, 5, 8), SequenceCheck::StaleEpoch);
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut states = ProducerStates::default();
        for index in 0..7 {
            states.record(1, 0, batch(index, index, i64::from(index)));
        }
        assert_eq!(states.check(1, 0, 0, 0), SequenceCheck::OutOfOrder);
        assert!(matches!(
            states.check(1, 0, 6, 6),
            SequenceCheck::Duplicate(_)
        ));
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        assert_eq!(next_sequence(i32::MAX), 0);
        assert_eq!(last_sequence(i32::MAX, 1), 0);
        let mut states = ProducerStates::default();
        states.record(1, 0, batch(i32::MAX - 1, i32::MAX, 0));
        assert_eq!(states.check(1, 0, 0, 3), SequenceCheck::Append);
    }

    #[test]
    fn producer_table_is_bounded() {
        let mut states = ProducerStates::default();
        for id in 0..(PRODUCERS_REMEMBERED_PER_PARTITION as i64 + 10) {
            states.record(id, 0, batch(0, 0, id));
        }
        assert_eq!(states.len(), PRODUCERS_REMEMBERED_PER_PARTITION);
        assert_eq!(
            states.check(0, 0, 0, 0),
            SequenceCheck::Append,
            "oldest forgotten"
        );
    }
}
