//! corelog: a Kafka-compatible event streaming broker, thread-per-core on
//! glommio and io_uring. See `README.md` for the user's view and
//! `../shared/DESIGN.md` for the layers; each module's header says what it
//! owns and on which shard it lives.
#![deny(clippy::await_holding_refcell_ref)]

pub mod cli;
pub mod client;
pub mod cluster;
pub mod config;
pub mod group;
pub mod limits;
pub mod loadgen;
pub mod log;
pub mod metadata;
pub mod protocol;
pub mod replication;
pub mod runtime;
pub mod server;
pub mod txn;

#[global_allocator]
static ALLOCATOR: runtime::allocator::GuardedAllocator = runtime::allocator::GuardedAllocator;
