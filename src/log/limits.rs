//! Every bound of the partition log, named in one place with the reason for
//! its value. All of them are per partition, so they are multiplied by the
//! number of partitions a shard owns: keep them small (Redpanda's users ran
//! out of memory at tens of thousands of partitions). Used on the owning shard.

/// Recent batches kept in memory so consumers at the tail never touch the
/// disk. 4 MiB covers several seconds of a busy partition's tail (a typical
/// fetch asks for 1 MiB per partition) while 1 000 partitions per shard stay
/// within 4 GiB even in the worst case.
pub(crate) const TAIL_CACHE_BYTES: usize = 4 << 20;

/// All tail caches of one shard together (`tail_cache`): they keep the
/// newest 256 MiB appended on the shard (each batch charged its bytes plus
/// its bookkeeping, 80 bytes), and past it the batches appended
/// longest ago are evicted, whichever partition holds them, so thousands of
/// partitions share 256 MiB instead of taking 4 MiB each. Before the budget,
/// 1,000 busy partitions grew the caches to 2.6 GB, and every batch appended
/// was fresh memory the kernel had to fault in and zero. Before the eviction
/// was by append order, a partition appending evicted its own oldest batches
/// instead, so at 1,000 partitions fed by two producers the batch before the
/// newest of each partition went before its consumer had read it.
pub(crate) const TAIL_CACHE_BYTES_PER_SHARD: usize = 256 << 20;

/// Appended batches not yet handed to the DMA writer. The produce path awaits
/// `wait_written` per request and connections bound their in-flight requests,
/// so this is only a backstop against a disk that stops answering: past it,
/// `append` answers a (retriable) storage error instead of growing memory.
pub(crate) const PENDING_BYTES_MAX: usize = 64 << 20;

/// Largest preallocation step of the active segment file (Redpanda uses the
/// same 32 MiB fallocate steps): big enough that block allocation rarely sits
/// on a busy partition's write path. A partition reaches it only by writing
/// fast (see `preallocation`), so thousands of idle partitions never reserve
/// it each (an Iggy lesson).
pub(crate) const PREALLOCATE_STEP_MAX_BYTES: u64 = 32 << 20;

/// Smallest preallocation step, the first one of every new segment: two
/// 4 KiB blocks, so an idle or tiny partition costs a few KiB of disk.
pub(crate) const PREALLOCATE_STEP_MIN_BYTES: u64 = 8 << 10;

/// Largest single DMA write. One group-commit round is cut into chunks of
/// this size that are submitted together (they cover disjoint blocks).
pub(crate) const WRITE_CHUNK_BYTES: usize = 1 << 20;

/// Bytes read at once while scanning a segment at start-up.
pub(crate) const RECOVERY_CHUNK_BYTES: usize = 1 << 20;

/// Bounds of the chunk a fetch reads from disk: at least one typical small
/// batch run, at most what a consumer usually asks for per partition.
pub(crate) const READ_CHUNK_BYTES_MIN: usize = 16 << 10;
pub(crate) const READ_CHUNK_BYTES_MAX: usize = 1 << 20;

/// Chunk used by ListOffsets scans, which only look at batch headers.
pub(crate) const LOOKUP_CHUNK_BYTES: usize = 64 << 10;

/// Index files larger than this are treated as corrupt and rebuilt. With the
/// default 4 KiB index interval a 2 GiB segment needs 4 MiB of offset index.
pub(crate) const INDEX_FILE_BYTES_MAX: u64 = 64 << 20;

/// Positions and relative offsets are stored as u32 in the indexes, so a
/// segment never grows past this many bytes (Kafka's `segment.bytes` is an
/// int for the same reason).
pub(crate) const SEGMENT_BYTES_LIMIT: u64 = i32::MAX as u64;

/// A segment rolls before a relative offset would overflow (Kafka's
/// `canConvertToRelativeOffset`).
pub(crate) const SEGMENT_RELATIVE_OFFSET_MAX: i64 = i32::MAX as i64;

const _: () = assert!(WRITE_CHUNK_BYTES.is_multiple_of(4096));
const _: () = assert!(PREALLOCATE_STEP_MAX_BYTES.is_multiple_of(WRITE_CHUNK_BYTES as u64));
const _: () = assert!(PREALLOCATE_STEP_MAX_BYTES.is_multiple_of(PREALLOCATE_STEP_MIN_BYTES));
const _: () = assert!((PREALLOCATE_STEP_MAX_BYTES / PREALLOCATE_STEP_MIN_BYTES).is_power_of_two());
const _: () = assert!(READ_CHUNK_BYTES_MIN <= READ_CHUNK_BYTES_MAX);
const _: () = assert!(TAIL_CACHE_BYTES < PENDING_BYTES_MAX);
