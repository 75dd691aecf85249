//! Produce requests written byte by byte: a damaged record batch (bad CRC, lengths or
//! counts that disagree, an old magic) is refused with a per-partition error and never
//! reaches the log, where it would break every consumer; and acks=0 gets no response.

mod common;

use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::wire::{
    connect, frame, header_v1, idempotent_record_batch_v2, init_producer_id_v0,
    parse_api_versions_v0, parse_produce_response_v3, produce_request_v3, read_frame,
    record_batch_v2, write_lenient, API_VERSIONS_KEY, BATCH_CRC_AT, BATCH_LENGTH_AT,
    BATCH_MAGIC_AT, BATCH_RECORD_COUNT_AT,
};
use common::{assert_round_trip, consume_all, create_topic, watermarks, Broker};

const CORRUPT_MESSAGE: i16 = 2;
const UNSUPPORTED_FOR_MESSAGE_FORMAT: i16 = 43;
const INVALID_RECORD: i16 = 87;
/// Where lastOffsetDelta sits in a batch (after attributes).
const BATCH_LAST_OFFSET_DELTA_AT: usize = 23;
/// The CRC covers everything from the attributes on.
const BATCH_CRC_COVERS_FROM: usize = 21;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

fn produce(stream: &mut TcpStream, correlation_id: i32, topic: &str, batch: &[u8]) -> (i16, i64) {
    let request = produce_request_v3(correlation_id, topic, 0, -1, batch);
    write_lenient(stream, &frame(&request));
    let payload = read_frame(stream).unwrap_or_else(|error| {
        panic!("no Produce response for request {correlation_id}: {error}")
    });
    parse_produce_response_v3(&payload, correlation_id)
}

fn put_i32(batch: &mut [u8], at: usize, value: i32) {
    batch[at..at + 4].copy_from_slice(&value.to_be_bytes());
}

fn read_i32(batch: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(batch[at..at + 4].try_into().expect("4 bytes"))
}

/// Recomputes the CRC after a deliberate change, so that only the changed field is wrong.
fn fix_crc(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[BATCH_CRC_COVERS_FROM..]);
    batch[BATCH_CRC_AT..BATCH_CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

#[test]
fn damaged_record_batches_are_refused_and_never_stored() {
    let mut broker = Broker::start(1, &[]);
    let bootstrap = broker.bootstrap();
    let topic = "raw-batches";
    create_topic(&bootstrap, topic, 1);
    let records: [(&[u8], &[u8]); 3] = [(b"k0", b"v0"), (b"k1", b"v1"), (b"k2", b"v2")];
    let good = record_batch_v2(&records, now_ms());

    let mut stream = connect(&bootstrap);
    // The hand-built batch itself is fine: stored at offset 0.
    assert_eq!(produce(&mut stream, 1, topic, &good), (0, 0), "valid batch");

    let mut cases: Vec<(&str, Vec<u8>, &[i16])> = Vec::new();
    let mut flipped_value = good.clone();
    // The last record ends with its value "v2" and a zero header count.
    let last_value_byte = flipped_value.len() - 2;
    flipped_value[last_value_byte] ^= 0x01;
    cases.push(("value byte flipped", flipped_value, &[CORRUPT_MESSAGE]));

    let mut wrong_crc = good.clone();
    wrong_crc[BATCH_CRC_AT + 3] ^= 0x01;
    cases.push(("CRC field wrong", wrong_crc, &[CORRUPT_MESSAGE]));

    let mut too_long = good.clone();
    let length = read_i32(&too_long, BATCH_LENGTH_AT);
    put_i32(&mut too_long, BATCH_LENGTH_AT, length + 100);
    cases.push((
        "batch length past the end",
        too_long,
        &[CORRUPT_MESSAGE, INVALID_RECORD],
    ));

    let mut too_short = good.clone();
    put_i32(&mut too_short, BATCH_LENGTH_AT, length - 7);
    cases.push((
        "batch length short of the records",
        too_short,
        &[CORRUPT_MESSAGE, INVALID_RECORD],
    ));

    let mut more_records_claimed = good.clone();
    put_i32(&mut more_records_claimed, BATCH_RECORD_COUNT_AT, 5);
    fix_crc(&mut more_records_claimed);
    cases.push((
        "record count above the records present",
        more_records_claimed,
        &[CORRUPT_MESSAGE, INVALID_RECORD],
    ));

    let mut fewer_records_claimed = good.clone();
    put_i32(&mut fewer_records_claimed, BATCH_RECORD_COUNT_AT, 2);
    fix_crc(&mut fewer_records_claimed);
    cases.push((
        "record count below the records present",
        fewer_records_claimed,
        &[CORRUPT_MESSAGE, INVALID_RECORD],
    ));

    let mut offset_range_mismatch = good.clone();
    put_i32(&mut offset_range_mismatch, BATCH_LAST_OFFSET_DELTA_AT, 10);
    fix_crc(&mut offset_range_mismatch);
    cases.push((
        "lastOffsetDelta disagrees with the records",
        offset_range_mismatch,
        &[CORRUPT_MESSAGE, INVALID_RECORD],
    ));

    let mut old_magic = good.clone();
    old_magic[BATCH_MAGIC_AT] = 1;
    cases.push((
        "magic 1 in Produce v3",
        old_magic,
        &[
            CORRUPT_MESSAGE,
            INVALID_RECORD,
            UNSUPPORTED_FOR_MESSAGE_FORMAT,
        ],
    ));

    cases.push((
        "truncated batch header",
        good[..30].to_vec(),
        &[CORRUPT_MESSAGE, INVALID_RECORD],
    ));

    let mut failures = Vec::new();
    for (index, (what, batch, accepted_errors)) in cases.iter().enumerate() {
        let correlation_id = 10 + index as i32;
        // A refused batch gets an error answer; the connection stays usable (reconnect if
        // the broker chose to close it, and report that).
        let request = produce_request_v3(correlation_id, topic, 0, -1, batch);
        write_lenient(&mut stream, &frame(&request));
        match read_frame(&mut stream) {
            Ok(payload) => {
                let (error_code, base_offset) = parse_produce_response_v3(&payload, correlation_id);
                eprintln!("{what}: error code {error_code}");
                if !accepted_errors.contains(&error_code) {
                    failures.push(format!(
                        "{what}: error code {error_code} (base offset {base_offset}), \
                         expected one of {accepted_errors:?}"
                    ));
                }
            }
            Err(error) => {
                failures.push(format!("{what}: no Produce response ({error})"));
                stream = connect(&bootstrap);
            }
        }
        let (low, high) = watermarks(&bootstrap, topic, 0);
        if (low, high) != (0, 3) {
            failures.push(format!("{what}: watermarks became ({low}, {high})"));
        }
    }
    broker.assert_alive();
    assert!(
        failures.is_empty(),
        "damaged batches:\n{}",
        failures.join("\n")
    );

    // Consumers see only the valid batch.
    let consumed = consume_all(&bootstrap, topic, 1, 3, Duration::from_secs(30));
    let values: Vec<Option<Vec<u8>>> = consumed.into_iter().map(|r| r.value).collect();
    assert_eq!(
        values,
        vec![
            Some(b"v0".to_vec()),
            Some(b"v1".to_vec()),
            Some(b"v2".to_vec())
        ]
    );
    assert_round_trip(&bootstrap);
}

#[test]
fn produce_with_acks_zero_gets_no_response() {
    let broker = Broker::start(1, &[]);
    let bootstrap = broker.bootstrap();
    let topic = "raw-acks-zero";
    create_topic(&bootstrap, topic, 1);
    let batch = record_batch_v2(&[(b"k", b"fire-and-forget")], now_ms());

    let mut stream = connect(&bootstrap);
    write_lenient(
        &mut stream,
        &frame(&produce_request_v3(1, topic, 0, 0, &batch)),
    );
    write_lenient(
        &mut stream,
        &frame(&header_v1(API_VERSIONS_KEY, 0, 2, "after-acks-zero")),
    );
    // The first answer on the connection must be the ApiVersions one.
    let payload = read_frame(&mut stream).unwrap_or_else(|error| panic!("no answer: {error}"));
    let correlation_id = i32::from_be_bytes(payload[..4].try_into().expect("4 bytes"));
    assert_eq!(
        correlation_id, 2,
        "acks=0 Produce was answered (or answers are out of order)"
    );
    assert_eq!(parse_api_versions_v0(&payload[4..]).0, 0);
    common::poll_until(Duration::from_secs(10), "acks=0 record stored", || {
        (watermarks(&bootstrap, topic, 0) == (0, 1)).then_some(())
    });
}

#[test]
fn produce_to_missing_partition_or_topic_gets_unknown_topic_or_partition() {
    const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    let broker = Broker::start(2, &["--auto-create-topics", "false"]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "two-partitions", 2);
    let batch = record_batch_v2(&[(b"k", b"v")], now_ms());
    let mut stream = connect(&bootstrap);

    for (correlation_id, topic, partition) in [
        (1, "two-partitions", 2),
        (2, "two-partitions", -1),
        (3, "no-such-topic", 0),
    ] {
        let request = produce_request_v3(correlation_id, topic, partition, -1, &batch);
        write_lenient(&mut stream, &frame(&request));
        let payload = read_frame(&mut stream)
            .unwrap_or_else(|error| panic!("no answer for {topic}/{partition}: {error}"));
        let (error_code, _) = parse_produce_response_v3(&payload, correlation_id);
        assert_eq!(
            error_code, UNKNOWN_TOPIC_OR_PARTITION,
            "produce to {topic}/{partition}"
        );
    }
    assert_eq!(watermarks(&bootstrap, "two-partitions", 0), (0, 0));
    assert_eq!(watermarks(&bootstrap, "two-partitions", 1), (0, 0));
    assert!(
        !common::all_topic_names(&bootstrap).contains(&"no-such-topic".to_string()),
        "Produce auto-created a topic"
    );
}

#[test]
fn idempotent_retry_is_deduplicated_and_sequence_gaps_refused() {
    const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
    const DUPLICATE_SEQUENCE_NUMBER: i16 = 46;
    let broker = Broker::start(1, &[]);
    let bootstrap = broker.bootstrap();
    let topic = "raw-idempotent";
    create_topic(&bootstrap, topic, 1);
    let mut stream = connect(&bootstrap);
    let (error_code, producer_id, epoch) = init_producer_id_v0(&mut stream, 1);
    assert_eq!(error_code, 0, "InitProducerId");
    assert!(producer_id >= 0, "producer id {producer_id}");

    let records: [(&[u8], &[u8]); 3] = [(b"k", b"a"), (b"k", b"b"), (b"k", b"c")];
    let first = idempotent_record_batch_v2(&records, now_ms(), producer_id, epoch, 0);
    assert_eq!(
        produce(&mut stream, 2, topic, &first),
        (0, 0),
        "first batch"
    );

    // The same batch again, as a producer retrying after a lost response: acknowledged
    // with its original offset (or DUPLICATE_SEQUENCE_NUMBER), and not appended again.
    let (error_code, base_offset) = produce(&mut stream, 3, topic, &first);
    assert!(
        (error_code == 0 && base_offset == 0) || error_code == DUPLICATE_SEQUENCE_NUMBER,
        "retried batch answered with error {error_code}, base offset {base_offset}"
    );
    assert_eq!(
        watermarks(&bootstrap, topic, 0),
        (0, 3),
        "retry appended twice"
    );

    // The next batch in sequence is appended.
    let second = idempotent_record_batch_v2(&records, now_ms(), producer_id, epoch, 3);
    assert_eq!(
        produce(&mut stream, 4, topic, &second),
        (0, 3),
        "next batch"
    );

    // A gap in the sequence is refused.
    let gap = idempotent_record_batch_v2(&records, now_ms(), producer_id, epoch, 100);
    let (error_code, _) = produce(&mut stream, 5, topic, &gap);
    assert_eq!(error_code, OUT_OF_ORDER_SEQUENCE_NUMBER, "sequence gap");
    assert_eq!(watermarks(&bootstrap, topic, 0), (0, 6));
}
