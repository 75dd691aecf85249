//! kafka-python drives the consumer-group coordinator: a second, independent client with
//! its own group membership code, range assignor and admin client, so FindCoordinator,
//! JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, ListGroups,
//! DescribeGroups, DeleteGroups, OffsetDelete, session expiry and offsets surviving
//! `kill -9` are checked against more than librdkafka; so are transactions, the idempotent
//! producer, DescribeLogDirs, and a three-node cluster (produce through one node, consume
//! and read offsets through others).
//!
//! Each scenario is a script in `tests/python/` that checks Kafka's behaviour itself and
//! prints a JSON summary; the test runs it against a fresh broker (killing it by pid after
//! SCRIPT_TIMEOUT; a member process a script starts has its own watchdog) and asserts on
//! its exit status and summary. kafka-python is a required test dependency (`.ci/run`
//! installs it): without it these tests fail, they never skip.

mod common;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::cluster::{Cluster, QUICK_BROKER_SESSIONS};
use common::cluster_view::wait_for_full_view;
use common::Broker;

/// The scripts' own watchdog (`--timeout-s`) fires first and dumps every Python thread's
/// stack; this outer bound only catches an interpreter that cannot even do that.
const SCRIPT_WATCHDOG_S: u64 = 30;
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(SCRIPT_WATCHDOG_S + 5);
/// No wait for latecomers before the first rebalance: two members joining in the same
/// second then see two quick generations instead of one delayed one, and the tests stay
/// short.
const BROKER_FLAGS: &[&str] = &["--group-initial-rebalance-delay-ms", "0"];
const PYTHON: &str = "python3";

/// Fails the test (never skips it) when kafka-python 3 cannot be imported: the scripts use
/// its 3.x admin API (`describe_groups`, `list_group_offsets`, ...).
fn require_kafka_python() {
    let output = Command::new(PYTHON)
        .args(["-c", "import kafka; print(kafka.__version__)"])
        .output();
    match output {
        Ok(output) if output.status.success() => {
            let version = String::from_utf8_lossy(&output.stdout).trim().to_string();
            assert!(
                version.starts_with("3."),
                "kafka-python {version} is installed for {PYTHON}, the tests need 3.x: run \
                 `{PYTHON} -m pip install kafka-python==3.0.12` (.ci/run does this)"
            );
        }
        Ok(output) => panic!(
            "kafka-python is not installed for {PYTHON}: run `pip install kafka-python` \
             (`{PYTHON} -m pip install kafka-python==3.0.12`; .ci/run does this)\n{}",
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(error) => panic!(
            "cannot run {PYTHON} ({error}): install python3 and `pip install kafka-python` \
             (.ci/run does this)"
        ),
    }
}

fn script_path(script: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("python")
        .join(script)
}

/// Runs one scenario script (with `extra_args`) against `broker` with topic `topic` and
/// group `<topic>-group`, and returns its JSON summary; panics with the script's output if
/// it fails, times out or prints no summary.
fn run_scenario(broker: &mut Broker, script: &str, topic: &str, extra_args: &[&str]) -> Value {
    let bootstrap = broker.bootstrap();
    run_script(&bootstrap, script, topic, extra_args, || {
        broker.assert_alive()
    })
}

/// [`run_scenario`] against any `--bootstrap` address; `assert_alive` runs once the script
/// ended and panics (with the broker's log) if a broker it used exited.
fn run_script(
    bootstrap: &str,
    script: &str,
    topic: &str,
    extra_args: &[&str],
    assert_alive: impl FnOnce(),
) -> Value {
    require_kafka_python();
    let group = format!("{topic}-group");
    let mut child = Command::new(PYTHON)
        .arg(script_path(script))
        .args(["--bootstrap", bootstrap])
        .args(["--topic", topic, "--group", &group])
        .args(["--timeout-s", &SCRIPT_WATCHDOG_S.to_string()])
        .args(extra_args)
        // No __pycache__ next to the scripts in the source tree.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("spawn {PYTHON} {script}: {error}"));
    let stdout = read_in_thread(&mut child, true);
    let stderr = read_in_thread(&mut child, false);
    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait on the script") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            // Child::kill sends SIGKILL to exactly the pid this test spawned.
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let stdout = String::from_utf8_lossy(&stdout.join().unwrap_or_default()).to_string();
    let stderr = String::from_utf8_lossy(&stderr.join().unwrap_or_default()).to_string();
    let Some(status) = status else {
        panic!("{script} did not finish within {SCRIPT_TIMEOUT:?}\nstdout:\n{stdout}\nstderr:\n{stderr}");
    };
    assert_alive();
    assert!(
        status.success(),
        "{script} failed ({status})\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let summary = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(summary).unwrap_or_else(|error| {
        panic!("{script} printed no JSON summary ({error})\nstdout:\n{stdout}\nstderr:\n{stderr}")
    })
}

fn read_in_thread(child: &mut Child, stdout: bool) -> thread::JoinHandle<Vec<u8>> {
    let mut stream: Box<dyn Read + Send> = if stdout {
        Box::new(child.stdout.take().expect("script stdout"))
    } else {
        Box::new(child.stderr.take().expect("script stderr"))
    };
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        bytes
    })
}

#[test]
fn kafka_python_consumers_split_partitions_and_survivor_takes_all_after_leave() {
    let mut broker = Broker::start(2, BROKER_FLAGS);
    let summary = run_scenario(&mut broker, "group_rebalance.py", "kp-split", &[]);

    let mut split: Vec<Value> = summary["split"].as_array().expect("split").clone();
    split.sort_by_key(|assignment| assignment[0].as_i64());
    assert_eq!(split, vec![json!([0, 1, 2]), json!([3, 4, 5])], "{summary}");
    assert_eq!(
        summary["after_leave"],
        json!([0, 1, 2, 3, 4, 5]),
        "{summary}"
    );
    assert!(
        summary["after_leave_generation_id"].as_i64() > summary["split_generation_id"].as_i64(),
        "{summary}"
    );
    // LeaveGroup starts the rebalance at once; waiting for the leaver's session (6 s)
    // to expire instead would be a broker bug.
    let takeover_ms = summary["takeover_ms"].as_i64().expect("takeover_ms");
    assert!(takeover_ms < 6000, "{summary}");
}

#[test]
fn kafka_python_consumer_resumes_from_committed_offsets() {
    let mut broker = Broker::start(2, BROKER_FLAGS);
    let summary = run_scenario(&mut broker, "commit_resume.py", "kp-resume", &[]);

    assert_eq!(summary["produced"], 100, "{summary}");
    let first = summary["first_consumed"].as_i64().expect("first_consumed");
    let second = summary["second_consumed"]
        .as_i64()
        .expect("second_consumed");
    assert!((30..=70).contains(&first), "about half first: {summary}");
    assert_eq!(
        first + second,
        100,
        "every message consumed once: {summary}"
    );
    assert_eq!(summary["duplicates"], 0, "{summary}");
    assert_eq!(summary["missing"], 0, "{summary}");
    // The first consumer stopped inside every partition; the second resumed each exactly
    // at its committed offset.
    let committed = summary["committed"].as_object().expect("committed");
    let resumed = summary["second_first_offsets"]
        .as_object()
        .expect("second_first_offsets");
    assert_eq!(committed.len(), 3, "{summary}");
    assert_eq!(committed, resumed, "{summary}");
    for offset in committed.values() {
        assert!(
            (1..33).contains(&offset.as_i64().expect("offset")),
            "{summary}"
        );
    }
}

#[test]
fn kafka_python_killed_member_is_removed_after_its_session_timeout() {
    let mut broker = Broker::start(2, BROKER_FLAGS);
    let summary = run_scenario(&mut broker, "session_expiry.py", "kp-expiry", &[]);

    assert_eq!(
        summary["after_expiry"],
        json!([0, 1, 2, 3, 4, 5]),
        "{summary}"
    );
    assert!(
        summary["after_expiry_generation_id"].as_i64() > summary["split_generation_id"].as_i64(),
        "{summary}"
    );
    // Session timeout 6 s, heartbeats every 1 s: no sooner than the session allows (Kafka
    // does not drop members whose connection closed), and not much later either.
    let takeover_ms = summary["takeover_ms"].as_i64().expect("takeover_ms");
    assert!((4000..=12000).contains(&takeover_ms), "{summary}");
}

#[test]
fn kafka_python_admin_lists_describes_and_deletes_groups() {
    let mut broker = Broker::start(2, BROKER_FLAGS);
    let summary = run_scenario(&mut broker, "admin_groups.py", "kp-admin", &[]);

    assert_eq!(summary["listed"]["protocol_type"], "consumer", "{summary}");
    assert_eq!(summary["stable"]["state"], "Stable", "{summary}");
    assert_eq!(summary["stable"]["protocol"], "range", "{summary}");
    assert_eq!(
        summary["stable"]["client_id"], "kp-admin-member",
        "{summary}"
    );
    assert_eq!(
        summary["stable"]["assignment"],
        json!({"kp-admin": [0, 1]}),
        "{summary}"
    );
    assert_eq!(
        summary["offsets"],
        json!({"kp-admin/0": [3, "meta-0"], "kp-admin/1": [5, "meta-1"]}),
        "{summary}"
    );
    assert_eq!(
        summary["refused_while_active"],
        json!([
            "NonEmptyGroupError",
            "GroupSubscribedToTopicError",
            "UnknownMemberIdError"
        ]),
        "{summary}"
    );
    assert_eq!(summary["deleted"], "OK", "{summary}");
    assert_eq!(summary["after_delete"]["state"], "Dead", "{summary}");
    assert_eq!(
        summary["after_delete"]["delete_again"], "GroupIdNotFoundError",
        "{summary}"
    );
}

#[test]
fn kafka_python_describe_log_dirs_reports_each_hosted_partition_size_and_lag() {
    // Two shards: the topic's two partitions live on different ones, so the answer
    // gathers every shard's logs.
    let mut broker = Broker::start(2, BROKER_FLAGS);
    let topic = "kp-log-dirs";
    let summary = run_scenario(&mut broker, "log_dirs.py", topic, &[]);
    let data_dir = broker
        .data_dir()
        .to_str()
        .expect("UTF-8 data dir")
        .to_string();

    assert_eq!(summary["version"], 4, "{summary}");
    // 20 values of 100 bytes per partition, however the producer batched them.
    let at_least_bytes = 20 * 100;
    for asked in ["named", "hosted"] {
        let result = &summary[asked];
        assert_eq!(result["error_code"], 0, "{asked}: {summary}");
        assert_eq!(result["log_dir"], data_dir.as_str(), "{asked}: {summary}");
        let partitions = result["partitions"].as_object().expect("partitions");
        assert_eq!(
            partitions.keys().collect::<Vec<_>>(),
            ["0", "1"],
            "{asked}: {summary}"
        );
        for (partition, described) in partitions {
            let size = described[0].as_i64().expect("partition_size");
            assert!(size >= at_least_bytes, "{asked} {partition}: {summary}");
            assert_eq!(
                described[1], 0,
                "offset_lag, {asked} {partition}: {summary}"
            );
            assert_eq!(described[2], false, "is_future_key: {summary}");
        }
        let total_bytes = result["total_bytes"].as_i64().expect("total_bytes");
        let usable_bytes = result["usable_bytes"].as_i64().expect("usable_bytes");
        assert!(total_bytes > 0, "{asked}: {summary}");
        assert!(
            (0..=total_bytes).contains(&usable_bytes),
            "{asked}: {summary}"
        );
    }
    // Nothing was written between the two: the same sizes either way.
    assert_eq!(
        summary["named"]["partitions"], summary["hosted"]["partitions"],
        "{summary}"
    );
    assert_eq!(
        summary["some"]["topics"],
        json!([topic]),
        "only the named topic: {summary}"
    );
    assert_eq!(
        summary["some"]["partitions"]
            .as_object()
            .expect("partitions")
            .keys()
            .collect::<Vec<_>>(),
        ["1"],
        "only the named partition that exists: {summary}"
    );
    assert_eq!(summary["unknown"]["error_code"], 0, "{summary}");
    assert_eq!(summary["unknown"]["topics"], json!([]), "{summary}");
}

#[test]
fn kafka_python_assign_only_consumer_commits_and_reads_back_offsets() {
    let mut broker = Broker::start(2, BROKER_FLAGS);
    let summary = run_scenario(&mut broker, "manual_commit.py", "kp-simple", &[]);

    assert_eq!(
        summary["committed"],
        json!({"0": [2, "simple-0"], "1": [4, "simple-1"]}),
        "{summary}"
    );
    assert_eq!(
        summary["second_first_offsets"],
        json!({"0": 2, "1": 4}),
        "{summary}"
    );
    assert_eq!(summary["listed"]["protocol_type"], "", "{summary}");
    assert_eq!(summary["described_state"], "Empty", "{summary}");
}

#[test]
fn kafka_python_committed_offsets_survive_kill9_and_the_group_resumes() {
    let mut broker = Broker::start(2, BROKER_FLAGS);
    let before = run_scenario(
        &mut broker,
        "restart_offsets.py",
        "kp-restart",
        &["--phase", "commit"],
    );
    assert_eq!(before["consumed"], 20, "{before}");

    broker.kill9();
    broker.restart();
    let after = run_scenario(
        &mut broker,
        "restart_offsets.py",
        "kp-restart",
        &["--phase", "verify"],
    );
    assert_eq!(
        after["offsets"],
        json!({"0": [4, "crash-0"], "1": [7, "crash-1"]}),
        "{after}"
    );
    assert_eq!(after["state"], "Empty", "{after}");
    assert_eq!(after["resumed_at"], json!({"0": 4, "1": 7}), "{after}");
}

// ---- Transactions (KIP-98) as kafka-python drives them -------------------------------
//
// kafka-python's transactional producer and read_committed consumer are a second,
// independent implementation next to librdkafka's (tests/transactions.rs). The scripts are
// tests/python/tx_*.py; kp_transactions.py bounds every transaction call.

/// `[offset, value]` of the records one transaction of tx_commit_abort.py wrote to
/// `partition`: `<prefix>-<partition>`, `<prefix>-<partition + 2>`, ... from `first_offset`.
fn transaction_records(prefix: &str, partition: usize, first_offset: i64) -> Vec<Value> {
    (0..3)
        .map(|index| {
            json!([
                first_offset + index as i64,
                format!("{prefix}-{}", partition + 2 * index)
            ])
        })
        .collect()
}

#[test]
fn kafka_python_read_committed_sees_committed_transactions_and_never_aborted_ones() {
    let mut broker = Broker::start(2, BROKER_FLAGS);
    let summary = run_scenario(&mut broker, "tx_commit_abort.py", "kp-txn", &[]);

    for partition in 0..2 {
        let key = partition.to_string();
        // Three records and one commit marker (offset 3), three aborted records and one
        // abort marker (offset 7), then the second committed transaction.
        let first = transaction_records("committed-a", partition, 0);
        let aborted = transaction_records("aborted", partition, 4);
        let second = transaction_records("committed-b", partition, 8);
        let committed: Vec<Value> = first.iter().chain(&second).cloned().collect();
        let everything: Vec<Value> = first
            .iter()
            .chain(&aborted)
            .chain(&second)
            .cloned()
            .collect();
        assert_eq!(summary["committed"][&key], json!(committed), "{summary}");
        assert_eq!(summary["aborted"][&key], json!(aborted), "{summary}");
        assert_eq!(
            summary["read_committed"][&key],
            json!(committed),
            "{summary}"
        );
        assert_eq!(
            summary["read_uncommitted"][&key],
            json!(everything),
            "{summary}"
        );
    }
    // While the aborted transaction was open, read_committed ListOffsets answered its
    // first offset (the last stable offset), read_uncommitted the high watermark.
    assert_eq!(
        summary["open_transaction_end_offsets"],
        json!({"read_committed": {"0": 4, "1": 4}, "read_uncommitted": {"0": 7, "1": 7}}),
        "{summary}"
    );
    assert_eq!(
        summary["final_end_offsets"],
        json!({"read_committed": {"0": 12, "1": 12}, "read_uncommitted": {"0": 12, "1": 12}}),
        "{summary}"
    );
}

#[test]
fn kafka_python_send_offsets_to_transaction_commits_group_offsets_only_with_the_transaction() {
    let mut broker = Broker::start(2, BROKER_FLAGS);
    let summary = run_scenario(&mut broker, "tx_offsets.py", "kp-ctp", &[]);

    let at = |offset: i64| json!({"0": [offset, format!("round-to-{offset}")], "1": [offset, format!("round-to-{offset}")]});
    let consumer_view = |offset: i64| json!({"0": offset, "1": offset});
    // kafka-python's read_committed committed() sets require_stable: while offsets are
    // pending in a transaction the coordinator answers UNSTABLE_OFFSET_COMMIT, which the
    // client retries until its timeout.
    let unstable = json!({"0": "KafkaTimeoutError", "1": "KafkaTimeoutError"});
    assert_eq!(summary["before"], json!({}), "{summary}");

    // Round 1 (group metadata, committed): invisible while pending, then visible.
    assert_eq!(summary["commit_pending"], json!({}), "{summary}");
    assert_eq!(
        summary["commit_pending_consumer_view"], unstable,
        "{summary}"
    );
    assert_eq!(summary["commit"], at(4), "{summary}");
    assert_eq!(
        summary["commit_consumer_view"],
        consumer_view(4),
        "{summary}"
    );

    // Round 2 (aborted): the group keeps round 1's offsets.
    assert_eq!(summary["abort_pending"], at(4), "{summary}");
    assert_eq!(
        summary["abort_pending_consumer_view"], unstable,
        "{summary}"
    );
    assert_eq!(summary["abort"], at(4), "{summary}");
    assert_eq!(
        summary["abort_consumer_view"],
        consumer_view(4),
        "{summary}"
    );

    // Round 3 (bare group id, committed while the member is still in the group).
    assert_eq!(summary["commit_by_group_id_pending"], at(4), "{summary}");
    assert_eq!(
        summary["commit_by_group_id_pending_consumer_view"], unstable,
        "{summary}"
    );
    assert_eq!(summary["commit_by_group_id"], at(10), "{summary}");
    assert_eq!(
        summary["commit_by_group_id_consumer_view"],
        consumer_view(10),
        "{summary}"
    );

    for partition in 0..2 {
        let key = partition.to_string();
        let output = |range: std::ops::Range<usize>| -> Vec<Value> {
            range
                .map(|index| json!(format!("out-in-{partition}-{index}")))
                .collect()
        };
        // Every input record once in the committed output; round 2's output (inputs 4-6)
        // is only in the log.
        assert_eq!(
            summary["read_committed"][&key],
            json!(output(0..10)),
            "{summary}"
        );
        let everything: Vec<Value> = output(0..7).into_iter().chain(output(4..10)).collect();
        assert_eq!(
            summary["read_uncommitted"][&key],
            json!(everything),
            "{summary}"
        );
    }
}

#[test]
fn kafka_python_second_transactional_producer_fences_the_first() {
    let mut broker = Broker::start(2, BROKER_FLAGS);
    for (topic, late_send) in [("kp-fence", false), ("kp-fence-late", true)] {
        let args: &[&str] = if late_send { &["--late-send"] } else { &[] };
        let summary = run_scenario(&mut broker, "tx_fencing.py", topic, args);

        // The zombie's open transaction held read_committed at offset 0; the successor's
        // init_transactions() aborted it (two records and an abort marker per partition).
        assert_eq!(
            summary["zombie_open_end_offsets"],
            json!({"0": 0, "1": 0}),
            "{topic}: {summary}"
        );
        assert_eq!(
            summary["after_fencing_end_offsets"],
            json!({"read_committed": {"0": 3, "1": 3}, "read_uncommitted": {"0": 3, "1": 3}}),
            "{topic}: {summary}"
        );
        if late_send {
            assert_eq!(
                summary["late_send_error"], "InvalidProducerEpochError",
                "{topic}: {summary}"
            );
            assert_eq!(
                summary["zombie_epoch_bump"], "ProducerFencedError",
                "{topic}: {summary}"
            );
            assert_eq!(summary["zombie_end_call"], "abort", "{topic}: {summary}");
            // kafka-python wraps the fatal error it already has in a KafkaError.
            let text = summary["zombie_end_error_text"]
                .as_str()
                .unwrap_or_default();
            assert!(text.contains("ProducerFencedError"), "{topic}: {summary}");
        } else {
            assert_eq!(summary["zombie_end_call"], "commit", "{topic}: {summary}");
            assert_eq!(
                summary["zombie_end_error"], "ProducerFencedError",
                "{topic}: {summary}"
            );
        }
        for partition in 0..2 {
            let key = partition.to_string();
            let zombie = [
                json!(format!("zombie-{partition}")),
                json!(format!("zombie-{}", partition + 2)),
            ];
            let successor = [
                json!(format!("successor-{partition}")),
                json!(format!("successor-{}", partition + 2)),
            ];
            assert_eq!(
                summary["read_committed"][&key],
                json!(successor),
                "{topic}: {summary}"
            );
            let everything: Vec<Value> = zombie.iter().chain(&successor).cloned().collect();
            assert_eq!(
                summary["read_uncommitted"][&key],
                json!(everything),
                "{topic}: {summary}"
            );
        }
    }
}

// ---- Idempotent producer (KIP-98) under lost Produce answers --------------------------

#[test]
fn kafka_python_idempotent_producer_writes_retried_batches_once_in_order() {
    // Every 5th Produce is appended but answered by closing the connection (test-only
    // fault injection), so kafka-python resends batches the log already holds.
    let flags = [BROKER_FLAGS, &["--fault-drop-produce-responses", "5"]].concat();
    let mut broker = Broker::start(2, &flags);
    let summary = run_scenario(&mut broker, "idempotent_produce.py", "kp-idempotent", &[]);

    assert_eq!(summary["acknowledged"], 10_000, "{summary}");
    assert_eq!(
        summary["per_partition"],
        json!({"0": 3334, "1": 3333, "2": 3333}),
        "{summary}"
    );
    assert!(
        summary["retries_logged"].as_i64() > Some(0),
        "kafka-python never retried: {summary}\n{}",
        broker.recent_log()
    );
    assert!(
        broker.log_contains("fault injection: Produce response dropped"),
        "{}",
        broker.recent_log()
    );
}

// ---- A three-node cluster (issue 11) -------------------------------------------------

/// How long every node may take to list all three brokers and a controller.
const CLUSTER_MEMBERSHIP_TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn kafka_python_produces_through_one_node_and_consumes_and_reads_offsets_through_others() {
    let flags = [QUICK_BROKER_SESSIONS, BROKER_FLAGS].concat();
    let mut cluster = Cluster::start(3, &flags);
    let node_ids = cluster.node_ids();
    for node_id in &node_ids {
        wait_for_full_view(&cluster, *node_id, CLUSTER_MEMBERSHIP_TIMEOUT);
    }
    let (consume_bootstrap, offsets_bootstrap) = (cluster.bootstrap(1), cluster.bootstrap(2));
    let args = [
        "--consume-bootstrap",
        consume_bootstrap.as_str(),
        "--offsets-bootstrap",
        offsets_bootstrap.as_str(),
    ];
    let summary = run_script(
        &cluster.bootstrap(0),
        "cluster_nodes.py",
        "kp-cluster",
        &args,
        || {
            for node_id in &node_ids {
                cluster.assert_alive(*node_id);
            }
        },
    );

    // Every node answers DescribeCluster with the same three brokers, controller and id.
    let described = summary["described"].as_array().expect("described");
    assert_eq!(described.len(), 3, "{summary}");
    assert!(
        described.iter().all(|answer| *answer == described[0]),
        "{summary}"
    );
    assert_eq!(described[0][0], json!([0, 1, 2]), "{summary}");
    assert!(
        (0..3).contains(&described[0][1].as_i64().unwrap_or(-1)),
        "{summary}"
    );
    assert!(
        !described[0][2].as_str().unwrap_or_default().is_empty(),
        "{summary}"
    );
    // Written through node 0 to partitions led by all three nodes, read through node 1.
    assert_eq!(summary["produced"], 120, "{summary}");
    assert_eq!(summary["read"], 120, "{summary}");
    assert_eq!(
        summary["partitions_written"],
        json!([0, 1, 2, 3, 4, 5]),
        "{summary}"
    );
    let mut led = [0; 3];
    for leader in summary["leaders"].as_object().expect("leaders").values() {
        led[usize::try_from(leader.as_i64().expect("leader id")).expect("a node id")] += 1;
    }
    assert_eq!(led, [2, 2, 2], "partitions led per node: {summary}");
    // Committed through node 1, read back through node 2 by both kinds of client.
    let committed = summary["committed"].as_object().expect("committed");
    assert_eq!(committed.len(), 6, "{summary}");
    assert_eq!(summary["admin_offsets"], summary["committed"], "{summary}");
    assert_eq!(
        summary["consumer_offsets"], summary["committed"],
        "{summary}"
    );
}

/// kafka-python 3 fetches with incremental fetch sessions (KIP-227) by default; with
/// `enable_incremental_fetch_sessions=False` every Fetch names every partition (epoch -1), as
/// librdkafka's always do (its many-partition consumer is in `tests/many_partitions.rs`). A
/// consumer reads 1,000 partitions each way, and once more with sessions asked for from a
/// broker that keeps none (`--max-incremental-fetch-session-cache-slots 0`): every record
/// arrives once, in order, and kafka-python's log shows sessions only where there were some.
#[test]
fn kafka_python_consumes_1000_partitions_with_and_without_fetch_sessions() {
    let script = "many_partitions_fetch.py";
    let assert_read_all = |summary: &Value, sessions: bool| {
        assert_eq!(summary["records"], 2_000, "{summary}");
        let created = summary["sessions_created"].as_u64().unwrap_or(0);
        let incremental = summary["incremental_responses"].as_u64().unwrap_or(0);
        if sessions {
            assert!(
                created >= 1 && incremental >= 1,
                "no session used: {summary}"
            );
        } else {
            assert_eq!((created, incremental), (0, 0), "sessionless: {summary}");
        }
    };
    let mut broker = Broker::start(2, BROKER_FLAGS);
    let with_sessions = run_scenario(
        &mut broker,
        script,
        "kp-many-sessions",
        &["--sessions", "on"],
    );
    assert_read_all(&with_sessions, true);
    let sessionless = run_scenario(
        &mut broker,
        script,
        "kp-many-sessionless",
        &["--sessions", "off"],
    );
    assert_read_all(&sessionless, false);

    let no_slots = ["--max-incremental-fetch-session-cache-slots", "0"];
    let flags: Vec<&str> = BROKER_FLAGS.iter().chain(&no_slots).copied().collect();
    let mut without_sessions = Broker::start(2, &flags);
    let refused = run_scenario(
        &mut without_sessions,
        script,
        "kp-many-no-slots",
        &["--sessions", "on"],
    );
    assert_read_all(&refused, false);
}
