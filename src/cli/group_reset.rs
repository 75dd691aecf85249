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

use crate::cli::common::{format_table, print_json};
use crate::cli::group::{committed_offsets, describe_group};
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
    let described = describe_group(client, group)?;
    if !described.members.is_empty() {
        return Err(ToolError::Usage(format!(
            "group {group} has {} active member(s) (state {}): stop its consumers before resetting offsets",
            described.members.len(),
            described.group_state
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

/// Milliseconds since the Unix epoch of an RFC 3339 date-time
/// (`2024-05-01T12:00:00Z`, `2024-05-01T12:00:00.250+02:00`; a space for `T` is accepted).
pub fn parse_rfc3339_ms(text: &str) -> Result<i64, String> {
    let invalid = || format!("'{text}' is not an RFC 3339 date-time like 2024-05-01T12:00:00Z");
    let bytes = text.as_bytes();
    if bytes.len() < 20
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || !matches!(bytes[10], b'T' | b't' | b' ')
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        return Err(invalid());
    }
    let number = |range: std::ops::Range<usize>| -> Result<i64, String> {
        let digits = text.get(range).ok_or_else(invalid)?;
        if digits.bytes().all(|byte| byte.is_ascii_digit()) {
            digits.parse::<i64>().map_err(|_| invalid())
        } else {
            Err(invalid())
        }
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(invalid());
    }
    let mut rest = &text[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid());
        }
        let padded = format!("{:0<3}", &fraction[..digits.min(3)]);
        millis = padded.parse::<i64>().map_err(|_| invalid())?;
        rest = &fraction[digits..];
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6
            && (rest.starts_with('+') || rest.starts_with('-'))
            && &rest[3..4] == ":" =>
        {
            let hours = rest[1..3].parse::<i64>().map_err(|_| invalid())?;
            let minutes = rest[4..6].parse::<i64>().map_err(|_| invalid())?;
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (hours * 60 + minutes)
        }
        _ => return Err(invalid()),
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Ok(seconds * 1_000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_date_times_become_epoch_milliseconds() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(
            parse_rfc3339_ms("2024-05-01T12:00:00Z").unwrap(),
            1_714_564_800_000
        );
        assert_eq!(
            parse_rfc3339_ms("2024-05-01T14:00:00.25+02:00").unwrap(),
            1_714_564_800_250
        );
        assert_eq!(
            parse_rfc3339_ms("2024-02-29 00:00:00.123456Z").unwrap(),
            1_709_164_800_123
        );
        assert_eq!(parse_rfc3339_ms("1969-12-31T23:59:59Z").unwrap(), -1_000);
        for bad in [
            "2024-05-01",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-05-01T12:00:00",
            "2024-05-01T12:00:00+0200",
            "yesterday",
            "2024-05-01T12:00:00.Z",
        ] {
            assert!(parse_rfc3339_ms(bad).is_err(), "{bad}");
        }
    }

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
