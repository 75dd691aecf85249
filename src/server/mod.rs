//! The broker's serving layer: per-shard start-up and accept loop, connection
//! handling, request dispatch, and one handler file per Kafka API family.
//! Every shard runs all of this for the connections it accepted.

pub mod admin;
pub mod api_versions;
pub mod broker;
pub mod cluster;
pub mod connection;
pub mod coordinator_log;
pub mod delete_records;
pub mod dispatch;
pub mod fetch;
pub mod groups;
pub mod list_offsets;
pub mod metadata;
pub mod partition_calls;
pub mod partition_ops;
pub mod produce;
pub mod producer_ids;
pub mod routing;
pub mod scatter;
pub mod shard;
pub mod topic_changes;
pub mod txn;
