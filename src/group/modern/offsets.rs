//! Who may commit and fetch a consumer group's offsets (Kafka's
//! `ConsumerGroup.validateOffsetCommit` / `validateOffsetFetch`): a member
//! at its current epoch, or, for commits, anyone while the group has no
//! members (the Admin client, a consumer using `assign()`).

use thiserror::Error;

use super::group::ConsumerGroup;

/// Why an OffsetCommit, TxnOffsetCommit or OffsetFetch of a consumer group
/// was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OffsetAccessError {
    /// The member id is not in the group (or a non-member commits to a
    /// group with members).
    #[error("unknown member {0}")]
    UnknownMemberId(String),
    /// The member's epoch is not the coordinator's: the client refreshes
    /// it with a heartbeat and retries.
    #[error("member {member_id} is at epoch {member_epoch}, not {sent_epoch}")]
    StaleMemberEpoch {
        member_id: String,
        member_epoch: i32,
        sent_epoch: i32,
    },
    /// A consumer-protocol member must commit with OffsetCommit v9+, the
    /// version that carries member epochs.
    #[error(
        "OffsetCommit version 9 or above must be used by members using the consumer group protocol"
    )]
    UnsupportedVersion,
}

impl OffsetAccessError {
    pub fn code(&self) -> i16 {
        match self {
            OffsetAccessError::UnknownMemberId(_) => 25,
            OffsetAccessError::StaleMemberEpoch { .. } => 113,
            OffsetAccessError::UnsupportedVersion => 35,
        }
    }
}

/// From this OffsetCommit version on the request carries a member epoch.
pub const OFFSET_COMMIT_MEMBER_EPOCH_VERSION: i16 = 9;

impl ConsumerGroup {
    /// OffsetCommit (`transactional` false) or TxnOffsetCommit.
    pub fn validate_offset_commit(
        &self,
        member_id: &str,
        member_epoch: i32,
        transactional: bool,
        api_version: i16,
    ) -> Result<(), OffsetAccessError> {
        if member_epoch < 0 && self.members.is_empty() {
            return Ok(());
        }
        let member = self
            .members
            .get(member_id)
            .ok_or_else(|| OffsetAccessError::UnknownMemberId(member_id.to_string()))?;
        if !transactional && api_version < OFFSET_COMMIT_MEMBER_EPOCH_VERSION {
            return Err(OffsetAccessError::UnsupportedVersion);
        }
        check_epoch(member_id, member.member_epoch, member_epoch)
    }

    /// OffsetFetch v9+: a request without member id and epoch (the Admin
    /// client, older clients) is always allowed.
    pub fn validate_offset_fetch(
        &self,
        member_id: Option<&str>,
        member_epoch: i32,
    ) -> Result<(), OffsetAccessError> {
        let Some(member_id) = member_id.filter(|_| member_epoch >= 0) else {
            return Ok(());
        };
        let member = self
            .members
            .get(member_id)
            .ok_or_else(|| OffsetAccessError::UnknownMemberId(member_id.to_string()))?;
        check_epoch(member_id, member.member_epoch, member_epoch)
    }
}

fn check_epoch(
    member_id: &str,
    member_epoch: i32,
    sent_epoch: i32,
) -> Result<(), OffsetAccessError> {
    if sent_epoch != member_epoch {
        return Err(OffsetAccessError::StaleMemberEpoch {
            member_id: member_id.to_string(),
            member_epoch,
            sent_epoch,
        });
    }
    Ok(())
}
