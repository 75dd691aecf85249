//! Versioned, bounds-checked frames around rkyv payloads: the one encoding for
//! bytes the cluster writes to disk or sends to another node (metadata
//! records in Raft log entries, snapshots, and the quorum's own messages).
//!
//! ```text
//! [format version u8][kind u8][payload length u32 LE][crc32c u32 LE][rkyv payload]
//! ```
//!
//! Shaped so that bytes from the network or a torn disk write can never panic
//! or allocate without bound: the length is checked against
//! [`MAX_FRAME_BYTES`] before anything is copied, the crc32c (over version,
//! kind, length and payload) before rkyv sees the payload, and rkyv's
//! *checked* API (`bytecheck`) validates the archive before it is
//! deserialized. The payload is copied into an aligned buffer because rkyv
//! needs aligned archives and a frame inside a read buffer is not.
//! Pure code, usable on any shard.

use rkyv::api::high::{HighDeserializer, HighSerializer, HighValidator};
use rkyv::rancor;
use rkyv::ser::allocator::ArenaHandle;
use rkyv::util::AlignedVec;

/// The current frame format. Bump it whenever an encoded type changes (rkyv
/// layouts are fixed: a new enum variant can change an element's size too).
pub const FRAME_FORMAT_VERSION: u8 = 1;

/// Bytes before the payload: version, kind, length, crc.
pub const FRAME_HEADER_BYTES: usize = 10;

/// Largest payload accepted. Bounds what one frame from the network or the
/// disk can make a node allocate before its crc is checked. 32 MiB holds a
/// metadata snapshot of about 200,000 partitions in one frame (a partition
/// record archives to well under 150 bytes) and many Raft append batches;
/// larger snapshots are sent in chunks by the quorum.
pub const MAX_FRAME_BYTES: usize = 32 << 20;

const _: () = assert!(MAX_FRAME_BYTES <= u32::MAX as usize);

/// Which type a frame's payload holds. Kinds are numbered in one place per
/// user so that a frame decoded as the wrong type is refused before rkyv
/// looks at it: 1-15 the metadata log, 16-63 the quorum's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameKind(u8);

impl FrameKind {
    /// A `Vec<MetadataRecord>`: the records of one Raft log entry.
    pub const METADATA_RECORDS: FrameKind = FrameKind(1);
    /// A metadata snapshot: its records (see `MetadataImage::to_records`).
    pub const METADATA_SNAPSHOT: FrameKind = FrameKind(2);

    /// A kind defined by another module (quorum messages use 16-63).
    pub const fn new(kind: u8) -> FrameKind {
        FrameKind(kind)
    }

    /// The byte written in the frame.
    pub const fn as_u8(self) -> u8 {
        self.0
    }
}

/// Why bytes are not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Fewer bytes than the header or its announced payload.
    #[error("frame truncated: {available} bytes, {needed} needed")]
    Truncated {
        /// Bytes given.
        available: usize,
        /// Bytes the frame needs.
        needed: usize,
    },
    /// Written by a format this build does not know.
    #[error("unknown frame format version {0}")]
    UnknownVersion(u8),
    /// A frame of another kind than the caller expects.
    #[error("frame kind {found}, expected {expected}")]
    WrongKind {
        /// The kind the caller expects.
        expected: u8,
        /// The kind in the frame.
        found: u8,
    },
    /// The payload is larger than [`MAX_FRAME_BYTES`].
    #[error("frame payload of {0} bytes is above the {MAX_FRAME_BYTES}-byte limit")]
    TooLarge(usize),
    /// The crc32c does not match: a torn write or a corrupted message.
    #[error("frame crc32c mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// The crc in the header.
        stored: u32,
        /// The crc of the bytes.
        computed: u32,
    },
    /// Bytes after the frame where exactly one frame was expected.
    #[error("{0} bytes after the frame")]
    TrailingBytes(usize),
    /// The payload is not a valid archive of the expected type.
    #[error("invalid frame payload: {0}")]
    InvalidPayload(String),
}

/// A frame's header, read before its payload (for stream readers that must
/// know how many bytes to wait for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// What the payload holds.
    pub kind: FrameKind,
    /// Payload bytes after the header (already checked against the limit).
    pub payload_bytes: usize,
    /// The crc32c of version, kind, length and payload.
    pub crc: u32,
}

impl FrameHeader {
    /// Header plus payload.
    pub fn frame_bytes(&self) -> usize {
        FRAME_HEADER_BYTES + self.payload_bytes
    }
}

/// Reads and checks the header at the start of `bytes` (version, limit).
pub fn read_header(bytes: &[u8]) -> Result<FrameHeader, FrameError> {
    let Some(header) = bytes.get(..FRAME_HEADER_BYTES) else {
        return Err(FrameError::Truncated {
            available: bytes.len(),
            needed: FRAME_HEADER_BYTES,
        });
    };
    if header[0] != FRAME_FORMAT_VERSION {
        return Err(FrameError::UnknownVersion(header[0]));
    }
    let payload_bytes = u32::from_le_bytes([header[2], header[3], header[4], header[5]]) as usize;
    if payload_bytes > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(payload_bytes));
    }
    Ok(FrameHeader {
        kind: FrameKind(header[1]),
        payload_bytes,
        crc: u32::from_le_bytes([header[6], header[7], header[8], header[9]]),
    })
}

fn frame_crc(header_prefix: &[u8], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(header_prefix), payload)
}

/// Encodes `value` as one frame of `kind`.
pub fn encode<T>(kind: FrameKind, value: &T) -> Result<Vec<u8>, FrameError>
where
    T: for<'a> rkyv::Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, rancor::Error>>,
{
    let payload = rkyv::to_bytes::<rancor::Error>(value)
        .map_err(|error| FrameError::InvalidPayload(error.to_string()))?;
    if payload.len() > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(payload.len()));
    }
    let mut frame = Vec::with_capacity(FRAME_HEADER_BYTES + payload.len());
    frame.push(FRAME_FORMAT_VERSION);
    frame.push(kind.0);
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    let crc = frame_crc(&frame, &payload);
    frame.extend_from_slice(&crc.to_le_bytes());
    frame.extend_from_slice(&payload);
    Ok(frame)
}

/// Decodes `bytes`, which must be exactly one frame of `expected` kind.
pub fn decode<T>(expected: FrameKind, bytes: &[u8]) -> Result<T, FrameError>
where
    T: rkyv::Archive,
    T::Archived: for<'a> rkyv::bytecheck::CheckBytes<HighValidator<'a, rancor::Error>>
        + rkyv::Deserialize<T, HighDeserializer<rancor::Error>>,
{
    let header = read_header(bytes)?;
    if header.kind != expected {
        return Err(FrameError::WrongKind {
            expected: expected.0,
            found: header.kind.0,
        });
    }
    let needed = header.frame_bytes();
    if bytes.len() < needed {
        return Err(FrameError::Truncated {
            available: bytes.len(),
            needed,
        });
    }
    if bytes.len() > needed {
        return Err(FrameError::TrailingBytes(bytes.len() - needed));
    }
    let payload = &bytes[FRAME_HEADER_BYTES..];
    let computed = frame_crc(&bytes[..6], payload);
    if computed != header.crc {
        return Err(FrameError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    let mut aligned = AlignedVec::<16>::with_capacity(payload.len());
    aligned.extend_from_slice(payload);
    rkyv::from_bytes::<T, rancor::Error>(&aligned)
        .map_err(|error| FrameError::InvalidPayload(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::metadata::records::MetadataRecord;
    use crate::cluster::metadata::test_fixtures::arbitrary_records;
    use proptest::prelude::*;

    fn decode_records(bytes: &[u8]) -> Result<Vec<MetadataRecord>, FrameError> {
        decode::<Vec<MetadataRecord>>(FrameKind::METADATA_RECORDS, bytes)
    }

    #[test]
    fn header_checks_are_typed() {
        assert!(matches!(
            decode_records(&[1, 1, 0]),
            Err(FrameError::Truncated { .. })
        ));
        let mut frame =
            encode(FrameKind::METADATA_RECORDS, &Vec::<MetadataRecord>::new()).expect("encodes");
        let wrong_kind = decode::<Vec<MetadataRecord>>(FrameKind::METADATA_SNAPSHOT, &frame);
        assert!(matches!(wrong_kind, Err(FrameError::WrongKind { .. })));
        frame.push(0);
        assert_eq!(decode_records(&frame), Err(FrameError::TrailingBytes(1)));
        frame[0] = 9;
        assert_eq!(decode_records(&frame), Err(FrameError::UnknownVersion(9)));
        let mut huge = vec![FRAME_FORMAT_VERSION, 1];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(&[0; 4]);
        assert!(matches!(
            decode_records(&huge),
            Err(FrameError::TooLarge(_))
        ));
    }

    proptest! {
        #[test]
        fn records_round_trip(records in arbitrary_records()) {
            let frame = encode(FrameKind::METADATA_RECORDS, &records).expect("encodes");
            prop_assert_eq!(read_header(&frame)?.frame_bytes(), frame.len());
            prop_assert_eq!(decode_records(&frame), Ok(records));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_records(&bytes);
            // The same bytes behind a valid header reach rkyv's validation.
            let mut frame = vec![FRAME_FORMAT_VERSION, 1];
            frame.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            frame.extend_from_slice(&frame_crc(&frame.clone(), &bytes).to_le_bytes());
            frame.extend_from_slice(&bytes);
            let _ = decode_records(&frame);
        }

        #[test]
        fn corrupted_payloads_behind_a_valid_crc_never_panic(
            records in arbitrary_records(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..6),
        ) {
            // What a buggy or hostile peer could send: rkyv's validation, not
            // the crc, must catch it.
            let frame = encode(FrameKind::METADATA_RECORDS, &records).expect("encodes");
            let mut payload = frame[FRAME_HEADER_BYTES..].to_vec();
            for (at, bit) in flips {
                let at = at.index(payload.len().max(1)).min(payload.len().saturating_sub(1));
                if let Some(byte) = payload.get_mut(at) {
                    *byte ^= 1 << bit;
                }
            }
            let mut corrupted = frame[..6].to_vec();
            corrupted.extend_from_slice(&frame_crc(&frame[..6], &payload).to_le_bytes());
            corrupted.extend_from_slice(&payload);
            let _ = decode_records(&corrupted);
        }

        #[test]
        fn truncations_and_bit_flips_are_refused(
            records in arbitrary_records(),
            cut in any::<prop::sample::Index>(),
            flip in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let frame = encode(FrameKind::METADATA_RECORDS, &records).expect("encodes");
            let cut = cut.index(frame.len());
            prop_assert!(decode_records(&frame[..cut]).is_err());
            let mut flipped = frame.clone();
            let at = flip.index(flipped.len());
            flipped[at] ^= 1 << bit;
            prop_assert!(decode_records(&flipped).is_err());
        }
    }
}
