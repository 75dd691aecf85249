//! The Kafka wire protocol as corelog speaks it: framing limits, which API
//! versions we advertise, request decoding and response encoding (codecs from
//! the `kafka-protocol` crate, generated from Kafka's own message specs), and
//! the RecordBatch v2 view. Pure code over bytes; used on every shard.

pub mod batch_builder;
pub mod client_frames;
pub mod errors;
pub mod fetch_frame;
pub mod offsets_v10;
pub mod record_batch;
pub mod records;
pub mod request;
pub mod response;
pub mod versions;
