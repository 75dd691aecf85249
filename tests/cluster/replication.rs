//! Partition replication (issue 12) as clients see it when nodes crash or hang, and the
//! helpers every replicated-topic test of this binary shares: what Metadata says about a
//! partition's replicas and ISR, waiting until every node agrees on it, creating topics with
//! three replicas, and picking survivors. The scenarios live in submodules, one theme each:
//!
//! - `leader_kills`: an idempotent acks=all producer (librdkafka's, then kafka-python's)
//!   keeps every acknowledged record, once and in order, through `kill -9` of the partition
//!   leader (the controller elects a live in-sync replica, the restarted node truncates,
//!   catches up and rejoins the ISR).
//! - `paused_leader`: a leader that hangs (SIGSTOP) rather than dies is replaced the same
//!   way; when it resumes it acknowledges no acks=all write, cuts what it appended that its
//!   successor lacks, and follows.
//! - `min_insync`: min.insync.replicas refuses acks=all while the ISR is too small and
//!   accepts it again once the restarted follower is back.
//! - `coordinator_failover`: a consumer group keeps consuming, and keeps the offsets it
//!   committed, when its coordinator's node dies (the coordinator moves with the leadership
//!   of the group's `__consumer_offsets` partition).
//!
//! Their tools: `numbered_stream` (the producer that runs while nodes die), `read_back`
//! (reading a topic back and checking it against the acknowledgements), `replica_logs`
//! (every replica holds the same batches below the high watermark, through
//! `corelog debug dump-log --up-to`) and `python_producer`
//! (tests/python/replicated_produce.py). Other modules of this binary (`network_partition`,
//! `reassignment`, `quorum_loss`, `stray_replicas`) reuse them and the helpers here.
//!
//! The measured times (kill to the first acknowledged write, restart to ISR rejoin) are
//! printed, never asserted beyond generous bounds: tests do not assert speed.

#[path = "replication/coordinator_failover.rs"]
mod coordinator_failover;
#[path = "replication/leader_kills.rs"]
mod leader_kills;
#[path = "replication/min_insync.rs"]
mod min_insync;
#[path = "replication/numbered_stream.rs"]
pub(super) mod numbered_stream;
#[path = "replication/paused_leader.rs"]
mod paused_leader;
#[path = "replication/python_producer.rs"]
mod python_producer;
#[path = "replication/read_back.rs"]
pub(super) mod read_back;
#[path = "replication/replica_logs.rs"]
pub(super) mod replica_logs;

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;

use crate::common::cluster::Cluster;
use crate::common::{
    admin, metadata_consumer, record, send, wait_for_deliveries, TestProducer, ADMIN_TIMEOUT,
};
use crate::poll::poll_until_ok;
use crate::DATA_TIMEOUT;

/// Bound on a Metadata round trip to one node; a dead node costs the caller this much.
const METADATA_TIMEOUT: Duration = Duration::from_secs(3);
/// How long after a leader's `kill -9` the survivors may take to show a new leader and to
/// acknowledge a write: its broker session (3 s) runs out, the controller elects an ISR
/// member, and librdkafka finds it through Metadata. Ten times what a quiet host needs.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a restarted node may take to catch up and be back in every partition's ISR.
const REJOIN_TIMEOUT: Duration = Duration::from_secs(60);

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
    let waiting_for = format!("nodes {node_ids:?} never all showed {topic} with {what}");
    poll_until_ok(timeout, Duration::from_millis(100), &waiting_for, || {
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
            return Ok(last_views[&node_ids[0]]
                .clone()
                .expect("accepted views exist"));
        }
        Err(format!("last views (None: no answer): {last_views:#?}"))
    })
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

/// Sends one record (key = value) through `producer` and waits for its delivery report.
fn produce_one(
    producer: &TestProducer,
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
