//! Changing existing topics: AlterConfigs, IncrementalAlterConfigs and
//! CreatePartitions. Like topic creation, they run on the controller shard
//! (others forward the request), serialised by its admin lock; each change
//! is made durable in the topic's manifest and published as a new metadata
//! image. Owners apply changed configs to their logs when the image arrives
//! (`Shard::apply_catalog`), so retention and segment settings take effect
//! without a restart.

use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse as AlterResult;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse as IncrementalResult;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::admin::{
    delete_on_owners, open_on_owners, publish_catalog, AdminError, MAX_PARTITIONS_PER_TOPIC,
};
use futures::future::LocalBoxFuture;
use futures::FutureExt;

use super::routing::{self, ShardCall};
use super::shard::{Shard, CONTROLLER_SHARD};
use crate::cluster::control::ControlRequest;
use crate::metadata::catalog::TopicMetadata;
use crate::metadata::manifest;
use crate::metadata::topic_config::{check_supported, TopicConfigs};
use crate::protocol::errors::KafkaError;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

/// A topic-change request forwarded to the controller.
#[derive(Debug)]
pub enum TopicChange {
    AlterConfigs(AlterConfigsRequest),
    IncrementalAlterConfigs(IncrementalAlterConfigsRequest),
    CreatePartitions(CreatePartitionsRequest),
}

/// The controller's answer.
#[derive(Debug)]
pub enum TopicChangeAnswer {
    AlterConfigs(AlterConfigsResponse),
    IncrementalAlterConfigs(IncrementalAlterConfigsResponse),
    CreatePartitions(CreatePartitionsResponse),
}

/// Runs `change` on the controller, forwarding it if this is another shard.
/// `None` when the controller could not be reached.
pub async fn run(shard: &Rc<Shard>, change: TopicChange) -> Option<TopicChangeAnswer> {
    routing::call(shard, CONTROLLER_SHARD, TopicChangeCall(change))
        .await
        .ok()
}

/// Any shard -> controller: AlterConfigs, IncrementalAlterConfigs,
/// CreatePartitions.
pub struct TopicChangeCall(pub TopicChange);

impl ShardCall<Shard> for TopicChangeCall {
    type Reply = TopicChangeAnswer;
    fn start(self, shard: &Rc<Shard>) -> LocalBoxFuture<'static, TopicChangeAnswer> {
        let shard = Rc::clone(shard);
        async move { run_on_controller(&shard, self.0).await }.boxed_local()
    }
}

async fn run_on_controller(shard: &Rc<Shard>, change: TopicChange) -> TopicChangeAnswer {
    assert_eq!(
        shard.id, CONTROLLER_SHARD,
        "topic changes run on the controller"
    );
    let _permit = shard.admin_lock.acquire_permit(1).await;
    match change {
        TopicChange::AlterConfigs(request) => {
            let mut responses = Vec::with_capacity(request.resources.len());
            for resource in &request.resources {
                let replacement: BTreeMap<String, Option<String>> = resource
                    .configs
                    .iter()
                    .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
                    .collect();
                let outcome = alter(
                    shard,
                    resource.resource_type,
                    &resource.resource_name,
                    request.validate_only,
                    |_| {
                        // AlterConfigs replaces every override with the given set.
                        let mut overrides = BTreeMap::new();
                        for (name, value) in &replacement {
                            let value = value.clone().ok_or_else(|| {
                                AdminError::new(
                                    KafkaError::InvalidRequest,
                                    format!("Null value not supported for : {name}"),
                                )
                            })?;
                            overrides.insert(name.clone(), value);
                        }
                        Ok(overrides)
                    },
                )
                .await;
                let (code, message) = AdminError::response_fields(outcome.err());
                responses.push(
                    AlterResult::default()
                        .with_error_code(code)
                        .with_error_message(message)
                        .with_resource_type(resource.resource_type)
                        .with_resource_name(resource.resource_name.clone()),
                );
            }
            TopicChangeAnswer::AlterConfigs(
                AlterConfigsResponse::default().with_responses(responses),
            )
        }
        TopicChange::IncrementalAlterConfigs(request) => {
            let mut responses = Vec::with_capacity(request.resources.len());
            for resource in &request.resources {
                let outcome = alter(
                    shard,
                    resource.resource_type,
                    &resource.resource_name,
                    request.validate_only,
                    |current| {
                        let mut overrides = current.clone();
                        for config in &resource.configs {
                            apply_operation(
                                &mut overrides,
                                config.config_operation,
                                config.name.as_str(),
                                config.value.as_deref(),
                            )?;
                        }
                        Ok(overrides)
                    },
                )
                .await;
                let (code, message) = AdminError::response_fields(outcome.err());
                responses.push(
                    IncrementalResult::default()
                        .with_error_code(code)
                        .with_error_message(message)
                        .with_resource_type(resource.resource_type)
                        .with_resource_name(resource.resource_name.clone()),
                );
            }
            TopicChangeAnswer::IncrementalAlterConfigs(
                IncrementalAlterConfigsResponse::default().with_responses(responses),
            )
        }
        TopicChange::CreatePartitions(request) => {
            let mut seen = HashSet::new();
            let mut results = Vec::with_capacity(request.topics.len());
            for topic in &request.topics {
                let outcome = if !seen.insert(topic.name.0.to_string()) {
                    Err(AdminError::new(
                        KafkaError::InvalidRequest,
                        "Duplicate topic in request.",
                    ))
                } else {
                    create_partitions(
                        shard,
                        topic.name.0.as_str(),
                        topic.count,
                        topic.assignments.as_deref(),
                        request.validate_only,
                    )
                    .await
                };
                let (code, message) = AdminError::response_fields(outcome.err());
                results.push(
                    CreatePartitionsTopicResult::default()
                        .with_name(topic.name.clone())
                        .with_error_code(code)
                        .with_error_message(message),
                );
            }
            TopicChangeAnswer::CreatePartitions(
                CreatePartitionsResponse::default().with_results(results),
            )
        }
    }
}

/// One IncrementalAlterConfigs operation on a topic's overrides.
fn apply_operation(
    overrides: &mut BTreeMap<String, String>,
    operation: i8,
    name: &str,
    value: Option<&str>,
) -> Result<(), AdminError> {
    let invalid = |message: String| AdminError::new(KafkaError::InvalidConfig, message);
    match operation {
        OP_SET => {
            let value =
                value.ok_or_else(|| invalid(format!("Null value not supported for : {name}")))?;
            overrides.insert(name.to_string(), value.to_string());
        }
        OP_DELETE => {
            overrides.remove(name);
        }
        OP_APPEND | OP_SUBTRACT => {
            if !is_list_config(name) {
                return Err(invalid(format!(
                    "Config value append is not allowed for config key: {name}"
                )));
            }
            let current = overrides
                .get(name)
                .cloned()
                .or_else(|| crate::metadata::topic_config::default_value(name).map(str::to_string))
                .unwrap_or_default();
            let mut items: Vec<String> = current
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            for item in value
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                if operation == OP_APPEND {
                    if !items.iter().any(|existing| existing == item) {
                        items.push(item.to_string());
                    }
                } else {
                    items.retain(|existing| existing != item);
                }
            }
            overrides.insert(name.to_string(), items.join(","));
        }
        other => {
            return Err(AdminError::new(
                KafkaError::InvalidRequest,
                format!("Unknown config operation {other}"),
            ))
        }
    }
    Ok(())
}

/// Topic configs whose value is a comma-separated list (APPEND/SUBTRACT).
fn is_list_config(name: &str) -> bool {
    matches!(
        name,
        "cleanup.policy"
            | "follower.replication.throttled.replicas"
            | "leader.replication.throttled.replicas"
    )
}

/// Validates and applies new overrides for one resource.
async fn alter(
    shard: &Rc<Shard>,
    resource_type: i8,
    resource_name: &StrBytes,
    validate_only: bool,
    next_overrides: impl FnOnce(
        &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, AdminError>,
) -> Result<(), AdminError> {
    match resource_type {
        RESOURCE_TOPIC => {}
        RESOURCE_BROKER => {
            return Err(AdminError::new(
                KafkaError::InvalidRequest,
                "corelog's broker configs are set by flags at start-up, not at runtime",
            ))
        }
        other => {
            return Err(AdminError::new(
                KafkaError::InvalidRequest,
                format!("Unsupported resource type {other}"),
            ))
        }
    }
    let name = resource_name.as_str();
    let Some(topic) = shard.catalog().topic(name).cloned() else {
        return Err(AdminError::new(
            KafkaError::UnknownTopicOrPartition,
            format!("Topic {name} does not exist"),
        ));
    };
    let overrides = next_overrides(topic.configs.overrides())?;
    // The internal offsets topic keeps its own (compact) policy.
    if !topic.is_internal() {
        check_supported(&overrides)
            .map_err(|message| AdminError::new(KafkaError::InvalidConfig, message))?;
    }
    let configs = TopicConfigs::from_overrides_with(overrides, &shard.config.topic_defaults)
        .map_err(|message| AdminError::new(KafkaError::InvalidConfig, message))?;
    if validate_only {
        return Ok(());
    }
    let changed = TopicMetadata {
        configs,
        ..(*topic).clone()
    };
    commit_change(shard, changed).await?;
    tracing::info!(topic = name, "topic configs changed");
    Ok(())
}

/// CreatePartitions for one topic: grow only.
async fn create_partitions(
    shard: &Rc<Shard>,
    name: &str,
    count: i32,
    assignments: Option<&[create_partitions_request::CreatePartitionsAssignment]>,
    validate_only: bool,
) -> Result<(), AdminError> {
    let Some(topic) = shard.catalog().topic(name).cloned() else {
        return Err(AdminError::new(
            KafkaError::UnknownTopicOrPartition,
            format!("The topic '{name}' does not exist."),
        ));
    };
    if topic.is_internal() {
        // Groups are placed by hashing over its partition count.
        return Err(AdminError::new(
            KafkaError::InvalidRequest,
            format!("The partition count of the internal topic {name} cannot change."),
        ));
    }
    let current = topic.partition_count;
    if count < current {
        return Err(AdminError::new(
            KafkaError::InvalidPartitions,
            format!("Topic currently has {current} partitions, which is higher than the requested {count}."),
        ));
    }
    if count == current {
        return Err(AdminError::new(
            KafkaError::InvalidPartitions,
            format!("Topic already has {current} partitions."),
        ));
    }
    if count > MAX_PARTITIONS_PER_TOPIC {
        return Err(AdminError::new(
            KafkaError::InvalidPartitions,
            format!("Number of partitions {count} is above corelog's limit of {MAX_PARTITIONS_PER_TOPIC}."),
        ));
    }
    super::admin::check_node_limit(shard, count - current)?;
    if let Some(cluster) = shard.cluster() {
        // The controller checks assignments against the registered brokers
        // and the topic's replication factor, and decides validateOnly too.
        let assignments = assignments.map(|assignments| {
            assignments
                .iter()
                .map(|assignment| {
                    assignment
                        .broker_ids
                        .iter()
                        .map(|broker| broker.0)
                        .collect()
                })
                .collect()
        });
        let request = ControlRequest::CreatePartitions {
            name: name.to_string(),
            count,
            assignments,
            validate_only,
        };
        cluster.commit(request).await?;
        if !validate_only {
            tracing::info!(topic = name, from = current, to = count, "partitions added");
        }
        return Ok(());
    }
    if let Some(assignments) = assignments {
        let node = shard.config.node_id;
        let expected = (count - current) as usize;
        if assignments.len() != expected
            || assignments
                .iter()
                .any(|a| a.broker_ids.iter().map(|b| b.0).ne([node]))
        {
            return Err(AdminError::new(
                KafkaError::InvalidReplicaAssignment,
                format!("Replica assignments must name broker {node} once for each of the {expected} new partitions"),
            ));
        }
    }
    if validate_only {
        return Ok(());
    }
    let grown = Arc::new(TopicMetadata {
        partition_count: count,
        ..(*topic).clone()
    });
    if let Err(error) = manifest::store(&shard.config.data_dir, &grown).await {
        return Err(AdminError::new(
            KafkaError::KafkaStorageError,
            format!("cannot persist topic: {error}"),
        ));
    }
    let failed = open_on_owners(shard, &grown, current..count).await;
    if let Some((partition, reason)) = failed.first() {
        // The new partitions never serve: undo them and the manifest.
        delete_on_owners(shard, &grown.name, current..count).await;
        if let Err(error) = manifest::store(&shard.config.data_dir, &topic).await {
            tracing::error!(topic = name, %error, "cannot restore the manifest after a failed CreatePartitions");
        }
        return Err(AdminError::new(
            KafkaError::KafkaStorageError,
            format!(
                "{} of the new partitions could not open (partition {partition}: {reason}); \
                 none were added",
                failed.len()
            ),
        ));
    }
    let next = shard
        .catalog()
        .with_topic_led_by((*grown).clone(), shard.config.node_id);
    publish_catalog(shard, next).await;
    tracing::info!(topic = name, from = current, to = count, "partitions added");
    Ok(())
}

/// Stores the changed topic and publishes it.
async fn commit_change(shard: &Rc<Shard>, topic: TopicMetadata) -> Result<(), AdminError> {
    if let Some(cluster) = shard.cluster() {
        let current = shard
            .catalog()
            .topic(&topic.name)
            .map(|current| current.configs.overrides().clone())
            .unwrap_or_default();
        let wanted = topic.configs.overrides();
        let mut changes: Vec<(String, Option<String>)> = current
            .keys()
            .filter(|name| !wanted.contains_key(*name))
            .map(|name| (name.clone(), None))
            .collect();
        changes.extend(
            wanted
                .iter()
                .filter(|(name, value)| current.get(*name) != Some(*value))
                .map(|(name, value)| (name.clone(), Some(value.clone()))),
        );
        let request = ControlRequest::AlterTopicConfigs {
            name: topic.name.to_string(),
            changes,
        };
        return cluster.commit(request).await.map(|_| ());
    }
    if let Err(error) = manifest::store(&shard.config.data_dir, &topic).await {
        return Err(AdminError::new(
            KafkaError::KafkaStorageError,
            format!("cannot persist topic: {error}"),
        ));
    }
    let next = shard
        .catalog()
        .with_topic_led_by(topic, shard.config.node_id);
    publish_catalog(shard, next).await;
    Ok(())
}

/// The request handlers on the connection's shard: forward, and answer
/// NOT_CONTROLLER per resource when the controller cannot be reached.
pub mod apis {
    use std::rc::Rc;

    use kafka_protocol::messages::*;

    use super::{run, AlterResult, IncrementalResult, TopicChange, TopicChangeAnswer};
    use crate::protocol::errors::KafkaError;
    use crate::server::shard::Shard;

    fn not_controller() -> i16 {
        KafkaError::NotController.code()
    }

    pub async fn alter_configs(
        shard: &Rc<Shard>,
        request: AlterConfigsRequest,
    ) -> AlterConfigsResponse {
        let names: Vec<_> = request
            .resources
            .iter()
            .map(|r| (r.resource_type, r.resource_name.clone()))
            .collect();
        match run(shard, TopicChange::AlterConfigs(request)).await {
            Some(TopicChangeAnswer::AlterConfigs(response)) => response,
            _ => AlterConfigsResponse::default().with_responses(
                names
                    .into_iter()
                    .map(|(kind, name)| {
                        AlterResult::default()
                            .with_error_code(not_controller())
                            .with_resource_type(kind)
                            .with_resource_name(name)
                    })
                    .collect(),
            ),
        }
    }

    pub async fn incremental_alter_configs(
        shard: &Rc<Shard>,
        request: IncrementalAlterConfigsRequest,
    ) -> IncrementalAlterConfigsResponse {
        let names: Vec<_> = request
            .resources
            .iter()
            .map(|r| (r.resource_type, r.resource_name.clone()))
            .collect();
        match run(shard, TopicChange::IncrementalAlterConfigs(request)).await {
            Some(TopicChangeAnswer::IncrementalAlterConfigs(response)) => response,
            _ => IncrementalAlterConfigsResponse::default().with_responses(
                names
                    .into_iter()
                    .map(|(kind, name)| {
                        IncrementalResult::default()
                            .with_error_code(not_controller())
                            .with_resource_type(kind)
                            .with_resource_name(name)
                    })
                    .collect(),
            ),
        }
    }

    pub async fn create_partitions(
        shard: &Rc<Shard>,
        request: CreatePartitionsRequest,
    ) -> CreatePartitionsResponse {
        use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
        let names: Vec<_> = request.topics.iter().map(|t| t.name.clone()).collect();
        match run(shard, TopicChange::CreatePartitions(request)).await {
            Some(TopicChangeAnswer::CreatePartitions(response)) => response,
            _ => CreatePartitionsResponse::default().with_results(
                names
                    .into_iter()
                    .map(|name| {
                        CreatePartitionsTopicResult::default()
                            .with_name(name)
                            .with_error_code(not_controller())
                    })
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overrides(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn incremental_operations_set_delete_append_subtract() {
        let mut current = overrides(&[("retention.ms", "1000")]);
        apply_operation(&mut current, OP_SET, "segment.bytes", Some("4096")).expect("set");
        apply_operation(&mut current, OP_DELETE, "retention.ms", None).expect("delete");
        assert_eq!(current, overrides(&[("segment.bytes", "4096")]));
        apply_operation(
            &mut current,
            OP_APPEND,
            "leader.replication.throttled.replicas",
            Some("0:1,0:2"),
        )
        .expect("append");
        apply_operation(
            &mut current,
            OP_SUBTRACT,
            "leader.replication.throttled.replicas",
            Some("0:1"),
        )
        .expect("subtract");
        assert_eq!(current["leader.replication.throttled.replicas"], "0:2");
        assert!(apply_operation(&mut current, OP_APPEND, "retention.ms", Some("1")).is_err());
        assert!(apply_operation(&mut current, OP_SET, "retention.ms", None).is_err());
        assert!(apply_operation(&mut current, 9, "retention.ms", Some("1")).is_err());
    }
}
