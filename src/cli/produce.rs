//! `corelog produce TOPIC`: Kafka's console producer. Each stdin line is one
//! record (an optional key before `--key-separator`, the same `--header`s on
//! every record), partitioned as Kafka's default partitioner does and sent in
//! RecordBatch v2 Produce requests to each partition's leader.
//!
//! Runs on the CLI's main thread with the blocking client. Lines are sent as
//! soon as stdin has nothing more buffered (so typing a line sends it) or
//! when `--batch-size` records are waiting (so a pipe is sent in batches).

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use clap::Args;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, ProduceRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::cli::common::ConnectArgs;
use crate::cli::console::{self, TopicLayout};
use crate::cli::kafka::connection::{decode_response, encode_request};
use crate::cli::kafka::{KafkaClient, Node, ToolError};
use crate::cli::partitioner::partition_for_key;
use crate::cli::records::{encode_batch, Codec, Header, OutgoingRecord};

/// Produce v3 is the first with RecordBatch v2; v13 switches to topic ids.
const PRODUCE_VERSION_MAX: i16 = 12;
/// How long the broker may take to meet `acks` (Kafka's request.timeout.ms default).
const PRODUCE_TIMEOUT_MS: i32 = 30_000;
/// Read buffer for stdin: large enough that a pipe is read in big chunks.
const STDIN_BUFFER_BYTES: usize = 64 << 10;
/// How long the acks=0 streams may take to answer the final ApiVersions.
const UNACKNOWLEDGED_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
const CLIENT_ID: &str = "corelog-produce";

#[derive(Debug, Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Topic to write to (created if the broker auto-creates topics).
    pub topic: String,
    /// Split each line at the first SEP: the key before it, the value after.
    /// Lines without SEP get no key.
    #[arg(long, value_name = "SEP")]
    pub key_separator: Option<String>,
    /// A header KEY=VALUE on every record (repeatable).
    #[arg(long = "header", value_name = "KEY=VALUE", value_parser = parse_header)]
    pub headers: Vec<Header>,
    /// Write every record to this partition instead of partitioning by key.
    #[arg(long)]
    pub partition: Option<i32>,
    /// Acknowledgements to wait for: 0, 1 or all.
    #[arg(long, default_value = "all", value_parser = parse_acks)]
    pub acks: i16,
    /// Compression codec of the record batches.
    #[arg(long, value_enum, default_value = "none")]
    pub compression: Codec,
    /// Records sent per Produce request at most.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub batch_size: u32,
}

fn parse_header(text: &str) -> Result<Header, String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("header '{text}' is not KEY=VALUE"))?;
    if key.is_empty() {
        return Err(format!("header '{text}' has an empty key"));
    }
    Ok(Header {
        key: key.to_string(),
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
    })
}

fn parse_acks(text: &str) -> Result<i16, String> {
    match text {
        "0" => Ok(0),
        "1" => Ok(1),
        "all" | "-1" => Ok(-1),
        _ => Err(format!("acks must be 0, 1 or all, not '{text}'")),
    }
}

/// Splits one input line (terminator already removed) into key and value.
fn split_line(line: &[u8], separator: Option<&[u8]>) -> OutgoingRecord {
    let found = separator.filter(|sep| !sep.is_empty()).and_then(|sep| {
        line.windows(sep.len())
            .position(|window| window == sep)
            .map(|at| (at, sep.len()))
    });
    match found {
        Some((at, length)) => OutgoingRecord {
            key: Some(Bytes::copy_from_slice(&line[..at])),
            value: Bytes::copy_from_slice(&line[at + length..]),
        },
        None => OutgoingRecord {
            key: None,
            value: Bytes::copy_from_slice(line),
        },
    }
}

/// Removes a trailing `\n` or `\r\n`.
fn trim_line_end(mut line: &[u8]) -> &[u8] {
    if let Some(rest) = line.strip_suffix(b"\n") {
        line = rest;
        if let Some(rest) = line.strip_suffix(b"\r") {
            line = rest;
        }
    }
    line
}

pub fn run(args: ProduceArgs) -> Result<(), ToolError> {
    if args.key_separator.as_deref() == Some("") {
        return Err(ToolError::Usage("--key-separator must not be empty".into()));
    }
    let mut client = args.connect.connect(CLIENT_ID)?;
    let layout = console::topic_partitions(&mut client, &args.topic, true)?;
    if let Some(partition) = args.partition {
        if !layout.partitions.iter().any(|p| p.partition == partition) {
            return Err(ToolError::Usage(format!(
                "topic {} has no partition {partition} (it has {})",
                args.topic,
                layout.partitions.len()
            )));
        }
    }
    let mut producer = Producer::new(client, &args, layout);
    let mut input = BufReader::with_capacity(STDIN_BUFFER_BYTES, io::stdin().lock());
    let separator = args.key_separator.as_deref().map(str::as_bytes);
    let mut pending = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = input
            .read_until(b'\n', &mut line)
            .map_err(|source| ToolError::Io {
                peer: "stdin".into(),
                source,
            })?;
        if read > 0 {
            pending.push(split_line(trim_line_end(&line), separator));
        }
        let send_now =
            read == 0 || pending.len() >= args.batch_size as usize || input.buffer().is_empty();
        if send_now && !pending.is_empty() {
            producer.send(std::mem::take(&mut pending))?;
        }
        if read == 0 {
            break;
        }
    }
    producer.finish()
}

/// Sends batches and keeps the tally the summary reports.
struct Producer {
    client: KafkaClient,
    topic: String,
    layout: TopicLayout,
    partition: Option<i32>,
    headers: Vec<Header>,
    acks: i16,
    codec: Codec,
    /// Unkeyed records of one send go to this partition; it moves on each send.
    next_unkeyed: usize,
    /// acks=0 streams by leader: nothing is read from them until `finish`.
    unacknowledged: HashMap<i32, TcpStream>,
    written: BTreeMap<i32, u64>,
    failed_records: u64,
    first_error: Option<i16>,
}

impl Producer {
    fn new(client: KafkaClient, args: &ProduceArgs, layout: TopicLayout) -> Producer {
        Producer {
            client,
            topic: args.topic.clone(),
            layout,
            partition: args.partition,
            headers: args.headers.clone(),
            acks: args.acks,
            codec: args.compression,
            next_unkeyed: 0,
            unacknowledged: HashMap::new(),
            written: BTreeMap::new(),
            failed_records: 0,
            first_error: None,
        }
    }

    fn partition_of(&self, record: &OutgoingRecord, unkeyed: i32) -> i32 {
        match (self.partition, &record.key) {
            (Some(partition), _) => partition,
            (None, Some(key)) => {
                let index = partition_for_key(key, self.layout.partitions.len() as i32);
                self.layout.partitions[index as usize].partition
            }
            (None, None) => unkeyed,
        }
    }

    /// Partitions `records`, then one Produce request per leader.
    fn send(&mut self, records: Vec<OutgoingRecord>) -> Result<(), ToolError> {
        let count = self.layout.partitions.len();
        let unkeyed = self.layout.partitions[self.next_unkeyed % count].partition;
        self.next_unkeyed = self.next_unkeyed.wrapping_add(1);
        let mut by_partition: BTreeMap<i32, Vec<OutgoingRecord>> = BTreeMap::new();
        for record in records {
            let partition = self.partition_of(&record, unkeyed);
            by_partition.entry(partition).or_default().push(record);
        }
        let timestamp_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis() as i64);
        let mut by_leader: BTreeMap<i32, Vec<(i32, usize, Bytes)>> = BTreeMap::new();
        for (partition, records) in by_partition {
            let batch = encode_batch(&records, &self.headers, timestamp_ms, self.codec)
                .map_err(|error| ToolError::Protocol(error.to_string()))?;
            let leader = self
                .layout
                .partitions
                .iter()
                .find(|p| p.partition == partition)
                .map_or(-1, |p| p.leader);
            by_leader
                .entry(leader)
                .or_default()
                .push((partition, records.len(), batch));
        }
        for (leader, batches) in by_leader {
            self.send_to_leader(leader, batches)?;
        }
        Ok(())
    }

    fn send_to_leader(
        &mut self,
        leader: i32,
        batches: Vec<(i32, usize, Bytes)>,
    ) -> Result<(), ToolError> {
        let node = Node::Broker(leader);
        let version = self
            .client
            .version(&node, ApiKey::Produce, PRODUCE_VERSION_MAX)?;
        let counts: HashMap<i32, usize> = batches.iter().map(|(p, n, _)| (*p, *n)).collect();
        let partition_data = batches
            .into_iter()
            .map(|(partition, _, batch)| {
                PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(batch))
            })
            .collect();
        let request = ProduceRequest::default()
            .with_acks(self.acks)
            .with_timeout_ms(PRODUCE_TIMEOUT_MS)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(self.topic.clone())))
                .with_partition_data(partition_data)]);
        if self.acks == 0 {
            self.send_unacknowledged(leader, version, &request)?;
            for (partition, count) in counts {
                *self.written.entry(partition).or_default() += count as u64;
            }
            return Ok(());
        }
        let response = self.client.send(&node, version, &request)?;
        for answered in response
            .responses
            .iter()
            .flat_map(|t| t.partition_responses.iter())
        {
            let count = counts.get(&answered.index).copied().unwrap_or(0) as u64;
            if answered.error_code == 0 {
                *self.written.entry(answered.index).or_default() += count;
                continue;
            }
            let error = ToolError::kafka(
                format!(
                    "topic {} partition {}: {count} records not written",
                    self.topic, answered.index
                ),
                answered.error_code,
            );
            match &answered.error_message {
                Some(message) => eprintln!("corelog produce: {error}: {message}"),
                None => eprintln!("corelog produce: {error}"),
            }
            self.failed_records += count;
            self.first_error.get_or_insert(answered.error_code);
        }
        Ok(())
    }

    /// acks=0: the broker sends no answer, which `KafkaClient::send` would
    /// wait for, so the frame goes over a stream of our own.
    fn send_unacknowledged(
        &mut self,
        leader: i32,
        version: i16,
        request: &ProduceRequest,
    ) -> Result<(), ToolError> {
        let address = self.layout.brokers.get(&leader).cloned().ok_or_else(|| {
            ToolError::Protocol(format!("leader {leader} is not in the cluster metadata"))
        })?;
        let io_error = |source| ToolError::Io {
            peer: address.clone(),
            source,
        };
        let frame = encode_request(
            ApiKey::Produce,
            version,
            0,
            &StrBytes::from_static_str(CLIENT_ID),
            request,
        )?;
        let stream = match self.unacknowledged.entry(leader) {
            Entry::Occupied(open) => open.into_mut(),
            Entry::Vacant(absent) => {
                let stream = TcpStream::connect(&address).map_err(io_error)?;
                stream.set_nodelay(true).map_err(io_error)?;
                stream
                    .set_read_timeout(Some(UNACKNOWLEDGED_DRAIN_TIMEOUT))
                    .map_err(io_error)?;
                absent.insert(stream)
            }
        };
        stream.write_all(&frame).map_err(io_error)
    }

    /// acks=0 streams: an ApiVersions round trip after the last Produce.
    /// Brokers answer a connection's requests in order (corelog after the
    /// writes before it), so the answer means every frame was taken.
    fn drain_unacknowledged(&mut self) -> Result<(), ToolError> {
        const CORRELATION_ID: i32 = 1;
        for (leader, mut stream) in self.unacknowledged.drain() {
            let io_error = |source| ToolError::Io {
                peer: format!("broker {leader}"),
                source,
            };
            let frame = encode_request(
                ApiKey::ApiVersions,
                0,
                CORRELATION_ID,
                &StrBytes::from_static_str(CLIENT_ID),
                &ApiVersionsRequest::default(),
            )?;
            stream.write_all(&frame).map_err(io_error)?;
            let mut size = [0u8; 4];
            stream.read_exact(&mut size).map_err(io_error)?;
            let size = usize::try_from(i32::from_be_bytes(size))
                .ok()
                .filter(|size| *size < 1 << 20)
                .ok_or_else(|| ToolError::Protocol("bad ApiVersions frame after acks=0".into()))?;
            let mut body = vec![0u8; size];
            stream.read_exact(&mut body).map_err(io_error)?;
            let _: ApiVersionsResponse = decode_response(
                ApiKey::ApiVersions,
                0,
                CORRELATION_ID,
                &mut Bytes::from(body),
            )?;
        }
        Ok(())
    }

    /// Prints the summary; an error if any record was not written.
    fn finish(mut self) -> Result<(), ToolError> {
        self.drain_unacknowledged()?;
        let total: u64 = self.written.values().sum();
        let per_partition: Vec<String> = self
            .written
            .iter()
            .map(|(partition, count)| format!("{partition}: {count}"))
            .collect();
        let verb = if self.acks == 0 {
            "sent (acks=0)"
        } else {
            "produced"
        };
        eprintln!(
            "{verb} {total} records to topic {} in {} partitions ({})",
            self.topic,
            self.written.len(),
            per_partition.join(", ")
        );
        match self.first_error {
            None => Ok(()),
            Some(code) => Err(ToolError::kafka(
                format!(
                    "{} of {} records to topic {} were not written",
                    self.failed_records,
                    self.failed_records + total,
                    self.topic
                ),
                code,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_at_the_first_separator_only() {
        let record = split_line(b"k1::v::1", Some(b"::"));
        assert_eq!(record.key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(&record.value[..], b"v::1");
        let unkeyed = split_line(b"no separator", Some(b"::"));
        assert_eq!(unkeyed.key, None);
        assert_eq!(&unkeyed.value[..], b"no separator");
        let empty_key = split_line(b":v", Some(b":"));
        assert_eq!(empty_key.key.as_deref(), Some(&b""[..]));
        assert_eq!(split_line(b"a:b", None).key, None);
    }

    #[test]
    fn line_terminators_are_removed() {
        assert_eq!(trim_line_end(b"abc\n"), b"abc");
        assert_eq!(trim_line_end(b"abc\r\n"), b"abc");
        assert_eq!(trim_line_end(b"abc"), b"abc");
        assert_eq!(trim_line_end(b"\n"), b"");
    }

    #[test]
    fn headers_and_acks_parse() {
        let header = parse_header("trace=a=b").expect("parses");
        assert_eq!(header.key, "trace");
        assert_eq!(header.value.as_deref(), Some(&b"a=b"[..]));
        assert!(parse_header("novalue").is_err());
        assert!(parse_header("=v").is_err());
        assert_eq!(parse_acks("all"), Ok(-1));
        assert_eq!(parse_acks("0"), Ok(0));
        assert!(parse_acks("2").is_err());
    }
}
