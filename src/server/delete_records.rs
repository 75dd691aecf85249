//! DeleteRecords: moves each partition's log start offset (Kafka's low
//! watermark) on its owner, which also deletes the segments wholly below it.
//! Consumers asking below the new start get OFFSET_OUT_OF_RANGE and reset.
//! Runs on the shard that accepted the connection; [`DeleteRecordsCall`]
//! runs on each partition's owner.

use std::rc::Rc;
use std::sync::Arc;

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use futures::future::LocalBoxFuture;
use futures::FutureExt;

use super::partition_ops;
use super::routing::ShardCall;
use super::scatter::{scatter_gather, OwnerWork};
use super::shard::Shard;
use crate::protocol::errors::{KafkaError, NONE};

/// One partition's deletion point (-1 = its high watermark).
#[derive(Debug, Clone)]
pub struct DeleteRecordsItem {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
}

/// The new low watermark, or an error code.
#[derive(Debug, Clone, Copy)]
pub struct DeleteRecordsOutcome {
    pub low_watermark: i64,
    pub error_code: i16,
}

struct DeleteRecordsWork;

impl OwnerWork for DeleteRecordsWork {
    type Item = DeleteRecordsItem;
    type Outcome = DeleteRecordsOutcome;

    fn owner(shard: &Shard, item: &DeleteRecordsItem) -> usize {
        shard.owner_of(&item.topic, item.partition)
    }

    type Call = DeleteRecordsCall;

    fn call(items: Vec<DeleteRecordsItem>) -> DeleteRecordsCall {
        DeleteRecordsCall(items)
    }

    fn unreachable() -> DeleteRecordsOutcome {
        DeleteRecordsOutcome {
            low_watermark: -1,
            error_code: KafkaError::NotLeaderOrFollower.code(),
        }
    }
}

/// Move these partitions' log start offsets (all owned by the callee); one
/// outcome per item, in order.
#[derive(Debug)]
pub struct DeleteRecordsCall(pub Vec<DeleteRecordsItem>);

impl ShardCall<Shard> for DeleteRecordsCall {
    type Reply = Vec<DeleteRecordsOutcome>;
    fn start(self, shard: &Rc<Shard>) -> LocalBoxFuture<'static, Self::Reply> {
        let shard = Rc::clone(shard);
        async move { delete_local(&shard, &self.0).await }.boxed_local()
    }
}

/// On the owner: move each partition's log start offset.
async fn delete_local(shard: &Shard, items: &[DeleteRecordsItem]) -> Vec<DeleteRecordsOutcome> {
    let mut outcomes = Vec::with_capacity(items.len());
    for item in items {
        let outcome = match partition_ops::local_log(shard, &item.topic, item.partition) {
            // Not led here, or its log is gone (deleted meanwhile): the
            // client refreshes its metadata either way.
            Err(_) => DeleteRecordsOutcome {
                low_watermark: -1,
                error_code: KafkaError::NotLeaderOrFollower.code(),
            },
            Ok(log) => match log.delete_records(item.offset).await {
                Ok(low_watermark) => {
                    tracing::info!(topic = %item.topic, partition = item.partition, low_watermark, "records deleted");
                    DeleteRecordsOutcome {
                        low_watermark,
                        error_code: NONE,
                    }
                }
                Err(error) => DeleteRecordsOutcome {
                    low_watermark: -1,
                    error_code: error.code(),
                },
            },
        };
        outcomes.push(outcome);
    }
    outcomes
}

pub async fn handle_delete_records(
    shard: &Rc<Shard>,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let catalog = shard.catalog();
    let mut items = Vec::new();
    // Per requested partition: an index into `items`, or an error now.
    let mut plan: Vec<Vec<(i32, Result<usize, i16>)>> = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let name = topic.name.0.as_str();
        let known = catalog.topic(name);
        let slots = topic
            .partitions
            .iter()
            .map(|p| {
                let slot = match known {
                    // Kafka refuses DeleteRecords on internal topics.
                    Some(meta) if meta.is_internal() => {
                        Err(KafkaError::InvalidTopicException.code())
                    }
                    Some(meta) if meta.has_partition(p.partition_index) => {
                        items.push(DeleteRecordsItem {
                            topic: Arc::clone(&meta.name),
                            partition: p.partition_index,
                            offset: p.offset,
                        });
                        Ok(items.len() - 1)
                    }
                    _ => Err(KafkaError::UnknownTopicOrPartition.code()),
                };
                (p.partition_index, slot)
            })
            .collect();
        plan.push(slots);
    }
    let outcomes = scatter_gather::<DeleteRecordsWork>(shard, &items).await;
    let topics = request
        .topics
        .iter()
        .zip(plan)
        .map(|(topic, slots)| {
            let partitions = slots
                .into_iter()
                .map(|(index, slot)| {
                    let outcome = match slot {
                        Ok(i) => outcomes[i],
                        Err(code) => DeleteRecordsOutcome {
                            low_watermark: -1,
                            error_code: code,
                        },
                    };
                    DeleteRecordsPartitionResult::default()
                        .with_partition_index(index)
                        .with_low_watermark(outcome.low_watermark)
                        .with_error_code(outcome.error_code)
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}
