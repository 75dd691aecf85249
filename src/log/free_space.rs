//! The free-space guard (Redpanda's `storage_min_free_bytes`): while the data
//! directory's file system has less than `--min-free-bytes` free, Produce is
//! refused with KAFKA_STORAGE_ERROR before anything is appended. No offset is
//! assigned, no producer state changes, nothing is half written, and the
//! partition stays healthy: once retention, a deleted topic or the operator
//! frees space, Produce is accepted again, without a restart. Fetches and
//! everything else are served throughout; coordinator writes (offset
//! commits, transaction markers) and replicas' copies are not refused, they
//! write into the reserve.
//!
//! One guard per shard, used on that shard only (`Cell`s, no locks). statvfs
//! never runs on the produce path: each shard reads it every
//! `FREE_SPACE_CHECK_INTERVAL_MS` on glommio's blocking pool (a syscall that
//! may wait on a slow file system must not block the executor), and early
//! after admitting `free_space_check_bytes` (`crate::limits`). Between two
//! reads a shard subtracts what it admitted since the read before the last
//! one: an admitted batch reaches the disk a little later (the writer task
//! runs after the append), so the last read may not show it yet. The guard
//! errs on the side of refusing a little early, never of filling the disk.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

/// Why an append was refused: the free space (as the guard estimates it)
/// would fall below the reserve. Answered as KAFKA_STORAGE_ERROR, with this
/// as the error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskFull {
    pub free_bytes: u64,
    pub reserve_bytes: u64,
}

impl fmt::Display for DiskFull {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "disk full: {} bytes free on the broker's data directory, below its reserve of {} \
             bytes (--min-free-bytes); produce is refused until space is freed",
            self.free_bytes, self.reserve_bytes
        )
    }
}

/// What `decide` answered for one append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Append; `measure` says the shard admitted enough since its last read
    /// that it should read the free space again now.
    Admit {
        measure: bool,
    },
    Refuse(DiskFull),
}

/// One shard's view of the data directory's free space.
pub struct FreeSpaceGuard {
    data_dir: PathBuf,
    /// Free bytes always kept; 0: the guard is off.
    reserve_bytes: u64,
    /// Admitted bytes after which the free space is read early.
    check_every_bytes: u64,
    /// Free bytes at the last read; `None` before the first one, or when it
    /// failed (then nothing is refused: the guard must not stop Produce
    /// because statvfs does not work, and a write that meets a full disk
    /// still answers KAFKA_STORAGE_ERROR).
    measured_free_bytes: Cell<Option<u64>>,
    /// Bytes admitted on this shard, ever.
    admitted_total: Cell<u64>,
    /// `admitted_total` when the last read started...
    admitted_at_last_start: Cell<u64>,
    /// ... and when the read before it started: everything admitted since may
    /// be missing from the last read.
    admitted_at_previous_start: Cell<u64>,
    measuring: Cell<bool>,
    /// The last decision refused (state changes are logged once).
    refusing: Cell<bool>,
}

impl FreeSpaceGuard {
    pub fn new(data_dir: PathBuf, reserve_bytes: u64, check_every_bytes: u64) -> FreeSpaceGuard {
        FreeSpaceGuard {
            data_dir,
            reserve_bytes,
            check_every_bytes: check_every_bytes.max(1),
            measured_free_bytes: Cell::new(None),
            admitted_total: Cell::new(0),
            admitted_at_last_start: Cell::new(0),
            admitted_at_previous_start: Cell::new(0),
            measuring: Cell::new(false),
            refusing: Cell::new(false),
        }
    }

    pub fn reserve_bytes(&self) -> u64 {
        self.reserve_bytes
    }

    /// Free bytes as this shard estimates them now: the last read less what
    /// it may not show yet. `None` when unknown.
    pub fn estimated_free_bytes(&self) -> Option<u64> {
        let unseen = self.admitted_total.get() - self.admitted_at_previous_start.get();
        self.measured_free_bytes
            .get()
            .map(|free| free.saturating_sub(unseen))
    }

    /// Whether `bytes` more may be appended: only while at least the reserve
    /// stays free after them. Pure (no I/O); counts what it admits.
    pub fn decide(&self, bytes: u64) -> Admission {
        if self.reserve_bytes > 0 {
            if let Some(free_bytes) = self.estimated_free_bytes() {
                if free_bytes.saturating_sub(bytes) < self.reserve_bytes {
                    return Admission::Refuse(DiskFull {
                        free_bytes,
                        reserve_bytes: self.reserve_bytes,
                    });
                }
            }
        }
        let admitted_total = self.admitted_total.get().saturating_add(bytes);
        self.admitted_total.set(admitted_total);
        let since_last_start = admitted_total - self.admitted_at_last_start.get();
        Admission::Admit {
            measure: self.reserve_bytes > 0 && since_last_start >= self.check_every_bytes,
        }
    }

    /// The produce path's check: `decide`, a transition logged once, and an
    /// early read of the free space started (not awaited) when one is due.
    pub fn admit(self: &Rc<Self>, bytes: u64) -> Result<(), DiskFull> {
        match self.decide(bytes) {
            Admission::Admit { measure } => {
                if measure && !self.measuring.get() {
                    let guard = Rc::clone(self);
                    glommio::spawn_local(async move { guard.measure().await }).detach();
                }
                Ok(())
            }
            Admission::Refuse(full) => {
                if !self.refusing.replace(true) {
                    tracing::warn!(dir = %self.data_dir.display(), "{full}");
                }
                Err(full)
            }
        }
    }

    /// A read is starting: what was admitted before the previous start is
    /// on disk by now.
    fn measure_started(&self) {
        self.admitted_at_previous_start
            .set(self.admitted_at_last_start.get());
        self.admitted_at_last_start.set(self.admitted_total.get());
    }

    /// A read finished with `free_bytes` (`None`: it failed).
    fn measure_finished(&self, free_bytes: Option<u64>) {
        self.measured_free_bytes.set(free_bytes);
        let refusing = self.refusing.get();
        let full = self
            .estimated_free_bytes()
            .is_some_and(|free| free < self.reserve_bytes);
        if refusing && !full {
            self.refusing.set(false);
            tracing::info!(
                dir = %self.data_dir.display(),
                free_bytes = self.estimated_free_bytes(),
                reserve_bytes = self.reserve_bytes,
                "free space is back above the reserve; produce accepted again"
            );
        }
    }

    /// Reads the free space now (statvfs on glommio's blocking pool); at
    /// most one read at a time.
    pub async fn measure(self: &Rc<Self>) {
        if self.measuring.replace(true) {
            return;
        }
        self.measure_started();
        let data_dir = self.data_dir.clone();
        let read = glommio::executor()
            .spawn_blocking(move || volume_blocks(&data_dir))
            .await;
        let free_bytes = match read {
            Ok(blocks) => Some(blocks.available_bytes()),
            Err(error) => {
                tracing::warn!(dir = %self.data_dir.display(), %error, "statvfs of the data directory failed");
                None
            }
        };
        self.measure_finished(free_bytes);
        self.measuring.set(false);
    }

    /// Reads the free space every `interval`, for the shard's life. Nothing
    /// to do when the guard is off.
    pub fn spawn_checks(self: &Rc<Self>, interval: Duration) {
        if self.reserve_bytes == 0 {
            return;
        }
        let guard = Rc::clone(self);
        glommio::spawn_local(async move {
            loop {
                guard.measure().await;
                glommio::timer::sleep(interval).await;
            }
        })
        .detach();
    }
}

/// A file system's size from statvfs(3), in fragments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VolumeBlocks {
    pub blocks: u64,
    /// Blocks available to unprivileged users (`f_bavail`): Java's
    /// `getUsableSpace`, and what the guard counts (root's reserved blocks
    /// are the system's last resort, not the broker's).
    pub available_blocks: u64,
    pub fragment_bytes: u64,
}

impl VolumeBlocks {
    pub fn available_bytes(&self) -> u64 {
        self.available_blocks.saturating_mul(self.fragment_bytes)
    }

    /// The file system's size.
    pub fn total_bytes(&self) -> u64 {
        self.blocks.saturating_mul(self.fragment_bytes)
    }
}

/// statvfs(3) of `path`. Blocks: call it only off the shards (glommio's
/// blocking pool).
pub fn volume_blocks(path: &Path) -> io::Result<VolumeBlocks> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))?;
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is NUL-terminated and outlives the call; `stats` is
    // a properly sized and aligned out-parameter.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), stats.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it filled in the whole struct.
    let stats = unsafe { stats.assume_init() };
    // fsblkcnt_t and c_ulong are u32 or u64 depending on the target.
    #[allow(clippy::useless_conversion)]
    let blocks = VolumeBlocks {
        blocks: u64::from(stats.f_blocks),
        available_blocks: u64::from(stats.f_bavail),
        fragment_bytes: u64::from(stats.f_frsize),
    };
    Ok(blocks)
}

/// Whether `error` is the file system being out of space (ENOSPC, or a
/// quota): glommio keeps the kind of an io_uring error but not always its
/// OS code.
pub fn is_out_of_space(error: &io::Error) -> bool {
    is_out_of_space_kind(error.kind()) || error.raw_os_error() == Some(libc::ENOSPC)
}

/// [`is_out_of_space`] for an error of which only the kind was kept.
pub fn is_out_of_space_kind(kind: io::ErrorKind) -> bool {
    matches!(
        kind,
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn guard(reserve_bytes: u64, check_every_bytes: u64) -> FreeSpaceGuard {
        FreeSpaceGuard::new(PathBuf::from("/data"), reserve_bytes, check_every_bytes)
    }

    /// One whole read that found `free_bytes`.
    fn read(guard: &FreeSpaceGuard, free_bytes: u64) {
        guard.measure_started();
        guard.measure_finished(Some(free_bytes));
    }

    #[test]
    fn nothing_is_refused_before_the_first_read_or_when_the_guard_is_off() {
        let unknown = guard(10 * MIB, MIB);
        assert!(matches!(unknown.decide(MIB), Admission::Admit { .. }));
        let off = guard(0, MIB);
        read(&off, 0);
        assert_eq!(off.decide(MIB), Admission::Admit { measure: false });
    }

    #[test]
    fn an_append_that_would_leave_less_than_the_reserve_is_refused() {
        let guard = guard(10 * MIB, 100 * MIB);
        read(&guard, 12 * MIB);
        assert_eq!(guard.decide(MIB), Admission::Admit { measure: false });
        // 11 MiB left (as estimated): another 2 MiB would go below 10.
        assert_eq!(
            guard.decide(2 * MIB),
            Admission::Refuse(DiskFull {
                free_bytes: 11 * MIB,
                reserve_bytes: 10 * MIB
            })
        );
        // A refused append is not counted; a smaller one still fits.
        assert_eq!(guard.decide(MIB), Admission::Admit { measure: false });
        assert!(matches!(guard.decide(1), Admission::Refuse(_)));
    }

    #[test]
    fn admitted_bytes_count_until_a_read_can_have_seen_them() {
        let guard = guard(MIB, 100 * MIB);
        read(&guard, 50 * MIB);
        assert_eq!(guard.decide(10 * MIB), Admission::Admit { measure: false });
        assert_eq!(guard.estimated_free_bytes(), Some(40 * MIB));
        // The next read may have started before those bytes reached the
        // disk: they still count.
        read(&guard, 50 * MIB);
        assert_eq!(guard.estimated_free_bytes(), Some(40 * MIB));
        // The read after it saw them.
        read(&guard, 40 * MIB);
        assert_eq!(guard.estimated_free_bytes(), Some(40 * MIB));
    }

    #[test]
    fn freed_space_is_seen_at_the_next_read_and_appends_resume() {
        let guard = guard(10 * MIB, 100 * MIB);
        read(&guard, 10 * MIB);
        assert!(matches!(guard.decide(1), Admission::Refuse(_)));
        read(&guard, 500 * MIB);
        assert_eq!(guard.decide(MIB), Admission::Admit { measure: false });
    }

    #[test]
    fn a_read_is_due_after_admitting_the_check_bytes_since_the_last_one() {
        let guard = guard(100 * MIB, 4 * MIB);
        read(&guard, 1 << 40);
        assert_eq!(guard.decide(3 * MIB), Admission::Admit { measure: false });
        assert_eq!(guard.decide(MIB), Admission::Admit { measure: true });
        guard.measure_started();
        assert_eq!(guard.decide(MIB), Admission::Admit { measure: false });
    }

    #[test]
    fn a_failed_read_refuses_nothing() {
        let guard = guard(10 * MIB, MIB);
        read(&guard, 0);
        assert!(matches!(guard.decide(1), Admission::Refuse(_)));
        guard.measure_started();
        guard.measure_finished(None);
        assert!(matches!(guard.decide(1), Admission::Admit { .. }));
    }

    #[test]
    fn the_refusal_names_the_free_space_and_the_reserve() {
        let message = DiskFull {
            free_bytes: 1_000,
            reserve_bytes: 4_096,
        }
        .to_string();
        assert!(message.starts_with("disk full"), "{message}");
        assert!(message.contains("1000 bytes free"), "{message}");
        assert!(message.contains("reserve of 4096 bytes"), "{message}");
        assert!(message.contains("--min-free-bytes"), "{message}");
    }

    #[test]
    fn out_of_space_is_recognised_by_kind_or_os_code() {
        assert!(is_out_of_space(&io::Error::from_raw_os_error(libc::ENOSPC)));
        assert!(is_out_of_space(&io::Error::new(
            io::ErrorKind::StorageFull,
            "glommio's rewrapped error"
        )));
        assert!(!is_out_of_space(&io::Error::from_raw_os_error(libc::EIO)));
    }

    #[test]
    fn statvfs_of_a_real_directory_has_blocks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blocks = volume_blocks(dir.path()).expect("statvfs");
        assert!(blocks.blocks > 0 && blocks.fragment_bytes > 0);
        assert!(blocks.available_blocks <= blocks.blocks);
        assert!(volume_blocks(Path::new("/no/such/dir")).is_err());
    }
}
