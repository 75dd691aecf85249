//! State shared by the load generator's tasks: the run's clock and phases
//! (one `Copy` value every core gets), each core's measurements and live
//! counters (`Rc`, core-local), and the few cross-core totals needed to tell
//! when consumers have read everything (`Arc` atomics; off the broker's path).

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;

use super::results::{new_latency_histogram, Measurements};

/// How long consumers keep reading after producers stop before whatever is
/// still unread counts as lost.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);

/// The run's timeline: warm-up, measurement, end (nanoseconds since start).
#[derive(Debug, Clone, Copy)]
pub struct RunClock {
    pub start: Instant,
    /// Wall-clock µs at `start`, to turn due times into payload timestamps.
    pub wall_start_us: u64,
    pub warmup_end_ns: u64,
    pub end_ns: u64,
    /// CLOCK_MONOTONIC nanoseconds at `start` (the clock `Instant` reads on
    /// Linux, and the one `perf record -k CLOCK_MONOTONIC` stamps events
    /// with), so run times can be lined up with a trace of the same run.
    pub monotonic_start_ns: u64,
}

impl RunClock {
    pub fn new(warmup: Duration, measured: Duration) -> RunClock {
        let wall_start_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        RunClock {
            start: Instant::now(),
            monotonic_start_ns: monotonic_now_ns(),
            wall_start_us,
            warmup_end_ns: warmup.as_nanos() as u64,
            end_ns: (warmup + measured).as_nanos() as u64,
        }
    }

    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Wall-clock µs of a moment given in run nanoseconds.
    pub fn wall_us(&self, run_ns: u64) -> u64 {
        self.wall_start_us + run_ns / 1_000
    }

    /// Run nanoseconds of a wall-clock µs value (saturating at 0).
    pub fn run_ns_of_wall_us(&self, wall_us: u64) -> u64 {
        wall_us.saturating_sub(self.wall_start_us) * 1_000
    }

    /// CLOCK_MONOTONIC nanoseconds of a moment given in run nanoseconds.
    pub fn monotonic_ns(&self, run_ns: u64) -> u64 {
        self.monotonic_start_ns + run_ns
    }

    pub fn is_measured(&self, run_ns: u64) -> bool {
        run_ns >= self.warmup_end_ns && run_ns < self.end_ns
    }
}

/// CLOCK_MONOTONIC now, in nanoseconds (0 if the clock cannot be read,
/// which Linux does not do for this clock).
fn monotonic_now_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec for the call's duration.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) } != 0 {
        return 0;
    }
    (now.tv_sec as u64) * 1_000_000_000 + now.tv_nsec as u64
}

/// Counters since the last progress line, per core.
#[derive(Debug, Clone)]
pub struct LiveInterval {
    pub produced_messages: u64,
    pub produced_bytes: u64,
    pub consumed_messages: u64,
    pub consumed_bytes: u64,
    pub publish_latency_us: Histogram<u64>,
}

impl Default for LiveInterval {
    fn default() -> Self {
        LiveInterval {
            produced_messages: 0,
            produced_bytes: 0,
            consumed_messages: 0,
            consumed_bytes: 0,
            publish_latency_us: new_latency_histogram(),
        }
    }
}

/// One core's accumulators.
#[derive(Default)]
pub struct CoreState {
    pub measurements: RefCell<Measurements>,
    pub live: RefCell<LiveInterval>,
}

/// Cross-core totals over the whole run (warm-up included).
#[derive(Debug)]
pub struct Totals {
    pub acknowledged_messages: AtomicU64,
    pub producers_running: AtomicUsize,
    /// Messages consumed per consumer group.
    pub consumed_by_group: Vec<AtomicU64>,
}

impl Totals {
    pub fn new(producers: usize, groups: usize) -> Arc<Totals> {
        Arc::new(Totals {
            acknowledged_messages: AtomicU64::new(0),
            producers_running: AtomicUsize::new(producers),
            consumed_by_group: (0..groups).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    /// True once producers stopped and `group` read everything acknowledged.
    pub fn group_caught_up(&self, group: usize) -> bool {
        self.producers_running.load(Ordering::Acquire) == 0
            && self
                .consumed_by_group
                .get(group)
                .map(|c| c.load(Ordering::Acquire))
                .unwrap_or(0)
                >= self.acknowledged_messages.load(Ordering::Acquire)
    }
}
