//! The error codes the Java broker's `TransactionCoordinator` and `KafkaApis` give for a
//! transactional producer's mistakes, at every version that can carry them: transaction
//! timeouts out of range, unknown transactional ids and wrong producer ids, a producer
//! fenced by a newer InitProducerId (INVALID_PRODUCER_EPOCH for the versions before
//! PRODUCER_FENCED existed, KIP-588), a running transaction aborted by a new InitProducerId
//! (CONCURRENT_TRANSACTIONS until the abort is complete), EndTxn against the transaction's
//! state, and an AddPartitionsToTxn naming an unknown partition.

use kafka_protocol::messages::ProducerId;

use crate::common::wire::connect;
use crate::common::Broker;
use crate::data::{create_topic, create_topic_with_id, fetch, produce, produce_ok, READ_COMMITTED};
use crate::flows::{
    add_offsets, add_partitions, add_partitions_batched, add_partitions_ok, begin, describe_one,
    end_txn, end_txn_ok, find_transaction_coordinator, init_producer_id, init_transactional,
    retrying, wait_for_state, BatchedTransaction, PartitionErrors,
};
use crate::records::{data_batch, Producer};
use crate::{
    CONCURRENT_TRANSACTIONS, CORES, INVALID_PRODUCER_EPOCH, INVALID_PRODUCER_ID_MAPPING,
    INVALID_REQUEST, INVALID_TRANSACTION_TIMEOUT, INVALID_TXN_STATE, NONE, OPERATION_NOT_ATTEMPTED,
    PRODUCER_FENCED, TXN_TIMEOUT_MS, UNKNOWN_TOPIC_OR_PARTITION,
};

/// The broker's `--transaction-max-timeout-ms` in these tests.
const MAX_TIMEOUT_MS: i32 = 60_000;

fn broker() -> Broker {
    Broker::start(
        CORES,
        &["--transaction-max-timeout-ms", &MAX_TIMEOUT_MS.to_string()],
    )
}

/// Every partition of an AddPartitionsToTxn answer carries `code`.
fn all(rows: &PartitionErrors, code: i16) -> bool {
    !rows.is_empty() && rows.iter().all(|row| row.2 == code)
}

#[test]
fn transaction_timeouts_outside_one_to_the_maximum_are_refused() {
    let broker = broker();
    let mut stream = connect(&broker.bootstrap());
    find_transaction_coordinator(&mut stream, "timeouts");
    for version in 0..=5 {
        for (timeout_ms, expected) in [
            (0, INVALID_TRANSACTION_TIMEOUT),
            (-1, INVALID_TRANSACTION_TIMEOUT),
            (MAX_TIMEOUT_MS + 1, INVALID_TRANSACTION_TIMEOUT),
            (i32::MAX, INVALID_TRANSACTION_TIMEOUT),
            (MAX_TIMEOUT_MS, NONE),
            (1, NONE),
        ] {
            let id = format!("timeouts-v{version}-{timeout_ms}");
            let mut answered = Producer { id: 0, epoch: 0 };
            let code = retrying(&mut stream, "InitProducerId", |stream| {
                let (code, producer) =
                    init_producer_id(stream, version, Some(&id), timeout_ms, None);
                answered = producer;
                code
            });
            assert_eq!(
                code, expected,
                "InitProducerId v{version} timeout {timeout_ms}"
            );
            if code != NONE {
                assert_eq!(answered, Producer { id: -1, epoch: -1 }, "v{version}");
                assert_eq!(
                    describe_one(&mut stream, &id).error_code,
                    crate::TRANSACTIONAL_ID_NOT_FOUND,
                    "a refused InitProducerId stores nothing"
                );
            }
        }
        // Without a transactional id the timeout is not checked (Kafka never reads it).
        let (code, _) = init_producer_id(&mut stream, version, None, 0, None);
        assert_eq!(
            code, NONE,
            "idempotent InitProducerId v{version} with timeout 0"
        );
    }
}

#[test]
fn unknown_ids_and_other_producer_ids_are_invalid_producer_id_mapping() {
    let broker = broker();
    let mut stream = connect(&broker.bootstrap());
    create_topic(&mut stream, "mapping", 1);
    find_transaction_coordinator(&mut stream, "mapped");
    let real = init_transactional(&mut stream, 4, "mapped", TXN_TIMEOUT_MS);
    let other = Producer {
        id: real.id + 100_000,
        epoch: real.epoch,
    };
    for (id, producer) in [("never-initialised", real), ("mapped", other)] {
        for version in 0..=3 {
            let rows = add_partitions(&mut stream, version, id, producer, &[("mapping", &[0])]);
            assert!(
                all(&rows, INVALID_PRODUCER_ID_MAPPING),
                "AddPartitionsToTxn v{version} as {id}/{producer:?}: {rows:?}"
            );
        }
        for verify_only in [false, true] {
            let (code, results) = add_partitions_batched(
                &mut stream,
                &[BatchedTransaction {
                    id,
                    producer,
                    verify_only,
                    topics: &[("mapping", &[0])],
                }],
            );
            assert_eq!(code, NONE);
            assert!(
                all(&results[0].1, INVALID_PRODUCER_ID_MAPPING),
                "AddPartitionsToTxn v4 verify_only={verify_only} as {id}: {results:?}"
            );
        }
        for version in 0..=4 {
            assert_eq!(
                add_offsets(&mut stream, version, id, producer, "mapping-group"),
                INVALID_PRODUCER_ID_MAPPING,
                "AddOffsetsToTxn v{version} as {id}/{producer:?}"
            );
            for commit in [true, false] {
                assert_eq!(
                    end_txn(&mut stream, version, id, producer, commit),
                    INVALID_PRODUCER_ID_MAPPING,
                    "EndTxn v{version} as {id}/{producer:?}"
                );
            }
        }
    }
    assert_eq!(describe_one(&mut stream, "mapped").state, "Empty");
}

/// `TransactionCoordinator`: every call with an empty transactional id is INVALID_REQUEST,
/// and so is describing one.
#[test]
fn an_empty_transactional_id_is_an_invalid_request() {
    let broker = broker();
    let mut stream = connect(&broker.bootstrap());
    create_topic(&mut stream, "nameless", 1);
    find_transaction_coordinator(&mut stream, "named");
    let producer = init_transactional(&mut stream, 4, "named", TXN_TIMEOUT_MS);
    for version in 0..=3 {
        let rows = add_partitions(&mut stream, version, "", producer, &[("nameless", &[0])]);
        assert!(
            all(&rows, INVALID_REQUEST),
            "AddPartitionsToTxn v{version}: {rows:?}"
        );
    }
    for verify_only in [false, true] {
        let (code, results) = add_partitions_batched(
            &mut stream,
            &[BatchedTransaction {
                id: "",
                producer,
                verify_only,
                topics: &[("nameless", &[0])],
            }],
        );
        assert_eq!(code, NONE);
        assert!(
            all(&results[0].1, INVALID_REQUEST),
            "AddPartitionsToTxn v4 verify_only={verify_only}: {results:?}"
        );
    }
    for version in 0..=4 {
        assert_eq!(
            add_offsets(&mut stream, version, "", producer, "nameless-group"),
            INVALID_REQUEST,
            "AddOffsetsToTxn v{version}"
        );
        assert_eq!(
            end_txn(&mut stream, version, "", producer, true),
            INVALID_REQUEST,
            "EndTxn v{version}"
        );
    }
    assert_eq!(describe_one(&mut stream, "").error_code, INVALID_REQUEST);
}

#[test]
fn a_second_init_producer_id_fences_the_first_producer() {
    let broker = broker();
    let mut stream = connect(&broker.bootstrap());
    create_topic(&mut stream, "fencing", 1);
    find_transaction_coordinator(&mut stream, "fenced");
    let old = init_transactional(&mut stream, 4, "fenced", TXN_TIMEOUT_MS);
    let new = init_transactional(&mut stream, 4, "fenced", TXN_TIMEOUT_MS);
    assert_eq!(
        new,
        Producer {
            id: old.id,
            epoch: old.epoch + 1
        }
    );
    // PRODUCER_FENCED exists from AddPartitionsToTxn/AddOffsetsToTxn/EndTxn v2 and
    // InitProducerId v4 (KIP-588); older versions are told INVALID_PRODUCER_EPOCH.
    let fenced_from = |version: i16, first: i16| {
        if version >= first {
            PRODUCER_FENCED
        } else {
            INVALID_PRODUCER_EPOCH
        }
    };
    for version in 0..=3 {
        let rows = add_partitions(&mut stream, version, "fenced", old, &[("fencing", &[0])]);
        assert!(
            all(&rows, fenced_from(version, 2)),
            "AddPartitionsToTxn v{version} from the fenced producer: {rows:?}"
        );
    }
    let (_, results) = add_partitions_batched(
        &mut stream,
        &[BatchedTransaction {
            id: "fenced",
            producer: old,
            verify_only: false,
            topics: &[("fencing", &[0])],
        }],
    );
    assert!(all(&results[0].1, PRODUCER_FENCED), "v4: {results:?}");
    for version in 0..=4 {
        assert_eq!(
            add_offsets(&mut stream, version, "fenced", old, "fenced-group"),
            fenced_from(version, 2),
            "AddOffsetsToTxn v{version} from the fenced producer"
        );
        assert_eq!(
            end_txn(&mut stream, version, "fenced", old, false),
            fenced_from(version, 2),
            "EndTxn v{version} from the fenced producer"
        );
    }
    // KIP-360: a fenced producer naming its old epoch is not let back in.
    for version in 3..=5 {
        let (code, producer) = init_producer_id(
            &mut stream,
            version,
            Some("fenced"),
            TXN_TIMEOUT_MS,
            Some(old),
        );
        assert_eq!(
            (code, producer),
            (fenced_from(version, 4), Producer { id: -1, epoch: -1 }),
            "InitProducerId v{version} expecting the fenced epoch"
        );
    }
    // Nothing of that touched the new producer's state.
    let described = describe_one(&mut stream, "fenced");
    assert_eq!(
        (described.state.as_str(), described.producer),
        ("Empty", new)
    );
    add_partitions_ok(&mut stream, 3, "fenced", new, &[("fencing", &[0])]);
    end_txn_ok(&mut stream, 3, "fenced", new, false);
}

#[test]
fn init_producer_id_during_a_transaction_aborts_it_under_a_bumped_epoch() {
    let broker = broker();
    let mut stream = connect(&broker.bootstrap());
    let topic = create_topic_with_id(&mut stream, "interrupted", 1);
    let old = begin(
        &mut stream,
        "interrupted",
        TXN_TIMEOUT_MS,
        &[("interrupted", &[0])],
    );
    let batch = data_batch(old, 0, true, &[b"doomed"]);
    produce_ok(&mut stream, Some("interrupted"), "interrupted", 0, batch);

    // Kafka fences the running transaction's producer (epoch + 1), aborts it, and tells the
    // new producer to retry: CONCURRENT_TRANSACTIONS, until the abort is complete.
    let (code, _) = init_producer_id(&mut stream, 4, Some("interrupted"), TXN_TIMEOUT_MS, None);
    assert_eq!(
        code, CONCURRENT_TRANSACTIONS,
        "InitProducerId during a transaction"
    );
    let new = init_transactional(&mut stream, 4, "interrupted", TXN_TIMEOUT_MS);
    assert_eq!(
        new,
        Producer {
            id: old.id,
            epoch: old.epoch + 2
        },
        "one epoch for the fencing abort, one for the new producer"
    );
    let described = describe_one(&mut stream, "interrupted");
    assert_eq!(
        (described.state.as_str(), described.producer),
        ("Empty", new)
    );

    // The old producer is fenced everywhere: at the coordinator, and on the partition that
    // got the abort marker under the bumped epoch.
    assert_eq!(
        end_txn(&mut stream, 4, "interrupted", old, true),
        PRODUCER_FENCED
    );
    let late = data_batch(old, 1, true, &[b"late"]);
    let (code, _) = produce(&mut stream, Some("interrupted"), "interrupted", 0, late);
    assert_eq!(
        code, INVALID_PRODUCER_EPOCH,
        "Produce from the fenced epoch"
    );
    let read = fetch(&mut stream, 11, &topic, 0, 0, READ_COMMITTED);
    assert_eq!(
        (read.high_watermark, read.last_stable_offset),
        (2, 2),
        "data and abort marker"
    );
    let aborted: Vec<(ProducerId, i64)> = read
        .aborted_transactions
        .unwrap_or_default()
        .iter()
        .map(|a| (a.producer_id, a.first_offset))
        .collect();
    assert_eq!(aborted, vec![(ProducerId(old.id), 0)]);
}

#[test]
fn end_txn_answers_follow_the_transaction_state() {
    let broker = broker();
    let mut stream = connect(&broker.bootstrap());
    create_topic(&mut stream, "ending", 1);
    find_transaction_coordinator(&mut stream, "ending");
    let producer = init_transactional(&mut stream, 4, "ending", TXN_TIMEOUT_MS);
    // Nothing to end: Empty.
    for version in 0..=4 {
        for commit in [true, false] {
            assert_eq!(
                end_txn(&mut stream, version, "ending", producer, commit),
                INVALID_TXN_STATE,
                "EndTxn v{version} commit={commit} with no transaction"
            );
        }
    }
    // An abort, then its retries (NONE) and a commit of it (INVALID_TXN_STATE); then the
    // same for a commit.
    for commit in [false, true] {
        add_partitions_ok(&mut stream, 3, "ending", producer, &[("ending", &[0])]);
        end_txn_ok(&mut stream, 4, "ending", producer, commit);
        let state = if commit {
            "CompleteCommit"
        } else {
            "CompleteAbort"
        };
        wait_for_state(&mut stream, "ending", state);
        for version in 0..=4 {
            assert_eq!(
                end_txn(&mut stream, version, "ending", producer, commit),
                NONE,
                "EndTxn v{version} retried after {state}"
            );
            assert_eq!(
                end_txn(&mut stream, version, "ending", producer, !commit),
                INVALID_TXN_STATE,
                "EndTxn v{version} commit={} after {state}",
                !commit
            );
        }
    }
}

#[test]
fn add_partitions_naming_an_unknown_partition_adds_none_of_them() {
    let broker = broker();
    let mut stream = connect(&broker.bootstrap());
    create_topic(&mut stream, "known", 2);
    find_transaction_coordinator(&mut stream, "partial");
    let producer = init_transactional(&mut stream, 4, "partial", TXN_TIMEOUT_MS);
    let topics: &[(&str, &[i32])] = &[("known", &[0, 1, 9]), ("missing", &[0])];
    let expected = vec![
        ("known".to_string(), 0, OPERATION_NOT_ATTEMPTED),
        ("known".to_string(), 1, OPERATION_NOT_ATTEMPTED),
        ("known".to_string(), 9, UNKNOWN_TOPIC_OR_PARTITION),
        ("missing".to_string(), 0, UNKNOWN_TOPIC_OR_PARTITION),
    ];
    // Kafka answers from a map: the order of the partitions is not part of the contract.
    for version in 0..=3 {
        let mut rows = add_partitions(&mut stream, version, "partial", producer, topics);
        rows.sort();
        assert_eq!(rows, expected, "AddPartitionsToTxn v{version}");
    }
    for verify_only in [false, true] {
        let (code, mut results) = add_partitions_batched(
            &mut stream,
            &[BatchedTransaction {
                id: "partial",
                producer,
                verify_only,
                topics,
            }],
        );
        results.iter_mut().for_each(|result| result.1.sort());
        assert_eq!(
            (code, results),
            (NONE, vec![("partial".to_string(), expected.clone())]),
            "AddPartitionsToTxn v4 verify_only={verify_only}"
        );
    }
    let described = describe_one(&mut stream, "partial");
    assert_eq!(
        (described.state.as_str(), described.partitions),
        ("Empty", vec![]),
        "nothing was added"
    );
}
