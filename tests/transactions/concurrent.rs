//! Several transactional producers at once on the same partitions, each running
//! transactions back to back (some committed with messages still in flight, some aborted
//! after delivery), while a read_committed consumer reads along: it never sees a message
//! of an aborted transaction, and in the end read_committed holds exactly the committed
//! messages, each producer's in the order it sent them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rdkafka::producer::Producer;

use crate::common::{create_topic, Broker};
use crate::producing::{
    abort, begin_and_deliver, commit, delivered, enqueue, initialised_producer, spread, Outgoing,
};
use crate::reading::{value_of, Isolation, Reader};
use crate::NO_JOIN_DELAY;

const PARTITIONS: i32 = 3;
const PRODUCERS: usize = 4;
const TRANSACTIONS_PER_PRODUCER: usize = 12;
const MESSAGES_PER_TRANSACTION: usize = 15;

/// Runs producer `index`'s transactions; returns the messages it committed.
fn run_producer(bootstrap: &str, topic: &str, index: usize) -> Vec<Outgoing> {
    let producer = initialised_producer(bootstrap, &format!("concurrent-{index}"));
    let mut committed = Vec::new();
    for transaction in 0..TRANSACTIONS_PER_PRODUCER {
        let label = format!("p{index}-t{transaction:03}");
        let messages = spread(topic, PARTITIONS, &label, MESSAGES_PER_TRANSACTION);
        let what = format!("{label} of producer {index}");
        match transaction % 3 {
            // Committed with its messages possibly still in flight.
            0 => {
                producer.begin_transaction().expect("begin_transaction");
                enqueue(&producer, &messages);
                commit(&producer, &what);
                delivered(&producer, &messages);
                committed.extend(messages);
            }
            1 => {
                begin_and_deliver(&producer, &messages);
                commit(&producer, &what);
                committed.extend(messages);
            }
            _ => {
                begin_and_deliver(&producer, &messages);
                abort(&producer, &what);
            }
        }
    }
    committed
}

#[test]
fn concurrent_transactional_producers_never_leak_aborted_messages() {
    let broker = Broker::start(2, NO_JOIN_DELAY);
    let bootstrap = broker.bootstrap();
    let topic = "txn-concurrent";
    create_topic(&bootstrap, topic, PARTITIONS);

    // Reads along while the producers run, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (bootstrap, stop) = (bootstrap.clone(), Arc::clone(&stop));
        thread::spawn(move || {
            let reader = Reader::new(&bootstrap, topic, PARTITIONS, Isolation::ReadCommitted);
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                seen.extend(reader.read_for(Duration::from_millis(200)));
            }
            seen
        })
    };
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|index| {
            let bootstrap = bootstrap.clone();
            thread::spawn(move || run_producer(&bootstrap, topic, index))
        })
        .collect();
    let committed: Vec<Outgoing> = producers
        .into_iter()
        .flat_map(|handle| handle.join().expect("a producer thread panicked"))
        .collect();
    stop.store(true, Ordering::Relaxed);
    let seen_along = watcher.join().expect("the watcher thread panicked");

    let committed_values: BTreeSet<String> = committed
        .iter()
        .map(|message| message.value.clone())
        .collect();
    let leaked: Vec<String> = seen_along
        .iter()
        .map(value_of)
        .filter(|value| !committed_values.contains(value))
        .collect();
    assert!(
        leaked.is_empty(),
        "read_committed saw messages of aborted transactions while they ran: {leaked:?}"
    );

    let reader = Reader::new(&bootstrap, topic, PARTITIONS, Isolation::ReadCommitted);
    let records = reader.read(committed.len());
    let mut by_partition: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for record in &records {
        by_partition
            .entry(record.partition)
            .or_default()
            .push(value_of(record));
    }
    for partition in 0..PARTITIONS {
        let read = by_partition.remove(&partition).unwrap_or_default();
        let mut expected: Vec<String> = committed
            .iter()
            .filter(|message| message.partition == partition)
            .map(|message| message.value.clone())
            .collect();
        expected.sort();
        let mut sorted = read.clone();
        sorted.sort();
        assert_eq!(
            sorted, expected,
            "partition {partition}: read_committed holds exactly the committed messages"
        );
        // Values sort in the order each producer sent them (`p<n>-t<txn>-<index>`).
        for index in 0..PRODUCERS {
            let prefix = format!("p{index}-");
            let own: Vec<&String> = read
                .iter()
                .filter(|value| value.starts_with(&prefix))
                .collect();
            assert!(
                own.windows(2).all(|pair| pair[0] < pair[1]),
                "partition {partition}: producer {index}'s messages out of order: {own:?}"
            );
        }
    }
}
