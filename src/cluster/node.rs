//! This node's place in the cluster, on shard 0: its member of the metadata
//! quorum and its active controller when it is a voter, its copy of the
//! metadata image otherwise (fetched from the voters), its broker
//! registration and heartbeats, and the one way to ask the active
//! controller anything (`call`), wherever it runs.
//!
//! `call` runs a control request on this node's controller when it leads
//! the quorum, and otherwise sends it to the leader (trying the voters in
//! turn while the leader is unknown) until it is answered or
//! `CALL_TIMEOUT` passes. Every answer carries the controller's metadata
//! offset after the decision; callers wait until this node's image has
//! reached it (`wait_for_offset`) before they answer their client, so a
//! Metadata request right after a CreateTopics shows the topic.
//!
//! The "metadata offset" here is the image's last record offset
//! (`MetadataImage::last_offset`), which voters and broker-only nodes both
//! know.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use futures::FutureExt;
use openraft_rt::{AsyncRuntime, WatchReceiver};
use thiserror::Error;
use tokio::sync::watch;

use super::active_controller::{ActiveController, ControllerTiming};
use super::control::{
    self, ControlClient, ControlError, ControlOutcome, ControlRequest, ControlResponse,
    ControlResult, KIND_CONTROL_REQUEST, KIND_CONTROL_RESPONSE,
};
use super::metadata::frame;
use super::metadata::image::MetadataImage;
use super::metadata::ControllerSettings;
use super::node_identity::{self, MetaProperties};
use super::quorum::node::{QuorumError, QuorumNode, QuorumSettings, QuorumTiming};
use super::quorum::runtime::GlommioRuntime;
use super::quorum::transport::Hello;
use crate::config::{BrokerConfig, ClusterSettings};
use crate::metadata::catalog::{Catalog, NO_BROKER};
use crate::protocol::errors::KafkaError;
use crate::runtime::durable_file;

/// The quorum's directory inside the data directory (Kafka's name).
pub const METADATA_DIRECTORY: &str = "__cluster_metadata-0";

/// How long `call` keeps trying to reach the active controller.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one attempt may take on the wire.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(7);
/// Pause before trying again after a failed attempt.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// How long start-up waits for the quorum and this node's registration.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(120);

/// Why this node cannot take part in the cluster.
#[derive(Debug, Error)]
pub enum JoinError {
    #[error(transparent)]
    Quorum(#[from] QuorumError),
    #[error(transparent)]
    Identity(#[from] node_identity::IdentityError),
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("node {node_id} could not register with the cluster: {reason}")]
    Registration { node_id: i32, reason: String },
    #[error("no metadata quorum reached within {0:?}: is a majority of --controller-quorum-voters running?")]
    NoQuorum(Duration),
    #[error("this node's metadata image did not reach the controller's offset {offset} within {timeout:?}")]
    NotCaughtUp { offset: u64, timeout: Duration },
}

/// This node's membership (see the module header).
pub struct ClusterNode {
    pub node_id: i32,
    settings: ClusterSettings,
    data_dir: PathBuf,
    /// The voter side, on voters only.
    quorum: Option<Rc<QuorumNode>>,
    controller: Option<Rc<ActiveController>>,
    /// A broker-only node's copy of the image and its offset.
    fetched_image: RefCell<MetadataImage>,
    /// Bumped whenever the image or the known controller changes.
    changes: watch::Sender<u64>,
    hello: Rc<Hello>,
    clients: RefCell<BTreeMap<u64, Rc<ControlClient>>>,
    /// The controller as last heard of (broker-only nodes learn it from
    /// NOT_CONTROLLER answers).
    leader_hint: Cell<Option<u64>>,
    broker_epoch: Cell<Option<i64>>,
    /// The controller's image offset when it answered this node's first
    /// heartbeat: once this node's image reaches it, the image is complete
    /// (every topic deleted or moved while the node was down is gone from
    /// it), as a Kafka broker's first published image is caught up.
    catch_up_offset: Cell<Option<u64>>,
    /// Set by a controlled shutdown: heartbeats stop (one would unfence
    /// the broker again).
    shutting_down: Cell<bool>,
    incarnation_id: [u8; 16],
    advertised_host: String,
    advertised_port: u16,
    rack: Option<String>,
}

impl ClusterNode {
    /// Joins the cluster: starts the quorum member (voters), learns the
    /// cluster id, registers this broker and starts its heartbeats. Returns
    /// once the broker is registered (fenced until its first heartbeat).
    pub async fn join(config: &BrokerConfig) -> Result<Rc<ClusterNode>, JoinError> {
        let settings = config
            .cluster
            .clone()
            .expect("ClusterNode::join needs cluster settings");
        let node_id = config.node_id;
        let stored = node_identity::load_existing(
            &config.data_dir,
            node_id,
            durable_file::replace_before_executors,
        )?;
        // A node that has never joined proposes a new id; the first leader's
        // proposal becomes the cluster's.
        let candidate_id = stored
            .as_ref()
            .map(|stored| stored.cluster_id.clone())
            .unwrap_or_else(node_identity::new_cluster_id);
        let hello = Rc::new(Hello::new(
            node_id as u64,
            stored
                .as_ref()
                .map(|stored| stored.cluster_id.clone())
                .unwrap_or_default(),
        ));
        let (quorum, controller) = match settings.controller_listen {
            Some(listen) => {
                let quorum = QuorumNode::start(QuorumSettings {
                    node_id: node_id as u64,
                    voters: settings.voters.clone(),
                    listen,
                    directory: config.data_dir.join(METADATA_DIRECTORY),
                    cluster_id: hello.cluster_id.clone(),
                    timing: QuorumTiming::default(),
                })
                .await?;
                let controller = ActiveController::new(
                    Rc::clone(&quorum),
                    ControllerSettings {
                        default_partitions: config.default_partitions,
                        default_replication_factor: config.default_replication_factor,
                        max_partitions_per_node: config.max_partitions_per_node,
                    },
                    ControllerTiming {
                        broker_session_timeout_ms: settings.broker_session_timeout_ms as i64,
                        leader_rebalance_interval: Duration::from_millis(
                            settings.leader_imbalance_check_interval_ms,
                        ),
                        ..ControllerTiming::default()
                    },
                    candidate_id,
                );
                (Some(quorum), Some(controller))
            }
            None => (None, None),
        };
        let (changes, _) = watch::channel(0);
        let node = Rc::new(ClusterNode {
            node_id,
            settings,
            data_dir: config.data_dir.clone(),
            quorum,
            controller,
            fetched_image: RefCell::new(MetadataImage::default()),
            changes,
            hello,
            clients: RefCell::new(BTreeMap::new()),
            leader_hint: Cell::new(None),
            broker_epoch: Cell::new(None),
            catch_up_offset: Cell::new(None),
            shutting_down: Cell::new(false),
            incarnation_id: *uuid::Uuid::new_v4().as_bytes(),
            advertised_host: config.advertised_host.clone(),
            advertised_port: config.advertised_port,
            rack: config.rack.clone(),
        });
        if let (Some(quorum), Some(controller)) = (&node.quorum, &node.controller) {
            quorum.set_control_handler(control_handler(Rc::clone(controller)));
            controller.spawn_session_timer();
            node.spawn_change_forwarder(Rc::clone(quorum));
        } else {
            node.spawn_image_fetcher();
        }
        node.learn_cluster_id(stored).await?;
        node.register().await?;
        node.wait_until_caught_up(JOIN_TIMEOUT).await?;
        node.spawn_heartbeats();
        Ok(node)
    }

    /// Whether this node's image has reached the controller's image as of
    /// its first heartbeat (see `catch_up_offset`). Until then the image may
    /// still name topics deleted, or assignments changed, while the node
    /// was away: nothing may be deleted or set aside on its word.
    pub fn has_caught_up(&self) -> bool {
        self.catch_up_offset
            .get()
            .is_some_and(|offset| self.image_offset() >= Some(offset))
    }

    async fn wait_until_caught_up(&self, timeout: Duration) -> Result<(), JoinError> {
        // Registration records it with its first answered heartbeat.
        let Some(offset) = self.catch_up_offset.get() else {
            return Err(JoinError::NotCaughtUp { offset: 0, timeout });
        };
        let mut changes = self.changes();
        let caught_up =
            GlommioRuntime::timeout(timeout, changes.wait_for(|_| self.has_caught_up()))
                .await
                .is_ok_and(|changed| changed.is_ok());
        if caught_up {
            Ok(())
        } else {
            Err(JoinError::NotCaughtUp { offset, timeout })
        }
    }

    /// Whether this node runs a quorum member.
    pub fn is_voter(&self) -> bool {
        self.quorum.is_some()
    }

    /// The quorum member, on voters.
    pub fn quorum(&self) -> Option<&Rc<QuorumNode>> {
        self.quorum.as_ref()
    }

    /// The cluster id (known once `join` returned).
    pub fn cluster_id(&self) -> String {
        self.read_image(|image| image.cluster_id().map(str::to_owned))
            .unwrap_or_default()
    }

    /// The broker epoch of this node's registration.
    pub fn broker_epoch(&self) -> Option<i64> {
        self.broker_epoch.get()
    }

    /// Runs `read` against this node's image.
    pub fn read_image<T>(&self, read: impl FnOnce(&MetadataImage) -> T) -> T {
        match &self.quorum {
            Some(quorum) => quorum.state_machine().read(read),
            None => read(&self.fetched_image.borrow()),
        }
    }

    /// The image's offset (see the module header).
    pub fn image_offset(&self) -> Option<u64> {
        self.read_image(|image| image.last_offset())
    }

    /// The active controller as this node knows it.
    pub fn controller_id(&self) -> Option<u64> {
        match &self.quorum {
            Some(quorum) => quorum.raft().metrics().borrow_watched().current_leader,
            None => self.leader_hint.get(),
        }
    }

    /// A watch that changes whenever the image or the controller does.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The image as the shards' `Catalog`, at `version`. The controller
    /// clients are told of is the active controller while it is a live
    /// broker; otherwise (a broker-only node's view, or a leader that has
    /// not registered yet) the lowest live broker, which forwards admin
    /// requests, as KRaft brokers report a live broker too.
    pub fn catalog(&self, version: u64, topic_defaults: &BTreeMap<String, String>) -> Catalog {
        let leader = self.controller_id().and_then(|id| i32::try_from(id).ok());
        self.read_image(|image| {
            let controller_id = leader
                .filter(|leader| image.is_live(*leader))
                .or_else(|| image.live_broker_ids().first().copied())
                .unwrap_or(NO_BROKER);
            image.to_catalog_with(version, controller_id, topic_defaults)
        })
    }

    /// Waits (bounded by `timeout`) until this node's image has reached
    /// `offset`; false on timeout.
    pub async fn wait_for_offset(&self, offset: Option<u64>, timeout: Duration) -> bool {
        let mut changes = self.changes();
        let reached = |_: &u64| self.image_offset() >= offset;
        let reached_in_time = GlommioRuntime::timeout(timeout, changes.wait_for(reached))
            .await
            .is_ok();
        reached_in_time
    }

    /// Asks the active controller, wherever it is (see the module header).
    /// Answers the outcome and the controller's metadata offset after it.
    pub async fn call(
        &self,
        request: ControlRequest,
    ) -> Result<(ControlOutcome, Option<u64>), ControlError> {
        let deadline = std::time::Instant::now() + CALL_TIMEOUT;
        let mut last_error = ControlError::NotController { leader: None };
        let mut next_voter = 0usize;
        loop {
            let response = match self.route() {
                Route::Local(controller) => {
                    Some(control::answer(&controller, request.clone()).await)
                }
                Route::Remote(voter) => {
                    let response = self.ask_leader(voter, &request).await;
                    if response.is_none() {
                        self.leader_hint.set(None);
                    }
                    response
                }
                Route::Unknown => {
                    // Try the voters in turn: one of them leads or knows who does.
                    let voter = self.voter_in_turn(next_voter);
                    next_voter += 1;
                    if Some(voter) == self.quorum.as_ref().map(|q| q.node_id) {
                        None
                    } else {
                        self.ask(voter, &request).await
                    }
                }
            };
            if let Some(ControlResponse { result, applied }) = response {
                match result {
                    ControlResult::Ok(outcome) => return Ok((outcome, applied)),
                    ControlResult::Failed(failure) => match ControlError::from(failure) {
                        ControlError::NotController { leader } => {
                            if leader != self.leader_hint.get() && self.quorum.is_none() {
                                self.changes.send_modify(|count| *count += 1);
                            }
                            self.leader_hint.set(leader);
                            last_error = ControlError::NotController { leader };
                        }
                        ControlError::Stopped(reason) => {
                            last_error = ControlError::Stopped(reason);
                            self.leader_hint.set(None);
                        }
                        refused @ (ControlError::Refused { .. } | ControlError::TimedOut(_)) => {
                            return Err(refused)
                        }
                    },
                }
            }
            if std::time::Instant::now() >= deadline {
                return Err(match last_error {
                    ControlError::NotController { .. } => ControlError::TimedOut(CALL_TIMEOUT),
                    other => other,
                });
            }
            glommio::timer::sleep(RETRY_PAUSE).await;
        }
    }

    /// Where the next attempt goes.
    fn route(&self) -> Route {
        if let (Some(quorum), Some(controller)) = (&self.quorum, &self.controller) {
            return match quorum.raft().metrics().borrow_watched().current_leader {
                Some(leader) if leader == quorum.node_id => Route::Local(Rc::clone(controller)),
                Some(leader) => Route::Remote(leader),
                None => Route::Unknown,
            };
        }
        match self.leader_hint.get() {
            Some(leader) => Route::Remote(leader),
            None => Route::Unknown,
        }
    }

    /// One attempt at `voter`; `None` when it could not be reached.
    async fn ask(&self, voter: u64, request: &ControlRequest) -> Option<ControlResponse> {
        match self.client(voter).call(request, ATTEMPT_TIMEOUT).await {
            Ok(response) => Some(response),
            Err(error) => {
                tracing::debug!(voter, %error, "controller call failed; trying again");
                None
            }
        }
    }

    /// [`ClusterNode::ask`] the quorum leader `voter`, given up as soon as this voter's
    /// quorum member knows another node leads. A call in flight to a controller that was
    /// cut off or hangs would otherwise wait out the whole `ATTEMPT_TIMEOUT`, longer than a
    /// short broker session: the new controller starts every session afresh when it takes
    /// over, and would fence every broker whose heartbeat is stuck there, itself included,
    /// taking every partition offline (Kafka's NodeToControllerChannelManager also drops
    /// its connection and resends when the controller changes). Giving up early is no new
    /// outcome for the request: it is what a timed-out attempt already leaves. Broker-only
    /// nodes learn of a new leader only from answers and make the plain attempt.
    async fn ask_leader(&self, voter: u64, request: &ControlRequest) -> Option<ControlResponse> {
        let Some(quorum) = &self.quorum else {
            return self.ask(voter, request).await;
        };
        let mut metrics = quorum.raft().metrics();
        let another_leads = async move {
            loop {
                let leader = metrics.borrow_watched().current_leader;
                if leader.is_some_and(|leader| leader != voter) {
                    return leader;
                }
                if metrics.changed().await.is_err() {
                    // The quorum member stopped: only the attempt ends this call.
                    futures::future::pending::<()>().await;
                }
            }
        };
        let attempt = self.ask(voter, request);
        match futures::future::select(Box::pin(attempt), Box::pin(another_leads)).await {
            futures::future::Either::Left((response, _)) => response,
            futures::future::Either::Right((leader, _)) => {
                tracing::debug!(
                    voter,
                    ?leader,
                    "the controller changed during a call; asking the new one"
                );
                None
            }
        }
    }

    /// The voter to try at `turn` when no leader is known (round robin).
    fn voter_in_turn(&self, turn: usize) -> u64 {
        let voters = &self.settings.voters;
        // Never empty: `parse_quorum_voters` refuses an empty list.
        voters
            .keys()
            .nth(turn % voters.len().max(1))
            .copied()
            .unwrap_or_default()
    }

    fn client(&self, voter: u64) -> Rc<ControlClient> {
        let mut clients = self.clients.borrow_mut();
        let address = self
            .settings
            .voters
            .get(&voter)
            .cloned()
            .unwrap_or_default();
        Rc::clone(
            clients
                .entry(voter)
                .or_insert_with(|| Rc::new(ControlClient::new(address, Rc::clone(&self.hello)))),
        )
    }

    /// Waits for the cluster id in the image (the first leader writes it)
    /// and checks or records it in `meta.properties`.
    async fn learn_cluster_id(&self, stored: Option<MetaProperties>) -> Result<(), JoinError> {
        let deadline = std::time::Instant::now() + JOIN_TIMEOUT;
        let cluster_id = loop {
            if let Some(id) = self.read_image(|image| image.cluster_id().map(str::to_owned)) {
                break id;
            }
            // The first leader writes it when it takes over (its session
            // timer makes a decision every half second).
            if std::time::Instant::now() >= deadline {
                return Err(JoinError::NoQuorum(JOIN_TIMEOUT));
            }
            let mut changes = self.changes();
            let _ = GlommioRuntime::timeout(Duration::from_millis(200), changes.changed()).await;
        };
        match stored {
            Some(stored) => node_identity::check_cluster_id(&self.data_dir, &stored, &cluster_id)?,
            None => {
                let path = self.data_dir.join(node_identity::META_PROPERTIES);
                let properties = MetaProperties {
                    cluster_id: cluster_id.clone(),
                    node_id: Some(self.node_id),
                };
                let text = node_identity::render(&properties, self.node_id);
                durable_file::replace(&path, text.into_bytes())
                    .await
                    .map_err(|source| JoinError::Io { path, source })?;
                tracing::info!(cluster_id, "joined the cluster");
            }
        }
        Ok(())
    }

    /// BrokerRegistration, retried until the quorum answers. A refusal
    /// (another live node with this id, another cluster) ends start-up.
    async fn register(&self) -> Result<(), JoinError> {
        let deadline = std::time::Instant::now() + JOIN_TIMEOUT;
        // How long a previous session of this id may still be live, counted
        // from the first answer naming it: a controller that has just taken
        // over starts every session afresh.
        let session_left = Duration::from_millis(
            self.settings.broker_session_timeout_ms
                + 2 * self.settings.broker_heartbeat_interval_ms,
        );
        let duplicate_deadline: Cell<Option<std::time::Instant>> = Cell::new(None);
        let still_waiting_out_old_session = || {
            let now = std::time::Instant::now();
            let until = duplicate_deadline.get().unwrap_or(now + session_left);
            duplicate_deadline.set(Some(until));
            now < until
        };
        loop {
            let request = ControlRequest::RegisterBroker {
                cluster_id: self.cluster_id(),
                broker_id: self.node_id,
                incarnation_id: self.incarnation_id,
                host: self.advertised_host.clone(),
                port: self.advertised_port,
                rack: self.rack.clone(),
            };
            match self.call(request).await {
                Ok((ControlOutcome::BrokerEpoch(epoch), _)) => {
                    self.broker_epoch.set(Some(epoch));
                    // Registered brokers start fenced; the first heartbeat
                    // unfences this one, and start-up goes on once this
                    // node's image shows it (as Kafka's broker waits to be
                    // unfenced before it serves).
                    let heartbeat = ControlRequest::BrokerHeartbeat {
                        broker_id: self.node_id,
                        broker_epoch: epoch,
                    };
                    match self.call(heartbeat).await {
                        Ok((_, offset)) => {
                            if self.catch_up_offset.get().is_none() {
                                // The registration is a record, so the
                                // controller's image is not empty.
                                self.catch_up_offset.set(Some(offset.unwrap_or(0)));
                            }
                            self.wait_for_offset(offset, CALL_TIMEOUT).await;
                            tracing::info!(
                                node_id = self.node_id,
                                broker_epoch = epoch,
                                "registered with the cluster"
                            );
                            return Ok(());
                        }
                        Err(error) => {
                            tracing::info!(%error, "first heartbeat not answered; registering again")
                        }
                    }
                }
                Ok((other, _)) => {
                    return Err(JoinError::Registration {
                        node_id: self.node_id,
                        reason: format!("unexpected answer {other:?}"),
                    })
                }
                Err(ControlError::Refused { error, message })
                    if error == KafkaError::DuplicateBrokerRegistration
                        && still_waiting_out_old_session() =>
                {
                    // This node's previous process may have died without
                    // its session ending yet: wait that session out before
                    // concluding that another live node has this id.
                    tracing::info!(
                        message,
                        "node id still registered; waiting for the previous session to expire"
                    );
                    glommio::timer::sleep(Duration::from_millis(500)).await;
                }
                Err(ControlError::Refused { error, message }) => {
                    return Err(JoinError::Registration {
                        node_id: self.node_id,
                        reason: format!("{message} ({error:?})"),
                    })
                }
                Err(error) => {
                    if std::time::Instant::now() >= deadline {
                        return Err(JoinError::Registration {
                            node_id: self.node_id,
                            reason: error.to_string(),
                        });
                    }
                    tracing::info!(%error, "waiting for the active controller to register");
                }
            }
        }
    }

    /// Heartbeats every `--broker-heartbeat-interval-ms`; registers again
    /// when the controller no longer knows this registration.
    fn spawn_heartbeats(self: &Rc<Self>) {
        let node = Rc::clone(self);
        glommio::spawn_local(async move {
            let interval = Duration::from_millis(node.settings.broker_heartbeat_interval_ms);
            loop {
                glommio::timer::sleep(interval).await;
                if node
                    .quorum
                    .as_ref()
                    .is_some_and(|quorum| quorum.is_stopped())
                {
                    return;
                }
                if node.shutting_down.get() {
                    return;
                }
                let Some(epoch) = node.broker_epoch.get() else {
                    continue;
                };
                let request = ControlRequest::BrokerHeartbeat {
                    broker_id: node.node_id,
                    broker_epoch: epoch,
                };
                match node.call(request).await {
                    Ok(_) => {}
                    Err(ControlError::Refused { error, message }) => {
                        tracing::warn!(?error, message, "heartbeat refused; registering again");
                        if let Err(error) = node.register().await {
                            tracing::error!(%error, "cannot register again");
                        }
                    }
                    Err(error) => tracing::warn!(%error, "heartbeat not answered"),
                }
            }
        })
        .detach();
    }

    /// Voters: turns applied entries and leader changes into `changes`.
    fn spawn_change_forwarder(self: &Rc<Self>, quorum: Rc<QuorumNode>) {
        let node = Rc::downgrade(self);
        let mut applied = quorum.state_machine().view().applied_index_watch();
        let mut metrics = quorum.raft().metrics();
        glommio::spawn_local(async move {
            // Metrics change with every replication round; only a new
            // leader or new records change what the shards see.
            let mut seen = (None, None);
            loop {
                let closed = match futures::future::select(
                    Box::pin(applied.changed()),
                    Box::pin(metrics.changed()),
                )
                .await
                {
                    futures::future::Either::Left((result, _)) => result.is_err(),
                    futures::future::Either::Right((result, _)) => result.is_err(),
                };
                if closed {
                    return;
                }
                let Some(node) = node.upgrade() else { return };
                let now = (metrics.borrow_watched().current_leader, node.image_offset());
                if now != seen {
                    seen = now;
                    node.changes.send_modify(|count| *count += 1);
                }
            }
        })
        .detach();
    }

    /// Broker-only nodes: keeps a copy of the image, fetched from the voters.
    fn spawn_image_fetcher(self: &Rc<Self>) {
        let node = Rc::downgrade(self);
        glommio::spawn_local(async move {
            let mut next_voter = 0usize;
            // Connections of their own: a long poll must not hold the
            // connection control calls (registration, heartbeats) use.
            let mut clients: BTreeMap<u64, Rc<ControlClient>> = BTreeMap::new();
            loop {
                let Some(node) = node.upgrade() else { return };
                let known = node.image_offset();
                let voter = node
                    .leader_hint
                    .get()
                    .filter(|_| next_voter.is_multiple_of(2))
                    .unwrap_or_else(|| node.voter_in_turn(next_voter));
                let client = Rc::clone(clients.entry(voter).or_insert_with(|| {
                    let address = node.settings.voters.get(&voter).cloned().unwrap_or_default();
                    Rc::new(ControlClient::new(address, Rc::clone(&node.hello)))
                }));
                match client
                    .call(&ControlRequest::FetchImage { known }, ATTEMPT_TIMEOUT)
                    .await
                {
                    Ok(ControlResponse {
                        result: ControlResult::Ok(ControlOutcome::Image { applied, records }),
                        ..
                    }) => match MetadataImage::from_snapshot(applied, &records) {
                        Ok(image) => {
                            *node.fetched_image.borrow_mut() = image;
                            node.changes.send_modify(|count| *count += 1);
                        }
                        Err(error) => {
                            tracing::error!(voter, %error, "metadata image from a voter does not replay");
                            next_voter += 1;
                        }
                    },
                    Ok(other) => {
                        tracing::debug!(voter, ?other.result, "metadata fetch not answered with an image");
                        next_voter += 1;
                        glommio::timer::sleep(RETRY_PAUSE).await;
                    }
                    Err(error) => {
                        tracing::debug!(voter, %error, "cannot fetch metadata");
                        next_voter += 1;
                        glommio::timer::sleep(RETRY_PAUSE).await;
                    }
                }
            }
        })
        .detach();
    }

    /// Kafka's controlled shutdown: stops heartbeating and asks the
    /// controller to fence this broker now, so the partitions it leads move
    /// to other in-sync replicas before it stops serving them. Answers the
    /// image offset to wait for (`None` if the controller could not be
    /// reached: the session then expires as after a crash).
    pub async fn controlled_shutdown(&self) -> Option<u64> {
        self.shutting_down.set(true);
        let broker_epoch = self.broker_epoch.get()?;
        let request = ControlRequest::ControlledShutdown {
            broker_id: self.node_id,
            broker_epoch,
        };
        match self.call(request).await {
            Ok((_, offset)) => offset,
            Err(error) => {
                tracing::warn!(%error, "controlled shutdown not answered; leaving as after a crash");
                None
            }
        }
    }

    /// Stops the quorum member (voters).
    pub async fn shutdown(&self) {
        if let Some(quorum) = &self.quorum {
            quorum.shutdown().await;
        }
    }
}

enum Route {
    Local(Rc<ActiveController>),
    Remote(u64),
    Unknown,
}

/// The quorum listener's handler for control frames.
fn control_handler(controller: Rc<ActiveController>) -> super::quorum::network::ControlHandler {
    Rc::new(move |bytes: Vec<u8>| {
        let controller = Rc::clone(&controller);
        async move {
            let request = match frame::decode::<ControlRequest>(KIND_CONTROL_REQUEST, &bytes) {
                Ok(request) => request,
                Err(error) => {
                    tracing::warn!(%error, "undecodable control call");
                    return None;
                }
            };
            let response = control::answer(&controller, request).await;
            match frame::encode(KIND_CONTROL_RESPONSE, &response) {
                Ok(bytes) => Some(bytes),
                Err(error) => {
                    tracing::error!(%error, "cannot encode a control answer");
                    None
                }
            }
        }
        .boxed_local()
    })
}
