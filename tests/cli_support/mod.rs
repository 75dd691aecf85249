//! Runs the real `corelog` binary as a user would (for the admin and console
//! tool tests): every run is bounded by a deadline, so a hanging tool fails the
//! test instead of the suite, and the output comes back as text.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long one tool invocation may take (its own network timeouts are 30 s).
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// What one run of the binary printed and how it ended.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    /// Panics with the full output unless the run exited 0.
    pub fn ok(self) -> Run {
        assert_eq!(self.code, Some(0), "expected success: {self:#?}");
        self
    }

    /// Panics unless the run failed with a message containing every part.
    pub fn fails_with(self, parts: &[&str]) -> Run {
        assert!(
            self.code.is_some_and(|code| code != 0),
            "expected a failure: {self:#?}"
        );
        for part in parts {
            assert!(
                self.stderr.contains(part),
                "stderr lacks {part:?}: {self:#?}"
            );
        }
        self
    }

    /// stdout parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("stdout is not JSON ({error}): {self:#?}"))
    }
}

/// Runs `corelog ARGS` with `CORELOG_BROKERS=brokers`.
pub fn corelog(brokers: &str, args: &[&str]) -> Run {
    corelog_with_env(args, &[("CORELOG_BROKERS", brokers)])
}

/// Runs `corelog ARGS` with these environment variables (and no inherited CORELOG_BROKERS).
pub fn corelog_with_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let started = Instant::now();
    let mut command = Command::new(env!("CARGO_BIN_EXE_corelog"));
    command
        .args(args)
        .env_remove("CORELOG_BROKERS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("spawn corelog");
    let mut stdout_pipe = child.stdout.take().expect("stdout piped");
    let mut stderr_pipe = child.stderr.take().expect("stderr piped");
    let stdout_reader = thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout_pipe.read_to_string(&mut text);
        text
    });
    let stderr_reader = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text);
        text
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for corelog") {
            break status;
        }
        if started.elapsed() > RUN_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("corelog {args:?} did not finish within {RUN_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    Run {
        code: status.code(),
        stdout: stdout_reader.join().expect("stdout reader"),
        stderr: stderr_reader.join().expect("stderr reader"),
        elapsed: started.elapsed(),
    }
}

/// A loopback address where nothing listens.
pub fn closed_port_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("local address").to_string();
    drop(listener);
    address
}
