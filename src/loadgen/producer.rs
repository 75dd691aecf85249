//! One bench producer: generates messages on its open-loop schedule (or as
//! fast as its in-flight window allows for `rate = max`), batches them per
//! partition up to `batch_size_bytes` or `linger_ms`, sends Produce requests
//! over the project's client, and records publish latency from each message's
//! *due* time to its ack. Runs as a task on one load-generator core. A pass
//! of its loop costs what it touches (the messages due, the batches that
//! fill or linger), not the partition count: see `batching.rs`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::channel::oneshot;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProduceRequest, ProduceResponse,
    ProducerId,
};
use kafka_protocol::protocol::Decodable;

use super::batching::Batches;
use super::cluster::{group_by_topic, topic_name, ClusterView, PRODUCE_VERSION};
use super::payload::{write_payload, PayloadHeader};
use super::random::{message_size, Random};
use super::rate::OpenLoopSchedule;
use super::results::{record_latency, SlowPublish};
use super::scenario::{KeyDistribution, Scenario};
use super::shared::{CoreState, RunClock, Totals};
use crate::client::connection::Connection;
use crate::runtime::placement::stable_hash;

/// InitProducerId version the load generator speaks (Kafka 2.5+ brokers answer it).
const INIT_PRODUCER_ID_VERSION: i16 = 3;

/// Messages a producer may hold unsent (its own backlog when the broker is
/// slower than the offered rate); beyond it, due messages wait in the
/// schedule, still counting their latency from their due time.
const BACKLOG_MESSAGES_MAX: usize = 100_000;
/// Shortest sleep between scheduling passes.
const TICK: Duration = Duration::from_micros(50);

pub struct ProducerTask {
    pub producer_id: u32,
    /// This producer's share of the target rate; `None` for `max`.
    pub messages_per_second: Option<f64>,
    pub scenario: Rc<Scenario>,
    pub cluster: Rc<ClusterView>,
    pub clock: RunClock,
    pub core: Rc<CoreState>,
    pub totals: Arc<Totals>,
    /// Keep every measured message whose publish latency reaches this many
    /// µs (`--trace-slow-publishes`); `None`: keep none.
    pub slow_publish_us: Option<u64>,
}

pub async fn run_producer(task: ProducerTask) {
    if let Err(error) = produce_until_end(&task).await {
        tracing::warn!(producer = task.producer_id, %error, "producer stopped early");
        task.core.measurements.borrow_mut().produce_errors += 1;
    }
    task.totals.producers_running.fetch_sub(1, Ordering::AcqRel);
}

async fn produce_until_end(task: &ProducerTask) -> io::Result<()> {
    let scenario = &task.scenario;
    let mut connections: HashMap<i32, Rc<Connection>> = HashMap::new();
    let messages_per_batch =
        (scenario.batch_size_bytes as f64 / scenario.mean_message_bytes().max(1.0)).ceil() as usize;
    let mut batches = Batches::new(
        &task.cluster.partitions,
        scenario.compression,
        scenario.batch_size_bytes,
        messages_per_batch,
    );
    if scenario.idempotent {
        let (producer_id, producer_epoch) = init_producer_id(task, &mut connections).await?;
        batches.set_idempotent(producer_id, producer_epoch);
    }
    let in_flight = Rc::new(glommio::sync::Semaphore::new(u64::from(
        scenario.max_in_flight,
    )));
    let mut schedule = task
        .messages_per_second
        .map(|rate| OpenLoopSchedule::new(task.clock.now_ns(), rate));
    let mut random = Random::seeded(u64::from(task.producer_id) + 1);
    let mut value = Vec::with_capacity(scenario.mean_message_bytes() as usize + 64);
    let mut key_text = String::new();
    let partition_count = batches.partition_count();
    if partition_count == 0 {
        return Err(io::Error::other("the scenario has no partitions"));
    }
    let sticky = scenario.key_distribution == KeyDistribution::None;
    let mut sticky_partition = (task.producer_id as usize) % partition_count;
    let mut key_counter: u64 = 0;
    let linger_ns = scenario.linger_ms * 1_000_000;
    // Reused every pass: the loop allocates per batch, not per message.
    let mut due_now: Vec<u64> = Vec::new();
    let mut lingered: Vec<usize> = Vec::new();
    loop {
        let now = task.clock.now_ns();
        if now >= task.clock.end_ns {
            break;
        }
        // Decide which messages are due now.
        due_now.clear();
        match schedule.as_mut() {
            Some(schedule) => {
                while batches.buffered_messages() + due_now.len() < BACKLOG_MESSAGES_MAX {
                    match schedule.take_due(now) {
                        Some(due) => due_now.push(due),
                        None => break,
                    }
                }
            }
            None => {
                // Closed loop: fill the sticky batch; the in-flight window paces us.
                let room = scenario
                    .batch_size_bytes
                    .saturating_sub(batches.records_bytes(sticky_partition));
                let count = (room as f64 / scenario.mean_message_bytes().max(1.0))
                    .ceil()
                    .max(1.0) as usize;
                due_now.extend(std::iter::repeat_n(now, count));
            }
        }
        for &due in &due_now {
            key_text.clear();
            let index = match next_key(scenario, &mut random, &mut key_counter) {
                None => sticky_partition,
                Some(key) => {
                    // Writing into a String cannot fail.
                    let _ = write!(key_text, "key-{key}");
                    (stable_hash(key_text.as_bytes()) % partition_count as u64) as usize
                }
            };
            let key_bytes = (!key_text.is_empty()).then_some(key_text.as_bytes());
            let size = message_size(&scenario.message_size, &mut random);
            let record_bytes = size + key_text.len() + 32;
            // Like Kafka's producer, close a batch before a record would overflow it.
            let full = !batches.is_empty(index)
                && batches.records_bytes(index) + record_bytes > scenario.batch_size_bytes;
            if full {
                send_batches(task, &mut connections, &in_flight, &mut batches, &[index]).await?;
            }
            let header = PayloadHeader {
                due_time_us: task.clock.wall_us(due),
                producer_id: task.producer_id,
                sequence: batches.take_sequence(index),
            };
            write_payload(&mut value, header, size);
            let timestamp_ms = (task.clock.wall_us(due) / 1_000) as i64;
            batches.push(index, due, timestamp_ms, key_bytes, &value);
            if batches.records_bytes(index) >= scenario.batch_size_bytes {
                send_batches(task, &mut connections, &in_flight, &mut batches, &[index]).await?;
                if sticky {
                    sticky_partition = (sticky_partition + 1) % partition_count;
                }
            }
        }
        // Lingered batches go out even if not full, and together: one
        // Produce request per leader broker, as Kafka clients send them.
        lingered.clear();
        batches.take_lingered(task.clock.now_ns(), linger_ns, &mut lingered);
        if sticky && lingered.contains(&sticky_partition) {
            sticky_partition = (sticky_partition + 1) % partition_count;
        }
        send_by_leader(
            task,
            &mut connections,
            &in_flight,
            &mut batches,
            &mut lingered,
        )
        .await?;
        if let Some(schedule) = schedule.as_ref() {
            let wake = schedule
                .next_due_ns()
                .min(batches.next_linger_ns(linger_ns).unwrap_or(u64::MAX))
                .min(task.clock.end_ns);
            let now = task.clock.now_ns();
            if wake > now {
                glommio::timer::sleep(Duration::from_nanos(wake - now).max(TICK)).await;
            }
        }
    }
    lingered.clear();
    batches.take_all(&mut lingered);
    send_by_leader(
        task,
        &mut connections,
        &in_flight,
        &mut batches,
        &mut lingered,
    )
    .await?;
    debug_assert_eq!(batches.buffered_messages(), 0);
    // Wait for every outstanding ack.
    let _all = in_flight.acquire(u64::from(scenario.max_in_flight)).await;
    Ok(())
}

/// The key of the next message; `None` without keys (sticky partitioning).
fn next_key(scenario: &Scenario, random: &mut Random, key_counter: &mut u64) -> Option<u64> {
    match scenario.key_distribution {
        KeyDistribution::None => None,
        KeyDistribution::RoundRobin => {
            *key_counter += 1;
            Some(*key_counter % u64::from(scenario.key_count))
        }
        KeyDistribution::Random => Some(random.below(u64::from(scenario.key_count))),
    }
}

/// Sends the batches of `partitions` (each holding messages): one Produce
/// request per leader broker, each leader's batches in the given order.
async fn send_by_leader(
    task: &ProducerTask,
    connections: &mut HashMap<i32, Rc<Connection>>,
    in_flight: &Rc<glommio::sync::Semaphore>,
    batches: &mut Batches,
    partitions: &mut [usize],
) -> io::Result<()> {
    // A stable sort keeps each leader's batches in order.
    partitions.sort_by_key(|&index| batches.target(index).leader);
    let same_leader = |a: &usize, b: &usize| batches.target(*a).leader == batches.target(*b).leader;
    let groups: Vec<&[usize]> = partitions.chunk_by(same_leader).collect();
    for group in groups {
        send_batches(task, connections, in_flight, batches, group).await?;
    }
    Ok(())
}

/// Sends the batches of `partitions` (all led by one broker, each holding
/// messages) in one Produce request.
async fn send_batches(
    task: &ProducerTask,
    connections: &mut HashMap<i32, Rc<Connection>>,
    in_flight: &Rc<glommio::sync::Semaphore>,
    batches: &mut Batches,
    partitions: &[usize],
) -> io::Result<()> {
    let Some(leader) = partitions
        .first()
        .map(|&index| batches.target(index).leader)
    else {
        return Ok(());
    };
    let mut due_ns = Vec::new();
    let mut payload_bytes = 0;
    let mut parts = Vec::with_capacity(partitions.len());
    for &index in partitions {
        debug_assert_eq!(batches.target(index).leader, leader);
        let mut sealed = batches.seal(index).map_err(io::Error::other)?;
        if due_ns.is_empty() {
            due_ns = sealed.due_ns;
        } else {
            due_ns.append(&mut sealed.due_ns);
        }
        payload_bytes += sealed.payload_bytes;
        parts.push((sealed.index, sealed.records));
    }
    let request = produce_request(batches, parts, task.scenario.acks);
    let connection = connection_for(task, connections, leader).await?;
    let permit = Rc::clone(in_flight)
        .acquire_static_permit(1)
        .await
        .map_err(io::Error::from)?;
    let acks = task.scenario.acks;
    let receiver = connection.send(ApiKey::Produce, PRODUCE_VERSION, &request, acks != 0)?;
    let sent_ns = task.clock.now_ns();
    let slow_publish_us = task.slow_publish_us;
    let clock = task.clock;
    let core = Rc::clone(&task.core);
    let totals = Arc::clone(&task.totals);
    glommio::spawn_local(async move {
        let _permit = permit;
        let acknowledged = match receiver {
            None => true,
            Some(receiver) => produce_succeeded(receiver).await,
        };
        let ack_ns = clock.now_ns();
        record_acks(
            &clock,
            &core,
            &totals,
            acknowledged,
            &due_ns,
            payload_bytes,
            AckTimes {
                sent_ns,
                ack_ns,
                slow_publish_us,
            },
        );
    })
    .detach();
    Ok(())
}

/// When one Produce request went out and its answer came back (run
/// nanoseconds), and the slow-publish threshold its messages are held to.
struct AckTimes {
    sent_ns: u64,
    ack_ns: u64,
    slow_publish_us: Option<u64>,
}

fn record_acks(
    clock: &RunClock,
    core: &CoreState,
    totals: &Totals,
    acknowledged: bool,
    due_ns: &[u64],
    payload_bytes: u64,
    times: AckTimes,
) {
    let AckTimes {
        sent_ns,
        ack_ns,
        slow_publish_us,
    } = times;
    let mut measurements = core.measurements.borrow_mut();
    if !acknowledged {
        measurements.produce_errors += 1;
        return;
    }
    totals
        .acknowledged_messages
        .fetch_add(due_ns.len() as u64, Ordering::AcqRel);
    let mut live = core.live.borrow_mut();
    let bytes_per_message = payload_bytes / (due_ns.len().max(1) as u64);
    live.produced_messages += due_ns.len() as u64;
    live.produced_bytes += payload_bytes;
    for &due in due_ns {
        let latency_us = ack_ns.saturating_sub(due) / 1_000;
        record_latency(&mut live.publish_latency_us, latency_us);
        if clock.is_measured(due) {
            record_latency(&mut measurements.publish_latency_us, latency_us);
            measurements.produced_messages += 1;
            measurements.produced_bytes += bytes_per_message;
            if slow_publish_us.is_some_and(|threshold| latency_us >= threshold) {
                measurements.keep_slow_publish(SlowPublish {
                    due_ns: clock.monotonic_ns(due),
                    sent_ns: clock.monotonic_ns(sent_ns),
                    acked_ns: clock.monotonic_ns(ack_ns),
                });
            }
        }
    }
}

async fn produce_succeeded(receiver: oneshot::Receiver<io::Result<Bytes>>) -> bool {
    let Ok(Ok(mut body)) = receiver.await else {
        return false;
    };
    match ProduceResponse::decode(&mut body, PRODUCE_VERSION) {
        Ok(response) => response
            .responses
            .iter()
            .flat_map(|topic| topic.partition_responses.iter())
            .all(|partition| partition.error_code == 0),
        Err(_) => false,
    }
}

fn produce_request(batches: &Batches, parts: Vec<(usize, Bytes)>, acks: i16) -> ProduceRequest {
    let entries = parts.into_iter().map(|(index, records)| {
        let target = batches.target(index);
        let partition = PartitionProduceData::default()
            .with_index(target.partition)
            .with_records(Some(records));
        (target.topic.as_str(), partition)
    });
    let topics = group_by_topic(entries)
        .into_iter()
        .map(|(topic, partitions)| {
            TopicProduceData::default()
                .with_name(topic_name(topic))
                .with_partition_data(partitions)
        })
        .collect();
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(30_000)
        .with_topic_data(topics)
}

/// InitProducerId (no transactional id) on any leader's connection.
async fn init_producer_id(
    task: &ProducerTask,
    connections: &mut HashMap<i32, Rc<Connection>>,
) -> io::Result<(i64, i16)> {
    let leader = task
        .cluster
        .partitions
        .first()
        .map(|target| target.leader)
        .ok_or_else(|| io::Error::other("the scenario has no partitions"))?;
    let connection = connection_for(task, connections, leader).await?;
    // The crate's default transactional id is Some(""), which Kafka refuses.
    let request = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let response: InitProducerIdResponse = connection
        .call(ApiKey::InitProducerId, INIT_PRODUCER_ID_VERSION, &request)
        .await?;
    if response.error_code != 0 {
        return Err(io::Error::other(format!(
            "InitProducerId failed with error code {}",
            response.error_code
        )));
    }
    Ok((response.producer_id.0, response.producer_epoch))
}

async fn connection_for(
    task: &ProducerTask,
    connections: &mut HashMap<i32, Rc<Connection>>,
    leader: i32,
) -> io::Result<Rc<Connection>> {
    if let Some(connection) = connections.get(&leader) {
        if !connection.is_closed() {
            return Ok(Rc::clone(connection));
        }
    }
    let connection = task
        .cluster
        .connect(
            leader,
            &format!("corelog-bench-producer-{}", task.producer_id),
        )
        .await?;
    connections.insert(leader, Rc::clone(&connection));
    Ok(connection)
}
