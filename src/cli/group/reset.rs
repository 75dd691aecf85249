//! `corelog group reset-offsets`: plans new committed offsets for a group
//! (earliest, latest, an offset, a point in time, or a shift) and, with
//! `--execute`, commits them as a standalone commit (generation -1, no
//! member), which Kafka only accepts while the group has no members. Like
//! `kafka-consumer-groups --reset-offsets`, a dry run is the default.

use std::collections::BTreeMap;

use clap::{ArgGroup, Args};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{ApiKey, GroupId, OffsetCommitRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use super::datetime::parse_rfc3339_ms;
use super::{committed_offsets, describe_group};
use crate::cli::common::{format_table, print_json};
use crate::cli::kafka::offsets::{
    list_offsets, TopicPartition, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP,
};
use crate::cli::kafka::{KafkaClient, Node, ToolError};
use crate::cli::topic::topic_metadata;

/// OffsetCommit v2-v9 name topics; v10 uses topic ids.
const OFFSET_COMMIT_VERSION_MAX: i16 = 9;
const ILLEGAL_GENERATION: i16 = 22;
const UNKNOWN_MEMBER_ID: i16 = 25;
const REBALANCE_IN_PROGRESS: i16 = 27;

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("scope").required(true).args(["topics", "all_topics"])))]
#[command(group(ArgGroup::new("target").required(true).args([
    "to_earliest", "to_latest", "to_offset", "to_datetime", "shift_by"
])))]
pub struct ResetArgs {
    pub group: String,
    /// Topic to reset, or TOPIC:P,P,... for some of its partitions (repeatable).
    #[arg(long = "topic")]
    pub topics: Vec<String>,
    /// Every topic the group has committed offsets for.
    #[arg(long)]
    pub all_topics: bool,
    /// To each partition's log start offset.
    #[arg(long)]
    pub to_earliest: bool,
    /// To each partition's log end offset (skip everything unread).
    #[arg(long)]
    pub to_latest: bool,
    /// To this offset (kept within the log start and end offsets).
    #[arg(long, allow_negative_numbers = true)]
    pub to_offset: Option<i64>,
    /// To the first record at or after this time, RFC 3339 (2024-05-01T12:00:00Z).
    #[arg(long)]
    pub to_datetime: Option<String>,
    /// By this many records from the committed offset (negative: back).
    #[arg(long, allow_negative_numbers = true)]
    pub shift_by: Option<i64>,
    /// Commit the new offsets (without it, only print the plan).
    #[arg(long)]
    pub execute: bool,
    #[arg(long)]
    pub json: bool,
}

/// One partition's move.
struct Move {
    partition: TopicPartition,
    current: Option<i64>,
    target: i64,
}

pub fn run(client: &mut KafkaClient, args: &ResetArgs) -> Result<(), ToolError> {
    let group = args.group.as_str();
    // A bad date is a usage error before anything is asked of the broker.
    let timestamp_ms = match &args.to_datetime {
        Some(text) => Some(
            parse_rfc3339_ms(text)
                .map_err(|error| ToolError::Usage(format!("--to-datetime {text}: {error}")))?,
        ),
        None => None,
    };
    let committed = committed_offsets(client, group)?;
    let partitions = scope(client, args, &committed)?;
    if partitions.is_empty() {
        return Err(ToolError::Usage(format!(
            "group {group} has no committed offsets to reset"
        )));
    }
    let earliest = list_offsets(client, &partitions, EARLIEST_TIMESTAMP)?;
    let latest = list_offsets(client, &partitions, LATEST_TIMESTAMP)?;
    let at_time = match timestamp_ms {
        // Negative timestamps mean earliest/latest to ListOffsets; before 1970 is the start.
        Some(timestamp_ms) => Some(list_offsets(client, &partitions, timestamp_ms.max(0))?),
        None => None,
    };
    let mut moves = Vec::new();
    for partition in partitions {
        let (low, high) = (earliest[&partition], latest[&partition]);
        let current = committed.get(&partition).copied();
        let target = if args.to_earliest {
            low
        } else if args.to_latest {
            high
        } else if let Some(offset) = args.to_offset {
            offset.clamp(low, high.max(low))
        } else if let Some(shift) = args.shift_by {
            let from = current.ok_or_else(|| {
                ToolError::Usage(format!(
                    "topic {} partition {} has no committed offset to shift from",
                    partition.0, partition.1
                ))
            })?;
            from.saturating_add(shift).clamp(low, high.max(low))
        } else if let Some(at_time) = &at_time {
            // -1: no record at or after that time, so the end of the log.
            match at_time[&partition] {
                -1 => high,
                offset => offset,
            }
        } else {
            return Err(ToolError::Usage(
                "give one of --to-earliest, --to-latest, --to-offset, --to-datetime, --shift-by"
                    .into(),
            ));
        };
        moves.push(Move {
            partition,
            current,
            target,
        });
    }
    if args.execute {
        commit(client, group, &moves)?;
    }
    print_plan(group, &moves, args.execute, args.json);
    Ok(())
}

/// The partitions to reset: those named by --topic, or every committed one.
fn scope(
    client: &mut KafkaClient,
    args: &ResetArgs,
    committed: &BTreeMap<TopicPartition, i64>,
) -> Result<Vec<TopicPartition>, ToolError> {
    if args.all_topics {
        return Ok(committed.keys().cloned().collect());
    }
    let mut partitions = Vec::new();
    for spec in &args.topics {
        let (topic, wanted) = parse_topic_spec(spec).map_err(ToolError::Usage)?;
        let metadata = topic_metadata(client, &topic)?;
        let existing: Vec<i32> = metadata
            .partitions
            .iter()
            .map(|partition| partition.partition_index)
            .collect();
        match wanted {
            None => partitions.extend(existing.iter().map(|partition| (topic.clone(), *partition))),
            Some(wanted) => {
                for partition in wanted {
                    if !existing.contains(&partition) {
                        return Err(ToolError::Usage(format!(
                            "topic {topic} has no partition {partition} (it has {})",
                            existing.len()
                        )));
                    }
                    partitions.push((topic.clone(), partition));
                }
            }
        }
    }
    partitions.sort();
    partitions.dedup();
    Ok(partitions)
}

/// `orders` -> (orders, None); `orders:0,2` -> (orders, Some([0, 2])).
fn parse_topic_spec(spec: &str) -> Result<(String, Option<Vec<i32>>), String> {
    let Some((topic, list)) = spec.split_once(':') else {
        return Ok((spec.to_string(), None));
    };
    let partitions = list
        .split(',')
        .map(|partition| {
            partition
                .trim()
                .parse::<i32>()
                .ok()
                .filter(|partition| *partition >= 0)
                .ok_or_else(|| format!("--topic {spec}: '{partition}' is not a partition number"))
        })
        .collect::<Result<Vec<i32>, String>>()?;
    if topic.is_empty() {
        return Err(format!("--topic {spec}: no topic name"));
    }
    Ok((topic.to_string(), Some(partitions)))
}

/// Commits the plan as a standalone commit (generation -1, member "").
fn commit(client: &mut KafkaClient, group: &str, moves: &[Move]) -> Result<(), ToolError> {
    // Either kind of group: a consumer group's members are invisible to DescribeGroups.
    let described = describe_group(client, group)?;
    if described.member_count() > 0 {
        return Err(ToolError::Usage(format!(
            "{} group {group} has {} active member(s) (state {}): stop its consumers before resetting offsets",
            described.group_type(),
            described.member_count(),
            described.state()
        )));
    }
    let node = Node::Coordinator(group.to_string());
    let version = client.version(&node, ApiKey::OffsetCommit, OFFSET_COMMIT_VERSION_MAX)?;
    let mut by_topic: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for reset in moves {
        by_topic.entry(&reset.partition.0).or_default().push(
            OffsetCommitRequestPartition::default()
                .with_partition_index(reset.partition.1)
                .with_committed_offset(reset.target)
                .with_committed_leader_epoch(-1),
        );
    }
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(StrBytes::from_static_str(""))
        .with_retention_time_ms(-1)
        .with_topics(
            by_topic
                .into_iter()
                .map(|(topic, partitions)| {
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                        .with_partitions(partitions)
                })
                .collect(),
        );
    let response = client.send(&node, version, &request)?;
    for topic in response.topics {
        for partition in topic.partitions {
            let context = match partition.error_code {
                0 => continue,
                // A member joined between the check and the commit.
                ILLEGAL_GENERATION | UNKNOWN_MEMBER_ID | REBALANCE_IN_PROGRESS => format!(
                    "resetting group {group}: the broker refused because the group has active members; stop its consumers first"
                ),
                _ => format!("committing group {group} offset on topic {} partition {}", topic.name.0, partition.partition_index),
            };
            return Err(ToolError::kafka(context, partition.error_code));
        }
    }
    Ok(())
}

fn print_plan(group: &str, moves: &[Move], executed: bool, json: bool) {
    if json {
        let rows: Vec<_> = moves
            .iter()
            .map(|reset| {
                json!({
                    "topic": reset.partition.0,
                    "partition": reset.partition.1,
                    "current_offset": reset.current,
                    "new_offset": reset.target,
                })
            })
            .collect();
        print_json(&json!({ "group": group, "executed": executed, "partitions": rows }));
        return;
    }
    let rows: Vec<Vec<String>> = moves
        .iter()
        .map(|reset| {
            vec![
                reset.partition.0.clone(),
                reset.partition.1.to_string(),
                reset
                    .current
                    .map_or_else(|| "-".to_string(), |offset| offset.to_string()),
                reset.target.to_string(),
            ]
        })
        .collect();
    print!(
        "{}",
        format_table(
            &["TOPIC", "PARTITION", "CURRENT OFFSET", "NEW OFFSET"],
            &rows
        )
    );
    if executed {
        println!("Committed the new offsets of group {group}.");
    } else {
        println!(
            "Dry run: nothing committed. Add --execute to commit these offsets for group {group}."
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_specs_name_a_topic_and_optionally_partitions() {
        assert_eq!(
            parse_topic_spec("orders").unwrap(),
            ("orders".to_string(), None)
        );
        assert_eq!(
            parse_topic_spec("orders:0, 2").unwrap(),
            ("orders".to_string(), Some(vec![0, 2]))
        );
        assert!(parse_topic_spec("orders:x").is_err());
        assert!(parse_topic_spec("orders:-1").is_err());
        assert!(parse_topic_spec(":1").is_err());
    }
}
