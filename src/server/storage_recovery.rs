//! Partitions whose write met a full disk come back without a restart.
//!
//! The free-space guard (`log::free_space`) refuses Produce before the disk
//! fills, so a partition normally never sees ENOSPC. When one does anyway
//! (the guard is off, or another process filled the disk between two of its
//! reads), its log fails: the round in flight and everything queued behind
//! it answer KAFKA_STORAGE_ERROR, and so does every later call. Kafka takes
//! the whole log directory offline until a restart; corelog reopens just that
//! partition once space is back.
//!
//! The trigger is the next Produce (or replica fetch) that finds the log
//! failed: no timer per partition, nothing runs while nobody writes. It
//! starts at most one attempt per partition at a time and at most one per
//! `RETRY_AFTER`. An attempt reads the free space first and gives up while
//! less than `STORAGE_REOPEN_FREE_BYTES_MIN` (`crate::limits`), or the
//! guard's reserve if larger, is free; otherwise it reopens the log
//! (`PartitionLog::reopen`: what was acknowledged stays, the failed round is
//! cut off), puts the new log in the shard's table and gives it its role
//! again (`replicas::sync_partition`).
//!
//! Internal topics (`__consumer_offsets`, `__transaction_state`) are not
//! reopened: their coordinators hold state loaded from the log, and they
//! stay failed until a restart, as in Kafka.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::replicas::{self, PartitionKey};
use super::shard::Shard;
use crate::limits::{STORAGE_REOPEN_FREE_BYTES_MIN, STORAGE_REOPEN_RETRY_MS};
use crate::log::free_space::volume_blocks;
use crate::log::PartitionLog;
use crate::metadata::topic_name::is_internal_topic;

/// Least time between two attempts for one partition.
const RETRY_AFTER: Duration = Duration::from_millis(STORAGE_REOPEN_RETRY_MS);

/// This shard's recent attempts, by partition: whether one runs, and when
/// the last one started. Only entries that still hold an attempt back are
/// kept (running, or started less than `RETRY_AFTER` ago), so partitions
/// deleted while failed leave nothing behind.
#[derive(Default)]
pub struct StorageRecovery {
    attempts: RefCell<HashMap<PartitionKey, Attempt>>,
}

#[derive(Clone, Copy)]
struct Attempt {
    running: bool,
    started: Instant,
}

impl StorageRecovery {
    /// Claims an attempt for `key` at `now`: false while one runs or the last
    /// one started less than `RETRY_AFTER` ago.
    fn claim(&self, key: &PartitionKey, now: Instant) -> bool {
        let holds_back = |attempt: &Attempt| {
            attempt.running || now.saturating_duration_since(attempt.started) < RETRY_AFTER
        };
        let mut attempts = self.attempts.borrow_mut();
        attempts.retain(|_, attempt| holds_back(attempt));
        if attempts.contains_key(key) {
            return false;
        }
        attempts.insert(
            key.clone(),
            Attempt {
                running: true,
                started: now,
            },
        );
        true
    }

    fn finish(&self, key: &PartitionKey, reopened: bool) {
        let mut attempts = self.attempts.borrow_mut();
        if reopened {
            attempts.remove(key);
        } else if let Some(attempt) = attempts.get_mut(key) {
            attempt.running = false;
        }
    }
}

/// Starts an attempt to reopen `log` if its write met a full disk and no
/// attempt for it runs or ran in the last `RETRY_AFTER`. Returns at once.
pub fn reopen_if_full(shard: &Rc<Shard>, topic: &Arc<str>, partition: i32, log: &PartitionLog) {
    if !log.storage_full() || is_internal_topic(topic) {
        return;
    }
    let key: PartitionKey = (Arc::clone(topic), partition);
    if !shard.storage_recovery.claim(&key, Instant::now()) {
        return;
    }
    let shard = Rc::clone(shard);
    let log = log.clone();
    glommio::spawn_local(async move {
        let reopened = attempt(&shard, &key, log).await;
        shard.storage_recovery.finish(&key, reopened);
    })
    .detach();
}

/// One attempt; answers whether the partition was reopened.
async fn attempt(shard: &Rc<Shard>, key: &PartitionKey, log: PartitionLog) -> bool {
    let data_dir = shard.config.data_dir.clone();
    let read = glommio::executor()
        .spawn_blocking(move || volume_blocks(&data_dir))
        .await;
    let needed = shard
        .free_space
        .reserve_bytes()
        .max(STORAGE_REOPEN_FREE_BYTES_MIN);
    match read {
        Ok(blocks) if blocks.available_bytes() >= needed => {}
        Ok(blocks) => {
            tracing::debug!(topic = %key.0, partition = key.1, free_bytes = blocks.available_bytes(),
                needed, "disk still full: the failed partition stays failed");
            return false;
        }
        Err(error) => {
            tracing::warn!(topic = %key.0, partition = key.1, %error,
                "cannot read the free space: the failed partition stays failed");
            return false;
        }
    }
    let current = shard.partition_log(&key.0, key.1);
    if !current.is_some_and(|current| current.same_log(&log)) {
        // Deleted, moved or reopened meanwhile.
        return true;
    }
    tracing::info!(topic = %key.0, partition = key.1, "space is free again: reopening the partition whose write met a full disk");
    // Keeps role changes (`sync_partition`) off the log while it is closed.
    shard.replicas.set_truncating(key, true);
    let reopened = log.clone().reopen().await;
    shard.replicas.set_truncating(key, false);
    let new_log = match reopened {
        Ok(new_log) => new_log,
        Err(error) => {
            tracing::error!(topic = %key.0, partition = key.1, %error, "cannot reopen the partition; retrying on its next write");
            return false;
        }
    };
    let still_here = shard
        .partition_log(&key.0, key.1)
        .is_some_and(|current| current.same_log(&log));
    if !still_here {
        // The topic went away while the log was reopening. The open made its
        // directory again: remove it, unless a new topic of the same name
        // holds the directory now.
        let closed = if shard.partition_log(&key.0, key.1).is_some() {
            new_log.close().await
        } else {
            new_log.delete().await
        };
        if let Err(error) = closed {
            tracing::warn!(topic = %key.0, partition = key.1, %error, "closing a reopened log nobody holds");
        }
        return true;
    }
    shard.replace_partition_log(&key.0, key.1, new_log.clone());
    // A leader's role holds the old log: step down, then take the role again
    // with the new one (same epoch).
    shard.replicas.step_down(key);
    let catalog = shard.catalog();
    replicas::sync_partition(shard, &catalog, key.clone(), new_log.clone());
    tracing::info!(topic = %key.0, partition = key.1, log_end_offset = new_log.log_end_offset(),
        "partition reopened: writes accepted again");
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> PartitionKey {
        (Arc::from("t"), 0)
    }

    #[test]
    fn one_attempt_at_a_time_and_one_per_interval() {
        let recovery = StorageRecovery::default();
        let now = Instant::now();
        assert!(recovery.claim(&key(), now));
        assert!(
            !recovery.claim(&key(), now + RETRY_AFTER * 2),
            "one runs already"
        );
        recovery.finish(&key(), false);
        assert!(
            !recovery.claim(&key(), now + RETRY_AFTER / 2),
            "the last one started too recently"
        );
        assert!(recovery.claim(&key(), now + RETRY_AFTER));
        assert!(
            recovery.claim(&(Arc::from("t"), 1), now),
            "other partitions are independent"
        );
    }

    #[test]
    fn attempts_that_no_longer_hold_back_are_dropped() {
        let recovery = StorageRecovery::default();
        let now = Instant::now();
        assert!(recovery.claim(&key(), now));
        recovery.finish(&key(), false);
        // Its partition was deleted while failed: no attempt for it comes again.
        assert!(recovery.claim(&(Arc::from("t"), 1), now + RETRY_AFTER));
        assert_eq!(recovery.attempts.borrow().len(), 1);
    }

    #[test]
    fn a_reopened_partition_is_forgotten() {
        let recovery = StorageRecovery::default();
        let now = Instant::now();
        assert!(recovery.claim(&key(), now));
        recovery.finish(&key(), true);
        assert!(recovery.attempts.borrow().is_empty());
        assert!(
            recovery.claim(&key(), now),
            "a later failure starts at once"
        );
    }
}
