//! `corelog topic ...`: create, list, describe, delete, grow and reconfigure
//! topics over the Kafka admin APIs (CreateTopics, Metadata, ListOffsets,
//! DescribeConfigs, DeleteTopics, CreatePartitions, IncrementalAlterConfigs),
//! so it works against any Kafka-compatible broker, like `kafka-topics` and
//! `kafka-configs`. Runs on the CLI's main thread with the blocking client.

use clap::{Args, Subcommand};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResourceResult;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::{
    ApiKey, CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest,
    DescribeConfigsRequest, IncrementalAlterConfigsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use crate::cli::common::{
    for_each_reporting, format_table, parse_key_value, print_json, ConnectArgs,
};
use crate::cli::kafka::offsets::{list_offsets, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use crate::cli::kafka::{KafkaClient, Node, ToolError};

const CLIENT_ID: &str = "corelog-topic";
/// How long the broker may take to create, delete or grow topics.
const ADMIN_TIMEOUT_MS: i32 = 30_000;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
/// DescribeConfigs / IncrementalAlterConfigs resource type of a topic.
const RESOURCE_TOPIC: i8 = 2;
/// DescribeConfigs config source of a value nobody set (Kafka's DEFAULT_CONFIG).
const SOURCE_DEFAULT: i8 = 5;
const OPERATION_SET: i8 = 0;
const OPERATION_DELETE: i8 = 1;

#[derive(Debug, Args)]
pub struct TopicArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(subcommand)]
    pub command: TopicCommand,
}

#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    Create {
        name: String,
        /// Partitions (the broker's default when omitted).
        #[arg(long)]
        partitions: Option<i32>,
        /// Replicas per partition (the broker's default when omitted).
        #[arg(long)]
        replication_factor: Option<i16>,
        /// Topic config, key=value (repeatable), e.g. retention.ms=3600000.
        #[arg(long = "config", value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
    },
    /// List topics.
    List {
        /// Include internal topics such as __consumer_offsets.
        #[arg(long)]
        internal: bool,
        #[arg(long)]
        json: bool,
    },
    /// Show a topic's partitions, leaders, offsets and configs.
    Describe {
        name: String,
        /// Show every config, not only those that differ from the defaults.
        #[arg(long)]
        all_configs: bool,
        #[arg(long)]
        json: bool,
    },
    /// Delete topics and their data.
    Delete {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Grow a topic to a total number of partitions (partitions are never removed).
    AddPartitions {
        name: String,
        /// The new total number of partitions.
        #[arg(long)]
        total: i32,
    },
    /// Set or remove topic config overrides.
    AlterConfig {
        name: String,
        /// key=value to set (repeatable).
        #[arg(long = "set", value_parser = parse_key_value)]
        set: Vec<(String, String)>,
        /// Key to reset to the default (repeatable).
        #[arg(long = "delete")]
        delete: Vec<String>,
    },
}

pub fn run(args: TopicArgs) -> Result<(), ToolError> {
    let mut client = args.connect.connect(CLIENT_ID)?;
    match args.command {
        TopicCommand::Create {
            name,
            partitions,
            replication_factor,
            configs,
        } => create(&mut client, &name, partitions, replication_factor, &configs),
        TopicCommand::List { internal, json } => list(&mut client, internal, json),
        TopicCommand::Describe {
            name,
            all_configs,
            json,
        } => describe(&mut client, &name, all_configs, json),
        TopicCommand::Delete { names } => delete(&mut client, &names),
        TopicCommand::AddPartitions { name, total } => add_partitions(&mut client, &name, total),
        TopicCommand::AlterConfig { name, set, delete } => {
            alter_config(&mut client, &name, &set, &delete)
        }
    }
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// `context` followed by the broker's explanation, when it gave one.
fn with_message(context: String, message: &Option<StrBytes>) -> String {
    match message.as_deref() {
        Some(message) if !message.is_empty() => format!("{context} ({message})"),
        _ => context,
    }
}

/// Admin requests go to the controller, as Kafka's admin client sends them.
fn controller(client: &mut KafkaClient) -> Result<Node, ToolError> {
    let metadata = client.metadata(Some(&[]))?;
    Ok(match metadata.controller_id.0 {
        id if id >= 0 => Node::Broker(id),
        _ => Node::Any,
    })
}

fn create(
    client: &mut KafkaClient,
    name: &str,
    partitions: Option<i32>,
    replication_factor: Option<i16>,
    configs: &[(String, String)],
) -> Result<(), ToolError> {
    let node = controller(client)?;
    let version = client.version(&node, ApiKey::CreateTopics, 7)?;
    // -1 ("the broker's default") is understood from v4 (KIP-464).
    let default_count = if version >= 4 { -1 } else { 1 };
    let topic = CreatableTopic::default()
        .with_name(topic_name(name))
        .with_num_partitions(partitions.unwrap_or(default_count))
        .with_replication_factor(replication_factor.unwrap_or(default_count as i16))
        .with_configs(
            configs
                .iter()
                .map(|(key, value)| {
                    CreatableTopicConfig::default()
                        .with_name(StrBytes::from_string(key.clone()))
                        .with_value(Some(StrBytes::from_string(value.clone())))
                })
                .collect(),
        );
    let request = CreateTopicsRequest::default()
        .with_topics(vec![topic])
        .with_timeout_ms(ADMIN_TIMEOUT_MS);
    let response = client.send(&node, version, &request)?;
    let result = response
        .topics
        .iter()
        .find(|result| &*result.name.0 == name)
        .ok_or_else(|| ToolError::Protocol(format!("CreateTopics answered nothing for {name}")))?;
    if result.error_code != 0 {
        let context = with_message(format!("creating topic {name}"), &result.error_message);
        return Err(ToolError::kafka(context, result.error_code));
    }
    println!("Created topic {name}.");
    Ok(())
}

fn list(client: &mut KafkaClient, internal: bool, json: bool) -> Result<(), ToolError> {
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

/// The topic's metadata, or a clear UNKNOWN_TOPIC_OR_PARTITION error.
pub fn topic_metadata(
    client: &mut KafkaClient,
    name: &str,
) -> Result<MetadataResponseTopic, ToolError> {
    let metadata = client.metadata(Some(&[name.to_string()]))?;
    let topic = metadata
        .topics
        .into_iter()
        .find(|topic| topic.name.as_ref().map(|topic_name| &*topic_name.0) == Some(name));
    match topic {
        Some(topic) if topic.error_code == 0 => Ok(topic),
        Some(topic) if topic.error_code != UNKNOWN_TOPIC_OR_PARTITION => {
            Err(ToolError::kafka(format!("topic {name}"), topic.error_code))
        }
        _ => Err(ToolError::kafka(
            format!("topic {name} does not exist"),
            UNKNOWN_TOPIC_OR_PARTITION,
        )),
    }
}

fn describe(
    client: &mut KafkaClient,
    name: &str,
    all_configs: bool,
    json: bool,
) -> Result<(), ToolError> {
    let topic = topic_metadata(client, name)?;
    let mut partitions = topic.partitions.clone();
    partitions.sort_by_key(|partition| partition.partition_index);
    let keys: Vec<(String, i32)> = partitions
        .iter()
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
            vec![
                partition.partition_index.to_string(),
                partition.leader_id.0.to_string(),
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

/// Every config of a topic, as DescribeConfigs reports them.
fn describe_configs(
    client: &mut KafkaClient,
    name: &str,
) -> Result<Vec<DescribeConfigsResourceResult>, ToolError> {
    let version = client.version(&Node::Any, ApiKey::DescribeConfigs, 4)?;
    let request =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(RESOURCE_TOPIC)
            .with_resource_name(StrBytes::from_string(name.to_string()))
            .with_configuration_keys(None)]);
    let response = client.send(&Node::Any, version, &request)?;
    let result = response.results.into_iter().next().ok_or_else(|| {
        ToolError::Protocol(format!("DescribeConfigs answered nothing for {name}"))
    })?;
    if result.error_code != 0 {
        let context = with_message(
            format!("describing the configs of topic {name}"),
            &result.error_message,
        );
        return Err(ToolError::kafka(context, result.error_code));
    }
    Ok(result.configs)
}

/// Kafka's name of a DescribeConfigs config source (`ConfigSource` in KIP-226).
fn config_source_name(source: i8) -> &'static str {
    match source {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        7 => "CLIENT_METRICS_CONFIG",
        8 => "GROUP_CONFIG",
        _ => "UNKNOWN",
    }
}

fn delete(client: &mut KafkaClient, names: &[String]) -> Result<(), ToolError> {
    let node = controller(client)?;
    let version = client.version(&node, ApiKey::DeleteTopics, 6)?;
    let mut request = DeleteTopicsRequest::default().with_timeout_ms(ADMIN_TIMEOUT_MS);
    // v6 names topics in `topics` (by name or id), earlier versions in `topic_names`.
    if version >= 6 {
        request.topics = names
            .iter()
            .map(|name| DeleteTopicState::default().with_name(Some(topic_name(name))))
            .collect();
    } else {
        request.topic_names = names.iter().map(|name| topic_name(name)).collect();
    }
    let response = client.send(&node, version, &request)?;
    for_each_reporting(names, "deletions", |name| {
        let result = response
            .responses
            .iter()
            .find(|result| result.name.as_ref().map(|topic| &*topic.0) == Some(name.as_str()))
            .ok_or_else(|| {
                ToolError::Protocol(format!("DeleteTopics answered nothing for {name}"))
            })?;
        let context = match result.error_code {
            0 => {
                println!("Deleted topic {name}.");
                return Ok(());
            }
            UNKNOWN_TOPIC_OR_PARTITION => format!("deleting topic {name}: it does not exist"),
            _ => with_message(format!("deleting topic {name}"), &result.error_message),
        };
        Err(ToolError::kafka(context, result.error_code))
    })
}

fn add_partitions(client: &mut KafkaClient, name: &str, total: i32) -> Result<(), ToolError> {
    if total < 1 {
        return Err(ToolError::Usage(format!(
            "--total must be at least 1, got {total}"
        )));
    }
    let current = topic_metadata(client, name)?.partitions.len();
    let node = controller(client)?;
    let version = client.version(&node, ApiKey::CreatePartitions, 3)?;
    let request = CreatePartitionsRequest::default()
        .with_topics(vec![CreatePartitionsTopic::default()
            .with_name(topic_name(name))
            .with_count(total)
            .with_assignments(None)])
        .with_timeout_ms(ADMIN_TIMEOUT_MS);
    let response = client.send(&node, version, &request)?;
    let result = response
        .results
        .iter()
        .find(|result| &*result.name.0 == name)
        .ok_or_else(|| {
            ToolError::Protocol(format!("CreatePartitions answered nothing for {name}"))
        })?;
    if result.error_code != 0 {
        let context = with_message(
            format!("growing topic {name} from {current} to {total} partitions"),
            &result.error_message,
        );
        return Err(ToolError::kafka(context, result.error_code));
    }
    println!("Topic {name} now has {total} partitions (was {current}).");
    Ok(())
}

fn alter_config(
    client: &mut KafkaClient,
    name: &str,
    set: &[(String, String)],
    delete: &[String],
) -> Result<(), ToolError> {
    if set.is_empty() && delete.is_empty() {
        return Err(ToolError::Usage(
            "nothing to change: give --set key=value or --delete key".into(),
        ));
    }
    if let Some(key) = delete
        .iter()
        .find(|key| set.iter().any(|(set_key, _)| set_key == *key))
    {
        return Err(ToolError::Usage(format!("{key} is both set and deleted")));
    }
    topic_metadata(client, name)?;
    let node = controller(client)?;
    let version = client.version(&node, ApiKey::IncrementalAlterConfigs, 1)?;
    let configs = set
        .iter()
        .map(|(key, value)| {
            AlterableConfig::default()
                .with_name(StrBytes::from_string(key.clone()))
                .with_config_operation(OPERATION_SET)
                .with_value(Some(StrBytes::from_string(value.clone())))
        })
        .chain(delete.iter().map(|key| {
            AlterableConfig::default()
                .with_name(StrBytes::from_string(key.clone()))
                .with_config_operation(OPERATION_DELETE)
                .with_value(None)
        }))
        .collect();
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(RESOURCE_TOPIC)
            .with_resource_name(StrBytes::from_string(name.to_string()))
            .with_configs(configs),
    ]);
    let response = client.send(&node, version, &request)?;
    let result = response.responses.first().ok_or_else(|| {
        ToolError::Protocol(format!(
            "IncrementalAlterConfigs answered nothing for {name}"
        ))
    })?;
    if result.error_code != 0 {
        let context = with_message(
            format!("altering the configs of topic {name}"),
            &result.error_message,
        );
        return Err(ToolError::kafka(context, result.error_code));
    }
    for (key, value) in set {
        println!("Set {key}={value} on topic {name}.");
    }
    for key in delete {
        println!("Removed {key} from topic {name} (back to the default).");
    }
    Ok(())
}
