//! Decoding the `records` of one partition of a Fetch response for
//! `corelog consume`: whole batches only, control batches and records below
//! the fetch offset skipped, compressed sections inflated. Headers stay an
//! ordered list (duplicate keys are legal in Kafka), which is why this does
//! not go through `kafka_protocol::records::RecordBatchDecoder`.

use bytes::{Buf, Bytes};
use kafka_protocol::compression::{Decompressor, Gzip, Lz4, Snappy, Zstd};

use super::{Fetched, FetchedRecord, Header, RecordsError};
use crate::protocol::record_batch::{
    split_batches, validate_batch, Compression, BATCH_HEADER_BYTES,
};
use crate::protocol::records::read_varint;

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
