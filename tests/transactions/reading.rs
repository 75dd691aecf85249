//! Reading what transactions left in the log: assign-only consumers with an explicit
//! `isolation.level` that keep their position across phases of a test, record values by
//! partition, and ListOffsets with an isolation level (read_committed "latest" is the last
//! stable offset). Every wait is bounded.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};

use crate::common::{
    assign_consumer, assign_from_beginning, consume_from, Consumed, TestConsumer, ADMIN_TIMEOUT,
};
use crate::producing::Outgoing;

/// Bound on reading what a test expects to be readable.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A consumer's `isolation.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    ReadCommitted,
    ReadUncommitted,
}

impl Isolation {
    fn config_value(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "read_committed",
            Isolation::ReadUncommitted => "read_uncommitted",
        }
    }
}

/// An assign-only consumer over partitions `0..partitions` of one topic, from the
/// beginning, with a fixed isolation level; keeps its position between reads.
pub struct Reader {
    consumer: TestConsumer,
    partitions: i32,
}

impl Reader {
    pub fn new(bootstrap: &str, topic: &str, partitions: i32, isolation: Isolation) -> Reader {
        let consumer = assign_consumer(bootstrap, &[("isolation.level", isolation.config_value())]);
        assign_from_beginning(&consumer, topic, partitions);
        Reader {
            consumer,
            partitions,
        }
    }

    /// A reader of partition 0 of a one-partition `topic` from `offset`, with `extra`
    /// consumer settings (fetch sizes).
    pub fn from_offset(
        bootstrap: &str,
        topic: &str,
        isolation: Isolation,
        offset: i64,
        extra: &[(&str, &str)],
    ) -> Reader {
        let mut settings = vec![("isolation.level", isolation.config_value())];
        settings.extend_from_slice(extra);
        let consumer = assign_consumer(bootstrap, &settings);
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(topic, 0, Offset::Offset(offset))
            .expect("add partition to assignment");
        consumer.assign(&assignment).expect("assign partition");
        Reader {
            consumer,
            partitions: 1,
        }
    }

    /// Reads until at least `expected` more records arrived and every partition reported
    /// its end after its last record (so extra records are seen too), or [`READ_TIMEOUT`].
    pub fn read(&self, expected: usize) -> Vec<Consumed> {
        consume_from(&self.consumer, self.partitions, expected, READ_TIMEOUT)
    }

    /// Everything that arrives within `duration` (for "nothing is readable yet").
    pub fn read_for(&self, duration: Duration) -> Vec<Consumed> {
        let deadline = Instant::now() + duration;
        let mut records = Vec::new();
        while Instant::now() < deadline {
            if let Some(Ok(message)) = self.consumer.poll(Duration::from_millis(50)) {
                records.push(Consumed::from_message(&message));
            }
        }
        records
    }
}

/// Reads all of `topic` from the beginning with `isolation`; see [`Reader::read`].
pub fn read_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    isolation: Isolation,
    expected: usize,
) -> Vec<Consumed> {
    Reader::new(bootstrap, topic, partitions, isolation).read(expected)
}

/// The value of a record the tests produced (key and value are the same text).
pub fn value_of(consumed: &Consumed) -> String {
    String::from_utf8_lossy(consumed.value.as_deref().unwrap_or_default()).into_owned()
}

/// Partition -> values in the order read.
pub fn values_by_partition(records: &[Consumed]) -> BTreeMap<i32, Vec<String>> {
    let mut by_partition: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for consumed in records {
        by_partition
            .entry(consumed.partition)
            .or_default()
            .push(value_of(consumed));
    }
    by_partition
}

/// Partition -> values in order, for messages the test sent to one topic.
pub fn expected_by_partition(messages: &[&[Outgoing]]) -> BTreeMap<i32, Vec<String>> {
    let mut by_partition: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for message in messages.iter().flat_map(|round| round.iter()) {
        by_partition
            .entry(message.partition)
            .or_default()
            .push(message.value.clone());
    }
    by_partition
}

/// `(low, high)` from ListOffsets earliest/latest sent with `isolation` (librdkafka sends
/// its consumer's isolation level; read_committed "latest" is the last stable offset).
pub fn watermarks_with(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    isolation: Isolation,
) -> (i64, i64) {
    let consumer = assign_consumer(bootstrap, &[("isolation.level", isolation.config_value())]);
    consumer
        .fetch_watermarks(topic, partition, ADMIN_TIMEOUT)
        .unwrap_or_else(|error| panic!("ListOffsets for {topic}/{partition} failed: {error}"))
}
