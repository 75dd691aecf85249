//! One shard's group coordinator: the offsets partitions it owns, their
//! committed offsets and the groups hashing to them, the requests waiting
//! for a join round or an assignment (the task that fires their timers and
//! expires offsets is in `timers.rs`).
//!
//! Which cores: one `GroupCoordinator` per shard, holding only the offsets
//! partitions that shard owns; nothing here crosses cores.
//!
//! Why this shape: the group logic (`crate::group`) is pure, so this file
//! only feeds it events with the current time and carries out its effects:
//! completing waiters, appending group metadata, scheduling the next tick.
//! Every change to committed offsets is appended to the partition's log and
//! applied to the in-memory view in the same synchronous step, so the view
//! always equals a replay of the log (in log order) and no `.await` can
//! interleave two changes; callers then wait for the append's durability
//! before answering the client.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use futures::channel::oneshot;

use super::offsets_topic::{self, encode_batch, OffsetsRecordBytes};
use crate::config::GroupSettings;
use crate::group::committed_offsets::CommittedOffsets;
use crate::group::consumer_group_records;
use crate::group::modern::ConsumerGroupConfig;
use crate::group::offset_records::{GroupMetadataKey, OffsetCommitValue, OffsetsRecord};
use crate::group::{Effect, Group, GroupConfig, GroupState, JoinResponse, SyncResponse};
use crate::log::PartitionLog;
use crate::protocol::errors::{KafkaError, NONE};
use crate::runtime::clock::now_ms;

/// One group and the requests waiting on it.
pub struct GroupSlot {
    pub group: Group,
    pub(super) join_waiters: HashMap<String, oneshot::Sender<JoinResponse>>,
    pub(super) sync_waiters: HashMap<String, oneshot::Sender<SyncResponse>>,
}

impl GroupSlot {
    fn new(group: Group) -> GroupSlot {
        GroupSlot {
            group,
            join_waiters: HashMap::new(),
            sync_waiters: HashMap::new(),
        }
    }

    /// Waits for the join round `member_id` is in. A newer JoinGroup of
    /// the same member replaces an older one still waiting, which is told
    /// to rejoin.
    pub fn wait_for_join(&mut self, member_id: &str) -> oneshot::Receiver<JoinResponse> {
        let (sender, receiver) = oneshot::channel();
        if let Some(older) = self.join_waiters.insert(member_id.to_string(), sender) {
            let _ = older.send(JoinResponse::error(
                member_id,
                KafkaError::RebalanceInProgress.code(),
            ));
        }
        receiver
    }

    /// Waits for the leader's assignment (same replacement rule as joins).
    pub fn wait_for_sync(&mut self, member_id: &str) -> oneshot::Receiver<SyncResponse> {
        let (sender, receiver) = oneshot::channel();
        if let Some(older) = self.sync_waiters.insert(member_id.to_string(), sender) {
            let _ = older.send(SyncResponse::error(KafkaError::RebalanceInProgress.code()));
        }
        receiver
    }
}

/// An offsets partition this shard owns and coordinates.
pub struct OffsetsPartition {
    pub partition: i32,
    pub log: PartitionLog,
    pub offsets: RefCell<CommittedOffsets>,
    pub groups: RefCell<BTreeMap<String, GroupSlot>>,
    config: GroupConfig,
    /// Where the latest snapshot of the live state starts (see
    /// `compaction.rs`); the log start offset until one is written.
    pub(super) snapshot_offset: Cell<i64>,
}

impl OffsetsPartition {
    /// Runs `f` on the group, creating an Empty one if `create` and absent.
    /// `None` when the group does not exist and was not created.
    pub fn with_group<T>(
        &self,
        group_id: &str,
        create: bool,
        f: impl FnOnce(&mut GroupSlot) -> T,
    ) -> Option<T> {
        let mut groups = self.groups.borrow_mut();
        if !groups.contains_key(group_id) {
            if !create {
                return None;
            }
            let group = Group::new(group_id, self.config.clone());
            groups.insert(group_id.to_string(), GroupSlot::new(group));
        }
        let slot = groups.get_mut(group_id)?;
        Some(f(slot))
    }

    /// Carries out the group's effects: answers waiting requests and stores
    /// group metadata. Call while holding the slot (no `.await` between the
    /// event and this).
    pub fn deliver(&self, slot: &mut GroupSlot, effects: Vec<Effect>, now_ms: i64) {
        for effect in effects {
            match effect {
                Effect::Join {
                    member_id,
                    response,
                } => {
                    if let Some(waiter) = slot.join_waiters.remove(&member_id) {
                        let _ = waiter.send(response);
                    }
                }
                Effect::Sync {
                    member_id,
                    response,
                } => {
                    if let Some(waiter) = slot.sync_waiters.remove(&member_id) {
                        let _ = waiter.send(response);
                    }
                }
                Effect::MemberRemoved {
                    member_id,
                    group_instance_id,
                    reason,
                } => tracing::info!(
                    group = slot.group.group_id(),
                    member = member_id,
                    instance = group_instance_id.as_deref().unwrap_or(""),
                    ?reason,
                    "member left group"
                ),
                Effect::StoreGroup { generation_id } => {
                    let value = slot.group.to_stored(now_ms);
                    let record = OffsetsRecord::GroupMetadata {
                        key: GroupMetadataKey {
                            group: slot.group.group_id().to_string(),
                        },
                        value: Some(value),
                    };
                    // The members learn their assignment from the sync
                    // response, not from this record, so nobody waits on it;
                    // it is what a restart restores the group from.
                    if let Err(code) = self.append(vec![record], now_ms) {
                        tracing::warn!(
                            group = slot.group.group_id(),
                            generation_id,
                            code,
                            "cannot store group metadata"
                        );
                    }
                }
            }
        }
    }

    /// Appends `records` to the log and applies them to the committed
    /// offsets, in one synchronous step. Returns the last offset written,
    /// for the caller to wait on with [`wait_durable`](Self::wait_durable)
    /// (-1 when there was nothing to append).
    pub fn append(&self, records: Vec<OffsetsRecord>, now_ms: i64) -> Result<i64, i16> {
        if records.is_empty() {
            return Ok(-1);
        }
        let encoded: Vec<OffsetsRecordBytes> = records.iter().map(record_bytes).collect();
        let batch = encode_batch(&encoded, now_ms);
        let info = self.log.append(&batch, now_ms).map_err(|error| {
            tracing::error!(partition = self.partition, %error, "offsets partition append failed");
            coordinator_error(error.code())
        })?;
        let mut offsets = self.offsets.borrow_mut();
        for (index, record) in records.into_iter().enumerate() {
            let record_offset = info.base_offset + index as i64;
            match record {
                // The live group applied it before it was written.
                OffsetsRecord::ConsumerGroup { .. } => offsets.note_applied(record_offset),
                record => offsets.apply_record(record, record_offset),
            }
        }
        Ok(info.last_offset)
    }

    /// [`append`](Self::append), then wait until it is durable: the error
    /// code to answer with (NONE when written and durable).
    pub async fn append_durably(&self, records: Vec<OffsetsRecord>, now_ms: i64) -> i16 {
        match self.append(records, now_ms) {
            Ok(last_offset) => self.wait_durable(last_offset).await.err().unwrap_or(NONE),
            Err(code) => code,
        }
    }

    /// Resolves once `last_offset` is durable (committed offsets are
    /// written with acks=all semantics, as Kafka's coordinator does).
    pub async fn wait_durable(&self, last_offset: i64) -> Result<(), i16> {
        if last_offset < 0 {
            return Ok(());
        }
        self.log
            .wait_committed(last_offset)
            .await
            .map_err(|error| coordinator_error(error.code()))
    }

    /// Drops a group that holds nothing: Empty, never had a generation
    /// stored, no offsets, none pending in a transaction (a failed first
    /// join, a describe of a new name).
    pub fn prune_if_unused(&self, group_id: &str) {
        let mut groups = self.groups.borrow_mut();
        let unused = groups.get(group_id).is_some_and(|slot| {
            slot.group.state() == GroupState::Empty
                && slot.group.members().is_empty()
                && slot.group.pending_member_count() == 0
                && slot.join_waiters.is_empty()
                && slot.sync_waiters.is_empty()
        }) && {
            let offsets = self.offsets.borrow();
            offsets.group_metadata(group_id).is_none()
                && offsets.offsets_of(group_id).next().is_none()
                && !offsets.has_pending_offsets_of(group_id)
        };
        if unused {
            groups.remove(group_id);
        }
    }
}

/// Errors of the offsets log, as a coordinator reports them: the client
/// looks the coordinator up again and retries.
pub(super) fn coordinator_error(code: i16) -> i16 {
    if code == KafkaError::NotLeaderOrFollower.code() {
        KafkaError::NotCoordinator.code()
    } else {
        KafkaError::CoordinatorNotAvailable.code()
    }
}

/// Key and value bytes of a record.
pub(super) fn record_bytes(record: &OffsetsRecord) -> OffsetsRecordBytes {
    match record {
        OffsetsRecord::OffsetCommit { key, value } => OffsetsRecordBytes {
            key: key.encode(),
            value: value.as_ref().map(OffsetCommitValue::encode),
        },
        OffsetsRecord::GroupMetadata { key, value } => OffsetsRecordBytes {
            key: key.encode(),
            value: value.as_ref().map(|value| value.encode()),
        },
        OffsetsRecord::ConsumerGroup { group, record } => {
            let (key, value) = consumer_group_records::encode(group, record);
            OffsetsRecordBytes { key, value }
        }
    }
}

/// The coordinator state of one shard.
#[derive(Default)]
pub struct GroupCoordinator {
    partitions: RefCell<HashMap<i32, Rc<OffsetsPartition>>>,
    /// Wakes the timer task early when a group's next deadline moved closer.
    pub(super) wake: RefCell<Option<oneshot::Sender<()>>>,
    /// When the timer task will next look at the groups.
    pub(super) next_tick_ms: Cell<i64>,
}

impl GroupCoordinator {
    /// The loaded offsets partition, if this shard owns it.
    pub fn partition(&self, partition: i32) -> Option<Rc<OffsetsPartition>> {
        self.partitions.borrow().get(&partition).cloned()
    }

    pub fn partitions(&self) -> Vec<Rc<OffsetsPartition>> {
        self.partitions.borrow().values().cloned().collect()
    }

    /// Replays `log` and takes over the groups of `partition`: every group
    /// with committed offsets or stored metadata is back, those with members
    /// Stable at their stored generation.
    pub async fn load(&self, settings: &GroupSettings, partition: i32, log: PartitionLog) {
        let started = std::time::Instant::now();
        let mut offsets =
            CommittedOffsets::with_consumer_group_config(consumer_group_config(settings));
        let stats = match offsets_topic::replay(&log, &mut offsets).await {
            Ok(stats) => stats,
            Err(error) => {
                tracing::error!(partition, %error, "cannot replay offsets partition; its groups start empty");
                Default::default()
            }
        };
        let config = group_config(settings);
        let now = now_ms();
        for group in offsets.consumer_groups_mut() {
            group.on_loaded(now);
        }
        let mut groups = BTreeMap::new();
        for group_id in offsets.groups() {
            let group = match offsets.group_metadata(group_id) {
                Some(stored) => Group::restore(group_id, config.clone(), &stored.value, now),
                None => Group::new(group_id, config.clone()),
            };
            groups.insert(group_id.to_string(), GroupSlot::new(group));
        }
        if stats.records > 0 {
            tracing::info!(
                partition,
                records = stats.records,
                skipped = stats.skipped,
                groups = groups.len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "loaded offsets partition"
            );
        }
        let loaded = OffsetsPartition {
            partition,
            snapshot_offset: Cell::new(log.log_start_offset()),
            log,
            offsets: RefCell::new(offsets),
            groups: RefCell::new(groups),
            config,
        };
        self.partitions
            .borrow_mut()
            .insert(partition, Rc::new(loaded));
        self.schedule(Some(now));
    }

    /// Forgets a partition (its log was deleted).
    pub fn unload(&self, partition: i32) {
        if let Some(loaded) = self.partitions.borrow_mut().remove(&partition) {
            let mut groups = loaded.groups.borrow_mut();
            for slot in groups.values_mut() {
                let effects = slot.group.unload();
                loaded.deliver(slot, effects, now_ms());
            }
        }
    }

    /// Makes sure the timer task looks at the groups by `deadline_ms`.
    pub fn schedule(&self, deadline_ms: Option<i64>) {
        if let Some(deadline) = deadline_ms {
            if deadline < self.next_tick_ms.get() {
                if let Some(wake) = self.wake.borrow_mut().take() {
                    let _ = wake.send(());
                }
            }
        }
    }

    /// Schedules the group's next timer after an event changed it.
    pub fn schedule_group(&self, partition: &OffsetsPartition, group_id: &str) {
        let deadline = partition
            .groups
            .borrow()
            .get(group_id)
            .and_then(|slot| slot.group.next_deadline_ms());
        self.schedule(deadline);
    }
}

/// The KIP-848 state machine's settings from the broker's.
pub fn consumer_group_config(settings: &GroupSettings) -> ConsumerGroupConfig {
    ConsumerGroupConfig {
        session_timeout_ms: settings.consumer_session_timeout_ms,
        heartbeat_interval_ms: settings.consumer_heartbeat_interval_ms,
        ..ConsumerGroupConfig::default()
    }
}

/// The state machine's settings from the broker's.
pub fn group_config(settings: &GroupSettings) -> GroupConfig {
    GroupConfig {
        session_timeout_min_ms: settings.min_session_timeout_ms,
        session_timeout_max_ms: settings.max_session_timeout_ms,
        initial_rebalance_delay_ms: settings.initial_rebalance_delay_ms,
        ..GroupConfig::default()
    }
}
