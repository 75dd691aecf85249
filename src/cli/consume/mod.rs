//! `corelog consume TOPIC`: Kafka's console consumer. Reads some or all
//! partitions of one topic from a start position (or, with `--group`, as a
//! member of a consumer group from its committed offsets), fetching from each
//! partition's leader and printing records with `--format` or `--json`.
//!
//! Runs on the CLI's main thread with the blocking client: one Fetch per
//! leader per round, each waiting at most `FETCH_MAX_WAIT`, so heartbeats,
//! commits, `--timeout-ms` and Ctrl-C are all noticed within that wait.
//!
//! This file owns the flags, the setup and the consumer's state.
//!
//! Inside:
//! - `fetch_loop`: the loop until `--num`, `--timeout-ms` or Ctrl-C, and one
//!   round of Fetch requests, one per partition leader
//! - `positions`: where each partition is read from next: start offsets,
//!   committed offsets, OFFSET_OUT_OF_RANGE resets, leader changes, and
//!   `--group` membership (heartbeats, rejoins, commits, leaving)

mod fetch_loop;
mod positions;

use std::collections::HashMap;
use std::time::Duration;

use clap::Args;

use crate::cli::common::{ConnectArgs, TopicArg};
use crate::cli::console::{self, PartitionLeader};
use crate::cli::consume_format::{RecordFormat, DEFAULT_FORMAT};
use crate::cli::consumer_group::GroupMember;
use crate::cli::kafka::{KafkaClient, ToolError};

/// Pause after an error a new leader or a rejoin may fix.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);
const CLIENT_ID: &str = "corelog-consume";

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// The topic (positional, or `--topic`).
    #[command(flatten)]
    pub topic: TopicArg,
    /// Start at the earliest offset (with --group: when nothing is committed).
    #[arg(long)]
    pub from_beginning: bool,
    /// Start at offset N, `earliest` or `latest` (with --group: when nothing is committed).
    #[arg(long, value_name = "N|earliest|latest", value_parser = parse_start, conflicts_with = "from_beginning")]
    pub offset: Option<StartOffset>,
    /// Read only this partition (repeatable; default: all).
    #[arg(long = "partition", value_name = "N", conflicts_with = "group")]
    pub partitions: Vec<i32>,
    /// Stop after N records (`--max-messages` as Kafka's console consumer spells it).
    #[arg(long, visible_alias = "max-messages", value_name = "N")]
    pub num: Option<u64>,
    /// Stop when no record arrived for this long (default: run until --num or Ctrl-C).
    #[arg(long, value_name = "MS")]
    pub timeout_ms: Option<u64>,
    /// Output template: %t topic, %p partition, %o offset, %k key, %v value,
    /// %T timestamp, %h headers, %K key length, %S value length, %% a percent;
    /// \n, \t, \r, \\ escapes.
    #[arg(long, default_value = DEFAULT_FORMAT, conflicts_with = "json")]
    pub format: String,
    /// One JSON object per record and line.
    #[arg(long)]
    pub json: bool,
    /// Consume as a member of this consumer group (range assignor, commits offsets).
    #[arg(long)]
    pub group: Option<String>,
    /// Where to go when a position is out of range: earliest or latest.
    #[arg(long, value_enum, default_value = "earliest")]
    pub offset_reset: OffsetReset,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOffset {
    Earliest,
    Latest,
    At(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OffsetReset {
    Earliest,
    Latest,
}

fn parse_start(text: &str) -> Result<StartOffset, String> {
    match text {
        "earliest" | "beginning" => Ok(StartOffset::Earliest),
        "latest" | "end" => Ok(StartOffset::Latest),
        _ => match text.parse::<i64>() {
            Ok(offset) if offset >= 0 => Ok(StartOffset::At(offset)),
            _ => Err(format!(
                "offset must be a number >= 0, earliest or latest, not '{text}'"
            )),
        },
    }
}

/// Where one partition is read from next.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    partition: i32,
    leader: i32,
    position: i64,
}

/// How records are printed.
enum Output {
    Template(RecordFormat),
    Json,
}

pub fn run(args: ConsumeArgs) -> Result<(), ToolError> {
    let output = if args.json {
        Output::Json
    } else {
        Output::Template(RecordFormat::parse(&args.format).map_err(ToolError::Usage)?)
    };
    let start = match (args.from_beginning, args.offset) {
        (true, _) => StartOffset::Earliest,
        (false, Some(start)) => start,
        (false, None) => StartOffset::Latest,
    };
    let stop = console::stop_flag()?;
    let mut client = args.connect.connect(CLIENT_ID)?;
    let layout = console::topic_partitions(&mut client, args.topic.name(), false)?;
    for partition in &args.partitions {
        if !layout.partitions.iter().any(|p| p.partition == *partition) {
            return Err(ToolError::Usage(format!(
                "topic {} has no partition {partition} (it has {})",
                args.topic.name(),
                layout.partitions.len()
            )));
        }
    }
    let mut consumer = Consumer {
        client,
        topic: args.topic.name().to_string(),
        leaders: layout.partitions,
        start,
        reset: args.offset_reset,
        output,
        member: None,
        cursors: Vec::new(),
        committed: HashMap::new(),
        fetch_versions: HashMap::new(),
        consumed: 0,
    };
    match &args.group {
        Some(group) => {
            let (member, assigned) =
                GroupMember::join(&mut consumer.client, group, args.topic.name())?;
            consumer.member = Some(member);
            consumer.start_group_cursors(&assigned)?;
        }
        None => {
            let selected: Vec<i32> = if args.partitions.is_empty() {
                consumer.leaders.iter().map(|p| p.partition).collect()
            } else {
                args.partitions.clone()
            };
            consumer.cursors = consumer.start_cursors(&selected, start)?;
        }
    }
    let result = consumer.run_loop(&args, &stop);
    let finished = consumer.finish();
    eprintln!(
        "consumed {} records from topic {}",
        consumer.consumed,
        args.topic.name()
    );
    result.and(finished)
}

struct Consumer {
    client: KafkaClient,
    topic: String,
    /// Every partition of the topic and its leader (refreshed on leader errors).
    leaders: Vec<PartitionLeader>,
    start: StartOffset,
    reset: OffsetReset,
    output: Output,
    member: Option<GroupMember>,
    cursors: Vec<Cursor>,
    /// Group member: what was last committed, to commit only changes.
    committed: HashMap<i32, i64>,
    fetch_versions: HashMap<i32, i16>,
    consumed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_offsets_parse() {
        assert_eq!(parse_start("earliest"), Ok(StartOffset::Earliest));
        assert_eq!(parse_start("beginning"), Ok(StartOffset::Earliest));
        assert_eq!(parse_start("latest"), Ok(StartOffset::Latest));
        assert_eq!(parse_start("42"), Ok(StartOffset::At(42)));
        assert!(parse_start("-3").is_err());
        assert!(parse_start("soon").is_err());
    }
}
