//! Building RecordBatch v2 bytes on the broker: the records the coordinators
//! write (offset commits, group metadata, transaction state) and the control
//! batches that end a transaction on a partition (commit / abort markers,
//! KIP-98). Pure functions over bytes; used on whichever shard writes.
//!
//! A control batch has the transactional and control attribute bits set,
//! the producer's id and epoch, no sequence, and exactly one record whose
//! key is `version: i16 = 0, type: i16` (0 abort, 1 commit) and whose value
//! is `version: i16 = 0, coordinator_epoch: i32`.

use bytes::{BufMut, Bytes, BytesMut};

use super::record_batch::{BatchHeader, BATCH_HEADER_BYTES};
use super::records::{put_varint, varint_len, RecordIter};

pub const ATTRIBUTE_TRANSACTIONAL: i16 = 0x10;
pub const ATTRIBUTE_CONTROL: i16 = 0x20;
/// `baseSequence` of a batch that carries no sequence numbers.
pub const NO_SEQUENCE: i32 = -1;

/// One key/value record (`None` value = tombstone).
pub struct KeyValue {
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

/// Who a batch belongs to: no producer (-1/-1), or a transactional producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchProducer {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub transactional: bool,
}

impl BatchProducer {
    pub const NONE: BatchProducer = BatchProducer {
        producer_id: -1,
        producer_epoch: -1,
        transactional: false,
    };
}

/// Commit or abort.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlType {
    Abort,
    Commit,
}

impl ControlType {
    fn code(self) -> i16 {
        match self {
            ControlType::Abort => 0,
            ControlType::Commit => 1,
        }
    }
}

/// A decoded transaction marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlMarker {
    pub control_type: ControlType,
    pub coordinator_epoch: i32,
}

/// An uncompressed batch holding `records` (base offset 0: the log assigns
/// the real one), timestamped `now_ms`.
pub fn encode_batch(records: &[KeyValue], producer: BatchProducer, now_ms: i64) -> Bytes {
    let mut body = BytesMut::new();
    for (index, record) in records.iter().enumerate() {
        put_record(
            &mut body,
            index as i64,
            &record.key,
            record.value.as_deref(),
        );
    }
    let attributes = if producer.transactional {
        ATTRIBUTE_TRANSACTIONAL
    } else {
        0
    };
    finish_batch(
        &body,
        records.len() as i32,
        attributes,
        producer,
        NO_SEQUENCE,
        now_ms,
    )
}

/// The marker ending `producer_id`'s transaction on a partition.
pub fn control_batch(
    producer_id: i64,
    producer_epoch: i16,
    coordinator_epoch: i32,
    control_type: ControlType,
    now_ms: i64,
) -> Bytes {
    let mut key = Vec::with_capacity(4);
    key.put_i16(0);
    key.put_i16(control_type.code());
    let mut value = Vec::with_capacity(6);
    value.put_i16(0);
    value.put_i32(coordinator_epoch);
    let mut body = BytesMut::new();
    put_record(&mut body, 0, &key, Some(&value));
    let producer = BatchProducer {
        producer_id,
        producer_epoch,
        transactional: true,
    };
    finish_batch(
        &body,
        1,
        ATTRIBUTE_TRANSACTIONAL | ATTRIBUTE_CONTROL,
        producer,
        NO_SEQUENCE,
        now_ms,
    )
}

/// The marker in a control batch, `None` for any other batch or a control
/// record this broker does not know (Kafka skips unknown control types).
pub fn parse_control_marker(batch: &[u8]) -> Option<ControlMarker> {
    let header = BatchHeader::parse(batch).ok()?;
    if !header.is_control() || header.compression() != super::record_batch::Compression::None {
        return None;
    }
    let records = batch.get(BATCH_HEADER_BYTES..)?;
    let record = RecordIter::new(records, header.records_count).next()?;
    let key = record.key?;
    if key.len() < 4 || i16::from_be_bytes([key[0], key[1]]) != 0 {
        return None;
    }
    let control_type = match i16::from_be_bytes([key[2], key[3]]) {
        0 => ControlType::Abort,
        1 => ControlType::Commit,
        _ => return None,
    };
    let coordinator_epoch = record
        .value
        .filter(|value| value.len() >= 6)
        .map_or(0, |value| {
            i32::from_be_bytes([value[2], value[3], value[4], value[5]])
        });
    Some(ControlMarker {
        control_type,
        coordinator_epoch,
    })
}

fn put_record(body: &mut BytesMut, offset_delta: i64, key: &[u8], value: Option<&[u8]>) {
    let key_length = key.len() as i64;
    let value_length = value.map_or(-1, |v| v.len() as i64);
    let length = 1
        + varint_len(0)
        + varint_len(offset_delta)
        + varint_len(key_length)
        + key.len()
        + varint_len(value_length)
        + value.map_or(0, <[u8]>::len)
        + varint_len(0);
    put_varint(body, length as i64);
    body.put_u8(0); // attributes
    put_varint(body, 0); // timestamp delta
    put_varint(body, offset_delta);
    put_varint(body, key_length);
    body.put_slice(key);
    put_varint(body, value_length);
    if let Some(value) = value {
        body.put_slice(value);
    }
    put_varint(body, 0); // headers
}

fn finish_batch(
    body: &[u8],
    records_count: i32,
    attributes: i16,
    producer: BatchProducer,
    base_sequence: i32,
    now_ms: i64,
) -> Bytes {
    let mut batch = BytesMut::with_capacity(BATCH_HEADER_BYTES + body.len());
    batch.put_i64(0);
    batch.put_i32((BATCH_HEADER_BYTES - 12 + body.len()) as i32);
    batch.put_i32(-1); // partition leader epoch
    batch.put_i8(2); // magic
    batch.put_u32(0); // crc, below
    batch.put_i16(attributes);
    batch.put_i32(records_count - 1);
    batch.put_i64(now_ms);
    batch.put_i64(now_ms);
    batch.put_i64(producer.producer_id);
    batch.put_i16(producer.producer_epoch);
    batch.put_i32(base_sequence);
    batch.put_i32(records_count);
    batch.put_slice(body);
    // The crc covers everything from the attributes on.
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::record_batch::validate_batch;

    #[test]
    fn control_batches_validate_and_parse_back() {
        for control_type in [ControlType::Commit, ControlType::Abort] {
            let batch = control_batch(42, 3, 7, control_type, 1_000);
            let header = validate_batch(&batch).expect("valid batch");
            assert!(header.is_control() && header.is_transactional());
            assert_eq!((header.producer_id, header.producer_epoch), (42, 3));
            assert_eq!(header.base_sequence, NO_SEQUENCE);
            assert_eq!(
                parse_control_marker(&batch),
                Some(ControlMarker {
                    control_type,
                    coordinator_epoch: 7
                })
            );
        }
    }

    #[test]
    fn data_batches_are_not_markers() {
        let records = [KeyValue {
            key: b"k".to_vec(),
            value: Some(b"v".to_vec()),
        }];
        let producer = BatchProducer {
            producer_id: 5,
            producer_epoch: 0,
            transactional: true,
        };
        let batch = encode_batch(&records, producer, 1);
        let header = validate_batch(&batch).expect("valid batch");
        assert!(header.is_transactional() && !header.is_control());
        assert_eq!(parse_control_marker(&batch), None);
        let plain = encode_batch(&records, BatchProducer::NONE, 1);
        assert!(!validate_batch(&plain).expect("valid").is_transactional());
    }

    #[test]
    fn garbage_is_not_a_marker() {
        assert_eq!(parse_control_marker(&[0u8; 10]), None);
        let mut batch = control_batch(1, 0, 0, ControlType::Commit, 0).to_vec();
        // The record ends: key type (2 bytes), value length (1), value (6), headers (1).
        let type_low_byte = batch.len() - 9;
        batch[type_low_byte] = 0x7f; // a control type nobody knows
        assert_eq!(parse_control_marker(&batch), None);
    }
}
