//! The quorum's stored forms: rkyv mirrors of openraft's log id, vote, log
//! entry and snapshot meta, and their frames (`metadata::frame`: versioned,
//! crc32c, bounds-checked). The log store and the state machine write these to
//! `<data-dir>/__cluster_metadata-0/` on shard 0 of a voter node.
//!
//! Mirrors rather than openraft's own serde forms so that everything the
//! cluster writes shares one encoding and one set of checks, and so that a
//! change in openraft's types (still alpha) is a compile error here instead of
//! a silent change of the bytes on disk. Decoding bytes from disk never panics:
//! a frame that fails its checks, or a membership openraft would refuse, is a
//! typed [`StoredError`]. Pure code, usable on any shard.

use std::collections::{BTreeMap, BTreeSet};

use openraft::error::MembershipError;
use openraft::{BasicNode, EntryPayload, Membership};

use super::types::{
    CommittedLeaderId, Entry, LogId, MetadataBatch, SnapshotMeta, StoredMembership, Vote,
};
use crate::cluster::metadata::frame::{self, FrameError, FrameKind};
use crate::cluster::metadata::records::MetadataRecord;

/// Frame kinds of the quorum's files (16-31 belong to this module).
pub mod kind {
    use super::FrameKind;

    /// One Raft log entry ([`super::StoredEntry`]) of the metadata log file.
    pub const LOG_ENTRY: FrameKind = FrameKind::new(16);
    /// The durable vote ([`super::StoredVote`]).
    pub const VOTE: FrameKind = FrameKind::new(17);
    /// A log id on its own ([`super::StoredLogId`]): the last purged one, the
    /// last committed one.
    pub const LOG_ID: FrameKind = FrameKind::new(18);
    /// A snapshot's meta ([`super::StoredSnapshotMeta`]), at the start of the
    /// snapshot file, before the snapshot's records.
    pub const SNAPSHOT_META: FrameKind = FrameKind::new(19);
}

/// Why stored bytes do not decode to an openraft value.
#[derive(Debug, thiserror::Error)]
pub enum StoredError {
    /// The frame failed its checks (torn write, corruption, other kind).
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A membership that passed the crc but that openraft refuses.
    #[error("invalid stored membership: {0}")]
    Membership(#[from] MembershipError<u64>),
}

impl From<StoredError> for std::io::Error {
    fn from(error: StoredError) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidData, error)
    }
}

/// openraft's `LogId` with standard leader ids: the term that wrote the
/// entry and its index.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredLogId {
    /// The leader's term.
    pub term: u64,
    /// The log index.
    pub index: u64,
}

/// openraft's `Vote`: the term, the node voted for, and whether a quorum
/// granted it.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredVote {
    /// The term.
    pub term: u64,
    /// The candidate (or leader) voted for.
    pub voted_for: u64,
    /// Granted by a quorum.
    pub committed: bool,
}

/// A node of a membership: its id and the quorum address (`BasicNode::addr`).
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct StoredNode {
    /// The node id.
    pub node_id: u64,
    /// Where its quorum listener is.
    pub addr: String,
}

/// openraft's `Membership`: the voter set of each config (two during a joint
/// change) and every node (voters and learners) with its address.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct StoredMembershipConfig {
    /// Voter ids of each config, sorted.
    pub configs: Vec<Vec<u64>>,
    /// Every node, sorted by id.
    pub nodes: Vec<StoredNode>,
}

/// What a log entry carries.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum StoredPayload {
    /// A new leader's first entry.
    Blank,
    /// A batch of metadata records.
    Normal(Vec<MetadataRecord>),
    /// A membership change.
    Membership(StoredMembershipConfig),
}

/// One Raft log entry.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    /// Its log id.
    pub log_id: StoredLogId,
    /// Its payload.
    pub payload: StoredPayload,
}

/// openraft's `SnapshotMeta`: the last log id a snapshot covers and the
/// membership in effect there (with the log id that set it).
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct StoredSnapshotMeta {
    /// The last log id included.
    pub last_log_id: Option<StoredLogId>,
    /// The log id of the last membership entry included.
    pub membership_log_id: Option<StoredLogId>,
    /// That membership.
    pub membership: StoredMembershipConfig,
}

impl From<&LogId> for StoredLogId {
    fn from(log_id: &LogId) -> Self {
        StoredLogId {
            term: log_id.leader_id.term,
            index: log_id.index,
        }
    }
}

impl From<StoredLogId> for LogId {
    fn from(stored: StoredLogId) -> Self {
        LogId::new(CommittedLeaderId::new(stored.term), stored.index)
    }
}

impl From<&Vote> for StoredVote {
    fn from(vote: &Vote) -> Self {
        StoredVote {
            term: vote.leader_id.term,
            voted_for: vote.leader_id.voted_for,
            committed: vote.committed,
        }
    }
}

impl From<StoredVote> for Vote {
    fn from(stored: StoredVote) -> Self {
        if stored.committed {
            Vote::new_committed(stored.term, stored.voted_for)
        } else {
            Vote::new(stored.term, stored.voted_for)
        }
    }
}

impl From<&Membership<u64, BasicNode>> for StoredMembershipConfig {
    fn from(membership: &Membership<u64, BasicNode>) -> Self {
        let configs = membership
            .get_joint_config()
            .iter()
            .map(|voters| voters.iter().copied().collect())
            .collect();
        let nodes = membership
            .nodes()
            .map(|(node_id, node)| StoredNode {
                node_id: *node_id,
                addr: node.addr.clone(),
            })
            .collect();
        StoredMembershipConfig { configs, nodes }
    }
}

impl TryFrom<StoredMembershipConfig> for Membership<u64, BasicNode> {
    type Error = StoredError;

    fn try_from(stored: StoredMembershipConfig) -> Result<Self, StoredError> {
        let configs: Vec<BTreeSet<u64>> = stored
            .configs
            .into_iter()
            .map(|voters| voters.into_iter().collect())
            .collect();
        let nodes: BTreeMap<u64, BasicNode> = stored
            .nodes
            .into_iter()
            .map(|node| (node.node_id, BasicNode { addr: node.addr }))
            .collect();
        Ok(Membership::new(configs, nodes)?)
    }
}

impl From<&Entry> for StoredEntry {
    fn from(entry: &Entry) -> Self {
        let payload = match &entry.payload {
            EntryPayload::Blank => StoredPayload::Blank,
            EntryPayload::Normal(batch) => StoredPayload::Normal(batch.records.clone()),
            EntryPayload::Membership(membership) => StoredPayload::Membership(membership.into()),
        };
        StoredEntry {
            log_id: (&entry.log_id).into(),
            payload,
        }
    }
}

impl StoredEntry {
    /// Back to openraft's entry (not `TryFrom`: openraft's `Entry` has a
    /// blanket conversion that would conflict).
    pub fn into_entry(self) -> Result<Entry, StoredError> {
        let stored = self;
        let payload = match stored.payload {
            StoredPayload::Blank => EntryPayload::Blank,
            StoredPayload::Normal(records) => EntryPayload::Normal(MetadataBatch { records }),
            StoredPayload::Membership(config) => EntryPayload::Membership(config.try_into()?),
        };
        Ok(Entry {
            log_id: stored.log_id.into(),
            payload,
        })
    }
}

impl From<&SnapshotMeta> for StoredSnapshotMeta {
    fn from(meta: &SnapshotMeta) -> Self {
        StoredSnapshotMeta {
            last_log_id: meta.last_log_id.as_ref().map(StoredLogId::from),
            membership_log_id: meta
                .last_membership
                .log_id()
                .as_ref()
                .map(StoredLogId::from),
            membership: meta.last_membership.membership().into(),
        }
    }
}

impl TryFrom<StoredSnapshotMeta> for SnapshotMeta {
    type Error = StoredError;

    fn try_from(stored: StoredSnapshotMeta) -> Result<Self, StoredError> {
        let membership = stored.membership.try_into()?;
        Ok(SnapshotMeta {
            last_log_id: stored.last_log_id.map(LogId::from),
            last_membership: StoredMembership::new(
                stored.membership_log_id.map(LogId::from),
                membership,
            ),
        })
    }
}

/// One log entry as a frame of the metadata log file.
pub fn encode_entry(entry: &Entry) -> Result<Vec<u8>, FrameError> {
    frame::encode(kind::LOG_ENTRY, &StoredEntry::from(entry))
}

/// A log entry from exactly one frame.
pub fn decode_entry(bytes: &[u8]) -> Result<Entry, StoredError> {
    frame::decode::<StoredEntry>(kind::LOG_ENTRY, bytes)?.into_entry()
}

/// A vote as the vote file's frame.
pub fn encode_vote(vote: &Vote) -> Result<Vec<u8>, FrameError> {
    frame::encode(kind::VOTE, &StoredVote::from(vote))
}

/// The vote file's frame.
pub fn decode_vote(bytes: &[u8]) -> Result<Vote, StoredError> {
    Ok(frame::decode::<StoredVote>(kind::VOTE, bytes)?.into())
}

/// A log id as a frame of its own (purged, committed).
pub fn encode_log_id(log_id: &LogId) -> Result<Vec<u8>, FrameError> {
    frame::encode(kind::LOG_ID, &StoredLogId::from(log_id))
}

/// A log id from exactly one frame.
pub fn decode_log_id(bytes: &[u8]) -> Result<LogId, StoredError> {
    Ok(frame::decode::<StoredLogId>(kind::LOG_ID, bytes)?.into())
}

/// A snapshot's meta as a frame.
pub fn encode_snapshot_meta(meta: &SnapshotMeta) -> Result<Vec<u8>, FrameError> {
    frame::encode(kind::SNAPSHOT_META, &StoredSnapshotMeta::from(meta))
}

/// A snapshot's meta from exactly one frame.
pub fn decode_snapshot_meta(bytes: &[u8]) -> Result<SnapshotMeta, StoredError> {
    frame::decode::<StoredSnapshotMeta>(kind::SNAPSHOT_META, bytes)?.try_into()
}

/// Splits `bytes` after its first frame (whose header it checks), for files
/// that hold several frames: `(first frame, the rest)`.
pub fn split_first_frame(bytes: &[u8]) -> Result<(&[u8], &[u8]), FrameError> {
    let header = frame::read_header(bytes)?;
    let frame_bytes = header.frame_bytes();
    if bytes.len() < frame_bytes {
        return Err(FrameError::Truncated {
            available: bytes.len(),
            needed: frame_bytes,
        });
    }
    Ok(bytes.split_at(frame_bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::metadata::records::BrokerRegistrationRecord;
    use proptest::prelude::*;

    fn records() -> Vec<MetadataRecord> {
        vec![
            MetadataRecord::ClusterId {
                cluster_id: "corelog".to_string(),
            },
            MetadataRecord::BrokerRegistered(BrokerRegistrationRecord {
                broker_id: 1,
                incarnation_id: [7; 16],
                broker_epoch: 3,
                host: "127.0.0.1".to_string(),
                port: 9092,
                rack: Some("a".to_string()),
            }),
            MetadataRecord::TopicCreated {
                name: "orders".to_string(),
                topic_id: [9; 16],
            },
        ]
    }

    fn membership() -> Membership<u64, BasicNode> {
        let nodes = (0..4).map(|id| (id, BasicNode::new(format!("127.0.0.1:{}", 9093 + id))));
        let configs = vec![BTreeSet::from([0, 1, 2]), BTreeSet::from([1, 2, 3])];
        Membership::new(configs, nodes.collect::<BTreeMap<_, _>>()).expect("valid")
    }

    fn log_id(term: u64, index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(term), index)
    }

    #[test]
    fn entries_of_every_payload_round_trip() {
        let entries = [
            Entry {
                log_id: log_id(1, 0),
                payload: EntryPayload::Blank,
            },
            Entry {
                log_id: log_id(2, 7),
                payload: EntryPayload::Normal(MetadataBatch { records: records() }),
            },
            Entry {
                log_id: log_id(u64::MAX, u64::MAX),
                payload: EntryPayload::Membership(membership()),
            },
        ];
        for entry in entries {
            let frame = encode_entry(&entry).expect("encodes");
            assert_eq!(decode_entry(&frame).expect("decodes"), entry);
        }
    }

    #[test]
    fn votes_log_ids_and_snapshot_metas_round_trip() {
        for vote in [Vote::new(3, 1), Vote::new_committed(4, 2)] {
            assert_eq!(
                decode_vote(&encode_vote(&vote).expect("encodes")).expect("decodes"),
                vote
            );
        }
        let id = log_id(5, 42);
        assert_eq!(
            decode_log_id(&encode_log_id(&id).expect("encodes")).expect("decodes"),
            id
        );
        for meta in [
            SnapshotMeta::default(),
            SnapshotMeta {
                last_log_id: Some(log_id(5, 42)),
                last_membership: StoredMembership::new(Some(log_id(4, 40)), membership()),
            },
        ] {
            let frame = encode_snapshot_meta(&meta).expect("encodes");
            assert_eq!(decode_snapshot_meta(&frame).expect("decodes"), meta);
        }
    }

    #[test]
    fn a_frame_of_another_kind_is_refused() {
        let frame = encode_log_id(&log_id(1, 1)).expect("encodes");
        assert!(matches!(
            decode_vote(&frame),
            Err(StoredError::Frame(FrameError::WrongKind { .. }))
        ));
    }

    #[test]
    fn a_membership_with_an_unknown_voter_is_refused() {
        let stored = StoredMembershipConfig {
            configs: vec![vec![1, 2]],
            nodes: vec![StoredNode {
                node_id: 1,
                addr: String::new(),
            }],
        };
        assert!(matches!(
            Membership::try_from(stored),
            Err(StoredError::Membership(_))
        ));
    }

    #[test]
    fn split_first_frame_checks_the_length() {
        let mut bytes = encode_log_id(&log_id(1, 1)).expect("encodes");
        let first_len = bytes.len();
        bytes.extend_from_slice(&[1, 2, 3]);
        let (first, rest) = split_first_frame(&bytes).expect("splits");
        assert_eq!((first.len(), rest), (first_len, &[1u8, 2, 3][..]));
        assert!(split_first_frame(&bytes[..first_len - 1]).is_err());
    }

    proptest! {
        #[test]
        fn corrupted_entries_are_errors_never_panics(
            cut in any::<prop::sample::Index>(),
            flip in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let entry = Entry { log_id: log_id(3, 9), payload: EntryPayload::Normal(MetadataBatch { records: records() }) };
            let frame = encode_entry(&entry).expect("encodes");
            prop_assert_eq!(decode_entry(&frame).expect("decodes"), entry);
            prop_assert!(decode_entry(&frame[..cut.index(frame.len())]).is_err());
            let mut flipped = frame.clone();
            flipped[flip.index(frame.len())] ^= 1 << bit;
            prop_assert!(decode_entry(&flipped).is_err());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_entry(&bytes);
            let _ = decode_vote(&bytes);
            let _ = decode_snapshot_meta(&bytes);
            let _ = split_first_frame(&bytes);
        }
    }
}
