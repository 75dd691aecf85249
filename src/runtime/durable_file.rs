//! The one way corelog replaces a small file durably: write a temporary
//! file next to it, fdatasync it, rename it over the old one, fsync the
//! directory. A crash leaves either the old file or the complete new one,
//! never a short one that would parse, and once the call returns the new
//! name survives power loss (the directory sync makes the rename durable).
//!
//! Which cores: [`replace`] and [`sync_directory`] use glommio's file API
//! and run on any shard executor (topic manifests on the controller, index
//! files and `log-start-offset` on the partition's owner, producer id blocks
//! on the controller). [`replace_before_executors`] is the same protocol in
//! blocking `std::fs`, only for start-up code that runs on the main thread
//! before any executor exists (`meta.properties`): shards never block.
//!
//! The temporary name is the final name plus [`TEMPORARY_SUFFIX`], so
//! recovery code can recognise and delete leftovers of a crashed replace.
//! Two replaces of one path must not run at once (they share the temporary
//! name); every caller is the single writer of its file.

use std::io;
use std::path::{Path, PathBuf};

use glommio::io::OpenOptions;

/// Appended to the final name to make the temporary one.
pub const TEMPORARY_SUFFIX: &str = ".tmp";

/// Largest single read of `read_small` (files may be larger; they are read
/// in chunks of this size).
const READ_CHUNK_BYTES: usize = 1 << 20;

/// `path` with [`TEMPORARY_SUFFIX`] appended (`00.index` -> `00.index.tmp`).
pub fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(TEMPORARY_SUFFIX);
    PathBuf::from(name)
}

/// Replaces `path` with `bytes` durably (glommio I/O; see the module docs).
pub async fn replace(path: &Path, bytes: Vec<u8>) -> io::Result<()> {
    write_and_rename(path, bytes, true).await
}

/// Replaces `path` with `bytes` atomically (a reader sees the old or the new
/// file) but not durably: no fdatasync, no directory sync. Only for hints
/// whose loss, staleness or emptiness after a power cut is harmless and
/// which the reader validates (the Raft committed index), where an fsync per
/// update would cost more than the hint saves.
pub async fn replace_unsynced(path: &Path, bytes: Vec<u8>) -> io::Result<()> {
    write_and_rename(path, bytes, false).await
}

async fn write_and_rename(path: &Path, bytes: Vec<u8>, durable: bool) -> io::Result<()> {
    let temporary = temporary_path(path);
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .buffered_open(&temporary)
        .await
        .map_err(io::Error::from)?;
    let length = bytes.len();
    let written = async {
        if length > 0 {
            let written = file.write_at(bytes, 0).await.map_err(io::Error::from)?;
            if written != length {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    format!("short write of {}", temporary.display()),
                ));
            }
        }
        if durable {
            file.fdatasync().await.map_err(io::Error::from)?;
        }
        Ok(())
    }
    .await;
    file.close().await.map_err(io::Error::from)?;
    written?;
    glommio::io::rename(&temporary, path)
        .await
        .map_err(io::Error::from)?;
    if !durable {
        return Ok(());
    }
    sync_directory(parent_dir(path)).await
}

/// Reads a whole small file; `None` when it is missing, an
/// [`io::ErrorKind::InvalidData`] error when it is larger than `max_bytes`
/// (it cannot be what the caller wrote, and is not read into memory).
pub async fn read_small(path: &Path, max_bytes: u64) -> io::Result<Option<Vec<u8>>> {
    let file = match glommio::io::BufferedFile::open(path).await {
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
        if size > max_bytes {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} has {size} bytes, more than {max_bytes}", path.display()),
            ));
        }
        let length = usize::try_from(size).map_err(io::Error::other)?;
        // Reads may come back short; chunks keep each read's buffer bounded.
        let mut bytes = Vec::with_capacity(length);
        while bytes.len() < length {
            let want = READ_CHUNK_BYTES.min(length - bytes.len());
            let chunk = file
                .read_at(bytes.len() as u64, want)
                .await
                .map_err(io::Error::from)?;
            if chunk.is_empty() {
                break;
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Some(bytes))
    }
    .await;
    file.close().await.map_err(io::Error::from)?;
    result
}

/// Creates `dir` (not its parents) if it is missing, and makes its name
/// durable in the parent directory.
pub async fn ensure_directory(dir: &Path) -> io::Result<()> {
    if glommio::io::Directory::open(dir).await.is_ok() {
        return Ok(());
    }
    glommio::io::Directory::create(dir)
        .await
        .map_err(io::Error::from)?
        .close()
        .await
        .map_err(io::Error::from)?;
    match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_directory(parent).await,
        _ => Ok(()),
    }
}

/// Makes the entries of `dir` (a new, renamed or removed file) durable.
pub async fn sync_directory(dir: &Path) -> io::Result<()> {
    let directory = glommio::io::Directory::open(dir)
        .await
        .map_err(io::Error::from)?;
    let synced = directory.sync().await.map_err(io::Error::from);
    directory.close().await.map_err(io::Error::from)?;
    synced
}

/// [`replace`] in blocking `std::fs`, for start-up on the main thread before
/// any shard executor runs. Never call it from a shard.
pub fn replace_before_executors(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let temporary = temporary_path(path);
    std::fs::write(&temporary, bytes)?;
    std::fs::File::open(&temporary)?.sync_data()?;
    std::fs::rename(&temporary, path)?;
    std::fs::File::open(parent_dir(path))?.sync_all()
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_writes_new_contents_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state");
        let task_path = path.clone();
        crate::runtime::memlock::run_on_test_executor(move || async move {
            replace(&task_path, b"first".to_vec()).await.expect("first");
            replace(&task_path, b"second, longer".to_vec())
                .await
                .expect("second");
            replace(&task_path, Vec::new()).await.expect("empty");
            replace(&task_path, b"last".to_vec()).await.expect("last");
            let read = read_small(&task_path, 64).await.expect("read");
            assert_eq!(read.as_deref(), Some(&b"last"[..]));
            let too_large = read_small(&task_path, 3).await.expect_err("too large");
            assert_eq!(too_large.kind(), io::ErrorKind::InvalidData);
            let missing = task_path.with_file_name("missing");
            assert_eq!(read_small(&missing, 64).await.expect("read"), None);
        });
        assert_eq!(std::fs::read(&path).expect("read"), b"last");
        assert!(!temporary_path(&path).exists());
    }

    #[test]
    fn replace_before_executors_overwrites_a_leftover_temporary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("meta.properties");
        std::fs::write(temporary_path(&path), b"torn").expect("leftover");
        replace_before_executors(&path, b"version=1\n").expect("replace");
        assert_eq!(std::fs::read(&path).expect("read"), b"version=1\n");
        assert!(!temporary_path(&path).exists());
    }

    #[test]
    fn temporary_name_appends_the_suffix() {
        assert_eq!(
            temporary_path(Path::new("/d/00000000000000000000.index")),
            PathBuf::from("/d/00000000000000000000.index.tmp")
        );
    }
}
