//! A partition replica's leader-epoch cache: for every leader epoch that wrote
//! to this log, the offset of its first record (Kafka's `LeaderEpochFileCache`,
//! KIP-101). It answers "where does epoch E end in my log?"
//! (OffsetsForLeaderEpoch and the diverging epoch of a Fetch answer), which is
//! how a returning replica finds the tail it must truncate.
//!
//! Pure data: the owning shard of the partition keeps one beside the log,
//! changes it on appends (a batch of a new epoch), truncations and log-start
//! moves, and writes it as Kafka's `leader-epoch-checkpoint` text file
//! (`encode_checkpoint` / `decode_checkpoint`).

use thiserror::Error;

/// Kafka's UNDEFINED_EPOCH.
pub const UNDEFINED_EPOCH: i32 = -1;
/// Kafka's UNDEFINED_EPOCH_OFFSET.
pub const UNDEFINED_EPOCH_OFFSET: i64 = -1;

/// The checkpoint file's version line (Kafka's `LeaderEpochCheckpointFile` v0).
const CHECKPOINT_VERSION: u32 = 0;
/// A checkpoint with more entries than this is refused as corrupt: one entry
/// per leader change of one partition, so real logs hold a few hundred.
pub const MAX_CHECKPOINT_ENTRIES: usize = 100_000;

/// One epoch's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

/// The end of an epoch in a log, as OffsetsForLeaderEpoch answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEndOffset {
    /// The largest epoch at or below the one asked for that this log knows
    /// (UNDEFINED_EPOCH if none).
    pub epoch: i32,
    /// The first offset after that epoch's records: the next epoch's start,
    /// or the log end for the latest epoch (UNDEFINED_EPOCH_OFFSET if none).
    pub end_offset: i64,
}

impl EpochEndOffset {
    pub const UNDEFINED: EpochEndOffset = EpochEndOffset {
        epoch: UNDEFINED_EPOCH,
        end_offset: UNDEFINED_EPOCH_OFFSET,
    };
}

/// Epoch starts, strictly increasing in both epoch and start offset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderEpochCache {
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    /// A cache of `entries` (from a checkpoint), checked to increase strictly.
    pub fn from_entries(entries: Vec<EpochEntry>) -> Result<Self, CheckpointError> {
        let increasing = entries.windows(2).all(|pair| {
            pair[0].epoch < pair[1].epoch && pair[0].start_offset < pair[1].start_offset
        });
        let valid = entries
            .iter()
            .all(|entry| entry.epoch >= 0 && entry.start_offset >= 0);
        if !increasing || !valid {
            return Err(CheckpointError::NotIncreasing);
        }
        Ok(LeaderEpochCache { entries })
    }

    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub fn latest(&self) -> Option<EpochEntry> {
        self.entries.last().copied()
    }

    pub fn latest_epoch(&self) -> i32 {
        self.latest().map_or(UNDEFINED_EPOCH, |entry| entry.epoch)
    }

    /// Records that `epoch` wrote its first record at `start_offset` (Kafka's
    /// `assign`). A repeat of the latest epoch at a later offset changes
    /// nothing; an older epoch is ignored (a bug upstream, so it is
    /// reported); entries that conflict with the new one (same or larger
    /// epoch, or a start at or after it) are dropped, as they can only come
    /// from a truncated tail. Returns whether the cache changed.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 || start_offset < 0 {
            return false;
        }
        if let Some(latest) = self.latest() {
            if epoch == latest.epoch && start_offset >= latest.start_offset {
                return false;
            }
            if epoch < latest.epoch && start_offset >= latest.start_offset {
                tracing::warn!(
                    epoch,
                    start_offset,
                    latest_epoch = latest.epoch,
                    "older leader epoch after a newer one; ignored"
                );
                return false;
            }
        }
        self.entries
            .retain(|entry| entry.epoch < epoch && entry.start_offset < start_offset);
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        true
    }

    /// Where `requested` ends in a log whose end is `log_end_offset` (Kafka's
    /// `endOffsetFor`): for the latest epoch the log end; for an older one the
    /// start of the next epoch this log knows, paired with the largest known
    /// epoch not above `requested`; UNDEFINED when `requested` is undefined
    /// or newer than every epoch here.
    pub fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> EpochEndOffset {
        if requested == UNDEFINED_EPOCH {
            return EpochEndOffset::UNDEFINED;
        }
        if self.latest_epoch() == requested {
            return EpochEndOffset {
                epoch: requested,
                end_offset: log_end_offset,
            };
        }
        let Some(higher) = self.entries.iter().find(|entry| entry.epoch > requested) else {
            return EpochEndOffset::UNDEFINED;
        };
        let floor = self
            .entries
            .iter()
            .rev()
            .find(|entry| entry.epoch <= requested);
        EpochEndOffset {
            epoch: floor.map_or(requested, |entry| entry.epoch),
            end_offset: higher.start_offset,
        }
    }

    /// The log was truncated to `end_offset`: epochs that started at or after
    /// it are gone (Kafka's `truncateFromEnd`).
    pub fn truncate_from_end(&mut self, end_offset: i64) {
        self.entries.retain(|entry| entry.start_offset < end_offset);
    }

    /// The log now starts at `start_offset` (retention, DeleteRecords):
    /// epochs that ended before it are gone and the one covering it starts
    /// there (Kafka's `truncateFromStart`).
    pub fn truncate_from_start(&mut self, start_offset: i64) {
        let covering = self
            .entries
            .iter()
            .rposition(|entry| entry.start_offset <= start_offset);
        if let Some(index) = covering {
            self.entries.drain(..index);
            self.entries[0].start_offset = start_offset;
        }
    }
}

/// A checkpoint file that cannot be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CheckpointError {
    #[error("leader-epoch checkpoint: unknown version line {0:?}")]
    Version(String),
    #[error("leader-epoch checkpoint: bad entry count {0:?}")]
    Count(String),
    #[error("leader-epoch checkpoint: bad entry line {0:?}")]
    Entry(String),
    #[error("leader-epoch checkpoint: {expected} entries announced, {found} present")]
    Length { expected: usize, found: usize },
    #[error("leader-epoch checkpoint: entries do not increase strictly")]
    NotIncreasing,
}

/// Kafka's `leader-epoch-checkpoint` text: the version, the entry count, then
/// one `epoch start_offset` line per entry.
pub fn encode_checkpoint(cache: &LeaderEpochCache) -> String {
    let mut text = format!("{CHECKPOINT_VERSION}\n{}\n", cache.entries.len());
    for entry in &cache.entries {
        text.push_str(&format!("{} {}\n", entry.epoch, entry.start_offset));
    }
    text
}

/// Reads what [`encode_checkpoint`] wrote (or Kafka did).
pub fn decode_checkpoint(text: &str) -> Result<LeaderEpochCache, CheckpointError> {
    let mut lines = text.lines();
    let version = lines.next().unwrap_or_default();
    if version.trim().parse::<u32>() != Ok(CHECKPOINT_VERSION) {
        return Err(CheckpointError::Version(version.to_string()));
    }
    let count_line = lines.next().unwrap_or_default();
    let count = count_line
        .trim()
        .parse::<usize>()
        .ok()
        .filter(|count| *count <= MAX_CHECKPOINT_ENTRIES)
        .ok_or_else(|| CheckpointError::Count(count_line.to_string()))?;
    let mut entries = Vec::with_capacity(count);
    for line in lines.filter(|line| !line.trim().is_empty()) {
        if entries.len() == count {
            return Err(CheckpointError::Length {
                expected: count,
                found: count + 1,
            });
        }
        let mut fields = line.split_whitespace();
        let epoch = fields.next().and_then(|field| field.parse::<i32>().ok());
        let start = fields.next().and_then(|field| field.parse::<i64>().ok());
        match (epoch, start, fields.next()) {
            (Some(epoch), Some(start_offset), None) => entries.push(EpochEntry {
                epoch,
                start_offset,
            }),
            _ => return Err(CheckpointError::Entry(line.to_string())),
        }
    }
    if entries.len() != count {
        return Err(CheckpointError::Length {
            expected: count,
            found: entries.len(),
        });
    }
    LeaderEpochCache::from_entries(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> LeaderEpochCache {
        LeaderEpochCache::from_entries(
            entries
                .iter()
                .map(|&(epoch, start_offset)| EpochEntry {
                    epoch,
                    start_offset,
                })
                .collect(),
        )
        .expect("increasing entries")
    }

    fn end(epoch: i32, end_offset: i64) -> EpochEndOffset {
        EpochEndOffset { epoch, end_offset }
    }

    #[test]
    fn end_offsets_follow_kafka() {
        let epochs = cache(&[(1, 0), (3, 10), (5, 20)]);
        // The latest epoch ends at the log end.
        assert_eq!(epochs.end_offset_for(5, 27), end(5, 27));
        // An older epoch ends where the next one starts.
        assert_eq!(epochs.end_offset_for(3, 27), end(3, 20));
        // An epoch this log never had: the largest below it, ending at the next start.
        assert_eq!(epochs.end_offset_for(4, 27), end(3, 20));
        assert_eq!(epochs.end_offset_for(2, 27), end(1, 10));
        // Older than every epoch here: the epoch asked, ending at the first start.
        assert_eq!(epochs.end_offset_for(0, 27), end(0, 0));
        // Newer than every epoch here, or undefined.
        assert_eq!(epochs.end_offset_for(6, 27), EpochEndOffset::UNDEFINED);
        assert_eq!(
            epochs.end_offset_for(UNDEFINED_EPOCH, 27),
            EpochEndOffset::UNDEFINED
        );
        assert_eq!(
            LeaderEpochCache::default().end_offset_for(0, 0),
            EpochEndOffset::UNDEFINED
        );
    }

    #[test]
    fn assign_keeps_epochs_and_starts_increasing() {
        let mut epochs = LeaderEpochCache::default();
        assert!(epochs.assign(0, 0));
        assert!(!epochs.assign(0, 5), "same epoch, later offset");
        assert!(epochs.assign(2, 5));
        assert!(!epochs.assign(1, 9), "an older epoch after a newer one");
        assert_eq!(epochs, cache(&[(0, 0), (2, 5)]));
        // A new epoch starting below the latest start: the conflicting tail goes.
        assert!(epochs.assign(3, 4));
        assert_eq!(epochs, cache(&[(0, 0), (3, 4)]));
        assert!(!epochs.assign(-1, 9));
    }

    #[test]
    fn truncation_from_both_ends() {
        let mut epochs = cache(&[(1, 0), (3, 10), (5, 20)]);
        epochs.truncate_from_end(20);
        assert_eq!(epochs, cache(&[(1, 0), (3, 10)]));
        epochs.truncate_from_end(11);
        assert_eq!(epochs, cache(&[(1, 0), (3, 10)]));
        let mut epochs = cache(&[(1, 0), (3, 10), (5, 20)]);
        epochs.truncate_from_start(15);
        assert_eq!(epochs, cache(&[(3, 15), (5, 20)]));
        epochs.truncate_from_start(20);
        assert_eq!(epochs, cache(&[(5, 20)]));
        epochs.truncate_from_start(3);
        assert_eq!(epochs, cache(&[(5, 20)]));
    }

    #[test]
    fn checkpoint_round_trips_and_refuses_damage() {
        let epochs = cache(&[(0, 0), (4, 100), (7, 250)]);
        let text = encode_checkpoint(&epochs);
        assert_eq!(text, "0\n3\n0 0\n4 100\n7 250\n");
        assert_eq!(decode_checkpoint(&text), Ok(epochs));
        assert_eq!(decode_checkpoint("0\n0\n"), Ok(LeaderEpochCache::default()));
        assert!(matches!(
            decode_checkpoint("1\n0\n"),
            Err(CheckpointError::Version(_))
        ));
        assert!(matches!(
            decode_checkpoint("0\n2\n0 0\n"),
            Err(CheckpointError::Length { .. })
        ));
        assert!(matches!(
            decode_checkpoint("0\n1\n0 0\n1 1\n"),
            Err(CheckpointError::Length { .. })
        ));
        assert!(matches!(
            decode_checkpoint("0\n1\nzero 0\n"),
            Err(CheckpointError::Entry(_))
        ));
        assert!(matches!(
            decode_checkpoint("0\n99999999999\n"),
            Err(CheckpointError::Count(_))
        ));
        assert_eq!(
            decode_checkpoint("0\n2\n3 10\n2 20\n"),
            Err(CheckpointError::NotIncreasing)
        );
        assert_eq!(
            decode_checkpoint(""),
            Err(CheckpointError::Version(String::new()))
        );
    }
}
