//! The metadata image every shard reads: the live brokers, the controller,
//! topics by name and by id, and each partition's assignment (replicas, ISR,
//! leader, leader epoch). Immutable once built; the controller (shard 0)
//! makes a new one with a higher version for every change and pushes it
//! whole, so a shard never sees half an update. `Arc` because an image
//! crosses cores once per update; reads are local, and the per-request
//! lookups (`partition_leader`) are a map lookup and an index, no allocation.
//!
//! On a single node (`Catalog::single_node`) the one broker is the
//! controller and leads every partition at leader epoch 0; in a cluster the
//! image comes from the metadata log (`MetadataImage::to_catalog_with`).
//!
//! Registered but fenced brokers are kept apart (`fenced_brokers`): clients
//! are never sent to them, so `brokers()` stays the live ones and only
//! DescribeCluster v2 with `include_fenced_brokers` (KIP-1073) shows them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use uuid::Uuid;

use super::topic_config::TopicConfigs;

/// Kafka's "no broker" id: no controller known, or a partition without a
/// live leader (Metadata answers LEADER_NOT_AVAILABLE for it).
pub const NO_BROKER: i32 = -1;

/// One topic as the cluster knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicMetadata {
    pub name: Arc<str>,
    pub topic_id: Uuid,
    pub partition_count: i32,
    pub configs: TopicConfigs,
}

impl TopicMetadata {
    pub fn has_partition(&self, partition: i32) -> bool {
        (0..self.partition_count).contains(&partition)
    }

    /// One of Kafka's internal topics (see `topic_name::is_internal_topic`).
    pub fn is_internal(&self) -> bool {
        super::topic_name::is_internal_topic(&self.name)
    }
}

/// A registered broker as Metadata and DescribeCluster report it. The
/// catalog keeps live (unfenced) brokers and fenced ones in separate lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerMetadata {
    pub node_id: i32,
    /// The advertised host and port (`--advertised-address`).
    pub host: Arc<str>,
    pub port: u16,
    /// Kafka's `broker.rack` (`--rack`), if given.
    pub rack: Option<Arc<str>>,
}

/// A partition's replication state as clients are told it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionAssignment {
    /// Broker ids of the replicas, preferred leader first.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// The live leader, or [`NO_BROKER`] when it has none or it is fenced.
    pub leader: i32,
    pub leader_epoch: i32,
    /// Bumped by the controller on every change of the partition (KIP-497):
    /// what a leader sends back in AlterPartition. 0 on a single node.
    pub partition_epoch: i32,
    /// Replicas an ongoing reassignment adds (KIP-455), in `replicas`.
    pub adding_replicas: Vec<i32>,
    /// Replicas an ongoing reassignment removes, in `replicas`.
    pub removing_replicas: Vec<i32>,
}

impl PartitionAssignment {
    /// The one replica, in sync and leader at epoch 0: every partition of a
    /// single node.
    pub fn led_by(node_id: i32) -> PartitionAssignment {
        PartitionAssignment {
            replicas: vec![node_id],
            isr: vec![node_id],
            leader: node_id,
            leader_epoch: 0,
            partition_epoch: 0,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        }
    }
}

/// A versioned, immutable metadata image.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub version: u64,
    pub cluster_id: Arc<str>,
    /// The active controller, or [`NO_BROKER`].
    controller_id: i32,
    /// Live, unfenced brokers sorted by id.
    brokers: Arc<[BrokerMetadata]>,
    /// Registered brokers that are fenced, sorted by id; none of them is in
    /// `brokers`.
    fenced_brokers: Arc<[BrokerMetadata]>,
    topics: BTreeMap<Arc<str>, Arc<TopicMetadata>>,
    topic_names_by_id: HashMap<Uuid, Arc<str>>,
    /// Per topic name, one entry per partition, by index.
    partitions: HashMap<Arc<str>, Arc<[PartitionAssignment]>>,
}

impl Default for Catalog {
    fn default() -> Catalog {
        Catalog {
            version: 0,
            cluster_id: Arc::from(""),
            controller_id: NO_BROKER,
            brokers: Arc::from(Vec::new()),
            fenced_brokers: Arc::from(Vec::new()),
            topics: BTreeMap::new(),
            topic_names_by_id: HashMap::new(),
            partitions: HashMap::new(),
        }
    }
}

impl Catalog {
    /// A cluster's image: `brokers` are the live ones, each topic comes with
    /// one assignment per partition.
    pub fn new(
        cluster_id: Arc<str>,
        controller_id: i32,
        mut brokers: Vec<BrokerMetadata>,
        topics: impl IntoIterator<Item = (TopicMetadata, Vec<PartitionAssignment>)>,
    ) -> Catalog {
        brokers.sort_by_key(|broker| broker.node_id);
        let mut catalog = Catalog {
            version: 1,
            cluster_id,
            controller_id,
            brokers: Arc::from(brokers),
            ..Catalog::default()
        };
        for (topic, partitions) in topics {
            catalog.insert(Arc::new(topic), Arc::from(partitions));
        }
        catalog
    }

    /// This image with `fenced` as its registered-but-fenced brokers (a
    /// cluster's image; a single node has none). A broker cannot be live and
    /// fenced at once.
    pub fn with_fenced_brokers(mut self, mut fenced: Vec<BrokerMetadata>) -> Catalog {
        fenced.sort_by_key(|broker| broker.node_id);
        for broker in &fenced {
            assert!(
                self.brokers
                    .binary_search_by_key(&broker.node_id, |live| live.node_id)
                    .is_err(),
                "broker {} is listed as live and as fenced",
                broker.node_id
            );
        }
        self.fenced_brokers = Arc::from(fenced);
        self
    }

    /// A single node's image: `broker` is the controller and leads every
    /// partition (one replica, in sync, leader epoch 0).
    pub fn single_node(
        cluster_id: Arc<str>,
        broker: BrokerMetadata,
        topics: impl IntoIterator<Item = TopicMetadata>,
    ) -> Catalog {
        let node_id = broker.node_id;
        let topics = topics.into_iter().map(|topic| {
            let partitions = led_by(node_id, topic.partition_count);
            (topic, partitions)
        });
        Catalog::new(cluster_id, node_id, vec![broker], topics)
    }

    fn insert(&mut self, topic: Arc<TopicMetadata>, partitions: Arc<[PartitionAssignment]>) {
        assert_eq!(
            partitions.len(),
            usize::try_from(topic.partition_count).unwrap_or(0),
            "topic {} needs one assignment per partition",
            topic.name
        );
        if let Some(old) = self.topics.get(&topic.name) {
            self.topic_names_by_id.remove(&old.topic_id);
        }
        self.topic_names_by_id
            .insert(topic.topic_id, Arc::clone(&topic.name));
        self.partitions.insert(Arc::clone(&topic.name), partitions);
        self.topics.insert(Arc::clone(&topic.name), topic);
    }

    /// The active controller's id, or [`NO_BROKER`] while none is known.
    pub fn controller_id(&self) -> i32 {
        self.controller_id
    }

    /// The live brokers, sorted by id: what Metadata and DescribeCluster list.
    pub fn brokers(&self) -> &[BrokerMetadata] {
        &self.brokers
    }

    /// The registered brokers that are fenced, sorted by id (DescribeCluster
    /// v2 lists them with `is_fenced` when asked). Empty on a single node.
    pub fn fenced_brokers(&self) -> &[BrokerMetadata] {
        &self.fenced_brokers
    }

    /// Whether `node_id` is a live (registered, unfenced) broker.
    pub fn is_live_broker(&self, node_id: i32) -> bool {
        self.brokers
            .binary_search_by_key(&node_id, |broker| broker.node_id)
            .is_ok()
    }

    /// The replicas of `assignment` whose broker is not live (fenced or
    /// unregistered): Metadata's `offline_replicas`, as KRaft brokers
    /// report them.
    pub fn offline_replicas(&self, assignment: &PartitionAssignment) -> Vec<i32> {
        assignment
            .replicas
            .iter()
            .copied()
            .filter(|replica| !self.is_live_broker(*replica))
            .collect()
    }

    pub fn topic(&self, name: &str) -> Option<&Arc<TopicMetadata>> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, topic_id: &Uuid) -> Option<&Arc<TopicMetadata>> {
        self.topic_names_by_id
            .get(topic_id)
            .and_then(|name| self.topics.get(name))
    }

    pub fn topics(&self) -> impl Iterator<Item = &Arc<TopicMetadata>> {
        self.topics.values()
    }

    /// A topic's partitions, by index (empty for an unknown topic).
    pub fn partitions(&self, topic: &str) -> &[PartitionAssignment] {
        self.partitions
            .get(topic)
            .map_or(&[], |partitions| partitions)
    }

    /// A partition's assignment, `None` for an unknown topic or partition.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionAssignment> {
        let index = usize::try_from(partition).ok()?;
        self.partitions(topic).get(index)
    }

    /// The partition's live leader: `None` for an unknown partition or one
    /// without a leader (fenced or none). No allocation: the produce and
    /// fetch paths ask it per partition.
    pub fn partition_leader(&self, topic: &str, partition: i32) -> Option<i32> {
        self.partition(topic, partition)
            .map(|assignment| assignment.leader)
            .filter(|leader| *leader != NO_BROKER)
    }

    /// A new image with `topic` added or replaced, one version later, with
    /// these assignments (one per partition).
    pub fn with_topic(
        &self,
        topic: TopicMetadata,
        partitions: Vec<PartitionAssignment>,
    ) -> Catalog {
        let mut next = self.clone();
        next.version += 1;
        next.insert(Arc::new(topic), Arc::from(partitions));
        next
    }

    /// Like [`with_topic`](Self::with_topic) on a single node: the
    /// partitions the topic already has keep their assignment, new ones are
    /// led by `node_id` alone (CreateTopics, CreatePartitions and config
    /// changes of the single-node admin code).
    pub fn with_topic_led_by(&self, topic: TopicMetadata, node_id: i32) -> Catalog {
        let count = usize::try_from(topic.partition_count).unwrap_or(0);
        let mut partitions: Vec<PartitionAssignment> = self
            .partitions(&topic.name)
            .iter()
            .take(count)
            .cloned()
            .collect();
        partitions.resize(count, PartitionAssignment::led_by(node_id));
        self.with_topic(topic, partitions)
    }

    /// A new image without `name`, one version later.
    pub fn without_topic(&self, name: &str) -> Catalog {
        let mut next = self.clone();
        next.version += 1;
        if let Some(topic) = next.topics.remove(name) {
            next.topic_names_by_id.remove(&topic.topic_id);
        }
        next.partitions.remove(name);
        next
    }
}

fn led_by(node_id: i32, partition_count: i32) -> Vec<PartitionAssignment> {
    let count = usize::try_from(partition_count).unwrap_or(0);
    vec![PartitionAssignment::led_by(node_id); count]
}

/// Catalog pieces for tests here and in the server's data plane.
#[cfg(test)]
pub(crate) mod test_fixtures {
    use std::sync::Arc;

    use uuid::Uuid;

    use super::{BrokerMetadata, TopicMetadata};
    use crate::metadata::topic_config::TopicConfigs;

    pub(crate) fn topic(name: &str, partitions: i32) -> TopicMetadata {
        TopicMetadata {
            name: Arc::from(name),
            topic_id: Uuid::new_v4(),
            partition_count: partitions,
            configs: TopicConfigs::default(),
        }
    }

    pub(crate) fn broker(node_id: i32) -> BrokerMetadata {
        BrokerMetadata {
            node_id,
            host: Arc::from("localhost"),
            port: 9092,
            rack: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_fixtures::{broker, topic};
    use super::*;

    #[test]
    fn changes_make_new_versions_and_keep_ids_consistent() {
        let first = Catalog::single_node(Arc::from("cluster"), broker(0), [topic("a", 3)]);
        let added = first.with_topic_led_by(topic("b", 1), 0);
        assert_eq!(added.version, first.version + 1);
        let b_id = added.topic("b").map(|t| t.topic_id).expect("b exists");
        assert_eq!(added.topic_by_id(&b_id).map(|t| &*t.name), Some("b"));
        let removed = added.without_topic("b");
        assert!(removed.topic("b").is_none());
        assert!(removed.topic_by_id(&b_id).is_none());
        assert!(removed.partitions("b").is_empty());
        assert!(first.topic("b").is_none(), "old image unchanged");
    }

    #[test]
    fn a_single_node_is_controller_and_leads_every_partition() {
        let catalog = Catalog::single_node(Arc::from("cluster"), broker(7), [topic("a", 3)]);
        assert_eq!(catalog.controller_id(), 7);
        assert_eq!(catalog.brokers(), &[broker(7)]);
        assert!(catalog.fenced_brokers().is_empty());
        for partition in 0..3 {
            assert_eq!(catalog.partition_leader("a", partition), Some(7));
            assert_eq!(
                catalog.partition("a", partition),
                Some(&PartitionAssignment::led_by(7))
            );
        }
        assert_eq!(catalog.partition_leader("a", 3), None);
        assert_eq!(catalog.partition_leader("a", -1), None);
        assert_eq!(catalog.partition_leader("missing", 0), None);
    }

    #[test]
    fn growing_a_topic_keeps_existing_assignments() {
        let mut other = PartitionAssignment::led_by(2);
        other.leader_epoch = 4;
        let first = Catalog::new(
            Arc::from("cluster"),
            1,
            vec![broker(2), broker(1)],
            [(topic("a", 1), vec![other.clone()])],
        );
        assert_eq!(
            first
                .brokers()
                .iter()
                .map(|b| b.node_id)
                .collect::<Vec<_>>(),
            vec![1, 2]
        );
        let a = TopicMetadata {
            partition_count: 3,
            ..(**first.topic("a").expect("a exists")).clone()
        };
        let grown = first.with_topic_led_by(a, 1);
        assert_eq!(grown.partitions("a")[0], other);
        assert_eq!(grown.partition_leader("a", 2), Some(1));
        assert!(grown
            .topic_by_id(&grown.topic("a").expect("a").topic_id)
            .is_some());
    }

    #[test]
    fn a_partition_without_leader_has_none() {
        let mut leaderless = PartitionAssignment::led_by(2);
        leaderless.leader = NO_BROKER;
        let catalog = Catalog::new(
            Arc::from("cluster"),
            NO_BROKER,
            Vec::new(),
            [(topic("a", 1), vec![leaderless])],
        );
        assert_eq!(catalog.partition_leader("a", 0), None);
        assert!(catalog.partition("a", 0).is_some());
    }

    #[test]
    fn fenced_brokers_are_kept_apart_from_the_live_ones() {
        let catalog = Catalog::new(Arc::from("cluster"), 1, vec![broker(1)], [])
            .with_fenced_brokers(vec![broker(3), broker(2)]);
        assert_eq!(catalog.brokers(), &[broker(1)]);
        let fenced: Vec<i32> = catalog.fenced_brokers().iter().map(|b| b.node_id).collect();
        assert_eq!(fenced, vec![2, 3]);
        // Replicas on fenced or unknown brokers are offline.
        let mut assignment = PartitionAssignment::led_by(1);
        assignment.replicas = vec![1, 2, 4];
        assert_eq!(catalog.offline_replicas(&assignment), vec![2, 4]);
        assert!(catalog.is_live_broker(1) && !catalog.is_live_broker(2));
        let single = Catalog::single_node(Arc::from("cluster"), broker(7), [topic("a", 1)]);
        let partition = single.partition("a", 0).expect("exists");
        assert!(single.offline_replicas(partition).is_empty());
        // New versions keep them.
        let next = catalog.with_topic_led_by(topic("a", 1), 1);
        assert_eq!(next.fenced_brokers().len(), 2);
    }

    #[test]
    #[should_panic(expected = "live and as fenced")]
    fn a_broker_cannot_be_live_and_fenced() {
        let _ = Catalog::new(Arc::from("cluster"), 1, vec![broker(1)], [])
            .with_fenced_brokers(vec![broker(1)]);
    }

    /// The cluster side: `MetadataImage::to_catalog_with` puts fenced
    /// registrations in the fenced list and keeps them out of `brokers()`.
    #[test]
    fn a_cluster_image_lists_its_fenced_registrations_apart() {
        use crate::cluster::metadata::records::{BrokerRegistrationRecord, MetadataRecord};
        use crate::cluster::metadata::MetadataImage;

        let registered = |broker_id: i32| {
            MetadataRecord::BrokerRegistered(BrokerRegistrationRecord {
                broker_id,
                incarnation_id: [broker_id as u8; 16],
                broker_epoch: 10 + i64::from(broker_id),
                host: format!("node{broker_id}"),
                port: 9092,
                rack: (broker_id == 3).then(|| "rack-c".to_string()),
            })
        };
        let unfenced = |broker_id: i32| MetadataRecord::BrokerUnfenced {
            broker_id,
            broker_epoch: 10 + i64::from(broker_id),
        };
        let records = [
            MetadataRecord::ClusterId {
                cluster_id: "cluster-1".into(),
            },
            registered(1),
            registered(2),
            registered(3),
            unfenced(1),
            unfenced(2),
        ];
        let image = MetadataImage::from_snapshot(6, &records).expect("replays");
        let catalog = image.to_catalog(4, 1);
        let live: Vec<i32> = catalog.brokers().iter().map(|b| b.node_id).collect();
        assert_eq!(live, vec![1, 2]);
        assert_eq!(
            catalog.fenced_brokers(),
            &[BrokerMetadata {
                node_id: 3,
                host: Arc::from("node3"),
                port: 9092,
                rack: Some(Arc::from("rack-c")),
            }]
        );
    }
}
