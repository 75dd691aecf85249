//! The aborted-transaction index of a segment, `<base offset, 20 digits>.txnindex`,
//! in Kafka's format: one 34-byte big-endian entry per abort marker the
//! segment holds (`version i16 = 0, producer_id i64, first_offset i64,
//! last_offset i64, last_stable_offset i64`), in marker order. A
//! read_committed consumer gets these ranges with its fetch and drops the
//! aborted records (KIP-98).
//!
//! Appended by the partition's writer task right after the abort marker's
//! bytes are written, with an fdatasync before it moves on: a producer
//! snapshot at offset S is written only after every entry below S is
//! durable, so recovery can trust the entries below the snapshot it loads
//! and rebuilds the rest by replaying the log (`producer_recovery.rs`).
//! Deleted with its segment. Aborts are rare, so each append opens, writes,
//! syncs and closes the file through glommio. Lives on the owning shard.

use std::io;
use std::path::Path;

use bytes::{Buf, BufMut};
use glommio::io::OpenOptions;

use super::index_file::{read_small_file, write_atomically};
use super::producer_state::AbortedTxn;
use super::segment::{segment_path, TXN_INDEX_SUFFIX};
use crate::runtime::durable_file::sync_directory;

/// Bytes of one entry (Kafka's `AbortedTxn.TOTAL_SIZE`).
pub(crate) const ENTRY_BYTES: usize = 2 + 8 + 8 + 8 + 8;
const _: () = assert!(ENTRY_BYTES == 34);
const ENTRY_VERSION: i16 = 0;

pub(crate) fn encode(entries: &[AbortedTxn]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(entries.len() * ENTRY_BYTES);
    for entry in entries {
        bytes.put_i16(ENTRY_VERSION);
        bytes.put_i64(entry.producer_id);
        bytes.put_i64(entry.first_offset);
        bytes.put_i64(entry.last_offset);
        bytes.put_i64(entry.last_stable_offset);
    }
    bytes
}

/// The entries of an index file, stopping at a torn last entry or at one
/// with an unknown version (what follows cannot be trusted).
pub(crate) fn decode(mut bytes: &[u8]) -> Vec<AbortedTxn> {
    let mut entries = Vec::with_capacity(bytes.len() / ENTRY_BYTES);
    while bytes.remaining() >= ENTRY_BYTES {
        if bytes.get_i16() != ENTRY_VERSION {
            break;
        }
        entries.push(AbortedTxn {
            producer_id: bytes.get_i64(),
            first_offset: bytes.get_i64(),
            last_offset: bytes.get_i64(),
            last_stable_offset: bytes.get_i64(),
        });
    }
    entries
}

/// The raw bytes of a segment's index (empty when there is none).
pub(crate) async fn read_bytes(dir: &Path, segment_base: i64) -> io::Result<Vec<u8>> {
    let path = segment_path(dir, segment_base, TXN_INDEX_SUFFIX);
    Ok(read_small_file(&path).await?.unwrap_or_default())
}

/// Appends `entries` to the index of the segment at `segment_base` and
/// makes them durable (the file's directory entry too when it is new).
pub(crate) async fn append(
    dir: &Path,
    segment_base: i64,
    entries: &[AbortedTxn],
) -> io::Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let path = segment_path(dir, segment_base, TXN_INDEX_SUFFIX);
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .buffered_open(&path)
        .await
        .map_err(io::Error::from)?;
    let bytes = encode(entries);
    let length = bytes.len();
    let written = async {
        let size = file.file_size().await.map_err(io::Error::from)?;
        let written = file.write_at(bytes, size).await.map_err(io::Error::from)?;
        if written != length {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "short transaction index write",
            ));
        }
        file.fdatasync().await.map_err(io::Error::from)?;
        Ok(size == 0)
    }
    .await;
    file.close().await.map_err(io::Error::from)?;
    if written? {
        sync_directory(dir).await?;
    }
    Ok(())
}

/// Replaces the index of a segment with `entries` (removes it when empty).
pub(crate) async fn rewrite(
    dir: &Path,
    segment_base: i64,
    entries: &[AbortedTxn],
) -> io::Result<()> {
    if entries.is_empty() {
        return remove(dir, segment_base).await;
    }
    let path = segment_path(dir, segment_base, TXN_INDEX_SUFFIX);
    write_atomically(&path, encode(entries)).await
}

/// Removes the index of a segment (already gone is fine).
pub(crate) async fn remove(dir: &Path, segment_base: i64) -> io::Result<()> {
    let path = segment_path(dir, segment_base, TXN_INDEX_SUFFIX);
    match glommio::io::remove(&path).await.map_err(io::Error::from) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(producer_id: i64, first_offset: i64, last_offset: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id,
            first_offset,
            last_offset,
            last_stable_offset: last_offset + 1,
        }
    }

    #[test]
    fn entries_round_trip_in_kafkas_layout() {
        let entries = vec![entry(7, 10, 20), entry(-3, 0, i64::MAX - 1)];
        let bytes = encode(&entries);
        assert_eq!(bytes.len(), 2 * ENTRY_BYTES);
        assert_eq!(&bytes[..2], &[0, 0], "version 0");
        assert_eq!(&bytes[2..10], &7i64.to_be_bytes());
        assert_eq!(
            &bytes[26..34],
            &21i64.to_be_bytes(),
            "last stable offset last"
        );
        assert_eq!(decode(&bytes), entries);
    }

    #[test]
    fn a_torn_or_unknown_entry_ends_the_index() {
        let bytes = encode(&[entry(1, 0, 1), entry(2, 2, 3)]);
        assert_eq!(decode(&bytes[..ENTRY_BYTES + 10]), vec![entry(1, 0, 1)]);
        let mut versioned = bytes.clone();
        versioned[ENTRY_BYTES + 1] = 1;
        assert_eq!(decode(&versioned), vec![entry(1, 0, 1)]);
        assert!(decode(&[]).is_empty());
    }
}
