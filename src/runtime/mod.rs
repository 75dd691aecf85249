//! runtime
pub mod memlock;
