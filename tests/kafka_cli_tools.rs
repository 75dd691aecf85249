//! Kafka's own command-line tools (the kafka-tools jars of the reference Kafka, run with
//! `java -cp` by `tests/reference_kafka/kafka.sh tool`) against corelog: exactly the
//! quickstart commands (`kafka-topics --list`, `--create --topic T --partitions 1`,
//! `--describe --topic T`, `kafka-console-producer` fed from stdin, `kafka-console-consumer
//! --from-beginning --max-messages N`), then `kafka-consumer-groups --describe` and
//! `--reset-offsets --to-earliest --execute`, and `kafka-configs --alter` / `--describe` on a
//! topic. Each command's exit code and output are asserted as Kafka's tools print them.
//!
//! The same script runs against the reference Kafka too (the second test), so every
//! expectation here is what real Kafka answers. One broker per test, one JVM per command; the
//! two tests take turns. Java 17+ and Maven are required (`./test.sh` installs them and
//! fetches the tools); without them the tests fail, they never skip.

mod common;

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use common::jvm::{self, Finished, ReferenceKafka};
use common::Broker;

/// One tool run: 2 to 4 s of JVM start-up and a few requests; the console consumer waits
/// for its messages.
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);
/// No wait for latecomers before a group's first rebalance (`kafka.sh` sets Kafka's the same).
const BROKER_FLAGS: &[&str] = &["--group-initial-rebalance-delay-ms", "0"];
const MESSAGES: [&str; 3] = ["first event", "second event", "third event"];

/// One test at a time: each runs a dozen JVMs back to back on a 2-core machine.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn take_turn() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poison| poison.into_inner())
}

/// `kafka.sh tool <tool> --bootstrap-server <bootstrap> <args>`, asserting exit code 0.
fn tool(bootstrap: &str, tool: &str, args: &[&str], stdin: Option<&str>) -> Finished {
    let finished = run_tool(bootstrap, tool, args, stdin);
    assert!(
        finished.success(),
        "{tool} {} failed against {bootstrap}: {}",
        args.join(" "),
        finished.describe()
    );
    finished
}

fn run_tool(bootstrap: &str, tool: &str, args: &[&str], stdin: Option<&str>) -> Finished {
    let mut full_args = vec!["--bootstrap-server", bootstrap];
    full_args.extend_from_slice(args);
    jvm::kafka_tool(tool, &full_args, stdin, TOOL_TIMEOUT)
}

/// The whitespace-separated fields of each line of `text` that starts with `first`.
fn rows_starting_with<'a>(text: &'a str, first: &str) -> Vec<Vec<&'a str>> {
    text.lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(|fields| fields.first() == Some(&first))
        .collect()
}

/// The quickstart, then consumer groups and topic configs, against the broker at `bootstrap`.
fn quickstart_commands_work(bootstrap: &str, suffix: &str) {
    let topic = format!("quickstart-events-{suffix}");
    let group = format!("quickstart-group-{suffix}");

    // kafka-topics --list, --create, --describe.
    let listed = tool(bootstrap, "kafka-topics", &["--list"], None);
    assert!(
        !listed.stdout.lines().any(|line| line == topic),
        "{topic} listed before it was created:\n{}",
        listed.stdout
    );
    let created = tool(
        bootstrap,
        "kafka-topics",
        &["--create", "--topic", &topic, "--partitions", "1"],
        None,
    );
    assert_eq!(created.stdout.trim(), format!("Created topic {topic}."));
    let again = run_tool(
        bootstrap,
        "kafka-topics",
        &["--create", "--topic", &topic, "--partitions", "1"],
        None,
    );
    assert_eq!(
        again.code(),
        Some(1),
        "a second --create: {}",
        again.describe()
    );
    assert!(
        again
            .stdout
            .contains(&format!("Topic '{topic}' already exists.")),
        "a second --create: {}",
        again.describe()
    );
    let listed = tool(bootstrap, "kafka-topics", &["--list"], None);
    assert!(
        listed.stdout.lines().any(|line| line == topic),
        "--list after --create does not show {topic}:\n{}",
        listed.stdout
    );
    let described = tool(
        bootstrap,
        "kafka-topics",
        &["--describe", "--topic", &topic],
        None,
    );
    let summary = rows_starting_with(&described.stdout, "Topic:");
    assert_eq!(summary.len(), 2, "--describe:\n{}", described.stdout);
    let (topic_line, partition_line) = (summary[0].join(" "), summary[1].join(" "));
    assert!(
        topic_line.starts_with(&format!("Topic: {topic} TopicId: "))
            && topic_line.contains("PartitionCount: 1 ReplicationFactor: 1"),
        "--describe topic line: {topic_line}"
    );
    assert!(
        partition_line.starts_with(&format!("Topic: {topic} Partition: 0 Leader: ")),
        "--describe partition line: {partition_line}"
    );
    let leader = summary[1][5];
    assert!(
        partition_line.contains(&format!("Replicas: {leader} Isr: {leader}")),
        "--describe partition line: {partition_line}"
    );

    // kafka-console-producer fed from stdin, kafka-console-consumer --from-beginning.
    let input = MESSAGES.map(|message| format!("{message}\n")).concat();
    tool(
        bootstrap,
        "kafka-console-producer",
        &["--topic", &topic],
        Some(&input),
    );
    let count = MESSAGES.len().to_string();
    let consumed = tool(
        bootstrap,
        "kafka-console-consumer",
        &[
            "--topic",
            &topic,
            "--from-beginning",
            "--max-messages",
            &count,
            "--group",
            &group,
        ],
        None,
    );
    assert_eq!(consumed.stdout.lines().collect::<Vec<_>>(), MESSAGES);
    assert!(
        consumed
            .stderr
            .contains(&format!("Processed a total of {count} messages")),
        "console consumer: {}",
        consumed.describe()
    );

    // kafka-consumer-groups --list, --describe: the consumer committed its position on close.
    let groups = tool(bootstrap, "kafka-consumer-groups", &["--list"], None);
    assert!(
        groups.stdout.lines().any(|line| line == group),
        "--list does not show {group}:\n{}",
        groups.stdout
    );
    assert_group_offsets(bootstrap, &group, &topic, 3, 0);

    // --reset-offsets --to-earliest --execute, then the group reads everything again.
    let reset = tool(
        bootstrap,
        "kafka-consumer-groups",
        &[
            "--reset-offsets",
            "--to-earliest",
            "--group",
            &group,
            "--topic",
            &topic,
            "--execute",
        ],
        None,
    );
    assert_eq!(
        rows_starting_with(&reset.stdout, "GROUP").len(),
        1,
        "--reset-offsets prints a header: {}",
        reset.describe()
    );
    assert_eq!(
        rows_starting_with(&reset.stdout, &group),
        vec![vec![group.as_str(), topic.as_str(), "0", "0"]],
        "--reset-offsets: GROUP TOPIC PARTITION NEW-OFFSET: {}",
        reset.describe()
    );
    assert_group_offsets(bootstrap, &group, &topic, 0, 3);
    let again = tool(
        bootstrap,
        "kafka-console-consumer",
        &[
            "--topic",
            &topic,
            "--max-messages",
            &count,
            "--group",
            &group,
        ],
        None,
    );
    assert_eq!(
        again.stdout.lines().collect::<Vec<_>>(),
        MESSAGES,
        "the group reads from its reset offset"
    );

    // kafka-configs --alter --add-config / --delete-config, --describe.
    let topic_entity = ["--entity-type", "topics", "--entity-name", &topic];
    let altered = tool(
        bootstrap,
        "kafka-configs",
        &[
            &topic_entity[..],
            &[
                "--alter",
                "--add-config",
                "retention.ms=3600000,max.message.bytes=200000",
            ],
        ]
        .concat(),
        None,
    );
    assert_eq!(
        altered.stdout.trim(),
        format!("Completed updating config for topic {topic}.")
    );
    let described = tool(
        bootstrap,
        "kafka-configs",
        &[&topic_entity[..], &["--describe"]].concat(),
        None,
    );
    let lines: Vec<&str> = described.stdout.lines().map(str::trim).collect();
    assert_eq!(
        lines.first().copied(),
        Some(format!("Dynamic configs for topic {topic} are:").as_str()),
        "kafka-configs --describe:\n{}",
        described.stdout
    );
    let mut dynamic = lines[1..].to_vec();
    dynamic.sort_unstable();
    assert_eq!(
        dynamic.len(),
        2,
        "kafka-configs --describe:\n{}",
        described.stdout
    );
    // Each dynamic config with its synonyms, most specific first (KIP-226); the broker's
    // default for message.max.bytes is its own business.
    let max_message_bytes = "max.message.bytes=200000 sensitive=false \
         synonyms={DYNAMIC_TOPIC_CONFIG:max.message.bytes=200000, DEFAULT_CONFIG:message.max.bytes=";
    assert!(
        dynamic[0].starts_with(max_message_bytes) && dynamic[0].ends_with('}'),
        "kafka-configs --describe:\n{}",
        described.stdout
    );
    assert_eq!(
        dynamic[1],
        "retention.ms=3600000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=3600000}",
        "kafka-configs --describe:\n{}",
        described.stdout
    );
    tool(
        bootstrap,
        "kafka-configs",
        &[
            &topic_entity[..],
            &["--alter", "--delete-config", "max.message.bytes"],
        ]
        .concat(),
        None,
    );
    let described = tool(
        bootstrap,
        "kafka-configs",
        &[&topic_entity[..], &["--describe"]].concat(),
        None,
    );
    let lines: Vec<&str> = described.stdout.lines().skip(1).map(str::trim).collect();
    assert_eq!(
        lines.len(),
        1,
        "after --delete-config max.message.bytes:\n{}",
        described.stdout
    );
    assert!(
        lines[0].starts_with("retention.ms=3600000 "),
        "after --delete-config:\n{}",
        described.stdout
    );
}

/// `kafka-consumer-groups --describe --group <group>` of a group without members: one row
/// for partition 0 of `topic` with the committed offset, log end offset 3 and the lag.
fn assert_group_offsets(bootstrap: &str, group: &str, topic: &str, current: i64, lag: i64) {
    let described = tool(
        bootstrap,
        "kafka-consumer-groups",
        &["--describe", "--group", group],
        None,
    );
    let all = format!("{}{}", described.stdout, described.stderr);
    assert!(
        all.contains(&format!("Consumer group '{group}' has no active members.")),
        "--describe of an empty group: {}",
        described.describe()
    );
    let header = rows_starting_with(&described.stdout, "GROUP");
    assert_eq!(
        header,
        vec![vec![
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID"
        ]],
        "--describe header: {}",
        described.describe()
    );
    let (current, lag) = (current.to_string(), lag.to_string());
    assert_eq!(
        rows_starting_with(&described.stdout, group),
        vec![vec![group, topic, "0", &current, "3", &lag, "-", "-", "-"]],
        "--describe --group {group}: {}",
        described.describe()
    );
}

#[test]
fn kafka_quickstart_tools_work_against_corelog() {
    let _turn = take_turn();
    jvm::require_java_and_maven();
    let mut broker = Broker::start(2, BROKER_FLAGS);
    quickstart_commands_work(&broker.bootstrap(), "corelog");
    broker.assert_alive();
}

/// Proves every expectation above on real Kafka.
#[test]
fn kafka_quickstart_tools_work_against_reference_kafka() {
    let _turn = take_turn();
    jvm::require_java_and_maven();
    let kafka = ReferenceKafka::start();
    quickstart_commands_work(kafka.bootstrap(), "kafka");
}
