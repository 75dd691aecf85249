//! The Kafka errors a ConsumerGroupHeartbeat is answered with, typed. Each
//! carries the message Kafka puts in the response's `error_message`;
//! `code()` maps one-to-one onto Kafka's error codes (protocol guide,
//! "Error Codes").

use thiserror::Error;

/// Why a heartbeat was refused. Nothing in the group changed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HeartbeatError {
    /// A field is missing or malformed (`throwIfConsumerGroupHeartbeatRequestIsInvalid`).
    #[error("{0}")]
    InvalidRequest(String),
    /// `server_assignor` names an assignor this broker does not have.
    #[error("{0}")]
    UnsupportedAssignor(String),
    /// `subscribed_topic_regex` does not compile.
    #[error("{0}")]
    InvalidRegularExpression(String),
    /// No such group (a heartbeat other than a join, or a leave).
    #[error("{0}")]
    GroupIdNotFound(String),
    /// The member id (or the static member's instance id) is not in the group.
    #[error("{0}")]
    UnknownMemberId(String),
    /// The member's epoch is not the one the coordinator holds: it must
    /// give up its partitions and join again with epoch 0.
    #[error("{0}")]
    FencedMemberEpoch(String),
    /// A static member joins with an instance id another member still holds.
    #[error("{0}")]
    UnreleasedInstanceId(String),
    /// A newer member took over this member's instance id.
    #[error("{0}")]
    FencedInstanceId(String),
    /// The group already has `group.consumer.max.size` members.
    #[error("{0}")]
    GroupMaxSizeReached(String),
}

impl HeartbeatError {
    /// The Kafka error code on the wire.
    pub fn code(&self) -> i16 {
        match self {
            HeartbeatError::InvalidRequest(_) => 42,
            HeartbeatError::UnsupportedAssignor(_) => 112,
            HeartbeatError::InvalidRegularExpression(_) => 128,
            HeartbeatError::GroupIdNotFound(_) => 69,
            HeartbeatError::UnknownMemberId(_) => 25,
            HeartbeatError::FencedMemberEpoch(_) => 110,
            HeartbeatError::UnreleasedInstanceId(_) => 111,
            HeartbeatError::FencedInstanceId(_) => 82,
            HeartbeatError::GroupMaxSizeReached(_) => 81,
        }
    }

    pub(super) fn invalid(message: &str) -> Self {
        HeartbeatError::InvalidRequest(message.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::ResponseError;

    #[test]
    fn codes_match_kafkas() {
        let cases = [
            (HeartbeatError::invalid(""), ResponseError::InvalidRequest),
            (
                HeartbeatError::UnsupportedAssignor(String::new()),
                ResponseError::UnsupportedAssignor,
            ),
            (
                HeartbeatError::InvalidRegularExpression(String::new()),
                ResponseError::InvalidRegularExpression,
            ),
            (
                HeartbeatError::GroupIdNotFound(String::new()),
                ResponseError::GroupIdNotFound,
            ),
            (
                HeartbeatError::UnknownMemberId(String::new()),
                ResponseError::UnknownMemberId,
            ),
            (
                HeartbeatError::FencedMemberEpoch(String::new()),
                ResponseError::FencedMemberEpoch,
            ),
            (
                HeartbeatError::UnreleasedInstanceId(String::new()),
                ResponseError::UnreleasedInstanceId,
            ),
            (
                HeartbeatError::FencedInstanceId(String::new()),
                ResponseError::FencedInstanceId,
            ),
            (
                HeartbeatError::GroupMaxSizeReached(String::new()),
                ResponseError::GroupMaxSizeReached,
            ),
        ];
        for (error, kafka) in cases {
            assert_eq!(error.code(), kafka.code(), "{error:?}");
        }
    }
}
