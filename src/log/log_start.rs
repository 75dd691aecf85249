//! The log start offset moved by DeleteRecords, kept across restarts in a
//! small file in the partition directory (Kafka keeps it in
//! `log-start-offset-checkpoint`). Segments start at batch boundaries, so
//! without it a restart would bring back the records deleted inside the
//! first segment. Retention moves the start past it by deleting segments;
//! recovery takes the larger of the two.
//!
//! Which cores: the partition's owner. Plain blocking file calls: the file
//! is a few bytes and written only by DeleteRecords.

use std::io;
use std::path::Path;

const FILE_NAME: &str = "log-start-offset";

/// The recorded log start offset, if any (a missing or unreadable file is none).
pub(crate) fn read(dir: &Path) -> Option<i64> {
    let text = std::fs::read_to_string(dir.join(FILE_NAME)).ok()?;
    text.trim()
        .parse::<i64>()
        .ok()
        .filter(|offset| *offset >= 0)
}

/// Records `offset` durably (write, fsync, rename).
pub(crate) fn write(dir: &Path, offset: i64) -> io::Result<()> {
    let path = dir.join(FILE_NAME);
    let temp = dir.join(format!("{FILE_NAME}.tmp"));
    std::fs::write(&temp, format!("{offset}\n"))?;
    std::fs::File::open(&temp)?.sync_all()?;
    std::fs::rename(&temp, &path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_ignores_garbage() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(read(dir.path()), None);
        write(dir.path(), 42).expect("write");
        assert_eq!(read(dir.path()), Some(42));
        std::fs::write(dir.path().join(FILE_NAME), "garbage").expect("write");
        assert_eq!(read(dir.path()), None);
    }
}
