//! `corelog bench` end to end: a short run against the embedded broker writes
//! every report file, the JSON parses, and every produced message was
//! consumed exactly once (the consumers check order and loss themselves).

use std::path::Path;
use std::process::Command;

fn run_bench(report_dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_corelog"));
    command
        .args([
            "bench",
            "--warmup",
            "0.5",
            "--duration",
            "2",
            "--quiet",
            "--partitions",
            "3",
        ])
        .arg("--report-dir")
        .arg(report_dir)
        .args(extra);
    command.output().expect("corelog bench runs")
}

fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .expect("report dir exists")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.to_string_lossy().ends_with(suffix))
        .collect()
}

/// The run's `.json` report (the only one in `dir`), parsed.
fn report_json(dir: &Path) -> serde_json::Value {
    let json_path = &files_with_suffix(dir, ".json")[0];
    serde_json::from_str(&std::fs::read_to_string(json_path).expect("json readable"))
        .expect("json parses")
}

#[test]
fn two_second_bench_writes_reports_and_consumes_every_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = run_bench(dir.path(), &["--rate", "20000", "--message-size", "512"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "bench failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("publish latency"),
        "summary table printed: {stdout}"
    );
    for suffix in [".md", ".json", "-publish.hgrm", "-e2e.hgrm", ".svg"] {
        assert_eq!(
            files_with_suffix(dir.path(), suffix).len(),
            1,
            "one {suffix} report"
        );
    }
    let report = report_json(dir.path());
    let produced = report["produced_messages"]
        .as_u64()
        .expect("produced_messages");
    let consumed = report["consumed_messages"]
        .as_u64()
        .expect("consumed_messages");
    assert!(
        produced > 10_000,
        "a 2 s run at 20,000 msg/s produces plenty: {produced}"
    );
    assert_eq!(produced, consumed, "every measured message consumed once");
    let markdown =
        std::fs::read_to_string(files_with_suffix(dir.path(), ".md")[0].clone()).expect("md");
    assert!(markdown.contains("p99"), "markdown has the latency table");
    let hgrm = std::fs::read_to_string(files_with_suffix(dir.path(), "-publish.hgrm")[0].clone())
        .expect("hgrm");
    assert!(
        hgrm.contains("Percentile"),
        "hgrm has the percentile header"
    );
}

#[test]
fn bench_with_compression_and_keys_reports_no_problems() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = run_bench(
        dir.path(),
        &[
            "--rate",
            "max",
            "--compression",
            "lz4",
            "--keys",
            "random",
            "--acks",
            "all",
            "--consumer-groups",
            "2",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "bench failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        !stdout.contains("PROBLEMS"),
        "no loss, gaps or errors: {stdout}"
    );
}

#[test]
fn bench_consumes_every_message_with_and_without_fetch_sessions() {
    for sessions in [&[][..], &["--no-fetch-sessions"][..]] {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut args = vec!["--rate", "5000"];
        args.extend_from_slice(sessions);
        let output = run_bench(dir.path(), &args);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "bench {args:?} failed\nstdout:\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!stdout.contains("PROBLEMS"), "{args:?}: {stdout}");
        let report = report_json(dir.path());
        assert_eq!(report["scenario"]["fetch_sessions"], sessions.is_empty());
        assert_eq!(report["produced_messages"], report["consumed_messages"]);
        assert_eq!(report["fetch_session_restarts"], 0, "{args:?}");
    }
}

#[test]
fn slow_publish_trace_lists_every_message_over_the_threshold_on_the_monotonic_clock() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut before = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to write into.
    assert_eq!(
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut before) },
        0
    );
    let before_ns = before.tv_sec as u64 * 1_000_000_000 + before.tv_nsec as u64;
    // Threshold 0: every measured message is "slow", so the CSV must list
    // exactly the measured messages.
    let output = run_bench(
        dir.path(),
        &["--rate", "2000", "--trace-slow-publishes", "0"],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "bench failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = report_json(dir.path());
    let produced = report["produced_messages"]
        .as_u64()
        .expect("produced_messages");
    let csvs = files_with_suffix(dir.path(), "-slow-publishes.csv");
    assert_eq!(csvs.len(), 1, "one slow-publish file");
    let csv = std::fs::read_to_string(&csvs[0]).expect("csv readable");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("due_ns,sent_ns,acked_ns,latency_us"));
    let mut rows = 0u64;
    let mut previous_due = 0;
    for line in lines {
        let fields: Vec<u64> = line
            .split(',')
            .map(|field| field.parse().expect("numeric field"))
            .collect();
        let [due, sent, acked, latency_us] = fields[..] else {
            panic!("four fields: {line}");
        };
        assert!(
            due >= before_ns,
            "due {due} is on the monotonic clock, after {before_ns}"
        );
        assert!(due >= previous_due, "sorted by due time");
        assert!(
            due <= sent + 1_000_000,
            "sent no earlier than due (1 ms slack): {line}"
        );
        assert!(sent <= acked, "acked after sent: {line}");
        assert_eq!(latency_us, (acked - due) / 1_000, "{line}");
        previous_due = due;
        rows += 1;
    }
    assert!(produced > 1_000, "a 2 s run at 2,000 msg/s: {produced}");
    assert_eq!(rows, produced, "every measured message is at or over 0 µs");

    let refused = Command::new(env!("CARGO_BIN_EXE_corelog"))
        .args([
            "bench",
            "--sweep-partitions",
            "1,2",
            "--trace-slow-publishes",
            "5",
        ])
        .output()
        .expect("corelog bench runs");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--sweep-partitions"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[test]
fn partition_sweep_writes_one_report_with_a_run_per_count() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_corelog"))
        .args(["bench", "--warmup", "0", "--duration", "1", "--quiet"])
        .args(["--rate", "2000", "--sweep-partitions", "4,1"])
        .arg("--report-dir")
        .arg(dir.path())
        .output()
        .expect("corelog bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "sweep failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("partitions per topic: 1") && stdout.contains("partitions per topic: 4")
    );
    for suffix in [".md", ".json", ".svg"] {
        let files = files_with_suffix(dir.path(), suffix);
        assert_eq!(files.len(), 1, "one {suffix} report: {files:?}");
        assert!(files[0].to_string_lossy().contains("-partition-sweep-"));
    }
    assert!(files_with_suffix(dir.path(), ".hgrm").is_empty());
    let report = report_json(dir.path());
    assert_eq!(report["kind"], "partition-sweep");
    let runs = report["runs"].as_array().expect("runs");
    let counts: Vec<u64> = runs
        .iter()
        .map(|run| run["partitions_per_topic"].as_u64().expect("count"))
        .collect();
    assert_eq!(counts, [1, 4], "ascending, one run each");
    for run in runs {
        assert!(run["produced_messages"].as_u64().expect("produced") > 0);
        assert_eq!(run["produced_messages"], run["consumed_messages"]);
        assert_eq!(run["problems"], 0);
        assert!(run["publish_latency_us"]["p99_us"].is_u64());
        assert!(run["consume_megabytes_per_second"].is_f64());
    }
    let markdown =
        std::fs::read_to_string(&files_with_suffix(dir.path(), ".md")[0]).expect("md readable");
    assert!(markdown.contains("| partitions_per_topic | swept: 1, 4 |"));
    let svg = std::fs::read_to_string(&files_with_suffix(dir.path(), ".svg")[0]).expect("svg");
    assert!(svg.contains("<polyline data-series=\"produce\""));
}

#[test]
fn a_bad_scenario_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario = dir.path().join("bad.toml");
    std::fs::write(&scenario, "acks = 7\n").expect("write scenario");
    let output = run_bench(
        dir.path(),
        &["--scenario", scenario.to_str().expect("utf-8 path")],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("acks"), "error names the problem: {stderr}");
}

#[test]
fn every_shipped_scenario_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/scenarios");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("bench/scenarios exists") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) == Some("toml") {
            corelog::loadgen::scenario::Scenario::from_file(&path)
                .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            count += 1;
        }
    }
    assert!(count >= 6, "the six standard scenarios ship, found {count}");
}
