//! Load and failure for the group tests: a producer thread writing numbered messages
//! until stopped, and a `kcat -G` member in a child process that can be SIGKILLed, so it
//! stops heartbeating without leaving.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::common::{
    producer, record, send, wait_for_successful_deliveries, Consumed, TestProducer,
};

/// A thread producing keyed messages `churn-<id>` (acks=all) until stopped.
pub struct BackgroundProducer {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(TestProducer, usize)>,
}

impl BackgroundProducer {
    /// Messages enqueued per 10 ms round: about 1000 per second.
    const MESSAGES_PER_ROUND: usize = 10;

    pub fn start(bootstrap: &str, topic: &str) -> BackgroundProducer {
        let producer = producer(bootstrap, &[]);
        let stop = Arc::new(AtomicBool::new(false));
        let topic = topic.to_string();
        let stopped = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let mut sent = 0usize;
            while !stopped.load(Ordering::Relaxed) {
                for _ in 0..Self::MESSAGES_PER_ROUND {
                    let key = format!("key-{}", sent % 60);
                    let value = format!("churn-{sent}");
                    send(
                        &producer,
                        record(&topic, sent, key.as_bytes(), value.as_bytes()),
                    );
                    sent += 1;
                }
                producer.poll(Duration::from_millis(10));
            }
            (producer, sent)
        });
        BackgroundProducer { stop, thread }
    }

    /// Stops producing and waits until every message was acknowledged; returns where each
    /// landed, indexed by id.
    pub fn stop(self) -> Vec<(i32, i64)> {
        self.stop.store(true, Ordering::Relaxed);
        let (producer, sent) = self.thread.join().expect("producer thread panicked");
        wait_for_successful_deliveries(&producer, sent, Duration::from_secs(60))
    }
}

/// Partition -> (lowest, highest, how many) offsets of the `missing` ids.
pub fn missing_by_partition(missing: &BTreeSet<usize>, placed: &[(i32, i64)]) -> String {
    let mut ranges: BTreeMap<i32, (i64, i64, usize)> = BTreeMap::new();
    for id in missing {
        let (partition, offset) = placed[*id];
        let range = ranges.entry(partition).or_insert((offset, offset, 0));
        range.0 = range.0.min(offset);
        range.1 = range.1.max(offset);
        range.2 += 1;
    }
    format!(
        "{} acknowledged messages never read; partition -> (first offset, last offset, \
         count): {ranges:?}",
        missing.len()
    )
}

pub fn churn_id(consumed: &Consumed) -> usize {
    let value = consumed.value.as_deref().expect("record value");
    std::str::from_utf8(value)
        .ok()
        .and_then(|text| text.strip_prefix("churn-"))
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("unexpected record value {value:?}"))
}

/// A `kcat -G` balanced consumer in a child process: a member that can be SIGKILLed, so it
/// stops heartbeating without leaving.
pub struct KcatMember {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl KcatMember {
    /// `None` (with a notice) where kcat is not installed; `.ci/run` installs it.
    pub fn join(bootstrap: &str, group: &str, topic: &str, client_id: &str) -> Option<KcatMember> {
        let installed = Command::new("kcat")
            .arg("-V")
            .output()
            .is_ok_and(|output| output.status.success());
        if !installed {
            // Written to stderr directly: libtest captures eprintln! of passing tests.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "NOTICE: kcat is not installed; skipping the dead-member half of this test"
            );
            return None;
        }
        let settings = [
            format!("client.id={client_id}"),
            "session.timeout.ms=6000".to_string(),
            "heartbeat.interval.ms=1000".to_string(),
            "partition.assignment.strategy=range".to_string(),
        ];
        let mut command = Command::new("kcat");
        command.args(["-b", bootstrap, "-G", group]);
        for setting in &settings {
            command.args(["-X", setting]);
        }
        let mut child = command
            .arg(topic)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kcat");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("kcat stderr");
        let sink = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(read @ 1..) = pipe.read(&mut buffer) {
                let text = String::from_utf8_lossy(&buffer[..read]).to_string();
                sink.lock()
                    .unwrap_or_else(|poison| poison.into_inner())
                    .push_str(&text);
            }
        });
        Some(KcatMember { child, stderr })
    }

    /// SIGKILL to exactly the process this test spawned.
    pub fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL kcat");
        self.child.wait().expect("reap kcat");
    }

    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }
}

impl Drop for KcatMember {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
