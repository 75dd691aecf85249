//! The quorum's RPC messages on the wire: openraft's AppendEntries, Vote,
//! PreVote and full-snapshot calls and their answers, as rkyv types built from
//! the stored forms in `stored.rs` (so a log entry has one encoding on disk
//! and on the wire). Framed by `cluster::metadata::frame` with kinds 34-35.
//! Pure conversions, no I/O.

use std::io::Cursor;

use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};

use crate::cluster::metadata::frame::FrameKind;

use super::stored::{StoredEntry, StoredError, StoredLogId, StoredSnapshotMeta, StoredVote};
use super::types::{LogId, MetadataRaft, SnapshotMeta, Vote};

/// A request frame (`RaftRequest`).
pub const KIND_REQUEST: FrameKind = FrameKind::new(34);
/// A response frame (`RaftResponse`).
pub const KIND_RESPONSE: FrameKind = FrameKind::new(35);

/// What a voter asks of another node.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq)]
pub enum RaftRequest {
    AppendEntries {
        vote: StoredVote,
        prev_log_id: Option<StoredLogId>,
        entries: Vec<StoredEntry>,
        leader_commit: Option<StoredLogId>,
    },
    Vote(WireVoteRequest),
    PreVote(WireVoteRequest),
    /// A whole snapshot in one frame: metadata snapshots are small (see
    /// `frame::MAX_FRAME_BYTES` for how many partitions fit).
    FullSnapshot {
        vote: StoredVote,
        meta: StoredSnapshotMeta,
        data: Vec<u8>,
    },
}

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq)]
pub struct WireVoteRequest {
    pub vote: StoredVote,
    pub last_log_id: Option<StoredLogId>,
    pub leadership_transfer: bool,
}

/// The answer to a `RaftRequest`.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq)]
pub enum RaftResponse {
    AppendEntries(WireAppendResult),
    Vote {
        vote: StoredVote,
        vote_granted: bool,
        last_log_id: Option<StoredLogId>,
    },
    Snapshot {
        vote: StoredVote,
    },
    /// The receiving node's Raft could not take the call (it is shutting
    /// down or stopped on a storage error); the caller treats it as
    /// unreachable.
    Unavailable,
}

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq)]
pub enum WireAppendResult {
    Success,
    PartialSuccess(Option<StoredLogId>),
    Conflict,
    HigherVote(StoredVote),
}

fn stored_log_id(log_id: &Option<LogId>) -> Option<StoredLogId> {
    log_id.as_ref().map(StoredLogId::from)
}

fn log_id(stored: Option<StoredLogId>) -> Option<LogId> {
    stored.map(LogId::from)
}

impl RaftRequest {
    pub fn append_entries(request: &AppendEntriesRequest<MetadataRaft>) -> RaftRequest {
        RaftRequest::AppendEntries {
            vote: StoredVote::from(&request.vote),
            prev_log_id: stored_log_id(&request.prev_log_id),
            entries: request.entries.iter().map(StoredEntry::from).collect(),
            leader_commit: stored_log_id(&request.leader_commit),
        }
    }

    pub fn vote(request: &VoteRequest<MetadataRaft>) -> WireVoteRequest {
        WireVoteRequest {
            vote: StoredVote::from(&request.vote),
            last_log_id: stored_log_id(&request.last_log_id),
            leadership_transfer: request.leadership_transfer,
        }
    }

    pub fn full_snapshot(vote: &Vote, meta: &SnapshotMeta, data: Vec<u8>) -> RaftRequest {
        RaftRequest::FullSnapshot {
            vote: StoredVote::from(vote),
            meta: StoredSnapshotMeta::from(meta),
            data,
        }
    }
}

/// Back to openraft's request, on the receiving node.
pub fn into_append_entries(
    vote: StoredVote,
    prev_log_id: Option<StoredLogId>,
    entries: Vec<StoredEntry>,
    leader_commit: Option<StoredLogId>,
) -> Result<AppendEntriesRequest<MetadataRaft>, StoredError> {
    let entries = entries
        .into_iter()
        .map(StoredEntry::into_entry)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(AppendEntriesRequest {
        vote: Vote::from(vote),
        prev_log_id: log_id(prev_log_id),
        entries,
        leader_commit: log_id(leader_commit),
    })
}

impl From<WireVoteRequest> for VoteRequest<MetadataRaft> {
    fn from(wire: WireVoteRequest) -> Self {
        let mut request = VoteRequest::new(Vote::from(wire.vote), log_id(wire.last_log_id));
        request.leadership_transfer = wire.leadership_transfer;
        request
    }
}

pub fn into_snapshot(
    meta: StoredSnapshotMeta,
    data: Vec<u8>,
) -> Result<openraft::type_config::alias::SnapshotOf<MetadataRaft, Cursor<Vec<u8>>>, StoredError> {
    Ok(openraft::storage::Snapshot {
        meta: SnapshotMeta::try_from(meta)?,
        snapshot: Cursor::new(data),
    })
}

impl From<&AppendEntriesResponse<MetadataRaft>> for RaftResponse {
    fn from(response: &AppendEntriesResponse<MetadataRaft>) -> Self {
        RaftResponse::AppendEntries(match response {
            AppendEntriesResponse::Success => WireAppendResult::Success,
            AppendEntriesResponse::PartialSuccess(matching) => {
                WireAppendResult::PartialSuccess(stored_log_id(matching))
            }
            AppendEntriesResponse::Conflict => WireAppendResult::Conflict,
            AppendEntriesResponse::HigherVote(vote) => {
                WireAppendResult::HigherVote(StoredVote::from(vote))
            }
        })
    }
}

impl From<WireAppendResult> for AppendEntriesResponse<MetadataRaft> {
    fn from(wire: WireAppendResult) -> Self {
        match wire {
            WireAppendResult::Success => AppendEntriesResponse::Success,
            WireAppendResult::PartialSuccess(matching) => {
                AppendEntriesResponse::PartialSuccess(log_id(matching))
            }
            WireAppendResult::Conflict => AppendEntriesResponse::Conflict,
            WireAppendResult::HigherVote(vote) => {
                AppendEntriesResponse::HigherVote(Vote::from(vote))
            }
        }
    }
}

impl From<&VoteResponse<MetadataRaft>> for RaftResponse {
    fn from(response: &VoteResponse<MetadataRaft>) -> Self {
        RaftResponse::Vote {
            vote: StoredVote::from(&response.vote),
            vote_granted: response.vote_granted,
            last_log_id: stored_log_id(&response.last_log_id),
        }
    }
}

pub fn vote_response(
    vote: StoredVote,
    vote_granted: bool,
    last_log_id: Option<StoredLogId>,
) -> VoteResponse<MetadataRaft> {
    VoteResponse::new(Vote::from(vote), log_id(last_log_id), vote_granted)
}

impl From<&SnapshotResponse<MetadataRaft>> for RaftResponse {
    fn from(response: &SnapshotResponse<MetadataRaft>) -> Self {
        RaftResponse::Snapshot {
            vote: StoredVote::from(&response.vote),
        }
    }
}
