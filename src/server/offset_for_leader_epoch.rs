//! OffsetForLeaderEpoch (KIP-101, KIP-320): where a leader epoch ends in a
//! partition leader's log. Consumers ask after a leader change to check that
//! their position still exists (a position past the end of its epoch was
//! truncated away); followers ask to find their truncation point. Answered by
//! each partition's owner, gathered in request order; runs on the shard that
//! accepted the connection.
//!
//! Data plane: imports nothing from the control plane.

use std::rc::Rc;
use std::sync::Arc;

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::partition_calls::{EndOffsetForEpochCall, EpochOutcome, EpochQuery};
use super::scatter::{scatter_gather, OwnerWork};
use super::shard::Shard;
use crate::protocol::errors::KafkaError;

pub async fn handle_offset_for_leader_epoch(
    shard: &Rc<Shard>,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let catalog = shard.catalog();
    let mut queries: Vec<EpochQuery> = Vec::new();
    // Per topic, per partition: the query's index, or the answer already known.
    let mut plan: Vec<Vec<(i32, Result<usize, EpochOutcome>)>> =
        Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let known = catalog.topic(topic.topic.0.as_str());
        let slots = topic
            .partitions
            .iter()
            .map(|asked| {
                let slot = match known {
                    Some(meta) if meta.has_partition(asked.partition) => {
                        queries.push(EpochQuery {
                            topic: Arc::clone(&meta.name),
                            partition: asked.partition,
                            current_leader_epoch: asked.current_leader_epoch,
                            leader_epoch: asked.leader_epoch,
                        });
                        Ok(queries.len() - 1)
                    }
                    _ => Err(EpochOutcome::error(
                        KafkaError::UnknownTopicOrPartition.code(),
                    )),
                };
                (asked.partition, slot)
            })
            .collect();
        plan.push(slots);
    }
    let answers = scatter_gather::<EpochWork>(shard, &queries).await;
    let topics = request
        .topics
        .into_iter()
        .zip(plan)
        .map(|(topic, slots)| {
            let partitions = slots
                .into_iter()
                .map(|(partition, slot)| {
                    let outcome = match slot {
                        Ok(index) => answers
                            .get(index)
                            .copied()
                            .unwrap_or_else(EpochWork::unreachable),
                        Err(outcome) => outcome,
                    };
                    EpochEndOffset::default()
                        .with_partition(partition)
                        .with_error_code(outcome.error_code)
                        .with_leader_epoch(outcome.leader_epoch)
                        .with_end_offset(outcome.end_offset)
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

struct EpochWork;

impl OwnerWork for EpochWork {
    type Item = EpochQuery;
    type Outcome = EpochOutcome;
    fn owner(shard: &Shard, query: &EpochQuery) -> usize {
        shard.owner_of(&query.topic, query.partition)
    }
    type Call = EndOffsetForEpochCall;
    fn call(queries: Vec<EpochQuery>) -> EndOffsetForEpochCall {
        EndOffsetForEpochCall(queries)
    }
    fn unreachable() -> EpochOutcome {
        EpochOutcome::error(KafkaError::NotLeaderOrFollower.code())
    }
}
