//! Every advertised version of every transaction API in a real flow, its answer decoded at
//! that exact version (a field a version lacks would make the broker's encoder fail and the
//! connection close): InitProducerId with and without a transactional id (KIP-360's
//! expected producer from v3), AddPartitionsToTxn in the client form (v0-3) and the batched
//! form (v4, adding and verify_only), AddOffsetsToTxn, EndTxn (commit and abort, and its
//! retry), WriteTxnMarkers v1 ending transactions on partitions by hand,
//! DescribeTransactions v0 and ListTransactions v0-2.

use std::collections::BTreeSet;

use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::*;

use crate::common::wire::connect;
use crate::common::Broker;
use crate::data::{create_topic_with_id, fetch, produce_ok, READ_COMMITTED};
use crate::flows::{
    add_offsets, add_partitions, add_partitions_batched, advertised, begin, describe_one, end_txn,
    end_txn_ok, find_transaction_coordinator, init_producer_id, init_transactional, java_partition,
    list, retrying, topic_name, wait_for_state, BatchedTransaction,
};
use crate::records::{batches, data_batch, Producer};
use crate::wire::call;
use crate::{
    CORES, NONE, OFFSETS_TOPIC, OFFSETS_TOPIC_PARTITIONS, TXN_APIS, TXN_TIMEOUT_MS,
    UNKNOWN_TOPIC_OR_PARTITION,
};

#[test]
fn every_transaction_api_version_answers_a_real_flow() {
    let broker = Broker::start(CORES, &[]);
    let mut stream = connect(&broker.bootstrap());
    let ranges = advertised(&mut stream);
    for &(key, min, max) in TXN_APIS {
        let found = ranges.iter().find(|range| range.0 == key as i16);
        assert_eq!(
            found.map(|range| (range.1, range.2)),
            Some((min, max)),
            "{key:?} advertised"
        );
    }
    create_topic_with_id(&mut stream, "flow", 2);

    let mut producer_ids = BTreeSet::new();
    init_producer_id_at_every_version(&mut stream, &mut producer_ids);
    let mut transactional_ids = Vec::new();
    for version in 0..=4 {
        let id = transaction_at_version(&mut stream, version);
        transactional_ids.push(id);
    }

    // ListTransactions at every version sees every id of this broker (v2 without a
    // pattern filters nothing; its pattern is tested in tests/newest_api_versions.rs).
    for (version, duration) in [(0, None), (1, None), (1, Some(-1)), (2, None)] {
        let (code, unknown, listed) = list(&mut stream, version, &[], &[], duration);
        assert_eq!(
            (code, unknown),
            (NONE, vec![]),
            "ListTransactions v{version}"
        );
        let names: BTreeSet<&str> = listed.iter().map(|row| row.0.as_str()).collect();
        for id in &transactional_ids {
            assert!(
                names.contains(id.as_str()),
                "v{version} lists {id}: {listed:?}"
            );
        }
        for version in 0..=5 {
            let id = format!("flow-init-v{version}");
            assert!(names.contains(id.as_str()), "lists {id}");
        }
    }
}

/// InitProducerId v0-5: without a transactional id a fresh producer id at epoch 0 each
/// time; with one, the same producer id and the next epoch each time, and from v3 the
/// KIP-360 expected producer (its own current epoch bumps; the epoch it came from is a
/// retry of a lost answer and gets the same epoch again).
fn init_producer_id_at_every_version(
    stream: &mut std::net::TcpStream,
    producer_ids: &mut BTreeSet<i64>,
) {
    for version in 0..=5 {
        let (code, producer) = init_producer_id(stream, version, None, TXN_TIMEOUT_MS, None);
        assert_eq!(
            (code, producer.epoch),
            (NONE, 0),
            "idempotent InitProducerId v{version}"
        );
        assert!(producer.id >= 0, "v{version}: producer id {}", producer.id);
        assert!(producer_ids.insert(producer.id), "v{version}: id reused");
    }
    for version in 0..=5 {
        let id = format!("flow-init-v{version}");
        find_transaction_coordinator(stream, &id);
        let first = init_transactional(stream, version, &id, TXN_TIMEOUT_MS);
        assert_eq!(first.epoch, 0, "first InitProducerId v{version} for {id}");
        assert!(producer_ids.insert(first.id), "v{version}: id reused");
        let second = init_transactional(stream, version, &id, TXN_TIMEOUT_MS);
        assert_eq!(
            second,
            Producer {
                id: first.id,
                epoch: 1
            },
            "second InitProducerId v{version}"
        );
        if version >= 3 {
            let (code, third) =
                init_producer_id(stream, version, Some(&id), TXN_TIMEOUT_MS, Some(second));
            let bumped = Producer {
                id: first.id,
                epoch: 2,
            };
            assert_eq!((code, third), (NONE, bumped), "v{version} naming itself");
            let (code, retried) =
                init_producer_id(stream, version, Some(&id), TXN_TIMEOUT_MS, Some(second));
            assert_eq!(
                (code, retried),
                (NONE, bumped),
                "v{version} retrying with the epoch it came from"
            );
        }
        let described = describe_one(stream, &id);
        assert_eq!(described.state, "Empty", "{id}");
        assert_eq!(described.producer.id, first.id, "{id}");
        if version >= 3 {
            // A producer recovering with an id the coordinator no longer knows (KIP-360):
            // accepted, a new producer id at epoch 0.
            let recovering = format!("flow-recover-v{version}");
            let expected = Some(Producer {
                id: 123_456,
                epoch: 7,
            });
            let mut answered = Producer { id: -1, epoch: -1 };
            let code = retrying(stream, "InitProducerId", |stream| {
                let (code, producer) =
                    init_producer_id(stream, version, Some(&recovering), TXN_TIMEOUT_MS, expected);
                answered = producer;
                code
            });
            assert_eq!(
                (code, answered.epoch),
                (NONE, 0),
                "v{version} for {recovering}"
            );
            assert!(producer_ids.insert(answered.id), "v{version}: id reused");
        }
    }
}

/// One transaction whose AddPartitionsToTxn (v0-3 client form, or the v4 batched form),
/// AddOffsetsToTxn and EndTxn are at `version`: two partitions and a group's offsets, a
/// transactional batch on each partition, then commit (even versions) or abort (odd).
fn transaction_at_version(stream: &mut std::net::TcpStream, version: i16) -> String {
    let id = format!("flow-txn-v{version}");
    let group = format!("flow-group-v{version}");
    find_transaction_coordinator(stream, &id);
    let producer = init_transactional(stream, 4, &id, TXN_TIMEOUT_MS);
    let added = |partition: i32| ("flow".to_string(), partition, NONE);
    if version <= 3 {
        let mut answered = Vec::new();
        retrying(stream, "AddPartitionsToTxn", |stream| {
            answered = add_partitions(stream, version, &id, producer, &[("flow", &[0, 1])]);
            answered[0].2
        });
        assert_eq!(
            answered,
            vec![added(0), added(1)],
            "AddPartitionsToTxn v{version}"
        );
    } else {
        for verify_only in [false, true] {
            let transaction = BatchedTransaction {
                id: &id,
                producer,
                verify_only,
                topics: &[("flow", &[0, 1])],
            };
            let answered = add_partitions_batched(stream, &[transaction]);
            assert_eq!(
                answered,
                (NONE, vec![(id.clone(), vec![added(0), added(1)])]),
                "AddPartitionsToTxn v4 verify_only={verify_only}"
            );
        }
    }
    let code = retrying(stream, "AddOffsetsToTxn", |stream| {
        add_offsets(stream, version, &id, producer, &group)
    });
    assert_eq!(code, NONE, "AddOffsetsToTxn v{version}");
    for partition in [0, 1] {
        let batch = data_batch(producer, 0, true, &[b"in", b"txn"]);
        produce_ok(stream, Some(&id), "flow", partition, batch);
    }
    let described = describe_one(stream, &id);
    assert_eq!(described.state, "Ongoing", "{id}");
    let offsets_partition = java_partition(&group, OFFSETS_TOPIC_PARTITIONS);
    assert_eq!(
        described.partitions,
        vec![
            (OFFSETS_TOPIC.to_string(), offsets_partition),
            ("flow".to_string(), 0),
            ("flow".to_string(), 1)
        ],
        "{id} after AddPartitionsToTxn and AddOffsetsToTxn v{version}"
    );

    let commit = version % 2 == 0;
    end_txn_ok(stream, version, &id, producer, commit);
    let state = if commit {
        "CompleteCommit"
    } else {
        "CompleteAbort"
    };
    let done = wait_for_state(stream, &id, state);
    assert_eq!(
        done.producer, producer,
        "EndTxn keeps the epoch (no KIP-890 part 2)"
    );
    assert!(done.partitions.is_empty(), "{id}: {done:?}");
    // A retry of an end already completed the same way is answered NONE.
    assert_eq!(
        end_txn(stream, version, &id, producer, commit),
        NONE,
        "EndTxn v{version} retried"
    );
    id
}

#[test]
fn write_txn_markers_ends_transactions_on_the_named_partitions() {
    let broker = Broker::start(CORES, &[]);
    let mut stream = connect(&broker.bootstrap());
    let topic = create_topic_with_id(&mut stream, "markers", 2);
    // Two producers with open transactions, one partition each (added through their
    // coordinator, which refuses data for partitions outside a transaction): the markers
    // sent by hand end them on the partitions.
    let mut producers = Vec::new();
    for partition in [0, 1] {
        let id = format!("by-hand-{partition}");
        let producer = begin(
            &mut stream,
            &id,
            TXN_TIMEOUT_MS,
            &[("markers", &[partition])],
        );
        let batch = data_batch(producer, 0, true, &[b"x", b"y"]);
        produce_ok(&mut stream, Some(&id), "markers", partition, batch);
        producers.push(producer);
    }
    for partition in [0, 1] {
        let held = fetch(&mut stream, 4, &topic, partition, 0, READ_COMMITTED);
        assert_eq!(
            (held.high_watermark, held.last_stable_offset),
            (2, 0),
            "markers-{partition} before its marker"
        );
    }

    let marker = |producer: Producer, commit: bool, partitions: Vec<i32>| {
        WritableTxnMarker::default()
            .with_producer_id(ProducerId(producer.id))
            .with_producer_epoch(producer.epoch)
            .with_transaction_result(commit)
            .with_coordinator_epoch(0)
            .with_topics(vec![WritableTxnMarkerTopic::default()
                .with_name(topic_name("markers"))
                .with_partition_indexes(partitions)])
    };
    let request = WriteTxnMarkersRequest::default().with_markers(vec![
        marker(producers[0], true, vec![0, 7]),
        marker(producers[1], false, vec![1]),
    ]);
    let response = call(&mut stream, 1, &request);
    let mut answered: Vec<(i64, String, i32, i16)> = response
        .markers
        .iter()
        .flat_map(|result| {
            result.topics.iter().flat_map(move |topic| {
                topic.partitions.iter().map(move |p| {
                    (
                        result.producer_id.0,
                        topic.name.to_string(),
                        p.partition_index,
                        p.error_code,
                    )
                })
            })
        })
        .collect();
    answered.sort();
    let mut expected = vec![
        (producers[0].id, "markers".to_string(), 0, NONE),
        (
            producers[0].id,
            "markers".to_string(),
            7,
            UNKNOWN_TOPIC_OR_PARTITION,
        ),
        (producers[1].id, "markers".to_string(), 1, NONE),
    ];
    expected.sort();
    assert_eq!(answered, expected, "WriteTxnMarkers v1");

    // Each partition now ends with its marker, and read_committed reads everything.
    for (partition, producer, commit) in [(0, producers[0], true), (1, producers[1], false)] {
        let read = fetch(&mut stream, 12, &topic, partition, 0, READ_COMMITTED);
        assert_eq!(
            (
                read.error_code,
                read.high_watermark,
                read.last_stable_offset
            ),
            (NONE, 3, 3),
            "markers-{partition} after its marker"
        );
        let aborted: Vec<(i64, i64)> = read
            .aborted_transactions
            .unwrap_or_default()
            .iter()
            .map(|a| (a.producer_id.0, a.first_offset))
            .collect();
        let expected_aborted = if commit {
            vec![]
        } else {
            vec![(producer.id, 0)]
        };
        assert_eq!(
            aborted, expected_aborted,
            "markers-{partition} aborted list"
        );
        let found = batches(&read.records.unwrap_or_default());
        assert_eq!(found.len(), 2, "data and marker: {found:?}");
        assert_eq!(
            (found[1].base_offset, found[1].producer_id, found[1].marker),
            (2, producer.id, Some(commit)),
            "markers-{partition} marker batch"
        );
    }
}
