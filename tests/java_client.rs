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
//!
//! Two more tests run one method each of `ManyPartitionFetchSessionTest` (excluded from the
//! suite's run) against a corelog started with its own settings, which the Java test may
//! restart through `MavenSuite::against_restartable_corelog`: incremental fetch sessions
//! (KIP-227) of a consumer of 2,000 partitions across a broker restart, and two consumers
//! sharing a cache of one session slot (`--max-incremental-fetch-session-cache-slots 1`).
//! librdkafka and kafka-python fetch without sessions; their many-partition consumers are in
//! `tests/many_partitions.rs` and `tests/kafka_python.rs`.

mod common;
#[path = "common/maven.rs"]
mod maven;
#[path = "common/surefire.rs"]
mod surefire;

use std::fs;

use maven::{MavenSuite, SuiteRun};

const SUITE: MavenSuite = MavenSuite {
    title: "Java client suite",
    project: "clients",
    test_filter_variable: Some("CORELOG_JAVA_TEST"),
};
/// The fetch session tests: one method per run, chosen by the test, so no filter variable.
const SESSION_SUITE: MavenSuite = MavenSuite {
    title: "Java fetch session test",
    project: "clients",
    test_filter_variable: None,
};
/// `ManyPartitionFetchSessionTest.EVICTION_AGE`: a session younger than this keeps its slot.
const ONE_SLOT_EVICTION_AGE_MS: &str = "1000";

/// Runs the `@Disabled` classes too (the test JVM reads JUnit configuration parameters from
/// its system properties): for the reference Kafka, which implements what corelog lacks yet.
const RUN_DISABLED_TESTS: &str =
    "-DargLine=-Djunit.jupiter.conditions.deactivate=org.junit.*DisabledCondition";

/// Prints (and returns) the negotiated-version table ApiVersionsTest wrote.
fn print_versions(run: &SuiteRun) -> String {
    let versions = fs::read_to_string(run.run_dir.join("api-versions.txt"))
        .unwrap_or_else(|_| "(no api-versions.txt: ApiVersionsTest did not run)\n".into());
    println!(
        "negotiated API versions (kafka-clients vs {} at {}):\n{versions}",
        run.target.describe(),
        run.bootstrap
    );
    versions
}

fn client_log(run: &SuiteRun) -> String {
    format!(
        "client log: {}",
        run.run_dir.join("kafka-clients.log").display()
    )
}

#[test]
fn java_client_suite_passes_against_corelog() {
    SUITE.against_corelog(&[], |run| {
        print_versions(run);
        run.assert_passed(|| client_log(run));
    });
}

/// The rule: every expectation of the suite is proven on real Kafka first.
#[test]
fn java_client_suite_passes_against_reference_kafka() {
    SUITE.against_reference_kafka(&[RUN_DISABLED_TESTS], |run| {
        let versions = print_versions(run);
        run.assert_passed(|| client_log(run));
        run.assert_none_skipped("against the reference Kafka every test runs, @Disabled ones too");
        assert!(
            versions.contains("broker:"),
            "no version table from the reference Kafka run"
        );
    });
}

/// A Java consumer of 2,000 partitions (two topics, one group member) reads over an
/// incremental fetch session, keeps polling while the broker is stopped by its PID and started
/// again on the same port and data directory, and then reads everything produced after the
/// restart: every record once and in order per partition (a redelivery only above the group's
/// commit), and a new session after the restart.
#[test]
fn java_consumer_fetch_sessions_over_2000_partitions_survive_a_broker_restart() {
    SESSION_SUITE.against_restartable_corelog(
        2,
        &[],
        "ManyPartitionFetchSessionTest#aConsumerOf2000Partitions*",
        "corelog-sessions-2000",
        |run, broker| {
            run.assert_passed(|| format!("{}\n{}", client_log(run), broker.recent_log()));
            assert!(
                broker.log_contains("restart on the same port"),
                "the Java test never asked for the restart"
            );
        },
    );
}

/// With one session slot on a one-shard broker, a second consumer's larger session evicts the
/// first one's once it is older than the eviction age (Kafka's rules); the first hears
/// FETCH_SESSION_ID_NOT_FOUND and carries on with full fetches; both receive every record.
#[test]
fn java_consumer_fetch_sessions_one_slot_evicts_and_both_consumers_receive_everything() {
    SESSION_SUITE.against_restartable_corelog(
        1,
        &[
            "--max-incremental-fetch-session-cache-slots",
            "1",
            "--min-incremental-fetch-session-eviction-ms",
            ONE_SLOT_EVICTION_AGE_MS,
        ],
        "ManyPartitionFetchSessionTest#aSecondConsumersLargerSession*",
        "corelog-sessions-one-slot",
        |run, broker| {
            run.assert_passed(|| format!("{}\n{}", client_log(run), broker.recent_log()));
        },
    );
}
