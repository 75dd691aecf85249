//! Index files of sealed segments (`.index`, `.timeindex`): written when a
//! segment rolls and when the log closes, read back at open. The same
//! atomic write and bounded read serve producer snapshots and `.txnindex`
//! rewrites. Small, so they go through glommio's buffered file API. Writes
//! go to a temporary name, are fdatasync'ed and renamed into place, so a
//! crash leaves either the old file or the complete new one, never a short
//! one that would look valid. Lives on the partition's owning shard.

use std::io;
use std::path::{Path, PathBuf};

use glommio::io::{BufferedFile, OpenOptions};

use super::limits::INDEX_FILE_BYTES_MAX;
use super::segment::{segment_path, Segment, INDEX_SUFFIX, TIME_INDEX_SUFFIX};

pub(crate) const TEMPORARY_SUFFIX: &str = ".tmp";

/// The encoded indexes of one segment, taken out of the shared state so the
/// file writes can await without holding a borrow.
pub(crate) struct EncodedIndexes {
    base_offset: i64,
    offset_index: Vec<u8>,
    time_index: Vec<u8>,
}

impl EncodedIndexes {
    pub fn of(segment: &Segment) -> EncodedIndexes {
        EncodedIndexes {
            base_offset: segment.base_offset,
            offset_index: segment.offset_index.encode(),
            time_index: segment.time_index.encode(),
        }
    }

    pub async fn write(self, dir: &Path) -> io::Result<()> {
        let index_path = segment_path(dir, self.base_offset, INDEX_SUFFIX);
        write_atomically(&index_path, self.offset_index).await?;
        let time_index_path = segment_path(dir, self.base_offset, TIME_INDEX_SUFFIX);
        write_atomically(&time_index_path, self.time_index).await
    }
}

fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(TEMPORARY_SUFFIX);
    PathBuf::from(name)
}

/// Replaces `path` with `bytes`: a crash leaves the old file or the new one.
pub(crate) async fn write_atomically(path: &Path, bytes: Vec<u8>) -> io::Result<()> {
    let temporary = temporary_path(path);
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .buffered_open(&temporary)
        .await
        .map_err(io::Error::from)?;
    let length = bytes.len();
    let result = async {
        if length > 0 {
            let written = file.write_at(bytes, 0).await.map_err(io::Error::from)?;
            if written != length {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "short index file write",
                ));
            }
        }
        file.fdatasync().await.map_err(io::Error::from)
    }
    .await;
    file.close().await.map_err(io::Error::from)?;
    result?;
    glommio::io::rename(&temporary, path)
        .await
        .map_err(io::Error::from)
}

/// Reads a whole index (or snapshot, or transaction index) file; `None` when
/// it is missing or implausibly large (the caller rebuilds what it holds).
pub(crate) async fn read_small_file(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let file = match BufferedFile::open(path).await {
        Ok(file) => file,
        Err(error) => {
            let error = io::Error::from(error);
            return match error.kind() {
                io::ErrorKind::NotFound => Ok(None),
                _ => Err(error),
            };
        }
    };
    let result = async {
        let size = file.file_size().await.map_err(io::Error::from)?;
        if size > INDEX_FILE_BYTES_MAX {
            return Ok(None);
        }
        let read = file
            .read_at(0, size as usize)
            .await
            .map_err(io::Error::from)?;
        Ok(Some(read.to_vec()))
    }
    .await;
    file.close().await.map_err(io::Error::from)?;
    result
}
