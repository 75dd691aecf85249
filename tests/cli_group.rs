//! `corelog group ...` against a real broker, with a librdkafka consumer as
//! the group's member: list and describe (type, members, committed offsets,
//! lag), reset-offsets (dry run, refused while the member is active, each
//! target once it left) and delete; for classic groups and for KIP-848
//! consumer groups (`group.protocol=consumer`: epochs, current and target
//! assignments).

#[path = "cli_support/mod.rs"]
mod cli_support;
mod common;

use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use cli_support::{closed_port_address, corelog, Run};
use common::{
    create_topic, group_consumer_config, poll_until, produce_simple, unique_topic, Broker,
    TestConsumer, TestContext,
};
use serde_json::Value;

const NO_JOIN_DELAY: &[&str] = &["--group-initial-rebalance-delay-ms", "0"];
const MEMBER_CLIENT_ID: &str = "cli-test-member";

/// A classic-protocol member (librdkafka's default `group.protocol`).
const CLASSIC_PROTOCOL: &[(&str, &str)] = &[("session.timeout.ms", "10000")];
/// A KIP-848 member: ConsumerGroupHeartbeat; the coordinator assigns and
/// owns the session timeout (librdkafka refuses `session.timeout.ms` here).
const CONSUMER_PROTOCOL: &[(&str, &str)] = &[("group.protocol", "consumer")];

/// The offsets the members commit on [`TOPIC_RECORDS`]: (partition, offset).
const MEMBER_COMMITS: &[(i32, i64)] = &[(0, 6), (1, 4)];
/// Records produced to each partition of the test topic: (partition, count).
const TOPIC_RECORDS: [(i32, i64); 2] = [(0, 10), (1, 4)];

/// A broker (its bootstrap address alongside) with a fresh topic whose two
/// partitions hold [`TOPIC_RECORDS`].
fn broker_with_topic(topic_prefix: &str) -> (Broker, String, String) {
    let broker = Broker::start(2, NO_JOIN_DELAY);
    let brokers = broker.bootstrap();
    let topic = unique_topic(topic_prefix);
    create_topic(&brokers, &topic, 2);
    for (partition, count) in TOPIC_RECORDS {
        produce_simple(&brokers, &topic, partition, count as usize);
    }
    (broker, brokers, topic)
}

/// A subscribed member, with these `settings`, that owns every partition of
/// `topic` and committed `offsets`.
fn member_with_commits(
    brokers: &str,
    group: &str,
    topic: &str,
    offsets: &[(i32, i64)],
    settings: &[(&str, &str)],
) -> TestConsumer {
    let mut config = group_consumer_config(brokers, group, MEMBER_CLIENT_ID);
    for (key, value) in settings {
        config.set(*key, *value);
    }
    let consumer: TestConsumer = config
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

/// `group describe --json`.
fn described(brokers: &str, group: &str) -> Value {
    corelog(brokers, &["group", "describe", group, "--json"])
        .ok()
        .json()
}

/// `group describe --json` once the group reached `state`; `between_tries`
/// runs before each try (a KIP-848 member must poll to heartbeat).
fn described_once_in_state(
    brokers: &str,
    group: &str,
    state: &str,
    mut between_tries: impl FnMut(),
) -> Value {
    let what = format!("group {group} {state}");
    poll_until(Duration::from_secs(20), &what, || {
        between_tries();
        let described = described(brokers, group);
        (described["state"] == state).then_some(described)
    })
}

/// `group describe --json` rows keyed by partition.
fn described_partitions(brokers: &str, group: &str) -> Vec<Value> {
    let mut rows = described(brokers, group)["partitions"]
        .as_array()
        .expect("partitions")
        .clone();
    rows.sort_by_key(|row| row["partition"].as_i64());
    rows
}

/// Checks that the described rows show [`MEMBER_COMMITS`] against
/// [`TOPIC_RECORDS`] and the lag between them, and returns the rows.
fn described_partitions_with_member_commits(brokers: &str, group: &str) -> Vec<Value> {
    let rows = described_partitions(brokers, group);
    assert_eq!(rows.len(), 2);
    for (row, ((_, committed), (_, end))) in
        rows.iter().zip(MEMBER_COMMITS.iter().zip(TOPIC_RECORDS))
    {
        assert_eq!(row["committed_offset"], *committed, "{row}");
        assert_eq!(row["log_end_offset"], end, "{row}");
        assert_eq!(row["lag"], end - committed, "{row}");
    }
    rows
}

fn committed(brokers: &str, group: &str) -> Vec<i64> {
    described_partitions(brokers, group)
        .iter()
        .map(|row| row["committed_offset"].as_i64().expect("committed"))
        .collect()
}

/// `group list --json`'s entry for `group`.
fn listed(brokers: &str, group: &str) -> Value {
    let listed = corelog(brokers, &["group", "list", "--json"]).ok().json();
    listed
        .as_array()
        .expect("array")
        .iter()
        .find(|entry| entry["group"] == group)
        .unwrap_or_else(|| panic!("{group} not listed: {listed:#}"))
        .clone()
}

/// The whitespace-separated cells of the first line of `run`'s table whose
/// first cell is `first_cell`.
fn table_row<'run>(run: &'run Run, first_cell: &str) -> Vec<&'run str> {
    let line = run
        .stdout
        .lines()
        .find(|line| line.split_whitespace().next() == Some(first_cell))
        .unwrap_or_else(|| panic!("no row for {first_cell}: {run:#?}"));
    line.split_whitespace().collect()
}

/// The cells of `group describe`'s table row for `topic`'s partition 0.
fn partition_zero_row<'run>(run: &'run Run, topic: &str) -> Vec<&'run str> {
    let row = run
        .stdout
        .lines()
        .find(|line| line.starts_with(&format!("{topic}  0")))
        .expect("partition row");
    row.split_whitespace().collect()
}

/// `group reset-offsets GROUP --topic TOPIC --to-earliest`, executed or a dry run.
fn reset_to_earliest(brokers: &str, group: &str, topic: &str, execute: bool) -> Run {
    let mut args = vec![
        "group",
        "reset-offsets",
        group,
        "--topic",
        topic,
        "--to-earliest",
    ];
    if execute {
        args.push("--execute");
    }
    corelog(brokers, &args)
}

#[test]
fn group_list_describe_reset_and_delete_with_a_live_then_gone_member() {
    let (_broker, brokers, topic) = broker_with_topic("cli-group-topic");
    let group = unique_topic("cli-group");
    let member = member_with_commits(&brokers, &group, &topic, MEMBER_COMMITS, CLASSIC_PROTOCOL);

    let entry = listed(&brokers, &group);
    assert_eq!(entry["type"], "classic");
    assert_eq!(entry["state"], "Stable");
    assert_eq!(entry["protocol_type"], "consumer");
    let table = corelog(&brokers, &["group", "list"]).ok();
    assert_eq!(
        table_row(&table, &group),
        [group.as_str(), "classic", "Stable", "consumer"]
    );

    for row in described_partitions_with_member_commits(&brokers, &group) {
        assert_eq!(row["topic"], topic.as_str());
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
    assert!(
        table.stdout.contains("type: classic  state: Stable"),
        "{table:#?}"
    );
    assert!(table.stdout.contains("LAG"), "{table:#?}");
    let cells = partition_zero_row(&table, &topic);
    assert_eq!(cells[..5], [topic.as_str(), "0", "6", "10", "4"]);
    assert_eq!(cells[6], MEMBER_CLIENT_ID);

    // A dry run prints the plan and commits nothing, even with a member.
    let plan = reset_to_earliest(&brokers, &group, &topic, false).ok();
    assert!(plan.stdout.contains("Dry run"), "{plan:#?}");
    assert_eq!(committed(&brokers, &group), [6, 4]);
    // Executing is refused while the member is active; so is deleting.
    reset_to_earliest(&brokers, &group, &topic, true)
        .fails_with(&["active member", "stop its consumers"]);
    corelog(&brokers, &["group", "delete", &group]).fails_with(&["still has members"]);
    assert_eq!(committed(&brokers, &group), [6, 4]);

    drop(member); // Closing leaves the group.
    described_once_in_state(&brokers, &group, "Empty", || {});
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
fn consumer_protocol_groups_show_their_type_epochs_and_assignments() {
    let (_broker, brokers, topic) = broker_with_topic("cli-kip848-topic");
    let group = unique_topic("cli-kip848-group");
    let classic_group = unique_topic("cli-classic-group");
    let member = member_with_commits(&brokers, &group, &topic, MEMBER_COMMITS, CONSUMER_PROTOCOL);
    let classic_member = member_with_commits(
        &brokers,
        &classic_group,
        &topic,
        &[(0, 1), (1, 1)],
        CLASSIC_PROTOCOL,
    );
    // The member acknowledges its assignment on its next heartbeat.
    let described = described_once_in_state(&brokers, &group, "Stable", || {
        let _ = member.poll(Duration::from_millis(100));
    });

    let entry = listed(&brokers, &group);
    assert_eq!(entry["type"], "consumer", "{entry}");
    assert_eq!(entry["state"], "Stable", "{entry}");
    assert_eq!(entry["protocol_type"], "consumer", "{entry}");
    assert_eq!(listed(&brokers, &classic_group)["type"], "classic");
    let table = corelog(&brokers, &["group", "list"]).ok();
    assert!(
        table.stdout.starts_with("GROUP") && table.stdout.contains("TYPE"),
        "{table:#?}"
    );
    assert_eq!(
        table_row(&table, &group),
        [group.as_str(), "consumer", "Stable", "consumer"]
    );
    assert_eq!(table_row(&table, &classic_group)[1], "classic");

    assert_eq!(described["type"], "consumer", "{described:#}");
    assert_eq!(described["assignor"], "uniform", "{described:#}");
    let group_epoch = described["group_epoch"].as_i64().expect("group epoch");
    assert!(group_epoch >= 1, "{described:#}");
    assert_eq!(described["assignment_epoch"], group_epoch, "{described:#}");
    let members = described["members"].as_array().expect("members");
    assert_eq!(members.len(), 1, "{described:#}");
    let described_member = &members[0];
    let member_id = described_member["member_id"].as_str().expect("member id");
    assert_eq!(described_member["member_epoch"], group_epoch);
    assert_eq!(described_member["client_id"], MEMBER_CLIENT_ID);
    assert_eq!(
        described_member["subscribed_topic_names"][0],
        topic.as_str()
    );
    for field in ["assignment", "target_assignment"] {
        let assigned = &described_member[field];
        assert_eq!(assigned[0]["topic"], topic.as_str(), "{field}: {assigned}");
        assert_eq!(assigned[0]["partitions"], serde_json::json!([0, 1]));
        assert!(assigned[0]["topic_id"].as_str().is_some(), "{assigned}");
    }
    for row in described_partitions_with_member_commits(&brokers, &group) {
        assert_eq!(row["member_id"], member_id, "{row}");
    }

    let table = corelog(&brokers, &["group", "describe", &group]).ok();
    let header = format!(
        "Group: {group}  type: consumer  state: Stable  group epoch: {group_epoch}  \
         assignment epoch: {group_epoch}  assignor: uniform  members: 1"
    );
    assert!(table.stdout.starts_with(&header), "{table:#?}");
    let cells = partition_zero_row(&table, &topic);
    assert_eq!(cells[..6], [topic.as_str(), "0", "6", "10", "4", member_id]);
    assert_eq!(
        table_row(&table, "CONSUMER-ID").join(" "),
        "CONSUMER-ID GROUP-INSTANCE-ID HOST CLIENT-ID #PARTITIONS EPOCH ASSIGNMENT \
         TARGET-ASSIGNMENT"
    );
    let cells = table_row(&table, member_id);
    let assignment = format!("{topic}(0,1)");
    let epoch = group_epoch.to_string();
    assert_eq!(cells[1], "-", "no group.instance.id: {cells:?}");
    assert_eq!(
        cells[3..],
        [
            MEMBER_CLIENT_ID,
            "2",
            epoch.as_str(),
            assignment.as_str(),
            assignment.as_str()
        ],
        "{cells:?}"
    );
    let classic = corelog(&brokers, &["group", "describe", &classic_group]).ok();
    assert!(
        classic.stdout.contains("type: classic  state: Stable"),
        "{classic:#?}"
    );
    assert!(!classic.stdout.contains("CONSUMER-ID"), "{classic:#?}");
    drop(classic_member);

    // A consumer group's members block a reset too (DescribeGroups does not see them).
    reset_to_earliest(&brokers, &group, &topic, true)
        .fails_with(&["consumer group", "active member"]);
    drop(member); // Closing leaves the group: a heartbeat with epoch -1.
    let described = described_once_in_state(&brokers, &group, "Empty", || {});
    assert_eq!(described["type"], "consumer", "{described:#}");
    assert_eq!(described["members"], serde_json::json!([]), "{described:#}");
    reset_to_earliest(&brokers, &group, &topic, true).ok();
    assert_eq!(committed(&brokers, &group), [0, 0]);
    corelog(&brokers, &["group", "delete", &group]).ok();
    corelog(&brokers, &["group", "describe", &group]).fails_with(&["does not exist"]);
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
