//! What the tests learn about groups from outside them: committed offsets through a
//! consumer that never joins (OffsetFetch/OffsetCommit), a watch that fails the moment a
//! committed offset goes backwards, and ListGroups/DescribeGroups with the consumer
//! protocol's subscription and assignment bytes decoded.

use std::collections::{BTreeMap, BTreeSet};
use std::thread;
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::common::wire::Reader;
use crate::common::{
    group_consumer_config, metadata_consumer, watermarks, TestConsumer, TestContext, ADMIN_TIMEOUT,
};

/// A consumer that carries `group` as its group.id but never joins: OffsetFetch and
/// OffsetCommit from outside the group, like an admin tool.
pub struct Outsider {
    consumer: TestConsumer,
    topic: String,
    partitions: i32,
}

impl Outsider {
    pub fn new(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> Outsider {
        let consumer = group_consumer_config(bootstrap, group, "corelog-test-outsider")
            .create_with_context(TestContext)
            .expect("create outsider consumer");
        Outsider {
            consumer,
            topic: topic.to_string(),
            partitions,
        }
    }

    /// Partition -> committed offset (`None` where nothing is committed). Retries
    /// transient failures (coordinator loading or moving) until [`ADMIN_TIMEOUT`].
    pub fn committed(&self) -> BTreeMap<i32, Option<i64>> {
        let mut request = TopicPartitionList::new();
        for partition in 0..self.partitions {
            request.add_partition(&self.topic, partition);
        }
        let mut last_problem = String::new();
        let deadline = Instant::now() + ADMIN_TIMEOUT;
        while Instant::now() < deadline {
            match self
                .consumer
                .committed_offsets(request.clone(), Duration::from_secs(5))
            {
                Ok(answer) => match committed_by_partition(&answer) {
                    Ok(committed) => return committed,
                    Err(problem) => last_problem = problem,
                },
                Err(error) => last_problem = error.to_string(),
            }
            thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "OffsetFetch for {} never succeeded: {last_problem}",
            self.topic
        );
    }

    /// OffsetCommit of `offsets` with no member id or generation (allowed while the group
    /// has no members).
    pub fn commit(&self, offsets: &BTreeMap<i32, i64>) {
        let mut request = TopicPartitionList::new();
        for (partition, offset) in offsets {
            request
                .add_partition_offset(&self.topic, *partition, Offset::Offset(*offset))
                .expect("add partition offset");
        }
        self.consumer
            .commit(&request, CommitMode::Sync)
            .unwrap_or_else(|error| panic!("commit from outside the group failed: {error}"));
    }
}

fn committed_by_partition(
    answer: &TopicPartitionList,
) -> Result<BTreeMap<i32, Option<i64>>, String> {
    let mut committed = BTreeMap::new();
    for element in answer.elements() {
        if let Err(error) = element.error() {
            return Err(format!("partition {}: {error}", element.partition()));
        }
        let offset = match element.offset() {
            Offset::Offset(offset) => Some(offset),
            Offset::Invalid => None,
            other => return Err(format!("partition {}: {other:?}", element.partition())),
        };
        committed.insert(element.partition(), offset);
    }
    Ok(committed)
}

/// What a fresh OffsetFetch should answer when `offsets` are committed: every partition
/// `0..partitions`, `None` where nothing is.
pub fn committed_view(offsets: &BTreeMap<i32, i64>, partitions: i32) -> BTreeMap<i32, Option<i64>> {
    (0..partitions)
        .map(|partition| (partition, offsets.get(&partition).copied()))
        .collect()
}

pub fn committed_offsets(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions: i32,
) -> BTreeMap<i32, Option<i64>> {
    Outsider::new(bootstrap, group, topic, partitions).committed()
}

/// Partition -> high watermark.
pub fn end_offsets(bootstrap: &str, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
    (0..partitions)
        .map(|partition| (partition, watermarks(bootstrap, topic, partition).1))
        .collect()
}

/// One group as ListGroups + DescribeGroups show it.
#[derive(Debug)]
pub struct DescribedGroup {
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<DescribedMember>,
}

#[derive(Debug)]
pub struct DescribedMember {
    pub member_id: String,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topics: Vec<String>,
    pub assignment: BTreeMap<String, BTreeSet<i32>>,
}

/// librdkafka's `rd_kafka_list_groups`: ListGroups, then DescribeGroups of what it lists
/// (only `group`, if given). Group name -> description.
pub fn list_groups(bootstrap: &str, group: Option<&str>) -> BTreeMap<String, DescribedGroup> {
    let consumer = metadata_consumer(bootstrap);
    let list = consumer
        .fetch_group_list(group, ADMIN_TIMEOUT)
        .unwrap_or_else(|error| panic!("ListGroups/DescribeGroups failed: {error}"));
    list.groups()
        .iter()
        .map(|info| {
            let members = info
                .members()
                .iter()
                .map(|member| DescribedMember {
                    member_id: member.id().to_string(),
                    client_id: member.client_id().to_string(),
                    client_host: member.client_host().to_string(),
                    subscribed_topics: member
                        .metadata()
                        .filter(|bytes| !bytes.is_empty())
                        .map(decode_subscription_topics)
                        .unwrap_or_default(),
                    assignment: member
                        .assignment()
                        .filter(|bytes| !bytes.is_empty())
                        .map(decode_assignment)
                        .unwrap_or_default(),
                })
                .collect();
            let described = DescribedGroup {
                state: info.state().to_string(),
                protocol_type: info.protocol_type().to_string(),
                protocol: info.protocol().to_string(),
                members,
            };
            (info.name().to_string(), described)
        })
        .collect()
}

pub fn describe_group(bootstrap: &str, group: &str) -> Option<DescribedGroup> {
    list_groups(bootstrap, Some(group)).remove(group)
}

/// A (non-compact) protocol string: i16 length, then bytes.
fn read_string(reader: &mut Reader<'_>) -> String {
    let length = reader.i16();
    assert!(length >= 0, "null string in consumer protocol data");
    let bytes: Vec<u8> = (0..length).map(|_| reader.i8() as u8).collect();
    String::from_utf8(bytes).expect("UTF-8 topic name")
}

/// Topics of a ConsumerProtocolSubscription (version, topics, then fields we skip).
fn decode_subscription_topics(bytes: &[u8]) -> Vec<String> {
    let mut reader = Reader::new(bytes);
    let _version = reader.i16();
    let count = reader.i32();
    (0..count).map(|_| read_string(&mut reader)).collect()
}

/// Topic -> partitions of a ConsumerProtocolAssignment (version, assigned partitions,
/// then user data we skip).
fn decode_assignment(bytes: &[u8]) -> BTreeMap<String, BTreeSet<i32>> {
    let mut reader = Reader::new(bytes);
    let _version = reader.i16();
    let topics = reader.i32();
    (0..topics)
        .map(|_| {
            let topic = read_string(&mut reader);
            let count = reader.i32();
            let partitions = (0..count).map(|_| reader.i32()).collect();
            (topic, partitions)
        })
        .collect()
}

/// Asks the broker for committed offsets now and then, and fails the moment one moves
/// backwards or disappears.
pub struct CommittedOffsetsWatch {
    outsider: Outsider,
    pub last: BTreeMap<i32, i64>,
    next_check: Instant,
    pub checks: usize,
}

impl CommittedOffsetsWatch {
    const INTERVAL: Duration = Duration::from_millis(300);

    pub fn new(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> Self {
        CommittedOffsetsWatch {
            outsider: Outsider::new(bootstrap, group, topic, partitions),
            last: BTreeMap::new(),
            next_check: Instant::now(),
            checks: 0,
        }
    }

    pub fn check_if_due(&mut self) {
        if Instant::now() < self.next_check {
            return;
        }
        for (partition, offset) in self.outsider.committed() {
            match (self.last.get(&partition).copied(), offset) {
                (Some(previous), None) => {
                    panic!("partition {partition}: committed offset {previous} disappeared")
                }
                (Some(previous), Some(now)) => assert!(
                    now >= previous,
                    "partition {partition}: committed offset went back from {previous} to {now}"
                ),
                _ => {}
            }
            if let Some(now) = offset {
                self.last.insert(partition, now);
            }
        }
        self.checks += 1;
        self.next_check = Instant::now() + Self::INTERVAL;
    }
}
