//! The consume loop: runs until `--num` records, `--timeout-ms` without
//! one, Ctrl-C or a closed stdout, and sends one Fetch per partition leader
//! per round. Each Fetch waits at most `FETCH_MAX_WAIT`, so group heartbeats
//! and commits between rounds stay on time.

use std::io::{self, Write};
use std::thread;
use std::time::{Duration, Instant};

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::{ConsumeArgs, Consumer, Output, RETRY_BACKOFF};
use crate::cli::console;
use crate::cli::consume_format::json_record;
use crate::cli::kafka::{Node, ToolError};
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

const NOT_LEADER_OR_FOLLOWER: i16 = console::NOT_LEADER_OR_FOLLOWER;
const LEADER_NOT_AVAILABLE: i16 = console::LEADER_NOT_AVAILABLE;
const OFFSET_OUT_OF_RANGE: i16 = console::OFFSET_OUT_OF_RANGE;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = console::UNKNOWN_TOPIC_OR_PARTITION;

impl Consumer {
    pub(super) fn run_loop(
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
}
