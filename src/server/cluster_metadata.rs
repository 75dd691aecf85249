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
//! is); it tells a restarted node that the `<topic>-<n>` directories it
//! finds belong to an older topic of the same name, deleted while the node
//! was away, so they are removed instead of served as the new topic's data.

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
use super::routing::ShardCall;
use super::shard::Shard;
use crate::cluster::control::{ControlError, ControlOutcome, ControlRequest};
use crate::cluster::node::{ClusterNode, CALL_TIMEOUT};
use crate::cluster::quorum::runtime::GlommioRuntime;
use crate::metadata::catalog::{Catalog, TopicMetadata};
use crate::metadata::manifest;

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
    /// `manifests` are the topics this data directory held at start-up.
    pub async fn start(
        shard: &Rc<Shard>,
        node: Rc<ClusterNode>,
        manifests: Vec<TopicMetadata>,
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
            manifests: manifests
                .into_iter()
                .map(|topic| (Arc::clone(&topic.name), topic))
                .collect(),
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
    /// Local manifests by topic name.
    manifests: HashMap<Arc<str>, TopicMetadata>,
}

impl Publisher {
    async fn publish(&mut self) {
        let node = &self.metadata.node;
        let offset = node.image_offset();
        self.version += 1;
        let catalog = node.catalog(self.version, &self.shard.config.topic_defaults);
        let wanted = hosted_here(&catalog, node.node_id);
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
            self.manifests.remove(&name);
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
                .collect();
            if new.is_empty() {
                continue;
            }
            let Some(topic) = catalog.topic(name).cloned() else {
                continue;
            };
            self.forget_stale_topic(&topic).await;
            if let Err(error) = manifest::store(&self.shard.config.data_dir, &topic).await {
                tracing::error!(topic = %name, %error, "cannot write topic manifest");
            }
            self.manifests.insert(Arc::clone(name), (*topic).clone());
            self.open_local(&topic, &new).await;
        }
        self.hosted = wanted;
        publish_catalog(&self.shard, catalog).await;
        self.metadata.published.send_replace(offset);
    }

    /// Removes the partitions an older topic of the same name left here.
    async fn forget_stale_topic(&mut self, topic: &Arc<TopicMetadata>) {
        let Some(stale) = self.manifests.get(&topic.name).cloned() else {
            return;
        };
        if stale.topic_id == topic.topic_id {
            return;
        }
        tracing::warn!(
            topic = %topic.name,
            "removing partitions of a deleted topic of the same name"
        );
        let partitions: Vec<i32> = (0..stale.partition_count).collect();
        self.open_local(&Arc::new(stale.clone()), &partitions).await;
        self.delete_local(&stale.name, &partitions).await;
        if let Err(error) = manifest::remove(&self.shard.config.data_dir, &stale.topic_id).await {
            tracing::warn!(topic = %stale.name, %error, "cannot remove topic manifest");
        }
        self.manifests.remove(&topic.name);
    }

    async fn open_local(&self, topic: &Arc<TopicMetadata>, partitions: &[i32]) {
        open_on_owners(&self.shard, topic, partitions.iter().copied()).await;
    }

    async fn delete_local(&self, name: &Arc<str>, partitions: &[i32]) {
        delete_on_owners(&self.shard, name, partitions.iter().copied()).await;
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
