//! Cheap wake-ups of the partition log, kept on the partition's owning shard:
//! produce requests waiting for their offsets to be written or made durable
//! (oneshot senders in a queue ordered by offset, released from the front as
//! the writer task progresses), and fetch requests waiting for the high
//! watermark to move. Dropping a sender answers `Closed` to its waiter.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::rc::{Rc, Weak};
use std::task::{Poll, Waker};

use futures::channel::oneshot;

/// A storage failure, kept so every waiter and later caller gets its own copy
/// (`io::Error` is not `Clone`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StorageFailure {
    pub kind: io::ErrorKind,
    pub message: String,
}

impl StorageFailure {
    pub fn from_error(error: &io::Error) -> StorageFailure {
        StorageFailure {
            kind: error.kind(),
            message: error.to_string(),
        }
    }

    pub fn to_error(&self) -> io::Error {
        io::Error::new(self.kind, self.message.clone())
    }

    /// The file system was full (ENOSPC or a quota).
    pub fn is_out_of_space(&self) -> bool {
        super::free_space::is_out_of_space_kind(self.kind)
    }
}

pub(crate) type WaitOutcome = Result<(), StorageFailure>;

/// Waiters for "every offset up to N is done", ordered by N.
#[derive(Default)]
pub(crate) struct OffsetWaiters {
    queue: VecDeque<(i64, oneshot::Sender<WaitOutcome>)>,
}

impl OffsetWaiters {
    pub fn register(&mut self, last_offset: i64) -> oneshot::Receiver<WaitOutcome> {
        let (sender, receiver) = oneshot::channel();
        // Produce requests arrive in offset order, so this is nearly always a push_back.
        let at = self
            .queue
            .partition_point(|(offset, _)| *offset <= last_offset);
        self.queue.insert(at, (last_offset, sender));
        receiver
    }

    /// Resolves every waiter whose offset is below `done_below`.
    pub fn release_below(&mut self, done_below: i64) {
        while let Some((offset, _)) = self.queue.front() {
            if *offset >= done_below {
                break;
            }
            if let Some((_, sender)) = self.queue.pop_front() {
                // The requester may have gone away; nothing to do then.
                let _ = sender.send(Ok(()));
            }
        }
    }

    /// True when some waiter could be released once everything below
    /// `done_below` is done.
    pub fn has_waiter_below(&self, done_below: i64) -> bool {
        self.queue
            .iter()
            .take_while(|(offset, _)| *offset < done_below)
            .any(|(_, sender)| !sender.is_canceled())
    }

    pub fn fail_all(&mut self, failure: &StorageFailure) {
        for (_, sender) in self.queue.drain(..) {
            let _ = sender.send(Err(failure.clone()));
        }
    }

    /// Drops every sender: waiters see the log as closed.
    pub fn clear(&mut self) {
        self.queue.clear();
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.queue.len()
    }
}

/// Fetch requests parked until the high watermark moves.
#[derive(Default)]
pub(crate) struct Subscribers {
    senders: Vec<oneshot::Sender<()>>,
    /// Fetches waiting on many partitions at once, each with one signal.
    signals: Vec<Weak<DataSignal>>,
    /// Fetch sessions watching this partition while it is quiet, each with
    /// the session's id for it.
    watches: Vec<(Weak<SessionWatch>, u32)>,
}

/// A fetch session's record of which of its quiet partitions moved since it
/// last looked (`server::fetch_sessions`): each partition the session
/// stopped reading holds a weak reference and the partition's id in the
/// session, and sets that id's bit the next time its written end, high
/// watermark or log start offset moves (or it closes or fails). The session
/// then reads only those partitions, instead of all of them on every fetch.
/// One registration fires once; the session registers again when it finds
/// the partition quiet again.
#[derive(Default)]
pub struct SessionWatch {
    /// Bit `id` is set when partition `id` moved.
    moved: RefCell<Vec<u64>>,
    /// Fired with the first bit set since the last `clear`.
    any_moved: Rc<DataSignal>,
}

impl SessionWatch {
    /// Partition `id` moved (as its log says through `Subscribers`).
    pub(crate) fn fire(&self, id: u32) {
        let (word, bit) = (id as usize / 64, id % 64);
        {
            let mut moved = self.moved.borrow_mut();
            if moved.len() <= word {
                moved.resize(word + 1, 0);
            }
            moved[word] |= 1 << bit;
        }
        self.any_moved.fire();
    }

    /// Whether partition `id` moved since the last `clear`.
    pub fn has_moved(&self, id: u32) -> bool {
        let (word, bit) = (id as usize / 64, id % 64);
        self.moved
            .borrow()
            .get(word)
            .is_some_and(|bits| bits & (1 << bit) != 0)
    }

    /// Whether any partition moved since the last `clear`.
    pub fn any_moved(&self) -> bool {
        self.any_moved.fired.get()
    }

    /// Forgets what moved (the session has taken it in).
    pub fn clear(&self) {
        if self.any_moved() {
            self.moved
                .borrow_mut()
                .iter_mut()
                .for_each(|bits| *bits = 0);
            self.any_moved.fired.set(false);
        }
    }

    /// Resolves once any watched partition moved since the last `clear`.
    pub fn moved(&self) -> impl Future<Output = ()> {
        self.any_moved.fired()
    }
}

/// One fetch's wake-up, shared by every partition it waits on: registering
/// costs a weak reference per partition (no allocation, no channel), and a
/// fetch that stopped waiting leaves only dead references, pruned on the
/// next registration or notification.
#[derive(Default)]
pub struct DataSignal {
    fired: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl DataSignal {
    fn fire(&self) {
        self.fired.set(true);
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }

    /// Resolves once any partition it was registered with moved (or closed).
    pub fn fired(self: &Rc<Self>) -> impl Future<Output = ()> {
        let signal = Rc::clone(self);
        std::future::poll_fn(move |context| {
            if signal.fired.get() {
                return Poll::Ready(());
            }
            *signal.waker.borrow_mut() = Some(context.waker().clone());
            Poll::Pending
        })
    }
}

impl Subscribers {
    /// Registers a fetch's shared signal.
    pub fn register(&mut self, signal: &Rc<DataSignal>) {
        self.signals.retain(|signal| signal.strong_count() > 0);
        self.signals.push(Rc::downgrade(signal));
    }

    /// Registers a session's watch of this partition (`id` in the session);
    /// replaces an earlier registration of the same watch and id, so a
    /// partition that goes quiet again and again holds one entry per session.
    pub fn watch(&mut self, watch: &Rc<SessionWatch>, id: u32) {
        let this = Rc::downgrade(watch);
        self.watches.retain(|(watch, watched)| {
            watch.strong_count() > 0 && !(*watched == id && Weak::ptr_eq(watch, &this))
        });
        self.watches.push((this, id));
    }

    /// Adds a subscriber; fetches that timed out dropped their receivers, so
    /// they are pruned here to keep the list proportional to live fetches.
    pub fn subscribe(&mut self) -> oneshot::Receiver<()> {
        self.senders.retain(|sender| !sender.is_canceled());
        let (sender, receiver) = oneshot::channel();
        self.senders.push(sender);
        receiver
    }

    pub fn notify_all(&mut self) {
        for sender in self.senders.drain(..) {
            let _ = sender.send(());
        }
        for signal in self.signals.drain(..) {
            if let Some(signal) = signal.upgrade() {
                signal.fire();
            }
        }
        for (watch, id) in self.watches.drain(..) {
            if let Some(watch) = watch.upgrade() {
                watch.fire(id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiters_release_in_offset_order() {
        let mut waiters = OffsetWaiters::default();
        let mut late = waiters.register(10);
        let mut early = waiters.register(3);
        waiters.release_below(4);
        assert_eq!(early.try_recv().ok().flatten(), Some(Ok(())));
        assert_eq!(late.try_recv().ok().flatten(), None);
        assert!(waiters.has_waiter_below(11));
        assert!(!waiters.has_waiter_below(10));
        waiters.release_below(11);
        assert_eq!(late.try_recv().ok().flatten(), Some(Ok(())));
        assert_eq!(waiters.len(), 0);
    }

    #[test]
    fn failure_reaches_every_waiter_and_clear_means_closed() {
        let mut waiters = OffsetWaiters::default();
        let mut first = waiters.register(1);
        let failure = StorageFailure {
            kind: io::ErrorKind::Other,
            message: "disk gone".into(),
        };
        waiters.fail_all(&failure);
        assert_eq!(first.try_recv().ok().flatten(), Some(Err(failure)));
        let mut second = waiters.register(2);
        waiters.clear();
        assert!(second.try_recv().is_err());
    }

    #[test]
    fn one_signal_is_fired_by_any_partition_and_dead_ones_are_pruned() {
        let mut first = Subscribers::default();
        let mut second = Subscribers::default();
        let signal = Rc::new(DataSignal::default());
        first.register(&signal);
        second.register(&signal);
        let abandoned = Rc::new(DataSignal::default());
        second.register(&abandoned);
        drop(abandoned);
        second.register(&signal);
        assert_eq!(second.signals.len(), 2, "the dead signal was pruned");
        assert!(!signal.fired.get());
        second.notify_all();
        assert!(signal.fired.get());
        assert!(second.signals.is_empty());
        // The other partition still holds it; firing again is harmless.
        first.notify_all();
        assert!(futures::FutureExt::now_or_never(signal.fired()).is_some());
    }

    #[test]
    fn a_session_watch_learns_which_partitions_moved_once_per_registration() {
        let mut first = Subscribers::default();
        let mut second = Subscribers::default();
        let watch = Rc::new(SessionWatch::default());
        first.watch(&watch, 3);
        first.watch(&watch, 3);
        assert_eq!(first.watches.len(), 1, "one entry per session and id");
        second.watch(&watch, 130);
        assert!(!watch.any_moved());
        assert!(futures::FutureExt::now_or_never(watch.moved()).is_none());
        second.notify_all();
        assert!(watch.any_moved() && watch.has_moved(130) && !watch.has_moved(3));
        assert!(futures::FutureExt::now_or_never(watch.moved()).is_some());
        watch.clear();
        assert!(!watch.any_moved() && !watch.has_moved(130));
        // Fired registrations are gone: the partition must be watched anew.
        second.notify_all();
        assert!(!watch.any_moved());
        first.notify_all();
        assert!(watch.has_moved(3));
        // A session that ended leaves only a dead entry, pruned on the next watch.
        let ended = Rc::new(SessionWatch::default());
        first.watch(&ended, 1);
        drop(ended);
        first.watch(&watch, 2);
        assert_eq!(first.watches.len(), 1);
    }

    #[test]
    fn subscribers_are_pruned_and_notified() {
        let mut subscribers = Subscribers::default();
        let abandoned = subscribers.subscribe();
        drop(abandoned);
        let mut live = subscribers.subscribe();
        assert_eq!(subscribers.senders.len(), 1);
        subscribers.notify_all();
        assert_eq!(live.try_recv().ok().flatten(), Some(()));
    }
}
