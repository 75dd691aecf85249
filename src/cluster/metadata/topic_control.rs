//! The controller's topic decisions: CreateTopics, DeleteTopics,
//! CreatePartitions and (Incremental)AlterConfigs, each turned into records
//! or a `ControllerError` with Kafka's code and message, checked in Kafka's
//! order. Partitions are replicated (any replication factor up to the live
//! brokers), assigned automatically or by hand (CreateTopics' and
//! CreatePartitions' `assignments`, checked as KRaft checks them). The validation the server's single-node admin path does today
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

/// One CreateTopics entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTopic {
    /// Topic name.
    pub name: String,
    /// Partitions, or -1 for the controller's default.
    pub num_partitions: i32,
    /// Replicas per partition, or -1 for the controller's default (the
    /// broker resolves -1 with its `--default-replication-factor` first).
    pub replication_factor: i16,
    /// Config overrides.
    pub configs: BTreeMap<String, String>,
    /// Replicas by partition index, preferred leader first (CreateTopics'
    /// `assignments`); empty: the controller assigns them. With assignments
    /// `num_partitions` and `replication_factor` must be -1, as in Kafka.
    pub assignments: Vec<(i32, Vec<i32>)>,
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

/// A new partition's replicas and ISR; its leader is the ISR's first
/// member in assignment order.
struct NewPartition {
    replicas: Vec<i32>,
    isr: Vec<i32>,
}

impl NewPartition {
    /// An automatically assigned partition: every replica is live, so all
    /// are in sync and the first leads.
    fn in_sync(replicas: Vec<i32>) -> NewPartition {
        NewPartition {
            isr: replicas.clone(),
            replicas,
        }
    }
}

fn partition_records(
    topic_id: Uuid,
    first_partition: i32,
    partitions: Vec<NewPartition>,
) -> impl Iterator<Item = MetadataRecord> {
    partitions
        .into_iter()
        .zip(first_partition..)
        .map(move |(new, partition)| {
            MetadataRecord::PartitionCreated(PartitionRecord {
                topic_id: *topic_id.as_bytes(),
                partition,
                leader: new.isr.first().copied().unwrap_or(NO_LEADER),
                replicas: new.replicas,
                isr: new.isr,
                leader_epoch: 0,
                partition_epoch: 0,
                adding_replicas: Vec::new(),
                removing_replicas: Vec::new(),
            })
        })
}

impl Controller<'_> {
    fn topic_named(&self, name: &str) -> Result<&TopicImage, ControllerError> {
        self.image
            .topic_by_name(name)
            .ok_or_else(|| ControllerError::UnknownTopic(name.to_string()))
    }

    /// CreateTopics for one topic: the topic, its configs and its
    /// partitions, each led by the first member of its ISR at leader and
    /// partition epoch 0. Without manual assignments the replicas are
    /// assigned over the live brokers from a start drawn from `rng`, all in
    /// sync.
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
        let partitions = if request.assignments.is_empty() {
            self.assign_new_topic(request, rng)?
        } else {
            self.manual_new_topic(request)?
        };
        validate_configs(name, &request.configs)?;
        self.check_node_limit(&partitions)?;
        if topic_id.is_nil() || self.image.topic(&topic_id).is_some() {
            return Err(ControllerError::UnusableTopicId(topic_id));
        }
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
        records.extend(partition_records(topic_id, 0, partitions));
        Ok(records)
    }

    /// A new topic's partitions from its partition count and replication
    /// factor (-1: the defaults), assigned over the live brokers.
    fn assign_new_topic(
        &self,
        request: &CreateTopic,
        rng: u64,
    ) -> Result<Vec<NewPartition>, ControllerError> {
        let partitions = match request.num_partitions {
            -1 => self.settings.default_partitions,
            count => count,
        };
        check_partition_count(partitions)?;
        let replication_factor = match request.replication_factor {
            -1 => i32::from(self.settings.default_replication_factor),
            factor if factor < 1 => {
                return Err(ControllerError::InvalidReplicationFactor(
                    "Replication factor must be larger than 0.".into(),
                ))
            }
            factor => i32::from(factor),
        };
        let live_brokers = self.image.live_broker_ids();
        let start = AssignmentStart::from_rng(rng, live_brokers.len());
        let assignment = assign_replicas(&live_brokers, 0, partitions, replication_factor, start)?;
        Ok(assignment.into_iter().map(NewPartition::in_sync).collect())
    }

    /// A new topic's partitions from CreateTopics' manual assignments,
    /// checked as Kafka's `ReplicationControlManager.createTopic` does.
    fn manual_new_topic(
        &self,
        request: &CreateTopic,
    ) -> Result<Vec<NewPartition>, ControllerError> {
        if request.replication_factor != -1 {
            return Err(ControllerError::InvalidRequest(
                "A manual partition assignment was specified, but replication factor was not set to -1.".into(),
            ));
        }
        if request.num_partitions != -1 {
            return Err(ControllerError::InvalidRequest(
                "A manual partition assignment was specified, but numPartitions was not set to -1."
                    .into(),
            ));
        }
        let mut by_index: BTreeMap<i32, NewPartition> = BTreeMap::new();
        let mut replication_factor = None;
        for (partition, replicas) in &request.assignments {
            if by_index.contains_key(partition) {
                return Err(ControllerError::InvalidReplicaAssignment(format!(
                    "Found multiple manual partition assignments for partition {partition}"
                )));
            }
            let new = self.manual_partition(*partition, replicas, replication_factor)?;
            replication_factor = Some(replicas.len());
            by_index.insert(*partition, new);
        }
        let consecutive = by_index.keys().copied().eq(0..by_index.len() as i32);
        if !consecutive {
            return Err(ControllerError::InvalidReplicaAssignment(
                "partitions should be a consecutive 0-based integer sequence".into(),
            ));
        }
        check_partition_count(by_index.len() as i32)?;
        Ok(by_index.into_values().collect())
    }

    /// One manually assigned partition (Kafka's
    /// `validateManualPartitionAssignment`): a non-empty list of distinct
    /// registered brokers, as many as the other partitions have; its ISR
    /// is the live ones, and at least one must be live.
    fn manual_partition(
        &self,
        partition: i32,
        replicas: &[i32],
        replication_factor: Option<usize>,
    ) -> Result<NewPartition, ControllerError> {
        let refuse = |message: String| Err(ControllerError::InvalidReplicaAssignment(message));
        if replicas.is_empty() {
            return refuse(
                "The manual partition assignment includes an empty replica list.".into(),
            );
        }
        let mut sorted = replicas.to_vec();
        sorted.sort_unstable();
        for (index, broker_id) in sorted.iter().enumerate() {
            if self.image.broker(*broker_id).is_none() {
                return refuse(format!("The manual partition assignment includes broker {broker_id}, but no such broker is registered."));
            }
            if index > 0 && sorted[index - 1] == *broker_id {
                return refuse(format!("The manual partition assignment includes the broker {broker_id} more than once."));
            }
        }
        if let Some(expected) = replication_factor.filter(|expected| *expected != replicas.len()) {
            return refuse(format!("The manual partition assignment includes a partition with {} replica(s), but this is not consistent with previous partitions, which have {expected} replica(s).", replicas.len()));
        }
        let isr: Vec<i32> = replicas
            .iter()
            .copied()
            .filter(|broker_id| self.image.is_live(*broker_id))
            .collect();
        if isr.is_empty() {
            return refuse(format!("All brokers specified in the manual partition assignment for partition {partition} are fenced or in controlled shutdown."));
        }
        Ok(NewPartition {
            replicas: replicas.to_vec(),
            isr,
        })
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

    /// CreatePartitions: grow `name` to `count` partitions with the topic's
    /// replication factor, continuing the spread of the existing ones, or
    /// with `assignments` (one replica list per new partition, checked as
    /// CreateTopics' are).
    pub fn create_partitions(
        &self,
        name: &str,
        count: i32,
        assignments: Option<&[Vec<i32>]>,
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
        let replication_factor = first.map_or(1, |partition| partition.replicas.len());
        let additional = count - current;
        let partitions = match assignments {
            Some(assignments) => {
                if assignments.len() != additional as usize {
                    return Err(ControllerError::InvalidReplicaAssignment(format!(
                        "Attempted to add {additional} additional partition(s), but only {} assignment(s) were specified.",
                        assignments.len()
                    )));
                }
                assignments
                    .iter()
                    .zip(current..)
                    .map(|(replicas, partition)| {
                        self.manual_partition(partition, replicas, Some(replication_factor))
                    })
                    .collect::<Result<Vec<_>, _>>()?
            }
            None => {
                let live_brokers = self.image.live_broker_ids();
                let first_replica = first.and_then(|partition| partition.replicas.first().copied());
                let start = AssignmentStart::continuing(first_replica, &live_brokers, rng);
                assign_replicas(
                    &live_brokers,
                    current,
                    additional,
                    replication_factor as i32,
                    start,
                )?
                .into_iter()
                .map(NewPartition::in_sync)
                .collect()
            }
        };
        self.check_node_limit(&partitions)?;
        Ok(partition_records(topic.topic_id, current, partitions).collect())
    }

    /// POLICY_VIOLATION when `partitions` would give a broker more replicas
    /// than `max_partitions_per_node`, naming the first such broker. Counts
    /// every replica in the image (internal topics too): a creation costs
    /// one pass over the image, nothing on any other path.
    fn check_node_limit(&self, partitions: &[NewPartition]) -> Result<(), ControllerError> {
        let mut added: BTreeMap<i32, u64> = BTreeMap::new();
        for partition in partitions {
            for &broker in &partition.replicas {
                *added.entry(broker).or_default() += 1;
            }
        }
        if added.is_empty() {
            return Ok(());
        }
        let mut held: BTreeMap<i32, u64> = added.keys().map(|&broker| (broker, 0)).collect();
        for topic in self.image.topics() {
            for partition in &topic.partitions {
                for broker in &partition.replicas {
                    if let Some(count) = held.get_mut(broker) {
                        *count += 1;
                    }
                }
            }
        }
        let limit = u64::from(self.settings.max_partitions_per_node);
        for (broker, adding) in added {
            let holding = held.get(&broker).copied().unwrap_or(0);
            if holding + adding > limit {
                return Err(ControllerError::PolicyViolation(node_limit_message(
                    &format!("Broker {broker}"),
                    holding,
                    adding,
                    limit,
                )));
            }
        }
        Ok(())
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

/// Why a creation passing a node's partition limit is refused.
pub(crate) fn node_limit_message(node: &str, holding: u64, adding: u64, limit: u64) -> String {
    format!(
        "{node} holds {holding} partition replicas; {adding} more would pass its limit of \
         {limit} (--max-partitions-per-node)."
    )
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
