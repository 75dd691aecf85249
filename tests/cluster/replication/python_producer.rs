//! kafka-python's idempotent acks=all producer (tests/python/replicated_produce.py) as a
//! second, independent client for the leader-kill scenario: its own sender, retries and
//! sequence numbers. The script runs in the background and prints one line per
//! acknowledgement (`ack <partition> <offset> <value>`) and per resend (`retry <value>
//! <error>`); [`PythonProducer`] collects those lines as they come, so the test can kill a
//! leader mid-run, and kills the script (by pid) if the test ends first.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::poll::poll_until_ok;

const PYTHON: &str = "python3";
/// How many values tests/python/replicated_produce.py sends, one every
/// [`PYTHON_PACE_MS`]: a run of about ten seconds plus the failover, so the kill lands in
/// the middle.
pub(super) const PYTHON_RECORDS: usize = 2000;
const PYTHON_PACE_MS: &str = "5";
/// The script's own watchdog (it dumps its threads' stacks and exits); the test's bound on
/// the script is a little longer.
const PYTHON_WATCHDOG_S: u64 = 100;
const PYTHON_TIMEOUT: Duration = Duration::from_secs(PYTHON_WATCHDOG_S + 10);

/// One acknowledgement the script printed: `ack <partition> <offset> <value>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PythonAck {
    pub(super) partition: i32,
    pub(super) offset: i64,
    pub(super) value: String,
}

/// tests/python/replicated_produce.py running in the background; its stdout lines are
/// collected as they come. Dropping it kills the script (by pid) if it still runs.
pub(super) struct PythonProducer {
    child: Child,
    stdout_lines: Arc<Mutex<Vec<String>>>,
    stdout_reader: Option<thread::JoinHandle<()>>,
    stderr_reader: Option<thread::JoinHandle<String>>,
}

impl PythonProducer {
    pub(super) fn start(bootstrap: &str, topic: &str) -> PythonProducer {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/replicated_produce.py");
        let records = PYTHON_RECORDS.to_string();
        let watchdog = PYTHON_WATCHDOG_S.to_string();
        let mut child = Command::new(PYTHON)
            .arg(&script)
            .args(["--bootstrap", bootstrap, "--topic", topic])
            .args(["--group", "unused", "--timeout-s", &watchdog])
            .args(["--records", &records, "--pace-ms", PYTHON_PACE_MS])
            // No __pycache__ next to the scripts in the source tree.
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "spawn {PYTHON} {}: {error} (python3 and kafka-python 3.x are test \
                     dependencies: `python3 -m pip install kafka-python==3.0.12`)",
                    script.display()
                )
            });
        let stdout_lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("piped stdout");
        let stdout_reader = {
            let lines = Arc::clone(&stdout_lines);
            thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    lines
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(line);
                }
            })
        };
        let mut stderr = child.stderr.take().expect("piped stderr");
        let stderr_reader = thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        PythonProducer {
            child,
            stdout_lines,
            stdout_reader: Some(stdout_reader),
            stderr_reader: Some(stderr_reader),
        }
    }

    fn lines(&self) -> Vec<String> {
        self.stdout_lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(super) fn acks(&self) -> usize {
        self.lines()
            .iter()
            .filter(|line| line.starts_with("ack "))
            .count()
    }

    /// Waits until the script printed `count` acknowledgements; panics if it exits first.
    pub(super) fn wait_for_acks(&mut self, count: usize, timeout: Duration, what: &str) {
        let waiting_for =
            format!("{what}: replicated_produce.py to print {count} acknowledgements");
        poll_until_ok(timeout, Duration::from_millis(50), &waiting_for, || {
            if self.acks() >= count {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait().expect("try_wait on the script") {
                panic!(
                    "replicated_produce.py exited ({status}) after {} acknowledgements, while \
                     the test waited for {count} ({what}); stderr:\n{}",
                    self.acks(),
                    self.take_stderr()
                );
            }
            Err(format!(
                "it printed {}; last lines: {:?}",
                self.acks(),
                self.lines().iter().rev().take(5).collect::<Vec<_>>()
            ))
        });
    }

    fn take_stderr(&mut self) -> String {
        // Only after the process exited: the reader ends at EOF.
        self.stderr_reader
            .take()
            .map(|reader| reader.join().unwrap_or_default())
            .unwrap_or_default()
    }

    /// Waits (bounded) for the script to exit successfully; returns its acknowledgements
    /// and the values it reported sending again.
    pub(super) fn finish(mut self) -> (Vec<PythonAck>, Vec<String>) {
        let deadline = Instant::now() + PYTHON_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait on the script") {
                break status;
            }
            if Instant::now() >= deadline {
                // Child::kill sends SIGKILL to exactly the pid this test spawned.
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "replicated_produce.py did not finish within {PYTHON_TIMEOUT:?} \
                     ({} acknowledgements); stderr:\n{}",
                    self.acks(),
                    self.take_stderr()
                );
            }
            thread::sleep(Duration::from_millis(50));
        };
        if let Some(reader) = self.stdout_reader.take() {
            let _ = reader.join();
        }
        let stderr = self.take_stderr();
        let lines = self.lines();
        assert!(
            status.success(),
            "replicated_produce.py failed ({status}) after {} acknowledgements; last stdout \
             lines: {:?}\nstderr:\n{stderr}",
            self.acks(),
            lines.iter().rev().take(5).collect::<Vec<_>>()
        );
        eprintln!(
            "replicated_produce.py: {}",
            lines.last().map_or("", String::as_str)
        );
        let mut acks = Vec::new();
        let mut resent = Vec::new();
        for line in &lines {
            let fields: Vec<&str> = line.split(' ').collect();
            match fields.as_slice() {
                ["ack", partition, offset, value] => acks.push(PythonAck {
                    partition: partition.parse().expect("partition in an ack line"),
                    offset: offset.parse().expect("offset in an ack line"),
                    value: value.to_string(),
                }),
                ["retry", value, _error] => resent.push(value.to_string()),
                _ => {}
            }
        }
        (acks, resent)
    }
}

impl Drop for PythonProducer {
    fn drop(&mut self) {
        // Kills exactly the script this test spawned (a no-op once it was reaped).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
