//! Thread-per-core runtime: one pinned glommio executor per shard, the shard
//! mesh, partition placement, the locked-memory limit and process signals,
//! and the small mechanisms every layer shares: the wall clock and the
//! durable replace of a small file.

pub mod allocator;
pub mod clock;
pub mod durable_file;
pub mod host_check;
pub mod memlock;
pub mod mesh;
pub mod placement;
pub mod signals;
