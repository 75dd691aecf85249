//! Topic admin (CreateTopics, DeleteTopics, auto-creation): the controller
//! side runs only on shard 0, which owns the authoritative metadata image;
//! other shards forward these requests to it. On a single node each change
//! is made durable (manifest), the owners open or delete the partition logs,
//! and the new image is pushed to every shard before the client gets its
//! answer, so a Metadata request on any connection right after sees the
//! change; a single node has one replica of everything. In a cluster
//! (`Shard::cluster`) the active controller decides, replication factors and
//! replica assignments included (the broker resolves -1 with
//! `--default-replication-factor` first), and the answer waits until this
//! node published the result.

use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;

use futures::future::join_all;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use futures::future::LocalBoxFuture;
use futures::FutureExt;

use super::routing::{self, ShardCall};
use super::shard::{Shard, CONTROLLER_SHARD};
use crate::cluster::control::{ControlOutcome, ControlRequest};
use crate::metadata::catalog::{Catalog, TopicMetadata};
use crate::metadata::manifest;
use crate::metadata::topic_config::{check_supported, TopicConfigs};
use crate::metadata::topic_name::{validate_topic_name, OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC};
use crate::protocol::errors::{KafkaError, NONE};

/// Most partitions one topic may have: every partition costs files, an index
/// and a tail cache on its shard (see DESIGN.md on many-partition stalls).
pub const MAX_PARTITIONS_PER_TOPIC: i32 = 10_000;

/// Config source for a topic override in CreateTopics v5+ (TOPIC_CONFIG).
const CONFIG_SOURCE_TOPIC: i8 = 1;
/// Config source for a broker default (DEFAULT_CONFIG).
const CONFIG_SOURCE_DEFAULT: i8 = 5;

/// A refused topic change (CreateTopics, AlterConfigs, CreatePartitions,
/// ...): the Kafka error and the message Kafka sends with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminError {
    pub error: KafkaError,
    pub message: String,
}

impl AdminError {
    pub fn new(error: KafkaError, message: impl Into<String>) -> AdminError {
        AdminError {
            error,
            message: message.into(),
        }
    }

    /// A result's `error_code` and `error_message` response fields (NONE
    /// and no message for success).
    pub fn response_fields(refusal: Option<AdminError>) -> (i16, Option<StrBytes>) {
        match refusal {
            None => (NONE, None),
            Some(refusal) => (
                refusal.error.code(),
                Some(StrBytes::from_string(refusal.message)),
            ),
        }
    }
}

/// Any shard -> controller: CreateTopics.
pub struct CreateTopicsCall {
    pub request: CreateTopicsRequest,
    pub version: i16,
}

impl ShardCall<Shard> for CreateTopicsCall {
    type Reply = CreateTopicsResponse;
    fn start(self, shard: &Rc<Shard>) -> LocalBoxFuture<'static, Self::Reply> {
        let shard = Rc::clone(shard);
        async move { create_topics_on_controller(&shard, self.request, self.version).await }
            .boxed_local()
    }
}

/// Any shard -> controller: DeleteTopics.
pub struct DeleteTopicsCall {
    pub request: DeleteTopicsRequest,
    pub version: i16,
}

impl ShardCall<Shard> for DeleteTopicsCall {
    type Reply = DeleteTopicsResponse;
    fn start(self, shard: &Rc<Shard>) -> LocalBoxFuture<'static, Self::Reply> {
        let shard = Rc::clone(shard);
        async move { delete_topics_on_controller(&shard, self.request, self.version).await }
            .boxed_local()
    }
}

/// Any shard -> controller: create a topic with broker defaults
/// (auto-creation, internal topics); the reply is a Kafka error code (0 =
/// created or already there), or `None` while a cluster's controller has not
/// answered yet (see `auto_creations`).
pub struct AutoCreateTopicCall(pub TopicSpec);

impl ShardCall<Shard> for AutoCreateTopicCall {
    type Reply = Option<i16>;
    fn start(self, shard: &Rc<Shard>) -> LocalBoxFuture<'static, Option<i16>> {
        let shard = Rc::clone(shard);
        async move { auto_create_on_controller(&shard, self.0).await }.boxed_local()
    }
}

/// Controller -> every shard: replace your metadata image.
#[derive(Clone)]
pub struct ApplyCatalogCall(pub Arc<Catalog>);

impl ShardCall<Shard> for ApplyCatalogCall {
    type Reply = ();
    fn start(self, shard: &Rc<Shard>) -> LocalBoxFuture<'static, ()> {
        shard.apply_catalog(self.0);
        async {}.boxed_local()
    }
}

/// Controller -> owner: open (creating) these partition logs.
pub struct OpenPartitionsCall {
    pub topic: Arc<TopicMetadata>,
    pub partitions: Vec<i32>,
}

impl ShardCall<Shard> for OpenPartitionsCall {
    /// The partitions that could not open, with the reason.
    type Reply = Vec<(i32, String)>;
    fn start(self, shard: &Rc<Shard>) -> LocalBoxFuture<'static, Vec<(i32, String)>> {
        let shard = Rc::clone(shard);
        async move { shard.open_partitions(&self.topic, &self.partitions).await }.boxed_local()
    }
}

/// Controller -> owner: close and delete these partition logs.
pub struct DeletePartitionsCall {
    pub topic: Arc<str>,
    pub partitions: Vec<i32>,
}

impl ShardCall<Shard> for DeletePartitionsCall {
    type Reply = ();
    fn start(self, shard: &Rc<Shard>) -> LocalBoxFuture<'static, ()> {
        let shard = Rc::clone(shard);
        async move { shard.delete_partitions(&self.topic, &self.partitions).await }.boxed_local()
    }
}

/// CreateTopics from any shard: forwarded to the controller when needed.
pub async fn create_topics(
    shard: &Rc<Shard>,
    request: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let names: Vec<TopicName> = request.topics.iter().map(|t| t.name.clone()).collect();
    let call = CreateTopicsCall { request, version };
    match routing::call(shard, CONTROLLER_SHARD, call).await {
        Ok(response) => response,
        Err(_) => {
            let topics = names
                .into_iter()
                .map(|name| {
                    CreatableTopicResult::default()
                        .with_name(name)
                        .with_error_code(KafkaError::NotController.code())
                })
                .collect();
            CreateTopicsResponse::default().with_topics(topics)
        }
    }
}

/// DeleteTopics from any shard.
pub async fn delete_topics(
    shard: &Rc<Shard>,
    request: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    let targets = delete_targets(&request, version);
    let call = DeleteTopicsCall { request, version };
    match routing::call(shard, CONTROLLER_SHARD, call).await {
        Ok(response) => response,
        // The controller shard is gone (shutting down): every topic gets a
        // retriable error rather than an empty answer.
        Err(_) => DeleteTopicsResponse::default().with_responses(
            targets
                .into_iter()
                .map(|(name, topic_id)| {
                    let result = DeletableTopicResult::default()
                        .with_name(name)
                        .with_error_code(KafkaError::NotController.code());
                    if version >= 6 {
                        result.with_topic_id(topic_id)
                    } else {
                        result
                    }
                })
                .collect(),
        ),
    }
}

/// A topic to create without a CreateTopics request: auto-creation and
/// internal topics.
#[derive(Debug, Clone)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    /// Overrides on top of the broker's topic defaults.
    pub configs: Vec<(String, String)>,
    /// Replicas per partition.
    pub replication_factor: i16,
    /// Whether `replication_factor` is capped at the live brokers when the
    /// topic is created (the internal topics: see `GroupSettings`).
    pub at_most_live_brokers: bool,
}

/// How a new topic's partitions are replicated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replication {
    /// This many replicas per partition, placed by the controller.
    Factor(i16),
    /// These replicas by partition index (CreateTopics' `assignments`),
    /// checked by the controller in a cluster.
    Assigned(Vec<(i32, Vec<i32>)>),
}

impl Replication {
    /// Replicas per partition, as CreateTopics v5+ reports it.
    fn factor(&self) -> i16 {
        match self {
            Replication::Factor(factor) => *factor,
            Replication::Assigned(assignments) => {
                assignments.first().map_or(-1, |(_, replicas)| {
                    i16::try_from(replicas.len()).unwrap_or(i16::MAX)
                })
            }
        }
    }
}

/// A single node has one broker: one replica per partition (Kafka's
/// message for a factor the registered brokers cannot reach).
fn check_single_node_factor(factor: i16) -> Result<(), AdminError> {
    if factor == 1 {
        return Ok(());
    }
    Err(AdminError::new(
        KafkaError::InvalidReplicationFactor,
        format!(
            "Unable to replicate the partition {factor} time(s): The target replication factor of {factor} cannot be reached because only 1 broker(s) are registered."
        ),
    ))
}

/// The replication factor of an internal topic created now: its flag
/// (`--offsets-topic-replication-factor`...), at most the live brokers.
/// Kafka waits until that many brokers are up; corelog starts with what it
/// has, so a cluster smaller than the flag still gets its groups and
/// transactions (the factor stays what it was at creation).
fn internal_replication_factor(configured: i16, live_brokers: usize) -> i16 {
    let live = i16::try_from(live_brokers.max(1)).unwrap_or(i16::MAX);
    configured.clamp(1, live)
}

/// The topic `name`, auto-creating it with broker defaults if allowed.
pub async fn ensure_topic(shard: &Rc<Shard>, name: &str) -> Result<Arc<TopicMetadata>, i16> {
    if let Some(topic) = shard.catalog().topic(name) {
        return Ok(Arc::clone(topic));
    }
    if !shard.config.auto_create_topics {
        return Err(KafkaError::UnknownTopicOrPartition.code());
    }
    let spec = TopicSpec {
        name: name.to_string(),
        partitions: shard.config.default_partitions,
        configs: Vec::new(),
        replication_factor: shard.config.default_replication_factor,
        at_most_live_brokers: false,
    };
    create_from_spec(shard, spec, KafkaError::LeaderNotAvailable.code()).await
}

/// The internal topic `name` (e.g. `__consumer_offsets`), created with
/// `partitions` and the given config overrides if it does not exist yet,
/// with its replication factor flag capped at the live brokers
/// ([`internal_replication_factor`]). Unlike [`ensure_topic`] this ignores
/// `auto.create.topics.enable`, as Kafka does for its internal topics.
pub async fn ensure_internal_topic(
    shard: &Rc<Shard>,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> Result<Arc<TopicMetadata>, i16> {
    if let Some(topic) = shard.catalog().topic(name) {
        return Ok(Arc::clone(topic));
    }
    let replication_factor = match name {
        OFFSETS_TOPIC => shard.config.groups.offsets_topic_replication_factor,
        TRANSACTION_STATE_TOPIC => shard.config.transactions.state_topic_replication_factor,
        _ => shard.config.default_replication_factor,
    };
    let spec = TopicSpec {
        name: name.to_string(),
        partitions,
        configs: configs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect(),
        replication_factor,
        at_most_live_brokers: true,
    };
    create_from_spec(shard, spec, KafkaError::CoordinatorNotAvailable.code()).await
}

/// Creates `spec` on the controller (forwarding if needed) and returns the
/// topic as this shard now sees it; `unavailable` when the controller
/// could not be reached.
async fn create_from_spec(
    shard: &Rc<Shard>,
    spec: TopicSpec,
    unavailable: i16,
) -> Result<Arc<TopicMetadata>, i16> {
    let name = spec.name.clone();
    let code = routing::call(shard, CONTROLLER_SHARD, AutoCreateTopicCall(spec))
        .await
        .ok()
        .flatten()
        .unwrap_or(unavailable);
    if code != NONE {
        return Err(code);
    }
    shard.catalog().topic(&name).cloned().ok_or(unavailable)
}

/// Controller: create `spec` unless the topic exists (see [`TopicSpec`]); in a
/// cluster, without holding the request longer than the quorum answers.
async fn auto_create_on_controller(shard: &Rc<Shard>, spec: TopicSpec) -> Option<i16> {
    let Some(cluster) = shard.cluster() else {
        return Some(auto_create(shard, spec).await);
    };
    if shard.catalog().topic(&spec.name).is_some() {
        return Some(NONE);
    }
    let name = spec.name.clone();
    let creator = Rc::clone(shard);
    cluster
        .auto_creations
        .create(&name, async move { auto_create(&creator, spec).await })
        .await
}

/// Controller: create `spec` now unless the topic exists.
async fn auto_create(shard: &Rc<Shard>, spec: TopicSpec) -> i16 {
    assert_eq!(
        shard.id, CONTROLLER_SHARD,
        "topic admin runs on the controller"
    );
    let _permit = match shard.admin_lock.acquire_permit(1).await {
        Ok(permit) => permit,
        Err(_) => return KafkaError::NotController.code(),
    };
    let name = spec.name.as_str();
    if shard.catalog().topic(name).is_some() {
        return NONE;
    }
    if validate_topic_name(name).is_err() {
        return KafkaError::InvalidTopicException.code();
    }
    let overrides = spec.configs.into_iter().collect();
    let configs = match TopicConfigs::from_overrides_with(overrides, &shard.config.topic_defaults) {
        Ok(configs) => configs,
        Err(message) => {
            tracing::error!(topic = name, %message, "bad configs for an auto-created topic");
            return KafkaError::InvalidConfig.code();
        }
    };
    let replication_factor = if spec.at_most_live_brokers {
        internal_replication_factor(spec.replication_factor, shard.catalog().brokers().len())
    } else {
        spec.replication_factor
    };
    if shard.cluster().is_none() {
        if let Err(refusal) = check_single_node_factor(replication_factor) {
            tracing::warn!(topic = name, message = %refusal.message, "cannot auto-create topic");
            return refusal.error.code();
        }
    }
    let partition_count = spec.partitions.clamp(1, MAX_PARTITIONS_PER_TOPIC);
    if let Err(refusal) = check_node_limit(shard, partition_count) {
        tracing::warn!(topic = name, message = %refusal.message, "cannot auto-create topic");
        return refusal.error.code();
    }
    let topic = TopicMetadata {
        name: Arc::from(name),
        topic_id: crate::metadata::ids::random_uuid(),
        partition_count,
        configs,
    };
    let replication = Replication::Factor(replication_factor);
    match commit_new_topic(shard, topic, &replication, false).await {
        Ok(_) => {
            tracing::info!(
                topic = name,
                partitions = spec.partitions,
                replication_factor,
                "auto-created topic"
            );
            NONE
        }
        // Another node created it and this node has not applied that yet
        // (a cluster): wait for it briefly instead of failing the client.
        Err(refusal) if refusal.error == KafkaError::TopicAlreadyExists => {
            let deadline = std::time::Instant::now() + TOPIC_ARRIVAL_WAIT;
            while shard.catalog().topic(name).is_none() {
                if std::time::Instant::now() >= deadline {
                    return KafkaError::LeaderNotAvailable.code();
                }
                glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
            }
            NONE
        }
        Err(refusal) => refusal.error.code(),
    }
}

/// How long auto-creation waits for a topic another node just created to
/// reach this node's image.
const TOPIC_ARRIVAL_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Controller: CreateTopics.
async fn create_topics_on_controller(
    shard: &Rc<Shard>,
    request: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    assert_eq!(
        shard.id, CONTROLLER_SHARD,
        "topic admin runs on the controller"
    );
    let _permit = shard.admin_lock.acquire_permit(1).await;
    let mut seen = HashSet::new();
    let duplicates: HashSet<String> = request
        .topics
        .iter()
        .filter(|t| !seen.insert(t.name.0.to_string()))
        .map(|t| t.name.0.to_string())
        .collect();
    let mut results = Vec::with_capacity(request.topics.len());
    for creatable in &request.topics {
        let name = creatable.name.0.to_string();
        let outcome = if duplicates.contains(&name) {
            Err(AdminError::new(
                KafkaError::InvalidRequest,
                format!("Create topics request from client contains multiple entries for the following topics: {name}"),
            ))
        } else {
            match plan_topic(shard, creatable) {
                Ok((topic, replication)) => {
                    let committed =
                        commit_new_topic(shard, topic.clone(), &replication, request.validate_only)
                            .await;
                    committed.map(|topic_id| {
                        let topic = TopicMetadata { topic_id, ..topic };
                        (topic, replication.factor())
                    })
                }
                Err(error) => Err(error),
            }
        };
        results.push(creatable_result(creatable, outcome, version));
    }
    CreateTopicsResponse::default().with_topics(results)
}

/// One topic's CreateTopics result: the topic as created (or as it would
/// be, for validateOnly) with its replication factor, or the refusal.
fn creatable_result(
    creatable: &CreatableTopic,
    outcome: Result<(TopicMetadata, i16), AdminError>,
    version: i16,
) -> CreatableTopicResult {
    let result = CreatableTopicResult::default().with_name(creatable.name.clone());
    match outcome {
        Ok((topic, replication_factor)) => {
            let configs = (version >= 5).then(|| {
                topic
                    .configs
                    .effective()
                    .map(|(name, value, is_default)| {
                        CreatableTopicConfigs::default()
                            .with_name(StrBytes::from_string(name.to_string()))
                            .with_value(Some(StrBytes::from_string(value.to_string())))
                            .with_config_source(if is_default {
                                CONFIG_SOURCE_DEFAULT
                            } else {
                                CONFIG_SOURCE_TOPIC
                            })
                    })
                    .collect()
            });
            // Fields a version lacks must stay at their default, or the codec refuses.
            let result = result.with_error_message(None);
            let result = if version >= 5 {
                result
                    .with_num_partitions(topic.partition_count)
                    .with_replication_factor(replication_factor)
                    .with_configs(configs)
            } else {
                result
            };
            if version >= 7 {
                result.with_topic_id(topic.topic_id)
            } else {
                result
            }
        }
        Err(refusal) => result
            .with_error_code(refusal.error.code())
            .with_error_message(Some(StrBytes::from_string(refusal.message))),
    }
}

/// POLICY_VIOLATION when `adding` partitions would pass this node's
/// `--max-partitions-per-node` (internal topics count). Only a single node
/// decides here; a cluster's controller checks every broker against its
/// image (`cluster::metadata::topic_control`).
pub(super) fn check_node_limit(shard: &Shard, adding: i32) -> Result<(), AdminError> {
    if shard.cluster().is_some() {
        return Ok(());
    }
    let holding: u64 = shard
        .catalog()
        .topics()
        .map(|topic| u64::try_from(topic.partition_count).unwrap_or(0))
        .sum();
    let adding = u64::try_from(adding).unwrap_or(0);
    let limit = u64::from(shard.config.max_partitions_per_node);
    if holding + adding > limit {
        return Err(AdminError::new(
            KafkaError::PolicyViolation,
            crate::cluster::metadata::topic_control::node_limit_message(
                &format!("Node {}", shard.config.node_id),
                holding,
                adding,
                limit,
            ),
        ));
    }
    Ok(())
}

/// Validates one CreateTopics entry into the topic it would create and how
/// it is replicated (Kafka's checks and messages, in Kafka's order). In a
/// cluster the controller judges the replication against the registered
/// brokers; a single node allows one replica on itself.
fn plan_topic(
    shard: &Shard,
    creatable: &CreatableTopic,
) -> Result<(TopicMetadata, Replication), AdminError> {
    let name = creatable.name.0.as_str();
    validate_topic_name(name)
        .map_err(|message| AdminError::new(KafkaError::InvalidTopicException, message))?;
    if shard.catalog().topic(name).is_some() {
        return Err(AdminError::new(
            KafkaError::TopicAlreadyExists,
            format!("Topic '{name}' already exists."),
        ));
    }
    let (partition_count, replication) = if creatable.assignments.is_empty() {
        partitions_from_counts(shard, creatable)?
    } else {
        partitions_from_assignments(shard, creatable)?
    };
    if partition_count > MAX_PARTITIONS_PER_TOPIC {
        return Err(AdminError::new(
            KafkaError::InvalidPartitions,
            format!("Number of partitions {partition_count} is above corelog's limit of {MAX_PARTITIONS_PER_TOPIC}."),
        ));
    }
    check_node_limit(shard, partition_count)?;
    let mut overrides = BTreeMap::new();
    for config in &creatable.configs {
        let value = config.value.as_ref().map(|v| v.to_string());
        match value {
            Some(value) => overrides.insert(config.name.to_string(), value),
            None => {
                return Err(AdminError::new(
                    KafkaError::InvalidConfig,
                    format!(
                        "Null value not supported for topic configs: {}",
                        config.name.as_str()
                    ),
                ))
            }
        };
    }
    check_supported(&overrides)
        .map_err(|message| AdminError::new(KafkaError::InvalidConfig, message))?;
    let configs = TopicConfigs::from_overrides_with(overrides, &shard.config.topic_defaults)
        .map_err(|message| AdminError::new(KafkaError::InvalidConfig, message))?;
    let topic = TopicMetadata {
        name: Arc::from(name),
        topic_id: crate::metadata::ids::random_uuid(),
        partition_count,
        configs,
    };
    Ok((topic, replication))
}

/// The partition count and replication factor of a CreateTopics entry
/// without assignments; -1 takes `--default-partitions` and
/// `--default-replication-factor`.
fn partitions_from_counts(
    shard: &Shard,
    creatable: &CreatableTopic,
) -> Result<(i32, Replication), AdminError> {
    let partitions = match creatable.num_partitions {
        -1 => shard.config.default_partitions,
        n if n <= 0 => {
            return Err(AdminError::new(
                KafkaError::InvalidPartitions,
                "Number of partitions must be larger than 0.",
            ))
        }
        n => n,
    };
    let factor = match creatable.replication_factor {
        -1 => shard.config.default_replication_factor,
        n if n <= 0 => {
            return Err(AdminError::new(
                KafkaError::InvalidReplicationFactor,
                "Replication factor must be larger than 0.",
            ))
        }
        n => n,
    };
    if shard.cluster().is_none() {
        check_single_node_factor(factor)?;
    }
    Ok((partitions, Replication::Factor(factor)))
}

/// The partition count and replicas of a CreateTopics entry with
/// assignments. A cluster's controller checks them against the registered
/// brokers (`cluster::metadata::Controller::create_topic`); a single node
/// takes only lists of exactly itself.
fn partitions_from_assignments(
    shard: &Shard,
    creatable: &CreatableTopic,
) -> Result<(i32, Replication), AdminError> {
    if creatable.num_partitions != -1 || creatable.replication_factor != -1 {
        return Err(AdminError::new(
            KafkaError::InvalidRequest,
            "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.",
        ));
    }
    let count = creatable.assignments.len() as i32;
    let assigned = Replication::Assigned(
        creatable
            .assignments
            .iter()
            .map(|assignment| {
                let replicas = assignment
                    .broker_ids
                    .iter()
                    .map(|broker| broker.0)
                    .collect();
                (assignment.partition_index, replicas)
            })
            .collect(),
    );
    if shard.cluster().is_some() {
        return Ok((count, assigned));
    }
    let mut seen = HashSet::new();
    for assignment in &creatable.assignments {
        let in_range = (0..count).contains(&assignment.partition_index);
        if !in_range || !seen.insert(assignment.partition_index) {
            return Err(AdminError::new(
                KafkaError::InvalidReplicaAssignment,
                "Partitions should be a consecutive 0-based integer sequence",
            ));
        }
        if assignment
            .broker_ids
            .iter()
            .map(|b| b.0)
            .ne([shard.config.node_id])
        {
            return Err(AdminError::new(
                KafkaError::InvalidReplicaAssignment,
                format!(
                    "Replica assignment must name exactly broker {}",
                    shard.config.node_id
                ),
            ));
        }
    }
    Ok((count, assigned))
}

/// Makes a validated topic real and answers its id: in a cluster the
/// active controller decides (and, for `validate_only`, writes nothing);
/// on a single node its manifest, its partition logs on their owners and a
/// new metadata image on every shard.
async fn commit_new_topic(
    shard: &Rc<Shard>,
    topic: TopicMetadata,
    replication: &Replication,
    validate_only: bool,
) -> Result<Uuid, AdminError> {
    if let Some(cluster) = shard.cluster() {
        let (num_partitions, replication_factor, assignments) = match replication {
            Replication::Factor(factor) => (topic.partition_count, *factor, Vec::new()),
            Replication::Assigned(assignments) => (-1, -1, assignments.clone()),
        };
        let request = ControlRequest::CreateTopic {
            name: topic.name.to_string(),
            num_partitions,
            replication_factor,
            configs: topic
                .configs
                .overrides()
                .iter()
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect(),
            assignments,
            validate_only,
        };
        return match cluster.commit(request).await? {
            ControlOutcome::TopicCreated { topic_id } => Ok(Uuid::from_bytes(topic_id)),
            other => Err(AdminError::new(
                KafkaError::UnknownServerError,
                format!("the controller answered CreateTopic with {other:?}"),
            )),
        };
    }
    if validate_only {
        return Ok(topic.topic_id);
    }
    if let Err(error) = manifest::store(&shard.config.data_dir, &topic).await {
        tracing::error!(topic = %topic.name, %error, "cannot write topic manifest");
        return Err(AdminError::new(
            KafkaError::KafkaStorageError,
            format!("cannot persist topic: {error}"),
        ));
    }
    let topic = Arc::new(topic);
    let failed = open_on_owners(shard, &topic, 0..topic.partition_count).await;
    if let Some((partition, reason)) = failed.first() {
        // Never a success for partitions that cannot serve: undo it all.
        delete_on_owners(shard, &topic.name, 0..topic.partition_count).await;
        if let Err(error) = manifest::remove(&shard.config.data_dir, &topic.topic_id).await {
            tracing::error!(topic = %topic.name, %error, "cannot remove the manifest of a topic that failed to open");
        }
        return Err(AdminError::new(
            KafkaError::KafkaStorageError,
            format!(
                "{} of {} partitions could not open (partition {partition}: {reason}); \
                 the topic was not created",
                failed.len(),
                topic.partition_count
            ),
        ));
    }
    let next = shard
        .catalog()
        .with_topic_led_by((*topic).clone(), shard.config.node_id);
    publish_catalog(shard, next).await;
    Ok(topic.topic_id)
}

/// Opens (creating) `partitions` of `topic`, each on its owning shard;
/// returns those that could not open, with the reason.
pub(super) async fn open_on_owners(
    shard: &Rc<Shard>,
    topic: &Arc<TopicMetadata>,
    partitions: impl Iterator<Item = i32>,
) -> Vec<(i32, String)> {
    let mut by_owner: BTreeMap<usize, Vec<i32>> = BTreeMap::new();
    for partition in partitions {
        by_owner
            .entry(shard.owner_of(&topic.name, partition))
            .or_default()
            .push(partition);
    }
    let replies = join_all(by_owner.into_iter().map(|(owner, partitions)| {
        let call = OpenPartitionsCall {
            topic: Arc::clone(topic),
            partitions: partitions.clone(),
        };
        async move {
            routing::call(shard, owner, call).await.unwrap_or_else(|_| {
                tracing::error!(owner, "shard did not open its partitions");
                partitions
                    .into_iter()
                    .map(|partition| (partition, format!("shard {owner} did not answer")))
                    .collect()
            })
        }
    }))
    .await;
    replies.into_iter().flatten().collect()
}

/// Closes and deletes `partitions` of `topic`, each on its owning shard.
pub(super) async fn delete_on_owners(
    shard: &Rc<Shard>,
    topic: &Arc<str>,
    partitions: impl Iterator<Item = i32>,
) {
    let mut by_owner: BTreeMap<usize, Vec<i32>> = BTreeMap::new();
    for partition in partitions {
        by_owner
            .entry(shard.owner_of(topic, partition))
            .or_default()
            .push(partition);
    }
    join_all(by_owner.into_iter().map(|(owner, partitions)| {
        let call = DeletePartitionsCall {
            topic: Arc::clone(topic),
            partitions,
        };
        async move {
            if routing::call(shard, owner, call).await.is_err() {
                tracing::error!(owner, "shard did not delete its partitions");
            }
        }
    }))
    .await;
}

/// Installs `catalog` here and on every other shard, waiting for all.
pub(super) async fn publish_catalog(shard: &Rc<Shard>, catalog: Catalog) {
    let call = ApplyCatalogCall(Arc::new(catalog));
    let replies = routing::call_every_shard(shard, call).await;
    for (other, reply) in replies.into_iter().enumerate() {
        if reply.is_err() {
            tracing::warn!(other, "shard did not take the new metadata image");
        }
    }
}

/// The topics a DeleteTopics names: by name for v0-5, by name or id for v6+.
fn delete_targets(request: &DeleteTopicsRequest, version: i16) -> Vec<(Option<TopicName>, Uuid)> {
    if version >= 6 {
        request
            .topics
            .iter()
            .map(|t| (t.name.clone(), t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .iter()
            .map(|name| (Some(name.clone()), Uuid::nil()))
            .collect()
    }
}

/// Controller: DeleteTopics (by name for v0-5, by name or id for v6+).
async fn delete_topics_on_controller(
    shard: &Rc<Shard>,
    request: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    assert_eq!(
        shard.id, CONTROLLER_SHARD,
        "topic admin runs on the controller"
    );
    let _permit = shard.admin_lock.acquire_permit(1).await;
    let targets = delete_targets(&request, version);
    let mut responses = Vec::with_capacity(targets.len());
    for (name, topic_id) in targets {
        let catalog = shard.catalog();
        let found = match &name {
            Some(name) => catalog.topic(name.0.as_str()).cloned(),
            None => catalog.topic_by_id(&topic_id).cloned(),
        };
        let result = DeletableTopicResult::default()
            .with_name(name.clone())
            .with_topic_id(topic_id);
        let with_message = |result: DeletableTopicResult, message: &'static str| {
            if version >= 5 {
                result.with_error_message(Some(StrBytes::from_static_str(message)))
            } else {
                result
            }
        };
        let Some(topic) = found else {
            let (code, message) = if name.is_some() {
                (
                    KafkaError::UnknownTopicOrPartition.code(),
                    "This server does not host this topic-partition.",
                )
            } else {
                (
                    KafkaError::UnknownTopicId.code(),
                    "This server does not host this topic ID.",
                )
            };
            responses.push(with_message(result.with_error_code(code), message));
            continue;
        };
        if let Err(refusal) = delete_topic(shard, &topic).await {
            let result = result.with_error_code(refusal.error.code());
            responses.push(if version >= 5 {
                result.with_error_message(Some(StrBytes::from_string(refusal.message)))
            } else {
                result
            });
            continue;
        }
        let result = result.with_name(Some(TopicName(StrBytes::from_string(
            topic.name.to_string(),
        ))));
        responses.push(if version >= 6 {
            result.with_topic_id(topic.topic_id)
        } else {
            result
        });
    }
    DeleteTopicsResponse::default().with_responses(responses)
}

async fn delete_topic(shard: &Rc<Shard>, topic: &Arc<TopicMetadata>) -> Result<(), AdminError> {
    if let Some(cluster) = shard.cluster() {
        let request = ControlRequest::DeleteTopic {
            name: topic.name.to_string(),
        };
        cluster.commit(request).await?;
        tracing::info!(topic = %topic.name, "deleted topic");
        return Ok(());
    }
    if let Err(error) = manifest::remove(&shard.config.data_dir, &topic.topic_id).await {
        tracing::error!(topic = %topic.name, %error, "cannot remove topic manifest");
    }
    publish_catalog(shard, shard.catalog().without_topic(&topic.name)).await;
    delete_on_owners(shard, &topic.name, 0..topic.partition_count).await;
    tracing::info!(topic = %topic.name, "deleted topic");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_topics_get_their_factor_capped_at_the_live_brokers() {
        assert_eq!(internal_replication_factor(3, 5), 3);
        assert_eq!(internal_replication_factor(3, 2), 2);
        assert_eq!(internal_replication_factor(3, 1), 1);
        // A broker always counts itself, even before its catalog lists it.
        assert_eq!(internal_replication_factor(3, 0), 1);
    }

    #[test]
    fn the_reported_replication_factor_is_the_asked_or_assigned_one() {
        assert_eq!(Replication::Factor(3).factor(), 3);
        let assigned = Replication::Assigned(vec![(0, vec![1, 2]), (1, vec![2, 3])]);
        assert_eq!(assigned.factor(), 2);
    }

    #[test]
    fn a_single_node_takes_one_replica_only() {
        assert!(check_single_node_factor(1).is_ok());
        let refusal = check_single_node_factor(2).expect_err("one broker");
        assert_eq!(refusal.error, KafkaError::InvalidReplicationFactor);
        assert_eq!(
            refusal.message,
            "Unable to replicate the partition 2 time(s): The target replication factor of 2 cannot be reached because only 1 broker(s) are registered."
        );
    }
}
