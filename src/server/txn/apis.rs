//! The transaction API handlers on the connection's shard: they validate
//! what can be checked locally, send each transactional id's call to its
//! coordinator (`route`), and shape the answer for the request's version.
//! WriteTxnMarkers and ListTransactions fan out to partition owners and to
//! every shard instead.

use std::collections::BTreeMap;
use std::rc::Rc;

use futures::future::join_all;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::describe_transactions_response::{
    TopicData, TransactionState as DescribedState,
};
use kafka_protocol::messages::list_transactions_response::TransactionState as ListedState;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::markers::{write_markers_here, Marker};
use super::state_topic::TRANSACTION_STATE_TOPIC;
use super::{
    route, DescribedTransaction, ListFilter, ListTransactionsCall, ListedTransaction, TxnAnswer,
    TxnCall,
};
use crate::protocol::batch_builder::ControlType;
use crate::protocol::errors::{KafkaError, NONE};
use crate::server::producer_ids::failed_init;
use crate::server::routing;
use crate::server::shard::Shard;

fn str_bytes(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

/// PRODUCER_FENCED (KIP-588) is new in these versions; older clients know
/// the same condition as INVALID_PRODUCER_EPOCH, as Kafka answers them.
fn fenced_for_version(code: i16, version: i16, first_version_with_fenced: i16) -> i16 {
    if code == KafkaError::ProducerFenced.code() && version < first_version_with_fenced {
        KafkaError::InvalidProducerEpoch.code()
    } else {
        code
    }
}

/// InitProducerId with a transactional id, on its coordinator.
pub async fn init_transactional_producer(
    shard: &Rc<Shard>,
    request: InitProducerIdRequest,
    version: i16,
) -> InitProducerIdResponse {
    let transactional_id = request
        .transactional_id
        .as_ref()
        .map(|id| id.0.as_str().to_string())
        .unwrap_or_default();
    let expected = match expected_producer(&request, version) {
        Ok(expected) => expected,
        Err(code) => return failed_init(code),
    };
    let call = TxnCall::InitProducerId {
        transactional_id,
        timeout_ms: request.transaction_timeout_ms,
        expected,
    };
    match route(shard, call).await {
        TxnAnswer::Initialized {
            error_code,
            producer_id,
            producer_epoch,
        } if error_code == NONE => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(producer_epoch),
        other => failed_init(fenced_for_version(other.code(), version, 4)),
    }
}

/// KIP-360 (InitProducerId v3+): the producer id and epoch a producer had,
/// `None` for a new producer (-1, -1); half a pair is INVALID_REQUEST, as
/// Kafka answers.
pub fn expected_producer(
    request: &InitProducerIdRequest,
    version: i16,
) -> Result<Option<(i64, i16)>, i16> {
    if version < 3 {
        return Ok(None);
    }
    match (request.producer_id.0, request.producer_epoch) {
        (-1, -1) => Ok(None),
        (id, epoch) if id < 0 || epoch < 0 => Err(KafkaError::InvalidRequest.code()),
        (id, epoch) => Ok(Some((id, epoch))),
    }
}

/// Error code per (topic, partition).
type PartitionErrors = BTreeMap<(String, i32), i16>;

/// One transaction's partitions, checked against the metadata image:
/// unknown ones get UNKNOWN_TOPIC_OR_PARTITION, internal topics (which
/// clients may not write) TOPIC_AUTHORIZATION_FAILED before v4 (brokers
/// verify them from v4), and then nothing is added (the others
/// OPERATION_NOT_ATTEMPTED), as Kafka answers.
fn check_partitions(
    shard: &Shard,
    topics: &[AddPartitionsToTxnTopic],
    version: i16,
) -> Result<Vec<(String, i32)>, PartitionErrors> {
    let catalog = shard.catalog();
    let mut partitions = Vec::new();
    let mut errors = BTreeMap::new();
    for topic in topics {
        let name = topic.name.0.as_str();
        let known = catalog.topic(name);
        for &partition in &topic.partitions {
            let refused = match known {
                Some(t) if t.is_internal() && version < 4 => {
                    Some(KafkaError::TopicAuthorizationFailed.code())
                }
                Some(t) if t.has_partition(partition) => None,
                _ => Some(KafkaError::UnknownTopicOrPartition.code()),
            };
            if let Some(code) = refused {
                errors.insert((name.to_string(), partition), code);
            }
            partitions.push((name.to_string(), partition));
        }
    }
    if errors.is_empty() {
        return Ok(partitions);
    }
    for partition in partitions {
        errors
            .entry(partition)
            .or_insert(KafkaError::OperationNotAttempted.code());
    }
    Err(errors)
}

/// Per-topic results with the same `code` for every partition, or the
/// per-partition `errors`.
fn topic_results(
    topics: &[AddPartitionsToTxnTopic],
    code_of: impl Fn(&str, i32) -> i16,
) -> Vec<AddPartitionsToTxnTopicResult> {
    topics
        .iter()
        .map(|topic| {
            AddPartitionsToTxnTopicResult::default()
                .with_name(topic.name.clone())
                .with_results_by_partition(
                    topic
                        .partitions
                        .iter()
                        .map(|&partition| {
                            AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(partition)
                                .with_partition_error_code(code_of(
                                    topic.name.0.as_str(),
                                    partition,
                                ))
                        })
                        .collect(),
                )
        })
        .collect()
}

async fn add_one_transaction(
    shard: &Rc<Shard>,
    transactional_id: String,
    producer_id: i64,
    producer_epoch: i16,
    topics: &[AddPartitionsToTxnTopic],
    verify_only: bool,
    version: i16,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let partitions = match check_partitions(shard, topics, version) {
        Ok(partitions) => partitions,
        Err(errors) => {
            return topic_results(topics, |name, partition| {
                errors
                    .get(&(name.to_string(), partition))
                    .copied()
                    .unwrap_or(KafkaError::OperationNotAttempted.code())
            })
        }
    };
    if verify_only {
        // Each partition on its own: NONE when it is in the transaction.
        let call = TxnCall::Verify {
            transactional_id,
            producer_id,
            producer_epoch,
            partitions,
        };
        return match route(shard, call).await {
            TxnAnswer::Missing(missing) => topic_results(topics, |name, partition| {
                if missing.iter().any(|(t, p)| t == name && *p == partition) {
                    KafkaError::InvalidTxnState.code()
                } else {
                    NONE
                }
            }),
            other => {
                let code = other.code();
                topic_results(topics, |_, _| code)
            }
        };
    }
    let call = TxnCall::AddPartitions {
        transactional_id,
        producer_id,
        producer_epoch,
        partitions,
    };
    let code = fenced_for_version(route(shard, call).await.code(), version, 2);
    topic_results(topics, |_, _| code)
}

pub async fn add_partitions_to_txn(
    shard: &Rc<Shard>,
    request: AddPartitionsToTxnRequest,
    version: i16,
) -> AddPartitionsToTxnResponse {
    if version < 4 {
        let results = add_one_transaction(
            shard,
            request.v3_and_below_transactional_id.0.as_str().to_string(),
            request.v3_and_below_producer_id.0,
            request.v3_and_below_producer_epoch,
            &request.v3_and_below_topics,
            false,
            version,
        )
        .await;
        return AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results);
    }
    // v4: a batch of transactions, as brokers send it to verify partitions.
    let results = join_all(request.transactions.iter().map(|txn| async move {
        let results = add_one_transaction(
            shard,
            txn.transactional_id.0.as_str().to_string(),
            txn.producer_id.0,
            txn.producer_epoch,
            &txn.topics,
            txn.verify_only,
            version,
        )
        .await;
        AddPartitionsToTxnResult::default()
            .with_transactional_id(txn.transactional_id.clone())
            .with_topic_results(results)
    }))
    .await;
    AddPartitionsToTxnResponse::default().with_results_by_transaction(results)
}

pub async fn add_offsets_to_txn(
    shard: &Rc<Shard>,
    request: AddOffsetsToTxnRequest,
    version: i16,
) -> AddOffsetsToTxnResponse {
    let call = TxnCall::AddOffsets {
        transactional_id: request.transactional_id.0.as_str().to_string(),
        producer_id: request.producer_id.0,
        producer_epoch: request.producer_epoch,
        group_id: request.group_id.0.as_str().to_string(),
    };
    // Kafka does not check the group id here (TxnOffsetCommit does).
    let code = fenced_for_version(route(shard, call).await.code(), version, 2);
    AddOffsetsToTxnResponse::default().with_error_code(code)
}

pub async fn end_txn(shard: &Rc<Shard>, request: EndTxnRequest, version: i16) -> EndTxnResponse {
    let call = TxnCall::EndTxn {
        transactional_id: request.transactional_id.0.as_str().to_string(),
        producer_id: request.producer_id.0,
        producer_epoch: request.producer_epoch,
        commit: request.committed,
    };
    let code = fenced_for_version(route(shard, call).await.code(), version, 2);
    EndTxnResponse::default().with_error_code(code)
}

/// WriteTxnMarkers (sent by a coordinator to partition leaders): every
/// marker to every named partition, answered per partition.
pub async fn write_txn_markers(
    shard: &Rc<Shard>,
    request: WriteTxnMarkersRequest,
) -> WriteTxnMarkersResponse {
    let results = join_all(request.markers.iter().map(|marker| async move {
        let partitions: Vec<(String, i32)> = marker
            .topics
            .iter()
            .flat_map(|topic| {
                topic
                    .partition_indexes
                    .iter()
                    .map(|&p| (topic.name.0.as_str().to_string(), p))
            })
            .collect();
        let spec = Marker {
            producer_id: marker.producer_id.0,
            producer_epoch: marker.producer_epoch,
            coordinator_epoch: marker.coordinator_epoch,
            control: if marker.transaction_result {
                ControlType::Commit
            } else {
                ControlType::Abort
            },
        };
        let codes = write_markers_here(shard, spec, &partitions).await;
        let mut codes = codes.into_iter();
        let topics = marker
            .topics
            .iter()
            .map(|topic| {
                WritableTxnMarkerTopicResult::default()
                    .with_name(topic.name.clone())
                    .with_partitions(
                        topic
                            .partition_indexes
                            .iter()
                            .map(|&p| {
                                WritableTxnMarkerPartitionResult::default()
                                    .with_partition_index(p)
                                    .with_error_code(
                                        codes
                                            .next()
                                            .unwrap_or(KafkaError::UnknownServerError.code()),
                                    )
                            })
                            .collect(),
                    )
            })
            .collect();
        WritableTxnMarkerResult::default()
            .with_producer_id(marker.producer_id)
            .with_topics(topics)
    }))
    .await;
    WriteTxnMarkersResponse::default().with_markers(results)
}

pub async fn describe_transactions(
    shard: &Rc<Shard>,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let states = join_all(request.transactional_ids.iter().map(|id| async move {
        let transactional_id = id.0.as_str().to_string();
        let described = if shard.catalog().topic(TRANSACTION_STATE_TOPIC).is_none() {
            // No transaction was ever coordinated: do not create the topic to say so.
            DescribedTransaction {
                error_code: KafkaError::TransactionalIdNotFound.code(),
                ..DescribedTransaction::default()
            }
        } else {
            match route(shard, TxnCall::Describe { transactional_id }).await {
                TxnAnswer::Described(described) => described,
                other => DescribedTransaction {
                    error_code: other.code(),
                    ..DescribedTransaction::default()
                },
            }
        };
        described_state(id.clone(), described)
    }))
    .await;
    DescribeTransactionsResponse::default().with_transaction_states(states)
}

fn described_state(id: TransactionalId, described: DescribedTransaction) -> DescribedState {
    let state = DescribedState::default()
        .with_transactional_id(id)
        .with_error_code(described.error_code);
    if described.error_code != NONE {
        return state
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
    }
    let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in described.partitions {
        topics.entry(topic).or_default().push(partition);
    }
    state
        .with_transaction_state(str_bytes(&described.state))
        .with_transaction_timeout_ms(described.timeout_ms)
        .with_transaction_start_time_ms(described.start_timestamp_ms)
        .with_producer_id(ProducerId(described.producer_id))
        .with_producer_epoch(described.producer_epoch)
        .with_topics(
            topics
                .into_iter()
                .map(|(topic, partitions)| {
                    TopicData::default()
                        .with_topic(TopicName(str_bytes(&topic)))
                        .with_partitions(partitions)
                })
                .collect(),
        )
}

pub async fn list_transactions(
    shard: &Rc<Shard>,
    request: ListTransactionsRequest,
    version: i16,
) -> ListTransactionsResponse {
    let duration_ms = if version >= 1 {
        request.duration_filter
    } else {
        -1
    };
    let (filter, unknown) = ListFilter::new(
        request.state_filters.iter().map(|s| s.as_str()),
        request.producer_id_filters.iter().map(|p| p.0),
        duration_ms,
    );
    // v2: the transactional id pattern (KIP-1152). Kafka compiles it before
    // listing anything, so a bad pattern answers only the error.
    let pattern = if version >= 2 {
        request
            .transactional_id_pattern
            .as_ref()
            .map(|p| p.as_str())
    } else {
        None
    };
    let filter = match filter.with_transactional_id_pattern(pattern) {
        Ok(filter) => filter,
        Err(error) => return ListTransactionsResponse::default().with_error_code(error.code()),
    };
    let response = ListTransactionsResponse::default()
        .with_unknown_state_filters(unknown.iter().map(|s| str_bytes(s)).collect());
    let mut listed: Vec<ListedTransaction> = Vec::new();
    for reply in routing::call_every_shard(shard, ListTransactionsCall(filter)).await {
        match reply {
            Ok(more) => listed.extend(more),
            Err(_) => return response.with_error_code(KafkaError::CoordinatorNotAvailable.code()),
        }
    }
    listed.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
    response.with_transaction_states(
        listed
            .into_iter()
            .map(|txn| {
                ListedState::default()
                    .with_transactional_id(TransactionalId(str_bytes(&txn.transactional_id)))
                    .with_producer_id(ProducerId(txn.producer_id))
                    .with_transaction_state(str_bytes(txn.state.name()))
            })
            .collect(),
    )
}
