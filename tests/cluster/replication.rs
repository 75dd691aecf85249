//! Partition replication (issue 12) as clients see it when nodes crash: with three replicas
//! per partition, an idempotent acks=all producer keeps every acknowledged record, once and
//! in order, through repeated `kill -9` of the partition leader (the controller elects a
//! live in-sync replica, the restarted node truncates, catches up and rejoins the ISR);
//! min.insync.replicas refuses acks=all while the ISR is too small and accepts it again
//! once the restarted follower is back; a consumer group keeps consuming, and keeps the
//! offsets it committed, when its coordinator's node dies (the coordinator moves with the
//! leadership of the group's `__consumer_offsets` partition). A leader that hangs (SIGSTOP)
//! rather than dies is replaced the same way; when it resumes it acknowledges no acks=all
//! write, cuts what it appended that its successor lacks, and follows. kafka-python's
//! idempotent producer (tests/python/replicated_produce.py) gets the same guarantee as
//! librdkafka's through a leader kill.
//!
//! After each scenario every replica of the topic holds the same batches below the high
//! watermark (`corelog debug dump-log --up-to`, [`assert_replicas_identical`]).
//!
//! The measured times (kill to the first acknowledged write, restart to ISR rejoin) are
//! printed, never asserted beyond generous bounds: tests do not assert speed.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kafka_protocol::messages::FindCoordinatorRequest;
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::codec;
use crate::common::cluster::Cluster;
use crate::common::wire::{
    connect, frame, parse_produce_response_v3, produce_request_v3, read_frame, record_batch_v2,
};
use crate::common::{
    admin, assign_consumer, assign_from_beginning, group_consumer_config, metadata_consumer,
    poll_until, producer, record, send, wait_for_deliveries, wait_for_successful_deliveries,
    TestConsumer, TestContext, ADMIN_TIMEOUT,
};
use crate::{
    agreed_controller, read_positions, serial, three_voters, three_voters_with, Positions,
    DATA_TIMEOUT,
};

/// Bound on a Metadata round trip to one node; a dead node costs the caller this much.
const METADATA_TIMEOUT: Duration = Duration::from_secs(3);
/// How long after a leader's `kill -9` the survivors may take to show a new leader and to
/// acknowledge a write: its broker session (3 s) runs out, the controller elects an ISR
/// member, and librdkafka finds it through Metadata. Ten times what a quiet host needs.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a restarted node may take to catch up and be back in every partition's ISR.
const REJOIN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the ISR may take to drop a killed follower (fencing after 3 s, or the lag
/// time the test sets).
const ISR_SHRINK_TIMEOUT: Duration = Duration::from_secs(30);
/// How many partitions `__consumer_offsets` has (`--offsets-topic-partitions` default).
const OFFSETS_TOPIC_PARTITIONS: i32 = 50;
const OFFSETS_TOPIC: &str = "__consumer_offsets";

// ---------------------------------------------------------------------------------------
// What Metadata says about replicas
// ---------------------------------------------------------------------------------------

/// One partition as a Metadata answer describes it; replica lists sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ReplicaState {
    pub(super) leader: i32,
    pub(super) replicas: Vec<i32>,
    pub(super) isr: Vec<i32>,
}

pub(super) type Replicas = BTreeMap<i32, ReplicaState>;

/// Partition -> replicas of `topic` as the node at `bootstrap` answers Metadata; `None` when
/// it does not answer in time or reports the topic with an error.
pub(super) fn replica_states(bootstrap: &str, topic: &str) -> Option<Replicas> {
    let consumer = metadata_consumer(bootstrap);
    let metadata = consumer
        .fetch_metadata(Some(topic), METADATA_TIMEOUT)
        .ok()?;
    let entry = metadata
        .topics()
        .iter()
        .find(|entry| entry.name() == topic)?;
    if entry.error().is_some() || entry.partitions().is_empty() {
        return None;
    }
    let sorted = |ids: &[i32]| {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids
    };
    Some(
        entry
            .partitions()
            .iter()
            .map(|partition| {
                let state = ReplicaState {
                    leader: partition.leader(),
                    replicas: sorted(partition.replicas()),
                    isr: sorted(partition.isr()),
                };
                (partition.id(), state)
            })
            .collect(),
    )
}

/// Polls every node of `node_ids` until each one's view of `topic` satisfies `accept`;
/// returns the first node's view. Prints each new view, so a failure leaves a trail.
pub(super) fn wait_for_replicas(
    cluster: &Cluster,
    node_ids: &[i32],
    topic: &str,
    timeout: Duration,
    what: &str,
    accept: impl Fn(&Replicas) -> bool,
) -> Replicas {
    let mut last_views: BTreeMap<i32, Option<Replicas>> = BTreeMap::new();
    let deadline = Instant::now() + timeout;
    loop {
        let mut all_accept = true;
        for node_id in node_ids {
            let view = replica_states(&cluster.bootstrap(*node_id), topic);
            if last_views.get(node_id) != Some(&view) {
                eprintln!("node {node_id} shows {topic}: {view:?}");
            }
            all_accept &= view.as_ref().is_some_and(&accept);
            last_views.insert(*node_id, view);
        }
        if all_accept {
            return last_views[&node_ids[0]]
                .clone()
                .expect("accepted views exist");
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?}: nodes {node_ids:?} never all showed {topic} with \
             {what}; last views (None: no answer): {last_views:#?}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// Whether every partition has a live leader and all of `node_ids` in its ISR.
pub(super) fn isr_holds_all(replicas: &Replicas, node_ids: &[i32]) -> bool {
    replicas
        .values()
        .all(|state| state.leader >= 0 && state.isr == node_ids)
}

/// CreateTopics with `replication_factor` replicas per partition and `configs`; panics on
/// any error.
fn create_replicated_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    replication_factor: i32,
    configs: &[(&str, &str)],
) {
    let admin = admin(bootstrap);
    let options = rdkafka::admin::AdminOptions::new()
        .request_timeout(Some(ADMIN_TIMEOUT))
        .operation_timeout(Some(ADMIN_TIMEOUT));
    let mut new_topic = NewTopic::new(
        topic,
        partitions,
        TopicReplication::Fixed(replication_factor),
    );
    for (key, value) in configs {
        new_topic = new_topic.set(key, value);
    }
    let results = futures::executor::block_on(admin.create_topics([&new_topic], &options))
        .unwrap_or_else(|error| panic!("CreateTopics request for {topic} failed: {error}"));
    if let [Err((_, code))] = results.as_slice() {
        panic!("CreateTopics {topic} (replication factor {replication_factor}): {code:?}");
    }
}

/// Panics if a node's kept log shows a Rust panic (a shard that died while the test went
/// on would otherwise pass unnoticed).
pub(super) fn assert_no_node_panicked(cluster: &Cluster) {
    for node_id in cluster.node_ids() {
        assert!(
            !cluster.log_contains(node_id, "panicked"),
            "node {node_id} panicked:\n{}",
            cluster.recent_log(node_id)
        );
    }
}

/// Every node but `node_id`.
pub(super) fn others(cluster: &Cluster, node_id: i32) -> Vec<i32> {
    let mut node_ids = cluster.node_ids();
    node_ids.retain(|id| *id != node_id);
    node_ids
}

/// Comma-separated bootstrap addresses of `node_ids`.
pub(super) fn bootstrap_of(cluster: &Cluster, node_ids: &[i32]) -> String {
    let addresses: Vec<String> = node_ids.iter().map(|id| cluster.bootstrap(*id)).collect();
    addresses.join(",")
}

// ---------------------------------------------------------------------------------------
// Replicas hold the same batches
// ---------------------------------------------------------------------------------------

/// How long the replicas of a partition may take to hold, on disk, the same batches below
/// the leader's high watermark: a follower that rejoined the ISR a moment ago, or whose
/// writer has not yet written what it fetched, catches up within this.
const REPLICAS_IDENTICAL_TIMEOUT: Duration = Duration::from_secs(20);

/// `corelog debug dump-log <partition dir> --up-to <up_to>`: one line per batch on disk
/// that starts below `up_to` ("offset A..B epoch E crc C records N producer P", " INVALID"
/// appended when the batch does not validate), or why the directory could not be read.
/// The command only reads, so it is safe on a running node's directory.
pub(super) fn dump_log(partition_dir: &Path, up_to: i64) -> Result<Vec<String>, String> {
    let output = Command::new(env!("CARGO_BIN_EXE_corelog"))
        .args(["debug", "dump-log"])
        .arg(partition_dir)
        .args(["--up-to", &up_to.to_string()])
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("cannot run corelog debug dump-log: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "dump-log {} exited with {}: {}",
            partition_dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

/// The last offset B of a dump-log line "offset A..B ...".
pub(super) fn last_offset_of(line: &str) -> Option<i64> {
    let range = line.strip_prefix("offset ")?.split_whitespace().next()?;
    range.split_once("..")?.1.parse().ok()
}

/// One look at every replica of one partition: the leader's high watermark and each
/// replica's batches below it.
struct ReplicaDumps {
    partition: i32,
    leader: i32,
    high_watermark: i64,
    /// Replica -> its dump-log lines below the high watermark, or why they are missing.
    dumps: BTreeMap<i32, Result<Vec<String>, String>>,
}

impl ReplicaDumps {
    /// Asks the first node that answers for the partition's leader and replicas, the
    /// leader for its high watermark (ListOffsets latest), and dumps every replica's
    /// partition directory up to it.
    fn take(cluster: &Cluster, topic: &str, partition: i32) -> Result<ReplicaDumps, String> {
        let state = cluster
            .node_ids()
            .iter()
            .find_map(|node_id| replica_states(&cluster.bootstrap(*node_id), topic))
            .and_then(|replicas| replicas.get(&partition).cloned())
            .ok_or_else(|| format!("no node described {topic}/{partition}"))?;
        if state.leader < 0 {
            return Err(format!("{topic}/{partition} has no leader: {state:?}"));
        }
        let (_, high_watermark) = metadata_consumer(&cluster.bootstrap(state.leader))
            .fetch_watermarks(topic, partition, METADATA_TIMEOUT)
            .map_err(|error| {
                format!(
                    "ListOffsets {topic}/{partition} at its leader {}: {error}",
                    state.leader
                )
            })?;
        let directory = format!("{topic}-{partition}");
        let dumps = state
            .replicas
            .iter()
            .map(|replica| {
                let dump = dump_log(&cluster.data_dir(*replica).join(&directory), high_watermark);
                (*replica, dump)
            })
            .collect();
        Ok(ReplicaDumps {
            partition,
            leader: state.leader,
            high_watermark,
            dumps,
        })
    }

    /// Why the replicas do not (yet) agree below the high watermark, or `None` when they
    /// print the same lines, none invalid, and the leader's last batch ends right below
    /// the high watermark (so nothing below it is missing everywhere).
    fn disagreement(&self) -> Option<String> {
        let (partition, leader, high_watermark) =
            (self.partition, self.leader, self.high_watermark);
        let leader_lines = match self.dumps.get(&leader) {
            Some(Ok(lines)) => lines,
            Some(Err(error)) => return Some(format!("leader {leader}: {error}")),
            None => return Some(format!("the leader {leader} is not a replica")),
        };
        let leader_end = leader_lines.last().and_then(|line| last_offset_of(line));
        if high_watermark > 0 && leader_end != Some(high_watermark - 1) {
            return Some(format!(
                "partition {partition}: the leader {leader}'s batches below the high \
                 watermark {high_watermark} end at {leader_end:?}, not at {}; last lines: {:?}",
                high_watermark - 1,
                &leader_lines[leader_lines.len().saturating_sub(3)..]
            ));
        }
        if let Some(invalid) = leader_lines.iter().find(|line| line.ends_with("INVALID")) {
            return Some(format!(
                "partition {partition}: the leader {leader} holds an invalid batch: {invalid}"
            ));
        }
        for (replica, dump) in &self.dumps {
            let lines = match dump {
                Ok(lines) => lines,
                Err(error) => return Some(format!("replica {replica}: {error}")),
            };
            if lines != leader_lines {
                let index = leader_lines
                    .iter()
                    .zip(lines)
                    .position(|(expected, found)| expected != found)
                    .unwrap_or(leader_lines.len().min(lines.len()));
                return Some(format!(
                    "partition {partition}, below the high watermark {high_watermark}: node \
                     {replica} holds {} batches, the leader {leader} {}; first difference at \
                     batch {index}: leader {:?}, node {replica} {:?}",
                    lines.len(),
                    leader_lines.len(),
                    leader_lines.get(index),
                    lines.get(index)
                ));
            }
        }
        None
    }
}

/// Asserts that every replica of each of partitions `0..partitions` of `topic` holds, on
/// disk, the same batches (offsets, leader epoch, crc, record count, producer id) below
/// the high watermark its leader answers, and at least one batch when that is above 0.
/// Followers may lag a moment, so this retries for [`REPLICAS_IDENTICAL_TIMEOUT`].
pub(super) fn assert_replicas_identical(cluster: &Cluster, topic: &str, partitions: i32) {
    for partition in 0..partitions {
        let deadline = Instant::now() + REPLICAS_IDENTICAL_TIMEOUT;
        loop {
            let problem = match ReplicaDumps::take(cluster, topic, partition) {
                Ok(dumps) => match dumps.disagreement() {
                    None => {
                        let batches = dumps
                            .dumps
                            .values()
                            .next()
                            .map_or(0, |dump| dump.as_ref().map_or(0, Vec::len));
                        eprintln!(
                            "{topic}/{partition}: replicas {:?} hold the same {batches} \
                             batches below the high watermark {}",
                            dumps.dumps.keys().collect::<Vec<_>>(),
                            dumps.high_watermark
                        );
                        break;
                    }
                    Some(problem) => problem,
                },
                Err(problem) => problem,
            };
            assert!(
                Instant::now() < deadline,
                "{topic}: replicas still differ after {REPLICAS_IDENTICAL_TIMEOUT:?}: {problem}"
            );
            thread::sleep(Duration::from_millis(200));
        }
    }
}

// ---------------------------------------------------------------------------------------
// A producer of numbered records that runs while nodes are killed
// ---------------------------------------------------------------------------------------

/// One delivery report of the numbered stream. Message `id` goes to partition
/// `id % partitions` as that partition's number `id / partitions`.
#[derive(Debug, Clone)]
pub(super) struct Report {
    id: usize,
    /// The acknowledged offset, or why the message was given up.
    outcome: Result<i64, KafkaError>,
    at: Instant,
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
pub(super) fn number_of(partition: i32, value: &str) -> usize {
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

/// An idempotent acks=all producer on its own thread, enqueueing numbered records round
/// robin over the partitions until told to stop.
pub(super) struct NumberedStream {
    partitions: i32,
    reports: Arc<ReportLog>,
    /// How many messages were enqueued (ids `0..enqueued`).
    enqueued: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    /// `None` once [`NumberedStream::finish`] joined it.
    thread: Option<thread::JoinHandle<Option<String>>>,
}

impl NumberedStream {
    pub(super) fn start(bootstrap: &str, topic: &str, partitions: i32) -> NumberedStream {
        NumberedStream::start_with(bootstrap, topic, partitions, &[])
    }

    /// [`NumberedStream::start`] with `extra` producer settings, which win.
    pub(super) fn start_with(
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
    pub(super) fn enqueued(&self) -> usize {
        self.enqueued.load(Ordering::Relaxed)
    }

    /// Stops enqueueing, waits (bounded) for every report, and returns them by id with
    /// librdkafka's fatal error, if any.
    pub(super) fn finish(mut self) -> (Vec<Report>, Option<String>) {
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

/// Partition -> (number -> acknowledged offset) of the successful reports.
pub(super) fn acknowledged(
    reports: &[Report],
    partitions: i32,
) -> BTreeMap<i32, BTreeMap<usize, i64>> {
    let mut acked: BTreeMap<i32, BTreeMap<usize, i64>> = BTreeMap::new();
    for report in reports {
        if let Ok(offset) = report.outcome {
            let partition = (report.id % partitions as usize) as i32;
            acked
                .entry(partition)
                .or_default()
                .insert(report.id / partitions as usize, offset);
        }
    }
    acked
}

/// Reads every partition of `topic` from the beginning to its high watermark (asked of
/// `bootstrap` first); partition -> (offset, number) in the order read. Panics on a value
/// that [`numbered_value`] did not write.
pub(super) fn read_numbered(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
) -> BTreeMap<i32, Vec<(i64, usize)>> {
    read_values(bootstrap, topic, partitions)
        .into_iter()
        .map(|(partition, records)| {
            let numbers = records
                .iter()
                .map(|(offset, value)| (*offset, number_of(partition, value)))
                .collect();
            (partition, numbers)
        })
        .collect()
}

/// Reads every partition of `topic` from the beginning to its high watermark (asked of
/// `bootstrap` first); partition -> (offset, value as text) in the order read.
pub(super) fn read_values(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
) -> BTreeMap<i32, Vec<(i64, String)>> {
    let ends: BTreeMap<i32, i64> = (0..partitions)
        .map(|partition| {
            let (_, high) = metadata_consumer(bootstrap)
                .fetch_watermarks(topic, partition, ADMIN_TIMEOUT)
                .unwrap_or_else(|error| panic!("ListOffsets {topic}/{partition}: {error}"));
            (partition, high)
        })
        .collect();
    eprintln!("{topic}: high watermarks {ends:?}");
    let consumer = assign_consumer(bootstrap, &[]);
    assign_from_beginning(&consumer, topic, partitions);
    let mut read: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
    let reached_end = |read: &BTreeMap<i32, Vec<(i64, String)>>| {
        ends.iter().all(|(partition, end)| {
            *end == 0
                || read
                    .get(partition)
                    .and_then(|records| records.last())
                    .is_some_and(|(offset, _)| *offset >= end - 1)
        })
    };
    let deadline = Instant::now() + DATA_TIMEOUT;
    let mut errors = Vec::new();
    while !reached_end(&read) {
        assert!(
            Instant::now() < deadline,
            "{topic}: did not read up to the high watermarks {ends:?} within {DATA_TIMEOUT:?}; \
             read {:?} records per partition; consumer errors: {errors:?}",
            read.iter()
                .map(|(partition, records)| (*partition, records.len()))
                .collect::<BTreeMap<_, _>>()
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let value = String::from_utf8_lossy(message.payload().unwrap_or_default());
                read.entry(message.partition())
                    .or_default()
                    .push((message.offset(), value.into_owned()));
            }
            Some(Err(KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(error)) if errors.len() < 10 => errors.push(error.to_string()),
            Some(Err(_)) => {}
        }
    }
    read
}

/// Checks one partition's log against the acknowledgements: offsets and numbers strictly
/// increase (nothing read twice, nothing reordered), and every acknowledged number is at
/// the offset its delivery report gave. Returns the problems found.
pub(super) fn check_partition(
    partition: i32,
    read: &[(i64, usize)],
    acked: &BTreeMap<usize, i64>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for pair in read.windows(2) {
        let ((offset_a, number_a), (offset_b, number_b)) = (pair[0], pair[1]);
        if offset_b <= offset_a || number_b <= number_a {
            problems.push(format!(
                "partition {partition}: number {number_a} at offset {offset_a} is followed by \
                 number {number_b} at offset {offset_b} (a duplicate or reordering)"
            ));
        }
    }
    let by_offset: BTreeMap<i64, usize> = read.iter().copied().collect();
    let mut missing = Vec::new();
    for (number, offset) in acked {
        match by_offset.get(offset) {
            Some(found) if found == number => {}
            found => missing.push(format!("n{number}@{offset} (read there: {found:?})")),
        }
    }
    if !missing.is_empty() {
        problems.push(format!(
            "partition {partition}: {} of {} acknowledged records are not where their \
             delivery report put them; first: {:?}",
            missing.len(),
            acked.len(),
            &missing[..missing.len().min(10)]
        ));
    }
    problems
}

/// How many more acknowledgements each phase of the leader-kill test waits for: a few
/// hundred milliseconds of the stream.
const MORE_ACKS: usize = 200;

/// What one leader kill took, as the test observed it.
struct Failover {
    victim: i32,
    /// Kill to Metadata on every survivor naming another leader for its partitions.
    elected: Duration,
    /// Kill to the first acknowledgement of a record enqueued after the kill, on the last
    /// of the victim's partitions to get one.
    written: Duration,
    /// Restart (node listening) to the node back in every ISR on every node.
    rejoined: Duration,
}

#[test]
fn acks_all_records_survive_repeated_leader_kills() {
    const PARTITIONS: i32 = 2;
    const KILLS: usize = 3;
    let _serial = serial();
    let mut cluster = three_voters();
    let node_ids = cluster.node_ids();
    let topic = "acks-all-through-leader-kills";
    create_replicated_topic(&cluster.bootstrap(0), topic, PARTITIONS, 3, &[]);
    let initial = wait_for_replicas(
        &cluster,
        &node_ids,
        topic,
        DATA_TIMEOUT,
        "three replicas, all in sync",
        |replicas| replicas.len() == PARTITIONS as usize && isr_holds_all(replicas, &node_ids),
    );
    for (partition, state) in &initial {
        assert_eq!(state.replicas, node_ids, "partition {partition}: {state:?}");
    }

    let stream = NumberedStream::start(&cluster.bootstrap_all(), topic, PARTITIONS);
    let failovers: Vec<Failover> = (1..=KILLS)
        .map(|round| kill_leader_and_restart(&mut cluster, &stream, topic, round))
        .collect();
    wait_for_more_acks(&stream, "writes after the last rejoin");
    let (reports, fatal) = stream.finish();
    assert_eq!(
        fatal, None,
        "librdkafka's idempotent producer hit a fatal error"
    );

    let acked = acknowledged(&reports, PARTITIONS);
    let failures: Vec<String> = reports
        .iter()
        .filter_map(|report| {
            let error = report.outcome.as_ref().err()?;
            Some(format!("{}: {error}", report.id))
        })
        .collect();
    eprintln!(
        "{} records enqueued, {} acknowledged, {} given up (first: {:?})",
        reports.len(),
        acked.values().map(BTreeMap::len).sum::<usize>(),
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    for (index, failover) in failovers.iter().enumerate() {
        eprintln!(
            "failover {}: node {} killed; leader elected in {} ms, first write \
             acknowledged in {} ms, rejoined the ISR {} ms after restart",
            index + 1,
            failover.victim,
            failover.elected.as_millis(),
            failover.written.as_millis(),
            failover.rejoined.as_millis()
        );
    }

    let read = read_numbered(&cluster.bootstrap_all(), topic, PARTITIONS);
    let mut problems = Vec::new();
    for partition in 0..PARTITIONS {
        let partition_acked = acked.get(&partition).cloned().unwrap_or_default();
        assert!(
            !partition_acked.is_empty(),
            "partition {partition}: nothing acknowledged"
        );
        let partition_read = read.get(&partition).map_or(&[][..], Vec::as_slice);
        problems.extend(check_partition(partition, partition_read, &partition_acked));
    }
    assert!(
        problems.is_empty(),
        "{topic} after {KILLS} leader kills:\n{}",
        problems.join("\n")
    );
    assert_replicas_identical(&cluster, topic, PARTITIONS);
    assert_no_node_panicked(&cluster);
}

/// One round of the leader-kill test: with every replica in sync, `kill -9` the leader of
/// partition 0, wait for new leaders and for a write enqueued after the kill to be
/// acknowledged on each partition it led, restart it and wait until it is back in every
/// ISR.
fn kill_leader_and_restart(
    cluster: &mut Cluster,
    stream: &NumberedStream,
    topic: &str,
    round: usize,
) -> Failover {
    let node_ids = cluster.node_ids();
    wait_for_more_acks(stream, &format!("round {round}: writes before the kill"));
    let replicas = wait_for_replicas(
        cluster,
        &node_ids,
        topic,
        REJOIN_TIMEOUT,
        "every replica in sync before the kill",
        |replicas| isr_holds_all(replicas, &node_ids),
    );
    let victim = replicas[&0].leader;
    let led: Vec<i32> = replicas
        .iter()
        .filter(|(_, state)| state.leader == victim)
        .map(|(partition, _)| *partition)
        .collect();

    let enqueued_at_kill = stream.enqueued.load(Ordering::Relaxed);
    cluster.kill9(victim);
    let killed_at = Instant::now();
    let new_leaders = wait_for_replicas(
        cluster,
        &others(cluster, victim),
        topic,
        FAILOVER_TIMEOUT,
        &format!("a leader other than the killed node {victim} for partitions {led:?}"),
        |replicas| {
            led.iter().all(|partition| {
                replicas
                    .get(partition)
                    .is_some_and(|state| state.leader >= 0 && state.leader != victim)
            })
        },
    );
    let elected = killed_at.elapsed();
    // Only a new leader can have acknowledged a record enqueued after the kill.
    let what = format!(
        "round {round}: a record enqueued after the kill of node {victim} acknowledged on \
         each of partitions {led:?}"
    );
    let first_acks = |reports: &[Report]| -> Option<Vec<Instant>> {
        led.iter()
            .map(|partition| {
                first_ack_after(reports, *partition, stream.partitions, enqueued_at_kill)
            })
            .collect()
    };
    let reports = wait_until_reports(stream, FAILOVER_TIMEOUT, &what, |reports| {
        first_acks(reports).is_some()
    });
    let last_first_ack = first_acks(&reports)
        .and_then(|acks| acks.into_iter().max())
        .expect("the victim led partition 0");
    let written = last_first_ack.duration_since(killed_at);
    let leaders: BTreeMap<i32, i32> = led
        .iter()
        .map(|partition| (*partition, new_leaders[partition].leader))
        .collect();
    eprintln!(
        "round {round}: killed leader {victim} of partitions {led:?}; new leaders {leaders:?} \
         in Metadata after {} ms; first acknowledged write after {} ms",
        elected.as_millis(),
        written.as_millis()
    );

    cluster.restart(victim);
    let restarted_at = Instant::now();
    wait_for_replicas(
        cluster,
        &node_ids,
        topic,
        REJOIN_TIMEOUT,
        &format!("the restarted node {victim} back in every ISR"),
        |replicas| isr_holds_all(replicas, &node_ids),
    );
    let rejoined = restarted_at.elapsed();
    eprintln!(
        "round {round}: node {victim} back in every ISR {} ms after its restart",
        rejoined.as_millis()
    );
    Failover {
        victim,
        elected,
        written,
        rejoined,
    }
}

/// Waits until [`MORE_ACKS`] more records of the stream are acknowledged than now.
pub(super) fn wait_for_more_acks(stream: &NumberedStream, what: &str) {
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
pub(super) fn first_ack_after(
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
pub(super) fn wait_until_reports(
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

// ---------------------------------------------------------------------------------------
// A paused leader
// ---------------------------------------------------------------------------------------

/// Settings for a stream that must get past a hung (not dead) leader: a request to a
/// stopped node gets neither an answer nor a reset, so librdkafka gives it up only after
/// request.timeout.ms (Produce, 30 s by default) or socket.timeout.ms (Metadata and the
/// rest, 60 s), and only then asks where the partition went.
pub(super) const HUNG_LEADER_PRODUCER: &[(&str, &str)] = &[
    ("request.timeout.ms", "5000"),
    ("socket.timeout.ms", "5000"),
    ("topic.metadata.refresh.interval.ms", "1000"),
];
/// How long a Produce queued at a paused node may take to be answered once the node
/// resumes: the request's own timeout (10 s, see `produce_request_v3`) and a margin.
const QUEUED_PRODUCE_ANSWER_TIMEOUT: Duration = Duration::from_secs(25);
const QUEUED_PRODUCE_CORRELATION_ID: i32 = 1;
/// Kafka's error code for a Produce sent to a replica that is not the leader.
const NOT_LEADER_OR_FOLLOWER: i16 = 6;

/// CreateTopics with one partition per entry of `assignment`, each placed on exactly those
/// brokers (the first is the preferred leader); panics on any error.
pub(super) fn create_assigned_topic(bootstrap: &str, topic: &str, assignment: &[&[i32]]) {
    let admin = admin(bootstrap);
    let options = rdkafka::admin::AdminOptions::new()
        .request_timeout(Some(ADMIN_TIMEOUT))
        .operation_timeout(Some(ADMIN_TIMEOUT));
    let partitions = i32::try_from(assignment.len()).expect("few partitions");
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Variable(assignment));
    let results = futures::executor::block_on(admin.create_topics([&new_topic], &options))
        .unwrap_or_else(|error| panic!("CreateTopics request for {topic} failed: {error}"));
    if let [Err((_, code))] = results.as_slice() {
        panic!("CreateTopics {topic} with replicas {assignment:?}: {code:?}");
    }
}

/// A Produce of one record to partition 0, written straight to a node's socket without
/// waiting for the answer. Sent to a paused node, it waits in the kernel's socket buffer
/// and is the first thing the node reads when it resumes, before it has heard from anyone
/// that it lost its leadership.
struct QueuedProduce {
    value: &'static str,
    stream: TcpStream,
}

impl QueuedProduce {
    fn send(bootstrap: &str, topic: &str, acks: i16, value: &'static str) -> QueuedProduce {
        let mut stream = connect(bootstrap);
        stream
            .set_read_timeout(Some(QUEUED_PRODUCE_ANSWER_TIMEOUT))
            .expect("set read timeout");
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_millis();
        let now_ms = i64::try_from(now_ms).expect("timestamp fits i64");
        let batch = record_batch_v2(&[(value.as_bytes(), value.as_bytes())], now_ms);
        let request = produce_request_v3(QUEUED_PRODUCE_CORRELATION_ID, topic, 0, acks, &batch);
        stream
            .write_all(&frame(&request))
            .unwrap_or_else(|error| panic!("queue a Produce at {bootstrap}: {error}"));
        QueuedProduce { value, stream }
    }

    /// The answer, `(error code, base offset)`, or why none came within
    /// [`QUEUED_PRODUCE_ANSWER_TIMEOUT`].
    fn answer(mut self) -> Result<(i16, i64), String> {
        let payload = read_frame(&mut self.stream)?;
        Ok(parse_produce_response_v3(
            &payload,
            QUEUED_PRODUCE_CORRELATION_ID,
        ))
    }
}

/// A leader that hangs (SIGSTOP) instead of dying keeps its sockets: the kernel goes on
/// accepting connections and queueing requests for it. Its broker session runs out, the
/// controller makes an in-sync follower the leader, and writes go on there. When it
/// resumes it must not acknowledge an acks=all write (its followers have left it), must
/// cut whatever it appended that its successor lacks, and must come back as a follower in
/// the ISR, with every replica holding the same batches.
#[test]
fn a_paused_leader_is_replaced_and_truncates_what_the_new_leader_lacks() {
    let _serial = serial();
    let mut cluster = three_voters();
    let node_ids = cluster.node_ids();
    let topic = "paused-leader";
    // The node to pause leads the partition but is not the active controller, so the
    // metadata quorum keeps its leader and only the partition fails over.
    let controller = agreed_controller(&cluster, &node_ids, "an active controller", |_| true);
    let victim = others(&cluster, controller)[0];
    let assignment: Vec<i32> = [vec![victim], others(&cluster, victim)].concat();
    create_assigned_topic(&cluster.bootstrap(0), topic, &[&assignment]);
    let replicas = wait_for_replicas(
        &cluster,
        &node_ids,
        topic,
        DATA_TIMEOUT,
        "three replicas, all in sync",
        |replicas| isr_holds_all(replicas, &node_ids),
    );
    assert_eq!(
        replicas[&0].leader, victim,
        "{topic}/0 with replicas {assignment:?} is led by its first replica (Kafka's \
         preferred leader): {replicas:?}"
    );

    let stream =
        NumberedStream::start_with(&cluster.bootstrap_all(), topic, 1, HUNG_LEADER_PRODUCER);
    wait_for_more_acks(&stream, "writes before the pause");
    cluster.pause(victim);
    let paused_at = Instant::now();
    // Read after the pause: every message from here on was sent to a stopped leader or to
    // its successor.
    let enqueued_at_pause = stream.enqueued.load(Ordering::Relaxed);

    let survivors = others(&cluster, victim);
    let new_leader = wait_for_replicas(
        &cluster,
        &survivors,
        topic,
        FAILOVER_TIMEOUT,
        &format!("a leader other than the paused node {victim}"),
        |replicas| {
            replicas
                .get(&0)
                .is_some_and(|state| state.leader >= 0 && state.leader != victim)
        },
    )[&0]
        .leader;
    let elected = paused_at.elapsed();
    // A paused node answers nothing: a record enqueued after the pause can only have been
    // acknowledged by the new leader.
    let what = format!(
        "a record enqueued after the pause of node {victim} acknowledged (by node {new_leader})"
    );
    let reports = wait_until_reports(&stream, FAILOVER_TIMEOUT, &what, |reports| {
        first_ack_after(reports, 0, 1, enqueued_at_pause).is_some()
    });
    let written = first_ack_after(&reports, 0, 1, enqueued_at_pause)
        .expect("waited for it")
        .duration_since(paused_at);
    // A client that only knows the survivors writes acks=all to the new leader.
    let direct = producer(&bootstrap_of(&cluster, &survivors), &[]);
    let direct_value = "acks-all-through-the-survivors";
    let (_, direct_offset) = produce_one(&direct, topic, direct_value).unwrap_or_else(|error| {
        panic!(
            "acks=all through the survivors {survivors:?} while node {victim} is paused: {error}"
        )
    });
    drop(direct);
    eprintln!(
        "paused leader {victim}: node {new_leader} leads in Metadata after {} ms, first \
         acknowledged write after {} ms, acks=all through the survivors at offset \
         {direct_offset}",
        elected.as_millis(),
        written.as_millis()
    );

    // Where the stopped node's own log ends (dump-log only reads): what it holds beyond
    // its successor's start of the new epoch is the tail it will have to cut.
    let paused_end = dump_log(
        &cluster.data_dir(victim).join(format!("{topic}-0")),
        i64::MAX,
    )
    .map(|lines| lines.last().and_then(|line| last_offset_of(line)));
    eprintln!("the paused node {victim}'s log ends at offset {paused_end:?} (last batch)");
    // Written while the node is paused, read by it first thing when it resumes.
    let queued_acks_all = QueuedProduce::send(
        &cluster.bootstrap(victim),
        topic,
        -1,
        "queued-at-the-old-leader-acks-all",
    );
    let queued_acks_one = QueuedProduce::send(
        &cluster.bootstrap(victim),
        topic,
        1,
        "queued-at-the-old-leader-acks-1",
    );
    let queued_values = [queued_acks_all.value, queued_acks_one.value];
    cluster.resume(victim);
    let resumed_at = Instant::now();
    let (acks_all_answer, acks_one_answer) = (queued_acks_all.answer(), queued_acks_one.answer());
    eprintln!(
        "the old leader {victim} answered the Produce requests queued while it was paused \
         ((error code, base offset)): acks=all {acks_all_answer:?}, acks=1 {acks_one_answer:?}"
    );
    match acks_all_answer {
        Ok((0, offset)) => panic!(
            "the old leader {victim} acknowledged an acks=all write at offset {offset} after \
             node {new_leader} had been elected and taken writes: its followers no longer \
             fetch from it, so the write cannot be on the ISR (Kafka answers \
             NOT_LEADER_OR_FOLLOWER, or REQUEST_TIMED_OUT while it still waits)\n{}",
            cluster.recent_log(victim)
        ),
        Ok(_) => {}
        Err(problem) => panic!(
            "the old leader {victim} did not answer an acks=all Produce (timeout 10 s) queued \
             while it was paused within {QUEUED_PRODUCE_ANSWER_TIMEOUT:?} of resuming \
             (Kafka answers every acks=all request, with an error when it loses the \
             leadership or times out): {problem}\n{}",
            cluster.recent_log(victim)
        ),
    }
    // acks=1 may be acknowledged by a leader that does not know yet that it was replaced
    // (Kafka too); the record is then a divergent tail the node must cut.
    let divergent_offset = match acks_one_answer {
        Ok((0, offset)) => Some(offset),
        Ok((code, _)) => {
            assert_eq!(
                code, NOT_LEADER_OR_FOLLOWER,
                "acks=1 at the old leader {victim} after it resumed"
            );
            None
        }
        Err(problem) => panic!(
            "the old leader {victim} did not answer an acks=1 Produce queued while it was \
             paused within {QUEUED_PRODUCE_ANSWER_TIMEOUT:?} of resuming: {problem}"
        ),
    };

    wait_for_replicas(
        &cluster,
        &node_ids,
        topic,
        REJOIN_TIMEOUT,
        &format!("the resumed node {victim} following node {new_leader}, back in the ISR"),
        |replicas| {
            isr_holds_all(replicas, &node_ids)
                && replicas
                    .get(&0)
                    .is_some_and(|state| state.leader == new_leader)
        },
    );
    let rejoined = resumed_at.elapsed();
    wait_for_more_acks(&stream, "writes after the resumed node rejoined");
    let (reports, fatal) = stream.finish();
    assert_eq!(
        fatal, None,
        "librdkafka's idempotent producer hit a fatal error"
    );

    let read = read_values(&cluster.bootstrap_all(), topic, 1)
        .remove(&0)
        .unwrap_or_default();
    for queued in queued_values {
        let found: Vec<i64> = read
            .iter()
            .filter(|(_, value)| value == queued)
            .map(|(offset, _)| *offset)
            .collect();
        assert!(
            found.is_empty(),
            "{topic}: {queued:?}, written by the old leader {victim} after node {new_leader} \
             replaced it, is in the log at {found:?}"
        );
    }
    assert!(
        read.contains(&(direct_offset, direct_value.to_string())),
        "{topic}: {direct_value:?}, acknowledged by node {new_leader} at offset \
         {direct_offset}, is not there"
    );
    let numbered: Vec<(i64, usize)> = read
        .iter()
        .filter(|(_, value)| value != direct_value)
        .map(|(offset, value)| (*offset, number_of(0, value)))
        .collect();
    let acked = acknowledged(&reports, 1).remove(&0).unwrap_or_default();
    assert!(!acked.is_empty(), "{topic}: nothing acknowledged");
    let problems = check_partition(0, &numbered, &acked);
    assert!(
        problems.is_empty(),
        "{topic} after a paused leader:\n{}",
        problems.join("\n")
    );

    let victim_log = cluster.recent_log(victim);
    let truncations: Vec<&str> = victim_log
        .lines()
        .filter(|line| line.contains("truncating to the leader's log"))
        .collect();
    eprintln!(
        "{} records acknowledged; node {victim} back in the ISR {} ms after resuming; the \
         acks=1 record it took after being replaced (a divergent tail) at \
         {divergent_offset:?}; its truncations: {truncations:#?}",
        acked.len(),
        rejoined.as_millis()
    );
    if let Some(offset) = divergent_offset {
        // The identical dumps below cover the divergent offset only below the high watermark.
        let (_, high_watermark) = metadata_consumer(&cluster.bootstrap(new_leader))
            .fetch_watermarks(topic, 0, ADMIN_TIMEOUT)
            .unwrap_or_else(|error| panic!("ListOffsets {topic}/0: {error}"));
        assert!(
            high_watermark > offset,
            "{topic}: high watermark {high_watermark} is not past the divergent offset {offset}"
        );
    }
    assert_replicas_identical(&cluster, topic, 1);
    assert_no_node_panicked(&cluster);
}

// ---------------------------------------------------------------------------------------
// min.insync.replicas
// ---------------------------------------------------------------------------------------

/// Sends one record (key = value) through `producer` and waits for its delivery report.
fn produce_one(
    producer: &crate::common::TestProducer,
    topic: &str,
    value: &str,
) -> Result<(i32, i64), KafkaError> {
    send(
        producer,
        record(topic, 0, value.as_bytes(), value.as_bytes()).partition(0),
    );
    let mut deliveries = wait_for_deliveries(producer, 1, DATA_TIMEOUT);
    assert_eq!(
        deliveries.len(),
        1,
        "one report for one record: {deliveries:?}"
    );
    deliveries.remove(0).outcome
}

/// Notes an acknowledged record (key = value) at its position.
fn insert_acked(expected: &mut Positions, value: String, position: (i32, i64)) {
    let previous = expected.insert(position, (Some(value.clone()), value));
    assert!(
        previous.is_none(),
        "two records acknowledged at {position:?}"
    );
}

#[test]
fn min_insync_replicas_refuses_acks_all_when_isr_too_small() {
    const RECORDS: usize = 10;
    let _serial = serial();
    let mut cluster = three_voters_with(&["--replica-lag-time-max-ms", "2000"]);
    let node_ids = cluster.node_ids();
    let topic = "min-insync-three";
    create_replicated_topic(
        &cluster.bootstrap(0),
        topic,
        1,
        3,
        &[("min.insync.replicas", "3")],
    );
    let replicas = wait_for_replicas(
        &cluster,
        &node_ids,
        topic,
        DATA_TIMEOUT,
        "three replicas, all in sync",
        |replicas| isr_holds_all(replicas, &node_ids),
    );
    let leader = replicas[&0].leader;
    let follower = node_ids
        .iter()
        .copied()
        .find(|id| *id != leader)
        .expect("a follower");
    let survivors = others(&cluster, follower);

    let mut expected = Positions::new();
    let all_acks = producer(&cluster.bootstrap_all(), &[]);
    for id in 0..RECORDS {
        let value = format!("before-{id}");
        send(
            &all_acks,
            record(topic, id, value.as_bytes(), value.as_bytes()).partition(0),
        );
    }
    let placed = wait_for_successful_deliveries(&all_acks, RECORDS, DATA_TIMEOUT);
    for (id, position) in placed.into_iter().enumerate() {
        insert_acked(&mut expected, format!("before-{id}"), position);
    }
    drop(all_acks);

    cluster.kill9(follower);
    let killed_at = Instant::now();
    wait_for_replicas(
        &cluster,
        &survivors,
        topic,
        ISR_SHRINK_TIMEOUT,
        &format!("an ISR of two without the killed follower {follower}"),
        |replicas| {
            replicas
                .get(&0)
                .is_some_and(|state| state.isr == survivors && state.leader == leader)
        },
    );
    eprintln!(
        "ISR shrank to {survivors:?} {} ms after kill -9 of follower {follower}",
        killed_at.elapsed().as_millis()
    );

    // No retries: librdkafka retries NOT_ENOUGH_REPLICAS, which would end in a timeout.
    let survivors_bootstrap = bootstrap_of(&cluster, &survivors);
    let strict = producer(
        &survivors_bootstrap,
        &[
            ("acks", "all"),
            ("retries", "0"),
            ("enable.idempotence", "false"),
        ],
    );
    let refused = produce_one(&strict, topic, "refused-acks-all");
    match &refused {
        Err(KafkaError::MessageProduction(RDKafkaErrorCode::NotEnoughReplicas)) => {}
        other => panic!(
            "acks=all with an ISR of 2 < min.insync.replicas 3 answered {other:?}, expected \
             NotEnoughReplicas"
        ),
    }
    let leader_only = producer(&survivors_bootstrap, &[("acks", "1")]);
    let value = "acks-1-while-isr-2".to_string();
    let position = produce_one(&leader_only, topic, &value)
        .unwrap_or_else(|error| panic!("acks=1 with an ISR of 2 failed: {error}"));
    insert_acked(&mut expected, value, position);

    cluster.restart(follower);
    let restarted_at = Instant::now();
    wait_for_replicas(
        &cluster,
        &node_ids,
        topic,
        REJOIN_TIMEOUT,
        &format!("the restarted follower {follower} back in the ISR"),
        |replicas| isr_holds_all(replicas, &node_ids),
    );
    eprintln!(
        "follower {follower} back in the ISR {} ms after its restart",
        restarted_at.elapsed().as_millis()
    );
    let all_acks = producer(&cluster.bootstrap_all(), &[]);
    for id in 0..RECORDS {
        let value = format!("after-{id}");
        send(
            &all_acks,
            record(topic, id, value.as_bytes(), value.as_bytes()).partition(0),
        );
    }
    let placed = wait_for_successful_deliveries(&all_acks, RECORDS, DATA_TIMEOUT);
    for (id, position) in placed.into_iter().enumerate() {
        insert_acked(&mut expected, format!("after-{id}"), position);
    }
    drop(all_acks);

    let read = read_positions(&cluster.bootstrap_all(), topic, 1, expected.len(), &[]);
    assert_eq!(
        read, expected,
        "{topic}: everything acknowledged, at its offsets, and not the refused record"
    );
    assert_replicas_identical(&cluster, topic, 1);
    assert_no_node_panicked(&cluster);
}

// ---------------------------------------------------------------------------------------
// Group coordinator failover
// ---------------------------------------------------------------------------------------

/// Kafka's `Utils.abs(groupId.hashCode) % partitions` (Java's String.hashCode over UTF-16
/// code units), computed independently of the broker's own.
fn offsets_partition_of(group: &str, partitions: i32) -> i32 {
    let hash = group.encode_utf16().fold(0i32, |hash, unit| {
        hash.wrapping_mul(31).wrapping_add(i32::from(unit))
    });
    let positive = if hash == i32::MIN { 0 } else { hash.abs() };
    positive % partitions
}

/// FindCoordinator (v2, group key) sent to the node at `bootstrap` itself: the node id it
/// names, or the error code / transport problem.
fn find_coordinator(bootstrap: &str, group: &str) -> Result<i32, String> {
    let mut stream = connect(bootstrap);
    let request = FindCoordinatorRequest::default()
        .with_key(StrBytes::from_string(group.to_string()))
        .with_key_type(0);
    let correlation_id = codec::send(&mut stream, 2, &request);
    let answer = codec::receive::<FindCoordinatorRequest>(&mut stream, 2, correlation_id)?;
    match answer.error_code {
        0 => Ok(answer.node_id.0),
        code => Err(format!("error code {code}")),
    }
}

/// Waits until the node at `bootstrap` names a coordinator for `group` that `accept` takes.
fn wait_for_coordinator(
    bootstrap: &str,
    group: &str,
    what: &str,
    accept: impl Fn(i32) -> bool,
) -> i32 {
    let mut answers = Vec::new();
    let deadline = Instant::now() + FAILOVER_TIMEOUT;
    loop {
        let answer = find_coordinator(bootstrap, group);
        if let Ok(node_id) = answer {
            if accept(node_id) {
                return node_id;
            }
        }
        if answers.last() != Some(&answer) {
            answers.push(answer);
        }
        assert!(
            Instant::now() < deadline,
            "{bootstrap} never named {what} as the coordinator of {group} within \
             {FAILOVER_TIMEOUT:?}; answers in order: {answers:?}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// The offset `group` committed for partition 0 of `topic`, asked (OffsetFetch) through a
/// client bootstrapped at `bootstrap` that never joins. Retries errors until
/// [`FAILOVER_TIMEOUT`]; `None` when the coordinator answers that nothing is committed.
fn committed_offset(bootstrap: &str, group: &str, topic: &str) -> Option<i64> {
    let reader: TestConsumer = group_consumer_config(bootstrap, group, "corelog-test-outsider")
        .create_with_context(TestContext)
        .expect("create offsets reader");
    let mut request = TopicPartitionList::new();
    request.add_partition(topic, 0);
    let what = format!("OffsetFetch of {group} through {bootstrap}");
    let mut last_error = String::new();
    poll_until(FAILOVER_TIMEOUT, &what, || {
        match reader.committed_offsets(request.clone(), Duration::from_secs(5)) {
            Ok(answer) => match answer
                .elements()
                .first()
                .map(|element| (element.error(), element.offset()))
            {
                Some((Ok(()), Offset::Offset(offset))) => Some(Some(offset)),
                Some((Ok(()), Offset::Invalid)) => Some(None),
                other => {
                    last_error = format!("{other:?}");
                    eprintln!("OffsetFetch of {group}: {last_error}");
                    None
                }
            },
            Err(error) => {
                if last_error != error.to_string() {
                    last_error = error.to_string();
                    eprintln!("OffsetFetch of {group}: {last_error}");
                }
                None
            }
        }
    })
}

/// Polls `member` until it has read `count` records of partition 0; returns their values
/// as numbers (values are decimal numbers).
fn read_numbers(member: &TestConsumer, count: usize, who: &str) -> Vec<u64> {
    let deadline = Instant::now() + FAILOVER_TIMEOUT;
    let mut numbers = Vec::with_capacity(count);
    let mut errors = Vec::new();
    while numbers.len() < count {
        assert!(
            Instant::now() < deadline,
            "{who} read {} of {count} records within {FAILOVER_TIMEOUT:?}: {numbers:?}; \
             errors: {errors:?}",
            numbers.len()
        );
        match member.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let value = String::from_utf8_lossy(message.payload().unwrap_or_default());
                let number = value
                    .parse()
                    .unwrap_or_else(|_| panic!("{who} read a foreign value {value:?}"));
                numbers.push(number);
            }
            Some(Err(error)) if errors.len() < 10 => errors.push(error.to_string()),
            Some(Err(_)) | None => {}
        }
    }
    numbers
}

/// A subscribed group member bootstrapped at `bootstrap`.
fn member(bootstrap: &str, group: &str, topic: &str, client_id: &str) -> TestConsumer {
    let member: TestConsumer = group_consumer_config(bootstrap, group, client_id)
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        .create_with_context(TestContext)
        .expect("create group member");
    member.subscribe(&[topic]).expect("subscribe");
    member
}

/// Commits `offset` for partition 0 of `topic`, retrying (bounded) while the coordinator
/// moves.
fn commit_offset(member: &TestConsumer, topic: &str, offset: i64) {
    let mut commit = TopicPartitionList::new();
    commit
        .add_partition_offset(topic, 0, Offset::Offset(offset))
        .expect("add commit offset");
    let what = format!("commit of offset {offset} for {topic}/0");
    poll_until(FAILOVER_TIMEOUT, &what, || {
        match member.commit(&commit, CommitMode::Sync) {
            Ok(()) => Some(()),
            Err(error) => {
                eprintln!("{what}: {error}");
                None
            }
        }
    });
}

/// Produces values `numbers` (decimal) to partition 0 of `topic` with acks=all; waits.
fn produce_numbers(bootstrap: &str, topic: &str, numbers: std::ops::Range<u64>) {
    let producer = producer(bootstrap, &[("enable.idempotence", "true")]);
    let count = numbers.clone().count();
    for (id, number) in numbers.enumerate() {
        let value = number.to_string();
        send(
            &producer,
            record(topic, id, value.as_bytes(), value.as_bytes()).partition(0),
        );
    }
    wait_for_successful_deliveries(&producer, count, FAILOVER_TIMEOUT);
}

#[test]
fn a_consumer_group_keeps_consuming_through_a_coordinator_failover() {
    let _serial = serial();
    let mut cluster = three_voters();
    let node_ids = cluster.node_ids();
    let topic = "consumed-through-coordinator-failover";
    let group = "group-through-coordinator-failover";
    create_replicated_topic(&cluster.bootstrap(0), topic, 1, 3, &[]);
    wait_for_replicas(
        &cluster,
        &node_ids,
        topic,
        DATA_TIMEOUT,
        "all in sync",
        |replicas| isr_holds_all(replicas, &node_ids),
    );
    produce_numbers(&cluster.bootstrap_all(), topic, 0..100);

    // The first member reads everything and commits 100.
    let first = member(&cluster.bootstrap_all(), group, topic, "member-before-kill");
    let numbers = read_numbers(&first, 100, "the first member");
    assert_eq!(
        numbers,
        (0..100).collect::<Vec<_>>(),
        "the first member's records"
    );
    commit_offset(&first, topic, 100);
    assert_eq!(
        committed_offset(&cluster.bootstrap(0), group, topic),
        Some(100),
        "committed before the kill"
    );

    let offsets_partition = offsets_partition_of(group, OFFSETS_TOPIC_PARTITIONS);
    let offsets = wait_for_replicas(
        &cluster,
        &node_ids,
        OFFSETS_TOPIC,
        DATA_TIMEOUT,
        &format!("partition {offsets_partition} led and fully in sync"),
        |replicas| {
            replicas
                .get(&offsets_partition)
                .is_some_and(|state| state.leader >= 0 && state.isr == node_ids)
        },
    );
    let replication_factors: BTreeMap<usize, usize> =
        offsets.values().fold(BTreeMap::new(), |mut counts, state| {
            *counts.entry(state.replicas.len()).or_default() += 1;
            counts
        });
    eprintln!(
        "{OFFSETS_TOPIC}: {} partitions; replication factor -> partitions {replication_factors:?}; \
         partition {offsets_partition} (of {group}): {:?}",
        offsets.len(),
        offsets[&offsets_partition]
    );
    assert_eq!(
        offsets.len(),
        OFFSETS_TOPIC_PARTITIONS as usize,
        "{OFFSETS_TOPIC} partitions"
    );
    assert_eq!(
        offsets[&offsets_partition].replicas, node_ids,
        "{OFFSETS_TOPIC} partition {offsets_partition} has a replica on each of the three \
         live brokers (offsets.topic.replication.factor 3)"
    );
    let coordinator = offsets[&offsets_partition].leader;
    let named = find_coordinator(&cluster.bootstrap(0), group);
    assert_eq!(
        named,
        Ok(coordinator),
        "FindCoordinator names the leader of {OFFSETS_TOPIC} partition {offsets_partition}"
    );

    cluster.kill9(coordinator);
    let killed_at = Instant::now();
    let survivors = others(&cluster, coordinator);
    let survivors_bootstrap = bootstrap_of(&cluster, &survivors);
    let new_coordinator = wait_for_coordinator(
        &cluster.bootstrap(survivors[0]),
        group,
        "a survivor",
        |node_id| survivors.contains(&node_id),
    );
    eprintln!(
        "coordinator of {group} moved from {coordinator} to {new_coordinator} {} ms after the kill",
        killed_at.elapsed().as_millis()
    );
    wait_for_replicas(
        &cluster,
        &survivors,
        OFFSETS_TOPIC,
        FAILOVER_TIMEOUT,
        &format!("partition {offsets_partition} led by the new coordinator {new_coordinator}"),
        |replicas| {
            replicas
                .get(&offsets_partition)
                .is_some_and(|state| state.leader == new_coordinator)
        },
    );

    // The member keeps consuming what is produced after the kill, from where it was.
    produce_numbers(&survivors_bootstrap, topic, 100..150);
    let numbers = read_numbers(&first, 50, "the first member after the kill");
    assert_eq!(
        numbers,
        (100..150).collect::<Vec<_>>(),
        "the first member goes on after the coordinator's failover"
    );
    eprintln!(
        "the first member read the records produced after the kill {} ms after it",
        killed_at.elapsed().as_millis()
    );
    assert_eq!(
        committed_offset(&cluster.bootstrap(survivors[0]), group, topic),
        Some(100),
        "the offset committed before the kill, read from the new coordinator {new_coordinator}"
    );
    first.unsubscribe();
    drop(first);

    // A new member resumes at the commit made before the kill, not at the beginning.
    let second = member(&survivors_bootstrap, group, topic, "member-after-kill");
    let numbers = read_numbers(&second, 50, "the second member");
    assert_eq!(
        numbers,
        (100..150).collect::<Vec<_>>(),
        "the second member resumes at the offset committed before the kill"
    );
    commit_offset(&second, topic, 150);
    assert_eq!(
        committed_offset(&cluster.bootstrap(survivors[1]), group, topic),
        Some(150),
        "committed through the new coordinator {new_coordinator}"
    );
    second.unsubscribe();
    drop(second);
    assert_no_node_panicked(&cluster);
}

// ---------------------------------------------------------------------------------------
// kafka-python's idempotent acks=all producer through a leader kill
// ---------------------------------------------------------------------------------------

const PYTHON: &str = "python3";
/// How many values tests/python/replicated_produce.py sends, one every
/// [`PYTHON_PACE_MS`]: a run of about ten seconds plus the failover, so the kill lands in
/// the middle.
const PYTHON_RECORDS: usize = 2000;
const PYTHON_PACE_MS: &str = "5";
/// Acknowledgements to see before the kill, and after it before the restart.
const PYTHON_ACKS_BEFORE_KILL: usize = 300;
const PYTHON_ACKS_AFTER_KILL: usize = 100;
/// The script's own watchdog (it dumps its threads' stacks and exits); the test's bound on
/// the script is a little longer.
const PYTHON_WATCHDOG_S: u64 = 100;
const PYTHON_TIMEOUT: Duration = Duration::from_secs(PYTHON_WATCHDOG_S + 10);

/// One acknowledgement the script printed: `ack <partition> <offset> <value>`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PythonAck {
    partition: i32,
    offset: i64,
    value: String,
}

/// tests/python/replicated_produce.py running in the background; its stdout lines are
/// collected as they come. Dropping it kills the script (by pid) if it still runs.
struct PythonProducer {
    child: Child,
    stdout_lines: Arc<Mutex<Vec<String>>>,
    stdout_reader: Option<thread::JoinHandle<()>>,
    stderr_reader: Option<thread::JoinHandle<String>>,
}

impl PythonProducer {
    fn start(bootstrap: &str, topic: &str) -> PythonProducer {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/replicated_produce.py");
        let records = PYTHON_RECORDS.to_string();
        let watchdog = PYTHON_WATCHDOG_S.to_string();
        let mut child = Command::new(PYTHON)
            .arg(&script)
            .args(["--bootstrap", bootstrap, "--topic", topic])
            .args(["--group", "unused", "--timeout-s", &watchdog])
            .args(["--records", &records, "--pace-ms", PYTHON_PACE_MS])
            // No __pycache__ next to the scripts in the source tree.
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "spawn {PYTHON} {}: {error} (python3 and kafka-python 3.x are test \
                     dependencies: `python3 -m pip install kafka-python==3.0.12`)",
                    script.display()
                )
            });
        let stdout_lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("piped stdout");
        let stdout_reader = {
            let lines = Arc::clone(&stdout_lines);
            thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    lines
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(line);
                }
            })
        };
        let mut stderr = child.stderr.take().expect("piped stderr");
        let stderr_reader = thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        PythonProducer {
            child,
            stdout_lines,
            stdout_reader: Some(stdout_reader),
            stderr_reader: Some(stderr_reader),
        }
    }

    fn lines(&self) -> Vec<String> {
        self.stdout_lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn acks(&self) -> usize {
        self.lines()
            .iter()
            .filter(|line| line.starts_with("ack "))
            .count()
    }

    /// Waits until the script printed `count` acknowledgements; panics if it exits first.
    fn wait_for_acks(&mut self, count: usize, timeout: Duration, what: &str) {
        let deadline = Instant::now() + timeout;
        while self.acks() < count {
            if let Some(status) = self.child.try_wait().expect("try_wait on the script") {
                panic!(
                    "replicated_produce.py exited ({status}) after {} acknowledgements, while \
                     the test waited for {count} ({what}); stderr:\n{}",
                    self.acks(),
                    self.take_stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{what}: replicated_produce.py printed {} of {count} acknowledgements within \
                 {timeout:?}; last lines: {:?}",
                self.acks(),
                self.lines().iter().rev().take(5).collect::<Vec<_>>()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn take_stderr(&mut self) -> String {
        // Only after the process exited: the reader ends at EOF.
        self.stderr_reader
            .take()
            .map(|reader| reader.join().unwrap_or_default())
            .unwrap_or_default()
    }

    /// Waits (bounded) for the script to exit successfully; returns its acknowledgements
    /// and the values it reported sending again.
    fn finish(mut self) -> (Vec<PythonAck>, Vec<String>) {
        let deadline = Instant::now() + PYTHON_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait on the script") {
                break status;
            }
            if Instant::now() >= deadline {
                // Child::kill sends SIGKILL to exactly the pid this test spawned.
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "replicated_produce.py did not finish within {PYTHON_TIMEOUT:?} \
                     ({} acknowledgements); stderr:\n{}",
                    self.acks(),
                    self.take_stderr()
                );
            }
            thread::sleep(Duration::from_millis(50));
        };
        if let Some(reader) = self.stdout_reader.take() {
            let _ = reader.join();
        }
        let stderr = self.take_stderr();
        let lines = self.lines();
        assert!(
            status.success(),
            "replicated_produce.py failed ({status}) after {} acknowledgements; last stdout \
             lines: {:?}\nstderr:\n{stderr}",
            self.acks(),
            lines.iter().rev().take(5).collect::<Vec<_>>()
        );
        eprintln!(
            "replicated_produce.py: {}",
            lines.last().map_or("", String::as_str)
        );
        let mut acks = Vec::new();
        let mut resent = Vec::new();
        for line in &lines {
            let fields: Vec<&str> = line.split(' ').collect();
            match fields.as_slice() {
                ["ack", partition, offset, value] => acks.push(PythonAck {
                    partition: partition.parse().expect("partition in an ack line"),
                    offset: offset.parse().expect("offset in an ack line"),
                    value: value.to_string(),
                }),
                ["retry", value, _error] => resent.push(value.to_string()),
                _ => {}
            }
        }
        (acks, resent)
    }
}

impl Drop for PythonProducer {
    fn drop(&mut self) {
        // Kills exactly the script this test spawned (a no-op once it was reaped).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A second, independent client through a leader crash: kafka-python's idempotent
/// acks=all producer (its own sender, retries and sequence numbers) keeps sending while the
/// partition's leader is killed with SIGKILL and restarted. Every value it was told is
/// acknowledged is in the log once, at the offset it was told, and the replicas agree.
#[test]
fn kafka_python_acks_all_survives_a_leader_kill() {
    let _serial = serial();
    let mut cluster = three_voters();
    let node_ids = cluster.node_ids();
    let topic = "kafka-python-through-a-leader-kill";
    create_replicated_topic(&cluster.bootstrap(0), topic, 1, 3, &[]);
    let replicas = wait_for_replicas(
        &cluster,
        &node_ids,
        topic,
        DATA_TIMEOUT,
        "three replicas, all in sync",
        |replicas| isr_holds_all(replicas, &node_ids),
    );
    let victim = replicas[&0].leader;

    let mut script = PythonProducer::start(&cluster.bootstrap_all(), topic);
    script.wait_for_acks(PYTHON_ACKS_BEFORE_KILL, DATA_TIMEOUT, "before the kill");
    let acks_at_kill = script.acks();
    cluster.kill9(victim);
    let killed_at = Instant::now();
    let survivors = others(&cluster, victim);
    let new_leader = wait_for_replicas(
        &cluster,
        &survivors,
        topic,
        FAILOVER_TIMEOUT,
        &format!("a leader other than the killed node {victim}"),
        |replicas| {
            replicas
                .get(&0)
                .is_some_and(|state| state.leader >= 0 && state.leader != victim)
        },
    )[&0]
        .leader;
    let elected = killed_at.elapsed();
    script.wait_for_acks(
        acks_at_kill + PYTHON_ACKS_AFTER_KILL,
        FAILOVER_TIMEOUT,
        "after the kill",
    );
    let written = killed_at.elapsed();
    cluster.restart(victim);
    let restarted_at = Instant::now();
    wait_for_replicas(
        &cluster,
        &node_ids,
        topic,
        REJOIN_TIMEOUT,
        &format!("the restarted node {victim} back in the ISR"),
        |replicas| isr_holds_all(replicas, &node_ids),
    );
    let rejoined = restarted_at.elapsed();
    let (acks, resent) = script.finish();
    eprintln!(
        "kafka-python: leader {victim} killed after {acks_at_kill} acknowledgements; node \
         {new_leader} leads in Metadata after {} ms; {PYTHON_ACKS_AFTER_KILL} more \
         acknowledged after {} ms; node {victim} back in the ISR {} ms after its restart; \
         {} acknowledged in all, resent by the script: {resent:?}",
        elected.as_millis(),
        written.as_millis(),
        rejoined.as_millis(),
        acks.len()
    );
    assert_eq!(
        acks.len(),
        PYTHON_RECORDS,
        "every value acknowledged once by the script"
    );

    let read = read_positions(&cluster.bootstrap_all(), topic, 1, acks.len(), &[]);
    let mut problems = Vec::new();
    let mut copies: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for ((_, offset), (_, value)) in &read {
        copies.entry(value.as_str()).or_default().push(*offset);
    }
    for ack in &acks {
        let at = read
            .get(&(ack.partition, ack.offset))
            .map(|(_, value)| value);
        if at != Some(&ack.value) {
            problems.push(format!(
                "{} acknowledged at {}/{} but read there: {at:?}",
                ack.value, ack.partition, ack.offset
            ));
        }
        let offsets = copies.get(ack.value.as_str()).cloned().unwrap_or_default();
        if offsets.len() > 1 && !resent.contains(&ack.value) {
            problems.push(format!(
                "{} is in the log {} times, at {offsets:?}",
                ack.value,
                offsets.len()
            ));
        }
    }
    // The script sends in number order and kafka-python keeps the order of one partition
    // (idempotence, at most 5 requests in flight); resent values come later by design.
    let in_order: Vec<&String> = read
        .values()
        .map(|(_, value)| value)
        .filter(|value| !resent.contains(value))
        .collect();
    if let Some(pair) = in_order.windows(2).find(|pair| pair[0] >= pair[1]) {
        problems.push(format!("{} is followed by {} in the log", pair[0], pair[1]));
    }
    assert!(
        problems.is_empty(),
        "{topic}: {} problems with the {} values kafka-python saw acknowledged; first:\n{}",
        problems.len(),
        acks.len(),
        problems[..problems.len().min(10)].join("\n")
    );
    assert_replicas_identical(&cluster, topic, 1);
    assert_no_node_panicked(&cluster);
}
