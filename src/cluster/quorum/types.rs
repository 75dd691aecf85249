//! The quorum's openraft type configuration: what a log entry carries (a
//! batch of metadata records, applied atomically, as one KRaft record batch),
//! how voters are addressed, and which runtime runs it (glommio).
//!
//! Standard Raft leader ids (one leader per term) rather than openraft's
//! default "advanced" ones: a committed leader id is then just the term, as in
//! Kafka's KRaft, and the stored form stays small.

use std::fmt;

use openraft::type_config::alias;

use crate::cluster::metadata::records::MetadataRecord;

use super::runtime::GlommioRuntime;

/// What the controller proposes: records that take effect together (a topic
/// and all its partitions, a broker and its fencing state).
#[derive(Debug, Clone, PartialEq)]
pub struct MetadataBatch {
    pub records: Vec<MetadataRecord>,
}

impl fmt::Display for MetadataBatch {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} metadata record(s)", self.records.len())
    }
}

/// What applying a batch told its proposer: the log index it took effect
/// at, so a controller can wait until every node has applied that far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchApplied {
    pub log_index: u64,
}

openraft::declare_raft_types!(
    /// The metadata quorum's types.
    pub MetadataRaft:
        D = MetadataBatch,
        R = BatchApplied,
        NodeId = u64,
        Node = openraft::BasicNode,
        Term = u64,
        LeaderId = openraft::impls::leader_id_std::LeaderId<u64, u64>,
        AsyncRuntime = GlommioRuntime,
);

/// Shorthands for openraft's generic types under this configuration.
pub type LogId = alias::LogIdOf<MetadataRaft>;
pub type Vote = alias::VoteOf<MetadataRaft>;
pub type Entry = alias::EntryOf<MetadataRaft>;
pub type CommittedLeaderId = alias::CommittedLeaderIdOf<MetadataRaft>;
pub type StoredMembership = alias::StoredMembershipOf<MetadataRaft>;
pub type SnapshotMeta = alias::SnapshotMetaOf<MetadataRaft>;
