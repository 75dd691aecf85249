//! Whether the replicas of a partition hold the same batches: `corelog debug dump-log
//! --up-to` on each replica's partition directory (it only reads, so it is safe on a
//! running node's files), compared below the high watermark the leader answers. The
//! scenarios that write through a failover end with [`assert_replicas_identical`]; a
//! divergent tail that a node failed to truncate, or a batch a follower copied wrong, shows
//! up here even when every client read looks right.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rdkafka::consumer::Consumer;

use super::{replica_states, METADATA_TIMEOUT};
use crate::common::cluster::Cluster;
use crate::common::metadata_consumer;
use crate::poll::poll_until_ok;

/// How long the replicas of a partition may take to hold, on disk, the same batches below
/// the leader's high watermark: a follower that rejoined the ISR a moment ago, or whose
/// writer has not yet written what it fetched, catches up within this.
const REPLICAS_IDENTICAL_TIMEOUT: Duration = Duration::from_secs(20);

/// `corelog debug dump-log <partition dir> --up-to <up_to>`: one line per batch on disk
/// that starts below `up_to` ("offset A..B epoch E crc C records N producer P", " INVALID"
/// appended when the batch does not validate), or why the directory could not be read.
/// The command only reads, so it is safe on a running node's directory.
pub(crate) fn dump_log(partition_dir: &Path, up_to: i64) -> Result<Vec<String>, String> {
    let output = Command::new(env!("CARGO_BIN_EXE_corelog"))
        .args(["debug", "dump-log"])
        .arg(partition_dir)
        .args(["--up-to", &up_to.to_string()])
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("cannot run corelog debug dump-log: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "dump-log {} exited with {}: {}",
            partition_dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

/// The last offset B of a dump-log line "offset A..B ...".
pub(crate) fn last_offset_of(line: &str) -> Option<i64> {
    let range = line.strip_prefix("offset ")?.split_whitespace().next()?;
    range.split_once("..")?.1.parse().ok()
}

/// One look at every replica of one partition: the leader's high watermark and each
/// replica's batches below it.
struct ReplicaDumps {
    partition: i32,
    leader: i32,
    high_watermark: i64,
    /// Replica -> its dump-log lines below the high watermark, or why they are missing.
    dumps: BTreeMap<i32, Result<Vec<String>, String>>,
}

impl ReplicaDumps {
    /// Asks the first node that answers for the partition's leader and replicas, the
    /// leader for its high watermark (ListOffsets latest), and dumps every replica's
    /// partition directory up to it.
    fn take(cluster: &Cluster, topic: &str, partition: i32) -> Result<ReplicaDumps, String> {
        let state = cluster
            .node_ids()
            .iter()
            .find_map(|node_id| replica_states(&cluster.bootstrap(*node_id), topic))
            .and_then(|replicas| replicas.get(&partition).cloned())
            .ok_or_else(|| format!("no node described {topic}/{partition}"))?;
        if state.leader < 0 {
            return Err(format!("{topic}/{partition} has no leader: {state:?}"));
        }
        let (_, high_watermark) = metadata_consumer(&cluster.bootstrap(state.leader))
            .fetch_watermarks(topic, partition, METADATA_TIMEOUT)
            .map_err(|error| {
                format!(
                    "ListOffsets {topic}/{partition} at its leader {}: {error}",
                    state.leader
                )
            })?;
        let directory = format!("{topic}-{partition}");
        let dumps = state
            .replicas
            .iter()
            .map(|replica| {
                let dump = dump_log(&cluster.data_dir(*replica).join(&directory), high_watermark);
                (*replica, dump)
            })
            .collect();
        Ok(ReplicaDumps {
            partition,
            leader: state.leader,
            high_watermark,
            dumps,
        })
    }

    /// Why the replicas do not (yet) agree below the high watermark, or `None` when they
    /// print the same lines, none invalid, and the leader's last batch ends right below
    /// the high watermark (so nothing below it is missing everywhere).
    fn disagreement(&self) -> Option<String> {
        let (partition, leader, high_watermark) =
            (self.partition, self.leader, self.high_watermark);
        let leader_lines = match self.dumps.get(&leader) {
            Some(Ok(lines)) => lines,
            Some(Err(error)) => return Some(format!("leader {leader}: {error}")),
            None => return Some(format!("the leader {leader} is not a replica")),
        };
        let leader_end = leader_lines.last().and_then(|line| last_offset_of(line));
        if high_watermark > 0 && leader_end != Some(high_watermark - 1) {
            return Some(format!(
                "partition {partition}: the leader {leader}'s batches below the high \
                 watermark {high_watermark} end at {leader_end:?}, not at {}; last lines: {:?}",
                high_watermark - 1,
                &leader_lines[leader_lines.len().saturating_sub(3)..]
            ));
        }
        if let Some(invalid) = leader_lines.iter().find(|line| line.ends_with("INVALID")) {
            return Some(format!(
                "partition {partition}: the leader {leader} holds an invalid batch: {invalid}"
            ));
        }
        for (replica, dump) in &self.dumps {
            let lines = match dump {
                Ok(lines) => lines,
                Err(error) => return Some(format!("replica {replica}: {error}")),
            };
            if lines != leader_lines {
                let index = leader_lines
                    .iter()
                    .zip(lines)
                    .position(|(expected, found)| expected != found)
                    .unwrap_or(leader_lines.len().min(lines.len()));
                return Some(format!(
                    "partition {partition}, below the high watermark {high_watermark}: node \
                     {replica} holds {} batches, the leader {leader} {}; first difference at \
                     batch {index}: leader {:?}, node {replica} {:?}",
                    lines.len(),
                    leader_lines.len(),
                    leader_lines.get(index),
                    lines.get(index)
                ));
            }
        }
        None
    }
}

/// Asserts that every replica of each of partitions `0..partitions` of `topic` holds, on
/// disk, the same batches (offsets, leader epoch, crc, record count, producer id) below
/// the high watermark its leader answers, and at least one batch when that is above 0.
/// Followers may lag a moment, so this retries for [`REPLICAS_IDENTICAL_TIMEOUT`].
pub(crate) fn assert_replicas_identical(cluster: &Cluster, topic: &str, partitions: i32) {
    for partition in 0..partitions {
        let what = format!("{topic}/{partition}: replicas still differ");
        let dumps = poll_until_ok(
            REPLICAS_IDENTICAL_TIMEOUT,
            Duration::from_millis(200),
            &what,
            || {
                let dumps = ReplicaDumps::take(cluster, topic, partition)?;
                match dumps.disagreement() {
                    None => Ok(dumps),
                    Some(problem) => Err(problem),
                }
            },
        );
        let batches = dumps
            .dumps
            .values()
            .next()
            .map_or(0, |dump| dump.as_ref().map_or(0, Vec::len));
        eprintln!(
            "{topic}/{partition}: replicas {:?} hold the same {batches} batches below the \
             high watermark {}",
            dumps.dumps.keys().collect::<Vec<_>>(),
            dumps.high_watermark
        );
    }
}
