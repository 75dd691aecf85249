//! DescribeConfigs: topic and broker configs as Kafka 4.4's `ConfigHelper`
//! reports them, answered on any shard from its catalog and the broker's
//! start-up config. Each entry carries its source, and from v3 its type; on
//! request its synonyms (KIP-226: where the value comes from, most specific
//! first) and documentation.
//!
//! A topic config's synonyms are the topic's override (DYNAMIC_TOPIC_CONFIG)
//! and then its broker-level defaults: `--log-*` flags as
//! STATIC_BROKER_CONFIG and Kafka's own defaults as DEFAULT_CONFIG, cut, as
//! Kafka cuts them, before the first broker name that is the topic config's
//! own (so `retention.ms` never falls back to `log.retention.hours` in the
//! list, though that is where Kafka's 7 days come from). Broker configs are
//! the `serve` flags that have Kafka names and the broker-level defaults of
//! every topic config; corelog sets them at start-up only, so all are
//! read-only.

use std::rc::Rc;

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::shard::Shard;
use crate::config::{BrokerConfig, FlushPolicy};
use crate::metadata::catalog::Catalog;
use crate::metadata::topic_config::TopicConfigs;
use crate::metadata::topic_config_catalogue::{
    BrokerSynonym, ConfigType, TopicConfigDef, CLUSTER_DEFAULT_CONFIGS, TOPIC_CONFIGS,
};
use crate::metadata::topic_name::validate_topic_name;
use crate::protocol::errors::KafkaError;

/// DescribeConfigs resource types (Kafka's `ConfigResource.Type`).
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

/// Config sources (Kafka's `DescribeConfigsResponse.ConfigSource`).
pub const SOURCE_TOPIC: i8 = 1;
pub const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;
pub const SOURCE_STATIC_BROKER: i8 = 4;
pub const SOURCE_DEFAULT: i8 = 5;

/// What the client asked to be included with each entry.
#[derive(Debug, Clone, Copy)]
struct Detail {
    synonyms: bool,
    documentation: bool,
    /// `config_type` and `documentation` exist from v3.
    version: i16,
}

pub fn handle_describe_configs(
    shard: &Rc<Shard>,
    request: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let detail = Detail {
        synonyms: request.include_synonyms,
        documentation: request.include_documentation && version >= 3,
        version,
    };
    let catalog = shard.catalog();
    let results = request
        .resources
        .iter()
        .map(|resource| describe_resource(&catalog, &shard.config, resource, detail))
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn describe_resource(
    catalog: &Catalog,
    config: &BrokerConfig,
    resource: &DescribeConfigsResource,
    detail: Detail,
) -> DescribeConfigsResult {
    let name = resource.resource_name.as_str();
    // Kafka: a null or empty key list means every config.
    let wanted = |key: &str| match resource.configuration_keys.as_deref() {
        None | Some([]) => true,
        Some(keys) => keys.iter().any(|wanted| wanted.as_str() == key),
    };
    let result = DescribeConfigsResult::default()
        .with_error_message(None)
        .with_resource_type(resource.resource_type)
        .with_resource_name(resource.resource_name.clone());
    let entries = match resource.resource_type {
        RESOURCE_TOPIC => topic_entries(catalog, name, detail),
        RESOURCE_BROKER => broker_entries(config, name, detail),
        _ => Err((
            KafkaError::InvalidRequest,
            "Unsupported resource type".to_string(),
        )),
    };
    match entries {
        Ok(entries) => result.with_configs(
            entries
                .into_iter()
                .filter(|entry| wanted(entry.name.as_str()))
                .collect(),
        ),
        Err((error, message)) => result
            .with_error_code(error.code())
            .with_error_message(Some(StrBytes::from_string(message))),
    }
}

type Refusal = (KafkaError, String);

fn topic_entries(
    catalog: &Catalog,
    name: &str,
    detail: Detail,
) -> Result<Vec<DescribeConfigsResourceResult>, Refusal> {
    validate_topic_name(name).map_err(|message| (KafkaError::InvalidTopicException, message))?;
    let Some(topic) = catalog.topic(name) else {
        return Err((
            KafkaError::UnknownTopicOrPartition,
            "This server does not host this topic-partition.".to_string(),
        ));
    };
    Ok(TOPIC_CONFIGS
        .iter()
        .map(|def| topic_entry(def, &topic.configs, detail))
        .collect())
}

/// One topic config: its effective value, where it comes from, and the
/// chain of synonyms behind it.
fn topic_entry(
    def: &TopicConfigDef,
    configs: &TopicConfigs,
    detail: Detail,
) -> DescribeConfigsResourceResult {
    let override_value = configs.overrides().get(def.name);
    let mut synonyms = Vec::new();
    if let Some(value) = override_value {
        synonyms.push(synonym(def.name, Some(value), SOURCE_TOPIC));
    }
    if let Some(primary) = def.broker_synonyms.first() {
        synonyms.extend(broker_synonyms(
            def.broker_synonyms,
            configs.broker_default(def.name),
            CLUSTER_DEFAULT_CONFIGS.contains(&def.name),
            primary.name,
        ));
    }
    let value = configs
        .effective()
        .find(|(name, _, _)| *name == def.name)
        .map(|(_, value, _)| value.to_string());
    entry(
        def.name,
        value.as_deref(),
        def.config_type,
        synonyms,
        false,
        def.documentation,
        detail,
    )
}

/// The broker-level synonyms of a config, as Kafka's
/// `ConfigHelper.configSynonyms` lists them: dynamic cluster defaults, then
/// static broker configs (the one a flag sets, `flag_value`), then Kafka's
/// defaults; everything before the first entry named `described` dropped
/// (so `log.retention.ms` is not described by `log.retention.hours`).
fn broker_synonyms(
    chain: &[BrokerSynonym],
    flag_value: Option<&str>,
    cluster_default: bool,
    described: &str,
) -> Vec<DescribeConfigsSynonym> {
    let Some(primary) = chain.first() else {
        return Vec::new();
    };
    let mut synonyms = Vec::new();
    if cluster_default {
        let value = flag_value.or(primary.kafka_default);
        synonyms.push(synonym(primary.name, value, SOURCE_DYNAMIC_DEFAULT_BROKER));
    }
    if let Some(value) = flag_value {
        synonyms.push(synonym(primary.name, Some(value), SOURCE_STATIC_BROKER));
    }
    for link in chain {
        if let Some(default) = link.kafka_default {
            synonyms.push(synonym(link.name, Some(default), SOURCE_DEFAULT));
        }
    }
    let first = synonyms
        .iter()
        .position(|synonym| synonym.name.as_str() == described)
        .unwrap_or(synonyms.len());
    synonyms.split_off(first)
}

fn synonym(name: &str, value: Option<&str>, source: i8) -> DescribeConfigsSynonym {
    DescribeConfigsSynonym::default()
        .with_name(StrBytes::from_string(name.to_string()))
        .with_value(value.map(|value| StrBytes::from_string(value.to_string())))
        .with_source(source)
}

/// An entry whose source is its first synonym's (DEFAULT_CONFIG if none),
/// with synonyms, type and documentation as far as asked and as the
/// version has them.
fn entry(
    name: &str,
    value: Option<&str>,
    config_type: ConfigType,
    synonyms: Vec<DescribeConfigsSynonym>,
    read_only: bool,
    documentation: &str,
    detail: Detail,
) -> DescribeConfigsResourceResult {
    let source = synonyms
        .first()
        .map_or(SOURCE_DEFAULT, |first| first.source);
    let result = DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_string(name.to_string()))
        .with_value(value.map(|value| StrBytes::from_string(value.to_string())))
        .with_read_only(read_only)
        .with_config_source(source)
        .with_is_sensitive(false)
        .with_synonyms(if detail.synonyms {
            synonyms
        } else {
            Vec::new()
        });
    if detail.version < 3 {
        return result;
    }
    result
        .with_config_type(config_type.id())
        .with_documentation(
            detail
                .documentation
                .then(|| StrBytes::from_string(documentation.to_string())),
        )
}

/// A broker config corelog has: Kafka's name, type and default.
struct BrokerConfigDef {
    name: &'static str,
    config_type: ConfigType,
    kafka_default: Option<&'static str>,
    documentation: &'static str,
}

const fn broker_def(
    name: &'static str,
    config_type: ConfigType,
    kafka_default: Option<&'static str>,
    documentation: &'static str,
) -> BrokerConfigDef {
    BrokerConfigDef {
        name,
        config_type,
        kafka_default,
        documentation,
    }
}

/// The `serve` settings that have Kafka broker config names.
const BROKER_CONFIGS: &[BrokerConfigDef] = &[
    broker_def("broker.id", ConfigType::Int, Some("-1"), "This broker's id (corelog: --node-id)."),
    broker_def("node.id", ConfigType::Int, None, "This node's id in the cluster (--node-id)."),
    broker_def("broker.rack", ConfigType::String, None, "Rack of this broker, for rack-aware replica placement (--rack)."),
    broker_def("auto.create.topics.enable", ConfigType::Boolean, Some("true"), "Whether Metadata requests for unknown topics create them (--auto-create-topics)."),
    broker_def("num.partitions", ConfigType::Int, Some("1"), "Partitions of a topic created without a count (--default-partitions)."),
    broker_def("socket.request.max.bytes", ConfigType::Int, Some("104857600"), "Largest request the broker reads; larger frames close the connection (--max-request-bytes)."),
    broker_def("log.dirs", ConfigType::List, None, "Directory holding the partition logs (--data-dir)."),
    broker_def("log.flush.interval.ms", ConfigType::Long, None, "How often appended data is forced to disk (--flush: always is 0, never is the largest long)."),
    broker_def("log.retention.check.interval.ms", ConfigType::Long, Some("300000"), "How often each shard applies retention to its partitions (--log-retention-check-interval-ms)."),
    broker_def("group.initial.rebalance.delay.ms", ConfigType::Int, Some("3000"), "How long the first rebalance of a new group waits for more members to join."),
    broker_def("group.min.session.timeout.ms", ConfigType::Int, Some("6000"), "Shortest session timeout a group member may ask for."),
    broker_def("group.max.session.timeout.ms", ConfigType::Int, Some("1800000"), "Longest session timeout a group member may ask for."),
    broker_def("group.consumer.session.timeout.ms", ConfigType::Int, Some("45000"), "How long a consumer-protocol (KIP-848) member may go without a heartbeat before it is fenced."),
    broker_def("group.consumer.heartbeat.interval.ms", ConfigType::Int, Some("5000"), "How often consumer-protocol (KIP-848) members heartbeat."),
    broker_def("offsets.topic.num.partitions", ConfigType::Int, Some("50"), "Partitions of __consumer_offsets."),
    broker_def("offsets.retention.minutes", ConfigType::Int, Some("10080"), "How long the committed offsets of an empty group are kept."),
    broker_def("max.incremental.fetch.session.cache.slots", ConfigType::Int, Some("1000"), "Incremental fetch sessions (KIP-227) the broker keeps, split between its shards (--max-incremental-fetch-session-cache-slots; unset: 1000 per shard)."),
];

/// BROKER resources: this broker's configs (its id as the name), or the
/// cluster-wide dynamic defaults (the empty name), as Kafka answers them.
fn broker_entries(
    config: &BrokerConfig,
    name: &str,
    detail: Detail,
) -> Result<Vec<DescribeConfigsResourceResult>, Refusal> {
    let defaults = TopicConfigs::from_overrides_with(Default::default(), &config.topic_defaults)
        .unwrap_or_default();
    if name.is_empty() {
        return Ok(cluster_default_entries(&defaults, detail));
    }
    let Ok(broker_id) = name.parse::<i32>() else {
        return Err((
            KafkaError::InvalidRequest,
            format!("Broker id must be an integer, but it is: {name}"),
        ));
    };
    if broker_id != config.node_id {
        return Err((
            KafkaError::InvalidRequest,
            format!(
                "Unexpected broker id, expected {} or empty string, but received {name}",
                config.node_id
            ),
        ));
    }
    let mut entries: Vec<DescribeConfigsResourceResult> = BROKER_CONFIGS
        .iter()
        .map(|def| {
            let value = broker_value(config, def.name);
            let synonyms = static_synonyms(def.name, value.as_deref(), def.kafka_default);
            entry(
                def.name,
                value.as_deref(),
                def.config_type,
                synonyms,
                true,
                def.documentation,
                detail,
            )
        })
        .collect();
    for def in TOPIC_CONFIGS {
        for link in def.broker_synonyms {
            if entries.iter().any(|entry| entry.name.as_str() == link.name) {
                continue;
            }
            entries.push(topic_default_entry(def, link, &defaults, detail));
        }
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

/// Kafka 4.x keeps `min.insync.replicas` as a cluster-wide dynamic default.
fn cluster_default_entries(
    defaults: &TopicConfigs,
    detail: Detail,
) -> Vec<DescribeConfigsResourceResult> {
    TOPIC_CONFIGS
        .iter()
        .filter(|def| CLUSTER_DEFAULT_CONFIGS.contains(&def.name))
        .filter_map(|def| {
            let link = def.broker_synonyms.first()?;
            let value = defaults
                .broker_default(def.name)
                .or(link.kafka_default)
                .map(str::to_string);
            let synonyms = vec![synonym(
                link.name,
                value.as_deref(),
                SOURCE_DYNAMIC_DEFAULT_BROKER,
            )];
            Some(entry(
                link.name,
                value.as_deref(),
                def.config_type,
                synonyms,
                false,
                def.documentation,
                detail,
            ))
        })
        .collect()
}

/// A broker config that defaults topic config `def`: the flag's value if
/// it is the one a flag sets, else Kafka's default.
fn topic_default_entry(
    def: &TopicConfigDef,
    link: &BrokerSynonym,
    defaults: &TopicConfigs,
    detail: Detail,
) -> DescribeConfigsResourceResult {
    let is_primary = def.broker_synonyms.first() == Some(link);
    let flag_value = defaults.broker_default(def.name).filter(|_| is_primary);
    let cluster_default = is_primary && CLUSTER_DEFAULT_CONFIGS.contains(&def.name);
    let synonyms = broker_synonyms(def.broker_synonyms, flag_value, cluster_default, link.name);
    let value = flag_value.or(link.kafka_default);
    // `log.retention.hours` and the like count whole units, in 32 bits.
    let config_type = if link.name.ends_with(".hours") || link.name.ends_with(".minutes") {
        ConfigType::Int
    } else {
        def.config_type
    };
    let documentation = format!(
        "Default {} of topics that do not set it{}.",
        def.name,
        if is_primary { "" } else { ", in other units" }
    );
    entry(
        link.name,
        value,
        config_type,
        synonyms,
        true,
        &documentation,
        detail,
    )
}

/// A broker config set at start-up: STATIC_BROKER_CONFIG unless it holds
/// Kafka's default, which is listed after it.
fn static_synonyms(
    name: &str,
    value: Option<&str>,
    kafka_default: Option<&str>,
) -> Vec<DescribeConfigsSynonym> {
    let mut synonyms = Vec::new();
    if value.is_some() && value != kafka_default {
        synonyms.push(synonym(name, value, SOURCE_STATIC_BROKER));
    }
    if kafka_default.is_some() {
        synonyms.push(synonym(name, kafka_default, SOURCE_DEFAULT));
    }
    synonyms
}

fn broker_value(config: &BrokerConfig, name: &str) -> Option<String> {
    let groups = &config.groups;
    Some(match name {
        "broker.id" | "node.id" => config.node_id.to_string(),
        "broker.rack" => return config.rack.clone(),
        "auto.create.topics.enable" => config.auto_create_topics.to_string(),
        "num.partitions" => config.default_partitions.to_string(),
        "socket.request.max.bytes" => config.max_request_bytes.to_string(),
        "log.dirs" => config.data_dir.display().to_string(),
        "log.flush.interval.ms" => match config.flush {
            FlushPolicy::Always => "0".to_string(),
            FlushPolicy::Interval(every) => every.as_millis().to_string(),
            FlushPolicy::Never => i64::MAX.to_string(),
        },
        "log.retention.check.interval.ms" => {
            config.retention_check_interval.as_millis().to_string()
        }
        "group.initial.rebalance.delay.ms" => groups.initial_rebalance_delay_ms.to_string(),
        "group.min.session.timeout.ms" => groups.min_session_timeout_ms.to_string(),
        "group.max.session.timeout.ms" => groups.max_session_timeout_ms.to_string(),
        "group.consumer.session.timeout.ms" => groups.consumer_session_timeout_ms.to_string(),
        "group.consumer.heartbeat.interval.ms" => groups.consumer_heartbeat_interval_ms.to_string(),
        "offsets.topic.num.partitions" => groups.offsets_topic_partitions.to_string(),
        "offsets.retention.minutes" => (groups.offsets_retention_ms / 60_000).to_string(),
        "max.incremental.fetch.session.cache.slots" => (0..config.shards)
            .map(|shard| config.fetch_sessions.slots_of_shard(shard, config.shards))
            .sum::<usize>()
            .to_string(),
        _ => return None,
    })
}

#[cfg(test)]
#[path = "describe_configs_tests.rs"]
mod tests;
