//! openraft's `AsyncRuntime` on glommio: the metadata quorum runs inside the
//! controller shard's executor (shard 0 of a voter node), like every other
//! task of that shard, instead of on a tokio runtime of its own.
//!
//! Tasks openraft spawns (its core loop, one replication task per follower,
//! heartbeats) go into the task queue named by `use_task_queue`: the quorum
//! installs a latency-sensitive queue there, so client and partition work on
//! the same shard cannot starve heartbeats and cost the leadership (openraft
//! issue #1403). Dropping a join handle detaches the task, as tokio does and
//! as openraft expects. Channels come from `channels.rs`; time is
//! `std::time::Instant`, the clock glommio's timers use.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use glommio::timer::Timer;
use glommio::TaskQueueHandle;
use glommio::{LocalExecutor, LocalExecutorBuilder, Placement};
use openraft_rt::{AsyncRuntime, OptionalSend};

use super::channels::{SyncMpsc, SyncMutex, SyncOneshot, SyncWatch};

thread_local! {
    /// Where `spawn` puts openraft's tasks on this executor; `None` means the
    /// executor's default queue.
    static RAFT_TASK_QUEUE: Cell<Option<TaskQueueHandle>> = const { Cell::new(None) };
}

/// Makes every task openraft spawns from now on, on this executor, run in
/// `queue`. Called once by the quorum before it starts the Raft node.
pub fn use_task_queue(queue: TaskQueueHandle) {
    RAFT_TASK_QUEUE.with(|cell| cell.set(Some(queue)));
}

/// The runtime handle: a glommio executor for the tests that need a runtime
/// of their own (`new`/`block_on`); inside the broker, openraft only uses
/// the static functions and runs on the shard's executor.
pub struct GlommioRuntime {
    executor: LocalExecutor,
}

impl fmt::Debug for GlommioRuntime {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("GlommioRuntime").finish()
    }
}

/// A task that ended without a value: glommio closed it (its executor is
/// shutting down). Panics in glommio tasks abort the process, so a join
/// never reports one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskCancelled;

impl fmt::Display for TaskCancelled {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("task cancelled")
    }
}

impl std::error::Error for TaskCancelled {}

/// A detached glommio task's result.
pub struct JoinHandle<T>(glommio::task::JoinHandle<T>);

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, TaskCancelled>;

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(context)
            .map(|output| output.ok_or(TaskCancelled))
    }
}

/// glommio's timer, completing with `()`.
pub struct Sleep(Timer);

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(context).map(|_| ())
    }
}

/// The deadline passed before the future completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

impl fmt::Display for Elapsed {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("deadline elapsed")
    }
}

impl std::error::Error for Elapsed {}

/// A future raced against a timer. The future is boxed so the pair is
/// `Unpin` without unsafe projection; the quorum sets few timeouts.
pub struct Timeout<F> {
    future: Pin<Box<F>>,
    timer: Timer,
}

impl<R, F: Future<Output = R>> Future for Timeout<F> {
    type Output = Result<R, Elapsed>;

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(output) = self.future.as_mut().poll(context) {
            return Poll::Ready(Ok(output));
        }
        Pin::new(&mut self.timer)
            .poll(context)
            .map(|_| Err(Elapsed))
    }
}

fn until(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

impl AsyncRuntime for GlommioRuntime {
    type JoinError = TaskCancelled;
    type JoinHandle<T: OptionalSend + 'static> = JoinHandle<T>;
    type Sleep = Sleep;
    type Instant = Instant;
    type TimeoutError = Elapsed;
    type Timeout<R, T: Future<Output = R> + OptionalSend> = Timeout<T>;
    type ThreadLocalRng = rand::rngs::ThreadRng;

    fn spawn<T>(future: T) -> JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        let queue = RAFT_TASK_QUEUE.with(Cell::get);
        let task = match queue {
            Some(queue) => match glommio::spawn_local_into(future, queue) {
                Ok(task) => task,
                // The queue belongs to another executor or is gone: this is
                // a wiring bug, but openraft cannot take an error here, so
                // the default queue still runs the task.
                Err(error) => unreachable_queue(error),
            },
            None => glommio::spawn_local(future),
        };
        JoinHandle(task.detach())
    }

    fn sleep(duration: Duration) -> Sleep {
        Sleep(Timer::new(duration))
    }

    fn sleep_until(deadline: Instant) -> Sleep {
        Sleep(Timer::new(until(deadline)))
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(
        duration: Duration,
        future: F,
    ) -> Timeout<F> {
        Timeout {
            future: Box::pin(future),
            timer: Timer::new(duration),
        }
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(
        deadline: Instant,
        future: F,
    ) -> Timeout<F> {
        Self::timeout(until(deadline), future)
    }

    fn is_panic(_: &TaskCancelled) -> bool {
        false
    }

    fn thread_rng() -> rand::rngs::ThreadRng {
        rand::rng()
    }

    type Mpsc = SyncMpsc;
    type Watch = SyncWatch;
    type Oneshot = SyncOneshot;
    type Mutex<T: OptionalSend + 'static> = SyncMutex<T>;

    /// A glommio executor of its own, for tests; it needs 512 KiB of
    /// locked memory, like every executor (see `runtime::memlock`).
    fn new(_threads: usize) -> Self {
        let executor = LocalExecutorBuilder::new(Placement::Unbound)
            .io_memory(TEST_IO_MEMORY_BYTES)
            .make();
        match executor {
            Ok(executor) => GlommioRuntime { executor },
            // The trait gives no way to report this; a test runtime that
            // cannot start is a broken test machine.
            Err(error) => panic!("cannot start a glommio executor: {error}"),
        }
    }

    fn block_on<F, T>(&mut self, future: F) -> T
    where
        F: Future<Output = T>,
    {
        self.executor.run(future)
    }
}

/// Registered DMA memory of a test executor: small, so tests fit under the
/// 8 MiB `ulimit -l` with room for the broker's own executors.
const TEST_IO_MEMORY_BYTES: usize = 256 << 10;

#[cold]
fn unreachable_queue<T>(error: glommio::GlommioError<()>) -> glommio::Task<T> {
    panic!("openraft task queue is not on this executor: {error}")
}

#[cfg(test)]
mod tests {
    use openraft_rt::testing::Suite;

    use super::*;

    /// openraft's own conformance suite for runtimes: spawning, timers,
    /// timeouts, every channel and the mutex.
    #[test]
    fn glommio_runtime_passes_openrafts_runtime_suite() {
        Suite::<GlommioRuntime>::test_all();
    }

    #[test]
    fn tasks_run_in_the_installed_queue() {
        let mut runtime = GlommioRuntime::new(1);
        runtime.block_on(async {
            let queue = glommio::executor().create_task_queue(
                glommio::Shares::default(),
                glommio::Latency::Matters(Duration::from_millis(1)),
                "raft-test",
            );
            use_task_queue(queue);
            let seen =
                GlommioRuntime::spawn(
                    async move { glommio::executor().current_task_queue() == queue },
                )
                .await;
            RAFT_TASK_QUEUE.with(|cell| cell.set(None));
            assert_eq!(seen, Ok(true));
        });
    }
}
