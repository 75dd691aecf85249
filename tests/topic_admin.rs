//! Topic administration through librdkafka's admin API: CreatePartitions (grow only),
//! AlterConfigs (live, durable, compact refused), DeleteRecords (the log start offset moves,
//! survives a restart, consumers below it reset), retention deleting old segments under
//! configs changed at runtime, and broker-level topic defaults set by flags.

mod common;

use std::time::Duration;

use common::*;
use rdkafka::admin::{
    AdminOptions, AlterConfig, NewPartitions, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::consumer::Consumer;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(20);

fn options() -> AdminOptions {
    AdminOptions::new()
        .request_timeout(Some(TIMEOUT))
        .operation_timeout(Some(TIMEOUT))
}

fn grow(bootstrap: &str, topic: &str, total: usize) -> Result<(), RDKafkaErrorCode> {
    let admin = admin(bootstrap);
    let partitions = NewPartitions::new(topic, total);
    let results = futures::executor::block_on(admin.create_partitions([&partitions], &options()))
        .expect("CreatePartitions request");
    results[0].clone().map(|_| ()).map_err(|(_, code)| code)
}

fn alter(bootstrap: &str, topic: &str, configs: &[(&str, &str)]) -> Result<(), RDKafkaErrorCode> {
    let admin = admin(bootstrap);
    let mut change = AlterConfig::new(ResourceSpecifier::Topic(topic));
    for (key, value) in configs {
        change = change.set(key, value);
    }
    let results = futures::executor::block_on(admin.alter_configs([&change], &options()))
        .expect("AlterConfigs request");
    match &results[0] {
        Ok(_) => Ok(()),
        Err((_, code)) => Err(*code),
    }
}

fn config_value(bootstrap: &str, topic: &str, name: &str) -> Option<String> {
    describe_topic_configs(bootstrap, topic)
        .expect("describe configs")
        .into_iter()
        .find(|(key, _)| key == name)
        .and_then(|(_, value)| value)
}

/// DeleteRecords for one partition; the new low watermark.
fn delete_before(bootstrap: &str, topic: &str, partition: i32, offset: i64) -> i64 {
    let admin = admin(bootstrap);
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, partition, Offset::Offset(offset))
        .expect("offset");
    let result = futures::executor::block_on(admin.delete_records(&list, &options()))
        .expect("DeleteRecords request");
    let element = result
        .find_partition(topic, partition)
        .expect("partition in result");
    element.error().expect("no error for the partition");
    match element.offset() {
        Offset::Offset(low) => low,
        other => panic!("unexpected low watermark {other:?}"),
    }
}

/// First offset an assign()ed consumer at `offset` gets with auto.offset.reset=earliest.
fn first_offset_from(bootstrap: &str, topic: &str, offset: i64) -> i64 {
    let consumer = assign_consumer(bootstrap, &[("auto.offset.reset", "earliest")]);
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, 0, Offset::Offset(offset))
        .expect("offset");
    consumer.assign(&list).expect("assign");
    let records = consume_from(&consumer, 1, 1, TIMEOUT);
    records.first().expect("a record after the reset").offset
}

#[test]
fn partitions_grow_but_never_shrink() {
    let broker = Broker::start(2, &[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "growing", 2);
    grow(&bootstrap, "growing", 5).expect("grow to 5");
    wait_for_topic(&bootstrap, "growing", 5);
    // The new partitions take writes and reads.
    let offsets = produce_simple(&bootstrap, "growing", 4, 3);
    assert_eq!(offsets, vec![0, 1, 2]);
    assert_eq!(
        grow(&bootstrap, "growing", 3),
        Err(RDKafkaErrorCode::InvalidPartitions)
    );
    assert_eq!(
        grow(&bootstrap, "growing", 5),
        Err(RDKafkaErrorCode::InvalidPartitions)
    );
    assert_eq!(
        grow(&bootstrap, "no-such-topic", 5),
        Err(RDKafkaErrorCode::UnknownTopicOrPartition)
    );
    // Groups are placed by hashing over __consumer_offsets' partition count: fixed.
    let consumer = assign_consumer(&bootstrap, &[]);
    let mut list = TopicPartitionList::new();
    list.add_partition("growing", 0);
    consumer
        .committed_offsets(list, TIMEOUT)
        .expect("OffsetFetch (creates __consumer_offsets)");
    assert_eq!(
        grow(&bootstrap, "__consumer_offsets", 60),
        Err(RDKafkaErrorCode::InvalidRequest)
    );
}

#[test]
fn altered_configs_are_validated_and_survive_a_restart() {
    let mut broker = Broker::start(2, &[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "tuned", 1);
    alter(
        &bootstrap,
        "tuned",
        &[("retention.ms", "123456"), ("segment.bytes", "65536")],
    )
    .expect("alter");
    assert_eq!(
        config_value(&bootstrap, "tuned", "retention.ms").as_deref(),
        Some("123456")
    );
    // rdkafka 0.39 reports every AlterConfigs resource as Ok (it ignores the per-resource
    // error), so refusals are checked by their effect: AlterConfigs replaces the whole set,
    // and a refused one leaves the previous overrides in place.
    let _ = alter(&bootstrap, "tuned", &[("cleanup.policy", "compact")]);
    let _ = alter(&bootstrap, "tuned", &[("no.such.config", "1")]);
    assert_eq!(
        config_value(&bootstrap, "tuned", "retention.ms").as_deref(),
        Some("123456")
    );
    assert_eq!(
        config_value(&bootstrap, "tuned", "cleanup.policy").as_deref(),
        Some("delete")
    );
    assert_eq!(
        try_create_topic_with_config(&bootstrap, "compacted", 1, &[("cleanup.policy", "compact")]),
        Err(RDKafkaErrorCode::InvalidConfig)
    );
    broker.restart();
    let bootstrap = broker.bootstrap();
    assert_eq!(
        config_value(&bootstrap, "tuned", "retention.ms").as_deref(),
        Some("123456")
    );
    assert_eq!(
        config_value(&bootstrap, "tuned", "segment.bytes").as_deref(),
        Some("65536")
    );
}

#[test]
fn delete_records_moves_the_log_start_for_good() {
    let mut broker = Broker::start(2, &[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "trimmed", 1);
    produce_simple(&bootstrap, "trimmed", 0, 100);
    assert_eq!(delete_before(&bootstrap, "trimmed", 0, 40), 40);
    assert_eq!(watermarks(&bootstrap, "trimmed", 0), (40, 100));
    // A consumer below the start is out of range and resets to it.
    assert_eq!(first_offset_from(&bootstrap, "trimmed", 10), 40);
    broker.restart();
    let bootstrap = broker.bootstrap();
    assert_eq!(watermarks(&bootstrap, "trimmed", 0), (40, 100));
    assert_eq!(first_offset_from(&bootstrap, "trimmed", 0), 40);
}

#[test]
fn retention_deletes_old_segments_after_a_live_config_change() {
    let broker = Broker::start(1, &["--log-retention-check-interval-ms", "200"]);
    let bootstrap = broker.bootstrap();
    try_create_topic_with_config(&bootstrap, "expiring", 1, &[("segment.bytes", "4096")])
        .expect("create");
    wait_for_topic(&bootstrap, "expiring", 1);
    // One record per batch, so that 300 batches fill several 4 KiB segments.
    let producer = producer(
        &bootstrap,
        &[("linger.ms", "0"), ("batch.num.messages", "1")],
    );
    for id in 0..300usize {
        let value = format!("value-{id:04}-{}", "x".repeat(60));
        send(
            &producer,
            record("expiring", id, b"key", value.as_bytes()).partition(0),
        );
    }
    wait_for_successful_deliveries(&producer, 300, TIMEOUT);
    let segments = |dir: &std::path::Path| {
        std::fs::read_dir(dir.join("expiring-0"))
            .expect("partition dir")
            .filter(|entry| {
                entry
                    .as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "log"))
            })
            .count()
    };
    let before = segments(broker.data_dir());
    assert!(before > 3, "only {before} segments");
    assert_eq!(watermarks(&bootstrap, "expiring", 0).0, 0);
    // Every sealed segment is now past retention: only the active one stays.
    alter(
        &bootstrap,
        "expiring",
        &[("segment.bytes", "4096"), ("retention.ms", "1")],
    )
    .expect("alter");
    let low = poll_until(TIMEOUT, "retention to move the log start", || {
        let (low, high) = watermarks(&bootstrap, "expiring", 0);
        assert_eq!(high, 300);
        (low > 0).then_some(low)
    });
    assert!(segments(broker.data_dir()) < before);
    assert_eq!(first_offset_from(&bootstrap, "expiring", 0), low);
}

#[test]
fn broker_flags_set_topic_defaults() {
    let broker = Broker::start(
        1,
        &[
            "--log-retention-ms",
            "3600000",
            "--log-segment-bytes",
            "1048576",
        ],
    );
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "defaulted", 1);
    assert_eq!(
        config_value(&bootstrap, "defaulted", "retention.ms").as_deref(),
        Some("3600000")
    );
    assert_eq!(
        config_value(&bootstrap, "defaulted", "segment.bytes").as_deref(),
        Some("1048576")
    );
    try_create_topic_with_config(&bootstrap, "overridden", 1, &[("retention.ms", "1000")])
        .expect("create");
    assert_eq!(
        config_value(&bootstrap, "overridden", "retention.ms").as_deref(),
        Some("1000")
    );
}

#[test]
fn bad_topic_default_flags_stop_the_broker_with_a_message() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_corelog"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-segment-bytes",
            "10",
        ])
        .output()
        .expect("run corelog");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("segment.bytes"), "{stderr}");
}

/// A topic whose partitions cannot open is not created: CreateTopics answers
/// KAFKA_STORAGE_ERROR with the reason, the topic does not exist afterwards, and the
/// same name is created once the obstacle is gone.
#[test]
fn a_topic_whose_partitions_cannot_open_is_refused_and_not_created() {
    let broker = Broker::start(2, &[]);
    let bootstrap = broker.bootstrap();
    // A regular file where partition 1's directory must go.
    let blocker = broker.data_dir().join("blocked-1");
    std::fs::write(&blocker, b"not a directory").expect("write blocker");
    let refused = try_create_topic(&bootstrap, "blocked", 3);
    assert_eq!(refused, Err(RDKafkaErrorCode::KafkaStorageError));
    assert!(
        !all_topic_names(&bootstrap).contains(&"blocked".to_string()),
        "a refused topic does not exist"
    );
    assert!(
        !broker.data_dir().join("blocked-0").exists(),
        "opened partitions were removed"
    );

    std::fs::remove_file(&blocker).expect("remove blocker");
    assert_eq!(try_create_topic(&bootstrap, "blocked", 3), Ok(()));
    wait_for_topic(&bootstrap, "blocked", 3);
}

#[test]
fn creations_past_the_node_partition_limit_are_refused_with_policy_violation() {
    let broker = Broker::start(1, &["--max-partitions-per-node", "60"]);
    let bootstrap = broker.bootstrap();
    assert_eq!(try_create_topic(&bootstrap, "fits", 40), Ok(()));
    wait_for_topic(&bootstrap, "fits", 40);
    // 40 + 30 > 60: refused whole, nothing created.
    assert_eq!(
        try_create_topic(&bootstrap, "too-many", 30),
        Err(RDKafkaErrorCode::PolicyViolation)
    );
    assert!(
        !all_topic_names(&bootstrap).contains(&"too-many".to_string()),
        "a refused topic does not exist"
    );
    assert!(!broker.data_dir().join("too-many-0").exists());
    assert_eq!(
        grow(&bootstrap, "fits", 61),
        Err(RDKafkaErrorCode::PolicyViolation)
    );
    assert_eq!(grow(&bootstrap, "fits", 60), Ok(()));
    wait_for_topic(&bootstrap, "fits", 60);
    assert_eq!(
        try_create_topic(&bootstrap, "one-more", 1),
        Err(RDKafkaErrorCode::PolicyViolation)
    );
}

#[test]
fn topics_of_one_create_topics_request_count_together_against_the_node_limit() {
    let broker = Broker::start(1, &["--max-partitions-per-node", "30"]);
    let bootstrap = broker.bootstrap();
    let admin = admin(&bootstrap);
    // Each fits alone (20 <= 30); together they do not (40 > 30).
    let first = NewTopic::new("first-of-two", 20, TopicReplication::Fixed(1));
    let second = NewTopic::new("second-of-two", 20, TopicReplication::Fixed(1));
    let results =
        futures::executor::block_on(admin.create_topics([&first, &second], &admin_options()))
            .expect("CreateTopics answered");
    assert_eq!(results.len(), 2);
    assert_eq!(results[0], Ok("first-of-two".to_string()));
    assert!(
        matches!(&results[1], Err((name, RDKafkaErrorCode::PolicyViolation)) if name == "second-of-two"),
        "{:?}",
        results[1]
    );
    wait_for_topic(&bootstrap, "first-of-two", 20);
    assert!(!all_topic_names(&bootstrap).contains(&"second-of-two".to_string()));
    assert!(!broker.data_dir().join("second-of-two-0").exists());
}
