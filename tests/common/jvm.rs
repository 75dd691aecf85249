//! The JVM side of the test suites (issue 13): the Java and Maven that the Java client suite
//! and Kafka's own tools need, bounded runs of JVM processes, the reference Apache Kafka
//! broker of `tests/reference_kafka/kafka.sh`, and Kafka's command-line tools run through that
//! script's `tool` command (`java -cp` on the jars it fetched).
//!
//! Java (17+) and Maven are required test dependencies, like kafka-python for
//! `tests/kafka_python.rs`: `./test.sh` installs them, and without them these tests fail with
//! a message that says so; they never skip. Every process here runs in its own process
//! group, so a timeout kills exactly it and the JVMs it forked, and the reference broker is
//! stopped by the PID `kafka.sh start` recorded, never by name.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Starting the reference broker: `kafka.sh start` waits up to 60 s for it, and may first
/// resolve the jars with Maven on a machine that never ran `./test.sh`.
const REFERENCE_START_TIMEOUT: Duration = Duration::from_secs(300);
/// `kafka.sh stop` sends TERM and waits up to 30 s before KILL.
const REFERENCE_STOP_TIMEOUT: Duration = Duration::from_secs(45);
/// How much of the reference broker's log a failing test prints.
const REFERENCE_LOG_TAIL_BYTES: usize = 6_000;

/// `tests/reference_kafka/kafka.sh`.
pub fn kafka_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("reference_kafka")
        .join("kafka.sh")
}

/// Fails the test (never skips it) unless `java` and `mvn` run.
pub fn require_java_and_maven() {
    let checks: [(&str, &[&str]); 2] = [
        ("java", &["-version"]),
        ("mvn", &["--batch-mode", "--version"]),
    ];
    for (program, args) in checks {
        let problem = match Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
        {
            Ok(output) if output.status.success() => continue,
            Ok(output) => format!(
                "`{program} {}` failed ({}):\n{}{}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
            Err(error) => format!("cannot run `{program}`: {error}"),
        };
        panic!(
            "{problem}\nThe Java suites (tests/java_client.rs, tests/kafka_cli_tools.rs) need a \
             JDK 17+ and Maven: run `./test.sh`, which installs them, or on Debian \
             `apt-get install openjdk-17-jdk-headless maven`"
        );
    }
}

/// What one bounded run of a process left behind.
pub struct Finished {
    /// `None`: killed after its timeout.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn success(&self) -> bool {
        self.status.is_some_and(|status| status.success())
    }

    /// The exit code, or `None` when killed by the timeout or a signal.
    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|status| status.code())
    }

    /// Both streams, for a failure message.
    pub fn describe(&self) -> String {
        format!(
            "status {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status,
            self.stdout,
            tail(&self.stderr, 8_000)
        )
    }
}

/// Runs `command` with `stdin` (nothing when `None`) in its own process group, reading both
/// output streams, and kills that group after `timeout`.
pub fn run_bounded(command: &mut Command, stdin: Option<&str>, timeout: Duration) -> Finished {
    let mut child = command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|error| panic!("spawn {command:?}: {error}"));
    let writer = stdin.map(|text| {
        let mut pipe = child.stdin.take().expect("piped stdin");
        let text = text.to_owned();
        // Dropping the pipe at the end closes it: the tool sees end of input.
        thread::spawn(move || {
            let _ = pipe.write_all(text.as_bytes());
        })
    });
    let stdout = read_in_thread(child.stdout.take().expect("piped stdout"));
    let stderr = read_in_thread(child.stderr.take().expect("piped stderr"));
    let status = wait_or_kill_group(&mut child, timeout);
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    Finished {
        status,
        stdout: strip_ansi(&String::from_utf8_lossy(&stdout.join().unwrap_or_default())),
        stderr: strip_ansi(&String::from_utf8_lossy(&stderr.join().unwrap_or_default())),
    }
}

fn read_in_thread(mut stream: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        bytes
    })
}

/// Waits for `child` (the leader of its own process group) up to `timeout`; past it, sends
/// SIGKILL to that group, which holds only the child and the processes it forked.
fn wait_or_kill_group(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait on a child") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let group = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
            // SAFETY: kill(2) on the process group this harness created for the child it has
            // not reaped yet, so the group id cannot have been reused.
            unsafe { libc::kill(-group, libc::SIGKILL) };
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Maven 3.8 writes colour resets (ESC [ 0 m) even in batch mode; they only clutter output.
pub fn strip_ansi(text: &str) -> String {
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

/// The last `bytes` bytes of `text` (at a character boundary).
pub fn tail(text: &str, bytes: usize) -> &str {
    if text.len() <= bytes {
        return text;
    }
    let mut start = text.len() - bytes;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// Runs one of Kafka's command-line tools (`kafka-topics`, `kafka-console-producer`, ...)
/// through `kafka.sh tool`, with `stdin` as its standard input.
pub fn kafka_tool(tool: &str, args: &[&str], stdin: Option<&str>, timeout: Duration) -> Finished {
    let mut command = Command::new(kafka_script());
    command.arg("tool").arg(tool).args(args);
    run_bounded(&mut command, stdin, timeout)
}

/// A reference Apache Kafka broker (single-node KRaft) started by `kafka.sh start` on free
/// loopback ports with its data in a temporary directory; stopped (by its recorded PID) and
/// the directory removed when dropped.
pub struct ReferenceKafka {
    data_dir: PathBuf,
    bootstrap: String,
    pid: u32,
    _temp_dir: tempfile::TempDir,
}

impl ReferenceKafka {
    pub fn start() -> ReferenceKafka {
        let temp_dir = tempfile::Builder::new()
            .prefix("corelog-kafka-ref-")
            .tempdir()
            .expect("create a temporary dir for the reference Kafka");
        let data_dir = temp_dir.path().join("kafka");
        let started = run_bounded(
            Command::new(kafka_script()).arg("start").arg(&data_dir),
            None,
            REFERENCE_START_TIMEOUT,
        );
        let value = |name: &str| {
            started
                .stdout
                .lines()
                .find_map(|line| line.strip_prefix(&format!("{name}=")))
                .map(str::to_owned)
        };
        let (Some(bootstrap), Some(pid)) = (value("BOOTSTRAP"), value("PID")) else {
            panic!(
                "`kafka.sh start {}` did not start the reference Kafka:\n{}",
                data_dir.display(),
                started.describe()
            );
        };
        assert!(started.success(), "kafka.sh start: {}", started.describe());
        ReferenceKafka {
            data_dir,
            bootstrap,
            pid: pid.parse().expect("kafka.sh prints a numeric PID"),
            _temp_dir: temp_dir,
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The end of the broker's own log (`<data-dir>/kafka.log`).
    pub fn recent_log(&self) -> String {
        let log = fs::read_to_string(self.data_dir.join("kafka.log")).unwrap_or_default();
        format!(
            "---- end of the reference Kafka's log ({}) ----\n{}",
            self.data_dir.join("kafka.log").display(),
            tail(&log, REFERENCE_LOG_TAIL_BYTES)
        )
    }

    fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

impl Drop for ReferenceKafka {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("{}", self.recent_log());
        }
        // `stop` signals only the PID recorded in this data dir, and only if that process is
        // still the broker started on it.
        let stopped = run_bounded(
            Command::new(kafka_script())
                .arg("stop")
                .arg(self.data_dir()),
            None,
            REFERENCE_STOP_TIMEOUT,
        );
        if !stopped.success() {
            eprintln!(
                "kafka.sh stop {} failed: {}",
                self.data_dir.display(),
                stopped.describe()
            );
        }
    }
}
