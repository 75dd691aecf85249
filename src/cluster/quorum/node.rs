//! One node's member of the metadata quorum: opens the Raft log and the
//! metadata state machine in the data directory, starts the openraft node on
//! this executor (the controller shard, shard 0), listens for peers on
//! `--controller-listen`, and forms the quorum from the static voter set
//! (Kafka's `controller.quorum.voters`).
//!
//! Every voter initializes the same membership on first start; openraft
//! accepts that (identical configs cannot split the vote), so no node has to
//! be told it is first. The Raft leader is the active controller: `propose`
//! appends a batch of metadata records and answers once it is committed and
//! applied here, or says who leads when this node does not.
//!
//! openraft's tasks run in a task queue of their own with a latency
//! requirement (see `runtime::use_task_queue`): client and partition work
//! on shard 0 cannot delay heartbeats past the election timeout (openraft
//! issue #1403).

use std::cell::Cell;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{BasicNode, Config, Raft, SnapshotPolicy};
use openraft_rt::{AsyncRuntime, WatchReceiver};
use thiserror::Error;

use crate::cluster::metadata::records::MetadataRecord;

use super::log_store::MetadataLogStore;
use super::network::{serve_connection, ControlHandler, ControlSlot, QuorumNetwork};
use super::runtime::{use_task_queue, GlommioRuntime};
use super::state_machine::MetadataStateMachine;
use super::transport::{self, Hello};
use super::types::{BatchApplied, MetadataBatch, MetadataRaft};

/// The quorum's timing. Defaults follow KRaft's
/// (controller.quorum.election.timeout.ms 1000, fetch/heartbeat 500 ms is
/// Kafka's fetch timeout; openraft heartbeats more often than KRaft polls).
#[derive(Debug, Clone)]
pub struct QuorumTiming {
    pub heartbeat_interval_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
}

impl Default for QuorumTiming {
    fn default() -> Self {
        QuorumTiming {
            heartbeat_interval_ms: 100,
            election_timeout_min_ms: 1000,
            election_timeout_max_ms: 2000,
        }
    }
}

/// Snapshot the image after this many log entries; the log before a snapshot
/// is purged (keeping `LOG_ENTRIES_KEPT_AFTER_SNAPSHOT` for slow followers).
/// An entry is one admin change (a topic with all its partitions), so this is
/// a few MiB of log at most.
pub const LOG_ENTRIES_PER_SNAPSHOT: u64 = 20_000;
pub const LOG_ENTRIES_KEPT_AFTER_SNAPSHOT: u64 = 1_000;

/// What a node needs to join the quorum.
#[derive(Debug, Clone)]
pub struct QuorumSettings {
    pub node_id: u64,
    /// Every voter's id and quorum address (`host:port`), this node's too
    /// if it is a voter.
    pub voters: BTreeMap<u64, String>,
    /// Where this node listens for quorum traffic.
    pub listen: SocketAddr,
    /// The quorum's own directory (`<data-dir>/__cluster_metadata-0`).
    pub directory: PathBuf,
    /// The cluster id from `meta.properties`, empty if not known yet.
    pub cluster_id: String,
    pub timing: QuorumTiming,
}

#[derive(Debug, Error)]
pub enum QuorumError {
    #[error("cannot open the metadata log in {path}: {source}")]
    Storage {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen for quorum traffic on {address}: {source}")]
    Listen {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid quorum timing: {0}")]
    Timing(String),
    #[error("the Raft node stopped: {0}")]
    Stopped(String),
}

/// Why a proposal was not applied.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ProposeError {
    /// This node is not the active controller; `leader` is, if known.
    #[error("not the active controller (leader: {leader:?})")]
    NotController { leader: Option<u64> },
    /// Not committed in time: no quorum of voters answered (a majority is
    /// down or partitioned away). Retriable; the entry may still commit
    /// later, as a Kafka request that timed out may still have been applied.
    #[error("the metadata quorum did not commit within {0:?}")]
    TimedOut(Duration),
    /// The Raft node stopped (shutdown or a storage error).
    #[error("the metadata quorum is not running: {0}")]
    Stopped(String),
}

/// Counts an open quorum connection until it is dropped.
struct ConnectionSlot(Rc<Cell<usize>>);

impl ConnectionSlot {
    fn take(open: &Rc<Cell<usize>>) -> ConnectionSlot {
        open.set(open.get() + 1);
        ConnectionSlot(Rc::clone(open))
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

/// One voter's progress (Kafka's DescribeQuorum `ReplicaState`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoterStatus {
    pub node_id: u64,
    /// The offset after its last replicated entry, if known here.
    pub log_end: Option<u64>,
    /// Committed entries it does not have yet.
    pub lag: Option<u64>,
}

/// The quorum as one node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumStatus {
    /// The active controller.
    pub leader: Option<u64>,
    /// The Raft term (Kafka's leader epoch of the metadata log).
    pub term: u64,
    /// The offset after the last committed entry.
    pub high_watermark: u64,
    pub voters: Vec<VoterStatus>,
}

/// This node's member of the quorum.
pub struct QuorumNode {
    pub node_id: u64,
    raft: Raft<MetadataRaft, MetadataStateMachine>,
    state_machine: MetadataStateMachine,
    listener: glommio::task::JoinHandle<()>,
    stopped: Cell<bool>,
    /// Answers control calls (`cluster::control`) once set.
    control: ControlSlot,
}

impl QuorumNode {
    /// Opens the log and starts the node. Must run on the executor that
    /// will own the quorum (shard 0).
    pub async fn start(settings: QuorumSettings) -> Result<Rc<QuorumNode>, QuorumError> {
        let queue = glommio::executor().create_task_queue(
            glommio::Shares::Static(1000),
            glommio::Latency::Matters(Duration::from_millis(
                settings.timing.heartbeat_interval_ms.max(1),
            )),
            "metadata-quorum",
        );
        use_task_queue(queue);
        let storage_error = |source| QuorumError::Storage {
            path: settings.directory.clone(),
            source,
        };
        let log_store = MetadataLogStore::open(&settings.directory)
            .await
            .map_err(storage_error)?;
        let state_machine = MetadataStateMachine::open(&settings.directory)
            .await
            .map_err(storage_error)?;
        let config = Config {
            cluster_name: "corelog-metadata".to_owned(),
            heartbeat_interval: settings.timing.heartbeat_interval_ms,
            election_timeout_min: settings.timing.election_timeout_min_ms,
            election_timeout_max: settings.timing.election_timeout_max_ms,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(LOG_ENTRIES_PER_SNAPSHOT),
            max_in_snapshot_log_to_keep: LOG_ENTRIES_KEPT_AFTER_SNAPSHOT,
            ..Config::default()
        }
        .validate()
        .map_err(|error| QuorumError::Timing(error.to_string()))?;
        let hello = Hello::new(settings.node_id, settings.cluster_id.clone());
        let raft = Raft::new(
            settings.node_id,
            Arc::new(config),
            QuorumNetwork::new(hello.clone()),
            log_store,
            state_machine.clone(),
        )
        .await
        .map_err(|error| QuorumError::Stopped(error.to_string()))?;

        let listener =
            transport::bind_listener(settings.listen).map_err(|source| QuorumError::Listen {
                address: settings.listen,
                source,
            })?;
        let voter_ids: Rc<[u64]> = settings.voters.keys().copied().collect();
        let control: ControlSlot = Rc::default();
        let accept_loop = {
            let control = Rc::clone(&control);
            let raft = raft.clone();
            let open_connections = Rc::new(Cell::new(0usize));
            async move {
                loop {
                    let stream = match listener.accept().await {
                        Ok(stream) => stream,
                        Err(error) => {
                            tracing::warn!(%error, "quorum listener accept failed");
                            glommio::timer::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    if open_connections.get() >= transport::MAX_QUORUM_CONNECTIONS {
                        tracing::warn!(
                            limit = transport::MAX_QUORUM_CONNECTIONS,
                            "too many quorum connections; closing a new one"
                        );
                        continue;
                    }
                    let connection = ConnectionSlot::take(&open_connections);
                    let raft = raft.clone();
                    let hello = hello.clone();
                    let voter_ids = Rc::clone(&voter_ids);
                    let control = Rc::clone(&control);
                    glommio::spawn_local_into(
                        async move {
                            let _connection = connection;
                            let admit = |peer: &Hello| {
                                transport::admit_peer(&voter_ids, &hello.cluster_id, peer)
                            };
                            serve_connection(raft, stream, &hello, admit, control).await;
                        },
                        queue,
                    )
                    .map(|task| task.detach())
                    .ok();
                }
            }
        };
        let listener = glommio::spawn_local_into(accept_loop, queue)
            .map_err(|error| QuorumError::Stopped(error.to_string()))?
            .detach();

        if settings.voters.contains_key(&settings.node_id) {
            let members: BTreeMap<u64, BasicNode> = settings
                .voters
                .iter()
                .map(|(id, address)| (*id, BasicNode::new(address)))
                .collect();
            match raft.initialize(members).await {
                Ok(()) => tracing::info!(node_id = settings.node_id, "metadata quorum initialized"),
                Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {
                    tracing::debug!("metadata quorum already initialized")
                }
                Err(error) => return Err(QuorumError::Stopped(error.to_string())),
            }
        }
        Ok(Rc::new(QuorumNode {
            node_id: settings.node_id,
            raft,
            state_machine,
            listener,
            stopped: Cell::new(false),
            control,
        }))
    }

    /// Appends `records` as one entry; answers once it is committed and
    /// applied on this node, or after `timeout`.
    pub async fn propose(
        &self,
        records: Vec<MetadataRecord>,
        timeout: Duration,
    ) -> Result<BatchApplied, ProposeError> {
        let write = self.raft.client_write(MetadataBatch { records });
        let Ok(written) = GlommioRuntime::timeout(timeout, write).await else {
            return Err(ProposeError::TimedOut(timeout));
        };
        match written {
            Ok(response) => Ok(response.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
                Err(ProposeError::NotController {
                    leader: forward.leader_id,
                })
            }
            Err(error) => Err(ProposeError::Stopped(error.to_string())),
        }
    }

    /// The active controller as this node knows it.
    pub async fn current_leader(&self) -> Option<u64> {
        self.raft.current_leader().await
    }

    /// The quorum as this node sees it, for DescribeQuorum and `corelog
    /// cluster describe`. Only the leader knows each voter's progress; a
    /// follower reports its own log end and leaves the others unknown, as
    /// Kafka's DescribeQuorum answers only from the leader.
    pub fn status(&self) -> QuorumStatus {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow_watched();
        let end = |log_id: Option<&super::types::LogId>| log_id.map(|log_id| log_id.index + 1);
        let high_watermark = end(metrics.cluster_committed.as_ref()).unwrap_or(0);
        let membership = metrics.membership_config.membership();
        let voters = membership
            .voter_ids()
            .map(|node_id| {
                let log_end = match &metrics.replication {
                    Some(replication) => replication
                        .get(&node_id)
                        .and_then(|matched| end(matched.as_ref())),
                    None if node_id == self.node_id => {
                        metrics.last_log_index.map(|index| index + 1)
                    }
                    None => None,
                };
                VoterStatus {
                    node_id,
                    log_end,
                    lag: log_end.map(|log_end| high_watermark.saturating_sub(log_end)),
                }
            })
            .collect();
        QuorumStatus {
            leader: metrics.current_leader,
            term: metrics.current_term,
            high_watermark,
            voters,
        }
    }

    /// Lets the listener answer control calls (brokers' registrations,
    /// heartbeats and forwarded admin requests) with `handler`.
    pub fn set_control_handler(&self, handler: ControlHandler) {
        *self.control.borrow_mut() = Some(handler);
    }

    /// The openraft node, for metrics (`raft().metrics()`).
    pub fn raft(&self) -> &Raft<MetadataRaft, MetadataStateMachine> {
        &self.raft
    }

    /// The replayed metadata.
    pub fn state_machine(&self) -> &MetadataStateMachine {
        &self.state_machine
    }

    /// Stops the Raft node and the listener (connections in flight end when
    /// their peers notice).
    /// Shut down, or stopped by a storage error.
    pub fn is_stopped(&self) -> bool {
        self.stopped.get() || self.raft.metrics().borrow_watched().running_state.is_err()
    }

    pub async fn shutdown(&self) {
        self.stopped.set(true);
        if let Err(error) = self.raft.shutdown().await {
            tracing::warn!(%error, "metadata quorum did not stop cleanly");
        }
        self.listener.cancel();
    }
}
