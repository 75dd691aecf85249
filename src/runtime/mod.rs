//! Thread-per-core runtime: one pinned glommio executor per shard, the shard
//! mesh, partition placement, the locked-memory limit and process signals.

pub mod allocator;
pub mod host_check;
pub mod memlock;
pub mod mesh;
pub mod placement;
pub mod signals;
