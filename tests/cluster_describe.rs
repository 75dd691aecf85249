//! `corelog cluster describe` (and `corelog topic describe`) against real `corelog serve`
//! processes: on three voters it lists the three brokers, the active controller, the quorum
//! leader and three voters; after a follower is killed with SIGKILL, another follower (whose
//! DescribeQuorum goes to the leader) shows it fenced (DescribeCluster v2) and lagging or
//! unknown in the quorum, and the partition it led without a leader. A single node describes
//! itself as a quorum of one.

#[path = "cli_support/mod.rs"]
mod cli_support;
mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use cli_support::{corelog, Run};
use common::cluster::Cluster;
use common::{poll_until, unique_topic, Broker};

const VOTERS: i32 = 3;
/// Short broker sessions, so a killed node is fenced within seconds.
const SESSION_ARGS: &[&str] = &[
    "--broker-session-timeout-ms",
    "3000",
    "--broker-heartbeat-interval-ms",
    "500",
];
/// Every broker registered and unfenced, and the leader heard from every voter: an election
/// plus a few heartbeats.
const MEMBERSHIP_TIMEOUT: Duration = Duration::from_secs(45);
/// The killed node's session (3 s) runs out and the fencing is committed and seen.
const FENCING_TIMEOUT: Duration = Duration::from_secs(45);
/// A new topic's partitions open on their nodes.
const TOPIC_TIMEOUT: Duration = Duration::from_secs(30);

fn describe_json(bootstrap: &str) -> Option<Value> {
    let run = corelog(bootstrap, &["cluster", "describe", "--json"]);
    (run.code == Some(0)).then(|| run.json())
}

fn array(value: &Value) -> &Vec<Value> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("expected an array: {value}"))
}

fn id(value: &Value) -> i32 {
    value["id"]
        .as_i64()
        .and_then(|id| i32::try_from(id).ok())
        .unwrap_or_else(|| panic!("no id: {value}"))
}

/// Broker id -> whether fenced.
fn broker_states(view: &Value) -> Vec<(i32, bool)> {
    array(&view["brokers"])
        .iter()
        .map(|broker| (id(broker), broker["fenced"] == true))
        .collect()
}

fn voter(view: &Value, node_id: i32) -> &Value {
    array(&view["quorum"]["voters"])
        .iter()
        .find(|voter| id(voter) == node_id)
        .unwrap_or_else(|| panic!("voter {node_id} missing: {view}"))
}

/// Partition -> leader, from `corelog topic describe --json` (-1 without a leader).
fn partition_leaders(bootstrap: &str, topic: &str) -> Option<Vec<(i64, i64)>> {
    let run = corelog(bootstrap, &["topic", "describe", topic, "--json"]);
    if run.code != Some(0) {
        return None;
    }
    let described = run.json();
    Some(
        array(&described["partitions"])
            .iter()
            .map(|partition| {
                let index = partition["partition"].as_i64().expect("partition index");
                (index, partition["leader"].as_i64().expect("leader"))
            })
            .collect(),
    )
}

#[test]
fn cluster_describe_shows_brokers_controller_quorum_and_a_killed_follower_fenced_and_lagging() {
    let mut cluster = Cluster::start(VOTERS as usize, SESSION_ARGS);
    let all_ids: Vec<i32> = (0..VOTERS).collect();
    let first = cluster.bootstrap(0);
    let view = poll_until(
        MEMBERSHIP_TIMEOUT,
        "node 0 to describe 3 live brokers, a controller and 3 voters with known log ends",
        || {
            let view = describe_json(&first)?;
            let live =
                broker_states(&view) == all_ids.iter().map(|id| (*id, false)).collect::<Vec<_>>();
            let voters = array(&view["quorum"]["voters"]);
            let heard_from_all = voters.len() == VOTERS as usize
                && voters.iter().all(|voter| voter["log_end_offset"].is_i64());
            (live
                && view["controller_id"].is_i64()
                && view["quorum"]["leader_id"].is_i64()
                && heard_from_all)
                .then_some(view)
        },
    );
    eprintln!("described: {view:#}");
    let cluster_id = view["cluster_id"].as_str().expect("cluster id").to_string();
    assert!(!cluster_id.is_empty());
    for broker in array(&view["brokers"]) {
        let node_id = id(broker);
        assert_eq!(broker["host"], "127.0.0.1", "{broker}");
        assert_eq!(
            broker["port"],
            i64::from(cluster.kafka_port(node_id)),
            "{broker}"
        );
    }
    let controller = view["controller_id"].as_i64().expect("controller") as i32;
    let leader = view["quorum"]["leader_id"].as_i64().expect("leader") as i32;
    assert!(
        all_ids.contains(&controller) && all_ids.contains(&leader),
        "{view}"
    );
    assert!(
        view["quorum"]["leader_epoch"].as_i64().expect("epoch") >= 1,
        "{view}"
    );
    let high_watermark = view["quorum"]["high_watermark"].as_i64().expect("hw");
    assert!(
        high_watermark > 0,
        "the log has the cluster id and registrations: {view}"
    );
    let voter_ids: Vec<i32> = array(&view["quorum"]["voters"]).iter().map(id).collect();
    assert_eq!(voter_ids, all_ids);
    assert_eq!(
        voter(&view, leader)["lag"],
        0,
        "the leader never lags: {view}"
    );

    // The same as a table.
    let text = corelog(&first, &["cluster", "describe"]).ok().stdout;
    assert!(
        text.contains(&format!("Cluster id: {cluster_id}")),
        "{text}"
    );
    assert!(text.contains("Controller: "), "{text}");
    assert_eq!(text.matches(" live").count(), VOTERS as usize, "{text}");
    assert!(
        text.contains(&format!("Quorum: leader {leader}  epoch ")),
        "{text}"
    );
    assert_eq!(
        text.matches("follower").count(),
        VOTERS as usize - 1,
        "{text}"
    );

    // One partition per node: topic describe names each partition's leader.
    let topic = unique_topic("described");
    corelog(&first, &["topic", "create", &topic, "--partitions", "3"]).ok();
    let leaders = poll_until(TOPIC_TIMEOUT, "topic describe to show every leader", || {
        partition_leaders(&first, &topic)
    });
    let leading: BTreeSet<i64> = leaders.iter().map(|(_, leader)| *leader).collect();
    assert_eq!(
        leading,
        BTreeSet::from([0, 1, 2]),
        "leaders spread: {leaders:?}"
    );

    // Kill a follower; ask the other follower, which forwards DescribeQuorum to the leader.
    let victim = *all_ids
        .iter()
        .find(|id| **id != leader)
        .expect("a follower");
    let witness = *all_ids
        .iter()
        .find(|id| **id != leader && **id != victim)
        .expect("another follower");
    cluster.kill9(victim);
    let witness_bootstrap = cluster.bootstrap(witness);
    let after = poll_until(
        FENCING_TIMEOUT,
        "the killed follower to be shown fenced and lagging or unknown",
        || {
            let view = describe_json(&witness_bootstrap)?;
            let fenced = broker_states(&view)
                == all_ids
                    .iter()
                    .map(|id| (*id, *id == victim))
                    .collect::<Vec<_>>();
            let killed = voter(&view, victim);
            let behind = killed["log_end_offset"].is_null()
                || killed["lag"].as_i64().is_some_and(|lag| lag > 0);
            (fenced && behind).then_some(view)
        },
    );
    eprintln!("after kill -9 of node {victim}: {after:#}");
    assert_eq!(array(&after["quorum"]["voters"]).len(), VOTERS as usize);
    let Run { stdout: text, .. } = corelog(&witness_bootstrap, &["cluster", "describe"]).ok();
    let victim_row = text
        .lines()
        .find(|line| line.starts_with(&format!("{victim} ")) && line.contains("127.0.0.1:"))
        .unwrap_or_else(|| panic!("no broker row for {victim}: {text}"));
    assert!(victim_row.trim_end().ends_with("fenced"), "{text}");

    // Its partition has no leader now; topic describe still lists it.
    let leaders = poll_until(
        TOPIC_TIMEOUT,
        "the killed node's partition to lose its leader",
        || {
            partition_leaders(&witness_bootstrap, &topic).filter(|leaders| {
                leaders
                    .iter()
                    .all(|(_, leader)| *leader != i64::from(victim))
            })
        },
    );
    assert_eq!(
        leaders.iter().filter(|(_, leader)| *leader == -1).count(),
        1,
        "{leaders:?}"
    );
    let text = corelog(&witness_bootstrap, &["topic", "describe", &topic])
        .ok()
        .stdout;
    assert!(text.contains("none"), "leaderless partition shown: {text}");
}

#[test]
fn cluster_describe_on_a_single_node_shows_a_quorum_of_one() {
    let broker = Broker::start(1, &[]);
    let run = corelog(&broker.bootstrap(), &["cluster", "describe", "--json"]).ok();
    let view = run.json();
    let brokers = array(&view["brokers"]);
    assert_eq!(brokers.len(), 1, "{view}");
    let node_id = id(&brokers[0]);
    assert_eq!(brokers[0]["fenced"], false);
    assert_eq!(brokers[0]["port"], i64::from(broker.port()));
    assert_eq!(view["controller_id"], node_id);
    let quorum = &view["quorum"];
    assert_eq!(quorum["leader_id"], node_id, "{view}");
    assert_eq!(quorum["leader_epoch"], 0);
    assert_eq!(quorum["high_watermark"], 0);
    let voters = array(&quorum["voters"]);
    assert_eq!(voters.len(), 1, "{view}");
    assert_eq!(id(&voters[0]), node_id);
    assert_eq!(
        (
            voters[0]["log_end_offset"].as_i64(),
            voters[0]["lag"].as_i64()
        ),
        (Some(0), Some(0))
    );
    assert!(array(&quorum["observers"]).is_empty());

    let text = corelog(&broker.bootstrap(), &["cluster", "describe"])
        .ok()
        .stdout;
    assert!(
        text.contains(&format!(
            "Quorum: leader {node_id}  epoch 0  high watermark 0"
        )),
        "{text}"
    );
    assert!(text.contains(" live"), "{text}");
}
