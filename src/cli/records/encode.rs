//! Encoding RecordBatch v2 for `corelog produce`: one batch per partition
//! per send, every record with the same headers and timestamp, compressed
//! with the `--compression` codec and checksummed with CRC-32C as the
//! broker validates it. Offsets are relative; the broker assigns the base.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};

use super::{Codec, Header, OutgoingRecord, RecordsError};
use crate::protocol::record_batch::{Compression, BATCH_HEADER_BYTES};
use crate::protocol::records::{put_varint, varint_len};

/// Builds one RecordBatch v2 holding `records`, each with the same `headers`
/// and `timestamp_ms`. Offsets are relative: the broker assigns the base
/// offset. Producer id -1: not idempotent, as the console producer of Kafka.
pub fn encode_batch(
    records: &[OutgoingRecord],
    headers: &[Header],
    timestamp_ms: i64,
    codec: Codec,
) -> Result<Bytes, RecordsError> {
    assert!(
        !records.is_empty(),
        "a RecordBatch holds at least one record"
    );
    let count =
        i32::try_from(records.len()).map_err(|_| RecordsError::TooManyRecords(records.len()))?;
    let mut section = BytesMut::new();
    for (offset_delta, record) in records.iter().enumerate() {
        put_record(&mut section, offset_delta as i64, record, headers);
    }
    let mut batch = BytesMut::with_capacity(BATCH_HEADER_BYTES + section.len());
    batch.put_i64(0); // base offset: assigned by the broker
    batch.put_i32(0); // batch length: patched below
    batch.put_i32(-1); // partition leader epoch
    batch.put_i8(2); // magic
    batch.put_u32(0); // crc: patched below
    batch.put_i16(codec.attribute());
    batch.put_i32(count - 1); // last offset delta
    batch.put_i64(timestamp_ms); // base timestamp
    batch.put_i64(timestamp_ms); // max timestamp
    batch.put_i64(-1); // producer id
    batch.put_i16(-1); // producer epoch
    batch.put_i32(-1); // base sequence
    batch.put_i32(count);
    let copy = |buffer: &mut BytesMut| -> anyhow::Result<()> {
        buffer.put_slice(&section);
        Ok(())
    };
    let compressed = match codec {
        Codec::None => {
            batch.put_slice(&section);
            Ok(())
        }
        Codec::Gzip => Gzip::compress(&mut batch, copy),
        Codec::Snappy => Snappy::compress(&mut batch, copy),
        Codec::Lz4 => Lz4::compress(&mut batch, copy),
        Codec::Zstd => Zstd::compress(&mut batch, copy),
    };
    compressed.map_err(|error| RecordsError::Codec {
        codec: compression_of(codec),
        reason: error.to_string(),
    })?;
    let length =
        i32::try_from(batch.len() - 12).map_err(|_| RecordsError::TooManyRecords(records.len()))?;
    batch[8..12].copy_from_slice(&length.to_be_bytes());
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(batch.freeze())
}

fn compression_of(codec: Codec) -> Compression {
    match codec {
        Codec::None => Compression::None,
        Codec::Gzip => Compression::Gzip,
        Codec::Snappy => Compression::Snappy,
        Codec::Lz4 => Compression::Lz4,
        Codec::Zstd => Compression::Zstd,
    }
}

fn put_record(
    section: &mut BytesMut,
    offset_delta: i64,
    record: &OutgoingRecord,
    headers: &[Header],
) {
    let key_length = record.key.as_ref().map_or(-1, |key| key.len() as i64);
    let mut body_length = 1 // attributes
        + varint_len(0) // timestamp delta: one timestamp per batch
        + varint_len(offset_delta)
        + varint_len(key_length)
        + record.key.as_ref().map_or(0, Bytes::len)
        + varint_len(record.value.len() as i64)
        + record.value.len()
        + varint_len(headers.len() as i64);
    for header in headers {
        let value_length = header.value.as_ref().map_or(-1, |value| value.len() as i64);
        body_length += varint_len(header.key.len() as i64)
            + header.key.len()
            + varint_len(value_length)
            + header.value.as_ref().map_or(0, Bytes::len);
    }
    put_varint(section, body_length as i64);
    section.put_u8(0); // attributes: unused in v2 records
    put_varint(section, 0);
    put_varint(section, offset_delta);
    put_varint(section, key_length);
    if let Some(key) = &record.key {
        section.put_slice(key);
    }
    put_varint(section, record.value.len() as i64);
    section.put_slice(&record.value);
    put_varint(section, headers.len() as i64);
    for header in headers {
        put_varint(section, header.key.len() as i64);
        section.put_slice(header.key.as_bytes());
        match &header.value {
            Some(value) => {
                put_varint(section, value.len() as i64);
                section.put_slice(value);
            }
            None => put_varint(section, -1),
        }
    }
}
