//! DescribeCluster and DescribeQuorum: what admin tools ask of the cluster.
//! Brokers (live, and fenced ones for DescribeCluster v2), their racks and
//! the controller come from the catalog. (DescribeConfigs is in
//! `describe_configs`.)
//!
//! DescribeQuorum is answered on any shard of any broker: the shard asks
//! shard 0 (`DescribeQuorumCall`), which holds the cluster side and asks the
//! quorum leader (`ControlRequest::DescribeQuorum`), the only node that
//! knows every voter's progress, as KRaft brokers forward it to the active
//! controller. A single node has no quorum and answers as a quorum of one
//! (see [`single_node_quorum`]).

use std::collections::BTreeMap;
use std::rc::Rc;

use futures::future::LocalBoxFuture;
use futures::FutureExt;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, DescribeQuorumRequest,
    DescribeQuorumResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::metadata::AUTHORIZED_OPERATIONS_OMITTED;
use super::routing::{self, ShardCall};
use super::shard::{Shard, CONTROLLER_SHARD};
use crate::cluster::control::{
    ControlError, ControlOutcome, ControlRequest, QuorumReport, VoterProgress,
};
use crate::metadata::catalog::{BrokerMetadata, Catalog, NO_BROKER};
use crate::protocol::errors::KafkaError;

/// DescribeCluster: the live brokers; from v2, when the client asks
/// (`include_fenced_brokers`, KIP-1073), the registered but fenced ones too,
/// marked `is_fenced`. Sorted by broker id.
pub fn handle_describe_cluster(
    shard: &Rc<Shard>,
    request: DescribeClusterRequest,
    version: i16,
) -> DescribeClusterResponse {
    describe_cluster(&shard.catalog(), &request, version)
}

fn describe_cluster(
    catalog: &Catalog,
    request: &DescribeClusterRequest,
    version: i16,
) -> DescribeClusterResponse {
    let include_fenced = version >= 2 && request.include_fenced_brokers;
    let live = catalog.brokers().iter().map(|broker| (broker, false));
    let fenced = catalog
        .fenced_brokers()
        .iter()
        .filter(|_| include_fenced)
        .map(|broker| (broker, true));
    let mut brokers: Vec<DescribeClusterBroker> = live
        .chain(fenced)
        .map(|(broker, is_fenced)| describe_broker(broker, is_fenced))
        .collect();
    brokers.sort_by_key(|broker| broker.broker_id.0);
    DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(catalog.cluster_id.to_string()))
        .with_controller_id(BrokerId(catalog.controller_id()))
        .with_brokers(brokers)
        .with_cluster_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
}

fn describe_broker(broker: &BrokerMetadata, is_fenced: bool) -> DescribeClusterBroker {
    DescribeClusterBroker::default()
        .with_broker_id(BrokerId(broker.node_id))
        .with_host(StrBytes::from_string(broker.host.to_string()))
        .with_port(i32::from(broker.port))
        .with_rack(
            broker
                .rack
                .as_deref()
                .map(|rack| StrBytes::from_string(rack.to_string())),
        )
        .with_is_fenced(is_fenced)
}

/// Kafka's metadata log, the one partition DescribeQuorum describes.
pub const METADATA_TOPIC: &str = "__cluster_metadata";
pub const METADATA_PARTITION: i32 = 0;
/// The listener name DescribeQuorum v2 gives a voter's quorum address
/// (KRaft's usual `controller.listener.names`). It speaks corelog's quorum
/// protocol (`cluster::quorum::transport`), not Kafka's.
const CONTROLLER_LISTENER: &str = "CONTROLLER";

/// Any shard -> shard 0: the metadata quorum's state, from its leader.
pub struct DescribeQuorumCall;

impl ShardCall<Shard> for DescribeQuorumCall {
    type Reply = Result<QuorumReport, ControlError>;
    fn start(self, shard: &Rc<Shard>) -> LocalBoxFuture<'static, Self::Reply> {
        let shard = Rc::clone(shard);
        async move { quorum_report(&shard).await }.boxed_local()
    }
}

/// On shard 0: the quorum leader's report, or a quorum of one on a single
/// node.
async fn quorum_report(shard: &Rc<Shard>) -> Result<QuorumReport, ControlError> {
    assert_eq!(shard.id, CONTROLLER_SHARD, "the cluster side is on shard 0");
    let Some(cluster) = shard.cluster() else {
        return Ok(single_node_quorum(shard.config.node_id));
    };
    let node = Rc::clone(&cluster.node);
    match node.call(ControlRequest::DescribeQuorum).await? {
        (ControlOutcome::Quorum(report), _) => Ok(report),
        (other, _) => Err(ControlError::Refused {
            error: KafkaError::UnknownServerError,
            message: format!("the controller answered DescribeQuorum with {other:?}"),
        }),
    }
}

/// A single node (no `--controller-quorum-voters`) has no metadata log; it
/// answers as the one voter of a quorum it leads, at leader epoch 0 with an
/// empty log (high watermark and log end offset 0), so tools written for
/// KRaft work against it unchanged.
pub fn single_node_quorum(node_id: i32) -> QuorumReport {
    let node_id = u64::try_from(node_id).expect("node ids are not negative");
    QuorumReport {
        leader: node_id,
        term: 0,
        high_watermark: 0,
        voters: vec![VoterProgress {
            node_id,
            log_end: Some(0),
        }],
    }
}

/// DescribeQuorum from any shard. Only `__cluster_metadata` partition 0
/// exists; a request for anything else gets UNKNOWN_TOPIC_OR_PARTITION for
/// what it named, as KRaft answers. A quorum without a reachable leader
/// answers the controller call's error (NOT_CONTROLLER, REQUEST_TIMED_OUT),
/// which admin clients retry.
pub async fn handle_describe_quorum(
    shard: &Rc<Shard>,
    request: DescribeQuorumRequest,
    version: i16,
) -> DescribeQuorumResponse {
    if !names_only_the_metadata_partition(&request) {
        let named = request.topics.into_iter().map(|topic| {
            let partitions = topic.partitions.iter().map(|p| p.partition_index);
            (topic.topic_name, partitions.collect())
        });
        return quorum_error(named, KafkaError::UnknownTopicOrPartition, None);
    }
    match routing::call(shard, CONTROLLER_SHARD, DescribeQuorumCall).await {
        Ok(Ok(report)) => {
            let voters = shard.config.cluster.as_ref().map(|cluster| &cluster.voters);
            quorum_response(&report, voters.unwrap_or(&BTreeMap::new()), version)
        }
        Ok(Err(error)) => quorum_error(
            metadata_partition(),
            error.kafka_error(),
            Some(error.to_string()),
        ),
        // Shard 0 is gone (shutting down): retriable.
        Err(_) => quorum_error(metadata_partition(), KafkaError::NotController, None),
    }
}

fn names_only_the_metadata_partition(request: &DescribeQuorumRequest) -> bool {
    match request.topics.as_slice() {
        [topic] => {
            topic.topic_name.0.as_str() == METADATA_TOPIC
                && matches!(topic.partitions.as_slice(),
                    [partition] if partition.partition_index == METADATA_PARTITION)
        }
        _ => false,
    }
}

fn metadata_partition() -> [(TopicName, Vec<i32>); 1] {
    [(
        TopicName(StrBytes::from_static_str(METADATA_TOPIC)),
        vec![METADATA_PARTITION],
    )]
}

/// Every named partition with `error` (and `message`, from v2).
fn quorum_error(
    named: impl IntoIterator<Item = (TopicName, Vec<i32>)>,
    error: KafkaError,
    message: Option<String>,
) -> DescribeQuorumResponse {
    let topics = named
        .into_iter()
        .map(|(name, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|index| {
                    PartitionData::default()
                        .with_partition_index(index)
                        .with_error_code(error.code())
                        .with_error_message(message.clone().map(StrBytes::from_string))
                        .with_leader_id(BrokerId(NO_BROKER))
                        .with_leader_epoch(-1)
                        .with_high_watermark(-1)
                })
                .collect();
            TopicData::default()
                .with_topic_name(name)
                .with_partitions(partitions)
        })
        .collect();
    DescribeQuorumResponse::default()
        .with_error_message(None)
        .with_topics(topics)
}

/// The DescribeQuorum answer for `report`: the leader, its epoch (the Raft
/// term), the high watermark and every voter's log end offset (-1 while the
/// leader has not heard from it; fetch timestamps are not tracked: -1, as
/// Kafka's "unknown"); no observers. From v2, `nodes` holds each voter's
/// quorum address from `voter_addresses` (`--controller-quorum-voters`).
pub fn quorum_response(
    report: &QuorumReport,
    voter_addresses: &BTreeMap<u64, String>,
    version: i16,
) -> DescribeQuorumResponse {
    let voters = report
        .voters
        .iter()
        .map(|voter| {
            ReplicaState::default()
                .with_replica_id(broker_id(voter.node_id))
                .with_log_end_offset(voter.log_end.map_or(-1, offset))
                .with_last_fetch_timestamp(-1)
                .with_last_caught_up_timestamp(-1)
        })
        .collect();
    let partition = PartitionData::default()
        .with_partition_index(METADATA_PARTITION)
        .with_error_message(None)
        .with_leader_id(broker_id(report.leader))
        .with_leader_epoch(i32::try_from(report.term).unwrap_or(i32::MAX))
        .with_high_watermark(offset(report.high_watermark))
        .with_current_voters(voters)
        .with_observers(Vec::new());
    let nodes = if version >= 2 {
        report
            .voters
            .iter()
            .filter_map(|voter| {
                let address = voter_addresses.get(&voter.node_id)?;
                voter_node(voter.node_id, address)
            })
            .collect()
    } else {
        Vec::new()
    };
    DescribeQuorumResponse::default()
        .with_error_message(None)
        .with_topics(vec![TopicData::default()
            .with_topic_name(TopicName(StrBytes::from_static_str(METADATA_TOPIC)))
            .with_partitions(vec![partition])])
        .with_nodes(nodes)
}

/// A voter and its quorum listener; `None` if `address` is not `host:port`.
fn voter_node(node_id: u64, address: &str) -> Option<Node> {
    let (host, port) = address.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = port.parse::<u16>().ok()?;
    Some(
        Node::default()
            .with_node_id(broker_id(node_id))
            .with_listeners(vec![Listener::default()
                .with_name(StrBytes::from_static_str(CONTROLLER_LISTENER))
                .with_host(StrBytes::from_string(host.to_string()))
                .with_port(port)]),
    )
}

/// Node ids come from `--node-id`, an i32; a quorum id that is not one is
/// reported as no broker.
fn broker_id(node_id: u64) -> BrokerId {
    BrokerId(i32::try_from(node_id).unwrap_or(NO_BROKER))
}

fn offset(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::BytesMut;
    use kafka_protocol::messages::describe_quorum_request;
    use kafka_protocol::protocol::{Decodable, Encodable};

    use super::*;
    use crate::metadata::catalog::test_fixtures::broker;

    fn report() -> QuorumReport {
        QuorumReport {
            leader: 1,
            term: 7,
            high_watermark: 42,
            voters: vec![
                VoterProgress {
                    node_id: 0,
                    log_end: Some(42),
                },
                VoterProgress {
                    node_id: 1,
                    log_end: Some(42),
                },
                VoterProgress {
                    node_id: 2,
                    log_end: None,
                },
            ],
        }
    }

    fn addresses() -> BTreeMap<u64, String> {
        BTreeMap::from([
            (0, "10.0.0.1:9093".to_string()),
            (1, "[::1]:9094".to_string()),
            (2, "not-an-address".to_string()),
        ])
    }

    /// Encodes and decodes `response` at `version`, as a client reads it.
    fn on_the_wire(response: &DescribeQuorumResponse, version: i16) -> DescribeQuorumResponse {
        let mut buffer = BytesMut::new();
        response
            .encode(&mut buffer, version)
            .unwrap_or_else(|error| panic!("v{version} encodes: {error}"));
        DescribeQuorumResponse::decode(&mut buffer.freeze(), version).expect("decodes")
    }

    #[test]
    fn describe_quorum_names_the_leader_its_epoch_and_every_voter() {
        for version in 0..=2 {
            let response = on_the_wire(&quorum_response(&report(), &addresses(), version), version);
            assert_eq!(response.error_code, 0);
            let [topic] = response.topics.as_slice() else {
                panic!("one topic: {response:?}")
            };
            assert_eq!(topic.topic_name.0.as_str(), METADATA_TOPIC);
            let [partition] = topic.partitions.as_slice() else {
                panic!("one partition: {topic:?}")
            };
            assert_eq!(partition.partition_index, METADATA_PARTITION);
            assert_eq!(partition.error_code, 0);
            assert_eq!(
                (
                    partition.leader_id.0,
                    partition.leader_epoch,
                    partition.high_watermark
                ),
                (1, 7, 42)
            );
            let voters: Vec<(i32, i64)> = partition
                .current_voters
                .iter()
                .map(|voter| (voter.replica_id.0, voter.log_end_offset))
                .collect();
            assert_eq!(voters, vec![(0, 42), (1, 42), (2, -1)], "v{version}");
            for voter in &partition.current_voters {
                assert_eq!(voter.last_fetch_timestamp, -1);
                assert_eq!(voter.last_caught_up_timestamp, -1);
            }
            assert!(partition.observers.is_empty());
            if version < 2 {
                assert!(response.nodes.is_empty());
                continue;
            }
            // v2: each voter with a parsable quorum address, as a listener.
            let nodes: Vec<(i32, String, String, u16)> = response
                .nodes
                .iter()
                .flat_map(|node| {
                    node.listeners.iter().map(move |listener| {
                        (
                            node.node_id.0,
                            listener.name.to_string(),
                            listener.host.to_string(),
                            listener.port,
                        )
                    })
                })
                .collect();
            assert_eq!(
                nodes,
                vec![
                    (0, "CONTROLLER".into(), "10.0.0.1".into(), 9093),
                    (1, "CONTROLLER".into(), "::1".into(), 9094),
                ]
            );
        }
    }

    #[test]
    fn a_single_node_is_a_quorum_of_one_at_epoch_zero() {
        let response = on_the_wire(
            &quorum_response(&single_node_quorum(5), &BTreeMap::new(), 2),
            2,
        );
        let partition = &response.topics[0].partitions[0];
        assert_eq!(
            (
                partition.leader_id.0,
                partition.leader_epoch,
                partition.high_watermark
            ),
            (5, 0, 0)
        );
        let voters: Vec<(i32, i64)> = partition
            .current_voters
            .iter()
            .map(|voter| (voter.replica_id.0, voter.log_end_offset))
            .collect();
        assert_eq!(voters, vec![(5, 0)]);
        assert!(response.nodes.is_empty(), "no quorum listener");
    }

    #[test]
    fn only_the_metadata_partition_is_described() {
        let request = |topic: &'static str, partitions: &[i32]| {
            DescribeQuorumRequest::default().with_topics(vec![
                describe_quorum_request::TopicData::default()
                    .with_topic_name(TopicName(StrBytes::from_static_str(topic)))
                    .with_partitions(
                        partitions
                            .iter()
                            .map(|index| {
                                describe_quorum_request::PartitionData::default()
                                    .with_partition_index(*index)
                            })
                            .collect(),
                    ),
            ])
        };
        assert!(names_only_the_metadata_partition(&request(
            METADATA_TOPIC,
            &[0]
        )));
        assert!(!names_only_the_metadata_partition(&request(
            METADATA_TOPIC,
            &[1]
        )));
        assert!(!names_only_the_metadata_partition(&request(
            METADATA_TOPIC,
            &[0, 0]
        )));
        assert!(!names_only_the_metadata_partition(&request("orders", &[0])));
        assert!(!names_only_the_metadata_partition(
            &DescribeQuorumRequest::default()
        ));
        // What was named comes back with the error.
        let named = [(TopicName(StrBytes::from_static_str("orders")), vec![3])];
        let response = on_the_wire(
            &quorum_error(named, KafkaError::UnknownTopicOrPartition, None),
            1,
        );
        let partition = &response.topics[0].partitions[0];
        assert_eq!(response.topics[0].topic_name.0.as_str(), "orders");
        assert_eq!(
            (partition.partition_index, partition.error_code),
            (3, KafkaError::UnknownTopicOrPartition.code())
        );
    }

    #[test]
    fn describe_cluster_lists_fenced_brokers_only_from_v2_when_asked() {
        let catalog = Catalog::new(Arc::from("c"), 1, vec![broker(1), broker(3)], [])
            .with_fenced_brokers(vec![broker(2)]);
        let listed = |version: i16, include_fenced: bool| {
            let request = DescribeClusterRequest::default()
                .with_include_fenced_brokers(include_fenced && version >= 2);
            let response = describe_cluster(&catalog, &request, version);
            let mut buffer = BytesMut::new();
            response.encode(&mut buffer, version).expect("encodes");
            response
                .brokers
                .iter()
                .map(|broker| (broker.broker_id.0, broker.is_fenced))
                .collect::<Vec<_>>()
        };
        let live = vec![(1, false), (3, false)];
        assert_eq!(listed(0, true), live);
        assert_eq!(listed(1, true), live);
        assert_eq!(listed(2, false), live);
        assert_eq!(listed(2, true), vec![(1, false), (2, true), (3, false)]);
    }
}
