//! RecordBatch v2 ("magic 2") header view: parsing, crc32c validation and the
//! two in-place rewrites the broker is allowed to make (base offset, and
//! LogAppendTime). Pure functions over byte slices; used by the produce path on
//! whichever shard owns the partition, and by log recovery.
//!
//! Layout (Kafka protocol guide, "Record Batch"): every field below is
//! big-endian; `crc` is a crc32c of everything from `attributes` to the end.

use bytes::Bytes;
use thiserror::Error;

/// Bytes before the first record: the fixed RecordBatch v2 header.
pub const BATCH_HEADER_BYTES: usize = 61;
/// `baseOffset` + `batchLength`: the part of the header not counted by `batchLength`.
pub const BATCH_LOG_OVERHEAD_BYTES: usize = 12;
/// The only record format corelog stores (Produce v3 and up).
pub const MAGIC_V2: i8 = 2;

const OFFSET_BATCH_LENGTH: usize = 8;
const OFFSET_LEADER_EPOCH: usize = 12;
const OFFSET_MAGIC: usize = 16;
const OFFSET_CRC: usize = 17;
const OFFSET_ATTRIBUTES: usize = 21;
const OFFSET_LAST_OFFSET_DELTA: usize = 23;
const OFFSET_BASE_TIMESTAMP: usize = 27;
const OFFSET_MAX_TIMESTAMP: usize = 35;
const OFFSET_PRODUCER_ID: usize = 43;
const OFFSET_PRODUCER_EPOCH: usize = 51;
const OFFSET_BASE_SEQUENCE: usize = 53;
const OFFSET_RECORDS_COUNT: usize = 57;

const ATTRIBUTE_COMPRESSION_MASK: i16 = 0x07;
const ATTRIBUTE_LOG_APPEND_TIME: i16 = 0x08;
const ATTRIBUTE_TRANSACTIONAL: i16 = 0x10;
const ATTRIBUTE_CONTROL: i16 = 0x20;

/// Why a batch was refused. Maps onto Kafka error codes at the protocol boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum BatchError {
    /// Fewer bytes than a header, or `batchLength` disagrees with the bytes present.
    #[error("record batch is truncated or its length field is inconsistent")]
    Truncated,
    /// Not magic 2: old message formats are not accepted (Produce v3+ only).
    #[error("unsupported record batch magic {0}")]
    UnsupportedMagic(i8),
    /// Stored crc32c does not match the bytes.
    #[error("record batch crc32c mismatch")]
    CrcMismatch,
    /// Header fields that cannot describe a real batch (negative counts, bad deltas).
    #[error("record batch header is invalid")]
    InvalidHeader,
}

/// Compression codec from the batch attributes; batches are stored as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

/// Decoded fixed header of one RecordBatch v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

fn read_i16(bytes: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([bytes[at], bytes[at + 1]])
}
fn read_i32(bytes: &[u8], at: usize) -> i32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    i32::from_be_bytes(word)
}
fn read_i64(bytes: &[u8], at: usize) -> i64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    i64::from_be_bytes(word)
}

impl BatchHeader {
    /// Parses the fixed header; checks only that enough bytes are present and
    /// that the magic is 2. Does not look at the crc.
    pub fn parse(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
        if bytes.len() < BATCH_HEADER_BYTES {
            return Err(BatchError::Truncated);
        }
        let magic = bytes[OFFSET_MAGIC] as i8;
        let header = BatchHeader {
            base_offset: read_i64(bytes, 0),
            batch_length: read_i32(bytes, OFFSET_BATCH_LENGTH),
            partition_leader_epoch: read_i32(bytes, OFFSET_LEADER_EPOCH),
            magic,
            crc: read_i32(bytes, OFFSET_CRC) as u32,
            attributes: read_i16(bytes, OFFSET_ATTRIBUTES),
            last_offset_delta: read_i32(bytes, OFFSET_LAST_OFFSET_DELTA),
            base_timestamp: read_i64(bytes, OFFSET_BASE_TIMESTAMP),
            max_timestamp: read_i64(bytes, OFFSET_MAX_TIMESTAMP),
            producer_id: read_i64(bytes, OFFSET_PRODUCER_ID),
            producer_epoch: read_i16(bytes, OFFSET_PRODUCER_EPOCH),
            base_sequence: read_i32(bytes, OFFSET_BASE_SEQUENCE),
            records_count: read_i32(bytes, OFFSET_RECORDS_COUNT),
        };
        if magic != MAGIC_V2 {
            return Err(BatchError::UnsupportedMagic(magic));
        }
        let total = header.total_bytes().ok_or(BatchError::Truncated)?;
        if total < BATCH_HEADER_BYTES {
            return Err(BatchError::Truncated);
        }
        Ok(header)
    }

    /// Size of the whole batch on the wire and on disk, or `None` for a negative length.
    pub fn total_bytes(&self) -> Option<usize> {
        usize::try_from(self.batch_length)
            .ok()
            .map(|length| length + BATCH_LOG_OVERHEAD_BYTES)
    }

    /// Offset of the last record in the batch.
    ///
    /// Wraps, as Java's `DefaultRecordBatch.lastOffset` does, instead of
    /// panicking on a hostile or corrupt header whose base offset is near
    /// `i64::MAX`: recovery calls this on headers read from disk before it
    /// checks them, and refuses the batch because `last_offset < base_offset`.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .wrapping_add(i64::from(self.last_offset_delta))
    }

    pub fn compression(&self) -> Compression {
        match self.attributes & ATTRIBUTE_COMPRESSION_MASK {
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            _ => Compression::None,
        }
    }

    pub fn is_log_append_time(&self) -> bool {
        self.attributes & ATTRIBUTE_LOG_APPEND_TIME != 0
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTRIBUTE_TRANSACTIONAL != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes & ATTRIBUTE_CONTROL != 0
    }
}

/// Full validation of one batch that must span exactly `bytes`: header sanity,
/// length agreement and crc32c (which covers `attributes` to the end).
pub fn validate_batch(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(bytes)?;
    if header.total_bytes() != Some(bytes.len()) {
        return Err(BatchError::Truncated);
    }
    if header.last_offset_delta < 0 || header.records_count < 0 {
        return Err(BatchError::InvalidHeader);
    }
    // An empty batch can only come from compaction, never from a producer.
    if header.records_count == 0 || header.last_offset_delta != header.records_count - 1 {
        return Err(BatchError::InvalidHeader);
    }
    if crc32c::crc32c(&bytes[OFFSET_ATTRIBUTES..]) != header.crc {
        return Err(BatchError::CrcMismatch);
    }
    Ok(header)
}

/// Splits a Produce request's `records` field into its batches without copying.
/// Each item is exactly one batch as announced by its length field; the caller
/// validates it. A trailing partial batch yields `Err(Truncated)`.
pub fn split_batches(records: &Bytes) -> impl Iterator<Item = Result<Bytes, BatchError>> + '_ {
    let mut position = 0usize;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || position >= records.len() {
            return None;
        }
        let rest = &records[position..];
        if rest.len() < BATCH_LOG_OVERHEAD_BYTES {
            failed = true;
            return Some(Err(BatchError::Truncated));
        }
        let length = read_i32(rest, OFFSET_BATCH_LENGTH);
        let total = match usize::try_from(length) {
            Ok(length) => length + BATCH_LOG_OVERHEAD_BYTES,
            Err(_) => {
                failed = true;
                return Some(Err(BatchError::Truncated));
            }
        };
        if total > rest.len() || total < BATCH_HEADER_BYTES {
            failed = true;
            return Some(Err(BatchError::Truncated));
        }
        let batch = records.slice(position..position + total);
        position += total;
        Some(Ok(batch))
    })
}

/// Rewrites the base offset (not covered by the crc, so no recomputation).
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[..8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Sets the partition leader epoch (not covered by the crc).
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[OFFSET_LEADER_EPOCH..OFFSET_LEADER_EPOCH + 4].copy_from_slice(&epoch.to_be_bytes());
}

/// Marks the batch as LogAppendTime with `now_ms` as its max timestamp and
/// recomputes the crc, as Kafka's `DefaultRecordBatch.setMaxTimestamp` does.
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) {
    let attributes = read_i16(batch, OFFSET_ATTRIBUTES) | ATTRIBUTE_LOG_APPEND_TIME;
    batch[OFFSET_ATTRIBUTES..OFFSET_ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[OFFSET_MAX_TIMESTAMP..OFFSET_MAX_TIMESTAMP + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c(&batch[OFFSET_ATTRIBUTES..]);
    batch[OFFSET_CRC..OFFSET_CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a valid uncompressed batch with `count` empty-value records.
    pub(crate) fn sample_batch(base_offset: i64, count: i32, timestamp: i64) -> Vec<u8> {
        let mut records = Vec::new();
        for index in 0..count {
            // length, attributes, timestampDelta, offsetDelta, keyLen(-1), valueLen(1), value, headers(0)
            let body = [0u8, 0, zigzag(index as i64), zigzag(-1), zigzag(1), b'x', 0];
            records.push(zigzag(body.len() as i64));
            records.extend_from_slice(&body);
        }
        let mut batch = Vec::new();
        batch.extend_from_slice(&base_offset.to_be_bytes());
        let length = (BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD_BYTES + records.len()) as i32;
        batch.extend_from_slice(&length.to_be_bytes());
        batch.extend_from_slice(&0i32.to_be_bytes());
        batch.push(2);
        batch.extend_from_slice(&0u32.to_be_bytes());
        batch.extend_from_slice(&0i16.to_be_bytes());
        batch.extend_from_slice(&(count - 1).to_be_bytes());
        batch.extend_from_slice(&timestamp.to_be_bytes());
        batch.extend_from_slice(&timestamp.to_be_bytes());
        batch.extend_from_slice(&(-1i64).to_be_bytes());
        batch.extend_from_slice(&(-1i16).to_be_bytes());
        batch.extend_from_slice(&(-1i32).to_be_bytes());
        batch.extend_from_slice(&count.to_be_bytes());
        batch.extend_from_slice(&records);
        let crc = crc32c::crc32c(&batch[OFFSET_ATTRIBUTES..]);
        batch[OFFSET_CRC..OFFSET_CRC + 4].copy_from_slice(&crc.to_be_bytes());
        batch
    }

    fn zigzag(value: i64) -> u8 {
        let encoded = ((value << 1) ^ (value >> 63)) as u64;
        assert!(encoded < 0x80, "test helper only encodes one-byte varints");
        encoded as u8
    }

    #[test]
    fn valid_batch_passes_and_reports_offsets() {
        let batch = sample_batch(0, 3, 1_000);
        let header = validate_batch(&batch).expect("valid");
        assert_eq!(header.records_count, 3);
        assert_eq!(header.last_offset(), 2);
        assert_eq!(header.compression(), Compression::None);
    }

    #[test]
    fn flipped_byte_is_a_crc_mismatch() {
        let mut batch = sample_batch(0, 2, 1_000);
        let last = batch.len() - 1;
        batch[last] ^= 0xff;
        assert_eq!(validate_batch(&batch), Err(BatchError::CrcMismatch));
    }

    #[test]
    fn base_offset_rewrite_keeps_crc_valid() {
        let mut batch = sample_batch(0, 2, 1_000);
        set_base_offset(&mut batch, 42);
        let header = validate_batch(&batch).expect("still valid");
        assert_eq!(header.base_offset, 42);
        assert_eq!(header.last_offset(), 43);
    }

    #[test]
    fn log_append_time_rewrite_recomputes_crc() {
        let mut batch = sample_batch(0, 2, 1_000);
        set_log_append_time(&mut batch, 99_000);
        let header = validate_batch(&batch).expect("still valid");
        assert!(header.is_log_append_time());
        assert_eq!(header.max_timestamp, 99_000);
    }

    #[test]
    fn split_finds_each_batch_and_flags_a_partial_tail() {
        let mut joined = sample_batch(0, 2, 1);
        joined.extend_from_slice(&sample_batch(2, 1, 1));
        let whole = Bytes::from(joined.clone());
        assert_eq!(split_batches(&whole).filter(|b| b.is_ok()).count(), 2);
        joined.truncate(joined.len() - 3);
        let partial = Bytes::from(joined);
        let results: Vec<_> = split_batches(&partial).collect();
        assert!(results[0].is_ok());
        assert_eq!(results[1], Err(BatchError::Truncated));
    }

    #[test]
    fn old_magic_is_refused() {
        let mut batch = sample_batch(0, 1, 1);
        batch[OFFSET_MAGIC] = 1;
        assert_eq!(validate_batch(&batch), Err(BatchError::UnsupportedMagic(1)));
    }
}

/// Property tests: `split_batches` and `validate_batch` see a Produce
/// request's raw `records` bytes, so they must refuse anything without
/// panicking, and accept exactly what a well-behaved producer sends.
#[cfg(test)]
pub(crate) mod proptests {
    use super::tests::sample_batch;
    use super::*;
    use proptest::prelude::*;
    use proptest::sample::Index;

    /// Cases per property; the module stays around a second.
    const CASES: u32 = 3_000;

    /// Arbitrary bytes, shorter than `max_len`. Cheaper than
    /// `vec(any::<u8>(), ..)`, whose per-byte shrink trees cost far more than
    /// the parsing under test; failures still shrink, the length to a prefix
    /// of the same bytes and the seed towards zero.
    pub(crate) fn arbitrary_bytes(max_len: usize) -> impl Strategy<Value = Vec<u8>> {
        (0..max_len, any::<u64>()).prop_map(|(len, seed)| {
            // xorshift64; `| 1` keeps the state off the all-zero fixed point.
            let mut state = seed | 1;
            (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state >> 32) as u8
                })
                .collect()
        })
    }

    /// Splits `records` and checks the iterator's contract: whole batches that
    /// tile a prefix of the input, then at most one `Truncated` and nothing after.
    fn split_checked(records: &Bytes) -> (Vec<Bytes>, Option<BatchError>) {
        let mut batches = Vec::new();
        let mut failure = None;
        for item in split_batches(records) {
            assert!(failure.is_none(), "an item after an error");
            match item {
                Ok(batch) => batches.push(batch),
                Err(error) => failure = Some(error),
            }
        }
        let covered: usize = batches.iter().map(Bytes::len).sum();
        for batch in &batches {
            assert!(batch.len() >= BATCH_HEADER_BYTES);
            assert_eq!(
                Some(batch.len()),
                usize::try_from(read_i32(batch, OFFSET_BATCH_LENGTH))
                    .ok()
                    .map(|length| length + BATCH_LOG_OVERHEAD_BYTES)
            );
        }
        match failure {
            None => assert_eq!(covered, records.len()),
            Some(error) => {
                assert_eq!(error, BatchError::Truncated);
                assert!(covered < records.len());
            }
        }
        (batches, failure)
    }

    /// Validates `batch` and, when it passes, checks what a validated header
    /// promises and that every accessor is total on it.
    fn validate_checked(batch: &[u8]) -> Result<BatchHeader, BatchError> {
        let result = validate_batch(batch);
        if let Ok(header) = &result {
            assert_eq!(header.magic, MAGIC_V2);
            assert_eq!(header.total_bytes(), Some(batch.len()));
            assert!(header.records_count > 0);
            assert_eq!(header.last_offset_delta, header.records_count - 1);
            let _ = header.last_offset();
            let _ = header.compression();
            let _ = (
                header.is_log_append_time(),
                header.is_transactional(),
                header.is_control(),
            );
        }
        result
    }

    /// Header fields as (offset, width in bytes).
    const HEADER_FIELDS: [(usize, usize); 13] = [
        (0, 8),
        (OFFSET_BATCH_LENGTH, 4),
        (OFFSET_LEADER_EPOCH, 4),
        (OFFSET_MAGIC, 1),
        (OFFSET_CRC, 4),
        (OFFSET_ATTRIBUTES, 2),
        (OFFSET_LAST_OFFSET_DELTA, 4),
        (OFFSET_BASE_TIMESTAMP, 8),
        (OFFSET_MAX_TIMESTAMP, 8),
        (OFFSET_PRODUCER_ID, 8),
        (OFFSET_PRODUCER_EPOCH, 2),
        (OFFSET_BASE_SEQUENCE, 4),
        (OFFSET_RECORDS_COUNT, 4),
    ];

    /// Field values, biased towards the edges where arithmetic overflows.
    fn field_value() -> impl Strategy<Value = u64> {
        prop_oneof![
            any::<u64>(),
            prop::sample::select(vec![
                0,
                1,
                2,
                u64::MAX,
                i64::MAX as u64,
                i64::MIN as u64,
                i32::MAX as u64,
                i32::MIN as u32 as u64,
                u32::MAX as u64,
            ]),
        ]
    }

    /// Writes the low `width` bytes of `value`, big-endian, at `at`.
    fn write_field(batch: &mut [u8], (at, width): (usize, usize), value: u64) {
        batch[at..at + width].copy_from_slice(&value.to_be_bytes()[8 - width..]);
    }

    fn recompute_crc(batch: &mut [u8]) {
        let crc = crc32c::crc32c(&batch[OFFSET_ATTRIBUTES..]);
        batch[OFFSET_CRC..OFFSET_CRC + 4].copy_from_slice(&crc.to_be_bytes());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]

        #[test]
        fn arbitrary_records_never_panic(records in arbitrary_bytes(4096)) {
            let records = Bytes::from(records);
            let _ = validate_checked(&records);
            let (batches, _) = split_checked(&records);
            for batch in &batches {
                let _ = validate_checked(batch);
            }
        }

        /// Arbitrary bytes almost never carry a plausible length field; put a
        /// random one in front so the split and the header parse are reached.
        #[test]
        fn arbitrary_records_with_a_plausible_length_never_panic(
            length in -64i32..512,
            rest in arbitrary_bytes(600),
        ) {
            let mut records = vec![0u8; 8];
            records.extend_from_slice(&length.to_be_bytes());
            records.extend_from_slice(&rest);
            let records = Bytes::from(records);
            let (batches, _) = split_checked(&records);
            for batch in &batches {
                let _ = validate_checked(batch);
            }
        }

        #[test]
        fn valid_batches_split_and_validate_and_a_cut_tail_is_truncated(
            counts in prop::collection::vec(1..40i32, 1..6),
            cut in any::<Index>(),
        ) {
            let mut records = Vec::new();
            let mut base_offset = 0i64;
            for &count in &counts {
                records.extend_from_slice(&sample_batch(base_offset, count, 1_000 + base_offset));
                base_offset += i64::from(count);
            }
            let whole = Bytes::from(records.clone());
            let (batches, failure) = split_checked(&whole);
            prop_assert_eq!(failure, None);
            prop_assert_eq!(batches.len(), counts.len());
            for (batch, &count) in batches.iter().zip(&counts) {
                prop_assert_eq!(validate_checked(batch).map(|header| header.records_count), Ok(count));
            }
            let cut = cut.index(records.len());
            let at_a_boundary = batches.iter().scan(0, |end, batch| {
                *end += batch.len();
                Some(*end)
            }).any(|end| end == cut);
            records.truncate(cut);
            let cut_records = Bytes::from(records);
            let (_, failure) = split_checked(&cut_records);
            prop_assert_eq!(failure.is_some(), cut > 0 && !at_a_boundary);
        }

        #[test]
        fn rewritten_header_fields_never_panic(
            count in 1..8i32,
            field in prop::sample::select(HEADER_FIELDS.to_vec()),
            value in field_value(),
            fix_crc in any::<bool>(),
        ) {
            let mut batch = sample_batch(0, count, 1_000);
            write_field(&mut batch, field, value);
            if fix_crc {
                recompute_crc(&mut batch);
            }
            let records = Bytes::from(batch);
            let _ = validate_checked(&records);
            let (batches, _) = split_checked(&records);
            for batch in &batches {
                let _ = validate_checked(batch);
            }
        }

        #[test]
        fn flipped_bytes_are_refused(count in 1..8i32, at in any::<Index>(), mask in 1..=u8::MAX) {
            let mut batch = sample_batch(0, count, 1_000);
            let at = at.index(batch.len());
            batch[at] ^= mask;
            // The base offset (0..8) and leader epoch (12..16) are outside the
            // crc and may change freely; any other byte must be caught.
            let outside_crc = at < OFFSET_BATCH_LENGTH || (OFFSET_LEADER_EPOCH..OFFSET_MAGIC).contains(&at);
            prop_assert_eq!(validate_checked(&batch).is_ok(), outside_crc);
        }
    }
}
