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
#[path = "common/maven.rs"]
mod maven;
#[path = "common/surefire.rs"]
mod surefire;

use std::fs;

use common::jvm;
use maven::{MavenSuite, SuiteRun};

const SUITE: MavenSuite = MavenSuite {
    title: "Kafka Streams suite",
    project: "streams",
    test_filter_variable: Some("CORELOG_STREAMS_TEST"),
};
/// How much of the Streams and client log a failure message repeats.
const CLIENT_LOG_TAIL_BYTES: usize = 8_000;

/// Fails unless Maven succeeded and Surefire reported tests, none of them skipped.
fn assert_suite_passed(run: &SuiteRun) {
    run.assert_passed(|| {
        let path = run.run_dir.join("kafka-streams.log");
        let log = fs::read_to_string(&path).unwrap_or_default();
        format!(
            "---- end of {} ----\n{}",
            path.display(),
            jvm::tail(&log, CLIENT_LOG_TAIL_BYTES)
        )
    });
    run.assert_none_skipped("every test must run");
}

#[test]
fn kafka_streams_suite_passes_against_corelog() {
    SUITE.against_corelog(&["-Dcorelog.broker=corelog"], assert_suite_passed);
}

/// The rule: every expectation of the suite is proven on real Kafka first.
#[test]
fn kafka_streams_suite_passes_against_reference_kafka() {
    SUITE.against_reference_kafka(&["-Dcorelog.broker=kafka"], assert_suite_passed);
}
