//! Idempotent producers (KIP-98): every message written exactly once, in order, while the
//! producer retries.
//!
//! librdkafka with `enable.idempotence=true` against a broker started with the hidden
//! test flag `--fault-drop-produce-responses N` (every Nth Produce is appended but its
//! connection closed instead of answered), so the producer resends batches the log
//! already holds, with the same sequence numbers; and across broker restarts on the same
//! port (graceful and kill -9) with messages in flight. Then the rules one batch at a time
//! over a raw socket: InitProducerId at every version, a duplicate acknowledged with its
//! original offset and not appended, a sequence gap and a stale epoch refused, and
//! duplicates still recognised after restarts (the producer state is durable).

mod common;
#[path = "idempotence/producing.rs"]
mod producing;
#[path = "idempotence/raw.rs"]
mod raw;
// The kafka-protocol framing shared by the raw-protocol tests (it needs `CLIENT_ID` here).
#[path = "common/codec.rs"]
mod wire;

use std::collections::BTreeSet;

use common::wire::{connect, frame, produce_request_v3, record_batch_v2, wait_for_close};
use common::wire::{read_frame, write_lenient, Hangup};
use common::{create_topic, watermarks, Broker};
use producing::{assert_topic_holds_exactly, SequencedProducer, DELIVERY_TIMEOUT};
use raw::{
    init_producer_id, init_producer_id_for, RawProducer, INVALID_PRODUCER_EPOCH, NONE,
    OUT_OF_ORDER_SEQUENCE_NUMBER,
};

const CLIENT_ID: &str = "idempotence-tests";
/// What the broker logs at warn each time the fault hook drops a response.
const FAULT_LOG_LINE: &str = "fault injection: Produce response dropped";
/// Messages and partitions of the librdkafka tests.
const MESSAGES: usize = 20_000;
const PARTITIONS: i32 = 3;

// ---------------------------------------------------------------------------------------
// The fault hook itself
// ---------------------------------------------------------------------------------------

#[test]
fn fault_hook_appends_every_nth_produce_then_closes_instead_of_answering() {
    let broker = Broker::start(1, &["--fault-drop-produce-responses", "2"]);
    let bootstrap = broker.bootstrap();
    let topic = "fault-hook";
    create_topic(&bootstrap, topic, 1);
    let batch = record_batch_v2(&[(b"k", b"v")], raw::now_ms());
    let mut stream = connect(&bootstrap);

    // First Produce with acks != 0 on the shard: answered.
    write_lenient(
        &mut stream,
        &frame(&produce_request_v3(1, topic, 0, 1, &batch)),
    );
    let answer = read_frame(&mut stream).expect("the first Produce is answered");
    assert_eq!(&answer[..4], &1i32.to_be_bytes(), "correlation id");
    // acks=0 is never answered and does not count.
    write_lenient(
        &mut stream,
        &frame(&produce_request_v3(2, topic, 0, 0, &batch)),
    );
    // The second with acks != 0: appended, then the connection closes without an answer.
    write_lenient(
        &mut stream,
        &frame(&produce_request_v3(3, topic, 0, -1, &batch)),
    );
    assert_eq!(
        wait_for_close(&mut stream),
        Hangup::Closed {
            bytes_before_close: 0
        }
    );
    assert_eq!(
        watermarks(&bootstrap, topic, 0),
        (0, 3),
        "all three appended"
    );
    assert!(
        broker.log_contains(FAULT_LOG_LINE),
        "{}",
        broker.recent_log()
    );
}

// ---------------------------------------------------------------------------------------
// librdkafka retrying batches whose answers were lost
// ---------------------------------------------------------------------------------------

#[test]
fn retried_batches_are_written_once_in_order_when_every_7th_produce_response_is_lost() {
    retries_are_written_once_in_order(7);
}

#[test]
fn retried_batches_are_written_once_in_order_when_every_3rd_produce_response_is_lost() {
    retries_are_written_once_in_order(3);
}

fn retries_are_written_once_in_order(drop_every: usize) {
    let every = drop_every.to_string();
    let broker = Broker::start(2, &["--fault-drop-produce-responses", &every]);
    let bootstrap = broker.bootstrap();
    let topic = format!("lost-responses-{drop_every}");
    create_topic(&bootstrap, &topic, PARTITIONS);

    let mut producer = SequencedProducer::new(&bootstrap, &topic, PARTITIONS);
    producer.send(MESSAGES);
    producer.assert_all_delivered_in_order();
    let troubles = producer.troubles();
    eprintln!("one in {drop_every} Produce responses lost: {troubles:?}");
    // The hook fired and librdkafka noticed: connections closed under it and it resent
    // messages it had sent before.
    assert!(
        troubles.disconnects > 0 && troubles.resent_messages > 0,
        "no retries under the fault hook: {troubles:?}\n{}",
        broker.recent_log()
    );
    assert!(
        broker.log_contains(FAULT_LOG_LINE),
        "{}",
        broker.recent_log()
    );

    assert_topic_holds_exactly(&bootstrap, &topic, &producer.counts());
    let ends: Vec<i64> = (0..PARTITIONS)
        .map(|partition| watermarks(&bootstrap, &topic, partition).1)
        .collect();
    let counts: Vec<i64> = producer.counts().iter().map(|c| *c as i64).collect();
    assert_eq!(ends, counts, "high watermarks");
}

// ---------------------------------------------------------------------------------------
// librdkafka across broker restarts
// ---------------------------------------------------------------------------------------

/// How a test takes the broker down.
#[derive(Debug, Clone, Copy)]
enum Stop {
    Graceful,
    Kill9,
}

#[test]
fn idempotent_producer_continues_exactly_once_across_a_graceful_restart() {
    continues_across_restart(Stop::Graceful);
}

#[test]
fn idempotent_producer_continues_exactly_once_across_kill9() {
    continues_across_restart(Stop::Kill9);
}

/// Produces and waits; sends more and stops the broker while they are in flight (after a
/// few were acknowledged); restarts on the same port; sends more. librdkafka resends what
/// it had in flight with the same sequence numbers, which the restarted broker must
/// recognise from its recovered producer state.
fn continues_across_restart(stop: Stop) {
    let mut broker = Broker::start(2, &[]);
    let bootstrap = broker.bootstrap();
    let topic = format!("restart-{stop:?}").to_lowercase();
    create_topic(&bootstrap, &topic, PARTITIONS);

    let mut producer = SequencedProducer::new(&bootstrap, &topic, PARTITIONS);
    producer.send(MESSAGES / 4);
    producer.assert_all_delivered_in_order();

    let before = MESSAGES / 4;
    producer.send(MESSAGES / 2);
    let reported = producer.wait_for_reports(before + 500, DELIVERY_TIMEOUT);
    match stop {
        Stop::Graceful => {
            broker.stop_graceful();
        }
        Stop::Kill9 => broker.kill9(),
    }
    let in_flight = producer.in_flight();
    eprintln!(
        "{stop:?} stop with {reported} of {} reported, {in_flight} in flight",
        before + MESSAGES / 2
    );
    broker.restart_on_same_port();
    assert_eq!(broker.bootstrap(), bootstrap, "same port after the restart");

    producer.send(MESSAGES / 4);
    producer.assert_all_delivered_in_order();
    eprintln!("{stop:?} restart: {:?}", producer.troubles());
    assert_topic_holds_exactly(&bootstrap, &topic, &producer.counts());
}

// ---------------------------------------------------------------------------------------
// InitProducerId
// ---------------------------------------------------------------------------------------

#[test]
fn init_producer_id_without_transactional_id_answers_every_version() {
    let mut broker = Broker::start(2, &[]);
    let mut ids = BTreeSet::new();
    let mut stream = connect(&broker.bootstrap());
    for version in [0, 1, 2, 3, 4, 5] {
        for _ in 0..2 {
            let answer = init_producer_id(&mut stream, version);
            assert_eq!(answer.error_code, NONE, "v{version}: {answer:?}");
            assert!(answer.producer_id.0 >= 0, "v{version}: {answer:?}");
            assert_eq!(answer.producer_epoch, 0, "v{version}: {answer:?}");
            assert!(
                ids.insert(answer.producer_id.0),
                "v{version} handed out producer id {} twice",
                answer.producer_id.0
            );
        }
    }
    // A second connection (maybe another shard) gets ids of its own too.
    let mut other = connect(&broker.bootstrap());
    for _ in 0..3 {
        let id = init_producer_id(&mut other, 4).producer_id.0;
        assert!(ids.insert(id), "producer id {id} handed out twice");
    }
    // KIP-360: an idempotent producer that passes its id and epoch back gets a fresh id
    // (Kafka keeps ids and bumps epochs only for transactional ids).
    let known = *ids.last().expect("ids");
    for version in [3, 4, 5] {
        let answer = init_producer_id_for(&mut other, version, known, 0);
        assert_eq!(
            answer.error_code, NONE,
            "v{version} with id {known}: {answer:?}"
        );
        assert_eq!(answer.producer_epoch, 0, "v{version}: {answer:?}");
        assert!(
            ids.insert(answer.producer_id.0),
            "v{version} with id {known}: producer id {} handed out twice",
            answer.producer_id.0
        );
    }

    // After a restart (graceful, then a crash) ids are never handed out again.
    for stop in [Stop::Graceful, Stop::Kill9] {
        let newest_before = *ids.last().expect("ids");
        match stop {
            Stop::Graceful => broker.restart(),
            Stop::Kill9 => {
                broker.kill9();
                broker.restart();
            }
        }
        let mut stream = connect(&broker.bootstrap());
        let answer = init_producer_id(&mut stream, 4);
        assert_eq!(
            answer.error_code, NONE,
            "after {stop:?} restart: {answer:?}"
        );
        let id = answer.producer_id.0;
        assert!(
            id > newest_before,
            "after a {stop:?} restart producer id {id}, before up to {newest_before}"
        );
        ids.insert(id);
    }
}

// ---------------------------------------------------------------------------------------
// Sequence and epoch rules, one batch at a time
// ---------------------------------------------------------------------------------------

#[test]
fn duplicate_batch_is_acknowledged_with_its_original_offset_and_not_appended() {
    let broker = Broker::start(1, &[]);
    let bootstrap = broker.bootstrap();
    let topic = "duplicates";
    create_topic(&bootstrap, topic, 2);
    let mut producer = RawProducer::init(&bootstrap, topic);
    let epoch = producer.epoch;

    // Seven batches of three records: offsets 0, 3, ..., 18.
    let batches: Vec<Vec<u8>> = (0..7).map(|i| producer.batch(epoch, i * 3, 3)).collect();
    for (i, batch) in batches.iter().enumerate() {
        assert_eq!(
            producer.produce_outcome(0, batch),
            (NONE, i as i64 * 3),
            "batch {i}"
        );
    }
    // The last batch again, then one of the five before it: their first offsets.
    let answer = producer.produce(0, &batches[6]);
    assert_eq!(
        (
            answer.error_code,
            answer.base_offset,
            answer.log_append_time_ms,
            answer.log_start_offset
        ),
        (NONE, 18, -1, 0),
        "the last batch resent: {answer:?}"
    );
    assert!(answer.record_errors.is_empty(), "{answer:?}");
    assert_eq!(producer.produce_outcome(0, &batches[3]), (NONE, 9));
    assert_eq!(producer.produce_outcome(0, &batches[2]), (NONE, 6));
    assert_eq!(
        watermarks(&bootstrap, topic, 0),
        (0, 21),
        "duplicates appended"
    );
    // Older than the five batches a partition remembers: refused, still not appended.
    let (error, _) = producer.produce_outcome(0, &batches[0]);
    assert_eq!(error, OUT_OF_ORDER_SEQUENCE_NUMBER, "a batch six back");
    assert_eq!(watermarks(&bootstrap, topic, 0), (0, 21));

    // Sequence numbers are per partition: partition 1 starts at 0 for the same producer.
    assert_eq!(producer.produce_outcome(1, &batches[0]), (NONE, 0));
    assert_eq!(producer.produce_outcome(1, &batches[0]), (NONE, 0));
    assert_eq!(watermarks(&bootstrap, topic, 1), (0, 3));
    // And the next batch in sequence still goes on.
    let next = producer.batch(epoch, 21, 2);
    assert_eq!(producer.produce_outcome(0, &next), (NONE, 21));
    assert_eq!(watermarks(&bootstrap, topic, 0), (0, 23));
}

#[test]
fn sequence_gap_is_refused_as_out_of_order() {
    let broker = Broker::start(1, &[]);
    let bootstrap = broker.bootstrap();
    let topic = "sequence-gap";
    create_topic(&bootstrap, topic, 1);
    let mut producer = RawProducer::init(&bootstrap, topic);
    let epoch = producer.epoch;
    assert_eq!(
        producer.produce_outcome(0, &producer.batch(epoch, 0, 5)).0,
        NONE
    );
    for first_sequence in [6, 100, 4, 1] {
        let (error, _) = producer.produce_outcome(0, &producer.batch(epoch, first_sequence, 1));
        assert_eq!(
            error, OUT_OF_ORDER_SEQUENCE_NUMBER,
            "first sequence {first_sequence} after 0..=4"
        );
    }
    assert_eq!(
        watermarks(&bootstrap, topic, 0),
        (0, 5),
        "refused batches appended"
    );
    assert_eq!(
        producer.produce_outcome(0, &producer.batch(epoch, 5, 1)),
        (NONE, 5)
    );
}

#[test]
fn newer_epoch_starts_at_sequence_zero_and_older_epoch_is_fenced() {
    let broker = Broker::start(1, &[]);
    let bootstrap = broker.bootstrap();
    let topic = "epochs";
    create_topic(&bootstrap, topic, 1);
    let mut producer = RawProducer::init(&bootstrap, topic);
    let epoch = producer.epoch;
    assert_eq!(
        producer.produce_outcome(0, &producer.batch(epoch, 0, 2)),
        (NONE, 0)
    );

    // A newer epoch must start over at sequence 0.
    let (error, _) = producer.produce_outcome(0, &producer.batch(epoch + 1, 2, 1));
    assert_eq!(
        error, OUT_OF_ORDER_SEQUENCE_NUMBER,
        "newer epoch at sequence 2"
    );
    assert_eq!(
        producer.produce_outcome(0, &producer.batch(epoch + 1, 0, 1)),
        (NONE, 2)
    );

    // The old epoch is fenced, even continuing its own sequence.
    let (error, _) = producer.produce_outcome(0, &producer.batch(epoch, 2, 1));
    assert_eq!(
        error, INVALID_PRODUCER_EPOCH,
        "older epoch after a newer one"
    );
    assert_eq!(watermarks(&bootstrap, topic, 0), (0, 3));
}

#[test]
fn sequence_numbers_wrap_to_zero_after_i32_max() {
    let broker = Broker::start(1, &[]);
    let bootstrap = broker.bootstrap();
    let topic = "sequence-wrap";
    create_topic(&bootstrap, topic, 1);
    let mut producer = RawProducer::init(&bootstrap, topic);
    let epoch = producer.epoch;
    // Sequences i32::MAX - 1, i32::MAX, 0 (Kafka's DefaultRecordBatch.incrementSequence).
    let across = producer.batch(epoch, i32::MAX - 1, 3);
    assert_eq!(producer.produce_outcome(0, &across), (NONE, 0));
    assert_eq!(producer.produce_outcome(0, &across), (NONE, 0), "duplicate");
    let (error, _) = producer.produce_outcome(0, &producer.batch(epoch, 0, 1));
    assert_eq!(error, OUT_OF_ORDER_SEQUENCE_NUMBER, "sequence 0 again");
    assert_eq!(
        producer.produce_outcome(0, &producer.batch(epoch, 1, 2)),
        (NONE, 3),
        "the sequence continues at 1"
    );
    assert_eq!(watermarks(&bootstrap, topic, 0), (0, 5));
}

#[test]
fn unknown_producer_may_start_at_any_sequence() {
    let broker = Broker::start(1, &[]);
    let bootstrap = broker.bootstrap();
    let topic = "unknown-producer";
    create_topic(&bootstrap, topic, 1);
    let mut producer = RawProducer::init(&bootstrap, topic);
    let epoch = producer.epoch;
    // Kafka accepts any first sequence from a producer the partition does not know
    // (its state may have expired); from then on it must continue.
    assert_eq!(
        producer.produce_outcome(0, &producer.batch(epoch, 42, 3)),
        (NONE, 0)
    );
    assert_eq!(
        producer.produce_outcome(0, &producer.batch(epoch, 45, 1)),
        (NONE, 3)
    );
    let (error, _) = producer.produce_outcome(0, &producer.batch(epoch, 0, 1));
    assert_eq!(error, OUT_OF_ORDER_SEQUENCE_NUMBER);
}

#[test]
fn duplicate_is_recognised_after_a_graceful_restart() {
    duplicate_recognised_after_restart(Stop::Graceful);
}

#[test]
fn duplicate_is_recognised_after_kill9() {
    duplicate_recognised_after_restart(Stop::Kill9);
}

fn duplicate_recognised_after_restart(stop: Stop) {
    let mut broker = Broker::start(1, &[]);
    let topic = "restart-duplicates";
    create_topic(&broker.bootstrap(), topic, 1);
    let mut producer = RawProducer::init(&broker.bootstrap(), topic);
    let epoch = producer.epoch;
    let batches: Vec<Vec<u8>> = (0..3).map(|i| producer.batch(epoch, i * 4, 4)).collect();
    for (i, batch) in batches.iter().enumerate() {
        assert_eq!(producer.produce_outcome(0, batch), (NONE, i as i64 * 4));
    }

    match stop {
        Stop::Graceful => broker.restart(),
        Stop::Kill9 => {
            broker.kill9();
            broker.restart();
        }
    }
    let bootstrap = broker.bootstrap();
    producer.reconnect(&bootstrap);
    assert_eq!(watermarks(&bootstrap, topic, 0), (0, 12));
    assert_eq!(
        producer.produce_outcome(0, &batches[2]),
        (NONE, 8),
        "the last batch resent after a {stop:?} restart"
    );
    assert_eq!(
        producer.produce_outcome(0, &batches[1]),
        (NONE, 4),
        "an earlier batch resent after a {stop:?} restart"
    );
    assert_eq!(
        watermarks(&bootstrap, topic, 0),
        (0, 12),
        "duplicates appended"
    );
    // The sequence goes on where it was, and a gap is still a gap.
    let (error, _) = producer.produce_outcome(0, &producer.batch(epoch, 20, 1));
    assert_eq!(
        error, OUT_OF_ORDER_SEQUENCE_NUMBER,
        "gap after a {stop:?} restart"
    );
    assert_eq!(
        producer.produce_outcome(0, &producer.batch(epoch, 12, 1)),
        (NONE, 12)
    );
}
