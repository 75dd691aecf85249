//! Stray replicas (Kafka's KAFKA-14616, `LogManager.isStrayKraftReplica`): a node that was
//! down while a topic it held was deleted, deleted and created again under the same name
//! (a new topic id), or moved to other brokers, comes back to directories the metadata no
//! longer gives it. Its first metadata image sets them aside as Kafka does: each is renamed
//! `<topic>-<partition>.<id>-stray` with its data intact, and nothing of it is served. The
//! re-created topic's replica on that node starts empty, copies the new topic from its
//! leader, joins the ISR, and once it leads it serves the new records only.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::replication::replica_logs::{assert_replicas_identical, dump_log, last_offset_of};
use super::replication::{
    bootstrap_of, create_assigned_topic, isr_holds_all, others, wait_for_replicas,
};
use crate::common::cluster::Cluster;
use crate::common::{
    consume_all, producer, record, send, try_delete_topic, wait_for_successful_deliveries,
    watermarks,
};
use crate::{agreed_controller, serial, three_voters, DATA_TIMEOUT};

/// Deleted and created again while the node is down; the node is a replica of both.
const RECREATED: &str = "stray-recreated";
/// Deleted while the node is down.
const DELETED: &str = "stray-deleted";
/// Reassigned to the two other nodes while the node is down.
const MOVED: &str = "stray-moved";
/// Records each old topic holds before the node stops.
const OLD_RECORDS: usize = 30;
/// Records the re-created topic gets while the node is down.
const NEW_RECORDS: usize = 5;
/// How long the returning node may take to be in the re-created topic's ISR, or to lead it
/// after a preferred election.
const REJOIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Produces `count` records `<prefix>-<i>` to partition 0 of `topic` with acks=all.
fn produce_values(bootstrap: &str, topic: &str, prefix: &str, count: usize) {
    let producer = producer(bootstrap, &[]);
    let values: Vec<String> = (0..count).map(|id| format!("{prefix}-{id}")).collect();
    for (id, value) in values.iter().enumerate() {
        send(
            &producer,
            record(topic, id, value.as_bytes(), value.as_bytes()).partition(0),
        );
    }
    wait_for_successful_deliveries(&producer, count, DATA_TIMEOUT);
}

/// `corelog topic <args>` against `bootstrap`; panics with its output if it fails.
fn corelog_topic(bootstrap: &str, args: &[&str]) {
    let output = Command::new(env!("CARGO_BIN_EXE_corelog"))
        .args(["topic", "--brokers", bootstrap])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run corelog topic");
    assert!(
        output.status.success(),
        "corelog topic {args:?} failed: {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The directories in `data_dir` set aside for partition 0 of `topic`.
fn stray_dirs_of(data_dir: &Path, topic: &str) -> Vec<PathBuf> {
    let prefix = format!("{topic}-0.");
    let entries = std::fs::read_dir(data_dir)
        .unwrap_or_else(|error| panic!("list {}: {error}", data_dir.display()));
    entries
        .map(|entry| entry.expect("read a directory entry").path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with(&prefix) && name.ends_with("-stray"))
        })
        .collect()
}

/// Asserts that exactly one directory was set aside for `topic` on the node and that it
/// still holds the topic's [`OLD_RECORDS`] records.
fn assert_set_aside_with_its_data(cluster: &Cluster, node_id: i32, topic: &str) {
    let strays = stray_dirs_of(cluster.data_dir(node_id), topic);
    assert_eq!(
        strays.len(),
        1,
        "node {node_id}: one stray directory of {topic}, found {strays:?}"
    );
    let batches = dump_log(&strays[0], i64::MAX).unwrap_or_else(|problem| panic!("{problem}"));
    let last_offset = batches.last().and_then(|line| last_offset_of(line));
    assert_eq!(
        last_offset,
        Some(OLD_RECORDS as i64 - 1),
        "{}: the old records are kept as they were; batches {batches:?}",
        strays[0].display()
    );
    assert!(
        cluster.log_contains(node_id, "stray replica")
            && cluster.log_contains(node_id, &format!("topic={topic}")),
        "node {node_id} logs the stray replica of {topic}:\n{}",
        cluster.recent_log(node_id)
    );
}

#[test]
fn a_returning_node_sets_aside_replicas_of_deleted_recreated_and_moved_topics() {
    let _serial = serial();
    let mut cluster = three_voters();
    // The node that goes away is not the active controller: no election slows the test.
    let controller = agreed_controller(&cluster, &[0, 1, 2], "a controller", |_| true);
    let away = (0..3)
        .find(|node| *node != controller)
        .expect("three nodes");
    let staying = others(&cluster, away);
    let (first, second) = (staying[0], staying[1]);
    let bootstrap = cluster.bootstrap_all();
    create_assigned_topic(&bootstrap, RECREATED, &[&[first, second, away]]);
    create_assigned_topic(&bootstrap, DELETED, &[&[first, away]]);
    create_assigned_topic(&bootstrap, MOVED, &[&[first, away, second]]);
    for topic in [RECREATED, DELETED, MOVED] {
        // acks=all with the node in the ISR: its directory holds every record.
        wait_for_replicas(
            &cluster,
            &[away],
            topic,
            REJOIN_TIMEOUT,
            "every replica in sync",
            |r| {
                r.values()
                    .all(|state| state.leader >= 0 && state.isr == state.replicas)
            },
        );
        produce_values(&bootstrap, topic, "old", OLD_RECORDS);
    }

    cluster.stop_graceful(away);
    let survivors = bootstrap_of(&cluster, &staying);
    for topic in [RECREATED, DELETED] {
        try_delete_topic(&survivors, topic)
            .unwrap_or_else(|code| panic!("DeleteTopics {topic}: {code:?}"));
    }
    // The node that is away is the new topic's preferred leader.
    create_assigned_topic(&survivors, RECREATED, &[&[away, first, second]]);
    let onto = format!("{first},{second}");
    corelog_topic(
        &survivors,
        &["reassign", MOVED, "--partition", "0", "--replicas", &onto],
    );
    produce_values(&survivors, RECREATED, "new", NEW_RECORDS);

    cluster.restart(away);
    let data_dir = cluster.data_dir(away);
    for topic in [DELETED, MOVED] {
        assert!(
            !data_dir.join(format!("{topic}-0")).exists(),
            "{topic}-0 is no longer a partition directory on node {away}"
        );
    }
    for topic in [RECREATED, DELETED, MOVED] {
        assert_set_aside_with_its_data(&cluster, away, topic);
    }

    // The new topic's replica starts empty, copies from the leader and joins the ISR.
    let everyone = [0, 1, 2];
    wait_for_replicas(
        &cluster,
        &everyone,
        RECREATED,
        REJOIN_TIMEOUT,
        "all in the ISR",
        |r| isr_holds_all(r, &everyone),
    );
    assert_replicas_identical(&cluster, RECREATED, 1);
    // Leading it, the node serves the new topic's records and nothing of the old one.
    corelog_topic(
        &bootstrap,
        &["elect-leaders", RECREATED, "--partition", "0"],
    );
    wait_for_replicas(
        &cluster,
        &everyone,
        RECREATED,
        REJOIN_TIMEOUT,
        "the node leading",
        |r| r.get(&0).is_some_and(|state| state.leader == away),
    );
    let at_away = cluster.bootstrap(away);
    assert_eq!(watermarks(&at_away, RECREATED, 0), (0, NEW_RECORDS as i64));
    let read: Vec<(i64, String)> = consume_all(&at_away, RECREATED, 1, NEW_RECORDS, DATA_TIMEOUT)
        .into_iter()
        .map(|record| {
            let value = String::from_utf8_lossy(record.value.as_deref().unwrap_or_default());
            (record.offset, value.into_owned())
        })
        .collect();
    let expected: Vec<(i64, String)> = (0..NEW_RECORDS)
        .map(|id| (id as i64, format!("new-{id}")))
        .collect();
    assert_eq!(
        read, expected,
        "node {away} serves the re-created topic only"
    );
    cluster.assert_no_node_panicked();
}
