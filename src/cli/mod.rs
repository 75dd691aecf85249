//! The `corelog` command line (clap): one file per subcommand. Parses flags
//! and environment variables into the configs the layers below take.

pub mod bench;
pub mod cluster;
pub mod common;
pub mod console;
pub mod consume;
pub mod consume_format;
pub mod consumer_group;
pub mod debug;
pub mod group;
pub mod kafka;
pub mod partitioner;
pub mod produce;
pub mod records;
pub mod serve;
pub mod topic;
pub mod tune;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "corelog",
    version,
    about = "A Kafka-compatible event streaming broker, thread-per-core on io_uring"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the broker.
    Serve(Box<serve::ServeArgs>),
    /// Run the load generator (against an embedded corelog or --brokers) and write a report.
    Bench(Box<bench::BenchArgs>),
    /// Check (and optionally apply) host tuning for corelog.
    Tune(tune::TuneArgs),
    /// Create, list, describe, delete, grow and reconfigure topics.
    Topic(topic::TopicArgs),
    /// Describe the cluster: brokers (fenced or not), the controller and the metadata quorum.
    Cluster(cluster::ClusterArgs),
    /// List, describe, reset the offsets of and delete consumer groups.
    Group(group::GroupArgs),
    /// Write stdin lines to a topic, one record each (Kafka's console producer).
    Produce(produce::ProduceArgs),
    /// Print a topic's records, optionally as a consumer group member (Kafka's console consumer).
    Consume(consume::ConsumeArgs),
    /// Look inside a data directory (read-only): `dump-log` prints a partition's batches.
    Debug(debug::DebugArgs),
}

/// The console tools end quietly when their reader goes away (`corelog topic describe
/// T | head`), as Unix tools do, instead of panicking on a failed print: Rust ignores
/// SIGPIPE by default. Sockets are unaffected (std sends with MSG_NOSIGNAL); `serve` and
/// `bench` keep the Rust default.
fn restore_default_sigpipe() {
    // SAFETY: called once on the main thread before any other thread starts; SIG_DFL is
    // a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Parses the command line, sets up logging and runs the subcommand.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    if matches!(
        cli.command,
        Command::Topic(_)
            | Command::Cluster(_)
            | Command::Group(_)
            | Command::Consume(_)
            | Command::Debug(_)
    ) {
        restore_default_sigpipe();
    }
    let result = match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Bench(args) => bench::run(*args),
        Command::Tune(args) => tune::run(args),
        Command::Topic(args) => topic::run(args).map_err(std::io::Error::other),
        Command::Cluster(args) => cluster::run(args).map_err(std::io::Error::other),
        Command::Group(args) => group::run(args).map_err(std::io::Error::other),
        Command::Produce(args) => produce::run(args).map_err(std::io::Error::other),
        Command::Consume(args) => consume::run(args).map_err(std::io::Error::other),
        Command::Debug(args) => debug::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("corelog: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr; `RUST_LOG` overrides the default: `info`, with openraft's own
/// per-election chatter at `warn` and its per-heartbeat retries to a down voter
/// at `error` (corelog logs leader changes and fencing itself).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(
            "info,openraft=warn,openraft::core::heartbeat=error,openraft::replication=error",
        )
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
