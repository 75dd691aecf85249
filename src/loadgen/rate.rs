//! Open-loop rate control corrected for coordinated omission. Each producer
//! owns a schedule: message `k` is *due* at `start + k * interval`. A producer
//! that falls behind (slow acks, a stalled broker) still stamps each message
//! with its due time, not the time it finally got sent, so the stall shows up
//! in publish latency instead of silently thinning the load (Gil Tene's
//! "coordinated omission"). Pure arithmetic on nanosecond clocks.

/// The send schedule of one producer.
#[derive(Debug, Clone)]
pub struct OpenLoopSchedule {
    start_ns: u64,
    interval_ns: f64,
    issued: u64,
}

impl OpenLoopSchedule {
    /// `messages_per_second` for this producer alone, starting at `start_ns`.
    pub fn new(start_ns: u64, messages_per_second: f64) -> OpenLoopSchedule {
        let interval_ns = if messages_per_second > 0.0 {
            1e9 / messages_per_second
        } else {
            f64::INFINITY
        };
        OpenLoopSchedule {
            start_ns,
            interval_ns,
            issued: 0,
        }
    }

    /// When the next message is due.
    pub fn next_due_ns(&self) -> u64 {
        let offset = self.interval_ns * self.issued as f64;
        if offset.is_finite() {
            self.start_ns.saturating_add(offset as u64)
        } else {
            u64::MAX
        }
    }

    /// Takes the next message if it is due at `now_ns`, returning its due
    /// time (the latency origin). Call repeatedly to drain a backlog.
    pub fn take_due(&mut self, now_ns: u64) -> Option<u64> {
        let due = self.next_due_ns();
        if due <= now_ns {
            self.issued += 1;
            Some(due)
        } else {
            None
        }
    }

    /// Messages issued so far.
    pub fn issued(&self) -> u64 {
        self.issued
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_come_due_at_the_rate() {
        let mut schedule = OpenLoopSchedule::new(1_000, 1_000.0); // one per ms
        assert_eq!(schedule.take_due(1_000), Some(1_000));
        assert_eq!(schedule.take_due(1_000), None, "the next is 1 ms later");
        assert_eq!(schedule.take_due(1_001_000), Some(1_001_000));
    }

    #[test]
    fn a_stall_keeps_the_due_times_so_latency_includes_the_wait() {
        let mut schedule = OpenLoopSchedule::new(0, 1_000.0);
        assert_eq!(schedule.take_due(0), Some(0));
        // The sender stalls for 100 ms: 100 messages are now overdue, each
        // keeping its own due time, so their latency is measured from then.
        let now = 100_000_000;
        let mut due_times = Vec::new();
        while let Some(due) = schedule.take_due(now) {
            due_times.push(due);
        }
        assert_eq!(due_times.len(), 100);
        assert_eq!(due_times[0], 1_000_000);
        assert_eq!(*due_times.last().expect("some"), 100_000_000);
        let corrected_latency_of_first = now - due_times[0];
        assert_eq!(corrected_latency_of_first, 99_000_000, "99 ms, not ~0");
    }

    #[test]
    fn zero_rate_never_comes_due() {
        let mut schedule = OpenLoopSchedule::new(0, 0.0);
        assert_eq!(schedule.take_due(u64::MAX - 1), None);
    }
}
