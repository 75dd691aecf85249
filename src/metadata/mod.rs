//! Control plane: which topics exist, their partitions and configs. The
//! authoritative copy is owned by shard 0 (the controller, `server/admin.rs`),
//! persisted as one manifest file per topic, and pushed to every other shard
//! as a whole, versioned, immutable `Catalog`; each shard reads its own copy.

pub mod catalog;
pub mod ids;
pub mod manifest;
pub mod stray_replicas;
pub mod topic_config;
pub mod topic_config_catalogue;
pub mod topic_name;
