//! Producer-state snapshots: `<offset, 20 digits>.snapshot` files in the
//! partition directory (Kafka's name), each holding the producer state of
//! every batch below `offset`, so a restart replays only the log after the
//! newest one instead of the whole partition. Written by the writer task at
//! each segment roll (state taken when the roll was decided) and by `close`
//! (at the log end offset); the newest `SNAPSHOTS_KEPT` are kept.
//!
//! Format (our own, big-endian, version 1):
//!
//! ```text
//! magic "CLPS" | version u16 | crc32c u32 (of everything after it) | offset i64
//! | producer count u32 | per producer: producer_id i64, epoch i16,
//!   coordinator_epoch i32, last_timestamp_ms i64, current_txn_first_offset
//!   i64 (-1 none), batch count u8 (<= 5), per batch: first_sequence i32,
//!   last_sequence i32, base_offset i64, last_offset i64
//! ```
//!
//! Aborted transactions are not in it: the segments' `.txnindex` files hold
//! them. A file that does not decode (torn, wrong crc, wrong version) is
//! ignored and the state rebuilt from the log; decoding never panics.
//! Lives on the partition's owning shard; files go through glommio.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::path::{Path, PathBuf};

use bytes::{Buf, BufMut};

use super::index_file::{read_small_file, write_atomically};
use super::partition::LogInner;
use super::producer_state::{
    BatchSequence, ProducerEntry, ProducerStates, BATCHES_REMEMBERED_PER_PRODUCER,
};
use super::segment::{file_name, parse_offset_file_name};

pub(crate) const SNAPSHOT_SUFFIX: &str = ".snapshot";
/// Snapshots kept on disk: the newest, and one more in case the newest
/// turns out unreadable (Kafka keeps a few for the same reason).
pub(crate) const SNAPSHOTS_KEPT: usize = 2;

const MAGIC: &[u8; 4] = b"CLPS";
const VERSION: u16 = 1;
const HEADER_BYTES: usize = 4 + 2 + 4;
const PRODUCER_BYTES: usize = 8 + 2 + 4 + 8 + 8 + 1;
const BATCH_BYTES: usize = 4 + 4 + 8 + 8;

pub(crate) fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(file_name(offset, SNAPSHOT_SUFFIX))
}

/// Offset of a `.snapshot` file name, `None` for any other file.
pub(crate) fn parse_snapshot_file_name(name: &str) -> Option<i64> {
    parse_offset_file_name(name, SNAPSHOT_SUFFIX)
}

/// The snapshot of `states` covering every batch below `offset`.
pub(crate) fn encode(states: &ProducerStates, offset: i64) -> Vec<u8> {
    let mut body = Vec::with_capacity(8 + 4 + states.len() * (PRODUCER_BYTES + BATCH_BYTES));
    body.put_i64(offset);
    body.put_u32(states.len() as u32);
    for (producer_id, entry) in states.producers() {
        body.put_i64(producer_id);
        body.put_i16(entry.epoch);
        body.put_i32(entry.coordinator_epoch);
        body.put_i64(entry.last_timestamp_ms);
        body.put_i64(entry.current_txn_first_offset.unwrap_or(-1));
        body.put_u8(entry.recent.len() as u8);
        for batch in &entry.recent {
            body.put_i32(batch.first_sequence);
            body.put_i32(batch.last_sequence);
            body.put_i64(batch.base_offset);
            body.put_i64(batch.last_offset);
        }
    }
    let mut file = Vec::with_capacity(HEADER_BYTES + body.len());
    file.put_slice(MAGIC);
    file.put_u16(VERSION);
    file.put_u32(crc32c::crc32c(&body));
    file.put_slice(&body);
    file
}

/// The offset and state of a snapshot, `None` when the bytes are not a
/// complete, intact version-1 snapshot.
pub(crate) fn decode(bytes: &[u8]) -> Option<(i64, ProducerStates)> {
    let header = bytes.get(..HEADER_BYTES)?;
    if &header[..4] != MAGIC || u16::from_be_bytes([header[4], header[5]]) != VERSION {
        return None;
    }
    let crc = u32::from_be_bytes([header[6], header[7], header[8], header[9]]);
    let mut body = &bytes[HEADER_BYTES..];
    if crc32c::crc32c(body) != crc || body.remaining() < 12 {
        return None;
    }
    let offset = body.get_i64();
    let count = body.get_u32() as usize;
    if offset < 0 || count > body.remaining() / PRODUCER_BYTES {
        return None;
    }
    let mut producers = HashMap::with_capacity(count);
    for _ in 0..count {
        if body.remaining() < PRODUCER_BYTES {
            return None;
        }
        let producer_id = body.get_i64();
        let epoch = body.get_i16();
        let coordinator_epoch = body.get_i32();
        let last_timestamp_ms = body.get_i64();
        let txn_first_offset = body.get_i64();
        let batches = usize::from(body.get_u8());
        if batches > BATCHES_REMEMBERED_PER_PRODUCER || body.remaining() < batches * BATCH_BYTES {
            return None;
        }
        let recent: VecDeque<BatchSequence> = (0..batches)
            .map(|_| BatchSequence {
                first_sequence: body.get_i32(),
                last_sequence: body.get_i32(),
                base_offset: body.get_i64(),
                last_offset: body.get_i64(),
            })
            .collect();
        let entry = ProducerEntry {
            epoch,
            coordinator_epoch,
            last_timestamp_ms,
            current_txn_first_offset: (txn_first_offset >= 0).then_some(txn_first_offset),
            recent,
        };
        if producer_id < 0 || producers.insert(producer_id, entry).is_some() {
            return None;
        }
    }
    if body.has_remaining() {
        return None;
    }
    Some((offset, ProducerStates::from_producers(producers)))
}

/// Writes a snapshot durably (temporary file, fdatasync, rename).
pub(crate) async fn write(dir: &Path, offset: i64, bytes: Vec<u8>) -> io::Result<()> {
    write_atomically(&snapshot_path(dir, offset), bytes).await
}

/// Reads and decodes the snapshot at `offset`; `None` when it is missing,
/// too large or does not decode, or names another offset than its file.
pub(crate) async fn read(dir: &Path, offset: i64) -> io::Result<Option<ProducerStates>> {
    let Some(bytes) = read_small_file(&snapshot_path(dir, offset)).await? else {
        return Ok(None);
    };
    Ok(decode(&bytes)
        .filter(|(recorded, _)| *recorded == offset)
        .map(|(_, states)| states))
}

/// Writes the snapshot at `offset` and removes all but the newest
/// `SNAPSHOTS_KEPT`. A failure is logged, not fatal: the older snapshots
/// stay and recovery replays more of the log.
pub(crate) async fn save(inner: &LogInner, offset: i64, bytes: Vec<u8>) {
    if let Err(error) = write(&inner.dir, offset, bytes).await {
        tracing::warn!(dir = %inner.dir.display(), offset, %error,
            "cannot write producer snapshot; recovery will replay more of the log");
        return;
    }
    let stale: Vec<i64> = {
        let mut offsets = inner.snapshot_offsets.borrow_mut();
        if let Err(at) = offsets.binary_search(&offset) {
            offsets.insert(at, offset);
        }
        let excess = offsets.len().saturating_sub(SNAPSHOTS_KEPT);
        offsets.drain(..excess).collect()
    };
    for offset in stale {
        if let Err(error) = remove(&inner.dir, offset).await {
            tracing::warn!(dir = %inner.dir.display(), offset, %error,
                "cannot remove an old producer snapshot");
        }
    }
}

/// Removes the snapshot at `offset` (already gone is fine).
pub(crate) async fn remove(dir: &Path, offset: i64) -> io::Result<()> {
    match glommio::io::remove(snapshot_path(dir, offset))
        .await
        .map_err(io::Error::from)
    {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::log::producer_state::ProducerBatch;
    use crate::protocol::batch_builder::{ControlMarker, ControlType};

    fn sample_states() -> ProducerStates {
        let mut states = ProducerStates::default();
        for index in 0..7 {
            let batch = ProducerBatch {
                producer_id: 1,
                producer_epoch: 2,
                first_sequence: index * 3,
                last_sequence: index * 3 + 2,
                transactional: false,
                marker: None,
            };
            let base = i64::from(index) * 3;
            states.apply(&batch, base, base + 2, 1_000 + base);
        }
        let transactional = ProducerBatch {
            producer_id: 9,
            producer_epoch: 0,
            first_sequence: 0,
            last_sequence: 0,
            transactional: true,
            marker: None,
        };
        states.apply(&transactional, 21, 21, 5_000);
        let commit = ProducerBatch {
            producer_id: 4,
            producer_epoch: 1,
            first_sequence: -1,
            last_sequence: -1,
            transactional: true,
            marker: Some(ControlMarker {
                control_type: ControlType::Commit,
                coordinator_epoch: 6,
            }),
        };
        states.apply(&commit, 22, 22, 6_000);
        states
    }

    #[test]
    fn snapshots_round_trip() {
        let states = sample_states();
        let (offset, decoded) = decode(&encode(&states, 23)).expect("decodes");
        assert_eq!(offset, 23);
        assert_eq!(decoded.len(), 3);
        for id in [1, 4, 9] {
            assert_eq!(decoded.producer(id), states.producer(id), "producer {id}");
        }
        assert_eq!(
            decoded.last_stable_offset(100),
            21,
            "open transaction restored"
        );
        let (_, empty) = decode(&encode(&ProducerStates::default(), 0)).expect("decodes");
        assert!(empty.is_empty());
    }

    #[test]
    fn damaged_snapshots_do_not_decode() {
        let bytes = encode(&sample_states(), 23);
        for length in 0..bytes.len() {
            assert!(decode(&bytes[..length]).is_none(), "cut at {length}");
        }
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x40;
            assert!(decode(&damaged).is_none(), "flipped byte {at}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_none());
    }

    #[test]
    fn snapshot_file_names_round_trip() {
        let path = snapshot_path(Path::new("/p"), 42);
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .expect("name");
        assert_eq!(name, "00000000000000000042.snapshot");
        assert_eq!(parse_snapshot_file_name(name), Some(42));
        assert_eq!(parse_snapshot_file_name("00000000000000000042.log"), None);
        assert_eq!(parse_snapshot_file_name("42.snapshot"), None);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn arbitrary_bodies_with_a_valid_crc_never_panic(
            body in proptest::collection::vec(any::<u8>(), 0..512)
        ) {
            let mut bytes = MAGIC.to_vec();
            bytes.put_u16(VERSION);
            bytes.put_u32(crc32c::crc32c(&body));
            bytes.extend_from_slice(&body);
            let _ = decode(&bytes);
        }
    }
}
