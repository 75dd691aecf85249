//! Shared harness for the integration tests: starts a real `corelog serve` process on an
//! ephemeral loopback port, and drives it with real Kafka clients (librdkafka via rdkafka).
//!
//! Every wait here is bounded by a deadline, so a broken broker fails a test instead of
//! hanging the suite. When a test panics while a [`Broker`] is alive, the broker's last log
//! lines are printed to make the failure readable without re-running.
//!
//! This file owns the broker process; `clients` holds the rdkafka helpers (admin, produce,
//! consume, ListOffsets) and `wire` the hand-rolled framing for raw-socket tests.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub mod clients;
pub mod wire;

#[allow(unused_imports)] // Not every test binary uses the client helpers.
pub use clients::*;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long the broker may take from spawn to its "listening on" line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a graceful shutdown (flush and exit) may take.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// How many broker log lines are kept for printing when a test fails.
const LOG_LINES_KEPT: usize = 200;

/// One running (or stopped) `corelog serve` process and its data directory.
pub struct Broker {
    child: Option<Child>,
    port: u16,
    cores: usize,
    extra_args: Vec<String>,
    env: Vec<(String, String)>,
    data_dir: PathBuf,
    /// Keeps the temporary data directory alive for the broker's whole life, restarts included.
    _temp_dir: Option<tempfile::TempDir>,
    log: Arc<Mutex<VecDeque<String>>>,
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
        let mut broker = Broker {
            child: None,
            port: 0,
            cores,
            extra_args: extra_args.iter().map(|arg| arg.to_string()).collect(),
            env: env
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
            data_dir,
            _temp_dir: temp_dir,
            log: Arc::new(Mutex::new(VecDeque::new())),
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

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Starts the broker again on the same data directory (the port may change). A broker
    /// that is still running is stopped gracefully first.
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.stop_graceful();
        }
        self.log_marker("---- restart ----");
        self.spawn();
    }

    /// Like [`Broker::restart`], but binds the port the broker had before, so clients that
    /// only know that address (a producer's bootstrap list) reconnect by themselves. A broker
    /// that is still running is stopped gracefully first; after [`Broker::kill9`] this is a
    /// crash restart.
    pub fn restart_on_same_port(&mut self) {
        if self.child.is_some() {
            self.stop_graceful();
        }
        self.log_marker("---- restart on the same port ----");
        self.spawn_on(self.port);
    }

    /// SIGTERM, then waits (bounded) for a clean exit with status 0.
    pub fn stop_graceful(&mut self) -> ExitStatus {
        self.stop_with_signal(libc::SIGTERM)
    }

    /// Sends `signal` (SIGTERM or SIGINT), then waits (bounded) for exit status 0.
    pub fn stop_with_signal(&mut self, signal: libc::c_int) -> ExitStatus {
        let mut child = self.child.take().expect("broker is not running");
        let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
        // SAFETY: plain kill(2) on the pid of a child we spawned and have not reaped yet.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({signal}) failed");
        let status = match wait_with_timeout(&mut child, SHUTDOWN_TIMEOUT) {
            Some(status) => status,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "broker did not exit within {SHUTDOWN_TIMEOUT:?} after signal {signal}\n{}",
                    self.recent_log()
                );
            }
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
        let mut child = self.child.take().expect("broker is not running");
        child.kill().expect("SIGKILL the broker");
        child.wait().expect("reap the broker");
    }

    /// Panics (with the broker's log) if the broker process has exited.
    pub fn assert_alive(&mut self) {
        let child = self.child.as_mut().expect("broker is not running");
        if let Some(status) = child.try_wait().expect("try_wait on broker") {
            panic!(
                "broker exited unexpectedly with {status}\n{}",
                self.recent_log()
            );
        }
    }

    /// The last lines the broker wrote, for failure messages.
    pub fn recent_log(&self) -> String {
        let log = self.log.lock().unwrap_or_else(|poison| poison.into_inner());
        let mut text = format!("---- last {} broker log lines ----\n", log.len());
        for line in log.iter() {
            text.push_str(line);
            text.push('\n');
        }
        text.push_str("---- end of broker log ----");
        text
    }

    /// Whether any kept log line contains `needle` (used to report protocol observations).
    pub fn log_contains(&self, needle: &str) -> bool {
        let log = self.log.lock().unwrap_or_else(|poison| poison.into_inner());
        log.iter().any(|line| line.contains(needle))
    }

    fn log_marker(&self, marker: &str) {
        push_log_line(&self.log, marker.to_string());
    }

    fn spawn(&mut self) {
        self.spawn_on(0);
    }

    /// Starts the broker on `127.0.0.1:<port>` (0: a free port the broker picks).
    fn spawn_on(&mut self, port: u16) {
        let binary = env!("CARGO_BIN_EXE_corelog");
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--cores")
            .arg(self.cores.to_string())
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // The surrounding environment must not change what the test asked for.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("CORELOG_") {
                command.env_remove(name);
            }
        }
        command
            .env(
                "RUST_LOG",
                std::env::var("CORELOG_TEST_RUST_LOG").unwrap_or("info".into()),
            )
            .env("NO_COLOR", "1")
            .env("RUST_BACKTRACE", "1")
            .envs(self.env.iter().map(|(name, value)| (name, value)));
        let mut child = command
            .spawn()
            .unwrap_or_else(|error| panic!("spawn {binary}: {error}"));

        let (ready_sender, ready_receiver) = mpsc::channel::<u16>();
        let stderr = child.stderr.take().expect("piped stderr");
        let stdout = child.stdout.take().expect("piped stdout");
        drain_lines(stderr, Arc::clone(&self.log), ready_sender.clone());
        drain_lines(stdout, Arc::clone(&self.log), ready_sender);
        self.child = Some(child);

        match ready_receiver.recv_timeout(READY_TIMEOUT) {
            Ok(port) => self.port = port,
            Err(_) => {
                let status = self
                    .child
                    .as_mut()
                    .and_then(|child| child.try_wait().ok().flatten());
                panic!(
                    "broker did not log 'listening on 127.0.0.1:<port>' within {READY_TIMEOUT:?} \
                     (exit status: {status:?}); args: {:?}\n{}",
                    self.extra_args,
                    self.recent_log()
                );
            }
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("{}", self.recent_log());
        }
        if let Some(mut child) = self.child.take() {
            // Child::kill sends SIGKILL to exactly the process this harness started.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn push_log_line(log: &Mutex<VecDeque<String>>, line: String) {
    let mut log = log.lock().unwrap_or_else(|poison| poison.into_inner());
    if log.len() == LOG_LINES_KEPT {
        log.pop_front();
    }
    log.push_back(line);
}

/// Reads lines until EOF (the broker exited) so the pipe never fills; reports the port of
/// the first `listening on 127.0.0.1:<port>` line.
fn drain_lines<R: Read + Send + 'static>(
    stream: R,
    log: Arc<Mutex<VecDeque<String>>>,
    ready: mpsc::Sender<u16>,
) {
    thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut buffer = Vec::new();
        let mut reported = false;
        loop {
            buffer.clear();
            match reader.read_until(b'\n', &mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = strip_ansi(&String::from_utf8_lossy(&buffer));
            let line = line.trim_end().to_string();
            if !reported {
                if let Some(port) = parse_listening_port(&line) {
                    reported = true;
                    let _ = ready.send(port);
                }
            }
            push_log_line(&log, line);
        }
    });
}

fn parse_listening_port(line: &str) -> Option<u16> {
    const MARKER: &str = "listening on 127.0.0.1:";
    let start = line.find(MARKER)? + MARKER.len();
    let digits: String = line[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok().filter(|port| *port != 0)
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
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

/// A unique topic name per call, so tests sharing a broker never collide.
pub fn unique_topic(prefix: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}
