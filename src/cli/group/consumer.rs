//! `corelog group describe` for a KIP-848 consumer group (ConsumerGroupDescribe):
//! the group's state, group epoch, assignment epoch and assignor, the shared
//! partition table, and per member its epoch, current assignment and target
//! assignment, named as `kafka-consumer-groups --describe --members --verbose`
//! names them. The coordinator computes assignments in this protocol, so the
//! partitions come with their topic names; nothing needs decoding.

use std::collections::BTreeMap;

use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member,
};
use serde_json::json;

use super::describe::{Owner, PartitionOffsets};
use crate::cli::common::{format_table, print_json};
use crate::cli::kafka::offsets::TopicPartition;

/// Partition owners from the members' current assignments.
pub(super) fn owners(described: &DescribedGroup) -> BTreeMap<TopicPartition, Owner> {
    let mut owners = BTreeMap::new();
    for member in &described.members {
        let owner = Owner {
            member_id: member.member_id.to_string(),
            client_id: member.client_id.to_string(),
            host: member.client_host.to_string(),
        };
        for topic in &member.assignment.topic_partitions {
            for partition in &topic.partitions {
                owners.insert((topic.topic_name.0.to_string(), *partition), owner.clone());
            }
        }
    }
    owners
}

pub(super) fn print(
    group: &str,
    described: &DescribedGroup,
    offsets: &PartitionOffsets,
    json: bool,
) {
    let mut members: Vec<&Member> = described.members.iter().collect();
    members.sort_by(|a, b| a.member_id.cmp(&b.member_id));
    if json {
        let members: Vec<_> = members.iter().map(|member| member_json(member)).collect();
        print_json(&json!({
            "group": group,
            "type": "consumer",
            "state": described.group_state.to_string(),
            "group_epoch": described.group_epoch,
            "assignment_epoch": described.assignment_epoch,
            "assignor": described.assignor_name.to_string(),
            "members": members,
            "partitions": offsets.json_rows(),
        }));
        return;
    }
    println!(
        "Group: {group}  type: consumer  state: {}  group epoch: {}  assignment epoch: {}  assignor: {}  members: {}",
        described.group_state,
        described.group_epoch,
        described.assignment_epoch,
        or_dash(described.assignor_name.as_str()),
        members.len()
    );
    print!("{}", offsets.table());
    if members.is_empty() {
        return;
    }
    let rows: Vec<Vec<String>> = members
        .iter()
        .map(|member| {
            vec![
                member.member_id.to_string(),
                or_dash(member.instance_id.as_deref().unwrap_or_default()),
                or_dash(member.client_host.as_str()),
                or_dash(member.client_id.as_str()),
                partition_count(&member.assignment).to_string(),
                member.member_epoch.to_string(),
                assignment_text(&member.assignment),
                assignment_text(&member.target_assignment),
            ]
        })
        .collect();
    println!();
    print!(
        "{}",
        format_table(
            &[
                "CONSUMER-ID",
                "GROUP-INSTANCE-ID",
                "HOST",
                "CLIENT-ID",
                "#PARTITIONS",
                "EPOCH",
                "ASSIGNMENT",
                "TARGET-ASSIGNMENT",
            ],
            &rows
        )
    );
}

fn member_json(member: &Member) -> serde_json::Value {
    let subscribed: Vec<String> = member
        .subscribed_topic_names
        .iter()
        .map(|topic| topic.0.to_string())
        .collect();
    json!({
        "member_id": member.member_id.to_string(),
        "group_instance_id": member.instance_id.as_ref().map(|id| id.to_string()),
        "rack_id": member.rack_id.as_ref().map(|rack| rack.to_string()),
        "client_id": member.client_id.to_string(),
        "host": member.client_host.to_string(),
        "member_epoch": member.member_epoch,
        "subscribed_topic_names": subscribed,
        "subscribed_topic_regex": member.subscribed_topic_regex.as_ref().map(|regex| regex.to_string()),
        "assignment": assignment_json(&member.assignment),
        "target_assignment": assignment_json(&member.target_assignment),
    })
}

fn assignment_json(assignment: &Assignment) -> Vec<serde_json::Value> {
    sorted_topics(assignment)
        .into_iter()
        .map(|(topic, topic_id, partitions)| {
            json!({ "topic": topic, "topic_id": topic_id, "partitions": partitions })
        })
        .collect()
}

/// `orders(0,1),payments(2)` as Kafka's tool prints an assignment; `-` for none.
fn assignment_text(assignment: &Assignment) -> String {
    let topics: Vec<String> = sorted_topics(assignment)
        .into_iter()
        .map(|(topic, _, partitions)| {
            let partitions: Vec<String> = partitions.iter().map(i32::to_string).collect();
            format!("{topic}({})", partitions.join(","))
        })
        .collect();
    or_dash(&topics.join(","))
}

/// (topic name, topic id, sorted partitions), by topic name.
fn sorted_topics(assignment: &Assignment) -> Vec<(String, String, Vec<i32>)> {
    let mut topics: Vec<(String, String, Vec<i32>)> = assignment
        .topic_partitions
        .iter()
        .map(|topic| {
            let mut partitions = topic.partitions.clone();
            partitions.sort_unstable();
            (
                topic.topic_name.0.to_string(),
                topic.topic_id.to_string(),
                partitions,
            )
        })
        .collect();
    topics.sort();
    topics
}

fn partition_count(assignment: &Assignment) -> usize {
    assignment
        .topic_partitions
        .iter()
        .map(|topic| topic.partitions.len())
        .sum()
}

fn or_dash(text: &str) -> String {
    if text.is_empty() {
        "-".to_string()
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::consumer_group_describe_response::TopicPartitions;
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::StrBytes;

    use super::*;

    fn assignment(topics: &[(&str, &[i32])]) -> Assignment {
        Assignment::default().with_topic_partitions(
            topics
                .iter()
                .map(|(name, partitions)| {
                    TopicPartitions::default()
                        .with_topic_name(TopicName(StrBytes::from_string(name.to_string())))
                        .with_partitions(partitions.to_vec())
                })
                .collect(),
        )
    }

    #[test]
    fn assignments_print_as_kafka_prints_them_sorted() {
        let assigned = assignment(&[("payments", &[2]), ("orders", &[1, 0])]);
        assert_eq!(assignment_text(&assigned), "orders(0,1),payments(2)");
        assert_eq!(partition_count(&assigned), 3);
        assert_eq!(assignment_text(&assignment(&[])), "-");
    }
}
