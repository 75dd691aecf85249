//! `corelog debug dump-log DIR`: the batches of one partition directory as
//! they are on disk, one line each (base and last offset, leader epoch,
//! crc, records, producer id), for comparing replicas of a partition
//! (`--up-to` the high watermark: two replicas must print the same lines
//! below it). Reads the segment files directly and read-only, so it is safe
//! on the data directory of a running node; a segment ends at its first
//! zeroed or unreadable header (the preallocated tail, or a torn write).

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use crate::protocol::record_batch::{validate_batch, BatchHeader};

#[derive(Debug, Args)]
pub struct DebugArgs {
    #[command(subcommand)]
    pub command: DebugCommand,
}

#[derive(Debug, Subcommand)]
pub enum DebugCommand {
    /// Print every batch of a partition directory (`<data-dir>/<topic>-<n>`).
    DumpLog {
        /// The partition directory.
        dir: PathBuf,
        /// Only batches that start below this offset (e.g. the high watermark).
        #[arg(long)]
        up_to: Option<i64>,
    },
}

/// Bytes before a batch's length field ends: base offset (8) and length (4).
const LOG_OVERHEAD: usize = 12;
/// Largest batch believed (a corrupt length must not allocate gigabytes).
const MAX_BATCH_BYTES: usize = 1 << 30;

pub fn run(args: DebugArgs) -> io::Result<()> {
    match args.command {
        DebugCommand::DumpLog { dir, up_to } => {
            for line in dump_log(&dir, up_to.unwrap_or(i64::MAX))? {
                println!("{line}");
            }
            Ok(())
        }
    }
}

/// One line per batch below `up_to`, in offset order.
pub fn dump_log(dir: &Path, up_to: i64) -> io::Result<Vec<String>> {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .collect();
    segments.sort();
    let mut lines = Vec::new();
    for segment in segments {
        let mut reader = BufReader::with_capacity(1 << 20, File::open(&segment)?);
        loop {
            let mut head = [0u8; LOG_OVERHEAD];
            if reader.read_exact(&mut head).is_err() {
                break;
            }
            let length = i32::from_be_bytes([head[8], head[9], head[10], head[11]]);
            let Some(length) = usize::try_from(length)
                .ok()
                .filter(|length| *length > 0 && *length <= MAX_BATCH_BYTES)
            else {
                break;
            };
            let mut batch = vec![0u8; LOG_OVERHEAD + length];
            batch[..LOG_OVERHEAD].copy_from_slice(&head);
            if reader.read_exact(&mut batch[LOG_OVERHEAD..]).is_err() {
                break;
            }
            let Ok(header) = BatchHeader::parse(&batch) else {
                break;
            };
            if header.base_offset >= up_to {
                return Ok(lines);
            }
            let valid = if validate_batch(&batch).is_ok() {
                ""
            } else {
                " INVALID"
            };
            lines.push(format!(
                "offset {}..{} epoch {} crc {:08x} records {} producer {}{valid}",
                header.base_offset,
                header.last_offset(),
                header.partition_leader_epoch,
                header.crc,
                header.records_count,
                header.producer_id,
            ));
        }
    }
    Ok(lines)
}
