//! DescribeLogDirs (API 35, KIP-113; v3 adds the top-level error code,
//! KIP-784, v4 the volume's total and usable bytes, KIP-827): the replicas this broker
//! hosts, with each log's size on disk and offset lag, as Kafka's
//! `ReplicaManager.describeLogDirs` answers it. Every broker answers for its
//! own replicas only (leaders and followers alike); a tool asks each broker.
//!
//! Which cores: the handler runs on the shard that accepted the connection.
//! Logs live on their owning shards, so it asks them: the owners of the named
//! partitions (`ReplicaLogsCall`, through `scatter`), or every shard when
//! `topics` is null (`EveryReplicaLogCall`). Owners read sizes and offsets
//! from memory, no I/O. The volume's statvfs (v4) runs on glommio's
//! blocking thread pool: it is a syscall that may wait on a slow or remote
//! file system, and shards never block.
//!
//! corelog has one log directory, `--data-dir`: one result, always.

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use futures::future::LocalBoxFuture;
use futures::FutureExt;
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::routing::{self, ShardCall};
use super::scatter::{scatter_gather, OwnerWork};
use super::shard::Shard;
use crate::log::PartitionLog;
use crate::protocol::errors::{KafkaError, NONE};

/// Kafka's "unknown" for the v4 volume sizes (the fields' default).
const UNKNOWN_BYTES: i64 = -1;

/// One partition named in a request.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReplicaKey {
    pub topic: Arc<str>,
    pub partition: i32,
}

/// One replica hosted here, as DescribeLogDirs reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaLogInfo {
    pub topic: Arc<str>,
    pub partition: i32,
    /// Bytes of the log's segments (`PartitionLog::size_bytes`).
    pub size_bytes: u64,
    pub offset_lag: i64,
}

/// What the owner of a named partition answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicaLookup {
    Hosted(ReplicaLogInfo),
    /// No replica of it on this broker (or no such partition): left out of
    /// the answer, as Kafka filters its logs by the requested partitions.
    NotHosted,
    /// The owning shard did not answer (it is shutting down).
    Unreachable,
}

/// Describe these replicas (all owned by the callee); one lookup per item,
/// in order.
#[derive(Debug)]
pub struct ReplicaLogsCall(pub Vec<ReplicaKey>);

impl ShardCall<Shard> for ReplicaLogsCall {
    type Reply = Vec<ReplicaLookup>;
    fn start(self, shard: &Rc<Shard>) -> LocalBoxFuture<'static, Self::Reply> {
        let lookups = self
            .0
            .into_iter()
            .map(|key| {
                shard.assert_owner(&key.topic, key.partition);
                match shard.partition_log(&key.topic, key.partition) {
                    Some(log) => ReplicaLookup::Hosted(describe_replica(key, &log)),
                    None => ReplicaLookup::NotHosted,
                }
            })
            .collect();
        async move { lookups }.boxed_local()
    }
}

/// Describe every replica the callee hosts.
#[derive(Debug, Clone, Copy)]
pub struct EveryReplicaLogCall;

impl ShardCall<Shard> for EveryReplicaLogCall {
    type Reply = Vec<ReplicaLogInfo>;
    fn start(self, shard: &Rc<Shard>) -> LocalBoxFuture<'static, Self::Reply> {
        let replicas = shard
            .local_partitions()
            .into_iter()
            .map(|(topic, partition, log)| {
                shard.assert_owner(&topic, partition);
                describe_replica(ReplicaKey { topic, partition }, &log)
            })
            .collect();
        async move { replicas }.boxed_local()
    }
}

struct ReplicaLogWork;

impl OwnerWork for ReplicaLogWork {
    type Item = ReplicaKey;
    type Outcome = ReplicaLookup;
    type Call = ReplicaLogsCall;
    fn owner(shard: &Shard, key: &ReplicaKey) -> usize {
        shard.owner_of(&key.topic, key.partition)
    }
    fn call(keys: Vec<ReplicaKey>) -> ReplicaLogsCall {
        ReplicaLogsCall(keys)
    }
    fn unreachable() -> ReplicaLookup {
        ReplicaLookup::Unreachable
    }
}

/// On the owner: one replica's size and lag, read in place.
fn describe_replica(key: ReplicaKey, log: &PartitionLog) -> ReplicaLogInfo {
    ReplicaLogInfo {
        topic: key.topic,
        partition: key.partition,
        size_bytes: log.size_bytes(),
        offset_lag: offset_lag(log.high_watermark(), log.log_end_offset()),
    }
}

/// Kafka's `getLogEndOffsetLag` for a current (not future) log:
/// `max(high watermark - log end offset, 0)`. corelog has no future logs
/// (no AlterReplicaLogDirs), so `is_future_key` is always false.
fn offset_lag(high_watermark: i64, log_end_offset: i64) -> i64 {
    high_watermark.saturating_sub(log_end_offset).max(0)
}

/// The volume's size, as DescribeLogDirs v4 reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VolumeSpace {
    pub total_bytes: i64,
    pub usable_bytes: i64,
}

impl VolumeSpace {
    const UNKNOWN: VolumeSpace = VolumeSpace {
        total_bytes: UNKNOWN_BYTES,
        usable_bytes: UNKNOWN_BYTES,
    };

    /// From statvfs counts: Java's `FileStore.getTotalSpace` (all blocks)
    /// and `getUsableSpace` (blocks available to unprivileged users), in
    /// fragment units. A size past `i64::MAX` is `i64::MAX`, as Kafka's
    /// `adjustForLargeFileSystems` answers for JDK-8162520.
    pub fn from_blocks(blocks: u64, available_blocks: u64, fragment_bytes: u64) -> VolumeSpace {
        let bytes = |count: u64| {
            count
                .checked_mul(fragment_bytes)
                .and_then(|bytes| i64::try_from(bytes).ok())
                .unwrap_or(i64::MAX)
        };
        VolumeSpace {
            total_bytes: bytes(blocks),
            usable_bytes: bytes(available_blocks),
        }
    }
}

/// DescribeLogDirs, answered on any shard.
pub async fn describe_log_dirs(
    shard: &Rc<Shard>,
    request: DescribeLogDirsRequest,
    version: i16,
) -> DescribeLogDirsResponse {
    let replicas = match &request.topics {
        None => every_replica(shard).await,
        Some(topics) => named_replicas(shard, topics).await,
    };
    let log_dir = absolute_log_dir(&shard.config.data_dir);
    let result = DescribeLogDirsResult::default().with_log_dir(StrBytes::from_string(
        log_dir.to_string_lossy().into_owned(),
    ));
    let result = match replicas {
        Some(replicas) => {
            // Only v4 carries the volume's size: older askers skip the
            // trip to the blocking pool.
            let space = if version >= 4 {
                volume_space(log_dir).await
            } else {
                VolumeSpace::UNKNOWN
            };
            result
                .with_error_code(NONE)
                .with_topics(topics_response(replicas))
                .with_total_bytes(space.total_bytes)
                .with_usable_bytes(space.usable_bytes)
        }
        // Kafka answers an unexpected failure to describe a directory with
        // the directory's error and no topics; a partial list would read
        // as replicas missing from this broker.
        None => result.with_error_code(KafkaError::UnknownServerError.code()),
    };
    // The top-level error (v3+) is Kafka's authorization check; every
    // client may describe here.
    DescribeLogDirsResponse::default()
        .with_error_code(NONE)
        .with_results(vec![result])
}

/// Every replica on every shard; `None` if a shard did not answer.
async fn every_replica(shard: &Rc<Shard>) -> Option<Vec<ReplicaLogInfo>> {
    let mut replicas = Vec::new();
    for reply in routing::call_every_shard(shard, EveryReplicaLogCall).await {
        replicas.extend(reply.ok()?);
    }
    Some(replicas)
}

/// The named replicas hosted here; `None` if an owner did not answer.
async fn named_replicas(
    shard: &Rc<Shard>,
    topics: &[DescribableLogDirTopic],
) -> Option<Vec<ReplicaLogInfo>> {
    let keys = requested_replicas(topics);
    let mut replicas = Vec::with_capacity(keys.len());
    for lookup in scatter_gather::<ReplicaLogWork>(shard, &keys).await {
        match lookup {
            ReplicaLookup::Hosted(info) => replicas.push(info),
            ReplicaLookup::NotHosted => {}
            ReplicaLookup::Unreachable => return None,
        }
    }
    Some(replicas)
}

/// The partitions a request names, each once (Kafka collects them in a
/// set), sorted.
fn requested_replicas(topics: &[DescribableLogDirTopic]) -> Vec<ReplicaKey> {
    let mut keys: Vec<ReplicaKey> = Vec::new();
    for topic in topics {
        let name: Arc<str> = Arc::from(topic.topic.0.as_str());
        keys.extend(topic.partitions.iter().map(|&partition| ReplicaKey {
            topic: Arc::clone(&name),
            partition,
        }));
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The replicas grouped by topic, topics and partitions in order; a topic
/// appears only with at least one partition (Kafka drops empty ones).
fn topics_response(mut replicas: Vec<ReplicaLogInfo>) -> Vec<DescribeLogDirsTopic> {
    replicas.sort_unstable_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    let mut topics: Vec<DescribeLogDirsTopic> = Vec::new();
    let mut current: Option<Arc<str>> = None;
    for replica in replicas {
        let partition = DescribeLogDirsPartition::default()
            .with_partition_index(replica.partition)
            .with_partition_size(i64::try_from(replica.size_bytes).unwrap_or(i64::MAX))
            .with_offset_lag(replica.offset_lag)
            .with_is_future_key(false);
        match topics.last_mut() {
            Some(topic) if current.as_deref() == Some(&*replica.topic) => {
                topic.partitions.push(partition);
            }
            _ => {
                topics.push(
                    DescribeLogDirsTopic::default()
                        .with_name(TopicName(StrBytes::from_string(replica.topic.to_string())))
                        .with_partitions(vec![partition]),
                );
                current = Some(replica.topic);
            }
        }
    }
    topics
}

/// `--data-dir` as an absolute path (Kafka reports `toAbsolutePath`, with
/// no symlinks resolved). Only a relative path costs a getcwd, which does
/// not touch the disk.
fn absolute_log_dir(data_dir: &Path) -> PathBuf {
    std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_path_buf())
}

/// The space of the volume holding `log_dir`, on glommio's blocking thread
/// pool; unknown (-1) if statvfs fails.
async fn volume_space(log_dir: PathBuf) -> VolumeSpace {
    glommio::executor()
        .spawn_blocking(move || match statvfs(&log_dir) {
            Ok(space) => space,
            Err(error) => {
                tracing::warn!(dir = %log_dir.display(), %error, "statvfs of the data directory failed");
                VolumeSpace::UNKNOWN
            }
        })
        .await
}

/// statvfs(3) of `path` in Kafka's terms. Blocks: call it only off the shards.
fn statvfs(path: &Path) -> std::io::Result<VolumeSpace> {
    let blocks = crate::log::free_space::volume_blocks(path)?;
    Ok(VolumeSpace::from_blocks(
        blocks.blocks,
        blocks.available_blocks,
        blocks.fragment_bytes,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(topic: &str, partition: i32, size_bytes: u64) -> ReplicaLogInfo {
        ReplicaLogInfo {
            topic: Arc::from(topic),
            partition,
            size_bytes,
            offset_lag: 0,
        }
    }

    fn asked(topic: &'static str, partitions: Vec<i32>) -> DescribableLogDirTopic {
        DescribableLogDirTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str(topic)))
            .with_partitions(partitions)
    }

    #[test]
    fn offset_lag_is_the_high_watermark_past_the_log_end_or_zero() {
        assert_eq!(offset_lag(10, 10), 0);
        // A log end ahead of the high watermark (records not yet
        // replicated, or queued for the disk) is no lag.
        assert_eq!(offset_lag(10, 15), 0);
        assert_eq!(offset_lag(15, 10), 5);
        assert_eq!(offset_lag(i64::MAX, i64::MIN), i64::MAX);
    }

    #[test]
    fn volume_space_multiplies_blocks_and_caps_at_i64_max() {
        assert_eq!(
            VolumeSpace::from_blocks(1_000, 250, 4096),
            VolumeSpace {
                total_bytes: 4_096_000,
                usable_bytes: 1_024_000,
            }
        );
        assert_eq!(
            VolumeSpace::from_blocks(u64::MAX, 1, 4096),
            VolumeSpace {
                total_bytes: i64::MAX,
                usable_bytes: 4096,
            }
        );
        assert_eq!(
            VolumeSpace::from_blocks(1 << 62, 1 << 61, 4).total_bytes,
            i64::MAX
        );
    }

    #[test]
    fn requested_replicas_are_each_named_once_in_order() {
        let keys = requested_replicas(&[
            asked("orders", vec![1, 0, 1]),
            asked("audit", vec![3]),
            asked("orders", vec![0]),
            asked("empty", vec![]),
        ]);
        let keys: Vec<(&str, i32)> = keys
            .iter()
            .map(|key| (&*key.topic, key.partition))
            .collect();
        assert_eq!(keys, [("audit", 3), ("orders", 0), ("orders", 1)]);
    }

    #[test]
    fn topics_response_groups_partitions_by_topic_in_order() {
        let topics = topics_response(vec![
            replica("orders", 1, 200),
            replica("audit", 0, 0),
            replica("orders", 0, 100),
        ]);
        let shape: Vec<(&str, Vec<(i32, i64)>)> = topics
            .iter()
            .map(|topic| {
                (
                    topic.name.0.as_str(),
                    topic
                        .partitions
                        .iter()
                        .map(|p| (p.partition_index, p.partition_size))
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            [
                ("audit", vec![(0, 0)]),
                ("orders", vec![(0, 100), (1, 200)])
            ]
        );
        assert!(topics
            .iter()
            .flat_map(|topic| &topic.partitions)
            .all(|p| !p.is_future_key && p.offset_lag == 0));
    }

    #[test]
    fn no_hosted_replicas_is_an_empty_topic_list() {
        assert!(topics_response(Vec::new()).is_empty());
    }

    #[test]
    fn statvfs_of_an_existing_directory_knows_its_volume() {
        let dir = tempfile::tempdir().expect("tempdir");
        let space = statvfs(dir.path()).expect("statvfs");
        assert!(space.total_bytes > 0, "{space:?}");
        assert!(
            (0..=space.total_bytes).contains(&space.usable_bytes),
            "{space:?}"
        );
        assert!(statvfs(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn a_relative_data_dir_is_reported_absolute() {
        let reported = absolute_log_dir(Path::new("data/node-1"));
        assert!(reported.is_absolute(), "{}", reported.display());
        assert!(reported.ends_with("data/node-1"));
        assert_eq!(
            absolute_log_dir(Path::new("/var/lib/corelog")),
            Path::new("/var/lib/corelog")
        );
    }
}
