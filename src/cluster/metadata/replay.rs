//! Replay: `MetadataImage::apply`, the one place the image changes (Kafka's
//! `MetadataDelta.replay`). Runs on every node for every committed record and
//! for the records of a snapshot, so it must be deterministic and must never
//! panic: a record that breaks an invariant (a partition of an unknown topic,
//! a second topic with the same name, a stale broker epoch) is a typed
//! [`ReplayError`] and leaves the image unchanged — every check runs before
//! the first mutation. Such an error means a bug or a corrupt log; the caller
//! stops applying and reports it.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::errors::ReplayError;
use super::image::NO_LEADER;
use super::image::{BrokerRegistration, MetadataImage, PartitionRegistration, TopicImage};
use super::records::{MetadataRecord, PartitionChangeRecord, PartitionRecord};
use crate::metadata::topic_config::TopicConfigs;
use crate::metadata::topic_config_catalogue::REMOVED_TOPIC_CONFIGS;

fn check_partition(
    topic_id: Uuid,
    partition: i32,
    state: &PartitionRegistration,
) -> Result<(), ReplayError> {
    let invalid = |reason| ReplayError::InvalidPartition {
        topic_id,
        partition,
        reason,
    };
    let mut seen = Vec::with_capacity(state.replicas.len());
    for replica in &state.replicas {
        if *replica < 0 || seen.contains(replica) {
            return Err(invalid("replicas must be distinct broker ids"));
        }
        seen.push(*replica);
    }
    if seen.is_empty() {
        return Err(invalid("a partition needs at least one replica"));
    }
    let mut isr = Vec::with_capacity(state.isr.len());
    for replica in &state.isr {
        if !seen.contains(replica) || isr.contains(replica) {
            return Err(invalid("the ISR must be distinct replicas"));
        }
        isr.push(*replica);
    }
    if state.leader != NO_LEADER && !isr.contains(&state.leader) {
        return Err(invalid("the leader must be in the ISR"));
    }
    let reassigning = state.adding_replicas.iter().chain(&state.removing_replicas);
    for (index, replica) in reassigning.enumerate() {
        let repeated = state
            .adding_replicas
            .iter()
            .chain(&state.removing_replicas)
            .take(index)
            .any(|earlier| earlier == replica);
        if !seen.contains(replica) || repeated {
            return Err(invalid(
                "adding and removing replicas must be distinct replicas",
            ));
        }
    }
    if state.leader_epoch < 0 || state.partition_epoch < 0 {
        return Err(invalid("epochs cannot be negative"));
    }
    Ok(())
}

impl MetadataImage {
    /// Replays `record`, committed at Raft log index `offset`.
    pub fn apply(&mut self, offset: u64, record: &MetadataRecord) -> Result<(), ReplayError> {
        if let Some(last) = self.last_offset {
            if offset < last {
                return Err(ReplayError::OffsetWentBackwards { last, offset });
            }
        }
        self.apply_record(record)?;
        self.last_offset = Some(offset);
        Ok(())
    }

    /// Replays the records of one log entry (or a snapshot) in order. Stops at
    /// the first error, with the records before it applied.
    pub fn apply_all<'a>(
        &mut self,
        offset: u64,
        records: impl IntoIterator<Item = &'a MetadataRecord>,
    ) -> Result<(), ReplayError> {
        records
            .into_iter()
            .try_for_each(|record| self.apply(offset, record))
    }

    /// A fresh image from a snapshot's records, taken at `offset`.
    pub fn from_snapshot(offset: u64, records: &[MetadataRecord]) -> Result<Self, ReplayError> {
        let mut image = MetadataImage::default();
        image.apply_all(offset, records)?;
        image.last_offset = Some(offset);
        Ok(image)
    }

    fn apply_record(&mut self, record: &MetadataRecord) -> Result<(), ReplayError> {
        match record {
            MetadataRecord::ClusterId { cluster_id } => match &self.cluster_id {
                Some(current) if current != cluster_id => Err(ReplayError::ClusterIdChanged {
                    current: current.clone(),
                    record: cluster_id.clone(),
                }),
                _ => {
                    self.cluster_id = Some(cluster_id.clone());
                    Ok(())
                }
            },
            MetadataRecord::BrokerRegistered(registration) => {
                let broker_id = registration.broker_id;
                if let Some(current) = self.brokers.get(&broker_id) {
                    if registration.broker_epoch <= current.broker_epoch() {
                        return Err(ReplayError::StaleBrokerEpoch {
                            broker_id,
                            current: current.broker_epoch(),
                            record: registration.broker_epoch,
                        });
                    }
                }
                let broker = BrokerRegistration {
                    record: registration.clone(),
                    fenced: true,
                };
                self.brokers.insert(broker_id, broker);
                Ok(())
            }
            MetadataRecord::BrokerFenced {
                broker_id,
                broker_epoch,
            } => self
                .broker_mut(*broker_id, *broker_epoch)
                .map(|b| b.fenced = true),
            MetadataRecord::BrokerUnfenced {
                broker_id,
                broker_epoch,
            } => self
                .broker_mut(*broker_id, *broker_epoch)
                .map(|b| b.fenced = false),
            MetadataRecord::BrokerUnregistered {
                broker_id,
                broker_epoch,
            } => {
                self.broker_mut(*broker_id, *broker_epoch)?;
                self.brokers.remove(broker_id);
                Ok(())
            }
            MetadataRecord::TopicCreated { name, topic_id } => {
                let topic_id = Uuid::from_bytes(*topic_id);
                if self.topic_ids_by_name.contains_key(name) {
                    return Err(ReplayError::DuplicateTopicName(name.clone()));
                }
                if self.topics.contains_key(&topic_id) {
                    return Err(ReplayError::DuplicateTopicId(topic_id));
                }
                self.topic_ids_by_name.insert(name.clone(), topic_id);
                let topic = TopicImage {
                    name: name.clone(),
                    topic_id,
                    configs: BTreeMap::new(),
                    partitions: Vec::new(),
                };
                self.topics.insert(topic_id, topic);
                Ok(())
            }
            MetadataRecord::PartitionCreated(partition) => self.create_partition(partition),
            MetadataRecord::PartitionChanged(change) => self.change_partition(change),
            MetadataRecord::TopicRemoved { topic_id } => {
                let topic_id = Uuid::from_bytes(*topic_id);
                let topic = self
                    .topics
                    .remove(&topic_id)
                    .ok_or(ReplayError::UnknownTopic(topic_id))?;
                self.topic_ids_by_name.remove(&topic.name);
                Ok(())
            }
            MetadataRecord::TopicConfigChanged {
                topic_id,
                key,
                value,
            } => {
                let topic_id = Uuid::from_bytes(*topic_id);
                let topic = self.topic_mut(topic_id)?;
                // A config Kafka 4 removed, written by an older corelog: ignored, as Kafka does.
                if REMOVED_TOPIC_CONFIGS.contains(&key.as_str()) {
                    return Ok(());
                }
                let mut configs = topic.configs.clone();
                match value {
                    Some(value) => configs.insert(key.clone(), value.clone()),
                    None => configs.remove(key),
                };
                TopicConfigs::from_overrides(configs.clone())
                    .map_err(|message| ReplayError::InvalidConfig { topic_id, message })?;
                topic.configs = configs;
                Ok(())
            }
            MetadataRecord::ProducerIdsAllocated {
                next_producer_id, ..
            } => {
                if *next_producer_id <= self.next_producer_id {
                    return Err(ReplayError::ProducerIdWentBackwards {
                        current: self.next_producer_id,
                        record: *next_producer_id,
                    });
                }
                self.next_producer_id = *next_producer_id;
                Ok(())
            }
        }
    }

    fn broker_mut(
        &mut self,
        broker_id: i32,
        broker_epoch: i64,
    ) -> Result<&mut BrokerRegistration, ReplayError> {
        let broker = self
            .brokers
            .get_mut(&broker_id)
            .ok_or(ReplayError::UnknownBroker(broker_id))?;
        if broker.broker_epoch() != broker_epoch {
            return Err(ReplayError::StaleBrokerEpoch {
                broker_id,
                current: broker.broker_epoch(),
                record: broker_epoch,
            });
        }
        Ok(broker)
    }

    fn topic_mut(&mut self, topic_id: Uuid) -> Result<&mut TopicImage, ReplayError> {
        self.topics
            .get_mut(&topic_id)
            .ok_or(ReplayError::UnknownTopic(topic_id))
    }

    fn create_partition(&mut self, record: &PartitionRecord) -> Result<(), ReplayError> {
        let topic_id = Uuid::from_bytes(record.topic_id);
        let topic = self.topic_mut(topic_id)?;
        let expected = topic.partitions.len() as i32;
        if record.partition != expected {
            return Err(ReplayError::PartitionOutOfOrder {
                topic_id,
                partition: record.partition,
                expected,
            });
        }
        let state = PartitionRegistration {
            replicas: record.replicas.clone(),
            isr: record.isr.clone(),
            leader: record.leader,
            leader_epoch: record.leader_epoch,
            partition_epoch: record.partition_epoch,
            adding_replicas: record.adding_replicas.clone(),
            removing_replicas: record.removing_replicas.clone(),
        };
        check_partition(topic_id, record.partition, &state)?;
        topic.partitions.push(state);
        Ok(())
    }

    fn change_partition(&mut self, change: &PartitionChangeRecord) -> Result<(), ReplayError> {
        let topic_id = Uuid::from_bytes(change.topic_id);
        let partition = change.partition;
        let unknown = ReplayError::UnknownPartition {
            topic_id,
            partition,
        };
        let index = usize::try_from(partition).map_err(|_| unknown.clone())?;
        let current = self
            .topic_mut(topic_id)?
            .partitions
            .get_mut(index)
            .ok_or(unknown)?;
        let mut next = current.clone();
        if let Some(replicas) = &change.replicas {
            next.replicas = replicas.clone();
        }
        if let Some(isr) = &change.isr {
            next.isr = isr.clone();
        }
        if let Some(adding) = &change.adding_replicas {
            next.adding_replicas = adding.clone();
        }
        if let Some(removing) = &change.removing_replicas {
            next.removing_replicas = removing.clone();
        }
        let overflow = ReplayError::InvalidPartition {
            topic_id,
            partition,
            reason: "epoch overflow",
        };
        if let Some(leader) = change.leader {
            if leader != next.leader {
                next.leader = leader;
                next.leader_epoch = next.leader_epoch.checked_add(1).ok_or(overflow.clone())?;
            }
        }
        next.partition_epoch = next.partition_epoch.checked_add(1).ok_or(overflow)?;
        check_partition(topic_id, partition, &next)?;
        *current = next;
        Ok(())
    }
}
