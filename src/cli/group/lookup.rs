//! The lookups `describe` and `reset-offsets` share, all at the group's
//! coordinator: what a group is and who is in it, and its committed offsets.
//!
//! A group is a KIP-848 consumer group or a classic one, and each API
//! describes only its own kind: ConsumerGroupDescribe answers
//! GROUP_ID_NOT_FOUND ("Group X is not a consumer group.") for a classic
//! group, DescribeGroups v6 the same ("... is not a classic group.") for a
//! consumer group and v0-v5 a Dead group. So, as Kafka's Admin client does,
//! we ask ConsumerGroupDescribe first and fall back to DescribeGroups, which
//! also reports unknown groups (Dead) the way `describe` always has.

use std::collections::BTreeMap;

use kafka_protocol::messages::consumer_group_describe_response::DescribedGroup as ConsumerDescribedGroup;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::{
    ApiKey, ConsumerGroupDescribeRequest, DescribeGroupsRequest, OffsetFetchRequest,
};

use super::{group_id, GROUP_ID_NOT_FOUND};
use crate::cli::kafka::offsets::TopicPartition;
use crate::cli::kafka::{KafkaClient, Node, ToolError};

/// OffsetFetch v2-v7 take one group and null topics for "all"; v8 batches groups.
const OFFSET_FETCH_VERSION_MAX: i16 = 7;
/// DescribeGroups v6 turns a consumer group into an error; v5 has everything we show.
const DESCRIBE_GROUPS_VERSION_MAX: i16 = 5;
/// ConsumerGroupDescribe v1 only adds `member_type`.
const CONSUMER_GROUP_DESCRIBE_VERSION_MAX: i16 = 1;

/// A group as its own describe API shows it.
#[derive(Debug)]
pub enum GroupDescription {
    /// A KIP-848 consumer group (`group.protocol=consumer`), from ConsumerGroupDescribe.
    Consumer(ConsumerDescribedGroup),
    /// A classic group, or no group at all (state Dead), from DescribeGroups.
    Classic(DescribedGroup),
}

impl GroupDescription {
    /// ListGroups' `group_type` word for the group.
    pub fn group_type(&self) -> &'static str {
        match self {
            GroupDescription::Consumer(_) => "consumer",
            GroupDescription::Classic(_) => "classic",
        }
    }

    pub fn state(&self) -> &str {
        match self {
            GroupDescription::Consumer(described) => described.group_state.as_str(),
            GroupDescription::Classic(described) => described.group_state.as_str(),
        }
    }

    pub fn member_count(&self) -> usize {
        match self {
            GroupDescription::Consumer(described) => described.members.len(),
            GroupDescription::Classic(described) => described.members.len(),
        }
    }
}

/// The group, whichever kind it is (a classic Dead one if it does not exist).
pub fn describe_group(
    client: &mut KafkaClient,
    group: &str,
) -> Result<GroupDescription, ToolError> {
    if let Some(described) = describe_consumer_group(client, group)? {
        return Ok(GroupDescription::Consumer(described));
    }
    describe_classic_group(client, group).map(GroupDescription::Classic)
}

/// ConsumerGroupDescribe; None when the group is not a consumer group or
/// the broker predates KIP-848 (no ConsumerGroupDescribe).
fn describe_consumer_group(
    client: &mut KafkaClient,
    group: &str,
) -> Result<Option<ConsumerDescribedGroup>, ToolError> {
    let node = Node::Coordinator(group.to_string());
    let version = match client.version(
        &node,
        ApiKey::ConsumerGroupDescribe,
        CONSUMER_GROUP_DESCRIBE_VERSION_MAX,
    ) {
        Ok(version) => version,
        // The API is not offered. A broken connection is a Protocol error too;
        // DescribeGroups then meets and reports it.
        Err(ToolError::Protocol(_)) => return Ok(None),
        Err(error) => return Err(error),
    };
    let request = ConsumerGroupDescribeRequest::default().with_group_ids(vec![group_id(group)]);
    let response = client.send(&node, version, &request)?;
    let described = response
        .groups
        .into_iter()
        .find(|described| &*described.group_id.0 == group)
        .ok_or_else(|| {
            ToolError::Protocol(format!(
                "ConsumerGroupDescribe answered nothing for {group}"
            ))
        })?;
    match described.error_code {
        0 => Ok(Some(described)),
        GROUP_ID_NOT_FOUND => Ok(None),
        code => Err(ToolError::kafka(format!("describing group {group}"), code)),
    }
}

/// DescribeGroups (state `Dead` for unknown groups).
fn describe_classic_group(
    client: &mut KafkaClient,
    group: &str,
) -> Result<DescribedGroup, ToolError> {
    let node = Node::Coordinator(group.to_string());
    let version = client.version(&node, ApiKey::DescribeGroups, DESCRIBE_GROUPS_VERSION_MAX)?;
    let request = DescribeGroupsRequest::default().with_groups(vec![group_id(group)]);
    let response = client.send(&node, version, &request)?;
    let described = response
        .groups
        .into_iter()
        .find(|described| &*described.group_id.0 == group)
        .ok_or_else(|| {
            ToolError::Protocol(format!("DescribeGroups answered nothing for {group}"))
        })?;
    if described.error_code != 0 {
        return Err(ToolError::kafka(
            format!("describing group {group}"),
            described.error_code,
        ));
    }
    Ok(described)
}

/// The group's committed offsets (partitions without one are left out).
pub fn committed_offsets(
    client: &mut KafkaClient,
    group: &str,
) -> Result<BTreeMap<TopicPartition, i64>, ToolError> {
    let node = Node::Coordinator(group.to_string());
    let version = client.version(&node, ApiKey::OffsetFetch, OFFSET_FETCH_VERSION_MAX)?;
    if version < 2 {
        return Err(ToolError::Protocol(
            "the broker cannot fetch all of a group's offsets (OffsetFetch v2+)".into(),
        ));
    }
    let request = OffsetFetchRequest::default()
        .with_group_id(group_id(group))
        .with_topics(None);
    let response = client.send(&node, version, &request)?;
    if response.error_code != 0 {
        return Err(ToolError::kafka(
            format!("fetching the offsets of group {group}"),
            response.error_code,
        ));
    }
    let mut offsets = BTreeMap::new();
    for topic in response.topics {
        for partition in topic.partitions {
            if partition.error_code != 0 {
                let context = format!(
                    "fetching the offset of group {group} on topic {} partition {}",
                    topic.name.0, partition.partition_index
                );
                return Err(ToolError::kafka(context, partition.error_code));
            }
            if partition.committed_offset >= 0 {
                offsets.insert(
                    (topic.name.0.to_string(), partition.partition_index),
                    partition.committed_offset,
                );
            }
        }
    }
    Ok(offsets)
}
