//! The `corelog` command line (clap): one file per subcommand. Parses flags
//! and environment variables into the configs the layers below take.

pub mod bench;
pub mod serve;
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
    Serve(serve::ServeArgs),
    /// Run the load generator (against an embedded corelog or --brokers) and write a report.
    Bench(Box<bench::BenchArgs>),
    /// Check (and optionally apply) host tuning for corelog.
    Tune(tune::TuneArgs),
}

/// Parses the command line, sets up logging and runs the subcommand.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Bench(args) => bench::run(*args),
        Command::Tune(args) => tune::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            eprintln!("corelog: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr; `RUST_LOG` overrides the default `info` level.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
