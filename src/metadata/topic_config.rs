//! Topic configs: Kafka's names, defaults and validation, and the translation
//! into the log's `LogConfig`. Unknown names are refused (INVALID_CONFIG) as
//! the Java broker does; known configs corelog does not act on are stored and
//! reported back, so admin tools round-trip them.

use std::collections::BTreeMap;

use crate::config::FlushPolicy;
use crate::log::{LogConfig, TimestampType};

/// Kafka's default `max.message.bytes` (1 MiB + record batch overhead).
pub const DEFAULT_MAX_MESSAGE_BYTES: i32 = 1_048_588;
/// Smallest `segment.bytes` accepted: small enough for tests, large enough
/// that one segment holds at least a header-sized batch.
pub const MIN_SEGMENT_BYTES: i64 = 1024;

/// Every topic-level config the Java broker knows, with its default as text.
pub const TOPIC_CONFIG_DEFAULTS: &[(&str, &str)] = &[
    ("cleanup.policy", "delete"),
    ("compression.type", "producer"),
    ("delete.retention.ms", "86400000"),
    ("file.delete.delay.ms", "60000"),
    ("flush.messages", "9223372036854775807"),
    ("flush.ms", "9223372036854775807"),
    ("follower.replication.throttled.replicas", ""),
    ("index.interval.bytes", "4096"),
    ("leader.replication.throttled.replicas", ""),
    ("local.retention.bytes", "-2"),
    ("local.retention.ms", "-2"),
    ("max.compaction.lag.ms", "9223372036854775807"),
    ("max.message.bytes", "1048588"),
    ("message.downconversion.enable", "true"),
    ("message.format.version", "3.0-IV1"),
    ("message.timestamp.after.max.ms", "9223372036854775807"),
    ("message.timestamp.before.max.ms", "9223372036854775807"),
    ("message.timestamp.difference.max.ms", "9223372036854775807"),
    ("message.timestamp.type", "CreateTime"),
    ("min.cleanable.dirty.ratio", "0.5"),
    ("min.compaction.lag.ms", "0"),
    ("min.insync.replicas", "1"),
    ("preallocate", "false"),
    ("remote.log.copy.disable", "false"),
    ("remote.log.delete.on.disable", "false"),
    ("remote.storage.enable", "false"),
    ("retention.bytes", "-1"),
    ("retention.ms", "604800000"),
    ("segment.bytes", "1073741824"),
    ("segment.index.bytes", "10485760"),
    ("segment.jitter.ms", "0"),
    ("segment.ms", "604800000"),
    ("unclean.leader.election.enable", "false"),
];

/// A topic's config overrides plus the values corelog acts on, parsed once.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicConfigs {
    overrides: BTreeMap<String, String>,
    /// Broker-level defaults set by flags (`--log-retention-ms`...), which
    /// replace Kafka's defaults for configs a topic does not override.
    broker_defaults: BTreeMap<String, String>,
    pub max_message_bytes: i32,
    pub segment_bytes: u64,
    pub segment_ms: i64,
    pub index_interval_bytes: u32,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub timestamp_type: TimestampType,
    /// `min.insync.replicas`: the ISR size below which acks=all produces
    /// are refused with NOT_ENOUGH_REPLICAS (at least 1).
    pub min_insync_replicas: i32,
    /// `unclean.leader.election.enable`: whether the controller may elect a
    /// replica outside the ISR when no ISR member can lead (records the ISR
    /// had and it did not are then lost).
    pub unclean_leader_election_enable: bool,
}

impl Default for TopicConfigs {
    fn default() -> Self {
        match TopicConfigs::from_overrides(BTreeMap::new()) {
            Ok(configs) => configs,
            Err(_) => unreachable!("the defaults are valid"),
        }
    }
}

fn parse_number(name: &str, value: &str, min: i64) -> Result<i64, String> {
    let number = value.trim().parse::<i64>().map_err(|_| {
        format!("Invalid value {value} for configuration {name}: Not a number of type LONG")
    })?;
    if number < min {
        return Err(format!(
            "Invalid value {value} for configuration {name}: Value must be at least {min}"
        ));
    }
    Ok(number)
}

/// Kafka's INT configs: the same checks as [`parse_number`], in 32 bits.
fn parse_int(name: &str, value: &str, min: i32) -> Result<i32, String> {
    let number = value.trim().parse::<i32>().map_err(|_| {
        format!("Invalid value {value} for configuration {name}: Not a number of type INT")
    })?;
    if number < min {
        return Err(format!(
            "Invalid value {value} for configuration {name}: Value must be at least {min}"
        ));
    }
    Ok(number)
}

/// Kafka's BOOLEAN configs (`ConfigDef.parseType`): true or false, any case.
fn parse_bool(name: &str, value: &str) -> Result<bool, String> {
    let trimmed = value.trim();
    if trimmed.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if trimmed.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(format!(
            "Invalid value {value} for configuration {name}: Expected value to be either true or false"
        ))
    }
}

impl TopicConfigs {
    /// Validates `overrides` (names and values) and parses the ones we act on.
    /// The error text is what goes into CreateTopics' error_message.
    pub fn from_overrides(overrides: BTreeMap<String, String>) -> Result<TopicConfigs, String> {
        TopicConfigs::from_overrides_with(overrides, &BTreeMap::new())
    }

    /// Like [`from_overrides`](Self::from_overrides), with broker-level
    /// defaults in place of Kafka's for configs not overridden.
    pub fn from_overrides_with(
        overrides: BTreeMap<String, String>,
        broker_defaults: &BTreeMap<String, String>,
    ) -> Result<TopicConfigs, String> {
        for name in overrides.keys().chain(broker_defaults.keys()) {
            if default_value(name).is_none() {
                return Err(format!("Unknown topic config name: {name}"));
            }
        }
        let get = |name: &str| -> &str {
            overrides
                .get(name)
                .or_else(|| broker_defaults.get(name))
                .map(String::as_str)
                .or_else(|| default_value(name))
                .unwrap_or("")
        };
        let max_message_bytes = parse_number("max.message.bytes", get("max.message.bytes"), 0)?;
        let timestamp_type = match get("message.timestamp.type") {
            "CreateTime" => TimestampType::CreateTime,
            "LogAppendTime" => TimestampType::LogAppendTime,
            other => {
                return Err(format!(
                    "Invalid value {other} for configuration message.timestamp.type: String must be one of: CreateTime, LogAppendTime"
                ))
            }
        };
        Ok(TopicConfigs {
            max_message_bytes: i32::try_from(max_message_bytes).unwrap_or(i32::MAX),
            segment_bytes: parse_number("segment.bytes", get("segment.bytes"), MIN_SEGMENT_BYTES)?
                as u64,
            segment_ms: parse_number("segment.ms", get("segment.ms"), 1)?,
            index_interval_bytes: u32::try_from(parse_number(
                "index.interval.bytes",
                get("index.interval.bytes"),
                0,
            )?)
            .unwrap_or(u32::MAX),
            retention_ms: parse_number("retention.ms", get("retention.ms"), -1)?,
            retention_bytes: parse_number("retention.bytes", get("retention.bytes"), -1)?,
            timestamp_type,
            min_insync_replicas: parse_int("min.insync.replicas", get("min.insync.replicas"), 1)?,
            unclean_leader_election_enable: parse_bool(
                "unclean.leader.election.enable",
                get("unclean.leader.election.enable"),
            )?,
            overrides,
            broker_defaults: broker_defaults.clone(),
        })
    }

    /// The explicitly set configs (what the manifest stores).
    pub fn overrides(&self) -> &BTreeMap<String, String> {
        &self.overrides
    }

    /// Every config with its effective value and whether it is a default
    /// (the broker's or Kafka's) rather than a topic override.
    pub fn effective(&self) -> impl Iterator<Item = (&'static str, &str, bool)> + '_ {
        TOPIC_CONFIG_DEFAULTS.iter().map(move |(name, default)| {
            match (self.overrides.get(*name), self.broker_defaults.get(*name)) {
                (Some(value), _) => (*name, value.as_str(), false),
                (None, Some(value)) => (*name, value.as_str(), true),
                (None, None) => (*name, *default, true),
            }
        })
    }

    /// Settings for this topic's partition logs under the broker's flush policy.
    pub fn log_config(&self, flush: FlushPolicy) -> LogConfig {
        LogConfig {
            segment_bytes: self.segment_bytes,
            segment_ms: self.segment_ms,
            index_interval_bytes: self.index_interval_bytes,
            timestamp_type: self.timestamp_type,
            retention_ms: self.retention_ms,
            retention_bytes: self.retention_bytes,
            flush,
        }
    }
}

/// Refuses configs corelog stores but cannot honour yet, so that nobody
/// believes a topic is compacted when it is not.
pub fn check_supported(overrides: &BTreeMap<String, String>) -> Result<(), String> {
    if let Some(policy) = overrides.get("cleanup.policy") {
        for item in policy.split(',').map(str::trim) {
            match item {
                "delete" => {}
                "compact" => {
                    return Err(
                        "cleanup.policy=compact is not supported by corelog yet; use delete".into(),
                    )
                }
                other => {
                    return Err(format!(
                        "Invalid value {other} for configuration cleanup.policy: String must be one of: compact, delete"
                    ))
                }
            }
        }
    }
    Ok(())
}

/// Kafka's default for a topic config, or `None` if the name is unknown.
pub fn default_value(name: &str) -> Option<&'static str> {
    TOPIC_CONFIG_DEFAULTS
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, default)| *default)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overrides(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_match_kafka() {
        let configs = TopicConfigs::default();
        assert_eq!(configs.max_message_bytes, DEFAULT_MAX_MESSAGE_BYTES);
        assert_eq!(configs.segment_bytes, 1 << 30);
        assert_eq!(configs.timestamp_type, TimestampType::CreateTime);
    }

    #[test]
    fn overrides_are_parsed_and_validated() {
        let configs = TopicConfigs::from_overrides(overrides(&[
            ("segment.bytes", "4096"),
            ("message.timestamp.type", "LogAppendTime"),
            ("cleanup.policy", "compact"),
        ]))
        .expect("valid");
        assert_eq!(configs.segment_bytes, 4096);
        assert_eq!(configs.timestamp_type, TimestampType::LogAppendTime);
        assert!(TopicConfigs::from_overrides(overrides(&[("no.such.config", "1")])).is_err());
        assert!(TopicConfigs::from_overrides(overrides(&[("segment.bytes", "abc")])).is_err());
        assert!(TopicConfigs::from_overrides(overrides(&[("segment.bytes", "10")])).is_err());
    }

    #[test]
    fn replication_configs_are_parsed_with_kafkas_messages() {
        let defaults = TopicConfigs::default();
        assert_eq!(defaults.min_insync_replicas, 1);
        assert!(!defaults.unclean_leader_election_enable);
        let configs = TopicConfigs::from_overrides(overrides(&[
            ("min.insync.replicas", "2"),
            ("unclean.leader.election.enable", "TRUE"),
        ]))
        .expect("valid");
        assert_eq!(configs.min_insync_replicas, 2);
        assert!(configs.unclean_leader_election_enable);
        let refused = |pairs: &[(&str, &str)]| {
            TopicConfigs::from_overrides(overrides(pairs)).expect_err("refused")
        };
        assert_eq!(
            refused(&[("min.insync.replicas", "0")]),
            "Invalid value 0 for configuration min.insync.replicas: Value must be at least 1"
        );
        assert_eq!(
            refused(&[("min.insync.replicas", "3000000000")]),
            "Invalid value 3000000000 for configuration min.insync.replicas: Not a number of type INT"
        );
        assert_eq!(
            refused(&[("unclean.leader.election.enable", "yes")]),
            "Invalid value yes for configuration unclean.leader.election.enable: Expected value to be either true or false"
        );
        // A broker default (--min-insync-replicas) applies where a topic does not override it.
        let broker = overrides(&[("min.insync.replicas", "2")]);
        let configs = TopicConfigs::from_overrides_with(BTreeMap::new(), &broker).expect("valid");
        assert_eq!(configs.min_insync_replicas, 2);
    }
}
