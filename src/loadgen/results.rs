//! What a bench run measured: latency histograms (microseconds) and counters,
//! merged across the load generator's cores. Plain data: the report writers
//! (`report.rs`) turn it into Markdown, JSON, `.hgrm` and SVG.

use hdrhistogram::Histogram;
use serde::Serialize;

use super::scenario::Scenario;

/// Highest latency recorded (60 s in µs); larger values are clamped to it.
pub const LATENCY_MAX_US: u64 = 60_000_000;
/// Significant figures kept by every histogram.
pub const LATENCY_SIGNIFICANT_FIGURES: u8 = 3;

/// A fresh latency histogram with the bench's range and precision.
pub fn new_latency_histogram() -> Histogram<u64> {
    match Histogram::new_with_bounds(1, LATENCY_MAX_US, LATENCY_SIGNIFICANT_FIGURES) {
        Ok(histogram) => histogram,
        Err(error) => unreachable!("constant histogram bounds are valid: {error}"),
    }
}

/// Records `latency_us` (clamped into range).
pub fn record_latency(histogram: &mut Histogram<u64>, latency_us: u64) {
    let _ = histogram.record(latency_us.clamp(1, LATENCY_MAX_US));
}

/// Slow publishes kept per run at most (`--trace-slow-publishes`): enough
/// for every message over the p99.9 of a long run, bounded in memory.
pub const SLOW_PUBLISHES_KEPT: usize = 100_000;

/// One measured message whose publish latency reached the run's
/// `--trace-slow-publishes` threshold. Times are CLOCK_MONOTONIC nanoseconds,
/// to line up with a `perf record -k CLOCK_MONOTONIC` trace of the same run
/// (`bench/tail-attribution.py`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlowPublish {
    /// When the open-loop schedule wanted it sent (latency counts from here).
    pub due_ns: u64,
    /// When its Produce request was handed to the connection.
    pub sent_ns: u64,
    /// When its acknowledgement was read.
    pub acked_ns: u64,
}

/// Counters and histograms of one load-generator core, merged into the total.
#[derive(Debug, Clone)]
pub struct Measurements {
    /// Publish latency: scheduled send time -> ack (coordinated-omission corrected).
    pub publish_latency_us: Histogram<u64>,
    /// End-to-end latency: produce timestamp -> consumer receipt.
    pub end_to_end_latency_us: Histogram<u64>,
    pub produced_messages: u64,
    pub produced_bytes: u64,
    pub consumed_messages: u64,
    pub consumed_bytes: u64,
    /// Produce requests answered with an error, or failed connections.
    pub produce_errors: u64,
    pub retries: u64,
    /// Consumer saw an offset go backwards or skip within a partition.
    pub order_violations: u64,
    /// Consumer saw the same message twice.
    pub duplicates: u64,
    /// Fetches answered with an error, undecodable batches, failed connections.
    pub consume_errors: u64,
    /// Fetch sessions the broker lost or refused (evicted, wrong epoch),
    /// each followed by a full fetch that starts a new one. Not a problem:
    /// nothing is lost, but each costs a full request and answer.
    pub fetch_session_restarts: u64,
    /// Messages at or over the slow-publish threshold, in ack order per
    /// core (empty unless the run traces them; at most `SLOW_PUBLISHES_KEPT`).
    pub slow_publishes: Vec<SlowPublish>,
}

impl Default for Measurements {
    fn default() -> Self {
        Measurements {
            publish_latency_us: new_latency_histogram(),
            end_to_end_latency_us: new_latency_histogram(),
            produced_messages: 0,
            produced_bytes: 0,
            consumed_messages: 0,
            consumed_bytes: 0,
            produce_errors: 0,
            retries: 0,
            order_violations: 0,
            duplicates: 0,
            consume_errors: 0,
            fetch_session_restarts: 0,
            slow_publishes: Vec::new(),
        }
    }
}

impl Measurements {
    /// Adds another core's measurements into these.
    pub fn merge(&mut self, other: &Measurements) {
        let _ = self.publish_latency_us.add(&other.publish_latency_us);
        let _ = self.end_to_end_latency_us.add(&other.end_to_end_latency_us);
        self.produced_messages += other.produced_messages;
        self.produced_bytes += other.produced_bytes;
        self.consumed_messages += other.consumed_messages;
        self.consumed_bytes += other.consumed_bytes;
        self.produce_errors += other.produce_errors;
        self.retries += other.retries;
        self.order_violations += other.order_violations;
        self.duplicates += other.duplicates;
        self.consume_errors += other.consume_errors;
        self.fetch_session_restarts += other.fetch_session_restarts;
        let room = SLOW_PUBLISHES_KEPT.saturating_sub(self.slow_publishes.len());
        self.slow_publishes
            .extend(other.slow_publishes.iter().take(room).copied());
    }

    /// Keeps `slow` if the run still has room for it.
    pub fn keep_slow_publish(&mut self, slow: SlowPublish) {
        if self.slow_publishes.len() < SLOW_PUBLISHES_KEPT {
            self.slow_publishes.push(slow);
        }
    }
}

/// Percentiles of one histogram, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub p9999_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
}

impl LatencySummary {
    pub fn of(histogram: &Histogram<u64>) -> LatencySummary {
        LatencySummary {
            count: histogram.len(),
            p50_us: histogram.value_at_quantile(0.50),
            p90_us: histogram.value_at_quantile(0.90),
            p99_us: histogram.value_at_quantile(0.99),
            p999_us: histogram.value_at_quantile(0.999),
            p9999_us: histogram.value_at_quantile(0.9999),
            max_us: histogram.max(),
            mean_us: histogram.mean(),
        }
    }
}

/// Where and how the run happened, for the report header.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    pub started_at_utc: String,
    pub host: String,
    pub kernel: String,
    pub cpus: usize,
    pub corelog_version: String,
    pub git_commit: String,
    /// "embedded corelog (cores 0)" or the `--brokers` list.
    pub target: String,
    pub broker_cores: String,
    pub loadgen_cores: String,
    /// The command line as typed.
    pub command_line: String,
}

/// A finished run: what was asked, where, and what was measured.
#[derive(Debug, Clone)]
pub struct BenchResults {
    pub scenario: Scenario,
    pub info: RunInfo,
    /// Measured window (after warm-up), seconds.
    pub measured_seconds: f64,
    pub measurements: Measurements,
    /// Messages produced during the whole run (warm-up included) that were
    /// never consumed by some group: lost or not yet delivered at the end.
    pub unconsumed_messages: u64,
}

impl BenchResults {
    pub fn publish_summary(&self) -> LatencySummary {
        LatencySummary::of(&self.measurements.publish_latency_us)
    }
    pub fn end_to_end_summary(&self) -> LatencySummary {
        LatencySummary::of(&self.measurements.end_to_end_latency_us)
    }
    pub fn produce_messages_per_second(&self) -> f64 {
        self.measurements.produced_messages as f64 / self.measured_seconds.max(f64::EPSILON)
    }
    pub fn produce_megabytes_per_second(&self) -> f64 {
        self.measurements.produced_bytes as f64 / 1e6 / self.measured_seconds.max(f64::EPSILON)
    }
    pub fn consume_messages_per_second(&self) -> f64 {
        self.measurements.consumed_messages as f64 / self.measured_seconds.max(f64::EPSILON)
    }
    pub fn consume_megabytes_per_second(&self) -> f64 {
        self.measurements.consumed_bytes as f64 / 1e6 / self.measured_seconds.max(f64::EPSILON)
    }
    /// Loss, gaps, duplicates or errors: anything a reader must not miss.
    pub fn problems(&self) -> u64 {
        let m = &self.measurements;
        m.produce_errors
            + m.consume_errors
            + m.order_violations
            + m.duplicates
            + self.unconsumed_messages
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slow(due_ns: u64) -> SlowPublish {
        SlowPublish {
            due_ns,
            sent_ns: due_ns + 10,
            acked_ns: due_ns + 3_000_000,
        }
    }

    #[test]
    fn slow_publishes_merge_up_to_the_cap() {
        let mut first = Measurements::default();
        let mut second = Measurements::default();
        for due in 0..(SLOW_PUBLISHES_KEPT as u64 - 1) {
            first.keep_slow_publish(slow(due));
        }
        second.keep_slow_publish(slow(1 << 40));
        second.keep_slow_publish(slow(1 << 41));
        first.merge(&second);
        assert_eq!(first.slow_publishes.len(), SLOW_PUBLISHES_KEPT);
        assert_eq!(first.slow_publishes.last(), Some(&slow(1 << 40)));
        first.keep_slow_publish(slow(7));
        assert_eq!(first.slow_publishes.len(), SLOW_PUBLISHES_KEPT);
    }

    #[test]
    fn merging_cores_adds_counts_and_histograms() {
        let mut first = Measurements::default();
        let mut second = Measurements::default();
        for latency in [100, 200, 300] {
            record_latency(&mut first.publish_latency_us, latency);
        }
        record_latency(&mut second.publish_latency_us, 10_000);
        first.produced_messages = 3;
        second.produced_messages = 1;
        first.merge(&second);
        assert_eq!(first.produced_messages, 4);
        let summary = LatencySummary::of(&first.publish_latency_us);
        assert_eq!(summary.count, 4);
        assert!(summary.max_us >= 10_000 && summary.max_us <= 10_010);
        assert!(summary.p50_us >= 199 && summary.p50_us <= 201);
    }

    #[test]
    fn out_of_range_latencies_are_clamped_not_dropped() {
        let mut histogram = new_latency_histogram();
        record_latency(&mut histogram, 0);
        record_latency(&mut histogram, u64::MAX);
        assert_eq!(histogram.len(), 2);
    }
}
