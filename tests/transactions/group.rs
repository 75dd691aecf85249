//! A read_committed group member for consume-transform-produce, the offsets a
//! transaction commits for it, and OffsetFetch from outside the group. Every wait is
//! bounded.

use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::Message as _;
use rdkafka::{Offset, TopicPartitionList};

use crate::common::{group_consumer_config, Consumed, TestConsumer, TestContext, ADMIN_TIMEOUT};

/// Bound on a group member receiving its assignment and reading what it expects.
const GROUP_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A subscribed read_committed consumer in a group that never commits by itself: its
/// progress is committed only through the transactional producer.
pub struct GroupMember {
    pub consumer: BaseConsumer<TestContext>,
    partitions: i32,
}

impl GroupMember {
    pub fn join(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> GroupMember {
        let mut config = group_consumer_config(bootstrap, group, "corelog-test-txn-member");
        config
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "true")
            .set("enable.auto.offset.store", "false")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "1000");
        let consumer: BaseConsumer<TestContext> = config
            .create_with_context(TestContext)
            .expect("create group member");
        consumer.subscribe(&[topic]).expect("subscribe");
        GroupMember {
            consumer,
            partitions,
        }
    }

    /// Polls until exactly `expected` more records arrived and every partition then
    /// reported its end; panics with what it got after the bound.
    pub fn read(&self, expected: usize) -> Vec<Consumed> {
        let deadline = Instant::now() + GROUP_READ_TIMEOUT;
        let mut records = Vec::new();
        let mut at_end = vec![false; self.partitions as usize];
        let mut errors = Vec::new();
        while !(records.len() >= expected && at_end.iter().all(|end| *end)) {
            assert!(
                Instant::now() < deadline,
                "group member read {} of {expected} records within {GROUP_READ_TIMEOUT:?}; \
                 partitions at their end: {at_end:?}; errors: {errors:?}",
                records.len()
            );
            match self.consumer.poll(Duration::from_millis(50)) {
                None => {}
                Some(Ok(message)) => {
                    at_end[message.partition() as usize] = false;
                    records.push(Consumed::from_message(&message));
                }
                Some(Err(KafkaError::PartitionEOF(partition))) => {
                    if let Some(end) = at_end.get_mut(partition as usize) {
                        *end = true;
                    }
                }
                Some(Err(error)) => errors.push(error.to_string()),
            }
        }
        records
    }
}

/// The offsets a commit of `records` stores: per partition, the offset after the last one
/// read.
pub fn next_offsets(topic: &str, records: &[Consumed]) -> TopicPartitionList {
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    for consumed in records {
        let entry = next.entry(consumed.partition).or_insert(0);
        *entry = (*entry).max(consumed.offset + 1);
    }
    let mut offsets = TopicPartitionList::new();
    for (partition, offset) in next {
        offsets
            .add_partition_offset(topic, partition, Offset::Offset(offset))
            .expect("add partition offset");
    }
    offsets
}

/// Partition -> committed offset of `group` (`None` where nothing is committed), through
/// OffsetFetch from a consumer that never joins. librdkafka asks for stable offsets
/// (require_stable) and retries while a transactional commit is pending; transient errors
/// are retried here until [`ADMIN_TIMEOUT`].
pub fn committed_offsets(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions: i32,
) -> BTreeMap<i32, Option<i64>> {
    let consumer: TestConsumer = group_consumer_config(bootstrap, group, "corelog-test-outsider")
        .create_with_context(TestContext)
        .expect("create outsider consumer");
    let mut request = TopicPartitionList::new();
    for partition in 0..partitions {
        request.add_partition(topic, partition);
    }
    let deadline = Instant::now() + ADMIN_TIMEOUT;
    let mut last_problem = String::new();
    while Instant::now() < deadline {
        match consumer.committed_offsets(request.clone(), Duration::from_secs(5)) {
            Ok(answer) => match committed_by_partition(&answer) {
                Ok(committed) => return committed,
                Err(problem) => last_problem = problem,
            },
            Err(error) => last_problem = error.to_string(),
        }
        thread::sleep(Duration::from_millis(100));
    }
    panic!("OffsetFetch of group {group} for {topic} never succeeded: {last_problem}");
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
