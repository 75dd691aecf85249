//! Test harness: a real metadata quorum in one process. Each voter runs on
//! its own glommio executor thread with its own data directory and loopback
//! port, and talks to the others over TCP; the test thread runs jobs on a
//! node (`TestNode::run`) and waits for their answers.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures::channel::{mpsc, oneshot};
use futures::StreamExt;
use glommio::{LocalExecutorBuilder, Placement};

use super::active_controller::{ActiveController, ControllerTiming};
use super::metadata::ControllerSettings;
use super::quorum::node::{QuorumNode, QuorumSettings, QuorumTiming};

/// What a job gets to work with on its node's thread.
pub struct Handles {
    pub quorum: Rc<QuorumNode>,
    pub controller: Rc<ActiveController>,
}

type Job = Box<dyn FnOnce(Rc<Handles>) -> Pin<Box<dyn Future<Output = ()>>> + Send>;

pub struct TestNode {
    pub node_id: u64,
    jobs: Option<mpsc::UnboundedSender<Job>>,
    thread: Option<glommio::ExecutorJoinHandle<()>>,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

/// Fast timings so elections and fencing happen within a test's patience.
pub fn test_timing() -> (QuorumTiming, ControllerTiming) {
    (
        QuorumTiming {
            heartbeat_interval_ms: 50,
            election_timeout_min_ms: 300,
            election_timeout_max_ms: 600,
        },
        ControllerTiming {
            broker_session_timeout_ms: 1_500,
            session_check_interval: Duration::from_millis(100),
            propose_timeout: Duration::from_secs(1),
            leader_rebalance_interval: Duration::ZERO,
        },
    )
}

impl TestNode {
    pub fn start(node_id: u64, voters: &BTreeMap<u64, String>, directory: &Path) -> TestNode {
        let listen: SocketAddr = voters[&node_id].parse().expect("voter address");
        let (quorum_timing, controller_timing) = test_timing();
        let settings = QuorumSettings {
            node_id,
            voters: voters.clone(),
            listen,
            directory: directory.to_path_buf(),
            cluster_id: "test-cluster".to_owned(),
            timing: quorum_timing,
        };
        let (jobs, mut receiver) = mpsc::unbounded::<Job>();
        let thread = LocalExecutorBuilder::new(Placement::Unbound)
            .io_memory(256 << 10)
            .name(&format!("quorum-test-{node_id}"))
            .spawn(move || async move {
                let quorum = QuorumNode::start(settings)
                    .await
                    .expect("quorum node starts");
                let controller = ActiveController::new(
                    Rc::clone(&quorum),
                    ControllerSettings::default(),
                    controller_timing,
                    "test-cluster".to_owned(),
                );
                controller.spawn_session_timer();
                let handles = Rc::new(Handles {
                    quorum: Rc::clone(&quorum),
                    controller,
                });
                while let Some(job) = receiver.next().await {
                    job(Rc::clone(&handles)).await;
                }
                quorum.shutdown().await;
            })
            .expect("executor thread");
        TestNode {
            node_id,
            jobs: Some(jobs),
            thread: Some(thread),
        }
    }

    /// Runs `job` on the node's executor and waits for its answer; `None`
    /// if the node is stopped.
    pub fn run<T, F, Fut>(&self, job: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce(Rc<Handles>) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |handles| {
            Box::pin(async move {
                let _ = reply.send(job(handles).await);
            })
        });
        self.jobs.as_ref()?.unbounded_send(job).ok()?;
        futures::executor::block_on(answer).ok()
    }

    /// The leader this node knows of.
    pub fn leader(&self) -> Option<u64> {
        self.run(|handles| async move { handles.quorum.current_leader().await })
            .flatten()
    }

    pub fn topic_names(&self) -> Vec<String> {
        self.run(|handles| async move {
            handles
                .quorum
                .state_machine()
                .read(|image| image.topics().map(|topic| topic.name.clone()).collect())
        })
        .unwrap_or_default()
    }

    /// Stops the node (its thread ends after the Raft node shut down).
    pub fn stop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls `check` every 20 ms until it returns `Some`, for at most `limit`.
pub fn wait_for<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The voters' addresses and directories, under one temp dir.
pub struct TestCluster {
    pub voters: BTreeMap<u64, String>,
    pub directories: BTreeMap<u64, PathBuf>,
    pub nodes: BTreeMap<u64, TestNode>,
    _root: tempfile::TempDir,
}

impl TestCluster {
    /// Starts `size` voters.
    pub fn start(size: u64) -> TestCluster {
        let root = tempfile::tempdir().expect("temp dir");
        let voters: BTreeMap<u64, String> = (0..size)
            .map(|id| (id, format!("127.0.0.1:{}", free_port())))
            .collect();
        let directories: BTreeMap<u64, PathBuf> = (0..size)
            .map(|id| (id, root.path().join(format!("node{id}"))))
            .collect();
        let nodes = directories
            .iter()
            .map(|(id, directory)| (*id, TestNode::start(*id, &voters, directory)))
            .collect();
        TestCluster {
            voters,
            directories,
            nodes,
            _root: root,
        }
    }

    /// The leader every running node agrees on, if it is running.
    pub fn agreed_leader(&self) -> Option<u64> {
        let mut leaders = self.nodes.values().map(TestNode::leader);
        let first = leaders.next()??;
        // Survivors remember a stopped leader until their election timeout.
        (self.nodes.contains_key(&first) && leaders.all(|leader| leader == Some(first)))
            .then_some(first)
    }

    pub fn wait_for_leader(&self) -> u64 {
        wait_for(Duration::from_secs(10), || self.agreed_leader()).expect("a leader is elected")
    }

    pub fn stop(&mut self, node_id: u64) {
        if let Some(mut node) = self.nodes.remove(&node_id) {
            node.stop();
        }
    }

    pub fn restart(&mut self, node_id: u64) {
        let node = TestNode::start(node_id, &self.voters, &self.directories[&node_id]);
        self.nodes.insert(node_id, node);
    }

    /// Waits until every running node has applied topics named `expected`.
    pub fn wait_for_topics(&self, expected: &[&str]) {
        for node in self.nodes.values() {
            let seen = wait_for(Duration::from_secs(10), || {
                let names = node.topic_names();
                expected
                    .iter()
                    .all(|name| names.iter().any(|have| have == name))
                    .then_some(())
            });
            assert!(
                seen.is_some(),
                "node {} never applied {expected:?}",
                node.node_id
            );
        }
    }
}
