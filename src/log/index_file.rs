//! Index files of sealed segments (`.index`, `.timeindex`): written when a
//! segment rolls and when the log closes, read back at open. The same
//! atomic write and bounded read serve producer snapshots and `.txnindex`
//! rewrites. Small, so they go through glommio's buffered file API. Writes
//! are `runtime::durable_file::replace` (temporary name, fdatasync, rename,
//! directory sync), so a crash leaves either the old file or the complete
//! new one, never a short one that would look valid. Lives on the
//! partition's owning shard.

use std::io;
use std::path::Path;

use super::limits::INDEX_FILE_BYTES_MAX;
use super::segment::{segment_path, Segment, INDEX_SUFFIX, TIME_INDEX_SUFFIX};
use crate::runtime::durable_file;
pub(crate) use crate::runtime::durable_file::replace as write_atomically;
pub(crate) use crate::runtime::durable_file::TEMPORARY_SUFFIX;

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

/// Reads a whole index (or snapshot, or transaction index) file; `None` when
/// it is missing or implausibly large (the caller rebuilds what it holds).
pub(crate) async fn read_small_file(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match durable_file::read_small(path, INDEX_FILE_BYTES_MAX).await {
        Err(error) if error.kind() == io::ErrorKind::InvalidData => Ok(None),
        read => read,
    }
}
