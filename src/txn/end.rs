//! Ending a transaction: EndTxn, the completion once the markers are
//! written, and the transactions a restart left half-way.
//!
//! Which cores: the shard owning the id's `__transaction_state` partition.
//!
//! Why this shape: ending is two records, as in Kafka's two-phase commit
//! (KIP-98): PrepareCommit / PrepareAbort is the decision, durable before
//! the client hears NONE; the markers then go to every partition; then
//! CompleteCommit / CompleteAbort. A coordinator that restarts between the
//! two finds Prepare* in the log and re-sends the markers
//! ([`Transactions::pending_completion`]); a marker written twice is
//! harmless. Rules follow Kafka's `TransactionCoordinator.endTransaction`
//! for clients before KIP-890 part 2 (EndTxn up to v4, no epoch bump).

use super::coordinator::Transactions;
use super::error::TxnError;
use super::state::{complete_state, EndPlan, MarkerPlan, TransactionMetadata, TransactionState};
use crate::protocol::batch_builder::ControlType;

impl Transactions {
    /// EndTxn: commit (`commit = true`) or abort the running transaction.
    /// `Ok(Some(plan))`: persist and carry out `plan` (answer NONE once its
    /// record is durable). `Ok(None)`: a retry of an end that already
    /// completed the same way; answer NONE, nothing to do.
    ///
    /// Errors: INVALID_REQUEST (empty id), INVALID_PRODUCER_ID_MAPPING
    /// (unknown id or another producer id), PRODUCER_FENCED (another
    /// epoch), CONCURRENT_TRANSACTIONS (a retry while the same end's
    /// markers are being written), INVALID_TXN_STATE (no transaction
    /// running, or it is ending the other way).
    pub fn end_txn(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        now_ms: i64,
    ) -> Result<Option<EndPlan>, TxnError> {
        if transactional_id.is_empty() {
            return Err(TxnError::InvalidRequest);
        }
        let current = self.producer(transactional_id, producer_id, producer_epoch)?;
        use TransactionState::*;
        match (current.state, commit) {
            (Ongoing, _) => {
                let control = if commit {
                    ControlType::Commit
                } else {
                    ControlType::Abort
                };
                Ok(Some(EndPlan::end(current.clone(), control, now_ms)))
            }
            (CompleteCommit, true) | (CompleteAbort, false) => Ok(None),
            (PrepareCommit, true) | (PrepareAbort, false) => Err(TxnError::ConcurrentTransactions),
            // The coordinator is aborting it (only after a replay: Kafka
            // never stores this state); whatever the client asks, wait.
            (PrepareEpochFence, _) => Err(TxnError::ConcurrentTransactions),
            (Empty, _)
            | (CompleteCommit, false)
            | (CompleteAbort, true)
            | (PrepareCommit, false)
            | (PrepareAbort, true) => Err(TxnError::InvalidTxnState),
            // Never held: applying Dead metadata removes the id.
            (Dead, _) => Err(TxnError::InvalidProducerIdMapping),
        }
    }

    /// After every marker of an [`EndPlan`] (or of
    /// [`pending_completion`](Self::pending_completion)) is written: the
    /// CompleteCommit / CompleteAbort metadata to persist and apply, with
    /// no partitions left.
    ///
    /// Errors: INVALID_PRODUCER_ID_MAPPING (unknown id), INVALID_TXN_STATE
    /// (nothing is being prepared: already completed).
    pub fn complete(
        &self,
        transactional_id: &str,
        now_ms: i64,
    ) -> Result<TransactionMetadata, TxnError> {
        let current = self
            .transactions
            .get(transactional_id)
            .ok_or(TxnError::InvalidProducerIdMapping)?;
        let control = preparing(current.state).ok_or(TxnError::InvalidTxnState)?;
        let mut next = current.clone();
        next.state = complete_state(control);
        next.partitions.clear();
        next.last_update_timestamp_ms = now_ms;
        Ok(next)
    }

    /// Transactions whose end was decided but not completed: after a replay,
    /// their markers must be written (again) and then
    /// [`complete`](Self::complete) persisted, as Kafka's coordinator does
    /// when it loads a partition. Sorted by transactional id.
    pub fn pending_completion(&self) -> Vec<MarkerPlan> {
        self.transactions
            .values()
            .filter_map(|metadata| {
                preparing(metadata.state).map(|control| MarkerPlan::of(metadata, control))
            })
            .collect()
    }
}

/// The marker a preparing state writes; `None` when nothing is prepared.
fn preparing(state: TransactionState) -> Option<ControlType> {
    match state {
        TransactionState::PrepareCommit => Some(ControlType::Commit),
        TransactionState::PrepareAbort | TransactionState::PrepareEpochFence => {
            Some(ControlType::Abort)
        }
        _ => None,
    }
}
