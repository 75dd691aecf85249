//! A three-voter cluster of real `corelog serve` processes (issue 11) as librdkafka sees it:
//! every node lists every broker and a controller (`membership`); topics are spread over
//! the nodes by Kafka's round robin and clients bootstrapped at any node reach every
//! partition, group and coordinator (`data`); killing the active controller with SIGKILL
//! lets a survivor take over and the killed node come back with its data (`failover`);
//! producer ids are unique across nodes and a transaction spans partitions led by
//! different nodes (`producers`); a broker-only node joins and leads partitions
//! (`membership`). With three replicas per partition (issue 12), acknowledged records
//! survive repeated leader kills, min.insync.replicas refuses acks=all while the ISR is too
//! small, and a consumer group survives its coordinator's death (`replication`, one
//! submodule per scenario, with the replica and numbered-stream helpers); partitions
//! move to a new node and back to their preferred leaders under a live stream
//! (`reassignment`). A leader cut off by a network partition (nodes in network namespaces,
//! its link taken down) is fenced and replaced, acknowledges no acks=all write alone, and
//! truncates what it took alone once healed (`network_partition`). A node back from downtime
//! sets aside, as Kafka does, the replicas of topics deleted, re-created or moved while it
//! was away, and serves only the new topic (`stray_replicas`).
//!
//! Each test starts its own cluster (`common::cluster`): three processes of one shard each.
//! Clusters are heavy for a small test host, so the tests of this binary run one at a time
//! ([`serial`]) even when the test harness runs them on several threads. Brokers heartbeat
//! every 500 ms and are fenced after 3 s without one, so a killed node's session expires
//! (and a restarted node registers again) within seconds. Every wait is bounded
//! (`poll::poll_until_ok`, or `common::poll_until`).

#[path = "common/codec.rs"]
mod codec;
mod common;
#[path = "cluster/data.rs"]
mod data;
#[path = "cluster/failover.rs"]
mod failover;
#[path = "cluster/majority.rs"]
mod majority;
#[path = "cluster/membership.rs"]
mod membership;
#[path = "cluster/network_partition.rs"]
mod network_partition;
#[path = "cluster/poll.rs"]
mod poll;
#[path = "cluster/producers.rs"]
mod producers;
#[path = "cluster/quorum_loss.rs"]
mod quorum_loss;
#[path = "cluster/reassignment.rs"]
mod reassignment;
#[path = "cluster/replication.rs"]
mod replication;
#[path = "cluster/stray_replicas.rs"]
mod stray_replicas;
#[path = "cluster/txn_failover.rs"]
mod txn_failover;

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use common::cluster::{Cluster, QUICK_BROKER_SESSIONS};
use common::cluster_view::{cluster_view, wait_for_full_view};
use common::{assign_consumer, assign_from_beginning, consume_from, poll_until, topic_metadata};
use poll::poll_until_ok;

/// The client id of raw requests (`codec`).
const CLIENT_ID: &str = "corelog-cluster-test";

const VOTERS: usize = 3;
/// Appended to every node's command line after [`QUICK_BROKER_SESSIONS`]: no initial
/// rebalance delay, so groups form at once.
const GROUP_FLAGS: &[&str] = &["--group-initial-rebalance-delay-ms", "0"];
/// How long every broker may take to register with the active controller and appear in
/// every node's Metadata: an election plus a few heartbeats on a loaded host.
const MEMBERSHIP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a topic's partitions may take to show a leader in a node's Metadata once
/// CreateTopics (or CreatePartitions) answered.
const LEADERS_TIMEOUT: Duration = Duration::from_secs(20);
/// Bound on producing or reading what a test expects.
const DATA_TIMEOUT: Duration = Duration::from_secs(30);

/// Holds the lock that lets one test of this binary run a cluster at a time. A test that
/// panicked poisons it; the next test still runs (its own cluster is fresh).
fn serial() -> MutexGuard<'static, ()> {
    static ONE_CLUSTER_AT_A_TIME: Mutex<()> = Mutex::new(());
    ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Three voters (nodes 0, 1, 2) with quick broker sessions and [`GROUP_FLAGS`], returned
/// once every node lists all three brokers and a controller. Call [`serial`] first and keep
/// its guard for the test.
fn three_voters() -> Cluster {
    three_voters_with(&[])
}

/// [`three_voters`] with `extra` appended to every node's command line.
fn three_voters_with(extra: &[&str]) -> Cluster {
    let cluster = Cluster::start(
        VOTERS,
        &[QUICK_BROKER_SESSIONS, GROUP_FLAGS, extra].concat(),
    );
    assert_eq!(cluster.node_ids(), vec![0, 1, 2]);
    for node_id in cluster.node_ids() {
        wait_for_full_view(&cluster, node_id, MEMBERSHIP_TIMEOUT);
    }
    cluster
}

/// Waits until every node of `node_ids` names the same controller and `accept` takes it;
/// returns its id. Right after an election nodes may briefly disagree.
fn agreed_controller(
    cluster: &Cluster,
    node_ids: &[i32],
    what: &str,
    accept: impl Fn(i32) -> bool,
) -> i32 {
    let waiting_for = format!("nodes {node_ids:?} never agreed on {what}");
    poll_until_ok(
        MEMBERSHIP_TIMEOUT,
        Duration::from_millis(100),
        &waiting_for,
        || {
            let controllers: Vec<Option<i32>> = node_ids
                .iter()
                .map(|node_id| {
                    cluster_view(&cluster.bootstrap(*node_id)).map(|view| view.controller_id)
                })
                .collect();
            if let Some(Some(first)) = controllers.first().copied() {
                if controllers
                    .iter()
                    .all(|controller| *controller == Some(first))
                    && accept(first)
                {
                    return Ok(first);
                }
            }
            Err(format!(
                "last controller ids (None: no answer): {controllers:?}"
            ))
        },
    )
}

/// Partition -> leader of `topic` as a client bootstrapped at `node_id` sees it, once all
/// `partitions` partitions have a leader there.
fn leaders_seen_by(
    cluster: &Cluster,
    node_id: i32,
    topic: &str,
    partitions: i32,
) -> BTreeMap<i32, i32> {
    let bootstrap = cluster.bootstrap(node_id);
    let what = format!("node {node_id} to report {partitions} partitions of {topic} with leaders");
    poll_until(LEADERS_TIMEOUT, &what, || {
        let metadata = topic_metadata(&bootstrap, topic)?;
        let complete = metadata.error.is_none()
            && metadata.partition_leaders.len() == partitions as usize
            && metadata
                .partition_leaders
                .iter()
                .all(|(_, leader)| *leader >= 0);
        complete.then(|| metadata.partition_leaders.into_iter().collect())
    })
}

/// Partition -> leader of `topic`, asserting that every node of `node_ids` reports the same.
fn leaders_agreed_by(
    cluster: &Cluster,
    node_ids: &[i32],
    topic: &str,
    partitions: i32,
) -> BTreeMap<i32, i32> {
    let first = leaders_seen_by(cluster, node_ids[0], topic, partitions);
    for node_id in &node_ids[1..] {
        let seen = leaders_seen_by(cluster, *node_id, topic, partitions);
        assert_eq!(
            seen, first,
            "node {node_id} and node {} disagree on the leaders of {topic}",
            node_ids[0]
        );
    }
    first
}

/// How many partitions each broker leads.
fn leader_counts(leaders: &BTreeMap<i32, i32>) -> BTreeMap<i32, usize> {
    let mut counts = BTreeMap::new();
    for leader in leaders.values() {
        *counts.entry(*leader).or_insert(0) += 1;
    }
    counts
}

/// Kafka's rack-unaware placement (`assignReplicasToBrokersRackUnaware`): partition `p` is
/// led by broker `(start + p) % n` of the brokers sorted by id, for one start per topic.
fn assert_round_robin(leaders: &BTreeMap<i32, i32>, brokers: &[i32], topic: &str) {
    let position = |broker: i32| {
        brokers
            .iter()
            .position(|candidate| *candidate == broker)
            .unwrap_or_else(|| panic!("{topic}: leader {broker} is not one of {brokers:?}"))
    };
    let start = position(leaders[&0]);
    for (partition, leader) in leaders {
        let expected = brokers[(start + *partition as usize) % brokers.len()];
        assert_eq!(
            *leader, expected,
            "{topic}: partition {partition} is led by {leader}, Kafka's round robin from \
             broker {} over {brokers:?} gives {expected}; all leaders: {leaders:?}",
            brokers[start]
        );
    }
}

/// Records by position: (partition, offset) -> (key, value), both as text.
type Positions = BTreeMap<(i32, i64), (Option<String>, String)>;

/// Reads partitions `0..partitions` of `topic` from the beginning through a client
/// bootstrapped at `bootstrap` (with `extra` consumer settings) until at least `expected`
/// records arrived and every partition reported its end, or [`DATA_TIMEOUT`]. Panics if a
/// position is read twice.
fn read_positions(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    expected: usize,
    extra: &[(&str, &str)],
) -> Positions {
    let consumer = assign_consumer(bootstrap, extra);
    assign_from_beginning(&consumer, topic, partitions);
    let mut positions = Positions::new();
    for record in consume_from(&consumer, partitions, expected, DATA_TIMEOUT) {
        let key = record
            .key
            .map(|key| String::from_utf8_lossy(&key).into_owned());
        let value = String::from_utf8_lossy(record.value.as_deref().unwrap_or_default());
        let position = (record.partition, record.offset);
        if let Some(first) = positions.insert(position, (key, value.into_owned())) {
            panic!("{topic}: {position:?} read twice (first {first:?})");
        }
    }
    positions
}
