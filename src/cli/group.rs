//! `corelog group ...`: list, describe, reset the offsets of and delete
//! consumer groups over the Kafka group APIs (ListGroups, DescribeGroups,
//! OffsetFetch, OffsetCommit, DeleteGroups) plus ListOffsets for lag, like
//! `kafka-consumer-groups`. Group requests go to the group's coordinator
//! (FindCoordinator); runs on the CLI's main thread with the blocking client.

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::{
    ApiKey, DeleteGroupsRequest, DescribeGroupsRequest, GroupId, ListGroupsRequest,
    OffsetFetchRequest,
};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use crate::cli::common::{for_each_reporting, format_table, print_json, ConnectArgs};
use crate::cli::group_reset::{self, ResetArgs};
use crate::cli::kafka::offsets::{list_offsets, TopicPartition, LATEST_TIMESTAMP};
use crate::cli::kafka::{KafkaClient, Node, ToolError};

pub const CLIENT_ID: &str = "corelog-group";
const NON_EMPTY_GROUP: i16 = 68;
const GROUP_ID_NOT_FOUND: i16 = 69;
/// OffsetFetch v2-v7 take one group and null topics for "all"; v8 batches groups.
const OFFSET_FETCH_VERSION_MAX: i16 = 7;

#[derive(Debug, Args)]
pub struct GroupArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(subcommand)]
    pub command: GroupCommand,
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// List consumer groups with their state and protocol type.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show a group's members and, per partition, committed offset, log end offset and lag.
    Describe {
        group: String,
        #[arg(long)]
        json: bool,
    },
    /// Move a group's committed offsets (prints the plan; --execute commits it).
    ResetOffsets(ResetArgs),
    /// Delete groups with no members, and their committed offsets.
    Delete {
        #[arg(required = true)]
        groups: Vec<String>,
    },
}

pub fn run(args: GroupArgs) -> Result<(), ToolError> {
    let mut client = args.connect.connect(CLIENT_ID)?;
    match args.command {
        GroupCommand::List { json } => list(&mut client, json),
        GroupCommand::Describe { group, json } => describe(&mut client, &group, json),
        GroupCommand::ResetOffsets(reset) => group_reset::run(&mut client, &reset),
        GroupCommand::Delete { groups } => delete(&mut client, &groups),
    }
}

fn group_id(group: &str) -> GroupId {
    GroupId(StrBytes::from_string(group.to_string()))
}

/// ListGroups on every broker (each lists only the groups it coordinates).
fn list(client: &mut KafkaClient, json: bool) -> Result<(), ToolError> {
    let metadata = client.metadata(Some(&[]))?;
    let mut brokers: Vec<i32> = metadata
        .brokers
        .iter()
        .map(|broker| broker.node_id.0)
        .collect();
    brokers.sort_unstable();
    brokers.dedup();
    let mut groups = BTreeMap::new();
    for broker in brokers {
        let node = Node::Broker(broker);
        let version = client.version(&node, ApiKey::ListGroups, 4)?;
        let response = client.send(&node, version, &ListGroupsRequest::default())?;
        if response.error_code != 0 {
            return Err(ToolError::kafka(
                format!("listing groups on broker {broker}"),
                response.error_code,
            ));
        }
        for group in response.groups {
            // The state is only in v4+ answers.
            let state = if version >= 4 {
                group.group_state.to_string()
            } else {
                String::new()
            };
            groups.insert(
                group.group_id.0.to_string(),
                (state, group.protocol_type.to_string()),
            );
        }
    }
    if json {
        let rows: Vec<_> = groups
            .iter()
            .map(|(group, (state, protocol_type))| {
                json!({ "group": group, "state": state, "protocol_type": protocol_type })
            })
            .collect();
        print_json(&json!(rows));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = groups
        .into_iter()
        .map(|(group, (state, protocol_type))| vec![group, state, protocol_type])
        .collect();
    print!(
        "{}",
        format_table(&["GROUP", "STATE", "PROTOCOL TYPE"], &rows)
    );
    Ok(())
}

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

fn describe(client: &mut KafkaClient, group: &str, json: bool) -> Result<(), ToolError> {
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

fn delete(client: &mut KafkaClient, groups: &[String]) -> Result<(), ToolError> {
    for_each_reporting(groups, "deletions", |group| {
        let node = Node::Coordinator(group.clone());
        let version = client.version(&node, ApiKey::DeleteGroups, 2)?;
        let request = DeleteGroupsRequest::default().with_groups_names(vec![group_id(group)]);
        let response = client.send(&node, version, &request)?;
        let code = response
            .results
            .iter()
            .find(|result| &*result.group_id.0 == group.as_str())
            .map(|result| result.error_code)
            .ok_or_else(|| {
                ToolError::Protocol(format!("DeleteGroups answered nothing for {group}"))
            })?;
        let context = match code {
            0 => {
                println!("Deleted group {group}.");
                return Ok(());
            }
            GROUP_ID_NOT_FOUND => format!("deleting group {group}: it does not exist"),
            NON_EMPTY_GROUP => {
                format!("deleting group {group}: it still has members (stop its consumers first)")
            }
            _ => format!("deleting group {group}"),
        };
        Err(ToolError::kafka(context, code))
    })
}

/// Decodes a consumer protocol assignment (`ConsumerProtocolAssignment`, any
/// version: i16 version, [topic string, [i32 partition]], user data bytes;
/// v1+ only add fields after these) into (topic, partitions).
pub fn decode_assignment(bytes: &[u8]) -> Result<Vec<(String, Vec<i32>)>, String> {
    let mut reader = Reader { bytes, position: 0 };
    let version = reader.i16()?;
    if version < 0 {
        return Err(format!("assignment version {version}"));
    }
    let topic_count = reader.array_length()?;
    let mut topics = Vec::new();
    for _ in 0..topic_count {
        let topic_length =
            usize::try_from(reader.i16()?).map_err(|_| "null topic name".to_string())?;
        let topic = String::from_utf8(reader.take(topic_length)?.to_vec())
            .map_err(|_| "topic name is not UTF-8".to_string())?;
        let partition_count = reader.array_length()?;
        let mut partitions = Vec::new();
        for _ in 0..partition_count {
            partitions.push(reader.i32()?);
        }
        topics.push((topic, partitions));
    }
    Ok(topics)
}

/// Bounds-checked big-endian reads over an untrusted byte slice.
struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], String> {
        let end = self
            .position
            .checked_add(count)
            .filter(|end| *end <= self.bytes.len());
        let end = end.ok_or_else(|| "assignment is truncated".to_string())?;
        let slice = &self.bytes[self.position..end];
        self.position = end;
        Ok(slice)
    }

    fn i16(&mut self) -> Result<i16, String> {
        let bytes = self.take(2)?;
        Ok(i16::from_be_bytes([bytes[0], bytes[1]]))
    }

    fn i32(&mut self) -> Result<i32, String> {
        let bytes = self.take(4)?;
        Ok(i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// An array length; null (-1) is an empty array.
    fn array_length(&mut self) -> Result<usize, String> {
        let length = self.i32()?;
        Ok(usize::try_from(length).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(version: i16, topics: &[(&str, &[i32])], user_data: Option<&[u8]>) -> Vec<u8> {
        let mut bytes = version.to_be_bytes().to_vec();
        bytes.extend((topics.len() as i32).to_be_bytes());
        for (topic, partitions) in topics {
            bytes.extend((topic.len() as i16).to_be_bytes());
            bytes.extend(topic.as_bytes());
            bytes.extend((partitions.len() as i32).to_be_bytes());
            for partition in *partitions {
                bytes.extend(partition.to_be_bytes());
            }
        }
        match user_data {
            Some(data) => {
                bytes.extend((data.len() as i32).to_be_bytes());
                bytes.extend(data);
            }
            None => bytes.extend((-1i32).to_be_bytes()),
        }
        bytes
    }

    #[test]
    fn consumer_assignments_decode_with_any_version_and_user_data() {
        let bytes = assignment(0, &[("orders", &[0, 2]), ("b", &[])], None);
        assert_eq!(
            decode_assignment(&bytes).unwrap(),
            vec![
                ("orders".to_string(), vec![0, 2]),
                ("b".to_string(), vec![])
            ]
        );
        let bytes = assignment(3, &[("t", &[5])], Some(b"sticky"));
        assert_eq!(
            decode_assignment(&bytes).unwrap(),
            vec![("t".to_string(), vec![5])]
        );
    }

    #[test]
    fn truncated_or_hostile_assignments_are_errors() {
        let bytes = assignment(0, &[("orders", &[0, 2])], None);
        for length in 0..bytes.len() - 4 {
            assert!(
                decode_assignment(&bytes[..length]).is_err(),
                "length {length}"
            );
        }
        let mut huge = 0i16.to_be_bytes().to_vec();
        huge.extend(i32::MAX.to_be_bytes());
        assert!(decode_assignment(&huge).is_err());
    }
}
