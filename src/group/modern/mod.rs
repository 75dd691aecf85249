//! The consumer group protocol of Kafka 4 (KIP-848, ConsumerGroupHeartbeat
//! and ConsumerGroupDescribe) as a pure state machine, beside the classic
//! protocol of `group/`. The broker, not a leader member, computes the
//! assignment; members reconcile towards it one heartbeat at a time.
//!
//! Which cores: a group lives only on the shard that owns the offsets
//! partition its group id hashes to, like the classic groups; the records it
//! returns go to that partition.
//!
//! Why this shape: like Kafka's `GroupMetadataManager` (modern package),
//! every change is a record, and the group changes only by replaying its own
//! records (`ConsumerGroup::replay`), so the state a broker rebuilds from
//! `__consumer_offsets` after a restart is the state it had. Time is passed
//! in (`now_ms`); timers (session, rebalance) are deadlines in the group
//! that every event and `tick` fire in time order. The topic metadata comes
//! in through [`TopicView`], so the group never reaches into the catalog.
//!
//! Inside:
//! - `error`: the Kafka errors a heartbeat answers with
//! - `messages`: the heartbeat request and response, the topic view
//! - `member`: one member: subscription, epochs, assignment, state
//! - `group`: the `ConsumerGroup`, its derived indexes and its state
//! - `heartbeat`: ConsumerGroupHeartbeat: validation, join, heartbeat
//! - `leave`: leaving with -1 or -2, and fencing a member
//! - `subscription`: subscribed topics, server-side regexes, group epoch
//! - `target`: the target assignment of a group epoch
//! - `assignor`: the `uniform` and `range` server-side assignors
//! - `reconcile`: one member's next assignment (`CurrentAssignmentBuilder`)
//! - `timers`: session and rebalance timeouts
//! - `records`: the records written to `__consumer_offsets` and their replay
//! - `describe`: the ConsumerGroupDescribe view
//! - `offsets`: who may commit and fetch the group's offsets

pub mod assignor;
pub mod describe;
pub mod error;
pub mod group;
pub mod member;
pub mod messages;
pub mod offsets;
pub mod records;

mod heartbeat;
mod leave;
mod reconcile;
mod subscription;
mod target;
mod timers;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

pub use assignor::AssignorName;
pub use describe::{DescribedGroup, DescribedMember, DescribedTopicPartitions};
pub use error::HeartbeatError;
pub use group::{ConsumerGroup, ConsumerGroupConfig, ConsumerGroupState};
pub use heartbeat::validate_heartbeat;
pub use member::{ConsumerMember, MemberState};
pub use messages::{
    HeartbeatOutcome, HeartbeatRequest, HeartbeatResponse, OwnedTopicPartitions, TopicInfo,
    TopicTable, TopicView,
};
pub use offsets::OffsetAccessError;
pub use records::{
    ConsumerGroupRecord, CurrentAssignmentValue, MemberMetadataValue, ReplayError, ResolvedRegex,
};
pub use subscription::REGEX_REFRESH_INTERVAL_MS;

/// Partitions by topic id, Kafka's `Map<Uuid, Set<Integer>>`. Ordered maps
/// keep every computation and every record deterministic.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// The member epoch of a leave request (KIP-848).
pub const LEAVE_GROUP_MEMBER_EPOCH: i32 = -1;
/// The member epoch of a static member that leaves and will come back
/// within its session timeout.
pub const LEAVE_GROUP_STATIC_MEMBER_EPOCH: i32 = -2;
/// From this ConsumerGroupHeartbeat version on the client generates its
/// member id (KIP-1082); v0 lets the coordinator pick one.
pub const CONSUMER_GENERATED_MEMBER_ID_REQUIRED_VERSION: i16 = 1;

/// Longest `subscribed_topic_regex` accepted. Kafka has no limit; we bound
/// it so a member cannot make every heartbeat of its group compile and run
/// a huge automaton against every topic name.
pub const SUBSCRIBED_TOPIC_REGEX_BYTES_MAX: usize = 4096;
/// Compiled size bound handed to the `regex` crate for the same reason.
pub const SUBSCRIBED_TOPIC_REGEX_COMPILED_BYTES_MAX: usize = 1 << 20;
/// Most subscribed topic names one member may send; far above any real
/// subscription, low enough that a member cannot grow the group unbounded.
pub const SUBSCRIBED_TOPIC_NAMES_MAX: usize = 10_000;
