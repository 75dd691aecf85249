//! The time index of one segment: (largest timestamp so far, relative offset
//! of the batch that first reached it) pairs, like Kafka's `.timeindex`.
//! Entries are added next to offset index entries when the largest timestamp
//! grew, plus a final one when the segment is sealed, so the last entry is the
//! segment's largest timestamp. Held in memory, written on roll and close.
//! Lives on the partition's owning shard.

/// Size of one encoded entry: timestamp i64 + relative offset u32, big-endian.
pub(crate) const TIME_ENTRY_BYTES: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub timestamp_ms: i64,
    pub relative_offset: u32,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct TimeIndex {
    entries: Vec<TimeEntry>,
}

impl TimeIndex {
    /// Appends when `timestamp_ms` is larger than the last entry's (and not
    /// negative: -1 means "no timestamp" in Kafka).
    pub fn maybe_append(&mut self, timestamp_ms: i64, relative_offset: u32) {
        let last_timestamp_ms = self.entries.last().map_or(-1, |entry| entry.timestamp_ms);
        if timestamp_ms <= last_timestamp_ms {
            return;
        }
        if let Some(last) = self.entries.last() {
            if relative_offset < last.relative_offset {
                debug_assert!(false, "time index offsets must not decrease");
                return;
            }
        }
        self.entries.push(TimeEntry {
            timestamp_ms,
            relative_offset,
        });
    }

    /// Relative offset from which a scan for the first record with a
    /// timestamp >= `timestamp_ms` may start: every batch before the entry
    /// found has only older records. 0 (segment start) when none qualifies.
    pub fn lookup(&self, timestamp_ms: i64) -> u32 {
        let after = self
            .entries
            .partition_point(|entry| entry.timestamp_ms < timestamp_ms);
        match after {
            0 => 0,
            found => self.entries[found - 1].relative_offset,
        }
    }

    pub fn last(&self) -> Option<TimeEntry> {
        self.entries.last().copied()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.entries.len() * TIME_ENTRY_BYTES);
        for entry in &self.entries {
            bytes.extend_from_slice(&entry.timestamp_ms.to_be_bytes());
            bytes.extend_from_slice(&entry.relative_offset.to_be_bytes());
        }
        bytes
    }

    /// Decodes a time index file, or `None` when it is malformed.
    pub fn decode(bytes: &[u8]) -> Option<TimeIndex> {
        if !bytes.len().is_multiple_of(TIME_ENTRY_BYTES) {
            return None;
        }
        let mut index = TimeIndex::default();
        for raw in bytes.chunks_exact(TIME_ENTRY_BYTES) {
            let mut timestamp = [0u8; 8];
            timestamp.copy_from_slice(&raw[..8]);
            let timestamp_ms = i64::from_be_bytes(timestamp);
            let relative_offset = u32::from_be_bytes([raw[8], raw[9], raw[10], raw[11]]);
            if let Some(last) = index.entries.last() {
                if timestamp_ms <= last.timestamp_ms || relative_offset < last.relative_offset {
                    return None;
                }
            }
            index.entries.push(TimeEntry {
                timestamp_ms,
                relative_offset,
            });
        }
        Some(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_growing_timestamps_are_indexed() {
        let mut index = TimeIndex::default();
        index.maybe_append(-1, 0);
        index.maybe_append(100, 0);
        index.maybe_append(90, 5);
        index.maybe_append(100, 6);
        index.maybe_append(200, 9);
        assert_eq!(index.entries.len(), 2);
        assert_eq!(index.last().map(|entry| entry.timestamp_ms), Some(200));
    }

    #[test]
    fn lookup_starts_at_the_last_strictly_older_entry() {
        let mut index = TimeIndex::default();
        index.maybe_append(100, 0);
        index.maybe_append(200, 10);
        index.maybe_append(300, 20);
        assert_eq!(index.lookup(50), 0);
        assert_eq!(index.lookup(100), 0);
        assert_eq!(index.lookup(101), 0);
        assert_eq!(index.lookup(200), 0);
        assert_eq!(index.lookup(201), 10);
        assert_eq!(index.lookup(10_000), 20);
    }

    #[test]
    fn encode_decode_round_trip_and_garbage_refused() {
        let mut index = TimeIndex::default();
        index.maybe_append(100, 0);
        index.maybe_append(200, 10);
        let bytes = index.encode();
        let decoded = TimeIndex::decode(&bytes).expect("valid");
        assert_eq!(decoded.entries, index.entries);
        assert!(TimeIndex::decode(&bytes[..5]).is_none());
        let mut reversed = bytes[12..].to_vec();
        reversed.extend_from_slice(&bytes[..12]);
        assert!(TimeIndex::decode(&reversed).is_none());
    }
}
