//! The bounded wait of this binary: ask again every so often until an answer is good or a
//! deadline passes, then fail with what was seen last. Cluster tests wait on things that
//! take seconds and vary with the host (elections, broker sessions, catch-up), so every
//! wait has a bound, and a timed-out wait says what it was waiting for and what it got
//! instead (`common::poll_until` has a fixed pace and says only the former).

use std::thread;
use std::time::{Duration, Instant};

/// Calls `attempt` every `interval` until it returns `Ok`, and returns that value. After
/// `timeout` panics with `what` and the last `Err`: what `attempt` saw instead (the last
/// views, answers or problem), so a failure leaves a trail.
///
/// ```ignore
/// let leader = poll_until_ok(FAILOVER_TIMEOUT, Duration::from_millis(100), "a leader", || {
///     match leader_of(&bootstrap) {
///         Some(leader) => Ok(leader),
///         None => Err("no leader in Metadata".to_string()),
///     }
/// });
/// ```
pub(crate) fn poll_until_ok<T>(
    timeout: Duration,
    interval: Duration,
    what: &str,
    mut attempt: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match attempt() {
            Ok(value) => return value,
            Err(last) => last,
        };
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?}: {what}; {last}"
        );
        thread::sleep(interval);
    }
}
