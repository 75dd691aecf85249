//! The KIP-848 consumer group protocol end to end: librdkafka's `group.protocol=consumer`
//! sharing a topic and handing it over (`librdkafka`), ConsumerGroupHeartbeat v1 built by
//! hand with every member-epoch error and the group APIs that see a consumer group
//! (`raw_flow`), the answer to a heartbeat for a classic group (`raw_flow`), and a group's
//! members, epochs and assignments surviving a broker restart, then a session expiry
//! (`persistence`).
//!
//! `requests` builds the requests and `member` drives one hand-made member (join, heartbeat,
//! reconcile, leave). The raw tests start their own broker; with `CONSUMER_PROTOCOL_BOOTSTRAP`
//! set (for example to a reference Kafka from `tests/reference_kafka/kafka.sh start`), the
//! flows of `raw_flow` run against that address instead, to compare answers by hand.

#[path = "../common/mod.rs"]
mod common;

mod librdkafka;
mod member;
mod persistence;
mod raw_flow;
mod requests;
#[path = "../common/codec.rs"]
mod wire;

use std::net::TcpStream;

use common::Broker;

// Kafka error codes (protocol guide, "Error Codes").
const NONE: i16 = 0;
const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
const UNKNOWN_MEMBER_ID: i16 = 25;
const NON_EMPTY_GROUP: i16 = 68;
const GROUP_ID_NOT_FOUND: i16 = 69;
const MEMBER_ID_REQUIRED: i16 = 79;
const FENCED_MEMBER_EPOCH: i16 = 110;
const STALE_MEMBER_EPOCH: i16 = 113;

const CLIENT_ID: &str = "consumer-protocol-tests";
const BROKER_FLAGS: &[&str] = &["--group-initial-rebalance-delay-ms", "0"];
/// Partitions of every test topic: enough for two members to split unevenly if wrong.
const PARTITIONS: i32 = 4;
/// ConsumerGroupHeartbeat v1: a client chooses its member id (KIP-1082).
const HEARTBEAT_VERSION: i16 = 1;
const REBALANCE_TIMEOUT_MS: i32 = 30_000;

/// Where the raw flows run: a broker this test starts, or `CONSUMER_PROTOCOL_BOOTSTRAP`.
struct Target {
    /// Keeps the started broker alive for the test (none with an external bootstrap).
    _broker: Option<Broker>,
    bootstrap: String,
}

impl Target {
    fn start() -> Target {
        match std::env::var("CONSUMER_PROTOCOL_BOOTSTRAP") {
            Ok(bootstrap) => Target {
                _broker: None,
                bootstrap,
            },
            Err(_) => {
                let broker = Broker::start(2, BROKER_FLAGS);
                let bootstrap = broker.bootstrap();
                Target {
                    _broker: Some(broker),
                    bootstrap,
                }
            }
        }
    }

    /// A connection to the (single) broker, which is every group's coordinator.
    fn connect(&self) -> TcpStream {
        common::wire::connect(&self.bootstrap)
    }
}

/// A group or topic name unique to this process too, so that the flows can run again on a
/// long-lived external broker.
fn fresh_name(prefix: &str) -> String {
    common::unique_topic(&format!("{prefix}-{}", std::process::id()))
}
