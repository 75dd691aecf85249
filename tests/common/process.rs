//! One `corelog serve` child process, shared by the single-broker harness ([`super::Broker`])
//! and the multi-node one ([`super::cluster::Cluster`]): spawning it (optionally pinned to
//! one CPU with `taskset`), draining its stdout and stderr into a bounded [`LogTail`] so the
//! pipes never fill, noticing its "listening on <address>:<port>" ready line, and stopping
//! it by signal with a bounded wait.
//!
//! Spawning and waiting for readiness are separate steps so a cluster can start every node
//! before it waits on any: a node's Kafka listener may only open once a quorum of its peers
//! is up. A [`ServeProcess`] that is dropped gets SIGKILL and is reaped, so a failing test
//! never leaves a broker behind; only the process this harness spawned is signalled (by its
//! pid, never by name).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long an exiting process may take to be reaped once both its pipes closed.
const EXIT_AFTER_EOF_TIMEOUT: Duration = Duration::from_secs(5);

/// The last lines one process (and its restarts) wrote, ANSI colours stripped.
#[derive(Clone)]
pub struct LogTail {
    lines: Arc<Mutex<VecDeque<String>>>,
    lines_kept: usize,
}

impl LogTail {
    /// Keeps at most `lines_kept` lines, dropping the oldest first.
    pub fn new(lines_kept: usize) -> LogTail {
        assert!(lines_kept > 0, "a log tail keeps at least one line");
        LogTail {
            lines: Arc::new(Mutex::new(VecDeque::with_capacity(lines_kept))),
            lines_kept,
        }
    }

    pub fn push(&self, line: String) {
        let mut lines = self.lock();
        if lines.len() == self.lines_kept {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// The kept lines between a header and a footer naming `whose` ("broker", "node 2"),
    /// each line prefixed with `line_prefix`.
    pub fn render(&self, whose: &str, line_prefix: &str) -> String {
        let lines = self.lock();
        let mut text = format!("---- last {} {whose} log lines ----\n", lines.len());
        for line in lines.iter() {
            text.push_str(line_prefix);
            text.push_str(line);
            text.push('\n');
        }
        text.push_str(&format!("---- end of {whose} log ----"));
        text
    }

    /// Whether any kept line contains `needle`.
    pub fn contains(&self, needle: &str) -> bool {
        self.lock().iter().any(|line| line.contains(needle))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<String>> {
        self.lines
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// A spawned `corelog serve` whose output is being drained into a [`LogTail`].
pub struct ServeProcess {
    child: Child,
    /// Every port named by a "listening on <address>:<port>" line, in order.
    listening: mpsc::Receiver<u16>,
}

impl ServeProcess {
    /// Spawns `corelog serve <args>` with `env` on top of a cleaned environment (no
    /// inherited `CORELOG_*` variable), under `taskset -c <cpu>` when `cpu` is given.
    /// Returns at once; see [`ServeProcess::wait_listening`].
    pub fn spawn(
        args: &[OsString],
        env: &[(String, String)],
        cpu: Option<usize>,
        log: &LogTail,
    ) -> ServeProcess {
        ServeProcess::spawn_through(&[], args, env, cpu, log)
    }

    /// [`ServeProcess::spawn`] through `launcher`, a command that runs the rest of its
    /// command line in place (`ip netns exec <namespace>`): `taskset -c <cpu> <launcher...>
    /// corelog serve <args>`. Every link of that chain execs the next one without forking,
    /// so the pid we hold, and signal, is the broker's.
    pub fn spawn_through(
        launcher: &[OsString],
        args: &[OsString],
        env: &[(String, String)],
        cpu: Option<usize>,
        log: &LogTail,
    ) -> ServeProcess {
        let binary = env!("CARGO_BIN_EXE_corelog");
        let mut chain: Vec<OsString> = Vec::with_capacity(launcher.len() + 4);
        if let Some(cpu) = cpu {
            chain.extend(["taskset".into(), "-c".into(), cpu.to_string().into()]);
        }
        chain.extend(launcher.iter().cloned());
        chain.push(binary.into());
        let mut command = Command::new(&chain[0]);
        command.args(&chain[1..]);
        command
            .arg("serve")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // The surrounding environment must not change what the test asked for.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("CORELOG_") {
                command.env_remove(name);
            }
        }
        // Without CORELOG_TEST_RUST_LOG the node logs as a user's does (corelog's default
        // filter), so openraft's per-heartbeat retries to a killed voter do not crowd the
        // kept tail.
        match std::env::var("CORELOG_TEST_RUST_LOG") {
            Ok(filter) => command.env("RUST_LOG", filter),
            Err(_) => command.env_remove("RUST_LOG"),
        };
        command
            .env("NO_COLOR", "1")
            .env("RUST_BACKTRACE", "1")
            .envs(env.iter().map(|(name, value)| (name, value)));
        let mut child = command
            .spawn()
            .unwrap_or_else(|error| panic!("spawn {chain:?} (cpu {cpu:?}): {error}"));

        let (sender, listening) = mpsc::channel::<u16>();
        let stderr = child.stderr.take().expect("piped stderr");
        let stdout = child.stdout.take().expect("piped stdout");
        drain_lines(stderr, log.clone(), sender.clone());
        drain_lines(stdout, log.clone(), sender);
        ServeProcess { child, listening }
    }

    /// Waits (bounded) for a "listening on <address>:<port>" line: the first one when
    /// `port` is `None`, else one naming that port (a node may log other listeners, such
    /// as its controller's, first). Returns the port, or `Err` with the exit status if the
    /// process exited before it was ready (`Err(None)`: still running, timed out).
    pub fn wait_listening(
        &mut self,
        port: Option<u16>,
        timeout: Duration,
    ) -> Result<u16, Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match self.listening.recv_timeout(remaining) {
                Ok(seen) if port.is_none_or(|port| port == seen) => return Ok(seen),
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => return Err(self.try_wait()),
                // Both pipes closed: the process is exiting.
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(wait_with_timeout(&mut self.child, EXIT_AFTER_EOF_TIMEOUT));
                }
            }
        }
    }

    /// The exit status if the process has exited (it is reaped then).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait on corelog serve")
    }

    /// Sends `signal` to this process, then waits up to `timeout` for it to exit. `None`:
    /// it did not, and has been killed with SIGKILL (on drop).
    pub fn stop_with_signal(
        mut self,
        signal: libc::c_int,
        timeout: Duration,
    ) -> Option<ExitStatus> {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits pid_t");
        if let Some(status) = self.try_wait() {
            // Already exited and reaped: the pid may belong to someone else now.
            return Some(status);
        }
        // SAFETY: plain kill(2) on the pid of a child we spawned and have not reaped yet.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
        wait_with_timeout(&mut self.child, timeout)
    }

    /// Sends `signal` to this running process and returns at once (SIGSTOP and SIGCONT
    /// pause and resume it: a node that hangs without losing its sockets or state).
    pub fn signal(&mut self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits pid_t");
        if let Some(status) = self.try_wait() {
            // Reaped: the pid may belong to someone else now.
            panic!("signal {signal} for pid {pid}, which already exited with {status}");
        }
        // SAFETY: plain kill(2) on the pid of a child we spawned and have not reaped yet.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
    }

    /// SIGKILL: a crash, nothing gets flushed. Returns once the process is reaped.
    pub fn kill9(mut self) {
        self.child.kill().expect("SIGKILL corelog serve");
        self.child.wait().expect("reap corelog serve");
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        // Child::kill sends SIGKILL to exactly the process this harness started, and does
        // nothing once it has been reaped (its pid may have been reused).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads lines until EOF (the process exited) so the pipe never fills; reports the port
/// of every `listening on <address>:<port>` line.
fn drain_lines<R: Read + Send + 'static>(stream: R, log: LogTail, listening: mpsc::Sender<u16>) {
    thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut buffer = Vec::new();
        loop {
            buffer.clear();
            match reader.read_until(b'\n', &mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = strip_ansi(&String::from_utf8_lossy(&buffer));
            let line = line.trim_end().to_string();
            let port = parse_listening_port(&line);
            // Logged first, so a test that fails right after the ready line still sees it.
            log.push(line);
            if let Some(port) = port {
                // Nobody listens any more once the process was found ready.
                let _ = listening.send(port);
            }
        }
    });
}

/// The port of a "listening on <IPv4 address>:<port>" line: 127.0.0.1 for most nodes, a
/// network namespace's own address for nodes started there (`super::netns`).
fn parse_listening_port(line: &str) -> Option<u16> {
    const MARKER: &str = "listening on ";
    let start = line.find(MARKER)? + MARKER.len();
    let (host, rest) = line[start..].split_once(':')?;
    host.parse::<std::net::Ipv4Addr>().ok()?;
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
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

/// Polls `child` until it exits or `timeout` passes (`None`).
pub fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
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
