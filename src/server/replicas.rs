//! The replicas one shard holds and the role of each (Kafka's
//! `ReplicaManager` and `Partition`, per shard): the partitions it leads
//! with followers, each with its `LeaderView` (follower progress, high
//! watermark, ISR changes), and the partitions it follows, each fetched
//! from its leader by one `ReplicaFetcher` per leader node.
//!
//! Roles follow the metadata: every new catalog on this shard runs
//! `sync_roles`, which makes a replica leader (new leader epoch, starting
//! at its log end), follower (fetching from the new leader, whose answers
//! tell it where to truncate) or neither. Partitions with one replica keep
//! the single-node path: their high watermark is the log's written end.
//!
//! A leader's high watermark is the smallest end over itself and its ISR
//! (`replication::leader_view`), moved by follower fetches (`fetch.rs` via
//! `partition_ops`) and by the leader's own writes (the log's end
//! listener); acks=all producers wait for it (`PartitionLog::
//! wait_high_watermark`). Under `--flush always` every end counted is a
//! durable end: the leader's own after its fdatasync, a follower's because
//! it syncs before its next fetch.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Duration;

use futures::future::LocalBoxFuture;
use futures::FutureExt;
use uuid::Uuid;

use super::groups::offsets_topic::OFFSETS_TOPIC;
use super::replica_fetcher::ReplicaFetcher;
use super::routing::{self, ShardCall};
use super::shard::{Shard, CONTROLLER_SHARD};
use super::txn::{self, state_topic::TRANSACTION_STATE_TOPIC};
use crate::cluster::control::{ControlOutcome, ControlRequest};
use crate::log::PartitionLog;
use crate::metadata::catalog::{Catalog, NO_BROKER};
use crate::protocol::errors::KafkaError;
use crate::replication::leader_view::{LeaderView, Leadership, NotAReplica};
use crate::runtime::clock::now_ms;

/// A partition by topic name and index.
pub type PartitionKey = (Arc<str>, i32);

/// How long an ISR change may stay unanswered before the leader acts
/// again (the metadata shows a committed change well before): it forgets a
/// shrink and decides again, and sends an expansion again (see
/// `retry_stale_isr_change`).
const ISR_CHANGE_PATIENCE_MS: i64 = 10_000;

/// The AlterPartition answers that prove the change was not applied
/// (Kafka's `Partition.handleAlterPartitionError`): the controller checks
/// them after the leader and partition epochs, so the partition is still at
/// the epoch this leader knows and neither this request nor an earlier copy
/// changed it. NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH, STALE_BROKER_EPOCH
/// and the rest come before those checks and prove nothing: an earlier copy
/// may have been committed before the leader lost its place, so the change
/// stays pending until the metadata shows the outcome.
pub(crate) const DEFINITE_ISR_REFUSALS: [KafkaError; 2] = [
    KafkaError::OperationNotAttempted,
    KafkaError::IneligibleReplica,
];

/// The led partitions of one topic, by index.
type LedPartitions = HashMap<i32, Rc<LedPartition>>;

/// One shard's replicas.
#[derive(Default)]
pub struct Replicas {
    /// By topic, then partition: looked up by `&str` on every acks=all
    /// produce and follower fetch, without allocating.
    led: RefCell<HashMap<Arc<str>, LedPartitions>>,
    followed: RefCell<HashMap<PartitionKey, Followed>>,
    fetchers: RefCell<HashMap<i32, Rc<ReplicaFetcher>>>,
    /// Followers whose log a fetcher is cutting: `truncate_to` closes and
    /// reopens it, so roles wait until the new log is in place.
    truncating: RefCell<HashSet<PartitionKey>>,
    /// Internal partitions whose coordinator (groups, transactions) runs
    /// here: the ones this node leads, with the leader epoch it took them
    /// over at (the transaction coordinator's epoch).
    coordinating: RefCell<HashMap<PartitionKey, i32>>,
    isr_checker_started: Cell<bool>,
}

/// What a follower replica follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Followed {
    leader: i32,
    leader_epoch: i32,
}

/// A partition this shard leads, with followers.
pub struct LedPartition {
    topic: Arc<str>,
    partition: i32,
    topic_id: Uuid,
    log: PartitionLog,
    view: RefCell<LeaderView>,
    min_insync_replicas: Cell<usize>,
    /// When the pending ISR change was last sent.
    isr_change_sent_ms: Cell<i64>,
    /// Serial of the last AlterPartition sent: only its answer counts (an
    /// earlier one answers a change that may no longer be pending).
    isr_request: Cell<u64>,
    /// An AlterPartition is out and unanswered.
    isr_request_in_flight: Cell<bool>,
}

impl LedPartition {
    /// The leader's own end moved (a write, or an fdatasync under
    /// `--flush always`): the high watermark may follow.
    fn own_end_moved(&self) {
        let end = self.log.replica_end_offset();
        let moved = self.view.borrow_mut().advance_high_watermark(end);
        if let Some(high_watermark) = moved {
            self.log.advance_high_watermark(high_watermark);
        }
    }

    /// Follower `broker_id` fetches from `fetch_offset`, so it has
    /// everything below it.
    pub fn follower_fetched(&self, broker_id: i32, fetch_offset: i64) -> Result<(), NotAReplica> {
        let end = self.log.replica_end_offset();
        let moved =
            self.view
                .borrow_mut()
                .follower_fetched(broker_id, fetch_offset, end, now_ms())?;
        if let Some(high_watermark) = moved {
            self.log.advance_high_watermark(high_watermark);
        }
        Ok(())
    }

    /// The committed ISR's size (min.insync.replicas counts it).
    pub fn isr_len(&self) -> usize {
        self.view.borrow().isr.len()
    }

    pub fn min_insync_replicas(&self) -> usize {
        self.min_insync_replicas.get()
    }
}

impl Replicas {
    /// The partition if this shard leads it with followers.
    pub fn led(&self, topic: &str, partition: i32) -> Option<Rc<LedPartition>> {
        self.led.borrow().get(topic)?.get(&partition).cloned()
    }

    fn led_by_key(&self, key: &PartitionKey) -> Option<Rc<LedPartition>> {
        self.led(&key.0, key.1)
    }

    fn insert_led(&self, key: PartitionKey, led: Rc<LedPartition>) {
        self.led
            .borrow_mut()
            .entry(key.0)
            .or_default()
            .insert(key.1, led);
    }

    fn remove_led(&self, key: &PartitionKey) -> Option<Rc<LedPartition>> {
        let mut led = self.led.borrow_mut();
        let partitions = led.get_mut(&key.0)?;
        let removed = partitions.remove(&key.1);
        if partitions.is_empty() {
            led.remove(&key.0);
        }
        removed
    }

    fn all_led(&self) -> Vec<Rc<LedPartition>> {
        self.led
            .borrow()
            .values()
            .flat_map(|partitions| partitions.values().cloned())
            .collect()
    }

    /// Whether a fetcher is cutting this partition's log.
    pub fn is_truncating(&self, key: &PartitionKey) -> bool {
        self.truncating.borrow().contains(key)
    }

    pub(super) fn set_truncating(&self, key: &PartitionKey, truncating: bool) {
        if truncating {
            self.truncating.borrow_mut().insert(key.clone());
        } else {
            self.truncating.borrow_mut().remove(key);
        }
    }

    /// This shard now coordinates `key`'s groups or transactions, as the
    /// leader of `leader_epoch`.
    pub fn start_coordinating(&self, key: PartitionKey, leader_epoch: i32) {
        self.coordinating.borrow_mut().insert(key, leader_epoch);
    }

    /// This shard no longer coordinates `key`; answers whether it did.
    pub fn stop_coordinating(&self, key: &PartitionKey) -> bool {
        self.coordinating.borrow_mut().remove(key).is_some()
    }

    /// The leader epoch this shard coordinates `key` at, if it does.
    pub fn coordinating_epoch(&self, key: &PartitionKey) -> Option<i32> {
        self.coordinating.borrow().get(key).copied()
    }

    /// Forgets a finished fetcher (only if it is still the registered one).
    pub(super) fn fetcher_stopped(&self, leader: i32, fetcher: &Rc<ReplicaFetcher>) {
        let mut fetchers = self.fetchers.borrow_mut();
        if fetchers
            .get(&leader)
            .is_some_and(|current| Rc::ptr_eq(current, fetcher))
        {
            fetchers.remove(&leader);
        }
    }

    fn stop_following(&self, key: &PartitionKey) {
        let Some(followed) = self.followed.borrow_mut().remove(key) else {
            return;
        };
        if let Some(fetcher) = self.fetchers.borrow().get(&followed.leader) {
            fetcher.remove(key);
        }
    }

    /// Ends this shard's leadership of `key`, if it leads it.
    pub(super) fn step_down(&self, key: &PartitionKey) {
        if let Some(led) = self.remove_led(key) {
            led.log.set_end_listener(None);
            led.log.release_high_watermark_waiters();
            tracing::info!(topic = %key.0, partition = key.1, "no longer leading");
        }
    }
}

/// Brings every replica on this shard to the role the shard's catalog
/// gives it. Runs on every new catalog (`Shard::apply_catalog`).
pub fn sync_roles(shard: &Rc<Shard>) {
    let catalog = shard.catalog();
    let partitions = shard.local_partitions();
    let present: HashSet<PartitionKey> = partitions
        .iter()
        .map(|(topic, partition, _)| (Arc::clone(topic), *partition))
        .collect();
    // Replicas whose log is gone (a deleted topic).
    let gone: Vec<PartitionKey> = {
        let led = shard.replicas.all_led();
        let followed = shard.replicas.followed.borrow();
        led.iter()
            .map(|led| (Arc::clone(&led.topic), led.partition))
            .chain(followed.keys().cloned())
            .filter(|key| !present.contains(key))
            .collect()
    };
    for key in gone {
        shard.replicas.step_down(&key);
        shard.replicas.stop_following(&key);
    }
    for (topic, partition, log) in partitions {
        sync_partition(shard, &catalog, (topic, partition), log);
    }
    start_isr_checker(shard);
}

/// How often replicated partitions store their high watermark (Kafka's
/// replica.high.watermark.checkpoint.interval.ms).
const HIGH_WATERMARK_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(5);

/// Stores the high watermark of every replicated partition on this shard
/// that moved, every `HIGH_WATERMARK_CHECKPOINT_INTERVAL` (and at a clean
/// stop: `Shard::close_all`).
fn start_high_watermark_checkpoints(shard: &Rc<Shard>) {
    let weak = Rc::downgrade(shard);
    glommio::spawn_local(async move {
        loop {
            glommio::timer::sleep(HIGH_WATERMARK_CHECKPOINT_INTERVAL).await;
            let Some(shard) = weak.upgrade() else {
                return;
            };
            checkpoint_high_watermarks(&shard).await;
        }
    })
    .detach();
}

/// Stores every replicated partition's high watermark that moved.
pub async fn checkpoint_high_watermarks(shard: &Shard) {
    for (topic, partition, log) in shard.local_partitions() {
        if let Err(error) = log.checkpoint_high_watermark().await {
            tracing::warn!(%topic, partition, %error, "cannot store the high watermark");
        }
    }
}

/// `sync_roles` for one partition (also after a fetcher replaced its log).
pub(super) fn sync_partition(
    shard: &Rc<Shard>,
    catalog: &Catalog,
    key: PartitionKey,
    log: PartitionLog,
) {
    let replicas = &shard.replicas;
    if replicas.is_truncating(&key) {
        return;
    }
    let (Some(topic), Some(assignment)) = (catalog.topic(&key.0), catalog.partition(&key.0, key.1))
    else {
        return;
    };
    let me = shard.config.node_id;
    let replicated = assignment.replicas.len() > 1;
    let leads_at = (assignment.leader == me).then_some(assignment.leader_epoch);
    follow_coordinator(shard, &key, &log, leads_at);
    if assignment.leader == me {
        replicas.stop_following(&key);
        if !replicated {
            replicas.step_down(&key);
            let epoch = assignment.leader_epoch;
            if log.leader_epoch() != epoch || log.latest_epoch() != epoch {
                log.set_leader_epoch(epoch);
            }
            return;
        }
        let min_insync = usize::try_from(topic.configs.min_insync_replicas)
            .unwrap_or(1)
            .max(1);
        let current = replicas.led_by_key(&key);
        if let Some(led) = current {
            if led.view.borrow().leader_epoch == assignment.leader_epoch {
                led.min_insync_replicas.set(min_insync);
                let newer = assignment.partition_epoch > led.view.borrow().partition_epoch;
                if newer {
                    let end = led.log.replica_end_offset();
                    led.view.borrow_mut().replicas_changed(&assignment.replicas);
                    let moved = led.view.borrow_mut().isr_committed(
                        assignment.isr.clone(),
                        assignment.partition_epoch,
                        end,
                    );
                    if let Some(high_watermark) = moved {
                        led.log.advance_high_watermark(high_watermark);
                    }
                }
                return;
            }
            replicas.step_down(&key);
        }
        if !log.is_replicated() {
            log.replicate(log.log_start_offset());
        }
        log.set_leader_epoch(assignment.leader_epoch);
        let leadership = Leadership {
            leader_id: me,
            leader_epoch: assignment.leader_epoch,
            leader_epoch_start_offset: log.log_end_offset(),
            replicas: assignment.replicas.clone(),
            isr: assignment.isr.clone(),
            partition_epoch: assignment.partition_epoch,
        };
        if !leadership.isr.contains(&me) {
            tracing::error!(topic = %key.0, partition = key.1, "led by this node but not in its ISR");
            return;
        }
        let view = LeaderView::new(leadership, log.high_watermark(), now_ms());
        let led = Rc::new(LedPartition {
            topic: Arc::clone(&key.0),
            partition: key.1,
            topic_id: topic.topic_id,
            log: log.clone(),
            view: RefCell::new(view),
            min_insync_replicas: Cell::new(min_insync),
            isr_change_sent_ms: Cell::new(0),
            isr_request: Cell::new(0),
            isr_request_in_flight: Cell::new(false),
        });
        let weak: Weak<LedPartition> = Rc::downgrade(&led);
        log.set_end_listener(Some(Rc::new(move || {
            if let Some(led) = weak.upgrade() {
                led.own_end_moved();
            }
        })));
        led.own_end_moved();
        tracing::info!(
            topic = %key.0, partition = key.1, leader_epoch = assignment.leader_epoch,
            high_watermark = log.high_watermark(), log_end_offset = log.log_end_offset(),
            "leading"
        );
        replicas.insert_led(key, led);
        return;
    }
    replicas.step_down(&key);
    if !replicated || !assignment.replicas.contains(&me) {
        replicas.stop_following(&key);
        return;
    }
    if !log.is_replicated() {
        log.replicate(log.log_start_offset());
    }
    let wanted = Followed {
        leader: assignment.leader,
        leader_epoch: assignment.leader_epoch,
    };
    if replicas.followed.borrow().get(&key) == Some(&wanted) {
        return;
    }
    replicas.stop_following(&key);
    replicas.followed.borrow_mut().insert(key.clone(), wanted);
    if wanted.leader == NO_BROKER {
        return;
    }
    let existing = replicas.fetchers.borrow().get(&wanted.leader).cloned();
    tracing::info!(
        topic = %key.0, partition = key.1, leader = wanted.leader,
        leader_epoch = wanted.leader_epoch, "following"
    );
    match existing {
        Some(fetcher) => fetcher.add(key, wanted.leader_epoch),
        None => {
            let fetcher = ReplicaFetcher::new(wanted.leader);
            fetcher.add(key, wanted.leader_epoch);
            replicas
                .fetchers
                .borrow_mut()
                .insert(wanted.leader, Rc::clone(&fetcher));
            fetcher.spawn(shard);
        }
    }
}

/// Group and transaction coordinators move with their internal partition's
/// leadership (Kafka's `onLeadershipChange`): a new leader loads the state
/// from its log (up to its end), a replica that stops leading drops it, so
/// its clients get NOT_COORDINATOR and find the new one. `leads_at` is the
/// leader epoch when this node leads the partition.
///
/// The transaction coordinator's epoch is that leader epoch (Kafka's
/// `coordinatorEpoch`), stamped on its markers. A leader epoch that moved
/// while this node kept leading (the catalog skipped another leader's
/// term) reloads the transaction state at the new epoch, as Kafka reloads
/// on a newer epoch: the old state may lack the other leader's writes, and
/// markers under the old epoch would be fenced by those that leader wrote.
fn follow_coordinator(
    shard: &Rc<Shard>,
    key: &PartitionKey,
    log: &PartitionLog,
    leads_at: Option<i32>,
) {
    let offsets = &*key.0 == OFFSETS_TOPIC;
    if !offsets && &*key.0 != TRANSACTION_STATE_TOPIC {
        return;
    }
    let partition = key.1;
    let coordinating_at = shard.replicas.coordinating_epoch(key);
    let leader_epoch = match (coordinating_at, leads_at) {
        (None, None) => return,
        (Some(_), None) => {
            shard.replicas.stop_coordinating(key);
            if offsets {
                shard.groups.unload(partition);
            } else {
                shard.txns.unload(partition);
            }
            tracing::info!(topic = %key.0, partition, "coordinator moved away");
            return;
        }
        (Some(current), Some(leader_epoch)) if current == leader_epoch => return,
        (Some(_), Some(leader_epoch)) if offsets => {
            // Groups carry no coordinator epoch; they stay loaded.
            shard.replicas.start_coordinating(key.clone(), leader_epoch);
            return;
        }
        (Some(current), Some(leader_epoch)) => {
            tracing::info!(
                topic = %key.0, partition, from = current, to = leader_epoch,
                "coordinator epoch moved; reloading"
            );
            shard.txns.unload(partition);
            leader_epoch
        }
        (None, Some(leader_epoch)) => leader_epoch,
    };
    shard.assert_owner(&key.0, partition);
    shard.replicas.start_coordinating(key.clone(), leader_epoch);
    let shard = Rc::clone(shard);
    let key = key.clone();
    let log = log.clone();
    glommio::spawn_local(async move {
        if &*key.0 == OFFSETS_TOPIC {
            shard
                .groups
                .load(&shard.config.groups, partition, log)
                .await;
            // Leadership may have moved on while loading.
            if shard.replicas.coordinating_epoch(&key).is_none() {
                shard.groups.unload(partition);
                return;
            }
        } else {
            let loaded =
                txn::coordinator::replay(&shard.config.transactions, partition, leader_epoch, log)
                    .await;
            // Leadership may have moved on while loading: only the load of
            // the current epoch takes over (a later one may be running).
            if shard.replicas.coordinating_epoch(&key) != Some(leader_epoch) {
                return;
            }
            shard.txns.install(loaded);
        }
        tracing::info!(topic = %key.0, partition, leader_epoch, "coordinating");
    })
    .detach();
}

/// Starts this shard's ISR check (once): leaders drop followers that have
/// not caught up for `--replica-lag-time-max-ms`, as Kafka's
/// `maybeShrinkIsr` runs every half of it.
fn start_isr_checker(shard: &Rc<Shard>) {
    if shard.replicas.isr_checker_started.replace(true) {
        return;
    }
    start_high_watermark_checkpoints(shard);
    let weak = Rc::downgrade(shard);
    let lag_max_ms = i64::try_from(shard.config.replica_lag_time_max_ms).unwrap_or(i64::MAX);
    let period = Duration::from_millis((shard.config.replica_lag_time_max_ms / 2).clamp(50, 5_000));
    glommio::spawn_local(async move {
        loop {
            glommio::timer::sleep(period).await;
            let Some(shard) = weak.upgrade() else {
                return;
            };
            let led: Vec<Rc<LedPartition>> = shard.replicas.all_led();
            for partition in led {
                shrink_isr_if_lagging(&shard, &partition, lag_max_ms);
            }
        }
    })
    .detach();
}

fn shrink_isr_if_lagging(shard: &Rc<Shard>, led: &Rc<LedPartition>, lag_max_ms: i64) {
    let now = now_ms();
    retry_stale_isr_change(shard, led, now);
    let proposal = {
        let view = led.view.borrow();
        if view.has_pending_isr_change() {
            return;
        }
        let lagging = view.isr_to_shrink(led.log.replica_end_offset(), now, lag_max_ms);
        if lagging.is_empty() {
            return;
        }
        tracing::info!(
            topic = %led.topic, partition = led.partition, ?lagging,
            "removing followers that stopped catching up from the ISR"
        );
        view.isr
            .iter()
            .copied()
            .filter(|broker| !lagging.contains(broker))
            .collect::<Vec<i32>>()
    };
    propose_isr(shard, led, proposal);
}

/// After a follower fetch: a caught-up follower outside the ISR rejoins it.
pub fn expand_isr_if_caught_up(shard: &Rc<Shard>, led: &Rc<LedPartition>) {
    retry_stale_isr_change(shard, led, now_ms());
    let proposal = {
        let view = led.view.borrow();
        if view.has_pending_isr_change() {
            return;
        }
        let live = |broker: i32| {
            shard.read_catalog(|catalog| catalog.brokers().iter().any(|b| b.node_id == broker))
        };
        let Some(joining) = view.isr_to_expand(live) else {
            return;
        };
        tracing::info!(
            topic = %led.topic, partition = led.partition, joining,
            "a caught-up follower rejoins the ISR"
        );
        let mut isr = view.isr.clone();
        isr.push(joining);
        isr
    };
    propose_isr(shard, led, proposal);
}

/// A change left unanswered for ISR_CHANGE_PATIENCE_MS. A shrink is
/// forgotten (the larger, committed ISR counts again, which is safe) and
/// decided again. An expansion is not: the controller may have committed
/// it, and the joiner, then in the ISR and electable, would lack what this
/// leader acknowledged without it (KIP-841 counts the pending ISR for that
/// reason). It is sent again, the same request at the same partition
/// epoch, so at most one copy can be applied; and only once the earlier
/// call is over, so a late copy cannot be applied after a definite refusal
/// of a later one.
fn retry_stale_isr_change(shard: &Rc<Shard>, led: &Rc<LedPartition>, now: i64) {
    let expanding = {
        let view = led.view.borrow();
        if !view.has_pending_isr_change()
            || now - led.isr_change_sent_ms.get() <= ISR_CHANGE_PATIENCE_MS
        {
            return;
        }
        view.maximal_isr().len() > view.isr.len()
    };
    if !expanding {
        led.view.borrow_mut().isr_refused();
    } else if !led.isr_request_in_flight.get() {
        tracing::info!(
            topic = %led.topic, partition = led.partition,
            "an ISR expansion is still unanswered; asking again"
        );
        send_isr_change(shard, led);
    }
}

/// Makes `isr` the pending change and asks the controller for it.
fn propose_isr(shard: &Rc<Shard>, led: &Rc<LedPartition>, isr: Vec<i32>) {
    led.view.borrow_mut().propose_isr(isr);
    send_isr_change(shard, led);
}

/// Sends an AlterPartition for the pending change to the controller
/// (through shard 0) and applies the answer.
fn send_isr_change(shard: &Rc<Shard>, led: &Rc<LedPartition>) {
    let call = {
        let view = led.view.borrow();
        let Some(new_isr) = view.pending_isr().map(<[i32]>::to_vec) else {
            return;
        };
        AlterPartitionCall {
            topic_id: led.topic_id,
            partition: led.partition,
            leader_epoch: view.leader_epoch,
            partition_epoch: view.partition_epoch,
            new_isr,
        }
    };
    let serial = led.isr_request.get() + 1;
    led.isr_request.set(serial);
    led.isr_request_in_flight.set(true);
    led.isr_change_sent_ms.set(now_ms());
    let shard = Rc::clone(shard);
    let led = Rc::clone(led);
    glommio::spawn_local(async move {
        let answer = routing::call(&shard, CONTROLLER_SHARD, call)
            .await
            .unwrap_or(Err(KafkaError::RequestTimedOut.code()));
        if led.isr_request.get() != serial {
            return;
        }
        led.isr_request_in_flight.set(false);
        // Leadership may have moved on while the call was out.
        let current = shard.replicas.led(&led.topic, led.partition);
        if !current.is_some_and(|current| Rc::ptr_eq(&current, &led)) {
            return;
        }
        match answer {
            Ok(altered) => {
                let end = led.log.replica_end_offset();
                let mut view = led.view.borrow_mut();
                if altered.leader_epoch != view.leader_epoch {
                    return;
                }
                let moved = view.isr_committed(altered.isr, altered.partition_epoch, end);
                drop(view);
                if let Some(high_watermark) = moved {
                    led.log.advance_high_watermark(high_watermark);
                }
            }
            Err(code) => {
                tracing::info!(
                    topic = %led.topic, partition = led.partition, code,
                    "ISR change not accepted"
                );
                if DEFINITE_ISR_REFUSALS
                    .iter()
                    .any(|refusal| refusal.code() == code)
                {
                    led.view.borrow_mut().isr_refused();
                }
            }
        }
    })
    .detach();
}

/// A partition's state after an AlterPartition.
#[derive(Debug, Clone)]
pub struct AlteredPartition {
    pub leader_epoch: i32,
    pub isr: Vec<i32>,
    pub partition_epoch: i32,
}

/// Owner -> shard 0: ask the active controller to change a partition's
/// ISR (Kafka's AlterPartition, KIP-497).
pub struct AlterPartitionCall {
    pub topic_id: Uuid,
    pub partition: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub new_isr: Vec<i32>,
}

impl ShardCall<Shard> for AlterPartitionCall {
    type Reply = Result<AlteredPartition, i16>;
    fn start(self, shard: &Rc<Shard>) -> LocalBoxFuture<'static, Self::Reply> {
        let shard = Rc::clone(shard);
        async move {
            // Not sent at all (no cluster, or not registered yet): certainly
            // not applied.
            let not_sent = KafkaError::OperationNotAttempted.code();
            let cluster = shard.cluster().ok_or(not_sent)?.clone();
            let broker_epoch = cluster.node.broker_epoch().ok_or(not_sent)?;
            let request = ControlRequest::AlterPartition {
                broker_id: shard.config.node_id,
                broker_epoch,
                topic_id: *self.topic_id.as_bytes(),
                partition: self.partition,
                leader_epoch: self.leader_epoch,
                partition_epoch: self.partition_epoch,
                new_isr: self.new_isr,
            };
            match cluster.node.call(request).await {
                Ok((
                    ControlOutcome::PartitionAltered {
                        leader_epoch,
                        isr,
                        partition_epoch,
                        ..
                    },
                    _,
                )) => Ok(AlteredPartition {
                    leader_epoch,
                    isr,
                    partition_epoch,
                }),
                Ok(_) => Err(KafkaError::UnknownServerError.code()),
                Err(error) => Err(error.kafka_error().code()),
            }
        }
        .boxed_local()
    }
}
