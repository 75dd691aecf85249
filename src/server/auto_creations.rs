//! Topic auto-creations in flight on shard 0 of a cluster node.
//!
//! Kafka never holds a client's request while it asks the controller for a
//! topic: Metadata answers LEADER_NOT_AVAILABLE and FindCoordinator
//! COORDINATOR_NOT_AVAILABLE while the topic is on its way, and the client asks
//! again. Holding the request would hold every request queued behind it on the
//! same connection too: with no quorum majority, a consumer's ListOffsets and
//! Fetch to a live leader waited behind a FindCoordinator that could not
//! create `__consumer_offsets`.
//!
//! Here each creation runs as a task of its own. The requests that want the
//! topic wait for it at most [`AUTO_CREATE_WAIT`] from the creation's start (a
//! healthy quorum answers in milliseconds, so clients still see the topic on
//! their first request), then answer that it is still on its way. One
//! creation per topic name is in flight at a time, so clients retrying while
//! the quorum has no majority do not pile up more.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures::future::{select, Either, Shared};
use futures::FutureExt;
use glommio::task::JoinHandle;

/// How long after a creation starts its requesters wait for its result.
pub const AUTO_CREATE_WAIT: Duration = Duration::from_secs(1);

/// The creations in flight, by topic name.
#[derive(Default)]
pub struct AutoCreations {
    in_flight: RefCell<HashMap<String, InFlight>>,
}

struct InFlight {
    /// The creation's Kafka error code (`None` if its task was cancelled).
    result: Shared<JoinHandle<i16>>,
    /// When requesters stop waiting for it.
    answer_by: Instant,
    /// Set by the creation's task when it ends (it may end before it is
    /// entered here).
    done: Rc<Cell<bool>>,
}

impl AutoCreations {
    /// The result of creating topic `name`: `create` runs unless a creation
    /// of `name` is already in flight, in which case that one is awaited.
    /// `None` when the creation has not finished by its answer time; it goes
    /// on, and a later call sees its result or starts the next attempt.
    pub async fn create<F>(self: &Rc<Self>, name: &str, create: F) -> Option<i16>
    where
        F: Future<Output = i16> + 'static,
    {
        let (result, answer_by) = self.join_or_start(name, create);
        let left = answer_by.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return result.peek().copied().flatten();
        }
        let timer = glommio::timer::sleep(left);
        match select(result, Box::pin(timer)).await {
            Either::Left((code, _)) => code,
            Either::Right(_) => None,
        }
    }

    /// How many creations are in flight.
    pub fn in_flight(&self) -> usize {
        let in_flight = self.in_flight.borrow();
        in_flight.values().filter(|entry| !entry.done.get()).count()
    }

    fn join_or_start<F>(
        self: &Rc<Self>,
        name: &str,
        create: F,
    ) -> (Shared<JoinHandle<i16>>, Instant)
    where
        F: Future<Output = i16> + 'static,
    {
        if let Some(running) = self.in_flight.borrow().get(name) {
            if !running.done.get() {
                return (running.result.clone(), running.answer_by);
            }
        }
        let done = Rc::new(Cell::new(false));
        let creations = Rc::clone(self);
        let key = name.to_string();
        let finished = Rc::clone(&done);
        let result = glommio::spawn_local(async move {
            let code = create.await;
            finished.set(true);
            let mut in_flight = creations.in_flight.borrow_mut();
            if in_flight
                .get(&key)
                .is_some_and(|entry| Rc::ptr_eq(&entry.done, &finished))
            {
                in_flight.remove(&key);
            }
            code
        })
        .detach()
        .shared();
        let answer_by = Instant::now() + AUTO_CREATE_WAIT;
        let mut in_flight = self.in_flight.borrow_mut();
        in_flight.retain(|_, entry| !entry.done.get());
        in_flight.insert(
            name.to_string(),
            InFlight {
                result: result.clone(),
                answer_by,
                done,
            },
        );
        (result, answer_by)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::memlock::run_on_test_executor as run;

    #[test]
    fn a_quick_creation_answers_its_code() {
        run(|| async {
            let creations = Rc::new(AutoCreations::default());
            let code = creations.create("orders", async { 0 }).await;
            assert_eq!(code, Some(0));
            assert_eq!(creations.in_flight(), 0);
        });
    }

    #[test]
    fn a_slow_creation_answers_none_and_goes_on_alone() {
        run(|| async {
            let creations = Rc::new(AutoCreations::default());
            let started = Rc::new(Cell::new(0));
            let slow = |started: Rc<Cell<u32>>| async move {
                started.set(started.get() + 1);
                glommio::timer::sleep(AUTO_CREATE_WAIT * 2).await;
                36
            };
            let asked = Instant::now();
            let first = creations.create("orders", slow(Rc::clone(&started)));
            let second = creations.create("orders", slow(Rc::clone(&started)));
            let (first, second) = futures::join!(first, second);
            assert_eq!((first, second), (None, None));
            let waited = asked.elapsed();
            assert!(waited >= AUTO_CREATE_WAIT, "{waited:?}");
            assert!(waited < AUTO_CREATE_WAIT * 2, "{waited:?}");

            // Past its answer time a retry answers at once, without a new attempt.
            let asked = Instant::now();
            let third = creations.create("orders", slow(Rc::clone(&started))).await;
            assert_eq!(third, None);
            assert!(asked.elapsed() < Duration::from_millis(100));
            assert_eq!(started.get(), 1);
            assert_eq!(creations.in_flight(), 1);

            // Once it ends it leaves the table; the next call starts anew.
            glommio::timer::sleep(AUTO_CREATE_WAIT + Duration::from_millis(100)).await;
            assert_eq!(creations.in_flight(), 0);
            let fourth = creations.create("orders", async { 0 }).await;
            assert_eq!(fourth, Some(0));
        });
    }
}
