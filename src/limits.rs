//! Broker-wide bounds: how the node shares what the host gives it: open
//! files, free disk space, and the memory budgets of a shard (responses waiting for sockets
//! here; request bytes in `server::shard::REQUEST_MEMORY_BYTES_PER_SHARD`).
//! Per-partition bounds of the log are in `log::limits`. Every value says why
//! it is what it is, and `check` verifies at start-up that the bounds fit
//! together and fit the host, refusing to start with the reason otherwise.

/// Share of RLIMIT_NOFILE (the soft limit: corelog does not raise it) that
/// segment files may hold open, split evenly between shards. The rest is for
/// client and peer sockets, directories, index and snapshot files being
/// written, and the runtime's own descriptors. Segment files past the budget
/// are closed least recently used first and reopened on demand
/// (`log::segment_file`), so partitions are not bounded by the limit.
pub const SEGMENT_FILES_PERCENT_OF_NOFILE: u64 = 50;

/// Fewest segment files a shard keeps open. Below this the cache would
/// reopen files for nearly every read and write; `check` refuses to start
/// rather than run that way.
pub const SEGMENT_FILES_PER_SHARD_MIN: u64 = 64;

/// Partition replicas one node holds unless `--max-partitions-per-node` says
/// otherwise. Topic creation and CreatePartitions past it are refused with
/// POLICY_VIOLATION and the reason, before anything is created. 100,000 is
/// the figure measured on the reference host (2 cores, 20,000 descriptors):
/// created, written, read back and restarted (tests/many_partitions.rs);
/// an idle partition costs a few KiB of memory and of disk, so the bound is
/// start-up and shutdown time and the metadata every client downloads, not
/// descriptors (segment files are a bounded cache).
pub const PARTITIONS_PER_NODE_DEFAULT: u32 = 100_000;

/// Partition logs a shard opens at once (start-up, new topics). Each open
/// holds a few descriptors for a moment (its directory, the files it reads)
/// outside the segment-file budget, so this is counted in the half of
/// RLIMIT_NOFILE left to everything else; more would only queue on the disk.
pub const PARTITION_OPENS_IN_FLIGHT: usize = 32;

/// Response bytes a shard lets wait for sockets before it shapes fetches
/// down (`server::response_memory`): a consumer that stops reading holds its
/// one encoded frame until its socket drains, and this many bytes of such
/// frames is what a shard tolerates before every new fetch gets less.
pub const RESPONSE_MEMORY_BYTES_PER_SHARD: u64 = 256 << 20;

/// Largest Fetch response a shard builds, whatever `max_bytes` asked (Kafka's
/// broker caps it too, with `fetch.max.bytes`, 55 MiB). 8 MiB keeps a
/// consumer of 1,000 partitions busy while bounding what one stuck consumer
/// holds: 50 of them hold 400 MiB at most.
pub const FETCH_RESPONSE_BYTES_MAX: u64 = 8 << 20;

/// Smallest allowance a Fetch gets when responses waiting for sockets used
/// up the budget: small enough that many stuck consumers add little, large
/// enough that everyone else keeps being served.
pub const FETCH_RESPONSE_BYTES_FLOOR: u64 = 256 << 10;

const _: () = assert!(FETCH_RESPONSE_BYTES_FLOOR <= FETCH_RESPONSE_BYTES_MAX);
const _: () = assert!(FETCH_RESPONSE_BYTES_MAX * 4 <= RESPONSE_MEMORY_BYTES_PER_SHARD);

/// Free space kept on the data directory's file system (`--min-free-bytes`,
/// Redpanda's `storage_min_free_bytes`, whose default is 5 GiB): below it,
/// Produce is refused with KAFKA_STORAGE_ERROR before anything is appended
/// (`log::free_space`), so a full disk never fails a write half way. What is
/// still written meanwhile comes out of it: consumer offset commits and
/// transaction markers (never refused, or groups and transactions would
/// stall), preallocation steps of active segments (up to 32 MiB each),
/// index and snapshot files at rolls and closes, and what the shards
/// admitted since their last look at statvfs. 1 GiB covers that on a busy
/// node and is a small share of any disk a broker runs on; 0 turns the
/// guard off (a write then fails only when the disk is really full).
/// As a default it is also capped at `MIN_FREE_SHARE_DEFAULT_DIVISOR`th of
/// the file system ([`default_min_free_bytes`]): a reserve as large as a
/// small data volume would refuse every Produce from the start.
pub const MIN_FREE_BYTES_DEFAULT: u64 = 1 << 30;

/// The default reserve is at most this fraction (1/N) of the data
/// directory's file system: 10%, 100 MiB of a 1 GiB volume.
pub const MIN_FREE_SHARE_DEFAULT_DIVISOR: u64 = 10;

/// The reserve the free-space guard keeps: `configured` as given, except
/// the default, which is capped at a tenth of the file system's size
/// (`volume_bytes`, asked only then; `None` when unknown).
pub fn default_min_free_bytes(configured: u64, volume_bytes: impl FnOnce() -> Option<u64>) -> u64 {
    if configured != MIN_FREE_BYTES_DEFAULT {
        return configured;
    }
    match volume_bytes() {
        Some(volume) => configured.min(volume / MIN_FREE_SHARE_DEFAULT_DIVISOR),
        None => configured,
    }
}

/// How often each shard reads its data directory's free space (statvfs, on
/// glommio's blocking pool, never on the produce path). It also reads it
/// early after admitting `free_space_check_bytes`. Half a second is how long
/// Produce stays refused after space is freed, at worst; one statvfs per
/// half second per shard costs nothing measurable.
pub const FREE_SPACE_CHECK_INTERVAL_MS: u64 = 500;

/// Produce bytes a shard admits before it reads the free space again,
/// without waiting for the interval: a quarter of the reserve split between
/// the shards, so everything the shards admit between two reads stays well
/// inside the reserve. At least 1 MiB (a tiny reserve would otherwise mean a
/// statvfs per request), at most 256 MiB.
pub fn free_space_check_bytes(min_free_bytes: u64, shards: usize) -> u64 {
    let shards = u64::try_from(shards.max(1)).unwrap_or(u64::MAX);
    (min_free_bytes / 4 / shards).clamp(FREE_SPACE_CHECK_BYTES_MIN, FREE_SPACE_CHECK_BYTES_MAX)
}

const FREE_SPACE_CHECK_BYTES_MIN: u64 = 1 << 20;
const FREE_SPACE_CHECK_BYTES_MAX: u64 = 256 << 20;
const _: () = assert!(FREE_SPACE_CHECK_BYTES_MIN <= FREE_SPACE_CHECK_BYTES_MAX);
const _: () = assert!(FREE_SPACE_CHECK_BYTES_MAX <= MIN_FREE_BYTES_DEFAULT / 4);

/// A partition whose write met a full disk anyway (guard off, or the disk
/// filled from outside) is reopened by the next write that finds it failed
/// (`server::storage_recovery`), at most once per this interval.
pub const STORAGE_REOPEN_RETRY_MS: u64 = 1_000;

/// ... and only while at least this much (or the reserve, if larger) is free:
/// a reopen with no room would fail again at the next write.
pub const STORAGE_REOPEN_FREE_BYTES_MIN: u64 = 8 << 20;

/// Partition logs a shard closes at once at shutdown, given its segment-file
/// budget (the other half of its descriptors is about as large). A close
/// holds up to four descriptors while it writes its index and snapshot files
/// and waits on several fsyncs, so closes overlap widely (32 at a time took
/// two minutes for 10,000 partitions) but together take at most half of that
/// other half.
pub fn partition_closes_in_flight(segment_file_budget: usize) -> usize {
    (segment_file_budget / 8).clamp(1, 1024)
}

/// Descriptors assumed when RLIMIT_NOFILE cannot be read or is unlimited.
const NOFILE_ASSUMED: u64 = 65_536;

/// The soft RLIMIT_NOFILE of this process.
pub fn nofile_soft_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes into the struct we pass.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    if rc != 0 || limit.rlim_cur == libc::RLIM_INFINITY {
        return NOFILE_ASSUMED;
    }
    limit.rlim_cur
}

/// Segment files each shard may keep open under `nofile` descriptors.
pub fn segment_files_per_shard(nofile: u64, shards: usize) -> u64 {
    let shards = u64::try_from(shards.max(1)).unwrap_or(u64::MAX);
    nofile.saturating_mul(SEGMENT_FILES_PERCENT_OF_NOFILE) / 100 / shards
}

/// The bounds this node starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerLimits {
    pub nofile: u64,
    pub segment_files_per_shard: u64,
}

/// Derives the node's bounds from the host's and checks that they fit.
pub fn check(nofile: u64, shards: usize) -> Result<BrokerLimits, String> {
    let segment_files_per_shard = segment_files_per_shard(nofile, shards);
    if segment_files_per_shard < SEGMENT_FILES_PER_SHARD_MIN {
        return Err(format!(
            "RLIMIT_NOFILE is {nofile}: {shards} shard(s) would keep only \
             {segment_files_per_shard} segment files open each, fewer than \
             {SEGMENT_FILES_PER_SHARD_MIN}; raise it (`ulimit -n`) or run fewer shards (--cores)"
        ));
    }
    Ok(BrokerLimits {
        nofile,
        segment_files_per_shard,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_reserve_is_at_most_a_tenth_of_the_file_system() {
        let gib = 1u64 << 30;
        // A big disk keeps the default.
        assert_eq!(
            default_min_free_bytes(MIN_FREE_BYTES_DEFAULT, || Some(250 * gib)),
            gib
        );
        assert_eq!(
            default_min_free_bytes(MIN_FREE_BYTES_DEFAULT, || Some(10 * gib)),
            gib
        );
        // A small volume: a tenth of it.
        assert_eq!(
            default_min_free_bytes(MIN_FREE_BYTES_DEFAULT, || Some(512 << 20)),
            (512 << 20) / 10
        );
        // Unknown size: the default as is.
        assert_eq!(default_min_free_bytes(MIN_FREE_BYTES_DEFAULT, || None), gib);
        // Explicit values, off included, are kept, without asking the size.
        let unasked = || -> Option<u64> { panic!("the size is not needed") };
        assert_eq!(default_min_free_bytes(0, unasked), 0);
        assert_eq!(default_min_free_bytes(400 << 20, unasked), 400 << 20);
    }

    #[test]
    fn half_of_the_descriptors_go_to_segment_files_split_between_shards() {
        assert_eq!(
            check(20_000, 1),
            Ok(BrokerLimits {
                nofile: 20_000,
                segment_files_per_shard: 10_000
            })
        );
        assert_eq!(segment_files_per_shard(20_000, 2), 5_000);
        assert_eq!(segment_files_per_shard(20_000, 0), 10_000);
    }

    #[test]
    fn shutdown_closes_overlap_within_half_of_the_other_descriptors() {
        assert_eq!(partition_closes_in_flight(10_000), 1024);
        assert_eq!(partition_closes_in_flight(128), 16);
        assert_eq!(partition_closes_in_flight(0), 1);
    }

    #[test]
    fn free_space_is_read_again_after_a_quarter_of_the_reserve_per_shard() {
        assert_eq!(free_space_check_bytes(MIN_FREE_BYTES_DEFAULT, 1), 256 << 20);
        assert_eq!(free_space_check_bytes(MIN_FREE_BYTES_DEFAULT, 4), 64 << 20);
        assert_eq!(free_space_check_bytes(64 << 20, 2), 8 << 20);
        assert_eq!(
            free_space_check_bytes(1 << 20, 1),
            1 << 20,
            "at least 1 MiB"
        );
        assert_eq!(free_space_check_bytes(0, 0), 1 << 20);
        assert_eq!(
            free_space_check_bytes(u64::MAX, 1),
            256 << 20,
            "at most 256 MiB"
        );
    }

    #[test]
    fn too_few_descriptors_refuse_to_start_with_the_reason() {
        let refused = check(100, 2).expect_err("25 files per shard is too few");
        assert!(refused.contains("RLIMIT_NOFILE is 100"), "{refused}");
        assert!(refused.contains("ulimit -n"), "{refused}");
        assert!(check(256, 2).is_ok());
    }
}
