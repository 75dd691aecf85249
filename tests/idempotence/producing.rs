//! An idempotent librdkafka producer (`enable.idempotence=true`) that numbers what it
//! sends per partition, records every delivery report and librdkafka's own statistics
//! (messages transmitted, disconnects), and the reader that checks a topic holds every
//! number exactly once, in order.
//!
//! Each message's value is its sequence number within its partition, written as decimal
//! text, and partitions start empty, so a message numbered `n` must sit at offset `n`:
//! one check catches a duplicate, a reordering and a gap alike.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::statistics::Statistics;
use rdkafka::ClientContext;

use crate::common::{assign_consumer, assign_from_beginning, consume_from, TestContext};

/// librdkafka's settings for an idempotent producer that sends many small batches and
/// reconnects quickly after the broker hangs up (the defaults back off up to 10 s).
const IDEMPOTENT_SETTINGS: &[(&str, &str)] = &[
    ("enable.idempotence", "true"),
    ("acks", "all"),
    ("max.in.flight.requests.per.connection", "5"),
    ("retries", "1000000"),
    ("linger.ms", "1"),
    ("batch.num.messages", "50"),
    ("queue.buffering.max.messages", "200000"),
    ("message.timeout.ms", "60000"),
    ("retry.backoff.ms", "20"),
    ("retry.backoff.max.ms", "200"),
    ("reconnect.backoff.ms", "10"),
    ("reconnect.backoff.max.ms", "20"),
    ("statistics.interval.ms", "100"),
];

/// How long a test waits for every delivery report of what it sent.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(45);

/// Where a message landed (`partition, offset`), or why it did not.
type Outcome = Result<(i32, i64), KafkaError>;

/// Delivery reports by message id, and librdkafka's running totals.
#[derive(Default)]
pub struct Recorder {
    reports: Mutex<BTreeMap<usize, Vec<Outcome>>>,
    /// Messages librdkafka put into Produce requests, each time it did (`txmsgs`: a
    /// message whose request was lost counts again when it is resent).
    transmitted: AtomicU64,
    /// Connections librdkafka saw close (sum of `disconnects` over brokers).
    disconnects: AtomicU64,
    /// Statistics callbacks so far, to wait for a fresh one.
    statistics_seen: AtomicU64,
}

impl ClientContext for Recorder {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        TestContext.log(level, facility, message);
    }

    fn stats(&self, statistics: Statistics) {
        let disconnects = statistics
            .brokers
            .values()
            .map(|broker| broker.disconnects.unwrap_or(0).max(0) as u64)
            .sum();
        let transmitted = u64::try_from(statistics.txmsgs).unwrap_or(0);
        self.transmitted.store(transmitted, Ordering::Relaxed);
        self.disconnects.store(disconnects, Ordering::Relaxed);
        self.statistics_seen.fetch_add(1, Ordering::Relaxed);
    }
}

impl ProducerContext for Recorder {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, id: usize) {
        let outcome = match result {
            Ok(message) => Ok((message.partition(), message.offset())),
            Err((error, _)) => Err(error.clone()),
        };
        self.reports
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .entry(id)
            .or_default()
            .push(outcome);
    }
}

/// What librdkafka's statistics said about the connection's troubles.
#[derive(Debug, Clone, Copy)]
pub struct Troubles {
    /// Messages transmitted more than once (resent after a lost answer).
    pub resent_messages: u64,
    pub disconnects: u64,
}

/// An idempotent producer writing numbered messages round-robin over `partitions`.
pub struct SequencedProducer {
    producer: BaseProducer<Recorder>,
    topic: String,
    /// `(partition, sequence number)` of every message sent, indexed by message id.
    sent: Vec<(i32, u64)>,
    /// The next sequence number per partition.
    next_sequence: Vec<u64>,
}

impl SequencedProducer {
    pub fn new(bootstrap: &str, topic: &str, partitions: i32) -> SequencedProducer {
        let mut config = rdkafka::ClientConfig::new();
        config
            .set("bootstrap.servers", bootstrap)
            .set("client.id", "corelog-test-idempotent");
        for (key, value) in IDEMPOTENT_SETTINGS {
            config.set(*key, *value);
        }
        if let Ok(debug) = std::env::var(crate::common::CLIENT_DEBUG_ENV) {
            config
                .set("debug", debug)
                .set_log_level(RDKafkaLogLevel::Debug);
        }
        let producer = config
            .create_with_context(Recorder::default())
            .expect("create idempotent producer");
        SequencedProducer {
            producer,
            topic: topic.to_string(),
            sent: Vec::new(),
            next_sequence: vec![0; usize::try_from(partitions).expect("partitions > 0")],
        }
    }

    /// Enqueues `count` more messages, round-robin over the partitions.
    pub fn send(&mut self, count: usize) {
        let partitions = self.next_sequence.len();
        for _ in 0..count {
            let id = self.sent.len();
            let partition = id % partitions;
            let sequence = self.next_sequence[partition];
            self.next_sequence[partition] += 1;
            let partition = i32::try_from(partition).expect("few partitions");
            self.sent.push((partition, sequence));
            let value = sequence.to_string();
            self.enqueue(
                BaseRecord::with_opaque_to(&self.topic, id)
                    .partition(partition)
                    .payload(value.as_bytes()),
            );
        }
    }

    /// `producer.send`, polling (bounded) while librdkafka's local queue is full.
    fn enqueue(&self, mut record: BaseRecord<'_, (), [u8], usize>) {
        let deadline = Instant::now() + DELIVERY_TIMEOUT;
        loop {
            match self.producer.send(record) {
                Ok(()) => return,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    assert!(Instant::now() < deadline, "producer queue stayed full");
                    record = returned;
                    self.producer.poll(Duration::from_millis(10));
                }
                Err((error, _)) => panic!("enqueueing a message failed locally: {error}"),
            }
        }
    }

    /// Serves delivery reports for up to `timeout`, until at least `count` messages have one.
    pub fn wait_for_reports(&self, count: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let reported = self.reports_received();
            if reported >= count || Instant::now() >= deadline {
                return reported;
            }
            self.producer.poll(Duration::from_millis(10));
        }
    }

    fn reports_received(&self) -> usize {
        self.producer
            .context()
            .reports
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .len()
    }

    /// Waits for a delivery report for every message sent so far and asserts each one
    /// arrived once, succeeded, and put message `n` of a partition at offset `n`: the
    /// offset a retried batch is acknowledged with is the one it was first written at.
    pub fn assert_all_delivered_in_order(&self) {
        let _ = self.producer.flush(DELIVERY_TIMEOUT);
        let reported = self.wait_for_reports(self.sent.len(), Duration::from_secs(5));
        let reports = self
            .producer
            .context()
            .reports
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let mut problems = Vec::new();
        for (id, (partition, sequence)) in self.sent.iter().enumerate() {
            let expected = (
                *partition,
                i64::try_from(*sequence).expect("small sequence"),
            );
            match reports.get(&id).map(Vec::as_slice) {
                Some([Ok(placed)]) if *placed == expected => {}
                other => problems.push(format!("message {id} {expected:?}: {other:?}")),
            }
        }
        assert!(
            problems.is_empty(),
            "{} of {} messages not delivered once at the expected (partition, offset) \
             ({reported} reported, {} in flight); first problems: {:#?}",
            problems.len(),
            self.sent.len(),
            self.producer.in_flight_count(),
            &problems[..problems.len().min(10)]
        );
    }

    /// Messages librdkafka has not had a delivery report for yet.
    pub fn in_flight(&self) -> i32 {
        self.producer.in_flight_count()
    }

    /// The per-partition message counts sent so far.
    pub fn counts(&self) -> Vec<u64> {
        self.next_sequence.clone()
    }

    /// librdkafka's totals from a statistics report taken after this call.
    pub fn troubles(&self) -> Troubles {
        let context = self.producer.context();
        let seen = context.statistics_seen.load(Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(5);
        while context.statistics_seen.load(Ordering::Relaxed) < seen + 2
            && Instant::now() < deadline
        {
            self.producer.poll(Duration::from_millis(20));
        }
        let transmitted = context.transmitted.load(Ordering::Relaxed);
        Troubles {
            resent_messages: transmitted.saturating_sub(self.sent.len() as u64),
            disconnects: context.disconnects.load(Ordering::Relaxed),
        }
    }
}

/// Reads every partition of `topic` from the beginning with `isolation.level`
/// read_uncommitted and asserts partition `p` holds exactly `0..counts[p]`, message `n`
/// at offset `n`.
pub fn assert_topic_holds_exactly(bootstrap: &str, topic: &str, counts: &[u64]) {
    let partitions = i32::try_from(counts.len()).expect("few partitions");
    let total: u64 = counts.iter().sum();
    let consumer = assign_consumer(bootstrap, &[("isolation.level", "read_uncommitted")]);
    assign_from_beginning(&consumer, topic, partitions);
    let records = consume_from(
        &consumer,
        partitions,
        usize::try_from(total).expect("fits usize"),
        Duration::from_secs(30),
    );
    let mut by_partition: Vec<Vec<(i64, String)>> = vec![Vec::new(); counts.len()];
    for record in records {
        let value = record
            .value
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default();
        by_partition[usize::try_from(record.partition).expect("partition >= 0")]
            .push((record.offset, value));
    }
    for (partition, (read, count)) in by_partition.iter().zip(counts).enumerate() {
        let expected: Vec<(i64, String)> = (0..*count)
            .map(|sequence| (sequence as i64, sequence.to_string()))
            .collect();
        if *read != expected {
            let first_difference = read
                .iter()
                .zip(&expected)
                .position(|(got, want)| got != want)
                .unwrap_or(read.len().min(expected.len()));
            let around = first_difference.saturating_sub(2);
            panic!(
                "partition {partition}: read {} records, expected {count}; first difference \
                 at index {first_difference}: read {:?}, expected {:?}",
                read.len(),
                &read[around..read.len().min(first_difference + 3)],
                &expected[around.min(expected.len())..expected.len().min(first_difference + 3)]
            );
        }
    }
}
