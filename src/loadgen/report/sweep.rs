//! The partition sweep's report (`corelog bench --sweep-partitions`): one
//! scenario run once per partition count, summed up in one `<stem>.md`,
//! one `<stem>.json` and one `<stem>.svg`, the throughput by partition
//! count on a log x axis (1, 10, 100, ... evenly spaced), so a reader sees
//! where per-partition costs start to show. Each run's full latency
//! distribution stays in the runs' own summaries printed to stdout; the
//! sweep keeps the percentiles that compare across counts.

use serde::Serialize;

use super::format::{
    format_latency_us, format_megabytes_per_second, format_messages_per_second, latency_summary,
    problems_line, Throughput, NOT_AVAILABLE,
};
use super::markdown::{link, run_section, scenario_section, table};
use super::svg::{
    open_plot, push_frame, push_legend, push_line, push_x_tick, push_y_grid, y_axis, y_of,
    PLOT_LEFT, PLOT_RIGHT, PLOT_TOP,
};
use crate::loadgen::results::{BenchResults, LatencySummary, RunInfo};
use crate::loadgen::scenario::Scenario;

/// Bumped when a field changes meaning or disappears (adding one does not).
const SWEEP_FORMAT_VERSION: u32 = 1;
/// Room above the highest point for the legend, as a share of it.
const LEGEND_HEADROOM: f64 = 1.25;

/// One run of the sweep in the JSON.
#[derive(Debug, Serialize)]
struct SweepRunJson {
    partitions_per_topic: u32,
    /// Over all topics of the run.
    partitions: u64,
    measured_seconds: f64,
    produce_messages_per_second: Option<f64>,
    produce_megabytes_per_second: Option<f64>,
    consume_messages_per_second: Option<f64>,
    consume_megabytes_per_second: Option<f64>,
    /// `null` when no message was acknowledged.
    publish_latency_us: Option<LatencySummary>,
    /// `null` when nothing was consumed.
    end_to_end_latency_us: Option<LatencySummary>,
    produced_messages: u64,
    consumed_messages: u64,
    fetch_session_restarts: u64,
    /// Non-zero means the run lost, duplicated, reordered or failed something.
    problems: u64,
}

#[derive(Debug, Serialize)]
struct SweepJson<'a> {
    report_format_version: u32,
    kind: &'static str,
    /// The first run's scenario; the runs differ only in partitions_per_topic.
    scenario: &'a Scenario,
    info: &'a RunInfo,
    partitions_per_topic: Vec<u32>,
    runs: Vec<SweepRunJson>,
}

fn run_json(results: &BenchResults) -> SweepRunJson {
    let scenario = &results.scenario;
    let measurements = &results.measurements;
    let throughput = Throughput::of(results);
    SweepRunJson {
        partitions_per_topic: scenario.partitions_per_topic,
        partitions: u64::from(scenario.topics) * u64::from(scenario.partitions_per_topic),
        measured_seconds: results.measured_seconds,
        produce_messages_per_second: throughput.produce_messages_per_second,
        produce_megabytes_per_second: throughput.produce_megabytes_per_second,
        consume_messages_per_second: throughput.consume_messages_per_second,
        consume_megabytes_per_second: throughput.consume_megabytes_per_second,
        publish_latency_us: latency_summary(&measurements.publish_latency_us),
        end_to_end_latency_us: latency_summary(&measurements.end_to_end_latency_us),
        produced_messages: measurements.produced_messages,
        consumed_messages: measurements.consumed_messages,
        fetch_session_restarts: measurements.fetch_session_restarts,
        problems: results.problems(),
    }
}

/// Pretty-printed, newline-terminated JSON of the sweep's `runs` (at least one).
pub(super) fn render_sweep_json(runs: &[BenchResults]) -> String {
    let Some(first) = runs.first() else {
        unreachable!("a sweep report has at least one run");
    };
    let report = SweepJson {
        report_format_version: SWEEP_FORMAT_VERSION,
        kind: "partition-sweep",
        scenario: &first.scenario,
        info: &first.info,
        partitions_per_topic: runs
            .iter()
            .map(|run| run.scenario.partitions_per_topic)
            .collect(),
        runs: runs.iter().map(run_json).collect(),
    };
    // Plain numbers and strings: serde_json cannot fail on them.
    let mut text = match serde_json::to_string_pretty(&report) {
        Ok(text) => text,
        Err(error) => unreachable!("a SweepJson always serializes: {error}"),
    };
    text.push('\n');
    text
}

fn latency_cell(summary: Option<&LatencySummary>, pick: fn(&LatencySummary) -> u64) -> String {
    summary.map_or_else(|| NOT_AVAILABLE.to_string(), |s| format_latency_us(pick(s)))
}

/// `<stem>.md`: run, scenario (partition counts listed), one row per run,
/// the plot, and every run's problems.
pub(super) fn render_sweep_markdown(runs: &[BenchResults], svg_name: &str) -> String {
    let Some(first) = runs.first() else {
        unreachable!("a sweep report has at least one run");
    };
    let scenario = &first.scenario;
    let mut text = format!("# corelog bench partition sweep: {}\n\n", scenario.name);
    if !scenario.description.is_empty() {
        text.push_str(&format!("{}\n\n", scenario.description));
    }
    text.push_str(
        "The same scenario run once per partition count (partitions per topic), each on fresh \
         topics (and a fresh embedded broker); every other setting is the same.\n\n",
    );
    text.push_str(&run_section(first));
    let counts: Vec<String> = runs
        .iter()
        .map(|run| run.scenario.partitions_per_topic.to_string())
        .collect();
    text.push_str(&scenario_section(
        scenario,
        Some(format!("swept: {}", counts.join(", "))),
    ));

    text.push_str("## Results\n\n");
    text.push_str(
        "Throughput over each run's measured window; publish latency from a message's \
         scheduled send time to its acknowledgement, end-to-end to its receipt.\n\n",
    );
    let header = [
        "partitions",
        "produce msgs/s",
        "produce MB/s",
        "consume msgs/s",
        "consume MB/s",
        "publish p50",
        "publish p99",
        "publish p99.9",
        "end-to-end p99",
        "problems",
    ];
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|run| {
            let throughput = Throughput::of(run);
            let publish = latency_summary(&run.measurements.publish_latency_us);
            let end_to_end = latency_summary(&run.measurements.end_to_end_latency_us);
            vec![
                run.scenario.partitions_per_topic.to_string(),
                format_messages_per_second(throughput.produce_messages_per_second),
                format_megabytes_per_second(throughput.produce_megabytes_per_second),
                format_messages_per_second(throughput.consume_messages_per_second),
                format_megabytes_per_second(throughput.consume_megabytes_per_second),
                latency_cell(publish.as_ref(), |s| s.p50_us),
                latency_cell(publish.as_ref(), |s| s.p99_us),
                latency_cell(publish.as_ref(), |s| s.p999_us),
                latency_cell(end_to_end.as_ref(), |s| s.p99_us),
                run.problems().to_string(),
            ]
        })
        .collect();
    text.push_str(&table(&header, &rows));
    text.push_str(&format!("![throughput]({})\n\n", link(svg_name)));

    let problems: Vec<String> = runs
        .iter()
        .filter_map(|run| {
            problems_line(run)
                .map(|line| format!("- {} partitions: {line}", run.scenario.partitions_per_topic))
        })
        .collect();
    if problems.is_empty() {
        text.push_str(
            "No problems: no produce errors, order violations, duplicates or unconsumed \
             messages in any run.\n",
        );
    } else {
        text.push_str(&format!("**PROBLEMS**\n\n{}\n", problems.join("\n")));
    }
    text
}

/// The x axis: whole decades from the smallest count's down to the largest
/// count's up (at least one decade).
fn decades(runs: &[BenchResults]) -> (i32, i32) {
    let logs = runs
        .iter()
        .map(|run| f64::from(run.scenario.partitions_per_topic.max(1)).log10());
    let low = logs.clone().fold(f64::INFINITY, f64::min);
    let high = logs.fold(f64::NEG_INFINITY, f64::max);
    if !(low.is_finite() && high.is_finite()) {
        return (0, 1);
    }
    let low = low.floor() as i32;
    let high = (high.ceil() as i32).max(low + 1);
    (low, high)
}

fn x_of_partitions(partitions: u32, (low, high): (i32, i32)) -> f64 {
    let log = f64::from(partitions.max(1)).log10();
    PLOT_LEFT + (log - f64::from(low)) / f64::from(high - low) * (PLOT_RIGHT - PLOT_LEFT)
}

/// `10000` -> `10,000`.
fn with_thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

/// `<stem>.svg`: produce and consume MB/s by partition count, log x axis.
pub(super) fn render_sweep_plot(runs: &[BenchResults]) -> String {
    let name = runs.first().map_or("", |run| run.scenario.name.as_str());
    type Rate = fn(&Throughput) -> Option<f64>;
    let series: [(&str, &str, Rate); 2] = [
        ("produce", "#1f77b4", |t| t.produce_megabytes_per_second),
        ("consume", "#ff7f0e", |t| t.consume_megabytes_per_second),
    ];
    let throughputs: Vec<(u32, Throughput)> = runs
        .iter()
        .map(|run| (run.scenario.partitions_per_topic, Throughput::of(run)))
        .collect();
    let max = throughputs
        .iter()
        .flat_map(|(_, throughput)| series.iter().filter_map(|(_, _, rate)| rate(throughput)))
        .filter(|rate| rate.is_finite())
        .fold(0.0, f64::max);
    let (axis_max, step) = y_axis(max * LEGEND_HEADROOM);
    let decades = decades(runs);

    let mut svg = open_plot(&format!(
        "corelog bench {name}: throughput by partition count"
    ));
    push_y_grid(&mut svg, axis_max, step);
    for decade in decades.0..=decades.1 {
        let count = 10u64.pow(decade.max(0) as u32);
        let x = x_of_partitions(u32::try_from(count).unwrap_or(u32::MAX), decades);
        push_x_tick(&mut svg, x, &with_thousands(count));
    }
    push_frame(
        &mut svg,
        "partitions per topic (log scale)",
        "throughput (MB/s)",
    );
    for (index, (label, colour, rate)) in series.iter().enumerate() {
        let mut points: Vec<(u32, f64)> = throughputs
            .iter()
            .filter_map(|(partitions, throughput)| Some((*partitions, rate(throughput)?)))
            .filter(|(_, rate)| rate.is_finite())
            .collect();
        points.sort_by_key(|(partitions, _)| *partitions);
        let coordinates: Vec<(f64, f64)> = points
            .iter()
            .map(|(partitions, rate)| {
                (x_of_partitions(*partitions, decades), y_of(*rate, axis_max))
            })
            .collect();
        // Consume lies on produce when every message is read once: dashed.
        push_line(&mut svg, label, colour, index > 0, &coordinates);
        for (x, y) in &coordinates {
            svg.push_str(&format!(
                "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3.5\" fill=\"{colour}\"/>\n"
            ));
        }
        let legend = if coordinates.is_empty() {
            format!("{label}: not measured")
        } else {
            format!("{label} MB/s")
        };
        push_legend(
            &mut svg,
            PLOT_RIGHT - 150.0,
            PLOT_TOP + 18.0,
            index,
            colour,
            &legend,
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::report::test_support::{empty_results, synthetic_results};

    fn sweep() -> Vec<BenchResults> {
        [1u32, 10, 1000]
            .iter()
            .enumerate()
            .map(|(index, &partitions)| {
                let mut run = synthetic_results();
                run.scenario.partitions_per_topic = partitions;
                // Throughput falls as partitions grow.
                run.measured_seconds = 10.0 * (index + 1) as f64;
                run
            })
            .collect()
    }

    #[test]
    fn json_has_one_entry_per_partition_count() {
        let json: serde_json::Value =
            serde_json::from_str(&render_sweep_json(&sweep())).expect("valid JSON");
        assert_eq!(json["kind"], "partition-sweep");
        assert_eq!(
            json["partitions_per_topic"],
            serde_json::json!([1, 10, 1000])
        );
        let runs = json["runs"].as_array().expect("runs");
        assert_eq!(runs.len(), 3);
        assert_eq!(runs[2]["partitions_per_topic"], 1000);
        assert_eq!(runs[2]["partitions"], 1000);
        assert_eq!(runs[0]["produce_messages_per_second"], 1000.0);
        assert_eq!(runs[1]["produce_messages_per_second"], 500.0);
        assert_eq!(runs[0]["publish_latency_us"]["count"], 10_000);
        assert!(runs[0]["publish_latency_us"]["p999_us"].is_u64());
        assert_eq!(runs[0]["problems"], 10);
    }

    #[test]
    fn markdown_has_a_row_per_count_the_plot_and_the_problems() {
        let text = render_sweep_markdown(&sweep(), "s.svg");
        assert!(text.starts_with("# corelog bench partition sweep: default\n"));
        assert!(
            text.contains("| partitions_per_topic | swept: 1, 10, 1000 |"),
            "{text}"
        );
        assert!(text.contains(
            "| partitions | produce msgs/s | produce MB/s | consume msgs/s | consume MB/s | \
             publish p50 | publish p99 | publish p99.9 | end-to-end p99 | problems |"
        ));
        assert!(text.contains("| 1 | 1000 | 1.02 | 999 |"), "{text}");
        assert!(text.contains("| 1000 | 333 |"), "{text}");
        assert!(text.contains("![throughput](s.svg)"));
        assert!(text.contains("- 10 partitions: PROBLEMS: 10 unconsumed"));
    }

    #[test]
    fn plot_has_a_log_axis_and_both_series() {
        let svg = render_sweep_plot(&sweep());
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("<polyline data-series=\"produce\""));
        assert!(svg.contains("<polyline data-series=\"consume\""));
        for label in [">1<", ">10<", ">100<", ">1,000<"] {
            assert!(svg.contains(label), "tick {label} missing");
        }
        assert_eq!(svg.matches("<circle").count(), 6);
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
        // Decades are evenly spaced.
        let one = x_of_partitions(1, (0, 3));
        let ten = x_of_partitions(10, (0, 3));
        let hundred = x_of_partitions(100, (0, 3));
        assert!((ten - one - (hundred - ten)).abs() < 1e-9);
    }

    #[test]
    fn one_count_and_nothing_measured_still_draw() {
        let mut run = empty_results();
        run.scenario.partitions_per_topic = 100;
        let svg = render_sweep_plot(std::slice::from_ref(&run));
        assert!(svg.contains(">100<") && svg.contains(">1,000<"));
        assert!(!svg.contains("<polyline"));
        assert!(svg.contains("produce: not measured"));
        let text = render_sweep_markdown(std::slice::from_ref(&run), "x.svg");
        assert!(text.contains("| 100 | n/a |"), "{text}");
        assert_eq!(decades(&[]), (0, 1));
        assert_eq!(with_thousands(10_000), "10,000");
        assert_eq!(with_thousands(7), "7");
    }
}
