//! `corelog topic ...` against a real broker: the binary is run as a user
//! would, and what it prints (tables and `--json`) and its exit code are
//! checked against what the broker reports to librdkafka.

#[path = "cli_support/mod.rs"]
mod cli_support;
mod common;

use std::time::Duration;

use cli_support::{closed_port_address, corelog, corelog_with_env};
use common::{
    all_topic_names, describe_topic_configs, poll_until, produce_simple, unique_topic, watermarks,
    Broker,
};
use serde_json::Value;

const NO_JOIN_DELAY: &[&str] = &["--group-initial-rebalance-delay-ms", "0"];

fn config_value(described: &Value, name: &str) -> Option<String> {
    described["configs"]
        .as_array()
        .expect("configs array")
        .iter()
        .find(|config| config["name"] == name)
        .map(|config| config["value"].as_str().expect("value").to_string())
}

#[test]
fn topic_create_list_describe_and_delete_round_trip() {
    let broker = Broker::start(2, NO_JOIN_DELAY);
    let brokers = broker.bootstrap();
    let topic = unique_topic("cli-orders");
    let created = corelog(
        &brokers,
        &[
            "topic",
            "create",
            &topic,
            "--partitions",
            "3",
            "--config",
            "retention.ms=3600000",
        ],
    )
    .ok();
    assert!(
        created.stdout.contains(&format!("Created topic {topic}")),
        "{created:#?}"
    );

    let listed = corelog(&brokers, &["topic", "list"]).ok();
    let line = listed
        .stdout
        .lines()
        .find(|line| line.starts_with(&topic))
        .expect("listed");
    assert_eq!(
        line.split_whitespace().collect::<Vec<_>>(),
        [topic.as_str(), "3", "1"]
    );
    assert!(listed.stdout.starts_with("TOPIC"), "{listed:#?}");

    produce_simple(&brokers, &topic, 1, 5);
    let described = corelog(&brokers, &["topic", "describe", &topic, "--json"])
        .ok()
        .json();
    assert_eq!(described["name"], topic.as_str());
    let partitions = described["partitions"].as_array().expect("partitions");
    assert_eq!(partitions.len(), 3);
    for (index, partition) in partitions.iter().enumerate() {
        let (low, high) = watermarks(&brokers, &topic, index as i32);
        assert_eq!(partition["partition"], index);
        assert_eq!(partition["leader"], 0);
        assert_eq!(partition["replicas"], serde_json::json!([0]));
        assert_eq!(partition["log_start_offset"], low);
        assert_eq!(partition["high_watermark"], high);
    }
    assert_eq!(partitions[1]["high_watermark"], 5);
    // Only the override, unless every config is asked for.
    assert_eq!(
        config_value(&described, "retention.ms").as_deref(),
        Some("3600000")
    );
    assert_eq!(config_value(&described, "segment.bytes"), None);
    let all = corelog(
        &brokers,
        &["topic", "describe", &topic, "--json", "--all-configs"],
    )
    .ok()
    .json();
    let expected = describe_topic_configs(&brokers, &topic).expect("describe configs");
    assert_eq!(all["configs"].as_array().unwrap().len(), expected.len());
    assert!(config_value(&all, "segment.bytes").is_some());

    let table = corelog(&brokers, &["topic", "describe", &topic]).ok();
    assert!(table.stdout.contains("HIGH WATERMARK"), "{table:#?}");
    assert!(table.stdout.contains("retention.ms"), "{table:#?}");
    let row = table
        .stdout
        .lines()
        .find(|line| line.starts_with("1 "))
        .expect("partition 1 row");
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        ["1", "0", "0", "0", "0", "5"]
    );

    corelog(&brokers, &["topic", "delete", &topic]).ok();
    poll_until(Duration::from_secs(20), "deleted topic gone", || {
        (!all_topic_names(&brokers).contains(&topic)).then_some(())
    });
    corelog(&brokers, &["topic", "describe", &topic]).fails_with(&["does not exist"]);
}

#[test]
fn topic_list_hides_internal_topics_unless_asked_and_speaks_json() {
    let broker = Broker::start(2, NO_JOIN_DELAY);
    let brokers = broker.bootstrap();
    let topic = unique_topic("cli-listed");
    corelog(&brokers, &["topic", "create", &topic, "--partitions", "2"]).ok();
    // Describing a group makes the broker create __consumer_offsets (FindCoordinator).
    corelog(&brokers, &["group", "describe", "nobody"]).fails_with(&["does not exist"]);
    let plain = corelog(&brokers, &["topic", "list"]).ok();
    assert!(!plain.stdout.contains("__consumer_offsets"), "{plain:#?}");
    let internal = corelog(&brokers, &["topic", "list", "--internal", "--json"])
        .ok()
        .json();
    let topics = internal.as_array().expect("array");
    let offsets = topics
        .iter()
        .find(|entry| entry["name"] == "__consumer_offsets")
        .expect("internal topic listed");
    assert_eq!(offsets["internal"], true);
    let ours = topics
        .iter()
        .find(|entry| entry["name"] == topic.as_str())
        .expect("ours");
    assert_eq!(ours["partitions"], 2);
    assert_eq!(ours["internal"], false);
}

#[test]
fn creating_an_existing_topic_fails_with_kafkas_error() {
    let broker = Broker::start(2, NO_JOIN_DELAY);
    let brokers = broker.bootstrap();
    let topic = unique_topic("cli-twice");
    corelog(&brokers, &["topic", "create", &topic]).ok();
    corelog(&brokers, &["topic", "create", &topic]).fails_with(&["TOPIC_ALREADY_EXISTS", &topic]);
    corelog(&brokers, &["topic", "create", "bad/name"]).fails_with(&["INVALID_TOPIC_EXCEPTION"]);
}

#[test]
fn unknown_topics_fail_with_a_clear_message() {
    let broker = Broker::start(2, NO_JOIN_DELAY);
    let brokers = broker.bootstrap();
    for command in [
        &["topic", "describe", "missing"][..],
        &["topic", "delete", "missing"],
    ] {
        corelog(&brokers, command).fails_with(&[
            "missing",
            "does not exist",
            "UNKNOWN_TOPIC_OR_PARTITION",
        ]);
    }
    corelog(
        &brokers,
        &["topic", "add-partitions", "missing", "--total", "3"],
    )
    .fails_with(&["does not exist"]);
    corelog(
        &brokers,
        &[
            "topic",
            "alter-config",
            "missing",
            "--set",
            "retention.ms=1",
        ],
    )
    .fails_with(&["does not exist"]);
    // Describing does not auto-create the topic.
    assert!(!all_topic_names(&brokers).contains(&"missing".to_string()));
}

#[test]
fn an_unreachable_broker_fails_fast_with_a_friendly_message() {
    let address = closed_port_address();
    let run = corelog(&address, &["topic", "list"]).fails_with(&[
        "cannot reach any broker",
        &address,
        "CORELOG_BROKERS",
    ]);
    // A hang check, not a speed test: a refused connection must not wait for timeouts.
    assert!(run.elapsed < Duration::from_secs(20), "{run:#?}");
    assert!(!run.stderr.contains("panicked"), "{run:#?}");
}

#[test]
fn brokers_come_from_the_flag_anywhere_or_the_environment() {
    let broker = Broker::start(2, NO_JOIN_DELAY);
    let brokers = broker.bootstrap();
    let closed = closed_port_address();
    // The flag wins over the variable, before or after the subcommand.
    corelog(&closed, &["topic", "--brokers", &brokers, "list"]).ok();
    corelog(&closed, &["topic", "list", "--brokers", &brokers]).ok();
    // Later bootstrap addresses are tried when the first is down.
    corelog(&format!("{closed},{brokers}"), &["topic", "list"]).ok();
    // Without either, the default 127.0.0.1:9092 is used (nothing listens there in tests
    // unless a developer runs a broker, so only the flag-less parse is checked).
    let help = corelog_with_env(&["topic", "list", "--help"], &[]).ok();
    assert!(help.stdout.contains("CORELOG_BROKERS"), "{help:#?}");
}

#[test]
fn bad_flags_are_usage_errors() {
    let broker = Broker::start(2, NO_JOIN_DELAY);
    let brokers = broker.bootstrap();
    let run = corelog(&brokers, &["topic", "create"]);
    assert_eq!(run.code, Some(2), "{run:#?}");
    assert!(run.stderr.contains("Usage"), "{run:#?}");
    let run = corelog(&brokers, &["topic", "create", "t", "--config", "novalue"]);
    assert_eq!(run.code, Some(2), "{run:#?}");
    assert!(run.stderr.contains("key=value"), "{run:#?}");
    corelog(&brokers, &["topic", "alter-config", "t"]).fails_with(&["nothing to change"]);
}

#[test]
fn add_partitions_grows_a_topic_and_never_shrinks_it() {
    let broker = Broker::start(2, NO_JOIN_DELAY);
    let brokers = broker.bootstrap();
    let topic = unique_topic("cli-grow");
    corelog(&brokers, &["topic", "create", &topic, "--partitions", "2"]).ok();
    let grown = corelog(
        &brokers,
        &["topic", "add-partitions", &topic, "--total", "5"],
    )
    .ok();
    assert!(
        grown.stdout.contains("now has 5 partitions (was 2)"),
        "{grown:#?}"
    );
    let described = corelog(&brokers, &["topic", "describe", &topic, "--json"])
        .ok()
        .json();
    assert_eq!(described["partitions"].as_array().unwrap().len(), 5);
    produce_simple(&brokers, &topic, 4, 3);
    corelog(
        &brokers,
        &["topic", "add-partitions", &topic, "--total", "3"],
    )
    .fails_with(&["INVALID_PARTITIONS"]);
}

#[test]
fn alter_config_sets_and_removes_topic_overrides() {
    let broker = Broker::start(2, NO_JOIN_DELAY);
    let brokers = broker.bootstrap();
    let topic = unique_topic("cli-configs");
    corelog(&brokers, &["topic", "create", &topic]).ok();
    corelog(
        &brokers,
        &[
            "topic",
            "alter-config",
            &topic,
            "--set",
            "retention.ms=120000",
            "--set",
            "segment.bytes=1048576",
        ],
    )
    .ok();
    let described = corelog(&brokers, &["topic", "describe", &topic, "--json"])
        .ok()
        .json();
    assert_eq!(
        config_value(&described, "retention.ms").as_deref(),
        Some("120000")
    );
    assert_eq!(
        config_value(&described, "segment.bytes").as_deref(),
        Some("1048576")
    );
    corelog(
        &brokers,
        &["topic", "alter-config", &topic, "--delete", "retention.ms"],
    )
    .ok();
    let described = corelog(&brokers, &["topic", "describe", &topic, "--json"])
        .ok()
        .json();
    assert_eq!(config_value(&described, "retention.ms"), None);
    assert_eq!(
        config_value(&described, "segment.bytes").as_deref(),
        Some("1048576")
    );
    corelog(
        &brokers,
        &[
            "topic",
            "alter-config",
            &topic,
            "--set",
            "retention.ms=soon",
        ],
    )
    .fails_with(&["INVALID_CONFIG"]);
}

#[test]
fn kafka_tools_spellings_work_too() {
    let broker = Broker::start(2, NO_JOIN_DELAY);
    let brokers = broker.bootstrap();
    let topic = unique_topic("cli-kafka-spelling");
    // kafka-topics' flags: --bootstrap-server, --topic, -p / -r.
    let created = corelog_with_env(
        &[
            "topic",
            "create",
            "--bootstrap-server",
            &brokers,
            "--topic",
            &topic,
            "-p",
            "3",
            "-r",
            "1",
        ],
        &[],
    )
    .ok();
    assert!(
        created.stdout.contains(&format!("Created topic {topic}")),
        "{created:#?}"
    );
    let described = corelog(
        &brokers,
        &["topic", "describe", "--topic", &topic, "--json"],
    )
    .ok()
    .json();
    assert_eq!(
        described["partitions"].as_array().map(Vec::len),
        Some(3),
        "{described:#}"
    );
    corelog(
        &brokers,
        &["topic", "add-partitions", "--topic", &topic, "--total", "4"],
    )
    .ok();
    // A topic named twice is a usage error, not a guess.
    let run = corelog(&brokers, &["topic", "describe", &topic, "--topic", &topic]);
    assert_eq!(run.code, Some(2), "{run:#?}");
    corelog(&brokers, &["topic", "delete", "--topic", &topic]).ok();
    corelog(&brokers, &["topic", "describe", "--topic", &topic]).fails_with(&["does not exist"]);
}
