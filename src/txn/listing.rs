//! DescribeTransactions (v0) and ListTransactions (v0-v1): read-only views
//! of the transactional ids of one `__transaction_state` partition.
//!
//! Which cores: the shard owning the partition; the server merges the
//! listings of all its partitions (ListTransactions asks every broker).
//!
//! Why this shape: the filters are parsed once per request
//! ([`ListFilter::new`], which also reports unknown state names, as Kafka's
//! `unknownStateFilters`), then applied to each partition.

use std::collections::BTreeSet;

use super::coordinator::Transactions;
use super::error::TxnError;
use super::state::{TransactionMetadata, TransactionState};

/// ListTransactions filters (Kafka's `listTransactionStates`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListFilter {
    /// `None`: any state. `Some(states)`: only these; empty when every name
    /// asked for was unknown, which matches nothing (as in Kafka).
    pub states: Option<BTreeSet<TransactionState>>,
    /// Empty: any producer id.
    pub producer_ids: BTreeSet<i64>,
    /// ListTransactions v1 `DurationFilter`: only transactions with
    /// `now - start > duration_ms`; negative (`-1`): no filter. As in Kafka,
    /// an id with no transaction (start `-1`) passes any such filter.
    pub duration_ms: i64,
}

impl ListFilter {
    /// The filter of a request, and the state names it did not recognise
    /// (ListTransactions `UnknownStateFilters`).
    pub fn new<'a>(
        state_names: impl IntoIterator<Item = &'a str>,
        producer_ids: impl IntoIterator<Item = i64>,
        duration_ms: i64,
    ) -> (ListFilter, Vec<String>) {
        let mut states: Option<BTreeSet<TransactionState>> = None;
        let mut unknown = Vec::new();
        for name in state_names {
            let known = states.get_or_insert_with(BTreeSet::new);
            match TransactionState::from_name(name) {
                Some(state) => {
                    known.insert(state);
                }
                None => unknown.push(name.to_owned()),
            }
        }
        let filter = ListFilter {
            states,
            producer_ids: producer_ids.into_iter().collect(),
            duration_ms,
        };
        (filter, unknown)
    }

    fn matches(&self, metadata: &TransactionMetadata, now_ms: i64) -> bool {
        metadata.state != TransactionState::Dead
            && (self.producer_ids.is_empty() || self.producer_ids.contains(&metadata.producer_id))
            && self
                .states
                .as_ref()
                .is_none_or(|states| states.contains(&metadata.state))
            && (self.duration_ms < 0
                || now_ms.saturating_sub(metadata.start_timestamp_ms) > self.duration_ms)
    }
}

/// One entry of a ListTransactions answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedTransaction {
    pub transactional_id: String,
    pub producer_id: i64,
    pub state: TransactionState,
}

impl Transactions {
    /// DescribeTransactions for one id: its metadata (state name via
    /// [`TransactionState::name`], topics via
    /// [`TransactionMetadata::partitions_by_topic`]).
    ///
    /// Errors: INVALID_REQUEST (empty id), TRANSACTIONAL_ID_NOT_FOUND.
    pub fn describe(&self, transactional_id: &str) -> Result<&TransactionMetadata, TxnError> {
        if transactional_id.is_empty() {
            return Err(TxnError::InvalidRequest);
        }
        self.transactions
            .get(transactional_id)
            .filter(|metadata| metadata.state != TransactionState::Dead)
            .ok_or(TxnError::TransactionalIdNotFound)
    }

    /// ListTransactions over this partition at `now_ms`, sorted by id.
    pub fn list(&self, filter: &ListFilter, now_ms: i64) -> Vec<ListedTransaction> {
        self.transactions
            .values()
            .filter(|metadata| filter.matches(metadata, now_ms))
            .map(|metadata| ListedTransaction {
                transactional_id: metadata.transactional_id.clone(),
                producer_id: metadata.producer_id,
                state: metadata.state,
            })
            .collect()
    }
}
