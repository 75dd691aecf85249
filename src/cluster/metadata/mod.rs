//! Cluster metadata as a log of typed records and the pure state machine that
//! replays them (no I/O; time is passed in). Kafka's KRaft metadata in
//! corelog's words:
//! - `records`: the record types (rkyv), what the quorum replicates;
//! - `frame`: versioned, bounds-checked, crc-checked frames for records,
//!   snapshots and the quorum's messages;
//! - `image` and `replay`: the image replayed from records, its snapshot as
//!   records and its `Catalog` view for the shards;
//! - `assignment`: Kafka's rack-unaware replica placement;
//! - `controller`, `topic_control` and `partition_control`: the active
//!   controller's decisions, request -> records or a typed error with a
//!   Kafka code (`partition_control`: AlterPartition and the leader
//!   elections when brokers leave or return; `leader_elections`: ElectLeaders;
//!   `reassignments`: AlterPartitionReassignments, KIP-455);
//! - `errors`: replay's and the controller's typed errors.
//!
//! Everything here is deterministic and lives wherever its caller does (the
//! quorum and the image on shard 0).

pub mod assignment;
pub mod controller;
pub mod errors;
pub mod frame;
pub mod image;
pub mod leader_elections;
pub mod partition_control;
pub mod reassignments;
pub mod records;
mod replay;
pub mod topic_control;

#[cfg(test)]
mod controller_tests;
#[cfg(test)]
mod image_tests;
#[cfg(test)]
mod leader_elections_tests;
#[cfg(test)]
mod partition_control_tests;
#[cfg(test)]
mod reassignments_tests;
#[cfg(test)]
mod replay_tests;
#[cfg(test)]
mod test_fixtures;

pub use assignment::{assign_replicas, AssignmentError, AssignmentStart};
pub use controller::{
    bootstrap_records, BrokerRegistered, BrokerRegistrationRequest, Controller, ControllerSettings,
    ProducerIdBlock, MAX_PARTITIONS_PER_TOPIC, PRODUCER_ID_BLOCK_SIZE,
};
pub use errors::{ControllerError, ReplayError};
pub use frame::{FrameError, FrameHeader, FrameKind, MAX_FRAME_BYTES};
pub use image::{BrokerRegistration, MetadataImage, PartitionRegistration, TopicImage, NO_LEADER};
pub use partition_control::{AlterPartitionRequest, PartitionAltered, PartitionState};
pub use records::{
    BrokerRegistrationRecord, MetadataRecord, PartitionChangeRecord, PartitionRecord,
};
pub use topic_control::CreateTopic;
