//! Topic configs over the Kafka config APIs: DescribeConfigs (for
//! `corelog topic describe`) and IncrementalAlterConfigs for
//! `corelog topic alter-config`, which sets or deletes single overrides
//! without restating the others (KIP-339), like `kafka-configs --alter`.

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResourceResult;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{ApiKey, DescribeConfigsRequest, IncrementalAlterConfigsRequest};
use kafka_protocol::protocol::StrBytes;

use super::{controller, topic_metadata, with_message};
use crate::cli::kafka::{KafkaClient, Node, ToolError};

/// DescribeConfigs / IncrementalAlterConfigs resource type of a topic.
const RESOURCE_TOPIC: i8 = 2;
const OPERATION_SET: i8 = 0;
const OPERATION_DELETE: i8 = 1;

/// Every config of a topic, as DescribeConfigs reports them.
pub(super) fn describe_configs(
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
pub(super) fn config_source_name(source: i8) -> &'static str {
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

pub(super) fn alter_config(
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
