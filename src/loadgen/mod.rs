//! The load generator behind `corelog bench`: scenarios, open-loop rate
//! control corrected for coordinated omission, producers and consumers on the
//! project's own glommio client, HdrHistogram recording merged across cores,
//! and report writing. Runs on its own cores (`--loadgen-cores`), one glommio
//! executor each, like the broker.

pub mod batching;
pub mod cluster;
pub mod consumer;
pub mod fetch_session;
pub mod payload;
pub mod producer;
pub mod random;
pub mod rate;
pub mod report;
pub mod results;
pub mod runner;
pub mod scenario;
pub mod shared;
