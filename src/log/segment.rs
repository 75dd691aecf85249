//! One segment of a partition: its log file (a `SegmentFile`, open on demand
//! within the shard's budget of open files; a read holds its own descriptor
//! so it can outlive a retention deletion), how many bytes of whole batches it
//! holds, its in-memory sparse indexes and largest timestamp. File naming
//! follows Kafka
//! (`<base offset, 20 digits>.log|.index|.timeindex|.txnindex`). Lives on
//! the partition's owning shard; only the writer task grows a segment.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::protocol::record_batch::BatchHeader;

use super::offset_index::OffsetIndex;
use super::segment_file::SegmentFile;
use super::time_index::TimeIndex;

pub(crate) const LOG_SUFFIX: &str = ".log";
pub(crate) const INDEX_SUFFIX: &str = ".index";
pub(crate) const TIME_INDEX_SUFFIX: &str = ".timeindex";
/// Aborted transactions of the segment (see `txn_index.rs`).
pub(crate) const TXN_INDEX_SUFFIX: &str = ".txnindex";

/// What the index needs to know about one stored batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchMeta {
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub size: u64,
}

impl BatchMeta {
    pub fn from_header(header: &BatchHeader) -> Option<BatchMeta> {
        Some(BatchMeta {
            base_offset: header.base_offset,
            last_offset: header.last_offset(),
            max_timestamp: header.max_timestamp,
            size: header.total_bytes()? as u64,
        })
    }
}

pub(crate) fn file_name(base_offset: i64, suffix: &str) -> String {
    format!("{base_offset:020}{suffix}")
}

pub(crate) fn segment_path(dir: &Path, base_offset: i64, suffix: &str) -> PathBuf {
    dir.join(file_name(base_offset, suffix))
}

/// Base offset of a `.log` file name, `None` for any other file.
pub(crate) fn parse_log_file_name(name: &str) -> Option<i64> {
    parse_offset_file_name(name, LOG_SUFFIX)
}

/// Base offset of a `.txnindex` file name, `None` for any other file.
pub(crate) fn parse_txn_index_file_name(name: &str) -> Option<i64> {
    parse_offset_file_name(name, TXN_INDEX_SUFFIX)
}

/// The offset of a `<offset, 20 digits><suffix>` file name.
pub(crate) fn parse_offset_file_name(name: &str, suffix: &str) -> Option<i64> {
    let digits = name.strip_suffix(suffix)?;
    if digits.len() != 20 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse::<i64>().ok()
}

pub(crate) struct Segment {
    pub base_offset: i64,
    pub file: Rc<SegmentFile>,
    /// Bytes of whole, written batches: readers may read `[0, size)`.
    pub size: u64,
    /// Offset after the last batch of the segment.
    pub next_offset: i64,
    /// Largest batch max timestamp in the segment, -1 when none.
    pub max_timestamp: i64,
    offset_of_max_timestamp: i64,
    bytes_since_index_entry: u64,
    pub offset_index: OffsetIndex,
    pub time_index: TimeIndex,
}

impl Segment {
    pub fn new(base_offset: i64, file: Rc<SegmentFile>) -> Segment {
        Segment {
            base_offset,
            file,
            size: 0,
            next_offset: base_offset,
            max_timestamp: -1,
            offset_of_max_timestamp: base_offset,
            bytes_since_index_entry: 0,
            offset_index: OffsetIndex::default(),
            time_index: TimeIndex::default(),
        }
    }

    /// A closed segment whose index files were loaded.
    pub fn sealed(
        base_offset: i64,
        file: Rc<SegmentFile>,
        size: u64,
        next_offset: i64,
        offset_index: OffsetIndex,
        time_index: TimeIndex,
    ) -> Segment {
        let last = time_index.last();
        Segment {
            base_offset,
            file,
            size,
            next_offset,
            max_timestamp: last.map_or(-1, |entry| entry.timestamp_ms),
            offset_of_max_timestamp: last.map_or(base_offset, |entry| {
                base_offset + i64::from(entry.relative_offset)
            }),
            bytes_since_index_entry: 0,
            offset_index,
            time_index,
        }
    }

    pub fn relative_offset(&self, offset: i64) -> u32 {
        let relative = offset.saturating_sub(self.base_offset).max(0);
        u32::try_from(relative).unwrap_or(u32::MAX)
    }

    /// Accounts for one batch stored at `position` (written now, or found by
    /// a scan). Indexes it when more than `index_interval_bytes` passed since
    /// the last entry, as Kafka's `LogSegment.append` does.
    pub fn record_batch(&mut self, position: u64, batch: &BatchMeta, index_interval_bytes: u32) {
        debug_assert_eq!(position, self.size, "batches are stored back to back");
        if batch.max_timestamp > self.max_timestamp {
            self.max_timestamp = batch.max_timestamp;
            self.offset_of_max_timestamp = batch.base_offset;
        }
        if self.bytes_since_index_entry > u64::from(index_interval_bytes) {
            if let Ok(position) = u32::try_from(position) {
                self.offset_index
                    .append(self.relative_offset(batch.base_offset), position);
                self.time_index.maybe_append(
                    self.max_timestamp,
                    self.relative_offset(self.offset_of_max_timestamp),
                );
            }
            self.bytes_since_index_entry = 0;
        }
        self.bytes_since_index_entry += batch.size;
        self.size = position + batch.size;
        self.next_offset = batch.last_offset + 1;
    }

    /// Adds the final time index entry when the segment stops being active,
    /// so the last entry is the segment's largest timestamp (Kafka's
    /// `onBecomeInactiveSegment`).
    pub fn seal(&mut self) {
        self.time_index.maybe_append(
            self.max_timestamp,
            self.relative_offset(self.offset_of_max_timestamp),
        );
    }

    /// Where to start scanning for the batch containing `offset`.
    pub fn start_position(&self, offset: i64) -> u64 {
        u64::from(self.offset_index.lookup(self.relative_offset(offset)))
    }

    /// Where to start scanning for the first record at or after `timestamp_ms`.
    pub fn start_position_for_timestamp(&self, timestamp_ms: i64) -> u64 {
        let relative = self.time_index.lookup(timestamp_ms);
        u64::from(self.offset_index.lookup(relative))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_file_names_round_trip() {
        assert_eq!(file_name(42, LOG_SUFFIX), "00000000000000000042.log");
        assert_eq!(parse_log_file_name("00000000000000000042.log"), Some(42));
        assert_eq!(parse_log_file_name("00000000000000000042.index"), None);
        assert_eq!(parse_log_file_name("42.log"), None);
        assert_eq!(parse_log_file_name("0000000000000000004x.log"), None);
    }
}
