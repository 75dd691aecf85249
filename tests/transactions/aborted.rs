//! Aborted transactions as read_committed consumers meet them in the log: batches of two
//! producers' transactions interleaved in one partition (the consumer drops only the
//! aborted producer's, using the Fetch response's aborted-transaction list), fetches that
//! start inside an aborted transaction or return it one batch at a time, and aborted
//! transactions spanning several segments, which stay hidden after a graceful restart and
//! after kill -9 (the aborted-transaction index is durable).

use std::path::Path;

use rdkafka::producer::Producer;

use crate::common::{create_topic, try_create_topic_with_config, wait_for_topic, Broker};
use crate::producing::{
    abort, commit, deliver_one_by_one, initialised_producer, produce_plain, spread, Outgoing,
    Placement,
};
use crate::reading::{expected_by_partition, value_of, Isolation, Reader};
use crate::NO_JOIN_DELAY;

/// One batch per fetch: librdkafka asks for 1 byte per partition and the broker still
/// returns the first whole batch.
const ONE_BATCH_PER_FETCH: &[(&str, &str)] = &[("fetch.message.max.bytes", "1")];

/// One produced message and whether its transaction (if any) committed.
struct Written {
    value: String,
    offset: i64,
    visible: bool,
}

fn written(messages: &[Outgoing], placements: &[Placement], visible: bool) -> Vec<Written> {
    messages
        .iter()
        .zip(placements)
        .map(|(message, (_, _, offset))| Written {
            value: message.value.clone(),
            offset: *offset,
            visible,
        })
        .collect()
}

/// Values read_committed must return from `start` on, in offset order.
fn visible_from(log: &[Written], start: i64) -> Vec<String> {
    let mut visible: Vec<&Written> = log
        .iter()
        .filter(|entry| entry.visible && entry.offset >= start)
        .collect();
    visible.sort_by_key(|entry| entry.offset);
    visible.iter().map(|entry| entry.value.clone()).collect()
}

/// read_committed of partition 0 from `start`, whole fetches and one batch per fetch,
/// returns exactly the visible messages from there.
fn assert_read_committed_from(bootstrap: &str, topic: &str, log: &[Written], start: i64) {
    let expected = visible_from(log, start);
    for (settings, how) in [
        (&[][..], "default fetches"),
        (ONE_BATCH_PER_FETCH, "one batch per fetch"),
    ] {
        let reader =
            Reader::from_offset(bootstrap, topic, Isolation::ReadCommitted, start, settings);
        let values: Vec<String> = reader.read(expected.len()).iter().map(value_of).collect();
        assert_eq!(
            values, expected,
            "read_committed of {topic} from offset {start} with {how}"
        );
    }
}

#[test]
fn interleaved_transactions_of_two_producers_are_filtered_by_producer() {
    let broker = Broker::start(2, NO_JOIN_DELAY);
    let bootstrap = broker.bootstrap();
    let topic = "txn-interleaved";
    create_topic(&bootstrap, topic, 1);
    let aborting = initialised_producer(&bootstrap, "interleaved-aborting");
    let committing = initialised_producer(&bootstrap, "interleaved-committing");
    let doomed = spread(topic, 1, "doomed", 8);
    let kept = spread(topic, 1, "kept", 8);
    aborting.begin_transaction().expect("begin_transaction");
    committing.begin_transaction().expect("begin_transaction");
    let mut log = Vec::new();
    for index in 0..doomed.len() {
        let range = index..index + 1;
        let placed = deliver_one_by_one(&aborting, &doomed[range.clone()]);
        log.extend(written(&doomed[range.clone()], &placed, false));
        let placed = deliver_one_by_one(&committing, &kept[range.clone()]);
        log.extend(written(&kept[range], &placed, true));
    }
    abort(&aborting, "the interleaved aborted transaction");
    // Outside any transaction, while the other transaction is still open.
    let tail = spread(topic, 1, "tail", 3);
    let placed = produce_plain(&bootstrap, &tail);
    log.extend(written(&tail, &placed, true));
    commit(&committing, "the interleaved committed transaction");

    let everything = Reader::new(&bootstrap, topic, 1, Isolation::ReadUncommitted).read(19);
    assert_eq!(
        everything.len(),
        19,
        "read_uncommitted sees all 19 messages"
    );
    assert_eq!(
        visible_from(&log, 0),
        expected_by_partition(&[&kept, &tail])[&0],
        "the test's own bookkeeping"
    );
    // From the start, from inside both transactions, from the last aborted message.
    let last_doomed = log
        .iter()
        .filter(|entry| !entry.visible)
        .map(|entry| entry.offset)
        .max()
        .expect("aborted messages were written");
    for start in [0, 5, last_doomed] {
        assert_read_committed_from(&bootstrap, topic, &log, start);
    }
}

/// `<label>-<i>` messages padded to about 300 bytes, so a few fill a 1 KiB segment.
fn padded(topic: &str, label: &str, count: usize) -> Vec<Outgoing> {
    spread(topic, 1, label, count)
        .into_iter()
        .map(|message| Outgoing {
            value: format!("{}-{}", message.value, "x".repeat(300)),
            ..message
        })
        .collect()
}

fn segment_count(data_dir: &Path, topic: &str) -> usize {
    std::fs::read_dir(data_dir.join(format!("{topic}-0")))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|entry| entry.file_name().to_string_lossy().ends_with(".log"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn aborted_transactions_spanning_segments_stay_hidden_across_restarts() {
    let mut broker = Broker::start(2, NO_JOIN_DELAY);
    let bootstrap = broker.bootstrap();
    let topic = "txn-segmented";
    try_create_topic_with_config(&bootstrap, topic, 1, &[("segment.bytes", "1024")])
        .unwrap_or_else(|code| panic!("create {topic}: {code:?}"));
    wait_for_topic(&bootstrap, topic, 1);
    let producer = initialised_producer(&bootstrap, "segmented-writer");
    let mut log = Vec::new();
    let rounds = [
        ("committed-1", 4, true),
        ("aborted-1", 8, false),
        ("committed-2", 4, true),
        ("aborted-2", 4, false),
        ("committed-3", 3, true),
    ];
    for (label, count, visible) in rounds {
        let messages = padded(topic, label, count);
        producer.begin_transaction().expect("begin_transaction");
        let placed = deliver_one_by_one(&producer, &messages);
        if visible {
            commit(&producer, label);
        } else {
            abort(&producer, label);
        }
        log.extend(written(&messages, &placed, visible));
    }
    let segments = segment_count(broker.data_dir(), topic);
    assert!(
        segments >= 6,
        "the aborted transactions should span several 1 KiB segments, found {segments}"
    );
    // From the start, from inside the first aborted transaction (past its first segment),
    // and from the second aborted transaction.
    let inside_first_abort = log[4 + 5].offset;
    let inside_second_abort = log[4 + 8 + 4 + 1].offset;
    let starts = [0, inside_first_abort, inside_second_abort];
    for start in starts {
        assert_read_committed_from(&bootstrap, topic, &log, start);
    }

    broker.restart();
    for start in starts {
        assert_read_committed_from(&broker.bootstrap(), topic, &log, start);
    }
    broker.kill9();
    broker.restart();
    for start in starts {
        assert_read_committed_from(&broker.bootstrap(), topic, &log, start);
    }
}
