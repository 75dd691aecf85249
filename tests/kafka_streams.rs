//! Kafka Streams (org.apache.kafka:kafka-streams 4.4) against corelog and against a reference
//! Apache Kafka: the Maven project in `tests/java/streams/` (JUnit 5 through Surefire) runs a
//! stateless filter/mapValues/split topology under exactly_once_v2, exactly-once across a
//! restart of the application (clean close, `close(Duration.ZERO)`, SIGKILL of its JVM), and a
//! stateful `groupByKey().count()` that needs a compacted changelog topic, which corelog refuses
//! with INVALID_CONFIG (its documented limitation) and Kafka creates (see
//! `tests/java/streams/README.md`).
//!
//! Two tests, one per broker, each one Maven run (one test JVM) against one broker:
//! - `kafka_streams_suite_passes_against_corelog` starts one `corelog serve --cores 2` (so
//!   requests cross shards) on an ephemeral port with its own data directory, and runs the
//!   suite with `-Dcorelog.broker=corelog`;
//! - `kafka_streams_suite_passes_against_reference_kafka` starts Kafka 4.x with
//!   `tests/reference_kafka/kafka.sh` and runs it with `-Dcorelog.broker=kafka`: every
//!   expectation of the suite is proven on real Kafka, and the stateful topology really counts.
//!
//! They take turns (one lock), since both build the same Maven project; each run writes its
//! Streams and client log, state directories and Surefire reports to its own
//! `tests/java/streams/target/<broker>/`. Java 17+ and Maven are required test dependencies
//! (`./test.sh` installs them and warms `~/.m2`): without them the tests fail, they never skip.
//!
//! `CORELOG_STREAMS_TEST=StatefulCountTest` (any Surefire `-Dtest` pattern) runs part of the
//! suite.

mod common;
#[path = "common/surefire.rs"]
mod surefire;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::jvm::{self, ReferenceKafka};
use common::Broker;

/// The whole Maven run: a first run on a fresh machine downloads kafka-streams, RocksDB, JUnit
/// and the Maven plugins (tens of MB); the suite itself takes one to two minutes.
const MAVEN_TIMEOUT: Duration = Duration::from_secs(600);
/// No wait for latecomers before a group's first rebalance, as in the other group suites
/// (`kafka.sh` sets Kafka's `group.initial.rebalance.delay.ms=0` likewise).
const BROKER_FLAGS: &[&str] = &["--group-initial-rebalance-delay-ms", "0"];
/// Selects part of the suite (Surefire's `-Dtest` syntax).
const TEST_FILTER_VARIABLE: &str = "CORELOG_STREAMS_TEST";
/// How much of Maven's output a failure message repeats (the end, where the errors are).
const MAVEN_OUTPUT_TAIL_BYTES: usize = 20_000;
/// How much of the Streams and client log a failure message repeats.
const CLIENT_LOG_TAIL_BYTES: usize = 8_000;

/// One test at a time: both build the same Maven project (`target/test-classes`), and a broker
/// starting up must not slow the other test's Streams applications down on a 2-core machine.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn take_turn() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poison| poison.into_inner())
}

fn project_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("java")
        .join("streams")
}

/// Which broker a run is against: the suite's `corelog.broker` property.
#[derive(Clone, Copy)]
enum BrokerKind {
    Corelog,
    Kafka,
}

impl BrokerKind {
    /// The value of `-Dcorelog.broker` and the name of the run's directory.
    fn property(self) -> &'static str {
        match self {
            BrokerKind::Corelog => "corelog",
            BrokerKind::Kafka => "kafka",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            BrokerKind::Corelog => "corelog",
            BrokerKind::Kafka => "the reference Kafka",
        }
    }
}

/// What one run of the suite against one broker left behind.
struct SuiteRun {
    /// `None`: killed after [`MAVEN_TIMEOUT`].
    status: Option<ExitStatus>,
    output: String,
    elapsed: Duration,
    cases: Vec<surefire::TestCase>,
    run_dir: PathBuf,
}

/// Runs `mvn test` on the suite against `bootstrap`, with its logs, state directories and
/// reports in `target/<broker>/`, and prints one line per test.
fn run_suite(broker: BrokerKind, bootstrap: &str) -> SuiteRun {
    let project = project_dir();
    let run_dir = project.join("target").join(broker.property());
    // Reports and state of an earlier run must not pass for this one's.
    let _ = fs::remove_dir_all(&run_dir);
    fs::create_dir_all(&run_dir).expect("create the run's directory");

    let mut command = Command::new("mvn");
    command
        .args(["-B", "-q", "--no-transfer-progress", "-Dstyle.color=never"])
        .arg("-f")
        .arg(project.join("pom.xml"))
        .arg("test")
        .arg(format!("-DCORELOG_BOOTSTRAP={bootstrap}"))
        .arg(format!("-Dcorelog.broker={}", broker.property()))
        .arg(format!("-Dcorelog.runDirectory={}", run_dir.display()))
        .env_remove("CORELOG_BOOTSTRAP");
    if let Ok(filter) = std::env::var(TEST_FILTER_VARIABLE) {
        if !filter.trim().is_empty() {
            command.arg(format!("-Dtest={}", filter.trim()));
        }
    }
    let started = Instant::now();
    let finished = jvm::run_bounded(&mut command, None, MAVEN_TIMEOUT);
    let elapsed = started.elapsed();

    let cases = surefire::test_cases(&run_dir.join("surefire-reports"));
    println!(
        "Kafka Streams suite against {} at {bootstrap}, {:.0} s:\n{}",
        broker.describe(),
        elapsed.as_secs_f64(),
        surefire::render_summary(&cases, false)
    );
    SuiteRun {
        status: finished.status,
        output: format!("{}{}", finished.stdout, finished.stderr),
        elapsed,
        cases,
        run_dir,
    }
}

/// The end of the run's Streams and client log, for a failure message.
fn client_log_tail(run_dir: &Path) -> String {
    let path = run_dir.join("kafka-streams.log");
    let log = fs::read_to_string(&path).unwrap_or_default();
    format!(
        "---- end of {} ----\n{}",
        path.display(),
        jvm::tail(&log, CLIENT_LOG_TAIL_BYTES)
    )
}

/// Fails unless Maven succeeded and Surefire reported tests, none of them skipped.
fn assert_suite_passed(run: &SuiteRun, broker: BrokerKind) {
    let problems = surefire::render_summary(&run.cases, true);
    let output = jvm::tail(&run.output, MAVEN_OUTPUT_TAIL_BYTES);
    let Some(status) = run.status else {
        panic!(
            "mvn did not finish within {MAVEN_TIMEOUT:?} against {}\n{problems}\n{}\nmaven output \
             (end):\n{output}",
            broker.describe(),
            client_log_tail(&run.run_dir)
        );
    };
    assert!(
        status.success(),
        "the Kafka Streams suite failed against {} (mvn {status}, {:.0} s)\n{problems}\n{}\nmaven \
         output (end):\n{output}",
        broker.describe(),
        run.elapsed.as_secs_f64(),
        client_log_tail(&run.run_dir)
    );
    assert!(
        !run.cases.is_empty(),
        "mvn succeeded but Surefire wrote no report: were the tests compiled and run?\n{output}"
    );
    let skipped: Vec<&str> = run
        .cases
        .iter()
        .filter(|case| matches!(case.outcome, surefire::Outcome::Skipped))
        .map(|case| case.name.as_str())
        .collect();
    assert!(skipped.is_empty(), "no test may be skipped: {skipped:?}");
}

#[test]
fn kafka_streams_suite_passes_against_corelog() {
    let _turn = take_turn();
    jvm::require_java_and_maven();
    let mut broker = Broker::start(2, BROKER_FLAGS);
    let bootstrap = broker.bootstrap();
    let run = run_suite(BrokerKind::Corelog, &bootstrap);
    broker.assert_alive();
    assert_suite_passed(&run, BrokerKind::Corelog);
}

/// The rule: every expectation of the suite is proven on real Kafka first.
#[test]
fn kafka_streams_suite_passes_against_reference_kafka() {
    let _turn = take_turn();
    // Checked before the broker starts, whose script needs Java too.
    jvm::require_java_and_maven();
    let kafka = ReferenceKafka::start();
    let run = run_suite(BrokerKind::Kafka, kafka.bootstrap());
    assert_suite_passed(&run, BrokerKind::Kafka);
}
