//! Topic configs given at CreateTopics time change behaviour the way Kafka's do:
//! `segment.bytes` rolls segments (and the rolled log survives restarts and crashes),
//! `max.message.bytes` and `message.timestamp.type` apply per topic, DescribeConfigs reports
//! overrides (typed, with their synonyms and documentation, as Kafka 4.4 does), and unknown
//! config names are refused.

mod common;
// The kafka-protocol framing shared by the raw-protocol tests (it needs `CLIENT_ID` here).
#[path = "common/codec.rs"]
mod codec;

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

const CLIENT_ID: &str = "corelog-topic-configs-test";

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

/// DescribeConfigs resource types and config sources (KIP-226), config types (KIP-336).
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const SOURCE_TOPIC: i8 = 1;
const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;
const TYPE_BOOLEAN: i8 = 1;
const TYPE_INT: i8 = 3;
const TYPE_LONG: i8 = 5;
const TYPE_DOUBLE: i8 = 6;
const TYPE_LIST: i8 = 7;

/// One DescribeConfigs v4 resource with synonyms and documentation.
fn describe_configs_v4(
    bootstrap: &str,
    resource_type: i8,
    name: &str,
) -> kafka_protocol::messages::describe_configs_response::DescribeConfigsResult {
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    use kafka_protocol::messages::DescribeConfigsRequest;
    use kafka_protocol::protocol::StrBytes;
    let mut stream = common::wire::connect(bootstrap);
    let request = DescribeConfigsRequest::default()
        .with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(StrBytes::from_string(name.to_string()))
            .with_configuration_keys(Some(Vec::new()))])
        .with_include_synonyms(true)
        .with_include_documentation(true);
    let mut response = codec::call(&mut stream, 4, &request);
    assert_eq!(response.results.len(), 1);
    response.results.remove(0)
}

type Entry = kafka_protocol::messages::describe_configs_response::DescribeConfigsResourceResult;

fn entry<'a>(entries: &'a [Entry], name: &str) -> &'a Entry {
    entries
        .iter()
        .find(|entry| entry.name.as_str() == name)
        .unwrap_or_else(|| panic!("{name} described: {entries:?}"))
}

/// `(name, value, source)` of each synonym.
fn synonyms(entry: &Entry) -> Vec<(String, Option<String>, i8)> {
    entry
        .synonyms
        .iter()
        .map(|synonym| {
            (
                synonym.name.to_string(),
                synonym.value.as_ref().map(|value| value.to_string()),
                synonym.source,
            )
        })
        .collect()
}

fn owned(name: &str, value: &str, source: i8) -> (String, Option<String>, i8) {
    (name.to_string(), Some(value.to_string()), source)
}

#[test]
fn describe_configs_types_every_entry_and_lists_synonyms_and_documentation() {
    let broker = Broker::start(1, &[]);
    let bootstrap = broker.bootstrap();
    create_with_config(&bootstrap, "typed", 1, &[("retention.ms", "3600000")]);
    let result = describe_configs_v4(&bootstrap, RESOURCE_TOPIC, "typed");
    assert_eq!(result.error_code, 0, "{result:?}");
    let entries = &result.configs;

    let retention = entry(entries, "retention.ms");
    assert_eq!(retention.value.as_deref(), Some("3600000"));
    assert_eq!(retention.config_type, TYPE_LONG);
    assert_eq!(retention.config_source, SOURCE_TOPIC);
    assert!(!retention.read_only);
    assert_eq!(
        synonyms(retention),
        vec![owned("retention.ms", "3600000", SOURCE_TOPIC)]
    );
    let segment_bytes = entry(entries, "segment.bytes");
    assert_eq!(segment_bytes.config_type, TYPE_INT);
    assert_eq!(segment_bytes.config_source, SOURCE_DEFAULT);
    assert_eq!(
        synonyms(segment_bytes),
        vec![owned("log.segment.bytes", "1073741824", SOURCE_DEFAULT)]
    );
    assert_eq!(entry(entries, "cleanup.policy").config_type, TYPE_LIST);
    assert_eq!(entry(entries, "preallocate").config_type, TYPE_BOOLEAN);
    assert_eq!(
        entry(entries, "min.cleanable.dirty.ratio").config_type,
        TYPE_DOUBLE
    );
    // Kafka 4 keeps the cluster's min.insync.replicas as a dynamic default.
    let min_isr = entry(entries, "min.insync.replicas");
    assert_eq!(min_isr.config_source, SOURCE_DYNAMIC_DEFAULT_BROKER);
    assert_eq!(
        synonyms(min_isr),
        vec![
            owned("min.insync.replicas", "1", SOURCE_DYNAMIC_DEFAULT_BROKER),
            owned("min.insync.replicas", "1", SOURCE_DEFAULT),
        ]
    );
    // Kafka 4's defaults and names.
    assert_eq!(
        entry(entries, "message.timestamp.after.max.ms")
            .value
            .as_deref(),
        Some("3600000")
    );
    assert_eq!(
        entry(entries, "compression.zstd.level").value.as_deref(),
        Some("3")
    );
    for removed in [
        "message.format.version",
        "message.downconversion.enable",
        "message.timestamp.difference.max.ms",
    ] {
        assert!(
            entries.iter().all(|entry| entry.name.as_str() != removed),
            "{removed}"
        );
    }
    for entry in entries {
        assert_ne!(entry.config_type, 0, "{} is typed", entry.name.as_str());
        let documentation = entry.documentation.as_deref().unwrap_or("");
        assert!(
            documentation.len() > 10,
            "{} is documented",
            entry.name.as_str()
        );
    }
}

#[test]
fn broker_flags_are_static_broker_synonyms_of_topic_configs() {
    let broker = Broker::start(1, &["--node-id", "0", "--log-retention-ms", "5000"]);
    let bootstrap = broker.bootstrap();
    create_with_config(&bootstrap, "flagged", 1, &[]);
    let topic = describe_configs_v4(&bootstrap, RESOURCE_TOPIC, "flagged");
    let retention = entry(&topic.configs, "retention.ms");
    assert_eq!(retention.value.as_deref(), Some("5000"));
    assert_eq!(retention.config_source, SOURCE_STATIC_BROKER);
    assert_eq!(
        synonyms(retention),
        vec![
            owned("log.retention.ms", "5000", SOURCE_STATIC_BROKER),
            owned("log.retention.hours", "168", SOURCE_DEFAULT),
        ]
    );

    // This broker's configs, by its id: typed, read-only, the flag among them.
    let this_broker = describe_configs_v4(&bootstrap, RESOURCE_BROKER, "0");
    assert_eq!(this_broker.error_code, 0, "{this_broker:?}");
    let log_retention = entry(&this_broker.configs, "log.retention.ms");
    assert_eq!(log_retention.value.as_deref(), Some("5000"));
    assert_eq!(log_retention.config_type, TYPE_LONG);
    assert_eq!(log_retention.config_source, SOURCE_STATIC_BROKER);
    assert!(log_retention.read_only);
    let segment_bytes = entry(&this_broker.configs, "log.segment.bytes");
    assert_eq!(segment_bytes.config_source, SOURCE_DEFAULT);
    assert_eq!(
        entry(&this_broker.configs, "node.id").value.as_deref(),
        Some("0")
    );
    // The cluster-wide defaults: the empty name.
    let cluster = describe_configs_v4(&bootstrap, RESOURCE_BROKER, "");
    let names: Vec<&str> = cluster
        .configs
        .iter()
        .map(|entry| entry.name.as_str())
        .collect();
    assert_eq!(names, vec!["min.insync.replicas"]);
    // Another broker's id is refused, as Kafka refuses it.
    let other = describe_configs_v4(&bootstrap, RESOURCE_BROKER, "7");
    assert_eq!(other.error_code, 42, "INVALID_REQUEST: {other:?}");
}

#[test]
fn configs_kafka_4_removed_are_refused_and_its_new_ones_validated() {
    let broker = Broker::start(1, &[]);
    let bootstrap = broker.bootstrap();
    for removed in [
        ("message.format.version", "3.0"),
        ("message.downconversion.enable", "true"),
        ("message.timestamp.difference.max.ms", "1000"),
        ("compression.zstd.level", "30"),
        ("compression.gzip.level", "0"),
        ("max.decompressed.message.bytes", "0"),
        ("remote.storage.enable", "true"),
    ] {
        assert_eq!(
            try_create_topic_with_config(&bootstrap, "refused", 1, &[removed]),
            Err(RDKafkaErrorCode::InvalidConfig),
            "{removed:?}"
        );
    }
    create_with_config(
        &bootstrap,
        "levels",
        1,
        &[
            ("compression.zstd.level", "5"),
            ("compression.gzip.level", "9"),
            ("compression.lz4.level", "12"),
            ("errors.deadletterqueue.group.enable", "true"),
        ],
    );
    let entries = describe_configs_v4(&bootstrap, RESOURCE_TOPIC, "levels").configs;
    let zstd = entry(&entries, "compression.zstd.level");
    assert_eq!(zstd.value.as_deref(), Some("5"));
    assert_eq!(
        synonyms(zstd),
        vec![
            owned("compression.zstd.level", "5", SOURCE_TOPIC),
            owned("compression.zstd.level", "3", SOURCE_DEFAULT),
        ]
    );
}

/// corelog does not compact logs yet, so it refuses `cleanup.policy=compact` (alone or with
/// `delete`) with INVALID_CONFIG and a message that names the config, wherever a topic's
/// policy can be set: CreateTopics (validate-only too), IncrementalAlterConfigs (SET and
/// APPEND) and AlterConfigs. Kafka Streams relies on that answer: its state stores' changelog
/// topics are compacted, and a stateful application must fail at once with this error (see
/// tests/java/streams), never believe it has a compacted changelog.
#[test]
fn compacted_topics_are_refused_with_invalid_config_naming_the_policy() {
    use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
    use kafka_protocol::messages::{
        alter_configs_request, incremental_alter_configs_request, AlterConfigsRequest,
        CreateTopicsRequest, IncrementalAlterConfigsRequest, TopicName,
    };
    use kafka_protocol::protocol::StrBytes;
    const INVALID_CONFIG: i16 = 40;
    const OP_SET: i8 = 0;
    const OP_APPEND: i8 = 2;
    const REFUSAL: &str = "cleanup.policy=compact is not supported by corelog yet";
    let text = |value: &str| StrBytes::from_string(value.to_string());

    let broker = Broker::start(2, &[]);
    let bootstrap = broker.bootstrap();
    let mut stream = common::wire::connect(&bootstrap);
    for (policy, validate_only) in [
        ("compact", false),
        ("compact", true),
        ("delete,compact", false),
        ("compact, delete", false),
    ] {
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(10_000)
            .with_validate_only(validate_only)
            .with_topics(vec![CreatableTopic::default()
                .with_name(TopicName(text("changelog")))
                .with_num_partitions(1)
                .with_replication_factor(-1)
                .with_configs(vec![CreatableTopicConfig::default()
                    .with_name(text("cleanup.policy"))
                    .with_value(Some(text(policy)))])]);
        let response = codec::call(&mut stream, 7, &request);
        let topic = &response.topics[0];
        assert_eq!(topic.error_code, INVALID_CONFIG, "{policy}: {response:?}");
        let message = topic.error_message.as_deref().unwrap_or_default();
        assert!(message.contains(REFUSAL), "{policy}: {message}");
    }
    assert!(!common::all_topic_names(&bootstrap).contains(&"changelog".to_string()));

    create_with_config(&bootstrap, "deleted", 1, &[("cleanup.policy", "delete")]);
    for (operation, value) in [(OP_SET, "compact"), (OP_APPEND, "compact")] {
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            incremental_alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(RESOURCE_TOPIC)
                .with_resource_name(text("deleted"))
                .with_configs(vec![
                    incremental_alter_configs_request::AlterableConfig::default()
                        .with_name(text("cleanup.policy"))
                        .with_config_operation(operation)
                        .with_value(Some(text(value))),
                ]),
        ]);
        let response = codec::call(&mut stream, 1, &request);
        let result = &response.responses[0];
        assert_eq!(
            result.error_code, INVALID_CONFIG,
            "op {operation}: {response:?}"
        );
        let message = result.error_message.as_deref().unwrap_or_default();
        assert!(message.contains(REFUSAL), "op {operation}: {message}");
    }
    let request = AlterConfigsRequest::default().with_resources(vec![
        alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(RESOURCE_TOPIC)
            .with_resource_name(text("deleted"))
            .with_configs(vec![alter_configs_request::AlterableConfig::default()
                .with_name(text("cleanup.policy"))
                .with_value(Some(text("compact")))]),
    ]);
    let response = codec::call(&mut stream, 2, &request);
    let result = &response.responses[0];
    assert_eq!(result.error_code, INVALID_CONFIG, "{response:?}");
    let message = result.error_message.as_deref().unwrap_or_default();
    assert!(message.contains(REFUSAL), "{message}");

    // Nothing of the refused changes stuck.
    let entries = describe_configs_v4(&bootstrap, RESOURCE_TOPIC, "deleted").configs;
    assert_eq!(
        entry(&entries, "cleanup.policy").value.as_deref(),
        Some("delete")
    );
}
