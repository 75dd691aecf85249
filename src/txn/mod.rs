//! Transaction coordinator (KIP-98): the state of every transactional id as a
//! pure state machine, and the `__transaction_state` records it is stored in.
//!
//! Which cores: a transactional id lives only on the shard that owns the
//! `__transaction_state` partition its id hashes to ([`partition_for`]); one
//! [`Transactions`] holds every id of one such partition. Other shards
//! forward transactional requests there, as for consumer groups.
//!
//! Why this shape: like `crate::group`, deciding is plain code with no I/O,
//! no glommio and no protocol codecs; time is passed in (`now_ms`) and every
//! outcome is data. The behaviour follows the Java broker's
//! `TransactionCoordinator` / `TransactionMetadata` / `TransactionStateManager`
//! before KIP-890 part 2 (EndTxn up to v4: the epoch is bumped only by
//! InitProducerId and by fencing, never per transaction).
//!
//! # How the server drives it
//!
//! Every change is decided with `&self`, written, then applied with
//! `&mut self`, in one synchronous step on the owning shard, so no other
//! request can decide on stale state in between (Kafka needs a "pending
//! state" for this; a single-threaded shard does not):
//!
//! ```text
//! let plan = transactions.end_txn(id, producer_id, epoch, commit, now_ms)?;
//! if let Some(plan) = plan {
//!     append(records::encode_key(id), Some(records::encode_value(&plan.metadata)))?;
//!     transactions.apply(id, Some(plan.metadata));
//!     // answer NONE now; then, if plan.markers is Some: write a marker to
//!     // every partition, and afterwards persist + apply
//!     // transactions.complete(id, now_ms)?
//! }
//! ```
//!
//! - [`Transactions::init_producer_id`]: InitProducerId with a transactional
//!   id. Either new metadata to persist (answer its producer id and epoch),
//!   or an ongoing transaction to fence and abort first (persist its
//!   [`EndPlan`], write its markers, answer CONCURRENT_TRANSACTIONS: the
//!   client retries once the abort is complete).
//! - [`Transactions::add_partitions`]: AddPartitionsToTxn, and
//!   AddOffsetsToTxn with the `__consumer_offsets` partition of the group
//!   (Kafka adds that partition to the transaction).
//!   [`Transactions::verify_partitions`]: AddPartitionsToTxn v4+ `verify_only`.
//! - [`Transactions::end_txn`]: EndTxn; [`Transactions::complete`] after the
//!   markers of an [`EndPlan`] are written.
//! - [`Transactions::timed_out`] (abort transactions older than their
//!   timeout), [`Transactions::expired`] (tombstone idle transactional ids),
//!   [`Transactions::pending_completion`] (after replay: markers to re-send).
//! - [`Transactions::apply`] / [`Transactions::replay`]: the in-memory side
//!   of a record, live or read back from the log at start-up.
//! - [`Transactions::describe`], [`Transactions::list`]:
//!   DescribeTransactions v0, ListTransactions v0-v1.
//!
//! Inside:
//! - `error`: the Kafka error codes the coordinator answers with
//! - `state`: states, per-id metadata, config and the plans handed back
//! - `records`: `__transaction_state` key/value codec, [`partition_for`]
//! - `coordinator`: [`Transactions`], apply/replay, InitProducerId, partitions
//! - `end`: EndTxn, completion, fencing, markers pending after replay
//! - `timers`: transaction timeouts and transactional id expiry
//! - `listing`: DescribeTransactions and ListTransactions

pub mod coordinator;
pub mod end;
pub mod error;
pub mod listing;
pub mod records;
pub mod state;
pub mod timers;

#[cfg(test)]
mod tests;

pub use coordinator::{InitProducerIdPlan, Transactions};
pub use error::TxnError;
pub use listing::{ListFilter, ListedTransaction};
pub use records::{partition_for, DecodeError};
pub use state::{EndPlan, MarkerPlan, TransactionMetadata, TransactionState, TxnConfig};

/// How often Kafka's coordinator looks for transactions past their timeout
/// (`transaction.abort.timed.out.transaction.cleanup.interval.ms`).
pub const ABORT_TIMED_OUT_TRANSACTIONS_INTERVAL_MS: i64 = 10_000;

/// How often Kafka's coordinator looks for idle transactional ids to expire
/// (`transaction.remove.expired.transaction.cleanup.interval.ms`).
pub const REMOVE_EXPIRED_TRANSACTIONAL_IDS_INTERVAL_MS: i64 = 3_600_000;

/// Longest transactional id or topic name the coordinator accepts, in UTF-8
/// bytes: `__transaction_state` records (Kafka's TransactionLogKey v0 and
/// TransactionLogValue v0) prefix strings with an `i16` length. Longer ids
/// are refused with INVALID_REQUEST before anything is written.
pub const NAME_BYTES_MAX: usize = i16::MAX as usize;
