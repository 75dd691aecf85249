//! Transactional producers as the tests drive them: a librdkafka producer with a
//! `transactional.id` (its delivery reports recorded like the harness's producer), the
//! messages a test sends (`Outgoing`, spread over partitions), and the calls that begin,
//! fill and end a transaction. Every wait is bounded.

use std::time::Duration;

use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::KafkaError;
use rdkafka::producer::Producer;

use crate::common::{
    producer, record, send, wait_for_successful_deliveries, DeliveryRecorder, TestProducer,
    CLIENT_DEBUG_ENV,
};

/// Bound on one transactional call (init, commit, abort, send offsets): a coordinator
/// look-up, a few CONCURRENT_TRANSACTIONS retries while markers complete, on a machine that
/// runs other brokers too.
pub const TXN_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on producing one round's messages.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// A producer with `transactional.id` = `transactional_id` (idempotence and acks=all
/// follow from it), a short linger, plus `extra` settings. `message.timeout.ms` is left to
/// librdkafka, which caps it at `transaction.timeout.ms`.
pub fn transactional_producer(
    bootstrap: &str,
    transactional_id: &str,
    extra: &[(&str, &str)],
) -> TestProducer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("client.id", "corelog-test-txn-producer")
        .set("transactional.id", transactional_id)
        .set("linger.ms", "5");
    if let Ok(debug) = std::env::var(CLIENT_DEBUG_ENV) {
        config
            .set("debug", debug)
            .set_log_level(RDKafkaLogLevel::Debug);
    }
    for (key, value) in extra {
        config.set(*key, *value);
    }
    config
        .create_with_context(DeliveryRecorder::default())
        .expect("create transactional producer")
}

/// A transactional producer that has run `init_transactions`.
pub fn initialised_producer(bootstrap: &str, transactional_id: &str) -> TestProducer {
    let producer = transactional_producer(bootstrap, transactional_id, &[]);
    producer
        .init_transactions(TXN_CALL_TIMEOUT)
        .unwrap_or_else(|error| panic!("init_transactions for {transactional_id}: {error}"));
    producer
}

/// One message to produce: where it goes and its value (also its key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub topic: String,
    pub partition: i32,
    pub value: String,
}

/// `count` messages named `<label>-<i>` to `topic`, spread round-robin over `partitions`.
pub fn spread(topic: &str, partitions: i32, label: &str, count: usize) -> Vec<Outgoing> {
    (0..count)
        .map(|index| Outgoing {
            topic: topic.to_string(),
            partition: index as i32 % partitions,
            value: format!("{label}-{index:04}"),
        })
        .collect()
}

/// Where an acknowledged message landed: topic, partition, offset.
pub type Placement = (String, i32, i64);

/// Produces `messages` without a transaction (a plain, non-idempotent producer) and waits
/// until all are acknowledged.
pub fn produce_plain(bootstrap: &str, messages: &[Outgoing]) -> Vec<Placement> {
    let producer = producer(bootstrap, &[]);
    enqueue(&producer, messages);
    delivered(&producer, messages)
}

/// Enqueues `messages` with delivery ids `0..messages.len()`; nothing waits for them.
pub fn enqueue(producer: &TestProducer, messages: &[Outgoing]) {
    for (id, message) in messages.iter().enumerate() {
        send(
            producer,
            record(
                &message.topic,
                id,
                message.value.as_bytes(),
                message.value.as_bytes(),
            )
            .partition(message.partition),
        );
    }
}

/// Waits until every message of the last [`enqueue`] is acknowledged (flushing, so it also
/// collects reports a commit already waited for); returns (topic, partition, offset) of each.
pub fn delivered(producer: &TestProducer, messages: &[Outgoing]) -> Vec<Placement> {
    wait_for_successful_deliveries(producer, messages.len(), DELIVERY_TIMEOUT)
        .into_iter()
        .zip(messages)
        .map(|((partition, offset), message)| {
            assert_eq!(
                partition, message.partition,
                "{} delivered to another partition",
                message.value
            );
            (message.topic.clone(), partition, offset)
        })
        .collect()
}

/// Sends `messages` one at a time, each acknowledged before the next is sent, so each is a
/// record batch of its own; returns where each landed.
pub fn deliver_one_by_one(producer: &TestProducer, messages: &[Outgoing]) -> Vec<Placement> {
    messages
        .iter()
        .flat_map(|message| {
            let single = std::slice::from_ref(message);
            enqueue(producer, single);
            delivered(producer, single)
        })
        .collect()
}

/// Begins a transaction, sends `messages`, waits until all are acknowledged by the
/// partition leaders (so they are in the log), and leaves the transaction open. Returns
/// where each message landed.
pub fn begin_and_deliver(producer: &TestProducer, messages: &[Outgoing]) -> Vec<Placement> {
    producer.begin_transaction().expect("begin_transaction");
    enqueue(producer, messages);
    delivered(producer, messages)
}

pub fn commit(producer: &TestProducer, what: &str) {
    producer
        .commit_transaction(TXN_CALL_TIMEOUT)
        .unwrap_or_else(|error| panic!("commit_transaction ({what}) failed: {error}"));
}

pub fn abort(producer: &TestProducer, what: &str) {
    producer
        .abort_transaction(TXN_CALL_TIMEOUT)
        .unwrap_or_else(|error| panic!("abort_transaction ({what}) failed: {error}"));
}

/// Whether a transactional call failed with an error librdkafka calls fatal (the producer
/// instance is unusable, as after being fenced).
pub fn is_fatal(error: &KafkaError) -> bool {
    match error {
        KafkaError::Transaction(error) => error.is_fatal(),
        _ => false,
    }
}
