//! The cluster: the metadata quorum (openraft on glommio), the metadata
//! records and the pure state machine that replays them into the image every
//! shard reads, broker registration, partition assignment and (later) replica
//! fetchers. The quorum runs on shard 0 of each voter node; other shards and
//! nodes only read the image it produces.

pub mod active_controller;
pub mod control;
pub mod metadata;
pub mod node;
pub mod node_identity;
pub mod quorum;

#[cfg(test)]
mod active_controller_tests;
#[cfg(test)]
mod node_tests;
#[cfg(test)]
mod test_cluster;
