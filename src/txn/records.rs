//! `__transaction_state` records, byte for byte as Kafka writes them, and
//! which partition of that topic a transactional id belongs to.
//!
//! Which cores: pure code, used by the shard owning a `__transaction_state`
//! partition (to encode on every state change, to decode while replaying).
//!
//! Why Kafka's layout (unlike the offsets records in `crate::group`): the
//! design fixes it, and it keeps `kafka-dump-log`-style tools and our own
//! readers in agreement. Both key and value start with an `i16` version:
//! - key v0: `transactional_id: string` (`i16` length + UTF-8);
//! - value v0: `producer_id: i64, producer_epoch: i16,
//!   transaction_timeout_ms: i32, transaction_status: i8,
//!   transaction_partitions: nullable [topic: string, partition_ids: [i32]]`
//!   (arrays have an `i32` count, `-1` = null; Kafka writes null for Empty),
//!   `last_update_timestamp_ms: i64, start_timestamp_ms: i64`;
//! - value v1 (Kafka 4.0 with transaction.version >= 1) is the flexible
//!   form of v0: compact strings and arrays (unsigned varint length + 1,
//!   0 = null), tagged fields after each struct. Tag 0 is the previous
//!   producer id; tags 1 (next producer id), 2 (client transaction version)
//!   and unknown tags are skipped: KIP-890 part 2 is not implemented.
//!
//! We write v0 only. A null value is a tombstone: the transactional id was
//! expired. Decoding never panics and never allocates more than the input
//! holds; it returns a [`DecodeError`]. Trailing bytes are an error.

use std::collections::BTreeSet;

use thiserror::Error;

use super::state::{TransactionMetadata, TransactionState, NO_PRODUCER_EPOCH, NO_PRODUCER_ID};
use super::NAME_BYTES_MAX;

/// TransactionLogKey version (the only one Kafka has).
pub const KEY_VERSION: i16 = 0;
/// TransactionLogValue version we write.
pub const VALUE_VERSION: i16 = 0;
/// First flexible TransactionLogValue version (read only).
pub const VALUE_VERSION_FLEXIBLE: i16 = 1;

/// TransactionLogValue v1 tag of `PreviousProducerId`.
const TAG_PREVIOUS_PRODUCER_ID: u32 = 0;

/// Why a key or value could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("truncated: needed {needed} bytes, {remaining} left")]
    Truncated { needed: usize, remaining: usize },
    /// Kafka skips records with an unknown key version while loading.
    #[error("unknown key version {0}")]
    UnknownKeyVersion(i16),
    #[error("unknown value version {0}")]
    UnknownValueVersion(i16),
    #[error("invalid length {0}")]
    InvalidLength(i64),
    #[error("null where a value is required")]
    UnexpectedNull,
    #[error("string is not UTF-8")]
    InvalidUtf8,
    #[error("unknown transaction status {0}")]
    UnknownState(i8),
    #[error("unsigned varint longer than 5 bytes")]
    InvalidVarint,
    #[error("tagged field {tag} has size {size}")]
    InvalidTaggedField { tag: u32, size: usize },
    #[error("{0} trailing bytes")]
    TrailingBytes(usize),
}

/// Java's `String.hashCode` (over UTF-16 code units, wrapping).
pub fn java_string_hash(value: &str) -> i32 {
    value.encode_utf16().fold(0i32, |hash, unit| {
        hash.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The `__transaction_state` partition of a transactional id: Kafka's
/// `Utils.abs(transactionalId.hashCode) % partitions` (`Utils.abs` maps
/// `i32::MIN` to 0). `partitions <= 0` counts as one partition.
pub fn partition_for(transactional_id: &str, partitions: i32) -> i32 {
    let hash = java_string_hash(transactional_id);
    let positive = if hash == i32::MIN { 0 } else { hash.abs() };
    positive % partitions.max(1)
}

/// The key of a transactional id's record.
///
/// Panics if the id is longer than [`NAME_BYTES_MAX`]: requests with such
/// ids are refused before anything is encoded.
pub fn encode_key(transactional_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + transactional_id.len());
    out.extend_from_slice(&KEY_VERSION.to_be_bytes());
    put_string(&mut out, transactional_id);
    out
}

/// The transactional id of a key.
pub fn decode_key(bytes: &[u8]) -> Result<String, DecodeError> {
    let mut reader = Reader(bytes);
    let version = reader.i16()?;
    if version != KEY_VERSION {
        return Err(DecodeError::UnknownKeyVersion(version));
    }
    let transactional_id = reader.string()?;
    reader.finish()?;
    Ok(transactional_id)
}

/// The v0 value of `metadata` (its transactional id is in the key).
/// `last_producer_id` and `last_producer_epoch` are not part of v0.
pub fn encode_value(metadata: &TransactionMetadata) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&VALUE_VERSION.to_be_bytes());
    out.extend_from_slice(&metadata.producer_id.to_be_bytes());
    out.extend_from_slice(&metadata.producer_epoch.to_be_bytes());
    out.extend_from_slice(&metadata.timeout_ms.to_be_bytes());
    out.extend_from_slice(&metadata.state.id().to_be_bytes());
    if metadata.state == TransactionState::Empty {
        debug_assert!(metadata.partitions.is_empty(), "Empty with partitions");
        out.extend_from_slice(&(-1i32).to_be_bytes());
    } else {
        let topics = metadata.partitions_by_topic();
        put_count(&mut out, topics.len());
        for (topic, partitions) in topics {
            put_string(&mut out, topic);
            put_count(&mut out, partitions.len());
            for partition in partitions {
                out.extend_from_slice(&partition.to_be_bytes());
            }
        }
    }
    out.extend_from_slice(&metadata.last_update_timestamp_ms.to_be_bytes());
    out.extend_from_slice(&metadata.start_timestamp_ms.to_be_bytes());
    out
}

/// The metadata of `transactional_id` stored in a v0 or v1 value. As in
/// Kafka's `readTxnRecordValue`, partitions of an Empty transaction are
/// ignored and `last_producer_epoch` is `-1`.
pub fn decode_value(
    transactional_id: &str,
    bytes: &[u8],
) -> Result<TransactionMetadata, DecodeError> {
    let mut reader = Reader(bytes);
    let version = reader.i16()?;
    let flexible = match version {
        VALUE_VERSION => false,
        VALUE_VERSION_FLEXIBLE => true,
        other => return Err(DecodeError::UnknownValueVersion(other)),
    };
    let producer_id = reader.i64()?;
    let producer_epoch = reader.i16()?;
    let timeout_ms = reader.i32()?;
    let status = reader.i8()?;
    let state = TransactionState::from_id(status).ok_or(DecodeError::UnknownState(status))?;
    let partitions = reader.partitions(flexible)?;
    let last_update_timestamp_ms = reader.i64()?;
    let start_timestamp_ms = reader.i64()?;
    let mut last_producer_id = NO_PRODUCER_ID;
    if flexible {
        reader.tagged_fields(|tag, data| {
            if tag == TAG_PREVIOUS_PRODUCER_ID {
                let bytes: [u8; 8] =
                    data.try_into()
                        .map_err(|_| DecodeError::InvalidTaggedField {
                            tag,
                            size: data.len(),
                        })?;
                last_producer_id = i64::from_be_bytes(bytes);
            }
            Ok(())
        })?;
    }
    reader.finish()?;
    let partitions = if state == TransactionState::Empty {
        BTreeSet::new()
    } else {
        partitions
    };
    Ok(TransactionMetadata {
        transactional_id: transactional_id.to_owned(),
        producer_id,
        last_producer_id,
        producer_epoch,
        last_producer_epoch: NO_PRODUCER_EPOCH,
        timeout_ms,
        state,
        partitions,
        start_timestamp_ms,
        last_update_timestamp_ms,
    })
}

/// One record: its transactional id and its metadata, `None` for a tombstone.
pub fn decode_record(
    key: &[u8],
    value: Option<&[u8]>,
) -> Result<(String, Option<TransactionMetadata>), DecodeError> {
    let transactional_id = decode_key(key)?;
    let metadata = value
        .map(|value| decode_value(&transactional_id, value))
        .transpose()?;
    Ok((transactional_id, metadata))
}

fn put_string(out: &mut Vec<u8>, value: &str) {
    // Names longer than this are refused at the request boundary.
    assert!(
        value.len() <= NAME_BYTES_MAX,
        "name too long to encode: {}",
        value.len()
    );
    out.extend_from_slice(&(value.len() as i16).to_be_bytes());
    out.extend_from_slice(value.as_bytes());
}

fn put_count(out: &mut Vec<u8>, count: usize) {
    assert!(
        count <= i32::MAX as usize,
        "array too long to encode: {count}"
    );
    out.extend_from_slice(&(count as i32).to_be_bytes());
}

/// Big-endian reader over the bytes not yet consumed.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, needed: usize) -> Result<&'a [u8], DecodeError> {
        if needed > self.0.len() {
            return Err(DecodeError::Truncated {
                needed,
                remaining: self.0.len(),
            });
        }
        let (head, tail) = self.0.split_at(needed);
        self.0 = tail;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }
    fn i8(&mut self) -> Result<i8, DecodeError> {
        Ok(i8::from_be_bytes(self.array()?))
    }
    fn i16(&mut self) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.array()?))
    }
    fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array()?))
    }
    /// Kafka's unsigned varint: at most 5 bytes, 7 bits each, low first.
    fn unsigned_varint(&mut self) -> Result<u32, DecodeError> {
        let mut value = 0u32;
        for index in 0..5 {
            let byte = self.array::<1>()?[0];
            value |= u32::from(byte & 0x7f).wrapping_shl(7 * index);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::InvalidVarint)
    }
    /// A length or count: `i16`/`i32` (`-1` null) in v0, unsigned varint
    /// (`0` null, else length + 1) when flexible. `None` for null.
    fn length(&mut self, flexible: bool, wide: bool) -> Result<Option<usize>, DecodeError> {
        let length = match (flexible, wide) {
            (true, _) => i64::from(self.unsigned_varint()?) - 1,
            (false, true) => i64::from(self.i32()?),
            (false, false) => i64::from(self.i16()?),
        };
        match length {
            -1 => Ok(None),
            length if length < 0 => Err(DecodeError::InvalidLength(length)),
            length => usize::try_from(length)
                .map(Some)
                .map_err(|_| DecodeError::InvalidLength(length)),
        }
    }
    fn string_of(&mut self, flexible: bool) -> Result<String, DecodeError> {
        let length = self
            .length(flexible, false)?
            .ok_or(DecodeError::UnexpectedNull)?;
        let bytes = self.take(length)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| DecodeError::InvalidUtf8)
    }
    fn string(&mut self) -> Result<String, DecodeError> {
        self.string_of(false)
    }
    /// `transaction_partitions`; null reads as no partitions. No capacity is
    /// reserved from a count: a lying count fails on the first missing byte.
    fn partitions(&mut self, flexible: bool) -> Result<BTreeSet<(String, i32)>, DecodeError> {
        let mut partitions = BTreeSet::new();
        let Some(topics) = self.length(flexible, true)? else {
            return Ok(partitions);
        };
        for _ in 0..topics {
            let topic = self.string_of(flexible)?;
            let count = self
                .length(flexible, true)?
                .ok_or(DecodeError::UnexpectedNull)?;
            for _ in 0..count {
                partitions.insert((topic.clone(), self.i32()?));
            }
            if flexible {
                self.tagged_fields(|_, _| Ok(()))?;
            }
        }
        Ok(partitions)
    }
    /// A flexible struct's tagged fields, each handed to `on_field`.
    fn tagged_fields(
        &mut self,
        mut on_field: impl FnMut(u32, &[u8]) -> Result<(), DecodeError>,
    ) -> Result<(), DecodeError> {
        let count = self.unsigned_varint()?;
        for _ in 0..count {
            let tag = self.unsigned_varint()?;
            let size = self.unsigned_varint()? as usize;
            let data = self.take(size)?;
            on_field(tag, data)?;
        }
        Ok(())
    }
    fn finish(self) -> Result<(), DecodeError> {
        match self.0.len() {
            0 => Ok(()),
            trailing => Err(DecodeError::TrailingBytes(trailing)),
        }
    }
}

#[cfg(test)]
#[path = "records_tests.rs"]
mod tests;
