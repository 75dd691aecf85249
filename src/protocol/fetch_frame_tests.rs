//! The chunked frame is byte for byte what the codec encodes.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, NodeEndpoint, PartitionData,
};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchResponse, ProducerId, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::{encode_fetch_frame, ZERO_COPY_MIN_BYTES};
use crate::protocol::response::{encode_response, ResponseBody};

fn codec_frame(version: i16, correlation_id: i32, response: &FetchResponse) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_response(
        &mut out,
        ApiKey::Fetch,
        version,
        correlation_id,
        &ResponseBody::Fetch(response.clone()),
    )
    .expect("the codec encodes it");
    out.to_vec()
}

fn joined(chunks: &[Bytes]) -> Vec<u8> {
    chunks
        .iter()
        .flat_map(|chunk| chunk.iter().copied())
        .collect()
}

/// Records of `len` bytes with a recognisable pattern.
fn records(len: usize, seed: u8) -> Bytes {
    Bytes::from(
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect::<Vec<u8>>(),
    )
}

fn partition(version: i16, index: i32, records: Option<Bytes>) -> PartitionData {
    let data = PartitionData::default()
        .with_partition_index(index)
        .with_error_code(if index % 3 == 2 { 6 } else { 0 })
        .with_high_watermark(1_000 + i64::from(index))
        .with_last_stable_offset(900 + i64::from(index))
        .with_records(records);
    let data = if version >= 5 {
        data.with_log_start_offset(i64::from(index) * 7)
    } else {
        data
    };
    let data = if version >= 11 && index == 1 {
        data.with_preferred_read_replica(BrokerId(3))
    } else {
        data
    };
    match index % 4 {
        0 => data.with_aborted_transactions(None),
        1 => data.with_aborted_transactions(Some(vec![
            AbortedTransaction::default()
                .with_producer_id(ProducerId(77))
                .with_first_offset(12),
            AbortedTransaction::default()
                .with_producer_id(ProducerId(78))
                .with_first_offset(40),
        ])),
        _ => data,
    }
}

/// Two topics: small and large records, none, empty, and every optional field.
fn response(version: i16) -> FetchResponse {
    let topic = |name: &str, id: u128, partitions: Vec<PartitionData>| {
        let topic = FetchableTopicResponse::default().with_partitions(partitions);
        if version >= 13 {
            topic.with_topic_id(uuid::Uuid::from_u128(id))
        } else {
            topic.with_topic(TopicName(StrBytes::from_string(name.to_string())))
        }
    };
    let response = FetchResponse::default()
        .with_throttle_time_ms(5)
        .with_responses(vec![
            topic(
                "orders",
                1,
                vec![
                    partition(version, 0, Some(records(ZERO_COPY_MIN_BYTES, 1))),
                    partition(version, 1, Some(records(100, 2))),
                    partition(version, 2, None),
                    partition(version, 3, Some(Bytes::new())),
                ],
            ),
            topic(
                "a-much-longer-topic-name-for-the-varint",
                2,
                (0..150)
                    .map(|index| {
                        let len = if index % 10 == 0 { 200_000 } else { 0 };
                        partition(version, index, Some(records(len, index as u8)))
                    })
                    .collect(),
            ),
        ]);
    if version >= 7 {
        response.with_error_code(0).with_session_id(123_456)
    } else {
        response
    }
}

#[test]
fn every_version_matches_the_codec_byte_for_byte() {
    for version in 4..=18 {
        let response = response(version);
        let chunks = encode_fetch_frame(version, 42, &response)
            .unwrap_or_else(|| panic!("v{version} falls back"));
        assert_eq!(
            joined(&chunks),
            codec_frame(version, 42, &response),
            "v{version}"
        );
    }
}

#[test]
fn large_records_are_sent_from_where_they_are() {
    let large = records(ZERO_COPY_MIN_BYTES * 4, 9);
    let response = FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
        .with_topic(TopicName(StrBytes::from_static_str("t")))
        .with_partitions(vec![partition(12, 0, Some(large.clone()))])]);
    let chunks = encode_fetch_frame(12, 1, &response).expect("encodable");
    assert!(
        chunks.iter().any(|chunk| chunk.as_ptr() == large.as_ptr()),
        "the records were copied"
    );
}

#[test]
fn empty_and_error_only_responses_match() {
    for version in 4..=18 {
        let empty = FetchResponse::default();
        let chunks = encode_fetch_frame(version, 7, &empty).expect("encodable");
        assert_eq!(
            joined(&chunks),
            codec_frame(version, 7, &empty),
            "v{version}"
        );
        if version >= 7 {
            let failed = FetchResponse::default()
                .with_error_code(70)
                .with_session_id(0);
            let chunks = encode_fetch_frame(version, 8, &failed).expect("encodable");
            assert_eq!(
                joined(&chunks),
                codec_frame(version, 8, &failed),
                "v{version}"
            );
        }
    }
}

#[test]
fn fields_it_does_not_write_fall_back_to_the_codec() {
    let diverging =
        FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
            .with_topic_id(uuid::Uuid::from_u128(5))
            .with_partitions(vec![partition(13, 0, None).with_diverging_epoch(
                EpochEndOffset::default().with_epoch(3).with_end_offset(10),
            )])]);
    assert!(encode_fetch_frame(13, 1, &diverging).is_none());
    let endpoints = FetchResponse::default().with_node_endpoints(vec![NodeEndpoint::default()]);
    assert!(encode_fetch_frame(16, 1, &endpoints).is_none());
    let session_before_v7 = FetchResponse::default().with_session_id(5);
    assert!(encode_fetch_frame(6, 1, &session_before_v7).is_none());
    let unsupported = FetchResponse::default();
    assert!(encode_fetch_frame(3, 1, &unsupported).is_none());
    assert!(encode_fetch_frame(19, 1, &unsupported).is_none());
}
