//! Kafka error codes used by corelog, by name. Codes come from the protocol
//! guide's error table (mirrored by `kafka_protocol::error::ResponseError`).

pub const NONE: i16 = 0;

pub use kafka_protocol::error::ResponseError as KafkaError;

/// The error a wire code names; a code this table does not know stays that
/// code (`KafkaError::Unknown`), so converting never changes what a client
/// sees. Only for codes that are errors: NONE reads as UNKNOWN_SERVER_ERROR
/// and is a bug in debug builds.
pub fn error_from_code(code: i16) -> KafkaError {
    debug_assert_ne!(code, NONE, "NONE is not an error");
    KafkaError::try_from_code(code).unwrap_or(KafkaError::UnknownServerError)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for error in [
            KafkaError::NotLeaderOrFollower,
            KafkaError::InvalidTxnState,
            KafkaError::CoordinatorNotAvailable,
        ] {
            assert_eq!(error_from_code(error.code()), error);
        }
        assert_eq!(error_from_code(-12_345).code(), -12_345);
    }
}
