//! `corelog consume TOPIC`: Kafka's console consumer. Reads some or all
//! partitions of one topic from a start position (or, with `--group`, as a
//! member of a consumer group from its committed offsets), fetching from each
//! partition's leader and printing records with `--format` or `--json`.
//!
//! Runs on the CLI's main thread with the blocking client: one Fetch per
//! leader per round, each waiting at most `FETCH_MAX_WAIT`, so heartbeats,
//! commits, `--timeout-ms` and Ctrl-C are all noticed within that wait.

use std::collections::HashMap;
use std::io::{self, Write};
use std::thread;
use std::time::{Duration, Instant};

use clap::Args;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::cli::common::ConnectArgs;
use crate::cli::console::{self, PartitionLeader, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use crate::cli::consume_format::{json_record, RecordFormat, DEFAULT_FORMAT};
use crate::cli::consumer_group::{needs_rejoin, GroupMember};
use crate::cli::kafka::{KafkaClient, Node, ToolError};
use crate::cli::records::decode_fetched;

/// Longest a Fetch waits for data: bounds how late a heartbeat, a commit or
/// Ctrl-C is handled.
const FETCH_MAX_WAIT: Duration = Duration::from_millis(500);
/// Fetch v4+ (KIP-74 max_bytes, read_uncommitted); v13 switches to topic ids.
const FETCH_VERSION_MAX: i16 = 12;
/// Kafka's consumer defaults: fetch.max.bytes and max.partition.fetch.bytes.
const FETCH_MAX_BYTES: i32 = 50 << 20;
const PARTITION_MAX_BYTES: i32 = 1 << 20;
/// How often a group member commits what it printed (auto.commit.interval.ms is 5 s).
const COMMIT_INTERVAL: Duration = Duration::from_secs(1);
/// Pause after an error a new leader or a rejoin may fix.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);
const CLIENT_ID: &str = "corelog-consume";

const NOT_LEADER_OR_FOLLOWER: i16 = console::NOT_LEADER_OR_FOLLOWER;
const LEADER_NOT_AVAILABLE: i16 = console::LEADER_NOT_AVAILABLE;
const OFFSET_OUT_OF_RANGE: i16 = console::OFFSET_OUT_OF_RANGE;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = console::UNKNOWN_TOPIC_OR_PARTITION;

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Topic to read.
    pub topic: String,
    /// Start at the earliest offset (with --group: when nothing is committed).
    #[arg(long)]
    pub from_beginning: bool,
    /// Start at offset N, `earliest` or `latest` (with --group: when nothing is committed).
    #[arg(long, value_name = "N|earliest|latest", value_parser = parse_start, conflicts_with = "from_beginning")]
    pub offset: Option<StartOffset>,
    /// Read only this partition (repeatable; default: all).
    #[arg(long = "partition", value_name = "N", conflicts_with = "group")]
    pub partitions: Vec<i32>,
    /// Stop after N records.
    #[arg(long, value_name = "N")]
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
    let layout = console::topic_partitions(&mut client, &args.topic, false)?;
    for partition in &args.partitions {
        if !layout.partitions.iter().any(|p| p.partition == *partition) {
            return Err(ToolError::Usage(format!(
                "topic {} has no partition {partition} (it has {})",
                args.topic,
                layout.partitions.len()
            )));
        }
    }
    let mut consumer = Consumer {
        client,
        topic: args.topic.clone(),
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
            let (member, assigned) = GroupMember::join(&mut consumer.client, group, &args.topic)?;
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
        consumer.consumed, args.topic
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

impl Consumer {
    fn run_loop(
        &mut self,
        args: &ConsumeArgs,
        stop: &std::sync::atomic::AtomicBool,
    ) -> Result<(), ToolError> {
        let idle_timeout = args.timeout_ms.map(Duration::from_millis);
        let mut last_record_at = Instant::now();
        let mut last_commit_at = Instant::now();
        let mut stdout = io::stdout().lock();
        loop {
            let done = args.num.is_some_and(|num| self.consumed >= num);
            let idle = idle_timeout.is_some_and(|timeout| last_record_at.elapsed() >= timeout);
            if done || idle || console::stopped(stop) {
                return Ok(());
            }
            if self.member.is_some() {
                self.keep_membership()?;
                if last_commit_at.elapsed() >= COMMIT_INTERVAL {
                    last_commit_at = Instant::now();
                    self.commit_positions()?;
                }
            }
            if self.cursors.is_empty() {
                thread::sleep(RETRY_BACKOFF); // a group member with nothing assigned
                continue;
            }
            let wait = idle_timeout.map_or(FETCH_MAX_WAIT, |timeout| timeout.min(FETCH_MAX_WAIT));
            let remaining = args.num.map(|num| num - self.consumed);
            let mut out = Vec::new();
            let printed = self.fetch_round(wait, remaining, &mut out)?;
            if printed > 0 {
                last_record_at = Instant::now();
                match stdout.write_all(&out).and_then(|()| stdout.flush()) {
                    Ok(()) => {}
                    // `| head`: the reader is gone, which is a normal way to stop.
                    Err(error) if error.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
                    Err(source) => {
                        return Err(ToolError::Io {
                            peer: "stdout".into(),
                            source,
                        })
                    }
                }
            }
        }
    }

    /// Heartbeats; on a rebalance commits, rejoins and restarts the cursors.
    fn keep_membership(&mut self) -> Result<(), ToolError> {
        let Some(member) = self.member.as_mut() else {
            return Ok(());
        };
        match member.heartbeat_if_due(&mut self.client) {
            Ok(()) => Ok(()),
            Err(error) if needs_rejoin(&error) => {
                // Kafka accepts commits of the current generation while it prepares a rebalance.
                if let Err(error) = self.commit_positions() {
                    eprintln!("corelog consume: offsets not committed before rejoining: {error}");
                }
                let Some(member) = self.member.as_mut() else {
                    return Ok(());
                };
                let assigned = member.rejoin(&mut self.client)?;
                self.start_group_cursors(&assigned)
            }
            Err(error) => Err(error),
        }
    }

    /// Cursors for `assigned` at the committed offsets, else at the start position.
    fn start_group_cursors(&mut self, assigned: &[i32]) -> Result<(), ToolError> {
        let Some(member) = self.member.as_ref() else {
            return Ok(());
        };
        eprintln!(
            "joined group {} generation {} with partitions {assigned:?} of topic {}",
            member.group(),
            member.generation(),
            self.topic
        );
        let committed = member.committed(&mut self.client, assigned)?;
        let uncommitted: Vec<i32> = assigned
            .iter()
            .copied()
            .filter(|p| !committed.contains_key(p))
            .collect();
        let mut cursors = self.start_cursors(&uncommitted, self.start)?;
        for (partition, offset) in &committed {
            cursors.push(Cursor {
                partition: *partition,
                leader: self.leader_of(*partition),
                position: *offset,
            });
        }
        cursors.sort_by_key(|cursor| cursor.partition);
        self.committed = committed;
        self.cursors = cursors;
        Ok(())
    }

    fn start_cursors(
        &mut self,
        partitions: &[i32],
        start: StartOffset,
    ) -> Result<Vec<Cursor>, ToolError> {
        let positions: Vec<(i32, i64)> = match start {
            StartOffset::At(offset) => partitions.iter().map(|p| (*p, offset)).collect(),
            StartOffset::Earliest => self.list_offsets(partitions, EARLIEST_TIMESTAMP)?,
            StartOffset::Latest => self.list_offsets(partitions, LATEST_TIMESTAMP)?,
        };
        Ok(positions
            .into_iter()
            .map(|(partition, position)| Cursor {
                partition,
                leader: self.leader_of(partition),
                position,
            })
            .collect())
    }

    fn list_offsets(
        &mut self,
        partitions: &[i32],
        timestamp: i64,
    ) -> Result<Vec<(i32, i64)>, ToolError> {
        if partitions.is_empty() {
            return Ok(Vec::new());
        }
        let asked: Vec<PartitionLeader> = self
            .leaders
            .iter()
            .filter(|p| partitions.contains(&p.partition))
            .copied()
            .collect();
        console::list_offsets(&mut self.client, &self.topic, &asked, timestamp)
    }

    fn leader_of(&self, partition: i32) -> i32 {
        self.leaders
            .iter()
            .find(|p| p.partition == partition)
            .map_or(-1, |p| p.leader)
    }

    /// One Fetch per leader; appends printed records to `out`, at most `remaining`.
    fn fetch_round(
        &mut self,
        wait: Duration,
        mut remaining: Option<u64>,
        out: &mut Vec<u8>,
    ) -> Result<u64, ToolError> {
        let mut leaders: Vec<i32> = self.cursors.iter().map(|c| c.leader).collect();
        leaders.sort_unstable();
        leaders.dedup();
        let mut printed = 0;
        let mut refresh = false;
        for leader in leaders {
            let node = Node::Broker(leader);
            let version = match self.fetch_versions.get(&leader) {
                Some(version) => *version,
                None => {
                    let version = self
                        .client
                        .version(&node, ApiKey::Fetch, FETCH_VERSION_MAX)?;
                    self.fetch_versions.insert(leader, version);
                    version
                }
            };
            let request = self.fetch_request(leader, wait);
            let response = self.client.send(&node, version, &request)?;
            if response.error_code != 0 {
                return Err(ToolError::kafka(
                    format!("fetching from broker {leader}"),
                    response.error_code,
                ));
            }
            for partition in response.responses.iter().flat_map(|t| t.partitions.iter()) {
                let Some(index) = self
                    .cursors
                    .iter()
                    .position(|c| c.partition == partition.partition_index)
                else {
                    continue;
                };
                match partition.error_code {
                    0 => {}
                    OFFSET_OUT_OF_RANGE => {
                        self.reset_position(index)?;
                        continue;
                    }
                    NOT_LEADER_OR_FOLLOWER | LEADER_NOT_AVAILABLE | UNKNOWN_TOPIC_OR_PARTITION => {
                        refresh = true;
                        continue;
                    }
                    code => {
                        return Err(ToolError::kafka(
                            format!(
                                "fetching {} partition {}",
                                self.topic, partition.partition_index
                            ),
                            code,
                        ))
                    }
                }
                let Some(records) = &partition.records else {
                    continue;
                };
                let cursor = &mut self.cursors[index];
                let fetched = decode_fetched(records, cursor.position).map_err(|error| {
                    ToolError::Protocol(format!(
                        "{} partition {}: {error}",
                        self.topic, cursor.partition
                    ))
                })?;
                let mut complete = true;
                for record in &fetched.records {
                    if remaining == Some(0) {
                        complete = false;
                        break;
                    }
                    match &self.output {
                        Output::Template(format) => {
                            format.write(out, &self.topic, cursor.partition, record)
                        }
                        Output::Json => {
                            out.extend_from_slice(
                                json_record(&self.topic, cursor.partition, record)
                                    .to_string()
                                    .as_bytes(),
                            );
                            out.push(b'\n');
                        }
                    }
                    cursor.position = record.offset + 1;
                    printed += 1;
                    remaining = remaining.map(|left| left - 1);
                }
                if complete {
                    cursor.position = cursor.position.max(fetched.next_offset);
                }
            }
        }
        self.consumed += printed;
        if refresh {
            self.refresh_leaders()?;
        }
        Ok(printed)
    }

    fn fetch_request(&self, leader: i32, wait: Duration) -> FetchRequest {
        let partitions = self
            .cursors
            .iter()
            .filter(|cursor| cursor.leader == leader)
            .map(|cursor| {
                FetchPartition::default()
                    .with_partition(cursor.partition)
                    .with_fetch_offset(cursor.position)
                    .with_partition_max_bytes(PARTITION_MAX_BYTES)
            })
            .collect();
        FetchRequest::default()
            .with_max_wait_ms(wait.as_millis() as i32)
            .with_min_bytes(1)
            .with_max_bytes(FETCH_MAX_BYTES)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(self.topic.clone())))
                .with_partitions(partitions)])
    }

    /// OFFSET_OUT_OF_RANGE: jump to the earliest or latest offset, and say so.
    fn reset_position(&mut self, index: usize) -> Result<(), ToolError> {
        let cursor = self.cursors[index];
        let (timestamp, name) = match self.reset {
            OffsetReset::Earliest => (EARLIEST_TIMESTAMP, "earliest"),
            OffsetReset::Latest => (LATEST_TIMESTAMP, "latest"),
        };
        let offsets = self.list_offsets(&[cursor.partition], timestamp)?;
        let Some((_, offset)) = offsets.first() else {
            return Err(ToolError::Protocol(format!(
                "ListOffsets skipped partition {}",
                cursor.partition
            )));
        };
        eprintln!(
            "corelog consume: offset {} of {} partition {} is out of range; resetting to the {name} offset {offset}",
            cursor.position, self.topic, cursor.partition
        );
        self.cursors[index].position = *offset;
        Ok(())
    }

    fn refresh_leaders(&mut self) -> Result<(), ToolError> {
        thread::sleep(RETRY_BACKOFF);
        self.leaders = console::topic_partitions(&mut self.client, &self.topic, false)?.partitions;
        for index in 0..self.cursors.len() {
            self.cursors[index].leader = self.leader_of(self.cursors[index].partition);
        }
        Ok(())
    }

    /// Commits positions that moved since the last commit (group members only).
    fn commit_positions(&mut self) -> Result<(), ToolError> {
        let Some(member) = self.member.as_ref() else {
            return Ok(());
        };
        let changed: Vec<(i32, i64)> = self
            .cursors
            .iter()
            .filter(|cursor| self.committed.get(&cursor.partition) != Some(&cursor.position))
            .map(|cursor| (cursor.partition, cursor.position))
            .collect();
        match member.commit(&mut self.client, &changed) {
            Ok(()) => {
                self.committed.extend(changed);
                Ok(())
            }
            // The heartbeat will notice the rebalance and rejoin; commit again then.
            Err(error) if needs_rejoin(&error) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Group members commit what they printed and leave the group.
    fn finish(&mut self) -> Result<(), ToolError> {
        let committed = self.commit_positions();
        let left = match self.member.take() {
            Some(member) => member.leave(&mut self.client),
            None => Ok(()),
        };
        committed.and(left)
    }
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
