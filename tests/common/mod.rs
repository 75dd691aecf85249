//! Shared harness for the integration tests: starts a real `corelog serve` process on an
//! ephemeral loopback port, and drives it with real Kafka clients (librdkafka via rdkafka).
//!
//! Every wait here is bounded by a deadline, so a broken broker fails a test instead of
//! hanging the suite. When a test panics while a [`Broker`] is alive, the broker's last log
//! lines are printed to make the failure readable without re-running.
//!
//! This file owns the single broker; `cluster` starts several nodes that form a metadata
//! quorum, and `cluster_view` reads what its nodes report (Metadata, DescribeCluster); both
//! harnesses run their processes through `process` (spawn, log capture, ready line,
//! signals). `clients` holds the rdkafka helpers (admin, produce, consume, ListOffsets),
//! `wire` the hand-rolled framing for raw-socket tests, and `netns` the network namespaces
//! a cluster's nodes can run in so a test can cut them off from each other. `jvm` runs the
//! JVM side: Maven, the reference Apache Kafka broker and Kafka's command-line tools.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub mod clients;
pub mod cluster;
pub mod cluster_view;
pub mod jvm;
pub mod netns;
pub mod process;
pub mod wire;

#[allow(unused_imports)] // Not every test binary uses the client helpers.
pub use clients::*;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::thread;
use std::time::{Duration, Instant};

use process::{LogTail, ServeProcess};

/// How long the broker may take from spawn to its "listening on" line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a graceful shutdown (flush and exit) may take.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// How many broker log lines are kept for printing when a test fails.
const LOG_LINES_KEPT: usize = 200;

/// One running (or stopped) `corelog serve` process and its data directory.
pub struct Broker {
    process: Option<ServeProcess>,
    port: u16,
    cores: usize,
    extra_args: Vec<String>,
    env: Vec<(String, String)>,
    /// A command the broker runs under (`prlimit --nofile=N --`), empty for none.
    launcher: Vec<OsString>,
    data_dir: PathBuf,
    /// How long a start may take to listen and a graceful stop to exit.
    ready_timeout: Duration,
    shutdown_timeout: Duration,
    /// Keeps the temporary data directory alive for the broker's whole life, restarts included.
    _temp_dir: Option<tempfile::TempDir>,
    log: LogTail,
}

impl Broker {
    /// Starts a broker with `--cores cores` on a fresh temporary data directory.
    pub fn start(cores: usize, extra_args: &[&str]) -> Broker {
        Broker::start_with_env(cores, extra_args, &[])
    }

    /// Like [`Broker::start`], with extra `CORELOG_*` (or other) environment variables.
    pub fn start_with_env(cores: usize, extra_args: &[&str], env: &[(&str, &str)]) -> Broker {
        let temp_dir = tempfile::Builder::new()
            .prefix("corelog-test-")
            .tempdir()
            .expect("create temporary data dir");
        let data_dir = temp_dir.path().to_path_buf();
        Broker::launch(data_dir, Some(temp_dir), cores, extra_args, env)
    }

    /// Like [`Broker::start`], run under `launcher`, a command that execs the rest of its
    /// command line (`prlimit --nofile=256:256 --`), on restarts too.
    pub fn start_under(launcher: &[&str], cores: usize, extra_args: &[&str]) -> Broker {
        let temp_dir = tempfile::Builder::new()
            .prefix("corelog-test-")
            .tempdir()
            .expect("create temporary data dir");
        let data_dir = temp_dir.path().to_path_buf();
        Broker::launch_under(launcher, data_dir, Some(temp_dir), cores, extra_args, &[])
    }

    /// Starts a broker on a data directory the caller owns.
    pub fn start_in(data_dir: &Path, cores: usize, extra_args: &[&str]) -> Broker {
        Broker::launch(data_dir.to_path_buf(), None, cores, extra_args, &[])
    }

    fn launch(
        data_dir: PathBuf,
        temp_dir: Option<tempfile::TempDir>,
        cores: usize,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Broker {
        Broker::launch_under(&[], data_dir, temp_dir, cores, extra_args, env)
    }

    fn launch_under(
        launcher: &[&str],
        data_dir: PathBuf,
        temp_dir: Option<tempfile::TempDir>,
        cores: usize,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Broker {
        let mut broker = Broker {
            process: None,
            port: 0,
            cores,
            extra_args: extra_args.iter().map(|arg| arg.to_string()).collect(),
            env: env
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
            launcher: launcher.iter().map(OsString::from).collect(),
            data_dir,
            ready_timeout: READY_TIMEOUT,
            shutdown_timeout: SHUTDOWN_TIMEOUT,
            _temp_dir: temp_dir,
            log: LogTail::new(LOG_LINES_KEPT),
        };
        broker.spawn();
        broker
    }

    /// `127.0.0.1:<port>` of the running broker.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The running broker's process id.
    pub fn pid(&self) -> u32 {
        self.process.as_ref().expect("broker is running").pid()
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Starts the broker again on the same data directory (the port may change). A broker
    /// that is still running is stopped gracefully first.
    pub fn restart(&mut self) {
        if self.process.is_some() {
            self.stop_graceful();
        }
        self.log.push("---- restart ----".into());
        self.spawn();
    }

    /// Like [`Broker::restart`], but binds the port the broker had before, so clients that
    /// only know that address (a producer's bootstrap list) reconnect by themselves. A broker
    /// that is still running is stopped gracefully first; after [`Broker::kill9`] this is a
    /// crash restart.
    pub fn restart_on_same_port(&mut self) {
        if self.process.is_some() {
            self.stop_graceful();
        }
        self.log.push("---- restart on the same port ----".into());
        self.spawn_on(self.port);
    }

    /// Allows later starts and graceful stops more time than [`READY_TIMEOUT`] and
    /// [`SHUTDOWN_TIMEOUT`] (a node of very many partitions).
    pub fn set_timeouts(&mut self, ready: Duration, shutdown: Duration) {
        self.ready_timeout = ready;
        self.shutdown_timeout = shutdown;
    }

    /// SIGTERM, then waits (bounded) for a clean exit with status 0.
    pub fn stop_graceful(&mut self) -> ExitStatus {
        self.stop_with_signal(libc::SIGTERM)
    }

    /// Sends `signal` (SIGTERM or SIGINT), then waits (bounded) for exit status 0.
    pub fn stop_with_signal(&mut self, signal: libc::c_int) -> ExitStatus {
        let process = self.process.take().expect("broker is not running");
        let timeout = self.shutdown_timeout;
        let Some(status) = process.stop_with_signal(signal, timeout) else {
            panic!(
                "broker did not exit within {timeout:?} after signal {signal}\n{}",
                self.recent_log()
            );
        };
        assert!(
            status.success(),
            "broker exited with {status} after signal {signal}, expected success\n{}",
            self.recent_log()
        );
        status
    }

    /// SIGKILL: a crash, nothing gets flushed by the broker.
    pub fn kill9(&mut self) {
        self.process.take().expect("broker is not running").kill9();
    }

    /// Panics (with the broker's log) if the broker process has exited.
    pub fn assert_alive(&mut self) {
        let process = self.process.as_mut().expect("broker is not running");
        if let Some(status) = process.try_wait() {
            panic!(
                "broker exited unexpectedly with {status}\n{}",
                self.recent_log()
            );
        }
    }

    /// The last lines the broker wrote, for failure messages.
    pub fn recent_log(&self) -> String {
        self.log.render("broker", "")
    }

    /// Whether any kept log line contains `needle` (used to report protocol observations).
    pub fn log_contains(&self, needle: &str) -> bool {
        self.log.contains(needle)
    }

    fn spawn(&mut self) {
        self.spawn_on(0);
    }

    /// Starts the broker on `127.0.0.1:<port>` (0: a free port the broker picks).
    fn spawn_on(&mut self, port: u16) {
        let mut args: Vec<OsString> = vec![
            "--listen".into(),
            format!("127.0.0.1:{port}").into(),
            "--data-dir".into(),
            self.data_dir.clone().into(),
            "--cores".into(),
            self.cores.to_string().into(),
        ];
        args.extend(self.extra_args.iter().map(OsString::from));
        let process = self.process.insert(ServeProcess::spawn_through(
            &self.launcher,
            &args,
            &self.env,
            None,
            &self.log,
        ));
        let timeout = self.ready_timeout;
        match process.wait_listening(None, timeout) {
            Ok(port) => self.port = port,
            Err(status) => panic!(
                "broker did not log 'listening on 127.0.0.1:<port>' within {timeout:?} \
                 (exit status: {status:?}); args: {:?}\n{}",
                self.extra_args,
                self.recent_log()
            ),
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("{}", self.recent_log());
        }
        // Dropping the process sends SIGKILL to exactly the process this harness started
        // and reaps it.
        self.process.take();
    }
}

/// Runs `attempt` until it returns `Some`, or panics with `what` after `timeout`.
pub fn poll_until<T>(timeout: Duration, what: &str, mut attempt: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = attempt() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?}: {what}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `condition` holds, or panics with `what` after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    poll_until(timeout, what, || condition().then_some(()));
}

/// A unique topic name per call, so tests sharing a broker never collide.
pub fn unique_topic(prefix: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}
