//! Broker-wide settings, built once from the command line (`cli/serve.rs`) and
//! handed read-only to every shard at start-up. Nothing here changes at run time.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// When a partition's written bytes are made durable with fdatasync.
///
/// | policy | acks=0 | acks=1 | acks=all |
/// |---|---|---|---|
/// | `always` | no answer | after the DMA write completed | after fdatasync (group commit) |
/// | `interval:<ms>` | no answer | after the write | after the write; fdatasync every `ms` |
/// | `never` | no answer | after the write | after the write; the kernel decides |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPolicy {
    Always,
    Interval(Duration),
    Never,
}

impl FromStr for FlushPolicy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "always" => Ok(FlushPolicy::Always),
            "never" => Ok(FlushPolicy::Never),
            other => {
                let millis = other
                    .strip_prefix("interval:")
                    .and_then(|ms| ms.parse::<u64>().ok())
                    .filter(|ms| *ms > 0)
                    .ok_or_else(|| {
                        format!(
                            "flush policy must be always, never or interval:<ms>, got {other:?}"
                        )
                    })?;
                Ok(FlushPolicy::Interval(Duration::from_millis(millis)))
            }
        }
    }
}

/// Everything `corelog serve` was told.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub listen: SocketAddr,
    /// Host and port written into Metadata responses; defaults to `listen`.
    pub advertised_host: String,
    pub advertised_port: u16,
    /// Kafka's `broker.rack`, reported in Metadata and DescribeCluster.
    pub rack: Option<String>,
    pub data_dir: PathBuf,
    pub shards: usize,
    /// First CPU to pin shard 0 to; shard `i` runs on CPU `first_cpu + i`.
    pub first_cpu: usize,
    pub node_id: i32,
    pub flush: FlushPolicy,
    pub auto_create_topics: bool,
    pub default_partitions: i32,
    /// Partition replicas this node may hold; creating more is refused with
    /// POLICY_VIOLATION (`limits::PARTITIONS_PER_NODE_DEFAULT`).
    pub max_partitions_per_node: u32,
    /// Replicas per partition of auto-created topics and of CreateTopics
    /// with -1 (Kafka's `default.replication.factor`; at least 1).
    pub default_replication_factor: i16,
    /// A follower that has not caught up to the leader's log end for this
    /// long leaves the ISR (Kafka's `replica.lag.time.max.ms`).
    pub replica_lag_time_max_ms: u64,
    pub max_request_bytes: usize,
    pub groups: GroupSettings,
    pub transactions: TxnSettings,
    /// Broker-level topic config defaults (topic config name -> value).
    pub topic_defaults: std::collections::BTreeMap<String, String>,
    /// How often each shard applies retention (`log.retention.check.interval.ms`).
    pub retention_check_interval: Duration,
    /// Free bytes kept on the data directory's file system: below them,
    /// Produce is refused with KAFKA_STORAGE_ERROR (`log::free_space`;
    /// Redpanda's `storage_min_free_bytes`). 0 turns the guard off.
    pub min_free_bytes: u64,
    /// Test-only fault injection (hidden `--fault-drop-produce-responses`): when
    /// N > 0, every Nth Produce request with acks != 0 on each shard is appended
    /// but its connection is closed instead of answering, so clients must retry
    /// batches the log already holds (idempotent producers must see them as
    /// duplicates). 0 (the default) is off.
    pub fault_drop_produce_responses: u64,
    /// The metadata quorum (`--controller-quorum-voters`); `None` for a
    /// one-node cluster whose metadata lives in topic manifests.
    pub cluster: Option<ClusterSettings>,
    /// The fetch session cache (KIP-227).
    pub fetch_sessions: FetchSessionSettings,
}

/// Fetch sessions a shard may keep, when the broker was not told
/// (`--max-incremental-fetch-session-cache-slots` unset): Kafka's default
/// of `max.incremental.fetch.session.cache.slots`, 1,000, given to every
/// shard, so a shard serves as many consumers and followers with sessions
/// as a whole Kafka broker does by default.
pub const FETCH_SESSION_CACHE_SLOTS_PER_SHARD_DEFAULT: usize = 1_000;

/// Kafka's `min.incremental.fetch.session.eviction.ms` (an internal
/// constant of its broker, 120 s): a session younger than this is not
/// evicted for a larger one, and a session unused this long is stale and
/// may be evicted for any new one.
pub const FETCH_SESSION_EVICTION_AGE_DEFAULT: Duration = Duration::from_secs(120);

/// The fetch session cache (KIP-227), Kafka's
/// `max.incremental.fetch.session.cache.slots` and
/// `min.incremental.fetch.session.eviction.ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchSessionSettings {
    /// Sessions the broker keeps (`--max-incremental-fetch-session-cache-slots`),
    /// or `None` for [`FETCH_SESSION_CACHE_SLOTS_PER_SHARD_DEFAULT`] per shard.
    ///
    /// Kafka's setting is per broker, and its broker divides it between 8
    /// cache shards (`slots / 8` each, so fewer than 8 slots make no
    /// session at all). corelog's sessions live on the shard that served the
    /// fetch creating them, so the broker's slots are split between its
    /// shards: shard `i` of `n` keeps `slots / n`, and the first
    /// `slots % n` shards one more, so the broker keeps exactly `slots`.
    /// With fewer slots than shards, fetches on the shards without one are
    /// answered without a session. 0 turns sessions off: every fetch is
    /// answered in full with session id 0, as Kafka does with 0 slots.
    pub cache_slots: Option<usize>,
    /// Kafka's `min.incremental.fetch.session.eviction.ms` (not a public
    /// Kafka setting; the hidden `--min-incremental-fetch-session-eviction-ms`
    /// lets a test see an eviction within seconds).
    pub eviction_age: Duration,
}

impl Default for FetchSessionSettings {
    fn default() -> Self {
        FetchSessionSettings {
            cache_slots: None,
            eviction_age: FETCH_SESSION_EVICTION_AGE_DEFAULT,
        }
    }
}

impl FetchSessionSettings {
    /// The sessions shard `shard` of `shards` keeps (see `cache_slots`).
    pub fn slots_of_shard(&self, shard: usize, shards: usize) -> usize {
        let Some(slots) = self.cache_slots else {
            return FETCH_SESSION_CACHE_SLOTS_PER_SHARD_DEFAULT;
        };
        let shards = shards.max(1);
        slots / shards + usize::from(shard < slots % shards)
    }
}

/// How this node takes part in a cluster (Kafka's controller.quorum.voters,
/// broker.session.timeout.ms and broker.heartbeat.interval.ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// Every voter's node id and quorum address (`host:port`).
    pub voters: std::collections::BTreeMap<u64, String>,
    /// Where this node listens for quorum traffic; `None` on a broker-only
    /// node (its id is not a voter).
    pub controller_listen: Option<SocketAddr>,
    pub broker_session_timeout_ms: u64,
    pub broker_heartbeat_interval_ms: u64,
    /// How often the active controller moves leaderships back to in-sync
    /// preferred replicas (leader.imbalance.check.interval.seconds); 0: never.
    pub leader_imbalance_check_interval_ms: u64,
}

/// Consumer-group coordinator settings (Kafka's broker configs in the comments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSettings {
    /// `group.initial.rebalance.delay.ms`: the first join round of an empty
    /// group waits this long for more members.
    pub initial_rebalance_delay_ms: i32,
    /// `group.min.session.timeout.ms` / `group.max.session.timeout.ms`.
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    /// `offsets.topic.num.partitions`: partitions of `__consumer_offsets`
    /// when it is created (later changes do not move existing groups).
    pub offsets_topic_partitions: i32,
    /// `offsets.topic.replication.factor`: replicas per partition of
    /// `__consumer_offsets`, capped at the live brokers when it is created
    /// (Kafka refuses to create it with fewer; corelog starts with what it
    /// has, so a small cluster still gets its groups).
    pub offsets_topic_replication_factor: i16,
    /// `offsets.retention.minutes`, in milliseconds.
    pub offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms`.
    pub offsets_retention_check_ms: u64,
    /// `offset.metadata.max.bytes`: longer commit metadata is refused.
    pub offset_metadata_max_bytes: usize,
    /// `group.consumer.session.timeout.ms`: a KIP-848 member that sends no
    /// heartbeat for this long is fenced.
    pub consumer_session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms`: how often KIP-848 members
    /// are told to heartbeat.
    pub consumer_heartbeat_interval_ms: i32,
}

impl Default for GroupSettings {
    /// Kafka's defaults.
    fn default() -> Self {
        GroupSettings {
            initial_rebalance_delay_ms: 3_000,
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            offsets_topic_partitions: 50,
            offsets_topic_replication_factor: 3,
            offsets_retention_ms: 7 * 24 * 60 * 60 * 1000,
            offsets_retention_check_ms: 600_000,
            offset_metadata_max_bytes: 4096,
            consumer_session_timeout_ms: 45_000,
            consumer_heartbeat_interval_ms: 5_000,
        }
    }
}

/// Transaction coordinator and producer-state settings (Kafka's broker
/// configs in the comments, with their defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnSettings {
    /// `transaction.state.log.num.partitions`: partitions of
    /// `__transaction_state` when it is created.
    pub state_topic_partitions: i32,
    /// `transaction.state.log.replication.factor`: replicas per partition
    /// of `__transaction_state`, capped at the live brokers when it is
    /// created (as for `__consumer_offsets`).
    pub state_topic_replication_factor: i16,
    /// `transaction.max.timeout.ms`: longer transaction timeouts are refused.
    pub max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`: idle transactional ids are forgotten.
    pub transactional_id_expiration_ms: i64,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
    pub abort_timed_out_check_ms: u64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`.
    pub remove_expired_check_ms: u64,
    /// `producer.id.expiration.ms`: idle producers' state is dropped per partition.
    pub producer_id_expiration_ms: i64,
    /// `producer.id.expiration.check.interval.ms`.
    pub producer_id_expiration_check_ms: u64,
}

impl Default for TxnSettings {
    fn default() -> Self {
        TxnSettings {
            state_topic_partitions: 50,
            state_topic_replication_factor: 3,
            max_timeout_ms: 900_000,
            transactional_id_expiration_ms: 7 * 24 * 60 * 60 * 1000,
            abort_timed_out_check_ms: 10_000,
            remove_expired_check_ms: 3_600_000,
            producer_id_expiration_ms: 24 * 60 * 60 * 1000,
            producer_id_expiration_check_ms: 600_000,
        }
    }
}

impl BrokerConfig {
    /// This node as the catalog lists it to clients.
    pub fn local_broker(&self) -> crate::metadata::catalog::BrokerMetadata {
        crate::metadata::catalog::BrokerMetadata {
            node_id: self.node_id,
            host: std::sync::Arc::from(self.advertised_host.as_str()),
            port: self.advertised_port,
            rack: self.rack.as_deref().map(std::sync::Arc::from),
        }
    }

    /// A config for tests and the embedded bench broker: one shard, given port and dir.
    pub fn for_test(listen: SocketAddr, data_dir: PathBuf) -> BrokerConfig {
        BrokerConfig {
            listen,
            advertised_host: listen.ip().to_string(),
            advertised_port: listen.port(),
            rack: None,
            data_dir,
            shards: 1,
            first_cpu: 0,
            node_id: 0,
            flush: FlushPolicy::Always,
            auto_create_topics: true,
            default_partitions: 1,
            max_partitions_per_node: crate::limits::PARTITIONS_PER_NODE_DEFAULT,
            default_replication_factor: 1,
            replica_lag_time_max_ms: 30_000,
            max_request_bytes: 100 * 1024 * 1024,
            groups: GroupSettings::default(),
            transactions: TxnSettings::default(),
            topic_defaults: std::collections::BTreeMap::new(),
            retention_check_interval: Duration::from_secs(300),
            min_free_bytes: crate::limits::MIN_FREE_BYTES_DEFAULT,
            fault_drop_produce_responses: 0,
            cluster: None,
            fetch_sessions: FetchSessionSettings::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flush_policy_parses_the_three_forms() {
        assert_eq!("always".parse(), Ok(FlushPolicy::Always));
        assert_eq!("never".parse(), Ok(FlushPolicy::Never));
        assert_eq!(
            "interval:250".parse(),
            Ok(FlushPolicy::Interval(Duration::from_millis(250)))
        );
        assert!("interval:0".parse::<FlushPolicy>().is_err());
        assert!("sometimes".parse::<FlushPolicy>().is_err());
    }

    #[test]
    fn fetch_session_slots_are_split_between_shards_to_the_broker_total() {
        let default = FetchSessionSettings::default();
        assert_eq!(default.slots_of_shard(0, 1), 1_000);
        assert_eq!(default.slots_of_shard(3, 4), 1_000, "1,000 per shard");
        let slots = |cache_slots, shards| -> Vec<usize> {
            let settings = FetchSessionSettings {
                cache_slots: Some(cache_slots),
                ..FetchSessionSettings::default()
            };
            (0..shards)
                .map(|shard| settings.slots_of_shard(shard, shards))
                .collect()
        };
        assert_eq!(slots(1_000, 3), vec![334, 333, 333]);
        assert_eq!(slots(1, 1), vec![1]);
        assert_eq!(slots(1, 2), vec![1, 0], "exactly one session per broker");
        assert_eq!(slots(0, 2), vec![0, 0]);
        for (cache_slots, shards) in [(7, 3), (8, 8), (3, 8), (1_000, 7)] {
            assert_eq!(
                slots(cache_slots, shards).iter().sum::<usize>(),
                cache_slots
            );
        }
    }
}
