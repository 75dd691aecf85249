//! Acknowledged records survive the death of their partition's leader: with three replicas,
//! an idempotent acks=all producer keeps every acknowledged record, once and in order,
//! through repeated `kill -9` of the leader (the controller elects a live in-sync replica;
//! the restarted node truncates, catches up and rejoins the ISR). Two independent clients
//! get the same guarantee: librdkafka ([`NumberedStream`]) and kafka-python
//! ([`PythonProducer`]).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::numbered_stream::{
    first_ack_after, wait_for_more_acks, wait_until_reports, NumberedStream, Report,
};
use super::python_producer::{PythonProducer, PYTHON_RECORDS};
use super::read_back::{acknowledged, check_partition, read_numbered};
use super::replica_logs::assert_replicas_identical;
use super::{
    assert_no_node_panicked, create_replicated_topic, isr_holds_all, others, wait_for_replicas,
    FAILOVER_TIMEOUT, REJOIN_TIMEOUT,
};
use crate::common::cluster::Cluster;
use crate::{read_positions, serial, three_voters, DATA_TIMEOUT};

/// Acknowledgements kafka-python must see before the kill, and after it before the
/// restart.
const PYTHON_ACKS_BEFORE_KILL: usize = 300;
const PYTHON_ACKS_AFTER_KILL: usize = 100;

/// What one leader kill took, as the test observed it.
struct Failover {
    victim: i32,
    /// Kill to Metadata on every survivor naming another leader for its partitions.
    elected: Duration,
    /// Kill to the first acknowledgement of a record enqueued after the kill, on the last
    /// of the victim's partitions to get one.
    written: Duration,
    /// Restart (node listening) to the node back in every ISR on every node.
    rejoined: Duration,
}

#[test]
fn acks_all_records_survive_repeated_leader_kills() {
    const PARTITIONS: i32 = 2;
    const KILLS: usize = 3;
    let _serial = serial();
    let mut cluster = three_voters();
    let node_ids = cluster.node_ids();
    let topic = "acks-all-through-leader-kills";
    create_replicated_topic(&cluster.bootstrap(0), topic, PARTITIONS, 3, &[]);
    let initial = wait_for_replicas(
        &cluster,
        &node_ids,
        topic,
        DATA_TIMEOUT,
        "three replicas, all in sync",
        |replicas| replicas.len() == PARTITIONS as usize && isr_holds_all(replicas, &node_ids),
    );
    for (partition, state) in &initial {
        assert_eq!(state.replicas, node_ids, "partition {partition}: {state:?}");
    }

    let stream = NumberedStream::start(&cluster.bootstrap_all(), topic, PARTITIONS);
    let failovers: Vec<Failover> = (1..=KILLS)
        .map(|round| kill_leader_and_restart(&mut cluster, &stream, topic, round))
        .collect();
    wait_for_more_acks(&stream, "writes after the last rejoin");
    let (reports, fatal) = stream.finish();
    assert_eq!(
        fatal, None,
        "librdkafka's idempotent producer hit a fatal error"
    );

    let acked = acknowledged(&reports, PARTITIONS);
    let failures: Vec<String> = reports
        .iter()
        .filter_map(|report| {
            let error = report.outcome.as_ref().err()?;
            Some(format!("{}: {error}", report.id))
        })
        .collect();
    eprintln!(
        "{} records enqueued, {} acknowledged, {} given up (first: {:?})",
        reports.len(),
        acked.values().map(BTreeMap::len).sum::<usize>(),
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    for (index, failover) in failovers.iter().enumerate() {
        eprintln!(
            "failover {}: node {} killed; leader elected in {} ms, first write \
             acknowledged in {} ms, rejoined the ISR {} ms after restart",
            index + 1,
            failover.victim,
            failover.elected.as_millis(),
            failover.written.as_millis(),
            failover.rejoined.as_millis()
        );
    }

    let read = read_numbered(&cluster.bootstrap_all(), topic, PARTITIONS);
    let mut problems = Vec::new();
    for partition in 0..PARTITIONS {
        let partition_acked = acked.get(&partition).cloned().unwrap_or_default();
        assert!(
            !partition_acked.is_empty(),
            "partition {partition}: nothing acknowledged"
        );
        let partition_read = read.get(&partition).map_or(&[][..], Vec::as_slice);
        problems.extend(check_partition(partition, partition_read, &partition_acked));
    }
    assert!(
        problems.is_empty(),
        "{topic} after {KILLS} leader kills:\n{}",
        problems.join("\n")
    );
    assert_replicas_identical(&cluster, topic, PARTITIONS);
    assert_no_node_panicked(&cluster);
}

/// One round of the leader-kill test: with every replica in sync, `kill -9` the leader of
/// partition 0, wait for new leaders and for a write enqueued after the kill to be
/// acknowledged on each partition it led, restart it and wait until it is back in every
/// ISR.
fn kill_leader_and_restart(
    cluster: &mut Cluster,
    stream: &NumberedStream,
    topic: &str,
    round: usize,
) -> Failover {
    let node_ids = cluster.node_ids();
    wait_for_more_acks(stream, &format!("round {round}: writes before the kill"));
    let replicas = wait_for_replicas(
        cluster,
        &node_ids,
        topic,
        REJOIN_TIMEOUT,
        "every replica in sync before the kill",
        |replicas| isr_holds_all(replicas, &node_ids),
    );
    let victim = replicas[&0].leader;
    let led: Vec<i32> = replicas
        .iter()
        .filter(|(_, state)| state.leader == victim)
        .map(|(partition, _)| *partition)
        .collect();

    let enqueued_at_kill = stream.enqueued();
    cluster.kill9(victim);
    let killed_at = Instant::now();
    let new_leaders = wait_for_replicas(
        cluster,
        &others(cluster, victim),
        topic,
        FAILOVER_TIMEOUT,
        &format!("a leader other than the killed node {victim} for partitions {led:?}"),
        |replicas| {
            led.iter().all(|partition| {
                replicas
                    .get(partition)
                    .is_some_and(|state| state.leader >= 0 && state.leader != victim)
            })
        },
    );
    let elected = killed_at.elapsed();
    // Only a new leader can have acknowledged a record enqueued after the kill.
    let what = format!(
        "round {round}: a record enqueued after the kill of node {victim} acknowledged on \
         each of partitions {led:?}"
    );
    let first_acks = |reports: &[Report]| -> Option<Vec<Instant>> {
        led.iter()
            .map(|partition| {
                first_ack_after(reports, *partition, stream.partitions, enqueued_at_kill)
            })
            .collect()
    };
    let reports = wait_until_reports(stream, FAILOVER_TIMEOUT, &what, |reports| {
        first_acks(reports).is_some()
    });
    let last_first_ack = first_acks(&reports)
        .and_then(|acks| acks.into_iter().max())
        .expect("the victim led partition 0");
    let written = last_first_ack.duration_since(killed_at);
    let leaders: BTreeMap<i32, i32> = led
        .iter()
        .map(|partition| (*partition, new_leaders[partition].leader))
        .collect();
    eprintln!(
        "round {round}: killed leader {victim} of partitions {led:?}; new leaders {leaders:?} \
         in Metadata after {} ms; first acknowledged write after {} ms",
        elected.as_millis(),
        written.as_millis()
    );

    cluster.restart(victim);
    let restarted_at = Instant::now();
    wait_for_replicas(
        cluster,
        &node_ids,
        topic,
        REJOIN_TIMEOUT,
        &format!("the restarted node {victim} back in every ISR"),
        |replicas| isr_holds_all(replicas, &node_ids),
    );
    let rejoined = restarted_at.elapsed();
    eprintln!(
        "round {round}: node {victim} back in every ISR {} ms after its restart",
        rejoined.as_millis()
    );
    Failover {
        victim,
        elected,
        written,
        rejoined,
    }
}

/// A second, independent client through a leader crash: kafka-python's idempotent
/// acks=all producer (its own sender, retries and sequence numbers) keeps sending while the
/// partition's leader is killed with SIGKILL and restarted. Every value it was told is
/// acknowledged is in the log once, at the offset it was told, and the replicas agree.
#[test]
fn kafka_python_acks_all_survives_a_leader_kill() {
    let _serial = serial();
    let mut cluster = three_voters();
    let node_ids = cluster.node_ids();
    let topic = "kafka-python-through-a-leader-kill";
    create_replicated_topic(&cluster.bootstrap(0), topic, 1, 3, &[]);
    let replicas = wait_for_replicas(
        &cluster,
        &node_ids,
        topic,
        DATA_TIMEOUT,
        "three replicas, all in sync",
        |replicas| isr_holds_all(replicas, &node_ids),
    );
    let victim = replicas[&0].leader;

    let mut script = PythonProducer::start(&cluster.bootstrap_all(), topic);
    script.wait_for_acks(PYTHON_ACKS_BEFORE_KILL, DATA_TIMEOUT, "before the kill");
    let acks_at_kill = script.acks();
    cluster.kill9(victim);
    let killed_at = Instant::now();
    let survivors = others(&cluster, victim);
    let new_leader = wait_for_replicas(
        &cluster,
        &survivors,
        topic,
        FAILOVER_TIMEOUT,
        &format!("a leader other than the killed node {victim}"),
        |replicas| {
            replicas
                .get(&0)
                .is_some_and(|state| state.leader >= 0 && state.leader != victim)
        },
    )[&0]
        .leader;
    let elected = killed_at.elapsed();
    script.wait_for_acks(
        acks_at_kill + PYTHON_ACKS_AFTER_KILL,
        FAILOVER_TIMEOUT,
        "after the kill",
    );
    let written = killed_at.elapsed();
    cluster.restart(victim);
    let restarted_at = Instant::now();
    wait_for_replicas(
        &cluster,
        &node_ids,
        topic,
        REJOIN_TIMEOUT,
        &format!("the restarted node {victim} back in the ISR"),
        |replicas| isr_holds_all(replicas, &node_ids),
    );
    let rejoined = restarted_at.elapsed();
    let (acks, resent) = script.finish();
    eprintln!(
        "kafka-python: leader {victim} killed after {acks_at_kill} acknowledgements; node \
         {new_leader} leads in Metadata after {} ms; {PYTHON_ACKS_AFTER_KILL} more \
         acknowledged after {} ms; node {victim} back in the ISR {} ms after its restart; \
         {} acknowledged in all, resent by the script: {resent:?}",
        elected.as_millis(),
        written.as_millis(),
        rejoined.as_millis(),
        acks.len()
    );
    assert_eq!(
        acks.len(),
        PYTHON_RECORDS,
        "every value acknowledged once by the script"
    );

    let read = read_positions(&cluster.bootstrap_all(), topic, 1, acks.len(), &[]);
    let mut problems = Vec::new();
    let mut copies: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for ((_, offset), (_, value)) in &read {
        copies.entry(value.as_str()).or_default().push(*offset);
    }
    for ack in &acks {
        let at = read
            .get(&(ack.partition, ack.offset))
            .map(|(_, value)| value);
        if at != Some(&ack.value) {
            problems.push(format!(
                "{} acknowledged at {}/{} but read there: {at:?}",
                ack.value, ack.partition, ack.offset
            ));
        }
        let offsets = copies.get(ack.value.as_str()).cloned().unwrap_or_default();
        if offsets.len() > 1 && !resent.contains(&ack.value) {
            problems.push(format!(
                "{} is in the log {} times, at {offsets:?}",
                ack.value,
                offsets.len()
            ));
        }
    }
    // The script sends in number order and kafka-python keeps the order of one partition
    // (idempotence, at most 5 requests in flight); resent values come later by design.
    let in_order: Vec<&String> = read
        .values()
        .map(|(_, value)| value)
        .filter(|value| !resent.contains(value))
        .collect();
    if let Some(pair) = in_order.windows(2).find(|pair| pair[0] >= pair[1]) {
        problems.push(format!("{} is followed by {} in the log", pair[0], pair[1]));
    }
    assert!(
        problems.is_empty(),
        "{topic}: {} problems with the {} values kafka-python saw acknowledged; first:\n{}",
        problems.len(),
        acks.len(),
        problems[..problems.len().min(10)].join("\n")
    );
    assert_replicas_identical(&cluster, topic, 1);
    assert_no_node_panicked(&cluster);
}
