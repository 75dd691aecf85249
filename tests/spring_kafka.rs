//! Spring Boot 4 and Spring Kafka against corelog and against a reference Apache Kafka: the
//! Maven project in `tests/java/spring/` is the classic order-service/catalog-service example
//! in miniature (a `KafkaTemplate` sending JSON orders, a `@KafkaListener` updating stock,
//! topics created by Spring's `KafkaAdmin`, a listener container stopped and restarted, a
//! `DefaultErrorHandler` with a dead-letter topic). See `tests/java/spring/README.md`.
//!
//! Two tests, one per broker, each one Maven run (one test JVM) against one broker:
//! - `spring_kafka_suite_passes_against_corelog` starts one `corelog serve --cores 2` (so
//!   requests cross shards) on an ephemeral port with its own data directory;
//! - `spring_kafka_suite_passes_against_reference_kafka` starts Kafka 4.x with
//!   `tests/reference_kafka/kafka.sh`: every expectation of the suite holds on real Kafka.
//!
//! They take turns (one lock), since both build the same Maven project; each run writes its
//! Surefire reports and the application's log to its own `target/<broker>/`. Java 17+ and
//! Maven are required test dependencies (`./test.sh` installs them and warms `~/.m2`):
//! without them the tests fail, they never skip.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::jvm::{self, ReferenceKafka};
use common::Broker;

/// The whole Maven run: a first run on a fresh machine downloads Spring Boot, Spring Kafka
/// and the Maven plugins (tens of MB); the suite itself takes under half a minute.
const MAVEN_TIMEOUT: Duration = Duration::from_secs(600);
/// No wait for latecomers before a group's first rebalance, as in the other group suites
/// (`kafka.sh` sets Kafka's `group.initial.rebalance.delay.ms=0` likewise).
const BROKER_FLAGS: &[&str] = &["--group-initial-rebalance-delay-ms", "0"];
/// How much of Maven's output a failure message repeats (the end, where the errors are).
const MAVEN_OUTPUT_TAIL_BYTES: usize = 12_000;
/// How much of the application's log (Spring and the Kafka clients) a failure repeats.
const APPLICATION_LOG_TAIL_BYTES: usize = 12_000;

/// One test at a time: both build the same Maven project (`target/classes`), and a broker
/// starting up must not slow the other test's suite down on a 2-core machine.
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
        .join("spring")
}

/// What one run of the suite against one broker left behind.
struct SuiteRun {
    finished: jvm::Finished,
    seconds: f64,
    totals: SurefireTotals,
    reports: PathBuf,
}

/// Runs `mvn test` on the suite against `bootstrap`, with its reports in `target/<run_name>/`,
/// and prints Surefire's totals.
fn run_suite(run_name: &str, broker_name: &str, bootstrap: &str) -> SuiteRun {
    let project = project_dir();
    let run_dir = project.join("target").join(run_name);
    // Reports of an earlier run must not pass for this one's.
    let _ = fs::remove_dir_all(&run_dir);
    fs::create_dir_all(&run_dir).expect("create the run's directory");

    let mut command = Command::new("mvn");
    command
        .args(["-B", "-q", "--no-transfer-progress", "-Dstyle.color=never"])
        .arg("-f")
        .arg(project.join("pom.xml"))
        .arg("test")
        .arg(format!("-DCORELOG_BOOTSTRAP={bootstrap}"))
        .arg(format!("-Dcorelog.runDirectory={}", run_dir.display()))
        .env_remove("CORELOG_BOOTSTRAP");
    let started = Instant::now();
    let finished = jvm::run_bounded(&mut command, None, MAVEN_TIMEOUT);
    let seconds = started.elapsed().as_secs_f64();

    let reports = run_dir.join("surefire-reports");
    let totals = surefire_totals(&reports);
    println!(
        "Spring Kafka suite against {broker_name} at {bootstrap}, {seconds:.0} s: {}",
        totals.render()
    );
    SuiteRun {
        finished,
        seconds,
        totals,
        reports,
    }
}

/// Fails unless Maven succeeded and Surefire ran tests, with none failing or skipped.
fn assert_suite_passed(run: &SuiteRun, broker_name: &str) {
    let failure_context = || {
        format!(
            "{}\nmaven output (end):\n{}\napplication log (end of {}):\n{}",
            run.totals.render(),
            jvm::tail(
                &format!("{}{}", run.finished.stdout, run.finished.stderr),
                MAVEN_OUTPUT_TAIL_BYTES
            ),
            run.reports.display(),
            application_log_tail(&run.reports)
        )
    };
    assert!(
        run.finished.status.is_some(),
        "mvn did not finish within {MAVEN_TIMEOUT:?} against {broker_name}\n{}",
        failure_context()
    );
    assert!(
        run.finished.success(),
        "the Spring Kafka suite failed against {broker_name} ({:.0} s)\n{}",
        run.seconds,
        failure_context()
    );
    assert!(
        run.totals.tests > 0 && run.totals.skipped == 0,
        "mvn succeeded against {broker_name}, but Surefire ran no test or skipped some\n{}",
        failure_context()
    );
}

/// The counts of every `TEST-*.xml` report in one Surefire reports directory.
#[derive(Default)]
struct SurefireTotals {
    tests: u32,
    failures: u32,
    errors: u32,
    skipped: u32,
}

impl SurefireTotals {
    fn render(&self) -> String {
        format!(
            "surefire totals: {} tests, {} failures, {} errors, {} skipped",
            self.tests, self.failures, self.errors, self.skipped
        )
    }
}

/// Adds up the `<testsuite tests=.. failures=.. errors=.. skipped=..>` attributes; Surefire's
/// format is regular enough that no XML library is needed.
fn surefire_totals(reports: &Path) -> SurefireTotals {
    let mut totals = SurefireTotals::default();
    for xml in report_files(reports, "TEST-", ".xml") {
        let Some(start) = xml.find("<testsuite ") else {
            continue;
        };
        let tag = &xml[start..start + xml[start..].find('>').unwrap_or(0)];
        let count = |name: &str| -> u32 {
            let marker = format!(" {name}=\"");
            tag.find(&marker)
                .and_then(|at| {
                    let value = &tag[at + marker.len()..];
                    value[..value.find('"')?].parse().ok()
                })
                .unwrap_or(0)
        };
        totals.tests += count("tests");
        totals.failures += count("failures");
        totals.errors += count("errors");
        totals.skipped += count("skipped");
    }
    totals
}

/// The end of each test class's redirected output (Spring's and the clients' log).
fn application_log_tail(reports: &Path) -> String {
    let logs = report_files(reports, "", "-output.txt");
    if logs.is_empty() {
        return "(no application log: the test JVM did not start)".into();
    }
    logs.iter()
        .map(|log| jvm::tail(log, APPLICATION_LOG_TAIL_BYTES / logs.len()))
        .collect::<Vec<_>>()
        .join("\n----\n")
}

/// The contents of the files in `dir` whose names start with `prefix` and end with `suffix`.
fn report_files(dir: &Path, prefix: &str, suffix: &str) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with(prefix) && name.ends_with(suffix)
        })
        .collect();
    paths.sort();
    paths
        .iter()
        .filter_map(|path| fs::read_to_string(path).ok())
        .collect()
}

#[test]
fn spring_kafka_suite_passes_against_corelog() {
    let _turn = take_turn();
    jvm::require_java_and_maven();
    let mut broker = Broker::start(2, BROKER_FLAGS);
    let run = run_suite("corelog", "corelog", &broker.bootstrap());
    broker.assert_alive();
    assert_suite_passed(&run, "corelog");
}

/// The rule: every expectation of the suite is proven on real Kafka first.
#[test]
fn spring_kafka_suite_passes_against_reference_kafka() {
    let _turn = take_turn();
    // Checked before the broker starts, whose script needs Java too.
    jvm::require_java_and_maven();
    let kafka = ReferenceKafka::start();
    let run = run_suite("kafka", "reference Kafka", kafka.bootstrap());
    assert_suite_passed(&run, "the reference Kafka");
}
