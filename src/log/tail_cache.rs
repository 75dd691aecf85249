//! The bounded in-memory tail of a partition: the most recently appended
//! batches (sharing their `Bytes` with the pending-write queue, so unwritten
//! batches cost no second copy), so consumers at the tail never touch the
//! disk. A partition evicts its own oldest batches past `capacity_bytes`; the
//! shard's caches together keep the newest `TAIL_CACHE_BYTES_PER_SHARD` of
//! what was appended on the shard, whichever partitions it went to: past the
//! budget, the batches appended longest ago on the shard are evicted, as a
//! page cache would, so a consumer a few hundred milliseconds behind any of
//! thousands of partitions still reads memory. Lives on the partition's
//! owning shard; readers only see batches below the high watermark.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

use bytes::Bytes;

use super::limits::TAIL_CACHE_BYTES_PER_SHARD;

/// One batch appended on this shard, in the shard's append order.
struct Appended {
    batches: Weak<RefCell<CachedBatches>>,
    /// The partition's `CachedBatches::generation` then: a cleared cache
    /// (truncation) may reuse the offsets for newer batches.
    generation: u64,
    last_offset: i64,
    bytes: usize,
}

thread_local! {
    /// What every tail cache of this shard holds, charged (`charge`).
    static SHARD_CACHED_BYTES: Cell<usize> = const { Cell::new(0) };
    /// This shard's budget for all its tail caches.
    static SHARD_BUDGET_BYTES: Cell<usize> = const { Cell::new(TAIL_CACHE_BYTES_PER_SHARD) };
    /// Every batch appended on this shard within the last budget's worth of
    /// bytes, oldest first, whether or not its partition still caches it.
    static SHARD_APPENDED: RefCell<VecDeque<Appended>> = const { RefCell::new(VecDeque::new()) };
    /// What `SHARD_APPENDED` was charged (at most the budget after a push).
    static SHARD_APPENDED_BYTES: Cell<usize> = const { Cell::new(0) };
}

/// Sets this shard's budget for all its tail caches (tests shrink it).
#[cfg(test)]
pub(crate) fn set_shard_budget(bytes: usize) {
    SHARD_BUDGET_BYTES.with(|budget| budget.set(bytes));
}

/// What this shard's tail caches hold together, charged.
#[cfg(test)]
pub(crate) fn shard_cached_bytes() -> usize {
    SHARD_CACHED_BYTES.with(Cell::get)
}

fn shard_add(bytes: usize) {
    SHARD_CACHED_BYTES.with(|cached| cached.set(cached.get() + bytes));
}

fn shard_remove(bytes: usize) {
    SHARD_CACHED_BYTES.with(|cached| cached.set(cached.get().saturating_sub(bytes)));
}

/// What a cached batch costs besides its bytes: its entry in its partition's
/// cache and in the shard's append order. Charged to the shard's budget with
/// the bytes, so that thousands of tiny batches stay within it too.
const BATCH_BOOKKEEPING_BYTES: usize =
    std::mem::size_of::<CachedBatch>() + std::mem::size_of::<Appended>();

/// What a batch of `len` bytes is charged to the shard's budget.
fn charge(len: usize) -> usize {
    len + BATCH_BOOKKEEPING_BYTES
}

/// Records a batch just cached (`bytes` is its charge), then evicts the
/// batches appended longest ago on this shard until what was appended since
/// fits the budget.
fn shard_appended(batches: &Rc<RefCell<CachedBatches>>, last_offset: i64, bytes: usize) {
    let generation = batches.borrow().generation;
    SHARD_APPENDED.with(|appended| {
        appended.borrow_mut().push_back(Appended {
            batches: Rc::downgrade(batches),
            generation,
            last_offset,
            bytes,
        })
    });
    let budget = SHARD_BUDGET_BYTES.with(Cell::get);
    let mut appended_bytes = SHARD_APPENDED_BYTES.with(Cell::get) + bytes;
    while appended_bytes > budget {
        let Some(oldest) = SHARD_APPENDED.with(|appended| appended.borrow_mut().pop_front()) else {
            break;
        };
        appended_bytes -= oldest.bytes;
        // Gone already when its partition was dropped, cleared or past its own capacity.
        if let Some(batches) = oldest.batches.upgrade() {
            let mut batches = batches.borrow_mut();
            if batches.generation == oldest.generation {
                batches.evict_through(oldest.last_offset);
            }
        }
    }
    SHARD_APPENDED_BYTES.with(|total| total.set(appended_bytes));
}

struct CachedBatch {
    base_offset: i64,
    last_offset: i64,
    bytes: Bytes,
}

/// One partition's cached batches, oldest first. Shared (weakly) with the
/// shard's append order, which evicts from it.
#[derive(Default)]
struct CachedBatches {
    batches: VecDeque<CachedBatch>,
    cached_bytes: usize,
    /// Bumped by every `TailCache::clear`.
    generation: u64,
}

impl CachedBatches {
    /// What these batches are charged to the shard's budget.
    fn charged(&self) -> usize {
        self.cached_bytes + self.batches.len() * BATCH_BOOKKEEPING_BYTES
    }

    fn evict_oldest(&mut self) {
        if let Some(evicted) = self.batches.pop_front() {
            self.cached_bytes -= evicted.bytes.len();
            shard_remove(charge(evicted.bytes.len()));
        }
    }

    /// Evicts the batches up to and including the one ending at `last_offset`.
    fn evict_through(&mut self, last_offset: i64) {
        while self
            .batches
            .front()
            .is_some_and(|oldest| oldest.last_offset <= last_offset)
        {
            self.evict_oldest();
        }
    }
}

pub(crate) struct TailCache {
    batches: Rc<RefCell<CachedBatches>>,
    capacity_bytes: usize,
}

impl TailCache {
    pub fn new(capacity_bytes: usize) -> TailCache {
        TailCache {
            batches: Rc::default(),
            capacity_bytes,
        }
    }

    /// Adds the newest batch (offsets only grow), evicts this partition's
    /// oldest ones past its capacity, and the shard's oldest past the
    /// shard's budget.
    pub fn push(&mut self, base_offset: i64, last_offset: i64, bytes: Bytes) {
        let len = bytes.len();
        {
            let mut cached = self.batches.borrow_mut();
            debug_assert!(cached
                .batches
                .back()
                .is_none_or(|newest| newest.last_offset < base_offset));
            cached.cached_bytes += len;
            shard_add(charge(len));
            cached.batches.push_back(CachedBatch {
                base_offset,
                last_offset,
                bytes,
            });
            while cached.cached_bytes > self.capacity_bytes {
                cached.evict_oldest();
            }
        }
        shard_appended(&self.batches, last_offset, charge(len));
    }

    /// Whole batches from the one containing `offset`, below `high_watermark`,
    /// up to `max_bytes` but at least one (KIP-74). `None` when the cache does
    /// not reach back to `offset`: the caller reads from disk.
    pub fn read(&self, offset: i64, high_watermark: i64, max_bytes: usize) -> Option<Vec<Bytes>> {
        let cached = self.batches.borrow();
        let batches = &cached.batches;
        let oldest = batches.front()?;
        if oldest.base_offset > offset {
            return None;
        }
        let first = batches.partition_point(|batch| batch.last_offset < offset);
        if first == batches.len() {
            return None;
        }
        let mut found = Vec::new();
        let mut total = 0usize;
        for batch in batches.range(first..) {
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

    /// Bytes this partition caches.
    #[cfg(test)]
    fn cached_bytes(&self) -> usize {
        self.batches.borrow().cached_bytes
    }

    pub fn clear(&mut self) {
        let mut cached = self.batches.borrow_mut();
        shard_remove(cached.charged());
        cached.batches.clear();
        cached.cached_bytes = 0;
        cached.generation += 1;
    }
}

impl Drop for TailCache {
    fn drop(&mut self) {
        shard_remove(self.batches.borrow().charged());
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
    fn past_the_shard_budget_the_batches_appended_longest_ago_are_evicted_whichever_partition() {
        // Each test runs on its own thread: the shard counters are its own.
        // Two 400-byte batches fit, three do not.
        set_shard_budget(1_000 + 2 * BATCH_BOOKKEEPING_BYTES);
        let mut first = cache_of(&[(0, 0, 400), (1, 1, 400)], 10_000);
        assert_eq!(shard_cached_bytes(), charge(400) * 2);
        let mut second = cache_of(&[(0, 0, 400)], 10_000);
        // The second partition's append pushed the shard past its budget:
        // the shard's oldest batch, the first partition's offset 0, went.
        assert_eq!(second.cached_bytes(), 400);
        assert_eq!(first.cached_bytes(), 400);
        assert!(
            first.read(0, 3, 10_000).is_none(),
            "evicted offsets go to disk"
        );
        assert_eq!(first.read(1, 3, 10_000).map(|found| found.len()), Some(1));
        assert_eq!(shard_cached_bytes(), charge(400) * 2);
        // Past the budget again, the shard's oldest left go in append order:
        // the first's offset 1, then the second's offset 0.
        first.push(2, 2, Bytes::from(vec![0u8; 300]));
        assert_eq!((first.cached_bytes(), second.cached_bytes()), (300, 400));
        second.push(1, 1, Bytes::from(vec![0u8; 400]));
        assert_eq!((first.cached_bytes(), second.cached_bytes()), (300, 400));
        assert!(second.read(0, 2, 10_000).is_none());
        assert_eq!(shard_cached_bytes(), charge(300) + charge(400));
        drop(second);
        assert_eq!(shard_cached_bytes(), charge(300));
        // A dropped partition's batches no longer count, and its entries in
        // the append order are skipped.
        for offset in 3..40 {
            first.push(offset, offset, Bytes::from(vec![0u8; 100]));
        }
        let fit = (1_000 + 2 * BATCH_BOOKKEEPING_BYTES) / charge(100);
        assert_eq!(first.cached_bytes(), fit * 100);
        assert_eq!(shard_cached_bytes(), fit * charge(100));
        first.clear();
        assert_eq!(shard_cached_bytes(), 0);
    }

    #[test]
    fn a_quiet_partition_keeps_its_tail_while_a_busy_one_stays_within_the_budget() {
        set_shard_budget(charge(100) * 10);
        let mut busy = cache_of(&[(0, 0, 100)], 10_000);
        let quiet = cache_of(&[(0, 0, 100)], 10_000);
        for offset in 1..8 {
            busy.push(offset, offset, Bytes::from(vec![0u8; 100]));
        }
        assert_eq!(quiet.read(0, 1, 10_000).map(|found| found.len()), Some(1));
        assert_eq!(shard_cached_bytes(), charge(100) * 9);
        for offset in 8..20 {
            busy.push(offset, offset, Bytes::from(vec![0u8; 100]));
        }
        assert!(quiet.read(0, 1, 10_000).is_none(), "oldest on the shard");
        assert_eq!(busy.cached_bytes(), 1_000);
        assert_eq!(busy.read(10, 20, 10_000).map(|found| found.len()), Some(10));
    }

    #[test]
    fn tiny_batches_are_charged_their_bookkeeping() {
        set_shard_budget(1 << 20);
        let mut tiny = TailCache::new(usize::MAX);
        for offset in 0..100_000 {
            tiny.push(offset, offset, Bytes::from_static(&[0u8; 10]));
        }
        // Without the bookkeeping, all 100,000 would fit in 1 MiB.
        assert_eq!(tiny.cached_bytes(), ((1 << 20) / charge(10)) * 10);
        assert!(shard_cached_bytes() <= 1 << 20);
    }

    #[test]
    fn batches_appended_after_a_clear_are_not_evicted_for_the_offsets_they_reuse() {
        set_shard_budget(900 + 3 * BATCH_BOOKKEEPING_BYTES);
        let mut truncated = cache_of(&[(0, 9, 400)], 10_000);
        truncated.clear();
        truncated.push(0, 4, Bytes::from(vec![0u8; 300]));
        let mut other = cache_of(&[(0, 0, 300)], 10_000);
        // Past the budget: the cleared batch's entry goes first, and it must
        // not take the newer batch at offsets 0-4 with it.
        other.push(1, 1, Bytes::from(vec![0u8; 300]));
        assert_eq!(
            truncated.read(0, 5, 10_000).map(|found| found.len()),
            Some(1)
        );
        assert_eq!(shard_cached_bytes(), charge(300) * 3);
    }

    #[test]
    fn eviction_keeps_the_bound_and_sends_old_offsets_to_disk() {
        let cache = cache_of(&[(0, 0, 400), (1, 1, 400), (2, 2, 400)], 1_000);
        assert_eq!(cache.cached_bytes(), 800);
        assert!(cache.read(0, 3, 1_000).is_none());
        assert_eq!(cache.read(1, 3, 1_000).map(|found| found.len()), Some(2));
    }
}
