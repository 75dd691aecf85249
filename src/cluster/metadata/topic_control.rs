//! The controller's topic decisions: CreateTopics, DeleteTopics,
//! CreatePartitions and (Incremental)AlterConfigs, each turned into records
//! or a `ControllerError` with Kafka's code and message, checked in Kafka's
//! order. The validation the server's single-node admin path does today
//! (names, counts, configs) moves here so that there is one judge of a
//! metadata change: the active controller. Pure; runs on shard 0 of the
//! active controller (see `controller.rs` for the rules of use).

use std::collections::BTreeMap;

use uuid::Uuid;

use super::assignment::{assign_replicas, AssignmentStart};
use super::controller::{Controller, MAX_PARTITIONS_PER_TOPIC};
use super::errors::ControllerError;
use super::image::{TopicImage, NO_LEADER};
use super::records::{MetadataRecord, PartitionRecord};
use crate::metadata::topic_config::{check_supported, TopicConfigs};
use crate::metadata::topic_name::{is_internal_topic, validate_topic_name};

/// One CreateTopics entry (replica assignments by hand are not supported).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTopic {
    /// Topic name.
    pub name: String,
    /// Partitions, or -1 for the controller's default.
    pub num_partitions: i32,
    /// Replicas per partition, or -1 for the default (1).
    pub replication_factor: i16,
    /// Config overrides.
    pub configs: BTreeMap<String, String>,
}

fn validate_configs(
    name: &str,
    overrides: &BTreeMap<String, String>,
) -> Result<(), ControllerError> {
    // Internal topics keep their own (compact) policy; users' cannot ask for one.
    if !is_internal_topic(name) {
        check_supported(overrides).map_err(ControllerError::InvalidConfig)?;
    }
    TopicConfigs::from_overrides(overrides.clone()).map_err(ControllerError::InvalidConfig)?;
    Ok(())
}

fn partition_records(
    topic_id: Uuid,
    first_partition: i32,
    assignment: Vec<Vec<i32>>,
) -> impl Iterator<Item = MetadataRecord> {
    assignment
        .into_iter()
        .zip(first_partition..)
        .map(move |(replicas, partition)| {
            MetadataRecord::PartitionCreated(PartitionRecord {
                topic_id: *topic_id.as_bytes(),
                partition,
                isr: replicas.clone(),
                leader: replicas.first().copied().unwrap_or(NO_LEADER),
                replicas,
                leader_epoch: 0,
                partition_epoch: 0,
            })
        })
}

impl Controller<'_> {
    fn topic_named(&self, name: &str) -> Result<&TopicImage, ControllerError> {
        self.image
            .topic_by_name(name)
            .ok_or_else(|| ControllerError::UnknownTopic(name.to_string()))
    }

    /// CreateTopics for one topic: the topic, its configs and its partitions
    /// assigned over the live brokers from a start drawn from `rng`, every
    /// partition led by its first replica at leader and partition epoch 0.
    pub fn create_topic(
        &self,
        request: &CreateTopic,
        topic_id: Uuid,
        rng: u64,
    ) -> Result<Vec<MetadataRecord>, ControllerError> {
        let name = request.name.as_str();
        validate_topic_name(name).map_err(ControllerError::InvalidTopicName)?;
        if self.image.topic_by_name(name).is_some() {
            return Err(ControllerError::TopicAlreadyExists(name.to_string()));
        }
        let partitions = match request.num_partitions {
            -1 => self.settings.default_partitions,
            count => count,
        };
        check_partition_count(partitions)?;
        let replication_factor = match request.replication_factor {
            -1 | 1 => 1,
            factor if factor < 1 => {
                return Err(ControllerError::InvalidReplicationFactor(
                    "Replication factor must be larger than 0.".into(),
                ))
            }
            factor => {
                return Err(ControllerError::InvalidReplicationFactor(format!(
                    "Replication factor {factor} is not supported: corelog does not replicate partitions yet, use 1"
                )))
            }
        };
        validate_configs(name, &request.configs)?;
        if topic_id.is_nil() || self.image.topic(&topic_id).is_some() {
            return Err(ControllerError::UnusableTopicId(topic_id));
        }
        let live_brokers = self.image.live_broker_ids();
        let start = AssignmentStart::from_rng(rng, live_brokers.len());
        let assignment = assign_replicas(&live_brokers, 0, partitions, replication_factor, start)?;
        let mut records = vec![MetadataRecord::TopicCreated {
            name: name.to_string(),
            topic_id: *topic_id.as_bytes(),
        }];
        records.extend(request.configs.iter().map(|(key, value)| {
            MetadataRecord::TopicConfigChanged {
                topic_id: *topic_id.as_bytes(),
                key: key.clone(),
                value: Some(value.clone()),
            }
        }));
        records.extend(partition_records(topic_id, 0, assignment));
        Ok(records)
    }

    /// DeleteTopics by name.
    pub fn delete_topic(&self, name: &str) -> Result<Vec<MetadataRecord>, ControllerError> {
        let topic = self.topic_named(name)?;
        Ok(vec![MetadataRecord::TopicRemoved {
            topic_id: *topic.topic_id.as_bytes(),
        }])
    }

    /// DeleteTopics by topic id (v6+).
    pub fn delete_topic_by_id(
        &self,
        topic_id: Uuid,
    ) -> Result<Vec<MetadataRecord>, ControllerError> {
        if self.image.topic(&topic_id).is_none() {
            return Err(ControllerError::UnknownTopicId(topic_id));
        }
        Ok(vec![MetadataRecord::TopicRemoved {
            topic_id: *topic_id.as_bytes(),
        }])
    }

    /// CreatePartitions: grow `name` to `count` partitions, continuing the
    /// spread of the existing ones, with the topic's replication factor.
    pub fn create_partitions(
        &self,
        name: &str,
        count: i32,
        rng: u64,
    ) -> Result<Vec<MetadataRecord>, ControllerError> {
        let topic = self.topic_named(name)?;
        let current = topic.partitions.len() as i32;
        if count < current {
            return Err(ControllerError::InvalidPartitions(format!(
                "Topic currently has {current} partitions, which is higher than the requested {count}."
            )));
        }
        if count == current {
            return Err(ControllerError::InvalidPartitions(format!(
                "Topic already has {current} partitions."
            )));
        }
        check_partition_count(count)?;
        let first = topic.partitions.first();
        let replication_factor = first.map_or(1, |partition| partition.replicas.len() as i32);
        let live_brokers = self.image.live_broker_ids();
        let first_replica = first.and_then(|partition| partition.replicas.first().copied());
        let start = AssignmentStart::continuing(first_replica, &live_brokers, rng);
        let assignment = assign_replicas(
            &live_brokers,
            current,
            count - current,
            replication_factor,
            start,
        )?;
        Ok(partition_records(topic.topic_id, current, assignment).collect())
    }

    /// IncrementalAlterConfigs for a topic: each `(key, Some(value))` sets a
    /// config, `(key, None)` returns it to its default. Only effective changes
    /// become records. List operations (APPEND/SUBTRACT) are resolved to
    /// values by the caller.
    pub fn alter_topic_configs(
        &self,
        name: &str,
        changes: &[(String, Option<String>)],
    ) -> Result<Vec<MetadataRecord>, ControllerError> {
        let topic = self.topic_named(name)?;
        let mut next = topic.configs.clone();
        for (key, value) in changes {
            match value {
                Some(value) => next.insert(key.clone(), value.clone()),
                None => next.remove(key),
            };
        }
        self.replace_topic_configs(name, &next)
    }

    /// AlterConfigs (non-incremental) for a topic: `configs` become its whole
    /// set of overrides.
    pub fn replace_topic_configs(
        &self,
        name: &str,
        configs: &BTreeMap<String, String>,
    ) -> Result<Vec<MetadataRecord>, ControllerError> {
        let topic = self.topic_named(name)?;
        validate_configs(name, configs)?;
        let topic_id = *topic.topic_id.as_bytes();
        let removed = topic
            .configs
            .keys()
            .filter(|key| !configs.contains_key(*key))
            .map(|key| (key, None));
        let set = configs
            .iter()
            .filter(|(key, value)| topic.configs.get(*key) != Some(*value))
            .map(|(key, value)| (key, Some(value.clone())));
        Ok(removed
            .chain(set)
            .map(|(key, value)| MetadataRecord::TopicConfigChanged {
                topic_id,
                key: key.clone(),
                value,
            })
            .collect())
    }
}

fn check_partition_count(count: i32) -> Result<(), ControllerError> {
    if count < 1 {
        return Err(ControllerError::InvalidPartitions(
            "Number of partitions must be larger than 0.".into(),
        ));
    }
    if count > MAX_PARTITIONS_PER_TOPIC {
        return Err(ControllerError::InvalidPartitions(format!(
            "Number of partitions {count} is above corelog's limit of {MAX_PARTITIONS_PER_TOPIC}."
        )));
    }
    Ok(())
}
