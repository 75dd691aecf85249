//! Records inside an uncompressed RecordBatch v2: Kafka's zig-zag varints and
//! a zero-copy iterator over record views. Used by the log (timestamp
//! lookups), the load generator's consumers and its batch builder.

use bytes::BufMut;

/// Kafka's zig-zag varint/varlong (protobuf encoding), bounded to 10 bytes.
pub fn read_varint(bytes: &[u8], at: &mut usize) -> Option<i64> {
    let mut value = 0u64;
    for shift in (0..70).step_by(7) {
        let byte = *bytes.get(*at)?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some((value >> 1) as i64 ^ -((value & 1) as i64));
        }
    }
    None
}

/// Appends `value` as a zig-zag varint.
pub fn put_varint(buffer: &mut impl BufMut, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        buffer.put_u8((zigzag as u8) | 0x80);
        zigzag >>= 7;
    }
    buffer.put_u8(zigzag as u8);
}

/// Bytes `put_varint` writes for `value`.
pub fn varint_len(value: i64) -> usize {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    let mut length = 1;
    while zigzag >= 0x80 {
        zigzag >>= 7;
        length += 1;
    }
    length
}

/// One record, borrowed from its batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    pub timestamp_delta: i64,
    pub offset_delta: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
}

/// Iterates the records section of an uncompressed batch (the bytes after the
/// 61-byte header). Stops at the first malformed record.
pub struct RecordIter<'a> {
    bytes: &'a [u8],
    at: usize,
    remaining: i32,
}

impl<'a> RecordIter<'a> {
    pub fn new(records_section: &'a [u8], records_count: i32) -> RecordIter<'a> {
        RecordIter {
            bytes: records_section,
            at: 0,
            remaining: records_count,
        }
    }

    fn take_bytes(&mut self, length: i64) -> Option<Option<&'a [u8]>> {
        if length < 0 {
            return Some(None);
        }
        let end = self.at.checked_add(usize::try_from(length).ok()?)?;
        let slice = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(Some(slice))
    }

    fn parse_one(&mut self) -> Option<RecordView<'a>> {
        let length = usize::try_from(read_varint(self.bytes, &mut self.at)?).ok()?;
        let record_end = self.at.checked_add(length)?;
        if record_end > self.bytes.len() {
            return None;
        }
        self.at += 1; // attributes
        let timestamp_delta = read_varint(self.bytes, &mut self.at)?;
        let offset_delta = read_varint(self.bytes, &mut self.at)?;
        let key_length = read_varint(self.bytes, &mut self.at)?;
        let key = self.take_bytes(key_length)?;
        let value_length = read_varint(self.bytes, &mut self.at)?;
        let value = self.take_bytes(value_length)?;
        // Headers are skipped: the record length says where the next begins.
        self.at = record_end;
        Some(RecordView {
            timestamp_delta,
            offset_delta,
            key,
            value,
        })
    }
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = RecordView<'a>;

    fn next(&mut self) -> Option<RecordView<'a>> {
        if self.remaining <= 0 {
            return None;
        }
        self.remaining -= 1;
        let parsed = self.parse_one();
        if parsed.is_none() {
            self.remaining = 0;
        }
        parsed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::record_batch::{tests::sample_batch, BatchHeader, BATCH_HEADER_BYTES};

    #[test]
    fn varints_round_trip() {
        for value in [0i64, 1, -1, 63, -64, 64, 300, -300, i64::MAX, i64::MIN] {
            let mut buffer = Vec::new();
            put_varint(&mut buffer, value);
            assert_eq!(buffer.len(), varint_len(value));
            let mut at = 0;
            assert_eq!(read_varint(&buffer, &mut at), Some(value));
            assert_eq!(at, buffer.len());
        }
        assert_eq!(read_varint(&[0x80; 11], &mut 0), None, "unterminated");
    }

    #[test]
    fn iterates_every_record_of_a_batch() {
        let batch = sample_batch(0, 4, 1_000);
        let header = BatchHeader::parse(&batch).expect("header");
        let records: Vec<_> =
            RecordIter::new(&batch[BATCH_HEADER_BYTES..], header.records_count).collect();
        assert_eq!(records.len(), 4);
        assert_eq!(records[3].offset_delta, 3);
        assert_eq!(records[0].key, None);
        assert_eq!(records[0].value, Some(&b"x"[..]));
    }

    #[test]
    fn a_truncated_record_stops_the_iteration() {
        let batch = sample_batch(0, 4, 1_000);
        let header = BatchHeader::parse(&batch).expect("header");
        let cut = &batch[BATCH_HEADER_BYTES..batch.len() - 3];
        assert_eq!(RecordIter::new(cut, header.records_count).count(), 3);
    }
}
