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
//!
//! Data plane: this module imports nothing from the control plane. Topic
//! auto-creation and transaction verification are the caller's
//! ([`ProduceControl`], implemented in `dispatch`), so the dependency goes
//! control -> data. Runs on the shard that accepted the connection.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::{join_all, LocalBoxFuture};
use futures::FutureExt;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::partition_calls::{ProduceCall, ProduceOutcome, ProducePart};
use super::routing::{self, Pending};
use super::shard::Shard;
use crate::metadata::catalog::TopicMetadata;
use crate::protocol::errors::KafkaError;
use crate::protocol::record_batch::{split_batches, validate_batch, BatchError};

/// What Produce needs from the control plane, passed in by the caller so
/// that this data-plane module does not depend on it.
/// (`async fn` in the trait is fine: everything here is shard-local.)
#[allow(async_fn_in_trait)]
pub trait ProduceControl {
    /// The topic named `name`, auto-created when the broker does that, or
    /// the error code to answer its partitions with.
    async fn topic(&self, shard: &Rc<Shard>, name: &str) -> Result<Arc<TopicMetadata>, KafkaError>;
    /// Transaction verification (KIP-890) of `parts` (topic, partition,
    /// producer id, epoch): the partitions to refuse, with their error code.
    async fn verify_transaction(
        &self,
        shard: &Rc<Shard>,
        transactional_id: Option<&str>,
        parts: &[(Arc<str>, i32, i64, i16)],
    ) -> Vec<(Arc<str>, i32, KafkaError)>;
}

/// Where one partition's answer will come from.
enum Slot {
    Ready(ProduceOutcome),
    Owned { owner: usize, position: usize },
}

/// Stage one of Produce (see module docs). The future resolves to `None` for
/// acks=0, which gets no response.
pub async fn dispatch_produce(
    shard: &Rc<Shard>,
    request: ProduceRequest,
    version: i16,
    control: &impl ProduceControl,
) -> LocalBoxFuture<'static, Option<ProduceResponse>> {
    let acks = request.acks;
    let timeout_ms = request.timeout_ms;
    // Pass one: resolve and validate every partition.
    let mut checked: Vec<(usize, i32, Result<CheckedPart, KafkaError>)> = Vec::new();
    let mut topic_names = Vec::with_capacity(request.topic_data.len());
    for (topic_index, topic_data) in request.topic_data.into_iter().enumerate() {
        let topic = if version >= 13 {
            topic_by_id(shard, &topic_data.topic_id)
        } else {
            control.topic(shard, topic_data.name.0.as_str()).await
        };
        for partition_data in topic_data.partition_data {
            let partition = partition_data.index;
            let part = validate_partition(&topic, partition, partition_data.records);
            checked.push((topic_index, partition, part));
        }
        topic_names.push((topic_data.name, topic_data.topic_id));
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
        let refused = control
            .verify_transaction(
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
    // Pass two: hand each partition to its owner, one call per owner,
    // started in order (local appends happen inside `routing::start`).
    let mut slots: Vec<Vec<(i32, Slot)>> = (0..topic_names.len()).map(|_| Vec::new()).collect();
    let mut by_owner: BTreeMap<usize, Vec<ProducePart>> = BTreeMap::new();
    for (topic_index, partition, part) in checked {
        let slot = match part {
            Err(error) => Slot::Ready(ProduceOutcome::error(error.code())),
            Ok(CheckedPart { topic, batches, .. }) => {
                let owner = shard.owner_of(&topic, partition);
                let parts = by_owner.entry(owner).or_default();
                parts.push(ProducePart {
                    topic,
                    partition,
                    batches,
                });
                Slot::Owned {
                    owner,
                    position: parts.len() - 1,
                }
            }
        };
        slots[topic_index].push((partition, slot));
    }
    let mut pending: Vec<(usize, Pending<Vec<ProduceOutcome>>)> = Vec::new();
    for (owner, parts) in by_owner {
        let call = ProduceCall {
            parts,
            acks,
            timeout_ms,
        };
        pending.push((owner, routing::start(shard, owner, call).await));
    }
    async move {
        let outcomes: BTreeMap<usize, Vec<ProduceOutcome>> =
            join_all(pending.into_iter().map(|(owner, pending)| async move {
                (owner, pending.reply().await.unwrap_or_default())
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
            .map(|((name, topic_id), topic_slots)| {
                let partitions = topic_slots
                    .into_iter()
                    .map(|(partition, slot)| {
                        let outcome = match slot {
                            Slot::Ready(outcome) => outcome,
                            Slot::Owned { owner, position } => outcomes
                                .get(&owner)
                                .and_then(|outcomes| outcomes.get(position))
                                .copied()
                                .unwrap_or(not_leader),
                        };
                        partition_response(partition, outcome, version)
                    })
                    .collect();
                let response = TopicProduceResponse::default().with_partition_responses(partitions);
                // v13 answers by topic id (the one asked for), older versions by name.
                if version >= 13 {
                    response.with_topic_id(topic_id)
                } else {
                    response.with_name(name)
                }
            })
            .collect();
        Some(ProduceResponse::default().with_responses(responses))
    }
    .boxed_local()
}

/// Produce v13 names topics by id (KIP-516). An id this broker does not know
/// is UNKNOWN_TOPIC_ID, never auto-created: Kafka's `handleProduceRequest`
/// answers that for a version above 12 whose id has no name.
fn topic_by_id(shard: &Shard, topic_id: &Uuid) -> Result<Arc<TopicMetadata>, KafkaError> {
    shard
        .read_catalog(|catalog| catalog.topic_by_id(topic_id).cloned())
        .ok_or(KafkaError::UnknownTopicId)
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
    // error_message exists from v8: why the disk refused, with the reserve.
    let response = match outcome.disk_full {
        Some(full) if version >= 8 => {
            response.with_error_message(Some(StrBytes::from_string(full.to_string())))
        }
        _ => response,
    };
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
    topic: &Result<Arc<TopicMetadata>, KafkaError>,
    partition: i32,
    records: Option<Bytes>,
) -> Result<CheckedPart, KafkaError> {
    let topic = topic.as_ref().map_err(|error| *error)?;
    if topic.is_internal() {
        // Only the group coordinator writes it (Kafka: "Cannot append to
        // internal topic").
        return Err(KafkaError::InvalidTopicException);
    }
    if !topic.has_partition(partition) {
        return Err(KafkaError::UnknownTopicOrPartition);
    }
    let records = records
        .filter(|r| !r.is_empty())
        .ok_or(KafkaError::InvalidRecord)?;
    let max_batch_bytes = usize::try_from(topic.configs.max_message_bytes).unwrap_or(usize::MAX);
    let mut batches = Vec::new();
    let mut transaction = None;
    for batch in split_batches(&records) {
        let batch = batch.map_err(batch_error)?;
        if batch.len() > max_batch_bytes {
            return Err(KafkaError::MessageTooLarge);
        }
        let header = validate_batch(&batch).map_err(batch_error)?;
        // Only the transaction coordinator writes markers; a transactional
        // batch must say whose transaction it belongs to (Kafka's LogValidator).
        if header.is_control()
            || (header.is_transactional() && header.producer_id < 0)
            || (header.producer_id >= 0 && header.base_sequence < 0)
        {
            return Err(KafkaError::InvalidRecord);
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

fn batch_error(error: BatchError) -> KafkaError {
    match error {
        BatchError::Truncated | BatchError::CrcMismatch => KafkaError::CorruptMessage,
        BatchError::UnsupportedMagic(_) => KafkaError::UnsupportedForMessageFormat,
        BatchError::InvalidHeader => KafkaError::InvalidRecord,
    }
}
