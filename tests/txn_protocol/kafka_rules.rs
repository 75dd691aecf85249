//! Edge cases checked against the Java broker's source (Apache Kafka trunk, 2024; each test
//! names the method it follows): request validation in `KafkaApis`, the coordinator's
//! `TransactionCoordinator`, the log's `LogValidator`, and the partition verification of
//! KIP-890 part 1 (`transaction.partition.verification.enable`, on by default since 3.6).

use std::net::TcpStream;

use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{InitProducerIdRequest, ProducerId, WriteTxnMarkersRequest};

use crate::common::wire::connect;
use crate::common::Broker;
use crate::data::{create_topic, create_topic_with_id, fetch, produce, produce_ok, READ_COMMITTED};
use crate::flows::{
    add_offsets, add_partitions, add_partitions_batched, begin, describe_one, end_txn_ok,
    find_transaction_coordinator, init_producer_id, init_transactional, retrying, topic_name,
    transactional_id, BatchedTransaction,
};
use crate::records::{data_batch, Producer};
use crate::wire::call;
use crate::{
    CORES, INVALID_RECORD, INVALID_REQUEST, INVALID_TXN_STATE, NONE, OFFSETS_TOPIC,
    OPERATION_NOT_ATTEMPTED, TOPIC_AUTHORIZATION_FAILED, TXN_TIMEOUT_MS,
};

/// TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;

/// `TransactionCoordinator.handleInitProducerId`: a null transactional id is an
/// idempotent producer, an empty one is INVALID_REQUEST ("to make TransactionCoordinator's
/// behavior consistent with producer client").
#[test]
fn init_producer_id_with_an_empty_transactional_id_is_an_invalid_request() {
    let broker = Broker::start(CORES, &[]);
    let mut stream = connect(&broker.bootstrap());
    for version in 0..=5 {
        let (code, producer) =
            init_producer_id(&mut stream, version, Some(""), TXN_TIMEOUT_MS, None);
        assert_eq!(
            (code, producer),
            (INVALID_REQUEST, Producer { id: -1, epoch: -1 }),
            "InitProducerId v{version} with transactional id \"\""
        );
    }
}

/// `KafkaApis.handleInitProducerIdRequest`: from v3 the producer id and epoch are both
/// -1 (a new producer) or both set (KIP-360); one without the other is INVALID_REQUEST,
/// checked before the coordinator, with or without a transactional id.
#[test]
fn init_producer_id_with_half_an_expected_producer_is_an_invalid_request() {
    let broker = Broker::start(CORES, &[]);
    let mut stream = connect(&broker.bootstrap());
    find_transaction_coordinator(&mut stream, "half");
    let current = init_transactional(&mut stream, 4, "half", TXN_TIMEOUT_MS);
    for version in 3..=5 {
        for (id, producer_id, epoch) in [
            (Some("half"), current.id, -1),
            (Some("half"), -1, current.epoch),
            (None, 12_345, -1),
            (None, -1, 0),
        ] {
            let request = InitProducerIdRequest::default()
                .with_transactional_id(id.map(transactional_id))
                .with_transaction_timeout_ms(TXN_TIMEOUT_MS)
                .with_producer_id(ProducerId(producer_id))
                .with_producer_epoch(epoch);
            let response = call(&mut stream, version, &request);
            assert_eq!(
                response.error_code, INVALID_REQUEST,
                "InitProducerId v{version} for {id:?} expecting ({producer_id}, {epoch})"
            );
        }
    }
    assert_eq!(
        describe_one(&mut stream, "half").producer,
        current,
        "nothing bumped"
    );
}

/// `TransactionCoordinator.handleVerifyPartitionsInTransaction`: each partition is
/// answered on its own, NONE when it is in the transaction and an error when it is not
/// (INVALID_TXN_STATE, as Kafka 3.6-3.7 answered; later brokers answer
/// TRANSACTION_ABORTABLE, which AddPartitionsToTxn v5 introduced).
#[test]
fn verify_only_answers_each_partition_on_its_own() {
    let broker = Broker::start(CORES, &[]);
    let mut stream = connect(&broker.bootstrap());
    create_topic(&mut stream, "verified", 2);
    let producer = begin(
        &mut stream,
        "verified",
        TXN_TIMEOUT_MS,
        &[("verified", &[0])],
    );
    let (code, mut results) = add_partitions_batched(
        &mut stream,
        &[BatchedTransaction {
            id: "verified",
            producer,
            verify_only: true,
            topics: &[("verified", &[0, 1])],
        }],
    );
    results.iter_mut().for_each(|result| result.1.sort());
    assert_eq!(
        (code, results),
        (
            NONE,
            vec![(
                "verified".to_string(),
                vec![
                    ("verified".to_string(), 0, NONE),
                    ("verified".to_string(), 1, INVALID_TXN_STATE)
                ]
            )]
        )
    );
}

/// `KafkaApis.handleAddOffsetsToTxnRequest` does not validate the group id: the offsets
/// partition of "" (`abs("".hashCode) % 50` = 0) joins the transaction. Only
/// TxnOffsetCommit refuses the empty group id (INVALID_GROUP_ID).
#[test]
fn add_offsets_to_txn_with_an_empty_group_id_adds_its_offsets_partition() {
    let broker = Broker::start(CORES, &[]);
    let mut stream = connect(&broker.bootstrap());
    find_transaction_coordinator(&mut stream, "empty-group");
    let producer = init_transactional(&mut stream, 4, "empty-group", TXN_TIMEOUT_MS);
    for version in 0..=4 {
        let code = retrying(&mut stream, "AddOffsetsToTxn", |stream| {
            add_offsets(stream, version, "empty-group", producer, "")
        });
        assert_eq!(code, NONE, "AddOffsetsToTxn v{version} with group \"\"");
    }
    let described = describe_one(&mut stream, "empty-group");
    assert_eq!(
        (described.state.as_str(), described.partitions),
        ("Ongoing", vec![(OFFSETS_TOPIC.to_string(), 0)])
    );
}

/// `KafkaApis.handleAddPartitionsToTxnRequest`: before v4 (clients) internal topics are
/// never authorized (`filterNot(tp => Topic.isInternal(tp.topic))`), so they fail with
/// TOPIC_AUTHORIZATION_FAILED and the others with OPERATION_NOT_ATTEMPTED; v4 (brokers,
/// which verify `__consumer_offsets` for TxnOffsetCommit) accepts them.
#[test]
fn add_partitions_to_txn_refuses_internal_topics_to_clients_only() {
    let broker = Broker::start(CORES, &[]);
    let mut stream = connect(&broker.bootstrap());
    create_topic(&mut stream, "plain", 1);
    find_transaction_coordinator(&mut stream, "internal");
    let producer = init_transactional(&mut stream, 4, "internal", TXN_TIMEOUT_MS);
    // __consumer_offsets exists once a group was looked up.
    let code = retrying(&mut stream, "AddOffsetsToTxn", |stream| {
        add_offsets(stream, 3, "internal", producer, "g")
    });
    assert_eq!(code, NONE);
    let offsets_partition = crate::flows::java_partition("g", crate::OFFSETS_TOPIC_PARTITIONS);
    for version in 0..=3 {
        let mut rows = add_partitions(
            &mut stream,
            version,
            "internal",
            producer,
            &[(OFFSETS_TOPIC, &[offsets_partition]), ("plain", &[0])],
        );
        rows.sort();
        assert_eq!(
            rows,
            vec![
                (
                    OFFSETS_TOPIC.to_string(),
                    offsets_partition,
                    TOPIC_AUTHORIZATION_FAILED
                ),
                ("plain".to_string(), 0, OPERATION_NOT_ATTEMPTED)
            ],
            "AddPartitionsToTxn v{version} naming {OFFSETS_TOPIC}"
        );
    }
    let (code, results) = add_partitions_batched(
        &mut stream,
        &[BatchedTransaction {
            id: "internal",
            producer,
            verify_only: true,
            topics: &[(OFFSETS_TOPIC, &[offsets_partition])],
        }],
    );
    assert_eq!(
        (code, results),
        (
            NONE,
            vec![(
                "internal".to_string(),
                vec![(OFFSETS_TOPIC.to_string(), offsets_partition, NONE)]
            )]
        ),
        "AddPartitionsToTxn v4 verifying the group's offsets partition"
    );
}

/// `KafkaApis.handleProduceRequest`: a Produce carrying transactional records without a
/// transactional id is refused with TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
#[test]
fn transactional_records_need_a_transactional_id() {
    let broker = Broker::start(CORES, &[]);
    let mut stream = connect(&broker.bootstrap());
    create_topic(&mut stream, "anonymous", 1);
    let (code, producer) = init_producer_id(&mut stream, 4, None, TXN_TIMEOUT_MS, None);
    assert_eq!(code, NONE);
    let batch = data_batch(producer, 0, true, &[b"whose?"]);
    assert_eq!(
        produce(&mut stream, None, "anonymous", 0, batch).0,
        TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    );
}

/// `LogValidator.validateBatch` (client origin): a batch with a producer id must carry a
/// sequence number ("Invalid sequence number -1 in record batch with producerId").
#[test]
fn a_batch_with_a_producer_id_needs_a_sequence() {
    let broker = Broker::start(CORES, &[]);
    let mut stream = connect(&broker.bootstrap());
    create_topic(&mut stream, "unsequenced", 1);
    let (code, producer) = init_producer_id(&mut stream, 4, None, TXN_TIMEOUT_MS, None);
    assert_eq!(code, NONE);
    let batch = data_batch(producer, -1, false, &[b"no sequence"]);
    assert_eq!(
        produce(&mut stream, None, "unsequenced", 0, batch).0,
        INVALID_RECORD
    );
}

/// KIP-890 part 1 (`ReplicaManager.handleProduceAppend`, `AddPartitionsToTxnManager`):
/// before a partition takes a producer's first transactional batch, the broker asks the
/// coordinator whether the partition is in the transaction; a partition that is not gets
/// INVALID_TXN_STATE (Produce before v12), so no transaction can hang on it. Accepting it
/// leaves a transaction no marker will ever end, and read_committed readers stuck.
#[test]
fn transactional_data_for_a_partition_outside_the_transaction_is_refused() {
    let broker = Broker::start(CORES, &[]);
    let mut stream = connect(&broker.bootstrap());
    let topic = create_topic_with_id(&mut stream, "outside", 2);
    let producer = begin(&mut stream, "outside", TXN_TIMEOUT_MS, &[("outside", &[0])]);
    produce_ok(
        &mut stream,
        Some("outside"),
        "outside",
        0,
        data_batch(producer, 0, true, &[b"inside"]),
    );
    let stray = data_batch(producer, 0, true, &[b"outside"]);
    let (code, _) = produce(&mut stream, Some("outside"), "outside", 1, stray);
    end_txn_ok(&mut stream, 4, "outside", producer, true);
    let read = fetch(&mut stream, 12, &topic, 1, 0, READ_COMMITTED);
    assert_eq!(
        code, INVALID_TXN_STATE,
        "transactional Produce to a partition never added to the transaction; after the \
         commit that partition reads high watermark {} and last stable offset {}",
        read.high_watermark, read.last_stable_offset
    );
}

/// TRANSACTION_COORDINATOR_FENCED.
const TRANSACTION_COORDINATOR_FENCED: i16 = 52;

/// WriteTxnMarkers v1 with one marker for `producer` on partition 0 of `topic`, stamped
/// with `coordinator_epoch`; the partition's error code.
fn write_marker(
    stream: &mut TcpStream,
    topic: &str,
    producer: Producer,
    commit: bool,
    coordinator_epoch: i32,
) -> i16 {
    let marker = WritableTxnMarker::default()
        .with_producer_id(ProducerId(producer.id))
        .with_producer_epoch(producer.epoch)
        .with_transaction_result(commit)
        .with_coordinator_epoch(coordinator_epoch)
        .with_topics(vec![WritableTxnMarkerTopic::default()
            .with_name(topic_name(topic))
            .with_partition_indexes(vec![0])]);
    let response = call(
        stream,
        1,
        &WriteTxnMarkersRequest::default().with_markers(vec![marker]),
    );
    response
        .markers
        .iter()
        .flat_map(|marker| &marker.topics)
        .flat_map(|topic| &topic.partitions)
        .map(|partition| partition.error_code)
        .next()
        .expect("an answer for partition 0")
}

/// `ProducerAppendInfo.checkCoordinatorEpoch`: the coordinator epoch is the leader epoch of
/// the coordinator's `__transaction_state` partition, so a marker stamped with an epoch
/// older than the one of the producer's last marker on a partition comes from a replaced
/// coordinator. That partition answers TRANSACTION_COORDINATOR_FENCED and writes nothing;
/// the same epoch again (the coordinator's own retry) and newer ones are written.
#[test]
fn a_marker_from_an_older_coordinator_epoch_is_fenced() {
    let broker = Broker::start(CORES, &[]);
    let mut stream = connect(&broker.bootstrap());
    let topic = create_topic_with_id(&mut stream, "fenced-markers", 1);
    let producer = begin(
        &mut stream,
        "fenced-markers",
        TXN_TIMEOUT_MS,
        &[("fenced-markers", &[0])],
    );
    let batch = data_batch(producer, 0, true, &[b"x"]);
    produce_ok(
        &mut stream,
        Some("fenced-markers"),
        "fenced-markers",
        0,
        batch,
    );
    assert_eq!(
        write_marker(&mut stream, "fenced-markers", producer, false, 5),
        NONE,
        "the abort marker of the coordinator of epoch 5"
    );
    let written = fetch(&mut stream, 12, &topic, 0, 0, READ_COMMITTED).high_watermark;
    assert_eq!(
        write_marker(&mut stream, "fenced-markers", producer, true, 4),
        TRANSACTION_COORDINATOR_FENCED,
        "a marker of the coordinator of epoch 4, after one of epoch 5"
    );
    assert_eq!(
        fetch(&mut stream, 12, &topic, 0, 0, READ_COMMITTED).high_watermark,
        written,
        "the fenced marker is not written"
    );
    for epoch in [5, 6] {
        assert_eq!(
            write_marker(&mut stream, "fenced-markers", producer, false, epoch),
            NONE,
            "a marker of the coordinator of epoch {epoch}"
        );
    }
    assert_eq!(
        fetch(&mut stream, 12, &topic, 0, 0, READ_COMMITTED).high_watermark,
        written + 2,
        "two more markers"
    );
}
