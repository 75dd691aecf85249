//! Kafka error codes used by corelog, by name. Codes come from the protocol
//! guide's error table (mirrored by `kafka_protocol::error::ResponseError`).

pub const NONE: i16 = 0;

pub use kafka_protocol::error::ResponseError as KafkaError;
