//! The bounded in-memory tail of a partition: the most recently appended
//! batches (sharing their `Bytes` with the pending-write queue, so unwritten
//! batches cost no second copy), so consumers at the tail never touch the
//! disk. Oldest batches are evicted past `capacity_bytes`, or while the
//! shard's caches together hold more than the shard's budget
//! (`TAIL_CACHE_BYTES_PER_SHARD`; a partition then evicts its own oldest
//! batches and keeps its newest). Lives on the partition's owning shard;
//! readers only see batches below the high watermark.

use std::cell::Cell;
use std::collections::VecDeque;

use bytes::Bytes;

use super::limits::TAIL_CACHE_BYTES_PER_SHARD;

thread_local! {
    /// Bytes cached by every tail cache of this shard (thread).
    static SHARD_CACHED_BYTES: Cell<usize> = const { Cell::new(0) };
    /// This shard's budget for all its tail caches.
    static SHARD_BUDGET_BYTES: Cell<usize> = const { Cell::new(TAIL_CACHE_BYTES_PER_SHARD) };
}

/// Sets this shard's budget for all its tail caches (tests shrink it).
#[cfg(test)]
pub(crate) fn set_shard_budget(bytes: usize) {
    SHARD_BUDGET_BYTES.with(|budget| budget.set(bytes));
}

/// Bytes this shard's tail caches hold together.
pub(crate) fn shard_cached_bytes() -> usize {
    SHARD_CACHED_BYTES.with(Cell::get)
}

fn shard_over_budget() -> bool {
    shard_cached_bytes() > SHARD_BUDGET_BYTES.with(Cell::get)
}

fn shard_add(bytes: usize) {
    SHARD_CACHED_BYTES.with(|cached| cached.set(cached.get() + bytes));
}

fn shard_remove(bytes: usize) {
    SHARD_CACHED_BYTES.with(|cached| cached.set(cached.get().saturating_sub(bytes)));
}

struct CachedBatch {
    base_offset: i64,
    last_offset: i64,
    bytes: Bytes,
}

pub(crate) struct TailCache {
    batches: VecDeque<CachedBatch>,
    cached_bytes: usize,
    capacity_bytes: usize,
}

impl TailCache {
    pub fn new(capacity_bytes: usize) -> TailCache {
        TailCache {
            batches: VecDeque::new(),
            cached_bytes: 0,
            capacity_bytes,
        }
    }

    /// Adds the newest batch (offsets only grow) and evicts the oldest ones
    /// past the capacity.
    pub fn push(&mut self, base_offset: i64, last_offset: i64, bytes: Bytes) {
        debug_assert!(self
            .batches
            .back()
            .is_none_or(|newest| newest.last_offset < base_offset));
        self.cached_bytes += bytes.len();
        shard_add(bytes.len());
        self.batches.push_back(CachedBatch {
            base_offset,
            last_offset,
            bytes,
        });
        while self.cached_bytes > self.capacity_bytes
            || (self.batches.len() > 1 && shard_over_budget())
        {
            match self.batches.pop_front() {
                Some(evicted) => {
                    self.cached_bytes -= evicted.bytes.len();
                    shard_remove(evicted.bytes.len());
                }
                None => break,
            }
        }
    }

    /// Whole batches from the one containing `offset`, below `high_watermark`,
    /// up to `max_bytes` but at least one (KIP-74). `None` when the cache does
    /// not reach back to `offset`: the caller reads from disk.
    pub fn read(&self, offset: i64, high_watermark: i64, max_bytes: usize) -> Option<Vec<Bytes>> {
        let oldest = self.batches.front()?;
        if oldest.base_offset > offset {
            return None;
        }
        let first = self
            .batches
            .partition_point(|batch| batch.last_offset < offset);
        if first == self.batches.len() {
            return None;
        }
        let mut found = Vec::new();
        let mut total = 0usize;
        for batch in self.batches.range(first..) {
            if batch.base_offset >= high_watermark {
                break;
            }
            if !found.is_empty() && total + batch.bytes.len() > max_bytes {
                break;
            }
            total += batch.bytes.len();
            found.push(batch.bytes.clone());
            if total >= max_bytes {
                break;
            }
        }
        Some(found)
    }

    pub fn capacity_bytes(&self) -> usize {
        self.capacity_bytes
    }

    pub fn clear(&mut self) {
        self.batches.clear();
        shard_remove(std::mem::take(&mut self.cached_bytes));
    }
}

impl Drop for TailCache {
    fn drop(&mut self) {
        shard_remove(self.cached_bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache_of(batches: &[(i64, i64, usize)], capacity_bytes: usize) -> TailCache {
        let mut cache = TailCache::new(capacity_bytes);
        for (base, last, size) in batches {
            cache.push(*base, *last, Bytes::from(vec![0u8; *size]));
        }
        cache
    }

    #[test]
    fn read_starts_at_the_containing_batch_and_stops_at_the_watermark() {
        let cache = cache_of(&[(0, 2, 100), (3, 5, 100), (6, 9, 100)], 1_000);
        let sizes = |found: Option<Vec<Bytes>>| found.map(|batches| batches.len());
        assert_eq!(sizes(cache.read(0, 10, 1_000)), Some(3));
        assert_eq!(sizes(cache.read(4, 10, 1_000)), Some(2));
        assert_eq!(sizes(cache.read(4, 6, 1_000)), Some(1));
        assert_eq!(sizes(cache.read(1, 10, 150)), Some(1));
        assert_eq!(
            sizes(cache.read(1, 10, 10)),
            Some(1),
            "KIP-74: at least one batch"
        );
        assert_eq!(sizes(cache.read(10, 11, 1_000)), None);
    }

    #[test]
    fn the_shard_budget_is_shared_and_each_partition_keeps_its_newest_batch() {
        // Each test runs on its own thread: the shard counters are its own.
        set_shard_budget(1_000);
        let mut first = cache_of(&[(0, 0, 400), (1, 1, 400)], 10_000);
        assert_eq!(shard_cached_bytes(), 800);
        let second = cache_of(&[(0, 0, 400)], 10_000);
        // The second partition pushed the shard past 1,000 but holds one batch.
        assert_eq!(second.cached_bytes, 400);
        assert_eq!(shard_cached_bytes(), 1_200);
        // The next push on the first evicts its own oldest until within budget.
        first.push(2, 2, Bytes::from(vec![0u8; 100]));
        assert_eq!(first.cached_bytes, 500);
        assert!(
            first.read(0, 3, 10_000).is_none(),
            "evicted offsets go to disk"
        );
        assert_eq!(shard_cached_bytes(), 900);
        drop(second);
        assert_eq!(shard_cached_bytes(), 500);
        first.clear();
        assert_eq!(shard_cached_bytes(), 0);
    }

    #[test]
    fn eviction_keeps_the_bound_and_sends_old_offsets_to_disk() {
        let cache = cache_of(&[(0, 0, 400), (1, 1, 400), (2, 2, 400)], 1_000);
        assert_eq!(cache.cached_bytes, 800);
        assert!(cache.read(0, 3, 1_000).is_none());
        assert_eq!(cache.read(1, 3, 1_000).map(|found| found.len()), Some(2));
    }
}
