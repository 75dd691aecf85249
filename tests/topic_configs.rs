//! Topic configs given at CreateTopics time change behaviour the way Kafka's do:
//! `segment.bytes` rolls segments (and the rolled log survives restarts and crashes),
//! `max.message.bytes` and `message.timestamp.type` apply per topic, DescribeConfigs reports
//! overrides, and unknown config names are refused.

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::Consumer;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::BaseRecord;
use rdkafka::{Offset, TopicPartitionList};

use common::{
    assign_consumer, consume_all, describe_topic_configs, producer, send,
    try_create_topic_with_config, wait_for_deliveries, wait_for_successful_deliveries,
    wait_for_topic, watermarks, Broker, Consumed, ADMIN_TIMEOUT,
};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

fn create_with_config(bootstrap: &str, topic: &str, partitions: i32, configs: &[(&str, &str)]) {
    if let Err(code) = try_create_topic_with_config(bootstrap, topic, partitions, configs) {
        panic!("create {topic} with {configs:?} failed: {code:?}");
    }
    wait_for_topic(bootstrap, topic, partitions);
}

/// Incompressible bytes from a seed (xorshift).
fn noise(length: usize, mut seed: u64) -> Vec<u8> {
    seed |= 1;
    (0..length)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 32) as u8
        })
        .collect()
}

fn count_files_with_suffix(dir: &Path, suffix: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                count_files_with_suffix(&path, suffix)
            } else {
                usize::from(path.to_string_lossy().ends_with(suffix))
            }
        })
        .sum()
}

const SEGMENT_TOPIC: &str = "small-segments";
const SEGMENT_PARTITIONS: i32 = 2;
const SEGMENT_MESSAGES: usize = 6_000;
const SEGMENT_VALUE_BYTES: usize = 1_000;

fn segment_value(id: usize) -> Vec<u8> {
    let mut value = format!("{id:08}|").into_bytes();
    value.extend(noise(SEGMENT_VALUE_BYTES, id as u64));
    value
}

fn assert_segment_topic_intact(records: &[Consumed], first_ms: i64) {
    assert_eq!(records.len(), SEGMENT_MESSAGES, "record count");
    let mut next_offset = [0i64; SEGMENT_PARTITIONS as usize];
    for consumed in records {
        let partition = consumed.partition as usize;
        assert_eq!(consumed.offset, next_offset[partition], "dense offsets");
        next_offset[partition] += 1;
        // Message `id` went to partition id % 2 at offset id / 2.
        let id = consumed.offset as usize * SEGMENT_PARTITIONS as usize + partition;
        assert!(
            consumed.value.as_deref() == Some(segment_value(id).as_slice()),
            "message {id} damaged at {partition}/{}",
            consumed.offset
        );
        assert_eq!(consumed.timestamp_ms, Some(first_ms + id as i64));
    }
}

fn offset_for_time(bootstrap: &str, partition: i32, timestamp_ms: i64) -> Offset {
    let consumer = assign_consumer(bootstrap, &[]);
    let mut query = TopicPartitionList::new();
    query
        .add_partition_offset(SEGMENT_TOPIC, partition, Offset::Offset(timestamp_ms))
        .expect("add partition");
    let answer = consumer
        .offsets_for_times(query, ADMIN_TIMEOUT)
        .expect("ListOffsets by timestamp");
    answer
        .find_partition(SEGMENT_TOPIC, partition)
        .expect("partition in answer")
        .offset()
}

#[test]
fn small_segments_roll_and_survive_restart_and_crash() {
    let mut broker = Broker::start(2, &["--flush", "always"]);
    create_with_config(
        &broker.bootstrap(),
        SEGMENT_TOPIC,
        SEGMENT_PARTITIONS,
        &[("segment.bytes", "1048576")],
    );
    let first_ms = now_ms() - 3_600_000;
    let producer = producer(&broker.bootstrap(), &[]);
    for id in 0..SEGMENT_MESSAGES {
        let value = segment_value(id);
        send(
            &producer,
            BaseRecord::with_opaque_to(SEGMENT_TOPIC, id)
                .key(b"k".as_slice())
                .payload(value.as_slice())
                .partition((id % SEGMENT_PARTITIONS as usize) as i32)
                .timestamp(first_ms + id as i64),
        );
    }
    wait_for_successful_deliveries(&producer, SEGMENT_MESSAGES, Duration::from_secs(60));
    drop(producer);

    let log_files = count_files_with_suffix(broker.data_dir(), ".log");
    assert!(
        log_files >= 2 * SEGMENT_PARTITIONS as usize,
        "segment.bytes=1MiB with ~3 MB per partition left {log_files} .log files"
    );

    let check = |broker: &Broker, stage: &str| {
        let records = consume_all(
            &broker.bootstrap(),
            SEGMENT_TOPIC,
            SEGMENT_PARTITIONS,
            SEGMENT_MESSAGES,
            Duration::from_secs(60),
        );
        assert_segment_topic_intact(&records, first_ms);
        let per_partition = (SEGMENT_MESSAGES / SEGMENT_PARTITIONS as usize) as i64;
        for partition in 0..SEGMENT_PARTITIONS {
            assert_eq!(
                watermarks(&broker.bootstrap(), SEGMENT_TOPIC, partition),
                (0, per_partition),
                "{stage}: watermarks of partition {partition}"
            );
        }
        // Timestamp look-ups land in later segments too: id 4001 is partition 1, offset 2000.
        assert_eq!(
            offset_for_time(&broker.bootstrap(), 1, first_ms + 4_001),
            Offset::Offset(2_000),
            "{stage}: offset for the timestamp of message 4001"
        );
        assert_eq!(
            offset_for_time(&broker.bootstrap(), 0, first_ms + 5_999),
            Offset::End,
            "{stage}: timestamp after partition 0's last record"
        );
    };
    check(&broker, "before restart");
    broker.restart();
    check(&broker, "after graceful restart");
    broker.kill9();
    broker.restart();
    check(&broker, "after kill -9");
}

#[test]
fn topic_max_message_bytes_override_is_enforced() {
    let broker = Broker::start(1, &[]);
    let bootstrap = broker.bootstrap();
    create_with_config(
        &bootstrap,
        "small-messages",
        1,
        &[("max.message.bytes", "2000")],
    );
    let producer = producer(&bootstrap, &[("message.send.max.retries", "0")]);
    let too_big = noise(5_000, 7);
    send(
        &producer,
        BaseRecord::with_opaque_to("small-messages", 0)
            .key(b"k".as_slice())
            .payload(too_big.as_slice())
            .partition(0),
    );
    let deliveries = wait_for_deliveries(&producer, 1, Duration::from_secs(30));
    let error = deliveries[0]
        .outcome
        .clone()
        .expect_err("a 5000-byte record in a topic with max.message.bytes=2000");
    assert_eq!(
        error.rdkafka_error_code(),
        Some(RDKafkaErrorCode::MessageSizeTooLarge),
        "got {error:?}"
    );
    let fits = noise(1_000, 8);
    send(
        &producer,
        BaseRecord::with_opaque_to("small-messages", 0)
            .key(b"k".as_slice())
            .payload(fits.as_slice())
            .partition(0),
    );
    assert_eq!(
        wait_for_successful_deliveries(&producer, 1, Duration::from_secs(30)),
        vec![(0, 0)]
    );
}

#[test]
fn log_append_time_topics_stamp_records_with_broker_time() {
    let broker = Broker::start(1, &[]);
    let bootstrap = broker.bootstrap();
    let topic = "append-time";
    create_with_config(
        &bootstrap,
        topic,
        1,
        &[("message.timestamp.type", "LogAppendTime")],
    );
    let before_ms = now_ms() - 1_000;
    let producer = producer(&bootstrap, &[]);
    for id in 0..10 {
        send(
            &producer,
            BaseRecord::with_opaque_to(topic, id)
                .key(b"k".as_slice())
                .payload(b"v".as_slice())
                .partition(0)
                .timestamp(1_000 + id as i64),
        );
    }
    wait_for_successful_deliveries(&producer, 10, Duration::from_secs(30));
    let after_ms = now_ms() + 1_000;
    let records = consume_all(&bootstrap, topic, 1, 10, Duration::from_secs(30));
    assert_eq!(records.len(), 10);
    for consumed in &records {
        assert!(
            consumed.log_append_time,
            "record {} not LogAppendTime",
            consumed.offset
        );
        let timestamp = consumed.timestamp_ms.expect("timestamp");
        assert!(
            (before_ms..=after_ms).contains(&timestamp),
            "record {} has timestamp {timestamp}, not the broker's append time",
            consumed.offset
        );
    }
}

#[test]
fn unknown_topic_config_is_refused_with_invalid_config() {
    let broker = Broker::start(1, &[]);
    let bootstrap = broker.bootstrap();
    assert_eq!(
        try_create_topic_with_config(&bootstrap, "bad-config", 1, &[("no.such.config", "1")]),
        Err(RDKafkaErrorCode::InvalidConfig)
    );
    assert!(!common::all_topic_names(&bootstrap).contains(&"bad-config".to_string()));
}

#[test]
fn describe_configs_reports_topic_overrides() {
    let broker = Broker::start(1, &[]);
    let bootstrap = broker.bootstrap();
    create_with_config(
        &bootstrap,
        "described",
        1,
        &[("retention.ms", "123456"), ("cleanup.policy", "delete")],
    );
    let entries = describe_topic_configs(&bootstrap, "described")
        .unwrap_or_else(|code| panic!("DescribeConfigs failed: {code:?}"));
    let value = |name: &str| {
        entries
            .iter()
            .find(|(entry, _)| entry == name)
            .and_then(|(_, value)| value.clone())
    };
    assert_eq!(
        value("retention.ms").as_deref(),
        Some("123456"),
        "{entries:?}"
    );
    assert_eq!(
        value("cleanup.policy").as_deref(),
        Some("delete"),
        "{entries:?}"
    );
    assert!(
        value("max.message.bytes").is_some(),
        "defaults listed too: {entries:?}"
    );
}

#[test]
fn create_topics_with_minus_one_partitions_uses_the_default() {
    let broker = Broker::start(1, &["--default-partitions", "4"]);
    let bootstrap = broker.bootstrap();
    create_with_config(&bootstrap, "default-count", 4, &[]);
    assert_eq!(
        try_create_topic_with_config(&bootstrap, "broker-default", -1, &[]),
        Ok(())
    );
    wait_for_topic(&bootstrap, "broker-default", 4);
}
