//! Time-driven decisions: transactions running past their timeout are
//! aborted, and idle transactional ids are forgotten.
//!
//! Which cores: the shard owning the `__transaction_state` partition; its
//! coordinator task calls these every
//! [`ABORT_TIMED_OUT_TRANSACTIONS_INTERVAL_MS`](super::ABORT_TIMED_OUT_TRANSACTIONS_INTERVAL_MS)
//! and [`REMOVE_EXPIRED_TRANSACTIONAL_IDS_INTERVAL_MS`](super::REMOVE_EXPIRED_TRANSACTIONAL_IDS_INTERVAL_MS).
//!
//! Why this shape: pure scans with time passed in, like Kafka's
//! `TransactionStateManager.timedOutTransactions` and
//! `removeExpiredTransactionalIds`; the caller persists what they return.

use super::coordinator::{fence_and_abort, Transactions};
use super::state::{EndPlan, TransactionState};

impl Transactions {
    /// Ongoing transactions open longer than their timeout at `now_ms`
    /// (Kafka: `start + timeout < now`): each one's abort, under a bumped
    /// epoch so that its producer is fenced (it must InitProducerId again),
    /// as Kafka's `abortTimedOutTransactions` does. Persist and carry out
    /// each plan as for EndTxn. Sorted by transactional id.
    pub fn timed_out(&self, now_ms: i64) -> Vec<EndPlan> {
        self.transactions
            .values()
            .filter(|metadata| {
                metadata.state == TransactionState::Ongoing
                    && metadata
                        .start_timestamp_ms
                        .saturating_add(i64::from(metadata.timeout_ms))
                        < now_ms
            })
            .map(|metadata| fence_and_abort(metadata, now_ms))
            .collect()
    }

    /// Transactional ids with nothing running (Empty, CompleteCommit,
    /// CompleteAbort) not updated for `transactional.id.expiration.ms`
    /// (Kafka: `last_update <= now - expiration`). The caller appends a
    /// tombstone for each and applies `None`. Sorted.
    pub fn expired(&self, now_ms: i64) -> Vec<String> {
        let cutoff_ms = now_ms.saturating_sub(self.config.transactional_id_expiration_ms);
        self.transactions
            .values()
            .filter(|metadata| {
                metadata.state.is_expiration_allowed()
                    && metadata.last_update_timestamp_ms <= cutoff_ms
            })
            .map(|metadata| metadata.transactional_id.clone())
            .collect()
    }
}
