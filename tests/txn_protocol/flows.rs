//! The transaction coordinator's exchanges the tests repeat: ApiVersions, FindCoordinator,
//! InitProducerId, AddPartitionsToTxn (client and batched forms), AddOffsetsToTxn, EndTxn,
//! DescribeTransactions and ListTransactions, each as one attempt or retried the way
//! clients retry. Each builder sets only the fields its version has.

use std::net::TcpStream;
use std::time::Duration;

use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use crate::common::poll_until;
use crate::records::Producer;
use crate::wire::call;
use crate::{
    CONCURRENT_TRANSACTIONS, COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NONE,
    NOT_COORDINATOR,
};

/// How long a retried coordinator call or a state poll may take.
pub(crate) const RETRY_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

pub(crate) fn transactional_id(value: &str) -> TransactionalId {
    TransactionalId(text(value))
}

pub(crate) fn topic_name(value: &str) -> TopicName {
    TopicName(text(value))
}

/// `(api_key, min, max)` as ApiVersions v3 advertises them.
pub(crate) fn advertised(stream: &mut TcpStream) -> Vec<(i16, i16, i16)> {
    let response = call(stream, 3, &ApiVersionsRequest::default());
    assert_eq!(response.error_code, NONE, "ApiVersions");
    response
        .api_keys
        .iter()
        .map(|api| (api.api_key, api.min_version, api.max_version))
        .collect()
}

/// Kafka's partition of a key (`Utils.abs(key.hashCode) % partitions`): which
/// `__consumer_offsets` partition a group id maps to, or `__transaction_state` partition a
/// transactional id maps to.
pub(crate) fn java_partition(key: &str, partitions: i32) -> i32 {
    let hash = key.encode_utf16().fold(0i32, |hash, unit| {
        hash.wrapping_mul(31).wrapping_add(i32::from(unit))
    });
    let positive = if hash == i32::MIN { 0 } else { hash.abs() };
    positive % partitions
}

/// FindCoordinator v3 with key type 1 (transaction); also creates `__transaction_state`.
pub(crate) fn find_transaction_coordinator(stream: &mut TcpStream, id: &str) {
    let response = call(
        stream,
        3,
        &FindCoordinatorRequest::default()
            .with_key(text(id))
            .with_key_type(1),
    );
    assert_eq!(response.error_code, NONE, "FindCoordinator for {id}");
}

/// Repeats a coordinator call while it answers a code a client retries on (coordinator
/// loading or moving, the previous transaction still completing); the last code.
pub(crate) fn retrying(
    stream: &mut TcpStream,
    what: &str,
    mut attempt: impl FnMut(&mut TcpStream) -> i16,
) -> i16 {
    poll_until(RETRY_TIMEOUT, what, || {
        let code = attempt(stream);
        let retriable = [
            COORDINATOR_LOAD_IN_PROGRESS,
            COORDINATOR_NOT_AVAILABLE,
            NOT_COORDINATOR,
            CONCURRENT_TRANSACTIONS,
        ];
        (!retriable.contains(&code)).then_some(code)
    })
}

/// One InitProducerId at `version`: `(error, producer)`. `expected` (KIP-360) is sent
/// from v3 only.
pub(crate) fn init_producer_id(
    stream: &mut TcpStream,
    version: i16,
    id: Option<&str>,
    timeout_ms: i32,
    expected: Option<Producer>,
) -> (i16, Producer) {
    let mut request = InitProducerIdRequest::default()
        .with_transactional_id(id.map(transactional_id))
        .with_transaction_timeout_ms(timeout_ms);
    if let Some(expected) = expected {
        assert!(version >= 3, "test bug: the expected producer is v3+");
        request = request
            .with_producer_id(ProducerId(expected.id))
            .with_producer_epoch(expected.epoch);
    }
    let response = call(stream, version, &request);
    let producer = Producer {
        id: response.producer_id.0,
        epoch: response.producer_epoch,
    };
    (response.error_code, producer)
}

/// InitProducerId for a transactional id, retried like a client; must succeed.
pub(crate) fn init_transactional(
    stream: &mut TcpStream,
    version: i16,
    id: &str,
    timeout_ms: i32,
) -> Producer {
    let mut producer = Producer { id: -1, epoch: -1 };
    let code = retrying(stream, "InitProducerId", |stream| {
        let (code, answered) = init_producer_id(stream, version, Some(id), timeout_ms, None);
        producer = answered;
        code
    });
    assert_eq!(code, NONE, "InitProducerId v{version} for {id}");
    producer
}

/// Partitions of topics, as requests list them.
pub(crate) type Partitions<'a> = &'a [(&'a str, &'a [i32])];

fn txn_topics(topics: Partitions<'_>) -> Vec<AddPartitionsToTxnTopic> {
    topics
        .iter()
        .map(|(name, partitions)| {
            AddPartitionsToTxnTopic::default()
                .with_name(topic_name(name))
                .with_partitions(partitions.to_vec())
        })
        .collect()
}

/// `(topic, partition, error)` in answer order.
pub(crate) type PartitionErrors = Vec<(String, i32, i16)>;

fn partition_errors(
    results: &[add_partitions_to_txn_response::AddPartitionsToTxnTopicResult],
) -> PartitionErrors {
    results
        .iter()
        .flat_map(|topic| {
            topic.results_by_partition.iter().map(|p| {
                (
                    topic.name.to_string(),
                    p.partition_index,
                    p.partition_error_code,
                )
            })
        })
        .collect()
}

/// AddPartitionsToTxn in the client form (v0-3), one attempt.
pub(crate) fn add_partitions(
    stream: &mut TcpStream,
    version: i16,
    id: &str,
    producer: Producer,
    topics: Partitions<'_>,
) -> PartitionErrors {
    assert!(version <= 3, "test bug: v4+ is the batched form");
    let request = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(transactional_id(id))
        .with_v3_and_below_producer_id(ProducerId(producer.id))
        .with_v3_and_below_producer_epoch(producer.epoch)
        .with_v3_and_below_topics(txn_topics(topics));
    let response = call(stream, version, &request);
    assert!(
        response.results_by_transaction.is_empty(),
        "v{version} answers in the v3-and-below form"
    );
    partition_errors(&response.results_by_topic_v3_and_below)
}

/// AddPartitionsToTxn v0-3, retried like a client; every partition must be added.
pub(crate) fn add_partitions_ok(
    stream: &mut TcpStream,
    version: i16,
    id: &str,
    producer: Producer,
    topics: Partitions<'_>,
) {
    let mut answered = Vec::new();
    retrying(stream, "AddPartitionsToTxn", |stream| {
        answered = add_partitions(stream, version, id, producer, topics);
        answered
            .iter()
            .map(|row| row.2)
            .find(|&code| code != NONE)
            .unwrap_or(NONE)
    });
    assert!(
        answered.iter().all(|row| row.2 == NONE),
        "AddPartitionsToTxn v{version} for {id}: {answered:?}"
    );
}

/// One transaction of a batched (v4) AddPartitionsToTxn.
pub(crate) struct BatchedTransaction<'a> {
    pub(crate) id: &'a str,
    pub(crate) producer: Producer,
    pub(crate) verify_only: bool,
    pub(crate) topics: Partitions<'a>,
}

/// AddPartitionsToTxn v4 (the batched form brokers send): `(top-level error, per
/// transaction id: its partition errors)`.
pub(crate) fn add_partitions_batched(
    stream: &mut TcpStream,
    transactions: &[BatchedTransaction<'_>],
) -> (i16, Vec<(String, PartitionErrors)>) {
    let request = AddPartitionsToTxnRequest::default().with_transactions(
        transactions
            .iter()
            .map(|txn| {
                AddPartitionsToTxnTransaction::default()
                    .with_transactional_id(transactional_id(txn.id))
                    .with_producer_id(ProducerId(txn.producer.id))
                    .with_producer_epoch(txn.producer.epoch)
                    .with_verify_only(txn.verify_only)
                    .with_topics(txn_topics(txn.topics))
            })
            .collect(),
    );
    let response = call(stream, 4, &request);
    assert!(
        response.results_by_topic_v3_and_below.is_empty(),
        "v4 answers per transaction"
    );
    let mut results: Vec<(String, PartitionErrors)> = response
        .results_by_transaction
        .iter()
        .map(|result| {
            (
                result.transactional_id.to_string(),
                partition_errors(&result.topic_results),
            )
        })
        .collect();
    results.sort();
    (response.error_code, results)
}

/// One AddOffsetsToTxn at `version`.
pub(crate) fn add_offsets(
    stream: &mut TcpStream,
    version: i16,
    id: &str,
    producer: Producer,
    group: &str,
) -> i16 {
    let request = AddOffsetsToTxnRequest::default()
        .with_transactional_id(transactional_id(id))
        .with_producer_id(ProducerId(producer.id))
        .with_producer_epoch(producer.epoch)
        .with_group_id(GroupId(text(group)));
    call(stream, version, &request).error_code
}

/// One EndTxn at `version`.
pub(crate) fn end_txn(
    stream: &mut TcpStream,
    version: i16,
    id: &str,
    producer: Producer,
    commit: bool,
) -> i16 {
    let request = EndTxnRequest::default()
        .with_transactional_id(transactional_id(id))
        .with_producer_id(ProducerId(producer.id))
        .with_producer_epoch(producer.epoch)
        .with_committed(commit);
    call(stream, version, &request).error_code
}

/// EndTxn retried like a client; must succeed.
pub(crate) fn end_txn_ok(
    stream: &mut TcpStream,
    version: i16,
    id: &str,
    producer: Producer,
    commit: bool,
) {
    let code = retrying(stream, "EndTxn", |stream| {
        end_txn(stream, version, id, producer, commit)
    });
    assert_eq!(code, NONE, "EndTxn v{version} commit={commit} for {id}");
}

/// A transactional id as DescribeTransactions v0 reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Described {
    pub(crate) error_code: i16,
    pub(crate) state: String,
    pub(crate) producer: Producer,
    pub(crate) timeout_ms: i32,
    pub(crate) start_time_ms: i64,
    /// Sorted `(topic, partition)`.
    pub(crate) partitions: Vec<(String, i32)>,
}

/// DescribeTransactions v0 for `ids`, in request order.
pub(crate) fn describe(stream: &mut TcpStream, ids: &[&str]) -> Vec<Described> {
    let request = DescribeTransactionsRequest::default()
        .with_transactional_ids(ids.iter().map(|id| transactional_id(id)).collect());
    let response = call(stream, 0, &request);
    let answered: Vec<&str> = response
        .transaction_states
        .iter()
        .map(|state| state.transactional_id.0.as_str())
        .collect();
    assert_eq!(
        answered, ids,
        "DescribeTransactions answers in request order"
    );
    response
        .transaction_states
        .iter()
        .map(|state| {
            let mut partitions: Vec<(String, i32)> = state
                .topics
                .iter()
                .flat_map(|topic| {
                    topic
                        .partitions
                        .iter()
                        .map(|&p| (topic.topic.to_string(), p))
                })
                .collect();
            partitions.sort();
            Described {
                error_code: state.error_code,
                state: state.transaction_state.to_string(),
                producer: Producer {
                    id: state.producer_id.0,
                    epoch: state.producer_epoch,
                },
                timeout_ms: state.transaction_timeout_ms,
                start_time_ms: state.transaction_start_time_ms,
                partitions,
            }
        })
        .collect()
}

pub(crate) fn describe_one(stream: &mut TcpStream, id: &str) -> Described {
    describe(stream, &[id]).remove(0)
}

/// Polls DescribeTransactions until `id` is in `state` (bounded).
pub(crate) fn wait_for_state(stream: &mut TcpStream, id: &str, state: &str) -> Described {
    let what = format!("{id} reaching {state}");
    poll_until(RETRY_TIMEOUT, &what, || {
        let described = describe_one(stream, id);
        (described.error_code == NONE && described.state == state).then_some(described)
    })
}

/// A ListTransactions answer: `(error, unknown state filters, sorted (id, producer id,
/// state))`.
pub(crate) type Listing = (i16, Vec<String>, Vec<(String, i64, String)>);

/// ListTransactions at `version`; the duration filter is sent from v1 only.
pub(crate) fn list(
    stream: &mut TcpStream,
    version: i16,
    states: &[&str],
    producer_ids: &[i64],
    duration_ms: Option<i64>,
) -> Listing {
    let mut request = ListTransactionsRequest::default()
        .with_state_filters(states.iter().map(|s| text(s)).collect())
        .with_producer_id_filters(producer_ids.iter().map(|&p| ProducerId(p)).collect());
    if let Some(duration_ms) = duration_ms {
        assert!(version >= 1, "test bug: the duration filter is v1+");
        request = request.with_duration_filter(duration_ms);
    }
    let response = call(stream, version, &request);
    let mut listed: Vec<(String, i64, String)> = response
        .transaction_states
        .iter()
        .map(|state| {
            (
                state.transactional_id.to_string(),
                state.producer_id.0,
                state.transaction_state.to_string(),
            )
        })
        .collect();
    listed.sort();
    let unknown = response
        .unknown_state_filters
        .iter()
        .map(|s| s.to_string())
        .collect();
    (response.error_code, unknown, listed)
}

/// FindCoordinator, InitProducerId (v4) and AddPartitionsToTxn (v3) of `topics`: a
/// transaction running for `id`.
pub(crate) fn begin(
    stream: &mut TcpStream,
    id: &str,
    timeout_ms: i32,
    topics: Partitions<'_>,
) -> Producer {
    find_transaction_coordinator(stream, id);
    let producer = init_transactional(stream, 4, id, timeout_ms);
    add_partitions_ok(stream, 3, id, producer, topics);
    producer
}
