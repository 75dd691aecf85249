//! `<stem>.json`: the run for scripts (comparisons across commits, CI
//! dashboards). Flat counters and throughputs at the top level, latency
//! summaries in microseconds; anything not measured is `null`, never 0.

use serde::Serialize;

use super::format::{latency_summary, Throughput};
use crate::loadgen::results::{BenchResults, LatencySummary, RunInfo};
use crate::loadgen::scenario::Scenario;

/// Bumped when a field changes meaning or disappears (adding one does not).
const REPORT_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Serialize)]
struct JsonReport<'a> {
    report_format_version: u32,
    scenario: &'a Scenario,
    info: &'a RunInfo,
    measured_seconds: f64,
    /// `null` when no message was acknowledged.
    publish_latency_us: Option<LatencySummary>,
    /// `null` when nothing was consumed (e.g. no consumer groups).
    end_to_end_latency_us: Option<LatencySummary>,
    produce_messages_per_second: Option<f64>,
    produce_megabytes_per_second: Option<f64>,
    consume_messages_per_second: Option<f64>,
    consume_megabytes_per_second: Option<f64>,
    produced_messages: u64,
    produced_bytes: u64,
    consumed_messages: u64,
    consumed_bytes: u64,
    produce_errors: u64,
    retries: u64,
    order_violations: u64,
    duplicates: u64,
    fetch_session_restarts: u64,
    unconsumed_messages: u64,
    /// [`BenchResults::problems`]: non-zero means the run lost, duplicated,
    /// reordered or failed something.
    problems: u64,
}

/// Pretty-printed, newline-terminated JSON of `results`.
pub(super) fn render_json(results: &BenchResults) -> String {
    let measurements = &results.measurements;
    let throughput = Throughput::of(results);
    let report = JsonReport {
        report_format_version: REPORT_FORMAT_VERSION,
        scenario: &results.scenario,
        info: &results.info,
        measured_seconds: results.measured_seconds,
        publish_latency_us: latency_summary(&measurements.publish_latency_us),
        end_to_end_latency_us: latency_summary(&measurements.end_to_end_latency_us),
        produce_messages_per_second: throughput.produce_messages_per_second,
        produce_megabytes_per_second: throughput.produce_megabytes_per_second,
        consume_messages_per_second: throughput.consume_messages_per_second,
        consume_megabytes_per_second: throughput.consume_megabytes_per_second,
        produced_messages: measurements.produced_messages,
        produced_bytes: measurements.produced_bytes,
        consumed_messages: measurements.consumed_messages,
        consumed_bytes: measurements.consumed_bytes,
        produce_errors: measurements.produce_errors,
        retries: measurements.retries,
        order_violations: measurements.order_violations,
        duplicates: measurements.duplicates,
        fetch_session_restarts: measurements.fetch_session_restarts,
        unconsumed_messages: results.unconsumed_messages,
        problems: results.problems(),
    };
    // Plain structs of numbers and strings with string keys: serde_json
    // cannot fail on them (non-finite floats become `null`).
    let mut text = match serde_json::to_string_pretty(&report) {
        Ok(text) => text,
        Err(error) => unreachable!("a JsonReport always serializes: {error}"),
    };
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::loadgen::report::test_support::{empty_results, synthetic_results};

    #[test]
    fn parses_back_with_counters_at_the_top_level() {
        let results = synthetic_results();
        let json: Value = serde_json::from_str(&render_json(&results)).expect("valid JSON");
        assert_eq!(json["report_format_version"], 1);
        assert_eq!(json["produced_messages"], 10_000);
        assert_eq!(json["consumed_messages"], 9_990);
        assert_eq!(json["retries"], 3);
        assert_eq!(json["problems"], 10);
        assert_eq!(json["measured_seconds"], 10.0);
        assert_eq!(json["produce_messages_per_second"], 1000.0);
        assert_eq!(json["scenario"]["name"], "default");
        assert_eq!(json["info"]["host"], "bench-01");
        let publish = &json["publish_latency_us"];
        assert_eq!(publish["count"], 10_000);
        assert_eq!(publish["max_us"], results.publish_summary().max_us);
        assert_eq!(json["end_to_end_latency_us"]["count"], 9_990);
        // The scenario round-trips into the type it came from.
        let scenario: Scenario =
            serde_json::from_value(json["scenario"].clone()).expect("scenario");
        assert_eq!(scenario, results.scenario);
    }

    #[test]
    fn unmeasured_values_are_null() {
        let json: Value = serde_json::from_str(&render_json(&empty_results())).expect("valid");
        assert!(json["publish_latency_us"].is_null());
        assert!(json["end_to_end_latency_us"].is_null());
        assert!(json["consume_messages_per_second"].is_null());
        assert_eq!(json["produced_messages"], 0);
    }
}
