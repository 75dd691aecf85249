//! Who this node is, as its data directory remembers it: Kafka's
//! `meta.properties` (`version=1`, `cluster.id`, `node.id`). Read once at
//! start-up, before any executor runs (so plain `std::fs` is fine here).
//!
//! A data directory belongs to one node of one cluster. Starting it with
//! another `--node-id`, or joining it to a quorum whose log names another
//! cluster id, would mix two nodes' partitions or two clusters' metadata, so
//! both refuse to start with a message that says which file disagrees, as
//! Kafka does ("Stored node id 1 doesn't match previous node id 0").

use std::path::{Path, PathBuf};

use thiserror::Error;

/// The file's name in the data directory (Kafka's).
pub const META_PROPERTIES: &str = "meta.properties";

/// What `meta.properties` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaProperties {
    pub cluster_id: String,
    /// `None` in files written before node ids were recorded.
    pub node_id: Option<i32>,
}

#[derive(Debug, Error)]
pub enum IdentityError {
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} line {line}: {reason}")]
    Malformed {
        path: PathBuf,
        line: usize,
        reason: &'static str,
    },
    #[error(
        "{path} says node.id={stored}, but this node was started with --node-id {configured}: \
         a data directory belongs to one node; use that node's id or another --data-dir"
    )]
    NodeIdMismatch {
        path: PathBuf,
        stored: i32,
        configured: i32,
    },
    #[error(
        "{path} says cluster.id={stored}, but the metadata quorum belongs to cluster {quorum}: \
         this data directory is another cluster's; use a new --data-dir to join this one"
    )]
    ClusterIdMismatch {
        path: PathBuf,
        stored: String,
        quorum: String,
    },
}

/// Parses `key=value` lines (`#` comments and blank lines ignored).
pub fn parse(path: &Path, text: &str) -> Result<MetaProperties, IdentityError> {
    let malformed = |line: usize, reason| IdentityError::Malformed {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let mut cluster_id = None;
    let mut node_id = None;
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(malformed(index + 1, "expected key=value"));
        };
        match key.trim() {
            "cluster.id" => cluster_id = Some(value.trim().to_owned()),
            "node.id" => {
                let parsed = value
                    .trim()
                    .parse::<i32>()
                    .map_err(|_| malformed(index + 1, "node.id is not a number"))?;
                node_id = Some(parsed);
            }
            _ => {}
        }
    }
    let cluster_id = cluster_id
        .filter(|id| !id.is_empty())
        .ok_or_else(|| malformed(0, "no cluster.id"))?;
    Ok(MetaProperties {
        cluster_id,
        node_id,
    })
}

pub fn render(properties: &MetaProperties, node_id: i32) -> String {
    format!(
        "#corelog node identity (Kafka's meta.properties)\nversion=1\ncluster.id={}\nnode.id={node_id}\n",
        properties.cluster_id
    )
}

/// Reads this node's identity, or creates it with a new random cluster id.
/// A stored node id must equal `node_id`; a file without one gets it added.
/// `write` persists a new or completed file durably (the broker passes
/// `runtime::durable_file`'s pre-executor replace).
pub fn load_or_create(
    data_dir: &Path,
    node_id: i32,
    write: impl FnOnce(&Path, &[u8]) -> std::io::Result<()>,
) -> Result<MetaProperties, IdentityError> {
    let path = data_dir.join(META_PROPERTIES);
    let io_error = |source| IdentityError::Io {
        path: path.clone(),
        source,
    };
    let (properties, needs_write) = match std::fs::read_to_string(&path) {
        Ok(text) => {
            let properties = parse(&path, &text)?;
            match properties.node_id {
                Some(stored) if stored != node_id => {
                    return Err(IdentityError::NodeIdMismatch {
                        path,
                        stored,
                        configured: node_id,
                    })
                }
                Some(_) => (properties, false),
                None => (properties, true),
            }
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => (
            MetaProperties {
                cluster_id: new_cluster_id(),
                node_id: Some(node_id),
            },
            true,
        ),
        Err(error) => return Err(io_error(error)),
    };
    if needs_write {
        write(&path, render(&properties, node_id).as_bytes()).map_err(io_error)?;
    }
    Ok(MetaProperties {
        node_id: Some(node_id),
        ..properties
    })
}

/// Reads this node's identity if the data directory has one (completing a
/// file without a node id, like `load_or_create`); `None` for a directory
/// that has not joined a cluster yet. A cluster node learns its cluster id
/// from the metadata log and then writes it (`render`).
pub fn load_existing(
    data_dir: &Path,
    node_id: i32,
    write: impl FnOnce(&Path, &[u8]) -> std::io::Result<()>,
) -> Result<Option<MetaProperties>, IdentityError> {
    if !data_dir.join(META_PROPERTIES).exists() {
        return Ok(None);
    }
    load_or_create(data_dir, node_id, write).map(Some)
}

/// Refuses a directory of another cluster (the quorum's log names one).
pub fn check_cluster_id(
    data_dir: &Path,
    stored: &MetaProperties,
    quorum_cluster_id: &str,
) -> Result<(), IdentityError> {
    if stored.cluster_id == quorum_cluster_id {
        return Ok(());
    }
    Err(IdentityError::ClusterIdMismatch {
        path: data_dir.join(META_PROPERTIES),
        stored: stored.cluster_id.clone(),
        quorum: quorum_cluster_id.to_owned(),
    })
}

/// A new cluster id as Kafka prints them: a random uuid in URL-safe base64
/// without padding (22 characters).
pub fn new_cluster_id() -> String {
    random_uuid_base64()
}

/// A random uuid as Kafka's `Uuid.toString()` prints it (URL-safe base64,
/// no padding): cluster ids, and member ids the coordinator picks.
pub fn random_uuid_base64() -> String {
    base64_url(crate::metadata::ids::random_uuid().as_bytes())
}

fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let word =
            chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for index in 0..=chunk.len() {
            out.push(ALPHABET[((word >> (18 - 6 * index)) & 0x3f) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_plain(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        std::fs::write(path, bytes)
    }

    #[test]
    fn cluster_ids_look_like_kafkas() {
        let id = new_cluster_id();
        assert_eq!(id.len(), 22);
        assert!(id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(base64_url(b"Man"), "TWFu");
    }

    #[test]
    fn a_new_directory_gets_an_identity_that_is_kept() {
        let dir = tempfile::tempdir().expect("dir");
        let first = load_or_create(dir.path(), 3, write_plain).expect("created");
        assert_eq!(first.node_id, Some(3));
        let again = load_or_create(dir.path(), 3, |_, _| panic!("no rewrite")).expect("loaded");
        assert_eq!(again, first);
    }

    #[test]
    fn another_node_id_is_refused_with_the_file_named() {
        let dir = tempfile::tempdir().expect("dir");
        load_or_create(dir.path(), 0, write_plain).expect("created");
        let error = load_or_create(dir.path(), 1, write_plain).expect_err("refused");
        let message = error.to_string();
        assert!(matches!(
            error,
            IdentityError::NodeIdMismatch {
                stored: 0,
                configured: 1,
                ..
            }
        ));
        assert!(
            message.contains("meta.properties") && message.contains("--node-id 1"),
            "{message}"
        );
    }

    #[test]
    fn files_of_older_releases_keep_their_cluster_id_and_gain_the_node_id() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(
            dir.path().join(META_PROPERTIES),
            "version=1\ncluster.id=abc\n",
        )
        .expect("write");
        let loaded = load_or_create(dir.path(), 2, write_plain).expect("loaded");
        assert_eq!(loaded.cluster_id, "abc");
        let text = std::fs::read_to_string(dir.path().join(META_PROPERTIES)).expect("read");
        assert!(
            text.contains("node.id=2") && text.contains("cluster.id=abc"),
            "{text}"
        );
    }

    #[test]
    fn another_clusters_directory_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let stored = load_or_create(dir.path(), 0, write_plain).expect("created");
        assert!(check_cluster_id(dir.path(), &stored, &stored.cluster_id).is_ok());
        let error = check_cluster_id(dir.path(), &stored, "other").expect_err("refused");
        assert!(error.to_string().contains("other"));
    }

    #[test]
    fn malformed_files_are_errors_not_panics() {
        let path = Path::new("meta.properties");
        assert!(parse(path, "garbage").is_err());
        assert!(parse(path, "node.id=x\ncluster.id=a").is_err());
        assert!(parse(path, "node.id=1").is_err());
        assert_eq!(
            parse(path, "# c\n\ncluster.id=a\nnode.id=4\nversion=1").expect("parsed"),
            MetaProperties {
                cluster_id: "a".to_owned(),
                node_id: Some(4)
            }
        );
    }
}
