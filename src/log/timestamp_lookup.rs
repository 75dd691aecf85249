//! ListOffsets by timestamp on the partition's owning shard: the first record
//! whose timestamp is >= the target. The first segment whose largest
//! timestamp reaches the target is chosen, its time index gives a starting
//! batch, batch headers (max timestamp) are scanned from there, and inside
//! the matching batch the records are examined for the exact offset:
//! uncompressed records are parsed in place (varint timestamp deltas),
//! compressed ones are decompressed with `kafka-protocol`'s
//! `RecordBatchDecoder`. LogAppendTime batches carry one timestamp for all
//! their records (the batch max timestamp), as Kafka defines it. Records
//! below the log start offset (left in the first segment by DeleteRecords)
//! are never an answer: the search starts at the log start, as Kafka's
//! `LogSegment.findOffsetByTimestamp(timestamp, logStartOffset)`.

use std::io;
use std::rc::Rc;

use bytes::Bytes;

use crate::protocol::records::read_varint;
use kafka_protocol::records::RecordBatchDecoder;

use crate::protocol::record_batch::{BatchHeader, Compression, BATCH_HEADER_BYTES};

use super::batch_cursor::{BatchCursor, NextBatch};
use super::limits::LOOKUP_CHUNK_BYTES;
use super::partition::LogInner;
use super::segment_file::SegmentFile;

struct SegmentView {
    base_offset: i64,
    file: Rc<SegmentFile>,
    size: u64,
    start_position: u64,
}

fn candidate_segment(
    inner: &LogInner,
    timestamp_ms: i64,
    after: Option<i64>,
) -> Option<SegmentView> {
    let segments = inner.segments.borrow();
    let segment = segments.iter().find(|segment| {
        after.is_none_or(|previous| segment.base_offset > previous)
            && segment.max_timestamp >= timestamp_ms
    })?;
    Some(SegmentView {
        base_offset: segment.base_offset,
        file: segment.file.clone(),
        size: segment.size,
        start_position: segment.start_position_for_timestamp(timestamp_ms),
    })
}

pub(crate) async fn offset_for_timestamp(
    inner: &LogInner,
    timestamp_ms: i64,
) -> io::Result<Option<(i64, i64)>> {
    let high_watermark = inner.high_watermark.get();
    let log_start = inner.log_start_offset.get();
    let mut after = None;
    while let Some(view) = candidate_segment(inner, timestamp_ms, after) {
        let bounds = (log_start, high_watermark);
        if let Some(found) = scan_segment(&view, timestamp_ms, bounds).await? {
            return Ok(Some(found));
        }
        after = Some(view.base_offset);
    }
    Ok(None)
}

/// The first record of the segment at or after `timestamp_ms` with an
/// offset in `log_start..high_watermark`.
async fn scan_segment(
    view: &SegmentView,
    timestamp_ms: i64,
    (log_start, high_watermark): (i64, i64),
) -> io::Result<Option<(i64, i64)>> {
    let file = view.file.file().await?;
    let mut cursor = BatchCursor::new(&file, view.start_position, view.size, LOOKUP_CHUNK_BYTES);
    while let NextBatch::Batch(header) = cursor.next_header().await? {
        let Some(length) = header.total_bytes() else {
            break;
        };
        if header.base_offset >= high_watermark {
            break;
        }
        if header.max_timestamp >= timestamp_ms && header.last_offset() >= log_start {
            let found = match cursor.batch_bytes(length).await? {
                Some(bytes) => first_record_at_or_after(bytes, &header, timestamp_ms, log_start),
                None => Some((header.base_offset.max(log_start), header.max_timestamp)),
            };
            if found.is_some() {
                return Ok(found);
            }
        }
        cursor.advance(length);
    }
    Ok(None)
}

/// `(offset, timestamp)` of the first record of `batch` at or after
/// `log_start` with timestamp >= `timestamp_ms`; `None` when the records
/// from `log_start` on are all older. Falls back to the batch's first offset
/// from `log_start` and its max timestamp if the records cannot be read (the
/// answer then still points at the right batch).
pub(crate) fn first_record_at_or_after(
    batch: &[u8],
    header: &BatchHeader,
    timestamp_ms: i64,
    log_start: i64,
) -> Option<(i64, i64)> {
    let fallback = Some((header.base_offset.max(log_start), header.max_timestamp));
    if header.is_log_append_time() {
        return fallback;
    }
    let found = match header.compression() {
        Compression::None => scan_uncompressed(batch, header, timestamp_ms, log_start),
        _ => scan_compressed(batch, timestamp_ms, log_start),
    };
    found.unwrap_or(fallback)
}

/// The answer in an uncompressed batch: `None` when a record cannot be
/// parsed, `Some(None)` when none from `log_start` on is recent enough.
fn scan_uncompressed(
    batch: &[u8],
    header: &BatchHeader,
    timestamp_ms: i64,
    log_start: i64,
) -> Option<Option<(i64, i64)>> {
    let mut at = BATCH_HEADER_BYTES;
    for _ in 0..header.records_count {
        let length = usize::try_from(read_varint(batch, &mut at)?).ok()?;
        let record_start = at;
        at += 1; // attributes
        let timestamp = header
            .base_timestamp
            .checked_add(read_varint(batch, &mut at)?)?;
        let offset = header
            .base_offset
            .checked_add(read_varint(batch, &mut at)?)?;
        if timestamp >= timestamp_ms && offset >= log_start {
            return Some(Some((offset, timestamp)));
        }
        at = record_start.checked_add(length)?;
    }
    Some(None)
}

/// As `scan_uncompressed`, after decompressing.
fn scan_compressed(batch: &[u8], timestamp_ms: i64, log_start: i64) -> Option<Option<(i64, i64)>> {
    let mut bytes = Bytes::copy_from_slice(batch);
    match RecordBatchDecoder::decode(&mut bytes) {
        Ok(records) => Some(
            records
                .records
                .iter()
                .find(|record| record.timestamp >= timestamp_ms && record.offset >= log_start)
                .map(|record| (record.offset, record.timestamp)),
        ),
        Err(error) => {
            tracing::warn!(%error, "cannot decompress batch for a timestamp lookup");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::tests::batch_spanning;

    #[test]
    fn varints_decode_zigzag() {
        let mut at = 0;
        assert_eq!(
            read_varint(&[0x00, 0x01, 0x02, 0xac, 0x02], &mut at),
            Some(0)
        );
        assert_eq!(
            read_varint(&[0x00, 0x01, 0x02, 0xac, 0x02], &mut at),
            Some(-1)
        );
        assert_eq!(
            read_varint(&[0x00, 0x01, 0x02, 0xac, 0x02], &mut at),
            Some(1)
        );
        assert_eq!(
            read_varint(&[0x00, 0x01, 0x02, 0xac, 0x02], &mut at),
            Some(150)
        );
        assert_eq!(read_varint(&[0x80], &mut 0), None);
    }

    #[test]
    fn finds_the_exact_record_inside_an_uncompressed_batch() {
        // Record i has the timestamp 1_000 + i.
        let mut batch = batch_spanning(5, 1_000);
        crate::protocol::record_batch::set_base_offset(&mut batch, 100);
        let header = crate::protocol::record_batch::validate_batch(&batch).expect("valid");
        assert_eq!(
            first_record_at_or_after(&batch, &header, 1_003, 0),
            Some((103, 1_003))
        );
        assert_eq!(
            first_record_at_or_after(&batch, &header, 0, 0),
            Some((100, 1_000))
        );
        assert_eq!(
            first_record_at_or_after(&batch, &header, 0, 102),
            Some((102, 1_002)),
            "nothing below the log start"
        );
        assert_eq!(
            first_record_at_or_after(&batch, &header, 1_004, 0),
            Some((104, 1_004))
        );
        assert_eq!(
            first_record_at_or_after(&batch, &header, 9_999, 0),
            None,
            "no record qualifies"
        );
    }

    #[test]
    fn finds_the_exact_record_inside_a_compressed_batch() {
        use kafka_protocol::records::{
            Compression as Codec, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
        };
        let records: Vec<Record> = (0..5)
            .map(|index| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: index,
                // offset - sequence must stay constant for one batch.
                sequence: index as i32,
                timestamp: 1_000 + index,
                key: None,
                value: Some(Bytes::from_static(b"value")),
                headers: Default::default(),
            })
            .collect();
        let mut encoded = bytes::BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Codec::Gzip,
        };
        RecordBatchEncoder::encode(&mut encoded, &records, &options).expect("encode");
        let mut batch = encoded.to_vec();
        crate::protocol::record_batch::set_base_offset(&mut batch, 100);
        let header = crate::protocol::record_batch::validate_batch(&batch).expect("valid");
        assert_eq!(header.compression(), Compression::Gzip);
        assert_eq!(
            first_record_at_or_after(&batch, &header, 1_003, 0),
            Some((103, 1_003))
        );
        assert_eq!(
            first_record_at_or_after(&batch, &header, 0, 0),
            Some((100, 1_000))
        );
        assert_eq!(
            first_record_at_or_after(&batch, &header, 0, 102),
            Some((102, 1_002)),
            "nothing below the log start"
        );
    }
}
