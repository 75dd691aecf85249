//! Apache Kafka's own Java client (org.apache.kafka:kafka-clients) against corelog and
//! against a reference Apache Kafka: the Maven project in `tests/java/clients/` (JUnit 5
//! through Surefire) covers the idempotent producer with every codec, classic
//! cooperative-sticky consumer groups with sync and async commits, seek and offset lookups,
//! the Admin client, incremental fetch sessions, transactional consume-transform-produce with
//! read_committed readers, the KIP-848 consumer protocol, and the API version the client
//! negotiates for every API (see `tests/java/README.md`).
//!
//! Two tests, one per broker, each one Maven run (one test JVM) against one broker:
//! - `java_client_suite_passes_against_corelog` starts one `corelog serve --cores 2` (so
//!   requests cross shards) on an ephemeral port with its own data directory;
//! - `java_client_suite_passes_against_reference_kafka` starts Kafka 4.x with
//!   `tests/reference_kafka/kafka.sh` and runs the suite there too, with `@Disabled` classes
//!   enabled (JUnit's `DisabledCondition` deactivated): whatever corelog does not implement
//!   yet stays proven on real Kafka. Every expectation of the suite must hold there.
//!
//! They take turns (one lock), since both build the same Maven project; each run writes its
//! client log, version table and Surefire reports to its own `target/<broker>/`. Java 17+ and
//! Maven are required test dependencies (`./test.sh` installs them): without them the tests
//! fail, they never skip. The first run downloads the suite's artifacts into `~/.m2`; later
//! runs need no network.
//!
//! `CORELOG_JAVA_TEST=AdminClientTest` (any Surefire `-Dtest` pattern) runs part of the suite.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::jvm::{self, ReferenceKafka};
use common::Broker;

/// The whole Maven run: a first run on a fresh machine downloads kafka-clients, JUnit and
/// the Maven plugins (tens of MB); the suite itself takes about a minute.
const MAVEN_TIMEOUT: Duration = Duration::from_secs(600);
/// No wait for latecomers before a group's first rebalance, as in the other group suites
/// (`kafka.sh` sets Kafka's `group.initial.rebalance.delay.ms=0` likewise).
const BROKER_FLAGS: &[&str] = &["--group-initial-rebalance-delay-ms", "0"];
/// Selects part of the suite (Surefire's `-Dtest` syntax).
const TEST_FILTER_VARIABLE: &str = "CORELOG_JAVA_TEST";
/// How much of Maven's output a failure message repeats (the end, where the errors are).
const MAVEN_OUTPUT_TAIL_BYTES: usize = 20_000;
/// Runs the `@Disabled` classes too (the test JVM reads JUnit configuration parameters from
/// its system properties): for the reference Kafka, which implements what corelog lacks yet.
const RUN_DISABLED_TESTS: &str =
    "-DargLine=-Djunit.jupiter.conditions.deactivate=org.junit.*DisabledCondition";

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
        .join("clients")
}

/// What one run of the suite against one broker left behind.
struct SuiteRun {
    /// `None`: killed after [`MAVEN_TIMEOUT`].
    status: Option<ExitStatus>,
    output: String,
    elapsed: Duration,
    cases: Vec<TestCase>,
    /// The negotiated-version table ApiVersionsTest wrote.
    versions: String,
    run_dir: PathBuf,
}

/// Runs `mvn test` on the suite against `bootstrap`, with its client log, version table and
/// reports in `target/<run_name>/`, and prints the table and one line per test.
fn run_suite(run_name: &str, broker_name: &str, bootstrap: &str, maven_args: &[&str]) -> SuiteRun {
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
        .args(maven_args)
        .env_remove("CORELOG_BOOTSTRAP");
    if let Ok(filter) = std::env::var(TEST_FILTER_VARIABLE) {
        if !filter.trim().is_empty() {
            command.arg(format!("-Dtest={}", filter.trim()));
        }
    }
    let started = Instant::now();
    let finished = jvm::run_bounded(&mut command, None, MAVEN_TIMEOUT);
    let elapsed = started.elapsed();

    let versions = fs::read_to_string(run_dir.join("api-versions.txt"))
        .unwrap_or_else(|_| "(no api-versions.txt: ApiVersionsTest did not run)\n".into());
    let cases = surefire_results(&run_dir);
    println!(
        "negotiated API versions (kafka-clients vs {broker_name} at {bootstrap}):\n{versions}"
    );
    println!(
        "Java client suite against {broker_name} at {bootstrap}, {:.0} s:\n{}",
        elapsed.as_secs_f64(),
        render_summary(&cases, false)
    );
    SuiteRun {
        status: finished.status,
        output: format!("{}{}", finished.stdout, finished.stderr),
        elapsed,
        cases,
        versions,
        run_dir,
    }
}

/// Fails unless Maven succeeded and Surefire reported tests.
fn assert_suite_passed(run: &SuiteRun, broker_name: &str) {
    let problems = render_summary(&run.cases, true);
    let output = jvm::tail(&run.output, MAVEN_OUTPUT_TAIL_BYTES);
    let Some(status) = run.status else {
        panic!("mvn did not finish within {MAVEN_TIMEOUT:?} against {broker_name}\n{problems}\nmaven output (end):\n{output}");
    };
    assert!(
        status.success(),
        "the Java client suite failed against {broker_name} (mvn {status}, {:.0} s); client log: \
         {}\n{problems}\nmaven output (end):\n{output}",
        run.elapsed.as_secs_f64(),
        run.run_dir.join("kafka-clients.log").display()
    );
    assert!(
        !run.cases.is_empty(),
        "mvn succeeded but Surefire wrote no report: were the tests compiled and run?\n{output}"
    );
}

/// How one test case ended.
enum Outcome {
    Passed,
    Failed(String),
    Error(String),
    Skipped,
}

/// One test case of a Surefire XML report.
struct TestCase {
    name: String,
    seconds: String,
    outcome: Outcome,
}

/// Every test case in `<run_dir>/surefire-reports/TEST-*.xml`, sorted by name.
fn surefire_results(run_dir: &Path) -> Vec<TestCase> {
    let reports = run_dir.join("surefire-reports");
    let Ok(entries) = fs::read_dir(&reports) else {
        return Vec::new();
    };
    let mut cases = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().to_string();
        if !(file_name.starts_with("TEST-") && file_name.ends_with(".xml")) {
            continue;
        }
        let Ok(xml) = fs::read_to_string(entry.path()) else {
            continue;
        };
        cases.extend(parse_test_cases(&xml));
    }
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    cases
}

/// The `<testcase>` elements of one Surefire report, with their first failure, error or
/// skip. Surefire's format is regular enough that no XML library is needed.
fn parse_test_cases(xml: &str) -> Vec<TestCase> {
    let mut cases = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find("<testcase ") {
        let element = &rest[start..];
        let end = element[1..]
            .find("<testcase ")
            .map(|next| next + 1)
            .unwrap_or(element.len());
        let (case, tail) = element.split_at(end);
        rest = tail;
        let tag_end = case.find('>').unwrap_or(case.len());
        let tag = &case[..tag_end];
        let class = attribute(tag, "classname").unwrap_or_default();
        let method = attribute(tag, "name").unwrap_or_default();
        let outcome = if let Some(message) = child_message(case, "<failure") {
            Outcome::Failed(message)
        } else if let Some(message) = child_message(case, "<error") {
            Outcome::Error(message)
        } else if case.contains("<skipped") {
            Outcome::Skipped
        } else {
            Outcome::Passed
        };
        cases.push(TestCase {
            name: format!("{class}.{method}"),
            seconds: attribute(tag, "time").unwrap_or_default(),
            outcome,
        });
    }
    cases
}

/// The `message` of the first `marker` element (`<failure`, `<error`) inside `case`.
fn child_message(case: &str, marker: &str) -> Option<String> {
    let start = case.find(marker)?;
    let end = case[start..]
        .find('>')
        .map_or(case.len(), |end| start + end);
    Some(attribute(&case[start..end], "message").unwrap_or_default())
}

/// The unescaped value of `name="..."` in one XML start tag.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let marker = format!(" {name}=\"");
    let start = tag.find(&marker)? + marker.len();
    let length = tag[start..].find('"')?;
    Some(unescape_xml(&tag[start..start + length]))
}

fn unescape_xml(text: &str) -> String {
    text.replace("&#10;", " ")
        .replace("&#13;", "")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// One line per test case (and its failure message), then the totals; with `problems_only`,
/// the passing cases are left out.
fn render_summary(cases: &[TestCase], problems_only: bool) -> String {
    /// A failure message is cut here; the full one is in Maven's output and the report.
    const MESSAGE_CHARS: usize = 600;
    let mut text = String::new();
    let (mut passed, mut failed, mut errors, mut skipped) = (0, 0, 0, 0);
    for case in cases {
        let (verdict, message) = match &case.outcome {
            Outcome::Passed => {
                passed += 1;
                if problems_only {
                    continue;
                }
                ("PASS", None)
            }
            Outcome::Failed(message) => {
                failed += 1;
                ("FAIL", Some(message))
            }
            Outcome::Error(message) => {
                errors += 1;
                ("ERROR", Some(message))
            }
            Outcome::Skipped => {
                skipped += 1;
                ("SKIPPED", None)
            }
        };
        text.push_str(&format!(
            "  {verdict:<7} {} ({} s)\n",
            case.name, case.seconds
        ));
        if let Some(message) = message {
            let message: String = message.chars().take(MESSAGE_CHARS).collect();
            text.push_str(&format!("          {message}\n"));
        }
    }
    text.push_str(&format!(
        "surefire totals: {} tests; {passed} passed, {failed} failed, {errors} errors, \
         {skipped} skipped\n",
        cases.len()
    ));
    text
}

#[test]
fn java_client_suite_passes_against_corelog() {
    let _turn = take_turn();
    jvm::require_java_and_maven();
    let mut broker = Broker::start(2, BROKER_FLAGS);
    let bootstrap = broker.bootstrap();
    let run = run_suite("corelog", "corelog", &bootstrap, &[]);
    broker.assert_alive();
    assert_suite_passed(&run, "corelog");
}

/// The rule: every expectation of the suite is proven on real Kafka first.
#[test]
fn java_client_suite_passes_against_reference_kafka() {
    let _turn = take_turn();
    // Checked before the broker starts, whose script needs Java too.
    jvm::require_java_and_maven();
    let kafka = ReferenceKafka::start();
    let run = run_suite(
        "kafka",
        "reference Kafka",
        kafka.bootstrap(),
        &[RUN_DISABLED_TESTS],
    );
    assert_suite_passed(&run, "the reference Kafka");
    let skipped: Vec<&str> = run
        .cases
        .iter()
        .filter(|case| matches!(case.outcome, Outcome::Skipped))
        .map(|case| case.name.as_str())
        .collect();
    assert!(
        skipped.is_empty(),
        "against the reference Kafka every test runs, @Disabled ones too; skipped: {skipped:?}"
    );
    assert!(
        run.versions.contains("broker:"),
        "no version table from the reference Kafka run"
    );
}
