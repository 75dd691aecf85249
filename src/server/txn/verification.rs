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

use std::collections::BTreeMap;

use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, ProducerId, TopicName, TransactionalId};
use kafka_protocol::protocol::StrBytes;

use super::{route, state_topic, TxnAnswer, TxnCall};
use crate::protocol::errors::{KafkaError, NONE};
use crate::server::peer_brokers;
use crate::server::routing::{partition_hop, PartitionHop};
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
    let answer = match coordinator_node(shard, transactional_id).await {
        Some(node) => {
            verify_on_peer(
                shard,
                node,
                transactional_id,
                producer_id,
                producer_epoch,
                &unverified,
            )
            .await
        }
        None => {
            let call = TxnCall::Verify {
                transactional_id: transactional_id.to_string(),
                producer_id,
                producer_epoch,
                partitions: unverified,
            };
            route(shard, call).await
        }
    };
    match answer {
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

/// The broker coordinating `transactional_id` when it is another one.
async fn coordinator_node(shard: &Rc<Shard>, transactional_id: &str) -> Option<i32> {
    shard.config.cluster.as_ref()?;
    let topic = state_topic::ensure(shard).await.ok()?;
    let partition = state_topic::partition_for(transactional_id, topic.partition_count);
    match partition_hop(shard, &topic.name, partition) {
        PartitionHop::Node(node) => Some(node),
        PartitionHop::ThisNode { .. } | PartitionHop::NoLeader => None,
    }
}

/// AddPartitionsToTxn v4 with `verify_only`, as a broker asks a
/// coordinator on another node (KIP-890): which partitions are missing.
async fn verify_on_peer(
    shard: &Rc<Shard>,
    node: i32,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    partitions: &[(String, i32)],
) -> TxnAnswer {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in partitions {
        topics.entry(topic.as_str()).or_default().push(*partition);
    }
    let transaction = AddPartitionsToTxnTransaction::default()
        .with_transactional_id(TransactionalId(StrBytes::from_string(
            transactional_id.to_string(),
        )))
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(producer_epoch)
        .with_verify_only(true)
        .with_topics(
            topics
                .iter()
                .map(|(topic, indexes)| {
                    AddPartitionsToTxnTopic::default()
                        .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                        .with_partitions(indexes.clone())
                })
                .collect(),
        );
    let request = AddPartitionsToTxnRequest::default().with_transactions(vec![transaction]);
    let response = match peer_brokers::call(shard, node, VERIFY_VERSION, &request).await {
        Ok(response) => response,
        Err(error) => {
            tracing::warn!(node, %error, "cannot verify a transaction at its coordinator");
            return TxnAnswer::Unavailable(KafkaError::CoordinatorNotAvailable.code());
        }
    };
    if response.error_code != NONE {
        return TxnAnswer::Unavailable(response.error_code);
    }
    let mut missing = Vec::new();
    for result in response
        .results_by_transaction
        .iter()
        .flat_map(|r| &r.topic_results)
    {
        for partition in &result.results_by_partition {
            match partition.partition_error_code {
                NONE => {}
                code if code == KafkaError::InvalidTxnState.code() => missing.push((
                    result.name.0.as_str().to_string(),
                    partition.partition_index,
                )),
                code => return TxnAnswer::Unavailable(code),
            }
        }
    }
    TxnAnswer::Missing(missing)
}

/// The AddPartitionsToTxn version brokers verify with (v4: batched,
/// `verify_only`).
const VERIFY_VERSION: i16 = 4;

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
