//! ListOffsets: earliest, latest, by timestamp and max timestamp, answered by
//! each partition's owner and gathered in request order. Runs on the shard
//! that accepted the connection.
//!
//! v10's `timeout_ms` (KIP-1075) bounds lookups in remote (tiered) storage;
//! every offset here is in the local log, so it is never waited on.
//!
//! Data plane: imports nothing from the control plane.

use std::rc::Rc;
use std::sync::Arc;

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::partition_calls::{ListOffsetsCall, OffsetOutcome, OffsetQuery};
use super::scatter::{scatter_gather, OwnerWork};
use super::shard::Shard;
use crate::protocol::errors::KafkaError;

pub async fn handle_list_offsets(
    shard: &Rc<Shard>,
    request: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let catalog = shard.catalog();
    let failed = OffsetOutcome::error;
    // Every requested partition: a query to run, or an outcome already known.
    let mut queries: Vec<OffsetQuery> = Vec::new();
    let mut plan: Vec<Vec<(i32, Result<usize, OffsetOutcome>)>> =
        Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let known = catalog.topic(topic.name.0.as_str());
        let slots = topic
            .partitions
            .iter()
            .map(|p| {
                let slot = match known {
                    Some(meta) if meta.has_partition(p.partition_index) => {
                        queries.push(OffsetQuery {
                            topic: Arc::clone(&meta.name),
                            partition: p.partition_index,
                            timestamp: p.timestamp,
                            read_committed: version >= 2 && request.isolation_level == 1,
                            current_leader_epoch: p.current_leader_epoch,
                        });
                        Ok(queries.len() - 1)
                    }
                    _ => Err(failed(KafkaError::UnknownTopicOrPartition.code())),
                };
                (p.partition_index, slot)
            })
            .collect();
        plan.push(slots);
    }
    let answers = run_queries(shard, queries).await;
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
                            .unwrap_or(failed(KafkaError::NotLeaderOrFollower.code())),
                        Err(outcome) => outcome,
                    };
                    ListOffsetsPartitionResponse::default()
                        .with_partition_index(partition)
                        .with_error_code(outcome.error_code)
                        .with_timestamp(outcome.timestamp)
                        .with_offset(outcome.offset)
                        // leader_epoch exists from v4; older versions must leave the default.
                        .with_leader_epoch(if outcome.error_code == 0 && version >= 4 {
                            outcome.leader_epoch
                        } else {
                            -1
                        })
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

async fn run_queries(shard: &Rc<Shard>, queries: Vec<OffsetQuery>) -> Vec<OffsetOutcome> {
    scatter_gather::<OffsetWork>(shard, &queries).await
}

struct OffsetWork;

impl OwnerWork for OffsetWork {
    type Item = OffsetQuery;
    type Outcome = OffsetOutcome;
    fn owner(shard: &Shard, query: &OffsetQuery) -> usize {
        shard.owner_of(&query.topic, query.partition)
    }
    type Call = ListOffsetsCall;
    fn call(queries: Vec<OffsetQuery>) -> ListOffsetsCall {
        ListOffsetsCall(queries)
    }
    fn unreachable() -> OffsetOutcome {
        OffsetOutcome::error(KafkaError::NotLeaderOrFollower.code())
    }
}
