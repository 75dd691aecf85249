//! The end-of-run summary `corelog bench` prints to stdout: latency
//! percentiles, throughput and counters in a fixed-width table readable in a
//! terminal or a CI log, ending with a `PROBLEMS:` line when anything was
//! lost, duplicated, reordered or refused.

use super::format::{
    counters, format_megabytes_per_second, format_messages_per_second, latency_cells, latency_rows,
    latency_summary, problems_line, Throughput, PERCENTILE_COLUMNS,
};
use crate::loadgen::results::BenchResults;

/// Width of the row-label column: fits "end-to-end latency".
const LABEL_WIDTH: usize = 20;
/// Width of each value column: fits "60000.0 ms", the clamp limit.
const VALUE_WIDTH: usize = 11;

/// The end-of-run table, ready to print (ends with a newline).
///
/// ```text
/// corelog bench "default": 10.0 s measured after 2.0 s warm-up
///
/// latency                     p50        p90 ...        max    samples
/// publish latency          612 µs     902 µs ...    99.9 ms      10000
/// ...
/// PROBLEMS: 10 unconsumed messages (lost, or not delivered by the end of the run)
/// ```
pub fn print_summary_table(results: &BenchResults) -> String {
    let mut lines = vec![
        format!(
            "corelog bench {:?}: {:.1} s measured after {:.1} s warm-up",
            results.scenario.name, results.measured_seconds, results.scenario.warmup_seconds
        ),
        String::new(),
    ];

    let mut header = format!("{:<LABEL_WIDTH$}", "latency");
    for (name, _) in PERCENTILE_COLUMNS {
        header.push_str(&format!("{name:>VALUE_WIDTH$}"));
    }
    header.push_str(&format!("{:>VALUE_WIDTH$}", "samples"));
    lines.push(header);
    for (label, histogram) in latency_rows(results) {
        let summary = latency_summary(histogram);
        let mut row = format!("{label:<LABEL_WIDTH$}");
        for cell in latency_cells(summary.as_ref()) {
            row.push_str(&format!("{cell:>VALUE_WIDTH$}"));
        }
        row.push_str(&format!("{:>VALUE_WIDTH$}", histogram.len()));
        lines.push(row);
    }
    lines.push(String::new());

    let throughput = Throughput::of(results);
    lines.push(format!(
        "{:<LABEL_WIDTH$}{:>VALUE_WIDTH$}{:>VALUE_WIDTH$}",
        "throughput", "msgs/s", "MB/s"
    ));
    for (label, messages, megabytes) in [
        (
            "produce",
            throughput.produce_messages_per_second,
            throughput.produce_megabytes_per_second,
        ),
        (
            "consume",
            throughput.consume_messages_per_second,
            throughput.consume_megabytes_per_second,
        ),
    ] {
        lines.push(format!(
            "{label:<LABEL_WIDTH$}{:>VALUE_WIDTH$}{:>VALUE_WIDTH$}",
            format_messages_per_second(messages),
            format_megabytes_per_second(megabytes)
        ));
    }
    lines.push(String::new());

    let counters: Vec<String> = counters(results)
        .iter()
        .map(|(name, count)| format!("{name} {count}"))
        .collect();
    lines.push(counters.join(" | "));
    if let Some(problems) = problems_line(results) {
        lines.push(problems);
    }

    let mut table = lines.join("\n");
    table.push('\n');
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::report::format::NOT_AVAILABLE;
    use crate::loadgen::report::test_support::{empty_results, synthetic_results};

    #[test]
    fn shows_percentiles_throughput_counters_and_problems() {
        let table = print_summary_table(&synthetic_results());
        let publish = table
            .lines()
            .find(|line| line.starts_with("publish latency"))
            .expect("publish row");
        // p50 of 100 + i/10 over the first 99% is ~600 µs; max is 100 ms.
        assert!(publish.contains(" µs"), "{publish}");
        assert!(
            publish.contains("100.0 ms") || publish.contains("99.9 ms"),
            "{publish}"
        );
        assert!(publish.trim_end().ends_with("10000"), "{publish}");
        assert!(table.contains("end-to-end latency"));
        let produce = table
            .lines()
            .find(|line| line.starts_with("produce"))
            .expect("produce");
        assert_eq!(
            produce.split_whitespace().collect::<Vec<_>>(),
            ["produce", "1000", "1.02"]
        );
        assert!(table
            .contains("errors 0 | retries 3 | order violations 0 | duplicates 0 | unconsumed 10"));
        assert!(table
            .lines()
            .any(|line| line.starts_with("PROBLEMS: 10 unconsumed")));
    }

    #[test]
    fn an_empty_run_reads_not_available_and_reports_no_problems() {
        let table = print_summary_table(&empty_results());
        let end_to_end = table
            .lines()
            .find(|line| line.starts_with("end-to-end latency"))
            .expect("row");
        assert_eq!(end_to_end.matches(NOT_AVAILABLE).count(), 6, "{end_to_end}");
        assert!(table
            .lines()
            .any(|line| line.starts_with("consume") && line.contains("n/a")));
        assert!(!table.contains("PROBLEMS"));
        assert!(!table.contains("NaN") && !table.contains("inf"));
    }
}
