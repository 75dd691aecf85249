//! Segment files behind a bounded, per-shard cache of open file handles, so a
//! shard can own far more segments (and partitions) than it may keep open:
//! RLIMIT_NOFILE is a hard limit on many hosts (20,000 on the reference
//! machine) and 100,000 partitions hold at least as many segment files.
//!
//! A [`SegmentFile`] knows its path and may hold an open `DmaFile`. Every use
//! goes through [`SegmentFile::file`], which reopens a closed file, marks it
//! recently used and returns an [`OpenSegment`] that keeps the descriptor in
//! use until it is dropped. When the shard holds its budget of open segment
//! files, the least recently used file nobody is using is closed first; when
//! every open file is in use, the caller waits until one is released, so the
//! budget holds however many reads and writes run at once. Writes need
//! nothing of the descriptor they went through: `fdatasync` on a reopened one
//! syncs the same inode (Linux syncs the file, not the descriptor).
//!
//! Only a file created or opened outside the cache ([`SegmentFile::opened`])
//! can take the count past the budget, by one, until the next eviction; and
//! a file closed for good while a read still uses it keeps its descriptor
//! until that read ends.
//!
//! Lives on the owning shard (thread-local, `Rc`), like the rest of the log.
//! A task holds at most one `OpenSegment` at a time, so waiting for room
//! cannot deadlock.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::ops::Deref;
use std::path::PathBuf;
use std::rc::{Rc, Weak};

use futures::channel::oneshot;
use glommio::io::DmaFile;

use super::dma_writer::open_segment_file;

/// Open segment files a shard keeps when nobody set its budget (tests, tools).
const DEFAULT_BUDGET: usize = 1024;

/// A segment's file, open or not.
pub(crate) struct SegmentFile {
    path: PathBuf,
    open: RefCell<Option<Rc<DmaFile>>>,
    /// This file's place in the shard's use order while it is open.
    last_use: Cell<Option<u64>>,
    /// Live [`OpenSegment`]s: while any, the cache does not close the file.
    users: Cell<usize>,
}

/// An open segment file in use; the descriptor stays open while it lives.
pub(crate) struct OpenSegment {
    file: Rc<DmaFile>,
    owner: Rc<SegmentFile>,
}

/// The shard's open segment files, least recently used first.
struct OpenFiles {
    budget: Cell<usize>,
    clock: Cell<u64>,
    by_last_use: RefCell<BTreeMap<u64, Weak<SegmentFile>>>,
    /// Tasks waiting for an open file to be released, oldest first.
    waiting: RefCell<VecDeque<oneshot::Sender<()>>>,
}

thread_local! {
    static OPEN_FILES: OpenFiles = const {
        OpenFiles {
            budget: Cell::new(DEFAULT_BUDGET),
            clock: Cell::new(0),
            by_last_use: RefCell::new(BTreeMap::new()),
            waiting: RefCell::new(VecDeque::new()),
        }
    };
}

/// Sets how many segment files this shard keeps open (at least one); closes
/// the least recently used idle ones past it.
pub fn set_open_file_budget(budget: usize) {
    OPEN_FILES.with(|open| {
        open.budget.set(budget.max(1));
        open.make_room(0);
    });
}

/// How many segment files this shard may keep open.
pub fn open_file_budget() -> usize {
    OPEN_FILES.with(|open| open.budget.get())
}

/// Segment files this shard holds open now.
#[cfg(test)]
pub(crate) fn open_file_count() -> usize {
    OPEN_FILES.with(|open| open.by_last_use.borrow().len())
}

impl OpenFiles {
    /// Closes least recently used idle files until `wanted` more fit the
    /// budget; false if too many of the open ones are in use.
    fn make_room(&self, wanted: usize) -> bool {
        let budget = self.budget.get();
        let mut by_last_use = self.by_last_use.borrow_mut();
        if by_last_use.len() + wanted <= budget {
            return true;
        }
        let mut closed = Vec::new();
        let mut stale = Vec::new();
        for (&last_use, file) in by_last_use.iter() {
            if by_last_use.len() - closed.len() - stale.len() + wanted <= budget {
                break;
            }
            match file.upgrade() {
                Some(file) if file.users.get() == 0 => closed.push((last_use, file)),
                Some(_) => {}
                None => stale.push(last_use),
            }
        }
        for last_use in stale {
            by_last_use.remove(&last_use);
        }
        for (last_use, file) in &closed {
            by_last_use.remove(last_use);
            file.last_use.set(None);
        }
        let fits = by_last_use.len() + wanted <= budget;
        drop(by_last_use);
        for (_, file) in closed {
            // Nobody uses it: dropping the last reference hands the
            // descriptor to the reactor to close.
            let descriptor = file.open.borrow_mut().take();
            drop(descriptor);
        }
        fits
    }

    fn touch(&self, file: &Rc<SegmentFile>) {
        let now = self.clock.get() + 1;
        self.clock.set(now);
        let mut by_last_use = self.by_last_use.borrow_mut();
        if let Some(previous) = file.last_use.replace(Some(now)) {
            by_last_use.remove(&previous);
        }
        by_last_use.insert(now, Rc::downgrade(file));
    }

    fn forget(&self, file: &SegmentFile) {
        if let Some(previous) = file.last_use.take() {
            self.by_last_use.borrow_mut().remove(&previous);
        }
    }

    /// An open file became idle: the oldest waiter may take its place.
    fn released(&self) {
        let mut waiting = self.waiting.borrow_mut();
        while let Some(waiter) = waiting.pop_front() {
            if waiter.send(()).is_ok() {
                return;
            }
        }
    }
}

impl SegmentFile {
    /// A file just opened (or created) by its owner.
    pub(crate) fn opened(path: PathBuf, file: DmaFile) -> Rc<SegmentFile> {
        let segment_file = Rc::new(SegmentFile {
            path,
            open: RefCell::new(Some(Rc::new(file))),
            last_use: Cell::new(None),
            users: Cell::new(0),
        });
        OPEN_FILES.with(|open| {
            open.make_room(1);
            open.touch(&segment_file);
        });
        segment_file
    }

    /// The open file, reopened first if the cache closed it (waiting for
    /// room when every open file is in use).
    pub(crate) async fn file(self: &Rc<Self>) -> io::Result<OpenSegment> {
        loop {
            if let Some(file) = self.open.borrow().clone() {
                OPEN_FILES.with(|open| open.touch(self));
                return Ok(self.in_use(file));
            }
            let freed = OPEN_FILES.with(|open| {
                if open.make_room(1) {
                    return None;
                }
                let (sender, receiver) = oneshot::channel();
                open.waiting.borrow_mut().push_back(sender);
                Some(receiver)
            });
            match freed {
                // Another task may have reopened it meanwhile: look again.
                Some(freed) => {
                    let _ = freed.await;
                }
                None => {
                    let file = Rc::new(open_segment_file(&self.path, false).await?);
                    let file = self.open.borrow_mut().get_or_insert(file).clone();
                    OPEN_FILES.with(|open| open.touch(self));
                    return Ok(self.in_use(file));
                }
            }
        }
    }

    fn in_use(self: &Rc<Self>, file: Rc<DmaFile>) -> OpenSegment {
        self.users.set(self.users.get() + 1);
        OpenSegment {
            file,
            owner: Rc::clone(self),
        }
    }

    /// Whether the file is open now (for tests and diagnostics).
    #[cfg(test)]
    pub(crate) fn is_open(&self) -> bool {
        self.open.borrow().is_some()
    }

    /// Closes the file for good (the segment is closed or deleted); reads
    /// still holding it finish on the old descriptor.
    pub(crate) async fn close(&self) -> io::Result<()> {
        OPEN_FILES.with(|open| open.forget(self));
        let Some(file) = self.open.borrow_mut().take() else {
            return Ok(());
        };
        OPEN_FILES.with(OpenFiles::released);
        file.close_rc().await.map_err(io::Error::from).map(|_| ())
    }
}

impl Deref for OpenSegment {
    type Target = DmaFile;

    fn deref(&self) -> &DmaFile {
        &self.file
    }
}

impl Drop for OpenSegment {
    fn drop(&mut self) {
        let users = self.owner.users.get().saturating_sub(1);
        self.owner.users.set(users);
        if users == 0 {
            OPEN_FILES.with(OpenFiles::released);
        }
    }
}

impl Drop for SegmentFile {
    fn drop(&mut self) {
        OPEN_FILES.with(|open| open.forget(self));
        if self.open.get_mut().is_some() {
            OPEN_FILES.with(OpenFiles::released);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    use crate::log::dma_writer::prime_iopoll_detection;
    use crate::runtime::memlock::run_on_test_executor;

    async fn create(dir: &Path, name: &str, bytes: &[u8]) -> Rc<SegmentFile> {
        let path = dir.join(name);
        let file = open_segment_file(&path, true).await.expect("create");
        let mut buffer = file.alloc_dma_buffer(4096);
        buffer.as_bytes_mut().fill(0);
        buffer.as_bytes_mut()[..bytes.len()].copy_from_slice(bytes);
        file.write_at(buffer, 0).await.expect("write");
        SegmentFile::opened(path, file)
    }

    #[test]
    fn the_least_recently_used_file_is_closed_and_reopened_on_use() {
        run_on_test_executor(|| async move {
            let dir = tempfile::tempdir().expect("tempdir");
            prime_iopoll_detection(dir.path()).await.expect("probe");
            set_open_file_budget(2);
            let a = create(dir.path(), "a.log", b"first").await;
            let b = create(dir.path(), "b.log", b"second").await;
            assert_eq!(open_file_count(), 2);
            // a is used again, so b is now the least recently used.
            a.file().await.expect("a is open");
            let c = create(dir.path(), "c.log", b"third").await;
            assert_eq!(open_file_count(), 2, "the budget holds");
            assert!(a.is_open() && !b.is_open() && c.is_open());

            let reopened = b.file().await.expect("b reopens");
            let bytes = reopened.read_at(0, 6).await.expect("read b");
            assert_eq!(&bytes[..], b"second");
            assert!(b.is_open() && !a.is_open(), "a was the oldest then");
            assert_eq!(open_file_count(), 2);

            // A closed file leaves the cache; a dropped one too.
            b.close().await.expect("close b");
            assert_eq!(open_file_count(), 1);
            drop(c);
            assert_eq!(open_file_count(), 0);
            set_open_file_budget(DEFAULT_BUDGET);
        });
    }

    #[test]
    fn a_file_in_use_stays_open_and_others_wait_for_its_release() {
        run_on_test_executor(|| async move {
            let dir = tempfile::tempdir().expect("tempdir");
            prime_iopoll_detection(dir.path()).await.expect("probe");
            set_open_file_budget(1);
            let a = create(dir.path(), "a.log", b"kept").await;
            let held = a.file().await.expect("open");
            let b = create(dir.path(), "b.log", b"other").await;
            assert!(a.is_open(), "a file in use is not closed");
            assert_eq!(
                open_file_count(),
                2,
                "past the budget by the file opened outside"
            );

            // b needs its descriptor back: it waits until a is released.
            set_open_file_budget(1);
            assert!(!b.is_open(), "b was idle, so it was closed");
            let waiting = glommio::spawn_local({
                let b = b.clone();
                async move {
                    let file = b.file().await.expect("b reopens once a is released");
                    file.read_at(0, 5).await.expect("read b").to_vec()
                }
            });
            glommio::timer::sleep(std::time::Duration::from_millis(20)).await;
            assert!(!b.is_open(), "still waiting while a is in use");
            let bytes = held.read_at(0, 4).await.expect("a reads");
            assert_eq!(&bytes[..], b"kept");
            drop(held);
            assert_eq!(waiting.await, b"other".to_vec());
            assert!(b.is_open() && !a.is_open());
            assert_eq!(open_file_count(), 1);
            set_open_file_budget(DEFAULT_BUDGET);
        });
    }
}
