//! A producer of numbered records that runs while nodes are killed, paused or cut off: an
//! idempotent acks=all librdkafka producer on its own thread, enqueueing records round robin
//! over the partitions and keeping every delivery report with the time it arrived. Tests
//! wait on its acknowledgements ([`wait_for_more_acks`], [`wait_until_reports`]) to know
//! that writes go on after a failover, and check what they read back against them
//! (`read_back`). The backlog it may build while a failover stalls acknowledgements is
//! bounded ([`NUMBERED_IN_FLIGHT_MAX`]).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::ClientContext;

use super::FAILOVER_TIMEOUT;
use crate::common::{poll_until, TestContext};

/// One delivery report of the numbered stream. Message `id` goes to partition
/// `id % partitions` as that partition's number `id / partitions`.
#[derive(Debug, Clone)]
pub(crate) struct Report {
    pub(super) id: usize,
    /// The acknowledged offset, or why the message was given up.
    pub(super) outcome: Result<i64, KafkaError>,
    pub(super) at: Instant,
}

/// Collects delivery reports with the time each arrived.
#[derive(Default)]
struct ReportLog {
    reports: Mutex<Vec<Report>>,
}

impl ReportLog {
    fn snapshot(&self) -> Vec<Report> {
        self.reports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[derive(Clone, Default)]
struct ReportContext(Arc<ReportLog>);

impl ClientContext for ReportContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        TestContext.log(level, facility, message);
    }
}

impl ProducerContext for ReportContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, id: usize) {
        let outcome = match result {
            Ok(message) => Ok(message.offset()),
            Err((error, _)) => Err(error.clone()),
        };
        let report = Report {
            id,
            outcome,
            at: Instant::now(),
        };
        self.0
            .reports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(report);
    }
}

/// The value of a numbered record: its partition and number, zero-padded so a reader can
/// check order by eye.
fn numbered_value(partition: i32, number: usize) -> String {
    format!("p{partition}-n{number:08}")
}

/// The number in a value written by [`numbered_value`] for `partition`.
pub(crate) fn number_of(partition: i32, value: &str) -> usize {
    value
        .strip_prefix(&format!("p{partition}-n"))
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("partition {partition} holds a foreign value {value:?}"))
}

/// Paces the numbered stream: messages enqueued per round of [`NUMBERED_ROUND`], and how
/// many may wait for a report before the producer stops enqueueing (a failover stalls
/// acknowledgements for seconds; the backlog stays bounded).
const NUMBERED_PER_ROUND: usize = 10;
const NUMBERED_ROUND: Duration = Duration::from_millis(10);
const NUMBERED_IN_FLIGHT_MAX: i32 = 20_000;
/// How long the producer may take to deliver (or give up) its backlog once told to stop.
const NUMBERED_DRAIN_TIMEOUT: Duration = Duration::from_secs(90);

/// Settings for a stream that must get past a hung (not dead) leader: a request to a
/// stopped node gets neither an answer nor a reset, so librdkafka gives it up only after
/// request.timeout.ms (Produce, 30 s by default) or socket.timeout.ms (Metadata and the
/// rest, 60 s), and only then asks where the partition went.
pub(crate) const HUNG_LEADER_PRODUCER: &[(&str, &str)] = &[
    ("request.timeout.ms", "5000"),
    ("socket.timeout.ms", "5000"),
    ("topic.metadata.refresh.interval.ms", "1000"),
];

/// An idempotent acks=all producer on its own thread, enqueueing numbered records round
/// robin over the partitions until told to stop.
pub(crate) struct NumberedStream {
    pub(super) partitions: i32,
    reports: Arc<ReportLog>,
    /// How many messages were enqueued (ids `0..enqueued`).
    enqueued: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    /// `None` once [`NumberedStream::finish`] joined it.
    thread: Option<thread::JoinHandle<Option<String>>>,
}

impl NumberedStream {
    pub(crate) fn start(bootstrap: &str, topic: &str, partitions: i32) -> NumberedStream {
        NumberedStream::start_with(bootstrap, topic, partitions, &[])
    }

    /// [`NumberedStream::start`] with `extra` producer settings, which win.
    pub(crate) fn start_with(
        bootstrap: &str,
        topic: &str,
        partitions: i32,
        extra: &[(&str, &str)],
    ) -> NumberedStream {
        let context = ReportContext::default();
        let reports = Arc::clone(&context.0);
        let mut config = rdkafka::config::ClientConfig::new();
        config
            .set("bootstrap.servers", bootstrap)
            .set("client.id", "corelog-test-numbered")
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "120000")
            .set("queue.buffering.max.messages", "100000");
        for (key, value) in extra {
            config.set(*key, *value);
        }
        let producer: BaseProducer<ReportContext> = config
            .create_with_context(context)
            .expect("create idempotent producer");
        let enqueued = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let topic = topic.to_string();
        let thread = {
            let (enqueued, stop) = (Arc::clone(&enqueued), Arc::clone(&stop));
            thread::spawn(move || {
                run_numbered(&producer, &topic, partitions, &enqueued, &stop);
                // A fatal idempotence error (librdkafka gives up the producer) is a finding.
                producer
                    .client()
                    .fatal_error()
                    .map(|(code, text)| format!("{code:?}: {text}"))
            })
        };
        NumberedStream {
            partitions,
            reports,
            enqueued,
            stop,
            thread: Some(thread),
        }
    }

    /// How many messages were enqueued so far: every id from here on is sent after now.
    pub(crate) fn enqueued(&self) -> usize {
        self.enqueued.load(Ordering::Relaxed)
    }

    /// Stops enqueueing, waits (bounded) for every report, and returns them by id with
    /// librdkafka's fatal error, if any.
    pub(crate) fn finish(mut self) -> (Vec<Report>, Option<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread.take().expect("finished once");
        let fatal = thread.join().expect("numbered producer thread");
        let enqueued = self.enqueued.load(Ordering::Relaxed);
        let mut reports = self.reports.snapshot();
        reports.sort_by_key(|report| report.id);
        let ids: Vec<usize> = reports.iter().map(|report| report.id).collect();
        assert_eq!(
            ids,
            (0..enqueued).collect::<Vec<_>>(),
            "one delivery report per enqueued message within {NUMBERED_DRAIN_TIMEOUT:?}"
        );
        (reports, fatal)
    }
}

impl Drop for NumberedStream {
    /// A test that panics mid-way stops the producer thread too (it drains, bounded, and
    /// exits on its own), so it does not keep producing into the next test's output.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The producer thread's loop: enqueue, serve delivery reports, then drain (bounded).
fn run_numbered(
    producer: &BaseProducer<ReportContext>,
    topic: &str,
    partitions: i32,
    enqueued: &AtomicUsize,
    stop: &AtomicBool,
) {
    let mut next_id = 0usize;
    while !stop.load(Ordering::Relaxed) {
        if producer.in_flight_count() < NUMBERED_IN_FLIGHT_MAX {
            for _ in 0..NUMBERED_PER_ROUND {
                let partition = (next_id % partitions as usize) as i32;
                let value = numbered_value(partition, next_id / partitions as usize);
                let message = BaseRecord::<[u8], [u8], usize>::with_opaque_to(topic, next_id)
                    .partition(partition)
                    .payload(value.as_bytes());
                if let Err((error, _)) = producer.send(message) {
                    panic!("enqueueing numbered message {next_id} failed locally: {error}");
                }
                next_id += 1;
                enqueued.store(next_id, Ordering::Relaxed);
            }
        }
        producer.poll(NUMBERED_ROUND);
    }
    let deadline = Instant::now() + NUMBERED_DRAIN_TIMEOUT;
    while producer.in_flight_count() > 0 && Instant::now() < deadline {
        producer.poll(Duration::from_millis(50));
    }
}

/// How many more acknowledgements [`wait_for_more_acks`] waits for (each phase of a
/// failover test): a few hundred milliseconds of the stream.
const MORE_ACKS: usize = 200;

/// Waits until [`MORE_ACKS`] more records of the stream are acknowledged than now.
pub(crate) fn wait_for_more_acks(stream: &NumberedStream, what: &str) {
    let acked_before = successes(&stream.reports.snapshot());
    let what = format!("{what}: {MORE_ACKS} more acknowledgements than {acked_before}");
    wait_until_reports(stream, FAILOVER_TIMEOUT, &what, |reports| {
        successes(reports) >= acked_before + MORE_ACKS
    });
}

fn successes(reports: &[Report]) -> usize {
    reports
        .iter()
        .filter(|report| report.outcome.is_ok())
        .count()
}

/// When the first message of `partition` with an id of at least `first_id` was
/// acknowledged.
pub(crate) fn first_ack_after(
    reports: &[Report],
    partition: i32,
    partitions: i32,
    first_id: usize,
) -> Option<Instant> {
    reports
        .iter()
        .filter(|report| {
            report.id >= first_id
                && report.id % partitions as usize == partition as usize
                && report.outcome.is_ok()
        })
        .map(|report| report.at)
        .min()
}

/// Polls the stream's reports until `accept` takes them; returns them.
pub(crate) fn wait_until_reports(
    stream: &NumberedStream,
    timeout: Duration,
    what: &str,
    accept: impl Fn(&[Report]) -> bool,
) -> Vec<Report> {
    let what = format!(
        "{what} (the stream enqueued {} so far)",
        stream.enqueued.load(Ordering::Relaxed)
    );
    poll_until(timeout, &what, || {
        let reports = stream.reports.snapshot();
        accept(&reports).then_some(reports)
    })
}
