//! Kafka's topic-name rules (`org.apache.kafka.common.internals.Topic`).

/// Longest legal topic name: 249 so that `<name>-<partition>` directories and
/// their files fit in 255-byte file names.
pub const TOPIC_NAME_MAX_BYTES: usize = 249;

/// The group coordinator's internal topic (Kafka's name).
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// The transaction coordinator's internal topic (Kafka's name).
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// Kafka's internal topics: shown with `is_internal`, written only by the
/// broker, their partition count and cleanup policy fixed.
pub fn is_internal_topic(name: &str) -> bool {
    name == OFFSETS_TOPIC || name == TRANSACTION_STATE_TOPIC
}

/// Why a topic name is illegal (INVALID_TOPIC_EXCEPTION, code 17).
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return Err("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > TOPIC_NAME_MAX_BYTES {
        return Err(format!(
            "Topic name is illegal, it can't be longer than {TOPIC_NAME_MAX_BYTES} characters, topic name: {name}"
        ));
    }
    let legal = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-';
    if !name.chars().all(legal) {
        return Err(format!(
            "Topic name {name} is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_topic_name_rules() {
        assert!(validate_topic_name("orders.v1_x-2").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("has space").is_err());
        assert!(validate_topic_name("slash/name").is_err());
        assert!(validate_topic_name(&"a".repeat(250)).is_err());
        assert!(validate_topic_name(&"a".repeat(249)).is_ok());
    }
}
