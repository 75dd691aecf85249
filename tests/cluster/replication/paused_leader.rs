//! A partition leader that hangs (SIGSTOP) rather than dies. It keeps its sockets: the
//! kernel goes on accepting connections and queueing requests for it, so clients see
//! silence, not a reset. Its broker session runs out, the controller makes an in-sync
//! follower the leader, and writes go on there. When it resumes it must not acknowledge an
//! acks=all write, must cut whatever it appended that its successor lacks, and must come
//! back as a follower in the ISR. Requests queued at it while it was stopped
//! ([`QueuedProduce`]) are the first thing it reads when it resumes.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::Consumer;

use super::numbered_stream::{
    first_ack_after, number_of, wait_for_more_acks, wait_until_reports, NumberedStream,
    HUNG_LEADER_PRODUCER,
};
use super::read_back::{acknowledged, check_partition, read_values};
use super::replica_logs::{assert_replicas_identical, dump_log, last_offset_of};
use super::{
    assert_no_node_panicked, bootstrap_of, create_assigned_topic, isr_holds_all, others,
    produce_one, wait_for_replicas, FAILOVER_TIMEOUT, REJOIN_TIMEOUT,
};
use crate::common::wire::{
    connect, frame, parse_produce_response_v3, produce_request_v3, read_frame, record_batch_v2,
};
use crate::common::{metadata_consumer, producer, ADMIN_TIMEOUT};
use crate::{agreed_controller, serial, three_voters, DATA_TIMEOUT};

/// How long a Produce queued at a paused node may take to be answered once the node
/// resumes: the request's own timeout (10 s, see `produce_request_v3`) and a margin.
const QUEUED_PRODUCE_ANSWER_TIMEOUT: Duration = Duration::from_secs(25);
const QUEUED_PRODUCE_CORRELATION_ID: i32 = 1;
/// Kafka's error code for a Produce sent to a replica that is not the leader.
const NOT_LEADER_OR_FOLLOWER: i16 = 6;

/// A Produce of one record to partition 0, written straight to a node's socket without
/// waiting for the answer. Sent to a paused node, it waits in the kernel's socket buffer
/// and is the first thing the node reads when it resumes, before it has heard from anyone
/// that it lost its leadership.
struct QueuedProduce {
    value: &'static str,
    stream: TcpStream,
}

impl QueuedProduce {
    fn send(bootstrap: &str, topic: &str, acks: i16, value: &'static str) -> QueuedProduce {
        let mut stream = connect(bootstrap);
        stream
            .set_read_timeout(Some(QUEUED_PRODUCE_ANSWER_TIMEOUT))
            .expect("set read timeout");
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_millis();
        let now_ms = i64::try_from(now_ms).expect("timestamp fits i64");
        let batch = record_batch_v2(&[(value.as_bytes(), value.as_bytes())], now_ms);
        let request = produce_request_v3(QUEUED_PRODUCE_CORRELATION_ID, topic, 0, acks, &batch);
        stream
            .write_all(&frame(&request))
            .unwrap_or_else(|error| panic!("queue a Produce at {bootstrap}: {error}"));
        QueuedProduce { value, stream }
    }

    /// The answer, `(error code, base offset)`, or why none came within
    /// [`QUEUED_PRODUCE_ANSWER_TIMEOUT`].
    fn answer(mut self) -> Result<(i16, i64), String> {
        let payload = read_frame(&mut self.stream)?;
        Ok(parse_produce_response_v3(
            &payload,
            QUEUED_PRODUCE_CORRELATION_ID,
        ))
    }
}

/// A leader that hangs (SIGSTOP) instead of dying keeps its sockets: the kernel goes on
/// accepting connections and queueing requests for it. Its broker session runs out, the
/// controller makes an in-sync follower the leader, and writes go on there. When it
/// resumes it must not acknowledge an acks=all write (its followers have left it), must
/// cut whatever it appended that its successor lacks, and must come back as a follower in
/// the ISR, with every replica holding the same batches.
#[test]
fn a_paused_leader_is_replaced_and_truncates_what_the_new_leader_lacks() {
    let _serial = serial();
    let mut cluster = three_voters();
    let node_ids = cluster.node_ids();
    let topic = "paused-leader";
    // The node to pause leads the partition but is not the active controller, so the
    // metadata quorum keeps its leader and only the partition fails over.
    let controller = agreed_controller(&cluster, &node_ids, "an active controller", |_| true);
    let victim = others(&cluster, controller)[0];
    let assignment: Vec<i32> = [vec![victim], others(&cluster, victim)].concat();
    create_assigned_topic(&cluster.bootstrap(0), topic, &[&assignment]);
    let replicas = wait_for_replicas(
        &cluster,
        &node_ids,
        topic,
        DATA_TIMEOUT,
        "three replicas, all in sync",
        |replicas| isr_holds_all(replicas, &node_ids),
    );
    assert_eq!(
        replicas[&0].leader, victim,
        "{topic}/0 with replicas {assignment:?} is led by its first replica (Kafka's \
         preferred leader): {replicas:?}"
    );

    let stream =
        NumberedStream::start_with(&cluster.bootstrap_all(), topic, 1, HUNG_LEADER_PRODUCER);
    wait_for_more_acks(&stream, "writes before the pause");
    cluster.pause(victim);
    let paused_at = Instant::now();
    // Read after the pause: every message from here on was sent to a stopped leader or to
    // its successor.
    let enqueued_at_pause = stream.enqueued();

    let survivors = others(&cluster, victim);
    let new_leader = wait_for_replicas(
        &cluster,
        &survivors,
        topic,
        FAILOVER_TIMEOUT,
        &format!("a leader other than the paused node {victim}"),
        |replicas| {
            replicas
                .get(&0)
                .is_some_and(|state| state.leader >= 0 && state.leader != victim)
        },
    )[&0]
        .leader;
    let elected = paused_at.elapsed();
    // A paused node answers nothing: a record enqueued after the pause can only have been
    // acknowledged by the new leader.
    let what = format!(
        "a record enqueued after the pause of node {victim} acknowledged (by node {new_leader})"
    );
    let reports = wait_until_reports(&stream, FAILOVER_TIMEOUT, &what, |reports| {
        first_ack_after(reports, 0, 1, enqueued_at_pause).is_some()
    });
    let written = first_ack_after(&reports, 0, 1, enqueued_at_pause)
        .expect("waited for it")
        .duration_since(paused_at);
    // A client that only knows the survivors writes acks=all to the new leader.
    let direct = producer(&bootstrap_of(&cluster, &survivors), &[]);
    let direct_value = "acks-all-through-the-survivors";
    let (_, direct_offset) = produce_one(&direct, topic, direct_value).unwrap_or_else(|error| {
        panic!(
            "acks=all through the survivors {survivors:?} while node {victim} is paused: {error}"
        )
    });
    drop(direct);
    eprintln!(
        "paused leader {victim}: node {new_leader} leads in Metadata after {} ms, first \
         acknowledged write after {} ms, acks=all through the survivors at offset \
         {direct_offset}",
        elected.as_millis(),
        written.as_millis()
    );

    // Where the stopped node's own log ends (dump-log only reads): what it holds beyond
    // its successor's start of the new epoch is the tail it will have to cut.
    let paused_end = dump_log(
        &cluster.data_dir(victim).join(format!("{topic}-0")),
        i64::MAX,
    )
    .map(|lines| lines.last().and_then(|line| last_offset_of(line)));
    eprintln!("the paused node {victim}'s log ends at offset {paused_end:?} (last batch)");
    // Written while the node is paused, read by it first thing when it resumes.
    let queued_acks_all = QueuedProduce::send(
        &cluster.bootstrap(victim),
        topic,
        -1,
        "queued-at-the-old-leader-acks-all",
    );
    let queued_acks_one = QueuedProduce::send(
        &cluster.bootstrap(victim),
        topic,
        1,
        "queued-at-the-old-leader-acks-1",
    );
    let queued_values = [queued_acks_all.value, queued_acks_one.value];
    cluster.resume(victim);
    let resumed_at = Instant::now();
    let (acks_all_answer, acks_one_answer) = (queued_acks_all.answer(), queued_acks_one.answer());
    eprintln!(
        "the old leader {victim} answered the Produce requests queued while it was paused \
         ((error code, base offset)): acks=all {acks_all_answer:?}, acks=1 {acks_one_answer:?}"
    );
    match acks_all_answer {
        Ok((0, offset)) => panic!(
            "the old leader {victim} acknowledged an acks=all write at offset {offset} after \
             node {new_leader} had been elected and taken writes: its followers no longer \
             fetch from it, so the write cannot be on the ISR (Kafka answers \
             NOT_LEADER_OR_FOLLOWER, or REQUEST_TIMED_OUT while it still waits)\n{}",
            cluster.recent_log(victim)
        ),
        Ok(_) => {}
        Err(problem) => panic!(
            "the old leader {victim} did not answer an acks=all Produce (timeout 10 s) queued \
             while it was paused within {QUEUED_PRODUCE_ANSWER_TIMEOUT:?} of resuming \
             (Kafka answers every acks=all request, with an error when it loses the \
             leadership or times out): {problem}\n{}",
            cluster.recent_log(victim)
        ),
    }
    // acks=1 may be acknowledged by a leader that does not know yet that it was replaced
    // (Kafka too); the record is then a divergent tail the node must cut.
    let divergent_offset = match acks_one_answer {
        Ok((0, offset)) => Some(offset),
        Ok((code, _)) => {
            assert_eq!(
                code, NOT_LEADER_OR_FOLLOWER,
                "acks=1 at the old leader {victim} after it resumed"
            );
            None
        }
        Err(problem) => panic!(
            "the old leader {victim} did not answer an acks=1 Produce queued while it was \
             paused within {QUEUED_PRODUCE_ANSWER_TIMEOUT:?} of resuming: {problem}"
        ),
    };

    wait_for_replicas(
        &cluster,
        &node_ids,
        topic,
        REJOIN_TIMEOUT,
        &format!("the resumed node {victim} following node {new_leader}, back in the ISR"),
        |replicas| {
            isr_holds_all(replicas, &node_ids)
                && replicas
                    .get(&0)
                    .is_some_and(|state| state.leader == new_leader)
        },
    );
    let rejoined = resumed_at.elapsed();
    wait_for_more_acks(&stream, "writes after the resumed node rejoined");
    let (reports, fatal) = stream.finish();
    assert_eq!(
        fatal, None,
        "librdkafka's idempotent producer hit a fatal error"
    );

    let read = read_values(&cluster.bootstrap_all(), topic, 1)
        .remove(&0)
        .unwrap_or_default();
    for queued in queued_values {
        let found: Vec<i64> = read
            .iter()
            .filter(|(_, value)| value == queued)
            .map(|(offset, _)| *offset)
            .collect();
        assert!(
            found.is_empty(),
            "{topic}: {queued:?}, written by the old leader {victim} after node {new_leader} \
             replaced it, is in the log at {found:?}"
        );
    }
    assert!(
        read.contains(&(direct_offset, direct_value.to_string())),
        "{topic}: {direct_value:?}, acknowledged by node {new_leader} at offset \
         {direct_offset}, is not there"
    );
    let numbered: Vec<(i64, usize)> = read
        .iter()
        .filter(|(_, value)| value != direct_value)
        .map(|(offset, value)| (*offset, number_of(0, value)))
        .collect();
    let acked = acknowledged(&reports, 1).remove(&0).unwrap_or_default();
    assert!(!acked.is_empty(), "{topic}: nothing acknowledged");
    let problems = check_partition(0, &numbered, &acked);
    assert!(
        problems.is_empty(),
        "{topic} after a paused leader:\n{}",
        problems.join("\n")
    );

    let victim_log = cluster.recent_log(victim);
    let truncations: Vec<&str> = victim_log
        .lines()
        .filter(|line| line.contains("truncating to the leader's log"))
        .collect();
    eprintln!(
        "{} records acknowledged; node {victim} back in the ISR {} ms after resuming; the \
         acks=1 record it took after being replaced (a divergent tail) at \
         {divergent_offset:?}; its truncations: {truncations:#?}",
        acked.len(),
        rejoined.as_millis()
    );
    if let Some(offset) = divergent_offset {
        // The identical dumps below cover the divergent offset only below the high watermark.
        let (_, high_watermark) = metadata_consumer(&cluster.bootstrap(new_leader))
            .fetch_watermarks(topic, 0, ADMIN_TIMEOUT)
            .unwrap_or_else(|error| panic!("ListOffsets {topic}/0: {error}"));
        assert!(
            high_watermark > offset,
            "{topic}: high watermark {high_watermark} is not past the divergent offset {offset}"
        );
    }
    assert_replicas_identical(&cluster, topic, 1);
    assert_no_node_panicked(&cluster);
}
