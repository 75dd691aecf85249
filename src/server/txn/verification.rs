//! Transaction verification on Produce (KIP-890 part 1, Kafka 3.6+'s
//! `transaction.partition.verification.enable`): transactional batches are
//! accepted only from a producer that names its transactional id, and only
//! for partitions in its running transaction, so a late or stray write can
//! never open a transaction the coordinator will not end (which would hold
//! the partition's last stable offset back for good).
//!
//! Which cores: runs in stage one of Produce on the connection's shard.
//! Partitions this shard owns where the producer's transaction is already
//! open are trusted as they are; the others are checked with one call to
//! the transaction coordinator.

use std::rc::Rc;
use std::sync::Arc;

use super::{route, TxnAnswer, TxnCall};
use crate::protocol::errors::KafkaError;
use crate::server::shard::Shard;

/// The partitions (of `parts`: topic, partition, producer id, epoch) to
/// refuse, with their error code.
pub async fn verify(
    shard: &Rc<Shard>,
    transactional_id: Option<&str>,
    parts: &[(Arc<str>, i32, i64, i16)],
) -> Vec<(Arc<str>, i32, KafkaError)> {
    let refuse_all = |error: KafkaError| -> Vec<(Arc<str>, i32, KafkaError)> {
        parts
            .iter()
            .map(|(topic, partition, _, _)| (Arc::clone(topic), *partition, error))
            .collect()
    };
    let Some(transactional_id) = transactional_id else {
        // Kafka: transactional records need a transactional id.
        return refuse_all(KafkaError::TransactionalIdAuthorizationFailed);
    };
    let Some(&(_, _, producer_id, producer_epoch)) = parts.first() else {
        return Vec::new();
    };
    if parts
        .iter()
        .any(|&(_, _, id, epoch)| id != producer_id || epoch != producer_epoch)
    {
        // One transactional id writes as one producer.
        return refuse_all(KafkaError::InvalidRecord);
    }
    let unverified: Vec<(String, i32)> = parts
        .iter()
        .filter(|(topic, partition, _, _)| {
            shard
                .partition_log(topic, *partition)
                .is_none_or(|log| !log.has_open_transaction(producer_id, producer_epoch))
        })
        .map(|(topic, partition, _, _)| (topic.to_string(), *partition))
        .collect();
    if unverified.is_empty() {
        return Vec::new();
    }
    let call = TxnCall::Verify {
        transactional_id: transactional_id.to_string(),
        producer_id,
        producer_epoch,
        partitions: unverified,
    };
    match route(shard, call).await {
        TxnAnswer::Missing(missing) => parts
            .iter()
            .filter(|(topic, partition, _, _)| {
                missing
                    .iter()
                    .any(|(t, p)| t.as_str() == &**topic && p == partition)
            })
            .map(|(topic, partition, _, _)| {
                (Arc::clone(topic), *partition, KafkaError::InvalidTxnState)
            })
            .collect(),
        other => refuse_all(produce_error(other.code())),
    }
}

/// A coordinator's refusal as a Produce error: fencing as the epoch error
/// clients know from Produce; a coordinator that cannot answer now as a
/// retriable error (Kafka answers NOT_ENOUGH_REPLICAS there).
fn produce_error(code: i16) -> KafkaError {
    if code == KafkaError::ProducerFenced.code() || code == KafkaError::InvalidProducerEpoch.code()
    {
        KafkaError::InvalidProducerEpoch
    } else if code == KafkaError::InvalidProducerIdMapping.code()
        || code == KafkaError::InvalidTxnState.code()
        || code == KafkaError::ConcurrentTransactions.code()
    {
        KafkaError::InvalidTxnState
    } else {
        KafkaError::NotEnoughReplicas
    }
}
