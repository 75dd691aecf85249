//! Compressed record batches (gzip, snappy, lz4, zstd) written by librdkafka are stored
//! and served back so that a consumer decompresses every record intact.

mod common;

use std::time::Duration;

use common::{
    consume_all, create_topic, producer, record, send, wait_for_successful_deliveries, Broker,
};

const MESSAGES_PER_CODEC: usize = 2_000;

/// Compressible but not constant: repeated words with the id mixed in.
fn value_for(codec: &str, id: usize) -> String {
    let words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"];
    let mut value = format!("{codec}:{id}:");
    for index in 0..(20 + id % 50) {
        value.push_str(words[(id + index) % words.len()]);
        value.push(' ');
    }
    value
}

/// Produces with one codec into `topic` (ids offset by `first_id`), waits for all acks.
fn produce_with_codec(bootstrap: &str, topic: &str, codec: &str, first_id: usize) {
    let producer = producer(bootstrap, &[("compression.type", codec)]);
    for id in first_id..first_id + MESSAGES_PER_CODEC {
        let key = format!("{codec}-{id}");
        let value = value_for(codec, id);
        send(
            &producer,
            record(topic, id - first_id, key.as_bytes(), value.as_bytes()),
        );
    }
    wait_for_successful_deliveries(&producer, MESSAGES_PER_CODEC, Duration::from_secs(60));
}

fn round_trip_with_codec(codec: &str) {
    let broker = Broker::start(1, &[]);
    let bootstrap = broker.bootstrap();
    let topic = format!("compressed-{codec}");
    create_topic(&bootstrap, &topic, 2);
    produce_with_codec(&bootstrap, &topic, codec, 0);

    let records = consume_all(
        &bootstrap,
        &topic,
        2,
        MESSAGES_PER_CODEC,
        Duration::from_secs(60),
    );
    assert_eq!(records.len(), MESSAGES_PER_CODEC, "{codec}: record count");
    let mut seen = vec![false; MESSAGES_PER_CODEC];
    for consumed in &records {
        let key = String::from_utf8(consumed.key.clone().expect("key")).expect("UTF-8 key");
        let id: usize = key
            .strip_prefix(&format!("{codec}-"))
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("{codec}: unexpected key {key}"));
        assert!(!seen[id], "{codec}: message {id} read twice");
        seen[id] = true;
        assert_eq!(
            consumed.value.as_deref(),
            Some(value_for(codec, id).as_bytes()),
            "{codec}: message {id} damaged"
        );
    }
}

#[test]
fn gzip_batches_round_trip_intact() {
    round_trip_with_codec("gzip");
}

#[test]
fn snappy_batches_round_trip_intact() {
    round_trip_with_codec("snappy");
}

#[test]
fn lz4_batches_round_trip_intact() {
    round_trip_with_codec("lz4");
}

#[test]
fn zstd_batches_round_trip_intact() {
    round_trip_with_codec("zstd");
}

/// Batches with different codecs interleave in one partition and still read back in order.
#[test]
fn mixed_codecs_in_one_partition_read_back_in_order() {
    let broker = Broker::start(1, &[]);
    let bootstrap = broker.bootstrap();
    let topic = "compressed-mixed";
    create_topic(&bootstrap, topic, 1);
    let codecs = ["none", "gzip", "snappy", "lz4", "zstd"];
    for (round, codec) in codecs.iter().enumerate() {
        produce_with_codec(&bootstrap, topic, codec, round * MESSAGES_PER_CODEC);
    }
    let total = codecs.len() * MESSAGES_PER_CODEC;
    let records = consume_all(&bootstrap, topic, 1, total, Duration::from_secs(60));
    assert_eq!(records.len(), total);
    for (position, consumed) in records.iter().enumerate() {
        assert_eq!(
            consumed.offset, position as i64,
            "offsets dense across codecs"
        );
        let codec = codecs[position / MESSAGES_PER_CODEC];
        assert_eq!(
            consumed.value.as_deref(),
            Some(value_for(codec, position).as_bytes()),
            "record at offset {position} ({codec}) damaged"
        );
    }
}
