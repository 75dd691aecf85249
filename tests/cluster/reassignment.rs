//! Moving replicas between brokers (KIP-455) and electing preferred leaders (KIP-460) while
//! an idempotent acks=all producer writes: a new broker joins, kafka-python's
//! AlterPartitionReassignments moves one partition onto it and `corelog topic reassign
//! --onto` the other; each new replica catches up, joins the ISR, the old one is dropped
//! (and its files deleted), a leader that was moved away hands over, and ElectLeaders puts
//! the preferred replicas back in charge. A reassignment that cannot finish (its new
//! replica's node is down) is listed by ListPartitionReassignments and cancelled. Every
//! acknowledged record is read back once, in order, and every replica holds the same
//! batches below the high watermark.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rdkafka::consumer::Consumer;
use serde_json::Value;

use super::replication::create_assigned_topic;
use super::replication::numbered_stream::{wait_for_more_acks, NumberedStream};
use super::replication::read_back::{acknowledged, check_partition, read_numbered};
use super::replication::replica_logs::assert_replicas_identical;
use crate::common::cluster::Cluster;
use crate::common::cluster_view::cluster_view;
use crate::common::metadata_consumer;
use crate::poll::poll_until_ok;
use crate::{serial, three_voters};

const TOPIC: &str = "moving";
const PARTITIONS: i32 = 2;
/// How long a move may take: the new replica copies a few MB and joins the ISR.
const MOVE_TIMEOUT: Duration = Duration::from_secs(60);
const METADATA_TIMEOUT: Duration = Duration::from_secs(3);

/// Partition -> (leader, replicas in assignment order) as the node at `bootstrap` answers
/// Metadata; `None` when it does not answer.
fn assignment(bootstrap: &str) -> Option<Vec<(i32, Vec<i32>)>> {
    let metadata = metadata_consumer(bootstrap)
        .fetch_metadata(Some(TOPIC), METADATA_TIMEOUT)
        .ok()?;
    let topic = metadata
        .topics()
        .iter()
        .find(|topic| topic.name() == TOPIC)?;
    let mut partitions: Vec<_> = topic
        .partitions()
        .iter()
        .map(|partition| {
            (
                partition.id(),
                (partition.leader(), partition.replicas().to_vec()),
            )
        })
        .collect();
    partitions.sort_unstable();
    Some(partitions.into_iter().map(|(_, state)| state).collect())
}

/// Waits until every node in `node_ids` shows `expected` (leader, replicas) per partition.
fn wait_for_assignment(
    cluster: &Cluster,
    node_ids: &[i32],
    expected: &[(i32, Vec<i32>)],
    what: &str,
) {
    let waiting_for = format!("{what}: nodes {node_ids:?} did not all show {expected:?}");
    poll_until_ok(
        MOVE_TIMEOUT,
        Duration::from_millis(200),
        &waiting_for,
        || {
            let views: Vec<_> = node_ids
                .iter()
                .map(|node| assignment(&cluster.bootstrap(*node)))
                .collect();
            if views.iter().all(|view| view.as_deref() == Some(expected)) {
                return Ok(());
            }
            Err(format!("they show {views:?}"))
        },
    );
}

/// Runs tests/python/replica_admin.py with `args`; its JSON summary.
fn replica_admin(bootstrap: &str, args: &[&str]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/replica_admin.py");
    let output = Command::new("python3")
        .arg(&script)
        .args([
            "--bootstrap",
            bootstrap,
            "--topic",
            TOPIC,
            "--group",
            "unused",
        ])
        .args(["--timeout-s", "30"])
        .args(args)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "run python3 {}: {error} (kafka-python 3.x is a test dependency)",
                script.display()
            )
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "replica_admin.py {args:?} failed: {}\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last)
        .unwrap_or_else(|error| panic!("replica_admin.py {args:?} printed {last:?}: {error}"))
}

/// The ongoing reassignments kafka-python lists, by "<topic>-<partition>".
fn ongoing(bootstrap: &str) -> serde_json::Map<String, Value> {
    match replica_admin(bootstrap, &["--action", "list"]) {
        Value::Object(mut summary) => match summary.remove("ongoing") {
            Some(Value::Object(ongoing)) => ongoing,
            other => panic!("list printed {other:?}"),
        },
        other => panic!("list printed {other:?}"),
    }
}

fn wait_until_no_reassignment(bootstrap: &str) {
    let what = "reassignments still under way";
    poll_until_ok(MOVE_TIMEOUT, Duration::from_millis(300), what, || {
        let left = ongoing(bootstrap);
        if left.is_empty() {
            return Ok(());
        }
        Err(format!("{left:?}"))
    });
}

/// `corelog topic <args>` against `bootstrap`; its stdout.
fn corelog_topic(bootstrap: &str, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_corelog"))
        .args(["topic", "--brokers", bootstrap])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run corelog topic");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "corelog topic {args:?} failed: {}\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn hosts(cluster: &Cluster, node_id: i32, partition: i32) -> bool {
    cluster
        .data_dir(node_id)
        .join(format!("{TOPIC}-{partition}"))
        .exists()
}

#[test]
fn partitions_move_to_a_new_broker_and_back_to_their_preferred_leaders_without_loss() {
    let _serial = serial();
    let mut cluster = three_voters();
    cluster.add_broker_only(3);
    let everyone = [0, 1, 2, 3];
    let bootstrap = cluster.bootstrap_all();
    create_assigned_topic(&bootstrap, TOPIC, &[&[0, 1, 2], &[1, 2, 0]]);
    wait_for_assignment(
        &cluster,
        &everyone,
        &[(0, vec![0, 1, 2]), (1, vec![1, 2, 0])],
        "the topic as created",
    );
    let stream = NumberedStream::start(&bootstrap, TOPIC, PARTITIONS);
    wait_for_more_acks(&stream, "before any move");

    // kafka-python moves partition 0 off node 0 (its leader) onto node 3.
    let moved = replica_admin(
        &bootstrap,
        &[
            "--action",
            "reassign",
            "--partition",
            "0",
            "--replicas",
            "3,1,2",
        ],
    );
    assert_eq!(moved["error"], Value::Null, "{moved}");
    wait_until_no_reassignment(&bootstrap);
    // The old leader was removed: the first target replica in sync leads.
    wait_for_assignment(
        &cluster,
        &everyone,
        &[(3, vec![3, 1, 2]), (1, vec![1, 2, 0])],
        "partition 0 moved to node 3",
    );
    wait_for_more_acks(&stream, "after partition 0 moved");

    // Our CLI spreads the topic over nodes 1-3: partition 0 is only reordered (done at
    // once), partition 1 moves off node 0.
    let printed = corelog_topic(
        &bootstrap,
        &["reassign", TOPIC, "--onto", "1,2,3", "--wait-secs", "60"],
    );
    assert!(printed.contains("complete"), "{printed}");
    wait_for_more_acks(&stream, "after partition 1 moved");

    // Preferred elections put the first replicas in charge.
    let elected = replica_admin(&bootstrap, &["--action", "elect"]);
    eprintln!("ElectLeaders answered {elected}");
    wait_for_assignment(
        &cluster,
        &everyone,
        &[(1, vec![1, 2, 3]), (2, vec![2, 3, 1])],
        "preferred leaders after ElectLeaders",
    );
    let again = replica_admin(&bootstrap, &["--action", "elect"]);
    assert_eq!(
        again["results"],
        serde_json::json!({"0": 84, "1": 84}),
        "a second election is not needed"
    );
    wait_for_more_acks(&stream, "after the elections");

    // Node 0 deleted the replicas it no longer has; node 3 holds both.
    let what = format!("node 0 still has {TOPIC} files");
    poll_until_ok(MOVE_TIMEOUT, Duration::from_millis(200), &what, || {
        let left: Vec<i32> = [0, 1]
            .into_iter()
            .filter(|partition| hosts(&cluster, 0, *partition))
            .collect();
        if left.is_empty() {
            return Ok(());
        }
        Err(format!("partitions {left:?}"))
    });
    assert!(hosts(&cluster, 3, 0) && hosts(&cluster, 3, 1));

    // A move that cannot finish (node 0 is down) is listed, then cancelled.
    cluster.kill9(0);
    // Until node 0 is fenced, Metadata still names it (as broker, maybe as controller)
    // and an admin client may send there.
    let survivors = [1, 2, 3];
    poll_until_ok(
        MOVE_TIMEOUT,
        Duration::from_millis(200),
        "node 0 never left the metadata",
        || {
            let views: Vec<_> = survivors
                .iter()
                .map(|node| cluster_view(&cluster.bootstrap(*node)))
                .collect();
            let settled = views.iter().all(|view| {
                view.as_ref()
                    .is_some_and(|view| view.controller_id >= 1 && !view.brokers.contains_key(&0))
            });
            if settled {
                return Ok(());
            }
            Err(format!("survivors {survivors:?} show {views:?}"))
        },
    );
    // Clients bootstrap at the survivors from here on.
    let survivors_bootstrap = bootstrap_without(&cluster, 0);
    let stuck = replica_admin(
        &survivors_bootstrap,
        &[
            "--action",
            "reassign",
            "--partition",
            "1",
            "--replicas",
            "0,3,1",
        ],
    );
    assert_eq!(stuck["error"], Value::Null, "{stuck}");
    let listed = ongoing(&survivors_bootstrap);
    let state = &listed[&format!("{TOPIC}-1")];
    assert_eq!(
        state["adding_replicas"],
        serde_json::json!([0]),
        "{listed:?}"
    );
    assert_eq!(
        state["removing_replicas"],
        serde_json::json!([2]),
        "{listed:?}"
    );
    let cancelled = replica_admin(
        &survivors_bootstrap,
        &[
            "--action",
            "reassign",
            "--partition",
            "1",
            "--replicas",
            "none",
        ],
    );
    assert_eq!(cancelled["error"], Value::Null, "{cancelled}");
    assert!(ongoing(&survivors_bootstrap).is_empty());
    wait_for_assignment(
        &cluster,
        &[1, 2, 3],
        &[(1, vec![1, 2, 3]), (2, vec![3, 1, 2])],
        "partition 1 back to its replicas after the cancel",
    );
    let nothing = replica_admin(
        &survivors_bootstrap,
        &[
            "--action",
            "reassign",
            "--partition",
            "1",
            "--replicas",
            "none",
        ],
    );
    assert_eq!(
        nothing["error"],
        Value::String("NoReassignmentInProgressError".into())
    );
    wait_for_more_acks(&stream, "after the cancel");

    let (reports, fatal) = stream.finish();
    assert_eq!(fatal, None, "librdkafka gave up the idempotent producer");
    let acked = acknowledged(&reports, PARTITIONS);
    let read = read_numbered(&survivors_bootstrap, TOPIC, PARTITIONS);
    let mut problems = Vec::new();
    for partition in 0..PARTITIONS {
        let empty = Default::default();
        let records = read.get(&partition).map_or(&[][..], Vec::as_slice);
        problems.extend(check_partition(
            partition,
            records,
            acked.get(&partition).unwrap_or(&empty),
        ));
    }
    assert!(problems.is_empty(), "{problems:#?}");
    eprintln!(
        "{} records acknowledged through two moves, two elections and a cancel",
        acked.values().map(|numbers| numbers.len()).sum::<usize>()
    );
    assert_replicas_identical(&cluster, TOPIC, PARTITIONS);
    cluster.assert_no_node_panicked();
}

/// Bootstrap addresses of every node but `down`.
fn bootstrap_without(cluster: &Cluster, down: i32) -> String {
    cluster
        .node_ids()
        .into_iter()
        .filter(|node| *node != down)
        .map(|node| cluster.bootstrap(node))
        .collect::<Vec<_>>()
        .join(",")
}
