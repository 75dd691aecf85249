//! Durability across restarts on the same data directory: after a graceful stop everything
//! is back at the same offsets; after SIGKILL with `--flush always`, every message that was
//! acknowledged with acks=all is readable, and new messages continue at the next offsets.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{
    consume_all, create_topic, producer, record, send, wait_for_successful_deliveries, watermarks,
    Broker, Consumed,
};

const PARTITIONS: i32 = 3;

/// Produces `count` keyed messages with ids `first_id..first_id + count`; returns where
/// each landed, indexed from 0.
fn produce_batch(bootstrap: &str, topic: &str, first_id: usize, count: usize) -> Vec<(i32, i64)> {
    let producer = producer(bootstrap, &[]);
    for index in 0..count {
        let id = first_id + index;
        let key = format!("key-{}", id % 50);
        let value = format!("message-{id:06}");
        send(
            &producer,
            record(topic, index, key.as_bytes(), value.as_bytes()),
        );
    }
    wait_for_successful_deliveries(&producer, count, Duration::from_secs(60))
}

/// (partition, offset) -> value.
fn by_position(records: &[Consumed]) -> BTreeMap<(i32, i64), Vec<u8>> {
    let mut positions = BTreeMap::new();
    for consumed in records {
        let previous = positions.insert(
            (consumed.partition, consumed.offset),
            consumed.value.clone().expect("value"),
        );
        assert!(
            previous.is_none(),
            "{}/{} read twice",
            consumed.partition,
            consumed.offset
        );
    }
    positions
}

fn assert_acknowledged_present(
    positions: &BTreeMap<(i32, i64), Vec<u8>>,
    placed: &[(i32, i64)],
    first_id: usize,
) {
    for (index, position) in placed.iter().enumerate() {
        let expected = format!("message-{:06}", first_id + index);
        assert_eq!(
            positions.get(position).map(Vec::as_slice),
            Some(expected.as_bytes()),
            "acknowledged message {} at {position:?} missing or changed after restart",
            first_id + index
        );
    }
}

/// New messages after a restart land at the old high watermark of each partition onwards.
fn assert_continues_at_next_offsets(
    bootstrap: &str,
    topic: &str,
    old_high: &BTreeMap<i32, i64>,
    first_id: usize,
) {
    let placed = produce_batch(bootstrap, topic, first_id, 300);
    let mut next: BTreeMap<i32, i64> = old_high.clone();
    for (partition, offset) in placed {
        let expected = next.get_mut(&partition).expect("known partition");
        assert_eq!(
            offset, *expected,
            "partition {partition}: new message landed at {offset}, expected {expected}"
        );
        *expected += 1;
    }
    for partition in 0..PARTITIONS {
        assert_eq!(
            watermarks(bootstrap, topic, partition),
            (0, next[&partition]),
            "partition {partition} watermarks after produce following restart"
        );
    }
}

fn high_watermarks(bootstrap: &str, topic: &str) -> BTreeMap<i32, i64> {
    (0..PARTITIONS)
        .map(|partition| {
            let (low, high) = watermarks(bootstrap, topic, partition);
            assert_eq!(low, 0, "partition {partition} log start offset");
            (partition, high)
        })
        .collect()
}

#[test]
fn messages_survive_graceful_restart_at_same_offsets() {
    let mut broker = Broker::start(2, &[]);
    let topic = "durable-graceful";
    create_topic(&broker.bootstrap(), topic, PARTITIONS);
    let count = 3_000;
    let placed = produce_batch(&broker.bootstrap(), topic, 0, count);
    let before = consume_all(
        &broker.bootstrap(),
        topic,
        PARTITIONS,
        count,
        Duration::from_secs(60),
    );
    assert_eq!(before.len(), count);
    let high_before = high_watermarks(&broker.bootstrap(), topic);

    broker.stop_graceful();
    broker.restart();

    let after = consume_all(
        &broker.bootstrap(),
        topic,
        PARTITIONS,
        count,
        Duration::from_secs(60),
    );
    assert_eq!(after.len(), count, "record count after graceful restart");
    let positions = by_position(&after);
    assert_eq!(
        positions,
        by_position(&before),
        "log changed across restart"
    );
    assert_acknowledged_present(&positions, &placed, 0);
    assert_eq!(high_watermarks(&broker.bootstrap(), topic), high_before);
    assert_continues_at_next_offsets(&broker.bootstrap(), topic, &high_before, count);

    // And once more, so recovery of a log that was itself recovered works too.
    broker.restart();
    let total = count + 300;
    let again = consume_all(
        &broker.bootstrap(),
        topic,
        PARTITIONS,
        total,
        Duration::from_secs(60),
    );
    assert_eq!(again.len(), total, "record count after second restart");
}

#[test]
fn acknowledged_messages_survive_kill9_with_flush_always() {
    let mut broker = Broker::start(2, &["--flush", "always"]);
    let topic = "durable-kill9";
    create_topic(&broker.bootstrap(), topic, PARTITIONS);
    let count = 5_000;
    let placed = produce_batch(&broker.bootstrap(), topic, 0, count);

    broker.kill9();
    broker.restart();

    let after = consume_all(
        &broker.bootstrap(),
        topic,
        PARTITIONS,
        count,
        Duration::from_secs(60),
    );
    let positions = by_position(&after);
    assert_acknowledged_present(&positions, &placed, 0);
    assert_eq!(
        after.len(),
        count,
        "records after kill -9 (all were acknowledged)"
    );

    let high = high_watermarks(&broker.bootstrap(), topic);
    let mut acknowledged_per_partition: BTreeMap<i32, i64> =
        (0..PARTITIONS).map(|partition| (partition, 0)).collect();
    for (partition, _) in &placed {
        *acknowledged_per_partition
            .get_mut(partition)
            .expect("partition") += 1;
    }
    assert_eq!(
        high, acknowledged_per_partition,
        "high watermarks after kill -9"
    );
    assert_continues_at_next_offsets(&broker.bootstrap(), topic, &high, count);
}

/// Topics created (and deleted) before a crash keep their shape after it.
#[test]
fn topic_metadata_survives_kill9() {
    let mut broker = Broker::start(2, &["--flush", "always"]);
    create_topic(&broker.bootstrap(), "kept-five", 5);
    create_topic(&broker.bootstrap(), "kept-one", 1);
    create_topic(&broker.bootstrap(), "deleted-before-crash", 2);
    assert_eq!(
        common::try_delete_topic(&broker.bootstrap(), "deleted-before-crash"),
        Ok(())
    );
    broker.kill9();
    broker.restart();
    common::wait_for_topic(&broker.bootstrap(), "kept-five", 5);
    common::wait_for_topic(&broker.bootstrap(), "kept-one", 1);
    let names = common::all_topic_names(&broker.bootstrap());
    assert!(
        !names.iter().any(|name| name == "deleted-before-crash"),
        "deleted topic came back after restart: {names:?}"
    );
}
