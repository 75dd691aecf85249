//! The rules of `ProducerStates`, one behaviour per test.

use super::*;

const CLIENT: AppendOrigin = AppendOrigin::Client;
const COORDINATOR: AppendOrigin = AppendOrigin::Coordinator;

fn data(producer_id: i64, epoch: i16, first: i32, last: i32) -> ProducerBatch {
    ProducerBatch {
        producer_id,
        producer_epoch: epoch,
        first_sequence: first,
        last_sequence: last,
        transactional: false,
        marker: None,
    }
}

fn transactional(producer_id: i64, epoch: i16, first: i32, last: i32) -> ProducerBatch {
    ProducerBatch {
        transactional: true,
        ..data(producer_id, epoch, first, last)
    }
}

fn marker(producer_id: i64, epoch: i16, control_type: ControlType) -> ProducerBatch {
    ProducerBatch {
        producer_id,
        producer_epoch: epoch,
        first_sequence: NO_SEQUENCE,
        last_sequence: NO_SEQUENCE,
        transactional: true,
        marker: Some(ControlMarker {
            control_type,
            coordinator_epoch: 3,
        }),
    }
}

/// A marker written by the coordinator of `coordinator_epoch`.
fn marker_at(
    producer_id: i64,
    epoch: i16,
    control_type: ControlType,
    coordinator_epoch: i32,
) -> ProducerBatch {
    ProducerBatch {
        marker: Some(ControlMarker {
            control_type,
            coordinator_epoch,
        }),
        ..marker(producer_id, epoch, control_type)
    }
}

/// Validates as a client and applies at `base` when accepted.
fn produce(
    states: &mut ProducerStates,
    batch: ProducerBatch,
    base: i64,
) -> Result<Admission, ProducerError> {
    let admission = states.validate(&batch, CLIENT)?;
    if admission == Admission::Append {
        let last = base + i64::from(batch.last_sequence.wrapping_sub(batch.first_sequence));
        states.apply(&batch, base, last, 0);
    }
    Ok(admission)
}

fn sequence(first: i32, last: i32, base: i64) -> BatchSequence {
    BatchSequence {
        first_sequence: first,
        last_sequence: last,
        base_offset: base,
        last_offset: base + i64::from(last - first),
    }
}

#[test]
fn an_unknown_producer_starts_at_any_sequence() {
    let states = ProducerStates::default();
    assert_eq!(
        states.validate(&data(7, 0, 42, 45), CLIENT),
        Ok(Admission::Append)
    );
    assert_eq!(
        states.validate(&data(7, 5, 0, 0), CLIENT),
        Ok(Admission::Append)
    );
}

#[test]
fn in_order_batches_append_and_retries_are_duplicates_with_original_offsets() {
    let mut states = ProducerStates::default();
    assert_eq!(
        produce(&mut states, data(7, 0, 0, 9), 100),
        Ok(Admission::Append)
    );
    assert_eq!(
        produce(&mut states, data(7, 0, 10, 14), 110),
        Ok(Admission::Append)
    );
    assert_eq!(
        produce(&mut states, data(7, 0, 0, 9), 999),
        Ok(Admission::Duplicate(sequence(0, 9, 100)))
    );
    assert_eq!(
        states.validate(&data(7, 0, 10, 14), CLIENT),
        Ok(Admission::Duplicate(sequence(10, 14, 110)))
    );
}

#[test]
fn a_gap_or_an_overlap_is_out_of_order() {
    let mut states = ProducerStates::default();
    produce(&mut states, data(7, 3, 0, 4), 0).expect("first");
    for (first, last) in [(6, 8), (4, 8), (0, 2)] {
        assert_eq!(
            states.validate(&data(7, 3, first, last), CLIENT),
            Err(ProducerError::OutOfOrderSequence),
            "{first}..{last}"
        );
    }
    assert_eq!(
        states.validate(&data(7, 3, 5, 8), CLIENT),
        Ok(Admission::Append)
    );
}

#[test]
fn a_new_epoch_must_start_at_zero_and_an_old_one_is_fenced() {
    let mut states = ProducerStates::default();
    produce(&mut states, data(7, 3, 0, 4), 0).expect("first");
    assert_eq!(
        states.validate(&data(7, 4, 5, 8), CLIENT),
        Err(ProducerError::OutOfOrderSequence),
        "new epoch starts at 0"
    );
    assert_eq!(
        states.validate(&data(7, 2, 5, 8), CLIENT),
        Err(ProducerError::InvalidProducerEpoch)
    );
    assert_eq!(
        produce(&mut states, data(7, 4, 0, 2), 5),
        Ok(Admission::Append)
    );
    assert_eq!(
        states.validate(&data(7, 3, 5, 8), CLIENT),
        Err(ProducerError::InvalidProducerEpoch)
    );
    assert_eq!(
        states.validate(&data(7, 4, 0, 2), CLIENT),
        Ok(Admission::Duplicate(sequence(0, 2, 5))),
        "the bumped epoch forgot the old batches and remembers the new one"
    );
    assert_eq!(states.producer(7).map(|entry| entry.recent.len()), Some(1));
}

#[test]
fn a_duplicate_needs_the_same_epoch() {
    let mut states = ProducerStates::default();
    produce(&mut states, data(7, 0, 0, 4), 0).expect("first");
    assert_eq!(
        states.validate(&data(7, 1, 0, 4), CLIENT),
        Ok(Admission::Append),
        "a new epoch at 0 is new data"
    );
}

#[test]
fn an_unknown_epoch_accepts_any_sequence() {
    let mut states = ProducerStates::default();
    states.apply(&data(7, NO_PRODUCER_EPOCH, 0, 0), 0, 0, 0);
    assert_eq!(
        states.validate(&data(7, NO_PRODUCER_EPOCH, 9, 9), CLIENT),
        Ok(Admission::Append)
    );
    assert_eq!(
        states.validate(&data(7, 0, 9, 9), CLIENT),
        Ok(Admission::Append)
    );
}

#[test]
fn only_the_last_five_batches_are_remembered() {
    let mut states = ProducerStates::default();
    for index in 0..7 {
        produce(&mut states, data(1, 0, index, index), i64::from(index)).expect("append");
    }
    assert_eq!(
        states.validate(&data(1, 0, 1, 1), CLIENT),
        Err(ProducerError::OutOfOrderSequence),
        "older than the window"
    );
    for index in 2..7 {
        assert_eq!(
            states.validate(&data(1, 0, index, index), CLIENT),
            Ok(Admission::Duplicate(sequence(
                index,
                index,
                i64::from(index)
            )))
        );
    }
}

#[test]
fn sequences_wrap_at_i32_max() {
    assert_eq!(next_sequence(i32::MAX), 0);
    assert_eq!(last_sequence(i32::MAX, 1), 0);
    assert_eq!(last_sequence(i32::MAX - 1, 3), 1);
    assert!(in_sequence(NO_SEQUENCE, 0));
    let mut states = ProducerStates::default();
    states.apply(&data(1, 0, i32::MAX - 1, i32::MAX), 0, 1, 0);
    assert_eq!(
        states.validate(&data(1, 0, 0, 3), CLIENT),
        Ok(Admission::Append)
    );
    assert_eq!(
        states.validate(&data(1, 0, 1, 3), CLIENT),
        Err(ProducerError::OutOfOrderSequence)
    );
}

#[test]
fn client_batches_need_sequences_and_may_not_be_markers() {
    let states = ProducerStates::default();
    assert_eq!(
        states.validate(&data(1, 0, NO_SEQUENCE, NO_SEQUENCE), CLIENT),
        Err(ProducerError::OutOfOrderSequence)
    );
    assert_eq!(
        states.validate(&marker(1, 0, ControlType::Commit), CLIENT),
        Err(ProducerError::InvalidTxnState)
    );
}

#[test]
fn coordinator_appends_skip_sequences_but_not_epoch_fencing() {
    let mut states = ProducerStates::default();
    produce(&mut states, data(7, 2, 0, 4), 0).expect("first");
    let unsequenced = transactional(7, 2, NO_SEQUENCE, NO_SEQUENCE);
    assert_eq!(
        states.validate(&unsequenced, COORDINATOR),
        Ok(Admission::Append)
    );
    assert_eq!(
        states.validate(&data(7, 2, 0, 4), COORDINATOR),
        Ok(Admission::Append),
        "no duplicate detection"
    );
    assert_eq!(
        states.validate(&marker(7, 1, ControlType::Abort), COORDINATOR),
        Err(ProducerError::InvalidProducerEpoch)
    );
    assert_eq!(
        states.validate(&marker(7, 3, ControlType::Abort), COORDINATOR),
        Ok(Admission::Append)
    );
    states.apply(&unsequenced, 5, 5, 0);
    assert_eq!(
        states.producer(7).map(|entry| entry.recent.len()),
        Some(1),
        "batches without sequences are not remembered"
    );
}

#[test]
fn a_marker_from_an_older_coordinator_epoch_is_fenced() {
    let mut states = ProducerStates::default();
    produce(&mut states, transactional(7, 0, 0, 2), 10).expect("first");
    states.apply(&marker_at(7, 0, ControlType::Commit, 5), 13, 13, 0);
    produce(&mut states, transactional(7, 0, 3, 4), 14).expect("next transaction");
    assert_eq!(
        states.validate(&marker_at(7, 0, ControlType::Abort, 4), COORDINATOR),
        Err(ProducerError::TransactionCoordinatorFenced),
        "the coordinator before the one that wrote the last marker"
    );
    assert_eq!(
        states.validate(&marker_at(7, 0, ControlType::Commit, 5), COORDINATOR),
        Ok(Admission::Append),
        "the same coordinator (a retry, or its next transaction)"
    );
    assert_eq!(
        states.validate(&marker_at(7, 0, ControlType::Commit, 6), COORDINATOR),
        Ok(Admission::Append),
        "a newer coordinator"
    );
    assert_eq!(
        states
            .producer(7)
            .and_then(|entry| entry.current_txn_first_offset),
        Some(14),
        "validating the fenced marker changed nothing"
    );
}

#[test]
fn the_producer_epoch_is_checked_before_the_coordinator_epoch() {
    let mut states = ProducerStates::default();
    produce(&mut states, transactional(7, 3, 0, 0), 0).expect("first");
    states.apply(&marker_at(7, 3, ControlType::Commit, 5), 1, 1, 0);
    assert_eq!(
        states.validate(&marker_at(7, 2, ControlType::Abort, 4), COORDINATOR),
        Err(ProducerError::InvalidProducerEpoch),
        "Kafka's appendEndTxnMarker: checkProducerEpoch, then checkCoordinatorEpoch"
    );
}

#[test]
fn coordinator_epochs_are_per_producer_and_any_epoch_starts_an_unknown_one() {
    let mut states = ProducerStates::default();
    states.apply(&marker_at(7, 0, ControlType::Commit, 9), 0, 0, 0);
    assert_eq!(
        states.validate(&marker_at(8, 0, ControlType::Abort, 0), COORDINATOR),
        Ok(Admission::Append),
        "another producer's coordinator epoch does not fence this one"
    );
    assert_eq!(
        states.validate(&marker_at(7, 1, ControlType::Abort, 8), COORDINATOR),
        Err(ProducerError::TransactionCoordinatorFenced),
        "a bumped producer epoch does not reset the coordinator epoch"
    );
}

#[test]
fn replicated_markers_carry_the_coordinator_epoch_to_followers() {
    // A follower applies the leader's batches without validating them; the
    // coordinator epoch it learns fences a stale coordinator once it leads.
    let mut follower = ProducerStates::default();
    follower.apply(&transactional(7, 0, 0, 0), 0, 0, 0);
    follower.apply(&marker_at(7, 0, ControlType::Abort, 2), 1, 1, 0);
    assert_eq!(
        follower.producer(7).map(|entry| entry.coordinator_epoch),
        Some(2)
    );
    assert_eq!(
        follower.validate(&marker_at(7, 0, ControlType::Abort, 1), COORDINATOR),
        Err(ProducerError::TransactionCoordinatorFenced)
    );
}

#[test]
fn a_transaction_opens_at_its_first_batch_and_a_marker_ends_it() {
    let mut states = ProducerStates::default();
    produce(&mut states, transactional(7, 0, 0, 2), 10).expect("first");
    produce(&mut states, transactional(7, 0, 3, 5), 13).expect("second");
    assert_eq!(
        states
            .producer(7)
            .and_then(|entry| entry.current_txn_first_offset),
        Some(10)
    );
    assert_eq!(
        states.validate(&data(7, 0, 6, 6), CLIENT),
        Err(ProducerError::InvalidTxnState),
        "plain batch inside a transaction"
    );
    assert_eq!(
        states.apply(&marker(7, 0, ControlType::Commit), 16, 16, 0),
        None
    );
    let entry = states.producer(7).expect("known");
    assert_eq!(entry.current_txn_first_offset, None);
    assert_eq!(entry.coordinator_epoch, 3);
    assert_eq!(
        states.validate(&data(7, 0, 6, 6), CLIENT),
        Ok(Admission::Append)
    );
    assert_eq!(states.aborted().count(), 0);
}

#[test]
fn an_abort_records_its_range_and_the_stable_offset_at_that_time() {
    let mut states = ProducerStates::default();
    produce(&mut states, transactional(7, 0, 0, 1), 10).expect("seven");
    produce(&mut states, transactional(8, 0, 0, 1), 12).expect("eight");
    let aborted = states.apply(&marker(7, 0, ControlType::Abort), 14, 14, 0);
    let expected = AbortedTxn {
        producer_id: 7,
        first_offset: 10,
        last_offset: 14,
        last_stable_offset: 12,
    };
    assert_eq!(aborted, Some(expected));
    let alone = states.apply(&marker(8, 0, ControlType::Abort), 15, 15, 0);
    assert_eq!(alone.map(|entry| entry.last_stable_offset), Some(16));
    let without_txn = states.apply(&marker(9, 0, ControlType::Abort), 16, 16, 0);
    assert_eq!(
        without_txn.map(|entry| (entry.first_offset, entry.last_offset)),
        Some((16, 16)),
        "an abort without data on this partition covers just the marker"
    );
    assert_eq!(states.aborted().count(), 3);
}

#[test]
fn the_last_stable_offset_waits_for_written_markers() {
    let mut states = ProducerStates::default();
    assert_eq!(states.last_stable_offset(5), 5);
    produce(&mut states, data(1, 0, 0, 0), 5).expect("plain");
    produce(&mut states, transactional(7, 0, 0, 1), 6).expect("seven");
    produce(&mut states, transactional(8, 0, 0, 1), 8).expect("eight");
    assert_eq!(states.last_stable_offset(10), 6);
    assert_eq!(
        states.last_stable_offset(4),
        4,
        "never above the high watermark"
    );
    states.apply(&marker(7, 0, ControlType::Commit), 10, 10, 0);
    assert_eq!(states.last_stable_offset(10), 6, "marker not written yet");
    assert_eq!(states.last_stable_offset(11), 8);
    states.forget_stable(11);
    assert_eq!(states.last_stable_offset(11), 8);
    states.apply(&marker(8, 0, ControlType::Abort), 11, 11, 0);
    assert_eq!(states.last_stable_offset(12), 12);
    states.forget_stable(12);
    assert_eq!(states.unstable.len(), 0);
}

#[test]
fn aborted_transactions_overlapping_a_fetch_range() {
    let mut states = ProducerStates::default();
    let entry = |producer_id, first_offset, last_offset| AbortedTxn {
        producer_id,
        first_offset,
        last_offset,
        last_stable_offset: last_offset + 1,
    };
    states.restore_aborted(vec![entry(2, 20, 30), entry(1, 0, 10), entry(3, 5, 40)]);
    let ids = |states: &ProducerStates, from, to| -> Vec<i64> {
        states
            .aborted_overlapping(from, to)
            .iter()
            .map(|aborted| aborted.producer_id)
            .collect()
    };
    assert_eq!(ids(&states, 0, 5), vec![1]);
    assert_eq!(ids(&states, 0, 6), vec![1, 3]);
    assert_eq!(ids(&states, 11, 20), vec![3]);
    assert_eq!(ids(&states, 11, 21), vec![2, 3]);
    assert_eq!(ids(&states, 41, 100), Vec::<i64>::new());
    states.forget_aborted_below(11);
    assert_eq!(ids(&states, 0, 100), vec![2, 3]);
}

#[test]
fn idle_producers_expire_unless_a_transaction_is_open() {
    let mut states = ProducerStates::default();
    states.apply(&data(1, 0, 0, 0), 0, 0, 1_000);
    states.apply(&transactional(2, 0, 0, 0), 1, 1, 1_000);
    states.apply(&data(3, 0, 0, 0), 2, 2, 5_000);
    assert_eq!(states.expire(5_999, 5_000), 0);
    assert_eq!(states.expire(6_000, 5_000), 1);
    assert!(states.producer(1).is_none());
    assert!(states.producer(2).is_some(), "open transaction");
    assert_eq!(states.expire(1_000_000, 5_000), 1);
    assert_eq!(states.len(), 1);
    states.apply(&marker(2, 0, ControlType::Commit), 3, 3, 1_000_000);
    assert_eq!(states.expire(1_005_000, 5_000), 1);
    assert!(states.is_empty());
}

#[test]
fn the_producer_table_is_bounded_but_keeps_open_transactions() {
    let mut states = ProducerStates::default();
    states.apply(&transactional(0, 0, 0, 0), 0, 0, 0);
    for id in 1..(PRODUCERS_REMEMBERED_PER_PARTITION as i64 + 10) {
        states.apply(&data(id, 0, 0, 0), id, id, id);
    }
    assert_eq!(states.len(), PRODUCERS_REMEMBERED_PER_PARTITION);
    assert!(states.producer(0).is_some(), "open transaction kept");
    assert!(
        states.producer(1).is_none(),
        "least recently written forgotten"
    );
    assert_eq!(
        states.validate(&data(1, 0, 5, 5), CLIENT),
        Ok(Admission::Append)
    );
}

#[test]
fn restored_producers_reopen_their_transactions() {
    let mut states = ProducerStates::default();
    produce(&mut states, transactional(7, 1, 0, 0), 4).expect("txn");
    produce(&mut states, data(8, 0, 0, 0), 5).expect("plain");
    let producers = states
        .producers()
        .map(|(id, entry)| (id, entry.clone()))
        .collect();
    let restored = ProducerStates::from_producers(producers);
    assert_eq!(restored.last_stable_offset(100), 4);
    assert_eq!(restored.producer(8), states.producer(8));
}

#[test]
fn batches_from_headers() {
    use crate::protocol::batch_builder::{control_batch, encode_batch, parse_control_marker};
    use crate::protocol::batch_builder::{BatchProducer, KeyValue};
    use crate::protocol::record_batch::tests::sample_batch;
    let plain = BatchHeader::parse(&sample_batch(0, 3, 0)).expect("header");
    assert_eq!(ProducerBatch::from_header(&plain, None), None);
    let records = [KeyValue {
        key: b"k".to_vec(),
        value: None,
    }];
    let producer = BatchProducer {
        producer_id: 4,
        producer_epoch: 2,
        transactional: true,
    };
    let offsets = BatchHeader::parse(&encode_batch(&records, producer, 0)).expect("header");
    let batch = ProducerBatch::from_header(&offsets, None).expect("has a producer");
    assert!(batch.transactional && batch.marker.is_none());
    assert_eq!(
        (batch.first_sequence, batch.last_sequence),
        (NO_SEQUENCE, NO_SEQUENCE)
    );
    let control = control_batch(4, 2, 9, ControlType::Abort, 0);
    let header = BatchHeader::parse(&control).expect("header");
    let batch = ProducerBatch::from_header(&header, parse_control_marker(&control));
    assert_eq!(
        batch
            .and_then(|batch| batch.marker)
            .map(|marker| marker.coordinator_epoch),
        Some(9)
    );
    assert_eq!(
        ProducerBatch::from_header(&header, None),
        None,
        "unknown marker"
    );
}
