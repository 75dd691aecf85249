//! The data directory's owner: one broker process at a time, as Kafka's
//! `.lock` file in every log directory. Two brokers on one directory would
//! both append to the same segments and overwrite each other's indexes.
//!
//! The lock is an advisory `flock` on `<data dir>/.lock`, held for the
//! broker's life. The kernel drops it when the process exits, however it
//! exits, so a crash never leaves a stale lock behind. The file holds the
//! owner's pid, only to name it in the refusal.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

/// The lock file's name inside the data directory (Kafka's name).
pub const LOCK_FILE: &str = ".lock";

/// Held while the broker runs; dropping it releases the directory.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Takes the data directory, or says which process holds it.
pub fn acquire(data_dir: &Path) -> io::Result<DataDirLock> {
    let path = data_dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)?;
    // SAFETY: flock on a descriptor this function owns; no memory involved.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if locked != 0 {
        let error = io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(io::Error::new(
                error.kind(),
                format!("cannot lock {}: {error}", path.display()),
            ));
        }
        let mut owner = String::new();
        let _ = file.read_to_string(&mut owner);
        let owner = match owner.trim() {
            "" => String::new(),
            pid => format!(" (pid {pid})"),
        };
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "data directory {} is in use by another corelog process{owner}: \
                 stop it, or give this broker its own --data-dir",
                data_dir.display()
            ),
        ));
    }
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    writeln!(file, "{}", std::process::id())?;
    Ok(DataDirLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_owner_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = acquire(dir.path()).expect("first lock");
        // flock locks belong to the open file description: a second open in
        // this process conflicts like another process would.
        let refused = acquire(dir.path()).expect_err("second lock refused");
        assert_eq!(refused.kind(), io::ErrorKind::AddrInUse);
        let reason = refused.to_string();
        assert!(
            reason.contains("in use by another corelog process"),
            "{reason}"
        );
        assert!(
            reason.contains(&format!("pid {}", std::process::id())),
            "{reason}"
        );
        drop(first);
        acquire(dir.path()).expect("lock after release");
    }
}
