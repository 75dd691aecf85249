//! ElectLeaders (KIP-183, KIP-460) as the controller decides it: for each
//! named partition (or every partition), a preferred election moves the
//! leadership to the first assigned replica when it is live and in sync; an
//! unclean election gives a leaderless partition a leader, from its ISR if
//! it can, else any live replica (the ISR becomes that one broker, and
//! records only the old ISR had may be lost: what an operator asks for).
//!
//! The answers follow the Java controller (`ReplicationControlManager.
//! electLeaders`): ELECTION_NOT_NEEDED when the partition already has the
//! leader asked for (and, when every partition was asked for, such
//! partitions are left out of the answer), PREFERRED_LEADER_NOT_AVAILABLE /
//! ELIGIBLE_LEADERS_NOT_AVAILABLE when no election is possible, and
//! UNKNOWN_TOPIC_OR_PARTITION for names that do not exist.
//!
//! Pure; runs on shard 0 of the active controller.

use super::controller::Controller;
use super::image::{PartitionRegistration, NO_LEADER};
use super::partition_control::change_record;
use super::records::MetadataRecord;
use crate::protocol::errors::KafkaError;
use crate::replication::election::{self, LeaderAndIsr};

/// ElectLeaders' election type (KIP-460's `ElectionType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionType {
    /// The first assigned replica, if live and in the ISR (type 0).
    Preferred,
    /// Any live replica for a partition without a leader (type 1).
    Unclean,
}

impl ElectionType {
    /// The wire value's type; `None` for values Kafka does not define.
    pub fn from_wire(value: i8) -> Option<ElectionType> {
        match value {
            0 => Some(ElectionType::Preferred),
            1 => Some(ElectionType::Unclean),
            _ => None,
        }
    }
}

/// Why a partition got no new leader.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ElectionRefusal {
    /// The partition has the leader the election would give it.
    #[error("Leader election not needed for topic partition.")]
    NotNeeded,
    /// The preferred replica is not live or not in sync.
    #[error("The preferred leader was not available.")]
    PreferredLeaderNotAvailable,
    /// No replica may lead.
    #[error("Eligible topic partition leaders are not available.")]
    EligibleLeadersNotAvailable,
    /// No topic by that name.
    #[error("No such topic as {0}")]
    UnknownTopic(String),
    /// The topic has no such partition.
    #[error("No such partition as {topic}-{partition}")]
    UnknownPartition {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: i32,
    },
}

impl ElectionRefusal {
    /// The Kafka error code of the answer.
    pub fn kafka_error(&self) -> KafkaError {
        match self {
            ElectionRefusal::NotNeeded => KafkaError::ElectionNotNeeded,
            ElectionRefusal::PreferredLeaderNotAvailable => KafkaError::PreferredLeaderNotAvailable,
            ElectionRefusal::EligibleLeadersNotAvailable => KafkaError::EligibleLeadersNotAvailable,
            ElectionRefusal::UnknownTopic(_) | ElectionRefusal::UnknownPartition { .. } => {
                KafkaError::UnknownTopicOrPartition
            }
        }
    }
}

/// One partition's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionElection {
    /// The partition.
    pub partition: i32,
    /// `Ok` when a new leader was elected.
    pub result: Result<(), ElectionRefusal>,
}

/// One topic's answers, in the order asked (or the image's order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicElections {
    /// The topic.
    pub topic: String,
    /// Its partitions' answers.
    pub partitions: Vec<PartitionElection>,
}

/// The decision: records to propose and the answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadersElected {
    /// One `PartitionChanged` per new leader.
    pub records: Vec<MetadataRecord>,
    /// Answers by topic.
    pub topics: Vec<TopicElections>,
}

impl Controller<'_> {
    /// ElectLeaders for `partitions` (topic, indexes), or for every
    /// partition when `None` (answers then leave out ELECTION_NOT_NEEDED).
    pub fn elect_leaders(
        &self,
        election: ElectionType,
        partitions: Option<&[(String, Vec<i32>)]>,
    ) -> LeadersElected {
        let mut records = Vec::new();
        let mut topics = Vec::new();
        match partitions {
            None => {
                for topic in self.image.topics() {
                    let mut answers = Vec::new();
                    for (index, partition) in topic.partitions.iter().enumerate() {
                        let result = self.elect_one(election, partition);
                        let result = result.map(|next| {
                            records.push(change_record(topic.topic_id, index, partition, next));
                        });
                        if result != Err(ElectionRefusal::NotNeeded) {
                            answers.push(PartitionElection {
                                partition: index as i32,
                                result,
                            });
                        }
                    }
                    topics.push(TopicElections {
                        topic: topic.name.clone(),
                        partitions: answers,
                    });
                }
            }
            Some(asked) => {
                for (name, indexes) in asked {
                    let topic = self.image.topic_by_name(name);
                    let answers = indexes
                        .iter()
                        .map(|&index| {
                            let result = match topic {
                                None => Err(ElectionRefusal::UnknownTopic(name.clone())),
                                Some(topic) => match usize::try_from(index)
                                    .ok()
                                    .and_then(|i| topic.partitions.get(i))
                                {
                                    None => Err(ElectionRefusal::UnknownPartition {
                                        topic: name.clone(),
                                        partition: index,
                                    }),
                                    Some(partition) => {
                                        self.elect_one(election, partition).map(|next| {
                                            records.push(change_record(
                                                topic.topic_id,
                                                index as usize,
                                                partition,
                                                next,
                                            ));
                                        })
                                    }
                                },
                            };
                            PartitionElection {
                                partition: index,
                                result,
                            }
                        })
                        .collect();
                    topics.push(TopicElections {
                        topic: name.clone(),
                        partitions: answers,
                    });
                }
            }
        }
        LeadersElected { records, topics }
    }

    /// One partition's election: its new leader and ISR, or why none.
    fn elect_one(
        &self,
        election: ElectionType,
        partition: &PartitionRegistration,
    ) -> Result<LeaderAndIsr, ElectionRefusal> {
        let eligible = |broker_id: i32| self.image.is_live(broker_id);
        let current = LeaderAndIsr {
            leader: partition.leader,
            isr: partition.isr.clone(),
        };
        match election {
            ElectionType::Preferred => {
                if partition.replicas.first() == Some(&partition.leader) {
                    return Err(ElectionRefusal::NotNeeded);
                }
                election::preferred_leader(&partition.replicas, &current, &eligible)
                    .or_else(|| {
                        // Kafka's preferred election still fills an empty
                        // leadership from the ISR when the preferred
                        // replica cannot lead.
                        (partition.leader == NO_LEADER)
                            .then(|| {
                                election::after_broker_returned(
                                    &partition.replicas,
                                    &current,
                                    &eligible,
                                )
                            })
                            .flatten()
                    })
                    .ok_or(ElectionRefusal::PreferredLeaderNotAvailable)
            }
            ElectionType::Unclean => {
                if partition.leader != NO_LEADER {
                    return Err(ElectionRefusal::NotNeeded);
                }
                election::after_broker_returned(&partition.replicas, &current, &eligible)
                    .or_else(|| {
                        election::unclean_leader(&partition.replicas, &eligible).map(|leader| {
                            LeaderAndIsr {
                                leader,
                                isr: vec![leader],
                            }
                        })
                    })
                    .ok_or(ElectionRefusal::EligibleLeadersNotAvailable)
            }
        }
    }
}
