//! protocol
pub mod record_batch;
