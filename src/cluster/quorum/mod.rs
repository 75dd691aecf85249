//! The metadata quorum: one openraft group whose log holds the cluster
//! metadata records. It runs on shard 0 of every voter node (the controller
//! shard); the Raft leader is the active controller.

pub mod channels;
pub mod log_store;
pub mod network;
pub mod node;
pub mod rpc;
pub mod runtime;
pub mod state_machine;
pub mod stored;
pub mod transport;
pub mod types;

#[cfg(test)]
mod storage_tests;
#[cfg(test)]
mod tests;
