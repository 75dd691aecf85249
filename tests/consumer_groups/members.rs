//! Members of a group as the tests drive them: a subscribed rdkafka `BaseConsumer` whose
//! context records every rebalance, polled round-robin from the test thread (librdkafka
//! hands out rebalances, and so assignments, only from `poll`), and checks on how the
//! partitions are split between members.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaResult;
use rdkafka::{ClientContext, TopicPartitionList};

use crate::common::{group_consumer_config, Consumed, TestContext};

/// Bound on a group settling after members join or leave: a few JoinGroup/SyncGroup
/// rounds paced by 1 s heartbeats, on a machine that runs other brokers too.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one member's `poll` may block in a round-robin over several members.
pub const POLL_SLICE: Duration = Duration::from_millis(20);
/// Consumer errors kept per member for failure messages.
const ERRORS_KEPT: usize = 20;

/// What librdkafka told one member about its partitions, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebalanceEvent {
    Assigned(BTreeSet<i32>),
    Revoked(BTreeSet<i32>),
    Failed(String),
}

/// Consumer context that records rebalances and failed commits; logs like the harness.
#[derive(Default)]
pub struct GroupContext {
    rebalances: Mutex<Vec<RebalanceEvent>>,
    errors: Mutex<Vec<String>>,
}

impl GroupContext {
    fn note_error(&self, error: String) {
        let mut errors = self
            .errors
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if errors.len() < ERRORS_KEPT {
            errors.push(error);
        }
    }
}

impl ClientContext for GroupContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        TestContext.log(level, facility, message);
    }
}

impl ConsumerContext for GroupContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let event = match rebalance {
            Rebalance::Assign(partitions) => RebalanceEvent::Assigned(partition_set(partitions)),
            Rebalance::Revoke(partitions) => RebalanceEvent::Revoked(partition_set(partitions)),
            Rebalance::Error(error) => RebalanceEvent::Failed(error.to_string()),
        };
        self.rebalances
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .push(event);
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(error) = result {
            self.note_error(format!("commit failed: {error}"));
        }
    }
}

/// Partition numbers in a list that names one topic.
fn partition_set(partitions: &TopicPartitionList) -> BTreeSet<i32> {
    partitions
        .elements()
        .iter()
        .map(|element| element.partition())
        .collect()
}

/// One subscribed consumer and everything it has read.
pub struct Member {
    pub name: String,
    pub consumer: BaseConsumer<GroupContext>,
    pub records: Vec<Consumed>,
}

impl Member {
    /// Subscribes `name` (also its client.id) to `topic` in `group`: 6 s session, 1 s
    /// heartbeats, no auto-commit, offsets stored for commit only once recorded; `extra`
    /// settings win.
    pub fn join(
        bootstrap: &str,
        group: &str,
        name: &str,
        topic: &str,
        extra: &[(&str, &str)],
    ) -> Self {
        let mut config = group_consumer_config(bootstrap, group, name);
        config
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "1000")
            .set("enable.auto.offset.store", "false");
        for (key, value) in extra {
            config.set(*key, *value);
        }
        let consumer: BaseConsumer<GroupContext> = config
            .create_with_context(GroupContext::default())
            .expect("create group consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        Member {
            name: name.to_string(),
            consumer,
            records: Vec::new(),
        }
    }

    pub fn poll(&mut self, timeout: Duration) {
        match self.consumer.poll(timeout) {
            None => {}
            Some(Ok(message)) => {
                // Stored for the next commit only once recorded: rdkafka's drop polls while
                // closing and throws away what it gets, which must not count as read.
                if let Err(error) = self.consumer.store_offset_from_message(&message) {
                    self.consumer
                        .context()
                        .note_error(format!("store offset: {error}"));
                }
                self.records.push(Consumed::from_message(&message));
            }
            Some(Err(error)) => self.consumer.context().note_error(error.to_string()),
        }
    }

    /// The partitions librdkafka currently has assigned to this member.
    pub fn partitions(&self) -> BTreeSet<i32> {
        partition_set(&self.consumer.assignment().expect("read assignment"))
    }

    pub fn rebalances(&self) -> Vec<RebalanceEvent> {
        self.consumer
            .context()
            .rebalances
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }

    pub fn describe(&self) -> String {
        let errors = self
            .consumer
            .context()
            .errors
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone();
        format!(
            "{}: assigned {:?}, {} records read, rebalances {:?}, errors {:?}",
            self.name,
            self.partitions(),
            self.records.len(),
            self.rebalances(),
            errors
        )
    }
}

pub fn assignments(members: &[Member]) -> Vec<BTreeSet<i32>> {
    members.iter().map(Member::partitions).collect()
}

/// Polls every member round-robin until `done` answers `Ok`; panics after `timeout` with
/// `what`, the last progress `done` reported, and each member's state.
pub fn settle(
    members: &mut [Member],
    timeout: Duration,
    what: &str,
    mut done: impl FnMut(&[Member]) -> Result<(), String>,
) {
    let deadline = Instant::now() + timeout;
    loop {
        for member in members.iter_mut() {
            member.poll(POLL_SLICE);
        }
        match done(members) {
            Ok(()) => return,
            Err(progress) => {
                if Instant::now() >= deadline {
                    let states: Vec<String> = members.iter().map(Member::describe).collect();
                    panic!(
                        "timed out after {timeout:?}: {what}; {progress}\n{}",
                        states.join("\n")
                    );
                }
            }
        }
    }
}

/// Polls every member round-robin for `duration`.
pub fn poll_for(members: &mut [Member], duration: Duration) {
    let until = Instant::now() + duration;
    while Instant::now() < until {
        for member in members.iter_mut() {
            member.poll(POLL_SLICE);
        }
    }
}

/// Why `assignments` are not a split of partitions `0..partitions` with these sizes.
pub fn split_problem(
    assignments: &[BTreeSet<i32>],
    partitions: i32,
    sizes: &[usize],
) -> Result<(), String> {
    let all: BTreeSet<i32> = (0..partitions).collect();
    let union: BTreeSet<i32> = assignments.iter().flatten().copied().collect();
    let total: usize = assignments.iter().map(BTreeSet::len).sum();
    let actual_sizes: Vec<usize> = assignments.iter().map(BTreeSet::len).collect();
    if total != union.len() {
        Err(format!("assignments overlap: {assignments:?}"))
    } else if union != all {
        Err(format!("assignments {assignments:?} do not cover {all:?}"))
    } else if actual_sizes != sizes {
        Err(format!("sizes {actual_sizes:?}, want {sizes:?}"))
    } else {
        Ok(())
    }
}

/// Polls until the members own disjoint sets of sizes `sizes` covering `0..partitions`.
pub fn wait_for_split(
    members: &mut [Member],
    partitions: i32,
    sizes: &[usize],
) -> Vec<BTreeSet<i32>> {
    let what = format!("members split {partitions} partitions as {sizes:?}");
    settle(members, SETTLE_TIMEOUT, &what, |members| {
        split_problem(&assignments(members), partitions, sizes)
    });
    assignments(members)
}

/// Both members hold three of six partitions, disjoint, together all six.
pub fn assert_even_split_of_six(assignments: &[BTreeSet<i32>]) {
    assert_eq!(assignments.len(), 2);
    assert!(
        assignments[0].is_disjoint(&assignments[1]),
        "overlapping assignments {assignments:?}"
    );
    let union: BTreeSet<i32> = assignments.iter().flatten().copied().collect();
    assert_eq!(union, (0..6).collect::<BTreeSet<i32>>(), "{assignments:?}");
    assert_eq!(assignments[0].len(), 3, "{assignments:?}");
    assert_eq!(assignments[1].len(), 3, "{assignments:?}");
}

/// Joins `group` alone, reads exactly `count` records, commits what it read (sync) and
/// closes (LeaveGroup). Returns the records.
pub fn read_and_commit(bootstrap: &str, group: &str, topic: &str, count: usize) -> Vec<Consumed> {
    let mut members = [Member::join(bootstrap, group, "reader", topic, &[])];
    settle(
        &mut members,
        SETTLE_TIMEOUT,
        &format!("read {count} records in group {group}"),
        |members| match members[0].records.len() {
            read if read >= count => Ok(()),
            read => Err(format!("{read} read")),
        },
    );
    let [mut member] = members;
    assert_eq!(member.records.len(), count, "one record per poll");
    member
        .consumer
        .commit_consumer_state(CommitMode::Sync)
        .unwrap_or_else(|error| panic!("commit in group {group} failed: {error}"));
    std::mem::take(&mut member.records)
}

/// Partition -> the offset after the last record read there (what a commit stores).
pub fn next_offsets(records: &[Consumed]) -> BTreeMap<i32, i64> {
    let mut next = BTreeMap::new();
    for consumed in records {
        let entry = next.entry(consumed.partition).or_insert(0);
        *entry = (*entry).max(consumed.offset + 1);
    }
    next
}

/// Every partition's records start exactly at its committed offset (0 where nothing was
/// committed) and run forward without re-reading anything.
pub fn assert_resumed_at(records: &[Consumed], committed: &BTreeMap<i32, i64>) {
    let mut last_read: BTreeMap<i32, i64> = BTreeMap::new();
    for consumed in records {
        let partition = consumed.partition;
        let expected = match last_read.get(&partition) {
            Some(previous) => previous + 1,
            None => committed.get(&partition).copied().unwrap_or(0),
        };
        assert_eq!(
            consumed.offset, expected,
            "partition {partition}: read offset {} where {expected} was next (committed: {:?})",
            consumed.offset, committed
        );
        last_read.insert(partition, consumed.offset);
    }
}
