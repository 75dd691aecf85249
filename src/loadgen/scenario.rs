//! A benchmark scenario: the workload knobs of the OpenMessaging Benchmark
//! (topics, partitions, message size, keys, producers, consumers, groups,
//! batching, acks, compression, rate, warm-up, duration), read from a TOML
//! file under `bench/scenarios/` and/or `corelog bench` flags. Pure data and
//! validation; no I/O beyond reading the file.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// How big each message value is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum MessageSize {
    Fixed {
        bytes: usize,
    },
    Uniform {
        min_bytes: usize,
        max_bytes: usize,
    },
    Normal {
        mean_bytes: usize,
        stddev_bytes: usize,
    },
}

/// Which key each message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyDistribution {
    /// No key: the producer fills one partition's batch, then moves to the
    /// next (sticky partitioning, as the Java client and librdkafka treat
    /// keyless records: KIP-480).
    None,
    /// Keys 0, 1, 2, ... in turn (`key_count` distinct keys).
    RoundRobin,
    /// A uniformly random key out of `key_count`.
    Random,
}

/// Compression codec of produced batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CompressionCodec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

/// Offered load: open-loop at a fixed rate, or as fast as acks come back.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Rate {
    Max,
    MessagesPerSecond { value: f64 },
    MegabytesPerSecond { value: f64 },
}

/// One complete workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub topics: u32,
    pub partitions_per_topic: u32,
    /// Replicas per partition of the run's topics; -1 is the broker's default.
    pub replication_factor: i16,
    pub message_size: MessageSize,
    pub key_distribution: KeyDistribution,
    pub key_count: u32,
    /// Producer clients in total (spread over the load generator's cores).
    pub producers: u32,
    /// Consumers per consumer group.
    pub consumers_per_group: u32,
    /// Independent consumer groups, each reading every message once.
    pub consumer_groups: u32,
    pub batch_size_bytes: usize,
    pub linger_ms: u64,
    /// 0, 1 or -1 (all).
    pub acks: i16,
    pub compression: CompressionCodec,
    pub rate: Rate,
    /// Produce requests one producer keeps in flight per broker connection.
    pub max_in_flight: u32,
    /// Idempotent producers (InitProducerId, then producer id, epoch and
    /// sequence numbers in every batch), as the Java client's default.
    pub idempotent: bool,
    /// Consumers fetch with incremental fetch sessions (KIP-227), as the
    /// Java consumer does by default; `false` sends sessionless full
    /// fetches naming every partition, as librdkafka does.
    pub fetch_sessions: bool,
    pub warmup_seconds: f64,
    pub duration_seconds: f64,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            name: "default".into(),
            description: "1 KiB messages, acks=1, as fast as the broker takes them".into(),
            topics: 1,
            partitions_per_topic: 6,
            replication_factor: -1,
            message_size: MessageSize::Fixed { bytes: 1024 },
            key_distribution: KeyDistribution::None,
            key_count: 1000,
            producers: 2,
            consumers_per_group: 2,
            consumer_groups: 1,
            batch_size_bytes: 128 * 1024,
            linger_ms: 2,
            acks: 1,
            compression: CompressionCodec::None,
            rate: Rate::Max,
            max_in_flight: 8,
            idempotent: false,
            fetch_sessions: true,
            warmup_seconds: 2.0,
            duration_seconds: 10.0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("scenario {path} is not valid TOML for a scenario: {source}")]
    Parse {
        path: String,
        source: toml::de::Error,
    },
    #[error("invalid scenario: {0}")]
    Invalid(&'static str),
}

impl Scenario {
    pub fn from_toml_str(path: &str, text: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = toml::from_str(text).map_err(|source| ScenarioError::Parse {
            path: path.to_string(),
            source,
        })?;
        scenario.validate()?;
        Ok(scenario)
    }

    pub fn from_file(path: &Path) -> Result<Scenario, ScenarioError> {
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: display.clone(),
            source,
        })?;
        Scenario::from_toml_str(&display, &text)
    }

    pub fn validate(&self) -> Result<(), ScenarioError> {
        let invalid = |why| Err(ScenarioError::Invalid(why));
        if self.topics == 0 || self.partitions_per_topic == 0 {
            return invalid("topics and partitions_per_topic must be at least 1");
        }
        if self.producers == 0 {
            return invalid("producers must be at least 1");
        }
        if self.consumer_groups > 0 && self.consumers_per_group == 0 {
            return invalid(
                "consumers_per_group must be at least 1 when there are consumer groups",
            );
        }
        if !(-1..=1).contains(&self.acks) {
            return invalid("acks must be 0, 1 or -1 (all)");
        }
        if self.key_distribution != KeyDistribution::None && self.key_count == 0 {
            return invalid("key_count must be at least 1 with keys");
        }
        match self.message_size {
            MessageSize::Fixed { bytes: 0 } => {
                return invalid("message size must be at least 1 byte")
            }
            MessageSize::Uniform {
                min_bytes,
                max_bytes,
            } if min_bytes == 0 || min_bytes > max_bytes => {
                return invalid("uniform message size needs 1 <= min_bytes <= max_bytes")
            }
            MessageSize::Normal { mean_bytes: 0, .. } => {
                return invalid("normal message size needs mean_bytes >= 1")
            }
            _ => {}
        }
        match self.rate {
            Rate::MessagesPerSecond { value } | Rate::MegabytesPerSecond { value }
                if value.is_nan() || value <= 0.0 =>
            {
                return invalid("a target rate must be positive")
            }
            _ => {}
        }
        if self.duration_seconds <= 0.0 || self.warmup_seconds < 0.0 {
            return invalid("duration_seconds must be positive and warmup_seconds not negative");
        }
        if self.max_in_flight == 0 || self.batch_size_bytes == 0 {
            return invalid("max_in_flight and batch_size_bytes must be at least 1");
        }
        Ok(())
    }

    /// Mean message size in bytes (for MB/s rates and reports).
    pub fn mean_message_bytes(&self) -> f64 {
        match self.message_size {
            MessageSize::Fixed { bytes } => bytes as f64,
            MessageSize::Uniform {
                min_bytes,
                max_bytes,
            } => (min_bytes + max_bytes) as f64 / 2.0,
            MessageSize::Normal { mean_bytes, .. } => mean_bytes as f64,
        }
    }

    /// Target messages per second over all producers, `None` for `max`.
    pub fn target_messages_per_second(&self) -> Option<f64> {
        match self.rate {
            Rate::Max => None,
            Rate::MessagesPerSecond { value } => Some(value),
            Rate::MegabytesPerSecond { value } => {
                Some(value * 1_000_000.0 / self.mean_message_bytes())
            }
        }
    }

    /// Topic names this scenario uses (unique per run so reruns start empty).
    pub fn topic_names(&self, run_id: &str) -> Vec<String> {
        (0..self.topics)
            .map(|index| format!("bench-{}-{run_id}-{index}", self.name))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_scenario_file() {
        let text = r#"
            name = "fixed-rate"
            topics = 2
            partitions_per_topic = 12
            message_size = { kind = "uniform", min_bytes = 100, max_bytes = 300 }
            key_distribution = "random"
            key_count = 50
            producers = 4
            consumers_per_group = 2
            consumer_groups = 3
            acks = -1
            compression = "zstd"
            rate = { kind = "messages-per-second", value = 50000.0 }
            warmup_seconds = 1.0
            duration_seconds = 30.0
        "#;
        let scenario = Scenario::from_toml_str("test", text).expect("valid");
        assert_eq!(scenario.partitions_per_topic, 12);
        assert_eq!(
            scenario.message_size,
            MessageSize::Uniform {
                min_bytes: 100,
                max_bytes: 300
            }
        );
        assert_eq!(scenario.compression, CompressionCodec::Zstd);
        assert_eq!(scenario.target_messages_per_second(), Some(50000.0));
        assert_eq!(scenario.mean_message_bytes(), 200.0);
        assert_eq!(
            scenario.linger_ms,
            Scenario::default().linger_ms,
            "unset fields keep defaults"
        );
    }

    #[test]
    fn megabytes_per_second_becomes_a_message_rate() {
        let scenario = Scenario {
            rate: Rate::MegabytesPerSecond { value: 10.0 },
            message_size: MessageSize::Fixed { bytes: 1000 },
            ..Scenario::default()
        };
        assert_eq!(scenario.target_messages_per_second(), Some(10_000.0));
    }

    #[test]
    fn nonsense_is_refused() {
        assert!(Scenario::from_toml_str("t", "acks = 2").is_err());
        assert!(Scenario::from_toml_str("t", "no_such_knob = 1").is_err());
        assert!(Scenario::from_toml_str("t", "producers = 0").is_err());
        assert!(Scenario::from_toml_str(
            "t",
            "rate = { kind = \"messages-per-second\", value = -1.0 }"
        )
        .is_err());
    }
}
