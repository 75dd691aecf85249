//! A small Kafka client on glommio: one pipelined connection type and a
//! RecordBatch v2 builder. Used by the load generator (and later the CLI and
//! replication). It lives on whichever executor created it; nothing is `Send`.

pub mod batch_builder;
pub mod connection;
