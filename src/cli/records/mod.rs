//! Records as the console tools see them: key, value, headers and timestamp.
//! Encodes RecordBatch v2 for `corelog produce` (with headers, which the load
//! generator's `client::batch_builder` never needs) and decodes the batches of
//! a Fetch response for `corelog consume`, compressed or not.
//!
//! Runs on the CLI's single thread, no shard. Decoding is written here rather
//! than through `kafka_protocol::records::RecordBatchDecoder` because that one
//! keeps headers in a map, which would fold repeated header keys into one;
//! Kafka headers are an ordered list and duplicates are legal.
//!
//! This file owns the record types and their errors.
//!
//! Inside:
//! - `encode`: RecordBatch v2 for the Produce path, compressed or not
//! - `decode`: the batches of one partition of a Fetch response

mod decode;
mod encode;

use bytes::Bytes;
use thiserror::Error;

use crate::protocol::record_batch::Compression;
pub use decode::decode_fetched;
pub use encode::encode_batch;

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

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

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
