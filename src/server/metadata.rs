//! Metadata: the live brokers, cluster id, controller, and topics with their
//! partitions' leaders, replicas, ISR and offline replicas (those on fenced
//! or unregistered brokers), all from the shard's `Catalog`,
//! auto-creating requested topics when allowed (Kafka's
//! `auto.create.topics.enable` plus the request's allow flag, v4+).

use std::rc::Rc;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::admin::ensure_topic;
use super::shard::Shard;
use crate::metadata::catalog::{Catalog, PartitionAssignment, TopicMetadata, NO_BROKER};
use crate::protocol::errors::{KafkaError, NONE};

/// What Kafka sends for authorized operations when the client did not ask.
pub const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;
/// Every topic operation (READ..ALTER_CONFIGS bits) allowed: no ACLs here.
pub(super) const TOPIC_OPERATIONS_ALL: i32 = 0b1101_1111_1000;
/// Every cluster operation (CREATE, ALTER, DESCRIBE, CLUSTER_ACTION,
/// DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE bits) allowed.
const CLUSTER_OPERATIONS_ALL: i32 = 0b0001_1111_1010_0000;

pub async fn handle_metadata(
    shard: &Rc<Shard>,
    request: MetadataRequest,
    version: i16,
) -> MetadataResponse {
    // v0 has no null: an empty list meant "all topics" then.
    let requested = match request.topics {
        Some(topics) if version == 0 && topics.is_empty() => None,
        other => other,
    };
    let allow_auto_create = version < 4 || request.allow_auto_topic_creation;
    // authorized operations exist from v8; older versions must leave the default.
    let include_operations = request.include_topic_authorized_operations && version >= 8;
    let mut topics = Vec::new();
    match requested {
        None => {
            let catalog = shard.catalog();
            for topic in catalog.topics() {
                topics.push(topic_response(&catalog, topic, include_operations, version));
            }
        }
        Some(requested) => {
            for wanted in requested {
                let catalog = shard.catalog();
                // Kafka looks a topic up by id whenever the id is set (KIP-516);
                // the Java client (4.x) then sends the name as "", not null.
                let by_name = wanted
                    .name
                    .as_ref()
                    .filter(|name| wanted.topic_id.is_nil() || !name.0.is_empty());
                let entry = match by_name {
                    Some(name) => {
                        let found = match catalog.topic(name.0.as_str()) {
                            Some(topic) => Ok(topic.clone()),
                            None if allow_auto_create => ensure_topic(shard, name.0.as_str()).await,
                            None => Err(KafkaError::UnknownTopicOrPartition.code()),
                        };
                        found.map_err(|code| (code, Some(name.clone())))
                    }
                    None => catalog
                        .topic_by_id(&wanted.topic_id)
                        .cloned()
                        .ok_or((KafkaError::UnknownTopicId.code(), None)),
                };
                topics.push(match entry {
                    // The image after any auto-creation above.
                    Ok(topic) => {
                        topic_response(&shard.catalog(), &topic, include_operations, version)
                    }
                    Err((code, name)) => MetadataResponseTopic::default()
                        .with_error_code(code)
                        .with_name(name)
                        .with_topic_id(if version >= 10 {
                            wanted.topic_id
                        } else {
                            uuid::Uuid::nil()
                        })
                        .with_topic_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED),
                });
            }
        }
    }
    let catalog = shard.catalog();
    let brokers = catalog
        .brokers()
        .iter()
        .map(|broker| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(broker.node_id))
                .with_host(StrBytes::from_string(broker.host.to_string()))
                .with_port(i32::from(broker.port))
                .with_rack(
                    broker
                        .rack
                        .as_deref()
                        .map(|rack| StrBytes::from_string(rack.to_string())),
                )
        })
        .collect();
    let mut response = MetadataResponse::default()
        .with_brokers(brokers)
        .with_topics(topics);
    if version >= 1 {
        response = response.with_controller_id(BrokerId(catalog.controller_id()));
    }
    if version >= 2 {
        response =
            response.with_cluster_id(Some(StrBytes::from_string(catalog.cluster_id.to_string())));
    }
    if request.include_cluster_authorized_operations && (8..=10).contains(&version) {
        response = response.with_cluster_authorized_operations(CLUSTER_OPERATIONS_ALL);
    }
    if version >= 13 {
        // KIP-1102's top-level error: Kafka's broker never sets it on
        // Metadata (REBOOTSTRAP_REQUIRED comes from ApiVersions v5), so a
        // broker that answers at all answers NONE.
        response = response.with_error_code(NONE);
    }
    response
}

fn topic_response(
    catalog: &Catalog,
    topic: &TopicMetadata,
    include_operations: bool,
    version: i16,
) -> MetadataResponseTopic {
    let partitions = partition_views(catalog, &topic.name)
        .map(|(index, assignment, offline)| partition_response(index, assignment, offline, version))
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(
            topic.name.to_string(),
        ))))
        .with_topic_id(if version >= 10 {
            topic.topic_id
        } else {
            uuid::Uuid::nil()
        })
        .with_is_internal(version >= 1 && topic.is_internal())
        .with_partitions(partitions)
        .with_topic_authorized_operations(if include_operations {
            TOPIC_OPERATIONS_ALL
        } else {
            AUTHORIZED_OPERATIONS_OMITTED
        })
}

/// Each partition of `topic`: its index, assignment (leader, epoch,
/// replicas, ISR) and offline replicas (those on fenced or unregistered
/// brokers). The one per-partition view that Metadata and
/// DescribeTopicPartitions both report.
pub(super) fn partition_views<'a>(
    catalog: &'a Catalog,
    topic: &str,
) -> impl Iterator<Item = (i32, &'a PartitionAssignment, Vec<i32>)> + 'a {
    catalog
        .partitions(topic)
        .iter()
        .enumerate()
        .map(|(index, assignment)| {
            let index = i32::try_from(index).expect("partition counts are i32");
            (index, assignment, catalog.offline_replicas(assignment))
        })
}

/// One partition as the Java broker reports it (KRaftMetadataCache): a
/// partition without a live leader answers LEADER_NOT_AVAILABLE with leader
/// -1 and still lists its replicas and ISR, so clients retry later;
/// `offline` are the replicas on brokers that are not live (v5+).
fn partition_response(
    partition: i32,
    assignment: &PartitionAssignment,
    offline: Vec<i32>,
    version: i16,
) -> MetadataResponsePartition {
    let brokers = |ids: &[i32]| ids.iter().copied().map(BrokerId).collect::<Vec<_>>();
    let error_code = if assignment.leader == NO_BROKER {
        KafkaError::LeaderNotAvailable.code()
    } else {
        NONE
    };
    MetadataResponsePartition::default()
        .with_error_code(error_code)
        .with_partition_index(partition)
        .with_leader_id(BrokerId(assignment.leader))
        // The field exists from v7; earlier versions keep its default.
        .with_leader_epoch(if version >= 7 {
            assignment.leader_epoch
        } else {
            -1
        })
        .with_replica_nodes(brokers(&assignment.replicas))
        .with_isr_nodes(brokers(&assignment.isr))
        // The field exists from v5; earlier versions keep its default.
        .with_offline_replicas(if version >= 5 {
            brokers(&offline)
        } else {
            Vec::new()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leaderless_partition_answers_leader_not_available_with_its_replicas() {
        let assignment = PartitionAssignment {
            replicas: vec![1, 2],
            isr: vec![2],
            leader: NO_BROKER,
            leader_epoch: 4,
            partition_epoch: 6,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        };
        let partition = partition_response(3, &assignment, vec![1], 12);
        assert_eq!(partition.error_code, KafkaError::LeaderNotAvailable.code());
        assert_eq!(partition.error_code, 5);
        assert_eq!(partition.partition_index, 3);
        assert_eq!(partition.leader_id, BrokerId(-1));
        assert_eq!(partition.leader_epoch, 4);
        assert_eq!(partition.replica_nodes, vec![BrokerId(1), BrokerId(2)]);
        assert_eq!(partition.isr_nodes, vec![BrokerId(2)]);
        assert_eq!(partition.offline_replicas, vec![BrokerId(1)]);
        // Before v5 the field does not exist: its default.
        assert!(partition_response(3, &assignment, vec![1], 4)
            .offline_replicas
            .is_empty());
    }

    #[test]
    fn a_led_partition_answers_its_leader_and_epoch_from_v7() {
        let mut assignment = PartitionAssignment::led_by(7);
        assignment.leader_epoch = 2;
        let partition = partition_response(0, &assignment, Vec::new(), 7);
        assert_eq!(partition.error_code, NONE);
        assert_eq!(partition.leader_id, BrokerId(7));
        assert_eq!(partition.leader_epoch, 2);
        // Before v7 the field does not exist: its default.
        assert_eq!(
            partition_response(0, &assignment, Vec::new(), 6).leader_epoch,
            -1
        );
    }
}
