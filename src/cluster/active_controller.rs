//! The active controller: the quorum leader's decisions, on shard 0 of every
//! voter node (only the node that leads the quorum acts; the others answer
//! NOT_CONTROLLER with the leader's id).
//!
//! Each call takes one decision at a time: read the replayed image, let the
//! pure `cluster::metadata::Controller` turn the request into records,
//! propose them, and answer once they are committed and applied here. The
//! next decision starts only after that, so it sees the previous one (two
//! creates of one name cannot both pass). A decision that times out (no
//! majority) answers REQUEST_TIMED_OUT, which clients retry.
//!
//! Broker liveness is soft state of the leader, as in Kafka: the time of each
//! broker's last heartbeat. A node that becomes leader starts every broker's
//! session afresh, so brokers are not fenced for the time it took to elect
//! it. A timer fences brokers whose session ran out.
//!
//! On its first leadership the controller writes the cluster id (this node's
//! `meta.properties` id) as the log's first record; after that the log's id
//! is the cluster's, and brokers of another cluster are refused.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use openraft_rt::{AsyncRuntime, WatchReceiver};
use thiserror::Error;
use uuid::Uuid;

use super::control::{ControlOutcome, QuorumReport};
use super::metadata::leader_elections::{ElectionType, TopicElections};
use super::metadata::reassignments::{PartitionTargetAsked, TopicReassignments};
use super::metadata::{
    bootstrap_records, AlterPartitionRequest, BrokerRegistrationRequest, Controller,
    ControllerError, ControllerSettings, CreateTopic, MetadataRecord, PartitionState,
};
use super::quorum::node::{ProposeError, QuorumNode};
use super::quorum::runtime::GlommioRuntime;
use crate::protocol::errors::KafkaError;
use crate::runtime::clock::now_ms;

/// How long a broker-only node's image fetch waits for a change.
pub const IMAGE_POLL_WAIT: Duration = Duration::from_millis(500);

/// Why a controller call did not happen.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ControllerCallError {
    #[error("this node is not the active controller (the quorum leader is {leader:?})")]
    NotController { leader: Option<u64> },
    #[error(transparent)]
    Refused(#[from] ControllerError),
    #[error("the metadata quorum did not commit within {0:?}")]
    TimedOut(Duration),
    #[error("the metadata quorum is not running: {0}")]
    Stopped(String),
}

impl ControllerCallError {
    /// The code the Java broker answers in the same situation.
    pub fn kafka_error(&self) -> KafkaError {
        match self {
            ControllerCallError::NotController { .. } => KafkaError::NotController,
            ControllerCallError::Refused(error) => error.kafka_error(),
            ControllerCallError::TimedOut(_) => KafkaError::RequestTimedOut,
            ControllerCallError::Stopped(_) => KafkaError::NotController,
        }
    }
}

impl From<ProposeError> for ControllerCallError {
    fn from(error: ProposeError) -> Self {
        match error {
            ProposeError::NotController { leader } => ControllerCallError::NotController { leader },
            ProposeError::TimedOut(timeout) => ControllerCallError::TimedOut(timeout),
            ProposeError::Stopped(reason) => ControllerCallError::Stopped(reason),
        }
    }
}

/// Broker session settings (Kafka's broker.session.timeout.ms and
/// broker.heartbeat.interval.ms) and how long a decision may wait for the
/// quorum.
#[derive(Debug, Clone)]
pub struct ControllerTiming {
    pub broker_session_timeout_ms: i64,
    /// How often the leader looks for expired sessions.
    pub session_check_interval: Duration,
    pub propose_timeout: Duration,
    /// How often leaderships move back to preferred replicas (Kafka's
    /// leader.imbalance.check.interval.seconds); zero turns it off.
    pub leader_rebalance_interval: Duration,
}

impl Default for ControllerTiming {
    fn default() -> Self {
        ControllerTiming {
            broker_session_timeout_ms: 9_000,
            session_check_interval: Duration::from_millis(500),
            propose_timeout: Duration::from_secs(5),
            leader_rebalance_interval: Duration::from_secs(300),
        }
    }
}

pub struct ActiveController {
    quorum: Rc<QuorumNode>,
    settings: ControllerSettings,
    timing: ControllerTiming,
    /// This node's cluster id, written as the log's first record by the
    /// first leader.
    cluster_id: String,
    /// Last heartbeat per broker, kept by the leader only.
    last_heartbeat_ms: RefCell<BTreeMap<i32, i64>>,
    /// The term whose sessions were started afresh (see the header).
    seeded_term: Cell<Option<u64>>,
    /// One decision at a time.
    decisions: glommio::sync::Semaphore,
}

impl ActiveController {
    pub fn new(
        quorum: Rc<QuorumNode>,
        settings: ControllerSettings,
        timing: ControllerTiming,
        cluster_id: String,
    ) -> Rc<ActiveController> {
        Rc::new(ActiveController {
            quorum,
            settings,
            timing,
            cluster_id,
            last_heartbeat_ms: RefCell::new(BTreeMap::new()),
            seeded_term: Cell::new(None),
            decisions: glommio::sync::Semaphore::new(1),
        })
    }

    /// Starts the timer that fences brokers whose session ran out (on the
    /// leader; followers' timers do nothing).
    pub fn spawn_session_timer(self: &Rc<Self>) {
        let controller = Rc::clone(self);
        glommio::spawn_local(async move {
            let mut last_rebalance = std::time::Instant::now();
            loop {
                glommio::timer::sleep(controller.timing.session_check_interval).await;
                if controller.quorum.is_stopped() {
                    return;
                }
                if let Err(error) = controller.expire_sessions(now_ms()).await {
                    if !matches!(error, ControllerCallError::NotController { .. }) {
                        tracing::warn!(%error, "broker session check failed");
                    }
                }
                let rebalance_every = controller.timing.leader_rebalance_interval;
                if !rebalance_every.is_zero() && last_rebalance.elapsed() >= rebalance_every {
                    last_rebalance = std::time::Instant::now();
                    if let Err(error) = controller.elect_preferred_leaders().await {
                        if !matches!(error, ControllerCallError::NotController { .. }) {
                            tracing::warn!(%error, "preferred leader election failed");
                        }
                    }
                }
            }
        })
        .detach();
    }

    /// The leader's term if this node leads the quorum now.
    fn leading_term(&self) -> Result<u64, ControllerCallError> {
        let metrics = self.quorum.raft().metrics();
        let metrics = metrics.borrow_watched();
        if metrics.current_leader == Some(self.quorum.node_id) {
            Ok(metrics.current_term)
        } else {
            Err(ControllerCallError::NotController {
                leader: metrics.current_leader,
            })
        }
    }

    /// Runs one decision against the current image and proposes its records.
    async fn decide<T>(
        &self,
        now_ms: i64,
        decide: impl FnOnce(
            &Controller<'_>,
            &BTreeMap<i32, i64>,
        ) -> Result<(Vec<MetadataRecord>, T), ControllerError>,
    ) -> Result<T, ControllerCallError> {
        let _permit = self
            .decisions
            .acquire_permit(1)
            .await
            .map_err(|error| ControllerCallError::Stopped(error.to_string()))?;
        self.take_over(now_ms).await?;
        self.wait_for_applied_log().await?;
        let decided = {
            let heartbeats = self.last_heartbeat_ms.borrow();
            self.quorum
                .state_machine()
                .read(|image| decide(&Controller::new(image, self.settings), &heartbeats))
        };
        let (records, value) = decided?;
        if !records.is_empty() {
            self.quorum
                .propose(records, self.timing.propose_timeout)
                .await?;
        }
        Ok(value)
    }

    /// What a new leader does before its first decision: start every
    /// broker's session afresh, and write the cluster id into a new log.
    async fn take_over(&self, now_ms: i64) -> Result<(), ControllerCallError> {
        let term = self.leading_term()?;
        if self.seeded_term.get() == Some(term) {
            return Ok(());
        }
        self.wait_for_own_entry(term).await?;
        let (brokers, has_cluster_id) = self.quorum.state_machine().read(|image| {
            let brokers: Vec<i32> = image.brokers().map(|broker| broker.broker_id()).collect();
            (brokers, image.cluster_id().is_some())
        });
        if !has_cluster_id {
            self.quorum
                .propose(
                    bootstrap_records(&self.cluster_id),
                    self.timing.propose_timeout,
                )
                .await?;
            tracing::info!(cluster_id = %self.cluster_id, "new metadata log: cluster id written");
        }
        {
            let mut heartbeats = self.last_heartbeat_ms.borrow_mut();
            heartbeats.clear();
            heartbeats.extend(brokers.into_iter().map(|broker_id| (broker_id, now_ms)));
        }
        self.seeded_term.set(Some(term));
        tracing::info!(node_id = self.quorum.node_id, term, "active controller");
        Ok(())
    }

    /// Waits until this leader applied an entry of its own term (the blank
    /// entry openraft appends on election): only then does the image hold
    /// everything earlier leaders committed. A node that restarts still
    /// believing it leads (its own committed vote) must not decide on its
    /// stale image; if it is not really the leader, this times out and the
    /// caller retries elsewhere.
    async fn wait_for_own_entry(&self, term: u64) -> Result<(), ControllerCallError> {
        let mut metrics = self.quorum.raft().metrics();
        let applied_own_term =
            |metrics: &openraft::RaftMetrics<super::quorum::types::MetadataRaft>| {
                metrics
                    .last_applied
                    .as_ref()
                    .is_some_and(|applied| applied.leader_id.term >= term)
                    || metrics.current_term != term
            };
        let wait = async {
            while !applied_own_term(&metrics.borrow_watched()) {
                if metrics.changed().await.is_err() {
                    break;
                }
            }
        };
        let waited = GlommioRuntime::timeout(self.timing.propose_timeout, wait).await;
        if waited.is_err() {
            return Err(ControllerCallError::TimedOut(self.timing.propose_timeout));
        }
        // Leadership may have moved while waiting.
        if self.leading_term()? != term {
            return Err(ControllerCallError::NotController {
                leader: self.quorum.raft().metrics().borrow_watched().current_leader,
            });
        }
        Ok(())
    }

    /// Waits until every entry in this leader's log is applied, so a decision
    /// sees all of them. An entry that never commits (the leader lost its
    /// majority and its proposal timed out) makes later decisions time out
    /// too, instead of stacking records decided on an image that lacks it;
    /// they would all commit if the majority came back while this node still
    /// led (Kafka's controller resigns when a write fails for the same reason).
    async fn wait_for_applied_log(&self) -> Result<(), ControllerCallError> {
        let mut metrics = self.quorum.raft().metrics();
        let applied_all = |metrics: &openraft::RaftMetrics<super::quorum::types::MetadataRaft>| {
            metrics.last_applied.as_ref().map(|applied| applied.index) >= metrics.last_log_index
        };
        let wait = async {
            while !applied_all(&metrics.borrow_watched()) {
                if metrics.changed().await.is_err() {
                    break;
                }
            }
        };
        GlommioRuntime::timeout(self.timing.propose_timeout, wait)
            .await
            .map_err(|_| ControllerCallError::TimedOut(self.timing.propose_timeout))
    }

    /// CreateTopics for one topic; answers its new id. `validate_only`
    /// decides and writes nothing (the id is then one it would have had).
    pub async fn create_topic(
        &self,
        request: &CreateTopic,
        validate_only: bool,
    ) -> Result<Uuid, ControllerCallError> {
        let topic_id = crate::metadata::ids::random_uuid();
        let rng: u64 = rand::random();
        self.decide(now_ms(), |controller, _| {
            let records = controller.create_topic(request, topic_id, rng)?;
            Ok((if validate_only { Vec::new() } else { records }, topic_id))
        })
        .await
    }

    pub async fn delete_topic(&self, name: &str) -> Result<(), ControllerCallError> {
        self.decide(now_ms(), |controller, _| {
            Ok((controller.delete_topic(name)?, ()))
        })
        .await
    }

    /// CreatePartitions: grows `name` to `count` partitions (with these
    /// replicas for the new ones if given); `validate_only` writes nothing.
    pub async fn create_partitions(
        &self,
        name: &str,
        count: i32,
        assignments: Option<&[Vec<i32>]>,
        validate_only: bool,
    ) -> Result<(), ControllerCallError> {
        let rng: u64 = rand::random();
        self.decide(now_ms(), |controller, _| {
            let records = controller.create_partitions(name, count, assignments, rng)?;
            Ok((if validate_only { Vec::new() } else { records }, ()))
        })
        .await
    }

    /// AlterPartition (KIP-497): a partition's leader sets its ISR; answers
    /// the partition's state once the change is applied here.
    pub async fn alter_partition(
        &self,
        request: &AlterPartitionRequest,
    ) -> Result<PartitionState, ControllerCallError> {
        self.decide(now_ms(), |controller, _| {
            let altered = controller.alter_partition(request)?;
            Ok((altered.records, altered.state))
        })
        .await
    }

    /// IncrementalAlterConfigs for a topic (`None` removes an override).
    pub async fn alter_topic_configs(
        &self,
        name: &str,
        changes: &[(String, Option<String>)],
    ) -> Result<(), ControllerCallError> {
        self.decide(now_ms(), |controller, _| {
            Ok((controller.alter_topic_configs(name, changes)?, ()))
        })
        .await
    }

    /// BrokerRegistration: answers the broker epoch.
    pub async fn register_broker(
        &self,
        request: &BrokerRegistrationRequest,
    ) -> Result<i64, ControllerCallError> {
        let now = now_ms();
        let session_timeout_ms = self.timing.broker_session_timeout_ms;
        let epoch = self
            .decide(now, |controller, heartbeats| {
                let registered =
                    controller.register_broker(request, now, session_timeout_ms, heartbeats)?;
                Ok((registered.records, registered.broker_epoch))
            })
            .await?;
        self.last_heartbeat_ms
            .borrow_mut()
            .insert(request.broker_id, now);
        Ok(epoch)
    }

    /// BrokerHeartbeat: renews the session and unfences a fenced broker.
    pub async fn broker_heartbeat(
        &self,
        broker_id: i32,
        broker_epoch: i64,
    ) -> Result<(), ControllerCallError> {
        let now = now_ms();
        self.decide(now, |controller, _| {
            Ok((controller.broker_heartbeat(broker_id, broker_epoch)?, ()))
        })
        .await?;
        self.last_heartbeat_ms.borrow_mut().insert(broker_id, now);
        Ok(())
    }

    /// Controlled shutdown: fences the broker and moves its leaderships away.
    pub async fn controlled_shutdown(
        &self,
        broker_id: i32,
        broker_epoch: i64,
    ) -> Result<(), ControllerCallError> {
        self.decide(now_ms(), |controller, _| {
            Ok((controller.controlled_shutdown(broker_id, broker_epoch)?, ()))
        })
        .await
    }

    /// AllocateProducerIds: `[first, first + size)`, unique in the cluster.
    pub async fn allocate_producer_ids(
        &self,
        broker_id: i32,
        broker_epoch: i64,
    ) -> Result<(i64, i64), ControllerCallError> {
        self.decide(now_ms(), |controller, _| {
            let block = controller.allocate_producer_ids(broker_id, broker_epoch)?;
            Ok((block.records, (block.first_producer_id, block.size)))
        })
        .await
    }

    /// The quorum's state for DescribeQuorum, from the leader only (only it
    /// knows each voter's progress, as in KRaft); NOT_CONTROLLER elsewhere.
    pub fn quorum_report(&self) -> Result<QuorumReport, ControllerCallError> {
        let status = self.quorum.status();
        let leader = status.leader;
        QuorumReport::from_leader_status(self.quorum.node_id, status)
            .ok_or(ControllerCallError::NotController { leader })
    }

    /// The offset of the last record in this node's image (entries
    /// without records do not count, so broker-only nodes know it too).
    pub fn image_offset(&self) -> Option<u64> {
        self.quorum
            .state_machine()
            .read(|image| image.last_offset())
    }

    /// The image as records if this node applied past `known`, waiting up
    /// to `IMAGE_POLL_WAIT` for a change first (a broker-only node's long
    /// poll; any voter answers, leader or not).
    pub async fn image_since(&self, known: Option<u64>) -> ControlOutcome {
        let mut applied = self.quorum.state_machine().view().applied_index_watch();
        // The applied index counts entries without records too; the image's
        // own offset is what the caller knows.
        let state_machine = self.quorum.state_machine();
        let newer = |_: &Option<u64>| state_machine.read(|image| image.last_offset()) > known;
        let _ = GlommioRuntime::timeout(IMAGE_POLL_WAIT, applied.wait_for(newer)).await;
        self.quorum
            .state_machine()
            .read(|image| match image.last_offset() {
                Some(offset) if Some(offset) > known => ControlOutcome::Image {
                    applied: offset,
                    records: image.to_records(),
                },
                _ => ControlOutcome::ImageUnchanged,
            })
    }

    /// Moves leaderships back to preferred replicas that are in sync
    /// (Kafka's auto.leader.rebalance.enable); answers how many moved.
    pub async fn elect_preferred_leaders(&self) -> Result<usize, ControllerCallError> {
        let moved = self
            .decide(now_ms(), |controller, _| {
                let records = controller.preferred_elections();
                let count = records.len();
                Ok((records, count))
            })
            .await?;
        if moved > 0 {
            tracing::info!(moved, "leaderships moved back to preferred replicas");
        }
        Ok(moved)
    }

    /// ElectLeaders: elects and answers each partition's result.
    pub async fn elect_leaders(
        &self,
        election: ElectionType,
        partitions: Option<&[(String, Vec<i32>)]>,
    ) -> Result<Vec<TopicElections>, ControllerCallError> {
        let topics = self
            .decide(now_ms(), |controller, _| {
                let elected = controller.elect_leaders(election, partitions);
                Ok((elected.records, elected.topics))
            })
            .await?;
        let moved = topics
            .iter()
            .flat_map(|topic| &topic.partitions)
            .filter(|answer| answer.result.is_ok())
            .count();
        if moved > 0 {
            tracing::info!(moved, ?election, "leaders elected on request");
        }
        Ok(topics)
    }

    /// AlterPartitionReassignments: starts, replaces or cancels each
    /// partition's reassignment; answers each partition's result.
    pub async fn alter_partition_reassignments(
        &self,
        topics: &[(String, Vec<PartitionTargetAsked>)],
        allow_replication_factor_change: bool,
    ) -> Result<Vec<TopicReassignments>, ControllerCallError> {
        let topics = self
            .decide(now_ms(), |controller, _| {
                let decided = controller
                    .alter_partition_reassignments(topics, allow_replication_factor_change);
                Ok((decided.records, decided.topics))
            })
            .await?;
        tracing::info!(?topics, "partition reassignments altered");
        Ok(topics)
    }

    /// Fences the brokers whose session ran out; answers how many.
    pub async fn expire_sessions(&self, now_ms: i64) -> Result<usize, ControllerCallError> {
        let session_timeout_ms = self.timing.broker_session_timeout_ms;
        let (fenced, partitions_changed) = self
            .decide(now_ms, |controller, heartbeats| {
                let records = controller.expire_sessions(now_ms, session_timeout_ms, heartbeats);
                let fenced = records
                    .iter()
                    .filter(|record| matches!(record, MetadataRecord::BrokerFenced { .. }))
                    .count();
                let partitions_changed = records.len() - fenced;
                Ok((records, (fenced, partitions_changed)))
            })
            .await?;
        if fenced > 0 {
            tracing::warn!(
                fenced,
                partitions_changed,
                "fenced brokers whose session expired"
            );
        }
        Ok(fenced)
    }
}
