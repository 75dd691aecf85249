//! Kafka error codes the group coordinator answers with, as the Java broker
//! uses them (protocol guide, "Error Codes"). Responses carry the raw `i16`
//! so the protocol layer can copy it into the wire response unchanged;
//! [`GroupError`] is the typed view for code that matches on failures.

use thiserror::Error;

/// No error.
pub const NONE: i16 = 0;
/// The group is being unloaded or deleted; the client looks it up again.
pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
/// This broker is not the coordinator of the group (any more).
pub const NOT_COORDINATOR: i16 = 16;
/// The generation in the request is not the group's current one.
pub const ILLEGAL_GENERATION: i16 = 22;
/// Protocol type or protocols are not compatible with the group's.
pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
/// The member id is not a member of the group.
pub const UNKNOWN_MEMBER_ID: i16 = 25;
/// The session timeout is outside the broker's allowed range.
pub const INVALID_SESSION_TIMEOUT: i16 = 26;
/// The group is rebalancing; the member must rejoin.
pub const REBALANCE_IN_PROGRESS: i16 = 27;
/// A group that still has members cannot be deleted.
pub const NON_EMPTY_GROUP: i16 = 68;
/// The group does not exist.
pub const GROUP_ID_NOT_FOUND: i16 = 69;
/// The join would make the group bigger than `group.max.size`.
pub const GROUP_MAX_SIZE_REACHED: i16 = 81;
/// A newer member with the same `group.instance.id` replaced this one.
pub const FENCED_INSTANCE_ID: i16 = 82;
/// Join again with the member id given in this response (KIP-394).
pub const MEMBER_ID_REQUIRED: i16 = 79;

/// Typed form of the codes above; `code()` maps one-to-one onto Kafka's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum GroupError {
    #[error("coordinator not available")]
    CoordinatorNotAvailable,
    #[error("not coordinator")]
    NotCoordinator,
    #[error("illegal generation")]
    IllegalGeneration,
    #[error("inconsistent group protocol")]
    InconsistentGroupProtocol,
    #[error("unknown member id")]
    UnknownMemberId,
    #[error("invalid session timeout")]
    InvalidSessionTimeout,
    #[error("rebalance in progress")]
    RebalanceInProgress,
    #[error("non-empty group")]
    NonEmptyGroup,
    #[error("group id not found")]
    GroupIdNotFound,
    #[error("group max size reached")]
    GroupMaxSizeReached,
    #[error("fenced instance id")]
    FencedInstanceId,
    #[error("member id required")]
    MemberIdRequired,
}

impl GroupError {
    /// The Kafka error code on the wire.
    pub fn code(self) -> i16 {
        match self {
            GroupError::CoordinatorNotAvailable => COORDINATOR_NOT_AVAILABLE,
            GroupError::NotCoordinator => NOT_COORDINATOR,
            GroupError::IllegalGeneration => ILLEGAL_GENERATION,
            GroupError::InconsistentGroupProtocol => INCONSISTENT_GROUP_PROTOCOL,
            GroupError::UnknownMemberId => UNKNOWN_MEMBER_ID,
            GroupError::InvalidSessionTimeout => INVALID_SESSION_TIMEOUT,
            GroupError::RebalanceInProgress => REBALANCE_IN_PROGRESS,
            GroupError::NonEmptyGroup => NON_EMPTY_GROUP,
            GroupError::GroupIdNotFound => GROUP_ID_NOT_FOUND,
            GroupError::GroupMaxSizeReached => GROUP_MAX_SIZE_REACHED,
            GroupError::FencedInstanceId => FENCED_INSTANCE_ID,
            GroupError::MemberIdRequired => MEMBER_ID_REQUIRED,
        }
    }
}
