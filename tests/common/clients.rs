//! Real-client helpers on top of librdkafka (rdkafka): topic admin, producing with
//! recorded delivery reports, assign-only consuming, consumer-group settings and
//! DeleteGroups, and ListOffsets. Every wait is bounded.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message, Timestamp};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::unique_topic;

/// Default bound for admin operations and metadata look-ups.
pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(20);
/// Group id handed to consumers: librdkafka's `assign()` refuses to work without one
/// ("Requires a consumer with group.id configured"). Tests never subscribe or commit.
pub const CONSUMER_GROUP_ID: &str = "corelog-tests-assign-only";

/// Set to a librdkafka `debug` list (e.g. `protocol,msg,fetch`) to print the clients'
/// protocol traffic on stderr.
pub const CLIENT_DEBUG_ENV: &str = "CORELOG_TEST_RDKAFKA_DEBUG";

/// Client context for admin clients and consumers: librdkafka's log lines go to stderr
/// only when [`CLIENT_DEBUG_ENV`] is set (the tests install no `log` logger).
pub struct TestContext;

impl ClientContext for TestContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        if std::env::var_os(CLIENT_DEBUG_ENV).is_some() {
            eprintln!("librdkafka {level:?} {facility}: {message}");
        }
    }
}

impl ConsumerContext for TestContext {}

pub type TestConsumer = BaseConsumer<TestContext>;

/// Settings every test client shares.
fn client_config(bootstrap: &str, client_id: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("client.id", client_id);
    if let Ok(debug) = std::env::var(CLIENT_DEBUG_ENV) {
        // rdkafka derives the log level from the `log` crate, which has no logger here.
        config
            .set("debug", debug)
            .set_log_level(RDKafkaLogLevel::Debug);
    }
    config
}

// ---------------------------------------------------------------------------------------
// Admin
// ---------------------------------------------------------------------------------------

pub fn admin(bootstrap: &str) -> AdminClient<TestContext> {
    client_config(bootstrap, "corelog-test-admin")
        .create_with_context(TestContext)
        .expect("create admin client")
}

pub fn admin_options() -> AdminOptions {
    AdminOptions::new()
        .request_timeout(Some(ADMIN_TIMEOUT))
        .operation_timeout(Some(ADMIN_TIMEOUT))
}

/// CreateTopics for one topic; the per-topic error code on failure.
pub fn try_create_topic(
    bootstrap: &str,
    name: &str,
    partitions: i32,
) -> Result<(), RDKafkaErrorCode> {
    try_create_topic_with_config(bootstrap, name, partitions, &[])
}

/// CreateTopics for one topic with topic config overrides.
pub fn try_create_topic_with_config(
    bootstrap: &str,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> Result<(), RDKafkaErrorCode> {
    let admin = admin(bootstrap);
    let mut new_topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (key, value) in configs {
        new_topic = new_topic.set(key, value);
    }
    let results = futures::executor::block_on(admin.create_topics([&new_topic], &admin_options()))
        .unwrap_or_else(|error| panic!("CreateTopics request for {name} failed: {error}"));
    assert_eq!(results.len(), 1, "one result per created topic");
    match &results[0] {
        Ok(created) => {
            assert_eq!(created, name);
            Ok(())
        }
        Err((_, code)) => Err(*code),
    }
}

/// DescribeConfigs for a topic: `(name, value)` of every entry, or the error code.
pub fn describe_topic_configs(
    bootstrap: &str,
    topic: &str,
) -> Result<Vec<(String, Option<String>)>, RDKafkaErrorCode> {
    let admin = admin(bootstrap);
    let resource = ResourceSpecifier::Topic(topic);
    let results =
        futures::executor::block_on(admin.describe_configs([&resource], &admin_options()))
            .unwrap_or_else(|error| panic!("DescribeConfigs request for {topic} failed: {error}"));
    assert_eq!(results.len(), 1, "one result per described resource");
    results[0].as_ref().map_err(|code| *code).map(|resource| {
        resource
            .entries
            .iter()
            .map(|entry| (entry.name.clone(), entry.value.clone()))
            .collect()
    })
}

/// Creates a topic and waits until Metadata shows all its partitions with a leader.
pub fn create_topic(bootstrap: &str, name: &str, partitions: i32) {
    if let Err(code) = try_create_topic(bootstrap, name, partitions) {
        panic!("create topic {name} with {partitions} partitions failed: {code:?}");
    }
    wait_for_topic(bootstrap, name, partitions);
}

/// DeleteTopics for one topic; the per-topic error code on failure.
pub fn try_delete_topic(bootstrap: &str, name: &str) -> Result<(), RDKafkaErrorCode> {
    let admin = admin(bootstrap);
    let results = futures::executor::block_on(admin.delete_topics(&[name], &admin_options()))
        .unwrap_or_else(|error| panic!("DeleteTopics request for {name} failed: {error}"));
    assert_eq!(results.len(), 1, "one result per deleted topic");
    match &results[0] {
        Ok(_) => Ok(()),
        Err((_, code)) => Err(*code),
    }
}

/// What Metadata says about one topic: its error code, if any, and its partitions' leaders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    pub error: Option<RDKafkaErrorCode>,
    pub partition_leaders: Vec<(i32, i32)>,
}

/// A Metadata request for one topic that never asks the broker to auto-create it
/// (consumers send allow_auto_topic_creation=false).
pub fn topic_metadata(bootstrap: &str, topic: &str) -> Option<TopicMetadata> {
    let consumer = metadata_consumer(bootstrap);
    let metadata = consumer
        .fetch_metadata(Some(topic), ADMIN_TIMEOUT)
        .unwrap_or_else(|error| panic!("Metadata request for {topic} failed: {error}"));
    metadata
        .topics()
        .iter()
        .find(|entry| entry.name() == topic)
        .map(|entry| TopicMetadata {
            error: entry.error().map(RDKafkaErrorCode::from),
            partition_leaders: entry
                .partitions()
                .iter()
                .map(|partition| (partition.id(), partition.leader()))
                .collect(),
        })
}

/// Names of all topics the broker reports.
pub fn all_topic_names(bootstrap: &str) -> Vec<String> {
    let consumer = metadata_consumer(bootstrap);
    let metadata = consumer
        .fetch_metadata(None, ADMIN_TIMEOUT)
        .unwrap_or_else(|error| panic!("Metadata request for all topics failed: {error}"));
    metadata
        .topics()
        .iter()
        .map(|topic| topic.name().to_string())
        .collect()
}

/// Waits (bounded) until the topic is reported without error, with `partitions` partitions
/// that all have a leader.
pub fn wait_for_topic(bootstrap: &str, topic: &str, partitions: i32) {
    let deadline = Instant::now() + ADMIN_TIMEOUT;
    loop {
        let metadata = topic_metadata(bootstrap, topic);
        let ready = metadata.as_ref().is_some_and(|entry| {
            entry.error.is_none()
                && entry.partition_leaders.len() == partitions as usize
                && entry
                    .partition_leaders
                    .iter()
                    .all(|(_, leader)| *leader >= 0)
        });
        if ready {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "topic {topic} never showed {partitions} partitions with leaders in Metadata; \
             last answer: {metadata:?}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// A consumer that is only used for Metadata and ListOffsets, never assigned.
pub fn metadata_consumer(bootstrap: &str) -> TestConsumer {
    client_config(bootstrap, "corelog-test-metadata")
        .create_with_context(TestContext)
        .expect("create metadata consumer")
}

// ---------------------------------------------------------------------------------------
// Producing
// ---------------------------------------------------------------------------------------

/// Where one produced message ended up, or why it did not.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The caller's id for the message (its delivery opaque).
    pub id: usize,
    pub outcome: Result<(i32, i64), KafkaError>,
}

/// Records every delivery report of a producer.
#[derive(Default)]
pub struct DeliveryRecorder {
    deliveries: Mutex<Vec<Delivery>>,
}

impl ClientContext for DeliveryRecorder {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        TestContext.log(level, facility, message);
    }
}

impl ProducerContext for DeliveryRecorder {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, id: usize) {
        let outcome = match result {
            Ok(message) => Ok((message.partition(), message.offset())),
            Err((error, _)) => Err(error.clone()),
        };
        self.deliveries
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .push(Delivery { id, outcome });
    }
}

pub type TestProducer = BaseProducer<DeliveryRecorder>;

/// A producer with `acks=all`, a short linger and big batches, plus `extra` settings
/// (which win over the defaults).
pub fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> TestProducer {
    let mut config = client_config(bootstrap, "corelog-test-producer");
    config
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "200000")
        .set("message.timeout.ms", "60000");
    for (key, value) in extra {
        config.set(*key, *value);
    }
    config
        .create_with_context(DeliveryRecorder::default())
        .expect("create producer")
}

/// Enqueues one message, polling (bounded) while librdkafka's local queue is full.
pub fn send(producer: &TestProducer, mut record: BaseRecord<'_, [u8], [u8], usize>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                assert!(
                    Instant::now() < deadline,
                    "producer queue stayed full for 60 s"
                );
                record = returned;
                producer.poll(Duration::from_millis(10));
            }
            Err((error, _)) => panic!("enqueueing a message failed locally: {error}"),
        }
    }
}

/// A record with a key and value, addressed by `id` in the delivery reports.
pub fn record<'a>(
    topic: &'a str,
    id: usize,
    key: &'a [u8],
    value: &'a [u8],
) -> BaseRecord<'a, [u8], [u8], usize> {
    BaseRecord::with_opaque_to(topic, id)
        .key(key)
        .payload(value)
}

/// How many delivery reports arrived and were not yet taken by [`wait_for_deliveries`].
pub fn pending_delivery_reports(producer: &TestProducer) -> usize {
    producer
        .context()
        .deliveries
        .lock()
        .unwrap_or_else(|poison| poison.into_inner())
        .len()
}

/// Flushes (bounded) and returns the delivery reports received since the last call.
/// Panics if fewer than `expected` reports arrived.
pub fn wait_for_deliveries(
    producer: &TestProducer,
    expected: usize,
    timeout: Duration,
) -> Vec<Delivery> {
    let deadline = Instant::now() + timeout;
    let _ = producer.flush(timeout);
    loop {
        let count = producer.context().deliveries.lock().unwrap().len();
        if count >= expected || Instant::now() >= deadline {
            break;
        }
        producer.poll(Duration::from_millis(50));
    }
    let deliveries = std::mem::take(&mut *producer.context().deliveries.lock().unwrap());
    assert!(
        deliveries.len() >= expected,
        "only {} of {expected} delivery reports arrived within {timeout:?}; \
         in flight: {}",
        deliveries.len(),
        producer.in_flight_count()
    );
    deliveries
}

/// Like [`wait_for_deliveries`], and asserts that every delivery succeeded; returns
/// (partition, offset) indexed by message id (ids must be `0..expected`).
pub fn wait_for_successful_deliveries(
    producer: &TestProducer,
    expected: usize,
    timeout: Duration,
) -> Vec<(i32, i64)> {
    let deliveries = wait_for_deliveries(producer, expected, timeout);
    let failures: Vec<&Delivery> = deliveries.iter().filter(|d| d.outcome.is_err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} deliveries failed; first failures: {:?}",
        failures.len(),
        deliveries.len(),
        &failures[..failures.len().min(5)]
    );
    let mut placed = vec![(-1, -1); expected];
    let mut seen = HashSet::new();
    for delivery in &deliveries {
        assert!(
            delivery.id < expected,
            "unexpected delivery id {}",
            delivery.id
        );
        assert!(
            seen.insert(delivery.id),
            "two delivery reports for id {}",
            delivery.id
        );
        placed[delivery.id] = delivery.outcome.clone().expect("checked above");
    }
    placed
}

/// Produces `count` messages (`key-<i>` / `value-<i>`, ids 0..count) to one partition and
/// waits until all are acknowledged. Returns their offsets.
pub fn produce_simple(bootstrap: &str, topic: &str, partition: i32, count: usize) -> Vec<i64> {
    let producer = producer(bootstrap, &[]);
    for id in 0..count {
        let key = format!("key-{id}");
        let value = format!("value-{id}");
        send(
            &producer,
            record(topic, id, key.as_bytes(), value.as_bytes()).partition(partition),
        );
    }
    wait_for_successful_deliveries(&producer, count, Duration::from_secs(60))
        .into_iter()
        .map(|(delivered_partition, offset)| {
            assert_eq!(delivered_partition, partition);
            offset
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Consuming
// ---------------------------------------------------------------------------------------

/// One consumed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    /// CreateTime / LogAppendTime in ms, if the record had one.
    pub timestamp_ms: Option<i64>,
    /// Whether the timestamp is the broker's LogAppendTime rather than CreateTime.
    pub log_append_time: bool,
}

impl Consumed {
    /// Copies what the tests look at out of a message borrowed from a consumer.
    pub fn from_message(message: &impl Message) -> Consumed {
        Consumed {
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
            timestamp_ms: message.timestamp().to_millis(),
            log_append_time: matches!(message.timestamp(), Timestamp::LogAppendTime(_)),
        }
    }
}

/// A consumer for `assign()` only: a group id (librdkafka requires one for assign) but no
/// subscribe, no commits.
pub fn assign_consumer(bootstrap: &str, extra: &[(&str, &str)]) -> TestConsumer {
    let mut config = client_config(bootstrap, "corelog-test-consumer");
    config
        .set("group.id", CONSUMER_GROUP_ID)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "error");
    for (key, value) in extra {
        config.set(*key, *value);
    }
    config
        .create_with_context(TestContext)
        .expect("create consumer")
}

/// Assigns partitions `0..partitions` of `topic` from the beginning.
pub fn assign_from_beginning(consumer: &TestConsumer, topic: &str, partitions: i32) {
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .expect("add partition to assignment");
    }
    consumer.assign(&assignment).expect("assign partitions");
}

/// Reads partitions `0..partitions` of `topic` from the beginning until at least
/// `expected_count` records arrived and every partition reported end-of-partition after
/// its last record (so duplicates beyond the expected count are seen too), or until
/// `timeout`. Returns records in arrival order; the caller asserts on the count.
pub fn consume_all(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    expected_count: usize,
    timeout: Duration,
) -> Vec<Consumed> {
    let consumer = assign_consumer(bootstrap, &[]);
    assign_from_beginning(&consumer, topic, partitions);
    let records = consume_from(&consumer, partitions, expected_count, timeout);
    // Dropping an assign-only consumer closes it; nothing to commit.
    drop(consumer);
    records
}

/// The polling half of [`consume_all`], for an already-assigned consumer.
pub fn consume_from(
    consumer: &TestConsumer,
    partitions: i32,
    expected_count: usize,
    timeout: Duration,
) -> Vec<Consumed> {
    let deadline = Instant::now() + timeout;
    let mut records = Vec::with_capacity(expected_count);
    let mut at_end = vec![false; partitions as usize];
    let mut errors: Vec<String> = Vec::new();
    while Instant::now() < deadline {
        if records.len() >= expected_count && at_end.iter().all(|end| *end) {
            break;
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(message)) => {
                at_end[message.partition() as usize] = false;
                records.push(Consumed::from_message(&message));
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                if let Some(end) = at_end.get_mut(partition as usize) {
                    *end = true;
                }
            }
            Some(Err(error)) if errors.len() < 20 => errors.push(error.to_string()),
            Some(Err(_)) => {}
        }
    }
    if records.len() < expected_count && !errors.is_empty() {
        eprintln!("consumer errors seen while consuming: {errors:#?}");
    }
    records
}

// ---------------------------------------------------------------------------------------
// Consumer groups
// ---------------------------------------------------------------------------------------

/// Settings for a consumer in `group_id` (shared with the harness's debug switch): starts
/// from the beginning where the group has no committed offset, and commits only when told
/// (callers that want auto-commit set `enable.auto.commit` themselves).
pub fn group_consumer_config(bootstrap: &str, group_id: &str, client_id: &str) -> ClientConfig {
    let mut config = client_config(bootstrap, client_id);
    config
        .set("group.id", group_id)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false");
    config
}

/// DeleteGroups for `groups`: per group name, `Ok` or the group's error code.
pub fn delete_groups(
    bootstrap: &str,
    groups: &[&str],
) -> BTreeMap<String, Result<(), RDKafkaErrorCode>> {
    let admin = admin(bootstrap);
    let results = futures::executor::block_on(admin.delete_groups(groups, &admin_options()))
        .unwrap_or_else(|error| panic!("DeleteGroups request for {groups:?} failed: {error}"));
    assert_eq!(results.len(), groups.len(), "one result per deleted group");
    results
        .into_iter()
        .map(|result| match result {
            Ok(group) => (group, Ok(())),
            Err((group, code)) => (group, Err(code)),
        })
        .collect()
}

/// `(low, high)` watermarks via ListOffsets earliest/latest.
pub fn watermarks(bootstrap: &str, topic: &str, partition: i32) -> (i64, i64) {
    let consumer = metadata_consumer(bootstrap);
    consumer
        .fetch_watermarks(topic, partition, ADMIN_TIMEOUT)
        .unwrap_or_else(|error| panic!("ListOffsets for {topic}/{partition} failed: {error}"))
}

/// Produces one message to a fresh topic and reads it back: the broker is still serving.
pub fn assert_round_trip(bootstrap: &str) {
    let topic = unique_topic("round-trip");
    create_topic(bootstrap, &topic, 1);
    let offsets = produce_simple(bootstrap, &topic, 0, 3);
    assert_eq!(offsets, vec![0, 1, 2]);
    let records = consume_all(bootstrap, &topic, 1, 3, Duration::from_secs(30));
    let values: Vec<Option<Vec<u8>>> = records.into_iter().map(|r| r.value).collect();
    assert_eq!(
        values,
        vec![
            Some(b"value-0".to_vec()),
            Some(b"value-1".to_vec()),
            Some(b"value-2".to_vec())
        ]
    );
}
