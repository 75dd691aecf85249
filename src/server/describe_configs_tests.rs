use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;
use crate::metadata::catalog::test_fixtures::{broker, topic};
use crate::metadata::catalog::{PartitionAssignment, TopicMetadata};

const ALL: Detail = Detail {
    synonyms: true,
    documentation: true,
    version: 4,
};

fn pairs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

fn broker_config(flags: &[(&str, &str)]) -> BrokerConfig {
    let mut config = BrokerConfig::for_test(
        "127.0.0.1:9092".parse().expect("address"),
        "/tmp/corelog-describe-configs".into(),
    );
    config.node_id = 3;
    config.topic_defaults = pairs(flags);
    config
}

fn catalog(overrides: &[(&str, &str)], flags: &[(&str, &str)]) -> Catalog {
    let configs =
        TopicConfigs::from_overrides_with(pairs(overrides), &pairs(flags)).expect("valid configs");
    let orders = TopicMetadata {
        configs,
        ..topic("orders", 1)
    };
    Catalog::new(
        Arc::from("c"),
        3,
        vec![broker(3)],
        [(orders, vec![PartitionAssignment::led_by(3)])],
    )
}

fn find<'a>(
    entries: &'a [DescribeConfigsResourceResult],
    name: &str,
) -> &'a DescribeConfigsResourceResult {
    entries
        .iter()
        .find(|entry| entry.name.as_str() == name)
        .unwrap_or_else(|| panic!("{name} in {entries:?}"))
}

fn listed(entry: &DescribeConfigsResourceResult) -> Vec<(String, Option<String>, i8)> {
    entry
        .synonyms
        .iter()
        .map(|synonym| {
            (
                synonym.name.to_string(),
                synonym.value.as_ref().map(|value| value.to_string()),
                synonym.source,
            )
        })
        .collect()
}

fn named(name: &str, value: &str, source: i8) -> (String, Option<String>, i8) {
    (name.to_string(), Some(value.to_string()), source)
}

#[test]
fn a_topic_override_comes_first_then_the_broker_defaults() {
    let catalog = catalog(&[("segment.bytes", "4096")], &[]);
    let entries = topic_entries(&catalog, "orders", ALL).expect("described");
    assert_eq!(entries.len(), TOPIC_CONFIGS.len());
    let segment_bytes = find(&entries, "segment.bytes");
    assert_eq!(segment_bytes.value.as_deref(), Some("4096"));
    assert_eq!(segment_bytes.config_source, SOURCE_TOPIC);
    assert_eq!(segment_bytes.config_type, ConfigType::Int.id());
    assert!(!segment_bytes.read_only);
    assert_eq!(
        listed(segment_bytes),
        vec![
            named("segment.bytes", "4096", SOURCE_TOPIC),
            named("log.segment.bytes", "1073741824", SOURCE_DEFAULT),
        ]
    );
    // Kafka lists nothing behind retention.ms: its default comes from
    // log.retention.hours, cut from the list before log.retention.ms.
    let retention = find(&entries, "retention.ms");
    assert_eq!(retention.config_source, SOURCE_DEFAULT);
    assert_eq!(retention.value.as_deref(), Some("604800000"));
    assert!(listed(retention).is_empty());
    assert!(listed(find(&entries, "remote.storage.enable")).is_empty());
    assert!(find(&entries, "preallocate")
        .documentation
        .as_deref()
        .is_some_and(|doc| doc.contains("preallocated")));
}

#[test]
fn broker_flags_are_static_broker_synonyms() {
    let flags = [("retention.ms", "5000"), ("min.insync.replicas", "2")];
    let catalog = catalog(&[], &flags);
    let entries = topic_entries(&catalog, "orders", ALL).expect("described");
    let retention = find(&entries, "retention.ms");
    assert_eq!(retention.config_source, SOURCE_STATIC_BROKER);
    assert_eq!(
        listed(retention),
        vec![
            named("log.retention.ms", "5000", SOURCE_STATIC_BROKER),
            named("log.retention.hours", "168", SOURCE_DEFAULT),
        ]
    );
    let min_isr = find(&entries, "min.insync.replicas");
    assert_eq!(min_isr.value.as_deref(), Some("2"));
    assert_eq!(min_isr.config_source, SOURCE_DYNAMIC_DEFAULT_BROKER);
    assert_eq!(
        listed(min_isr),
        vec![
            named("min.insync.replicas", "2", SOURCE_DYNAMIC_DEFAULT_BROKER),
            named("min.insync.replicas", "2", SOURCE_STATIC_BROKER),
            named("min.insync.replicas", "1", SOURCE_DEFAULT),
        ]
    );
}

#[test]
fn synonyms_types_and_documentation_only_when_asked_and_versioned() {
    let catalog = catalog(&[("retention.ms", "1000")], &[]);
    let plain = Detail {
        synonyms: false,
        documentation: false,
        version: 4,
    };
    let entries = topic_entries(&catalog, "orders", plain).expect("described");
    let retention = find(&entries, "retention.ms");
    assert_eq!(retention.config_source, SOURCE_TOPIC);
    assert!(retention.synonyms.is_empty());
    assert_eq!(retention.documentation, None);
    assert_eq!(retention.config_type, ConfigType::Long.id());
    // v1 and v2 have neither field: both stay at their defaults.
    let old = Detail {
        synonyms: true,
        documentation: false,
        version: 2,
    };
    let entries = topic_entries(&catalog, "orders", old).expect("described");
    assert_eq!(find(&entries, "retention.ms").config_type, 0);
}

#[test]
fn unknown_and_illegal_topics_are_refused() {
    let catalog = catalog(&[], &[]);
    let unknown = topic_entries(&catalog, "missing", ALL).expect_err("unknown");
    assert_eq!(unknown.0, KafkaError::UnknownTopicOrPartition);
    let illegal = topic_entries(&catalog, "no/slash", ALL).expect_err("illegal");
    assert_eq!(illegal.0, KafkaError::InvalidTopicException);
}

#[test]
fn this_broker_reports_its_flags_and_kafkas_defaults() {
    let config = broker_config(&[("segment.bytes", "65536")]);
    let entries = broker_entries(&config, "3", ALL).expect("described");
    let names: Vec<&str> = entries.iter().map(|entry| entry.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);
    let segment_bytes = find(&entries, "log.segment.bytes");
    assert_eq!(segment_bytes.value.as_deref(), Some("65536"));
    assert_eq!(segment_bytes.config_source, SOURCE_STATIC_BROKER);
    assert!(segment_bytes.read_only);
    let hours = find(&entries, "log.retention.hours");
    assert_eq!(hours.value.as_deref(), Some("168"));
    assert_eq!(hours.config_type, ConfigType::Int.id());
    assert_eq!(hours.config_source, SOURCE_DEFAULT);
    let retention_ms = find(&entries, "log.retention.ms");
    assert_eq!(retention_ms.value, None);
    assert_eq!(retention_ms.config_source, SOURCE_DEFAULT);
    let node_id = find(&entries, "node.id");
    assert_eq!(node_id.value.as_deref(), Some("3"));
    assert_eq!(node_id.config_source, SOURCE_STATIC_BROKER);
    assert_eq!(find(&entries, "broker.rack").value, None);
    for entry in &entries {
        assert_ne!(entry.config_type, 0, "{}", entry.name.as_str());
        assert!(entry.documentation.is_some(), "{}", entry.name.as_str());
    }
}

#[test]
fn broker_resource_names_follow_kafkas_rules() {
    let config = broker_config(&[]);
    let cluster = broker_entries(&config, "", ALL).expect("cluster defaults");
    let [min_isr] = cluster.as_slice() else {
        panic!("one cluster default: {cluster:?}")
    };
    assert_eq!(min_isr.name.as_str(), "min.insync.replicas");
    assert_eq!(min_isr.config_source, SOURCE_DYNAMIC_DEFAULT_BROKER);
    let other = broker_entries(&config, "4", ALL).expect_err("another broker");
    assert_eq!(other.0, KafkaError::InvalidRequest);
    assert_eq!(
        other.1,
        "Unexpected broker id, expected 3 or empty string, but received 4"
    );
    let word = broker_entries(&config, "me", ALL).expect_err("not a number");
    assert_eq!(word.1, "Broker id must be an integer, but it is: me");
}
