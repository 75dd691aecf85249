//! How far ahead of its data the active segment file is reserved on disk.
//! The step follows the partition's write rate: a partition that needs more
//! space soon after its last extension doubles its step (up to
//! `PREALLOCATE_STEP_MAX_BYTES`, so block allocation rarely sits on a busy
//! write path), one that needs it only after a long pause halves it (down to
//! `PREALLOCATE_STEP_MIN_BYTES`). An idle or tiny partition therefore reserves
//! a few KiB rather than a whole step: thousands of partitions must not fill
//! the disk with reservations (Iggy's lesson with fixed preallocation).
//! Pure: the caller passes the clock.

use std::time::{Duration, Instant};

use super::limits::{PREALLOCATE_STEP_MAX_BYTES, PREALLOCATE_STEP_MIN_BYTES};

/// An extension needed sooner than this after the previous one doubles the step.
pub(crate) const GROW_WITHIN: Duration = Duration::from_secs(1);
/// An extension needed only this long after the previous one halves the step.
pub(crate) const SHRINK_AFTER: Duration = Duration::from_secs(60);

/// The current step and when the file was last extended.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Preallocation {
    step: u64,
    last_extension: Option<Instant>,
}

impl Default for Preallocation {
    fn default() -> Self {
        Preallocation {
            step: PREALLOCATE_STEP_MIN_BYTES,
            last_extension: None,
        }
    }
}

impl Preallocation {
    /// The step of the next extension.
    #[cfg(test)]
    pub(crate) fn step(&self) -> u64 {
        self.step
    }

    /// The file size to reserve so that `[0, needed)` fits, at `now`: `needed`
    /// rounded up to the step, which first adapts to the time since the last
    /// extension. Never past `cap` unless `needed` is.
    pub(crate) fn extend(&mut self, needed: u64, cap: u64, now: Instant) -> u64 {
        if let Some(last) = self.last_extension {
            let since = now.saturating_duration_since(last);
            if since < GROW_WITHIN {
                self.step = (self.step * 2).min(PREALLOCATE_STEP_MAX_BYTES);
            } else if since >= SHRINK_AFTER {
                self.step = (self.step / 2).max(PREALLOCATE_STEP_MIN_BYTES);
            }
        }
        self.last_extension = Some(now);
        needed
            .div_ceil(self.step)
            .saturating_mul(self.step)
            .min(cap.max(needed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn a_new_partition_reserves_the_smallest_step() {
        let mut preallocation = Preallocation::default();
        let now = Instant::now();
        assert_eq!(
            preallocation.extend(4096, 1 << 30, now),
            PREALLOCATE_STEP_MIN_BYTES
        );
    }

    #[test]
    fn a_busy_partition_doubles_its_step_up_to_the_largest() {
        let mut preallocation = Preallocation::default();
        let mut now = Instant::now();
        let mut reserved = preallocation.extend(1, 1 << 31, now);
        let mut steps = vec![preallocation.step()];
        while preallocation.step() < PREALLOCATE_STEP_MAX_BYTES {
            now += Duration::from_millis(10);
            reserved = preallocation.extend(reserved + 1, 1 << 31, now);
            steps.push(preallocation.step());
        }
        assert!(steps.windows(2).all(|pair| pair[1] == pair[0] * 2));
        now += Duration::from_millis(10);
        preallocation.extend(reserved + 1, 1 << 31, now);
        assert_eq!(preallocation.step(), PREALLOCATE_STEP_MAX_BYTES);
    }

    #[test]
    fn a_steady_partition_keeps_its_step_and_a_quiet_one_halves_it() {
        let mut preallocation = Preallocation::default();
        let mut now = Instant::now();
        for _ in 0..4 {
            now += Duration::from_millis(100);
            preallocation.extend(1, 1 << 30, now);
        }
        let grown = preallocation.step();
        assert_eq!(grown, PREALLOCATE_STEP_MIN_BYTES * 8);
        now += Duration::from_secs(5);
        preallocation.extend(1, 1 << 30, now);
        assert_eq!(preallocation.step(), grown, "between the bounds: unchanged");
        now += SHRINK_AFTER;
        preallocation.extend(1, 1 << 30, now);
        assert_eq!(preallocation.step(), grown / 2);
        for _ in 0..10 {
            now += SHRINK_AFTER;
            preallocation.extend(1, 1 << 30, now);
        }
        assert_eq!(preallocation.step(), PREALLOCATE_STEP_MIN_BYTES);
    }

    #[test]
    fn the_reservation_stops_at_the_cap_unless_one_write_needs_more() {
        let mut preallocation = Preallocation::default();
        let now = Instant::now();
        assert_eq!(preallocation.extend(5000, 6000, now), 6000);
        assert_eq!(
            preallocation.extend(9 * MIB, 6000, now + Duration::from_secs(5)),
            9 * MIB
        );
    }
}
