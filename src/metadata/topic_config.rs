//! Topic configs: validation against Kafka's catalogue
//! (`topic_config_catalogue`), the values corelog acts on, and the
//! translation into the log's `LogConfig`. Unknown names are refused
//! (INVALID_CONFIG) as the Java broker does; known configs corelog does not
//! act on are validated, stored and reported back, so admin tools round-trip
//! them.

use std::collections::BTreeMap;

use super::topic_config_catalogue::{topic_config, REMOVED_TOPIC_CONFIGS, TOPIC_CONFIGS};
use crate::config::FlushPolicy;
use crate::log::{LogConfig, TimestampType};

/// Kafka's default `max.message.bytes` (1 MiB + record batch overhead).
pub const DEFAULT_MAX_MESSAGE_BYTES: i32 = 1_048_588;
/// Smallest `segment.bytes` accepted: small enough for tests, large enough
/// that one segment holds at least a header-sized batch.
pub const MIN_SEGMENT_BYTES: i64 = 1024;

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
        for (name, value) in overrides.iter().chain(broker_defaults.iter()) {
            match topic_config(name) {
                Some(def) => def.validate(value)?,
                None => return Err(format!("Unknown topic config name: {name}")),
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
            // Kafka has no lower bound: any negative value means no size limit.
            retention_bytes: parse_number("retention.bytes", get("retention.bytes"), i64::MIN)?,
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
        TOPIC_CONFIGS.iter().map(move |def| {
            match (
                self.overrides.get(def.name),
                self.broker_defaults.get(def.name),
            ) {
                (Some(value), _) => (def.name, value.as_str(), false),
                (None, Some(value)) => (def.name, value.as_str(), true),
                (None, None) => (def.name, def.default, true),
            }
        })
    }

    /// The broker-level default (a `--log-*` flag) of config `name`, if set.
    pub fn broker_default(&self, name: &str) -> Option<&str> {
        self.broker_defaults.get(name).map(String::as_str)
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
/// believes a topic is compacted when it is not; and tiered storage, which
/// Kafka refuses too while the broker has it off (its default).
pub fn check_supported(overrides: &BTreeMap<String, String>) -> Result<(), String> {
    let remote_storage = overrides.get("remote.storage.enable");
    if remote_storage.is_some_and(|value| value.trim().eq_ignore_ascii_case("true")) {
        return Err("Tiered Storage functionality is disabled in the broker. Topic cannot be configured with remote log storage.".into());
    }
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
    topic_config(name).map(|def| def.default)
}

/// Stored overrides without the configs Kafka 4.0 removed: a topic written
/// by an older corelog keeps loading, and Kafka 4 ignores them the same way.
pub fn without_removed_configs(
    mut overrides: BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    overrides.retain(|name, _| !REMOVED_TOPIC_CONFIGS.contains(&name.as_str()));
    overrides
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
