//! [`Transactions`]: every transactional id of one `__transaction_state`
//! partition, how records change them, and the requests that start and
//! grow a transaction (InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn).
//!
//! Which cores: one `Transactions` per `__transaction_state` partition, on
//! the shard that owns that partition.
//!
//! Why this shape: deciding (`&self`, returns the next metadata) and
//! applying (`&mut self`, after the record is appended) are separate, so the
//! log stays the source of truth: replay at start-up goes through the same
//! [`apply`](Transactions::apply) as a live change. Decisions follow Kafka's
//! `TransactionCoordinator.handleInitProducerId` /
//! `handleAddPartitionsToTransaction` and `TransactionMetadata.prepare*`.

use std::collections::{BTreeMap, BTreeSet};

use super::error::TxnError;
use super::records::{decode_record, DecodeError};
use super::state::{
    is_epoch_exhausted, EndPlan, TransactionMetadata, TransactionState, TxnConfig,
    NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
};
use super::NAME_BYTES_MAX;
use crate::protocol::batch_builder::ControlType;

/// What InitProducerId with a transactional id leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitProducerIdPlan {
    /// Persist and apply this Empty metadata, then answer its
    /// `producer_id` and `producer_epoch`.
    Initialized(TransactionMetadata),
    /// A transaction is still running: persist and carry out this abort,
    /// whose epoch is bumped so the old producer is fenced, and answer
    /// CONCURRENT_TRANSACTIONS. The client retries and gets a fresh epoch
    /// once the abort is complete.
    FenceOngoing(EndPlan),
}

/// The transactional ids of one `__transaction_state` partition.
#[derive(Debug, Default)]
pub struct Transactions {
    pub(super) config: TxnConfig,
    /// Sorted, so scans (timeouts, expiry, listing) are deterministic.
    pub(super) transactions: BTreeMap<String, TransactionMetadata>,
}

impl Transactions {
    pub fn new(config: TxnConfig) -> Self {
        assert!(
            config.transaction_max_timeout_ms > 0,
            "transaction.max.timeout.ms must be positive"
        );
        Transactions {
            config,
            transactions: BTreeMap::new(),
        }
    }

    pub fn config(&self) -> TxnConfig {
        self.config
    }

    /// Makes `metadata` the state of `transactional_id` after its record
    /// was appended (or read back while replaying); `None` (a tombstone)
    /// and Dead metadata remove the id.
    pub fn apply(&mut self, transactional_id: &str, metadata: Option<TransactionMetadata>) {
        match metadata {
            Some(metadata) if metadata.state != TransactionState::Dead => {
                assert_eq!(
                    metadata.transactional_id, transactional_id,
                    "metadata applied under another transactional id"
                );
                self.transactions
                    .insert(transactional_id.to_owned(), metadata);
            }
            Some(_) | None => {
                self.transactions.remove(transactional_id);
            }
        }
    }

    /// Applies one record of the partition read back from the log, in log
    /// order. A record that does not decode changes nothing and returns the
    /// error (Kafka skips unknown key versions while loading).
    pub fn replay(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), DecodeError> {
        let (transactional_id, metadata) = decode_record(key, value)?;
        self.apply(&transactional_id, metadata);
        Ok(())
    }

    /// The metadata of an id, if known.
    pub fn get(&self, transactional_id: &str) -> Option<&TransactionMetadata> {
        self.transactions.get(transactional_id)
    }

    /// Every id with its metadata, sorted by id: the live records a
    /// compacted copy of the partition would hold.
    pub fn iter(&self) -> impl Iterator<Item = &TransactionMetadata> {
        self.transactions.values()
    }

    pub fn len(&self) -> usize {
        self.transactions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.transactions.is_empty()
    }

    /// InitProducerId for a transactional id (KIP-98, KIP-360).
    ///
    /// `expected` is the producer's current (producer id, epoch) when it
    /// re-initialises after an error (InitProducerId v3+); the caller turns
    /// (-1, -1) into `None`. `next_producer_id` is called at most once, when
    /// a new producer id is needed (new id, or epochs exhausted).
    ///
    /// Errors: INVALID_REQUEST (empty or over-long id),
    /// INVALID_TRANSACTION_TIMEOUT (`timeout_ms` not in 1..=max),
    /// PRODUCER_FENCED (`expected` is neither the current producer nor a
    /// retry of the last initialisation), CONCURRENT_TRANSACTIONS (markers
    /// being written), or whatever `next_producer_id` fails with.
    pub fn init_producer_id(
        &self,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        now_ms: i64,
        next_producer_id: impl FnOnce() -> Result<i64, TxnError>,
    ) -> Result<InitProducerIdPlan, TxnError> {
        check_name(transactional_id)?;
        if timeout_ms <= 0 || timeout_ms > self.config.transaction_max_timeout_ms {
            return Err(TxnError::InvalidTransactionTimeout);
        }
        let Some(current) = self.transactions.get(transactional_id) else {
            // A new id: any expected producer is accepted (it is recovering
            // from UNKNOWN_PRODUCER_ID and the id was forgotten).
            let metadata = TransactionMetadata {
                transactional_id: transactional_id.to_owned(),
                producer_id: next_producer_id()?,
                last_producer_id: NO_PRODUCER_ID,
                producer_epoch: 0,
                last_producer_epoch: NO_PRODUCER_EPOCH,
                timeout_ms,
                state: TransactionState::Empty,
                partitions: BTreeSet::new(),
                start_timestamp_ms: -1,
                last_update_timestamp_ms: now_ms,
            };
            return Ok(InitProducerIdPlan::Initialized(metadata));
        };
        if let Some(expected) = expected {
            if !is_valid_expected_producer(current, expected) {
                return Err(TxnError::ProducerFenced);
            }
        }
        match current.state {
            TransactionState::PrepareCommit
            | TransactionState::PrepareAbort
            | TransactionState::PrepareEpochFence => Err(TxnError::ConcurrentTransactions),
            TransactionState::Ongoing => Ok(InitProducerIdPlan::FenceOngoing(fence_and_abort(
                current, now_ms,
            ))),
            // Never held: applying Dead metadata removes the id.
            TransactionState::Dead => Err(TxnError::ConcurrentTransactions),
            TransactionState::Empty
            | TransactionState::CompleteCommit
            | TransactionState::CompleteAbort => {
                let rotate = current.is_producer_epoch_exhausted()
                    && expected.is_none_or(|(_, epoch)| epoch == current.producer_epoch);
                let (producer_id, producer_epoch, last_producer_epoch) = if rotate {
                    let last_epoch = match expected {
                        Some(_) => current.producer_epoch,
                        None => NO_PRODUCER_EPOCH,
                    };
                    (next_producer_id()?, 0, last_epoch)
                } else {
                    let (epoch, last_epoch) =
                        next_epoch(current, expected.map(|(_, epoch)| epoch))?;
                    (current.producer_id, epoch, last_epoch)
                };
                Ok(InitProducerIdPlan::Initialized(TransactionMetadata {
                    transactional_id: transactional_id.to_owned(),
                    producer_id,
                    last_producer_id: current.producer_id,
                    producer_epoch,
                    last_producer_epoch,
                    timeout_ms,
                    state: TransactionState::Empty,
                    partitions: BTreeSet::new(),
                    start_timestamp_ms: -1,
                    last_update_timestamp_ms: now_ms,
                }))
            }
        }
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn, with the group's offsets
    /// partition): the Ongoing metadata to persist, or `None` when every
    /// partition is already in the running transaction (answer NONE, write
    /// nothing). A transaction starts (start timestamp = `now_ms`) when
    /// partitions are added in Empty, CompleteCommit or CompleteAbort.
    ///
    /// Errors: INVALID_REQUEST (empty id or over-long topic name),
    /// INVALID_PRODUCER_ID_MAPPING (unknown id or another producer id),
    /// PRODUCER_FENCED (another epoch), CONCURRENT_TRANSACTIONS (markers
    /// being written).
    pub fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
        now_ms: i64,
    ) -> Result<Option<TransactionMetadata>, TxnError> {
        check_name(transactional_id)?;
        if partitions
            .iter()
            .any(|(topic, _)| topic.len() > NAME_BYTES_MAX)
        {
            return Err(TxnError::InvalidRequest);
        }
        let current = self.producer(transactional_id, producer_id, producer_epoch)?;
        if current.state.is_preparing() {
            return Err(TxnError::ConcurrentTransactions);
        }
        let known = partitions
            .iter()
            .all(|partition| current.partitions.contains(partition));
        if current.state == TransactionState::Ongoing && known {
            return Ok(None);
        }
        let mut next = current.clone();
        if !matches!(current.state, TransactionState::Ongoing) {
            next.start_timestamp_ms = now_ms;
        }
        next.state = TransactionState::Ongoing;
        next.partitions.extend(partitions.iter().cloned());
        next.last_update_timestamp_ms = now_ms;
        Ok(Some(next))
    }

    /// AddPartitionsToTxn v4+ with `verify_only` (a partition leader checks
    /// before appending transactional data, KIP-890 part 1): the partitions
    /// that are *not* in the running transaction of this producer. Kafka
    /// answers TRANSACTION_ABORTABLE for those from v5, INVALID_TXN_STATE
    /// before; NONE for the others.
    ///
    /// Errors (for every partition): INVALID_REQUEST (empty id),
    /// INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED, CONCURRENT_TRANSACTIONS.
    pub fn verify_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<Vec<(String, i32)>, TxnError> {
        if transactional_id.is_empty() {
            return Err(TxnError::InvalidRequest);
        }
        let current = self.producer(transactional_id, producer_id, producer_epoch)?;
        if current.state.is_preparing() {
            return Err(TxnError::ConcurrentTransactions);
        }
        Ok(partitions
            .iter()
            .filter(|partition| !current.partitions.contains(*partition))
            .cloned()
            .collect())
    }

    /// The metadata of `transactional_id` if `producer_id` and
    /// `producer_epoch` are its current ones (the checks every client
    /// request after InitProducerId starts with).
    pub(super) fn producer(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
    ) -> Result<&TransactionMetadata, TxnError> {
        let current = self
            .transactions
            .get(transactional_id)
            .ok_or(TxnError::InvalidProducerIdMapping)?;
        if current.producer_id != producer_id {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if current.producer_epoch != producer_epoch {
            return Err(TxnError::ProducerFenced);
        }
        Ok(current)
    }
}

/// Ids the coordinator cannot use: empty (Kafka: INVALID_REQUEST, as the
/// Java producer refuses it too) or too long for a record key.
fn check_name(transactional_id: &str) -> Result<(), TxnError> {
    if transactional_id.is_empty() || transactional_id.len() > NAME_BYTES_MAX {
        return Err(TxnError::InvalidRequest);
    }
    Ok(())
}

/// Kafka's `prepareInitProducerIdTransit.isValidProducerId`: the expected
/// producer is the current one, or the metadata has no epoch yet, or it is a
/// retry of a rotation whose answer was lost (the old id at an exhausted epoch).
fn is_valid_expected_producer(
    current: &TransactionMetadata,
    (producer_id, epoch): (i64, i16),
) -> bool {
    current.producer_epoch == NO_PRODUCER_EPOCH
        || producer_id == current.producer_id
        || (producer_id == current.last_producer_id && is_epoch_exhausted(epoch))
}

/// Kafka's `prepareIncrementProducerEpoch`: (new epoch, new last epoch).
/// Without an expected epoch, bump. With one: bump if it is the current
/// epoch (or there is none yet); answer the current epoch again if it is the
/// one the last initialisation bumped from (a retry, KIP-360); else fenced.
fn next_epoch(
    current: &TransactionMetadata,
    expected_epoch: Option<i16>,
) -> Result<(i16, i16), TxnError> {
    let bump = || {
        current
            .producer_epoch
            .checked_add(1)
            .ok_or(TxnError::ProducerFenced)
    };
    match expected_epoch {
        None => Ok((bump()?, NO_PRODUCER_EPOCH)),
        Some(expected)
            if current.producer_epoch == NO_PRODUCER_EPOCH
                || expected == current.producer_epoch =>
        {
            Ok((bump()?, current.producer_epoch))
        }
        Some(expected) if expected == current.last_producer_epoch => {
            Ok((current.producer_epoch, current.last_producer_epoch))
        }
        Some(_) => Err(TxnError::ProducerFenced),
    }
}

/// Kafka's `prepareFenceProducerEpoch` followed by the coordinator's own
/// abort: the running transaction is aborted under a bumped epoch, so that
/// its producer is fenced on every partition the markers reach. The epoch
/// never passes `i16::MAX` (clients never hold more than `i16::MAX - 1`, so
/// there is always one left).
pub(super) fn fence_and_abort(current: &TransactionMetadata, now_ms: i64) -> EndPlan {
    let mut fenced = current.clone();
    fenced.producer_epoch = current.producer_epoch.saturating_add(1);
    fenced.last_producer_epoch = NO_PRODUCER_EPOCH;
    EndPlan::end(fenced, ControlType::Abort, now_ms)
}
