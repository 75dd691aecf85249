use super::*;

const TOPIC_ID: Uuid = Uuid::from_u128(0x0011_2233_4455_6677_8899_aabb_ccdd_eeff);

/// OffsetCommit v10 as a client writes it, byte by byte from the schema.
fn commit_request_bytes() -> Vec<u8> {
    let mut bytes = vec![3, b'g', b'r']; // group id "gr"
    bytes.extend_from_slice(&7i32.to_be_bytes()); // member epoch
    bytes.extend_from_slice(&[2, b'm']); // member id "m"
    bytes.push(0); // group instance id: null
    bytes.push(2); // one topic
    bytes.extend_from_slice(TOPIC_ID.as_bytes());
    bytes.push(2); // one partition
    bytes.extend_from_slice(&3i32.to_be_bytes());
    bytes.extend_from_slice(&42i64.to_be_bytes());
    bytes.extend_from_slice(&(-1i32).to_be_bytes());
    bytes.push(1); // metadata ""
    bytes.extend_from_slice(&[1, 0, 1, b'x']); // partition tags: one unknown tag 0, 1 byte
    bytes.push(0); // topic tags
    bytes.push(0); // request tags
    bytes
}

fn commit_request() -> OffsetCommitRequestV10 {
    OffsetCommitRequestV10 {
        group_id: "gr".into(),
        generation_id_or_member_epoch: 7,
        member_id: "m".into(),
        group_instance_id: None,
        topics: vec![CommitTopicV10 {
            topic_id: TOPIC_ID,
            partitions: vec![CommitPartitionV10 {
                partition_index: 3,
                committed_offset: 42,
                committed_leader_epoch: -1,
                committed_metadata: Some(String::new()),
            }],
        }],
    }
}

#[test]
fn offset_commit_request_decodes_hand_built_bytes_and_skips_unknown_tags() {
    let decoded = OffsetCommitRequestV10::decode(&mut Bytes::from(commit_request_bytes())).unwrap();
    assert_eq!(decoded, commit_request());
}

#[test]
fn offset_commit_request_round_trips() {
    let request = OffsetCommitRequestV10 {
        group_instance_id: Some("static-1".into()),
        ..commit_request()
    };
    let mut out = BytesMut::new();
    request.encode(&mut out);
    let mut body = out.freeze();
    assert_eq!(OffsetCommitRequestV10::decode(&mut body).unwrap(), request);
    assert!(body.is_empty());
}

#[test]
fn offset_fetch_request_decodes_hand_built_bytes() {
    let mut bytes = vec![3]; // two groups
    bytes.extend_from_slice(&[2, b'a', 2, b'm']); // group "a", member "m"
    bytes.extend_from_slice(&5i32.to_be_bytes());
    bytes.push(2); // one topic
    bytes.extend_from_slice(TOPIC_ID.as_bytes());
    bytes.push(3); // two partitions
    bytes.extend_from_slice(&0i32.to_be_bytes());
    bytes.extend_from_slice(&1i32.to_be_bytes());
    bytes.extend_from_slice(&[0, 0]); // topic tags, group tags
    bytes.extend_from_slice(&[2, b'b', 0]); // group "b", member null
    bytes.extend_from_slice(&(-1i32).to_be_bytes());
    bytes.extend_from_slice(&[0, 0]); // topics null (all), group tags
    bytes.extend_from_slice(&[1, 0]); // require stable, request tags
    let decoded = OffsetFetchRequestV10::decode(&mut Bytes::from(bytes)).unwrap();
    let expected = OffsetFetchRequestV10 {
        groups: vec![
            FetchGroupV10 {
                group_id: "a".into(),
                member_id: Some("m".into()),
                member_epoch: 5,
                topics: Some(vec![FetchTopicV10 {
                    topic_id: TOPIC_ID,
                    partition_indexes: vec![0, 1],
                }]),
            },
            FetchGroupV10 {
                group_id: "b".into(),
                member_id: None,
                member_epoch: -1,
                topics: None,
            },
        ],
        require_stable: true,
    };
    assert_eq!(decoded, expected);
    let mut out = BytesMut::new();
    expected.encode(&mut out);
    assert_eq!(
        OffsetFetchRequestV10::decode(&mut out.freeze()).unwrap(),
        expected
    );
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let commit = commit_request_bytes();
    for end in 0..commit.len() {
        let mut body = Bytes::copy_from_slice(&commit[..end]);
        assert!(
            OffsetCommitRequestV10::decode(&mut body).is_err(),
            "cut at {end}"
        );
    }
    let mut fetch = BytesMut::new();
    OffsetFetchRequestV10 {
        groups: vec![FetchGroupV10 {
            group_id: "g".into(),
            member_id: None,
            member_epoch: -1,
            topics: Some(vec![FetchTopicV10 {
                topic_id: TOPIC_ID,
                partition_indexes: vec![0],
            }]),
        }],
        require_stable: false,
    }
    .encode(&mut fetch);
    for end in 0..fetch.len() {
        let mut body = Bytes::copy_from_slice(&fetch[..end]);
        assert!(
            OffsetFetchRequestV10::decode(&mut body).is_err(),
            "cut at {end}"
        );
    }
}

#[test]
fn a_hostile_array_length_is_an_error_before_any_allocation() {
    // Groups array of u32::MAX - 1 entries in a 6-byte body.
    let mut body = Bytes::from_static(&[0xfe, 0xff, 0xff, 0xff, 0x0f, 0]);
    assert!(matches!(
        OffsetFetchRequestV10::decode(&mut body),
        Err(WireError::LengthExceedsBody {
            field: "groups",
            ..
        })
    ));
    let mut body = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    assert_eq!(
        OffsetFetchRequestV10::decode(&mut body),
        Err(WireError::VarintTooLong)
    );
}

#[test]
fn offset_commit_response_encodes_topic_ids_without_names() {
    let response = OffsetCommitResponseV10 {
        throttle_time_ms: 0,
        topics: vec![CommitResponseTopicV10 {
            topic_id: TOPIC_ID,
            partitions: vec![CommitResponsePartitionV10 {
                partition_index: 2,
                error_code: 100,
            }],
        }],
    };
    let mut out = BytesMut::new();
    response.encode(&mut out);
    let mut expected = 0i32.to_be_bytes().to_vec();
    expected.push(2);
    expected.extend_from_slice(TOPIC_ID.as_bytes());
    expected.push(2);
    expected.extend_from_slice(&2i32.to_be_bytes());
    expected.extend_from_slice(&100i16.to_be_bytes());
    expected.extend_from_slice(&[0, 0, 0]);
    assert_eq!(&out[..], &expected[..]);
    assert_eq!(
        OffsetCommitResponseV10::decode(&mut out.freeze()).unwrap(),
        response
    );
}

#[test]
fn offset_fetch_response_encodes_topic_ids_without_names() {
    let response = OffsetFetchResponseV10 {
        throttle_time_ms: 0,
        groups: vec![FetchResponseGroupV10 {
            group_id: "g".into(),
            topics: vec![FetchResponseTopicV10 {
                topic_id: TOPIC_ID,
                partitions: vec![FetchResponsePartitionV10 {
                    partition_index: 1,
                    committed_offset: 9,
                    committed_leader_epoch: 4,
                    metadata: None,
                    error_code: 0,
                }],
            }],
            error_code: 0,
        }],
    };
    let mut out = BytesMut::new();
    response.encode(&mut out);
    let mut expected = 0i32.to_be_bytes().to_vec();
    expected.extend_from_slice(&[2, 2, b'g', 2]);
    expected.extend_from_slice(TOPIC_ID.as_bytes());
    expected.push(2);
    expected.extend_from_slice(&1i32.to_be_bytes());
    expected.extend_from_slice(&9i64.to_be_bytes());
    expected.extend_from_slice(&4i32.to_be_bytes());
    expected.push(0); // metadata null
    expected.extend_from_slice(&0i16.to_be_bytes());
    expected.extend_from_slice(&[0, 0]); // partition, topic tags
    expected.extend_from_slice(&0i16.to_be_bytes()); // group error
    expected.extend_from_slice(&[0, 0]); // group, response tags
    assert_eq!(&out[..], &expected[..]);
    assert_eq!(
        OffsetFetchResponseV10::decode(&mut out.freeze()).unwrap(),
        response
    );
}
