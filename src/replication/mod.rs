//! Kafka's partition replication as pure logic: no I/O, no executor, so every
//! rule can be tested deterministically and under random interleavings
//! (`simulation_tests.rs` for one partition's replicas; and
//! `cluster_simulation_tests.rs` for brokers and the real controller
//! exchanging messages over a faulty network).
//!
//! - `leader_epochs`: each replica's leader-epoch cache and its checkpoint
//!   file format (KIP-101).
//! - `truncation`: the diverging epoch a leader answers and the point a
//!   follower truncates to (KIP-279, KIP-595's Fetch v12 field).
//! - `leader_view`: the leader's view of its followers: high watermark, ISR
//!   shrink and expand decisions, acks=all's minimum ISR (KIP-841).
//! - `election`: the controller's leader elections: clean, unclean,
//!   preferred, and the ISR when brokers leave (KIP-841).
//! - `reassignment`: moving a partition's replicas (KIP-455): the replica
//!   set while adding and removing, completion, cancelling.
//!
//! Where each runs: a partition's leader and follower replicas live on the
//! shard that owns the partition on their node (`runtime::placement`);
//! elections run in the active controller (shard 0 of a voter).

pub mod election;
pub mod leader_epochs;
pub mod leader_view;
pub mod reassignment;
pub mod truncation;

#[cfg(test)]
mod cluster_simulation_tests;
#[cfg(test)]
mod simulation_tests;
