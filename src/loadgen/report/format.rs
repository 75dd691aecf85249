//! What every report format says the same way: which percentiles are shown,
//! how a latency reads, when a number is "n/a", which counters are problems.

use hdrhistogram::Histogram;

use crate::loadgen::results::{BenchResults, LatencySummary};

/// Shown where there is nothing to measure: no samples, no measured time.
pub(super) const NOT_AVAILABLE: &str = "n/a";

/// Reads one percentile out of a summary.
pub(super) type PercentileOf = fn(&LatencySummary) -> u64;

/// Percentile columns of every latency table, in order.
pub(super) const PERCENTILE_COLUMNS: [(&str, PercentileOf); 6] = [
    ("p50", |summary| summary.p50_us),
    ("p90", |summary| summary.p90_us),
    ("p99", |summary| summary.p99_us),
    ("p99.9", |summary| summary.p999_us),
    ("p99.99", |summary| summary.p9999_us),
    ("max", |summary| summary.max_us),
];

/// The two latencies a run measures, as (row label, histogram), in table order.
pub(super) fn latency_rows(results: &BenchResults) -> [(&'static str, &Histogram<u64>); 2] {
    let measurements = &results.measurements;
    [
        ("publish latency", &measurements.publish_latency_us),
        ("end-to-end latency", &measurements.end_to_end_latency_us),
    ]
}

/// Percentiles of a histogram, `None` when it holds no samples (an empty
/// HdrHistogram answers 0 for every percentile, which would read as "fast").
pub(super) fn latency_summary(histogram: &Histogram<u64>) -> Option<LatencySummary> {
    (!histogram.is_empty()).then(|| LatencySummary::of(histogram))
}

/// `812 µs` below 10 ms, where microseconds still matter; `12.3 ms` above.
pub(super) fn format_latency_us(latency_us: u64) -> String {
    if latency_us < 10_000 {
        format!("{latency_us} µs")
    } else {
        format!("{:.1} ms", latency_us as f64 / 1000.0)
    }
}

/// One cell per [`PERCENTILE_COLUMNS`] entry, "n/a" for an empty histogram.
pub(super) fn latency_cells(summary: Option<&LatencySummary>) -> Vec<String> {
    PERCENTILE_COLUMNS
        .iter()
        .map(|(_, pick)| match summary {
            Some(summary) => format_latency_us(pick(summary)),
            None => NOT_AVAILABLE.to_string(),
        })
        .collect()
}

/// Rates over the measured window; `None` when there is no window to divide
/// by, or (for consuming) no consumer to measure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Throughput {
    pub produce_messages_per_second: Option<f64>,
    pub produce_megabytes_per_second: Option<f64>,
    pub consume_messages_per_second: Option<f64>,
    pub consume_megabytes_per_second: Option<f64>,
}

impl Throughput {
    pub fn of(results: &BenchResults) -> Throughput {
        let measured = results.measured_seconds.is_finite() && results.measured_seconds > 0.0;
        let consumed = measured && results.scenario.consumer_groups > 0;
        Throughput {
            produce_messages_per_second: measured.then(|| results.produce_messages_per_second()),
            produce_megabytes_per_second: measured.then(|| results.produce_megabytes_per_second()),
            consume_messages_per_second: consumed.then(|| results.consume_messages_per_second()),
            consume_megabytes_per_second: consumed.then(|| results.consume_megabytes_per_second()),
        }
    }
}

pub(super) fn format_messages_per_second(rate: Option<f64>) -> String {
    rate.map_or_else(|| NOT_AVAILABLE.to_string(), |rate| format!("{rate:.0}"))
}

pub(super) fn format_megabytes_per_second(rate: Option<f64>) -> String {
    rate.map_or_else(|| NOT_AVAILABLE.to_string(), |rate| format!("{rate:.2}"))
}

/// The run's counters as (label, value): problems, retries and session
/// restarts alike.
pub(super) fn counters(results: &BenchResults) -> [(&'static str, u64); 6] {
    let measurements = &results.measurements;
    [
        ("errors", measurements.produce_errors),
        ("retries", measurements.retries),
        ("order violations", measurements.order_violations),
        ("duplicates", measurements.duplicates),
        ("unconsumed", results.unconsumed_messages),
        ("session restarts", measurements.fetch_session_restarts),
    ]
}

/// `PROBLEMS: 3 produce errors, 10 unconsumed messages (...)` when
/// [`BenchResults::problems`] is non-zero, else `None`.
pub(super) fn problems_line(results: &BenchResults) -> Option<String> {
    let problems = results.problems();
    if problems == 0 {
        return None;
    }
    let measurements = &results.measurements;
    let named = [
        (measurements.produce_errors, "produce errors"),
        (measurements.order_violations, "order violations"),
        (measurements.duplicates, "duplicates"),
        (
            results.unconsumed_messages,
            "unconsumed messages (lost, or not delivered by the end of the run)",
        ),
    ];
    let parts: Vec<String> = named
        .iter()
        .filter(|(count, _)| *count > 0)
        .map(|(count, what)| format!("{count} {what}"))
        .collect();
    if parts.is_empty() {
        // `problems()` grew a term this list does not know yet: still shout.
        return Some(format!("PROBLEMS: {problems} (see the counters)"));
    }
    Some(format!("PROBLEMS: {}", parts.join(", ")))
}

/// Text safe inside a Markdown table cell: no column breaks, no line breaks.
pub(super) fn markdown_cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\r', '\n'], " ")
}

/// Text safe inside SVG (XML) character data and attribute values.
pub(super) fn escape_xml(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::report::test_support::{empty_results, synthetic_results};

    #[test]
    fn latencies_switch_to_milliseconds_at_ten() {
        assert_eq!(format_latency_us(812), "812 µs");
        assert_eq!(format_latency_us(9_999), "9999 µs");
        assert_eq!(format_latency_us(10_000), "10.0 ms");
        assert_eq!(format_latency_us(12_345), "12.3 ms");
    }

    #[test]
    fn nothing_measured_is_not_available_rather_than_zero_or_infinite() {
        let results = empty_results();
        assert_eq!(
            latency_summary(&results.measurements.publish_latency_us),
            None
        );
        assert_eq!(latency_cells(None), vec![NOT_AVAILABLE; 6]);
        let throughput = Throughput::of(&results);
        assert_eq!(throughput.produce_messages_per_second, None);
        assert_eq!(throughput.consume_megabytes_per_second, None);
        assert_eq!(problems_line(&results), None);
    }

    #[test]
    fn problems_name_each_nonzero_counter() {
        let mut results = synthetic_results();
        results.measurements.duplicates = 2;
        let line = problems_line(&results).expect("problems");
        assert!(line.starts_with("PROBLEMS: 2 duplicates, 10 unconsumed messages"));
        assert!(!line.contains("produce errors"));
    }

    #[test]
    fn escapes_what_would_break_the_markup() {
        assert_eq!(markdown_cell("a | b\nc"), "a \\| b c");
        assert_eq!(escape_xml("<a & 'b'>"), "&lt;a &amp; &apos;b&apos;&gt;");
    }
}
