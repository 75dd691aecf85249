//! Bounded memory under slow and stuck consumers: connections that pipeline Fetch requests
//! for a large partition with `max_bytes` 50 MB and never read a byte of the answers. Each
//! such connection holds at most one encoded response (the broker answers in order and
//! builds the next one only when the previous left), every response is at most 8 MiB, and
//! once the shard's responses waiting for sockets pass its 256 MiB budget every new fetch
//! gets less instead of waiting (`src/server/response_memory.rs`). So the broker's RSS stays
//! bounded, another consumer keeps being served meanwhile, and the memory is given back
//! once the stuck connections leave.

// Only `send`: the answers are never read.
#[allow(dead_code)]
#[path = "common/codec.rs"]
mod codec;
mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use common::wire::connect;
use common::{
    assign_consumer, consume_from, create_topic, producer, record, send,
    wait_for_successful_deliveries, Broker,
};

const CLIENT_ID: &str = "corelog-slow-consumer-test";
const TOPIC: &str = "slow-consumers";
/// The partition's size: 640 records of 100 KB.
const RECORDS: usize = 640;
const VALUE_BYTES: usize = 100_000;
const STUCK_CONNECTIONS: usize = 50;
const FETCHES_PER_CONNECTION: usize = 100;
/// The bound the issue sets for this attack.
const RSS_BOUND_BYTES: u64 = 1 << 30;

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// A Fetch v12 of the whole partition from offset 0, asking for 50 MB.
fn greedy_fetch() -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(50_000_000)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(50_000_000)])])
}

#[test]
fn stuck_consumers_cannot_exhaust_memory_and_others_are_served_meanwhile() {
    let broker = Broker::start(1, &[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, TOPIC, 1);
    let writer = producer(&bootstrap, &[]);
    let value = vec![7u8; VALUE_BYTES];
    for id in 0..RECORDS {
        send(&writer, record(TOPIC, id, b"k", &value).partition(0));
    }
    wait_for_successful_deliveries(&writer, RECORDS, Duration::from_secs(120));
    let before = rss_bytes(broker.pid());

    // The attack: every connection pipelines its fetches and never reads.
    let request = greedy_fetch();
    let stuck: Vec<TcpStream> = (0..STUCK_CONNECTIONS)
        .map(|_| {
            let mut stream = connect(&bootstrap);
            for _ in 0..FETCHES_PER_CONNECTION {
                codec::send(&mut stream, 12, &request);
            }
            stream
        })
        .collect();

    // Meanwhile another consumer reads the whole partition, and RSS is watched.
    let mut peak = 0;
    let reader = assign_consumer(&bootstrap, &[]);
    common::assign_from_beginning(&reader, TOPIC, 1);
    let started = Instant::now();
    let mut read = 0;
    while started.elapsed() < Duration::from_secs(60) && read < RECORDS {
        read += consume_from(&reader, 1, RECORDS - read, Duration::from_millis(500)).len();
        peak = peak.max(rss_bytes(broker.pid()));
    }
    assert_eq!(
        read, RECORDS,
        "the other consumer read the partition meanwhile"
    );
    let watch_until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < watch_until {
        peak = peak.max(rss_bytes(broker.pid()));
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "RSS before the attack {} MiB, peak during it {} MiB; the other consumer read {} MB in {:?}",
        before >> 20,
        peak >> 20,
        RECORDS * VALUE_BYTES / 1_000_000,
        started.elapsed()
    );
    assert!(peak < RSS_BOUND_BYTES, "peak RSS {} MiB", peak >> 20);

    // Once they leave, the memory comes back.
    drop(stuck);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut after = rss_bytes(broker.pid());
    while Instant::now() < deadline && after > before + (128 << 20) {
        std::thread::sleep(Duration::from_millis(200));
        after = rss_bytes(broker.pid());
    }
    eprintln!("RSS after the stuck connections left: {} MiB", after >> 20);
    assert!(
        after <= before + (128 << 20),
        "RSS {} MiB after the attack, {} MiB before",
        after >> 20,
        before >> 20
    );
}
