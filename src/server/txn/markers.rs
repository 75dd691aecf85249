//! Writing transaction markers (commit / abort control batches) to every
//! partition of a transaction: the coordinator's fan-out after EndTxn, a
//! fencing abort or a timeout, and the WriteTxnMarkers API.
//!
//! Which cores and nodes: the caller (the transaction coordinator's shard,
//! or the connection's shard for WriteTxnMarkers) sends the partitions other
//! brokers lead to them with WriteTxnMarkers (`peer_brokers`), groups the
//! rest by owner shard and routes each owner its part ([`WriteMarkersCall`]); the owner appends the marker
//! to its log (or, for `__consumer_offsets`, through the group coordinator,
//! which completes the transaction's pending offset commits in the same
//! step) and answers once the marker is durable.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use futures::future::{join_all, LocalBoxFuture};
use futures::FutureExt;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{ProducerId, TopicName, WriteTxnMarkersRequest};
use kafka_protocol::protocol::StrBytes;

use crate::metadata::topic_name::OFFSETS_TOPIC;
use crate::protocol::batch_builder::ControlType;
use crate::protocol::errors::{KafkaError, NONE};
use crate::runtime::clock::now_ms;
use crate::server::routing::{self, partition_hop, PartitionHop, ShardCall};
use crate::server::shard::Shard;
use crate::server::{partition_ops, peer_brokers};

/// The marker every partition of one transaction gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub coordinator_epoch: i32,
    pub control: ControlType,
}

/// Writes `marker` to every partition in `partitions` and waits until each
/// is durable, wherever its leader is (WriteTxnMarkers to other brokers).
/// Returns an error code per partition, in order.
pub async fn write_markers(
    shard: &Rc<Shard>,
    marker: Marker,
    partitions: &[(String, i32)],
) -> Vec<i16> {
    write(shard, marker, partitions, Reach::Cluster).await
}

/// Like [`write_markers`] for the partitions this node leads; the others
/// answer NOT_LEADER_OR_FOLLOWER (the WriteTxnMarkers API: its sender
/// routes by leader itself, so nothing is forwarded twice).
pub async fn write_markers_here(
    shard: &Rc<Shard>,
    marker: Marker,
    partitions: &[(String, i32)],
) -> Vec<i16> {
    write(shard, marker, partitions, Reach::ThisNode).await
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Reach {
    Cluster,
    ThisNode,
}

async fn write(
    shard: &Rc<Shard>,
    marker: Marker,
    partitions: &[(String, i32)],
    reach: Reach,
) -> Vec<i16> {
    let mut by_owner: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut by_node: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
    let mut codes = vec![KafkaError::NotLeaderOrFollower.code(); partitions.len()];
    for (index, (topic, partition)) in partitions.iter().enumerate() {
        match partition_hop(shard, topic, *partition) {
            PartitionHop::ThisNode { owner } => by_owner.entry(owner).or_default().push(index),
            // The owner shard answers with the right code (unknown
            // partition, or no log here).
            PartitionHop::NoLeader => by_owner
                .entry(shard.owner_of(topic, *partition))
                .or_default()
                .push(index),
            PartitionHop::Node(node) if reach == Reach::Cluster => {
                by_node.entry(node).or_default().push(index)
            }
            PartitionHop::Node(_) => {}
        }
    }
    let local = by_owner.into_iter().map(|(owner, indexes)| {
        let owned: Vec<(String, i32)> = indexes.iter().map(|&i| partitions[i].clone()).collect();
        let call = WriteMarkersCall {
            marker,
            partitions: owned,
        };
        async move {
            let answers = routing::call(shard, owner, call).await.unwrap_or_default();
            (indexes, answers)
        }
        .boxed_local()
    });
    let remote = by_node.into_iter().map(|(node, indexes)| {
        async move {
            let named: Vec<(String, i32)> =
                indexes.iter().map(|&i| partitions[i].clone()).collect();
            let answers = write_on_peer(shard, node, marker, &named).await;
            (indexes, answers)
        }
        .boxed_local()
    });
    for (indexes, answers) in join_all(local.chain(remote)).await {
        for (index, code) in indexes.into_iter().zip(answers) {
            codes[index] = code;
        }
    }
    codes
}

/// WriteTxnMarkers to broker `node` for `partitions` (all led there); a
/// code per partition, in order.
async fn write_on_peer(
    shard: &Rc<Shard>,
    node: i32,
    marker: Marker,
    partitions: &[(String, i32)],
) -> Vec<i16> {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in partitions {
        topics.entry(topic.as_str()).or_default().push(*partition);
    }
    let request =
        WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
            .with_producer_id(ProducerId(marker.producer_id))
            .with_producer_epoch(marker.producer_epoch)
            .with_transaction_result(marker.control == ControlType::Commit)
            .with_coordinator_epoch(marker.coordinator_epoch)
            .with_topics(
                topics
                    .iter()
                    .map(|(topic, indexes)| {
                        WritableTxnMarkerTopic::default()
                            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                            .with_partition_indexes(indexes.clone())
                    })
                    .collect(),
            )]);
    let response = match peer_brokers::call(shard, node, WRITE_TXN_MARKERS_VERSION, &request).await
    {
        Ok(response) => response,
        Err(error) => {
            tracing::warn!(node, %error, "cannot write transaction markers on another broker");
            return vec![error.kafka_error().code(); partitions.len()];
        }
    };
    let answered = |topic: &str, partition: i32| {
        response
            .markers
            .iter()
            .flat_map(|marker| &marker.topics)
            .filter(|result| result.name.0.as_str() == topic)
            .flat_map(|result| &result.partitions)
            .find(|result| result.partition_index == partition)
            .map(|result| result.error_code)
            .unwrap_or(KafkaError::UnknownServerError.code())
    };
    partitions
        .iter()
        .map(|(topic, partition)| answered(topic, *partition))
        .collect()
}

/// How long a marker may wait for its partition's high watermark: less
/// than a peer's [`peer_brokers::PEER_CALL_TIMEOUT`], so a coordinator on
/// another broker hears REQUEST_TIMED_OUT instead of no answer.
const MARKER_COMMIT_TIMEOUT: Duration = Duration::from_secs(8);

/// The WriteTxnMarkers version brokers send each other.
const WRITE_TXN_MARKERS_VERSION: i16 = 1;

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
            let committed = async {
                Ok(match wait {
                    Appended::Failed(code) => code,
                    Appended::Log(log, offset) => match log.wait_committed(offset).await {
                        Ok(()) => NONE,
                        Err(error) => error.code(),
                    },
                    Appended::Offsets(loaded, offset) => {
                        loaded.wait_durable(offset).await.err().unwrap_or(NONE)
                    }
                })
            };
            // Bounded like Kafka's marker append (request.timeout.ms): an
            // ISR that stalls must not hold the transaction forever; the
            // coordinator writes the marker again later.
            glommio::timer::timeout(MARKER_COMMIT_TIMEOUT, committed)
                .await
                .unwrap_or(KafkaError::RequestTimedOut.code())
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
    // Only the leader appends (a follower's log copies the leader's): the
    // leadership may have moved since the caller routed the marker here.
    let log = match partition_ops::local_log(shard, topic, partition) {
        Ok(log) => log,
        Err(code) => return Appended::Failed(code),
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
