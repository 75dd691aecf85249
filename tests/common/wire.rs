//! Hand-rolled Kafka framing for the bad-input tests: these must send bytes no real client
//! would, and read answers without trusting the broker's own codec.
//!
//! Kafka protocol guide: every request and response is `int32 size` followed by `size`
//! bytes; a request header v1 is `int16 api_key, int16 api_version, int32 correlation_id,
//! nullable string client_id`, and v2 adds a tagged-field section (one `0x00` when empty).

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// How long a test waits for the broker to answer or close a connection.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

pub const API_VERSIONS_KEY: i16 = 18;
pub const DESCRIBE_CLUSTER_KEY: i16 = 60;
pub const UNSUPPORTED_VERSION: i16 = 35;

pub fn connect(bootstrap: &str) -> TcpStream {
    let stream = TcpStream::connect(bootstrap).expect("connect to broker");
    stream.set_nodelay(true).expect("set TCP_NODELAY");
    stream
        .set_read_timeout(Some(ANSWER_TIMEOUT))
        .expect("set read timeout");
    stream
        .set_write_timeout(Some(ANSWER_TIMEOUT))
        .expect("set write timeout");
    stream
}

/// Request header v1 (non-flexible requests).
pub fn header_v1(api_key: i16, api_version: i16, correlation_id: i32, client_id: &str) -> Vec<u8> {
    let mut header = Vec::new();
    header.extend_from_slice(&api_key.to_be_bytes());
    header.extend_from_slice(&api_version.to_be_bytes());
    header.extend_from_slice(&correlation_id.to_be_bytes());
    let client_id_len = i16::try_from(client_id.len()).expect("short client id");
    header.extend_from_slice(&client_id_len.to_be_bytes());
    header.extend_from_slice(client_id.as_bytes());
    header
}

/// Request header v2 (flexible requests): v1 plus an empty tagged-field section.
pub fn header_v2(api_key: i16, api_version: i16, correlation_id: i32, client_id: &str) -> Vec<u8> {
    let mut header = header_v1(api_key, api_version, correlation_id, client_id);
    header.push(0);
    header
}

/// A flexible ApiVersions request body (v3+): compact strings client_software_name and
/// client_software_version, then an empty tagged-field section.
pub fn api_versions_body_v3() -> Vec<u8> {
    let mut body = Vec::new();
    for text in ["corelog-tests", "0.1.0"] {
        body.push(u8::try_from(text.len() + 1).expect("short compact string"));
        body.extend_from_slice(text.as_bytes());
    }
    body.push(0);
    body
}

/// `int32 size` + payload.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let size = i32::try_from(payload.len()).expect("frame fits int32");
    let mut framed = size.to_be_bytes().to_vec();
    framed.extend_from_slice(payload);
    framed
}

/// Writes bytes, ignoring a broker that already closed (EPIPE/ECONNRESET are fine here:
/// several tests expect the broker to hang up mid-request).
pub fn write_lenient(stream: &mut TcpStream, bytes: &[u8]) {
    let _ = stream.write_all(bytes);
    let _ = stream.flush();
}

/// What the broker did with a connection after the test's bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Hangup {
    /// EOF or reset after `bytes_before_close` bytes of (ignored) answers.
    Closed { bytes_before_close: usize },
    /// Nothing for [`ANSWER_TIMEOUT`]: the broker is holding the connection open.
    StillOpen { bytes_received: usize },
}

/// Reads until EOF, a reset or [`ANSWER_TIMEOUT`] of silence.
pub fn wait_for_close(stream: &mut TcpStream) -> Hangup {
    let mut received = 0usize;
    let mut buffer = [0u8; 4096];
    let deadline = Instant::now() + ANSWER_TIMEOUT;
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => {
                return Hangup::Closed {
                    bytes_before_close: received,
                }
            }
            Ok(read) => received += read,
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Hangup::StillOpen {
                    bytes_received: received,
                }
            }
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(_) => {
                return Hangup::Closed {
                    bytes_before_close: received,
                }
            }
        }
        if Instant::now() >= deadline {
            return Hangup::StillOpen {
                bytes_received: received,
            };
        }
    }
}

/// Reads one response frame: `Ok(payload)` (without the size), or `Err(description)` when
/// the connection closed or stayed silent first.
pub fn read_frame(stream: &mut TcpStream) -> Result<Vec<u8>, String> {
    let mut size_bytes = [0u8; 4];
    stream
        .read_exact(&mut size_bytes)
        .map_err(|error| format!("no response size: {error} ({:?})", error.kind()))?;
    let size = i32::from_be_bytes(size_bytes);
    if !(0..=64 * 1024 * 1024).contains(&size) {
        return Err(format!("implausible response size {size}"));
    }
    let mut payload = vec![0u8; size as usize];
    stream
        .read_exact(&mut payload)
        .map_err(|error| format!("response truncated (size {size}): {error}"))?;
    Ok(payload)
}

/// A bounds-checked big-endian reader over a response payload.
pub struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, position: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.position
    }

    fn take(&mut self, count: usize) -> &'a [u8] {
        assert!(
            self.remaining() >= count,
            "response too short: wanted {count} more bytes at {} of {}: {:02x?}",
            self.position,
            self.bytes.len(),
            self.bytes
        );
        let slice = &self.bytes[self.position..self.position + count];
        self.position += count;
        slice
    }

    pub fn i16(&mut self) -> i16 {
        i16::from_be_bytes(self.take(2).try_into().expect("2 bytes"))
    }

    pub fn i32(&mut self) -> i32 {
        i32::from_be_bytes(self.take(4).try_into().expect("4 bytes"))
    }

    pub fn i64(&mut self) -> i64 {
        i64::from_be_bytes(self.take(8).try_into().expect("8 bytes"))
    }

    pub fn unsigned_varint(&mut self) -> u32 {
        let mut value = 0u32;
        for shift in (0..35).step_by(7) {
            let byte = self.take(1)[0];
            value |= u32::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return value;
            }
        }
        panic!("unsigned varint longer than 5 bytes");
    }

    pub fn i8(&mut self) -> i8 {
        i8::from_be_bytes([self.take(1)[0]])
    }

    /// A compact nullable string (length + 1 as unsigned varint; 0 is null).
    pub fn compact_nullable_string(&mut self) -> Option<String> {
        let length_plus_one = self.unsigned_varint() as usize;
        if length_plus_one == 0 {
            return None;
        }
        let bytes = self.take(length_plus_one - 1);
        Some(String::from_utf8(bytes.to_vec()).expect("UTF-8 string in response"))
    }

    /// Skips a tagged-field section, returning how many tags it had.
    pub fn skip_tagged_fields(&mut self) -> u32 {
        let count = self.unsigned_varint();
        for _ in 0..count {
            let _tag = self.unsigned_varint();
            let size = self.unsigned_varint() as usize;
            self.take(size);
        }
        count
    }
}

/// One `(api_key, min_version, max_version)` entry of an ApiVersions response.
pub type ApiRange = (i16, i16, i16);

/// ApiVersions response v0 body (after the correlation id): error_code, api_keys array.
/// Asserts the body has exactly that shape and nothing after it.
pub fn parse_api_versions_v0(body: &[u8]) -> (i16, Vec<ApiRange>) {
    let mut reader = Reader::new(body);
    let error_code = reader.i16();
    let count = reader.i32();
    assert!(
        (0..=1000).contains(&count),
        "api_keys array length {count} out of range"
    );
    let ranges = (0..count)
        .map(|_| (reader.i16(), reader.i16(), reader.i16()))
        .collect();
    assert_eq!(
        reader.remaining(),
        0,
        "trailing bytes after a v0 ApiVersions response: {:02x?}",
        body
    );
    (error_code, ranges)
}

/// ApiVersions response v3 body (after the v0 response header): error_code, compact
/// api_keys array with per-entry tagged fields, throttle_time_ms, tagged fields.
/// Returns the error code, the ranges and how many top-level tagged fields were present.
pub fn parse_api_versions_v3(body: &[u8]) -> (i16, Vec<ApiRange>, u32) {
    let mut reader = Reader::new(body);
    let error_code = reader.i16();
    let count_plus_one = reader.unsigned_varint();
    assert!(count_plus_one >= 1, "null api_keys array in ApiVersions v3");
    let mut ranges = Vec::new();
    for _ in 0..count_plus_one - 1 {
        let range = (reader.i16(), reader.i16(), reader.i16());
        reader.skip_tagged_fields();
        ranges.push(range);
    }
    let _throttle_time_ms = reader.i32();
    let tags = reader.skip_tagged_fields();
    assert_eq!(
        reader.remaining(),
        0,
        "trailing bytes after a v3 ApiVersions response: {:02x?}",
        body
    );
    (error_code, ranges, tags)
}

pub fn find_range(ranges: &[ApiRange], api_key: i16) -> Option<ApiRange> {
    ranges.iter().copied().find(|(key, _, _)| *key == api_key)
}

pub fn assert_core_apis_listed(ranges: &[ApiRange]) {
    // Produce(0) from v3, Fetch(1), ListOffsets(2), Metadata(3), ApiVersions(18) up to v3,
    // CreateTopics(19), DeleteTopics(20), DescribeCluster(60).
    for api_key in [0, 1, 2, 3, 18, 19, 20, 60] {
        let range = find_range(ranges, api_key)
            .unwrap_or_else(|| panic!("api {api_key} missing from ApiVersions: {ranges:?}"));
        assert!(range.1 <= range.2, "api {api_key} has min > max: {range:?}");
    }
    let (_, _, produce_max) = find_range(ranges, 0).unwrap();
    assert!(produce_max >= 3, "Produce max version {produce_max} < 3");
    let (_, api_versions_min, api_versions_max) = find_range(ranges, API_VERSIONS_KEY).unwrap();
    assert_eq!(api_versions_min, 0, "ApiVersions must accept v0");
    assert!(
        api_versions_max >= 3,
        "ApiVersions max {api_versions_max} < 3"
    );
}

/// Zigzag varint (Kafka record fields).
pub fn put_varint(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    loop {
        let byte = (zigzag & 0x7f) as u8;
        zigzag >>= 7;
        if zigzag == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// An uncompressed RecordBatch v2 (magic 2) of `(key, value)` records, base offset 0,
/// no producer id, built by hand so a broker's own codec cannot hide a mistake.
pub fn record_batch_v2(records: &[(&[u8], &[u8])], base_timestamp_ms: i64) -> Vec<u8> {
    idempotent_record_batch_v2(records, base_timestamp_ms, -1, -1, -1)
}

/// Like [`record_batch_v2`], stamped with an idempotent producer's id, epoch and the
/// sequence number of its first record.
pub fn idempotent_record_batch_v2(
    records: &[(&[u8], &[u8])],
    base_timestamp_ms: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
) -> Vec<u8> {
    let mut body = Vec::new(); // everything the CRC covers: attributes .. end
    body.extend_from_slice(&0i16.to_be_bytes()); // attributes: no compression, CreateTime
    let last_offset_delta = i32::try_from(records.len()).expect("few records") - 1;
    body.extend_from_slice(&last_offset_delta.to_be_bytes());
    body.extend_from_slice(&base_timestamp_ms.to_be_bytes());
    body.extend_from_slice(&base_timestamp_ms.to_be_bytes()); // max timestamp
    body.extend_from_slice(&producer_id.to_be_bytes());
    body.extend_from_slice(&producer_epoch.to_be_bytes());
    body.extend_from_slice(&base_sequence.to_be_bytes());
    let count = i32::try_from(records.len()).expect("few records");
    body.extend_from_slice(&count.to_be_bytes());
    for (offset_delta, (key, value)) in records.iter().enumerate() {
        let mut record = vec![0u8]; // record attributes
        put_varint(&mut record, 0); // timestamp delta
        put_varint(&mut record, offset_delta as i64);
        put_varint(&mut record, key.len() as i64);
        record.extend_from_slice(key);
        put_varint(&mut record, value.len() as i64);
        record.extend_from_slice(value);
        put_varint(&mut record, 0); // headers
        put_varint(&mut body, record.len() as i64);
        body.extend_from_slice(&record);
    }
    let crc = crc32c::crc32c(&body);

    let mut batch = Vec::new();
    batch.extend_from_slice(&0i64.to_be_bytes()); // base offset
                                                  // batch length: from partition leader epoch to the end.
    let batch_length = i32::try_from(4 + 1 + 4 + body.len()).expect("small batch");
    batch.extend_from_slice(&batch_length.to_be_bytes());
    batch.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    batch.push(2); // magic
    batch.extend_from_slice(&crc.to_be_bytes());
    batch.extend_from_slice(&body);
    batch
}

/// Byte positions inside a [`record_batch_v2`] for tests that damage one field.
pub const BATCH_LENGTH_AT: usize = 8;
pub const BATCH_MAGIC_AT: usize = 16;
pub const BATCH_CRC_AT: usize = 17;
pub const BATCH_RECORD_COUNT_AT: usize = 57;

/// A Produce v3 request (non-flexible, header v1) carrying `records` for one partition.
pub fn produce_request_v3(
    correlation_id: i32,
    topic: &str,
    partition: i32,
    acks: i16,
    records: &[u8],
) -> Vec<u8> {
    let mut request = header_v1(0, 3, correlation_id, "raw-producer");
    request.extend_from_slice(&(-1i16).to_be_bytes()); // transactional id: null
    request.extend_from_slice(&acks.to_be_bytes());
    request.extend_from_slice(&10_000i32.to_be_bytes()); // timeout ms
    request.extend_from_slice(&1i32.to_be_bytes()); // one topic
    let topic_len = i16::try_from(topic.len()).expect("short topic");
    request.extend_from_slice(&topic_len.to_be_bytes());
    request.extend_from_slice(topic.as_bytes());
    request.extend_from_slice(&1i32.to_be_bytes()); // one partition
    request.extend_from_slice(&partition.to_be_bytes());
    let records_len = i32::try_from(records.len()).expect("small records");
    request.extend_from_slice(&records_len.to_be_bytes());
    request.extend_from_slice(records);
    request
}

/// Produce response v3 for one topic with one partition: `(error_code, base_offset)`.
pub fn parse_produce_response_v3(payload: &[u8], correlation_id: i32) -> (i16, i64) {
    let mut reader = Reader::new(payload);
    assert_eq!(reader.i32(), correlation_id, "correlation id");
    assert_eq!(reader.i32(), 1, "one topic in the produce response");
    let name_len = reader.i16();
    reader.take(usize::try_from(name_len).expect("non-null topic name"));
    assert_eq!(reader.i32(), 1, "one partition in the produce response");
    let _partition = reader.i32();
    let error_code = reader.i16();
    let base_offset = reader.i64();
    let _log_append_time_ms = reader.i64();
    let _throttle_time_ms = reader.i32();
    assert_eq!(reader.remaining(), 0, "trailing bytes: {payload:02x?}");
    (error_code, base_offset)
}

/// InitProducerId v0 without a transactional id; returns `(error_code, producer_id,
/// producer_epoch)` from the answer.
pub fn init_producer_id_v0(stream: &mut TcpStream, correlation_id: i32) -> (i16, i64, i16) {
    let mut request = header_v1(22, 0, correlation_id, "raw-idempotent");
    request.extend_from_slice(&(-1i16).to_be_bytes()); // transactional id: null
    request.extend_from_slice(&60_000i32.to_be_bytes()); // transaction timeout ms
    write_lenient(stream, &frame(&request));
    let payload =
        read_frame(stream).unwrap_or_else(|error| panic!("no InitProducerId response: {error}"));
    let mut reader = Reader::new(&payload);
    assert_eq!(reader.i32(), correlation_id, "correlation id");
    let _throttle_time_ms = reader.i32();
    let error_code = reader.i16();
    let producer_id = reader.i64();
    let producer_epoch = reader.i16();
    assert_eq!(reader.remaining(), 0, "trailing bytes: {payload:02x?}");
    (error_code, producer_id, producer_epoch)
}
