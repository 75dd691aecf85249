//! The multi-node harness (`common::cluster`) against real `corelog serve` processes: three
//! voters come up, each answers Metadata with all three brokers at the ports the harness
//! chose and a controller among them, and a follower killed with SIGKILL comes back on the
//! same port and data directory and rejoins. The restarted node registers only once its old
//! broker session has expired (up to `--broker-session-timeout-ms`, 9 s by default), which
//! is most of this test's running time.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::Consumer;

use common::cluster::Cluster;
use common::{metadata_consumer, poll_until};

const VOTERS: usize = 3;
/// How long every broker may take to register with the active controller and appear in
/// every node's Metadata: an election plus a few heartbeats.
const MEMBERSHIP_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound of one Metadata round trip (and of librdkafka's wait for the controller id).
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

/// What one node tells a client that bootstraps from it alone.
#[derive(Debug, PartialEq)]
struct ClusterView {
    /// The node id of the broker that answered; -1 for the bootstrap connection, which
    /// librdkafka keeps apart from the brokers it learns from Metadata.
    answered_by: i32,
    /// Broker id to its advertised port.
    brokers: BTreeMap<i32, i32>,
    /// -1 while no controller is known.
    controller_id: i32,
}

/// `None` if the node did not answer Metadata in time.
fn cluster_view(bootstrap: &str) -> Option<ClusterView> {
    let consumer = metadata_consumer(bootstrap);
    let metadata = consumer.fetch_metadata(None, METADATA_TIMEOUT).ok()?;
    let brokers = metadata
        .brokers()
        .iter()
        .map(|broker| (broker.id(), broker.port()))
        .collect();
    // rdkafka's Metadata has no controller id; librdkafka keeps the one of the last
    // Metadata answer, which the call above just received.
    let timeout_ms = i32::try_from(METADATA_TIMEOUT.as_millis()).expect("timeout fits i32");
    // SAFETY: the pointer is the live librdkafka handle owned by `consumer`, which outlives
    // this call; rd_kafka_controllerid only reads the handle's metadata cache.
    let controller_id = unsafe {
        rdkafka::bindings::rd_kafka_controllerid(consumer.client().native_ptr(), timeout_ms)
    };
    Some(ClusterView {
        answered_by: metadata.orig_broker_id(),
        brokers,
        controller_id,
    })
}

/// Waits until `node_id` answers (itself, not a broker the client learned from it), lists
/// every node at the port the harness gave it, and names one of them as controller.
/// Returns that answer.
fn wait_for_full_view(cluster: &Cluster, node_id: i32) -> ClusterView {
    let expected_brokers: BTreeMap<i32, i32> = cluster
        .node_ids()
        .into_iter()
        .map(|id| (id, i32::from(cluster.kafka_port(id))))
        .collect();
    let bootstrap = cluster.bootstrap(node_id);
    let mut last_view = None;
    let what = format!("node {node_id} to list brokers {expected_brokers:?} and a controller");
    poll_until(MEMBERSHIP_TIMEOUT, &what, || {
        let view = cluster_view(&bootstrap);
        if view != last_view {
            eprintln!("node {node_id} answers {view:?}");
        }
        last_view = view;
        last_view.take_if(|view| {
            (view.answered_by == -1 || view.answered_by == node_id)
                && view.brokers == expected_brokers
                && expected_brokers.contains_key(&view.controller_id)
        })
    })
}

#[test]
fn three_voters_list_each_other_and_a_killed_voter_rejoins_on_its_port() {
    let mut cluster = Cluster::start(VOTERS, &[]);
    assert_eq!(cluster.node_ids(), vec![0, 1, 2]);
    let mut controller_id = -1;
    for node_id in cluster.node_ids() {
        assert!(cluster.is_running(node_id), "node {node_id} runs");
        controller_id = wait_for_full_view(&cluster, node_id).controller_id;
    }

    // A follower: the harness's crash restart is under test here, not a controller failover.
    let victim = if controller_id == 0 { 1 } else { 0 };
    let survivors: Vec<i32> = (0..3).filter(|node_id| *node_id != victim).collect();
    let victim_bootstrap = cluster.bootstrap(victim);
    cluster.kill9(victim);
    assert!(!cluster.is_running(victim), "node {victim} was killed");
    let expected_bootstrap = format!(
        "{},{}",
        cluster.bootstrap(survivors[0]),
        cluster.bootstrap(survivors[1])
    );
    assert_eq!(cluster.bootstrap_all(), expected_bootstrap);
    for survivor in survivors {
        cluster.assert_alive(survivor);
        assert!(
            cluster_view(&cluster.bootstrap(survivor)).is_some(),
            "node {survivor} answers Metadata while node {victim} is down"
        );
    }

    cluster.restart(victim);
    assert!(cluster.is_running(victim), "node {victim} was restarted");
    assert_eq!(cluster.bootstrap(victim), victim_bootstrap, "same port");
    for node_id in cluster.node_ids() {
        wait_for_full_view(&cluster, node_id);
    }
}
