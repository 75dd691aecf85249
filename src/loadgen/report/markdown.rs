//! `<stem>.md`: the report people read and check in under `bench/reports/`:
//! where and how the run happened, the scenario, the results, the problems,
//! the latency plot and links to the full `.hgrm` distributions.

use super::format::{
    counters, format_megabytes_per_second, format_messages_per_second, latency_cells, latency_rows,
    latency_summary, markdown_cell, problems_line, Throughput, PERCENTILE_COLUMNS,
};
use super::ReportFileNames;
use crate::loadgen::results::BenchResults;
use crate::loadgen::scenario::{CompressionCodec, KeyDistribution, MessageSize, Rate, Scenario};

const PLOTTER_URL: &str = "https://hdrhistogram.github.io/HdrHistogram/plotFiles.html";

pub(super) fn render_markdown(results: &BenchResults, names: &ReportFileNames) -> String {
    let scenario = &results.scenario;
    let mut text = format!("# corelog bench: {}\n\n", scenario.name);
    if !scenario.description.is_empty() {
        text.push_str(&format!("{}\n\n", scenario.description));
    }
    text.push_str(&run_section(results));
    text.push_str(&scenario_section(scenario, None));
    text.push_str(&results_section(results));
    text.push_str(&plot_section(names));
    text
}

pub(super) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut text = format!("| {} |\n", header.join(" | "));
    let alignments: Vec<&str> = header
        .iter()
        .enumerate()
        .map(|(column, _)| if column == 0 { "---" } else { "---:" })
        .collect();
    text.push_str(&format!("|{}|\n", alignments.join("|")));
    for row in rows {
        let cells: Vec<String> = row.iter().map(|cell| markdown_cell(cell)).collect();
        text.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    text.push('\n');
    text
}

/// Two columns, both left-aligned: settings and facts rather than numbers.
fn key_value_table(header: [&str; 2], rows: &[(&str, String)]) -> String {
    let mut text = format!("| {} | {} |\n|---|---|\n", header[0], header[1]);
    for (key, value) in rows {
        text.push_str(&format!("| {key} | {} |\n", markdown_cell(value)));
    }
    text.push('\n');
    text
}

fn code(text: &str) -> String {
    // A backtick inside would end the span early; a double-backtick span with
    // padding holds single backticks.
    if text.contains('`') {
        format!("`` {text} ``")
    } else {
        format!("`{text}`")
    }
}

pub(super) fn run_section(results: &BenchResults) -> String {
    let info = &results.info;
    let rows = [
        ("started (UTC)", info.started_at_utc.clone()),
        ("host", info.host.clone()),
        ("cores", info.cpus.to_string()),
        ("kernel", info.kernel.clone()),
        (
            "corelog",
            format!("{} ({})", info.corelog_version, info.git_commit),
        ),
        ("target", info.target.clone()),
        ("broker cores", info.broker_cores.clone()),
        ("loadgen cores", info.loadgen_cores.clone()),
        ("command line", code(&info.command_line)),
        (
            "measured",
            format!(
                "{:.1} s, after {:.1} s of warm-up",
                results.measured_seconds, results.scenario.warmup_seconds
            ),
        ),
    ];
    format!("## Run\n\n{}", key_value_table(["run", ""], &rows))
}

/// Every knob of the scenario under its TOML key, so a row can be copied
/// back into a scenario file. Destructured without `..`: a new knob does not
/// compile until the report shows it. `partitions_shown` replaces the
/// partitions_per_topic value (a sweep shows every count it ran).
pub(super) fn scenario_section(scenario: &Scenario, partitions_shown: Option<String>) -> String {
    let Scenario {
        name,
        description: _,
        topics,
        partitions_per_topic,
        replication_factor,
        message_size,
        key_distribution,
        key_count,
        producers,
        consumers_per_group,
        consumer_groups,
        batch_size_bytes,
        linger_ms,
        acks,
        compression,
        rate,
        max_in_flight,
        idempotent,
        fetch_sessions,
        warmup_seconds,
        duration_seconds,
    } = scenario;
    let message_size = match message_size {
        MessageSize::Fixed { bytes } => format!("{bytes} B"),
        MessageSize::Uniform {
            min_bytes,
            max_bytes,
        } => format!("uniform {min_bytes}..={max_bytes} B"),
        MessageSize::Normal {
            mean_bytes,
            stddev_bytes,
        } => format!("normal, mean {mean_bytes} B, stddev {stddev_bytes} B"),
    };
    let keys = match key_distribution {
        KeyDistribution::None => {
            "none (sticky: one partition's batch filled, then the next)".to_string()
        }
        KeyDistribution::RoundRobin => format!("round-robin over {key_count} keys"),
        KeyDistribution::Random => format!("random out of {key_count} keys"),
    };
    let acks = match acks {
        0 => "0 (no acknowledgement)".to_string(),
        1 => "1 (leader)".to_string(),
        -1 => "-1 (all in-sync replicas)".to_string(),
        other => other.to_string(),
    };
    let compression = match compression {
        CompressionCodec::None => "none",
        CompressionCodec::Gzip => "gzip",
        CompressionCodec::Snappy => "snappy",
        CompressionCodec::Lz4 => "lz4",
        CompressionCodec::Zstd => "zstd",
    };
    let rate = match (rate, scenario.target_messages_per_second()) {
        (Rate::Max, _) => "max (as fast as acknowledgements come back)".to_string(),
        (Rate::MessagesPerSecond { value }, _) => format!("{value} msgs/s"),
        (Rate::MegabytesPerSecond { value }, Some(messages)) => {
            format!("{value} MB/s (≈ {messages:.0} msgs/s)")
        }
        (Rate::MegabytesPerSecond { value }, None) => format!("{value} MB/s"),
    };
    let rows = [
        ("name", name.clone()),
        ("topics", topics.to_string()),
        (
            "partitions_per_topic",
            partitions_shown.unwrap_or_else(|| partitions_per_topic.to_string()),
        ),
        (
            "replication_factor",
            match replication_factor {
                -1 => "-1 (the broker's default)".to_string(),
                factor => factor.to_string(),
            },
        ),
        ("message_size", message_size),
        ("key_distribution", keys),
        ("producers", producers.to_string()),
        ("consumer_groups", consumer_groups.to_string()),
        ("consumers_per_group", consumers_per_group.to_string()),
        ("batch_size_bytes", batch_size_bytes.to_string()),
        ("linger_ms", linger_ms.to_string()),
        ("acks", acks),
        ("compression", compression.to_string()),
        ("rate", rate),
        ("max_in_flight", max_in_flight.to_string()),
        ("idempotent", idempotent.to_string()),
        ("fetch_sessions", fetch_sessions.to_string()),
        ("warmup_seconds", warmup_seconds.to_string()),
        ("duration_seconds", duration_seconds.to_string()),
    ];
    format!(
        "## Scenario\n\n{}",
        key_value_table(["setting", "value"], &rows)
    )
}

fn results_section(results: &BenchResults) -> String {
    let mut text = String::from("## Results\n\n");
    text.push_str(
        "Publish latency runs from a message's scheduled send time to its acknowledgement \
         (corrected for coordinated omission); end-to-end latency from its produce timestamp \
         to its receipt by a consumer.\n\n",
    );
    let mut header = vec!["latency"];
    header.extend(PERCENTILE_COLUMNS.iter().map(|(name, _)| *name));
    header.push("samples");
    let latency: Vec<Vec<String>> = latency_rows(results)
        .into_iter()
        .map(|(label, histogram)| {
            let mut row = vec![label.to_string()];
            row.extend(latency_cells(latency_summary(histogram).as_ref()));
            row.push(histogram.len().to_string());
            row
        })
        .collect();
    text.push_str(&table(&header, &latency));

    let throughput = Throughput::of(results);
    let measurements = &results.measurements;
    let rates = vec![
        vec![
            "produce".to_string(),
            format_messages_per_second(throughput.produce_messages_per_second),
            format_megabytes_per_second(throughput.produce_megabytes_per_second),
            measurements.produced_messages.to_string(),
        ],
        vec![
            "consume".to_string(),
            format_messages_per_second(throughput.consume_messages_per_second),
            format_megabytes_per_second(throughput.consume_megabytes_per_second),
            measurements.consumed_messages.to_string(),
        ],
    ];
    text.push_str(&table(
        &["throughput", "msgs/s", "MB/s", "messages"],
        &rates,
    ));

    let counters = counters(results);
    let counter_header: Vec<&str> = counters.iter().map(|(name, _)| *name).collect();
    let counter_values = vec![counters
        .iter()
        .map(|(_, count)| count.to_string())
        .collect()];
    text.push_str(&table(&counter_header, &counter_values));

    match problems_line(results) {
        Some(problems) => text.push_str(&format!("**{problems}**\n\n")),
        None => text.push_str(
            "No problems: no produce errors, order violations, duplicates or unconsumed \
             messages.\n\n",
        ),
    }
    text
}

/// A relative link target; CommonMark needs `<...>` around one with spaces
/// or parentheses (stems from `report_file_stem` never have them).
pub(super) fn link(name: &str) -> String {
    if name.contains([' ', '(', ')']) {
        format!("<{name}>")
    } else {
        name.to_string()
    }
}

fn plot_section(names: &ReportFileNames) -> String {
    format!(
        "## Latency by percentile\n\n\
         ![latency]({svg})\n\n\
         Full distributions: [publish]({publish}), [end-to-end]({end_to_end}), in \
         HdrHistogram's percentile distribution format with values in **milliseconds** \
         (3 decimals); open them with the [HdrHistogram plotter]({PLOTTER_URL}) to compare \
         runs. Summaries above and in [the JSON]({json}) are in microseconds.\n",
        svg = link(&names.svg),
        publish = link(&names.publish_hgrm),
        end_to_end = link(&names.end_to_end_hgrm),
        json = link(&names.json),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::report::test_support::{empty_results, synthetic_results};

    fn render(results: &BenchResults) -> String {
        render_markdown(results, &ReportFileNames::new("default-20250301T140502Z"))
    }

    #[test]
    fn has_run_info_scenario_results_and_plot() {
        let text = render(&synthetic_results());
        assert!(text.starts_with("# corelog bench: default\n"));
        for expected in [
            "| host | bench-01 |",
            "| cores | 16 |",
            "| kernel | 6.8.0-45-generic |",
            "| corelog | 0.1.0 (38d85e7) |",
            "| broker cores | 0-3 |",
            "| loadgen cores | 8-11 |",
            // The pipe in the command line must not split the cell.
            "| command line | `corelog bench --scenario bench/scenarios/default.toml \\| tee log` |",
            "| partitions_per_topic | 6 |",
            "| message_size | 1024 B |",
            "| acks | 1 (leader) |",
            "| latency | p50 | p90 | p99 | p99.9 | p99.99 | max | samples |",
            "| produce | 1000 | 1.02 | 10000 |",
            "| errors | retries | order violations | duplicates | unconsumed | session restarts |",
            "| 0 | 3 | 0 | 0 | 10 | 0 |",
            "**PROBLEMS: 10 unconsumed messages",
            "![latency](default-20250301T140502Z.svg)",
            "[publish](default-20250301T140502Z-publish.hgrm)",
            "[end-to-end](default-20250301T140502Z-e2e.hgrm)",
            "milliseconds",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        let publish_row = text
            .lines()
            .find(|line| line.starts_with("| publish latency |"))
            .expect("publish row");
        assert!(publish_row.contains(" µs |") && publish_row.ends_with("| 10000 |"));
    }

    #[test]
    fn an_empty_run_has_not_available_cells_and_no_problems() {
        let text = render(&empty_results());
        assert!(text.contains("| end-to-end latency | n/a | n/a | n/a | n/a | n/a | n/a | 0 |"));
        assert!(text.contains("| consume | n/a | n/a | 0 |"));
        assert!(text.contains("No problems"));
        assert!(!text.contains("PROBLEMS"));
    }

    #[test]
    fn links_with_spaces_are_bracketed() {
        assert_eq!(link("a b.svg"), "<a b.svg>");
        assert_eq!(link("a-b.svg"), "a-b.svg");
    }
}
