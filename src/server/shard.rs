//! One shard's state: its id, its copy of the metadata image, the partition
//! logs it owns, and its end of the mesh. Exactly one `Shard` per executor,
//! shared by that executor's tasks through `Rc`; nothing in it crosses cores.
//! Calls to other shards go through `routing`, never the mesh directly.
//!
//! It also holds this shard's control-plane state (group and transaction
//! coordinators, the producer id block), so `Shard` is the one place where
//! the data plane still reaches the control plane's types.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use futures::StreamExt;

use super::cluster_metadata::ClusterMetadata;
use super::fetch_sessions::FetchSessions;
use super::groups::offsets_topic::OFFSETS_TOPIC;
use super::groups::GroupCoordinator;
use super::partition_ops::PartitionLookup;
use super::peer_brokers::PeerBrokers;
use super::producer_ids::ProducerIdBlock;
use super::replicas::{self, Replicas};
use super::txn::state_topic::TRANSACTION_STATE_TOPIC;
use super::txn::{self, TxnCoordinator};
use crate::config::BrokerConfig;
use crate::log::free_space::FreeSpaceGuard;
use crate::log::PartitionLog;
use crate::metadata::catalog::{Catalog, TopicMetadata};
use crate::runtime::mesh::Mesh;
use crate::runtime::placement::owner_shard;

/// The shard that owns the metadata image and runs topic admin (the controller).
pub const CONTROLLER_SHARD: usize = 0;

/// Request bytes one shard holds at once, over all its connections, from
/// reading a frame until its response is ready. Past it, connections wait
/// before reading their next frame: many clients sending large requests slow
/// themselves down instead of growing the shard's memory. At least one
/// maximum-size frame (the 100 MiB default) must fit.
pub const REQUEST_MEMORY_BYTES_PER_SHARD: u64 = 256 << 20;

pub type ShardMesh = Mesh<Shard>;

/// A shard's partition logs, by topic then partition number.
pub type LocalLogTable = HashMap<Arc<str>, HashMap<i32, PartitionLog>>;

pub struct Shard {
    pub id: usize,
    pub shard_count: usize,
    pub config: Arc<BrokerConfig>,
    mesh: OnceCell<Rc<ShardMesh>>,
    catalog: RefCell<Arc<Catalog>>,
    /// Owned partition logs, by topic then partition number.
    partitions: RefCell<LocalLogTable>,
    /// Moves with every change of the image or of `partitions`: fetch
    /// sessions trust what they learned of a quiet partition only while it
    /// stays the same (leaders, epochs, logs replaced or removed).
    partition_generation: Cell<u64>,
    /// Serialises topic admin on the controller so two creates of one name
    /// cannot both pass validation while the first awaits its disk writes.
    pub admin_lock: glommio::sync::Semaphore,
    /// Budget of in-flight request bytes (`REQUEST_MEMORY_BYTES_PER_SHARD`).
    pub request_memory: Rc<glommio::sync::Semaphore>,
    /// Response bytes waiting for sockets (`response_memory`).
    pub response_memory: Rc<super::response_memory::ResponseMemory>,
    /// This shard's block of producer ids (see `producer_ids.rs`).
    pub producer_ids: ProducerIdBlock,
    /// The consumer groups this shard coordinates (see `groups`).
    pub groups: GroupCoordinator,
    /// The transactional ids this shard coordinates (see `txn`).
    pub txns: TxnCoordinator,
    /// On shard 0 of a cluster node: the cluster's metadata and the way to
    /// the active controller (see `cluster_metadata`).
    cluster: OnceCell<Rc<ClusterMetadata>>,
    /// This shard's connections to other brokers (see `peer_brokers`).
    pub peer_brokers: PeerBrokers,
    /// The role of each replica here: leader, follower (see `replicas`).
    pub replicas: Replicas,
    /// Fetch sessions of fetches served here (see `fetch_sessions`).
    pub fetch_sessions: FetchSessions,
    /// Refuses Produce while the data directory is below its free-space
    /// reserve (see `log::free_space`).
    pub free_space: Rc<FreeSpaceGuard>,
    /// Reopening partitions whose write met a full disk (see
    /// `storage_recovery`).
    pub storage_recovery: super::storage_recovery::StorageRecovery,
}

impl Shard {
    pub fn new(id: usize, config: Arc<BrokerConfig>, catalog: Arc<Catalog>) -> Shard {
        let fetch_sessions = FetchSessions::new(id, config.shards, &config.fetch_sessions);
        let free_space = Rc::new(FreeSpaceGuard::new(
            config.data_dir.clone(),
            config.min_free_bytes,
            crate::limits::free_space_check_bytes(config.min_free_bytes, config.shards),
        ));
        Shard {
            id,
            shard_count: config.shards,
            config,
            mesh: OnceCell::new(),
            catalog: RefCell::new(catalog),
            partitions: RefCell::new(HashMap::new()),
            partition_generation: Cell::new(0),
            admin_lock: glommio::sync::Semaphore::new(1),
            response_memory: Rc::default(),
            request_memory: Rc::new(glommio::sync::Semaphore::new(
                REQUEST_MEMORY_BYTES_PER_SHARD,
            )),
            producer_ids: ProducerIdBlock::default(),
            groups: GroupCoordinator::default(),
            txns: TxnCoordinator::default(),
            cluster: OnceCell::new(),
            peer_brokers: PeerBrokers::default(),
            replicas: Replicas::default(),
            fetch_sessions,
            free_space,
            storage_recovery: Default::default(),
        }
    }

    /// The cluster side (shard 0 of a node started with
    /// `--controller-quorum-voters`); `None` on a single node.
    pub fn cluster(&self) -> Option<&Rc<ClusterMetadata>> {
        self.cluster.get()
    }

    pub fn set_cluster(&self, cluster: Rc<ClusterMetadata>) {
        let _ = self.cluster.set(cluster);
    }

    pub fn set_mesh(&self, mesh: Rc<ShardMesh>) {
        let _ = self.mesh.set(mesh);
    }

    /// The current metadata image (cheap clone of an `Arc`).
    pub fn catalog(&self) -> Arc<Catalog> {
        Arc::clone(&self.catalog.borrow())
    }

    /// Reads this shard's image in place. For per-partition checks on the
    /// produce and fetch paths: cloning the `Arc` would bump a reference
    /// count that every shard shares (one cache line bouncing between
    /// cores). The borrow ends with `read`, so it cannot cross an `.await`.
    pub fn read_catalog<T>(&self, read: impl FnOnce(&Catalog) -> T) -> T {
        read(&self.catalog.borrow())
    }

    /// Installs a newer image; older or equal versions are ignored, so a
    /// delayed update can never roll metadata back.
    pub fn apply_catalog(self: &Rc<Self>, catalog: Arc<Catalog>) {
        let previous = {
            let mut current = self.catalog.borrow_mut();
            if catalog.version <= current.version {
                return;
            }
            std::mem::replace(&mut *current, Arc::clone(&catalog))
        };
        self.bump_partition_generation();
        // Changed topic configs (AlterConfigs) reach this shard's logs here.
        let partitions = self.partitions.borrow();
        for (name, logs) in partitions.iter() {
            let (Some(old), Some(new)) = (previous.topic(name), catalog.topic(name)) else {
                continue;
            };
            if old.configs != new.configs {
                let log_config = new.configs.log_config(self.config.flush);
                for log in logs.values() {
                    log.update_config(log_config.clone());
                }
            }
        }
        drop(partitions);
        // Leaders, followers and leader epochs follow the new image.
        replicas::sync_roles(self);
    }

    /// See `partition_generation`.
    pub fn partition_generation(&self) -> u64 {
        self.partition_generation.get()
    }

    fn bump_partition_generation(&self) {
        self.partition_generation
            .set(self.partition_generation.get().wrapping_add(1));
    }

    pub fn owner_of(&self, topic: &str, partition: i32) -> usize {
        owner_shard(topic, partition, self.shard_count)
    }

    /// Looks up many partitions with one borrow of the image and of the log
    /// table (`PartitionLookup`: a topic's name is hashed once for a run of
    /// its partitions). `look` must not await: the borrows end with it.
    pub fn with_partition_lookup<T>(&self, look: impl FnOnce(&mut PartitionLookup<'_>) -> T) -> T {
        let catalog = self.catalog.borrow();
        let logs = self.partitions.borrow();
        let mut lookup = PartitionLookup::new(self.config.node_id, &catalog, &logs);
        look(&mut lookup)
    }

    /// The log of a partition this shard owns (it also holds the
    /// partition's idempotent-producer and transaction state).
    pub fn partition_log(&self, topic: &str, partition: i32) -> Option<PartitionLog> {
        self.partitions
            .borrow()
            .get(topic)
            .and_then(|partitions| partitions.get(&partition))
            .cloned()
    }

    /// Every partition log this shard owns, with its topic and index.
    pub fn local_partitions(&self) -> Vec<(Arc<str>, i32, PartitionLog)> {
        self.partitions
            .borrow()
            .iter()
            .flat_map(|(topic, partitions)| {
                partitions
                    .iter()
                    .map(|(partition, log)| (Arc::clone(topic), *partition, log.clone()))
            })
            .collect()
    }

    /// Puts `log` in place of a partition's log (a follower's log after
    /// `truncate_to`); nothing if the partition is gone meanwhile.
    pub fn replace_partition_log(&self, topic: &str, partition: i32, log: PartitionLog) {
        self.bump_partition_generation();
        if let Some(slot) = self
            .partitions
            .borrow_mut()
            .get_mut(topic)
            .and_then(|partitions| partitions.get_mut(&partition))
        {
            *slot = log;
        }
    }

    pub fn local_logs(&self) -> Vec<PartitionLog> {
        self.partitions
            .borrow()
            .values()
            .flat_map(|partitions| partitions.values().cloned())
            .collect()
    }

    pub fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.config.data_dir.join(format!("{topic}-{partition}"))
    }

    /// Opens (creating if needed) the given partitions of `topic` on this
    /// shard; returns those that could not open, with the reason.
    pub async fn open_partitions(
        &self,
        topic: &TopicMetadata,
        partitions: &[i32],
    ) -> Vec<(i32, String)> {
        for &partition in partitions {
            assert_eq!(
                self.owner_of(&topic.name, partition),
                self.id,
                "opening {}-{partition} on a shard that does not own it",
                topic.name
            );
        }
        let log_config = topic.configs.log_config(self.config.flush);
        // A bounded number at once: each open holds a few descriptors (the
        // directory, its files) and reads a little of the disk.
        let opened: Vec<_> = futures::stream::iter(partitions.iter().map(|&partition| {
            let dir = self.partition_dir(&topic.name, partition);
            let log_config = log_config.clone();
            async move { (partition, PartitionLog::open(dir, log_config).await) }
        }))
        .buffer_unordered(crate::limits::PARTITION_OPENS_IN_FLIGHT)
        .collect()
        .await;
        let mut offsets_partitions = Vec::new();
        let mut state_partitions = Vec::new();
        let mut failed = Vec::new();
        {
            let mut logs = self.partitions.borrow_mut();
            self.bump_partition_generation();
            let topic_logs = logs.entry(Arc::clone(&topic.name)).or_default();
            for (partition, result) in opened {
                match result {
                    Ok(log) => {
                        // A leader stamps its epoch from the start; a
                        // follower's epochs come with the leader's batches
                        // (`replicas::sync_roles` sets both up).
                        let assignment = self.read_catalog(|catalog| {
                            catalog
                                .partition(&topic.name, partition)
                                .map(|assignment| (assignment.leader, assignment.leader_epoch))
                        });
                        let me = self.config.node_id;
                        if let Some((_, leader_epoch)) =
                            assignment.filter(|(leader, _)| *leader == me)
                        {
                            log.set_leader_epoch(leader_epoch);
                        }
                        // Coordinators run where the partition is led (a
                        // new topic's partitions are, until the catalog
                        // says otherwise: `replicas::sync_roles`).
                        // The transaction coordinator's epoch is the
                        // leader epoch (`replicas::follow_coordinator`).
                        let coordinates = assignment.is_none_or(|(leader, _)| leader == me);
                        let leader_epoch = assignment.map_or(0, |(_, epoch)| epoch);
                        let key = (Arc::clone(&topic.name), partition);
                        if coordinates && &*topic.name == OFFSETS_TOPIC {
                            self.replicas.start_coordinating(key, leader_epoch);
                            offsets_partitions.push((partition, log.clone()));
                        } else if coordinates && &*topic.name == TRANSACTION_STATE_TOPIC {
                            self.replicas.start_coordinating(key, leader_epoch);
                            state_partitions.push((partition, leader_epoch, log.clone()));
                        }
                        topic_logs.insert(partition, log);
                    }
                    Err(error) => {
                        tracing::error!(
                            topic = %topic.name, partition, %error,
                            "cannot open partition log; it will answer NOT_LEADER_OR_FOLLOWER"
                        );
                        failed.push((partition, error.to_string()));
                    }
                }
            }
        }
        // This shard coordinates the groups of its offsets partitions.
        for (partition, log) in offsets_partitions {
            self.groups.load(&self.config.groups, partition, log).await;
        }
        // ... and the transactional ids of its transaction state partitions.
        for (partition, leader_epoch, log) in state_partitions {
            let loaded =
                txn::coordinator::replay(&self.config.transactions, partition, leader_epoch, log)
                    .await;
            // Unless leadership moved on while it loaded (`replicas::follow_coordinator`).
            let key = (Arc::clone(&topic.name), partition);
            if self.replicas.coordinating_epoch(&key) == Some(leader_epoch) {
                self.txns.install(loaded);
            }
        }
        failed
    }

    /// Opens every partition of every topic in the image that this shard owns.
    pub async fn open_owned_partitions(&self) {
        let catalog = self.catalog();
        for topic in catalog.topics() {
            let owned: Vec<i32> = (0..topic.partition_count)
                .filter(|&p| self.owner_of(&topic.name, p) == self.id)
                .collect();
            if !owned.is_empty() {
                // Failures are logged; those partitions answer NOT_LEADER_OR_FOLLOWER.
                self.open_partitions(topic, &owned).await;
            }
        }
    }

    /// Closes and deletes the given partitions of `topic` on this shard.
    pub async fn delete_partitions(&self, topic: &str, partitions: &[i32]) {
        for &partition in partitions {
            self.assert_owner(topic, partition);
        }
        let removed: Vec<(i32, PartitionLog)> = {
            let mut logs = self.partitions.borrow_mut();
            self.bump_partition_generation();
            let Some(topic_logs) = logs.get_mut(topic) else {
                return;
            };
            let removed = partitions
                .iter()
                .filter_map(|p| topic_logs.remove(p).map(|log| (*p, log)))
                .collect();
            if topic_logs.is_empty() {
                logs.remove(topic);
            }
            removed
        };
        for (partition, log) in removed {
            self.replicas
                .stop_coordinating(&(Arc::from(topic), partition));
            if topic == OFFSETS_TOPIC {
                self.groups.unload(partition);
            } else if topic == TRANSACTION_STATE_TOPIC {
                self.txns.unload(partition);
            }
            if let Err(error) = log.delete().await {
                tracing::error!(topic, partition, %error, "deleting partition log failed");
            }
        }
    }

    /// Closes every local log (graceful shutdown): flush, sync, trim.
    pub async fn close_all(&self) {
        replicas::checkpoint_high_watermarks(self).await;
        let logs = self.local_logs();
        // A bounded number at once: each close writes its index and
        // snapshot files, and 10,000 at once ran out of descriptors.
        let in_flight = crate::limits::partition_closes_in_flight(crate::log::open_file_budget());
        let results: Vec<_> = futures::stream::iter(logs.iter().map(|log| log.close()))
            .buffer_unordered(in_flight)
            .collect()
            .await;
        for error in results.into_iter().filter_map(Result::err) {
            tracing::error!(%error, "closing a partition log failed");
        }
    }

    /// This shard's end of the mesh (`None` with one shard). Calls go
    /// through `routing`, which picks the hop.
    pub fn mesh(&self) -> Option<&Rc<ShardMesh>> {
        self.mesh.get()
    }

    /// Asserts that this shard owns `topic`/`partition` (only the owner
    /// touches a partition's log: DESIGN.md, "The shard model").
    pub fn assert_owner(&self, topic: &str, partition: i32) {
        debug_assert_eq!(
            self.owner_of(topic, partition),
            self.id,
            "{topic}-{partition} touched on shard {} but owned by another",
            self.id
        );
    }
}
