//! `corelog group describe`: a group's state, members and, per partition,
//! the committed offset, log end offset, lag and owning member, like
//! `kafka-consumer-groups --describe`. Also the DescribeGroups and
//! OffsetFetch lookups that `reset-offsets` shares; both go to the group's
//! coordinator.

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::{ApiKey, DescribeGroupsRequest, OffsetFetchRequest};
use serde_json::json;

use super::{decode_assignment, group_id, GROUP_ID_NOT_FOUND};
use crate::cli::common::{format_table, print_json};
use crate::cli::kafka::offsets::{list_offsets, TopicPartition, LATEST_TIMESTAMP};
use crate::cli::kafka::{KafkaClient, Node, ToolError};

/// OffsetFetch v2-v7 take one group and null topics for "all"; v8 batches groups.
const OFFSET_FETCH_VERSION_MAX: i16 = 7;

/// The group as DescribeGroups reports it (state `Dead` for unknown groups).
pub fn describe_group(client: &mut KafkaClient, group: &str) -> Result<DescribedGroup, ToolError> {
    let node = Node::Coordinator(group.to_string());
    let version = client.version(&node, ApiKey::DescribeGroups, 5)?;
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

/// Who owns a partition: member id, client id, host.
#[derive(Debug, Clone)]
struct Owner {
    member_id: String,
    client_id: String,
    host: String,
}

pub(super) fn describe(client: &mut KafkaClient, group: &str, json: bool) -> Result<(), ToolError> {
    let described = describe_group(client, group)?;
    let committed = committed_offsets(client, group)?;
    if described.group_state.as_str() == "Dead" && committed.is_empty() {
        return Err(ToolError::kafka(
            format!("group {group} does not exist"),
            GROUP_ID_NOT_FOUND,
        ));
    }
    let mut owners: BTreeMap<TopicPartition, Owner> = BTreeMap::new();
    let is_consumer = described.protocol_type.as_str() == "consumer";
    for member in &described.members {
        if !is_consumer || member.member_assignment.is_empty() {
            continue;
        }
        let owner = Owner {
            member_id: member.member_id.to_string(),
            client_id: member.client_id.to_string(),
            host: member.client_host.to_string(),
        };
        // A member whose assignment does not decode owns nothing we can show.
        if let Ok(assignment) = decode_assignment(&member.member_assignment) {
            for (topic, partitions) in assignment {
                for partition in partitions {
                    owners.insert((topic.clone(), partition), owner.clone());
                }
            }
        }
    }
    let mut partitions: Vec<TopicPartition> =
        committed.keys().chain(owners.keys()).cloned().collect();
    partitions.sort();
    partitions.dedup();
    let log_end = list_offsets(client, &partitions, LATEST_TIMESTAMP)?;
    let lag = |partition: &TopicPartition| match (committed.get(partition), log_end.get(partition))
    {
        (Some(committed), Some(end)) => Some((end - committed).max(0)),
        _ => None,
    };
    if json {
        let rows: Vec<_> = partitions
            .iter()
            .map(|partition| {
                let owner = owners.get(partition);
                json!({
                    "topic": partition.0,
                    "partition": partition.1,
                    "committed_offset": committed.get(partition),
                    "log_end_offset": log_end.get(partition),
                    "lag": lag(partition),
                    "member_id": owner.map(|owner| &owner.member_id),
                    "client_id": owner.map(|owner| &owner.client_id),
                    "host": owner.map(|owner| &owner.host),
                })
            })
            .collect();
        let members: Vec<_> = described
            .members
            .iter()
            .map(|member| {
                json!({
                    "member_id": member.member_id.to_string(),
                    "group_instance_id": member.group_instance_id.as_ref().map(|id| id.to_string()),
                    "client_id": member.client_id.to_string(),
                    "host": member.client_host.to_string(),
                })
            })
            .collect();
        print_json(&json!({
            "group": group,
            "state": described.group_state.to_string(),
            "protocol_type": described.protocol_type.to_string(),
            "protocol": described.protocol_data.to_string(),
            "members": members,
            "partitions": rows,
        }));
        return Ok(());
    }
    println!(
        "Group: {group}  state: {}  protocol: {}  members: {}",
        described.group_state,
        match (
            described.protocol_type.as_str(),
            described.protocol_data.as_str()
        ) {
            ("", _) => "-".to_string(),
            (protocol_type, "") => protocol_type.to_string(),
            (protocol_type, protocol) => format!("{protocol_type}/{protocol}"),
        },
        described.members.len()
    );
    let dash = || "-".to_string();
    let rows: Vec<Vec<String>> = partitions
        .iter()
        .map(|partition| {
            let owner = owners.get(partition);
            vec![
                partition.0.clone(),
                partition.1.to_string(),
                committed.get(partition).map_or_else(dash, i64::to_string),
                log_end.get(partition).map_or_else(dash, i64::to_string),
                lag(partition).map_or_else(dash, |lag| lag.to_string()),
                owner.map_or_else(dash, |owner| owner.member_id.clone()),
                owner.map_or_else(dash, |owner| owner.client_id.clone()),
                owner.map_or_else(dash, |owner| owner.host.clone()),
            ]
        })
        .collect();
    print!(
        "{}",
        format_table(
            &[
                "TOPIC",
                "PARTITION",
                "CURRENT OFFSET",
                "LOG END OFFSET",
                "LAG",
                "MEMBER",
                "CLIENT ID",
                "HOST"
            ],
            &rows
        )
    );
    Ok(())
}
