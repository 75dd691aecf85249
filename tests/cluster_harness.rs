//! The multi-node harness (`common::cluster`) against real `corelog serve` processes: three
//! voters come up, each answers Metadata with all three brokers at the ports the harness
//! chose and a controller among them, and a follower killed with SIGKILL comes back on the
//! same port and data directory and rejoins. The restarted node registers only once its old
//! broker session has expired (up to `--broker-session-timeout-ms`, 9 s by default), which
//! is most of this test's running time.

mod common;

use std::time::Duration;

use common::cluster::Cluster;
use common::cluster_view::{cluster_view, wait_for_full_view};

const VOTERS: usize = 3;
/// How long every broker may take to register with the active controller and appear in
/// every node's Metadata: an election plus a few heartbeats.
const MEMBERSHIP_TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn three_voters_list_each_other_and_a_killed_voter_rejoins_on_its_port() {
    let mut cluster = Cluster::start(VOTERS, &[]);
    assert_eq!(cluster.node_ids(), vec![0, 1, 2]);
    let mut controller_id = -1;
    for node_id in cluster.node_ids() {
        assert!(cluster.is_running(node_id), "node {node_id} runs");
        controller_id = wait_for_full_view(&cluster, node_id, MEMBERSHIP_TIMEOUT).controller_id;
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
        wait_for_full_view(&cluster, node_id, MEMBERSHIP_TIMEOUT);
    }
}
