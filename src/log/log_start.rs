//! The log start offset moved by DeleteRecords, kept across restarts in a
//! small file in the partition directory (`offset_file::LOG_START_OFFSET`).
//! Segments start at batch boundaries, so without it a restart would bring
//! back the records deleted inside the first segment. Retention moves the
//! start past it by deleting segments; recovery takes the larger of the two.
//! One writer at a time per partition: `PartitionLog::delete_records` holds
//! the log's `log_start_writer` permit around [`write`].

use std::io;
use std::path::Path;

use super::offset_file::{self, LOG_START_OFFSET};

/// The recorded log start offset, if any.
pub(crate) async fn read(dir: &Path) -> Option<i64> {
    offset_file::read(dir, LOG_START_OFFSET).await
}

/// Records `offset` durably.
pub(crate) async fn write(dir: &Path, offset: i64) -> io::Result<()> {
    offset_file::write(dir, LOG_START_OFFSET, offset).await
}
