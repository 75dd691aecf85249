//! Runs one scenario end to end: optionally starts an embedded corelog on its
//! own cores, prepares topics, starts one glommio executor per load-generator
//! core with its share of producers and consumers, prints progress once a
//! second, and merges every core's measurements into `BenchResults`.

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::{LocalExecutorBuilder, Placement};

use super::cluster::{prepare_topics, resolve, ClusterView};
use super::consumer::{run_consumer, ConsumerTask};
use super::producer::{run_producer, ProducerTask};
use super::results::{BenchResults, LatencySummary, Measurements, RunInfo};
use super::scenario::Scenario;
use super::shared::{CoreState, LiveInterval, RunClock, Totals};
use crate::config::{BrokerConfig, FlushPolicy};
use crate::runtime::memlock;
use crate::server::broker;

/// Registered DMA memory of a load-generator executor: it does no file I/O.
const LOADGEN_IO_MEMORY_BYTES: usize = 64 << 10;

/// Where the load goes.
#[derive(Debug, Clone)]
pub enum Target {
    /// Start corelog in this process on these cores, with this flush policy.
    Embedded {
        cores: Vec<usize>,
        flush: FlushPolicy,
    },
    /// Any Kafka-compatible cluster: bootstrap `host:port` list.
    Brokers(String),
}

/// Everything one run needs.
#[derive(Debug, Clone)]
pub struct RunPlan {
    pub scenario: Scenario,
    pub target: Target,
    pub loadgen_cores: Vec<usize>,
    pub command_line: String,
    /// Print a progress line to stderr every second.
    pub progress: bool,
    /// Keep the measured messages whose publish latency reaches this many
    /// µs, with their times (`BenchResults::measurements.slow_publishes`).
    pub slow_publish_us: Option<u64>,
}

/// One core's progress for the last second.
struct Tick {
    interval: LiveInterval,
    /// How long the interval ran on its core (about a second; longer when the core is busy).
    seconds: f64,
}

pub fn run(plan: &RunPlan) -> io::Result<BenchResults> {
    plan.scenario
        .validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    let started_at = std::time::SystemTime::now();
    let (embedded, bootstrap, target_text, broker_cores) = match &plan.target {
        Target::Embedded { cores, flush } => {
            let data_dir = std::env::temp_dir().join(format!(
                "corelog-bench-{}-{}",
                std::process::id(),
                started_at
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis())
                    .unwrap_or(0)
            ));
            let mut config = BrokerConfig::for_test(
                "127.0.0.1:0".parse().map_err(io::Error::other)?,
                data_dir.clone(),
            );
            config.shards = cores.len().max(1);
            config.first_cpu = cores.first().copied().unwrap_or(0);
            config.flush = *flush;
            let running = broker::start(config)?;
            let address = running.listen;
            (
                Some((running, data_dir)),
                address,
                format!("embedded corelog at {address}"),
                format_cores(cores),
            )
        }
        Target::Brokers(list) => {
            let first = list.split(',').next().unwrap_or("").trim();
            (None, resolve(first)?, list.clone(), "external".to_string())
        }
    };
    let result = run_against(plan, bootstrap);
    if let Some((running, data_dir)) = embedded {
        running.stop()?;
        let _ = std::fs::remove_dir_all(data_dir);
    }
    let (measurements, measured_seconds, unconsumed) = result?;
    Ok(BenchResults {
        scenario: plan.scenario.clone(),
        info: run_info(plan, started_at, target_text, broker_cores),
        measured_seconds,
        measurements,
        unconsumed_messages: unconsumed,
    })
}

fn run_against(plan: &RunPlan, bootstrap: SocketAddr) -> io::Result<(Measurements, f64, u64)> {
    let scenario = &plan.scenario;
    let run_id = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
    );
    let topics = scenario.topic_names(&run_id);
    let partitions = i32::try_from(scenario.partitions_per_topic).map_err(io::Error::other)?;
    let replication_factor = scenario.replication_factor;
    memlock::raise_memlock_limit(64 << 20);
    let cluster = LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(LOADGEN_IO_MEMORY_BYTES)
        .name("bench-setup")
        .spawn(move || async move {
            prepare_topics(bootstrap, &topics, partitions, replication_factor).await
        })
        .map_err(io::Error::from)?
        .join()
        .map_err(io::Error::from)??;
    let cores = if plan.loadgen_cores.is_empty() {
        vec![0]
    } else {
        plan.loadgen_cores.clone()
    };
    let totals = Totals::new(
        scenario.producers as usize,
        scenario.consumer_groups as usize,
    );
    let clock = RunClock::new(
        Duration::from_secs_f64(scenario.warmup_seconds),
        Duration::from_secs_f64(scenario.duration_seconds),
    );
    let slow_publish_us = plan.slow_publish_us;
    let (tick_sender, tick_receiver) = mpsc::channel::<Tick>();
    let mut handles = Vec::with_capacity(cores.len());
    for (slot, &cpu) in cores.iter().enumerate() {
        let scenario = scenario.clone();
        let cluster = cluster.clone();
        let totals = Arc::clone(&totals);
        let ticks = tick_sender.clone();
        let task = CoreTask {
            slot,
            core_count: cores.len(),
            scenario,
            cluster,
            clock,
            slow_publish_us,
        };
        let handle = LocalExecutorBuilder::new(Placement::Fixed(cpu))
            .io_memory(LOADGEN_IO_MEMORY_BYTES)
            .name(&format!("loadgen-{slot}"))
            .spawn(move || run_core(task, totals, ticks))
            .map_err(io::Error::from)?;
        handles.push(handle);
    }
    drop(tick_sender);
    report_progress(plan.progress, cores.len(), &clock, tick_receiver);
    let mut merged = Measurements::default();
    for handle in handles {
        let measurements = handle.join().map_err(io::Error::from)?;
        merged.merge(&measurements);
    }
    let acknowledged = totals
        .acknowledged_messages
        .load(std::sync::atomic::Ordering::Acquire);
    let unconsumed: u64 = totals
        .consumed_by_group
        .iter()
        .map(|consumed| {
            acknowledged.saturating_sub(consumed.load(std::sync::atomic::Ordering::Acquire))
        })
        .sum();
    Ok((merged, scenario.duration_seconds, unconsumed))
}

/// What one load-generator core runs, and where it stands among the cores.
struct CoreTask {
    slot: usize,
    core_count: usize,
    scenario: Scenario,
    cluster: ClusterView,
    clock: RunClock,
    slow_publish_us: Option<u64>,
}

/// One load-generator core: its producers and consumers, plus a ticker.
async fn run_core(task: CoreTask, totals: Arc<Totals>, ticks: mpsc::Sender<Tick>) -> Measurements {
    let (slot, core_count, clock) = (task.slot, task.core_count, task.clock);
    let scenario = Rc::new(task.scenario);
    let cluster = Rc::new(task.cluster);
    let core = Rc::new(CoreState::default());
    let mut tasks = Vec::new();
    let per_producer_rate = scenario
        .target_messages_per_second()
        .map(|rate| rate / f64::from(scenario.producers));
    for producer_id in (0..scenario.producers).filter(|p| *p as usize % core_count == slot) {
        let task = ProducerTask {
            producer_id,
            messages_per_second: per_producer_rate,
            scenario: Rc::clone(&scenario),
            cluster: Rc::clone(&cluster),
            clock,
            core: Rc::clone(&core),
            totals: Arc::clone(&totals),
            slow_publish_us: task.slow_publish_us,
        };
        tasks.push(glommio::spawn_local(run_producer(task)));
    }
    let consumers = scenario.consumers_per_group as usize;
    let mut consumer_index = 0usize;
    for group in 0..scenario.consumer_groups as usize {
        for consumer in 0..consumers {
            let mine = consumer_index % core_count == slot;
            consumer_index += 1;
            if !mine {
                continue;
            }
            let partitions = cluster
                .partitions
                .iter()
                .enumerate()
                .filter(|(index, _)| index % consumers == consumer)
                .map(|(_, p)| p.clone())
                .collect();
            let task = ConsumerTask {
                group,
                consumer,
                partitions,
                fetch_sessions: scenario.fetch_sessions,
                cluster: Rc::clone(&cluster),
                clock,
                core: Rc::clone(&core),
                totals: Arc::clone(&totals),
            };
            tasks.push(glommio::spawn_local(run_consumer(task)));
        }
    }
    let ticker_core = Rc::clone(&core);
    let ticker = glommio::spawn_local(async move {
        let mut started = Instant::now();
        loop {
            glommio::timer::sleep(Duration::from_secs(1)).await;
            let interval = std::mem::take(&mut *ticker_core.live.borrow_mut());
            let seconds = started.elapsed().as_secs_f64();
            started = Instant::now();
            if ticks.send(Tick { interval, seconds }).is_err() {
                return;
            }
        }
    });
    for task in tasks {
        task.await;
    }
    drop(ticker.cancel());
    let measurements = core.measurements.borrow().clone();
    measurements
}

/// Prints one line a second until every core is done: a line once each core has sent its
/// tick, with rates over the time those ticks covered (not over the printer's own wake-ups,
/// which would put two ticks in one line now and then and show a burst that never happened).
fn report_progress(enabled: bool, cores: usize, clock: &RunClock, ticks: mpsc::Receiver<Tick>) {
    let mut second = LiveInterval::default();
    let mut ticks_in_second = 0;
    let mut seconds_covered = 0.0;
    while let Ok(tick) = ticks.recv() {
        second.produced_messages += tick.interval.produced_messages;
        second.produced_bytes += tick.interval.produced_bytes;
        second.consumed_messages += tick.interval.consumed_messages;
        second.consumed_bytes += tick.interval.consumed_bytes;
        let _ = second
            .publish_latency_us
            .add(&tick.interval.publish_latency_us);
        ticks_in_second += 1;
        seconds_covered += tick.seconds;
        if ticks_in_second < cores {
            continue;
        }
        let elapsed = seconds_covered / cores as f64;
        if enabled && elapsed > 0.0 {
            let p99 = LatencySummary::of(&second.publish_latency_us).p99_us;
            let phase = if clock.now_ns() < clock.warmup_end_ns {
                "warm-up"
            } else if clock.now_ns() < clock.end_ns {
                "measure"
            } else {
                "drain"
            };
            eprintln!(
                "[{:>5.1}s {phase:>7}] produce {:>10.0} msg/s {:>8.1} MB/s  p99 {:>8.2} ms | consume {:>10.0} msg/s {:>8.1} MB/s",
                clock.now_ns() as f64 / 1e9,
                second.produced_messages as f64 / elapsed,
                second.produced_bytes as f64 / 1e6 / elapsed,
                p99 as f64 / 1000.0,
                second.consumed_messages as f64 / elapsed,
                second.consumed_bytes as f64 / 1e6 / elapsed,
            );
        }
        second = LiveInterval::default();
        ticks_in_second = 0;
        seconds_covered = 0.0;
    }
}

fn format_cores(cores: &[usize]) -> String {
    cores
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn run_info(
    plan: &RunPlan,
    started_at: std::time::SystemTime,
    target: String,
    broker_cores: String,
) -> RunInfo {
    let read_trimmed = |path: &str| {
        std::fs::read_to_string(path)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    RunInfo {
        started_at_utc: super::report::utc_compact(
            started_at
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        ),
        host: read_trimmed("/proc/sys/kernel/hostname"),
        kernel: read_trimmed("/proc/sys/kernel/osrelease"),
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        corelog_version: env!("CARGO_PKG_VERSION").to_string(),
        git_commit: option_env!("CORELOG_GIT_COMMIT")
            .unwrap_or("unknown")
            .to_string(),
        target,
        broker_cores,
        loadgen_cores: format_cores(&plan.loadgen_cores),
        command_line: plan.command_line.clone(),
    }
}
