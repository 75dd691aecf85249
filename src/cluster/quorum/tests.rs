//! A real quorum in one process: three voters, each on its own glommio
//! executor thread with its own data directory and loopback port, talking
//! over TCP. The test thread drives them through command channels.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::channel::{mpsc, oneshot};
use futures::StreamExt;
use glommio::{LocalExecutorBuilder, Placement};

use super::node::{ProposeError, QuorumNode, QuorumSettings, QuorumTiming};
use crate::cluster::metadata::records::MetadataRecord;

enum Command {
    Propose(
        Vec<MetadataRecord>,
        oneshot::Sender<Result<u64, ProposeError>>,
    ),
    Leader(oneshot::Sender<Option<u64>>),
    TopicNames(oneshot::Sender<Vec<String>>),
    Stop,
}

struct TestNode {
    commands: mpsc::UnboundedSender<Command>,
    thread: Option<glommio::ExecutorJoinHandle<()>>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

fn start_node(node_id: u64, voters: &BTreeMap<u64, String>, directory: &Path) -> TestNode {
    let listen: SocketAddr = voters[&node_id].parse().expect("voter address");
    let settings = QuorumSettings {
        node_id,
        voters: voters.clone(),
        listen,
        directory: directory.to_path_buf(),
        cluster_id: "test-cluster".to_owned(),
        timing: QuorumTiming {
            heartbeat_interval_ms: 50,
            election_timeout_min_ms: 300,
            election_timeout_max_ms: 600,
        },
    };
    let (commands, mut receiver) = mpsc::unbounded::<Command>();
    let thread = LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(256 << 10)
        .name(&format!("quorum-test-{node_id}"))
        .spawn(move || async move {
            let node = QuorumNode::start(settings)
                .await
                .expect("quorum node starts");
            while let Some(command) = receiver.next().await {
                match command {
                    Command::Propose(records, reply) => {
                        let result = node
                            .propose(records, Duration::from_secs(1))
                            .await
                            .map(|applied| applied.log_index);
                        let _ = reply.send(result);
                    }
                    Command::Leader(reply) => {
                        let _ = reply.send(node.current_leader().await);
                    }
                    Command::TopicNames(reply) => {
                        let _ = reply.send(node.state_machine().read(|image| {
                            image.topics().map(|topic| topic.name.clone()).collect()
                        }));
                    }
                    Command::Stop => break,
                }
            }
            node.shutdown().await;
        })
        .expect("executor thread");
    TestNode {
        commands,
        thread: Some(thread),
    }
}

impl TestNode {
    fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        self.commands.unbounded_send(make(reply)).ok()?;
        futures::executor::block_on(answer).ok()
    }

    fn stop(&mut self) {
        let _ = self.commands.unbounded_send(Command::Stop);
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

fn topic(name: &str, id: u8) -> Vec<MetadataRecord> {
    vec![MetadataRecord::TopicCreated {
        name: name.to_owned(),
        topic_id: [id; 16],
    }]
}

/// Polls `check` every 20 ms until it returns `Some`, for at most `limit`.
fn wait_for<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
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

fn agreed_leader(nodes: &BTreeMap<u64, TestNode>) -> Option<u64> {
    let mut leaders = nodes
        .values()
        .map(|node| node.ask(Command::Leader).flatten());
    let first = leaders.next()??;
    // Survivors remember a stopped leader until their election timeout.
    (nodes.contains_key(&first) && leaders.all(|leader| leader == Some(first))).then_some(first)
}

fn propose_on_leader(nodes: &BTreeMap<u64, TestNode>, records: Vec<MetadataRecord>) -> u64 {
    wait_for(Duration::from_secs(10), || {
        let leader = agreed_leader(nodes)?;
        let records = records.clone();
        nodes[&leader]
            .ask(|reply| Command::Propose(records, reply))?
            .ok()
    })
    .expect("a proposal commits on the leader")
}

fn wait_for_topics(node: &TestNode, expected: &[&str]) -> Vec<String> {
    wait_for(Duration::from_secs(10), || {
        let names = node.ask(Command::TopicNames)?;
        expected
            .iter()
            .all(|name| names.iter().any(|have| have == name))
            .then_some(names)
    })
    .unwrap_or_else(|| panic!("topics {expected:?} never applied"))
}

struct Cluster {
    voters: BTreeMap<u64, String>,
    directories: BTreeMap<u64, PathBuf>,
    _root: tempfile::TempDir,
}

fn cluster(size: u64) -> Cluster {
    let root = tempfile::tempdir().expect("temp dir");
    let voters = (0..size)
        .map(|id| (id, format!("127.0.0.1:{}", free_port())))
        .collect();
    let directories = (0..size)
        .map(|id| {
            let directory = root.path().join(format!("node{id}"));
            std::fs::create_dir_all(&directory).expect("node dir");
            (id, directory)
        })
        .collect();
    Cluster {
        voters,
        directories,
        _root: root,
    }
}

#[test]
fn three_voters_elect_replicate_fail_over_and_catch_up() {
    let cluster = cluster(3);
    let mut nodes: BTreeMap<u64, TestNode> = cluster
        .directories
        .iter()
        .map(|(id, directory)| (*id, start_node(*id, &cluster.voters, directory)))
        .collect();

    let first_leader =
        wait_for(Duration::from_secs(10), || agreed_leader(&nodes)).expect("a leader is elected");
    propose_on_leader(&nodes, topic("orders", 1));
    for node in nodes.values() {
        wait_for_topics(node, &["orders"]);
    }

    // A follower refuses proposals and names the leader.
    let follower = nodes
        .keys()
        .copied()
        .find(|id| *id != first_leader)
        .expect("follower");
    let refused = nodes[&follower].ask(|reply| Command::Propose(topic("x", 9), reply));
    assert_eq!(
        refused,
        Some(Err(ProposeError::NotController {
            leader: Some(first_leader)
        }))
    );

    // The leader goes away: the other two elect a new one and keep going.
    let mut stopped = nodes.remove(&first_leader).expect("leader node");
    stopped.stop();
    let second_leader = wait_for(Duration::from_secs(10), || agreed_leader(&nodes))
        .expect("the survivors elect a new leader");
    assert_ne!(second_leader, first_leader);
    propose_on_leader(&nodes, topic("payments", 2));
    for node in nodes.values() {
        wait_for_topics(node, &["orders", "payments"]);
    }

    // The old leader restarts from its directory and catches up.
    let restarted = start_node(
        first_leader,
        &cluster.voters,
        &cluster.directories[&first_leader],
    );
    let names = wait_for_topics(&restarted, &["orders", "payments"]);
    assert_eq!(
        names.len(),
        2,
        "no topic applied twice or invented: {names:?}"
    );
    nodes.insert(first_leader, restarted);
    assert!(wait_for(Duration::from_secs(10), || agreed_leader(&nodes)).is_some());
}

#[test]
fn a_minority_cannot_commit_and_a_restarted_majority_keeps_its_log() {
    let cluster = cluster(3);
    let mut nodes: BTreeMap<u64, TestNode> = cluster
        .directories
        .iter()
        .map(|(id, directory)| (*id, start_node(*id, &cluster.voters, directory)))
        .collect();
    propose_on_leader(&nodes, topic("kept", 3));
    for node in nodes.values() {
        wait_for_topics(node, &["kept"]);
    }
    // Stop two of three: the survivor can never commit alone.
    let ids: Vec<u64> = nodes.keys().copied().collect();
    for id in &ids[..2] {
        nodes.remove(id).expect("node").stop();
    }
    let survivor = &nodes[&ids[2]];
    let alone = wait_for(Duration::from_secs(2), || {
        survivor
            .ask(|reply| Command::Propose(topic("lost", 4), reply))?
            .ok()
    });
    assert_eq!(alone, None, "a minority committed a proposal");
    let names = survivor.ask(Command::TopicNames).expect("survivor answers");
    assert_eq!(
        names,
        vec!["kept".to_owned()],
        "nothing applied without a majority"
    );
    // Restart everything from disk: the committed topic is still there.
    for id in &ids[..2] {
        nodes.insert(
            *id,
            start_node(*id, &cluster.voters, &cluster.directories[id]),
        );
    }
    propose_on_leader(&nodes, topic("after", 5));
    // (The "lost" proposal may still commit now that a majority is back: its
    // outcome was unknown to the proposer, as after a Kafka request timeout.)
    for node in nodes.values() {
        wait_for_topics(node, &["kept", "after"]);
    }
}
