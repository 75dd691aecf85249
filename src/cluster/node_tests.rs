//! `ClusterNode` end to end in one process: three voters and a broker-only
//! node, each on its own executor thread, joined as `corelog serve` joins
//! them (quorum, cluster id, registration, heartbeats), then asked things
//! through `call` from the node that is furthest from the controller.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::StreamExt;
use glommio::{LocalExecutorBuilder, Placement};

use super::control::{ControlError, ControlOutcome, ControlRequest};
use super::node::{ClusterNode, JoinError};
use super::test_cluster::{free_port, wait_for};
use crate::config::{BrokerConfig, ClusterSettings};
use crate::protocol::errors::KafkaError;

type Job = Box<dyn FnOnce(Rc<ClusterNode>) -> Pin<Box<dyn Future<Output = ()>>> + Send>;

/// One joined node on its own thread.
struct JoinedNode {
    jobs: Option<mpsc::UnboundedSender<Job>>,
    thread: Option<glommio::ExecutorJoinHandle<()>>,
}

fn config(node_id: i32, voters: &BTreeMap<u64, String>, data_dir: &Path) -> BrokerConfig {
    let listen = format!("127.0.0.1:{}", free_port())
        .parse()
        .expect("address");
    let mut config = BrokerConfig::for_test(listen, data_dir.to_path_buf());
    config.node_id = node_id;
    config.cluster = Some(ClusterSettings {
        voters: voters.clone(),
        controller_listen: voters
            .get(&(node_id as u64))
            .map(|address| address.parse().expect("voter address")),
        broker_session_timeout_ms: 1_000,
        broker_heartbeat_interval_ms: 200,
        leader_imbalance_check_interval_ms: 0,
    });
    config
}

/// Starts a node; the answer is its join's result (the node keeps running
/// on its thread when it joined).
fn start(config: BrokerConfig) -> (JoinedNode, oneshot::Receiver<Result<(), String>>) {
    let (jobs, mut receiver) = mpsc::unbounded::<Job>();
    let (joined, join_result) = oneshot::channel();
    let thread = LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(256 << 10)
        .name(&format!("cluster-node-{}", config.node_id))
        .spawn(move || async move {
            std::fs::create_dir_all(&config.data_dir).expect("data dir");
            let node = match ClusterNode::join(&config).await {
                Ok(node) => node,
                Err(error) => {
                    let _ = joined.send(Err(describe(&error)));
                    return;
                }
            };
            let _ = joined.send(Ok(()));
            while let Some(job) = receiver.next().await {
                job(Rc::clone(&node)).await;
            }
            node.shutdown().await;
        })
        .expect("executor thread");
    (
        JoinedNode {
            jobs: Some(jobs),
            thread: Some(thread),
        },
        join_result,
    )
}

fn describe(error: &JoinError) -> String {
    error.to_string()
}

impl JoinedNode {
    fn run<T, F, Fut>(&self, job: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce(Rc<ClusterNode>) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |node| {
            Box::pin(async move {
                let _ = reply.send(job(node).await);
            })
        });
        self.jobs.as_ref()?.unbounded_send(job).ok()?;
        futures::executor::block_on(answer).ok()
    }

    /// The live brokers and the controller in this node's catalog.
    fn view(&self) -> (Vec<i32>, i32) {
        self.run(|node| async move {
            let catalog = node.catalog(1, &BTreeMap::new());
            let brokers = catalog.brokers().iter().map(|b| b.node_id).collect();
            (brokers, catalog.controller_id())
        })
        .unwrap_or_default()
    }
}

impl Drop for JoinedNode {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn joined(result: oneshot::Receiver<Result<(), String>>) -> Result<(), String> {
    futures::executor::block_on(result).unwrap_or_else(|_| Err("node thread ended".into()))
}

#[test]
fn voters_and_a_broker_only_node_join_and_reach_the_controller_from_anywhere() {
    let root = tempfile::tempdir().expect("temp dir");
    let voters: BTreeMap<u64, String> = (0..3)
        .map(|id| (id, format!("127.0.0.1:{}", free_port())))
        .collect();
    let mut nodes = Vec::new();
    let mut results = Vec::new();
    for id in 0..3 {
        let (node, result) = start(config(id, &voters, &root.path().join(format!("n{id}"))));
        nodes.push(node);
        results.push(result);
    }
    for (id, result) in results.into_iter().enumerate() {
        assert_eq!(joined(result), Ok(()), "voter {id} joins");
    }
    let (broker_only, result) = start(config(7, &voters, &root.path().join("n7")));
    assert_eq!(joined(result), Ok(()), "the broker-only node joins");
    nodes.push(broker_only);

    // Every node, the broker-only one too, sees four live brokers and one
    // controller among the voters.
    for node in &nodes {
        let seen = wait_for(Duration::from_secs(10), || {
            let (brokers, controller) = node.view();
            (brokers == vec![0, 1, 2, 7] && (0..3).contains(&controller)).then_some(controller)
        });
        assert!(
            seen.is_some(),
            "every node lists all brokers: {:?}",
            node.view()
        );
    }

    // The broker-only node creates a topic through the controller and sees
    // it applied once the call answers and it waited for the offset.
    let created = nodes[3]
        .run(|node| async move {
            let request = ControlRequest::CreateTopic {
                name: "spread".into(),
                num_partitions: 8,
                replication_factor: 1,
                configs: Vec::new(),
                assignments: Vec::new(),
                validate_only: false,
            };
            let (outcome, offset) = node.call(request).await.expect("created");
            assert!(node.wait_for_offset(offset, Duration::from_secs(5)).await);
            let leaders: Vec<i32> = node.read_image(|image| {
                let topic = image.topic_by_name("spread").expect("applied here");
                (0..8)
                    .map(|p| {
                        image
                            .partition_leader(&topic.topic_id, p)
                            .expect("a live leader")
                    })
                    .collect()
            });
            (outcome, leaders)
        })
        .expect("node runs");
    assert!(matches!(created.0, ControlOutcome::TopicCreated { .. }));
    for broker in [0, 1, 2, 7] {
        assert_eq!(
            created.1.iter().filter(|leader| **leader == broker).count(),
            2,
            "8 partitions over 4 brokers, 2 each: {:?}",
            created.1
        );
    }

    // A refusal comes back with its Kafka code, wherever it was decided.
    let refused = nodes[3]
        .run(|node| async move {
            node.call(ControlRequest::CreateTopic {
                name: "spread".into(),
                num_partitions: 1,
                replication_factor: 1,
                configs: Vec::new(),
                assignments: Vec::new(),
                validate_only: false,
            })
            .await
        })
        .expect("node runs");
    assert!(
        matches!(
            refused,
            Err(ControlError::Refused {
                error: KafkaError::TopicAlreadyExists,
                ..
            })
        ),
        "{refused:?}"
    );

    // The broker-only node leads a replicated partition and changes its ISR
    // (AlterPartition); a refusal comes back with its own Kafka code, so
    // the leader can tell a stale partition epoch from other refusals.
    let altered = nodes[3]
        .run(|node| async move {
            let create = ControlRequest::CreateTopic {
                name: "replicated".into(),
                num_partitions: -1,
                replication_factor: -1,
                configs: Vec::new(),
                assignments: vec![(0, vec![7, 0, 1])],
                validate_only: false,
            };
            let (outcome, offset) = node.call(create).await.expect("created");
            let ControlOutcome::TopicCreated { topic_id } = outcome else {
                panic!("unexpected {outcome:?}");
            };
            assert!(node.wait_for_offset(offset, Duration::from_secs(5)).await);
            let catalog = node.catalog(1, &BTreeMap::new());
            let assignment = catalog.partition("replicated", 0).expect("applied").clone();
            assert_eq!(
                (assignment.leader, assignment.isr.clone()),
                (7, vec![7, 0, 1])
            );
            let alter = |partition_epoch| ControlRequest::AlterPartition {
                broker_id: node.node_id,
                broker_epoch: node.broker_epoch().expect("registered"),
                topic_id,
                partition: 0,
                leader_epoch: assignment.leader_epoch,
                partition_epoch,
                new_isr: vec![7, 0],
            };
            let shrunk = node.call(alter(assignment.partition_epoch)).await;
            let stale = node.call(alter(assignment.partition_epoch)).await;
            (
                shrunk.map(|(outcome, _)| outcome),
                stale.map(|(outcome, _)| outcome),
            )
        })
        .expect("node runs");
    assert_eq!(
        altered.0,
        Ok(ControlOutcome::PartitionAltered {
            leader: 7,
            leader_epoch: 0,
            isr: vec![7, 0],
            partition_epoch: 1,
        })
    );
    assert!(
        matches!(
            &altered.1,
            Err(error) if error.kafka_error() == KafkaError::InvalidUpdateVersion
        ),
        "{:?}",
        altered.1
    );

    // Producer-id blocks are distinct whichever node asks.
    let mut blocks = Vec::new();
    for node in &nodes {
        let block = node
            .run(|node| async move {
                let request = ControlRequest::AllocateProducerIds {
                    broker_id: node.node_id,
                    broker_epoch: node.broker_epoch().expect("registered"),
                };
                match node.call(request).await {
                    Ok((ControlOutcome::ProducerIds { first, size }, _)) => Some((first, size)),
                    _ => None,
                }
            })
            .flatten()
            .expect("a producer id block");
        blocks.push(block);
    }
    blocks.sort();
    for pair in blocks.windows(2) {
        assert!(
            pair[0].0 + pair[0].1 <= pair[1].0,
            "overlapping blocks {blocks:?}"
        );
    }

    // A second process with a live node's id is refused once the first's
    // session has had time to expire: it is alive, so it does not.
    let (duplicate, result) = start(config(7, &voters, &root.path().join("n7-again")));
    let refusal = joined(result).expect_err("a second node 7 is refused");
    assert!(refusal.contains("DuplicateBrokerRegistration"), "{refusal}");
    drop(duplicate);
}
