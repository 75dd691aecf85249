//! librdkafka's KIP-848 consumer (`group.protocol=consumer`, GA since librdkafka 2.10; the
//! rdkafka crate bundles 2.12.1): two StreamConsumers split a topic, read every record once,
//! commit, and when one closes the other takes over its partitions from the commits.
//! `session.timeout.ms` and `partition.assignment.strategy` are not set: with this protocol
//! the broker owns both, and librdkafka refuses them.

use std::collections::BTreeSet;
use std::future::Future;
use std::thread;
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use futures::future::{self, Either, FutureExt, Map};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::util::AsyncRuntime;
use rdkafka::Offset;

use crate::common::{self, Broker, TestContext};
use crate::{BROKER_FLAGS, PARTITIONS};

/// How long the consumers may take to split the topic, or to drain what was produced.
const GROUP_TIMEOUT: Duration = Duration::from_secs(60);
const RECORDS_PER_ROUND: usize = 200;

/// StreamConsumer's wake-up task and timers on plain threads: the test has no tokio runtime.
struct ThreadRuntime;

impl AsyncRuntime for ThreadRuntime {
    type Delay = Map<oneshot::Receiver<()>, fn(Result<(), oneshot::Canceled>)>;

    fn spawn<T: Future<Output = ()> + Send + 'static>(task: T) {
        thread::spawn(|| futures::executor::block_on(task));
    }

    fn delay_for(duration: Duration) -> Self::Delay {
        let (fire, fired) = oneshot::channel();
        thread::spawn(move || {
            thread::sleep(duration);
            let _ = fire.send(());
        });
        fired.map(|_| ())
    }
}

type Kip848Consumer = StreamConsumer<TestContext, ThreadRuntime>;

fn consumer(bootstrap: &str, group: &str, client_id: &str, topic: &str) -> Kip848Consumer {
    let mut config = common::group_consumer_config(bootstrap, group, client_id);
    config.set("group.protocol", "consumer");
    let consumer: Kip848Consumer = config
        .create_with_context(TestContext)
        .expect("create a group.protocol=consumer consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    consumer
}

/// One `recv` bounded by `timeout`: the record's `(partition, offset, value)`, if any.
fn recv_within(consumer: &Kip848Consumer, timeout: Duration) -> Option<(i32, i64, String)> {
    let receive = Box::pin(consumer.recv());
    match futures::executor::block_on(future::select(receive, ThreadRuntime::delay_for(timeout))) {
        Either::Left((Ok(message), _)) => {
            let value = String::from_utf8_lossy(message.payload().unwrap_or_default());
            Some((message.partition(), message.offset(), value.into_owned()))
        }
        Either::Left((Err(error), _)) => panic!("consumer error: {error}"),
        Either::Right(_) => None,
    }
}

fn assigned(consumer: &Kip848Consumer) -> BTreeSet<i32> {
    let assignment = consumer.assignment().expect("assignment");
    assignment
        .elements()
        .iter()
        .map(|element| element.partition())
        .collect()
}

/// Produces values `value-<first..first+count>` round-robin over the partitions.
fn produce(bootstrap: &str, topic: &str, first: usize) {
    let producer = common::producer(bootstrap, &[]);
    for id in 0..RECORDS_PER_ROUND {
        let value = format!("value-{}", first + id);
        let partition = (id % PARTITIONS as usize) as i32;
        common::send(
            &producer,
            common::record(topic, id, b"key", value.as_bytes()).partition(partition),
        );
    }
    common::wait_for_successful_deliveries(&producer, RECORDS_PER_ROUND, GROUP_TIMEOUT);
}

/// Polls every consumer in turn until they received `expected` values between them (then a
/// little longer, to see duplicates); returns per consumer what it got.
fn drain(consumers: &[&Kip848Consumer], expected: usize) -> Vec<Vec<(i32, i64, String)>> {
    let mut received = vec![Vec::new(); consumers.len()];
    let deadline = Instant::now() + GROUP_TIMEOUT;
    let mut quiet_rounds = 0;
    while quiet_rounds < 10 {
        let total: usize = received.iter().map(Vec::len).sum();
        assert!(
            Instant::now() < deadline,
            "only {total} of {expected} records arrived"
        );
        let mut any = false;
        for (index, consumer) in consumers.iter().enumerate() {
            while let Some(record) = recv_within(consumer, Duration::from_millis(100)) {
                received[index].push(record);
                any = true;
            }
        }
        let total: usize = received.iter().map(Vec::len).sum();
        quiet_rounds = if !any && total >= expected {
            quiet_rounds + 1
        } else {
            0
        };
    }
    received
}

fn values(records: &[Vec<(i32, i64, String)>]) -> Vec<String> {
    let mut values: Vec<String> = records
        .iter()
        .flatten()
        .map(|(_, _, value)| value.clone())
        .collect();
    values.sort();
    values
}

fn expected_values(first: usize) -> Vec<String> {
    let mut values: Vec<String> = (first..first + RECORDS_PER_ROUND)
        .map(|id| format!("value-{id}"))
        .collect();
    values.sort();
    values
}

#[test]
fn librdkafka_consumer_protocol_splits_a_topic_and_hands_it_over() {
    let broker = Broker::start(2, BROKER_FLAGS);
    let bootstrap = broker.bootstrap();
    let topic = common::unique_topic("kip848-librdkafka");
    let group = common::unique_topic("kip848-librdkafka-group");
    common::create_topic(&bootstrap, &topic, PARTITIONS);

    let first = consumer(&bootstrap, &group, "kip848-first", &topic);
    let second = consumer(&bootstrap, &group, "kip848-second", &topic);
    let all: BTreeSet<i32> = (0..PARTITIONS).collect();
    let deadline = Instant::now() + GROUP_TIMEOUT;
    loop {
        // Receiving drives librdkafka's rebalance callbacks; the topic is still empty.
        assert!(recv_within(&first, Duration::from_millis(100)).is_none());
        assert!(recv_within(&second, Duration::from_millis(100)).is_none());
        let (one, two) = (assigned(&first), assigned(&second));
        let union: BTreeSet<i32> = one.union(&two).copied().collect();
        if !one.is_empty() && !two.is_empty() && one.is_disjoint(&two) && union == all {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no split of {all:?}: {one:?} and {two:?}"
        );
    }

    // Every record once, each from a partition its consumer owns.
    produce(&bootstrap, &topic, 0);
    let received = drain(&[&first, &second], RECORDS_PER_ROUND);
    assert_eq!(
        values(&received),
        expected_values(0),
        "each record exactly once"
    );
    for (consumer, records) in [&first, &second].into_iter().zip(&received) {
        let owned = assigned(consumer);
        assert!(records
            .iter()
            .all(|(partition, _, _)| owned.contains(partition)));
        consumer
            .commit_consumer_state(CommitMode::Sync)
            .expect("commit");
    }
    let handed_over = assigned(&second);

    // The second closes (leaves with epoch -1); the first takes over everything and goes
    // on from the commits: only records produced after the commits arrive.
    drop(second);
    let deadline = Instant::now() + GROUP_TIMEOUT;
    while assigned(&first) != all {
        assert!(
            Instant::now() < deadline,
            "{:?} never became {all:?}",
            assigned(&first)
        );
        let early = recv_within(&first, Duration::from_millis(100));
        assert!(early.is_none(), "a committed record read again: {early:?}");
    }
    produce(&bootstrap, &topic, RECORDS_PER_ROUND);
    let resumed = drain(&[&first], RECORDS_PER_ROUND);
    assert_eq!(values(&resumed), expected_values(RECORDS_PER_ROUND));
    let committed = first
        .committed(Duration::from_secs(10))
        .expect("committed offsets");
    assert_eq!(committed.count(), PARTITIONS as usize);
    for element in committed.elements() {
        let partition = element.partition();
        let first_resumed = resumed[0]
            .iter()
            .filter(|(p, _, _)| *p == partition)
            .map(|(_, offset, _)| *offset)
            .min();
        assert_eq!(
            first_resumed.map(Offset::Offset),
            Some(element.offset()),
            "partition {partition} (handed over: {})",
            handed_over.contains(&partition)
        );
    }
}

/// A regex subscription (`^...`, librdkafka's pattern syntax) with the consumer protocol is
/// sent as `subscribed_topic_regex` and resolved by the broker: only matching topics are
/// assigned and read.
#[test]
fn librdkafka_regex_subscription_is_resolved_by_the_broker() {
    let broker = Broker::start(1, BROKER_FLAGS);
    let bootstrap = broker.bootstrap();
    let prefix = common::unique_topic("kip848-regex");
    let matching = [format!("{prefix}-a"), format!("{prefix}-b")];
    let other = common::unique_topic("kip848-unmatched");
    for topic in matching.iter().chain([&other]) {
        common::create_topic(&bootstrap, topic, PARTITIONS);
    }
    let group = common::unique_topic("kip848-regex-group");
    let mut config = common::group_consumer_config(&bootstrap, &group, "kip848-regex");
    config.set("group.protocol", "consumer");
    let consumer: Kip848Consumer = config
        .create_with_context(TestContext)
        .expect("create a group.protocol=consumer consumer");
    consumer
        .subscribe(&[&format!("^{prefix}-.*")])
        .expect("subscribe to a regex");

    let expected: BTreeSet<(String, i32)> = matching
        .iter()
        .flat_map(|topic| (0..PARTITIONS).map(move |p| (topic.clone(), p)))
        .collect();
    let deadline = Instant::now() + GROUP_TIMEOUT;
    loop {
        assert!(recv_within(&consumer, Duration::from_millis(100)).is_none());
        let assignment: BTreeSet<(String, i32)> = consumer
            .assignment()
            .expect("assignment")
            .elements()
            .iter()
            .map(|element| (element.topic().to_string(), element.partition()))
            .collect();
        if assignment == expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the regex's topics were not assigned: {assignment:?}"
        );
    }
    for topic in matching.iter().chain([&other]) {
        produce(&bootstrap, topic, 0);
    }
    let received = drain(&[&consumer], 2 * RECORDS_PER_ROUND);
    assert_eq!(
        received[0].len(),
        2 * RECORDS_PER_ROUND,
        "every record of the two matching topics once, none of {other}"
    );
}
