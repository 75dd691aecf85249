//! Exactly-once consume-transform-produce through a transaction coordinator failover
//! (issue 12): a read_committed group member and a transactional producer copy an RF=3
//! input topic to an RF=3 output topic, one transaction per batch with the member's offsets
//! sent to it (KIP-98). Mid-way the node leading the producer's `__transaction_state`
//! partition (its transaction coordinator) is killed with SIGKILL; the loop recovers as a
//! real application does (retry what librdkafka calls retriable, abort and rewind the
//! member to its committed offsets on an abortable error, a new producer on a fatal one),
//! the coordinator moves to the partition's new leader, which loads the transactions from
//! the replicated log (its coordinator epoch, stamped on the markers it writes, is its
//! leader epoch), and the killed node is restarted while the loop goes on. In the end the output read with
//! read_committed holds every input record exactly once, in input order per partition, and
//! the group's committed offsets are the input's end.
//!
//! The group is one whose coordinator runs on another node than the transaction
//! coordinator: librdkafka can hang in `send_offsets_to_transaction` when its cached group
//! coordinator leaves Metadata ([`group_coordinated_elsewhere`]).
//!
//! Nodes check for a leader imbalance every 3 s, so once the restarted node is back in
//! sync its preferred partitions (perhaps the coordinator's) move back to it: a second,
//! clean coordinator move, when it happens before the loop ends.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use kafka_protocol::messages::FindCoordinatorRequest;
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use crate::codec;
use crate::common::cluster::Cluster;
use crate::common::wire::connect;
use crate::common::{
    admin, assign_consumer, assign_from_beginning, consume_from, group_consumer_config,
    metadata_consumer, poll_until, producer, record, send, wait_for_successful_deliveries,
    Consumed, DeliveryRecorder, TestConsumer, TestContext, TestProducer, ADMIN_TIMEOUT,
    CLIENT_DEBUG_ENV,
};
use crate::poll::poll_until_ok;
use crate::{serial, three_voters_with, DATA_TIMEOUT};

const INPUT: &str = "txn-failover-input";
const OUTPUT: &str = "txn-failover-output";
/// The group's name is this with a number: the first whose coordinator is not the node
/// that is killed (see [`group_coordinated_elsewhere`]).
const GROUP_PREFIX: &str = "txn-failover-group";
/// How many partitions `__consumer_offsets` has (`--offsets-topic-partitions` default).
const OFFSETS_TOPIC_PARTITIONS: i32 = 50;
const OFFSETS_TOPIC: &str = "__consumer_offsets";
const TRANSACTIONAL_ID: &str = "txn-failover-transformer";
const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";
const PARTITIONS: i32 = 3;
const RECORDS_PER_PARTITION: usize = 300;
const RECORDS: usize = RECORDS_PER_PARTITION * PARTITIONS as usize;
/// At most this many input records per transaction.
const RECORDS_PER_TRANSACTION: usize = 10;
/// The loop rests this long after each commit, so it runs for several seconds and the
/// kill, the failover and the restart all land while it works.
const PAUSE_AFTER_COMMIT: Duration = Duration::from_millis(30);
/// The coordinator is killed once this many input records are committed.
const KILL_AFTER_RECORDS: usize = RECORDS / 3;
/// Nodes move leaderships back to their preferred replica this often (ms).
const LEADER_IMBALANCE_CHECK_MS: &str = "3000";

/// Bound on one transactional call (init, send offsets, commit, abort): librdkafka retries
/// inside it while the coordinator moves.
const TXN_CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// librdkafka's transaction.timeout.ms: a transaction left open by a dead producer is
/// aborted by the coordinator after this.
const TRANSACTION_TIMEOUT_MS: &str = "20000";
/// Bound on the whole loop, failover included.
const PIPELINE_TIMEOUT: Duration = Duration::from_secs(90);
/// How long after the kill the survivors may take to name a new coordinator and the loop
/// to commit again: the broker session (3 s) runs out, the controller elects an in-sync
/// replica, the new leader loads the transactions, librdkafka finds it.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on one look at a node's Metadata.
const METADATA_TIMEOUT: Duration = Duration::from_secs(3);
/// A transactional call that takes this long is noted in the loop's report.
const SLOW_CALL: Duration = Duration::from_secs(1);
/// Loop errors kept for the report.
const ERRORS_KEPT: usize = 40;

#[test]
fn consume_transform_produce_is_exactly_once_through_a_coordinator_failover() {
    let _serial = serial();
    let started = Instant::now();
    let mut cluster = three_voters_with(&[
        "--leader-imbalance-check-interval-ms",
        LEADER_IMBALANCE_CHECK_MS,
    ]);
    let node_ids = cluster.node_ids();
    let bootstrap = cluster.bootstrap_all();
    create_replicated_topics(&bootstrap, &[INPUT, OUTPUT]);
    for topic in [INPUT, OUTPUT] {
        wait_until_in_sync(&cluster, topic, &node_ids);
    }
    let inputs = produce_inputs(&bootstrap);
    // FindCoordinator creates `__transaction_state` (replication factor 3).
    wait_for_transaction_coordinator(&cluster.bootstrap(node_ids[0]), |_| true);
    let (coordinator, state_partition) = transaction_coordinator(&cluster, &node_ids);
    let group = group_coordinated_elsewhere(&cluster, &node_ids, coordinator);

    let pipeline = Arc::new(Pipeline::new());
    let worker = {
        let pipeline = Arc::clone(&pipeline);
        let bootstrap = bootstrap.clone();
        let group = group.clone();
        thread::spawn(move || run_pipeline(&bootstrap, &group, &pipeline))
    };

    wait_for_progress(&pipeline, KILL_AFTER_RECORDS, "before the kill");
    assert_eq!(
        transaction_coordinator(&cluster, &node_ids),
        (coordinator, state_partition),
        "the transaction coordinator stays put until the kill"
    );
    let at_kill = pipeline.committed_records();
    cluster.kill9(coordinator);
    let killed_at = Instant::now();
    eprintln!(
        "killed node {coordinator} (leader of {TRANSACTION_STATE_TOPIC}-{state_partition}) \
         with {at_kill} of {RECORDS} input records committed"
    );
    let survivors: Vec<i32> = node_ids
        .iter()
        .copied()
        .filter(|node_id| *node_id != coordinator)
        .collect();
    let successor = wait_for_transaction_coordinator(&cluster.bootstrap(survivors[0]), |node| {
        survivors.contains(&node)
    });
    eprintln!(
        "the coordinator moved to node {successor} {} ms after the kill",
        killed_at.elapsed().as_millis()
    );
    let after_kill = wait_for_progress(&pipeline, at_kill + 1, "after the kill");
    eprintln!(
        "the loop committed again {} ms after the kill ({after_kill} records)",
        killed_at.elapsed().as_millis()
    );
    cluster.restart(coordinator);
    eprintln!(
        "node {coordinator} restarted {} ms after the kill, with {} records committed",
        killed_at.elapsed().as_millis(),
        pipeline.committed_records()
    );

    wait_until_finished(&pipeline, worker);
    eprintln!("the loop: {:#?}", pipeline.report());

    let bootstrap = cluster.bootstrap_all();
    assert_output_exactly_once(&bootstrap, &inputs);
    assert_eq!(
        committed_offsets(&bootstrap, &group),
        (0..PARTITIONS)
            .map(|partition| (partition, RECORDS_PER_PARTITION as i64))
            .collect::<BTreeMap<_, _>>(),
        "the group's committed offsets are the input's end"
    );
    let uncommitted: usize = read_output(&bootstrap, "read_uncommitted", RECORDS)
        .values()
        .map(Vec::len)
        .sum();
    eprintln!(
        "{OUTPUT} holds {uncommitted} records for read_uncommitted ({} from aborted \
         transactions); the test took {} ms",
        uncommitted.saturating_sub(RECORDS),
        started.elapsed().as_millis()
    );
    cluster.assert_no_node_panicked();
}

// ---------------------------------------------------------------------------------------
// The consume-transform-produce loop
// ---------------------------------------------------------------------------------------

/// What the loop went through.
#[derive(Debug, Default, Clone)]
struct PipelineReport {
    /// Input records whose output and offsets are committed.
    committed_records: usize,
    committed_transactions: usize,
    aborted_transactions: usize,
    /// Calls repeated after an error librdkafka calls retriable.
    retried_calls: usize,
    /// Producers created: 1, plus one per fatal error.
    producers: usize,
    /// The call the loop is in and since when (ms into the loop).
    doing: String,
    /// Every input record is committed (set before the clients close).
    finished: bool,
    /// The first [`ERRORS_KEPT`] errors and slow calls, with the loop's time in ms.
    errors: Vec<String>,
}

/// The loop's report, shared with the test's thread, which prints it if the loop stalls.
/// Never locked across a client call.
struct Pipeline {
    started: Instant,
    deadline: Instant,
    report: Mutex<PipelineReport>,
}

impl Pipeline {
    fn new() -> Pipeline {
        let started = Instant::now();
        Pipeline {
            started,
            deadline: started + PIPELINE_TIMEOUT,
            report: Mutex::new(PipelineReport::default()),
        }
    }

    fn update(&self, change: impl FnOnce(&mut PipelineReport)) {
        change(&mut self.report.lock().unwrap_or_else(PoisonError::into_inner));
    }

    fn report(&self) -> PipelineReport {
        self.report
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn committed_records(&self) -> usize {
        self.report().committed_records
    }

    fn at_ms(&self) -> u128 {
        self.started.elapsed().as_millis()
    }

    /// Keeps an error or a slow call for the report.
    fn note(&self, what: &str, detail: &str) {
        let line = format!("{} ms {what}: {detail}", self.at_ms());
        self.update(|report| {
            if report.errors.len() < ERRORS_KEPT {
                report.errors.push(line);
            }
        });
    }

    /// The loop is now in `what`.
    fn doing(&self, what: &str) {
        let doing = format!("{what} since {} ms", self.at_ms());
        self.update(|report| report.doing = doing);
    }

    /// Panics (with the report) once the loop's time is up.
    fn assert_in_time(&self, what: &str) {
        assert!(
            Instant::now() < self.deadline,
            "the loop could not {what} within {PIPELINE_TIMEOUT:?}: {:#?}",
            self.report()
        );
    }
}

/// Waits until the loop has committed every input record, or panics with its report after
/// [`PIPELINE_TIMEOUT`] (with the loop's own panic if it died). Clients closing after the
/// work is done are not waited for.
fn wait_until_finished(pipeline: &Pipeline, worker: thread::JoinHandle<()>) {
    let deadline = pipeline.deadline + FAILOVER_TIMEOUT;
    while !pipeline.report().finished {
        if worker.is_finished() {
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
            panic!("the loop ended without finishing: {:#?}", pipeline.report());
        }
        assert!(
            Instant::now() < deadline,
            "the loop did not finish in time: {:#?}",
            pipeline.report()
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// How the application handles a failed call (librdkafka's error classes).
enum Failure {
    /// Call it again.
    Retriable(String),
    /// Abort the transaction, rewind the consumer, go on.
    Abortable(String),
    /// The producer is unusable: a new one (same transactional id) fences it.
    Fatal(String),
}

fn classify(error: KafkaError) -> Failure {
    let text = error.to_string();
    match &error {
        KafkaError::Transaction(error) if error.is_fatal() => Failure::Fatal(text),
        KafkaError::Transaction(error) if error.txn_requires_abort() => Failure::Abortable(text),
        KafkaError::Transaction(error) if error.is_retriable() => Failure::Retriable(text),
        _ => Failure::Abortable(text),
    }
}

/// The loop: until every input record is committed, read a batch, write its output and
/// the member's offsets in one transaction, commit. Panics after [`PIPELINE_TIMEOUT`].
fn run_pipeline(bootstrap: &str, group: &str, pipeline: &Pipeline) {
    let member = group_member(bootstrap, group);
    let mut producer = initialised_producer(bootstrap, pipeline);
    // Partition -> the next input offset, as this loop's commits left it.
    let mut committed: BTreeMap<i32, i64> = BTreeMap::new();
    // Since when the member has found nothing to read.
    let mut idle_since: Option<Instant> = None;
    loop {
        let done: i64 = committed.values().sum();
        pipeline.update(|report| report.committed_records = done as usize);
        if done == RECORDS as i64 {
            pipeline.update(|report| report.finished = true);
            pipeline.doing("closing the clients");
            return;
        }
        pipeline.assert_in_time(&format!("commit {RECORDS} records (done: {done})"));
        pipeline.doing("reading");
        let batch = read_batch(&member, pipeline);
        if batch.is_empty() {
            idle_since.get_or_insert_with(Instant::now);
            continue;
        }
        if let Some(idle) = idle_since.take().filter(|idle| idle.elapsed() >= SLOW_CALL) {
            let took = format!("nothing to read for {} ms", idle.elapsed().as_millis());
            pipeline.note("poll", &took);
        }
        let fatal = match transact(&producer, &member, &batch, pipeline) {
            Ok(()) => {
                pipeline.update(|report| report.committed_transactions += 1);
                for consumed in &batch {
                    let next = committed.entry(consumed.partition).or_insert(0);
                    *next = (*next).max(consumed.offset + 1);
                }
                thread::sleep(PAUSE_AFTER_COMMIT);
                continue;
            }
            Err(Failure::Fatal(error)) => {
                pipeline.note("fatal", &error);
                true
            }
            Err(Failure::Abortable(error) | Failure::Retriable(error)) => {
                pipeline.note("abortable", &error);
                !abort(&producer, pipeline)
            }
        };
        if fatal {
            // Its successor's InitProducerId fences it anyway.
            pipeline.doing("closing the fenced producer");
            drop(producer);
            producer = initialised_producer(bootstrap, pipeline);
        }
        for (partition, next) in rewind(&member, pipeline) {
            let known = committed.entry(partition).or_insert(0);
            *known = (*known).max(next);
        }
    }
}

/// Calls `call` until it succeeds, repeating it after retriable errors (until the loop's
/// deadline).
fn retrying(
    what: &str,
    pipeline: &Pipeline,
    mut call: impl FnMut() -> Result<(), KafkaError>,
) -> Result<(), Failure> {
    loop {
        pipeline.doing(what);
        let called = Instant::now();
        let outcome = call().map_err(classify);
        if called.elapsed() >= SLOW_CALL {
            let took = format!("took {} ms", called.elapsed().as_millis());
            pipeline.note(what, &took);
        }
        match outcome {
            Ok(()) => return Ok(()),
            Err(Failure::Retriable(error)) if Instant::now() < pipeline.deadline => {
                pipeline.update(|report| report.retried_calls += 1);
                pipeline.note(&format!("{what} (retried)"), &error);
            }
            Err(failure) => return Err(failure),
        }
    }
}

/// One transaction: the output of `batch` and the member's offsets after it, committed.
fn transact(
    producer: &TestProducer,
    member: &TestConsumer,
    batch: &[Consumed],
    pipeline: &Pipeline,
) -> Result<(), Failure> {
    pipeline.doing("begin_transaction");
    producer.begin_transaction().map_err(classify)?;
    pipeline.doing("producing");
    for (id, consumed) in batch.iter().enumerate() {
        let value = transformed(&value_of(consumed));
        let output =
            record(OUTPUT, id, value.as_bytes(), value.as_bytes()).partition(consumed.partition);
        enqueue(producer, output, pipeline.deadline)?;
    }
    let group_metadata = member
        .group_metadata()
        .ok_or_else(|| Failure::Abortable("the member has no group metadata".into()))?;
    let offsets = next_offsets(batch);
    retrying("send_offsets_to_transaction", pipeline, || {
        producer.send_offsets_to_transaction(&offsets, &group_metadata, TXN_CALL_TIMEOUT)
    })?;
    retrying("commit_transaction", pipeline, || {
        producer.commit_transaction(TXN_CALL_TIMEOUT)
    })
}

/// Enqueues one output record, polling while librdkafka's queue is full. Any other
/// refusal (the transaction already failed) is for the caller to abort.
fn enqueue(
    producer: &TestProducer,
    mut output: BaseRecord<'_, [u8], [u8], usize>,
    deadline: Instant,
) -> Result<(), Failure> {
    loop {
        match producer.send(output) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned))
                if Instant::now() < deadline =>
            {
                output = returned;
                producer.poll(Duration::from_millis(10));
            }
            Err((error, _)) => return Err(Failure::Abortable(format!("enqueue: {error}"))),
        }
    }
}

/// Aborts the producer's transaction; false when the producer cannot go on.
fn abort(producer: &TestProducer, pipeline: &Pipeline) -> bool {
    match retrying("abort_transaction", pipeline, || {
        producer.abort_transaction(TXN_CALL_TIMEOUT)
    }) {
        Ok(()) => {
            pipeline.update(|report| report.aborted_transactions += 1);
            true
        }
        Err(Failure::Fatal(error) | Failure::Abortable(error) | Failure::Retriable(error)) => {
            pipeline.note("abort_transaction failed", &error);
            false
        }
    }
}

/// Moves the member back to the group's committed offsets (librdkafka's transactions
/// example, `rewind_consumer_offsets`): what an aborted transaction read is read again.
/// Returns partition -> committed offset.
fn rewind(member: &TestConsumer, pipeline: &Pipeline) -> BTreeMap<i32, i64> {
    loop {
        pipeline.assert_in_time("rewind the member");
        pipeline.doing("rewinding");
        let attempt = member.committed(TXN_CALL_TIMEOUT).and_then(|committed| {
            let mut seek = TopicPartitionList::new();
            let mut offsets = BTreeMap::new();
            for element in committed.elements() {
                let offset = match element.offset() {
                    Offset::Offset(offset) => {
                        offsets.insert(element.partition(), offset);
                        Offset::Offset(offset)
                    }
                    _ => Offset::Beginning,
                };
                seek.add_partition_offset(element.topic(), element.partition(), offset)?;
            }
            if seek.count() > 0 {
                member.seek_partitions(seek, TXN_CALL_TIMEOUT)?;
            }
            Ok(offsets)
        });
        match attempt {
            Ok(offsets) => return offsets,
            Err(error) => pipeline.note("rewind", &error.to_string()),
        }
    }
}

/// Up to [`RECORDS_PER_TRANSACTION`] records, as many as arrive without waiting long.
fn read_batch(member: &TestConsumer, pipeline: &Pipeline) -> Vec<Consumed> {
    let until = Instant::now() + Duration::from_millis(500);
    let mut batch = Vec::with_capacity(RECORDS_PER_TRANSACTION);
    while batch.len() < RECORDS_PER_TRANSACTION && Instant::now() < until {
        match member.poll(Duration::from_millis(50)) {
            Some(Ok(message)) => batch.push(Consumed::from_message(&message)),
            Some(Err(error)) => pipeline.note("poll", &error.to_string()),
            None if !batch.is_empty() => break,
            None => {}
        }
    }
    batch
}

/// A read_committed member of `group` subscribed to [`INPUT`]; it never commits by
/// itself. Its session outlasts a broker session.
fn group_member(bootstrap: &str, group: &str) -> TestConsumer {
    let member: TestConsumer = group_consumer_config(bootstrap, group, "txn-failover-member")
        .set("isolation.level", "read_committed")
        .set("enable.auto.offset.store", "false")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        .create_with_context(TestContext)
        .expect("create group member");
    member.subscribe(&[INPUT]).expect("subscribe");
    member
}

/// A producer with [`TRANSACTIONAL_ID`] that has run `init_transactions`.
fn initialised_producer(bootstrap: &str, pipeline: &Pipeline) -> TestProducer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("client.id", "txn-failover-producer")
        .set("transactional.id", TRANSACTIONAL_ID)
        .set("transaction.timeout.ms", TRANSACTION_TIMEOUT_MS)
        .set("linger.ms", "5");
    if let Ok(debug) = std::env::var(CLIENT_DEBUG_ENV) {
        config
            .set("debug", debug)
            .set_log_level(RDKafkaLogLevel::Debug);
    }
    let producer: TestProducer = config
        .create_with_context(DeliveryRecorder::default())
        .expect("create transactional producer");
    pipeline.update(|report| report.producers += 1);
    loop {
        pipeline.doing("init_transactions");
        match producer
            .init_transactions(TXN_CALL_TIMEOUT)
            .map_err(classify)
        {
            Ok(()) => return producer,
            Err(Failure::Fatal(error)) => {
                panic!("init_transactions of a new producer failed fatally: {error}")
            }
            Err(Failure::Retriable(error) | Failure::Abortable(error)) => {
                pipeline.note("init_transactions", &error);
                pipeline.assert_in_time("initialise a producer");
            }
        }
    }
}

/// The offsets a commit of `batch` stores: per partition, the one after the last read.
fn next_offsets(batch: &[Consumed]) -> TopicPartitionList {
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    for consumed in batch {
        let offset = next.entry(consumed.partition).or_insert(0);
        *offset = (*offset).max(consumed.offset + 1);
    }
    let mut offsets = TopicPartitionList::new();
    for (partition, offset) in next {
        offsets
            .add_partition_offset(INPUT, partition, Offset::Offset(offset))
            .expect("add partition offset");
    }
    offsets
}

fn value_of(consumed: &Consumed) -> String {
    String::from_utf8_lossy(consumed.value.as_deref().unwrap_or_default()).into_owned()
}

fn transformed(input: &str) -> String {
    format!("out-{input}")
}

// ---------------------------------------------------------------------------------------
// Set-up and checks
// ---------------------------------------------------------------------------------------

/// CreateTopics with [`PARTITIONS`] partitions and three replicas each; panics on errors.
fn create_replicated_topics(bootstrap: &str, topics: &[&str]) {
    let admin = admin(bootstrap);
    let options = AdminOptions::new()
        .request_timeout(Some(ADMIN_TIMEOUT))
        .operation_timeout(Some(ADMIN_TIMEOUT));
    let new_topics: Vec<NewTopic> = topics
        .iter()
        .map(|topic| NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(3)))
        .collect();
    let results = futures::executor::block_on(admin.create_topics(&new_topics, &options))
        .unwrap_or_else(|error| panic!("CreateTopics {topics:?} failed: {error}"));
    for result in results {
        if let Err((topic, code)) = result {
            panic!("CreateTopics {topic} (replication factor 3): {code:?}");
        }
    }
}

/// One partition as a node's Metadata shows it: leader, replicas and ISR (sorted).
type PartitionView = (i32, Vec<i32>, Vec<i32>);

/// Partition -> view of `topic` as the node at `bootstrap` answers Metadata.
fn partition_views(bootstrap: &str, topic: &str) -> Option<BTreeMap<i32, PartitionView>> {
    let metadata = metadata_consumer(bootstrap)
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
                let view = (
                    partition.leader(),
                    sorted(partition.replicas()),
                    sorted(partition.isr()),
                );
                (partition.id(), view)
            })
            .collect(),
    )
}

/// Waits until every node shows every partition of `topic` led, on all of `node_ids`, and
/// in sync.
fn wait_until_in_sync(cluster: &Cluster, topic: &str, node_ids: &[i32]) {
    let what = format!("every partition of {topic} led and in sync on {node_ids:?}");
    poll_until(DATA_TIMEOUT, &what, || {
        node_ids
            .iter()
            .all(|node_id| {
                partition_views(&cluster.bootstrap(*node_id), topic).is_some_and(|views| {
                    views.len() == PARTITIONS as usize
                        && views.values().all(|(leader, replicas, isr)| {
                            *leader >= 0 && replicas == node_ids && isr == node_ids
                        })
                })
            })
            .then_some(())
    });
}

/// Writes [`RECORDS`] input records (idempotent, acks=all), round robin over the
/// partitions; returns partition -> values in offset order.
fn produce_inputs(bootstrap: &str) -> BTreeMap<i32, Vec<String>> {
    let producer = producer(bootstrap, &[("enable.idempotence", "true")]);
    let mut inputs: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for id in 0..RECORDS {
        let partition = (id % PARTITIONS as usize) as i32;
        let value = format!("in-{partition}-{:04}", id / PARTITIONS as usize);
        send(
            &producer,
            record(INPUT, id, value.as_bytes(), value.as_bytes()).partition(partition),
        );
        inputs.entry(partition).or_default().push(value);
    }
    wait_for_successful_deliveries(&producer, RECORDS, DATA_TIMEOUT);
    inputs
}

/// Waits until the loop has committed at least `records` input records; returns how many.
fn wait_for_progress(pipeline: &Pipeline, records: usize, when: &str) -> usize {
    let what = format!("the loop did not commit {records} input records {when}");
    poll_until_ok(FAILOVER_TIMEOUT, Duration::from_millis(20), &what, || {
        let done = pipeline.committed_records();
        if done >= records {
            return Ok(done);
        }
        Err(format!("{:#?}", pipeline.report()))
    })
}

/// Kafka's `Utils.abs(key.hashCode) % partitions` (Java's String.hashCode over UTF-16
/// code units) for a transactional id or a group, computed independently of the broker's.
fn partition_of(key: &str, partitions: i32) -> i32 {
    let hash = key.encode_utf16().fold(0i32, |hash, unit| {
        hash.wrapping_mul(31).wrapping_add(i32::from(unit))
    });
    let positive = if hash == i32::MIN { 0 } else { hash.abs() };
    positive % partitions
}

/// FindCoordinator (v2) for [`TRANSACTIONAL_ID`] sent to the node at `bootstrap` itself:
/// the node it names, or the error.
fn find_transaction_coordinator(bootstrap: &str) -> Result<i32, String> {
    find_coordinator(bootstrap, TRANSACTIONAL_ID, KEY_TYPE_TRANSACTION)
}

/// FindCoordinator key types.
const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

/// FindCoordinator (v2) for `key` of `key_type` sent to the node at `bootstrap` itself
/// (it creates the internal topic on first use): the node it names, or the error.
fn find_coordinator(bootstrap: &str, key: &str, key_type: i8) -> Result<i32, String> {
    let mut stream = connect(bootstrap);
    let request = FindCoordinatorRequest::default()
        .with_key(StrBytes::from_string(key.to_string()))
        .with_key_type(key_type);
    let correlation_id = codec::send(&mut stream, 2, &request);
    let answer = codec::receive::<FindCoordinatorRequest>(&mut stream, 2, correlation_id)?;
    match answer.error_code {
        0 => Ok(answer.node_id.0),
        code => Err(format!("error code {code}")),
    }
}

/// Waits until the node at `bootstrap` names a transaction coordinator that `accept` takes.
fn wait_for_transaction_coordinator(bootstrap: &str, accept: impl Fn(i32) -> bool) -> i32 {
    let mut answers: Vec<Result<i32, String>> = Vec::new();
    let what = format!("{bootstrap} named no accepted transaction coordinator");
    poll_until_ok(FAILOVER_TIMEOUT, Duration::from_millis(100), &what, || {
        let answer = find_transaction_coordinator(bootstrap);
        if let Ok(node_id) = answer {
            if accept(node_id) {
                return Ok(node_id);
            }
        }
        if answers.last() != Some(&answer) {
            answers.push(answer);
        }
        Err(format!("answers in order: {answers:?}"))
    })
}

/// The node leading the `__transaction_state` partition of [`TRANSACTIONAL_ID`] (which
/// FindCoordinator must name), once that partition has a replica on every node, all in
/// sync; returns it and the partition.
fn transaction_coordinator(cluster: &Cluster, node_ids: &[i32]) -> (i32, i32) {
    let bootstrap = cluster.bootstrap(node_ids[0]);
    let what = format!("{TRANSACTION_STATE_TOPIC} led and in sync on {node_ids:?}");
    let (partition, leader) = poll_until(DATA_TIMEOUT, &what, || {
        let views = partition_views(&bootstrap, TRANSACTION_STATE_TOPIC)?;
        let partition = partition_of(TRANSACTIONAL_ID, views.len() as i32);
        let (leader, replicas, isr) = views.get(&partition)?;
        (*leader >= 0 && replicas == node_ids && isr == node_ids).then_some((partition, *leader))
    });
    assert_eq!(
        find_transaction_coordinator(&bootstrap),
        Ok(leader),
        "FindCoordinator names the leader of {TRANSACTION_STATE_TOPIC}-{partition}"
    );
    (leader, partition)
}

/// The first group name `<GROUP_PREFIX>-<n>` whose coordinator (the leader of its
/// `__consumer_offsets` partition, replicated on every node and in sync) is not `avoid`.
///
/// librdkafka (2.12) can block `send_offsets_to_transaction` forever when the group
/// coordinator it cached is a broker that left Metadata (a fenced, killed node):
/// confluentinc/librdkafka#5511 and #5456 (the call ignores its timeout). Kafka leaves
/// fenced brokers out of Metadata too, so this test keeps the group's coordinator off the
/// node it kills; `replication::coordinator_failover::
/// a_consumer_group_keeps_consuming_through_a_coordinator_failover` moves a group
/// coordinator.
fn group_coordinated_elsewhere(cluster: &Cluster, node_ids: &[i32], avoid: i32) -> String {
    let bootstrap = cluster.bootstrap(node_ids[0]);
    let first = format!("{GROUP_PREFIX}-0");
    let what = format!("{OFFSETS_TOPIC} led and in sync on {node_ids:?}");
    let leaders: BTreeMap<i32, i32> = poll_until(DATA_TIMEOUT, &what, || {
        // Creates the topic on first use.
        find_coordinator(&bootstrap, &first, KEY_TYPE_GROUP).ok()?;
        let views = partition_views(&bootstrap, OFFSETS_TOPIC)?;
        let complete = views.len() == OFFSETS_TOPIC_PARTITIONS as usize
            && views.values().all(|(leader, replicas, isr)| {
                *leader >= 0 && replicas == node_ids && isr == node_ids
            });
        complete.then(|| {
            views
                .iter()
                .map(|(partition, (leader, _, _))| (*partition, *leader))
                .collect()
        })
    });
    let group = (0..1_000)
        .map(|n| format!("{GROUP_PREFIX}-{n}"))
        .find(|group| leaders[&partition_of(group, OFFSETS_TOPIC_PARTITIONS)] != avoid)
        .expect("some group is coordinated by another node");
    let coordinator = find_coordinator(&bootstrap, &group, KEY_TYPE_GROUP);
    assert_ne!(
        coordinator,
        Ok(avoid),
        "{group} is coordinated by another node"
    );
    eprintln!("group {group}, coordinated by node {coordinator:?}");
    group
}

/// Reads [`OUTPUT`] from the beginning with `isolation`; partition -> values in order.
fn read_output(bootstrap: &str, isolation: &str, expected: usize) -> BTreeMap<i32, Vec<String>> {
    let consumer = assign_consumer(bootstrap, &[("isolation.level", isolation)]);
    assign_from_beginning(&consumer, OUTPUT, PARTITIONS);
    let mut output: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for consumed in consume_from(&consumer, PARTITIONS, expected, DATA_TIMEOUT) {
        output
            .entry(consumed.partition)
            .or_default()
            .push(value_of(&consumed));
    }
    output
}

/// The committed output is the input transformed, each record once, in input order.
fn assert_output_exactly_once(bootstrap: &str, inputs: &BTreeMap<i32, Vec<String>>) {
    let output = read_output(bootstrap, "read_committed", RECORDS);
    for (partition, values) in inputs {
        let expected: Vec<String> = values.iter().map(|value| transformed(value)).collect();
        let got = output.get(partition).cloned().unwrap_or_default();
        if got == expected {
            continue;
        }
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for value in &got {
            *counts.entry(value).or_default() += 1;
        }
        let duplicated: Vec<_> = counts.iter().filter(|(_, count)| **count > 1).collect();
        let missing: Vec<_> = expected
            .iter()
            .filter(|value| !counts.contains_key(value.as_str()))
            .collect();
        panic!(
            "{OUTPUT}-{partition} read_committed: {} records for {} inputs; duplicated: \
             {duplicated:?}; missing: {missing:?}; first records: {:?}",
            got.len(),
            expected.len(),
            &got[..got.len().min(20)]
        );
    }
}

/// Partition -> the offset `group` committed for [`INPUT`], asked by a read_committed
/// client outside the group (stable offsets only); retried until [`DATA_TIMEOUT`].
fn committed_offsets(bootstrap: &str, group: &str) -> BTreeMap<i32, i64> {
    let outsider: TestConsumer = group_consumer_config(bootstrap, group, "txn-failover-outsider")
        .set("isolation.level", "read_committed")
        .create_with_context(TestContext)
        .expect("create offsets reader");
    let mut request = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        request.add_partition(INPUT, partition);
    }
    poll_until(DATA_TIMEOUT, "OffsetFetch of the group", || {
        let answer = outsider
            .committed_offsets(request.clone(), Duration::from_secs(5))
            .ok()?;
        answer
            .elements()
            .iter()
            .map(|element| match element.offset() {
                Offset::Offset(offset) => Some((element.partition(), offset)),
                _ => None,
            })
            .collect()
    })
}
