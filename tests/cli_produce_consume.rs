//! `corelog produce` and `corelog consume` as a user runs them: the real binary,
//! stdin lines in, formatted records out, against a real broker. librdkafka is
//! the reference for the key partitioner; every child process is bounded and
//! killed by pid when it overstays.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// How long one CLI run may take before the test kills it and fails.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

fn broker() -> Broker {
    Broker::start(2, &["--group-initial-rebalance-delay-ms", "0"])
}

/// What one `corelog` run left behind.
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Run {
    fn assert_success(&self, what: &str) {
        assert!(
            self.status.success(),
            "{what} exited with {}\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
    }

    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// A `corelog` process still running, its output collected by threads.
struct Running {
    child: Child,
    args: Vec<String>,
    started: Instant,
    writer: thread::JoinHandle<()>,
    stdout: thread::JoinHandle<String>,
    stderr: thread::JoinHandle<String>,
}

/// Starts `corelog args...` with `stdin` (then closed).
fn start(args: &[&str], stdin: &str) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_corelog"))
        .args(args)
        .env_remove("CORELOG_BROKERS")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn corelog");
    let mut input = child.stdin.take().expect("piped stdin");
    let text = stdin.to_string();
    let writer = thread::spawn(move || {
        let _ = input.write_all(text.as_bytes()); // dropping `input` closes stdin
    });
    let stdout = read_all(child.stdout.take().expect("piped stdout"));
    let stderr = read_all(child.stderr.take().expect("piped stderr"));
    Running {
        child,
        args: args.iter().map(|arg| arg.to_string()).collect(),
        started: Instant::now(),
        writer,
        stdout,
        stderr,
    }
}

fn read_all(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut out = String::new();
        let _ = pipe.read_to_string(&mut out);
        out
    })
}

impl Running {
    /// Waits for the exit, at most `RUN_TIMEOUT`; kills the child (by its pid) and panics after.
    fn wait(mut self) -> Run {
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if self.started.elapsed() > RUN_TIMEOUT {
                // Child::kill is SIGKILL to exactly this child's pid.
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "corelog {:?} did not finish within {RUN_TIMEOUT:?}; stderr:\n{}",
                    self.args,
                    self.stderr.join().unwrap_or_default()
                );
            }
            thread::sleep(Duration::from_millis(20));
        };
        let _ = self.writer.join();
        Run {
            status,
            stdout: self.stdout.join().expect("stdout reader"),
            stderr: self.stderr.join().expect("stderr reader"),
            elapsed: self.started.elapsed(),
        }
    }
}

/// Runs `corelog args...` with `stdin` to the end, bounded by `RUN_TIMEOUT`.
fn corelog(args: &[&str], stdin: &str) -> Run {
    start(args, stdin).wait()
}

fn produce(bootstrap: &str, topic: &str, extra: &[&str], lines: &str) -> Run {
    let mut args = vec!["produce", "--brokers", bootstrap, topic];
    args.extend_from_slice(extra);
    let run = corelog(&args, lines);
    run.assert_success("corelog produce");
    run
}

/// `consume` bounded by `--timeout-ms` (5 s unless `extra` says), so it ends
/// even if records are missing.
fn consume(bootstrap: &str, topic: &str, extra: &[&str]) -> Run {
    let mut args = vec!["consume", "--brokers", bootstrap, topic];
    if !extra.contains(&"--timeout-ms") {
        args.extend_from_slice(&["--timeout-ms", "5000"]);
    }
    args.extend_from_slice(extra);
    let run = corelog(&args, "");
    run.assert_success("corelog consume");
    run
}

#[test]
fn produced_keys_values_and_headers_come_back_with_format_and_json() {
    let broker = broker();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("cli-format");
    create_topic(&bootstrap, &topic, 3);
    let lines: String = (0..30)
        .map(|i| format!("key-{}:value-{i}\n", i % 7))
        .collect();
    let produced = produce(
        &bootstrap,
        &topic,
        &[
            "--key-separator",
            ":",
            "--header",
            "app=cli",
            "--header",
            "n=1",
        ],
        &lines,
    );
    assert!(
        produced.stderr.contains("30 records"),
        "{}",
        produced.stderr
    );

    let run = consume(
        &bootstrap,
        &topic,
        &[
            "--from-beginning",
            "--num",
            "30",
            "--format",
            "%p|%o|%k|%v|%h|%K|%S\\n",
        ],
    );
    let mut partition_of_key: BTreeMap<String, i32> = BTreeMap::new();
    let mut values = BTreeSet::new();
    for line in run.lines() {
        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(fields.len(), 7, "{line}");
        let partition: i32 = fields[0].parse().expect("partition");
        let key = fields[2].to_string();
        assert_eq!(fields[4], "app=cli,n=1", "headers on every record");
        assert_eq!(fields[5], key.len().to_string());
        assert_eq!(fields[6], fields[3].len().to_string());
        let expected_key = format!(
            "key-{}",
            fields[3]["value-".len()..].parse::<usize>().expect("n") % 7
        );
        assert_eq!(key, expected_key);
        let first = *partition_of_key.entry(key.clone()).or_insert(partition);
        assert_eq!(first, partition, "key {key} seen in two partitions");
        values.insert(fields[3].to_string());
    }
    assert_eq!(values.len(), 30, "every value once:\n{}", run.stdout);

    let run = consume(
        &bootstrap,
        &topic,
        &["--from-beginning", "--num", "30", "--json"],
    );
    let mut seen = 0;
    for line in run.lines() {
        let record: serde_json::Value =
            serde_json::from_str(line).expect("one JSON object per line");
        assert_eq!(record["topic"], topic.as_str());
        let key = record["key"].as_str().expect("key").to_string();
        assert_eq!(
            record["partition"].as_i64(),
            partition_of_key.get(&key).map(|p| i64::from(*p))
        );
        assert!(record["value"]
            .as_str()
            .expect("value")
            .starts_with("value-"));
        assert!(record["offset"].as_i64().expect("offset") >= 0);
        assert!(record["timestamp"].as_i64().expect("timestamp") > 1_600_000_000_000);
        assert_eq!(record["headers"][0]["key"], "app");
        assert_eq!(record["headers"][1]["value"], "1");
        seen += 1;
    }
    assert_eq!(seen, 30);
}

#[test]
fn keyed_records_land_where_librdkafkas_murmur2_partitioner_puts_them() {
    let broker = broker();
    let bootstrap = broker.bootstrap();
    let ours = unique_topic("cli-murmur-ours");
    let theirs = unique_topic("cli-murmur-theirs");
    create_topic(&bootstrap, &ours, 5);
    create_topic(&bootstrap, &theirs, 5);
    let keys: Vec<String> = (0..40)
        .map(|i| format!("customer-{i}-{}", "x".repeat(i % 6)))
        .collect();

    let lines: String = keys.iter().map(|key| format!("{key}\t{key}\n")).collect();
    produce(&bootstrap, &ours, &["--key-separator", "\t"], &lines);
    let run = consume(
        &bootstrap,
        &ours,
        &["--from-beginning", "--num", "40", "--format", "%k %p\\n"],
    );
    let our_partitions: BTreeMap<String, i32> = run
        .lines()
        .iter()
        .map(|line| {
            let (key, partition) = line.rsplit_once(' ').expect("key partition");
            (key.to_string(), partition.parse().expect("partition"))
        })
        .collect();
    assert_eq!(our_partitions.len(), keys.len(), "{}", run.stdout);

    let producer = producer(&bootstrap, &[("partitioner", "murmur2_random")]);
    for (id, key) in keys.iter().enumerate() {
        send(
            &producer,
            record(&theirs, id, key.as_bytes(), key.as_bytes()),
        );
    }
    let placed = wait_for_successful_deliveries(&producer, keys.len(), Duration::from_secs(30));
    let used: BTreeSet<i32> = placed.iter().map(|(partition, _)| *partition).collect();
    assert!(used.len() > 1, "keys spread over partitions: {used:?}");
    for (id, key) in keys.iter().enumerate() {
        assert_eq!(our_partitions[key], placed[id].0, "partition of key {key}");
    }
}

#[test]
fn partition_and_offset_select_what_is_read() {
    let broker = broker();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("cli-select");
    create_topic(&bootstrap, &topic, 2);
    let lines: String = (0..6).map(|i| format!("p1-{i}\n")).collect();
    produce(&bootstrap, &topic, &["--partition", "1"], &lines);
    produce(&bootstrap, &topic, &["--partition", "0"], "p0-0\n");

    let run = consume(
        &bootstrap,
        &topic,
        &[
            "--partition",
            "1",
            "--offset",
            "2",
            "--num",
            "3",
            "--format",
            "%p:%o:%v\\n",
        ],
    );
    assert_eq!(run.lines(), vec!["1:2:p1-2", "1:3:p1-3", "1:4:p1-4"]);

    let run = consume(
        &bootstrap,
        &topic,
        &[
            "--partition",
            "0",
            "--from-beginning",
            "--timeout-ms",
            "1000",
        ],
    );
    assert_eq!(run.lines(), vec!["p0-0"], "the idle timeout ends the run");

    let run = consume(
        &bootstrap,
        &topic,
        &["--offset", "latest", "--timeout-ms", "1000"],
    );
    assert!(
        run.stdout.is_empty(),
        "latest starts after everything: {}",
        run.stdout
    );

    // Beyond the end: reset to earliest, and say so.
    let run = consume(
        &bootstrap,
        &topic,
        &["--partition", "1", "--offset", "1000", "--num", "2"],
    );
    assert_eq!(run.lines(), vec!["p1-0", "p1-1"]);
    assert!(run.stderr.contains("out of range"), "{}", run.stderr);

    let run = corelog(
        &[
            "consume",
            "--brokers",
            &bootstrap,
            &topic,
            "--partition",
            "7",
        ],
        "",
    );
    assert!(!run.status.success());
    assert!(run.stderr.contains("no partition 7"), "{}", run.stderr);
}

#[test]
fn a_group_consumer_continues_where_the_previous_run_stopped() {
    let broker = broker();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("cli-group");
    create_topic(&bootstrap, &topic, 2);
    let lines: String = (0..20).map(|i| format!("k{i}:m{i}\n")).collect();
    produce(&bootstrap, &topic, &["--key-separator", ":"], &lines);

    let group = ["--group", "cli-group-a", "--from-beginning"];
    let first = consume(&bootstrap, &topic, &[&group[..], &["--num", "7"]].concat());
    assert_eq!(first.lines().len(), 7, "{}", first.stderr);
    let second = consume(&bootstrap, &topic, &[&group[..], &["--num", "5"]].concat());
    assert_eq!(second.lines().len(), 5, "{}", second.stderr);
    let third = consume(
        &bootstrap,
        &topic,
        &[&group[..], &["--timeout-ms", "2000"]].concat(),
    );
    let mut all: Vec<String> = [first.lines(), second.lines(), third.lines()]
        .concat()
        .into_iter()
        .map(str::to_string)
        .collect();
    assert_eq!(
        all.len(),
        20,
        "no record twice, none lost:\n{}",
        third.stderr
    );
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 20);

    // A new group with nothing committed starts at the latest offset by default.
    let fresh = consume(
        &bootstrap,
        &topic,
        &["--group", "cli-group-b", "--timeout-ms", "1500"],
    );
    assert!(fresh.stdout.is_empty(), "{}", fresh.stdout);
    assert!(fresh.stderr.contains("joined group"), "{}", fresh.stderr);
}

/// Generation -> partitions, from the "joined group G generation N with partitions [..]" lines.
fn assignments(stderr: &str) -> BTreeMap<i32, BTreeSet<i32>> {
    stderr
        .lines()
        .filter_map(|line| {
            let (_, rest) = line
                .strip_prefix("joined group ")?
                .split_once(" generation ")?;
            let (generation, rest) = rest.split_once(" with partitions [")?;
            let (list, _) = rest.split_once(']')?;
            let partitions = list
                .split(", ")
                .filter(|p| !p.is_empty())
                .map(|p| p.parse().expect("partition"))
                .collect();
            Some((generation.parse().expect("generation"), partitions))
        })
        .collect()
}

#[test]
fn two_group_members_split_the_partitions_and_read_everything_once() {
    let broker = broker();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("cli-group-split");
    create_topic(&bootstrap, &topic, 4);
    let lines: String = (0..40).map(|i| format!("k{i}:m{i}\n")).collect();
    produce(&bootstrap, &topic, &["--key-separator", ":"], &lines);

    let args = [
        "consume",
        "--brokers",
        &bootstrap,
        &topic,
        "--group",
        "cli-split",
        "--from-beginning",
        "--timeout-ms",
        "6000",
    ];
    let first = start(&args, "");
    thread::sleep(Duration::from_millis(1500)); // let the first member settle alone
    let second = start(&args, "");
    let (first, second) = (first.wait(), second.wait());
    first.assert_success("first member");
    second.assert_success("second member");

    let (first_rounds, second_rounds) = (assignments(&first.stderr), assignments(&second.stderr));
    let shared = second_rounds.iter().find_map(|(generation, theirs)| {
        let ours = first_rounds.get(generation)?;
        Some((ours.clone(), theirs.clone()))
    });
    let (ours, theirs) = shared.unwrap_or_else(|| {
        panic!(
            "no generation with both members:\n{}\n{}",
            first.stderr, second.stderr
        )
    });
    assert_eq!(
        ours.len(),
        2,
        "range splits 4 partitions 2/2: {ours:?} {theirs:?}"
    );
    assert!(ours.is_disjoint(&theirs));
    assert_eq!(ours.union(&theirs).count(), 4);

    let mut all: Vec<&str> = [first.lines(), second.lines()].concat();
    assert_eq!(
        all.len(),
        40,
        "every record once:\n{}\n{}",
        first.stderr,
        second.stderr
    );
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 40);
}

#[test]
fn acks_zero_and_every_compression_codec_round_trip() {
    let broker = broker();
    let bootstrap = broker.bootstrap();
    for (settings, label) in [
        (vec!["--acks", "0"], "acks0"),
        (vec!["--acks", "1", "--compression", "gzip"], "gzip"),
        (vec!["--compression", "snappy"], "snappy"),
        (vec!["--compression", "lz4", "--batch-size", "7"], "lz4"),
        (vec!["--compression", "zstd"], "zstd"),
    ] {
        let topic = unique_topic(&format!("cli-{label}"));
        let lines: String = (0..50)
            .map(|i| format!("{label}-{i}-{}\n", "z".repeat(i)))
            .collect();
        produce(&bootstrap, &topic, &settings, &lines);
        let run = consume(&bootstrap, &topic, &["--from-beginning", "--num", "50"]);
        let expected: Vec<&str> = lines.lines().collect();
        assert_eq!(run.lines(), expected, "{label}");
    }
}

#[test]
fn an_unknown_topic_without_auto_creation_is_a_friendly_error() {
    let broker = Broker::start(2, &["--auto-create-topics", "false"]);
    let bootstrap = broker.bootstrap();
    for command in ["produce", "consume"] {
        let run = corelog(
            &[command, "--brokers", &bootstrap, "no-such-topic"],
            "hello\n",
        );
        assert!(!run.status.success(), "{command} must fail");
        assert!(
            run.stderr.contains("no-such-topic"),
            "{command}: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains("UNKNOWN_TOPIC_OR_PARTITION"),
            "{command}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
}

#[test]
fn an_unreachable_broker_fails_quickly_with_a_hint() {
    // Bind then drop a listener: nothing listens on that port now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port();
    let address = format!("127.0.0.1:{port}");
    for command in ["produce", "consume"] {
        let run = corelog(&[command, "--brokers", &address, "orders"], "hello\n");
        assert!(!run.status.success());
        assert!(
            run.stderr.contains("cannot reach"),
            "{command}: {}",
            run.stderr
        );
        assert!(run.stderr.contains(&address), "{}", run.stderr);
        assert!(
            run.elapsed < Duration::from_secs(10),
            "took {:?}",
            run.elapsed
        );
    }
}

#[test]
fn bad_flags_are_refused_before_connecting() {
    for args in [
        vec!["consume", "t", "--format", "%x"],
        vec!["consume", "t", "--offset", "soon"],
        vec!["produce", "t", "--acks", "2"],
        vec!["produce", "t", "--header", "novalue"],
        vec!["produce", "t", "--compression", "brotli"],
    ] {
        let run = corelog(&[&args[..], &["--brokers", "127.0.0.1:1"]].concat(), "");
        assert!(!run.status.success(), "{args:?}");
        assert!(
            !run.stderr.contains("cannot reach"),
            "{args:?} is refused first: {}",
            run.stderr
        );
    }
}

#[test]
fn kafka_console_spellings_bootstrap_server_and_topic_work_too() {
    let broker = broker();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("cli-console-spelling");
    let produced = corelog(
        &[
            "produce",
            "--bootstrap-server",
            &bootstrap,
            "--topic",
            &topic,
        ],
        "first\nsecond\n",
    );
    produced.assert_success("corelog produce --topic");
    let consumed = corelog(
        &[
            "consume",
            "--bootstrap-server",
            &bootstrap,
            "--topic",
            &topic,
            "--from-beginning",
            "--max-messages",
            "2",
            "--timeout-ms",
            "5000",
        ],
        "",
    );
    consumed.assert_success("corelog consume --topic");
    assert_eq!(
        consumed.lines(),
        vec!["first", "second"],
        "{}",
        consumed.stderr
    );
}
