//! ElectLeaders (API 43, KIP-183/KIP-460): any shard takes the request and
//! shard 0 forwards it to the active controller, which elects and answers
//! each partition (`cluster::metadata::leader_elections`); the answer waits
//! until this node published the new leaders, so a Metadata request right
//! after it shows them. A single node leads all its partitions already: its
//! answers are ELECTION_NOT_NEEDED, or UNKNOWN_TOPIC_OR_PARTITION.

use std::rc::Rc;

use futures::future::LocalBoxFuture;
use futures::FutureExt;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::admin::AdminError;
use super::routing::{self, ShardCall};
use super::shard::{Shard, CONTROLLER_SHARD};
use crate::cluster::control::{ControlOutcome, ControlRequest, TopicElectionAnswer};
use crate::cluster::metadata::leader_elections::{ElectionRefusal, ElectionType};
use crate::protocol::errors::KafkaError;

/// Any shard -> shard 0: one ElectLeaders request.
pub struct ElectLeadersCall {
    pub request: ElectLeadersRequest,
    pub version: i16,
}

impl ShardCall<Shard> for ElectLeadersCall {
    type Reply = ElectLeadersResponse;
    fn start(self, shard: &Rc<Shard>) -> LocalBoxFuture<'static, Self::Reply> {
        let shard = Rc::clone(shard);
        async move { elect_on_shard_zero(&shard, self.request, self.version).await }.boxed_local()
    }
}

/// ElectLeaders, answered on any shard.
pub async fn elect_leaders(
    shard: &Rc<Shard>,
    request: ElectLeadersRequest,
    version: i16,
) -> ElectLeadersResponse {
    let asked = asked_partitions(&request);
    match routing::call(
        shard,
        CONTROLLER_SHARD,
        ElectLeadersCall { request, version },
    )
    .await
    {
        Ok(response) => response,
        Err(_) => refused_response(
            asked.as_deref(),
            &AdminError::new(KafkaError::NotController, "shard 0 is not reachable"),
        ),
    }
}

/// The (topic, partitions) asked for; `None` for every partition.
fn asked_partitions(request: &ElectLeadersRequest) -> Option<Vec<(String, Vec<i32>)>> {
    request.topic_partitions.as_ref().map(|topics| {
        topics
            .iter()
            .map(|topic| (topic.topic.to_string(), topic.partitions.clone()))
            .collect()
    })
}

async fn elect_on_shard_zero(
    shard: &Rc<Shard>,
    request: ElectLeadersRequest,
    version: i16,
) -> ElectLeadersResponse {
    assert_eq!(shard.id, CONTROLLER_SHARD, "elections are asked on shard 0");
    let asked = asked_partitions(&request);
    // v0 has no election type: preferred, as before KIP-460.
    let election_type = if version >= 1 {
        request.election_type
    } else {
        0
    };
    let Some(election) = ElectionType::from_wire(election_type) else {
        return refused_response(
            asked.as_deref(),
            &AdminError::new(
                KafkaError::InvalidRequest,
                format!("Unknown election type {election_type}"),
            ),
        );
    };
    let Some(cluster) = shard.cluster() else {
        return single_node_answer(shard, asked.as_deref());
    };
    let call = ControlRequest::ElectLeaders {
        unclean: election == ElectionType::Unclean,
        partitions: asked.clone(),
    };
    match cluster.commit(call).await {
        Ok(ControlOutcome::LeadersElected(topics)) => response(topics),
        Ok(other) => refused_response(
            asked.as_deref(),
            &AdminError::new(
                KafkaError::UnknownServerError,
                format!("the controller answered {other:?}"),
            ),
        ),
        Err(refusal) => refused_response(asked.as_deref(), &refusal),
    }
}

/// A single node: every partition it has is led by it.
fn single_node_answer(shard: &Shard, asked: Option<&[(String, Vec<i32>)]>) -> ElectLeadersResponse {
    let Some(asked) = asked else {
        // Nothing to elect anywhere; every topic answers with no partition.
        let catalog = shard.catalog();
        let topics = catalog
            .topics()
            .map(|topic| TopicElectionAnswer {
                topic: topic.name.to_string(),
                partitions: Vec::new(),
            })
            .collect();
        return response(topics);
    };
    let catalog = shard.catalog();
    let topics = asked
        .iter()
        .map(|(name, partitions)| TopicElectionAnswer {
            topic: name.clone(),
            partitions: partitions
                .iter()
                .map(|&partition| {
                    let refusal = match catalog.topic(name) {
                        None => ElectionRefusal::UnknownTopic(name.clone()),
                        Some(topic) if partition < 0 || partition >= topic.partition_count => {
                            ElectionRefusal::UnknownPartition {
                                topic: name.clone(),
                                partition,
                            }
                        }
                        Some(_) => ElectionRefusal::NotNeeded,
                    };
                    (
                        partition,
                        refusal.kafka_error().code(),
                        Some(refusal.to_string()),
                    )
                })
                .collect(),
        })
        .collect();
    response(topics)
}

fn response(topics: Vec<TopicElectionAnswer>) -> ElectLeadersResponse {
    ElectLeadersResponse::default().with_replica_election_results(
        topics
            .into_iter()
            .map(|topic| {
                ReplicaElectionResult::default()
                    .with_topic(TopicName(StrBytes::from_string(topic.topic)))
                    .with_partition_result(
                        topic
                            .partitions
                            .into_iter()
                            .map(|(partition, code, message)| {
                                PartitionResult::default()
                                    .with_partition_id(partition)
                                    .with_error_code(code)
                                    .with_error_message(message.map(StrBytes::from_string))
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}

/// The whole request refused (Kafka's `getErrorResponse`): the top-level
/// code, and the same code for every partition asked for.
fn refused_response(
    asked: Option<&[(String, Vec<i32>)]>,
    refusal: &AdminError,
) -> ElectLeadersResponse {
    let code = refusal.error.code();
    let topics = asked
        .unwrap_or_default()
        .iter()
        .map(|(topic, partitions)| TopicElectionAnswer {
            topic: topic.clone(),
            partitions: partitions
                .iter()
                .map(|&partition| (partition, code, Some(refusal.message.clone())))
                .collect(),
        })
        .collect();
    response(topics).with_error_code(code)
}
