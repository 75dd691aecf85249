//! The channels and mutex openraft's runtime trait asks for (`Mpsc`, `Oneshot`,
//! `Watch`, `Mutex`), as thin wrappers over `tokio::sync`. Only tokio's `sync`
//! module is used: its primitives are plain futures with their own wakers and
//! need no tokio runtime, so they run unchanged on the controller shard's
//! glommio executor. Wrappers exist because openraft's traits and tokio's types
//! are both foreign to this crate.

use openraft_rt::mpsc::{Mpsc, MpscReceiver, MpscSender, MpscWeakSender, SendError, TryRecvError};
use openraft_rt::oneshot::{Oneshot, OneshotSender};
use openraft_rt::watch::{self, Watch, WatchReceiver, WatchSender};
use openraft_rt::{OptionalSend, OptionalSync};
use tokio::sync::{mpsc, oneshot, watch as tokio_watch};

/// Bounded multi-producer channels (`tokio::sync::mpsc`).
pub struct SyncMpsc;

pub struct MpscTx<T>(mpsc::Sender<T>);
pub struct MpscRx<T>(mpsc::Receiver<T>);
pub struct MpscWeakTx<T>(mpsc::WeakSender<T>);

impl Mpsc for SyncMpsc {
    type Sender<T: OptionalSend> = MpscTx<T>;
    type Receiver<T: OptionalSend> = MpscRx<T>;
    type WeakSender<T: OptionalSend> = MpscWeakTx<T>;

    fn channel<T: OptionalSend>(buffer: usize) -> (MpscTx<T>, MpscRx<T>) {
        // tokio refuses a zero capacity; openraft never asks for one, but a
        // rendezvous of one slot is the nearest meaning if it ever does.
        let (sender, receiver) = mpsc::channel(buffer.max(1));
        (MpscTx(sender), MpscRx(receiver))
    }
}

impl<T> Clone for MpscTx<T> {
    fn clone(&self) -> Self {
        MpscTx(self.0.clone())
    }
}

impl<T: OptionalSend> MpscSender<SyncMpsc, T> for MpscTx<T> {
    async fn send(&self, message: T) -> Result<(), SendError<T>> {
        self.0
            .send(message)
            .await
            .map_err(|error| SendError(error.0))
    }

    fn downgrade(&self) -> MpscWeakTx<T> {
        MpscWeakTx(self.0.downgrade())
    }
}

impl<T: OptionalSend> MpscReceiver<T> for MpscRx<T> {
    async fn recv(&mut self) -> Option<T> {
        self.0.recv().await
    }

    fn try_recv(&mut self) -> Result<T, TryRecvError> {
        self.0.try_recv().map_err(|error| match error {
            mpsc::error::TryRecvError::Empty => TryRecvError::Empty,
            mpsc::error::TryRecvError::Disconnected => TryRecvError::Disconnected,
        })
    }
}

impl<T> Clone for MpscWeakTx<T> {
    fn clone(&self) -> Self {
        MpscWeakTx(self.0.clone())
    }
}

impl<T: OptionalSend> MpscWeakSender<SyncMpsc, T> for MpscWeakTx<T> {
    fn upgrade(&self) -> Option<MpscTx<T>> {
        self.0.upgrade().map(MpscTx)
    }
}

/// One-shot channels (`tokio::sync::oneshot`).
pub struct SyncOneshot;

pub struct OneshotTx<T>(oneshot::Sender<T>);

impl Oneshot for SyncOneshot {
    type Sender<T: OptionalSend> = OneshotTx<T>;
    type Receiver<T: OptionalSend> = oneshot::Receiver<T>;
    type ReceiverError = oneshot::error::RecvError;

    fn channel<T: OptionalSend>() -> (OneshotTx<T>, oneshot::Receiver<T>) {
        let (sender, receiver) = oneshot::channel();
        (OneshotTx(sender), receiver)
    }
}

impl<T: OptionalSend> OneshotSender<T> for OneshotTx<T> {
    fn send(self, value: T) -> Result<(), T> {
        self.0.send(value)
    }
}

/// Watch channels (`tokio::sync::watch`): openraft publishes its metrics and
/// state through them.
pub struct SyncWatch;

pub struct WatchTx<T>(tokio_watch::Sender<T>);
pub struct WatchRx<T>(tokio_watch::Receiver<T>);

impl Watch for SyncWatch {
    type Sender<T: OptionalSend + OptionalSync> = WatchTx<T>;
    type Receiver<T: OptionalSend + OptionalSync> = WatchRx<T>;
    type Ref<'a, T: OptionalSend + 'a> = tokio_watch::Ref<'a, T>;

    fn channel<T: OptionalSend + OptionalSync>(init: T) -> (WatchTx<T>, WatchRx<T>) {
        let (sender, receiver) = tokio_watch::channel(init);
        (WatchTx(sender), WatchRx(receiver))
    }
}

impl<T> Clone for WatchTx<T> {
    fn clone(&self) -> Self {
        WatchTx(self.0.clone())
    }
}

impl<T: OptionalSend + OptionalSync> WatchSender<SyncWatch, T> for WatchTx<T> {
    fn send(&self, value: T) -> Result<(), watch::SendError<T>> {
        self.0
            .send(value)
            .map_err(|error| watch::SendError(error.0))
    }

    fn send_if_modified<F>(&self, modify: F) -> bool
    where
        F: FnOnce(&mut T) -> bool,
    {
        self.0.send_if_modified(modify)
    }

    fn borrow_watched(&self) -> tokio_watch::Ref<'_, T> {
        self.0.borrow()
    }

    fn subscribe(&self) -> WatchRx<T> {
        WatchRx(self.0.subscribe())
    }
}

impl<T> Clone for WatchRx<T> {
    fn clone(&self) -> Self {
        WatchRx(self.0.clone())
    }
}

impl<T: OptionalSend + OptionalSync> WatchReceiver<SyncWatch, T> for WatchRx<T> {
    async fn changed(&mut self) -> Result<(), watch::RecvError> {
        self.0.changed().await.map_err(|_| watch::RecvError(()))
    }

    fn borrow_watched(&self) -> tokio_watch::Ref<'_, T> {
        self.0.borrow()
    }

    fn borrow_and_update(&mut self) -> tokio_watch::Ref<'_, T> {
        self.0.borrow_and_update()
    }
}

/// An async mutex (`tokio::sync::Mutex`). On one executor it is never
/// contended across threads; openraft uses it to serialise its own tasks.
pub struct SyncMutex<T>(tokio::sync::Mutex<T>);

impl<T: OptionalSend + 'static> openraft_rt::Mutex<T> for SyncMutex<T> {
    type Guard<'a> = tokio::sync::MutexGuard<'a, T>;

    fn new(value: T) -> Self {
        SyncMutex(tokio::sync::Mutex::new(value))
    }

    async fn lock(&self) -> tokio::sync::MutexGuard<'_, T> {
        self.0.lock().await
    }
}
