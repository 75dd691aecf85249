//! `MetadataLogStore`: the metadata quorum's Raft log and vote, in
//! `<data-dir>/__cluster_metadata-0/` (Kafka's name for the KRaft log), owned
//! by the quorum on shard 0 of a voter node. All its file I/O is glommio's.
//!
//! The metadata log is small: snapshots of the image keep it to the entries
//! since the last one. So every entry stays in memory (a `BTreeMap` by
//! index, shared with the log readers of openraft's replication tasks) and
//! the disk holds, as frames of `stored.rs`:
//! - `entries.log`: the entries, appended; each `append` is written and
//!   fdatasync'ed before openraft hears it is flushed (as a partition log
//!   with `--flush always`);
//! - `vote` (Kafka's `quorum-state`) and `purged` (the last purged log id):
//!   each replaced durably (temp, fdatasync, rename, directory fsync) before
//!   the call returns;
//! - `committed`: a hint of the last committed log id, replaced atomically
//!   but without fsync (see `save_committed`).
//!
//! `truncate_after` and `purge` rewrite `entries.log` whole through the same
//! durable replace: a crash leaves the old file or the new one, never a hole,
//! and the log's small size makes the copy cheap. `purge` writes `purged`
//! first, so entries at or below it that survive a crash are dropped on open.
//!
//! On open, a torn last frame (a crash in the middle of an append that was
//! never acknowledged) is cut off with a warning. A bad frame with good bytes
//! after it is corruption, and opening fails rather than serve a log with a
//! hole.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use glommio::io::{BufferedFile, OpenOptions};
use openraft::storage::{IOFlushed, LogState, RaftLogReader, RaftLogStorage};

use super::stored::{self, StoredError};
use super::types::{Entry, LogId, MetadataRaft, Vote};
use crate::cluster::metadata::frame::FrameError;
use crate::runtime::durable_file;

/// The log file: entries as frames, appended.
pub const ENTRIES_FILE: &str = "entries.log";
/// The durable vote.
pub const VOTE_FILE: &str = "vote";
/// The last purged log id.
pub const PURGED_FILE: &str = "purged";
/// The last committed log id (openraft re-applies up to it on start-up).
pub const COMMITTED_FILE: &str = "committed";

/// Largest log file opened. Snapshots keep the log to thousands of small
/// entries; a log this large means snapshots stopped, and reading it whole
/// into memory would be the wrong fix.
pub const ENTRIES_FILE_BYTES_MAX: u64 = 1 << 30;
/// Largest vote, purged or committed file: one small frame.
const SMALL_FILE_BYTES_MAX: u64 = 4 << 10;

/// The entries and vote, shared by the store and its readers.
#[derive(Default)]
struct SharedLog {
    entries: BTreeMap<u64, Entry>,
    vote: Option<Vote>,
    purged: Option<LogId>,
}

/// openraft's log storage for the metadata quorum (see the module header).
pub struct MetadataLogStore {
    dir: PathBuf,
    log: Rc<RefCell<SharedLog>>,
    committed: Option<LogId>,
    /// `entries.log`, open for appends; replaced after each rewrite.
    file: Option<BufferedFile>,
    file_bytes: u64,
}

/// A reader of the log for openraft's replication tasks.
#[derive(Clone)]
pub struct MetadataLogReader {
    log: Rc<RefCell<SharedLog>>,
}

impl MetadataLogStore {
    /// Opens (or creates) the log in `dir`, for example
    /// `<data-dir>/__cluster_metadata-0`, and reads it back.
    pub async fn open(dir: impl Into<PathBuf>) -> io::Result<MetadataLogStore> {
        let dir = dir.into();
        durable_file::ensure_directory(&dir).await?;
        let vote = read_small(&dir, VOTE_FILE)
            .await?
            .map(|b| stored::decode_vote(&b))
            .transpose()?;
        let purged = read_log_id(&dir, PURGED_FILE).await?;
        // Written without fsync (see `save_committed`): unreadable after a
        // crash means unknown, never an error.
        let committed = match read_log_id(&dir, COMMITTED_FILE).await {
            Ok(committed) => committed,
            Err(error) => {
                tracing::warn!(%error, "ignoring the unreadable committed-index hint");
                None
            }
        };
        let entries_path = dir.join(ENTRIES_FILE);
        let Some(bytes) = durable_file::read_small(&entries_path, ENTRIES_FILE_BYTES_MAX).await?
        else {
            durable_file::replace(&dir.join(ENTRIES_FILE), Vec::new()).await?;
            return Self::with_entries(dir, BTreeMap::new(), vote, purged, committed).await;
        };
        let parsed = parse_entries(&bytes)?;
        if parsed.valid_bytes < bytes.len() {
            tracing::warn!(
                path = %entries_path.display(),
                torn_bytes = bytes.len() - parsed.valid_bytes,
                "metadata log: cutting off a torn last frame (a crash during an append)"
            );
            let file = OpenOptions::new()
                .write(true)
                .buffered_open(&entries_path)
                .await?;
            file.truncate(parsed.valid_bytes as u64).await?;
            file.fdatasync().await?;
            file.close().await?;
        }
        let mut entries = BTreeMap::new();
        for entry in parsed.entries {
            if purged.is_none_or(|purged| entry.log_id.index > purged.index) {
                entries.insert(entry.log_id.index, entry);
            }
        }
        if let (Some(purged), Some(first)) = (purged, entries.keys().next()) {
            if *first != purged.index + 1 {
                return Err(corrupt(format!(
                    "first entry {first} after purged {}",
                    purged.index
                )));
            }
        }
        Self::with_entries(dir, entries, vote, purged, committed).await
    }

    async fn with_entries(
        dir: PathBuf,
        entries: BTreeMap<u64, Entry>,
        vote: Option<Vote>,
        purged: Option<LogId>,
        committed: Option<LogId>,
    ) -> io::Result<MetadataLogStore> {
        let log = SharedLog {
            entries,
            vote,
            purged,
        };
        let mut store = MetadataLogStore {
            dir,
            log: Rc::new(RefCell::new(log)),
            committed,
            file: None,
            file_bytes: 0,
        };
        store.reopen_entries_file().await?;
        Ok(store)
    }

    async fn reopen_entries_file(&mut self) -> io::Result<()> {
        if let Some(file) = self.file.take() {
            file.close().await?;
        }
        let file = OpenOptions::new()
            .write(true)
            .buffered_open(self.dir.join(ENTRIES_FILE))
            .await?;
        self.file_bytes = file.file_size().await?;
        self.file = Some(file);
        Ok(())
    }

    /// Rewrites `entries.log` from the entries in memory (truncate, purge).
    async fn rewrite_entries_file(&mut self) -> io::Result<()> {
        let bytes = encode_entries(self.log.borrow().entries.values())?;
        durable_file::replace(&self.dir.join(ENTRIES_FILE), bytes).await?;
        self.reopen_entries_file().await
    }

    async fn write_entries(&mut self, entries: &[Entry]) -> io::Result<()> {
        let bytes = encode_entries(entries.iter())?;
        let length = bytes.len() as u64;
        let file = self
            .file
            .as_ref()
            .ok_or_else(|| io::Error::other("metadata log file is not open"))?;
        write_all_at(file, bytes, self.file_bytes).await?;
        file.fdatasync().await?;
        self.file_bytes += length;
        Ok(())
    }

    /// The index the next entry must have, if the log constrains it.
    fn next_index(&self) -> Option<u64> {
        let log = self.log.borrow();
        let last = log.entries.keys().next_back().copied();
        last.or(log.purged.map(|purged| purged.index))
            .map(|index| index + 1)
    }
}

impl RaftLogReader<MetadataRaft> for MetadataLogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug>(
        &mut self,
        range: RB,
    ) -> io::Result<Vec<Entry>> {
        let log = self.log.borrow();
        Ok(entries_in(&log.entries, range))
    }

    async fn read_vote(&mut self) -> io::Result<Option<Vote>> {
        Ok(self.log.borrow().vote)
    }
}

impl RaftLogStorage<MetadataRaft> for MetadataLogStore {
    type LogReader = MetadataLogReader;

    async fn get_log_state(&mut self) -> io::Result<LogState<MetadataRaft>> {
        let log = self.log.borrow();
        let last = log.entries.values().next_back().map(|entry| entry.log_id);
        Ok(LogState {
            last_purged_log_id: log.purged,
            last_log_id: last.or(log.purged),
        })
    }

    async fn get_log_reader(&mut self) -> MetadataLogReader {
        MetadataLogReader {
            log: self.log.clone(),
        }
    }

    async fn save_vote(&mut self, vote: &Vote) -> io::Result<()> {
        durable_file::replace(
            &self.dir.join(VOTE_FILE),
            stored::encode_vote(vote).map_err(invalid)?,
        )
        .await?;
        self.log.borrow_mut().vote = Some(*vote);
        Ok(())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> io::Result<()> {
        // openraft never moves `committed` back; `None` only before any commit.
        let Some(log_id) = committed else {
            return Ok(());
        };
        if self.committed == Some(log_id) {
            return Ok(());
        }
        // A hint (openraft re-applies up to it at start-up instead of waiting
        // for a leader): an fsync per commit would halve the quorum's rate,
        // and a stale or lost hint after a power cut only means re-applying
        // later. Its entries themselves are durable.
        durable_file::replace_unsynced(
            &self.dir.join(COMMITTED_FILE),
            stored::encode_log_id(&log_id).map_err(invalid)?,
        )
        .await?;
        self.committed = Some(log_id);
        Ok(())
    }

    async fn read_committed(&mut self) -> io::Result<Option<LogId>> {
        Ok(self.committed)
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<MetadataRaft>) -> io::Result<()>
    where
        I: IntoIterator<Item = Entry>,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        if let (Some(first), Some(next)) = (entries.first(), self.next_index()) {
            assert_eq!(
                first.log_id.index, next,
                "metadata log append leaves a hole"
            );
        }
        match self.write_entries(&entries).await {
            Ok(()) => {
                let mut log = self.log.borrow_mut();
                for entry in entries {
                    log.entries.insert(entry.log_id.index, entry);
                }
                drop(log);
                callback.io_completed(Ok(()));
                Ok(())
            }
            Err(error) => {
                tracing::error!(%error, "metadata log: append failed");
                callback.io_completed(Err(io::Error::new(error.kind(), error.to_string())));
                Err(error)
            }
        }
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> io::Result<()> {
        let keep_below = last_log_id.map_or(0, |log_id| log_id.index + 1);
        let removed = self.log.borrow_mut().entries.split_off(&keep_below);
        if !removed.is_empty() {
            self.rewrite_entries_file().await?;
        }
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> io::Result<()> {
        assert!(
            self.log
                .borrow()
                .purged
                .is_none_or(|purged| purged <= log_id),
            "purge went backwards"
        );
        durable_file::replace(
            &self.dir.join(PURGED_FILE),
            stored::encode_log_id(&log_id).map_err(invalid)?,
        )
        .await?;
        {
            let mut log = self.log.borrow_mut();
            log.purged = Some(log_id);
            log.entries = log.entries.split_off(&(log_id.index + 1));
        }
        self.rewrite_entries_file().await
    }
}

/// The entries in `range`; empty for an empty or inverted range (where
/// `BTreeMap::range` would panic).
fn entries_in(entries: &BTreeMap<u64, Entry>, range: impl RangeBounds<u64>) -> Vec<Entry> {
    let start = match range.start_bound() {
        Bound::Included(start) => *start,
        Bound::Excluded(start) => start.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(end) => end.checked_add(1),
        Bound::Excluded(end) => Some(*end),
        Bound::Unbounded => None,
    };
    if end.is_some_and(|end| end <= start) {
        return Vec::new();
    }
    let range = (
        Bound::Included(start),
        end.map_or(Bound::Unbounded, Bound::Excluded),
    );
    entries
        .range(range)
        .map(|(_, entry)| entry.clone())
        .collect()
}

fn encode_entries<'a>(entries: impl Iterator<Item = &'a Entry>) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    for entry in entries {
        bytes.extend_from_slice(&stored::encode_entry(entry).map_err(invalid)?);
    }
    Ok(bytes)
}

/// The entries of a log file, and where its valid frames end.
#[derive(Debug)]
pub(crate) struct ParsedEntries {
    pub(crate) entries: Vec<Entry>,
    pub(crate) valid_bytes: usize,
}

/// Reads the frames of `entries.log`. A bad frame is a torn tail when it
/// reaches the end of the file or only zeros follow it (what a crash during
/// an append leaves); otherwise it is corruption. Entries must be
/// consecutive.
pub(crate) fn parse_entries(bytes: &[u8]) -> io::Result<ParsedEntries> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut position = 0;
    while position < bytes.len() {
        let rest = &bytes[position..];
        let decoded = stored::split_first_frame(rest)
            .map_err(StoredError::from)
            .and_then(|(frame, _)| stored::decode_entry(frame).map(|entry| (entry, frame.len())));
        let (entry, frame_bytes) = match decoded {
            Ok(decoded) => decoded,
            Err(error) if is_torn_tail(rest, &error) => break,
            Err(error) => return Err(corrupt(format!("frame at byte {position}: {error}"))),
        };
        if let Some(previous) = entries.last() {
            if entry.log_id.index != previous.log_id.index + 1 {
                return Err(corrupt(format!(
                    "entry {} after entry {}",
                    entry.log_id.index, previous.log_id.index
                )));
            }
        }
        entries.push(entry);
        position += frame_bytes;
    }
    Ok(ParsedEntries {
        entries,
        valid_bytes: position,
    })
}

fn is_torn_tail(rest: &[u8], error: &StoredError) -> bool {
    if matches!(error, StoredError::Frame(FrameError::Truncated { .. })) {
        return true;
    }
    let frame_end = stored::split_first_frame(rest).map_or(0, |(frame, _)| frame.len());
    rest[frame_end..].iter().all(|byte| *byte == 0)
}

fn corrupt(message: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("metadata log corrupt: {message}"),
    )
}

fn invalid(error: FrameError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

async fn read_small(dir: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    durable_file::read_small(&dir.join(name), SMALL_FILE_BYTES_MAX).await
}

async fn read_log_id(dir: &Path, name: &str) -> io::Result<Option<LogId>> {
    let bytes = read_small(dir, name).await?;
    Ok(bytes
        .map(|bytes| stored::decode_log_id(&bytes))
        .transpose()?)
}

async fn write_all_at(
    file: &BufferedFile,
    mut bytes: Vec<u8>,
    mut position: u64,
) -> io::Result<()> {
    while !bytes.is_empty() {
        let written = file.write_at(bytes.clone(), position).await?;
        if written == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "metadata file write made no progress",
            ));
        }
        bytes.drain(..written);
        position += written as u64;
    }
    Ok(())
}
