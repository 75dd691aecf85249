//! The sparse offset index of one segment: (relative offset, file position)
//! pairs, one every `index_interval_bytes`, like Kafka's `.index` file. Held
//! in memory (8 bytes per entry, so proportional to the segment's data) and
//! written out when the segment rolls or the log closes. Lives on the
//! partition's owning shard.
//!
//! Unlike Kafka, an entry names the *base* offset of the batch starting at
//! the position, so a lookup can start scanning right at that batch.

/// Size of one encoded entry: relative offset u32 + position u32, big-endian.
pub(crate) const OFFSET_ENTRY_BYTES: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub relative_offset: u32,
    pub position: u32,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct OffsetIndex {
    entries: Vec<OffsetEntry>,
}

impl OffsetIndex {
    /// Adds an entry; entries out of order are ignored (they can only come
    /// from a bug, and a missing sparse entry costs only a longer scan).
    pub fn append(&mut self, relative_offset: u32, position: u32) {
        if let Some(last) = self.entries.last() {
            if relative_offset <= last.relative_offset || position <= last.position {
                debug_assert!(false, "offset index entries must increase");
                return;
            }
        }
        self.entries.push(OffsetEntry {
            relative_offset,
            position,
        });
    }

    /// Position of the last indexed batch whose base offset is <= `relative_offset`,
    /// or 0 (the segment start) when there is none.
    pub fn lookup(&self, relative_offset: u32) -> u32 {
        let after = self
            .entries
            .partition_point(|entry| entry.relative_offset <= relative_offset);
        match after {
            0 => 0,
            found => self.entries[found - 1].position,
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.entries.len() * OFFSET_ENTRY_BYTES);
        for entry in &self.entries {
            bytes.extend_from_slice(&entry.relative_offset.to_be_bytes());
            bytes.extend_from_slice(&entry.position.to_be_bytes());
        }
        bytes
    }

    /// Decodes an index file, or `None` when it cannot belong to a log of
    /// `log_bytes` bytes (short write, garbage, stale): the caller rebuilds it.
    pub fn decode(bytes: &[u8], log_bytes: u64) -> Option<OffsetIndex> {
        if !bytes.len().is_multiple_of(OFFSET_ENTRY_BYTES) {
            return None;
        }
        let mut index = OffsetIndex::default();
        for raw in bytes.chunks_exact(OFFSET_ENTRY_BYTES) {
            let relative_offset = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
            let position = u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]);
            if u64::from(position) >= log_bytes {
                return None;
            }
            if let Some(last) = index.entries.last() {
                if relative_offset <= last.relative_offset || position <= last.position {
                    return None;
                }
            }
            index.entries.push(OffsetEntry {
                relative_offset,
                position,
            });
        }
        Some(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> OffsetIndex {
        let mut index = OffsetIndex::default();
        index.append(10, 4_100);
        index.append(25, 8_300);
        index.append(40, 12_500);
        index
    }

    #[test]
    fn lookup_finds_the_last_entry_at_or_below_the_offset() {
        let index = sample();
        assert_eq!(index.lookup(0), 0);
        assert_eq!(index.lookup(9), 0);
        assert_eq!(index.lookup(10), 4_100);
        assert_eq!(index.lookup(24), 4_100);
        assert_eq!(index.lookup(25), 8_300);
        assert_eq!(index.lookup(1_000), 12_500);
        assert_eq!(OffsetIndex::default().lookup(5), 0);
    }

    #[test]
    fn encode_decode_round_trip() {
        let index = sample();
        let decoded = OffsetIndex::decode(&index.encode(), 20_000).expect("valid");
        assert_eq!(decoded.entries, index.entries);
    }

    #[test]
    fn decode_refuses_short_unordered_or_out_of_file_entries() {
        let bytes = sample().encode();
        assert!(OffsetIndex::decode(&bytes[..bytes.len() - 3], 20_000).is_none());
        assert!(OffsetIndex::decode(&bytes, 12_000).is_none());
        let mut swapped = bytes[8..16].to_vec();
        swapped.extend_from_slice(&bytes[0..8]);
        assert!(OffsetIndex::decode(&swapped, 20_000).is_none());
        assert_eq!(
            OffsetIndex::decode(&[], 0).map(|index| index.len()),
            Some(0)
        );
    }
}
