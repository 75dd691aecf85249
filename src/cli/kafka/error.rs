//! The one error type of the command-line tools: every failure a user can meet
//! (no broker, a Kafka error code, a bad argument, a broken connection, a
//! response that does not decode) with a message that says what to do.

use kafka_protocol::error::ResponseError;

/// Why a `corelog` admin or console command failed.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error(
        "cannot reach any broker at {0} (is corelog running? set --brokers or CORELOG_BROKERS)"
    )]
    Unreachable(String),
    #[error("{context}: {name} ({code})")]
    Kafka {
        context: String,
        code: i16,
        name: String,
    },
    #[error("{0}")]
    Usage(String),
    #[error("I/O error talking to {peer}: {source}")]
    Io {
        peer: String,
        source: std::io::Error,
    },
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl ToolError {
    /// A Kafka error code from a response, named as Kafka names it
    /// (`UNKNOWN_TOPIC_OR_PARTITION`), for the operation described by `context`.
    pub fn kafka(context: impl Into<String>, code: i16) -> ToolError {
        ToolError::Kafka {
            context: context.into(),
            code,
            name: error_name(code),
        }
    }

    /// The Kafka error code, if this is a Kafka error.
    pub fn kafka_code(&self) -> Option<i16> {
        match self {
            ToolError::Kafka { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// Kafka's upper-snake name of an error code (`Errors.java`), `NONE` for 0 and
/// `UNKNOWN_ERROR_CODE` for codes this build does not know.
pub fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".to_string(),
        Some(ResponseError::Unknown(_)) => "UNKNOWN_ERROR_CODE".to_string(),
        Some(error) => upper_snake(&format!("{error:?}")),
    }
}

/// `UnknownTopicOrPartition` -> `UNKNOWN_TOPIC_OR_PARTITION`.
fn upper_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (index, character) in camel.chars().enumerate() {
        if character.is_ascii_uppercase() && index > 0 {
            out.push('_');
        }
        out.push(character.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_errors_are_named_as_kafka_names_them() {
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(30000), "UNKNOWN_ERROR_CODE");
        let error = ToolError::kafka("topic orders", 3);
        assert_eq!(
            error.to_string(),
            "topic orders: UNKNOWN_TOPIC_OR_PARTITION (3)"
        );
        assert_eq!(error.kafka_code(), Some(3));
    }

    #[test]
    fn unreachable_names_the_addresses_and_the_fix() {
        let message = ToolError::Unreachable("127.0.0.1:1".into()).to_string();
        assert!(message.contains("127.0.0.1:1"));
        assert!(message.contains("CORELOG_BROKERS"));
    }
}
