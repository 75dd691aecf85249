//! The broker's serving layer: per-shard start-up and accept loop, connection
//! handling, request dispatch, and one handler file per Kafka API family.
//! Every shard runs all of this for the connections it accepted.
//!
//! Layering inside:
//! - `routing` is the one way to reach another shard (and, later, node);
//!   each call is a typed value with its own reply (`runtime::mesh::ShardCall`).
//! - Data plane: `partition_calls` (the calls, a leaf), `partition_ops`,
//!   `produce`, `fetch`, `list_offsets`, `scatter`. They import no
//!   control-plane module; what Produce needs from it comes in through
//!   `produce::ProduceControl`, implemented in `dispatch`.
//! - Control plane: `admin`, `topic_changes`, `groups`, `txn`,
//!   `producer_ids`, `delete_records`, `describe_log_dirs`; they call into
//!   the data plane, never the reverse.
//! - `dispatch` sits above both and maps each API to its handler.

pub mod admin;
pub mod api_versions;
pub mod auto_creations;
pub mod broker;
pub mod cluster;
pub mod cluster_metadata;
pub mod connection;
pub mod coordinator_log;
pub mod data_dir_lock;
pub mod delete_records;
pub mod describe_configs;
pub mod describe_log_dirs;
pub mod describe_topic_partitions;
pub mod dispatch;
pub mod fetch;
pub mod fetch_sessions;
pub mod groups;
pub mod leader_elections;
pub mod list_offsets;
pub mod metadata;
pub mod offset_for_leader_epoch;
pub mod partition_calls;
pub mod partition_ops;
pub mod peer_brokers;
pub mod produce;
pub mod producer_ids;
pub mod reassignments;
pub mod replica_fetch_session;
pub mod replica_fetcher;
pub mod replicas;
pub mod response_memory;
pub mod routing;
pub mod scatter;
pub mod shard;
pub mod storage_recovery;
pub mod topic_changes;
pub mod txn;
pub mod vectored_write;
