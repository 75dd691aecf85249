//! The log start offset moved by DeleteRecords, kept across restarts in a
//! small file in the partition directory (Kafka keeps it in
//! `log-start-offset-checkpoint`). Segments start at batch boundaries, so
//! without it a restart would bring back the records deleted inside the
//! first segment. Retention moves the start past it by deleting segments;
//! recovery takes the larger of the two.
//!
//! Which cores: the partition's owner, with glommio file I/O
//! (`runtime::durable_file`), so a DeleteRecords never blocks the shard.
//! One writer at a time per partition: `PartitionLog::delete_records` holds
//! the log's `log_start_writer` permit around [`write`].

use std::io;
use std::path::Path;

use crate::runtime::durable_file;

const FILE_NAME: &str = "log-start-offset";
/// The file holds one decimal i64 and a newline.
const FILE_BYTES_MAX: u64 = 32;

/// The recorded log start offset, if any (a missing or unreadable file is none).
pub(crate) async fn read(dir: &Path) -> Option<i64> {
    let bytes = durable_file::read_small(&dir.join(FILE_NAME), FILE_BYTES_MAX)
        .await
        .ok()??;
    std::str::from_utf8(&bytes)
        .ok()?
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|offset| *offset >= 0)
}

/// Records `offset` durably (`durable_file::replace`).
pub(crate) async fn write(dir: &Path, offset: i64) -> io::Result<()> {
    durable_file::replace(&dir.join(FILE_NAME), format!("{offset}\n").into_bytes()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_ignores_garbage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dir = dir.path().to_path_buf();
        crate::runtime::memlock::run_on_test_executor(move || async move {
            assert_eq!(read(&dir).await, None);
            write(&dir, 42).await.expect("write");
            assert_eq!(read(&dir).await, Some(42));
            std::fs::write(dir.join(FILE_NAME), "garbage").expect("write");
            assert_eq!(read(&dir).await, None);
        });
    }
}
