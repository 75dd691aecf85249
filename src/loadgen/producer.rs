//! One bench producer: generates messages on its open-loop schedule (or as
//! fast as its in-flight window allows for `rate = max`), batches them per
//! partition up to `batch_size_bytes` or `linger_ms`, sends Produce requests
//! over the project's client, and records publish latency from each message's
//! *due* time to its ack. Runs as a task on one load-generator core.

use std::collections::HashMap;
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
    ProducerId, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};

use super::cluster::{ClusterView, PartitionLeader, PRODUCE_VERSION};

/// InitProducerId version the load generator speaks (Kafka 2.5+ brokers answer it).
const INIT_PRODUCER_ID_VERSION: i16 = 3;
use super::payload::{write_payload, PayloadHeader};
use super::random::{message_size, Random};
use super::rate::OpenLoopSchedule;
use super::results::record_latency;
use super::scenario::{KeyDistribution, Scenario};
use super::shared::{CoreState, RunClock, Totals};
use crate::client::batch_builder::BatchBuilder;
use crate::client::connection::Connection;
use crate::runtime::placement::stable_hash;

/// Messages a producer may hold unsent (its own backlog when the broker is
/// slower than the offered rate); beyond it, due messages wait in the
/// schedule, still counting their latency from their due time.
const BACKLOG_MESSAGES_MAX: usize = 100_000;
/// Shortest sleep between scheduling passes.
const TICK: Duration = Duration::from_micros(50);

struct PartitionBatch {
    target: PartitionLeader,
    builder: BatchBuilder,
    due_ns: Vec<u64>,
    payload_bytes: u64,
    next_sequence: u64,
}

pub struct ProducerTask {
    pub producer_id: u32,
    /// This producer's share of the target rate; `None` for `max`.
    pub messages_per_second: Option<f64>,
    pub scenario: Rc<Scenario>,
    pub cluster: Rc<ClusterView>,
    pub clock: RunClock,
    pub core: Rc<CoreState>,
    pub totals: Arc<Totals>,
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
    let mut batches: Vec<PartitionBatch> = task
        .cluster
        .partitions
        .iter()
        .map(|target| PartitionBatch {
            target: target.clone(),
            builder: BatchBuilder::new(scenario.compression, scenario.batch_size_bytes + 1024),
            due_ns: Vec::new(),
            payload_bytes: 0,
            next_sequence: 0,
        })
        .collect();
    if scenario.idempotent {
        let (producer_id, producer_epoch) = init_producer_id(task, &mut connections).await?;
        for batch in &mut batches {
            batch.builder.set_idempotent(producer_id, producer_epoch);
        }
    }
    let in_flight = Rc::new(glommio::sync::Semaphore::new(u64::from(
        scenario.max_in_flight,
    )));
    let mut schedule = task
        .messages_per_second
        .map(|rate| OpenLoopSchedule::new(task.clock.now_ns(), rate));
    let mut random = Random::seeded(u64::from(task.producer_id) + 1);
    let mut value = Vec::with_capacity(scenario.mean_message_bytes() as usize + 64);
    let partition_count = batches.len();
    if partition_count == 0 {
        return Err(io::Error::other("the scenario has no partitions"));
    }
    let mut sticky_partition = (task.producer_id as usize) % partition_count;
    let mut key_counter: u64 = 0;
    let linger_ns = scenario.linger_ms * 1_000_000;
    loop {
        let now = task.clock.now_ns();
        if now >= task.clock.end_ns {
            break;
        }
        let buffered: usize = batches.iter().map(|b| b.due_ns.len()).sum();
        // Decide which messages are due now.
        let mut due_now = Vec::new();
        match schedule.as_mut() {
            Some(schedule) => {
                while buffered + due_now.len() < BACKLOG_MESSAGES_MAX {
                    match schedule.take_due(now) {
                        Some(due) => due_now.push(due),
                        None => break,
                    }
                }
            }
            None => {
                // Closed loop: fill the sticky batch; the in-flight window paces us.
                let batch = &batches[sticky_partition];
                let room = scenario
                    .batch_size_bytes
                    .saturating_sub(batch.builder.records_bytes());
                let count = (room as f64 / scenario.mean_message_bytes().max(1.0))
                    .ceil()
                    .max(1.0) as usize;
                due_now.extend(std::iter::repeat_n(now, count));
            }
        }
        for due in due_now {
            let (index, key) = choose_partition(
                scenario,
                &mut random,
                &mut key_counter,
                &mut sticky_partition,
                batches.len(),
            );
            let size = message_size(&scenario.message_size, &mut random);
            let key_bytes = key.map(|k| format!("key-{k}"));
            let record_bytes = size + key_bytes.as_ref().map(String::len).unwrap_or(0) + 32;
            // Like Kafka's producer, close a batch before a record would overflow it.
            let full = !batches[index].due_ns.is_empty()
                && batches[index].builder.records_bytes() + record_bytes
                    > scenario.batch_size_bytes;
            if full {
                send_batches(
                    task,
                    &mut connections,
                    &in_flight,
                    vec![&mut batches[index]],
                )
                .await?;
            }
            let batch = &mut batches[index];
            let header = PayloadHeader {
                due_time_us: task.clock.wall_us(due),
                producer_id: task.producer_id,
                sequence: batch.next_sequence,
            };
            batch.next_sequence += 1;
            write_payload(&mut value, header, size);
            batch.builder.push(
                (task.clock.wall_us(due) / 1_000) as i64,
                key_bytes.as_deref().map(str::as_bytes),
                &value,
            );
            batch.due_ns.push(due);
            batch.payload_bytes +=
                (value.len() + key_bytes.as_ref().map(String::len).unwrap_or(0)) as u64;
            if batch.builder.records_bytes() >= scenario.batch_size_bytes {
                send_batches(task, &mut connections, &in_flight, vec![batch]).await?;
                if scenario.key_distribution == KeyDistribution::None {
                    sticky_partition = (sticky_partition + 1) % batches.len();
                }
            }
        }
        // Lingered batches go out even if not full.
        let now = task.clock.now_ns();
        // Lingered batches leave together: one Produce request per leader broker,
        // as Kafka clients send them.
        let mut lingered_by_leader: HashMap<i32, Vec<&mut PartitionBatch>> = HashMap::new();
        for (index, batch) in batches.iter_mut().enumerate() {
            let lingered = batch
                .due_ns
                .first()
                .is_some_and(|first_due| now >= first_due + linger_ns);
            if lingered {
                if index == sticky_partition && scenario.key_distribution == KeyDistribution::None {
                    sticky_partition = (sticky_partition + 1) % partition_count;
                }
                lingered_by_leader
                    .entry(batch.target.leader)
                    .or_default()
                    .push(batch);
            }
        }
        for (_, group) in lingered_by_leader {
            send_batches(task, &mut connections, &in_flight, group).await?;
        }
        if let Some(schedule) = schedule.as_ref() {
            let next_linger = batches
                .iter()
                .filter_map(|b| b.due_ns.first())
                .map(|d| d + linger_ns)
                .min();
            let wake = schedule
                .next_due_ns()
                .min(next_linger.unwrap_or(u64::MAX))
                .min(task.clock.end_ns);
            let now = task.clock.now_ns();
            if wake > now {
                glommio::timer::sleep(Duration::from_nanos(wake - now).max(TICK)).await;
            }
        }
    }
    for batch in batches.iter_mut() {
        if !batch.due_ns.is_empty() {
            send_batches(task, &mut connections, &in_flight, vec![batch]).await?;
        }
    }
    // Wait for every outstanding ack.
    let _all = in_flight.acquire(u64::from(scenario.max_in_flight)).await;
    Ok(())
}

fn choose_partition(
    scenario: &Scenario,
    random: &mut Random,
    key_counter: &mut u64,
    sticky_partition: &mut usize,
    partitions: usize,
) -> (usize, Option<u64>) {
    let key = match scenario.key_distribution {
        KeyDistribution::None => return (*sticky_partition, None),
        KeyDistribution::RoundRobin => {
            *key_counter += 1;
            *key_counter % u64::from(scenario.key_count)
        }
        KeyDistribution::Random => random.below(u64::from(scenario.key_count)),
    };
    let index = (stable_hash(format!("key-{key}").as_bytes()) % partitions as u64) as usize;
    (index, Some(key))
}

/// Sends the given batches (all led by one broker) in one Produce request.
async fn send_batches(
    task: &ProducerTask,
    connections: &mut HashMap<i32, Rc<Connection>>,
    in_flight: &Rc<glommio::sync::Semaphore>,
    batches: Vec<&mut PartitionBatch>,
) -> io::Result<()> {
    let Some(leader) = batches.first().map(|b| b.target.leader) else {
        return Ok(());
    };
    let mut due_ns = Vec::new();
    let mut payload_bytes = 0;
    let mut parts = Vec::with_capacity(batches.len());
    for batch in batches {
        let records = batch.builder.finish().map_err(io::Error::other)?;
        due_ns.append(&mut batch.due_ns);
        payload_bytes += std::mem::replace(&mut batch.payload_bytes, 0);
        parts.push((batch.target.clone(), records));
    }
    let connection = connection_for(task, connections, leader).await?;
    let permit = Rc::clone(in_flight)
        .acquire_static_permit(1)
        .await
        .map_err(io::Error::from)?;
    let acks = task.scenario.acks;
    let request = produce_request(parts, acks);
    let receiver = connection.send(ApiKey::Produce, PRODUCE_VERSION, &request, acks != 0)?;
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
            ack_ns,
        );
    })
    .detach();
    Ok(())
}

fn record_acks(
    clock: &RunClock,
    core: &CoreState,
    totals: &Totals,
    acknowledged: bool,
    due_ns: &[u64],
    payload_bytes: u64,
    ack_ns: u64,
) {
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

fn produce_request(parts: Vec<(PartitionLeader, Bytes)>, acks: i16) -> ProduceRequest {
    let mut topics: Vec<TopicProduceData> = Vec::new();
    for (target, records) in parts {
        let partition = PartitionProduceData::default()
            .with_index(target.partition)
            .with_records(Some(records));
        match topics
            .iter_mut()
            .find(|t| t.name.0.as_str() == target.topic)
        {
            Some(topic) => topic.partition_data.push(partition),
            None => topics.push(
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(target.topic.clone())))
                    .with_partition_data(vec![partition]),
            ),
        }
    }
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
