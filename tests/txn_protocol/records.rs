//! RecordBatch v2 bytes built and read by hand (protocol guide, "Record Batch"), so the
//! broker's own codec cannot hide a mistake: data batches stamped with a producer's id,
//! epoch and first sequence and, for transactions, the transactional attribute (0x10);
//! control batches (0x20, one commit/abort marker record) as only a coordinator may write
//! them; and the batch headers of a fetched record set.

use bytes::Bytes;

use crate::common::wire::put_varint;

const ATTRIBUTE_TRANSACTIONAL: i16 = 0x10;
const ATTRIBUTE_CONTROL: i16 = 0x20;
/// Offset of the attributes in a batch: base offset (8), length (4), leader epoch (4),
/// magic (1), crc (4).
const ATTRIBUTES_AT: usize = 21;
/// Size of the batch header up to the first record.
const HEADER_BYTES: usize = 61;

/// A producer id and epoch, as InitProducerId hands them out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Producer {
    pub(crate) id: i64,
    pub(crate) epoch: i16,
}

/// A batch of `values` (keys null) from `producer`, its first record numbered
/// `base_sequence`; `transactional` sets attribute 0x10.
pub(crate) fn data_batch(
    producer: Producer,
    base_sequence: i32,
    transactional: bool,
    values: &[&[u8]],
) -> Bytes {
    let mut records = Vec::new();
    for (offset_delta, value) in values.iter().enumerate() {
        let mut record = vec![0u8]; // record attributes
        put_varint(&mut record, 0); // timestamp delta
        put_varint(&mut record, offset_delta as i64);
        put_varint(&mut record, -1); // null key
        put_varint(&mut record, value.len() as i64);
        record.extend_from_slice(value);
        put_varint(&mut record, 0); // no headers
        put_varint(&mut records, record.len() as i64);
        records.extend_from_slice(&record);
    }
    let attributes = if transactional {
        ATTRIBUTE_TRANSACTIONAL
    } else {
        0
    };
    let count = i32::try_from(values.len()).expect("few records");
    finish(attributes, count, producer, base_sequence, &records)
}

/// The commit (`commit = true`) or abort marker of `producer`'s transaction, as a
/// coordinator writes it: one record, key `version 0, type` (0 abort, 1 commit), value
/// `version 0, coordinator epoch`; no sequence.
pub(crate) fn control_batch(producer: Producer, commit: bool, coordinator_epoch: i32) -> Bytes {
    let mut key = Vec::new();
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&i16::from(commit).to_be_bytes());
    let mut value = Vec::new();
    value.extend_from_slice(&0i16.to_be_bytes());
    value.extend_from_slice(&coordinator_epoch.to_be_bytes());
    let mut record = vec![0u8];
    put_varint(&mut record, 0);
    put_varint(&mut record, 0);
    put_varint(&mut record, key.len() as i64);
    record.extend_from_slice(&key);
    put_varint(&mut record, value.len() as i64);
    record.extend_from_slice(&value);
    put_varint(&mut record, 0);
    let mut records = Vec::new();
    put_varint(&mut records, record.len() as i64);
    records.extend_from_slice(&record);
    finish(
        ATTRIBUTE_TRANSACTIONAL | ATTRIBUTE_CONTROL,
        1,
        producer,
        -1,
        &records,
    )
}

fn finish(
    attributes: i16,
    count: i32,
    producer: Producer,
    base_sequence: i32,
    records: &[u8],
) -> Bytes {
    let timestamp_ms = 1_700_000_000_000i64;
    let mut body = Vec::new(); // what the CRC covers: attributes to the end
    body.extend_from_slice(&attributes.to_be_bytes());
    body.extend_from_slice(&(count - 1).to_be_bytes()); // last offset delta
    body.extend_from_slice(&timestamp_ms.to_be_bytes());
    body.extend_from_slice(&timestamp_ms.to_be_bytes());
    body.extend_from_slice(&producer.id.to_be_bytes());
    body.extend_from_slice(&producer.epoch.to_be_bytes());
    body.extend_from_slice(&base_sequence.to_be_bytes());
    body.extend_from_slice(&count.to_be_bytes());
    body.extend_from_slice(records);
    let mut batch = Vec::new();
    batch.extend_from_slice(&0i64.to_be_bytes()); // base offset: the broker assigns it
    let length = i32::try_from(4 + 1 + 4 + body.len()).expect("small batch");
    batch.extend_from_slice(&length.to_be_bytes());
    batch.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    batch.push(2); // magic
    batch.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    batch.extend_from_slice(&body);
    Bytes::from(batch)
}

/// What a fetched batch says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FetchedBatch {
    pub(crate) base_offset: i64,
    pub(crate) last_offset: i64,
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
    pub(crate) transactional: bool,
    /// For a control batch: `Some(true)` commit, `Some(false)` abort.
    pub(crate) marker: Option<bool>,
}

/// The batches of a fetched record set, in order. A partial batch at the end (allowed in
/// Fetch answers) is ignored; anything else malformed panics.
pub(crate) fn batches(records: &[u8]) -> Vec<FetchedBatch> {
    let mut found = Vec::new();
    let mut at = 0usize;
    while records.len() - at >= 12 {
        let i64_at = |position: usize| {
            i64::from_be_bytes(records[position..position + 8].try_into().expect("8 bytes"))
        };
        let i32_at = |position: usize| {
            i32::from_be_bytes(records[position..position + 4].try_into().expect("4 bytes"))
        };
        let length = usize::try_from(i32_at(at + 8)).expect("non-negative batch length");
        let end = at + 12 + length;
        if end > records.len() {
            break; // a partial batch at the end of a fetch
        }
        assert!(length + 12 >= HEADER_BYTES, "batch shorter than its header");
        assert_eq!(records[at + 16], 2, "magic 2");
        let base_offset = i64_at(at);
        let attributes = i16::from_be_bytes(
            records[at + ATTRIBUTES_AT..at + ATTRIBUTES_AT + 2]
                .try_into()
                .expect("2 bytes"),
        );
        let control = attributes & ATTRIBUTE_CONTROL != 0;
        let marker = control.then(|| control_type(&records[at + HEADER_BYTES..end]));
        found.push(FetchedBatch {
            base_offset,
            last_offset: base_offset + i64::from(i32_at(at + 23)),
            producer_id: i64_at(at + 43),
            producer_epoch: i16::from_be_bytes(
                records[at + 51..at + 53].try_into().expect("2 bytes"),
            ),
            transactional: attributes & ATTRIBUTE_TRANSACTIONAL != 0,
            marker,
        });
        at = end;
    }
    found
}

/// The marker type of a control batch's single record: true for commit.
fn control_type(record: &[u8]) -> bool {
    let mut reader = crate::common::wire::Reader::new(record);
    let _length = read_varint(&mut reader);
    let _attributes = reader.i8();
    let _timestamp_delta = read_varint(&mut reader);
    let _offset_delta = read_varint(&mut reader);
    let key_length = read_varint(&mut reader);
    assert_eq!(key_length, 4, "control record key: version and type");
    assert_eq!(reader.i16(), 0, "control record key version");
    match reader.i16() {
        0 => false,
        1 => true,
        other => panic!("unknown control record type {other}"),
    }
}

fn read_varint(reader: &mut crate::common::wire::Reader<'_>) -> i64 {
    let zigzag = i64::from(reader.unsigned_varint());
    (zigzag >> 1) ^ -(zigzag & 1)
}
