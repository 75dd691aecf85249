//! AlterPartitionReassignments (API 45) and ListPartitionReassignments (API
//! 46), KIP-455. Alter goes from any shard to shard 0, which forwards it to
//! the active controller (`cluster::metadata::reassignments` decides) and
//! answers once this node published the result. List reads this shard's
//! catalog: every partition whose replica set is changing, with the
//! replicas being added and removed.
//!
//! A single node has one broker: the only valid target is itself, which
//! changes nothing.

use std::rc::Rc;

use futures::future::LocalBoxFuture;
use futures::FutureExt;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::admin::AdminError;
use super::routing::{self, ShardCall};
use super::shard::{Shard, CONTROLLER_SHARD};
use crate::cluster::control::{ControlOutcome, ControlRequest, TopicElectionAnswer};
use crate::cluster::metadata::reassignments::ReassignmentRefusal;
use crate::metadata::catalog::{Catalog, PartitionAssignment};
use crate::protocol::errors::KafkaError;

/// Targets by topic: (partition, replicas or `None` to cancel).
type Targets = Vec<(String, Vec<(i32, Option<Vec<i32>>)>)>;

/// Any shard -> shard 0: one AlterPartitionReassignments request.
pub struct AlterReassignmentsCall {
    pub request: AlterPartitionReassignmentsRequest,
    pub version: i16,
}

impl ShardCall<Shard> for AlterReassignmentsCall {
    type Reply = AlterPartitionReassignmentsResponse;
    fn start(self, shard: &Rc<Shard>) -> LocalBoxFuture<'static, Self::Reply> {
        let shard = Rc::clone(shard);
        async move { alter_on_shard_zero(&shard, self.request, self.version).await }.boxed_local()
    }
}

/// AlterPartitionReassignments, answered on any shard.
pub async fn alter_partition_reassignments(
    shard: &Rc<Shard>,
    request: AlterPartitionReassignmentsRequest,
    version: i16,
) -> AlterPartitionReassignmentsResponse {
    let targets = targets(&request);
    match routing::call(
        shard,
        CONTROLLER_SHARD,
        AlterReassignmentsCall { request, version },
    )
    .await
    {
        Ok(response) => response,
        Err(_) => refused(
            &targets,
            &AdminError::new(KafkaError::NotController, "shard 0 is not reachable"),
        ),
    }
}

fn targets(request: &AlterPartitionReassignmentsRequest) -> Targets {
    request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|partition| {
                    let replicas = partition
                        .replicas
                        .as_ref()
                        .map(|replicas| replicas.iter().map(|broker| broker.0).collect());
                    (partition.partition_index, replicas)
                })
                .collect();
            (topic.name.to_string(), partitions)
        })
        .collect()
}

async fn alter_on_shard_zero(
    shard: &Rc<Shard>,
    request: AlterPartitionReassignmentsRequest,
    version: i16,
) -> AlterPartitionReassignmentsResponse {
    assert_eq!(
        shard.id, CONTROLLER_SHARD,
        "reassignments are asked on shard 0"
    );
    let targets = targets(&request);
    // v0 has no flag: the replication factor may change (KIP-860).
    let allow_replication_factor_change = version < 1 || request.allow_replication_factor_change;
    let Some(cluster) = shard.cluster() else {
        return single_node_answer(shard, &targets);
    };
    let call = ControlRequest::AlterPartitionReassignments {
        topics: targets.clone(),
        allow_replication_factor_change,
    };
    match cluster.commit(call).await {
        Ok(ControlOutcome::ReassignmentsAltered(topics)) => response(topics),
        Ok(other) => refused(
            &targets,
            &AdminError::new(
                KafkaError::UnknownServerError,
                format!("the controller answered {other:?}"),
            ),
        ),
        Err(refusal) => refused(&targets, &refusal),
    }
}

/// A single node: its own id is the only target, and nothing moves.
fn single_node_answer(shard: &Shard, targets: &Targets) -> AlterPartitionReassignmentsResponse {
    let catalog = shard.catalog();
    let node = shard.config.node_id;
    let topics = targets
        .iter()
        .map(|(name, partitions)| TopicElectionAnswer {
            topic: name.clone(),
            partitions: partitions
                .iter()
                .map(|(partition, target)| {
                    let refusal = match catalog.topic(name) {
                        None => Some(ReassignmentRefusal::UnknownTopic(name.clone())),
                        Some(topic) if *partition < 0 || *partition >= topic.partition_count => {
                            Some(ReassignmentRefusal::UnknownPartition {
                                topic: name.clone(),
                                partition: *partition,
                            })
                        }
                        Some(_) => match target.as_deref() {
                            None => Some(ReassignmentRefusal::NoReassignmentInProgress),
                            Some([only]) if *only == node => None,
                            Some([]) => Some(ReassignmentRefusal::InvalidReplicaAssignment(
                                "The manual partition assignment includes an empty replica list."
                                    .into(),
                            )),
                            Some(brokers) => {
                                let stranger = brokers
                                    .iter()
                                    .find(|broker| **broker != node)
                                    .copied()
                                    .unwrap_or(node);
                                Some(ReassignmentRefusal::InvalidReplicaAssignment(if stranger == node {
                                    format!("The manual partition assignment includes the broker {node} more than once.")
                                } else {
                                    format!("The manual partition assignment includes broker {stranger}, but no such broker is registered.")
                                }))
                            }
                        },
                    };
                    match refusal {
                        None => (*partition, 0, None),
                        Some(refusal) => (
                            *partition,
                            refusal.kafka_error().code(),
                            Some(refusal.to_string()),
                        ),
                    }
                })
                .collect(),
        })
        .collect();
    response(topics)
}

fn response(topics: Vec<TopicElectionAnswer>) -> AlterPartitionReassignmentsResponse {
    AlterPartitionReassignmentsResponse::default().with_responses(
        topics
            .into_iter()
            .map(|topic| {
                ReassignableTopicResponse::default()
                    .with_name(TopicName(StrBytes::from_string(topic.topic)))
                    .with_partitions(
                        topic
                            .partitions
                            .into_iter()
                            .map(|(partition, code, message)| {
                                ReassignablePartitionResponse::default()
                                    .with_partition_index(partition)
                                    .with_error_code(code)
                                    .with_error_message(message.map(StrBytes::from_string))
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}

/// The whole request refused: the top-level code and message, and the same
/// for every partition.
fn refused(targets: &Targets, refusal: &AdminError) -> AlterPartitionReassignmentsResponse {
    let code = refusal.error.code();
    let topics = targets
        .iter()
        .map(|(topic, partitions)| TopicElectionAnswer {
            topic: topic.clone(),
            partitions: partitions
                .iter()
                .map(|(partition, _)| (*partition, code, Some(refusal.message.clone())))
                .collect(),
        })
        .collect();
    response(topics)
        .with_error_code(code)
        .with_error_message(Some(StrBytes::from_string(refusal.message.clone())))
}

/// ListPartitionReassignments from this shard's catalog. Unknown topics
/// and partitions are left out, as Kafka does.
pub fn list_partition_reassignments(
    shard: &Shard,
    request: &ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    let catalog = shard.catalog();
    let topics = match &request.topics {
        None => catalog
            .topics()
            .filter_map(|topic| {
                let indexes = 0..topic.partition_count;
                ongoing_topic(&catalog, &topic.name, indexes)
            })
            .collect(),
        Some(asked) => asked
            .iter()
            .filter_map(|topic| {
                ongoing_topic(
                    &catalog,
                    &topic.name,
                    topic.partition_indexes.iter().copied(),
                )
            })
            .collect(),
    };
    ListPartitionReassignmentsResponse::default().with_topics(topics)
}

fn ongoing_topic(
    catalog: &Catalog,
    name: &str,
    indexes: impl Iterator<Item = i32>,
) -> Option<OngoingTopicReassignment> {
    let partitions: Vec<OngoingPartitionReassignment> = indexes
        .filter_map(|index| {
            let assignment = catalog.partition(name, index)?;
            is_reassigning(assignment).then(|| {
                let brokers = |ids: &[i32]| ids.iter().copied().map(BrokerId).collect();
                OngoingPartitionReassignment::default()
                    .with_partition_index(index)
                    .with_replicas(brokers(&assignment.replicas))
                    .with_adding_replicas(brokers(&assignment.adding_replicas))
                    .with_removing_replicas(brokers(&assignment.removing_replicas))
            })
        })
        .collect();
    (!partitions.is_empty()).then(|| {
        OngoingTopicReassignment::default()
            .with_name(TopicName(StrBytes::from_string(name.to_string())))
            .with_partitions(partitions)
    })
}

fn is_reassigning(assignment: &PartitionAssignment) -> bool {
    !assignment.adding_replicas.is_empty() || !assignment.removing_replicas.is_empty()
}
