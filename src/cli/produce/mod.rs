//! `corelog produce TOPIC`: Kafka's console producer. Each stdin line is one
//! record (an optional key before `--key-separator`, the same `--header`s on
//! every record), partitioned as Kafka's default partitioner does and sent in
//! RecordBatch v2 Produce requests to each partition's leader.
//!
//! Runs on the CLI's main thread with the blocking client. Lines are sent as
//! soon as stdin has nothing more buffered (so typing a line sends it) or
//! when `--batch-size` records are waiting (so a pipe is sent in batches).
//!
//! This file owns the flags, reading stdin into records and the producer's
//! state.
//!
//! Inside:
//! - `batching`: partitioning records, one RecordBatch per partition and one
//!   Produce request per leader, the per-partition tally and the summary
//! - `acks0`: `--acks 0`, where the broker never answers: Produce frames on
//!   streams of our own, drained with an ApiVersions round trip at the end

mod acks0;
mod batching;

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead, BufReader};
use std::net::TcpStream;

use bytes::Bytes;
use clap::Args;

use crate::cli::common::{ConnectArgs, TopicArg};
use crate::cli::console::{self, TopicLayout};
use crate::cli::kafka::{KafkaClient, ToolError};
use crate::cli::records::{Codec, Header, OutgoingRecord};

/// Read buffer for stdin: large enough that a pipe is read in big chunks.
const STDIN_BUFFER_BYTES: usize = 64 << 10;
const CLIENT_ID: &str = "corelog-produce";

#[derive(Debug, Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// The topic (positional, or `--topic`).
    #[command(flatten)]
    pub topic: TopicArg,
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
    let layout = console::topic_partitions(&mut client, args.topic.name(), true)?;
    if let Some(partition) = args.partition {
        if !layout.partitions.iter().any(|p| p.partition == partition) {
            return Err(ToolError::Usage(format!(
                "topic {} has no partition {partition} (it has {})",
                args.topic.name(),
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
            topic: args.topic.name().to_string(),
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
