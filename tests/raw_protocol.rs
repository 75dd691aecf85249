//! Well-formed requests written by hand, checking the exact bytes of the answers where
//! real clients are strict: ApiVersions (every client's first request), in-order answers
//! to pipelined requests, DescribeCluster, and the rack in Metadata.

mod common;

use common::wire::{
    api_versions_body_v3, assert_core_apis_listed, connect, frame, header_v1, header_v2,
    parse_api_versions_v0, parse_api_versions_v3, read_frame, write_lenient, Reader,
    API_VERSIONS_KEY, DESCRIBE_CLUSTER_KEY,
};
use common::Broker;

/// Metadata's API key.
const METADATA_KEY: i16 = 3;

#[test]
fn api_versions_v0_request_gets_exact_v0_answer() {
    let broker = Broker::start(1, &[]);
    let mut stream = connect(&broker.bootstrap());
    write_lenient(
        &mut stream,
        &frame(&header_v1(API_VERSIONS_KEY, 0, 9, "old-client")),
    );
    let payload = read_frame(&mut stream)
        .unwrap_or_else(|error| panic!("no answer to ApiVersions v0: {error}"));
    let correlation_id = i32::from_be_bytes(payload[..4].try_into().unwrap());
    assert_eq!(correlation_id, 9);
    let (error_code, ranges) = parse_api_versions_v0(&payload[4..]);
    assert_eq!(error_code, 0);
    assert_core_apis_listed(&ranges);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    // Kafka guarantees responses on one connection come back in request order.
    let broker = Broker::start(2, &[]);
    let mut stream = connect(&broker.bootstrap());
    let mut bytes = Vec::new();
    for correlation_id in 100..120 {
        let version = if correlation_id % 2 == 0 { 0 } else { 3 };
        let request = if version == 0 {
            header_v1(API_VERSIONS_KEY, 0, correlation_id, "pipeline")
        } else {
            let mut request = header_v2(API_VERSIONS_KEY, 3, correlation_id, "pipeline");
            request.extend(api_versions_body_v3());
            request
        };
        bytes.extend(frame(&request));
    }
    write_lenient(&mut stream, &bytes);
    for correlation_id in 100..120 {
        let payload = read_frame(&mut stream)
            .unwrap_or_else(|error| panic!("no answer for request {correlation_id}: {error}"));
        let answered = i32::from_be_bytes(payload[..4].try_into().unwrap());
        assert_eq!(answered, correlation_id, "responses out of order");
        if correlation_id % 2 == 0 {
            assert_eq!(parse_api_versions_v0(&payload[4..]).0, 0);
        } else {
            assert_eq!(parse_api_versions_v3(&payload[4..]).0, 0);
        }
    }
}

#[test]
fn describe_cluster_lists_this_broker() {
    let broker = Broker::start(2, &["--node-id", "0"]);
    let mut stream = connect(&broker.bootstrap());
    // DescribeCluster v0 (flexible): include_cluster_authorized_operations=false, no tags.
    let mut request = header_v2(DESCRIBE_CLUSTER_KEY, 0, 61, "describe");
    request.extend_from_slice(&[0, 0]);
    write_lenient(&mut stream, &frame(&request));
    let payload = read_frame(&mut stream)
        .unwrap_or_else(|error| panic!("no answer to DescribeCluster v0: {error}"));

    // Response header v1: correlation id and a tagged-field section.
    let mut reader = Reader::new(&payload);
    assert_eq!(reader.i32(), 61, "correlation id");
    reader.skip_tagged_fields();
    let _throttle_time_ms = reader.i32();
    let error_code = reader.i16();
    let error_message = reader.compact_nullable_string();
    assert_eq!(error_code, 0, "DescribeCluster error ({error_message:?})");
    let cluster_id = reader.compact_nullable_string();
    assert!(
        cluster_id.as_deref().is_some_and(|id| !id.is_empty()),
        "cluster id {cluster_id:?}"
    );
    let controller_id = reader.i32();
    assert_eq!(controller_id, 0, "controller id");
    let broker_count = reader
        .unsigned_varint()
        .checked_sub(1)
        .expect("non-null brokers");
    let mut brokers = Vec::new();
    for _ in 0..broker_count {
        let broker_id = reader.i32();
        let host = reader.compact_nullable_string();
        let port = reader.i32();
        let _rack = reader.compact_nullable_string();
        reader.skip_tagged_fields();
        brokers.push((broker_id, host, port));
    }
    assert_eq!(
        brokers,
        vec![(0, Some("127.0.0.1".to_string()), i32::from(broker.port()))]
    );
    // Not asked for: Kafka sends INT32_MIN, which strict clients rely on.
    let authorized_operations = reader.i32();
    assert_eq!(
        authorized_operations,
        i32::MIN,
        "cluster_authorized_operations"
    );
    reader.skip_tagged_fields();
    assert_eq!(reader.remaining(), 0, "trailing bytes: {payload:02x?}");
}

#[test]
fn describe_cluster_and_metadata_report_the_rack_given_with_rack() {
    let broker = Broker::start(1, &["--node-id", "3", "--rack", "rack-a"]);
    let expected = (
        3,
        Some("127.0.0.1".to_string()),
        i32::from(broker.port()),
        Some("rack-a".to_string()),
    );
    let mut stream = connect(&broker.bootstrap());

    let mut request = header_v2(DESCRIBE_CLUSTER_KEY, 0, 71, "rack");
    request.extend_from_slice(&[0, 0]);
    write_lenient(&mut stream, &frame(&request));
    let payload = read_frame(&mut stream)
        .unwrap_or_else(|error| panic!("no answer to DescribeCluster v0: {error}"));
    let mut reader = Reader::new(&payload);
    assert_eq!(reader.i32(), 71, "correlation id");
    reader.skip_tagged_fields();
    let _throttle_time_ms = reader.i32();
    assert_eq!(reader.i16(), 0, "error code");
    let _error_message = reader.compact_nullable_string();
    let _cluster_id = reader.compact_nullable_string();
    assert_eq!(reader.i32(), 3, "controller id");
    assert_eq!(read_brokers(&mut reader), vec![expected.clone()]);

    // Metadata v9 (flexible), no topics: brokers with their rack, controller.
    let mut request = header_v2(METADATA_KEY, 9, 72, "rack");
    // topics: empty compact array; allow auto-creation, no authorized ops; no tags.
    request.extend_from_slice(&[1, 1, 0, 0, 0]);
    write_lenient(&mut stream, &frame(&request));
    let payload =
        read_frame(&mut stream).unwrap_or_else(|error| panic!("no answer to Metadata v9: {error}"));
    let mut reader = Reader::new(&payload);
    assert_eq!(reader.i32(), 72, "correlation id");
    reader.skip_tagged_fields();
    let _throttle_time_ms = reader.i32();
    assert_eq!(read_brokers(&mut reader), vec![expected]);
    let _cluster_id = reader.compact_nullable_string();
    assert_eq!(reader.i32(), 3, "controller id");
}

/// A flexible brokers array: (id, host, port, rack) each.
fn read_brokers(reader: &mut Reader<'_>) -> Vec<(i32, Option<String>, i32, Option<String>)> {
    let count = reader
        .unsigned_varint()
        .checked_sub(1)
        .expect("non-null brokers");
    (0..count)
        .map(|_| {
            let broker_id = reader.i32();
            let host = reader.compact_nullable_string();
            let port = reader.i32();
            let rack = reader.compact_nullable_string();
            reader.skip_tagged_fields();
            (broker_id, host, port, rack)
        })
        .collect()
}
