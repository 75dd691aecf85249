//! DescribeCluster and DescribeConfigs: what admin tools ask of the cluster.
//! Brokers, their racks and the controller come from the catalog, as do
//! topic configs; broker configs are the handful of `serve` flags that have
//! Kafka names.

use std::rc::Rc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, DescribeConfigsRequest,
    DescribeConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::metadata::AUTHORIZED_OPERATIONS_OMITTED;
use super::shard::Shard;
use crate::config::FlushPolicy;
use crate::metadata::topic_config::TopicConfigs;
use crate::protocol::errors::KafkaError;

/// DescribeConfigs resource types (Kafka's `ConfigResource.Type`).
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
/// Config sources (Kafka's `DescribeConfigsResponse.ConfigSource`).
const SOURCE_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;

pub fn handle_describe_cluster(
    shard: &Rc<Shard>,
    _request: DescribeClusterRequest,
    _version: i16,
) -> DescribeClusterResponse {
    let catalog = shard.catalog();
    let brokers = catalog
        .brokers()
        .iter()
        .map(|broker| {
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
        })
        .collect();
    DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(catalog.cluster_id.to_string()))
        .with_controller_id(BrokerId(catalog.controller_id()))
        .with_brokers(brokers)
        .with_cluster_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
}

pub fn handle_describe_configs(
    shard: &Rc<Shard>,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let wanted = |name: &str| {
                resource
                    .configuration_keys
                    .as_ref()
                    .map(|keys| keys.iter().any(|k| k.as_str() == name))
                    .unwrap_or(true)
            };
            let result = DescribeConfigsResult::default()
                .with_error_message(None)
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            match resource.resource_type {
                RESOURCE_TOPIC => match shard.catalog().topic(resource.resource_name.as_str()) {
                    Some(topic) => result.with_configs(
                        topic
                            .configs
                            .effective()
                            .filter(|(name, _, _)| wanted(name))
                            .map(|(name, value, is_default)| {
                                config_entry(
                                    name,
                                    value,
                                    if is_default {
                                        SOURCE_DEFAULT
                                    } else {
                                        SOURCE_TOPIC
                                    },
                                )
                            })
                            .collect(),
                    ),
                    None => result
                        .with_error_code(KafkaError::UnknownTopicOrPartition.code())
                        .with_error_message(Some(StrBytes::from_static_str(
                            "This server does not host this topic-partition.",
                        ))),
                },
                RESOURCE_BROKER => result.with_configs(
                    broker_configs(shard)
                        .into_iter()
                        .filter(|(name, _)| wanted(name))
                        .map(|(name, value)| config_entry(name, &value, SOURCE_STATIC_BROKER))
                        .collect(),
                ),
                _ => result
                    .with_error_code(KafkaError::InvalidRequest.code())
                    .with_error_message(Some(StrBytes::from_static_str(
                        "Unsupported resource type",
                    ))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn config_entry(name: &str, value: &str, source: i8) -> DescribeConfigsResourceResult {
    DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_string(name.to_string()))
        .with_value(Some(StrBytes::from_string(value.to_string())))
        .with_read_only(source != SOURCE_TOPIC && source != SOURCE_DEFAULT)
        .with_config_source(source)
}

fn broker_configs(shard: &Shard) -> Vec<(&'static str, String)> {
    let config = &shard.config;
    let flush_ms = match config.flush {
        FlushPolicy::Always => "0".to_string(),
        FlushPolicy::Interval(every) => every.as_millis().to_string(),
        FlushPolicy::Never => i64::MAX.to_string(),
    };
    let mut configs = vec![
        ("broker.id", config.node_id.to_string()),
        ("node.id", config.node_id.to_string()),
        (
            "auto.create.topics.enable",
            config.auto_create_topics.to_string(),
        ),
        ("num.partitions", config.default_partitions.to_string()),
        (
            "socket.request.max.bytes",
            config.max_request_bytes.to_string(),
        ),
        ("log.dirs", config.data_dir.display().to_string()),
        ("log.flush.interval.ms", flush_ms),
        (
            "log.retention.check.interval.ms",
            config.retention_check_interval.as_millis().to_string(),
        ),
        (
            "group.initial.rebalance.delay.ms",
            config.groups.initial_rebalance_delay_ms.to_string(),
        ),
        (
            "group.min.session.timeout.ms",
            config.groups.min_session_timeout_ms.to_string(),
        ),
        (
            "group.max.session.timeout.ms",
            config.groups.max_session_timeout_ms.to_string(),
        ),
        (
            "offsets.topic.num.partitions",
            config.groups.offsets_topic_partitions.to_string(),
        ),
        (
            "offsets.retention.minutes",
            (config.groups.offsets_retention_ms / 60_000).to_string(),
        ),
    ];
    if let Some(rack) = &config.rack {
        configs.push(("broker.rack", rack.clone()));
    }
    // The topic defaults, under their broker-level names.
    let defaults = TopicConfigs::from_overrides_with(Default::default(), &config.topic_defaults)
        .unwrap_or_default();
    let effective = |name: &str| {
        defaults
            .effective()
            .find(|(key, _, _)| *key == name)
            .map(|(_, value, _)| value.to_string())
            .unwrap_or_default()
    };
    for (broker_name, topic_name) in BROKER_TOPIC_DEFAULTS {
        configs.push((broker_name, effective(topic_name)));
    }
    configs
}

/// Broker configs that are defaults of topic configs (Kafka's names).
const BROKER_TOPIC_DEFAULTS: &[(&str, &str)] = &[
    ("log.retention.ms", "retention.ms"),
    ("log.retention.bytes", "retention.bytes"),
    ("log.segment.bytes", "segment.bytes"),
    ("log.roll.ms", "segment.ms"),
    ("message.max.bytes", "max.message.bytes"),
    ("log.message.timestamp.type", "message.timestamp.type"),
    ("min.insync.replicas", "min.insync.replicas"),
];
