//! `corelog bench`: the load generator. Picks a scenario (a TOML file or a
//! name under `bench/scenarios/`), applies flag overrides, runs it against an
//! embedded corelog or `--brokers`, prints the latency table and writes the
//! report files; `--compare` runs the same scenario against several targets,
//! `--sweep-partitions` runs it at several partition counts into one report.

use std::io;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::config::FlushPolicy;
use crate::loadgen::report::{
    print_summary_table, report_file_stem, write_reports, write_slow_publishes, write_sweep_report,
};
use crate::loadgen::results::BenchResults;
use crate::loadgen::runner::{self, RunPlan, Target};
use crate::loadgen::scenario::{CompressionCodec, KeyDistribution, MessageSize, Rate, Scenario};
use crate::server::broker::default_shard_count;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Scenario: a TOML file, or the name of one in bench/scenarios/ (default: built-in 1 KiB acks=1 max).
    #[arg(long)]
    pub scenario: Option<String>,
    /// Kafka-compatible bootstrap servers (host:port[,..]); without it an embedded corelog is started.
    #[arg(long, env = "CORELOG_BENCH_BROKERS")]
    pub brokers: Option<String>,
    /// Run the same scenario against each target in turn ("embedded" or host:port[,..]) and compare.
    #[arg(long, num_args = 1..)]
    pub compare: Vec<String>,
    /// Run the scenario once per partition count (partitions per topic, e.g.
    /// 1,10,100,1000,10000; fresh topics each time) and write one sweep report.
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["partitions", "compare"])]
    pub sweep_partitions: Vec<u32>,
    /// CPUs for the load generator, e.g. "1" or "2,3" (default: the second half of the CPUs).
    #[arg(long, value_delimiter = ',')]
    pub loadgen_cores: Vec<usize>,
    /// CPUs for the embedded broker (default: the first half, at least one).
    #[arg(long, value_delimiter = ',')]
    pub broker_cores: Vec<usize>,
    /// Flush policy of the embedded broker.
    #[arg(long, default_value = "always")]
    pub flush: FlushPolicy,
    #[arg(long)]
    pub topics: Option<u32>,
    #[arg(long)]
    pub partitions: Option<u32>,
    /// Replicas per partition of the topics the run creates (default: the
    /// broker's --default-replication-factor).
    #[arg(long)]
    pub replication_factor: Option<i16>,
    /// Message size in bytes (fixed), or "uniform:MIN:MAX", or "normal:MEAN:STDDEV".
    #[arg(long)]
    pub message_size: Option<String>,
    /// none | round-robin | random
    #[arg(long)]
    pub keys: Option<String>,
    #[arg(long)]
    pub producers: Option<u32>,
    /// Consumers per consumer group.
    #[arg(long)]
    pub consumers: Option<u32>,
    #[arg(long)]
    pub consumer_groups: Option<u32>,
    #[arg(long)]
    pub batch_size: Option<usize>,
    #[arg(long)]
    pub linger_ms: Option<u64>,
    /// 0, 1 or all
    #[arg(long)]
    pub acks: Option<String>,
    /// Idempotent producers (producer ids and sequence numbers), as the Java client's default.
    #[arg(long)]
    pub idempotent: bool,
    /// Consumers fetch without incremental fetch sessions (KIP-227): every
    /// fetch names every partition (`fetch_sessions = false` in the TOML).
    #[arg(long)]
    pub no_fetch_sessions: bool,
    /// none | gzip | snappy | lz4 | zstd
    #[arg(long)]
    pub compression: Option<String>,
    /// max, <N> (messages/s), <N>msg/s or <N>MB/s
    #[arg(long)]
    pub rate: Option<String>,
    /// Warm-up seconds (not measured).
    #[arg(long)]
    pub warmup: Option<f64>,
    /// Measured seconds.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Where report files go.
    #[arg(long, default_value = "bench/reports")]
    pub report_dir: PathBuf,
    /// No progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Also write `<report>-slow-publishes.csv`: every measured message whose
    /// publish latency is at least this many µs, with when it was due, sent
    /// and acknowledged in CLOCK_MONOTONIC ns, to line up with a
    /// `perf record -k CLOCK_MONOTONIC` trace of the run
    /// (`bench/tail-attribution.py`). Not with --sweep-partitions.
    #[arg(long, value_name = "MICROSECONDS")]
    pub trace_slow_publishes: Option<u64>,
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// Loads the scenario and applies every flag override.
pub fn build_scenario(args: &BenchArgs) -> io::Result<Scenario> {
    let mut scenario = match &args.scenario {
        None => Scenario::default(),
        Some(name) => {
            let path = if Path::new(name).exists() {
                PathBuf::from(name)
            } else {
                PathBuf::from("bench/scenarios").join(format!("{name}.toml"))
            };
            Scenario::from_file(&path).map_err(|e| invalid(e.to_string()))?
        }
    };
    if let Some(value) = args.topics {
        scenario.topics = value;
    }
    if let Some(value) = args.partitions {
        scenario.partitions_per_topic = value;
    }
    if let Some(value) = args.replication_factor {
        scenario.replication_factor = value;
    }
    if let Some(text) = &args.message_size {
        scenario.message_size = parse_message_size(text)?;
    }
    if let Some(text) = &args.keys {
        scenario.key_distribution = match text.as_str() {
            "none" => KeyDistribution::None,
            "round-robin" => KeyDistribution::RoundRobin,
            "random" => KeyDistribution::Random,
            other => {
                return Err(invalid(format!(
                    "--keys must be none, round-robin or random, got {other}"
                )))
            }
        };
    }
    if let Some(value) = args.producers {
        scenario.producers = value;
    }
    if let Some(value) = args.consumers {
        scenario.consumers_per_group = value;
    }
    if let Some(value) = args.consumer_groups {
        scenario.consumer_groups = value;
    }
    if let Some(value) = args.batch_size {
        scenario.batch_size_bytes = value;
    }
    if let Some(value) = args.linger_ms {
        scenario.linger_ms = value;
    }
    if let Some(text) = &args.acks {
        scenario.acks = match text.as_str() {
            "0" => 0,
            "1" => 1,
            "all" | "-1" => -1,
            other => return Err(invalid(format!("--acks must be 0, 1 or all, got {other}"))),
        };
    }
    if args.idempotent {
        scenario.idempotent = true;
    }
    if args.no_fetch_sessions {
        scenario.fetch_sessions = false;
    }
    if let Some(text) = &args.compression {
        scenario.compression = match text.as_str() {
            "none" => CompressionCodec::None,
            "gzip" => CompressionCodec::Gzip,
            "snappy" => CompressionCodec::Snappy,
            "lz4" => CompressionCodec::Lz4,
            "zstd" => CompressionCodec::Zstd,
            other => return Err(invalid(format!("unknown --compression {other}"))),
        };
    }
    if let Some(text) = &args.rate {
        scenario.rate = parse_rate(text)?;
    }
    if let Some(value) = args.warmup {
        scenario.warmup_seconds = value;
    }
    if let Some(value) = args.duration {
        scenario.duration_seconds = value;
    }
    scenario.validate().map_err(|e| invalid(e.to_string()))?;
    Ok(scenario)
}

pub fn parse_rate(text: &str) -> io::Result<Rate> {
    let bad = || {
        invalid(format!(
            "--rate must be max, <N>, <N>msg/s or <N>MB/s, got {text}"
        ))
    };
    if text == "max" {
        return Ok(Rate::Max);
    }
    if let Some(number) = text.strip_suffix("MB/s") {
        let value = number.trim().parse::<f64>().map_err(|_| bad())?;
        return Ok(Rate::MegabytesPerSecond { value });
    }
    let number = text.strip_suffix("msg/s").unwrap_or(text);
    let value = number.trim().parse::<f64>().map_err(|_| bad())?;
    Ok(Rate::MessagesPerSecond { value })
}

pub fn parse_message_size(text: &str) -> io::Result<MessageSize> {
    let bad = || {
        invalid(format!(
            "--message-size must be N, uniform:MIN:MAX or normal:MEAN:STDDEV, got {text}"
        ))
    };
    let parts: Vec<&str> = text.split(':').collect();
    let number = |s: &str| s.parse::<usize>().map_err(|_| bad());
    match parts.as_slice() {
        [bytes] => Ok(MessageSize::Fixed {
            bytes: number(bytes)?,
        }),
        ["uniform", min, max] => Ok(MessageSize::Uniform {
            min_bytes: number(min)?,
            max_bytes: number(max)?,
        }),
        ["normal", mean, stddev] => Ok(MessageSize::Normal {
            mean_bytes: number(mean)?,
            stddev_bytes: number(stddev)?,
        }),
        _ => Err(bad()),
    }
}

/// Default split: broker on the first half of the CPUs (at least one), load
/// generator on the rest (or sharing CPU 0 on a one-CPU machine).
pub fn split_cores(args: &BenchArgs) -> (Vec<usize>, Vec<usize>) {
    let cpus = default_shard_count();
    let broker_count = (cpus / 2).max(1);
    let broker = if args.broker_cores.is_empty() {
        (0..broker_count).collect()
    } else {
        args.broker_cores.clone()
    };
    let loadgen = if args.loadgen_cores.is_empty() {
        let rest: Vec<usize> = (broker_count..cpus).collect();
        if rest.is_empty() {
            vec![0]
        } else {
            rest
        }
    } else {
        args.loadgen_cores.clone()
    };
    (broker, loadgen)
}

fn target_of(args: &BenchArgs, target_text: &str, broker_cores: &[usize]) -> Target {
    if target_text == "embedded" {
        Target::Embedded {
            cores: broker_cores.to_vec(),
            flush: args.flush,
        }
    } else {
        Target::Brokers(target_text.to_string())
    }
}

pub fn run(args: BenchArgs) -> io::Result<()> {
    let scenario = build_scenario(&args)?;
    let (broker_cores, loadgen_cores) = split_cores(&args);
    if !args.sweep_partitions.is_empty() {
        if args.trace_slow_publishes.is_some() {
            return Err(invalid(
                "--trace-slow-publishes traces one run; it does not go with --sweep-partitions"
                    .to_string(),
            ));
        }
        return run_sweep(&args, &scenario, &broker_cores, &loadgen_cores);
    }
    let targets: Vec<String> = if !args.compare.is_empty() {
        args.compare.clone()
    } else {
        vec![args
            .brokers
            .clone()
            .unwrap_or_else(|| "embedded".to_string())]
    };
    let command_line = std::env::args().collect::<Vec<_>>().join(" ");
    let mut all_results = Vec::new();
    for target_text in &targets {
        let target = target_of(&args, target_text, &broker_cores);
        eprintln!(
            "corelog bench: scenario {} against {target_text}; broker cores {:?}, load generator cores {:?}; \
             {} s warm-up + {} s measured",
            scenario.name,
            if target_text == "embedded" { format!("{broker_cores:?}") } else { "external".into() },
            loadgen_cores,
            scenario.warmup_seconds,
            scenario.duration_seconds
        );
        let plan = RunPlan {
            scenario: scenario.clone(),
            target,
            loadgen_cores: loadgen_cores.clone(),
            command_line: command_line.clone(),
            progress: !args.quiet,
            slow_publish_us: args.trace_slow_publishes,
        };
        let results = runner::run(&plan)?;
        println!("{}", print_summary_table(&results));
        // With --compare, name each target's files after it too, so two runs
        // finishing in the same second cannot overwrite each other.
        let stem_name = if targets.len() > 1 {
            format!("{}-{target_text}", scenario.name)
        } else {
            scenario.name.clone()
        };
        let stem = report_file_stem(&stem_name, std::time::SystemTime::now());
        let paths = write_reports(&results, &args.report_dir, &stem)?;
        for path in paths.all() {
            eprintln!("wrote {}", path.display());
        }
        if args.trace_slow_publishes.is_some() {
            let path = write_slow_publishes(&results, &args.report_dir, &stem)?;
            eprintln!(
                "wrote {} ({} slow publishes)",
                path.display(),
                results.measurements.slow_publishes.len()
            );
        }
        all_results.push((target_text.clone(), results));
    }
    if all_results.len() > 1 {
        let table = comparison_table(&all_results);
        println!("{table}");
        let path = args.report_dir.join(format!(
            "{}-compare.md",
            report_file_stem(&scenario.name, std::time::SystemTime::now())
        ));
        std::fs::write(&path, &table)?;
        eprintln!("wrote {}", path.display());
    }
    if all_results.iter().any(|(_, r)| r.problems() > 0) {
        return Err(io::Error::other(
            "the run saw errors, loss, gaps or duplicates (see the report)",
        ));
    }
    Ok(())
}

/// `--sweep-partitions`: the scenario once per partition count (ascending,
/// each on fresh topics: new names per run, and a new embedded broker), each
/// run's table printed, then one report over all of them. A run that fails
/// ends the sweep; the runs before it are still reported.
fn run_sweep(
    args: &BenchArgs,
    base: &Scenario,
    broker_cores: &[usize],
    loadgen_cores: &[usize],
) -> io::Result<()> {
    let mut counts = args.sweep_partitions.clone();
    counts.sort_unstable();
    counts.dedup();
    if counts.first() == Some(&0) {
        return Err(invalid(
            "--sweep-partitions counts must be at least 1".to_string(),
        ));
    }
    let target_text = args
        .brokers
        .clone()
        .unwrap_or_else(|| "embedded".to_string());
    let command_line = std::env::args().collect::<Vec<_>>().join(" ");
    let mut runs = Vec::with_capacity(counts.len());
    let mut failure = None;
    for (step, &partitions) in counts.iter().enumerate() {
        let scenario = Scenario {
            partitions_per_topic: partitions,
            ..base.clone()
        };
        eprintln!(
            "corelog bench: partition sweep {}/{}: scenario {} with {partitions} partitions per \
             topic against {target_text}; {} s warm-up + {} s measured",
            step + 1,
            counts.len(),
            scenario.name,
            scenario.warmup_seconds,
            scenario.duration_seconds
        );
        let plan = RunPlan {
            scenario,
            target: target_of(args, &target_text, broker_cores),
            loadgen_cores: loadgen_cores.to_vec(),
            command_line: command_line.clone(),
            progress: !args.quiet,
            slow_publish_us: None,
        };
        match runner::run(&plan) {
            Ok(results) => {
                println!("partitions per topic: {partitions}");
                println!("{}", print_summary_table(&results));
                runs.push(results);
            }
            Err(error) => {
                failure = Some(io::Error::new(
                    error.kind(),
                    format!(
                        "the sweep's run with {partitions} partitions per topic failed: {error}"
                    ),
                ));
                break;
            }
        }
    }
    if !runs.is_empty() {
        let stem = report_file_stem(
            &format!("{}-partition-sweep", base.name),
            std::time::SystemTime::now(),
        );
        let paths = write_sweep_report(&runs, &args.report_dir, &stem)?;
        for path in paths.all() {
            eprintln!("wrote {}", path.display());
        }
    }
    if let Some(error) = failure {
        return Err(error);
    }
    if runs.iter().any(|results| results.problems() > 0) {
        return Err(io::Error::other(
            "a run of the sweep saw errors, loss, gaps or duplicates (see the report)",
        ));
    }
    Ok(())
}

/// Side-by-side Markdown table of several targets running one scenario:
/// throughput both ways, publish and end-to-end percentiles, problems. With
/// exactly two targets a last column gives the first's figure over the
/// second's (e.g. corelog / Kafka: throughput above 1 and latency below 1 are
/// the first target's wins).
pub fn comparison_table(results: &[(String, BenchResults)]) -> String {
    let ratio_column = results.len() == 2;
    let mut table = String::from("| metric |");
    for (target, _) in results {
        table.push_str(&format!(" {target} |"));
    }
    if ratio_column {
        table.push_str(&format!(" {} / {} |", results[0].0, results[1].0));
    }
    table.push_str("\n|---|");
    table.push_str(&"---:|".repeat(results.len() + usize::from(ratio_column)));
    table.push('\n');
    fn ms(us: u64) -> f64 {
        us as f64 / 1000.0
    }
    // (row name, decimals, value)
    type Row = (&'static str, usize, fn(&BenchResults) -> f64);
    let rows: [Row; 13] = [
        ("produce msg/s", 0, |r| r.produce_messages_per_second()),
        ("produce MB/s", 1, |r| r.produce_megabytes_per_second()),
        ("consume msg/s", 0, |r| r.consume_messages_per_second()),
        ("consume MB/s", 1, |r| r.consume_megabytes_per_second()),
        ("publish p50 (ms)", 3, |r| ms(r.publish_summary().p50_us)),
        ("publish p99 (ms)", 3, |r| ms(r.publish_summary().p99_us)),
        ("publish p99.9 (ms)", 3, |r| ms(r.publish_summary().p999_us)),
        ("publish max (ms)", 3, |r| ms(r.publish_summary().max_us)),
        ("end-to-end p50 (ms)", 3, |r| {
            ms(r.end_to_end_summary().p50_us)
        }),
        ("end-to-end p99 (ms)", 3, |r| {
            ms(r.end_to_end_summary().p99_us)
        }),
        ("end-to-end p99.9 (ms)", 3, |r| {
            ms(r.end_to_end_summary().p999_us)
        }),
        ("end-to-end max (ms)", 3, |r| {
            ms(r.end_to_end_summary().max_us)
        }),
        ("problems", 0, |r| r.problems() as f64),
    ];
    for (name, decimals, value) in rows {
        table.push_str(&format!("| {name} |"));
        for (_, result) in results {
            table.push_str(&format!(" {:.decimals$} |", value(result)));
        }
        if ratio_column {
            let (first, second) = (value(&results[0].1), value(&results[1].1));
            if name == "problems" || second == 0.0 {
                table.push_str(" - |");
            } else {
                table.push_str(&format!(" {:.2} |", first / second));
            }
        }
        table.push('\n');
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One second measured; latencies below 2,048 µs are exact at 3 significant digits.
    fn results_of(messages_per_second: u64, latency_us: u64) -> BenchResults {
        use crate::loadgen::results::{record_latency, Measurements, RunInfo};
        let mut measurements = Measurements {
            produced_messages: messages_per_second,
            produced_bytes: messages_per_second * 1000,
            consumed_messages: messages_per_second,
            consumed_bytes: messages_per_second * 1000,
            ..Measurements::default()
        };
        record_latency(&mut measurements.publish_latency_us, latency_us);
        record_latency(&mut measurements.end_to_end_latency_us, 2 * latency_us);
        BenchResults {
            scenario: Scenario::default(),
            info: RunInfo {
                started_at_utc: String::new(),
                host: String::new(),
                kernel: String::new(),
                cpus: 2,
                corelog_version: String::new(),
                git_commit: String::new(),
                target: String::new(),
                broker_cores: String::new(),
                loadgen_cores: String::new(),
                command_line: String::new(),
            },
            measured_seconds: 1.0,
            measurements,
            unconsumed_messages: 0,
        }
    }

    #[test]
    fn comparison_of_two_targets_shows_both_directions_and_the_ratio() {
        let table = comparison_table(&[
            ("embedded".to_string(), results_of(200_000, 500)),
            ("127.0.0.1:9092".to_string(), results_of(100_000, 1_000)),
        ]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "| metric | embedded | 127.0.0.1:9092 | embedded / 127.0.0.1:9092 |"
        );
        assert_eq!(lines[1], "|---|---:|---:|---:|");
        let row = |name: &str| {
            lines
                .iter()
                .find(|line| line.starts_with(&format!("| {name} |")))
                .copied()
                .unwrap_or_else(|| panic!("no row {name} in\n{table}"))
        };
        assert_eq!(
            row("produce msg/s"),
            "| produce msg/s | 200000 | 100000 | 2.00 |"
        );
        assert_eq!(
            row("consume MB/s"),
            "| consume MB/s | 200.0 | 100.0 | 2.00 |"
        );
        assert_eq!(
            row("publish p99.9 (ms)"),
            "| publish p99.9 (ms) | 0.500 | 1.000 | 0.50 |"
        );
        assert_eq!(
            row("end-to-end max (ms)"),
            "| end-to-end max (ms) | 1.000 | 2.000 | 0.50 |"
        );
        assert_eq!(row("problems"), "| problems | 0 | 0 | - |");
    }

    #[test]
    fn comparison_of_three_targets_has_no_ratio_column() {
        let table = comparison_table(&[
            ("a".to_string(), results_of(1, 1)),
            ("b".to_string(), results_of(1, 1)),
            ("c".to_string(), results_of(1, 1)),
        ]);
        assert!(table.starts_with("| metric | a | b | c |\n|---|---:|---:|---:|\n"));
    }

    #[test]
    fn rates_parse_in_every_form() {
        assert_eq!(parse_rate("max").ok(), Some(Rate::Max));
        assert_eq!(
            parse_rate("5000").ok(),
            Some(Rate::MessagesPerSecond { value: 5000.0 })
        );
        assert_eq!(
            parse_rate("5000msg/s").ok(),
            Some(Rate::MessagesPerSecond { value: 5000.0 })
        );
        assert_eq!(
            parse_rate("20MB/s").ok(),
            Some(Rate::MegabytesPerSecond { value: 20.0 })
        );
        assert!(parse_rate("fast").is_err());
    }

    #[test]
    fn message_sizes_parse() {
        assert_eq!(
            parse_message_size("100").ok(),
            Some(MessageSize::Fixed { bytes: 100 })
        );
        assert_eq!(
            parse_message_size("uniform:10:20").ok(),
            Some(MessageSize::Uniform {
                min_bytes: 10,
                max_bytes: 20
            })
        );
        assert!(parse_message_size("weird:1").is_err());
    }
}
