//! `corelog group ...` against a real broker, with a librdkafka consumer as
//! the group's member: list and describe (members, committed offsets, lag),
//! reset-offsets (dry run, refused while the member is active, each target
//! once it left) and delete.

#[path = "cli_support/mod.rs"]
mod cli_support;
mod common;

use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use cli_support::{closed_port_address, corelog};
use common::{
    create_topic, group_consumer_config, poll_until, produce_simple, unique_topic, Broker,
    TestConsumer, TestContext,
};
use serde_json::Value;

const NO_JOIN_DELAY: &[&str] = &["--group-initial-rebalance-delay-ms", "0"];
const MEMBER_CLIENT_ID: &str = "cli-test-member";

/// A subscribed member that owns every partition of `topic` and committed `offsets`.
fn member_with_commits(
    brokers: &str,
    group: &str,
    topic: &str,
    offsets: &[(i32, i64)],
) -> TestConsumer {
    let consumer: TestConsumer = group_consumer_config(brokers, group, MEMBER_CLIENT_ID)
        .set("session.timeout.ms", "10000")
        .create_with_context(TestContext)
        .expect("create consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    poll_until(Duration::from_secs(30), "member assigned", || {
        let _ = consumer.poll(Duration::from_millis(100));
        let assigned = consumer.assignment().map(|list| list.count()).unwrap_or(0);
        (assigned == offsets.len()).then_some(())
    });
    let mut list = TopicPartitionList::new();
    for (partition, offset) in offsets {
        list.add_partition_offset(topic, *partition, Offset::Offset(*offset))
            .expect("add partition");
    }
    consumer.commit(&list, CommitMode::Sync).expect("commit");
    consumer
}

/// `group describe --json` rows keyed by partition.
fn described_partitions(brokers: &str, group: &str) -> Vec<Value> {
    let described = corelog(brokers, &["group", "describe", group, "--json"])
        .ok()
        .json();
    let mut rows = described["partitions"]
        .as_array()
        .expect("partitions")
        .clone();
    rows.sort_by_key(|row| row["partition"].as_i64());
    rows
}

fn committed(brokers: &str, group: &str) -> Vec<i64> {
    described_partitions(brokers, group)
        .iter()
        .map(|row| row["committed_offset"].as_i64().expect("committed"))
        .collect()
}

#[test]
fn group_list_describe_reset_and_delete_with_a_live_then_gone_member() {
    let broker = Broker::start(2, NO_JOIN_DELAY);
    let brokers = broker.bootstrap();
    let topic = unique_topic("cli-group-topic");
    let group = unique_topic("cli-group");
    create_topic(&brokers, &topic, 2);
    produce_simple(&brokers, &topic, 0, 10);
    produce_simple(&brokers, &topic, 1, 4);
    let member = member_with_commits(&brokers, &group, &topic, &[(0, 6), (1, 4)]);

    let listed = corelog(&brokers, &["group", "list", "--json"]).ok().json();
    let entry = listed
        .as_array()
        .expect("array")
        .iter()
        .find(|entry| entry["group"] == group.as_str())
        .expect("group listed")
        .clone();
    assert_eq!(entry["state"], "Stable");
    assert_eq!(entry["protocol_type"], "consumer");
    let table = corelog(&brokers, &["group", "list"]).ok();
    let line = table
        .stdout
        .lines()
        .find(|line| line.starts_with(&group))
        .expect("row");
    assert_eq!(
        line.split_whitespace().collect::<Vec<_>>(),
        [group.as_str(), "Stable", "consumer"]
    );

    let rows = described_partitions(&brokers, &group);
    assert_eq!(rows.len(), 2);
    for (row, (committed, end)) in rows.iter().zip([(6, 10), (4, 4)]) {
        assert_eq!(row["topic"], topic.as_str());
        assert_eq!(row["committed_offset"], committed);
        assert_eq!(row["log_end_offset"], end);
        assert_eq!(row["lag"], end - committed);
        assert_eq!(row["client_id"], MEMBER_CLIENT_ID);
        assert!(
            row["member_id"]
                .as_str()
                .unwrap()
                .starts_with(MEMBER_CLIENT_ID),
            "{row}"
        );
    }
    let table = corelog(&brokers, &["group", "describe", &group]).ok();
    assert!(table.stdout.contains("state: Stable"), "{table:#?}");
    assert!(table.stdout.contains("LAG"), "{table:#?}");
    let row = table
        .stdout
        .lines()
        .find(|line| line.starts_with(&format!("{topic}  0")))
        .expect("row");
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[..5], [topic.as_str(), "0", "6", "10", "4"]);
    assert_eq!(cells[6], MEMBER_CLIENT_ID);

    // A dry run prints the plan and commits nothing, even with a member.
    let plan = corelog(
        &brokers,
        &[
            "group",
            "reset-offsets",
            &group,
            "--topic",
            &topic,
            "--to-earliest",
        ],
    )
    .ok();
    assert!(plan.stdout.contains("Dry run"), "{plan:#?}");
    assert_eq!(committed(&brokers, &group), [6, 4]);
    // Executing is refused while the member is active; so is deleting.
    corelog(
        &brokers,
        &[
            "group",
            "reset-offsets",
            &group,
            "--topic",
            &topic,
            "--to-earliest",
            "--execute",
        ],
    )
    .fails_with(&["active member", "stop its consumers"]);
    corelog(&brokers, &["group", "delete", &group]).fails_with(&["still has members"]);
    assert_eq!(committed(&brokers, &group), [6, 4]);

    drop(member); // Closing leaves the group.
    poll_until(Duration::from_secs(20), "group empty", || {
        let described = corelog(&brokers, &["group", "describe", &group, "--json"])
            .ok()
            .json();
        (described["state"] == "Empty").then_some(())
    });
    let reset = |target: &[&str]| {
        let mut args = vec![
            "group",
            "reset-offsets",
            group.as_str(),
            "--topic",
            topic.as_str(),
            "--execute",
        ];
        args.extend_from_slice(target);
        corelog(&brokers, &args).ok();
        committed(&brokers, &group)
    };
    assert_eq!(reset(&["--to-earliest"]), [0, 0]);
    assert_eq!(reset(&["--to-offset", "3"]), [3, 3]);
    assert_eq!(reset(&["--shift-by", "2"]), [5, 4]); // kept within the log
    assert_eq!(reset(&["--shift-by", "-4"]), [1, 0]);
    assert_eq!(reset(&["--to-latest"]), [10, 4]);
    assert_eq!(reset(&["--to-datetime", "2000-01-01T00:00:00Z"]), [0, 0]);
    assert_eq!(reset(&["--to-datetime", "2999-01-01T00:00:00Z"]), [10, 4]);
    let json = corelog(
        &brokers,
        &[
            "group",
            "reset-offsets",
            &group,
            "--topic",
            &format!("{topic}:1"),
            "--to-offset",
            "1",
            "--execute",
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(json["executed"], true);
    assert_eq!(json["partitions"].as_array().unwrap().len(), 1);
    assert_eq!(committed(&brokers, &group), [10, 1]);

    let deleted = corelog(&brokers, &["group", "delete", &group]).ok();
    assert!(
        deleted.stdout.contains(&format!("Deleted group {group}")),
        "{deleted:#?}"
    );
    corelog(&brokers, &["group", "describe", &group]).fails_with(&["does not exist"]);
    let listed = corelog(&brokers, &["group", "list"]).ok();
    assert!(!listed.stdout.contains(&group), "{listed:#?}");
}

#[test]
fn unknown_groups_and_bad_targets_fail_clearly() {
    let broker = Broker::start(2, NO_JOIN_DELAY);
    let brokers = broker.bootstrap();
    corelog(&brokers, &["group", "describe", "missing"])
        .fails_with(&["group missing does not exist"]);
    corelog(&brokers, &["group", "delete", "missing"])
        .fails_with(&["does not exist", "GROUP_ID_NOT_FOUND"]);
    corelog(
        &brokers,
        &[
            "group",
            "reset-offsets",
            "missing",
            "--topic",
            "nope",
            "--to-earliest",
        ],
    )
    .fails_with(&["topic nope does not exist"]);
    corelog(
        &brokers,
        &[
            "group",
            "reset-offsets",
            "g",
            "--topic",
            "t",
            "--to-datetime",
            "yesterday",
        ],
    )
    .fails_with(&["RFC 3339"]);
    // No target, or two: clap's usage error.
    let run = corelog(&brokers, &["group", "reset-offsets", "g", "--topic", "t"]);
    assert_eq!(run.code, Some(2), "{run:#?}");
    let run = corelog(
        &brokers,
        &[
            "group",
            "reset-offsets",
            "g",
            "--topic",
            "t",
            "--to-earliest",
            "--to-latest",
        ],
    );
    assert_eq!(run.code, Some(2), "{run:#?}");
}

#[test]
fn group_commands_fail_fast_when_no_broker_is_reachable() {
    let address = closed_port_address();
    for command in [&["group", "list"][..], &["group", "describe", "g"]] {
        let run = corelog(&address, command).fails_with(&["cannot reach any broker", &address]);
        assert!(run.elapsed < Duration::from_secs(20), "{run:#?}");
    }
}
