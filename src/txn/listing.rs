//! DescribeTransactions (v0) and ListTransactions (v0-v2): read-only views
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
    /// ListTransactions v2 `TransactionalIdPattern` (KIP-1152): only ids the
    /// whole pattern matches. `None`: any id.
    pub transactional_id_pattern: Option<IdPattern>,
}

/// A transactional id pattern, matched against the whole id as Kafka's
/// `Pattern.matcher(id).matches()` does (RE2/J there, the RE2-family
/// `regex` crate here: same syntax, no backreferences or lookaround).
#[derive(Debug, Clone)]
pub struct IdPattern {
    source: String,
    whole: regex::Regex,
}

impl IdPattern {
    /// Compiles `source`; a pattern that is not a regular expression is
    /// INVALID_REGULAR_EXPRESSION, as in Kafka's `listTransactionStates`.
    pub fn new(source: &str) -> Result<IdPattern, TxnError> {
        // Anchored around a group, so `a|b` must match all of the id.
        let whole = regex::Regex::new(&format!("^(?:{source})$"))
            .map_err(|_| TxnError::InvalidRegularExpression)?;
        Ok(IdPattern {
            source: source.to_owned(),
            whole,
        })
    }

    /// Whether the whole of `transactional_id` matches.
    pub fn matches(&self, transactional_id: &str) -> bool {
        self.whole.is_match(transactional_id)
    }
}

impl PartialEq for IdPattern {
    fn eq(&self, other: &IdPattern) -> bool {
        self.source == other.source
    }
}

impl Eq for IdPattern {}

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
            transactional_id_pattern: None,
        };
        (filter, unknown)
    }

    /// Adds ListTransactions v2's id pattern. Null or empty filters nothing
    /// (Kafka compiles only a non-empty pattern).
    pub fn with_transactional_id_pattern(
        self,
        pattern: Option<&str>,
    ) -> Result<ListFilter, TxnError> {
        let transactional_id_pattern = match pattern {
            Some(source) if !source.is_empty() => Some(IdPattern::new(source)?),
            _ => None,
        };
        Ok(ListFilter {
            transactional_id_pattern,
            ..self
        })
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
            && self
                .transactional_id_pattern
                .as_ref()
                .is_none_or(|pattern| pattern.matches(&metadata.transactional_id))
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
