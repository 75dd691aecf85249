//! Report writers of `corelog bench`: turn a finished run's [`BenchResults`]
//! into the table printed at the end of the run and into the files kept under
//! `bench/reports/`: `<stem>.md` for people, `<stem>.json` for scripts,
//! `<stem>-publish.hgrm` / `<stem>-e2e.hgrm` for the HdrHistogram plotter and
//! `<stem>.svg`, the latency-by-percentile plot the Markdown embeds. A
//! partition sweep writes one `<stem>.md`, `.json` and `.svg` (throughput by
//! partition count) over all its runs instead ([`write_sweep_report`]).
//!
//! Runs once, on the CLI's main thread after every load-generator and broker
//! executor has stopped, so it may block and uses `std::fs`; it never runs on
//! a shard. Rendering is pure (`String`s out of plain data, one submodule per
//! format under `report/`) so it is unit-tested without a broker; only
//! [`write_reports`] touches the disk.
//!
//! Latencies are kept in microseconds everywhere except the `.hgrm` files and
//! the plot, which use milliseconds as HdrHistogram tools conventionally do.
//! Empty histograms (a run without consumers has no end-to-end latency) and a
//! zero-length measured window render as "n/a" (`null` in JSON), never as a
//! division by zero.

mod format;
mod hgrm;
mod json;
mod markdown;
mod svg;
mod sweep;
mod table;
#[cfg(test)]
mod test_support;

use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::results::{BenchResults, SlowPublish};

pub use table::print_summary_table;

/// The files one [`write_reports`] call wrote, all inside the given directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportPaths {
    pub markdown: PathBuf,
    pub json: PathBuf,
    pub publish_hgrm: PathBuf,
    pub end_to_end_hgrm: PathBuf,
    pub svg: PathBuf,
}

impl ReportPaths {
    fn new(dir: &Path, file_stem: &str) -> ReportPaths {
        let names = ReportFileNames::new(file_stem);
        ReportPaths {
            markdown: dir.join(names.markdown),
            json: dir.join(names.json),
            publish_hgrm: dir.join(names.publish_hgrm),
            end_to_end_hgrm: dir.join(names.end_to_end_hgrm),
            svg: dir.join(names.svg),
        }
    }

    /// Every file written, in the order they are written (Markdown last, so
    /// that a report whose links resolve is a complete one).
    pub fn all(&self) -> [&Path; 5] {
        [
            &self.json,
            &self.publish_hgrm,
            &self.end_to_end_hgrm,
            &self.svg,
            &self.markdown,
        ]
    }
}

/// File names (without directory) of one report; the Markdown links to the
/// others by these relative names.
struct ReportFileNames {
    markdown: String,
    json: String,
    publish_hgrm: String,
    end_to_end_hgrm: String,
    svg: String,
}

impl ReportFileNames {
    fn new(file_stem: &str) -> ReportFileNames {
        ReportFileNames {
            markdown: format!("{file_stem}.md"),
            json: format!("{file_stem}.json"),
            publish_hgrm: format!("{file_stem}-publish.hgrm"),
            end_to_end_hgrm: format!("{file_stem}-e2e.hgrm"),
            svg: format!("{file_stem}.svg"),
        }
    }
}

/// Writes the five report files for `results` into `dir` (created if
/// missing), named after `file_stem` (see [`report_file_stem`]), replacing
/// files of the same name.
///
/// ```no_run
/// # use corelog::loadgen::{report, results::BenchResults};
/// # fn run(results: &BenchResults) -> std::io::Result<()> {
/// let stem = report::report_file_stem(&results.scenario.name, std::time::SystemTime::now());
/// let paths = report::write_reports(results, std::path::Path::new("bench/reports"), &stem)?;
/// println!("{}", paths.markdown.display());
/// # Ok(()) }
/// ```
pub fn write_reports(
    results: &BenchResults,
    dir: &Path,
    file_stem: &str,
) -> io::Result<ReportPaths> {
    prepare_report_dir(dir, file_stem)?;
    let paths = ReportPaths::new(dir, file_stem);
    let names = ReportFileNames::new(file_stem);
    let measurements = &results.measurements;

    std::fs::write(&paths.json, json::render_json(results))?;
    std::fs::write(
        &paths.publish_hgrm,
        hgrm::render_percentile_distribution(&measurements.publish_latency_us),
    )?;
    std::fs::write(
        &paths.end_to_end_hgrm,
        hgrm::render_percentile_distribution(&measurements.end_to_end_latency_us),
    )?;
    std::fs::write(&paths.svg, svg::render_latency_plot(results))?;
    std::fs::write(&paths.markdown, markdown::render_markdown(results, &names))?;
    Ok(paths)
}

/// Writes `<file_stem>-slow-publishes.csv` into `dir`: one line per slow
/// publish the run kept (`--trace-slow-publishes`), in due order, with its
/// times in CLOCK_MONOTONIC nanoseconds and its latency in µs.
pub fn write_slow_publishes(
    results: &BenchResults,
    dir: &Path,
    file_stem: &str,
) -> io::Result<PathBuf> {
    prepare_report_dir(dir, file_stem)?;
    let path = dir.join(format!("{file_stem}-slow-publishes.csv"));
    std::fs::write(
        &path,
        render_slow_publishes(&results.measurements.slow_publishes),
    )?;
    Ok(path)
}

fn render_slow_publishes(slow: &[SlowPublish]) -> String {
    let mut sorted = slow.to_vec();
    sorted.sort_by_key(|publish| publish.due_ns);
    let mut csv = String::from("due_ns,sent_ns,acked_ns,latency_us\n");
    for publish in sorted {
        let latency_us = publish.acked_ns.saturating_sub(publish.due_ns) / 1_000;
        csv.push_str(&format!(
            "{},{},{},{latency_us}\n",
            publish.due_ns, publish.sent_ns, publish.acked_ns
        ));
    }
    csv
}

/// Checks `file_stem` and creates `dir` if missing: what every writer of
/// one run's files does first.
fn prepare_report_dir(dir: &Path, file_stem: &str) -> io::Result<()> {
    check_file_stem(file_stem)?;
    std::fs::create_dir_all(dir)
}

/// A stem is one file name component: anything else would write outside
/// the report directory or break the Markdown's relative links.
fn check_file_stem(file_stem: &str) -> io::Result<()> {
    let is_one_component = !file_stem.is_empty()
        && file_stem != "."
        && file_stem != ".."
        && !file_stem.contains(['/', '\\', '\0']);
    if is_one_component {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("report file stem {file_stem:?} must be a plain file name"),
        ))
    }
}

/// The files one [`write_sweep_report`] call wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepReportPaths {
    pub markdown: PathBuf,
    pub json: PathBuf,
    pub svg: PathBuf,
}

impl SweepReportPaths {
    /// In writing order, Markdown last (as [`ReportPaths::all`]).
    pub fn all(&self) -> [&Path; 3] {
        [&self.json, &self.svg, &self.markdown]
    }
}

/// Writes the report of a partition sweep, `runs` being the same scenario
/// run at each partition count in turn (in the order given): `<stem>.json`,
/// `<stem>.svg` (throughput by partition count) and `<stem>.md`, in `dir`
/// (created if missing).
pub fn write_sweep_report(
    runs: &[BenchResults],
    dir: &Path,
    file_stem: &str,
) -> io::Result<SweepReportPaths> {
    check_file_stem(file_stem)?;
    if runs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a sweep report needs at least one run",
        ));
    }
    std::fs::create_dir_all(dir)?;
    let svg_name = format!("{file_stem}.svg");
    let paths = SweepReportPaths {
        markdown: dir.join(format!("{file_stem}.md")),
        json: dir.join(format!("{file_stem}.json")),
        svg: dir.join(&svg_name),
    };
    std::fs::write(&paths.json, sweep::render_sweep_json(runs))?;
    std::fs::write(&paths.svg, sweep::render_sweep_plot(runs))?;
    std::fs::write(
        &paths.markdown,
        sweep::render_sweep_markdown(runs, &svg_name),
    )?;
    Ok(paths)
}

/// `<scenario>-<YYYYMMDDTHHMMSSZ>` in UTC, e.g. `default-20250301T140502Z`:
/// sorts by time within a scenario and is safe as a file name on every OS
/// (characters outside `[A-Za-z0-9._-]` in the scenario name become `_`).
pub fn report_file_stem(scenario_name: &str, started_at: SystemTime) -> String {
    let mut name: String = scenario_name
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '_' | '-' => c,
            _ => '_',
        })
        .collect();
    if name.is_empty() {
        name.push_str("scenario");
    }
    // Before 1970 only with a broken clock; the epoch is as good a stamp as any.
    let unix_seconds = started_at
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_secs())
        .unwrap_or(0);
    format!("{name}-{}", utc_compact(unix_seconds))
}

/// ISO 8601 basic format, `YYYYMMDDTHHMMSSZ`.
pub fn utc_compact(unix_seconds: u64) -> String {
    let days = unix_seconds / 86_400;
    let second_of_day = unix_seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

/// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01:
/// Howard Hinnant's `civil_from_days`, restricted to dates after the epoch.
fn civil_from_days(days_since_epoch: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of a year,
    // then split into 400-year eras of 146 097 days.
    let days = days_since_epoch + 719_468;
    let era = days / 146_097;
    let day_of_era = days % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::test_support::{empty_results, synthetic_results};
    use super::*;

    #[test]
    fn slow_publishes_render_in_due_order_with_their_latency() {
        let later = SlowPublish {
            due_ns: 5_000_000,
            sent_ns: 5_000_100,
            acked_ns: 9_000_000,
        };
        let earlier = SlowPublish {
            due_ns: 1_000_000,
            sent_ns: 3_500_000,
            acked_ns: 4_200_000,
        };
        assert_eq!(
            render_slow_publishes(&[later, earlier]),
            "due_ns,sent_ns,acked_ns,latency_us\n\
             1000000,3500000,4200000,3200\n\
             5000000,5000100,9000000,4000\n"
        );
        assert_eq!(
            render_slow_publishes(&[]),
            "due_ns,sent_ns,acked_ns,latency_us\n"
        );
    }

    #[test]
    fn file_stem_is_scenario_then_utc_basic_timestamp() {
        let at = UNIX_EPOCH + Duration::from_secs(1_740_837_902); // 2025-03-01 14:05:02 UTC
        assert_eq!(report_file_stem("default", at), "default-20250301T140502Z");
        assert_eq!(
            report_file_stem("fixed-rate", UNIX_EPOCH),
            "fixed-rate-19700101T000000Z"
        );
        // Leap day, and the last second of a leap year.
        let leap_day = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29 00:00:00
        assert_eq!(report_file_stem("x", leap_day), "x-20000229T000000Z");
        let new_years_eve = UNIX_EPOCH + Duration::from_secs(1_735_689_599); // 2024-12-31 23:59:59
        assert_eq!(report_file_stem("x", new_years_eve), "x-20241231T235959Z");
    }

    #[test]
    fn file_stem_never_leaves_the_report_directory() {
        assert_eq!(
            report_file_stem("../etc/a b", UNIX_EPOCH),
            ".._etc_a_b-19700101T000000Z"
        );
        assert_eq!(
            report_file_stem("", UNIX_EPOCH),
            "scenario-19700101T000000Z"
        );
    }

    #[test]
    fn writes_every_report_file_into_a_new_directory() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("reports/nested");
        let results = synthetic_results();
        let paths = write_reports(&results, &dir, "default-20250301T140502Z").expect("written");
        assert_eq!(paths.markdown, dir.join("default-20250301T140502Z.md"));
        assert_eq!(
            paths.end_to_end_hgrm,
            dir.join("default-20250301T140502Z-e2e.hgrm")
        );
        for path in paths.all() {
            let text = std::fs::read_to_string(path).expect("readable");
            assert!(!text.is_empty(), "{} is empty", path.display());
        }

        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&paths.json).expect("json"))
                .expect("parses");
        assert_eq!(json["produced_messages"], 10_000);
        assert_eq!(json["consumed_messages"], 9_990);
        assert_eq!(json["unconsumed_messages"], 10);

        let markdown = std::fs::read_to_string(&paths.markdown).expect("md");
        assert!(markdown.contains("![latency](default-20250301T140502Z.svg)"));
        assert!(markdown.contains("(default-20250301T140502Z-publish.hgrm)"));
        assert!(markdown.contains("(default-20250301T140502Z-e2e.hgrm)"));
    }

    #[test]
    fn empty_histograms_are_written_without_panicking() {
        let root = tempfile::tempdir().expect("tempdir");
        let paths = write_reports(&empty_results(), root.path(), "empty").expect("written");
        for path in paths.all() {
            assert!(path.exists(), "{} missing", path.display());
        }
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&paths.json).expect("json"))
                .expect("parses");
        assert!(json["end_to_end_latency_us"].is_null());
        assert!(json["produce_messages_per_second"].is_null());
    }

    #[test]
    fn a_sweep_report_is_three_files_and_needs_a_run() {
        let root = tempfile::tempdir().expect("tempdir");
        let runs = vec![synthetic_results(), synthetic_results()];
        let paths = write_sweep_report(&runs, root.path(), "sweep").expect("written");
        for path in paths.all() {
            assert!(!std::fs::read_to_string(path).expect("readable").is_empty());
        }
        assert!(std::fs::read_to_string(&paths.markdown)
            .expect("md")
            .contains("![throughput](sweep.svg)"));
        let error = write_sweep_report(&[], root.path(), "sweep").unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        let error = write_sweep_report(&runs, root.path(), "../x").unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn a_stem_with_a_path_in_it_is_refused() {
        let root = tempfile::tempdir().expect("tempdir");
        for stem in ["", "..", "a/b", "a\\b"] {
            let error = write_reports(&synthetic_results(), root.path(), stem).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        }
    }
}
