//! Metadata: brokers (this one node), cluster id, controller, and topics with
//! their partitions, auto-creating requested topics when allowed (Kafka's
//! `auto.create.topics.enable` plus the request's allow flag, v4+).

use std::rc::Rc;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::admin::ensure_topic;
use super::shard::Shard;
use crate::metadata::catalog::TopicMetadata;
use crate::protocol::errors::KafkaError;

/// What Kafka sends for authorized operations when the client did not ask.
pub const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;
/// Every topic operation (READ..ALTER_CONFIGS bits) allowed: no ACLs here.
const TOPIC_OPERATIONS_ALL: i32 = 0b1101_1111_1000;
/// Every cluster operation (CREATE, ALTER, DESCRIBE, CLUSTER_ACTION,
/// DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE bits) allowed.
const CLUSTER_OPERATIONS_ALL: i32 = 0b0001_1111_1010_0000;

pub async fn handle_metadata(
    shard: &Rc<Shard>,
    request: MetadataRequest,
    version: i16,
) -> MetadataResponse {
    let config = &shard.config;
    let broker = MetadataResponseBroker::default()
        .with_node_id(BrokerId(config.node_id))
        .with_host(StrBytes::from_string(config.advertised_host.clone()))
        .with_port(i32::from(config.advertised_port));
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
            for topic in shard.catalog().topics() {
                topics.push(topic_response(shard, topic, include_operations, version));
            }
        }
        Some(requested) => {
            for wanted in requested {
                let catalog = shard.catalog();
                let entry = match &wanted.name {
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
                    Ok(topic) => topic_response(shard, &topic, include_operations, version),
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
    let mut response = MetadataResponse::default()
        .with_brokers(vec![broker])
        .with_topics(topics);
    if version >= 1 {
        response = response.with_controller_id(BrokerId(config.node_id));
    }
    if version >= 2 {
        response = response.with_cluster_id(Some(StrBytes::from_string(
            shard.catalog().cluster_id.to_string(),
        )));
    }
    if request.include_cluster_authorized_operations && (8..=10).contains(&version) {
        response = response.with_cluster_authorized_operations(CLUSTER_OPERATIONS_ALL);
    }
    response
}

fn topic_response(
    shard: &Shard,
    topic: &TopicMetadata,
    include_operations: bool,
    version: i16,
) -> MetadataResponseTopic {
    let node = BrokerId(shard.config.node_id);
    let partitions = (0..topic.partition_count)
        .map(|partition| {
            MetadataResponsePartition::default()
                .with_partition_index(partition)
                .with_leader_id(node)
                .with_leader_epoch(if version >= 7 { 0 } else { -1 })
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node])
                .with_offline_replicas(Vec::new())
        })
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
