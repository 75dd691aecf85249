//! Synthetic runs shared by the report writers' unit tests.

use crate::loadgen::results::{record_latency, BenchResults, Measurements, RunInfo};
use crate::loadgen::scenario::Scenario;

fn run_info() -> RunInfo {
    RunInfo {
        started_at_utc: "2025-03-01T14:05:02Z".into(),
        host: "bench-01".into(),
        kernel: "6.8.0-45-generic".into(),
        cpus: 16,
        corelog_version: "0.1.0".into(),
        git_commit: "38d85e7".into(),
        target: "embedded corelog (cores 0-3)".into(),
        broker_cores: "0-3".into(),
        loadgen_cores: "8-11".into(),
        command_line: "corelog bench --scenario bench/scenarios/default.toml | tee log".into(),
    }
}

/// 10 000 publishes from 100 µs to 100 ms and 9 990 end-to-end latencies a
/// bit slower; 10 messages never consumed.
pub(super) fn synthetic_results() -> BenchResults {
    let mut measurements = Measurements::default();
    for index in 1..=10_000u64 {
        // Mostly fast, with a tail: 100 µs .. ~1.1 ms, then the last 1% up to 100 ms.
        let latency_us = if index <= 9_900 {
            100 + index / 10
        } else {
            (index - 9_900) * 1_000
        };
        record_latency(&mut measurements.publish_latency_us, latency_us);
        if index <= 9_990 {
            record_latency(&mut measurements.end_to_end_latency_us, latency_us * 2);
        }
    }
    measurements.produced_messages = 10_000;
    measurements.produced_bytes = 10_000 * 1024;
    measurements.consumed_messages = 9_990;
    measurements.consumed_bytes = 9_990 * 1024;
    measurements.retries = 3;
    BenchResults {
        scenario: Scenario::default(),
        info: run_info(),
        measured_seconds: 10.0,
        measurements,
        unconsumed_messages: 10,
    }
}

/// A run that measured nothing: no consumers, no samples, no time.
pub(super) fn empty_results() -> BenchResults {
    BenchResults {
        scenario: Scenario {
            name: "no-consumers".into(),
            consumer_groups: 0,
            ..Scenario::default()
        },
        info: run_info(),
        measured_seconds: 0.0,
        measurements: Measurements::default(),
        unconsumed_messages: 0,
    }
}
