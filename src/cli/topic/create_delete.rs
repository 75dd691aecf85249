//! `corelog topic create`, `delete` and `add-partitions`: CreateTopics,
//! DeleteTopics and CreatePartitions, the admin requests that change which
//! topics and partitions exist. Sent to the controller, as Kafka's admin
//! client does; runs on the CLI's main thread with the blocking client.

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::{
    ApiKey, CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest,
};
use kafka_protocol::protocol::StrBytes;

use super::{controller, topic_metadata, topic_name, with_message, UNKNOWN_TOPIC_OR_PARTITION};
use crate::cli::common::for_each_reporting;
use crate::cli::kafka::{KafkaClient, ToolError};

/// How long the broker may take to create, delete or grow topics.
const ADMIN_TIMEOUT_MS: i32 = 30_000;

pub(super) fn create(
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

pub(super) fn delete(client: &mut KafkaClient, names: &[String]) -> Result<(), ToolError> {
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

pub(super) fn add_partitions(
    client: &mut KafkaClient,
    name: &str,
    total: i32,
) -> Result<(), ToolError> {
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
