//! The one driver of the Maven suites (`tests/java_client.rs`, `tests/spring_kafka.rs`,
//! `tests/kafka_streams.rs`): each is a Maven project under `tests/java/` whose JUnit tests run
//! through Surefire against whichever broker `-DCORELOG_BOOTSTRAP` names. A test takes its
//! binary's turn, starts corelog or the reference Apache Kafka, runs `mvn test` on the project
//! once (one test JVM), prints one line per JUnit test, and checks the run while the broker is
//! still up, so that a failing suite prints the broker's log as well.
//!
//! The tests of one binary take turns (one lock per binary): both build the same Maven project
//! (`target/classes`), and a broker starting up must not slow the other run down on a 2-core
//! machine. Each run writes its logs and Surefire reports to its own `<project>/target/<broker>/`.
//! The drivers include this file with `#[path]`, next to `surefire.rs`, so that the other test
//! binaries neither compile it nor run the Surefire parser's unit test.

// Each driver uses a different part of it (only the Java client suite reads `bootstrap`).
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::common::jvm::{self, Finished, ReferenceKafka};
use crate::common::Broker;
use crate::surefire::{self, Outcome, TestCase};

/// The whole Maven run: a first run on a fresh machine downloads the suite's libraries and the
/// Maven plugins (tens of MB); a suite itself takes half a minute to two minutes.
pub const MAVEN_TIMEOUT: Duration = Duration::from_secs(600);
/// No wait for latecomers before a group's first rebalance, as in the other group suites
/// (`kafka.sh` sets Kafka's `group.initial.rebalance.delay.ms=0` likewise).
const BROKER_FLAGS: &[&str] = &["--group-initial-rebalance-delay-ms", "0"];
/// How much of Maven's output a failure message repeats (the end, where the errors are).
const MAVEN_OUTPUT_TAIL_BYTES: usize = 20_000;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn take_turn() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The broker one run of a suite is against.
#[derive(Clone, Copy)]
pub enum Target {
    Corelog,
    ReferenceKafka,
}

impl Target {
    /// The run's directory under the project's `target/`.
    pub fn name(self) -> &'static str {
        match self {
            Target::Corelog => "corelog",
            Target::ReferenceKafka => "kafka",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Target::Corelog => "corelog",
            Target::ReferenceKafka => "the reference Kafka",
        }
    }
}

/// One Maven project of JUnit tests under `tests/java/`.
pub struct MavenSuite {
    /// What the output calls it ("Java client suite").
    pub title: &'static str,
    /// Its folder under `tests/java/`.
    pub project: &'static str,
    /// The environment variable whose value (Surefire's `-Dtest` syntax) runs part of it.
    pub test_filter_variable: Option<&'static str>,
}

impl MavenSuite {
    /// Runs the suite with `maven_args` against one `corelog serve --cores 2` (so requests
    /// cross shards) on an ephemeral port with its own data directory, then `check`s the run
    /// once the broker is known to have survived it.
    pub fn against_corelog(&self, maven_args: &[&str], check: impl FnOnce(&SuiteRun)) {
        let _turn = take_turn();
        jvm::require_java_and_maven();
        let mut broker = Broker::start(2, BROKER_FLAGS);
        let run = self.run(Target::Corelog, "corelog", &broker.bootstrap(), maven_args);
        broker.assert_alive();
        check(&run);
    }

    /// Runs the suite's tests `test_filter` (Surefire's `-Dtest`) against one corelog started
    /// with `cores` and `broker_flags` (after the suite's usual ones), which the tests may
    /// restart while they run, then `check`s the run (in `target/<run_name>/`) with the broker.
    ///
    /// The tests find a control directory in the system property `corelog.brokerControl`
    /// (the pom passes `-Dcorelog.brokerControl` on). A test that writes `restart-<n>` there
    /// gets the broker stopped by its PID (SIGTERM: a clean shutdown, checked) and started
    /// again on the same data directory and port, and then finds `restarted-<n>` there.
    pub fn against_restartable_corelog(
        &self,
        cores: usize,
        broker_flags: &[&str],
        test_filter: &str,
        run_name: &str,
        check: impl FnOnce(&SuiteRun, &mut Broker),
    ) {
        let _turn = take_turn();
        jvm::require_java_and_maven();
        let flags: Vec<&str> = BROKER_FLAGS.iter().chain(broker_flags).copied().collect();
        let mut broker = Broker::start(cores, &flags);
        let control = tempfile::Builder::new()
            .prefix("corelog-broker-control-")
            .tempdir()
            .expect("create the broker control directory");
        let args = [
            format!("-Dtest={test_filter}"),
            format!("-Dcorelog.brokerControl={}", control.path().display()),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let bootstrap = broker.bootstrap();
        let run = std::thread::scope(|scope| {
            let maven = scope.spawn(|| self.run(Target::Corelog, run_name, &bootstrap, &args));
            let mut restarts = 0;
            while !maven.is_finished() {
                if serve_restart(control.path(), restarts + 1, &mut broker) {
                    restarts += 1;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            maven.join().expect("the Maven run's thread panicked")
        });
        broker.assert_alive();
        check(&run, &mut broker);
    }

    /// Runs the suite with `maven_args` against Kafka 4.x started by
    /// `tests/reference_kafka/kafka.sh`, then `check`s the run.
    pub fn against_reference_kafka(&self, maven_args: &[&str], check: impl FnOnce(&SuiteRun)) {
        let _turn = take_turn();
        // Checked before the broker starts, whose script needs Java too.
        jvm::require_java_and_maven();
        let kafka = ReferenceKafka::start();
        let run = self.run(
            Target::ReferenceKafka,
            Target::ReferenceKafka.name(),
            kafka.bootstrap(),
            maven_args,
        );
        check(&run);
    }

    /// Runs `mvn test` on the project against `bootstrap`, with its files in
    /// `target/<run_name>/`, and prints one line per test.
    fn run(
        &self,
        target: Target,
        run_name: &str,
        bootstrap: &str,
        maven_args: &[&str],
    ) -> SuiteRun {
        let project = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests")
            .join("java")
            .join(self.project);
        let run_dir = project.join("target").join(run_name);
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
            .arg(format!("-Dcorelog.runDirectory={}", run_dir.display()))
            .args(maven_args)
            .env_remove("CORELOG_BOOTSTRAP");
        let filter = self
            .test_filter_variable
            .and_then(|variable| std::env::var(variable).ok());
        if let Some(filter) = filter.as_deref().map(str::trim) {
            if !filter.is_empty() {
                command.arg(format!("-Dtest={filter}"));
            }
        }
        let started = Instant::now();
        let finished = jvm::run_bounded(&mut command, None, MAVEN_TIMEOUT);
        let elapsed = started.elapsed();

        let cases = surefire::test_cases(&run_dir.join("surefire-reports"));
        println!(
            "{} against {} at {bootstrap}, {:.0} s:\n{}",
            self.title,
            target.describe(),
            elapsed.as_secs_f64(),
            surefire::render_summary(&cases, false)
        );
        SuiteRun {
            title: self.title,
            target,
            bootstrap: bootstrap.to_owned(),
            run_dir,
            finished,
            elapsed,
            cases,
        }
    }
}

/// Restarts `broker` on its port if a test asked for restart number `number` (wrote
/// `restart-<number>` into `control`), then says so in `restarted-<number>`; whether it did.
fn serve_restart(control: &Path, number: usize, broker: &mut Broker) -> bool {
    if !control.join(format!("restart-{number}")).exists() {
        return false;
    }
    let stopped_pid = broker.pid();
    let started = Instant::now();
    broker.restart_on_same_port();
    println!(
        "restart {number}: corelog (pid {stopped_pid}) stopped and started again as pid {} on \
         {} in {:.1} s",
        broker.pid(),
        broker.bootstrap(),
        started.elapsed().as_secs_f64()
    );
    let marker = control.join(format!("restarted-{number}"));
    fs::write(&marker, format!("{}\n", broker.pid())).expect("write the restarted marker");
    true
}

/// What one run of a suite against one broker left behind.
pub struct SuiteRun {
    title: &'static str,
    pub target: Target,
    pub bootstrap: String,
    /// `<project>/target/<target>/`: the suite's logs, `surefire-reports/` and the like.
    pub run_dir: PathBuf,
    /// Maven's; `status` is `None` when it was killed after [`MAVEN_TIMEOUT`].
    pub finished: Finished,
    pub elapsed: Duration,
    pub cases: Vec<TestCase>,
}

impl SuiteRun {
    /// Fails unless Maven finished in time and succeeded and Surefire reported tests; a
    /// failure message has the failing tests, `context()` (the suite's own logs) and the end
    /// of Maven's output.
    pub fn assert_passed(&self, context: impl Fn() -> String) {
        let broker = self.target.describe();
        let problems = surefire::render_summary(&self.cases, true);
        let output = format!("{}{}", self.finished.stdout, self.finished.stderr);
        let output = jvm::tail(&output, MAVEN_OUTPUT_TAIL_BYTES);
        let Some(status) = self.finished.status else {
            panic!(
                "mvn did not finish within {MAVEN_TIMEOUT:?} against {broker}\n{problems}\n{}\n\
                 maven output (end):\n{output}",
                context()
            );
        };
        assert!(
            status.success(),
            "the {} failed against {broker} (mvn {status}, {:.0} s)\n{problems}\n{}\nmaven output \
             (end):\n{output}",
            self.title,
            self.elapsed.as_secs_f64(),
            context()
        );
        assert!(
            !self.cases.is_empty(),
            "mvn succeeded against {broker} but Surefire wrote no report: were the tests compiled \
             and run?\n{}\nmaven output (end):\n{output}",
            context()
        );
    }

    /// Fails if Surefire skipped any test; `why` says why none may be.
    pub fn assert_none_skipped(&self, why: &str) {
        let skipped: Vec<&str> = self
            .cases
            .iter()
            .filter(|case| matches!(case.outcome, Outcome::Skipped))
            .map(|case| case.name.as_str())
            .collect();
        assert!(skipped.is_empty(), "{why}; skipped: {skipped:?}");
    }
}
