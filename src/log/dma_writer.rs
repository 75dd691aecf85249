//! Appends bytes to the active segment file with O_DIRECT writes. Lives on
//! the partition's owning shard and is driven by exactly one writer task at
//! a time (see `writer_task`), because io_uring does not order writes and the
//! partial last block is rewritten by the next write: two writes covering the
//! same block must never be in flight together.
//!
//! O_DIRECT wants positions and lengths aligned to `DmaFile::alignment()`, so
//! the bytes of the partial last block are kept in memory and written again,
//! zero-padded, in front of the next data. The file is preallocated in steps
//! that follow the write rate (`preallocation`) and truncated to its logical size on roll
//! and close; zeros past the data are read back as "end of data".

use std::cell::RefCell;
use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use futures::future::try_join_all;
use glommio::io::{DmaFile, OpenOptions};

use super::free_space::is_out_of_space;
use super::limits::WRITE_CHUNK_BYTES;
use super::preallocation::Preallocation;
use super::segment_file::SegmentFile;

pub(crate) struct DmaWriter {
    file: Rc<SegmentFile>,
    segment_base: i64,
    alignment: u64,
    /// Logical bytes written (whole batches).
    size: u64,
    /// Bytes of `[align_down(size), size)`, rewritten by the next write.
    tail_block: Vec<u8>,
    /// File size reserved by `pre_allocate`.
    preallocated: u64,
    /// Preallocation never goes past this (the segment size limit) unless a
    /// single oversized batch needs it.
    preallocate_cap: u64,
    /// The step of the next extension, adapted to the write rate.
    preallocation: Preallocation,
}

/// Opens a segment file for reading and writing; `create` makes a new,
/// empty one (a new segment's base offset is above everything stored).
pub(crate) async fn open_segment_file(path: &Path, create: bool) -> io::Result<DmaFile> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(create)
        .dma_open(path)
        .await
        .map_err(io::Error::from)
}

/// Name of the scratch file used by `prime_iopoll_detection`.
pub(crate) const IOPOLL_PROBE_FILE: &str = ".iopoll-probe";
/// Bytes in the scratch file: more than any O_DIRECT alignment glommio probes with.
const IOPOLL_PROBE_BYTES: usize = 64 << 10;

thread_local! {
    /// Parent directories whose device this shard has already probed.
    static PROBED_PARENTS: RefCell<HashSet<PathBuf>> = RefCell::new(HashSet::new());
}

/// glommio decides once per thread and device whether DMA reads may use the
/// io_uring poll ring, by reading block 0 of the first `DmaFile` opened there.
/// If that file is empty (a new segment) the read ends at EOF before reaching
/// the device, the probe wrongly succeeds, and every later read of the device
/// fails with EOPNOTSUPP on devices without poll queues (virtio, many cloud
/// disks). So before a shard opens its first segment under a directory, open
/// a non-empty scratch file there to make the probe meaningful.
pub(crate) async fn prime_iopoll_detection(dir: &Path) -> io::Result<()> {
    let parent = dir.parent().unwrap_or(dir).to_path_buf();
    if PROBED_PARENTS.with(|probed| probed.borrow().contains(&parent)) {
        return Ok(());
    }
    let path = dir.join(IOPOLL_PROBE_FILE);
    let scratch = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .buffered_open(&path)
        .await
        .map_err(io::Error::from)?;
    let written = scratch.write_at(vec![0u8; IOPOLL_PROBE_BYTES], 0).await;
    scratch.close().await.map_err(io::Error::from)?;
    written.map_err(io::Error::from)?;
    let probed = DmaFile::open(&path).await.map_err(io::Error::from)?;
    probed.close().await.map_err(io::Error::from)?;
    glommio::io::remove(&path).await.map_err(io::Error::from)?;
    PROBED_PARENTS.with(|probed| probed.borrow_mut().insert(parent));
    Ok(())
}

fn align_up(value: u64, alignment: u64) -> u64 {
    value.div_ceil(alignment) * alignment
}

fn align_down(value: u64, alignment: u64) -> u64 {
    value - value % alignment
}

impl DmaWriter {
    /// A writer appending after `size` bytes already in `file` (read back
    /// the partial last block so it can be rewritten).
    pub async fn resume(
        segment_file: Rc<SegmentFile>,
        segment_base: i64,
        size: u64,
        preallocate_cap: u64,
        preallocation: Preallocation,
    ) -> io::Result<DmaWriter> {
        let file = segment_file.file().await?;
        let alignment = file.alignment().max(1);
        let tail_start = align_down(size, alignment);
        let tail_length = (size - tail_start) as usize;
        let mut tail_block = Vec::with_capacity(alignment as usize);
        if tail_length > 0 {
            let read = file
                .read_at(tail_start, tail_length)
                .await
                .map_err(io::Error::from)?;
            if read.len() != tail_length {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "segment shorter than its recovered size",
                ));
            }
            tail_block.extend_from_slice(&read);
        }
        let preallocated = file.file_size().await.map_err(io::Error::from)?;
        Ok(DmaWriter {
            file: segment_file,
            segment_base,
            alignment,
            size,
            tail_block,
            preallocated,
            preallocate_cap,
            preallocation,
        })
    }

    pub fn file(&self) -> &Rc<SegmentFile> {
        &self.file
    }

    pub fn segment_base(&self) -> i64 {
        self.segment_base
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The preallocation step, for the next segment of the same partition.
    pub fn preallocation(&self) -> Preallocation {
        self.preallocation
    }

    /// Writes `batches` after the current end, as a few aligned chunks
    /// submitted together. On error nothing is considered written.
    pub async fn write(&mut self, batches: &[&[u8]]) -> io::Result<()> {
        let new_bytes: u64 = batches.iter().map(|batch| batch.len() as u64).sum();
        if new_bytes == 0 {
            return Ok(());
        }
        let start = align_down(self.size, self.alignment);
        let new_size = self.size + new_bytes;
        let end = align_up(new_size, self.alignment);
        let open = self.file.file().await?;
        let file: &DmaFile = &open;
        self.preallocate(file, end).await?;

        let chunk_limit = align_down(WRITE_CHUNK_BYTES as u64, self.alignment).max(self.alignment);
        let mut sources = std::iter::once(self.tail_block.as_slice())
            .chain(batches.iter().copied())
            .filter(|bytes| !bytes.is_empty());
        let mut current: &[u8] = sources.next().unwrap_or_default();
        let mut writes = Vec::new();
        let mut new_tail = Vec::new();
        let mut chunk_start = start;
        while chunk_start < end {
            let chunk_length = (end - chunk_start).min(chunk_limit) as usize;
            let mut buffer = file.alloc_dma_buffer(chunk_length);
            let target = buffer.as_bytes_mut();
            let mut filled = 0;
            while filled < chunk_length && !current.is_empty() {
                let take = current.len().min(chunk_length - filled);
                target[filled..filled + take].copy_from_slice(&current[..take]);
                filled += take;
                current = &current[take..];
                if current.is_empty() {
                    current = sources.next().unwrap_or_default();
                }
            }
            target[filled..].fill(0);
            let tail_start = align_down(new_size, self.alignment);
            if tail_start >= chunk_start && tail_start < chunk_start + chunk_length as u64 {
                let from = (tail_start - chunk_start) as usize;
                let to = (new_size - chunk_start) as usize;
                new_tail = target[from..to].to_vec();
            }
            let position = chunk_start;
            writes.push(async move {
                let written = file
                    .write_at(buffer, position)
                    .await
                    .map_err(io::Error::from)?;
                if written < chunk_length {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "short DMA write to segment",
                    ));
                }
                Ok::<(), io::Error>(())
            });
            chunk_start += chunk_length as u64;
        }
        debug_assert!(current.is_empty(), "every byte found a chunk");
        try_join_all(writes).await?;
        self.size = new_size;
        self.tail_block = new_tail;
        // Without a preallocation the write itself extended the file.
        self.preallocated = self.preallocated.max(end);
        Ok(())
    }

    /// Extends the preallocation in steps so that `[0, needed)` is reserved.
    /// A file system out of space is not an error here: the segment goes on
    /// without a reservation (a reservation must not be what fills the
    /// disk), with the smallest step next time, and the write that follows
    /// answers for itself.
    async fn preallocate(&mut self, file: &DmaFile, needed: u64) -> io::Result<()> {
        if needed <= self.preallocated {
            return Ok(());
        }
        let cap = align_up(self.preallocate_cap, self.alignment);
        let target = align_up(
            self.preallocation
                .extend(needed, cap, std::time::Instant::now()),
            self.alignment,
        );
        match file
            .pre_allocate(target, false)
            .await
            .map_err(io::Error::from)
        {
            Ok(()) => self.preallocated = target,
            Err(error) if is_out_of_space(&error) => {
                tracing::debug!(segment_base = self.segment_base, target, %error,
                    "no space to preallocate; writing without a reservation");
                self.preallocation = Preallocation::default();
            }
            Err(error) => return Err(error),
        }
        Ok(())
    }

    /// Trims the preallocated space so the file is exactly its data.
    pub async fn trim(&mut self) -> io::Result<()> {
        if self.preallocated != self.size {
            self.file
                .file()
                .await?
                .truncate(self.size)
                .await
                .map_err(io::Error::from)?;
            self.preallocated = self.size;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::memlock::run_on_test_executor;

    /// A new segment file in `dir` and a writer at its start.
    async fn new_segment(dir: &Path) -> (PathBuf, Rc<SegmentFile>, DmaWriter) {
        let path = dir.join("segment.log");
        let created = open_segment_file(&path, true).await.expect("create");
        let segment_file = SegmentFile::opened(path.clone(), created);
        let writer = DmaWriter::resume(
            segment_file.clone(),
            0,
            0,
            1 << 30,
            Preallocation::default(),
        )
        .await
        .expect("writer");
        (path, segment_file, writer)
    }

    #[test]
    fn unaligned_appends_land_back_to_back_and_trim_to_size() {
        run_on_test_executor(|| async move {
            let dir = tempfile::tempdir().expect("tempdir");
            prime_iopoll_detection(dir.path()).await.expect("probe");
            let (path, segment_file, mut writer) = new_segment(dir.path()).await;
            let file = segment_file.file().await.expect("open");
            let mut expected = Vec::new();
            for round in 0..40u32 {
                let first = vec![(round % 251) as u8 + 1; 1_000 + round as usize * 37];
                let second = vec![7u8; 3_001];
                writer.write(&[&first, &second]).await.expect("write");
                expected.extend_from_slice(&first);
                expected.extend_from_slice(&second);
            }
            assert_eq!(writer.size(), expected.len() as u64);
            writer.trim().await.expect("trim");
            file.fdatasync().await.expect("sync");
            drop(writer);
            let on_disk = std::fs::read(&path).expect("read back");
            assert_eq!(on_disk, expected);
            let read = file.read_at(4_000, 10_000).await.expect("dma read");
            assert_eq!(&read[..], &expected[4_000..14_000]);
        });
    }

    #[test]
    fn a_round_larger_than_one_chunk_is_split_and_written_whole() {
        run_on_test_executor(|| async move {
            let dir = tempfile::tempdir().expect("tempdir");
            prime_iopoll_detection(dir.path()).await.expect("probe");
            let (path, segment_file, mut writer) = new_segment(dir.path()).await;
            let file = segment_file.file().await.expect("open");
            drop(file);
            let head = vec![1u8; 777];
            writer.write(&[&head]).await.expect("write");
            let big: Vec<u8> = (0..3 * WRITE_CHUNK_BYTES + 123)
                .map(|at| (at % 253) as u8)
                .collect();
            writer.write(&[&big, &head]).await.expect("write");
            writer.trim().await.expect("trim");
            drop(writer);
            let mut expected = head.clone();
            expected.extend_from_slice(&big);
            expected.extend_from_slice(&head);
            assert_eq!(std::fs::read(&path).expect("read back"), expected);
            // Reopening in the middle of a block resumes with the right tail.
            let mut writer = DmaWriter::resume(
                segment_file.clone(),
                0,
                expected.len() as u64,
                1 << 30,
                Preallocation::default(),
            )
            .await
            .expect("resume");
            writer.write(&[&head]).await.expect("write");
            writer.trim().await.expect("trim");
            expected.extend_from_slice(&head);
            assert_eq!(std::fs::read(&path).expect("read back"), expected);
        });
    }
}
