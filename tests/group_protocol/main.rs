//! The consumer-group APIs driven over a raw TCP socket, one request at a time, encoded and
//! decoded with the `kafka-protocol` crate at an exact version: every advertised version of
//! every group API answers a real join/sync/commit/fetch/describe/list/leave/delete flow
//! with a response that decodes at that version (a field a version lacks would make the
//! broker's encoder fail and the connection close); the error codes Kafka gives for the
//! classic group protocol's mistakes; session expiry; a broken JoinGroup frame; and a join
//! round that waits for every known member.
//!
//! The test crate is split by concern: `wire` frames one request at a time with the
//! `kafka-protocol` codec, `requests` builds the group API requests, `flows` holds the
//! small exchanges every test repeats (join, sync, heartbeat, fetch, describe, delete);
//! the tests themselves are grouped by theme in `versions`, `errors`, `offset_errors`,
//! `timeouts`, `framing` and `txn_offset_commit`. The constants below are shared by all of them.

#[path = "../common/mod.rs"]
mod common;

mod errors;
mod flows;
mod framing;
mod offset_errors;
mod requests;
mod timeouts;
mod txn_offset_commit;
mod versions;
#[path = "../common/codec.rs"]
mod wire;

use kafka_protocol::messages::ApiKey;

// Kafka error codes (protocol guide, "Error Codes").
const NONE: i16 = 0;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const OFFSET_METADATA_TOO_LARGE: i16 = 12;
const INVALID_TOPIC_EXCEPTION: i16 = 17;
const ILLEGAL_GENERATION: i16 = 22;
const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
const INVALID_GROUP_ID: i16 = 24;
const UNKNOWN_MEMBER_ID: i16 = 25;
const INVALID_SESSION_TIMEOUT: i16 = 26;
const REBALANCE_IN_PROGRESS: i16 = 27;
const INVALID_REQUEST: i16 = 42;
const NON_EMPTY_GROUP: i16 = 68;
const GROUP_ID_NOT_FOUND: i16 = 69;
const MEMBER_ID_REQUIRED: i16 = 79;
const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;

const BROKER_FLAGS: &[&str] = &["--group-initial-rebalance-delay-ms", "0"];
const CLIENT_ID: &str = "group-protocol-tests";
const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Kafka's `offsets.topic.num.partitions` default, which the broker keeps.
const OFFSETS_TOPIC_PARTITIONS: usize = 50;
/// Kafka's `group.min.session.timeout.ms` default, which the broker keeps.
const MIN_SESSION_TIMEOUT_MS: i32 = 6_000;
const SESSION_TIMEOUT_MS: i32 = 10_000;
const REBALANCE_TIMEOUT_MS: i32 = 30_000;
/// Kafka's `offset.metadata.max.bytes` default.
const OFFSET_METADATA_MAX_BYTES: usize = 4096;

/// The group APIs and the version ranges the broker must advertise for them.
const GROUP_APIS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 10),
    (ApiKey::OffsetFetch, 1, 10),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
];
