//! `__transaction_state` codec: exact Kafka bytes, round trips, v1 reading,
//! and garbage that must fail without panicking.

use super::*;
use proptest::prelude::*;

fn ongoing() -> TransactionMetadata {
    TransactionMetadata {
        transactional_id: "payments-tx".into(),
        producer_id: 4_000,
        last_producer_id: NO_PRODUCER_ID,
        producer_epoch: 3,
        last_producer_epoch: NO_PRODUCER_EPOCH,
        timeout_ms: 60_000,
        state: TransactionState::Ongoing,
        partitions: [("orders", 0), ("orders", 2), ("ünï", 1)]
            .into_iter()
            .map(|(topic, partition)| (topic.to_string(), partition))
            .collect(),
        start_timestamp_ms: 1_700_000_000_000,
        last_update_timestamp_ms: 1_700_000_000_500,
    }
}

fn empty() -> TransactionMetadata {
    TransactionMetadata {
        state: TransactionState::Empty,
        partitions: BTreeSet::new(),
        start_timestamp_ms: -1,
        ..ongoing()
    }
}

/// A v1 (flexible) value as Kafka 4.0 writes it, with extra tagged fields.
fn flexible_value(previous_producer_id: Option<i64>, previous_size: usize) -> Vec<u8> {
    let mut out = vec![0, 1];
    out.extend_from_slice(&4_000i64.to_be_bytes());
    out.extend_from_slice(&3i16.to_be_bytes());
    out.extend_from_slice(&60_000i32.to_be_bytes());
    out.push(2); // PrepareCommit
    out.push(2); // one topic (compact: count + 1)
    out.push(7); // "orders" (compact: length + 1)
    out.extend_from_slice(b"orders");
    out.push(3); // two partition ids
    out.extend_from_slice(&0i32.to_be_bytes());
    out.extend_from_slice(&2i32.to_be_bytes());
    out.extend_from_slice(&[1, 9, 2, 0xaa, 0xbb]); // one unknown tagged field in the struct
    out.extend_from_slice(&1_700_000_000_500i64.to_be_bytes());
    out.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
    let mut tagged: Vec<(u8, Vec<u8>)> = Vec::new();
    if let Some(previous) = previous_producer_id {
        tagged.push((0, previous.to_be_bytes()[..previous_size].to_vec()));
    }
    tagged.push((1, 77i64.to_be_bytes().to_vec())); // NextProducerId: ignored
    tagged.push((2, 2i16.to_be_bytes().to_vec())); // ClientTransactionVersion: ignored
    tagged.push((100, vec![1, 2, 3])); // unknown
    out.push(tagged.len() as u8);
    for (tag, data) in tagged {
        out.push(tag);
        out.push(data.len() as u8);
        out.extend_from_slice(&data);
    }
    out
}

#[test]
fn key_is_kafkas_v0_bytes() {
    assert_eq!(encode_key("txn"), vec![0, 0, 0, 3, b't', b'x', b'n']);
    assert_eq!(decode_key(&encode_key("txn-ü")), Ok("txn-ü".to_string()));
}

#[test]
fn value_is_kafkas_v0_bytes() {
    let metadata = TransactionMetadata {
        partitions: [("t".to_string(), 5)].into_iter().collect(),
        ..ongoing()
    };
    let mut expected = vec![0, 0];
    expected.extend_from_slice(&4_000i64.to_be_bytes());
    expected.extend_from_slice(&[0, 3]);
    expected.extend_from_slice(&60_000i32.to_be_bytes());
    expected.push(1);
    expected.extend_from_slice(&[0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 1, 0, 0, 0, 5]);
    expected.extend_from_slice(&1_700_000_000_500i64.to_be_bytes());
    expected.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
    assert_eq!(encode_value(&metadata), expected);

    // Empty is written with null partitions, as Kafka does.
    let bytes = encode_value(&empty());
    assert_eq!(&bytes[17..21], &(-1i32).to_be_bytes());
}

#[test]
fn values_round_trip_without_the_unstored_fields() {
    for state in TransactionState::ALL {
        let mut metadata = if state == TransactionState::Empty {
            empty()
        } else {
            TransactionMetadata { state, ..ongoing() }
        };
        let decoded = decode_value(&metadata.transactional_id, &encode_value(&metadata));
        assert_eq!(decoded, Ok(metadata.clone()), "{state:?}");
        // Not part of v0: replay forgets them, as Kafka does.
        metadata.last_producer_id = 17;
        metadata.last_producer_epoch = 2;
        let decoded = decode_value(&metadata.transactional_id, &encode_value(&metadata)).unwrap();
        assert_eq!(decoded.last_producer_id, NO_PRODUCER_ID);
        assert_eq!(decoded.last_producer_epoch, NO_PRODUCER_EPOCH);
    }
}

#[test]
fn records_and_tombstones_decode() {
    let metadata = ongoing();
    let key = encode_key(&metadata.transactional_id);
    assert_eq!(
        decode_record(&key, Some(&encode_value(&metadata))),
        Ok((metadata.transactional_id.clone(), Some(metadata.clone())))
    );
    assert_eq!(
        decode_record(&key, None),
        Ok((metadata.transactional_id, None))
    );
}

#[test]
fn flexible_values_decode_and_skip_unknown_tags() {
    let decoded = decode_value("payments-tx", &flexible_value(Some(3_999), 8)).unwrap();
    assert_eq!(
        decoded,
        TransactionMetadata {
            last_producer_id: 3_999,
            state: TransactionState::PrepareCommit,
            partitions: [("orders".to_string(), 0), ("orders".to_string(), 2)]
                .into_iter()
                .collect(),
            ..ongoing()
        }
    );
    let without = decode_value("payments-tx", &flexible_value(None, 8)).unwrap();
    assert_eq!(without.last_producer_id, NO_PRODUCER_ID);
    assert_eq!(
        decode_value("payments-tx", &flexible_value(Some(1), 4)),
        Err(DecodeError::InvalidTaggedField { tag: 0, size: 4 })
    );
    let bytes = flexible_value(Some(3_999), 8);
    for len in 0..bytes.len() {
        assert!(decode_value("x", &bytes[..len]).is_err(), "prefix of {len}");
    }
}

#[test]
fn partitions_of_an_empty_record_are_ignored() {
    let metadata = TransactionMetadata {
        state: TransactionState::Empty,
        ..ongoing()
    };
    // Encode as Ongoing (with partitions), then flip the status to Empty.
    let mut bytes = encode_value(&ongoing());
    bytes[16] = TransactionState::Empty.id() as u8;
    let decoded = decode_value(&metadata.transactional_id, &bytes).unwrap();
    assert!(decoded.partitions.is_empty());
    assert_eq!(decoded.state, TransactionState::Empty);
}

#[test]
fn every_truncation_is_an_error() {
    let key = encode_key("payments-tx");
    for len in 0..key.len() {
        assert!(decode_key(&key[..len]).is_err());
    }
    let value = encode_value(&ongoing());
    for len in 0..value.len() {
        assert!(decode_value("payments-tx", &value[..len]).is_err());
    }
}

#[test]
fn bad_versions_states_lengths_and_trailing_bytes_are_errors() {
    assert_eq!(
        decode_key(&[0, 1, 0, 0]),
        Err(DecodeError::UnknownKeyVersion(1))
    );
    assert_eq!(
        decode_key(&[0, 0, 0xff, 0xff]),
        Err(DecodeError::UnexpectedNull)
    );
    assert_eq!(
        decode_key(&[0, 0, 0xff, 0xfe]),
        Err(DecodeError::InvalidLength(-2))
    );
    assert_eq!(
        decode_key(&[0, 0, 0, 1, 0xff]),
        Err(DecodeError::InvalidUtf8)
    );
    assert_eq!(
        decode_key(&[0, 0, 0, 0, 9]),
        Err(DecodeError::TrailingBytes(1))
    );
    assert!(matches!(
        decode_key(&[0, 0, 0x7f, 0xff, b'a']),
        Err(DecodeError::Truncated { .. })
    ));

    let mut value = encode_value(&ongoing());
    value[1] = 2;
    assert_eq!(
        decode_value("x", &value),
        Err(DecodeError::UnknownValueVersion(2))
    );
    let mut value = encode_value(&ongoing());
    value[16] = 8;
    assert_eq!(decode_value("x", &value), Err(DecodeError::UnknownState(8)));
    let mut value = encode_value(&ongoing());
    value.push(0);
    assert_eq!(
        decode_value("x", &value),
        Err(DecodeError::TrailingBytes(1))
    );

    // A topic count of i32::MAX: fails on the missing bytes, allocates nothing.
    let mut value = encode_value(&ongoing());
    value[17..21].copy_from_slice(&i32::MAX.to_be_bytes());
    assert!(matches!(
        decode_value("x", &value),
        Err(DecodeError::Truncated { .. })
    ));
    let mut value = encode_value(&ongoing());
    value[17..21].copy_from_slice(&(-5i32).to_be_bytes());
    assert_eq!(
        decode_value("x", &value),
        Err(DecodeError::InvalidLength(-5))
    );

    // Flexible: a varint running past 5 bytes.
    let mut value = flexible_value(None, 8);
    value.truncate(17);
    value.extend_from_slice(&[0xff; 6]);
    assert_eq!(decode_value("x", &value), Err(DecodeError::InvalidVarint));
}

#[test]
fn partitions_hash_like_java() {
    assert_eq!(java_string_hash(""), 0);
    assert_eq!(java_string_hash("a"), 97);
    assert_eq!(java_string_hash("hello"), 99_162_322);
    // A surrogate pair hashes as its two UTF-16 units.
    assert_eq!(java_string_hash("😀"), 0xD83D * 31 + 0xDE00);
    // The classic string whose hashCode is Integer.MIN_VALUE: Utils.abs -> 0.
    assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
    assert_eq!(partition_for("polygenelubricants", 50), 0);
    assert_eq!(partition_for("a", 50), 97 % 50);
    // "hello" and a negative hash.
    assert_eq!(partition_for("hello", 50), 99_162_322 % 50);
    let negative = "transactional-id-1";
    let hash = java_string_hash(negative);
    assert_eq!(partition_for(negative, 50), hash.abs() % 50);
    assert_eq!(partition_for("anything", 0), 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(key in proptest::collection::vec(any::<u8>(), 0..64),
                                   value in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_record(&key, Some(&value));
        let _ = decode_value("x", &value);
        for version in [VALUE_VERSION, VALUE_VERSION_FLEXIBLE] {
            let prefixed = [&version.to_be_bytes()[..], &value].concat();
            let _ = decode_value("x", &prefixed);
        }
        let prefixed = [&KEY_VERSION.to_be_bytes()[..], &key].concat();
        let _ = decode_key(&prefixed);
    }

    #[test]
    fn metadata_round_trips(transactional_id in ".{1,20}", producer_id: i64, producer_epoch: i16,
                            timeout_ms: i32, state_index in 1usize..8,
                            partitions in proptest::collection::btree_set((".{0,10}", any::<i32>()), 0..8),
                            start_timestamp_ms: i64, last_update_timestamp_ms: i64) {
        let metadata = TransactionMetadata {
            transactional_id: transactional_id.clone(),
            producer_id,
            last_producer_id: NO_PRODUCER_ID,
            producer_epoch,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            timeout_ms,
            state: TransactionState::ALL[state_index],
            partitions,
            start_timestamp_ms,
            last_update_timestamp_ms,
        };
        prop_assert_eq!(
            decode_record(&encode_key(&transactional_id), Some(&encode_value(&metadata))),
            Ok((transactional_id, Some(metadata)))
        );
    }
}
