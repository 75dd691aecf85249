//! Broken or hostile frames for the transaction APIs (bodies cut short, array lengths that
//! ask for absurd allocations, garbage, versions the broker does not advertise) close only
//! their own connection without an answer; the broker and a transaction running on another
//! connection carry on.

use kafka_protocol::messages::*;
use kafka_protocol::protocol::Encodable;

use crate::common::wire::{connect, frame, wait_for_close, write_lenient, Hangup};
use crate::common::Broker;
use crate::data::create_topic;
use crate::flows::{add_partitions_ok, begin, describe_one, end_txn_ok, text, wait_for_state};
use crate::{CORES, TXN_TIMEOUT_MS};

/// `u32::MAX` as an unsigned varint: the largest compact array or string length.
const HUGE_VARINT: [u8; 5] = [0xff, 0xff, 0xff, 0xff, 0x0f];

/// The request header `key` at `version` uses, then `body`.
fn request(key: ApiKey, version: i16, body: &[u8]) -> Vec<u8> {
    let mut payload = Vec::new();
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(text("hostile")))
        .encode(&mut payload, key.request_header_version(version))
        .expect("encode header");
    payload.extend_from_slice(body);
    payload
}

fn compact_string(value: &str) -> Vec<u8> {
    let mut bytes = vec![u8::try_from(value.len() + 1).expect("short string")];
    bytes.extend_from_slice(value.as_bytes());
    bytes
}

fn string(value: &str) -> Vec<u8> {
    let mut bytes = i16::try_from(value.len())
        .expect("short string")
        .to_be_bytes()
        .to_vec();
    bytes.extend_from_slice(value.as_bytes());
    bytes
}

/// `(what, frame payload)` for every hostile request.
fn hostile_requests() -> Vec<(&'static str, Vec<u8>)> {
    let producer = [1_000i64.to_be_bytes().as_slice(), &0i16.to_be_bytes()].concat();
    let mut cases = Vec::new();
    // InitProducerId v4: a transactional id announced as 99 bytes, 3 sent.
    cases.push((
        "InitProducerId v4 cut inside the transactional id",
        request(ApiKey::InitProducerId, 4, &[100, b'a', b'b', b'c']),
    ));
    // AddPartitionsToTxn v1: i32::MAX topics.
    let mut body = string("hostile");
    body.extend_from_slice(&producer);
    body.extend_from_slice(&i32::MAX.to_be_bytes());
    cases.push((
        "AddPartitionsToTxn v1 with i32::MAX topics",
        request(ApiKey::AddPartitionsToTxn, 1, &body),
    ));
    // AddPartitionsToTxn v3: u32::MAX - 1 topics (compact).
    let mut body = compact_string("hostile");
    body.extend_from_slice(&producer);
    body.extend_from_slice(&HUGE_VARINT);
    cases.push((
        "AddPartitionsToTxn v3 with a huge compact topic array",
        request(ApiKey::AddPartitionsToTxn, 3, &body),
    ));
    // AddPartitionsToTxn v4: a huge batch of transactions.
    cases.push((
        "AddPartitionsToTxn v4 with a huge transaction array",
        request(ApiKey::AddPartitionsToTxn, 4, &HUGE_VARINT),
    ));
    // AddOffsetsToTxn v0: stops after the producer id.
    let mut body = string("hostile");
    body.extend_from_slice(&1_000i64.to_be_bytes());
    cases.push((
        "AddOffsetsToTxn v0 cut after the producer id",
        request(ApiKey::AddOffsetsToTxn, 0, &body),
    ));
    // EndTxn v2: garbage (a transactional id of length -1, which is not nullable).
    cases.push(("EndTxn v2 garbage", request(ApiKey::EndTxn, 2, &[0xff; 64])));
    // WriteTxnMarkers v1: a huge marker array.
    cases.push((
        "WriteTxnMarkers v1 with a huge marker array",
        request(ApiKey::WriteTxnMarkers, 1, &HUGE_VARINT),
    ));
    // DescribeTransactions v0: two ids announced, one sent.
    let mut body = vec![3];
    body.extend_from_slice(&compact_string("only-one"));
    cases.push((
        "DescribeTransactions v0 missing an id",
        request(ApiKey::DescribeTransactions, 0, &body),
    ));
    // ListTransactions v1: a huge state filter array.
    cases.push((
        "ListTransactions v1 with a huge state filter array",
        request(ApiKey::ListTransactions, 1, &HUGE_VARINT),
    ));
    // Versions the broker does not advertise (KIP-890 part 2's EndTxn v5, the v0
    // WriteTxnMarkers, AddPartitionsToTxn v5, DescribeTransactions v1): the connection is
    // closed, as Kafka does for an unsupported version of any API but ApiVersions.
    for (key, version, what) in [
        (ApiKey::EndTxn, 5, "EndTxn v5 (not advertised)"),
        (
            ApiKey::WriteTxnMarkers,
            0,
            "WriteTxnMarkers v0 (not advertised)",
        ),
        (
            ApiKey::AddPartitionsToTxn,
            5,
            "AddPartitionsToTxn v5 (not advertised)",
        ),
        (
            ApiKey::DescribeTransactions,
            1,
            "DescribeTransactions v1 (not advertised)",
        ),
        (
            ApiKey::ListTransactions,
            2,
            "ListTransactions v2 (not advertised)",
        ),
        (
            ApiKey::InitProducerId,
            6,
            "InitProducerId v6 (not advertised)",
        ),
    ] {
        cases.push((what, request(key, version, &[0; 16])));
    }
    cases
}

#[test]
fn broken_transaction_frames_close_only_their_connection() {
    let mut broker = Broker::start(CORES, &[]);
    let mut stream = connect(&broker.bootstrap());
    create_topic(&mut stream, "survivor", 2);
    let producer = begin(
        &mut stream,
        "survivor",
        TXN_TIMEOUT_MS,
        &[("survivor", &[0])],
    );

    for (what, payload) in hostile_requests() {
        let mut broken = connect(&broker.bootstrap());
        write_lenient(&mut broken, &frame(&payload));
        let hangup = wait_for_close(&mut broken);
        assert_eq!(
            hangup,
            Hangup::Closed {
                bytes_before_close: 0
            },
            "{what}: expected the connection closed without an answer"
        );
        broker.assert_alive();
        let described = describe_one(&mut stream, "survivor");
        assert_eq!(
            (described.state.as_str(), described.producer),
            ("Ongoing", producer),
            "the running transaction after: {what}"
        );
    }
    add_partitions_ok(&mut stream, 3, "survivor", producer, &[("survivor", &[1])]);
    end_txn_ok(&mut stream, 4, "survivor", producer, true);
    wait_for_state(&mut stream, "survivor", "CompleteCommit");
}
