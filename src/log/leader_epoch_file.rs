//! The partition's `leader-epoch-checkpoint` file (Kafka's name and text
//! format, see `replication::leader_epochs`): loaded at open, written when a
//! segment is sealed (at a roll, and at close) if the cache changed. Between
//! seals the active segment's batches are the record: every batch carries
//! its leader epoch and the open rescans the active segment, so no append
//! ever waits for this file (it costs a file replace with two fsyncs). Lives
//! on the partition's owning shard.
//!
//! A lost or damaged file is not fatal either: the open then rebuilds what
//! the active segment shows, and only epochs that began in sealed segments
//! get a later start than the true one.

use std::io;
use std::path::{Path, PathBuf};

use crate::replication::leader_epochs::{decode_checkpoint, encode_checkpoint, LeaderEpochCache};
use crate::runtime::durable_file;

use super::partition::LogInner;

/// Kafka's file name.
pub(crate) const LEADER_EPOCH_FILE: &str = "leader-epoch-checkpoint";
/// Far above any real checkpoint (100,000 entries of ~25 bytes).
const LEADER_EPOCH_FILE_BYTES_MAX: u64 = 4 << 20;

fn path(dir: &Path) -> PathBuf {
    dir.join(LEADER_EPOCH_FILE)
}

/// The checkpoint in `dir`; empty when there is none or it is damaged.
pub(crate) async fn load(dir: &Path) -> io::Result<LeaderEpochCache> {
    let bytes = match durable_file::read_small(&path(dir), LEADER_EPOCH_FILE_BYTES_MAX).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(LeaderEpochCache::default()),
        Err(error) if error.kind() == io::ErrorKind::InvalidData => {
            tracing::warn!(dir = %dir.display(), %error, "leader-epoch checkpoint too large; rebuilding");
            return Ok(LeaderEpochCache::default());
        }
        Err(error) => return Err(error),
    };
    let decoded = std::str::from_utf8(&bytes)
        .map_err(|_| "not UTF-8".to_string())
        .and_then(|text| decode_checkpoint(text).map_err(|error| error.to_string()));
    Ok(decoded.unwrap_or_else(|error| {
        tracing::warn!(dir = %dir.display(), %error, "leader-epoch checkpoint unreadable; rebuilding");
        LeaderEpochCache::default()
    }))
}

/// Writes `cache` durably to `dir`.
pub(crate) async fn store(dir: &Path, cache: &LeaderEpochCache) -> io::Result<()> {
    durable_file::replace(&path(dir), encode_checkpoint(cache).into_bytes()).await
}

/// The writer task's step: stores the cache if it changed since the last store.
pub(crate) async fn store_if_changed(inner: &LogInner) -> io::Result<()> {
    if !inner.epochs_changed.replace(false) {
        return Ok(());
    }
    let cache = inner.epochs.borrow().clone();
    if let Err(error) = store(&inner.dir, &cache).await {
        inner.epochs_changed.set(true);
        return Err(error);
    }
    Ok(())
}
