//! `corelog topic list` and `corelog topic describe`: the read-only views.
//! Metadata for partitions, leaders and replicas, ListOffsets (sent to each
//! partition's leader, wherever it runs in a cluster) for the log start
//! offset and high watermark, DescribeConfigs (see `configs`) for the
//! topic's configs; printed as tables or, with `--json`, as one JSON value.
//! A partition without a live leader shows leader `none` (-1 in JSON) and
//! no offsets.

use kafka_protocol::messages::describe_configs_response::DescribeConfigsResourceResult;
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use serde_json::json;

use super::configs::{config_source_name, describe_configs};
use super::topic_metadata;
use crate::cli::common::{format_table, print_json};
use crate::cli::kafka::offsets::{list_offsets, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use crate::cli::kafka::{KafkaClient, ToolError};

/// DescribeConfigs config source of a value nobody set (Kafka's DEFAULT_CONFIG).
const SOURCE_DEFAULT: i8 = 5;

pub(super) fn list(client: &mut KafkaClient, internal: bool, json: bool) -> Result<(), ToolError> {
    let metadata = client.metadata(None)?;
    let mut topics: Vec<&MetadataResponseTopic> = metadata
        .topics
        .iter()
        .filter(|topic| internal || !topic.is_internal)
        .filter(|topic| topic.name.is_some())
        .collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    let name = |topic: &MetadataResponseTopic| {
        topic
            .name
            .as_ref()
            .map(|name| name.0.to_string())
            .unwrap_or_default()
    };
    let replication_factor = |topic: &MetadataResponseTopic| {
        topic
            .partitions
            .first()
            .map(|partition| partition.replica_nodes.len())
            .unwrap_or(0)
    };
    if json {
        let rows: Vec<_> = topics
            .iter()
            .map(|topic| {
                json!({
                    "name": name(topic),
                    "partitions": topic.partitions.len(),
                    "replication_factor": replication_factor(topic),
                    "internal": topic.is_internal,
                })
            })
            .collect();
        print_json(&json!(rows));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = topics
        .iter()
        .map(|topic| {
            let mut row = vec![
                name(topic),
                topic.partitions.len().to_string(),
                replication_factor(topic).to_string(),
            ];
            if internal {
                row.push(topic.is_internal.to_string());
            }
            row
        })
        .collect();
    let mut header = vec!["TOPIC", "PARTITIONS", "REPLICATION FACTOR"];
    if internal {
        header.push("INTERNAL");
    }
    print!("{}", format_table(&header, &rows));
    Ok(())
}

pub(super) fn describe(
    client: &mut KafkaClient,
    name: &str,
    all_configs: bool,
    json: bool,
) -> Result<(), ToolError> {
    let topic = topic_metadata(client, name)?;
    let mut partitions = topic.partitions.clone();
    partitions.sort_by_key(|partition| partition.partition_index);
    // Offsets come from each partition's leader; a partition without one
    // (its broker fenced or gone) is still listed, with leader "none" and no
    // offsets, instead of failing the whole description.
    let keys: Vec<(String, i32)> = partitions
        .iter()
        .filter(|partition| partition.leader_id.0 >= 0)
        .map(|partition| (name.to_string(), partition.partition_index))
        .collect();
    let log_start = list_offsets(client, &keys, EARLIEST_TIMESTAMP)?;
    let high_watermark = list_offsets(client, &keys, LATEST_TIMESTAMP)?;
    let mut configs = describe_configs(client, name)?;
    configs.retain(|config| all_configs || config.config_source != SOURCE_DEFAULT);
    configs.sort_by(|a, b| a.name.cmp(&b.name));
    let ids = |nodes: &[kafka_protocol::messages::BrokerId]| {
        nodes
            .iter()
            .map(|node| node.0.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let config_value =
        |config: &DescribeConfigsResourceResult| match (&config.value, config.is_sensitive) {
            (_, true) => "(sensitive)".to_string(),
            (Some(value), false) => value.to_string(),
            (None, false) => "(null)".to_string(),
        };
    if json {
        let partitions: Vec<_> = partitions
            .iter()
            .map(|partition| {
                let key = (name.to_string(), partition.partition_index);
                json!({
                    "partition": partition.partition_index,
                    "leader": partition.leader_id.0,
                    "replicas": partition.replica_nodes.iter().map(|node| node.0).collect::<Vec<_>>(),
                    "isr": partition.isr_nodes.iter().map(|node| node.0).collect::<Vec<_>>(),
                    "log_start_offset": log_start.get(&key),
                    "high_watermark": high_watermark.get(&key),
                })
            })
            .collect();
        let configs: Vec<_> = configs
            .iter()
            .map(|config| {
                json!({
                    "name": config.name.to_string(),
                    "value": config_value(config),
                    "source": config_source_name(config.config_source),
                    "read_only": config.read_only,
                })
            })
            .collect();
        print_json(&json!({
            "name": name,
            "topic_id": topic.topic_id.to_string(),
            "internal": topic.is_internal,
            "partitions": partitions,
            "configs": configs,
        }));
        return Ok(());
    }
    println!(
        "Topic: {name}  id: {}  partitions: {}  replication factor: {}{}",
        topic.topic_id,
        partitions.len(),
        partitions
            .first()
            .map(|partition| partition.replica_nodes.len())
            .unwrap_or(0),
        if topic.is_internal { "  internal" } else { "" }
    );
    let rows: Vec<Vec<String>> = partitions
        .iter()
        .map(|partition| {
            let key = (name.to_string(), partition.partition_index);
            let offset = |offsets: &std::collections::BTreeMap<(String, i32), i64>| {
                offsets
                    .get(&key)
                    .map(i64::to_string)
                    .unwrap_or_else(|| "-".into())
            };
            let leader = match partition.leader_id.0 {
                id if id >= 0 => id.to_string(),
                _ => "none".to_string(),
            };
            vec![
                partition.partition_index.to_string(),
                leader,
                ids(&partition.replica_nodes),
                ids(&partition.isr_nodes),
                offset(&log_start),
                offset(&high_watermark),
            ]
        })
        .collect();
    print!(
        "{}",
        format_table(
            &[
                "PARTITION",
                "LEADER",
                "REPLICAS",
                "ISR",
                "LOG START OFFSET",
                "HIGH WATERMARK"
            ],
            &rows
        )
    );
    println!();
    if configs.is_empty() {
        println!("Configs: all defaults (--all-configs shows them)");
        return Ok(());
    }
    println!("Configs:");
    let rows: Vec<Vec<String>> = configs
        .iter()
        .map(|config| {
            vec![
                config.name.to_string(),
                config_value(config),
                config_source_name(config.config_source).to_string(),
            ]
        })
        .collect();
    print!("{}", format_table(&["NAME", "VALUE", "SOURCE"], &rows));
    Ok(())
}
