//! Keyed produce and consume through a real librdkafka client: every acknowledged message
//! is read back exactly once, intact, in partition order, at the offset its delivery report
//! named, with each key pinned to one partition.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{
    consume_all, create_topic, producer, record, send, wait_for_successful_deliveries, Broker,
    Consumed,
};

/// Value layout: `<key>|<sequence>|<filler>`; the filler makes batches a realistic size.
fn message_value(key: &str, sequence: usize) -> String {
    format!("{key}|{sequence:08}|{}", "x".repeat(40 + sequence % 23))
}

fn parse_value(value: &[u8]) -> (String, usize) {
    let text = std::str::from_utf8(value).expect("value is UTF-8");
    let mut parts = text.splitn(3, '|');
    let key = parts.next().expect("key part").to_string();
    let sequence = parts
        .next()
        .expect("sequence part")
        .parse()
        .expect("sequence is a number");
    let filler = parts.next().expect("filler part");
    assert_eq!(
        filler,
        "x".repeat(40 + sequence % 23),
        "filler damaged in {text:?}"
    );
    (key, sequence)
}

fn keyed_round_trip(cores: usize, partitions: i32, key_count: usize, message_count: usize) {
    let broker = Broker::start(cores, &[]);
    let bootstrap = broker.bootstrap();
    let topic = "keyed-orders";
    create_topic(&bootstrap, topic, partitions);

    // Message `id` carries key `id % key_count` with per-key sequence `id / key_count`.
    // Retries are off so that a delivery failure is reported instead of hidden (and could
    // not reorder a key); five requests in flight exercise pipelining on one connection.
    let producer = producer(
        &bootstrap,
        &[
            ("max.in.flight.requests.per.connection", "5"),
            ("message.send.max.retries", "0"),
        ],
    );
    let keys: Vec<String> = (0..key_count).map(|k| format!("key-{k:05}")).collect();
    for id in 0..message_count {
        let key = &keys[id % key_count];
        let value = message_value(key, id / key_count);
        send(
            &producer,
            record(topic, id, key.as_bytes(), value.as_bytes()),
        );
    }
    let placed = wait_for_successful_deliveries(&producer, message_count, Duration::from_secs(120));
    drop(producer);

    let records = consume_all(
        &bootstrap,
        topic,
        partitions,
        message_count,
        Duration::from_secs(120),
    );
    assert_eq!(
        records.len(),
        message_count,
        "consumed {} records, produced {message_count}",
        records.len()
    );
    check_records(&records, &placed, key_count);
}

fn check_records(records: &[Consumed], placed: &[(i32, i64)], key_count: usize) {
    let mut last_offset: HashMap<i32, i64> = HashMap::new();
    let mut key_partition: HashMap<String, i32> = HashMap::new();
    let mut next_sequence: HashMap<String, usize> = HashMap::new();

    for consumed in records {
        // Offsets strictly increase within a partition.
        if let Some(previous) = last_offset.insert(consumed.partition, consumed.offset) {
            assert!(
                consumed.offset > previous,
                "partition {} went from offset {previous} to {}",
                consumed.partition,
                consumed.offset
            );
        }
        let key = String::from_utf8(consumed.key.clone().expect("record has a key"))
            .expect("key is UTF-8");
        let (value_key, sequence) = parse_value(consumed.value.as_deref().expect("value"));
        assert_eq!(value_key, key, "value belongs to another key");

        // Each key lives in exactly one partition.
        let home = *key_partition
            .entry(key.clone())
            .or_insert(consumed.partition);
        assert_eq!(
            home, consumed.partition,
            "key {key} seen in partitions {home} and {}",
            consumed.partition
        );

        // Per-key sequence numbers arrive in order, each exactly once.
        let expected_sequence = next_sequence.entry(key.clone()).or_insert(0);
        assert_eq!(
            sequence, *expected_sequence,
            "key {key}: expected sequence {expected_sequence}, got {sequence} at {}/{}",
            consumed.partition, consumed.offset
        );
        *expected_sequence += 1;

        // The record sits exactly where its delivery report said.
        let key_index: usize = key["key-".len()..].parse().expect("key number");
        let id = sequence * key_count + key_index;
        assert_eq!(
            placed[id],
            (consumed.partition, consumed.offset),
            "message {id} ({key} #{sequence}) was acknowledged at {:?} but read at {}/{}",
            placed[id],
            consumed.partition,
            consumed.offset
        );
    }
    assert_eq!(key_partition.len(), key_count, "some keys never arrived");
}

#[test]
fn keyed_messages_arrive_once_in_partition_order() {
    keyed_round_trip(2, 6, 1_000, 100_000);
}

#[test]
fn keyed_messages_arrive_once_in_partition_order_on_one_core() {
    keyed_round_trip(1, 4, 200, 10_000);
}

/// Offsets are dense: each partition holds 0..n with no holes, and the high watermark is n.
#[test]
fn offsets_are_dense_and_match_high_watermark() {
    let broker = Broker::start(2, &[]);
    let bootstrap = broker.bootstrap();
    let topic = "dense-offsets";
    create_topic(&bootstrap, topic, 3);
    let producer = producer(&bootstrap, &[]);
    let message_count = 3_000;
    for id in 0..message_count {
        let key = format!("k{}", id % 17);
        let value = format!("v{id}");
        send(
            &producer,
            record(topic, id, key.as_bytes(), value.as_bytes()),
        );
    }
    wait_for_successful_deliveries(&producer, message_count, Duration::from_secs(60));
    let records = consume_all(&bootstrap, topic, 3, message_count, Duration::from_secs(60));
    assert_eq!(records.len(), message_count);
    for partition in 0..3 {
        let offsets: Vec<i64> = records
            .iter()
            .filter(|r| r.partition == partition)
            .map(|r| r.offset)
            .collect();
        let expected: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(offsets, expected, "partition {partition} offsets not dense");
        let (low, high) = common::watermarks(&bootstrap, topic, partition);
        assert_eq!(
            (low, high),
            (0, offsets.len() as i64),
            "partition {partition}"
        );
    }
}

/// Several producers on their own connections (which SO_REUSEPORT spreads over shards)
/// write to the same partitions at once; nothing is lost, duplicated or reordered per
/// producer.
#[test]
fn concurrent_producers_on_separate_connections_all_land() {
    let broker = Broker::start(2, &[]);
    let bootstrap = broker.bootstrap();
    let topic = "concurrent";
    let partitions = 8;
    create_topic(&bootstrap, topic, partitions);
    let producer_count = 6;
    let per_producer = 5_000;

    let placed: Vec<Vec<(i32, i64)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..producer_count)
            .map(|producer_index| {
                let bootstrap = bootstrap.clone();
                scope.spawn(move || {
                    let producer = producer(&bootstrap, &[("message.send.max.retries", "0")]);
                    for sequence in 0..per_producer {
                        let key = format!("p{producer_index}");
                        let value = format!("p{producer_index}|{sequence}");
                        send(
                            &producer,
                            record(topic, sequence, key.as_bytes(), value.as_bytes())
                                .partition((sequence % partitions as usize) as i32),
                        );
                    }
                    wait_for_successful_deliveries(&producer, per_producer, Duration::from_secs(60))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("producer thread"))
            .collect()
    });

    let total = producer_count * per_producer;
    let records = consume_all(
        &bootstrap,
        topic,
        partitions,
        total,
        Duration::from_secs(60),
    );
    assert_eq!(records.len(), total);
    let mut last_sequence: HashMap<(usize, i32), usize> = HashMap::new();
    for consumed in &records {
        let text = std::str::from_utf8(consumed.value.as_deref().expect("value")).expect("UTF-8");
        let (producer_part, sequence_part) = text.split_once('|').expect("separator");
        let producer_index: usize = producer_part[1..].parse().expect("producer index");
        let sequence: usize = sequence_part.parse().expect("sequence");
        assert_eq!(
            placed[producer_index][sequence],
            (consumed.partition, consumed.offset),
            "{text} read at a different place than acknowledged"
        );
        if let Some(previous) = last_sequence.insert((producer_index, consumed.partition), sequence)
        {
            assert!(sequence > previous, "{text} after sequence {previous}");
        }
    }
}

/// Many partitions, round-robin over both shards: each one is independently addressable.
#[test]
fn many_partitions_are_each_served() {
    let broker = Broker::start(2, &[]);
    let bootstrap = broker.bootstrap();
    let topic = "wide";
    let partitions = 48;
    create_topic(&bootstrap, topic, partitions);
    let producer = producer(&bootstrap, &[]);
    let per_partition = 50;
    let total = partitions as usize * per_partition;
    for id in 0..total {
        let partition = (id % partitions as usize) as i32;
        let value = format!("{partition}:{}", id / partitions as usize);
        send(
            &producer,
            record(topic, id, b"k", value.as_bytes()).partition(partition),
        );
    }
    wait_for_successful_deliveries(&producer, total, Duration::from_secs(60));
    for partition in 0..partitions {
        assert_eq!(
            common::watermarks(&bootstrap, topic, partition),
            (0, per_partition as i64),
            "partition {partition}"
        );
    }
    let records = consume_all(
        &bootstrap,
        topic,
        partitions,
        total,
        Duration::from_secs(60),
    );
    assert_eq!(records.len(), total);
    for consumed in &records {
        let expected = format!("{}:{}", consumed.partition, consumed.offset);
        assert_eq!(consumed.value.as_deref(), Some(expected.as_bytes()));
    }
}

/// enable.idempotence=true: InitProducerId, sequence numbers per partition, up to five
/// requests in flight; every message lands exactly once and in order.
#[test]
fn idempotent_producer_delivers_exactly_once_in_order() {
    let broker = Broker::start(2, &[]);
    let bootstrap = broker.bootstrap();
    let topic = "idempotent";
    let partitions = 4;
    create_topic(&bootstrap, topic, partitions);
    let producer = producer(
        &bootstrap,
        &[
            ("enable.idempotence", "true"),
            ("max.in.flight.requests.per.connection", "5"),
        ],
    );
    let key_count = 100;
    let message_count = 20_000;
    let keys: Vec<String> = (0..key_count).map(|k| format!("key-{k:05}")).collect();
    for id in 0..message_count {
        let key = &keys[id % key_count];
        let value = message_value(key, id / key_count);
        send(
            &producer,
            record(topic, id, key.as_bytes(), value.as_bytes()),
        );
    }
    let placed = wait_for_successful_deliveries(&producer, message_count, Duration::from_secs(60));
    drop(producer);
    let records = consume_all(
        &bootstrap,
        topic,
        partitions,
        message_count,
        Duration::from_secs(60),
    );
    assert_eq!(records.len(), message_count);
    check_records(&records, &placed, key_count);
}
