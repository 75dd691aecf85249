//! `corelog group ...`: list, describe, reset the offsets of and delete
//! consumer groups over the Kafka group APIs (ListGroups,
//! ConsumerGroupDescribe, DescribeGroups, OffsetFetch, OffsetCommit,
//! DeleteGroups) plus ListOffsets for lag, like `kafka-consumer-groups`.
//! Both kinds of group are shown: classic ones and KIP-848 consumer groups
//! (`group.protocol=consumer`). Group requests go to the group's coordinator
//! (FindCoordinator); runs on the CLI's main thread with the blocking client.
//!
//! This file owns the flags, the dispatch, `list` and `delete`.
//!
//! Inside:
//! - `lookup`: which kind a group is and its description
//!   (ConsumerGroupDescribe, else DescribeGroups), its committed offsets
//!   (OffsetFetch); shared by `describe` and `reset`
//! - `describe`: `describe`, the partition table (ListOffsets for lag) and a
//!   classic group's view
//! - `consumer`: a consumer group's view (epochs, assignor, per-member
//!   current and target assignments)
//! - `assignment`: decoding a classic member's consumer protocol assignment
//! - `reset`: `reset-offsets`, its plan and its standalone OffsetCommit
//! - `datetime`: `--to-datetime`, RFC 3339 to epoch milliseconds

mod assignment;
mod consumer;
mod datetime;
mod describe;
mod lookup;
pub mod reset;

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use kafka_protocol::messages::{ApiKey, DeleteGroupsRequest, GroupId, ListGroupsRequest};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use crate::cli::common::{for_each_reporting, format_table, print_json, ConnectArgs};
use crate::cli::kafka::{KafkaClient, Node, ToolError};
pub use assignment::decode_assignment;
use describe::describe;
pub use lookup::{committed_offsets, describe_group, GroupDescription};
use reset::ResetArgs;

pub const CLIENT_ID: &str = "corelog-group";
const NON_EMPTY_GROUP: i16 = 68;
const GROUP_ID_NOT_FOUND: i16 = 69;
/// ListGroups v5 (KIP-848) adds each group's type, `classic` or `consumer`.
const LIST_GROUPS_VERSION_MAX: i16 = 5;

#[derive(Debug, Args)]
pub struct GroupArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(subcommand)]
    pub command: GroupCommand,
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// List groups with their type (classic or consumer), state and protocol type.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show a group's type, state, members and, per partition, committed offset, log end
    /// offset and lag; for a consumer group also its epochs and each member's assignments.
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
        GroupCommand::ResetOffsets(reset_args) => reset::run(&mut client, &reset_args),
        GroupCommand::Delete { groups } => delete(&mut client, &groups),
    }
}

fn group_id(group: &str) -> GroupId {
    GroupId(StrBytes::from_string(group.to_string()))
}

/// One row of `group list`.
struct ListedGroup {
    /// `classic` or `consumer`; empty from brokers before ListGroups v5.
    group_type: String,
    /// Empty from brokers before ListGroups v4.
    state: String,
    protocol_type: String,
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
        let version = client.version(&node, ApiKey::ListGroups, LIST_GROUPS_VERSION_MAX)?;
        let response = client.send(&node, version, &ListGroupsRequest::default())?;
        if response.error_code != 0 {
            return Err(ToolError::kafka(
                format!("listing groups on broker {broker}"),
                response.error_code,
            ));
        }
        for group in response.groups {
            let listed = ListedGroup {
                group_type: if version >= 5 {
                    group.group_type.to_string()
                } else {
                    String::new()
                },
                state: if version >= 4 {
                    group.group_state.to_string()
                } else {
                    String::new()
                },
                protocol_type: group.protocol_type.to_string(),
            };
            groups.insert(group.group_id.0.to_string(), listed);
        }
    }
    if json {
        let rows: Vec<_> = groups
            .iter()
            .map(|(group, listed)| {
                json!({
                    "group": group,
                    "type": (!listed.group_type.is_empty()).then_some(&listed.group_type),
                    "state": listed.state,
                    "protocol_type": listed.protocol_type,
                })
            })
            .collect();
        print_json(&json!(rows));
        return Ok(());
    }
    let or_dash = |text: String| {
        if text.is_empty() {
            "-".to_string()
        } else {
            text
        }
    };
    let rows: Vec<Vec<String>> = groups
        .into_iter()
        .map(|(group, listed)| {
            vec![
                group,
                or_dash(listed.group_type),
                or_dash(listed.state),
                or_dash(listed.protocol_type),
            ]
        })
        .collect();
    print!(
        "{}",
        format_table(&["GROUP", "TYPE", "STATE", "PROTOCOL TYPE"], &rows)
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
