//! A partition leader cut off from the rest of the cluster by a network partition (issue
//! 12, faults): each node runs in its own network namespace behind a veth link to a bridge
//! (`common::netns`), and the test takes the leader's link down. The cut-off node keeps
//! running and keeps believing it leads; the survivors fence it, elect an in-sync
//! follower, and an idempotent acks=all stream goes on there. A Produce sent to the old
//! leader from inside its own namespace, where it is still reachable, must not be
//! acknowledged with acks=all: its followers left it, so it cannot have the write on the
//! ISR. Once the link is back, the old leader learns it was replaced, cuts what it
//! appended alone, follows the new leader and rejoins the ISR. Every acknowledged record is
//! read back once and in order, nothing the old leader took while cut off is in the topic,
//! and every replica holds the same batches.
//!
//! The scenario runs twice: with the partition's leader on a node that is not the active
//! controller (only the partition fails over), and on the active controller itself (the
//! survivors elect a controller first, which must then fence the cut-off node while every
//! other broker keeps its session).

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};

use super::replication::numbered_stream::{
    first_ack_after, number_of, wait_for_more_acks, wait_until_reports, NumberedStream,
    HUNG_LEADER_PRODUCER,
};
use super::replication::read_back::{acknowledged, check_partition, read_values};
use super::replication::replica_logs::{assert_replicas_identical, dump_log, last_offset_of};
use super::replication::{
    assert_no_node_panicked, bootstrap_of, isr_holds_all, others, wait_for_replicas,
};
use crate::common::cluster::{Cluster, QUICK_BROKER_SESSIONS};
use crate::common::cluster_view::wait_for_full_view;
use crate::common::wire::{
    frame, parse_produce_response_v3, produce_request_v3, read_frame, record_batch_v2,
};
use crate::common::{admin, producer, record, send, wait_for_deliveries, ADMIN_TIMEOUT};
use crate::poll::poll_until_ok;
use crate::{agreed_controller, serial, DATA_TIMEOUT, GROUP_FLAGS, MEMBERSHIP_TIMEOUT, VOTERS};

const TOPIC: &str = "cut-off-leader";
/// With three replicas, acks=all needs the leader and one follower.
const MIN_INSYNC_REPLICAS: &str = "2";
/// No automatic move back to the preferred leader (the cut-off node) while the test
/// checks who leads after healing; the default check runs every 5 minutes anyway.
const NO_AUTO_REBALANCE: &[&str] = &["--leader-imbalance-check-interval-ms", "0"];
/// How long the survivors may take to show a new leader without the cut-off node in the
/// ISR, and to acknowledge a write there: its broker session (3 s) runs out, the
/// controller elects an in-sync follower, librdkafka gives up its silent connection to
/// the old leader (`HUNG_LEADER_PRODUCER`: 5 s) and finds the new one. Several times what
/// a quiet host needs.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the healed node may take to learn it was replaced, truncate, catch up and be
/// back in the ISR, as every node reports it.
const REJOIN_TIMEOUT: Duration = Duration::from_secs(45);
/// Bound on opening a connection to the cut-off node from inside its namespace.
const INSIDE_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an answer to a Produce sent inside the cut-off node's namespace is awaited
/// while the node is still cut off: the request's own timeout (10 s, `produce_request_v3`),
/// after which Kafka answers REQUEST_TIMED_OUT, and a margin.
const INSIDE_ANSWER_TIMEOUT: Duration = Duration::from_secs(16);
/// After healing, how long a late answer to an acks=all Produce the cut-off node never
/// answered is awaited (it must not be a success either).
const LATE_ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long, once the stream stopped, the replicas' whole logs (not only below the high
/// watermark) may take to become identical: nothing is in flight any more.
const WHOLE_LOGS_TIMEOUT: Duration = Duration::from_secs(20);
const ACKS_ALL: i16 = -1;
const ACKS_ONE: i16 = 1;
const INSIDE_ACKS_ALL_VALUE: &str = "inside-the-cut-off-leader-acks-all";
const INSIDE_ACKS_ONE_VALUE: &str = "inside-the-cut-off-leader-acks-1";
/// A write through the survivors only, while the old leader is cut off.
const SURVIVORS_VALUE: &str = "through-the-survivors-acks-all";

/// Three voters, each in its own network namespace, returned once every node lists all
/// three brokers and a controller.
fn three_voters_in_namespaces() -> Cluster {
    let cluster = Cluster::start_in_namespaces(
        VOTERS,
        &[QUICK_BROKER_SESSIONS, GROUP_FLAGS, NO_AUTO_REBALANCE].concat(),
    );
    for node_id in cluster.node_ids() {
        wait_for_full_view(&cluster, node_id, MEMBERSHIP_TIMEOUT);
    }
    cluster
}

/// CreateTopics for one partition on `replicas` (the first is the preferred leader) with
/// min.insync.replicas=2; panics on any error.
fn create_topic(bootstrap: &str, replicas: &[i32]) {
    let options = AdminOptions::new()
        .request_timeout(Some(ADMIN_TIMEOUT))
        .operation_timeout(Some(ADMIN_TIMEOUT));
    let assignment = [replicas];
    let new_topic = NewTopic::new(TOPIC, 1, TopicReplication::Variable(&assignment))
        .set("min.insync.replicas", MIN_INSYNC_REPLICAS);
    let results =
        futures::executor::block_on(admin(bootstrap).create_topics([&new_topic], &options))
            .unwrap_or_else(|error| panic!("CreateTopics request for {TOPIC} failed: {error}"));
    if let [Err((_, code))] = results.as_slice() {
        panic!("CreateTopics {TOPIC} with replicas {replicas:?}: {code:?}");
    }
}

/// A one-record Produce (v3, key = value) to partition 0, sent on a connection opened from
/// inside a node's namespace; the answer is read separately.
struct InsideProduce {
    value: &'static str,
    correlation_id: i32,
    stream: TcpStream,
}

impl InsideProduce {
    fn send(cluster: &Cluster, node_id: i32, acks: i16, value: &'static str) -> InsideProduce {
        let mut stream = cluster
            .connect_from_inside(node_id, INSIDE_CONNECT_TIMEOUT)
            .unwrap_or_else(|error| {
                panic!(
                    "connect to node {node_id}'s listener from inside its namespace: {error} \
                     (a cut-off node stays reachable from its own host)"
                )
            });
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_millis();
        let now_ms = i64::try_from(now_ms).expect("timestamp fits i64");
        let batch = record_batch_v2(&[(value.as_bytes(), value.as_bytes())], now_ms);
        let correlation_id = i32::from(acks).abs() + 10;
        let request = produce_request_v3(correlation_id, TOPIC, 0, acks, &batch);
        stream
            .write_all(&frame(&request))
            .unwrap_or_else(|error| panic!("send a Produce inside node {node_id}: {error}"));
        InsideProduce {
            value,
            correlation_id,
            stream,
        }
    }

    /// The answer `(error code, base offset)`, or why none came within `timeout`.
    fn answer(&mut self, timeout: Duration) -> Result<(i16, i64), String> {
        self.stream
            .set_read_timeout(Some(timeout))
            .expect("set read timeout");
        let payload = read_frame(&mut self.stream)?;
        Ok(parse_produce_response_v3(&payload, self.correlation_id))
    }
}

/// The last offset of node `node_id`'s copy of partition 0 on disk (`None`: empty log),
/// read with `corelog debug dump-log`, which only reads.
fn log_end_on_disk(cluster: &Cluster, node_id: i32) -> Option<i64> {
    let dump = dump_log(
        &cluster.data_dir(node_id).join(format!("{TOPIC}-0")),
        i64::MAX,
    )
    .unwrap_or_else(|error| panic!("node {node_id}'s {TOPIC}-0: {error}"));
    dump.last().and_then(|line| last_offset_of(line))
}

/// Waits until every node's whole copy of partition 0 (every batch, not only those below
/// the high watermark) is the same as `leader`'s: once nothing is written any more, a
/// replica that kept a tail its leader does not have is a truncation that never happened.
fn assert_whole_logs_identical(cluster: &Cluster, leader: i32) {
    let directory = format!("{TOPIC}-0");
    let what = format!(
        "{TOPIC}/0: after the last write, some replicas still differ from the leader {leader}"
    );
    poll_until_ok(
        WHOLE_LOGS_TIMEOUT,
        Duration::from_millis(200),
        &what,
        || {
            let dumps: Vec<(i32, Result<Vec<String>, String>)> = cluster
                .node_ids()
                .into_iter()
                .map(|node_id| {
                    let dump = dump_log(&cluster.data_dir(node_id).join(&directory), i64::MAX);
                    (node_id, dump)
                })
                .collect();
            let leader_dump = &dumps
                .iter()
                .find(|(node_id, _)| *node_id == leader)
                .expect("the leader is a node")
                .1;
            let differing: Vec<String> = dumps
                .iter()
                .filter(|(_, dump)| dump.is_err() || dump != leader_dump)
                .map(|(node_id, dump)| match dump {
                    Ok(lines) => format!(
                        "node {node_id}: {} batches, last {:?}",
                        lines.len(),
                        lines.last()
                    ),
                    Err(error) => format!("node {node_id}: {error}"),
                })
                .collect();
            if differing.is_empty() {
                return Ok(());
            }
            let leader_last = leader_dump.as_ref().ok().and_then(|lines| lines.last());
            Err(format!(
                "the leader's last batch {leader_last:?}; differing: {differing:?}"
            ))
        },
    );
}

/// Which node the test cuts off: the partition's leader, which may also be the active
/// controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Victim {
    /// Another node is the active controller: the metadata quorum keeps its leader and only
    /// the partition fails over.
    PartitionLeader,
    /// The partition's leader is the active controller too: the survivors first elect a
    /// controller among themselves, which then fences the cut-off node.
    PartitionLeaderAndController,
}

#[test]
fn a_leader_cut_off_by_a_network_partition_is_fenced_and_truncates_what_it_took_alone() {
    leader_cut_off_and_healed(Victim::PartitionLeader);
}

#[test]
fn a_leader_and_controller_cut_off_by_a_network_partition_is_replaced_and_truncates() {
    leader_cut_off_and_healed(Victim::PartitionLeaderAndController);
}

fn leader_cut_off_and_healed(which: Victim) {
    let _serial = serial();
    let started_at = Instant::now();
    let mut cluster = three_voters_in_namespaces();
    let node_ids = cluster.node_ids();
    let controller = agreed_controller(&cluster, &node_ids, "an active controller", |_| true);
    let victim = match which {
        Victim::PartitionLeader => others(&cluster, controller)[0],
        Victim::PartitionLeaderAndController => controller,
    };
    let survivors = others(&cluster, victim);
    let assignment = [vec![victim], survivors.clone()].concat();
    create_topic(&cluster.bootstrap_all(), &assignment);
    let replicas = wait_for_replicas(
        &cluster,
        &node_ids,
        TOPIC,
        DATA_TIMEOUT,
        "three replicas, all in sync",
        |replicas| isr_holds_all(replicas, &node_ids),
    );
    assert_eq!(
        replicas[&0].leader, victim,
        "{TOPIC}/0 with replicas {assignment:?} is led by its first replica: {replicas:?}"
    );

    let stream =
        NumberedStream::start_with(&cluster.bootstrap_all(), TOPIC, 1, HUNG_LEADER_PRODUCER);
    wait_for_more_acks(&stream, "writes before the cut");
    cluster.cut_off(victim);
    let cut_at = Instant::now();
    // Every message from here on went to the cut-off leader or to its successor.
    let enqueued_at_cut = stream.enqueued();

    // The survivors fence the silent node, elect one of themselves, and drop it from the ISR.
    let new_leader = wait_for_replicas(
        &cluster,
        &survivors,
        TOPIC,
        FAILOVER_TIMEOUT,
        &format!("a leader other than the cut-off node {victim}, and an ISR without it"),
        |replicas| {
            replicas.get(&0).is_some_and(|state| {
                survivors.contains(&state.leader) && !state.isr.contains(&victim)
            })
        },
    )[&0]
        .leader;
    let elected = cut_at.elapsed();
    // Nothing reaches the cut-off node from here: an acknowledgement of a record enqueued
    // after the cut comes from the new leader.
    let what = format!(
        "a record enqueued after node {victim} was cut off acknowledged (by node {new_leader})"
    );
    let reports = wait_until_reports(&stream, FAILOVER_TIMEOUT, &what, |reports| {
        first_ack_after(reports, 0, 1, enqueued_at_cut).is_some()
    });
    let written = first_ack_after(&reports, 0, 1, enqueued_at_cut)
        .expect("waited for it")
        .duration_since(cut_at);
    eprintln!(
        "cut-off leader {victim}: node {new_leader} leads without it in the ISR after {} ms, \
         first acknowledged write after {} ms",
        elected.as_millis(),
        written.as_millis()
    );

    // Inside its namespace the old leader is still reachable, and still thinks it leads.
    let end_before_inside = log_end_on_disk(&cluster, victim);
    let mut inside_acks_all =
        InsideProduce::send(&cluster, victim, ACKS_ALL, INSIDE_ACKS_ALL_VALUE);
    let mut inside_acks_one =
        InsideProduce::send(&cluster, victim, ACKS_ONE, INSIDE_ACKS_ONE_VALUE);
    let acks_one_answer = inside_acks_one.answer(INSIDE_ANSWER_TIMEOUT);
    let acks_all_answer = inside_acks_all.answer(INSIDE_ANSWER_TIMEOUT);
    let end_after_inside = log_end_on_disk(&cluster, victim);
    eprintln!(
        "inside node {victim}'s namespace, while cut off ((error code, base offset)): \
         acks=all {acks_all_answer:?}, acks=1 {acks_one_answer:?}; its log ended at \
         {end_before_inside:?} before and {end_after_inside:?} after"
    );
    if let Ok((0, offset)) = acks_all_answer {
        panic!(
            "node {victim}, cut off from every follower, acknowledged an acks=all write at \
             offset {offset} after node {new_leader} replaced it: the write cannot be on the \
             ISR (Kafka answers REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS_AFTER_APPEND or \
             NOT_LEADER_OR_FOLLOWER)\n{}",
            cluster.recent_log(victim)
        );
    }
    // acks=1 may be acknowledged by a leader that has not heard it was replaced (Kafka
    // too): a divergent tail the node must cut once healed.
    if let Ok((code, offset)) = acks_one_answer {
        eprintln!("acks=1 inside node {victim}: error code {code}, offset {offset}");
    }

    // The stream goes on at the new leader, and so does a client that knows only the
    // survivors.
    wait_for_more_acks(&stream, &format!("writes while node {victim} is cut off"));
    let direct = producer(&bootstrap_of(&cluster, &survivors), &[]);
    let value = SURVIVORS_VALUE.as_bytes();
    send(&direct, record(TOPIC, 0, value, value).partition(0));
    let direct_report = wait_for_deliveries(&direct, 1, DATA_TIMEOUT).remove(0);
    let (_, direct_offset) = direct_report.outcome.unwrap_or_else(|error| {
        panic!(
            "acks=all through the survivors {survivors:?} while node {victim} is cut off: {error}"
        )
    });
    drop(direct);

    cluster.heal(victim);
    let healed_at = Instant::now();
    let late_acks_all_answer = match &acks_all_answer {
        Err(_) => Some(inside_acks_all.answer(LATE_ANSWER_TIMEOUT)),
        Ok(_) => None,
    };
    if let Some(Ok((0, offset))) = late_acks_all_answer {
        panic!(
            "node {victim} acknowledged, after the network healed, an acks=all write it took \
             while cut off, at offset {offset}; node {new_leader} had replaced it"
        );
    }
    let acks_all_outcome = match (&acks_all_answer, &late_acks_all_answer) {
        (Ok((code, _)), _) => format!("answered with error code {code} while cut off"),
        (Err(_), Some(Ok((code, _)))) => format!(
            "no answer within {INSIDE_ANSWER_TIMEOUT:?} while cut off; error code {code} after \
             healing"
        ),
        (Err(_), _) => format!(
            "no answer within {INSIDE_ANSWER_TIMEOUT:?} while cut off, nor within \
             {LATE_ANSWER_TIMEOUT:?} after healing"
        ),
    };

    wait_for_replicas(
        &cluster,
        &node_ids,
        TOPIC,
        REJOIN_TIMEOUT,
        &format!("the healed node {victim} following node {new_leader}, back in the ISR"),
        |replicas| {
            isr_holds_all(replicas, &node_ids)
                && replicas
                    .get(&0)
                    .is_some_and(|state| state.leader == new_leader)
        },
    );
    let rejoined = healed_at.elapsed();
    wait_for_more_acks(&stream, &format!("writes after node {victim} rejoined"));
    let (reports, fatal) = stream.finish();
    assert_eq!(
        fatal, None,
        "librdkafka's idempotent producer hit a fatal error"
    );

    let read = read_values(&cluster.bootstrap_all(), TOPIC, 1)
        .remove(&0)
        .unwrap_or_default();
    for inside in [inside_acks_all.value, inside_acks_one.value] {
        let found: Vec<i64> = read
            .iter()
            .filter(|(_, value)| value == inside)
            .map(|(offset, _)| *offset)
            .collect();
        assert!(
            found.is_empty(),
            "{TOPIC}: {inside:?}, written to node {victim} inside its namespace after node \
             {new_leader} replaced it, is in the topic at {found:?}"
        );
    }
    assert!(
        read.contains(&(direct_offset, SURVIVORS_VALUE.to_string())),
        "{TOPIC}: {SURVIVORS_VALUE:?}, acknowledged by node {new_leader} at offset \
         {direct_offset}, is not there"
    );
    let numbered: Vec<(i64, usize)> = read
        .iter()
        .filter(|(_, value)| value != SURVIVORS_VALUE)
        .map(|(offset, value)| (*offset, number_of(0, value)))
        .collect();
    let acked = acknowledged(&reports, 1).remove(&0).unwrap_or_default();
    assert!(!acked.is_empty(), "{TOPIC}: nothing acknowledged");
    let problems = check_partition(0, &numbered, &acked);
    assert!(
        problems.is_empty(),
        "{TOPIC} after a network partition cut off its leader:\n{}",
        problems.join("\n")
    );

    assert_replicas_identical(&cluster, TOPIC, 1);
    // With the stream stopped, the old leader's whole log is its successor's: what it
    // appended alone (its log end moved while cut off) is gone, batch for batch.
    assert_whole_logs_identical(&cluster, new_leader);
    // Informational: the line may have left the kept log tail.
    let truncation_logged = cluster.log_contains(victim, "truncating to the leader's log");
    assert_no_node_panicked(&cluster);
    eprintln!(
        "network partition of leader {victim} ({which:?}): acks=all inside its namespace: \
         {acks_all_outcome}; acks=1 there: {acks_one_answer:?}; new leader {new_leader} \
         elected in {} ms, first write acknowledged after {} ms; node {victim} back in the \
         ISR {} ms after healing (truncation logged: {truncation_logged}); {} records \
         acknowledged; whole test {} ms",
        elected.as_millis(),
        written.as_millis(),
        rejoined.as_millis(),
        acked.len(),
        started_at.elapsed().as_millis()
    );
}
