//! Produce: validate batches on the shard that received the request, append
//! on each partition's owner (locally, or forwarded over the mesh), then
//! answer once `acks` is satisfied.
//!
//! The handler has two stages. `dispatch_produce` runs in the connection's
//! read loop, in request order: it resolves topics, validates every batch and
//! hands each partition's batches to its owner (local append, or an ordered
//! mesh send). Only then is the next request read, so pipelined produce
//! requests on one connection keep their per-partition order. The returned
//! future (stage two) waits for the acks and builds the response.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use futures::channel::oneshot;
use futures::future::{join_all, LocalBoxFuture};
use futures::FutureExt;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use super::admin::ensure_topic;
use super::forward::{ProducePart, ShardReply, ShardRequest};
use super::partition_ops::{self, Appended, ProduceOutcome};
use super::shard::Shard;
use super::txn::verification;
use crate::metadata::catalog::TopicMetadata;
use crate::protocol::errors::KafkaError;
use crate::protocol::record_batch::{split_batches, validate_batch, BatchError};

/// Where one partition's answer will come from.
enum Slot {
    Ready(ProduceOutcome),
    Local(usize),
    Remote { owner: usize, position: usize },
}

/// Stage one of Produce (see module docs). The future resolves to `None` for
/// acks=0, which gets no response.
pub async fn dispatch_produce(
    shard: &Rc<Shard>,
    request: ProduceRequest,
    version: i16,
) -> LocalBoxFuture<'static, Option<ProduceResponse>> {
    let acks = request.acks;
    // Pass one: resolve and validate every partition.
    let mut checked: Vec<(usize, i32, Result<CheckedPart, i16>)> = Vec::new();
    let mut topic_names = Vec::with_capacity(request.topic_data.len());
    for (topic_index, topic_data) in request.topic_data.into_iter().enumerate() {
        let topic = ensure_topic(shard, topic_data.name.0.as_str()).await;
        for partition_data in topic_data.partition_data {
            let partition = partition_data.index;
            let part = validate_partition(&topic, partition, partition_data.records);
            checked.push((topic_index, partition, part));
        }
        topic_names.push(topic_data.name);
    }
    // Transactional batches: only from a transactional producer, and only
    // to partitions in its transaction (KIP-890).
    let transactional: Vec<(Arc<str>, i32, i64, i16)> = checked
        .iter()
        .filter_map(|(_, partition, part)| match part {
            Ok(part) => part
                .transaction
                .map(|(id, epoch)| (Arc::clone(&part.topic), *partition, id, epoch)),
            Err(_) => None,
        })
        .collect();
    if !transactional.is_empty() {
        let refused = verification::verify(
            shard,
            request.transactional_id.as_ref().map(|id| id.0.as_str()),
            &transactional,
        )
        .await;
        for (_, partition, part) in &mut checked {
            let refusal = match part {
                Ok(valid) => refused
                    .iter()
                    .find(|(topic, p, _)| *p == *partition && *topic == valid.topic)
                    .map(|(_, _, code)| *code),
                Err(_) => None,
            };
            if let Some(code) = refusal {
                *part = Err(code);
            }
        }
    }
    // Pass two: hand each partition to its owner.
    let mut slots: Vec<Vec<(i32, Slot)>> = (0..topic_names.len()).map(|_| Vec::new()).collect();
    let mut local_parts = Vec::new();
    let mut remote_parts: BTreeMap<usize, Vec<ProducePart>> = BTreeMap::new();
    for (topic_index, partition, part) in checked {
        let slot = match part {
            Err(code) => Slot::Ready(ProduceOutcome::error(code)),
            Ok(CheckedPart { topic, batches, .. }) => {
                let part = ProducePart {
                    topic,
                    partition,
                    batches,
                };
                let owner = shard.owner_of(&part.topic, partition);
                if owner == shard.id {
                    local_parts.push(part);
                    Slot::Local(local_parts.len() - 1)
                } else {
                    let parts = remote_parts.entry(owner).or_default();
                    parts.push(part);
                    Slot::Remote {
                        owner,
                        position: parts.len() - 1,
                    }
                }
            }
        };
        slots[topic_index].push((partition, slot));
    }
    let local_appended: Vec<Appended> = partition_ops::append_parts(shard, local_parts);
    let mut remote_replies: BTreeMap<usize, Option<oneshot::Receiver<ShardReply>>> =
        BTreeMap::new();
    for (owner, parts) in remote_parts {
        let reply = shard
            .send_to_shard(owner, ShardRequest::Produce { parts, acks })
            .await
            .ok();
        remote_replies.insert(owner, reply);
    }
    let shard = Rc::clone(shard);
    async move {
        let local_outcomes = partition_ops::await_acks(&shard, local_appended, acks).await;
        let remote_outcomes: BTreeMap<usize, Vec<ProduceOutcome>> =
            join_all(remote_replies.into_iter().map(|(owner, reply)| async move {
                let outcomes = match reply {
                    Some(receiver) => match receiver.await {
                        Ok(ShardReply::Produced(outcomes)) => outcomes,
                        _ => Vec::new(),
                    },
                    None => Vec::new(),
                };
                (owner, outcomes)
            }))
            .await
            .into_iter()
            .collect();
        if acks == 0 {
            return None;
        }
        let not_leader = ProduceOutcome::error(KafkaError::NotLeaderOrFollower.code());
        let responses = topic_names
            .into_iter()
            .zip(slots)
            .map(|(name, topic_slots)| {
                let partitions = topic_slots
                    .into_iter()
                    .map(|(partition, slot)| {
                        let outcome = match slot {
                            Slot::Ready(outcome) => outcome,
                            Slot::Local(index) => {
                                local_outcomes.get(index).copied().unwrap_or(not_leader)
                            }
                            Slot::Remote { owner, position } => remote_outcomes
                                .get(&owner)
                                .and_then(|outcomes| outcomes.get(position))
                                .copied()
                                .unwrap_or(not_leader),
                        };
                        partition_response(partition, outcome, version)
                    })
                    .collect();
                TopicProduceResponse::default()
                    .with_name(name)
                    .with_partition_responses(partitions)
            })
            .collect();
        Some(ProduceResponse::default().with_responses(responses))
    }
    .boxed_local()
}

fn partition_response(
    partition: i32,
    outcome: ProduceOutcome,
    version: i16,
) -> PartitionProduceResponse {
    let response = PartitionProduceResponse::default()
        .with_index(partition)
        .with_error_code(outcome.error_code)
        .with_base_offset(outcome.base_offset)
        .with_log_append_time_ms(outcome.log_append_time_ms);
    // log_start_offset exists from v5; older versions must leave the default.
    if version >= 5 {
        response.with_log_start_offset(outcome.log_start_offset)
    } else {
        response
    }
}

/// One partition's validated batches.
struct CheckedPart {
    topic: Arc<str>,
    batches: Vec<Bytes>,
    /// Producer id and epoch when the batches are transactional.
    transaction: Option<(i64, i16)>,
}

/// Checks one partition's records the way Kafka's LogValidator does before
/// any append: every batch must be whole, magic 2, crc-clean, within the
/// topic's `max.message.bytes`, not a control batch, with a sequence when it
/// has a producer id. All-or-nothing per partition.
fn validate_partition(
    topic: &Result<Arc<TopicMetadata>, i16>,
    partition: i32,
    records: Option<Bytes>,
) -> Result<CheckedPart, i16> {
    let topic = topic.as_ref().map_err(|code| *code)?;
    if topic.is_internal() {
        // Only the group coordinator writes it (Kafka: "Cannot append to
        // internal topic").
        return Err(KafkaError::InvalidTopicException.code());
    }
    if !topic.has_partition(partition) {
        return Err(KafkaError::UnknownTopicOrPartition.code());
    }
    let records = records
        .filter(|r| !r.is_empty())
        .ok_or(KafkaError::InvalidRecord.code())?;
    let max_batch_bytes = usize::try_from(topic.configs.max_message_bytes).unwrap_or(usize::MAX);
    let mut batches = Vec::new();
    let mut transaction = None;
    for batch in split_batches(&records) {
        let batch = batch.map_err(batch_error_code)?;
        if batch.len() > max_batch_bytes {
            return Err(KafkaError::MessageTooLarge.code());
        }
        let header = validate_batch(&batch).map_err(batch_error_code)?;
        // Only the transaction coordinator writes markers; a transactional
        // batch must say whose transaction it belongs to (Kafka's LogValidator).
        if header.is_control()
            || (header.is_transactional() && header.producer_id < 0)
            || (header.producer_id >= 0 && header.base_sequence < 0)
        {
            return Err(KafkaError::InvalidRecord.code());
        }
        if header.is_transactional() {
            transaction.get_or_insert((header.producer_id, header.producer_epoch));
        }
        batches.push(batch);
    }
    Ok(CheckedPart {
        topic: Arc::clone(&topic.name),
        batches,
        transaction,
    })
}

fn batch_error_code(error: BatchError) -> i16 {
    match error {
        BatchError::Truncated | BatchError::CrcMismatch => KafkaError::CorruptMessage.code(),
        BatchError::UnsupportedMagic(_) => KafkaError::UnsupportedForMessageFormat.code(),
        BatchError::InvalidHeader => KafkaError::InvalidRecord.code(),
    }
}
