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
#[path = "common/maven.rs"]
mod maven;
#[path = "common/surefire.rs"]
mod surefire;

use std::fs;
use std::path::{Path, PathBuf};

use common::jvm;
use maven::{MavenSuite, SuiteRun};

const SUITE: MavenSuite = MavenSuite {
    title: "Spring Kafka suite",
    project: "spring",
    test_filter_variable: None,
};
/// How much of the application's log (Spring and the Kafka clients) a failure repeats.
const APPLICATION_LOG_TAIL_BYTES: usize = 12_000;

/// Fails unless Maven succeeded and Surefire ran tests, with none failing or skipped.
fn assert_suite_passed(run: &SuiteRun) {
    run.assert_passed(|| {
        let reports = run.run_dir.join("surefire-reports");
        format!(
            "application log (end of {}):\n{}",
            reports.display(),
            application_log_tail(&reports)
        )
    });
    run.assert_none_skipped("every test must run");
}

/// The end of each test class's redirected output (Spring's and the clients' log).
fn application_log_tail(reports: &Path) -> String {
    let logs = output_files(reports);
    if logs.is_empty() {
        return "(no application log: the test JVM did not start)".into();
    }
    logs.iter()
        .map(|log| jvm::tail(log, APPLICATION_LOG_TAIL_BYTES / logs.len()))
        .collect::<Vec<_>>()
        .join("\n----\n")
}

/// The contents of Surefire's `<class>-output.txt` files in `reports`, by name.
fn output_files(reports: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(reports) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.to_string_lossy().ends_with("-output.txt"))
        .collect();
    paths.sort();
    paths
        .iter()
        .filter_map(|path| fs::read_to_string(path).ok())
        .collect()
}

#[test]
fn spring_kafka_suite_passes_against_corelog() {
    SUITE.against_corelog(&[], assert_suite_passed);
}

/// The rule: every expectation of the suite is proven on real Kafka first.
#[test]
fn spring_kafka_suite_passes_against_reference_kafka() {
    SUITE.against_reference_kafka(&[], assert_suite_passed);
}
