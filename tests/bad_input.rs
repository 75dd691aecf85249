//! Hostile or broken bytes on a raw TCP connection: the broker refuses them promptly (no
//! waiting for a 2 GB body, no hung connection), answers ApiVersions version negotiation
//! the way the Java broker does, and keeps serving real clients afterwards.

mod common;

use std::net::Shutdown;
use std::time::Duration;

use common::wire::{
    api_versions_body_v3, assert_core_apis_listed, connect, find_range, frame, header_v1,
    header_v2, parse_api_versions_v0, parse_api_versions_v3, read_frame, wait_for_close,
    write_lenient, Hangup, API_VERSIONS_KEY, UNSUPPORTED_VERSION,
};
use common::{
    assert_round_trip, consume_all, create_topic, producer, record, send,
    wait_for_successful_deliveries, Broker,
};

const MAX_REQUEST_BYTES: &str = "1048576";

fn assert_closed(hangup: Hangup, what: &str) {
    assert!(
        matches!(hangup, Hangup::Closed { .. }),
        "{what}: expected the broker to close the connection, got {hangup:?}"
    );
}

/// The broker served the connection: it either answered (and maybe closed) or closed.
/// Silence with the connection open is the failure.
fn assert_not_hung(hangup: Hangup, what: &str) {
    assert!(
        matches!(
            hangup,
            Hangup::Closed { .. }
                | Hangup::StillOpen {
                    bytes_received: 1..
                }
        ),
        "{what}: connection neither answered nor closed, got {hangup:?}"
    );
}

/// A deterministic pseudo-random byte string (xorshift), for garbage payloads.
fn garbage(length: usize, mut seed: u64) -> Vec<u8> {
    (0..length)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

#[test]
fn garbage_bytes_close_the_connection_and_broker_keeps_serving() {
    let mut broker = Broker::start(1, &["--max-request-bytes", MAX_REQUEST_BYTES]);
    let bootstrap = broker.bootstrap();

    // A negative length prefix (0xdeadbeef) followed by noise.
    let mut stream = connect(&bootstrap);
    let mut bytes = vec![0xde, 0xad, 0xbe, 0xef];
    bytes.extend(garbage(256, 1));
    write_lenient(&mut stream, &bytes);
    assert_closed(wait_for_close(&mut stream), "negative length prefix");

    // A plausible length with a nonsense header (api key 0x7f3a, version -3).
    let mut stream = connect(&bootstrap);
    let mut payload = vec![0x7f, 0x3a, 0xff, 0xfd];
    payload.extend(garbage(60, 2));
    write_lenient(&mut stream, &frame(&payload));
    assert_not_hung(wait_for_close(&mut stream), "framed garbage");

    // Someone points a web browser at the Kafka port: "GET " is a 1.2 GB length prefix.
    let mut stream = connect(&bootstrap);
    write_lenient(
        &mut stream,
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: curl\r\n\r\n",
    );
    assert_closed(wait_for_close(&mut stream), "HTTP request");

    // A zero-length frame has no room for a header.
    let mut stream = connect(&bootstrap);
    write_lenient(&mut stream, &[0, 0, 0, 0]);
    assert_not_hung(wait_for_close(&mut stream), "zero-length frame");

    broker.assert_alive();
    assert_round_trip(&bootstrap);
}

#[test]
fn two_gigabyte_length_prefix_is_refused_at_once() {
    // Default --max-request-bytes: the default bound must also refuse 2 GB.
    let mut broker = Broker::start(1, &[]);
    let bootstrap = broker.bootstrap();
    let mut stream = connect(&bootstrap);
    let mut bytes = i32::MAX.to_be_bytes().to_vec();
    bytes.extend(header_v1(0, 9, 1, "big"));
    write_lenient(&mut stream, &bytes);
    assert_closed(wait_for_close(&mut stream), "2 GB length prefix");
    broker.assert_alive();
    assert_round_trip(&bootstrap);
}

#[test]
fn frame_larger_than_max_request_bytes_is_refused() {
    let mut broker = Broker::start(1, &["--max-request-bytes", MAX_REQUEST_BYTES]);
    let bootstrap = broker.bootstrap();
    let mut stream = connect(&bootstrap);
    // Announce 2 MiB, a well-formed Produce header, then start sending the body. The broker
    // must not wait for the rest.
    let announced: i32 = 2 * 1024 * 1024;
    let mut bytes = announced.to_be_bytes().to_vec();
    bytes.extend(header_v1(0, 7, 1, "too-big"));
    bytes.extend(garbage(64 * 1024, 3));
    write_lenient(&mut stream, &bytes);
    assert_closed(
        wait_for_close(&mut stream),
        "frame over --max-request-bytes",
    );
    broker.assert_alive();
    assert_round_trip(&bootstrap);
}

#[test]
fn request_just_under_max_request_bytes_is_accepted() {
    // The limit is on the frame, not on some smaller internal buffer: a 900 KiB record in
    // a Produce request under 1 MiB is stored and read back whole.
    let broker = Broker::start(1, &["--max-request-bytes", MAX_REQUEST_BYTES]);
    let bootstrap = broker.bootstrap();
    let topic = "under-the-limit";
    create_topic(&bootstrap, topic, 1);
    let value = garbage(900 * 1024, 4);
    let producer = producer(&bootstrap, &[("message.max.bytes", "1000000")]);
    send(&producer, record(topic, 0, b"big", &value).partition(0));
    let placed = wait_for_successful_deliveries(&producer, 1, Duration::from_secs(30));
    assert_eq!(placed, vec![(0, 0)]);
    let records = consume_all(&bootstrap, topic, 1, 1, Duration::from_secs(30));
    assert_eq!(records.len(), 1);
    assert!(
        records[0].value.as_deref() == Some(value.as_slice()),
        "900 KiB record damaged"
    );
}

#[test]
fn truncated_frame_then_close_leaves_broker_serving() {
    let mut broker = Broker::start(2, &["--max-request-bytes", MAX_REQUEST_BYTES]);
    let bootstrap = broker.bootstrap();
    for attempt in 0..20 {
        let mut stream = connect(&bootstrap);
        // Announce 100 bytes, send a valid ApiVersions header and a few more, then leave.
        let mut bytes = 100i32.to_be_bytes().to_vec();
        bytes.extend(header_v1(API_VERSIONS_KEY, 0, attempt, "truncated"));
        bytes.extend_from_slice(&[1, 2, 3]);
        // Also a connection that dies inside the length prefix itself.
        if attempt % 2 == 1 {
            bytes.truncate(2);
        }
        write_lenient(&mut stream, &bytes);
        let _ = stream.shutdown(Shutdown::Both);
    }
    broker.assert_alive();
    assert_round_trip(&bootstrap);
}

#[test]
fn unknown_api_key_is_answered_or_closed_and_broker_keeps_serving() {
    let mut broker = Broker::start(1, &[]);
    let bootstrap = broker.bootstrap();
    let mut stream = connect(&bootstrap);
    write_lenient(&mut stream, &frame(&header_v1(9999, 0, 77, "unknown-api")));
    let outcome = read_frame(&mut stream);
    if let Ok(payload) = &outcome {
        // If the broker answers rather than closing, the answer must be for this request.
        assert!(payload.len() >= 4, "response too short: {payload:02x?}");
        let correlation_id = i32::from_be_bytes(payload[..4].try_into().unwrap());
        assert_eq!(
            correlation_id, 77,
            "answer to unknown api has wrong correlation id"
        );
    } else {
        // Closed: fine, as long as it was closed rather than left hanging.
        let text = outcome.unwrap_err();
        assert!(
            !text.contains("TimedOut") && !text.contains("WouldBlock"),
            "unknown api key: no answer and connection left open ({text})"
        );
    }
    broker.assert_alive();
    assert_round_trip(&bootstrap);
}

#[test]
fn api_versions_with_unknown_version_gets_v0_unsupported_version_answer() {
    let mut broker = Broker::start(1, &[]);
    let bootstrap = broker.bootstrap();
    let mut stream = connect(&bootstrap);

    // What a client newer than the broker sends: ApiVersions v127 with a flexible header.
    let mut request = header_v2(API_VERSIONS_KEY, 127, 4242, "future-client");
    request.extend(api_versions_body_v3());
    write_lenient(&mut stream, &frame(&request));
    let payload = read_frame(&mut stream)
        .unwrap_or_else(|error| panic!("no answer to ApiVersions v127: {error}"));
    // Response header v0 (ApiVersions responses never use the flexible header).
    assert!(payload.len() >= 4, "response too short: {payload:02x?}");
    let correlation_id = i32::from_be_bytes(payload[..4].try_into().unwrap());
    assert_eq!(correlation_id, 4242);
    let (error_code, ranges) = parse_api_versions_v0(&payload[4..]);
    assert_eq!(
        error_code, UNSUPPORTED_VERSION,
        "ApiVersions v127 error code, response bytes {payload:02x?}"
    );
    assert!(
        !ranges.is_empty(),
        "UNSUPPORTED_VERSION answer must list the supported apis"
    );
    assert_core_apis_listed(&ranges);

    // The client then retries on the same connection with the highest version offered.
    let (_, _, max_version) = find_range(&ranges, API_VERSIONS_KEY).unwrap();
    let retry_version = max_version.min(3);
    let mut request = header_v2(API_VERSIONS_KEY, retry_version, 4243, "future-client");
    request.extend(api_versions_body_v3());
    write_lenient(&mut stream, &frame(&request));
    let payload = read_frame(&mut stream)
        .unwrap_or_else(|error| panic!("no answer to the ApiVersions retry: {error}"));
    let correlation_id = i32::from_be_bytes(payload[..4].try_into().unwrap());
    assert_eq!(correlation_id, 4243);
    let (error_code, retry_ranges, _tags) = parse_api_versions_v3(&payload[4..]);
    assert_eq!(error_code, 0, "ApiVersions v{retry_version} error code");
    assert_eq!(
        retry_ranges, ranges,
        "v0 error answer and v3 answer list different apis"
    );

    broker.assert_alive();
    assert_round_trip(&bootstrap);
}
