//! Builds RecordBatch v2 bytes for Produce requests: records are varint-encoded
//! straight into one buffer (no per-record allocation), then the header and
//! crc32c are filled in; with a codec, the records section is compressed with
//! the `kafka-protocol` crate's compressors. Offsets are relative (the broker
//! assigns the base offset).

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};

use crate::loadgen::scenario::CompressionCodec;
use crate::protocol::record_batch::BATCH_HEADER_BYTES;
use crate::protocol::records::{put_varint, varint_len};

/// Accumulates records for one partition.
pub struct BatchBuilder {
    records: BytesMut,
    count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    codec: CompressionCodec,
    /// Idempotent producing (KIP-98): producer id, epoch and the sequence of
    /// the next batch's first record; `None` writes -1s.
    idempotence: Option<(i64, i16, i32)>,
}

impl BatchBuilder {
    pub fn new(codec: CompressionCodec, capacity_bytes: usize) -> BatchBuilder {
        BatchBuilder {
            records: BytesMut::with_capacity(capacity_bytes),
            count: 0,
            base_timestamp: -1,
            max_timestamp: -1,
            codec,
            idempotence: None,
        }
    }

    /// Writes `producer_id`/`producer_epoch` and consecutive sequence numbers
    /// (from 0) into every batch from now on, as an idempotent producer does.
    pub fn set_idempotent(&mut self, producer_id: i64, producer_epoch: i16) {
        self.idempotence = Some((producer_id, producer_epoch, 0));
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Uncompressed bytes of the records so far.
    pub fn records_bytes(&self) -> usize {
        self.records.len()
    }

    /// Appends one record (no headers).
    pub fn push(&mut self, timestamp_ms: i64, key: Option<&[u8]>, value: &[u8]) {
        if self.count == 0 {
            self.base_timestamp = timestamp_ms;
        }
        self.max_timestamp = self.max_timestamp.max(timestamp_ms);
        let timestamp_delta = timestamp_ms - self.base_timestamp;
        let offset_delta = i64::from(self.count);
        let key_length = key.map(|k| k.len() as i64).unwrap_or(-1);
        let body_length = 1
            + varint_len(timestamp_delta)
            + varint_len(offset_delta)
            + varint_len(key_length)
            + key.map(<[u8]>::len).unwrap_or(0)
            + varint_len(value.len() as i64)
            + value.len()
            + 1;
        put_varint(&mut self.records, body_length as i64);
        self.records.put_u8(0); // attributes
        put_varint(&mut self.records, timestamp_delta);
        put_varint(&mut self.records, offset_delta);
        put_varint(&mut self.records, key_length);
        if let Some(key) = key {
            self.records.put_slice(key);
        }
        put_varint(&mut self.records, value.len() as i64);
        self.records.put_slice(value);
        put_varint(&mut self.records, 0); // headers
        self.count += 1;
    }

    /// Finishes the batch and resets the builder for reuse.
    pub fn finish(&mut self) -> anyhow::Result<Bytes> {
        let mut batch = BytesMut::with_capacity(BATCH_HEADER_BYTES + self.records.len());
        batch.put_i64(0); // base offset: assigned by the broker
        batch.put_i32(0); // batch length: patched below
        batch.put_i32(-1); // partition leader epoch
        batch.put_i8(2); // magic
        batch.put_u32(0); // crc: patched below
        let attributes: i16 = match self.codec {
            CompressionCodec::None => 0,
            CompressionCodec::Gzip => 1,
            CompressionCodec::Snappy => 2,
            CompressionCodec::Lz4 => 3,
            CompressionCodec::Zstd => 4,
        };
        batch.put_i16(attributes);
        batch.put_i32(self.count - 1);
        batch.put_i64(self.base_timestamp);
        batch.put_i64(self.max_timestamp);
        let (producer_id, producer_epoch, base_sequence) = self.idempotence.unwrap_or((-1, -1, -1));
        batch.put_i64(producer_id);
        batch.put_i16(producer_epoch);
        batch.put_i32(base_sequence);
        if let Some((_, _, next)) = self.idempotence.as_mut() {
            // Sequences wrap from i32::MAX to 0, as Kafka's do.
            *next = ((i64::from(*next) + i64::from(self.count)) % (i64::from(i32::MAX) + 1)) as i32;
        }
        batch.put_i32(self.count);
        let records = &self.records;
        let copy_records = |buffer: &mut BytesMut| -> anyhow::Result<()> {
            buffer.put_slice(records);
            Ok(())
        };
        match self.codec {
            CompressionCodec::None => batch.put_slice(records),
            CompressionCodec::Gzip => Gzip::compress(&mut batch, copy_records)?,
            CompressionCodec::Snappy => Snappy::compress(&mut batch, copy_records)?,
            CompressionCodec::Lz4 => Lz4::compress(&mut batch, copy_records)?,
            CompressionCodec::Zstd => Zstd::compress(&mut batch, copy_records)?,
        }
        let length = i32::try_from(batch.len() - 12)?;
        batch[8..12].copy_from_slice(&length.to_be_bytes());
        let crc = crc32c::crc32c(&batch[21..]);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
        self.records.clear();
        self.count = 0;
        self.base_timestamp = -1;
        self.max_timestamp = -1;
        Ok(batch.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotent_batches_carry_consecutive_sequences() {
        let mut builder = BatchBuilder::new(CompressionCodec::None, 1024);
        builder.set_idempotent(42, 3);
        for _ in 0..3 {
            builder.push(1, None, b"v");
        }
        let first = validate_batch(&builder.finish().expect("batch")).expect("valid");
        builder.push(1, None, b"v");
        let second = validate_batch(&builder.finish().expect("batch")).expect("valid");
        assert_eq!((first.producer_id, first.producer_epoch), (42, 3));
        assert_eq!((first.base_sequence, second.base_sequence), (0, 3));
    }
    use crate::protocol::record_batch::validate_batch;
    use kafka_protocol::records::RecordBatchDecoder;

    #[test]
    fn built_batches_validate_and_decode_for_every_codec() {
        for codec in [
            CompressionCodec::None,
            CompressionCodec::Gzip,
            CompressionCodec::Snappy,
            CompressionCodec::Lz4,
            CompressionCodec::Zstd,
        ] {
            let mut builder = BatchBuilder::new(codec, 1024);
            builder.push(1_000, Some(b"k1"), b"first value");
            builder.push(1_005, None, &[7u8; 300]);
            let mut batch = builder.finish().expect("finishes");
            let header = validate_batch(&batch).expect("valid batch");
            assert_eq!(header.records_count, 2);
            assert_eq!(header.max_timestamp, 1_005);
            let decoded = RecordBatchDecoder::decode(&mut batch).expect("decodes");
            assert_eq!(decoded.records.len(), 2, "{codec:?}");
            assert_eq!(decoded.records[0].key.as_deref(), Some(&b"k1"[..]));
            assert_eq!(decoded.records[1].value.as_deref(), Some(&[7u8; 300][..]));
            assert_eq!(decoded.records[1].timestamp, 1_005);
            assert!(builder.is_empty(), "builder resets");
        }
    }
}
