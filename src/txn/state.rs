//! What the coordinator knows about one transactional id, and the plans it
//! hands back to the server: metadata to persist, markers to write.
//!
//! Which cores: plain data, on the shard owning the id's
//! `__transaction_state` partition.
//!
//! Why this shape: a [`TransactionMetadata`] is both the in-memory state and
//! the content of its `__transaction_state` record, so a change is "the next
//! metadata" as a whole value (Kafka's `TxnTransitMetadata`), appended and
//! then applied, never a field-by-field mutation.

use std::collections::BTreeSet;

use crate::protocol::batch_builder::ControlType;

/// "No producer id" on the wire and in records (`RecordBatch.NO_PRODUCER_ID`).
pub const NO_PRODUCER_ID: i64 = -1;
/// "No producer epoch" (`RecordBatch.NO_PRODUCER_EPOCH`).
pub const NO_PRODUCER_EPOCH: i16 = -1;

/// A transaction's state, with Kafka's record ids and names (the names are
/// what DescribeTransactions and ListTransactions print).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TransactionState {
    /// Producer id and epoch assigned, no transaction running.
    Empty,
    /// Partitions were added; data may be written.
    Ongoing,
    /// EndTxn(commit) persisted; commit markers being written.
    PrepareCommit,
    /// EndTxn(abort), a timeout or a fence persisted; abort markers being written.
    PrepareAbort,
    /// Commit markers written.
    CompleteCommit,
    /// Abort markers written.
    CompleteAbort,
    /// Being expired. Kafka never persists it (it writes a tombstone);
    /// applying it removes the id.
    Dead,
    /// Kafka's transient "fencing the epoch" state, never persisted by Kafka.
    /// If a record holds it anyway it is treated as a pending abort.
    PrepareEpochFence,
}

impl TransactionState {
    pub const ALL: [TransactionState; 8] = [
        TransactionState::Empty,
        TransactionState::Ongoing,
        TransactionState::PrepareCommit,
        TransactionState::PrepareAbort,
        TransactionState::CompleteCommit,
        TransactionState::CompleteAbort,
        TransactionState::Dead,
        TransactionState::PrepareEpochFence,
    ];

    /// The `TransactionStatus` stored in a TransactionLogValue.
    pub fn id(self) -> i8 {
        match self {
            TransactionState::Empty => 0,
            TransactionState::Ongoing => 1,
            TransactionState::PrepareCommit => 2,
            TransactionState::PrepareAbort => 3,
            TransactionState::CompleteCommit => 4,
            TransactionState::CompleteAbort => 5,
            TransactionState::Dead => 6,
            TransactionState::PrepareEpochFence => 7,
        }
    }

    pub fn from_id(id: i8) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.id() == id)
    }

    /// The name Kafka prints (DescribeTransactions, ListTransactions).
    pub fn name(self) -> &'static str {
        match self {
            TransactionState::Empty => "Empty",
            TransactionState::Ongoing => "Ongoing",
            TransactionState::PrepareCommit => "PrepareCommit",
            TransactionState::PrepareAbort => "PrepareAbort",
            TransactionState::CompleteCommit => "CompleteCommit",
            TransactionState::CompleteAbort => "CompleteAbort",
            TransactionState::Dead => "Dead",
            TransactionState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// The state of a name as ListTransactions filters by it (exact case).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.name() == name)
    }

    /// States an idle transactional id may be expired from (Kafka's
    /// `isExpirationAllowed`): nothing is running.
    pub fn is_expiration_allowed(self) -> bool {
        matches!(
            self,
            TransactionState::Empty
                | TransactionState::CompleteCommit
                | TransactionState::CompleteAbort
        )
    }

    /// Markers are being written: every request but a retry waits
    /// (CONCURRENT_TRANSACTIONS) until [`Transactions::complete`](super::Transactions::complete).
    pub fn is_preparing(self) -> bool {
        matches!(
            self,
            TransactionState::PrepareCommit
                | TransactionState::PrepareAbort
                | TransactionState::PrepareEpochFence
        )
    }
}

/// Everything the coordinator keeps for one transactional id; also the
/// content of its `__transaction_state` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionMetadata {
    pub transactional_id: String,
    pub producer_id: i64,
    /// The producer id before the last InitProducerId (differs from
    /// `producer_id` after an epoch exhaustion rotated it), `-1` for a new
    /// id. Lets a retried InitProducerId of the rotation be recognised
    /// (KIP-360). Not in a v0 record: `-1` after replay, as in Kafka.
    pub last_producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch the last InitProducerId with an expected epoch bumped from
    /// (KIP-360 retry detection), `-1` otherwise. Never stored (Kafka
    /// neither): `-1` after replay.
    pub last_producer_epoch: i16,
    /// The transaction timeout the producer asked for (`transaction.timeout.ms`).
    pub timeout_ms: i32,
    pub state: TransactionState,
    /// (topic, partition) pairs in the running transaction; empty in Empty
    /// and Complete*.
    pub partitions: BTreeSet<(String, i32)>,
    /// When the running transaction's first partition was added; `-1` before.
    pub start_timestamp_ms: i64,
    /// Last change; transactional id expiry counts from it.
    pub last_update_timestamp_ms: i64,
}

impl TransactionMetadata {
    /// Kafka keeps epoch `i16::MAX` for the coordinator, so that it can
    /// always fence a producer by bumping once more (`isEpochExhausted`).
    pub fn is_producer_epoch_exhausted(&self) -> bool {
        is_epoch_exhausted(self.producer_epoch)
    }

    /// The partitions grouped by topic, topics and partitions sorted (the
    /// shape of TransactionLogValue and DescribeTransactions).
    pub fn partitions_by_topic(&self) -> Vec<(&str, Vec<i32>)> {
        let mut topics: Vec<(&str, Vec<i32>)> = Vec::new();
        for (topic, partition) in &self.partitions {
            match topics.last_mut() {
                Some((last, partitions)) if *last == topic.as_str() => partitions.push(*partition),
                _ => topics.push((topic.as_str(), vec![*partition])),
            }
        }
        topics
    }
}

/// Kafka's `TransactionMetadata.isEpochExhausted`.
pub fn is_epoch_exhausted(producer_epoch: i16) -> bool {
    producer_epoch >= i16::MAX - 1
}

/// The coordinator's settings, with Kafka's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnConfig {
    /// `transaction.max.timeout.ms`: largest timeout a producer may ask for.
    pub transaction_max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`: idle time after which an id with no
    /// running transaction is forgotten.
    pub transactional_id_expiration_ms: i64,
}

impl Default for TxnConfig {
    fn default() -> Self {
        TxnConfig {
            transaction_max_timeout_ms: 900_000,
            transactional_id_expiration_ms: 604_800_000,
        }
    }
}

/// The commit or abort markers that end a transaction: one control batch
/// per partition, written with this producer id and epoch (the epoch may be
/// newer than the producer's own when the coordinator fenced it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerPlan {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub control: ControlType,
    /// Sorted; may be empty only for a transaction replayed from a record
    /// written by another broker (then complete it straight away).
    pub partitions: Vec<(String, i32)>,
}

/// How a transaction ends: persist and apply `metadata`; then, when
/// `markers` is `Some` (`metadata` is PrepareCommit / PrepareAbort), write
/// the markers and persist and apply [`Transactions::complete`](super::Transactions::complete).
/// `markers` is `None` when the transaction had no partitions: `metadata`
/// is already CompleteCommit / CompleteAbort and there is nothing to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndPlan {
    pub metadata: TransactionMetadata,
    pub markers: Option<MarkerPlan>,
}

impl EndPlan {
    /// Ends the transaction of `metadata` (a copy of Ongoing metadata,
    /// already carrying the epoch the markers use) with `control` at `now_ms`.
    pub(super) fn end(
        mut metadata: TransactionMetadata,
        control: ControlType,
        now_ms: i64,
    ) -> Self {
        debug_assert_eq!(metadata.state, TransactionState::Ongoing);
        metadata.last_update_timestamp_ms = now_ms;
        if metadata.partitions.is_empty() {
            // Nothing to mark: Kafka's marker channel completes such a
            // transaction at once; we skip the Prepare* record altogether.
            metadata.state = complete_state(control);
            return EndPlan {
                metadata,
                markers: None,
            };
        }
        metadata.state = match control {
            ControlType::Commit => TransactionState::PrepareCommit,
            ControlType::Abort => TransactionState::PrepareAbort,
        };
        let markers = MarkerPlan::of(&metadata, control);
        EndPlan {
            metadata,
            markers: Some(markers),
        }
    }
}

impl MarkerPlan {
    pub(super) fn of(metadata: &TransactionMetadata, control: ControlType) -> Self {
        MarkerPlan {
            transactional_id: metadata.transactional_id.clone(),
            producer_id: metadata.producer_id,
            producer_epoch: metadata.producer_epoch,
            control,
            partitions: metadata.partitions.iter().cloned().collect(),
        }
    }
}

/// The state a transaction ending with `control` completes in.
pub(super) fn complete_state(control: ControlType) -> TransactionState {
    match control {
        ControlType::Commit => TransactionState::CompleteCommit,
        ControlType::Abort => TransactionState::CompleteAbort,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_round_trip() {
        for state in TransactionState::ALL {
            assert_eq!(TransactionState::from_id(state.id()), Some(state));
            assert_eq!(TransactionState::from_name(state.name()), Some(state));
        }
        assert_eq!(TransactionState::from_id(8), None);
        assert_eq!(TransactionState::from_id(-1), None);
        assert_eq!(TransactionState::from_name("ongoing"), None);
        assert_eq!(TransactionState::PrepareEpochFence.id(), 7);
        assert_eq!(TransactionState::CompleteAbort.name(), "CompleteAbort");
    }

    #[test]
    fn epochs_are_exhausted_two_below_the_top() {
        assert!(!is_epoch_exhausted(i16::MAX - 2));
        assert!(is_epoch_exhausted(i16::MAX - 1));
        assert!(is_epoch_exhausted(i16::MAX));
        assert!(!is_epoch_exhausted(NO_PRODUCER_EPOCH));
    }
}
