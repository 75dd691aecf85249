//! Durability across restarts on the same data directory: after a graceful stop everything
//! is back at the same offsets; after SIGKILL with `--flush always`, every message that was
//! acknowledged with acks=all is readable, and new messages continue at the next offsets.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{
    assign_consumer, assign_from_beginning, consume_all, consume_from, create_topic,
    pending_delivery_reports, producer, record, send, wait_for_deliveries,
    wait_for_successful_deliveries, watermarks, Broker, Consumed,
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

/// SIGKILL while a producer is mid-stream: the recovered log is a clean, dense prefix that
/// holds every acknowledged message at its acknowledged offset and nothing damaged.
#[test]
fn kill9_during_produce_recovers_a_clean_log() {
    let mut broker = Broker::start(2, &["--flush", "always"]);
    let topic = "durable-kill9-mid-produce";
    create_topic(&broker.bootstrap(), topic, PARTITIONS);
    let producer = producer(
        &broker.bootstrap(),
        &[
            ("message.timeout.ms", "5000"),
            ("message.send.max.retries", "0"),
        ],
    );

    // Keep producing until enough acknowledgements arrived, then crash the broker while
    // more requests are in flight.
    let kill_after_acks = 20_000;
    let max_messages = 500_000;
    let mut sent = 0usize;
    let deadline = Instant::now() + Duration::from_secs(120);
    while pending_delivery_reports(&producer) < kill_after_acks {
        assert!(
            sent < max_messages && Instant::now() < deadline,
            "only {} acks after sending {sent} messages",
            pending_delivery_reports(&producer)
        );
        for _ in 0..100 {
            let key = format!("key-{}", sent % 50);
            let value = format!("message-{sent:06}");
            send(
                &producer,
                record(topic, sent, key.as_bytes(), value.as_bytes()),
            );
            sent += 1;
        }
        producer.poll(Duration::ZERO);
    }
    broker.kill9();
    let deliveries = wait_for_deliveries(&producer, sent, Duration::from_secs(60));
    drop(producer);
    let acknowledged: Vec<(usize, (i32, i64))> = deliveries
        .iter()
        .filter_map(|delivery| Some((delivery.id, delivery.outcome.clone().ok()?)))
        .collect();
    assert!(acknowledged.len() >= kill_after_acks);
    eprintln!(
        "kill -9 after {sent} sent, {} acknowledged",
        acknowledged.len()
    );

    broker.restart();
    let records = consume_all(
        &broker.bootstrap(),
        topic,
        PARTITIONS,
        acknowledged.len(),
        Duration::from_secs(60),
    );
    let positions = by_position(&records);
    eprintln!("{} records recovered", positions.len());

    // Dense offsets from 0 in every partition, matching the high watermark.
    let mut per_partition: BTreeMap<i32, i64> =
        (0..PARTITIONS).map(|partition| (partition, 0)).collect();
    for (partition, offset) in positions.keys() {
        let next = per_partition.get_mut(partition).expect("known partition");
        assert_eq!(
            *offset, *next,
            "partition {partition} has a hole before {offset}"
        );
        *next += 1;
    }
    assert_eq!(high_watermarks(&broker.bootstrap(), topic), per_partition);

    // Every stored record is one we sent, once; every acknowledged one is where it was
    // acknowledged.
    let mut seen_ids = std::collections::HashSet::new();
    for ((partition, offset), value) in &positions {
        let text = std::str::from_utf8(value).expect("UTF-8 value");
        let id: usize = text
            .strip_prefix("message-")
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("damaged record at {partition}/{offset}: {text:?}"));
        assert!(id < sent, "record {id} was never sent");
        assert!(seen_ids.insert(id), "message {id} stored twice");
    }
    for (id, position) in &acknowledged {
        let expected = format!("message-{id:06}");
        assert_eq!(
            positions.get(position).map(Vec::as_slice),
            Some(expected.as_bytes()),
            "acknowledged message {id} at {position:?} lost or changed by the crash"
        );
    }
    assert_continues_at_next_offsets(&broker.bootstrap(), topic, &per_partition, sent);
}

/// Shutdown must not wait on clients: a parked long-poll Fetch and idle connections do
/// not keep the broker from exiting 0.
#[test]
fn graceful_stop_with_connected_clients_exits_cleanly() {
    let mut broker = Broker::start(2, &[]);
    let topic = "stop-with-clients";
    create_topic(&broker.bootstrap(), topic, PARTITIONS);
    let placed = produce_batch(&broker.bootstrap(), topic, 0, 500);

    let consumer = assign_consumer(&broker.bootstrap(), &[("fetch.wait.max.ms", "5000")]);
    assign_from_beginning(&consumer, topic, PARTITIONS);
    let records = consume_from(&consumer, PARTITIONS, 500, Duration::from_secs(30));
    assert_eq!(records.len(), 500);
    let idle_producer = producer(&broker.bootstrap(), &[]);
    send(
        &idle_producer,
        record(topic, 0, b"idle", b"idle").partition(0),
    );
    wait_for_successful_deliveries(&idle_producer, 1, Duration::from_secs(30));

    broker.stop_graceful();
    drop(consumer);
    drop(idle_producer);

    broker.restart();
    let after = consume_all(
        &broker.bootstrap(),
        topic,
        PARTITIONS,
        501,
        Duration::from_secs(60),
    );
    assert_eq!(after.len(), 501);
    assert_acknowledged_present(&by_position(&after), &placed, 0);
}

/// The data directory is not tied to the shard count it was written with.
#[test]
fn data_survives_restart_with_a_different_core_count() {
    let data_dir = tempfile::tempdir().expect("temporary data dir");
    let topic = "change-cores";
    let placed = {
        let mut broker = Broker::start_in(data_dir.path(), 2, &[]);
        create_topic(&broker.bootstrap(), topic, PARTITIONS);
        let placed = produce_batch(&broker.bootstrap(), topic, 0, 2_000);
        broker.stop_graceful();
        placed
    };
    let broker = Broker::start_in(data_dir.path(), 1, &[]);
    let records = consume_all(
        &broker.bootstrap(),
        topic,
        PARTITIONS,
        2_000,
        Duration::from_secs(60),
    );
    assert_eq!(
        records.len(),
        2_000,
        "records after restarting with --cores 1"
    );
    assert_acknowledged_present(&by_position(&records), &placed, 0);
    let high = high_watermarks(&broker.bootstrap(), topic);
    assert_continues_at_next_offsets(&broker.bootstrap(), topic, &high, 2_000);
}

/// Whatever the flush policy, a graceful stop flushes: everything acknowledged is there
/// after the restart.
#[test]
fn every_flush_policy_keeps_data_across_graceful_restart() {
    for policy in ["always", "interval:50", "never"] {
        let mut broker = Broker::start(2, &["--flush", policy]);
        let topic = "flush-policy";
        create_topic(&broker.bootstrap(), topic, PARTITIONS);
        let placed = produce_batch(&broker.bootstrap(), topic, 0, 1_000);
        broker.restart();
        let records = consume_all(
            &broker.bootstrap(),
            topic,
            PARTITIONS,
            1_000,
            Duration::from_secs(60),
        );
        assert_eq!(records.len(), 1_000, "--flush {policy}");
        assert_acknowledged_present(&by_position(&records), &placed, 0);
    }
}

#[test]
fn sigint_stops_cleanly_and_keeps_data() {
    let mut broker = Broker::start(1, &[]);
    let topic = "sigint";
    create_topic(&broker.bootstrap(), topic, PARTITIONS);
    let placed = produce_batch(&broker.bootstrap(), topic, 0, 300);
    broker.stop_with_signal(libc::SIGINT);
    broker.restart();
    let records = consume_all(
        &broker.bootstrap(),
        topic,
        PARTITIONS,
        300,
        Duration::from_secs(60),
    );
    assert_eq!(records.len(), 300);
    assert_acknowledged_present(&by_position(&records), &placed, 0);
}

/// `--data-dir` relative to the working directory (the default `./data` is one): topics
/// are created, written and read back after a restart.
#[test]
fn relative_data_dir_works() {
    let relative = format!("target/relative-data-dir-{}", std::process::id());
    let _ = std::fs::remove_dir_all(&relative);
    let mut broker = Broker::start_in(std::path::Path::new(&relative), 1, &[]);
    create_topic(&broker.bootstrap(), "relative", 1);
    let positions = produce_batch(&broker.bootstrap(), "relative", 0, 10);
    assert_eq!(positions.len(), 10);
    broker.restart();
    let records = consume_all(
        &broker.bootstrap(),
        "relative",
        1,
        10,
        Duration::from_secs(30),
    );
    assert_eq!(records.len(), 10);
    broker.stop_graceful();
    drop(broker);
    std::fs::remove_dir_all(&relative).expect("remove relative data dir");
}

#[test]
fn a_second_broker_on_the_same_data_dir_is_refused_and_the_first_keeps_serving() {
    let mut broker = Broker::start(1, &[]);
    create_topic(&broker.bootstrap(), "locked", 1);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_corelog"))
        .arg("serve")
        .args(["--listen", "127.0.0.1:0", "--cores", "1", "--data-dir"])
        .arg(broker.data_dir())
        .output()
        .expect("run a second corelog serve");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !output.status.success(),
        "the second broker started: {stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("is in use by another corelog process")
            || stdout.contains("is in use by another corelog process"),
        "no reason given: {stdout}\n{stderr}"
    );
    assert!(
        stderr.contains(&format!("pid {}", broker.pid()))
            || stdout.contains(&format!("pid {}", broker.pid())),
        "the owner is not named: {stdout}\n{stderr}"
    );
    let positions = produce_batch(&broker.bootstrap(), "locked", 0, 5);
    assert_eq!(positions.len(), 5);
    // Once the owner stopped, the directory is free again.
    broker.restart();
    let records = consume_all(&broker.bootstrap(), "locked", 1, 5, Duration::from_secs(30));
    assert_eq!(records.len(), 5);
}
