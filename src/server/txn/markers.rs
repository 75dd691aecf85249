//! Writing transaction markers (commit / abort control batches) to every
//! partition of a transaction: the coordinator's fan-out after EndTxn, a
//! fencing abort or a timeout, and the WriteTxnMarkers API.
//!
//! Which cores: the caller (the transaction coordinator's shard, or the
//! connection's shard for WriteTxnMarkers) groups the partitions by owner
//! and routes each owner its part ([`WriteMarkersCall`]); the owner appends the marker
//! to its log (or, for `__consumer_offsets`, through the group coordinator,
//! which completes the transaction's pending offset commits in the same
//! step) and answers once the marker is durable.

use std::collections::BTreeMap;
use std::rc::Rc;

use futures::future::{join_all, LocalBoxFuture};
use futures::FutureExt;

use crate::metadata::topic_name::OFFSETS_TOPIC;
use crate::protocol::batch_builder::ControlType;
use crate::protocol::errors::{KafkaError, NONE};
use crate::runtime::clock::now_ms;
use crate::server::routing::{self, ShardCall};
use crate::server::shard::Shard;

/// The marker every partition of one transaction gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub coordinator_epoch: i32,
    pub control: ControlType,
}

/// Writes `marker` to every partition in `partitions` and waits until each
/// is durable. Returns an error code per partition, in order.
pub async fn write_markers(
    shard: &Rc<Shard>,
    marker: Marker,
    partitions: &[(String, i32)],
) -> Vec<i16> {
    let mut by_owner: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (index, (topic, partition)) in partitions.iter().enumerate() {
        by_owner
            .entry(shard.owner_of(topic, *partition))
            .or_default()
            .push(index);
    }
    let mut codes = vec![KafkaError::NotLeaderOrFollower.code(); partitions.len()];
    let parts = by_owner.into_iter().map(|(owner, indexes)| {
        let owned: Vec<(String, i32)> = indexes.iter().map(|&i| partitions[i].clone()).collect();
        let call = WriteMarkersCall {
            marker,
            partitions: owned,
        };
        async move {
            let answers = routing::call(shard, owner, call).await.unwrap_or_default();
            (indexes, answers)
        }
    });
    for (indexes, answers) in join_all(parts).await {
        for (index, code) in indexes.into_iter().zip(answers) {
            codes[index] = code;
        }
    }
    codes
}

/// Coordinator -> owner: append this marker to these partitions (all owned
/// by the callee) and answer per partition, in order, once durable.
pub struct WriteMarkersCall {
    pub marker: Marker,
    pub partitions: Vec<(String, i32)>,
}

impl ShardCall<Shard> for WriteMarkersCall {
    type Reply = Vec<i16>;
    /// Appends the marker to each local partition in one synchronous pass
    /// (so they keep the order of arrival), then waits for all.
    fn start(self, shard: &Rc<Shard>) -> LocalBoxFuture<'static, Vec<i16>> {
        let now = now_ms();
        let waits: Vec<Appended> = self
            .partitions
            .iter()
            .map(|(topic, partition)| append_one(shard, self.marker, topic, *partition, now))
            .collect();
        join_all(waits.into_iter().map(|wait| async move {
            match wait {
                Appended::Failed(code) => code,
                Appended::Log(log, offset) => match log.wait_durable(offset).await {
                    Ok(()) => NONE,
                    Err(error) => error.code(),
                },
                Appended::Offsets(loaded, offset) => {
                    loaded.wait_durable(offset).await.err().unwrap_or(NONE)
                }
            }
        }))
        .boxed_local()
    }
}

enum Appended {
    Failed(i16),
    Log(crate::log::PartitionLog, i64),
    Offsets(
        Rc<crate::server::groups::coordinator::OffsetsPartition>,
        i64,
    ),
}

fn append_one(shard: &Shard, marker: Marker, topic: &str, partition: i32, now: i64) -> Appended {
    shard.assert_owner(topic, partition);
    if topic == OFFSETS_TOPIC {
        let Some(loaded) = shard.groups.partition(partition) else {
            return Appended::Failed(KafkaError::NotLeaderOrFollower.code());
        };
        return match loaded.complete_transaction(
            marker.producer_id,
            marker.producer_epoch,
            marker.coordinator_epoch,
            marker.control,
            now,
        ) {
            Ok(offset) => Appended::Offsets(loaded, offset),
            Err(code) => Appended::Failed(code),
        };
    }
    let Some(log) = shard.partition_log(topic, partition) else {
        let known = shard
            .catalog()
            .topic(topic)
            .is_some_and(|t| t.has_partition(partition));
        return Appended::Failed(if known {
            KafkaError::NotLeaderOrFollower.code()
        } else {
            KafkaError::UnknownTopicOrPartition.code()
        });
    };
    match log.append_marker(
        marker.producer_id,
        marker.producer_epoch,
        marker.coordinator_epoch,
        marker.control,
        now,
    ) {
        Ok(info) => Appended::Log(log, info.last_offset),
        Err(error) => {
            tracing::warn!(topic, partition, %error, "cannot write transaction marker");
            Appended::Failed(error.code())
        }
    }
}
