//! Records as the console tools see them: key, value, headers and timestamp.
//! Encodes RecordBatch v2 for `corelog produce` (with headers, which the load
//! generator's `client::batch_builder` never needs) and decodes the batches of
//! a Fetch response for `corelog consume`, compressed or not.
//!
//! Runs on the CLI's single thread, no shard. Decoding is written here rather
//! than through `kafka_protocol::records::RecordBatchDecoder` because that one
//! keeps headers in a map, which would fold repeated header keys into one;
//! Kafka headers are an ordered list and duplicates are legal.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Decompressor, Gzip, Lz4, Snappy, Zstd};
use thiserror::Error;

use crate::protocol::record_batch::{
    split_batches, validate_batch, Compression, BATCH_HEADER_BYTES,
};
use crate::protocol::records::{put_varint, read_varint, varint_len};

/// Compression codec of produced batches (`--compression`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Codec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Codec {
    /// The codec id in the low three bits of the batch attributes.
    fn attribute(self) -> i16 {
        match self {
            Codec::None => 0,
            Codec::Gzip => 1,
            Codec::Snappy => 2,
            Codec::Lz4 => 3,
            Codec::Zstd => 4,
        }
    }
}

/// One record header: Kafka allows a null value and repeated keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub key: String,
    pub value: Option<Bytes>,
}

/// A record to produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingRecord {
    pub key: Option<Bytes>,
    pub value: Bytes,
}

/// A record read back from a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedRecord {
    pub offset: i64,
    pub timestamp_ms: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<Header>,
}

/// What one partition of a Fetch response held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Records at or after the fetch offset, in offset order.
    pub records: Vec<FetchedRecord>,
    /// The offset after the last whole batch (at least the fetch offset).
    pub next_offset: i64,
}

/// Why bytes from the broker (or a codec) could not be turned into records.
#[derive(Debug, Error)]
pub enum RecordsError {
    #[error("record batch is malformed: {0}")]
    Batch(#[from] crate::protocol::record_batch::BatchError),
    #[error("record inside a batch is malformed")]
    Record,
    #[error("{codec:?} codec failed: {reason}")]
    Codec { codec: Compression, reason: String },
    #[error("batch of {0} records is too large for one RecordBatch")]
    TooManyRecords(usize),
}

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

/// Decodes the `records` field of one partition of a Fetch response: every
/// whole batch, skipping control batches (transaction markers) and records
/// below `from_offset` (a fetch returns the whole batch holding the asked
/// offset). A partial batch at the end is normal (the broker cuts at
/// `max_bytes`); the next fetch reads it again.
pub fn decode_fetched(records: &Bytes, from_offset: i64) -> Result<Fetched, RecordsError> {
    let mut fetched = Fetched {
        records: Vec::new(),
        next_offset: from_offset,
    };
    for batch in split_batches(records) {
        let Ok(batch) = batch else { break };
        let header = validate_batch(&batch)?;
        // Past whole batches even if they print nothing (control batches):
        // otherwise the consumer would fetch the same batch forever.
        fetched.next_offset = fetched.next_offset.max(header.last_offset() + 1);
        if header.is_control() || header.last_offset() < from_offset {
            continue;
        }
        let section = batch.slice(BATCH_HEADER_BYTES..);
        let section = match header.compression() {
            Compression::None => section,
            codec => decompress(codec, section)?,
        };
        let mut at = 0usize;
        for _ in 0..header.records_count {
            let record = read_record(&section, &mut at).ok_or(RecordsError::Record)?;
            let offset = header.base_offset + record.offset_delta;
            if offset < from_offset {
                continue;
            }
            // LogAppendTime batches carry the broker's time in max timestamp.
            let timestamp_ms = if header.is_log_append_time() {
                header.max_timestamp
            } else {
                header.base_timestamp + record.timestamp_delta
            };
            fetched.records.push(FetchedRecord {
                offset,
                timestamp_ms,
                key: record.key,
                value: record.value,
                headers: record.headers,
            });
        }
    }
    Ok(fetched)
}

fn decompress(codec: Compression, mut section: Bytes) -> Result<Bytes, RecordsError> {
    let take = |buffer: &mut Bytes| -> anyhow::Result<Bytes> {
        Ok(buffer.copy_to_bytes(buffer.remaining()))
    };
    let result = match codec {
        Compression::None => Ok(section),
        Compression::Gzip => Gzip::decompress(&mut section, take),
        Compression::Snappy => Snappy::decompress(&mut section, take),
        Compression::Lz4 => Lz4::decompress(&mut section, take),
        Compression::Zstd => Zstd::decompress(&mut section, take),
    };
    result.map_err(|error| RecordsError::Codec {
        codec,
        reason: error.to_string(),
    })
}

struct DecodedRecord {
    timestamp_delta: i64,
    offset_delta: i64,
    key: Option<Bytes>,
    value: Option<Bytes>,
    headers: Vec<Header>,
}

/// Reads one record at `at`, or `None` if the bytes do not hold a whole one.
fn read_record(section: &Bytes, at: &mut usize) -> Option<DecodedRecord> {
    let body_length = usize::try_from(read_varint(section, at)?).ok()?;
    let end = at
        .checked_add(body_length)
        .filter(|end| *end <= section.len())?;
    let body = section.slice(*at..end);
    *at = end;
    let mut position = 1; // attributes
    let timestamp_delta = read_varint(&body, &mut position)?;
    let offset_delta = read_varint(&body, &mut position)?;
    let key = read_bytes(&body, &mut position)?;
    let value = read_bytes(&body, &mut position)?;
    let header_count = usize::try_from(read_varint(&body, &mut position)?).ok()?;
    // Each header takes at least two bytes: bounds the allocation by the input.
    let mut headers = Vec::with_capacity(header_count.min(body.len() / 2));
    for _ in 0..header_count {
        let key = read_bytes(&body, &mut position)??;
        let value = read_bytes(&body, &mut position)?;
        headers.push(Header {
            key: String::from_utf8_lossy(&key).into_owned(),
            value,
        });
    }
    Some(DecodedRecord {
        timestamp_delta,
        offset_delta,
        key,
        value,
        headers,
    })
}

/// A varint length then that many bytes; length -1 is null (`Some(None)`).
fn read_bytes(body: &Bytes, at: &mut usize) -> Option<Option<Bytes>> {
    let length = read_varint(body, at)?;
    if length == -1 {
        return Some(None);
    }
    let length = usize::try_from(length).ok()?;
    let end = at.checked_add(length).filter(|end| *end <= body.len())?;
    let bytes = body.slice(*at..end);
    *at = end;
    Some(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::record_batch::set_base_offset;

    fn sample_records() -> Vec<OutgoingRecord> {
        vec![
            OutgoingRecord {
                key: Some(Bytes::from_static(b"k1")),
                value: Bytes::from_static(b"first"),
            },
            OutgoingRecord {
                key: None,
                value: Bytes::from(vec![b'x'; 500]),
            },
        ]
    }

    fn sample_headers() -> Vec<Header> {
        vec![
            Header {
                key: "trace".into(),
                value: Some(Bytes::from_static(b"abc")),
            },
            Header {
                key: "trace".into(),
                value: None,
            },
        ]
    }

    #[test]
    fn batches_round_trip_with_headers_for_every_codec() {
        for codec in [
            Codec::None,
            Codec::Gzip,
            Codec::Snappy,
            Codec::Lz4,
            Codec::Zstd,
        ] {
            let batch =
                encode_batch(&sample_records(), &sample_headers(), 1_700, codec).expect("encodes");
            let mut stored = BytesMut::from(&batch[..]);
            set_base_offset(&mut stored, 40);
            let fetched = decode_fetched(&stored.freeze(), 0).expect("decodes");
            assert_eq!(fetched.next_offset, 42);
            let fetched = fetched.records;
            assert_eq!(fetched.len(), 2, "{codec:?}");
            assert_eq!(fetched[0].offset, 40);
            assert_eq!(fetched[1].offset, 41);
            assert_eq!(fetched[0].key.as_deref(), Some(&b"k1"[..]));
            assert_eq!(fetched[1].key, None);
            assert_eq!(fetched[1].value.as_deref(), Some(&[b'x'; 500][..]));
            assert_eq!(fetched[0].timestamp_ms, 1_700);
            assert_eq!(fetched[1].headers, sample_headers(), "duplicate keys kept");
        }
    }

    #[test]
    fn kafka_protocol_decoder_reads_our_batches() {
        let mut batch = encode_batch(&sample_records(), &sample_headers()[..1], 5, Codec::Lz4)
            .expect("encodes");
        let decoded =
            kafka_protocol::records::RecordBatchDecoder::decode(&mut batch).expect("decodes");
        assert_eq!(decoded.records.len(), 2);
        assert_eq!(decoded.records[0].headers.len(), 1);
        assert_eq!(decoded.records[0].value.as_deref(), Some(&b"first"[..]));
    }

    #[test]
    fn records_below_the_fetch_offset_and_partial_tails_are_skipped() {
        let batch = encode_batch(&sample_records(), &[], 5, Codec::None).expect("encodes");
        let mut both = BytesMut::from(&batch[..]);
        both.extend_from_slice(&batch[..batch.len() - 3]); // cut short, as max_bytes does
        let fetched = decode_fetched(&both.freeze(), 1).expect("decodes");
        assert_eq!(fetched.next_offset, 2, "the partial batch is not counted");
        let fetched = fetched.records;
        assert_eq!(fetched.len(), 1);
        assert_eq!(fetched[0].offset, 1);
    }

    #[test]
    fn corrupt_batches_are_errors_not_panics() {
        let batch =
            encode_batch(&sample_records(), &sample_headers(), 5, Codec::None).expect("encodes");
        let mut broken = BytesMut::from(&batch[..]);
        let last = broken.len() - 1;
        broken[last] ^= 0xff;
        assert!(decode_fetched(&broken.freeze(), 0).is_err());
    }
}
