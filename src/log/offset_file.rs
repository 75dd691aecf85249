//! One offset kept in a small file of the partition directory: the log
//! start offset moved by DeleteRecords (`log-start-offset`, Kafka's
//! `log-start-offset-checkpoint`) and a replicated partition's high
//! watermark (`high-watermark`, Kafka's `replication-offset-checkpoint`).
//! One decimal i64 and a newline, replaced durably
//! (`runtime::durable_file::replace`); a missing or unreadable file reads
//! as none.
//!
//! Which cores: the partition's owner, with glommio file I/O, so a write
//! never blocks the shard. Callers keep one writer at a time per file.

use std::io;
use std::path::Path;

use crate::runtime::durable_file;

/// The log start offset file (see `log_start`).
pub(crate) const LOG_START_OFFSET: &str = "log-start-offset";
/// The high watermark checkpoint of a replicated partition.
pub(crate) const HIGH_WATERMARK: &str = "high-watermark";

/// The file holds one decimal i64 and a newline.
const FILE_BYTES_MAX: u64 = 32;

/// The offset recorded in `dir/name`, if any.
pub(crate) async fn read(dir: &Path, name: &str) -> Option<i64> {
    let bytes = durable_file::read_small(&dir.join(name), FILE_BYTES_MAX)
        .await
        .ok()??;
    std::str::from_utf8(&bytes)
        .ok()?
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|offset| *offset >= 0)
}

/// Records `offset` in `dir/name` durably.
pub(crate) async fn write(dir: &Path, name: &str, offset: i64) -> io::Result<()> {
    durable_file::replace(&dir.join(name), format!("{offset}\n").into_bytes()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_ignores_garbage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dir = dir.path().to_path_buf();
        crate::runtime::memlock::run_on_test_executor(move || async move {
            assert_eq!(read(&dir, HIGH_WATERMARK).await, None);
            write(&dir, HIGH_WATERMARK, 42).await.expect("write");
            assert_eq!(read(&dir, HIGH_WATERMARK).await, Some(42));
            std::fs::write(dir.join(HIGH_WATERMARK), "garbage").expect("write");
            assert_eq!(read(&dir, HIGH_WATERMARK).await, None);
        });
    }
}
