//! Kafka API semantics as a librdkafka client sees them: topic auto-creation and its
//! switch, CreateTopics/DeleteTopics error codes, exact ListOffsets answers, timestamp
//! look-ups, the max.message.bytes limit, and long-polling Fetch.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::BaseRecord;
use rdkafka::{Offset, TopicPartitionList};

use common::{
    all_topic_names, assign_consumer, assign_from_beginning, consume_all, create_topic, producer,
    record, send, topic_metadata, try_create_topic, try_delete_topic, wait_for_deliveries,
    wait_for_successful_deliveries, wait_for_topic, watermarks, Broker, ADMIN_TIMEOUT,
};

#[test]
fn metadata_advertises_the_listening_address_and_leaders() {
    let broker = Broker::start(2, &["--node-id", "0"]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "advertised", 4);
    let consumer = common::metadata_consumer(&bootstrap);
    let metadata = consumer
        .fetch_metadata(Some("advertised"), ADMIN_TIMEOUT)
        .expect("metadata");
    let brokers: Vec<(i32, String, i32)> = metadata
        .brokers()
        .iter()
        .map(|b| (b.id(), b.host().to_string(), b.port()))
        .collect();
    assert_eq!(
        brokers,
        vec![(0, "127.0.0.1".to_string(), i32::from(broker.port()))],
        "Metadata brokers"
    );
    let topic = topic_metadata(&bootstrap, "advertised").expect("topic listed");
    assert_eq!(topic.error, None);
    assert_eq!(
        topic.partition_leaders,
        vec![(0, 0), (1, 0), (2, 0), (3, 0)]
    );
}

#[test]
fn producing_to_unknown_topic_auto_creates_it() {
    let broker = Broker::start(
        2,
        &["--auto-create-topics", "true", "--default-partitions", "3"],
    );
    let bootstrap = broker.bootstrap();
    let topic = "auto-created";

    // A consumer's Metadata request does not allow auto-creation: the topic stays unknown.
    let before = topic_metadata(&bootstrap, topic);
    assert!(
        before
            .as_ref()
            .is_none_or(|entry| entry.error == Some(RDKafkaErrorCode::UnknownTopicOrPartition)),
        "metadata for a never-created topic: {before:?}"
    );

    let producer = producer(&bootstrap, &[]);
    for id in 0..30 {
        let key = format!("k{id}");
        send(&producer, record(topic, id, key.as_bytes(), b"auto"));
    }
    wait_for_successful_deliveries(&producer, 30, Duration::from_secs(60));
    wait_for_topic(&bootstrap, topic, 3);
    let records = consume_all(&bootstrap, topic, 3, 30, Duration::from_secs(30));
    assert_eq!(records.len(), 30);
}

#[test]
fn producing_to_unknown_topic_fails_when_auto_create_is_off() {
    let broker = Broker::start(1, &["--auto-create-topics", "false"]);
    let bootstrap = broker.bootstrap();
    let topic = "never-created";
    let producer = producer(
        &bootstrap,
        &[
            ("message.timeout.ms", "10000"),
            ("topic.metadata.propagation.max.ms", "2000"),
        ],
    );
    send(&producer, record(topic, 0, b"k", b"v"));
    let deliveries = wait_for_deliveries(&producer, 1, Duration::from_secs(30));
    let error = deliveries[0]
        .outcome
        .clone()
        .expect_err("produce to an unknown topic must fail");
    let code = error.rdkafka_error_code();
    // librdkafka reports the broker's UNKNOWN_TOPIC_OR_PARTITION from Metadata as its local
    // "unknown topic" error once topic.metadata.propagation.max.ms has passed.
    assert!(
        matches!(
            code,
            Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic)
        ),
        "expected UnknownTopicOrPartition, got {error:?}"
    );
    let metadata = topic_metadata(&bootstrap, topic);
    assert!(
        metadata
            .as_ref()
            .is_none_or(|entry| entry.error == Some(RDKafkaErrorCode::UnknownTopicOrPartition)),
        "topic was created although auto-create is off: {metadata:?}"
    );
}

#[test]
fn creating_an_existing_topic_fails_with_topic_already_exists() {
    let broker = Broker::start(1, &[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "twice", 2);
    assert_eq!(
        try_create_topic(&bootstrap, "twice", 2),
        Err(RDKafkaErrorCode::TopicAlreadyExists)
    );
    // The failed create left the original alone.
    wait_for_topic(&bootstrap, "twice", 2);
}

#[test]
fn creating_a_topic_with_zero_partitions_fails_with_invalid_partitions() {
    let broker = Broker::start(1, &[]);
    let bootstrap = broker.bootstrap();
    assert_eq!(
        try_create_topic(&bootstrap, "no-partitions", 0),
        Err(RDKafkaErrorCode::InvalidPartitions)
    );
    let names = all_topic_names(&bootstrap);
    assert!(
        !names.iter().any(|name| name == "no-partitions"),
        "invalid topic was created: {names:?}"
    );
}

#[test]
fn deleted_topic_disappears_from_metadata_and_can_be_recreated_empty() {
    let broker = Broker::start(2, &["--auto-create-topics", "false"]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "short-lived", 2);
    common::produce_simple(&bootstrap, "short-lived", 1, 10);
    assert_eq!(try_delete_topic(&bootstrap, "short-lived"), Ok(()));

    let metadata = topic_metadata(&bootstrap, "short-lived");
    assert!(
        metadata
            .as_ref()
            .is_none_or(|entry| entry.error == Some(RDKafkaErrorCode::UnknownTopicOrPartition)),
        "deleted topic still in metadata: {metadata:?}"
    );
    let names = all_topic_names(&bootstrap);
    assert!(
        !names.iter().any(|name| name == "short-lived"),
        "deleted topic still listed: {names:?}"
    );
    assert_eq!(
        try_delete_topic(&bootstrap, "short-lived"),
        Err(RDKafkaErrorCode::UnknownTopicOrPartition),
        "deleting a deleted topic"
    );

    // Same name again: a new, empty log.
    create_topic(&bootstrap, "short-lived", 2);
    assert_eq!(watermarks(&bootstrap, "short-lived", 1), (0, 0));
}

#[test]
fn watermarks_are_exact_after_several_batches() {
    let broker = Broker::start(1, &[]);
    let bootstrap = broker.bootstrap();
    let topic = "watermarks";
    create_topic(&bootstrap, topic, 2);
    assert_eq!(watermarks(&bootstrap, topic, 0), (0, 0), "empty partition");

    // Batches of different sizes: the high watermark is the offset after the last record,
    // not the last batch's base offset plus one.
    let mut produced = 0usize;
    for batch_size in [10usize, 20, 7, 1] {
        let producer = producer(&bootstrap, &[("linger.ms", "50")]);
        for index in 0..batch_size {
            let value = format!("v{}", produced + index);
            send(
                &producer,
                record(topic, index, b"k", value.as_bytes()).partition(0),
            );
        }
        wait_for_successful_deliveries(&producer, batch_size, Duration::from_secs(30));
        produced += batch_size;
        assert_eq!(
            watermarks(&bootstrap, topic, 0),
            (0, produced as i64),
            "after {produced} records"
        );
    }
    assert_eq!(
        watermarks(&bootstrap, topic, 1),
        (0, 0),
        "untouched partition"
    );
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

fn offset_for_time(bootstrap: &str, topic: &str, timestamp_ms: i64) -> Offset {
    let consumer = assign_consumer(bootstrap, &[]);
    let mut query = TopicPartitionList::new();
    query
        .add_partition_offset(topic, 0, Offset::Offset(timestamp_ms))
        .expect("add partition");
    let answer = consumer
        .offsets_for_times(query, ADMIN_TIMEOUT)
        .unwrap_or_else(|error| panic!("ListOffsets by timestamp {timestamp_ms}: {error}"));
    let element = answer
        .find_partition(topic, 0)
        .expect("answer for partition 0");
    assert!(
        element.error().is_ok(),
        "ListOffsets by timestamp {timestamp_ms}: {:?}",
        element.error()
    );
    element.offset()
}

#[test]
fn offsets_for_times_finds_first_record_at_or_after_timestamp() {
    let broker = Broker::start(1, &[]);
    let bootstrap = broker.bootstrap();
    let topic = "timestamps";
    create_topic(&bootstrap, topic, 1);

    // Ten records one second apart, an hour ago, in two batches of five.
    let first_ms = now_ms() - 3_600_000;
    for batch in 0..2 {
        let producer = producer(&bootstrap, &[]);
        for index in 0..5 {
            let id = batch * 5 + index;
            let value = format!("at-{id}");
            send(
                &producer,
                BaseRecord::with_opaque_to(topic, index)
                    .key(b"k".as_slice())
                    .payload(value.as_bytes())
                    .partition(0)
                    .timestamp(first_ms + id as i64 * 1_000),
            );
        }
        wait_for_successful_deliveries(&producer, 5, Duration::from_secs(30));
    }

    assert_eq!(
        offset_for_time(&bootstrap, topic, first_ms - 10_000),
        Offset::Offset(0)
    );
    assert_eq!(
        offset_for_time(&bootstrap, topic, first_ms),
        Offset::Offset(0)
    );
    assert_eq!(
        offset_for_time(&bootstrap, topic, first_ms + 2_500),
        Offset::Offset(3)
    );
    assert_eq!(
        offset_for_time(&bootstrap, topic, first_ms + 5_000),
        Offset::Offset(5)
    );
    assert_eq!(
        offset_for_time(&bootstrap, topic, first_ms + 7_000),
        Offset::Offset(7)
    );
    assert_eq!(
        offset_for_time(&bootstrap, topic, first_ms + 9_000),
        Offset::Offset(9)
    );
    // Past the last record Kafka answers offset -1, which rdkafka calls Offset::End.
    assert_eq!(
        offset_for_time(&bootstrap, topic, first_ms + 9_001),
        Offset::End
    );
    assert_eq!(
        offset_for_time(&bootstrap, topic, now_ms() + 3_600_000),
        Offset::End
    );

    // The CreateTime timestamps come back on the records too.
    let records = consume_all(&bootstrap, topic, 1, 10, Duration::from_secs(30));
    let timestamps: Vec<Option<i64>> = records.iter().map(|r| r.timestamp_ms).collect();
    let expected: Vec<Option<i64>> = (0..10).map(|id| Some(first_ms + id * 1_000)).collect();
    assert_eq!(timestamps, expected);
}

#[test]
fn message_larger_than_max_message_bytes_is_rejected() {
    let broker = Broker::start(1, &[]);
    let bootstrap = broker.bootstrap();
    let topic = "size-limit";
    create_topic(&bootstrap, topic, 1);
    let producer = producer(
        &bootstrap,
        &[
            ("message.max.bytes", "10000000"),
            ("message.send.max.retries", "0"),
        ],
    );
    // Incompressible filler, so the batch really is as large as the value.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut filler = |length: usize| -> Vec<u8> {
        (0..length)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    };
    let too_big = filler(2 * 1024 * 1024);
    send(
        &producer,
        record(topic, 0, b"too-big", &too_big).partition(0),
    );
    let deliveries = wait_for_deliveries(&producer, 1, Duration::from_secs(30));
    let error = deliveries[0]
        .outcome
        .clone()
        .expect_err("a 2 MiB record must be rejected by a 1 MiB max.message.bytes");
    assert_eq!(
        error.rdkafka_error_code(),
        Some(RDKafkaErrorCode::MessageSizeTooLarge),
        "expected MESSAGE_TOO_LARGE, got {error:?}"
    );

    // Just under the limit is accepted and reads back whole; the rejected record left no
    // trace in the log.
    let fits = filler(900 * 1024);
    send(&producer, record(topic, 0, b"fits", &fits).partition(0));
    let placed = wait_for_successful_deliveries(&producer, 1, Duration::from_secs(30));
    assert_eq!(
        placed[0],
        (0, 0),
        "the accepted record is the first in the log"
    );
    let records = consume_all(&bootstrap, topic, 1, 1, Duration::from_secs(30));
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].value.as_deref(), Some(fits.as_slice()));
    assert_eq!(watermarks(&bootstrap, topic, 0), (0, 1));
}

#[test]
fn consumer_waiting_at_the_end_receives_a_later_message() {
    let broker = Broker::start(2, &[]);
    let bootstrap = broker.bootstrap();
    let topic = "long-poll";
    create_topic(&bootstrap, topic, 1);
    common::produce_simple(&bootstrap, topic, 0, 2);

    let consumer = assign_consumer(&bootstrap, &[]);
    assign_from_beginning(&consumer, topic, 1);
    // Read the two existing records and wait until the consumer reports it is at the end.
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            Instant::now() < deadline,
            "consumer never reached the end of the partition"
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(_)) => seen += 1,
            Some(Err(KafkaError::PartitionEOF(_))) if seen == 2 => break,
            _ => {}
        }
    }

    // The consumer is now parked in Fetch at the end; a new record must reach it.
    let producer = producer(&bootstrap, &[]);
    send(
        &producer,
        record(topic, 0, b"late", b"late-value").partition(0),
    );
    wait_for_successful_deliveries(&producer, 1, Duration::from_secs(30));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            Instant::now() < deadline,
            "record produced after the consumer reached the end never arrived"
        );
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            assert_eq!(message.offset(), 2);
            assert_eq!(message.payload(), Some(b"late-value".as_slice()));
            break;
        }
    }
    // Watermarks agree with what was consumed.
    let (low, high) = consumer
        .fetch_watermarks(topic, 0, ADMIN_TIMEOUT)
        .expect("watermarks");
    assert_eq!((low, high), (0, 3));
}

#[test]
fn acks_zero_and_acks_one_produces_are_stored() {
    // acks=0 gets no response at all (Kafka protocol guide); a broker that answers anyway
    // desynchronises the client's correlation ids.
    let broker = Broker::start(2, &[]);
    let bootstrap = broker.bootstrap();
    let topic = "acks-levels";
    create_topic(&bootstrap, topic, 2);
    for (partition, acks) in [(0, "0"), (1, "1")] {
        let producer = producer(&bootstrap, &[("acks", acks)]);
        for id in 0..1_000 {
            let value = format!("acks{acks}-{id}");
            send(
                &producer,
                record(topic, id, b"k", value.as_bytes()).partition(partition),
            );
        }
        wait_for_successful_deliveries(&producer, 1_000, Duration::from_secs(30));
    }
    // acks=0 reports delivery before the broker stored anything: wait for the log.
    common::poll_until(Duration::from_secs(30), "acks=0 records stored", || {
        (watermarks(&bootstrap, topic, 0) == (0, 1_000)).then_some(())
    });
    assert_eq!(watermarks(&bootstrap, topic, 1), (0, 1_000));
    let records = consume_all(&bootstrap, topic, 2, 2_000, Duration::from_secs(30));
    assert_eq!(records.len(), 2_000);
    for consumed in &records {
        let acks = if consumed.partition == 0 { "0" } else { "1" };
        let expected = format!("acks{acks}-{}", consumed.offset);
        assert_eq!(consumed.value.as_deref(), Some(expected.as_bytes()));
    }
}

#[test]
fn consumer_starting_inside_a_batch_gets_records_from_that_offset() {
    let broker = Broker::start(1, &[]);
    let bootstrap = broker.bootstrap();
    let topic = "mid-batch";
    create_topic(&bootstrap, topic, 1);
    common::produce_simple(&bootstrap, topic, 0, 10); // one batch: linger collects all ten

    let consumer = assign_consumer(&bootstrap, &[]);
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Offset(7))
        .expect("add partition");
    consumer.assign(&assignment).expect("assign");
    let records = common::consume_from(&consumer, 1, 3, Duration::from_secs(30));
    let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
    assert_eq!(
        offsets,
        vec![7, 8, 9],
        "records from offset 7 of a 10-record batch"
    );
    assert_eq!(records[0].value.as_deref(), Some(b"value-7".as_slice()));
}

#[test]
fn fetch_past_the_end_reports_offset_out_of_range() {
    let broker = Broker::start(1, &[]);
    let bootstrap = broker.bootstrap();
    let topic = "out-of-range";
    create_topic(&bootstrap, topic, 1);
    common::produce_simple(&bootstrap, topic, 0, 10);

    // auto.offset.reset=error: the broker's OFFSET_OUT_OF_RANGE surfaces as an error.
    let consumer = assign_consumer(&bootstrap, &[]);
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Offset(100))
        .expect("add partition");
    consumer.assign(&assignment).expect("assign");
    let error =
        common::poll_until(
            Duration::from_secs(30),
            "an out-of-range error",
            || match consumer.poll(Duration::from_millis(100)) {
                Some(Err(error)) if !matches!(error, KafkaError::PartitionEOF(_)) => Some(error),
                Some(Ok(message)) => panic!("read offset {} from past the end", message.offset()),
                _ => None,
            },
        );
    assert!(
        matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::OffsetOutOfRange | RDKafkaErrorCode::AutoOffsetReset)
        ),
        "expected OFFSET_OUT_OF_RANGE, got {error:?}"
    );
}

#[test]
fn consumer_with_tiny_fetch_size_still_makes_progress() {
    // KIP-74: the first batch is returned even when larger than the fetch limits, or a
    // consumer with small limits would be stuck forever.
    let broker = Broker::start(1, &[]);
    let bootstrap = broker.bootstrap();
    let topic = "tiny-fetch";
    create_topic(&bootstrap, topic, 1);
    let producer = producer(&bootstrap, &[]);
    let value = vec![b'z'; 10_000];
    for id in 0..50 {
        send(&producer, record(topic, id, b"k", &value).partition(0));
    }
    wait_for_successful_deliveries(&producer, 50, Duration::from_secs(30));

    let consumer = assign_consumer(
        &bootstrap,
        &[
            ("fetch.max.bytes", "1024"),
            ("message.max.bytes", "1000"),
            ("max.partition.fetch.bytes", "1024"),
            ("receive.message.max.bytes", "1000000"),
        ],
    );
    assign_from_beginning(&consumer, topic, 1);
    let records = common::consume_from(&consumer, 1, 50, Duration::from_secs(60));
    assert_eq!(records.len(), 50);
    assert!(records
        .iter()
        .all(|r| r.value.as_deref() == Some(value.as_slice())));
}

#[test]
fn invalid_topic_names_are_rejected() {
    let broker = Broker::start(1, &[]);
    let bootstrap = broker.bootstrap();
    let too_long = "x".repeat(250);
    for name in ["has space", "..", "slash/name", too_long.as_str()] {
        assert_eq!(
            try_create_topic(&bootstrap, name, 1),
            Err(RDKafkaErrorCode::InvalidTopic),
            "topic name {name:?}"
        );
    }
    // Legal characters: letters, digits, '.', '_', '-' up to 249.
    let longest = "y".repeat(249);
    for name in ["Mixed.Case_name-1", longest.as_str()] {
        create_topic(&bootstrap, name, 1);
    }
}

#[test]
fn settings_can_come_from_corelog_environment_variables() {
    let broker = Broker::start_with_env(
        1,
        &[],
        &[
            ("CORELOG_AUTO_CREATE_TOPICS", "true"),
            ("CORELOG_DEFAULT_PARTITIONS", "5"),
        ],
    );
    let bootstrap = broker.bootstrap();
    let producer = producer(&bootstrap, &[]);
    send(&producer, record("from-env", 0, b"k", b"v"));
    wait_for_successful_deliveries(&producer, 1, Duration::from_secs(30));
    wait_for_topic(&bootstrap, "from-env", 5);
}

#[test]
fn metadata_reports_the_advertised_address() {
    // Clients connect to what Metadata says, not to the bootstrap address.
    let broker = Broker::start(1, &["--advertised-address", "localhost:19092"]);
    let consumer = common::metadata_consumer(&broker.bootstrap());
    let metadata = consumer
        .fetch_metadata(None, ADMIN_TIMEOUT)
        .expect("metadata");
    let brokers: Vec<(i32, String, i32)> = metadata
        .brokers()
        .iter()
        .map(|b| (b.id(), b.host().to_string(), b.port()))
        .collect();
    assert_eq!(brokers, vec![(0, "localhost".to_string(), 19092)]);
}
