//! Locked-memory limit for glommio. Each executor needs at least 512 KiB of
//! RLIMIT_MEMLOCK to start, and its registered io_uring buffers (`io_memory`)
//! count against the same limit. We try to raise the limit to what all shards
//! need; if we cannot (not root, hard limit), we say so and run with smaller
//! buffers (glommio falls back to unregistered buffers, which still work).

/// glommio refuses to start an executor below this limit.
pub const GLOMMIO_MIN_MEMLOCK_BYTES: u64 = 512 * 1024;
/// Registered DMA buffer memory asked of glommio per executor when the limit
/// allows: enough for the writers' aligned chunks of a busy shard.
pub const IO_MEMORY_BYTES_PER_EXECUTOR: usize = 2 << 20;
/// Smallest registered pool worth having; below it glommio's fallback (plain
/// aligned heap buffers, unregistered) is used for everything.
pub const IO_MEMORY_BYTES_MIN: usize = 64 << 10;
/// glommio registers the pool with each of an executor's three rings, and the
/// kernel may account each registration.
const RINGS_PER_EXECUTOR: u64 = 3;

/// Raises the limit if it can and returns the `io_memory` each of `shards`
/// executors should ask for so that all of them fit in RLIMIT_MEMLOCK. Errs
/// when even glommio's minimum does not fit, saying how to fix it.
pub fn plan_io_memory(shards: usize) -> std::io::Result<usize> {
    let shards = shards.max(1) as u64;
    let per_executor = IO_MEMORY_BYTES_PER_EXECUTOR as u64 * RINGS_PER_EXECUTOR;
    let wanted = GLOMMIO_MIN_MEMLOCK_BYTES + shards * per_executor;
    let limit = raise_memlock_limit(wanted);
    if limit < GLOMMIO_MIN_MEMLOCK_BYTES {
        return Err(std::io::Error::other(format!(
            "RLIMIT_MEMLOCK is {limit} bytes and cannot be raised; glommio needs at least {GLOMMIO_MIN_MEMLOCK_BYTES}. \
             Run `ulimit -l unlimited` (as root) or raise memlock in /etc/security/limits.conf; see tuning/README.md"
        )));
    }
    if limit >= wanted {
        return Ok(IO_MEMORY_BYTES_PER_EXECUTOR);
    }
    let fitting = (limit - GLOMMIO_MIN_MEMLOCK_BYTES) / (shards * RINGS_PER_EXECUTOR);
    let io_memory =
        (fitting as usize / 4096 * 4096).clamp(IO_MEMORY_BYTES_MIN, IO_MEMORY_BYTES_PER_EXECUTOR);
    tracing::info!(
        memlock_bytes = limit,
        io_memory,
        "RLIMIT_MEMLOCK could not be raised to {wanted}; using {io_memory} bytes of registered DMA memory per shard"
    );
    Ok(io_memory)
}

/// Current soft and hard RLIMIT_MEMLOCK.
pub fn memlock_limit() -> (u64, u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes into the struct we pass.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) };
    if rc != 0 {
        return (0, 0);
    }
    (limit.rlim_cur, limit.rlim_max)
}

/// Raises RLIMIT_MEMLOCK to at least `wanted_bytes` if possible. Returns the
/// resulting soft limit.
pub fn raise_memlock_limit(wanted_bytes: u64) -> u64 {
    let (soft, hard) = memlock_limit();
    if soft == libc::RLIM_INFINITY || soft >= wanted_bytes {
        return soft;
    }
    let new_hard = if hard == libc::RLIM_INFINITY {
        hard
    } else {
        hard.max(wanted_bytes)
    };
    let limit = libc::rlimit {
        rlim_cur: wanted_bytes,
        rlim_max: new_hard,
    };
    // SAFETY: setrlimit only reads the struct we pass.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit) };
    if rc != 0 && hard != libc::RLIM_INFINITY && hard > soft {
        // Not privileged: raise the soft limit as far as the hard one allows.
        let capped = libc::rlimit {
            rlim_cur: hard,
            rlim_max: hard,
        };
        // SAFETY: as above.
        unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &capped) };
    }
    memlock_limit().0
}

/// Runs `future` to completion on a fresh, unpinned glommio executor on a new
/// thread; for unit tests and tools that need an executor outside the broker.
pub fn run_on_test_executor<F, Fut, T>(make_future: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + 'static,
    T: Send + 'static,
{
    raise_memlock_limit(64 << 20);
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(256 << 10)
        .spawn(make_future)
        .expect("test executor starts (is RLIMIT_MEMLOCK at least 512 KiB?)")
        .join()
        .expect("test executor thread finished")
}
