//! Kafka error codes the transaction coordinator answers with, as the Java
//! broker's `TransactionCoordinator` uses them (protocol guide, "Error
//! Codes"). The typed [`TxnError`] maps one-to-one onto those codes.
//!
//! Version mapping is the caller's: InitProducerId before v4, AddPartitionsToTxn
//! and AddOffsetsToTxn before v2 and EndTxn before v2 do not know
//! PRODUCER_FENCED (90); Kafka answers INVALID_PRODUCER_EPOCH (47) to them.

use thiserror::Error;

use crate::protocol::errors::KafkaError;

/// Why a transactional request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TxnError {
    /// Empty transactional id, or a name too long to store.
    #[error("invalid request")]
    InvalidRequest,
    /// Timeout not in `1..=transaction.max.timeout.ms`.
    #[error("invalid transaction timeout")]
    InvalidTransactionTimeout,
    /// Another state change is in progress (markers being written); the
    /// client backs off and retries.
    #[error("concurrent transactions")]
    ConcurrentTransactions,
    /// A newer producer with the same transactional id exists.
    #[error("producer fenced")]
    ProducerFenced,
    /// Unknown transactional id, or not the producer id it maps to.
    #[error("invalid producer id mapping")]
    InvalidProducerIdMapping,
    /// The request does not fit the transaction's state (EndTxn with no
    /// transaction, commit after abort, ...).
    #[error("invalid transaction state")]
    InvalidTxnState,
    /// DescribeTransactions of an unknown transactional id.
    #[error("transactional id not found")]
    TransactionalIdNotFound,
    /// No producer id could be allocated right now (the server's producer id
    /// block is being renewed); retriable.
    #[error("coordinator load in progress")]
    CoordinatorLoadInProgress,
    /// No producer id could be allocated (the id store failed); retriable
    /// after a coordinator lookup.
    #[error("coordinator not available")]
    CoordinatorNotAvailable,
    /// ListTransactions v2 with a transactional id pattern that is not a
    /// regular expression (KIP-1152).
    #[error("invalid regular expression")]
    InvalidRegularExpression,
}

impl TxnError {
    /// The Kafka error code on the wire.
    pub fn code(self) -> i16 {
        let error = match self {
            TxnError::InvalidRequest => KafkaError::InvalidRequest,
            TxnError::InvalidTransactionTimeout => KafkaError::InvalidTransactionTimeout,
            TxnError::ConcurrentTransactions => KafkaError::ConcurrentTransactions,
            TxnError::ProducerFenced => KafkaError::ProducerFenced,
            TxnError::InvalidProducerIdMapping => KafkaError::InvalidProducerIdMapping,
            TxnError::InvalidTxnState => KafkaError::InvalidTxnState,
            TxnError::TransactionalIdNotFound => KafkaError::TransactionalIdNotFound,
            TxnError::CoordinatorLoadInProgress => KafkaError::CoordinatorLoadInProgress,
            TxnError::CoordinatorNotAvailable => KafkaError::CoordinatorNotAvailable,
            TxnError::InvalidRegularExpression => KafkaError::InvalidRegularExpression,
        };
        error.code()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_kafkas() {
        assert_eq!(TxnError::InvalidRequest.code(), 42);
        assert_eq!(TxnError::InvalidTxnState.code(), 48);
        assert_eq!(TxnError::InvalidProducerIdMapping.code(), 49);
        assert_eq!(TxnError::InvalidTransactionTimeout.code(), 50);
        assert_eq!(TxnError::ConcurrentTransactions.code(), 51);
        assert_eq!(TxnError::ProducerFenced.code(), 90);
        assert_eq!(TxnError::TransactionalIdNotFound.code(), 105);
        assert_eq!(TxnError::CoordinatorLoadInProgress.code(), 14);
        assert_eq!(TxnError::CoordinatorNotAvailable.code(), 15);
        assert_eq!(TxnError::InvalidRegularExpression.code(), 128);
    }
}
