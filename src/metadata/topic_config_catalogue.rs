//! The catalogue of Kafka 4.4's topic configs: each name with its type,
//! default, valid values, broker-level synonyms and a line of documentation.
//! Pure data, read by every shard; `topic_config` validates and parses with
//! it and DescribeConfigs reports from it.
//!
//! Taken from Kafka 4.4's `LogConfig` config definition and
//! `ServerTopicConfigSynonyms`: a client that compares types, defaults or
//! synonyms with a Java broker sees the same ones here. Kafka 4.0 removed
//! `message.format.version`, `message.downconversion.enable` and
//! `message.timestamp.difference.max.ms` (KIP-724, KIP-937): they are
//! refused as unknown names, and dropped when read back from a topic stored
//! by an older corelog ([`REMOVED_TOPIC_CONFIGS`]).

/// `DescribeConfigsResponse.ConfigType`, sent from DescribeConfigs v3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Short = 4,
    Long = 5,
    Double = 6,
    List = 7,
    Class = 8,
    Password = 9,
}

impl ConfigType {
    /// The wire id of the type.
    pub fn id(self) -> i8 {
        self as i8
    }
}

/// Valid values of a config beyond its type (Kafka's `ConfigDef.Validator`s).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Validity {
    /// Any value of the type.
    Any,
    /// A number at least this (`Range.atLeast`).
    AtLeast(i64),
    /// A number in this inclusive range (`Range.between`).
    Between(i64, i64),
    /// A real number in this inclusive range (`Range.between` on a DOUBLE).
    BetweenReal(f64, f64),
    /// gzip's level: 1 to 9, or -1 for the codec's own default.
    GzipLevel,
    /// One of these strings (`ValidString.in`).
    OneOf(&'static [&'static str]),
    /// A comma-separated list of these strings (`ValidList.in`).
    ListOf(&'static [&'static str]),
    /// `*` or `partition:broker,...` (Kafka's `ThrottledReplicaListValidator`).
    ThrottledReplicas,
}

/// A broker config that gives a topic config its default when the topic
/// does not override it, and that config's own default in Kafka (`None` for
/// configs without one, such as `log.retention.ms`, which defers to
/// `log.retention.hours`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BrokerSynonym {
    pub name: &'static str,
    pub kafka_default: Option<&'static str>,
}

/// One topic config as Kafka defines it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TopicConfigDef {
    pub name: &'static str,
    pub config_type: ConfigType,
    /// Kafka's default, as DescribeConfigs prints it.
    pub default: &'static str,
    pub validity: Validity,
    /// The broker configs that default this one, most specific first; the
    /// first is the one broker flags (`--log-retention-ms`...) set.
    pub broker_synonyms: &'static [BrokerSynonym],
    pub documentation: &'static str,
}

/// Topic configs Kafka 4.0 removed; stored overrides of them are ignored.
pub const REMOVED_TOPIC_CONFIGS: &[&str] = &[
    "message.downconversion.enable",
    "message.format.version",
    "message.timestamp.difference.max.ms",
];

/// Topic configs whose cluster-wide default Kafka 4.x's controller writes as
/// a dynamic default broker config when it bootstraps a cluster (KIP-966
/// needs `min.insync.replicas` known to the controller), so DescribeConfigs
/// reports it as DYNAMIC_DEFAULT_BROKER_CONFIG, not DEFAULT_CONFIG.
pub const CLUSTER_DEFAULT_CONFIGS: &[&str] = &["min.insync.replicas"];

const LONG_MAX: &str = "9223372036854775807";
/// Kafka's bound on a decompressed batch: the largest Java array.
const MAX_DECOMPRESSED_BYTES: i64 = 2_147_483_639;

const fn synonym(name: &'static str, kafka_default: &'static str) -> BrokerSynonym {
    BrokerSynonym {
        name,
        kafka_default: Some(kafka_default),
    }
}

const fn unset(name: &'static str) -> BrokerSynonym {
    BrokerSynonym {
        name,
        kafka_default: None,
    }
}

const fn def(
    name: &'static str,
    config_type: ConfigType,
    default: &'static str,
    validity: Validity,
    broker_synonyms: &'static [BrokerSynonym],
    documentation: &'static str,
) -> TopicConfigDef {
    TopicConfigDef {
        name,
        config_type,
        default,
        validity,
        broker_synonyms,
        documentation,
    }
}

use ConfigType::{Boolean, Double, Int, List, Long};
use Validity::{Any, AtLeast, Between};

/// Every topic config of Kafka 4.4, sorted by name.
pub const TOPIC_CONFIGS: &[TopicConfigDef] = &[
    def(
        "cleanup.policy",
        List,
        "delete",
        Validity::ListOf(&["compact", "delete"]),
        &[synonym("log.cleanup.policy", "delete")],
        "What happens to old segments: \"delete\" removes them by age and size; \"compact\" keeps the latest record of each key (not supported by corelog).",
    ),
    def(
        "compression.gzip.level",
        Int,
        "-1",
        Validity::GzipLevel,
        &[synonym("compression.gzip.level", "-1")],
        "Level used when the broker compresses with gzip (-1: the codec's default). corelog stores batches as produced, so it only matters for compression.type=gzip recompression, which corelog does not do.",
    ),
    def(
        "compression.lz4.level",
        Int,
        "9",
        Between(1, 17),
        &[synonym("compression.lz4.level", "9")],
        "Level used when the broker compresses with lz4.",
    ),
    def(
        "compression.type",
        ConfigType::String,
        "producer",
        Validity::OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]),
        &[synonym("compression.type", "producer")],
        "Compression of the topic's stored batches; \"producer\" keeps whatever codec the producer used.",
    ),
    def(
        "compression.zstd.level",
        Int,
        "3",
        Between(-131_072, 22),
        &[synonym("compression.zstd.level", "3")],
        "Level used when the broker compresses with zstd.",
    ),
    def(
        "delete.retention.ms",
        Long,
        "86400000",
        AtLeast(0),
        &[synonym("log.cleaner.delete.retention.ms", "86400000")],
        "How long tombstones stay readable in a compacted topic.",
    ),
    def(
        "errors.deadletterqueue.group.enable",
        Boolean,
        "false",
        Any,
        &[],
        "Whether share groups may use this topic as their dead-letter queue.",
    ),
    def(
        "file.delete.delay.ms",
        Long,
        "60000",
        AtLeast(0),
        &[synonym("log.segment.delete.delay.ms", "60000")],
        "How long a deleted segment's files are kept before they are removed from disk.",
    ),
    def(
        "flush.messages",
        Long,
        LONG_MAX,
        AtLeast(1),
        &[synonym("log.flush.interval.messages", LONG_MAX)],
        "Number of records after which the log is forced to disk.",
    ),
    def(
        "flush.ms",
        Long,
        LONG_MAX,
        AtLeast(0),
        &[
            unset("log.flush.interval.ms"),
            synonym("log.flush.scheduler.interval.ms", LONG_MAX),
        ],
        "Time after which the log is forced to disk.",
    ),
    def(
        "follower.replication.throttled.replicas",
        List,
        "",
        Validity::ThrottledReplicas,
        &[],
        "Replicas whose follower-side replication is throttled: partition:broker pairs, or * for all.",
    ),
    def(
        "index.interval.bytes",
        Int,
        "4096",
        AtLeast(0),
        &[synonym("log.index.interval.bytes", "4096")],
        "Bytes of log between two entries of the offset index.",
    ),
    def(
        "leader.replication.throttled.replicas",
        List,
        "",
        Validity::ThrottledReplicas,
        &[],
        "Replicas whose leader-side replication is throttled: partition:broker pairs, or * for all.",
    ),
    def(
        "local.retention.bytes",
        Long,
        "-2",
        AtLeast(-2),
        &[synonym("log.local.retention.bytes", "-2")],
        "Bytes kept on local disk when tiered storage is on (-2: retention.bytes).",
    ),
    def(
        "local.retention.ms",
        Long,
        "-2",
        AtLeast(-2),
        &[synonym("log.local.retention.ms", "-2")],
        "Time a segment stays on local disk when tiered storage is on (-2: retention.ms).",
    ),
    def(
        "max.compaction.lag.ms",
        Long,
        LONG_MAX,
        AtLeast(1),
        &[synonym("log.cleaner.max.compaction.lag.ms", LONG_MAX)],
        "Longest time a record may stay uncompacted in a compacted topic.",
    ),
    def(
        "max.decompressed.message.bytes",
        Int,
        "2147483639",
        Between(1, MAX_DECOMPRESSED_BYTES),
        &[synonym("max.decompressed.message.bytes", "2147483639")],
        "Largest size a compressed batch may decompress to when the broker reads it.",
    ),
    def(
        "max.message.bytes",
        Int,
        "1048588",
        AtLeast(0),
        &[synonym("message.max.bytes", "1048588")],
        "Largest record batch the topic accepts, after compression; larger ones are refused with MESSAGE_TOO_LARGE.",
    ),
    def(
        "message.timestamp.after.max.ms",
        Long,
        "3600000",
        AtLeast(0),
        &[synonym("log.message.timestamp.after.max.ms", "3600000")],
        "How far into the future a CreateTime timestamp may be, relative to the broker's clock.",
    ),
    def(
        "message.timestamp.before.max.ms",
        Long,
        LONG_MAX,
        AtLeast(0),
        &[synonym("log.message.timestamp.before.max.ms", LONG_MAX)],
        "How far into the past a CreateTime timestamp may be, relative to the broker's clock.",
    ),
    def(
        "message.timestamp.type",
        ConfigType::String,
        "CreateTime",
        Validity::OneOf(&["CreateTime", "LogAppendTime"]),
        &[synonym("log.message.timestamp.type", "CreateTime")],
        "Whether records keep the producer's timestamp (CreateTime) or get the broker's append time (LogAppendTime).",
    ),
    def(
        "min.cleanable.dirty.ratio",
        Double,
        "0.5",
        Validity::BetweenReal(0.0, 1.0),
        &[synonym("log.cleaner.min.cleanable.ratio", "0.5")],
        "Share of a compacted log that must be uncompacted before the cleaner runs on it.",
    ),
    def(
        "min.compaction.lag.ms",
        Long,
        "0",
        AtLeast(0),
        &[synonym("log.cleaner.min.compaction.lag.ms", "0")],
        "Shortest time a record stays uncompacted in a compacted topic.",
    ),
    def(
        "min.insync.replicas",
        Int,
        "1",
        AtLeast(1),
        &[synonym("min.insync.replicas", "1")],
        "Fewest in-sync replicas for which an acks=all produce succeeds; below it produces fail with NOT_ENOUGH_REPLICAS.",
    ),
    def(
        "preallocate",
        Boolean,
        "false",
        Any,
        &[synonym("log.preallocate", "false")],
        "Whether a new segment's file is preallocated on disk.",
    ),
    def(
        "remote.copy.lag.bytes",
        Long,
        "-1",
        AtLeast(-1),
        &[synonym("log.remote.copy.lag.bytes", "-1")],
        "Bytes of closed segments that may wait before they are copied to tiered storage (-1: no bound).",
    ),
    def(
        "remote.copy.lag.ms",
        Long,
        "0",
        AtLeast(-1),
        &[synonym("log.remote.copy.lag.ms", "0")],
        "Time a closed segment may wait before it is copied to tiered storage.",
    ),
    def(
        "remote.log.copy.disable",
        Boolean,
        "false",
        Any,
        &[],
        "Stops copying segments to tiered storage while keeping what is there readable.",
    ),
    def(
        "remote.log.delete.on.disable",
        Boolean,
        "false",
        Any,
        &[],
        "Whether turning tiered storage off deletes the topic's remote data.",
    ),
    def(
        "remote.storage.enable",
        Boolean,
        "false",
        Any,
        &[],
        "Whether the topic uses tiered storage (corelog keeps every segment on local disk).",
    ),
    def(
        "retention.bytes",
        Long,
        "-1",
        Any,
        &[synonym("log.retention.bytes", "-1")],
        "Largest size a partition may grow to before its oldest segments are deleted (-1: no limit).",
    ),
    def(
        "retention.ms",
        Long,
        "604800000",
        AtLeast(-1),
        &[
            unset("log.retention.ms"),
            unset("log.retention.minutes"),
            synonym("log.retention.hours", "168"),
        ],
        "How long a segment is kept after its newest record before it is deleted (-1: forever).",
    ),
    def(
        "segment.bytes",
        Int,
        "1073741824",
        // Kafka 4.4 refuses below 1 MiB and has `internal.segment.bytes`
        // for tests; corelog accepts small segments for its own tests.
        AtLeast(super::topic_config::MIN_SEGMENT_BYTES),
        &[synonym("log.segment.bytes", "1073741824")],
        "Size at which the active segment is closed and a new one started.",
    ),
    def(
        "segment.index.bytes",
        Int,
        "10485760",
        AtLeast(4),
        &[synonym("log.index.size.max.bytes", "10485760")],
        "Largest size of a segment's offset and time indexes.",
    ),
    def(
        "segment.jitter.ms",
        Long,
        "0",
        AtLeast(0),
        &[
            unset("log.roll.jitter.ms"),
            synonym("log.roll.jitter.hours", "0"),
        ],
        "Most random time subtracted from segment.ms, so that partitions do not all roll at once.",
    ),
    def(
        "segment.ms",
        Long,
        "604800000",
        AtLeast(1),
        &[unset("log.roll.ms"), synonym("log.roll.hours", "168")],
        "Age after which the active segment is closed and a new one started, even if not full.",
    ),
    def(
        "unclean.leader.election.enable",
        Boolean,
        "false",
        Any,
        &[synonym("unclean.leader.election.enable", "false")],
        "Whether a replica outside the ISR may become leader when no ISR member can, at the cost of losing records.",
    ),
];

/// The definition of topic config `name`, if Kafka has one.
pub fn topic_config(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|def| def.name == name)
}

impl TopicConfigDef {
    /// Checks `value` as Kafka's `ConfigDef` does: parsed as the config's
    /// type, then against its valid values. The error is Kafka's message.
    pub fn validate(&self, value: &str) -> Result<(), String> {
        let name = self.name;
        let invalid =
            |reason: String| format!("Invalid value {value} for configuration {name}: {reason}");
        let trimmed = value.trim();
        let number = match self.config_type {
            Int | ConfigType::Short => Some(
                trimmed
                    .parse::<i32>()
                    .map(i64::from)
                    .map_err(|_| invalid(format!("Not a number of type {}", self.type_name())))?,
            ),
            Long => Some(
                trimmed
                    .parse::<i64>()
                    .map_err(|_| invalid("Not a number of type LONG".into()))?,
            ),
            Double => {
                let real = trimmed
                    .parse::<f64>()
                    .map_err(|_| invalid("Not a number of type DOUBLE".into()))?;
                if let Validity::BetweenReal(min, max) = self.validity {
                    if real < min {
                        return Err(invalid(format!("Value must be at least {min}")));
                    }
                    if real > max {
                        return Err(invalid(format!("Value must be no more than {max}")));
                    }
                }
                None
            }
            Boolean => {
                if !trimmed.eq_ignore_ascii_case("true") && !trimmed.eq_ignore_ascii_case("false") {
                    return Err(invalid("Expected value to be either true or false".into()));
                }
                None
            }
            _ => None,
        };
        match (self.validity, number) {
            (AtLeast(min), Some(number)) if number < min => {
                Err(invalid(format!("Value must be at least {min}")))
            }
            (Between(min, _), Some(number)) if number < min => {
                Err(invalid(format!("Value must be at least {min}")))
            }
            (Between(_, max), Some(number)) if number > max => {
                Err(invalid(format!("Value must be no more than {max}")))
            }
            (Validity::GzipLevel, Some(number)) if number != -1 && !(1..=9).contains(&number) => {
                Err(invalid("Value must be between 1 and 9 or equal to -1".into()))
            }
            (Validity::OneOf(allowed), _) if !allowed.contains(&trimmed) => Err(invalid(format!(
                "String must be one of: {}",
                allowed.join(", ")
            ))),
            (Validity::ListOf(allowed), _) => {
                match list_items(value).find(|item| !allowed.contains(item)) {
                    Some(item) => Err(format!(
                        "Invalid value {item} for configuration {name}: String must be one of: {}",
                        allowed.join(", ")
                    )),
                    None => Ok(()),
                }
            }
            // Kafka prints the parsed list here, in brackets.
            (Validity::ThrottledReplicas, _) if !is_throttled_replica_list(value) => Err(format!(
                "Invalid value [{}] for configuration {name}: {name} must be the literal '*' or a list of replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],...",
                list_items(value).collect::<Vec<_>>().join(", ")
            )),
            _ => Ok(()),
        }
    }

    fn type_name(&self) -> &'static str {
        match self.config_type {
            ConfigType::Short => "SHORT",
            _ => "INT",
        }
    }
}

/// The items of a LIST config: comma-separated, trimmed, empty ones dropped.
pub fn list_items(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

fn is_throttled_replica_list(value: &str) -> bool {
    let items: Vec<&str> = list_items(value).collect();
    if items == ["*"] {
        return true;
    }
    items.iter().all(|item| match item.split_once(':') {
        Some((partition, broker)) => {
            partition.trim().parse::<u32>().is_ok() && broker.trim().parse::<u32>().is_ok()
        }
        None => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, value: &str) -> Result<(), String> {
        topic_config(name).expect("known").validate(value)
    }

    #[test]
    fn the_catalogue_is_sorted_and_every_default_is_valid() {
        for pair in TOPIC_CONFIGS.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} before {}",
                pair[0].name,
                pair[1].name
            );
        }
        for def in TOPIC_CONFIGS {
            assert_eq!(def.validate(def.default), Ok(()), "{}", def.name);
            assert!(!def.documentation.is_empty(), "{}", def.name);
        }
        for removed in REMOVED_TOPIC_CONFIGS {
            assert!(topic_config(removed).is_none(), "{removed}");
        }
    }

    #[test]
    fn kafka_4_defaults_and_types() {
        let def = |name| topic_config(name).expect("known");
        assert_eq!(def("message.timestamp.after.max.ms").default, "3600000");
        assert_eq!(def("retention.ms").config_type, Long);
        assert_eq!(def("segment.bytes").config_type, Int);
        assert_eq!(def("cleanup.policy").config_type, List);
        assert_eq!(def("min.cleanable.dirty.ratio").config_type, Double);
        assert_eq!(def("compression.zstd.level").default, "3");
        assert_eq!(
            def("retention.ms").broker_synonyms[0].name,
            "log.retention.ms"
        );
    }

    #[test]
    fn values_are_checked_with_kafkas_messages() {
        assert_eq!(
            check("compression.zstd.level", "30"),
            Err("Invalid value 30 for configuration compression.zstd.level: Value must be no more than 22".into())
        );
        assert_eq!(
            check("compression.gzip.level", "0"),
            Err("Invalid value 0 for configuration compression.gzip.level: Value must be between 1 and 9 or equal to -1".into())
        );
        assert_eq!(check("compression.gzip.level", "9"), Ok(()));
        assert_eq!(
            check("max.decompressed.message.bytes", "0"),
            Err("Invalid value 0 for configuration max.decompressed.message.bytes: Value must be at least 1".into())
        );
        assert_eq!(
            check("retention.ms", "soon"),
            Err(
                "Invalid value soon for configuration retention.ms: Not a number of type LONG"
                    .into()
            )
        );
        assert_eq!(
            check("segment.index.bytes", "3000000000"),
            Err("Invalid value 3000000000 for configuration segment.index.bytes: Not a number of type INT".into())
        );
        assert!(check("min.cleanable.dirty.ratio", "1.5").is_err());
        assert_eq!(check("min.cleanable.dirty.ratio", "0.25"), Ok(()));
        assert!(check("preallocate", "yes").is_err());
        assert!(check("compression.type", "brotli").is_err());
        assert_eq!(check("cleanup.policy", "compact, delete"), Ok(()));
        assert!(check("cleanup.policy", "archive").is_err());
        assert_eq!(check("leader.replication.throttled.replicas", "*"), Ok(()));
        assert_eq!(
            check("leader.replication.throttled.replicas", "0:1,1:2"),
            Ok(())
        );
        assert_eq!(check("leader.replication.throttled.replicas", ""), Ok(()));
        assert!(check("leader.replication.throttled.replicas", "0-1").is_err());
    }
}
