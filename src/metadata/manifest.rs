//! On-disk topic manifests: `<data-dir>/__manifests/<topic-id>.manifest`, one per
//! topic (named by id: a 249-byte topic name plus a suffix would not fit in a
//! 255-byte file name), rkyv-encoded behind a magic and a format version. Written by the
//! controller (shard 0) with glommio file I/O (write temp, fdatasync, rename,
//! sync directory), read once at start-up before the shards start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rkyv::rancor;
use uuid::Uuid;

use super::catalog::TopicMetadata;
use super::topic_config::{without_removed_configs, TopicConfigs};
use crate::runtime::durable_file;

/// Folder under the data dir that holds the manifests. Cannot collide with a
/// partition directory, which always ends in `-<partition>`.
pub const MANIFEST_DIR: &str = "__manifests";
const MANIFEST_MAGIC: &[u8; 4] = b"CLTM";
const MANIFEST_FORMAT_VERSION: u32 = 1;

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, PartialEq)]
struct TopicManifest {
    name: String,
    topic_id: [u8; 16],
    partition_count: i32,
    configs: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("manifest {path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

pub fn manifest_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(MANIFEST_DIR)
}

pub fn manifest_path(data_dir: &Path, topic_id: &Uuid) -> PathBuf {
    manifest_dir(data_dir).join(format!("{}.manifest", topic_id.as_hyphenated()))
}

/// Serializes a topic into manifest bytes.
pub fn encode(topic: &TopicMetadata) -> Vec<u8> {
    let manifest = TopicManifest {
        name: topic.name.to_string(),
        topic_id: *topic.topic_id.as_bytes(),
        partition_count: topic.partition_count,
        configs: topic
            .configs
            .overrides()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    let mut bytes = Vec::with_capacity(256);
    bytes.extend_from_slice(MANIFEST_MAGIC);
    bytes.extend_from_slice(&MANIFEST_FORMAT_VERSION.to_le_bytes());
    match rkyv::to_bytes::<rancor::Error>(&manifest) {
        Ok(encoded) => bytes.extend_from_slice(&encoded),
        Err(error) => unreachable!("serializing plain data cannot fail: {error}"),
    }
    bytes
}

/// Parses manifest bytes read from `path`.
pub fn decode(path: &Path, bytes: &[u8]) -> Result<TopicMetadata, ManifestError> {
    let corrupt = |reason: String| ManifestError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.len() < 8 || &bytes[..4] != MANIFEST_MAGIC {
        return Err(corrupt("bad magic".into()));
    }
    let format = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    if format != MANIFEST_FORMAT_VERSION {
        return Err(corrupt(format!("unknown format version {format}")));
    }
    let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(bytes.len() - 8);
    aligned.extend_from_slice(&bytes[8..]);
    let manifest = rkyv::from_bytes::<TopicManifest, rancor::Error>(&aligned)
        .map_err(|error| corrupt(error.to_string()))?;
    let stored = manifest.configs.into_iter().collect::<BTreeMap<_, _>>();
    let configs = TopicConfigs::from_overrides(without_removed_configs(stored)).map_err(corrupt)?;
    Ok(TopicMetadata {
        name: Arc::from(manifest.name),
        topic_id: Uuid::from_bytes(manifest.topic_id),
        partition_count: manifest.partition_count,
        configs,
    })
}

/// Reads every manifest under `data_dir`. Called at start-up on the main
/// thread, before any shard runs, so plain `std::fs` is fine here.
pub fn load_all(data_dir: &Path) -> Result<Vec<TopicMetadata>, ManifestError> {
    let dir = manifest_dir(data_dir);
    std::fs::create_dir_all(&dir)?;
    let mut topics = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("manifest") => {
                let bytes = std::fs::read(&path)?;
                topics.push(decode(&path, &bytes)?);
            }
            Some("tmp") => {
                // A create that crashed before its rename: the topic never existed.
                tracing::warn!(path = %path.display(), "removing unfinished manifest");
                std::fs::remove_file(&path)?;
            }
            _ => {}
        }
    }
    Ok(topics)
}

/// Durably writes a topic's manifest (glommio I/O: runs on the controller shard).
pub async fn store(data_dir: &Path, topic: &TopicMetadata) -> std::io::Result<()> {
    durable_file::replace(&manifest_path(data_dir, &topic.topic_id), encode(topic)).await
}

/// Removes a topic's manifest durably.
pub async fn remove(data_dir: &Path, topic_id: &Uuid) -> std::io::Result<()> {
    glommio::io::remove(manifest_path(data_dir, topic_id)).await?;
    durable_file::sync_directory(&manifest_dir(data_dir)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trips() {
        let mut overrides = BTreeMap::new();
        overrides.insert("segment.bytes".to_string(), "2048".to_string());
        let topic = TopicMetadata {
            name: Arc::from("orders"),
            topic_id: crate::metadata::ids::random_uuid(),
            partition_count: 6,
            configs: TopicConfigs::from_overrides(overrides).expect("valid"),
        };
        let bytes = encode(&topic);
        let decoded = decode(Path::new("x"), &bytes).expect("decodes");
        assert_eq!(decoded, topic);
    }

    #[test]
    fn corrupt_manifest_is_an_error_not_a_panic() {
        assert!(decode(Path::new("x"), b"CLTM\x01\0\0\0garbage").is_err());
        assert!(decode(Path::new("x"), b"nope").is_err());
    }
}
