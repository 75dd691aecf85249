//! Stray replicas: partition directories a cluster node finds on disk at
//! start-up that the metadata no longer gives it, because it was down while
//! their topic was deleted (or deleted and created again under the same name,
//! with a new topic id), or while their partition was reassigned to other
//! brokers. Kafka's answer since 3.7 (KAFKA-14616, KAFKA-16234;
//! `LogManager.isStrayKraftReplica`, called for every log it loads once the
//! broker has its first metadata image, `BrokerMetadataPublisher.initializeManagers`):
//! such a log is not served, its directory is renamed
//! `<topic>-<partition>.<unique id>-stray` and kept, never deleted by the
//! broker, for an operator to remove; later start-ups warn about it again.
//!
//! This file is the pure part: reading the data directory's names (once, at
//! start-up, on the main thread before any shard runs, like
//! `manifest::load_all`), and deciding which of the logs are stray given the
//! first complete image. The renames run in `server::cluster_metadata`, where
//! the image is applied, on each partition's owning shard, before any
//! partition of that image is opened.
//!
//! The topic id of a directory comes from the node's topic manifests
//! (`__manifests/<topic id>.manifest`, written before a hosted topic's
//! partitions are first opened): corelog's equivalent of Kafka's
//! per-partition `partition.metadata`.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use uuid::Uuid;

use super::catalog::{Catalog, TopicMetadata};
use super::topic_name::validate_topic_name;
use crate::cluster::node::METADATA_DIRECTORY;

/// Kafka's suffix for a stray log's directory (`LocalLog.StrayDirSuffix`).
pub const STRAY_DIR_SUFFIX: &str = "-stray";
/// Longest file name Linux file systems take: a stray directory's name is
/// cut to it by shortening the topic, as Kafka's
/// `logDirNameWithSuffixCappedLength` does.
const FILE_NAME_MAX_BYTES: usize = 255;

/// What a cluster node's data directory held at start-up.
#[derive(Debug, Default)]
pub struct LocalLogs {
    /// Every `<topic>-<partition>` directory.
    pub partitions: Vec<(Arc<str>, i32)>,
    /// The topic ids the local manifests record, by topic name (more than
    /// one only if removing an old manifest failed).
    pub topic_ids: HashMap<Arc<str>, Vec<Uuid>>,
    /// Directories an earlier start set aside as stray.
    pub stray_dirs: Vec<String>,
}

impl LocalLogs {
    /// Reads the names in `data_dir` (`std::fs`: call it on the main thread
    /// before any shard runs) and the topic ids of `manifests`.
    pub fn scan(data_dir: &Path, manifests: &[TopicMetadata]) -> io::Result<LocalLogs> {
        let mut local = LocalLogs::default();
        for manifest in manifests {
            local
                .topic_ids
                .entry(Arc::clone(&manifest.name))
                .or_default()
                .push(manifest.topic_id);
        }
        for entry in std::fs::read_dir(data_dir)? {
            let entry = entry?;
            if !entry.file_type()?.is_dir() {
                continue;
            }
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if name == METADATA_DIRECTORY {
                continue;
            }
            if is_stray_dir_name(&name) {
                local.stray_dirs.push(name);
            } else if let Some((topic, partition)) = parse_partition_dir_name(&name) {
                local.partitions.push((Arc::from(topic), partition));
            }
        }
        local.partitions.sort_unstable();
        local.stray_dirs.sort_unstable();
        Ok(local)
    }
}

/// A local log the image does not give this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrayReplica {
    pub topic: Arc<str>,
    pub partition: i32,
    pub reason: StrayReason,
}

/// Why a local log is stray (the cases of Kafka's `isStrayKraftReplica`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrayReason {
    /// No local manifest records which topic the directory belongs to.
    /// Kafka treats a log without `partition.metadata` as stray: the topic
    /// id is written before the first append, so such a log holds nothing
    /// acknowledged.
    UnknownTopicId,
    /// The image has no topic of this name: deleted while this node was away.
    TopicDeleted { topic_id: Uuid },
    /// The name now belongs to another topic: deleted and created again.
    TopicRecreated {
        local_topic_id: Uuid,
        topic_id: Uuid,
    },
    /// The topic has no partition of this index.
    PartitionMissing { topic_id: Uuid },
    /// The partition's replicas (those a reassignment adds included) do not
    /// name this node: moved to other brokers.
    NotAReplica { replicas: Vec<i32> },
}

impl fmt::Display for StrayReason {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StrayReason::UnknownTopicId => {
                write!(formatter, "no local manifest records its topic id")
            }
            StrayReason::TopicDeleted { topic_id } => {
                write!(formatter, "topic id {topic_id} no longer exists")
            }
            StrayReason::TopicRecreated {
                local_topic_id,
                topic_id,
            } => write!(
                formatter,
                "it belongs to topic id {local_topic_id}, the topic now has id {topic_id}"
            ),
            StrayReason::PartitionMissing { topic_id } => {
                write!(formatter, "topic id {topic_id} has no such partition")
            }
            StrayReason::NotAReplica { replicas } => write!(
                formatter,
                "the partition's replicas {replicas:?} do not include this node"
            ),
        }
    }
}

/// The logs of `local` that `image` does not give node `node_id`, with why.
/// `image` must be complete (this node caught up with the controller): an
/// empty or old image would make live replicas look stray.
pub fn find_stray_replicas(node_id: i32, image: &Catalog, local: &LocalLogs) -> Vec<StrayReplica> {
    local
        .partitions
        .iter()
        .filter_map(|(topic, partition)| {
            let recorded = local.topic_ids.get(topic).map_or(&[][..], Vec::as_slice);
            let reason = stray_reason(node_id, image, topic, *partition, recorded)?;
            Some(StrayReplica {
                topic: Arc::clone(topic),
                partition: *partition,
                reason,
            })
        })
        .collect()
}

fn stray_reason(
    node_id: i32,
    image: &Catalog,
    topic: &str,
    partition: i32,
    recorded: &[Uuid],
) -> Option<StrayReason> {
    let Some(&local_topic_id) = recorded.first() else {
        return Some(StrayReason::UnknownTopicId);
    };
    let Some(current) = image.topic(topic) else {
        return Some(StrayReason::TopicDeleted {
            topic_id: local_topic_id,
        });
    };
    if !recorded.contains(&current.topic_id) {
        return Some(StrayReason::TopicRecreated {
            local_topic_id,
            topic_id: current.topic_id,
        });
    }
    let Some(assignment) = image.partition(topic, partition) else {
        return Some(StrayReason::PartitionMissing {
            topic_id: current.topic_id,
        });
    };
    let assigned =
        assignment.replicas.contains(&node_id) || assignment.adding_replicas.contains(&node_id);
    (!assigned).then(|| StrayReason::NotAReplica {
        replicas: assignment.replicas.clone(),
    })
}

/// `(topic, partition)` of a partition directory's name (`orders-3`), as
/// `Shard::partition_dir` names them; `None` for anything else.
pub fn parse_partition_dir_name(name: &str) -> Option<(&str, i32)> {
    let (topic, partition) = name.rsplit_once('-')?;
    let number: i32 = partition.parse().ok()?;
    // Only the canonical spelling: `t-01` or `t-+1` would name another directory.
    if number.to_string() != partition || validate_topic_name(topic).is_err() {
        return None;
    }
    Some((topic, number))
}

/// The name a stray log's directory is renamed to:
/// `<topic>-<partition>.<unique id>-stray`, the topic cut short if the whole
/// would exceed 255 bytes (Kafka's `LocalLog.logStrayDirName`).
pub fn stray_dir_name(topic: &str, partition: i32, unique_id: Uuid) -> String {
    let suffix = format!("-{partition}.{}{STRAY_DIR_SUFFIX}", unique_id.as_simple());
    // Topic names are ASCII (`validate_topic_name`): any byte is a boundary.
    let kept = topic.len().min(FILE_NAME_MAX_BYTES - suffix.len());
    format!("{}{suffix}", &topic[..kept])
}

/// Whether `name` is a directory set aside by [`stray_dir_name`].
pub fn is_stray_dir_name(name: &str) -> bool {
    let Some(body) = name.strip_suffix(STRAY_DIR_SUFFIX) else {
        return false;
    };
    let Some((partition_dir, unique_id)) = body.rsplit_once('.') else {
        return false;
    };
    let (_, partition) = partition_dir.rsplit_once('-').unwrap_or_default();
    unique_id.len() == 32
        && unique_id.bytes().all(|byte| byte.is_ascii_hexdigit())
        && !partition.is_empty()
        && partition.bytes().all(|byte| byte.is_ascii_digit())
}

#[cfg(test)]
#[path = "stray_replicas_tests.rs"]
mod tests;
