//! A cluster node's metadata on its shards (shard 0 runs it): turns every
//! change of the cluster image (`cluster::node::ClusterNode`) into a new
//! `Catalog` on every shard, after opening the partitions this node now
//! hosts and deleting those whose topic is gone. Admin requests answered on
//! this node go through `commit` here: the active controller decides, and
//! the answer waits until this node has published the result, so a
//! Metadata request right after a CreateTopics shows the topic.
//!
//! Each hosted topic gets a local manifest (its id and partition count) as
//! on a single node. It is not the source of truth here (the metadata log
//! is); it records which topic id the `<topic>-<n>` directories belong to.
//! The first image (published only once this node caught up with the
//! controller, `ClusterNode::join`) sets aside, as Kafka does, the stray
//! replicas the node finds on disk: directories of topics deleted (or
//! deleted and created again under the same name) or of partitions
//! reassigned away while it was down (`metadata::stray_replicas`). They are
//! renamed `<topic>-<n>.<id>-stray`, never served, never deleted by corelog.
//! Deletions and moves seen while the node is up delete the replica at once.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;

use futures::future::{LocalBoxFuture, Shared};
use futures::FutureExt;
use openraft_rt::AsyncRuntime;
use tokio::sync::watch;
use uuid::Uuid;

use super::admin::{delete_on_owners, open_on_owners, publish_catalog, AdminError};
use super::auto_creations::AutoCreations;
use super::routing::{self, ShardCall};
use super::shard::Shard;
use crate::cluster::control::{ControlError, ControlOutcome, ControlRequest};
use crate::cluster::node::{ClusterNode, CALL_TIMEOUT};
use crate::cluster::quorum::runtime::GlommioRuntime;
use crate::metadata::catalog::{Catalog, TopicMetadata};
use crate::metadata::manifest;
use crate::metadata::stray_replicas::{find_stray_replicas, stray_dir_name, LocalLogs};
use crate::runtime::durable_file;

/// The cluster side of shard 0.
pub struct ClusterMetadata {
    pub node: Rc<ClusterNode>,
    /// Topic auto-creations on their way to the controller.
    pub auto_creations: Rc<AutoCreations>,
    /// The image offset whose catalog every shard has.
    published: watch::Sender<Option<u64>>,
    /// The controlled shutdown, once started: every shard awaits the same one.
    shutdown_moves: RefCell<Option<Shared<LocalBoxFuture<'static, ()>>>>,
}

impl ClusterMetadata {
    /// Publishes the current image once (so the node serves its
    /// partitions before it accepts clients), then follows every change.
    /// `local` is what this data directory held at start-up; `node` has
    /// caught up with the controller (`ClusterNode::join`).
    pub async fn start(
        shard: &Rc<Shard>,
        node: Rc<ClusterNode>,
        local: LocalLogs,
    ) -> Rc<ClusterMetadata> {
        let (published, _) = watch::channel(None);
        let metadata = Rc::new(ClusterMetadata {
            node,
            auto_creations: Rc::default(),
            published,
            shutdown_moves: RefCell::new(None),
        });
        let mut publisher = Publisher {
            shard: Rc::clone(shard),
            metadata: Rc::clone(&metadata),
            version: shard.catalog().version,
            hosted: HashMap::new(),
            local: Some(local),
            not_set_aside: HashSet::new(),
        };
        let mut changes = metadata.node.changes();
        changes.borrow_and_update();
        publisher.publish().await;
        glommio::spawn_local(async move {
            while changes.changed().await.is_ok() {
                publisher.publish().await;
            }
        })
        .detach();
        metadata
    }

    /// Sends `request` to the active controller and waits until this node
    /// published its result.
    pub async fn commit(&self, request: ControlRequest) -> Result<ControlOutcome, AdminError> {
        let (outcome, offset) = self.node.call(request).await.map_err(admin_error)?;
        let mut published = self.published.subscribe();
        let reached = GlommioRuntime::timeout(
            CALL_TIMEOUT,
            published.wait_for(|published| *published >= offset),
        )
        .await;
        if reached.is_err() {
            return Err(admin_error(ControlError::TimedOut(CALL_TIMEOUT)));
        }
        Ok(outcome)
    }
}

impl ClusterMetadata {
    /// Moves this node's leaderships away before it stops (controlled
    /// shutdown), waiting until every shard runs with the new roles, so
    /// clients see only retriable errors during a rolling restart. Runs once;
    /// every shard stopping awaits that one run (`ControlledShutdownCall`)
    /// before it closes its logs.
    pub fn controlled_shutdown(self: &Rc<Self>) -> Shared<LocalBoxFuture<'static, ()>> {
        self.shutdown_moves
            .borrow_mut()
            .get_or_insert_with(|| {
                let metadata = Rc::clone(self);
                async move { metadata.move_leaderships_away().await }
                    .boxed_local()
                    .shared()
            })
            .clone()
    }

    async fn move_leaderships_away(&self) {
        let Some(offset) = self.node.controlled_shutdown().await else {
            return;
        };
        let mut published = self.published.subscribe();
        let reached = GlommioRuntime::timeout(
            CALL_TIMEOUT,
            published.wait_for(|published| *published >= Some(offset)),
        )
        .await;
        if reached.is_err() {
            tracing::warn!("controlled shutdown: new leaders not seen in time");
        } else {
            tracing::info!("controlled shutdown: leaderships moved away");
        }
    }
}

/// Any shard -> shard 0: wait for this node's controlled shutdown (starting
/// it if no shard has yet), so no shard closes a log it still leads.
pub struct ControlledShutdownCall;

impl ShardCall<Shard> for ControlledShutdownCall {
    type Reply = ();
    fn start(self, shard: &Rc<Shard>) -> LocalBoxFuture<'static, ()> {
        match shard.cluster() {
            Some(cluster) => cluster.controlled_shutdown().boxed_local(),
            None => async {}.boxed_local(),
        }
    }
}

fn admin_error(error: ControlError) -> AdminError {
    AdminError::new(error.kafka_error(), error.to_string())
}

/// The publishing loop's state.
struct Publisher {
    shard: Rc<Shard>,
    metadata: Rc<ClusterMetadata>,
    version: u64,
    /// Topics with partitions on this node: id -> (name, partitions).
    hosted: HashMap<Uuid, (Arc<str>, Vec<i32>)>,
    /// What the data directory held at start-up, until the first image
    /// has set its stray replicas aside.
    local: Option<LocalLogs>,
    /// Stray replicas whose directory could not be renamed: never opened by
    /// this process, even if the image assigns the partition here, so a
    /// topic created again under the same name is not served the old data
    /// (Kafka takes the whole log directory offline on such an error).
    not_set_aside: HashSet<(Arc<str>, i32)>,
}

impl Publisher {
    async fn publish(&mut self) {
        let node = &self.metadata.node;
        let offset = node.image_offset();
        self.version += 1;
        let catalog = node.catalog(self.version, &self.shard.config.topic_defaults);
        let wanted = hosted_here(&catalog, node.node_id);
        if let Some(local) = self.local.take() {
            self.set_aside_strays(&catalog, &wanted, local).await;
        }
        // Topics gone (deleted, or replaced by a new topic of the same name).
        let gone: Vec<(Uuid, Arc<str>, Vec<i32>)> = self
            .hosted
            .iter()
            .filter(|(topic_id, _)| !wanted.contains_key(*topic_id))
            .map(|(topic_id, (name, partitions))| (*topic_id, Arc::clone(name), partitions.clone()))
            .collect();
        for (topic_id, name, partitions) in gone {
            self.delete_local(&name, &partitions).await;
            if let Err(error) = manifest::remove(&self.shard.config.data_dir, &topic_id).await {
                tracing::warn!(topic = %name, %error, "cannot remove topic manifest");
            }
            self.hosted.remove(&topic_id);
            tracing::info!(topic = %name, "deleted the topic's local partitions");
        }
        // Partitions moved away from this node (a completed reassignment,
        // KIP-455): their replica here is deleted, as Kafka's broker does.
        for (topic_id, (name, partitions)) in &wanted {
            let Some((_, open)) = self.hosted.get(topic_id) else {
                continue;
            };
            let moved: Vec<i32> = open
                .iter()
                .copied()
                .filter(|partition| !partitions.contains(partition))
                .collect();
            if !moved.is_empty() {
                self.delete_local(name, &moved).await;
                tracing::info!(topic = %name, ?moved, "deleted replicas moved to other nodes");
            }
        }
        for (topic_id, (name, partitions)) in &wanted {
            let already: HashSet<i32> = self
                .hosted
                .get(topic_id)
                .map(|(_, open)| open.iter().copied().collect())
                .unwrap_or_default();
            let new: Vec<i32> = partitions
                .iter()
                .copied()
                .filter(|partition| !already.contains(partition))
                .filter(|partition| !self.not_set_aside.contains(&(Arc::clone(name), *partition)))
                .collect();
            if new.is_empty() {
                continue;
            }
            let Some(topic) = catalog.topic(name).cloned() else {
                continue;
            };
            if let Err(error) = manifest::store(&self.shard.config.data_dir, &topic).await {
                tracing::error!(topic = %name, %error, "cannot write topic manifest");
            }
            self.open_local(&topic, &new).await;
        }
        self.hosted = wanted;
        publish_catalog(&self.shard, catalog).await;
        self.metadata.published.send_replace(offset);
    }

    /// Kafka's handling of stray replicas on the first image
    /// (`LogManager.isStrayKraftReplica`): every local log the image does
    /// not give this node is renamed `<topic>-<n>.<id>-stray` on its owning
    /// shard, before any partition of the image is opened (a topic created
    /// again under the same name then starts from an empty directory), and
    /// the manifests of topics no longer hosted here are removed.
    async fn set_aside_strays(
        &mut self,
        catalog: &Catalog,
        wanted: &HashMap<Uuid, (Arc<str>, Vec<i32>)>,
        local: LocalLogs,
    ) {
        let node = &self.metadata.node;
        // Decided on a complete image only, before any partition opens:
        // otherwise nothing is set aside (a stray stays unserved on disk).
        if !node.has_caught_up() || !self.hosted.is_empty() {
            tracing::error!(
                caught_up = node.has_caught_up(),
                open_partitions = self.hosted.len(),
                "stray replicas not looked for: the image is not complete or partitions are open"
            );
            return;
        }
        let data_dir = &self.shard.config.data_dir;
        for left_over in &local.stray_dirs {
            tracing::warn!(
                dir = %data_dir.join(left_over).display(),
                "stray partition directory kept from an earlier start; not served, \
                 delete it once its data is not needed"
            );
        }
        let strays = find_stray_replicas(node.node_id, catalog, &local);
        for stray in &strays {
            let owner = self.shard.owner_of(&stray.topic, stray.partition);
            let call = SetAsideStrayCall {
                topic: Arc::clone(&stray.topic),
                partition: stray.partition,
            };
            let error = match routing::call(&self.shard, owner, call).await {
                Ok(Ok(stray_dir)) => {
                    tracing::warn!(
                        topic = %stray.topic,
                        partition = stray.partition,
                        reason = %stray.reason,
                        dir = %data_dir.join(stray_dir).display(),
                        "stray replica: not served, renamed; delete it once its data is not needed"
                    );
                    continue;
                }
                Ok(Err(error)) => error.to_string(),
                Err(error) => error.to_string(),
            };
            tracing::error!(
                topic = %stray.topic,
                partition = stray.partition,
                reason = %stray.reason,
                %error,
                "stray replica: cannot rename its directory; this node will not serve the \
                 partition until it is moved away and the node restarted"
            );
            self.not_set_aside
                .insert((Arc::clone(&stray.topic), stray.partition));
        }
        if !strays.is_empty() {
            if let Err(error) = durable_file::sync_directory(data_dir).await {
                tracing::error!(%error, "cannot sync the data directory after renaming strays");
            }
        }
        let no_longer_hosted = local
            .topic_ids
            .iter()
            .flat_map(|(name, ids)| ids.iter().map(move |id| (name, id)))
            .filter(|(_, topic_id)| !wanted.contains_key(*topic_id));
        for (name, topic_id) in no_longer_hosted {
            if let Err(error) = manifest::remove(data_dir, topic_id).await {
                tracing::warn!(topic = %name, %error, "cannot remove topic manifest");
            }
        }
        tracing::info!(
            stray = strays.len(),
            kept = local.partitions.len() - strays.len(),
            "first metadata image applied to the local partition logs"
        );
    }

    async fn open_local(&self, topic: &Arc<TopicMetadata>, partitions: &[i32]) {
        // Failures are logged by the owners; those partitions answer
        // NOT_LEADER_OR_FOLLOWER here.
        open_on_owners(&self.shard, topic, partitions.iter().copied()).await;
    }

    async fn delete_local(&self, name: &Arc<str>, partitions: &[i32]) {
        delete_on_owners(&self.shard, name, partitions.iter().copied()).await;
    }
}

/// Shard 0 -> a partition's owner: renames the directory of a stray
/// replica (`Publisher::set_aside_strays`) to `<topic>-<n>.<id>-stray` and
/// answers the new name. The owner has never opened it: stray replicas are
/// set aside before the first image opens anything.
struct SetAsideStrayCall {
    topic: Arc<str>,
    partition: i32,
}

impl ShardCall<Shard> for SetAsideStrayCall {
    type Reply = std::io::Result<String>;
    fn start(self, shard: &Rc<Shard>) -> LocalBoxFuture<'static, Self::Reply> {
        let shard = Rc::clone(shard);
        async move {
            shard.assert_owner(&self.topic, self.partition);
            assert!(
                shard.partition_log(&self.topic, self.partition).is_none(),
                "{}-{} is served here; it cannot be stray",
                self.topic,
                self.partition
            );
            let stray_name = stray_dir_name(&self.topic, self.partition, Uuid::new_v4());
            let from = shard.partition_dir(&self.topic, self.partition);
            glommio::io::rename(&from, shard.config.data_dir.join(&stray_name))
                .await
                .map_err(std::io::Error::from)?;
            Ok(stray_name)
        }
        .boxed_local()
    }
}

/// The partitions with a replica on `node_id`, by topic id.
fn hosted_here(catalog: &Catalog, node_id: i32) -> HashMap<Uuid, (Arc<str>, Vec<i32>)> {
    let mut hosted = HashMap::new();
    for topic in catalog.topics() {
        let partitions: Vec<i32> = catalog
            .partitions(&topic.name)
            .iter()
            .enumerate()
            .filter(|(_, assignment)| assignment.replicas.contains(&node_id))
            .map(|(index, _)| index as i32)
            .collect();
        if !partitions.is_empty() {
            hosted.insert(topic.topic_id, (Arc::clone(&topic.name), partitions));
        }
    }
    hosted
}
