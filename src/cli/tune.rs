//! `corelog tune`: reports which host tuning recommendations this machine
//! meets (`--check`, the default) and, with `--apply`, makes the runtime-only
//! ones it safely can (sysctls, THP mode, disk scheduler, CPU governor).
//! Runs on the CLI thread; no shard is started. See `tuning/README.md`.

use std::io::{self, Write};
use std::path::PathBuf;

use clap::Args;

use crate::runtime::host_check::{self, Finding, Fix, HostSnapshot, Status};

#[derive(Debug, Args)]
pub struct TuneArgs {
    /// Report which recommendations the host meets; changes nothing (the default).
    #[arg(long, conflicts_with = "apply")]
    pub check: bool,
    /// Apply the safe runtime settings (sysctls, THP, disk scheduler, CPU
    /// governor) by writing /proc/sys and /sys; needs root; nothing persistent.
    #[arg(long)]
    pub apply: bool,
    /// The data directory `corelog serve` will use (its disk is checked).
    #[arg(long, env = "CORELOG_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Shards `corelog serve` will run; default: every CPU this process may use.
    #[arg(long, env = "CORELOG_CORES")]
    pub cores: Option<usize>,
}

pub fn run(args: TuneArgs) -> io::Result<()> {
    let shards = args
        .cores
        .unwrap_or_else(crate::server::broker::default_shard_count);
    if shards == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--cores must be at least 1",
        ));
    }
    let host = HostSnapshot::read(&args.data_dir, shards);
    let findings = host_check::check_all(&host, shards);
    let mut out = io::stdout().lock();
    let plural = if shards == 1 { "" } else { "s" };
    writeln!(
        out,
        "corelog tune: host check for {shards} shard{plural}, data dir {}",
        args.data_dir.display()
    )?;
    write_report(&mut out, &findings)?;
    let fixes: Vec<&Fix> = findings.iter().flat_map(|f| &f.fixes).collect();
    if !args.apply {
        return write_fix_plan(&mut out, &fixes);
    }
    if fixes.is_empty() {
        writeln!(out, "nothing to apply")?;
        return Ok(());
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        writeln!(out)?;
        writeln!(
            out,
            "tune --apply needs root to write /proc/sys and /sys; nothing was changed."
        )?;
        writeln!(
            out,
            "Run it with sudo, or make the changes by hand (see tuning/README.md)."
        )?;
        return write_fix_plan(&mut out, &fixes);
    }
    apply(&mut out, &fixes)?;
    let after = host_check::check_all(&HostSnapshot::read(&args.data_dir, shards), shards);
    writeln!(out)?;
    writeln!(out, "after applying:")?;
    write_report(&mut out, &after)
}

const HEADERS: [&str; 5] = ["check", "current", "recommended", "status", "why"];
/// Long values are cut so the table stays readable; details carry the rest.
const CELL_CHARS_MAX: usize = 44;

fn truncate(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() <= CELL_CHARS_MAX {
        return text.to_string();
    }
    let kept: String = text.chars().take(CELL_CHARS_MAX - 3).collect();
    format!("{kept}...")
}

/// Writes the findings as an aligned table, then any detail lines and a count.
pub fn write_report(out: &mut impl Write, findings: &[Finding]) -> io::Result<()> {
    let rows: Vec<[String; 5]> = findings
        .iter()
        .map(|finding| {
            [
                finding.check.clone(),
                truncate(&finding.current),
                truncate(&finding.recommended),
                finding.status.to_string(),
                finding.why.clone(),
            ]
        })
        .collect();
    let mut widths = HEADERS.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let write_row = |out: &mut dyn Write, cells: [&str; 5]| -> io::Result<()> {
        let line = format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            cells[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
        );
        writeln!(out, "{}", line.trim_end())
    };
    writeln!(out)?;
    write_row(out, HEADERS)?;
    for row in &rows {
        write_row(out, [&row[0], &row[1], &row[2], &row[3], &row[4]])?;
    }
    for finding in findings
        .iter()
        .filter(|finding| !finding.details.is_empty())
    {
        writeln!(out)?;
        writeln!(out, "{}:", finding.check)?;
        for line in &finding.details {
            writeln!(out, "  {line}")?;
        }
    }
    let count = |status| findings.iter().filter(|f| f.status == status).count();
    writeln!(out)?;
    writeln!(
        out,
        "{} OK, {} WARN, {} INFO. Details and persistent settings: tuning/README.md",
        count(Status::Ok),
        count(Status::Warn),
        count(Status::Info)
    )
}

fn write_fix_plan(out: &mut impl Write, fixes: &[&Fix]) -> io::Result<()> {
    if fixes.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "`corelog tune --apply` (as root) would write, until the next reboot:"
    )?;
    for fix in fixes {
        writeln!(out, "  echo '{}' > {}", fix.value, fix.path.display())?;
    }
    Ok(())
}

/// Writes each fix, printing old -> new; a failed write is reported and skipped.
fn apply(out: &mut impl Write, fixes: &[&Fix]) -> io::Result<()> {
    writeln!(out)?;
    for fix in fixes {
        let before = std::fs::read_to_string(&fix.path).unwrap_or_default();
        match std::fs::write(&fix.path, &fix.value) {
            Ok(()) => writeln!(
                out,
                "changed {}: {} -> {}",
                fix.path.display(),
                before.trim(),
                fix.value
            )?,
            Err(error) => writeln!(out, "could not write {}: {error}", fix.path.display())?,
        }
    }
    writeln!(
        out,
        "These changes last until reboot; tuning/README.md shows how to persist them."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_writes_each_fix_and_reports_failures() {
        let directory = tempfile::tempdir().expect("temp dir");
        let writable = directory.path().join("swappiness");
        std::fs::write(&writable, "60\n").unwrap();
        let missing = directory.path().join("no/such/file");
        let fixes = [
            Fix {
                path: writable.clone(),
                value: "1".into(),
            },
            Fix {
                path: missing,
                value: "1".into(),
            },
        ];
        let mut out = Vec::new();
        apply(&mut out, &fixes.iter().collect::<Vec<_>>()).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(std::fs::read_to_string(&writable).unwrap(), "1");
        assert!(out.contains(": 60 -> 1"), "{out}");
        assert!(out.contains("could not write"), "{out}");
    }

    #[test]
    fn report_is_a_table_with_details_and_counts() {
        let findings = host_check::check_all(&HostSnapshot::default(), 1);
        let mut out = Vec::new();
        write_report(&mut out, &findings).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains("check"));
        assert!(out.lines().any(|line| line.starts_with("RLIMIT_MEMLOCK")));
        assert!(out.contains("OK,") && out.contains("WARN,") && out.contains("INFO."));
    }
}
