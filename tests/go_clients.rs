//! The Go clients against corelog (issue 13): franz-go (kgo and kadm) and IBM/sarama, each
//! driven by `go test` tests in the Go module `tests/go/` (see `tests/go/README.md`):
//! - `tests/go/franz`: kgo's idempotent producer with every codec, a cooperative-sticky
//!   group of two members with CommitRecords and a member resuming from the commits (auto-
//!   commit of marked records) and the empty group listed, described and deleted, kadm's
//!   topic create/list/metadata/configs/delete, offset
//!   commit/fetch and start/end offsets, and a `GroupTransactSession` consume-transform-
//!   produce loop read back with read_committed, committed and aborted;
//! - `tests/go/sarama`: the idempotent acks=all SyncProducer with every codec read back by
//!   the Consumer, ConsumerGroup with the range and sticky balancers (two members, marks and
//!   commits, a member resuming from them), a transactional SyncProducer committing and
//!   aborting with read_committed readers, the ClusterAdmin's topic and group calls and the
//!   OffsetManager with ListConsumerGroupOffsets.
//!
//! One test per Go package, each with its own `corelog serve --cores 2` (so requests cross
//! shards) on an ephemeral port; they take turns. Each runs `go test -count=1 -v` on its
//! package with CORELOG_BOOTSTRAP set, prints one line per Go test and the request versions
//! the client sent (the packages' TestMain prints them), and fails with the end of the
//! output when `go test` fails. The expectations are Kafka's: the same packages pass against
//! a reference Kafka 4.4 (`tests/reference_kafka/kafka.sh start`, then `go test ./...` with
//! its address).
//!
//! Go is a required test dependency (`./test.sh` installs it and downloads the modules):
//! without it these tests fail, they never skip. `go.sum` pins every module, and the modules
//! sit in Go's module cache (`~/go/pkg/mod`) after the first run, so later runs need no
//! network. `CORELOG_GO_TEST=Transactional` (a `go test -run` pattern) runs part of the
//! suites; a package where the pattern matches nothing passes with no test run.

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::jvm;
use common::Broker;

/// `go test`'s own bound on one package (it then panics with every goroutine's stack, which
/// says where a test hung); each Go test bounds its own waits at 60 s.
const GO_TEST_TIMEOUT: &str = "150s";
/// The whole `go test` run: a first run on a fresh machine may still download the modules
/// and compile them (tens of seconds on two cores); this bound only catches a stuck `go`.
const GO_RUN_TIMEOUT: Duration = Duration::from_secs(600);
/// No wait for latecomers before a group's first rebalance, as in the other group suites.
const BROKER_FLAGS: &[&str] = &["--group-initial-rebalance-delay-ms", "0"];
/// Selects part of the suites (`go test -run` syntax).
const TEST_FILTER_VARIABLE: &str = "CORELOG_GO_TEST";
/// How much of `go test`'s output a failure message repeats (the end, where the failures
/// and a timeout's goroutine dump are).
const OUTPUT_TAIL_BYTES: usize = 20_000;

/// One suite at a time: a broker starting and a Go compile must not slow the other suite's
/// group timings down on a 2-core machine.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn take_turn() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poison| poison.into_inner())
}

fn module_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("go")
}

/// Where a run leaves its files (the client's debug log).
fn run_dir(package: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("go_clients")
        .join(package);
    fs::create_dir_all(&dir).expect("create the run's directory under CARGO_TARGET_TMPDIR");
    dir
}

/// Fails the test (never skips it) unless `go version` runs.
fn require_go() {
    let problem = match Command::new("go")
        .arg("version")
        .stdin(Stdio::null())
        .output()
    {
        Ok(output) if output.status.success() => return,
        Ok(output) => format!(
            "`go version` failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(error) => format!("cannot run `go`: {error}"),
    };
    panic!(
        "{problem}\nThe Go client suites (tests/go_clients.rs) need a Go toolchain (tests/go/go.mod: go \
         1.26; an older Go 1.21+ fetches that one): run `./test.sh`, which installs it and downloads the modules, or \
         on Debian `apt-get install golang-go`"
    );
}

/// How one Go test (or subtest) ended, from `go test -v`'s `--- PASS: name (0.12s)` lines.
struct GoTest {
    verdict: String,
    name: String,
    seconds: String,
}

fn parse_results(output: &str) -> Vec<GoTest> {
    output
        .lines()
        .filter_map(|line| {
            let rest = line.trim_start().strip_prefix("--- ")?;
            let (verdict, rest) = rest.split_once(": ")?;
            if !matches!(verdict, "PASS" | "FAIL" | "SKIP") {
                return None;
            }
            let (name, seconds) = rest.split_once(' ').unwrap_or((rest, ""));
            Some(GoTest {
                verdict: verdict.to_owned(),
                name: name.to_owned(),
                seconds: seconds.trim_matches(|c| c == '(' || c == ')').to_owned(),
            })
        })
        .collect()
}

/// The request-version table the package's TestMain printed after the tests.
fn version_table(output: &str) -> String {
    let mut table = String::new();
    let mut inside = false;
    for line in output.lines() {
        if line.contains("request versions sent to") {
            inside = true;
        } else if inside && !line.starts_with("  ") {
            inside = false;
        }
        if inside {
            table.push_str(line);
            table.push('\n');
        }
    }
    table
}

/// Starts a corelog, runs `go test` on one package of `tests/go` against it, prints the
/// results, and fails unless every selected test passed.
fn run_package_against_corelog(package: &str, client: &str) {
    let _turn = take_turn();
    require_go();
    let mut broker = Broker::start(2, BROKER_FLAGS);
    let bootstrap = broker.bootstrap();
    let debug_log = run_dir(package).join("client-debug.log");

    let mut command = Command::new("go");
    command
        .current_dir(module_dir())
        .args(["test", "-count=1", "-v", "-timeout", GO_TEST_TIMEOUT])
        .env("CORELOG_BOOTSTRAP", &bootstrap)
        .env("CORELOG_GO_DEBUG_LOG", &debug_log);
    let filter = std::env::var(TEST_FILTER_VARIABLE)
        .map(|filter| filter.trim().to_owned())
        .unwrap_or_default();
    if !filter.is_empty() {
        command.args(["-run", &filter]);
    }
    command.arg(format!("./{package}"));

    let started = Instant::now();
    let finished = jvm::run_bounded(&mut command, None, GO_RUN_TIMEOUT);
    let elapsed = started.elapsed();
    let output = format!("{}{}", finished.stdout, finished.stderr);
    let results = parse_results(&output);

    print!("{}", version_table(&output));
    println!(
        "{client} suite (tests/go/{package}) against corelog at {bootstrap}, {:.0} s:",
        elapsed.as_secs_f64()
    );
    if results.is_empty() && !filter.is_empty() {
        println!("  (no test of tests/go/{package} matches {TEST_FILTER_VARIABLE}={filter})");
    }
    for test in &results {
        // Subtests (`TestX/case`) indented under their test.
        let indent = if test.name.contains('/') { "  " } else { "" };
        println!(
            "  {:<5} {indent}{} ({})",
            test.verdict, test.name, test.seconds
        );
    }
    broker.assert_alive();

    let tail = jvm::tail(&output, OUTPUT_TAIL_BYTES);
    let Some(status) = finished.status else {
        panic!("go test did not finish within {GO_RUN_TIMEOUT:?}\noutput (end):\n{tail}");
    };
    assert!(
        status.success(),
        "the {client} suite failed against corelog (go test {status}, {:.0} s); the client's \
         debug log: {}\noutput (end):\n{tail}",
        elapsed.as_secs_f64(),
        debug_log.display()
    );
    let skipped: Vec<&str> = results
        .iter()
        .filter(|test| test.verdict == "SKIP")
        .map(|test| test.name.as_str())
        .collect();
    assert!(
        skipped.is_empty(),
        "Go tests skipped (they must run or fail): {skipped:?}"
    );
    assert!(
        !results.is_empty() || !filter.is_empty(),
        "go test succeeded but ran no test in tests/go/{package}:\n{tail}"
    );
}

#[test]
fn franz_go_suite_passes_against_corelog() {
    run_package_against_corelog("franz", "franz-go (kgo, kadm)");
}

#[test]
fn sarama_suite_passes_against_corelog() {
    run_package_against_corelog("sarama", "IBM/sarama");
}
