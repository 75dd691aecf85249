//! `corelog serve`: every broker flag, each with a `CORELOG_*` variable.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{ArgAction, Args};

use crate::config::{
    BrokerConfig, ClusterSettings, FetchSessionSettings, FlushPolicy, GroupSettings, TxnSettings,
};
use crate::metadata::topic_config::TopicConfigs;
use crate::server::admin as admin_limits;
use crate::server::broker;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to accept Kafka clients on (port 0 picks a free port).
    #[arg(long, env = "CORELOG_LISTEN", default_value = "127.0.0.1:9092")]
    pub listen: SocketAddr,
    /// HOST:PORT given to clients in Metadata; defaults to the listen address.
    #[arg(long, env = "CORELOG_ADVERTISED_ADDRESS")]
    pub advertised_address: Option<String>,
    /// Rack of this broker, reported to clients (Kafka's broker.rack).
    #[arg(long, env = "CORELOG_RACK")]
    pub rack: Option<String>,
    /// Directory for partition logs and topic manifests.
    #[arg(long, env = "CORELOG_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Shards (pinned cores) to run; default: every CPU this process may use.
    #[arg(long, env = "CORELOG_CORES")]
    pub cores: Option<usize>,
    /// Kafka node id reported to clients.
    #[arg(long, env = "CORELOG_NODE_ID", default_value_t = 0)]
    pub node_id: i32,
    /// When to fdatasync: always | interval:<ms> | never.
    #[arg(long, env = "CORELOG_FLUSH", default_value = "always")]
    pub flush: FlushPolicy,
    /// Create unknown topics on Metadata/Produce (Kafka's auto.create.topics.enable).
    #[arg(long, env = "CORELOG_AUTO_CREATE_TOPICS", default_value_t = true, action = ArgAction::Set)]
    pub auto_create_topics: bool,
    /// Partitions of auto-created topics and of CreateTopics with -1 (num.partitions).
    #[arg(long, env = "CORELOG_DEFAULT_PARTITIONS", default_value_t = 1)]
    pub default_partitions: i32,
    /// Partition replicas one node may hold, internal topics included; a
    /// CreateTopics or CreatePartitions that would pass it on any node is
    /// refused with POLICY_VIOLATION.
    #[arg(long, env = "CORELOG_MAX_PARTITIONS_PER_NODE", default_value_t = crate::limits::PARTITIONS_PER_NODE_DEFAULT)]
    pub max_partitions_per_node: u32,
    /// Replicas per partition of auto-created topics and of CreateTopics
    /// with -1 (default.replication.factor).
    #[arg(long, env = "CORELOG_DEFAULT_REPLICATION_FACTOR", default_value_t = 1)]
    pub default_replication_factor: i16,
    /// Replicas per partition of __consumer_offsets, capped at the live
    /// brokers when it is created (offsets.topic.replication.factor).
    #[arg(
        long,
        env = "CORELOG_OFFSETS_TOPIC_REPLICATION_FACTOR",
        default_value_t = 3
    )]
    pub offsets_topic_replication_factor: i16,
    /// Replicas per partition of __transaction_state, capped at the live
    /// brokers when it is created (transaction.state.log.replication.factor).
    #[arg(
        long,
        env = "CORELOG_TRANSACTION_STATE_REPLICATION_FACTOR",
        default_value_t = 3
    )]
    pub transaction_state_replication_factor: i16,
    /// A follower that has not caught up with its leader for this long
    /// leaves the ISR (replica.lag.time.max.ms).
    #[arg(
        long,
        env = "CORELOG_REPLICA_LAG_TIME_MAX_MS",
        default_value_t = 30_000
    )]
    pub replica_lag_time_max_ms: u64,
    /// Largest request frame accepted; larger ones close the connection (socket.request.max.bytes).
    #[arg(long, env = "CORELOG_MAX_REQUEST_BYTES", default_value_t = 104_857_600)]
    pub max_request_bytes: usize,
    /// How long the first join round of an empty consumer group waits for
    /// more members (group.initial.rebalance.delay.ms).
    #[arg(
        long,
        env = "CORELOG_GROUP_INITIAL_REBALANCE_DELAY_MS",
        default_value_t = 3_000
    )]
    pub group_initial_rebalance_delay_ms: i32,
    /// How long a member of a consumer group (group.protocol=consumer,
    /// KIP-848) may go without a heartbeat before it is fenced
    /// (group.consumer.session.timeout.ms).
    #[arg(
        long,
        env = "CORELOG_GROUP_CONSUMER_SESSION_TIMEOUT_MS",
        default_value_t = 45_000
    )]
    pub group_consumer_session_timeout_ms: i32,
    /// How often members of a consumer group heartbeat
    /// (group.consumer.heartbeat.interval.ms).
    #[arg(
        long,
        env = "CORELOG_GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS",
        default_value_t = 5_000
    )]
    pub group_consumer_heartbeat_interval_ms: i32,
    /// Smallest session timeout a group member may ask for (group.min.session.timeout.ms).
    #[arg(
        long,
        env = "CORELOG_GROUP_MIN_SESSION_TIMEOUT_MS",
        default_value_t = 6_000
    )]
    pub group_min_session_timeout_ms: i32,
    /// Largest session timeout a group member may ask for (group.max.session.timeout.ms).
    #[arg(
        long,
        env = "CORELOG_GROUP_MAX_SESSION_TIMEOUT_MS",
        default_value_t = 1_800_000
    )]
    pub group_max_session_timeout_ms: i32,
    /// Partitions of the internal __consumer_offsets topic, used when it is
    /// created (offsets.topic.num.partitions).
    #[arg(long, env = "CORELOG_OFFSETS_TOPIC_PARTITIONS", default_value_t = 50)]
    pub offsets_topic_partitions: i32,
    /// How long committed offsets of an empty group are kept (offsets.retention.minutes).
    #[arg(
        long,
        env = "CORELOG_OFFSETS_RETENTION_MINUTES",
        default_value_t = 10_080
    )]
    pub offsets_retention_minutes: i64,
    /// How often expired offsets and groups are removed (offsets.retention.check.interval.ms).
    #[arg(
        long,
        env = "CORELOG_OFFSETS_RETENTION_CHECK_INTERVAL_MS",
        default_value_t = 600_000
    )]
    pub offsets_retention_check_interval_ms: u64,
    /// Default retention.ms of topics that do not set it (log.retention.ms).
    #[arg(long, env = "CORELOG_LOG_RETENTION_MS")]
    pub log_retention_ms: Option<i64>,
    /// Default retention.bytes per partition (log.retention.bytes).
    #[arg(long, env = "CORELOG_LOG_RETENTION_BYTES")]
    pub log_retention_bytes: Option<i64>,
    /// Default segment.bytes (log.segment.bytes).
    #[arg(long, env = "CORELOG_LOG_SEGMENT_BYTES")]
    pub log_segment_bytes: Option<i64>,
    /// Default segment.ms (log.roll.ms).
    #[arg(long, env = "CORELOG_LOG_SEGMENT_MS")]
    pub log_segment_ms: Option<i64>,
    /// Default max.message.bytes (message.max.bytes).
    #[arg(long, env = "CORELOG_MESSAGE_MAX_BYTES")]
    pub message_max_bytes: Option<i64>,
    /// Default message.timestamp.type: CreateTime or LogAppendTime (log.message.timestamp.type).
    #[arg(long, env = "CORELOG_LOG_MESSAGE_TIMESTAMP_TYPE")]
    pub log_message_timestamp_type: Option<String>,
    /// Default min.insync.replicas of topics that do not set it: the ISR size
    /// below which acks=all produces are refused.
    #[arg(long, env = "CORELOG_MIN_INSYNC_REPLICAS")]
    pub min_insync_replicas: Option<i64>,
    /// How often each shard deletes segments past retention (log.retention.check.interval.ms).
    #[arg(
        long,
        env = "CORELOG_LOG_RETENTION_CHECK_INTERVAL_MS",
        default_value_t = 300_000
    )]
    pub log_retention_check_interval_ms: u64,
    /// Free bytes to keep on the data directory's file system: below them,
    /// Produce is refused with KAFKA_STORAGE_ERROR until space is freed
    /// (Redpanda's storage_min_free_bytes); 0 turns the guard off. The default
    /// is capped at a tenth of the file system.
    #[arg(
        long,
        env = "CORELOG_MIN_FREE_BYTES",
        default_value_t = crate::limits::MIN_FREE_BYTES_DEFAULT
    )]
    pub min_free_bytes: u64,
    /// Partitions of the internal __transaction_state topic, used when it is
    /// created (transaction.state.log.num.partitions).
    #[arg(
        long,
        env = "CORELOG_TRANSACTION_STATE_PARTITIONS",
        default_value_t = 50
    )]
    pub transaction_state_partitions: i32,
    /// Longest transaction timeout a producer may ask for (transaction.max.timeout.ms).
    #[arg(
        long,
        env = "CORELOG_TRANSACTION_MAX_TIMEOUT_MS",
        default_value_t = 900_000
    )]
    pub transaction_max_timeout_ms: i32,
    /// How long an idle transactional id is kept (transactional.id.expiration.ms).
    #[arg(
        long,
        env = "CORELOG_TRANSACTIONAL_ID_EXPIRATION_MS",
        default_value_t = 604_800_000
    )]
    pub transactional_id_expiration_ms: i64,
    /// How often transactions past their timeout are aborted
    /// (transaction.abort.timed.out.transaction.cleanup.interval.ms).
    #[arg(
        long,
        env = "CORELOG_TRANSACTION_ABORT_CHECK_INTERVAL_MS",
        default_value_t = 10_000
    )]
    pub transaction_abort_check_interval_ms: u64,
    /// How long a partition remembers an idle producer's sequence numbers
    /// (producer.id.expiration.ms).
    #[arg(
        long,
        env = "CORELOG_PRODUCER_ID_EXPIRATION_MS",
        default_value_t = 86_400_000
    )]
    pub producer_id_expiration_ms: i64,
    /// The voters of the metadata quorum, `ID@HOST:PORT,...` (Kafka's
    /// controller.quorum.voters). Unset: a one-node cluster, as before.
    #[arg(long, env = "CORELOG_CONTROLLER_QUORUM_VOTERS")]
    pub controller_quorum_voters: Option<String>,
    /// Where this node listens for quorum traffic when it is a voter
    /// (default: the address its id has in --controller-quorum-voters).
    #[arg(long, env = "CORELOG_CONTROLLER_LISTEN")]
    pub controller_listen: Option<SocketAddr>,
    /// A broker that has not heartbeated for this long is fenced
    /// (broker.session.timeout.ms).
    #[arg(
        long,
        env = "CORELOG_BROKER_SESSION_TIMEOUT_MS",
        default_value_t = 9_000
    )]
    pub broker_session_timeout_ms: u64,
    /// How often the active controller moves partition leaderships back to
    /// their preferred (first) replica when it is in sync (Kafka's
    /// auto.leader.rebalance.enable with leader.imbalance.check.interval.seconds);
    /// 0 turns it off.
    #[arg(
        long,
        env = "CORELOG_LEADER_IMBALANCE_CHECK_INTERVAL_MS",
        default_value_t = 300_000
    )]
    pub leader_imbalance_check_interval_ms: u64,
    /// How often a broker heartbeats to the active controller
    /// (broker.heartbeat.interval.ms).
    #[arg(
        long,
        env = "CORELOG_BROKER_HEARTBEAT_INTERVAL_MS",
        default_value_t = 2_000
    )]
    pub broker_heartbeat_interval_ms: u64,
    /// Incremental fetch sessions (KIP-227) the broker keeps for consumers
    /// and followers (max.incremental.fetch.session.cache.slots), split
    /// between the shards: shard i of n keeps slots / n, the first
    /// slots % n one more. A full cache evicts a stale or a smaller old
    /// session for a new one (Kafka's rules). 0 answers every fetch without
    /// a session. Default: 1000 per shard.
    #[arg(long, env = "CORELOG_MAX_INCREMENTAL_FETCH_SESSION_CACHE_SLOTS")]
    pub max_incremental_fetch_session_cache_slots: Option<usize>,
    /// Test-only: a fetch session unused this long is stale, and one younger
    /// than this is not evicted for a larger one (Kafka's internal
    /// min.incremental.fetch.session.eviction.ms).
    #[arg(
        long,
        env = "CORELOG_MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS",
        default_value_t = 120_000,
        hide = true
    )]
    pub min_incremental_fetch_session_eviction_ms: u64,
    /// Test-only fault injection: every Nth Produce with acks != 0 on each shard
    /// is appended but answered by closing the connection (0 = off).
    #[arg(
        long,
        env = "CORELOG_FAULT_DROP_PRODUCE_RESPONSES",
        default_value_t = 0,
        hide = true
    )]
    pub fault_drop_produce_responses: u64,
}

impl ServeArgs {
    pub fn into_config(self) -> io::Result<BrokerConfig> {
        let invalid = |message: String| io::Error::new(io::ErrorKind::InvalidInput, message);
        let (advertised_host, advertised_port) = match &self.advertised_address {
            Some(address) => {
                let (host, port) = address.rsplit_once(':').ok_or_else(|| {
                    invalid(format!(
                        "--advertised-address must be HOST:PORT, got {address}"
                    ))
                })?;
                let port = port
                    .parse::<u16>()
                    .map_err(|_| invalid(format!("bad port in --advertised-address {address}")))?;
                (
                    host.trim_matches(|c| c == '[' || c == ']').to_string(),
                    port,
                )
            }
            None if self.listen.ip().is_unspecified() => (local_hostname(), self.listen.port()),
            None => (self.listen.ip().to_string(), self.listen.port()),
        };
        let shards = self.cores.unwrap_or_else(broker::default_shard_count);
        if shards == 0 {
            return Err(invalid("--cores must be at least 1".into()));
        }
        if self.default_partitions < 1 {
            return Err(invalid("--default-partitions must be at least 1".into()));
        }
        if self.max_partitions_per_node < 1 {
            return Err(invalid(
                "--max-partitions-per-node must be at least 1".into(),
            ));
        }
        let replication_factors = [
            (
                "--default-replication-factor",
                self.default_replication_factor,
            ),
            (
                "--offsets-topic-replication-factor",
                self.offsets_topic_replication_factor,
            ),
            (
                "--transaction-state-replication-factor",
                self.transaction_state_replication_factor,
            ),
        ];
        for (flag, factor) in replication_factors {
            if factor < 1 {
                return Err(invalid(format!("{flag} must be at least 1")));
            }
        }
        if self.replica_lag_time_max_ms < 1 {
            return Err(invalid("--replica-lag-time-max-ms must be >= 1".into()));
        }
        if self.max_request_bytes < 1024 || self.max_request_bytes > i32::MAX as usize {
            return Err(invalid(
                "--max-request-bytes must be between 1024 and 2147483647".into(),
            ));
        }
        if self.group_initial_rebalance_delay_ms < 0 {
            return Err(invalid(
                "--group-initial-rebalance-delay-ms must be >= 0".into(),
            ));
        }
        if self.group_consumer_heartbeat_interval_ms < 1
            || self.group_consumer_heartbeat_interval_ms >= self.group_consumer_session_timeout_ms
        {
            return Err(invalid(
                "--group-consumer-heartbeat-interval-ms must be >= 1 and below --group-consumer-session-timeout-ms (Kafka's rule)".into(),
            ));
        }
        if self.group_min_session_timeout_ms < 1
            || self.group_min_session_timeout_ms > self.group_max_session_timeout_ms
        {
            return Err(invalid(
                "--group-min-session-timeout-ms must be >= 1 and <= --group-max-session-timeout-ms"
                    .into(),
            ));
        }
        if !(1..=admin_limits::MAX_PARTITIONS_PER_TOPIC).contains(&self.offsets_topic_partitions) {
            return Err(invalid(format!(
                "--offsets-topic-partitions must be between 1 and {}",
                admin_limits::MAX_PARTITIONS_PER_TOPIC
            )));
        }
        if self.offsets_retention_minutes < 1 || self.offsets_retention_minutes > i64::MAX / 60_000
        {
            return Err(invalid("--offsets-retention-minutes must be >= 1".into()));
        }
        if self.offsets_retention_check_interval_ms < 1 {
            return Err(invalid(
                "--offsets-retention-check-interval-ms must be >= 1".into(),
            ));
        }
        let topic_defaults = self.topic_defaults()?;
        if self.log_retention_check_interval_ms < 1 {
            return Err(invalid(
                "--log-retention-check-interval-ms must be >= 1".into(),
            ));
        }
        if !(1..=admin_limits::MAX_PARTITIONS_PER_TOPIC)
            .contains(&self.transaction_state_partitions)
        {
            return Err(invalid(format!(
                "--transaction-state-partitions must be between 1 and {}",
                admin_limits::MAX_PARTITIONS_PER_TOPIC
            )));
        }
        if self.transaction_max_timeout_ms < 1 {
            return Err(invalid("--transaction-max-timeout-ms must be >= 1".into()));
        }
        if self.transactional_id_expiration_ms < 1 || self.producer_id_expiration_ms < 1 {
            return Err(invalid(
                "--transactional-id-expiration-ms and --producer-id-expiration-ms must be >= 1"
                    .into(),
            ));
        }
        if self.transaction_abort_check_interval_ms < 1 {
            return Err(invalid(
                "--transaction-abort-check-interval-ms must be >= 1".into(),
            ));
        }
        let transactions = TxnSettings {
            state_topic_partitions: self.transaction_state_partitions,
            state_topic_replication_factor: self.transaction_state_replication_factor,
            max_timeout_ms: self.transaction_max_timeout_ms,
            transactional_id_expiration_ms: self.transactional_id_expiration_ms,
            abort_timed_out_check_ms: self.transaction_abort_check_interval_ms,
            producer_id_expiration_ms: self.producer_id_expiration_ms,
            ..TxnSettings::default()
        };
        let cluster = self.cluster_settings()?;
        // Kafka's slots are an int (at least 0).
        if self
            .max_incremental_fetch_session_cache_slots
            .is_some_and(|slots| slots > i32::MAX as usize)
        {
            return Err(invalid(
                "--max-incremental-fetch-session-cache-slots must be at most 2147483647".into(),
            ));
        }
        let fetch_sessions = FetchSessionSettings {
            cache_slots: self.max_incremental_fetch_session_cache_slots,
            eviction_age: std::time::Duration::from_millis(
                self.min_incremental_fetch_session_eviction_ms,
            ),
        };
        let groups = GroupSettings {
            initial_rebalance_delay_ms: self.group_initial_rebalance_delay_ms,
            min_session_timeout_ms: self.group_min_session_timeout_ms,
            max_session_timeout_ms: self.group_max_session_timeout_ms,
            offsets_topic_partitions: self.offsets_topic_partitions,
            offsets_topic_replication_factor: self.offsets_topic_replication_factor,
            offsets_retention_ms: self.offsets_retention_minutes * 60_000,
            offsets_retention_check_ms: self.offsets_retention_check_interval_ms,
            consumer_session_timeout_ms: self.group_consumer_session_timeout_ms,
            consumer_heartbeat_interval_ms: self.group_consumer_heartbeat_interval_ms,
            ..GroupSettings::default()
        };
        Ok(BrokerConfig {
            listen: self.listen,
            advertised_host,
            advertised_port,
            rack: self.rack.filter(|rack| !rack.is_empty()),
            data_dir: self.data_dir,
            shards,
            first_cpu: 0,
            node_id: self.node_id,
            flush: self.flush,
            auto_create_topics: self.auto_create_topics,
            default_partitions: self.default_partitions,
            max_partitions_per_node: self.max_partitions_per_node,
            default_replication_factor: self.default_replication_factor,
            replica_lag_time_max_ms: self.replica_lag_time_max_ms,
            max_request_bytes: self.max_request_bytes,
            groups,
            transactions,
            topic_defaults,
            retention_check_interval: std::time::Duration::from_millis(
                self.log_retention_check_interval_ms,
            ),
            min_free_bytes: self.min_free_bytes,
            fault_drop_produce_responses: self.fault_drop_produce_responses,
            cluster,
            fetch_sessions,
        })
    }

    /// The quorum flags, checked: `None` without `--controller-quorum-voters`.
    fn cluster_settings(&self) -> io::Result<Option<ClusterSettings>> {
        let invalid = |message: String| io::Error::new(io::ErrorKind::InvalidInput, message);
        let Some(voters) = &self.controller_quorum_voters else {
            if self.controller_listen.is_some() {
                return Err(invalid(
                    "--controller-listen needs --controller-quorum-voters".into(),
                ));
            }
            return Ok(None);
        };
        let voters = parse_quorum_voters(voters).map_err(invalid)?;
        if self.node_id < 0 {
            return Err(invalid("--node-id must be >= 0 in a cluster".into()));
        }
        let controller_listen = match (voters.get(&(self.node_id as u64)), self.controller_listen) {
            (Some(_), Some(listen)) => Some(listen),
            (Some(address), None) => Some(address.parse::<SocketAddr>().map_err(|_| {
                invalid(format!(
                    "node {} is a voter at {address}, which is not an IP:PORT to listen on; give --controller-listen",
                    self.node_id
                ))
            })?),
            (None, Some(_)) => {
                return Err(invalid(format!(
                    "--controller-listen is for voters, and node {} is not in --controller-quorum-voters",
                    self.node_id
                )))
            }
            (None, None) => None,
        };
        if self.broker_heartbeat_interval_ms < 1
            || self.broker_heartbeat_interval_ms >= self.broker_session_timeout_ms
        {
            return Err(invalid(
                "--broker-heartbeat-interval-ms must be >= 1 and below --broker-session-timeout-ms"
                    .into(),
            ));
        }
        Ok(Some(ClusterSettings {
            voters,
            controller_listen,
            broker_session_timeout_ms: self.broker_session_timeout_ms,
            broker_heartbeat_interval_ms: self.broker_heartbeat_interval_ms,
            leader_imbalance_check_interval_ms: self.leader_imbalance_check_interval_ms,
        }))
    }

    /// The broker-level topic defaults given by flags, validated as topic
    /// configs (the same checks and messages as CreateTopics).
    fn topic_defaults(&self) -> io::Result<BTreeMap<String, String>> {
        let mut defaults = BTreeMap::new();
        let numbers = [
            ("retention.ms", self.log_retention_ms),
            ("retention.bytes", self.log_retention_bytes),
            ("segment.bytes", self.log_segment_bytes),
            ("segment.ms", self.log_segment_ms),
            ("max.message.bytes", self.message_max_bytes),
            ("min.insync.replicas", self.min_insync_replicas),
        ];
        for (name, value) in numbers {
            if let Some(value) = value {
                defaults.insert(name.to_string(), value.to_string());
            }
        }
        if let Some(kind) = &self.log_message_timestamp_type {
            defaults.insert("message.timestamp.type".to_string(), kind.clone());
        }
        TopicConfigs::from_overrides(defaults.clone())
            .map_err(|message| io::Error::new(io::ErrorKind::InvalidInput, message))?;
        Ok(defaults)
    }
}

/// Parses Kafka's `controller.quorum.voters`: `ID@HOST:PORT,...`.
pub fn parse_quorum_voters(text: &str) -> Result<BTreeMap<u64, String>, String> {
    let mut voters = BTreeMap::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (id, address) = entry
            .split_once('@')
            .ok_or_else(|| format!("quorum voter {entry:?} is not ID@HOST:PORT"))?;
        let id: u64 = id
            .parse()
            .ok()
            .filter(|id| *id <= i32::MAX as u64)
            .ok_or_else(|| format!("quorum voter {entry:?}: bad node id {id:?}"))?;
        let (host, port) = address
            .rsplit_once(':')
            .ok_or_else(|| format!("quorum voter {entry:?} is not ID@HOST:PORT"))?;
        if host.is_empty() || port.parse::<u16>().map_or(true, |port| port == 0) {
            return Err(format!("quorum voter {entry:?} needs a host and a port"));
        }
        if voters.insert(id, address.to_string()).is_some() {
            return Err(format!("quorum voter {id} is named twice"));
        }
    }
    if voters.is_empty() {
        return Err("--controller-quorum-voters names no voter".into());
    }
    Ok(voters)
}

fn local_hostname() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into our buffer.
    let rc = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buffer.iter().position(|b| *b == 0).unwrap_or(buffer.len());
    String::from_utf8_lossy(&buffer[..end]).into_owned()
}

pub fn run(args: ServeArgs) -> io::Result<()> {
    let config = args.into_config()?;
    broker::run(config)
}

#[cfg(test)]
mod tests {
    use super::{parse_quorum_voters, ServeArgs};
    use clap::Parser;

    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn config(flags: &[&str]) -> std::io::Result<crate::config::BrokerConfig> {
        let argv = std::iter::once("serve").chain(flags.iter().copied());
        Serve::try_parse_from(argv)
            .expect("flags parse")
            .args
            .into_config()
    }

    #[test]
    fn replication_flags_default_to_kafkas_values_and_refuse_zero() {
        let defaults = config(&["--cores", "1"]).expect("valid");
        assert_eq!(defaults.default_replication_factor, 1);
        assert_eq!(defaults.groups.offsets_topic_replication_factor, 3);
        assert_eq!(defaults.transactions.state_topic_replication_factor, 3);
        assert_eq!(defaults.replica_lag_time_max_ms, 30_000);
        let set = config(&[
            "--cores",
            "1",
            "--default-replication-factor",
            "2",
            "--offsets-topic-replication-factor",
            "1",
            "--replica-lag-time-max-ms",
            "500",
        ])
        .expect("valid");
        assert_eq!(set.default_replication_factor, 2);
        assert_eq!(set.groups.offsets_topic_replication_factor, 1);
        assert_eq!(set.replica_lag_time_max_ms, 500);
        for flag in [
            "--default-replication-factor",
            "--offsets-topic-replication-factor",
            "--transaction-state-replication-factor",
            "--replica-lag-time-max-ms",
        ] {
            let refused = config(&["--cores", "1", flag, "0"]).expect_err("zero");
            assert!(refused.to_string().contains(flag), "{refused}");
        }
    }

    #[test]
    fn min_free_bytes_defaults_to_the_documented_reserve() {
        let defaults = config(&["--cores", "1"]).expect("valid");
        assert_eq!(
            defaults.min_free_bytes,
            crate::limits::MIN_FREE_BYTES_DEFAULT
        );
        let set = config(&["--cores", "1", "--min-free-bytes", "0"]).expect("valid");
        assert_eq!(set.min_free_bytes, 0);
    }

    #[test]
    fn fetch_session_cache_slots_default_to_1000_per_shard_and_0_turns_sessions_off() {
        let defaults = config(&["--cores", "2"]).expect("valid");
        assert_eq!(defaults.fetch_sessions.cache_slots, None);
        assert_eq!(defaults.fetch_sessions.slots_of_shard(1, 2), 1_000);
        assert_eq!(
            defaults.fetch_sessions.eviction_age,
            crate::config::FETCH_SESSION_EVICTION_AGE_DEFAULT
        );
        let slots = "--max-incremental-fetch-session-cache-slots";
        let off = config(&["--cores", "2", slots, "0"]).expect("valid");
        assert_eq!(off.fetch_sessions.cache_slots, Some(0));
        let one = config(&[
            "--cores",
            "1",
            slots,
            "1",
            "--min-incremental-fetch-session-eviction-ms",
            "500",
        ])
        .expect("valid");
        assert_eq!(one.fetch_sessions.slots_of_shard(0, 1), 1);
        assert_eq!(
            one.fetch_sessions.eviction_age,
            std::time::Duration::from_millis(500)
        );
        let refused = config(&["--cores", "1", slots, "2147483648"]).expect_err("too many");
        assert!(refused.to_string().contains(slots), "{refused}");
    }

    #[test]
    fn quorum_voters_parse_like_kafkas_controller_quorum_voters() {
        let voters = parse_quorum_voters("0@127.0.0.1:9093, 1@host-b:9193,2@[::1]:9293")
            .expect("valid voters");
        assert_eq!(voters.len(), 3);
        assert_eq!(voters[&0], "127.0.0.1:9093");
        assert_eq!(voters[&1], "host-b:9193");
        assert_eq!(voters[&2], "[::1]:9293");
        for bad in [
            "",
            "0@127.0.0.1",
            "127.0.0.1:9093",
            "x@127.0.0.1:9093",
            "-1@127.0.0.1:9093",
            "0@:9093",
            "0@host:0",
            "0@a:1,0@b:2",
        ] {
            assert!(parse_quorum_voters(bad).is_err(), "{bad:?} is refused");
        }
    }
}
