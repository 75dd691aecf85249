//! The transaction APIs (KIP-98) driven over a raw TCP socket, one request at a time,
//! encoded and decoded with the `kafka-protocol` crate at an exact version, against a real
//! broker: every advertised version of InitProducerId, AddPartitionsToTxn (client form and
//! the v4 batched form), AddOffsetsToTxn, EndTxn, WriteTxnMarkers, DescribeTransactions and
//! ListTransactions answers a real flow; the error codes the Java broker gives; transactional
//! record batches produced and fetched at every Fetch version with both isolation levels
//! (last stable offset, aborted transactions, ListOffsets); the coordinator's views
//! (DescribeTransactions, ListTransactions with every filter, ids on both shards);
//! transaction timeouts; and hostile frames for these APIs.
//!
//! The test crate is split by concern: `wire` frames one request with the codec, `records`
//! builds and reads RecordBatch v2 bytes by hand (so the broker's own codec cannot hide a
//! mistake), `flows` holds the coordinator exchanges every test repeats and `data` the
//! topic, Produce, Fetch and ListOffsets ones. The tests are grouped by theme
//! in `versions`, `errors`, `producer_ids`, `reading`, `views`, `timeouts`, `framing`, and
//! `kafka_rules` (edge cases checked against the Java broker's source, each test naming the
//! method it follows).

#[path = "../common/mod.rs"]
mod common;

mod data;
mod errors;
mod flows;
mod framing;
mod kafka_rules;
mod producer_ids;
mod reading;
mod records;
mod timeouts;
mod versions;
mod views;
#[path = "../common/codec.rs"]
mod wire;

use kafka_protocol::messages::ApiKey;

// Kafka error codes (protocol guide, "Error Codes").
const NONE: i16 = 0;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const NOT_COORDINATOR: i16 = 16;
const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
const INVALID_REQUEST: i16 = 42;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_TXN_STATE: i16 = 48;
const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
const CONCURRENT_TRANSACTIONS: i16 = 51;
const OPERATION_NOT_ATTEMPTED: i16 = 55;
const INVALID_RECORD: i16 = 87;
const PRODUCER_FENCED: i16 = 90;
const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;

const CLIENT_ID: &str = "txn-protocol-tests";
/// Two shards, so coordinators, partitions and connections sit on different cores.
const CORES: usize = 2;
const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Kafka's `offsets.topic.num.partitions` default, which the broker keeps.
const OFFSETS_TOPIC_PARTITIONS: i32 = 50;
/// Kafka's `transaction.state.log.num.partitions` default, which the broker keeps.
const TRANSACTION_STATE_PARTITIONS: i32 = 50;
/// The timeout most transactions here ask for: long enough never to expire in a test.
const TXN_TIMEOUT_MS: i32 = 60_000;

/// The transaction APIs and the version ranges the broker must advertise for them.
const TXN_APIS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::AddPartitionsToTxn, 0, 4),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 4),
    (ApiKey::WriteTxnMarkers, 1, 1),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 2),
];
