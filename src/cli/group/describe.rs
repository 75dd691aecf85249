//! `corelog group describe`: a group's type, state, members and, per
//! partition, the committed offset, log end offset, lag and owning member,
//! like `kafka-consumer-groups --describe`. This file owns the partition
//! table both kinds of group share and the classic group's view;
//! `consumer` adds a KIP-848 group's epochs and per-member assignments.

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use serde_json::json;

use super::lookup::{committed_offsets, describe_group, GroupDescription};
use super::{consumer, decode_assignment, GROUP_ID_NOT_FOUND};
use crate::cli::common::{format_table, print_json};
use crate::cli::kafka::offsets::{list_offsets, TopicPartition, LATEST_TIMESTAMP};
use crate::cli::kafka::{KafkaClient, ToolError};

/// Who owns a partition: member id, client id, host.
#[derive(Debug, Clone)]
pub(super) struct Owner {
    pub member_id: String,
    pub client_id: String,
    pub host: String,
}

/// Per partition the group committed or owns: committed offset, log end
/// offset, lag and owner.
pub(super) struct PartitionOffsets {
    partitions: Vec<TopicPartition>,
    committed: BTreeMap<TopicPartition, i64>,
    log_end: BTreeMap<TopicPartition, i64>,
    owners: BTreeMap<TopicPartition, Owner>,
}

impl PartitionOffsets {
    fn fetch(
        client: &mut KafkaClient,
        committed: BTreeMap<TopicPartition, i64>,
        owners: BTreeMap<TopicPartition, Owner>,
    ) -> Result<PartitionOffsets, ToolError> {
        let mut partitions: Vec<TopicPartition> =
            committed.keys().chain(owners.keys()).cloned().collect();
        partitions.sort();
        partitions.dedup();
        let log_end = list_offsets(client, &partitions, LATEST_TIMESTAMP)?;
        Ok(PartitionOffsets {
            partitions,
            committed,
            log_end,
            owners,
        })
    }

    fn lag(&self, partition: &TopicPartition) -> Option<i64> {
        match (self.committed.get(partition), self.log_end.get(partition)) {
            (Some(committed), Some(end)) => Some((end - committed).max(0)),
            _ => None,
        }
    }

    pub(super) fn json_rows(&self) -> Vec<serde_json::Value> {
        self.partitions
            .iter()
            .map(|partition| {
                let owner = self.owners.get(partition);
                json!({
                    "topic": partition.0,
                    "partition": partition.1,
                    "committed_offset": self.committed.get(partition),
                    "log_end_offset": self.log_end.get(partition),
                    "lag": self.lag(partition),
                    "member_id": owner.map(|owner| &owner.member_id),
                    "client_id": owner.map(|owner| &owner.client_id),
                    "host": owner.map(|owner| &owner.host),
                })
            })
            .collect()
    }

    pub(super) fn table(&self) -> String {
        let dash = || "-".to_string();
        let rows: Vec<Vec<String>> = self
            .partitions
            .iter()
            .map(|partition| {
                let owner = self.owners.get(partition);
                vec![
                    partition.0.clone(),
                    partition.1.to_string(),
                    self.committed
                        .get(partition)
                        .map_or_else(dash, i64::to_string),
                    self.log_end
                        .get(partition)
                        .map_or_else(dash, i64::to_string),
                    self.lag(partition).map_or_else(dash, |lag| lag.to_string()),
                    owner.map_or_else(dash, |owner| owner.member_id.clone()),
                    owner.map_or_else(dash, |owner| owner.client_id.clone()),
                    owner.map_or_else(dash, |owner| owner.host.clone()),
                ]
            })
            .collect();
        format_table(
            &[
                "TOPIC",
                "PARTITION",
                "CURRENT OFFSET",
                "LOG END OFFSET",
                "LAG",
                "MEMBER",
                "CLIENT ID",
                "HOST",
            ],
            &rows,
        )
    }
}

pub(super) fn describe(client: &mut KafkaClient, group: &str, json: bool) -> Result<(), ToolError> {
    let described = describe_group(client, group)?;
    let committed = committed_offsets(client, group)?;
    match described {
        GroupDescription::Consumer(described) => {
            let owners = consumer::owners(&described);
            let offsets = PartitionOffsets::fetch(client, committed, owners)?;
            consumer::print(group, &described, &offsets, json);
        }
        GroupDescription::Classic(described) => {
            if described.group_state.as_str() == "Dead" && committed.is_empty() {
                return Err(ToolError::kafka(
                    format!("group {group} does not exist"),
                    GROUP_ID_NOT_FOUND,
                ));
            }
            let owners = classic_owners(&described);
            let offsets = PartitionOffsets::fetch(client, committed, owners)?;
            print_classic(group, &described, &offsets, json);
        }
    }
    Ok(())
}

/// Partition owners from the members' consumer protocol assignments (only
/// groups of protocol type `consumer` have that format).
fn classic_owners(described: &DescribedGroup) -> BTreeMap<TopicPartition, Owner> {
    let mut owners = BTreeMap::new();
    if described.protocol_type.as_str() != "consumer" {
        return owners;
    }
    for member in &described.members {
        if member.member_assignment.is_empty() {
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
    owners
}

fn print_classic(group: &str, described: &DescribedGroup, offsets: &PartitionOffsets, json: bool) {
    if json {
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
            "type": "classic",
            "state": described.group_state.to_string(),
            "protocol_type": described.protocol_type.to_string(),
            "protocol": described.protocol_data.to_string(),
            "members": members,
            "partitions": offsets.json_rows(),
        }));
        return;
    }
    let protocol = match (
        described.protocol_type.as_str(),
        described.protocol_data.as_str(),
    ) {
        ("", _) => "-".to_string(),
        (protocol_type, "") => protocol_type.to_string(),
        (protocol_type, protocol) => format!("{protocol_type}/{protocol}"),
    };
    println!(
        "Group: {group}  type: classic  state: {}  protocol: {protocol}  members: {}",
        described.group_state,
        described.members.len()
    );
    print!("{}", offsets.table());
}
