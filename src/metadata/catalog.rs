//! The metadata image every shard reads: topics by name and by id. Immutable
//! once built; the controller (shard 0) makes a new one with a higher version
//! for every change and pushes it whole, so a shard never sees half an update.
//! `Arc` because an image crosses cores once per update; reads are local.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use uuid::Uuid;

use super::topic_config::TopicConfigs;

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

/// A versioned, immutable metadata image.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub version: u64,
    pub cluster_id: Arc<str>,
    topics: BTreeMap<Arc<str>, Arc<TopicMetadata>>,
    topic_names_by_id: HashMap<Uuid, Arc<str>>,
}

impl Catalog {
    pub fn new(cluster_id: Arc<str>, topics: impl IntoIterator<Item = TopicMetadata>) -> Catalog {
        let mut catalog = Catalog {
            version: 1,
            cluster_id,
            ..Catalog::default()
        };
        for topic in topics {
            catalog.insert(Arc::new(topic));
        }
        catalog
    }

    fn insert(&mut self, topic: Arc<TopicMetadata>) {
        self.topic_names_by_id
            .insert(topic.topic_id, Arc::clone(&topic.name));
        self.topics.insert(Arc::clone(&topic.name), topic);
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

    /// A new image with `topic` added, one version later.
    pub fn with_topic(&self, topic: TopicMetadata) -> Catalog {
        let mut next = self.clone();
        next.version += 1;
        next.insert(Arc::new(topic));
        next
    }

    /// A new image without `name`, one version later.
    pub fn without_topic(&self, name: &str) -> Catalog {
        let mut next = self.clone();
        next.version += 1;
        if let Some(topic) = next.topics.remove(name) {
            next.topic_names_by_id.remove(&topic.topic_id);
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(name: &str, partitions: i32) -> TopicMetadata {
        TopicMetadata {
            name: Arc::from(name),
            topic_id: Uuid::new_v4(),
            partition_count: partitions,
            configs: TopicConfigs::default(),
        }
    }

    #[test]
    fn changes_make_new_versions_and_keep_ids_consistent() {
        let first = Catalog::new(Arc::from("cluster"), [topic("a", 3)]);
        let added = first.with_topic(topic("b", 1));
        assert_eq!(added.version, first.version + 1);
        let b_id = added.topic("b").map(|t| t.topic_id).expect("b exists");
        assert_eq!(added.topic_by_id(&b_id).map(|t| &*t.name), Some("b"));
        let removed = added.without_topic("b");
        assert!(removed.topic("b").is_none());
        assert!(removed.topic_by_id(&b_id).is_none());
        assert!(first.topic("b").is_none(), "old image unchanged");
    }
}
