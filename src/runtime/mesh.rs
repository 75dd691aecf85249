//! The cross-shard mesh: typed calls between shards over glommio's lock-free
//! channel mesh (one bounded SPSC ring per ordered pair of shards). It exists
//! on every shard when `--cores` > 1. It knows nothing of Kafka: `S` is the
//! shard's state (`server::shard::Shard`), and every call says itself how it
//! runs there ([`ShardCall`]).
//!
//! What travels is a type-erased envelope: the boxed call together with the
//! sending end of a oneshot for its typed reply. The receiving shard runs the
//! call, and sends the reply back over the mesh as a boxed completion that
//! fills that oneshot on the caller's shard. So one mesh carries every API
//! family without an enum naming them all, and a reply can only ever be of
//! its call's `Reply` type: a mismatch is a compile error, not a runtime
//! fallback.
//!
//! Calls from one shard to another are delivered in the order they were
//! sent, and the receive loop calls [`ShardCall::start`] synchronously for
//! each: a call that appends to a log in `start` (before its first `.await`)
//! keeps the per-partition order of the calls that sender forwarded.

use std::marker::PhantomData;
use std::rc::Rc;

use futures::channel::oneshot;
use futures::future::LocalBoxFuture;
use glommio::channels::channel_mesh::{Full, MeshBuilder, Senders};
use glommio::channels::shared_channel::ConnectedReceiver;
use thiserror::Error;

/// Messages in flight between two shards before a sender waits. Bounds the
/// memory one shard can push onto another.
pub const MESH_CHANNEL_CAPACITY: usize = 1024;

/// A call that runs on the shard owning what it names, with its own reply
/// type. Implemented next to the code it runs (each API family in its own
/// module); the call value itself is plain `Send` data.
pub trait ShardCall<S>: Send + 'static {
    type Reply: Send + 'static;
    /// Runs the call on its owning shard. Whatever happens before this
    /// returns happens in arrival order (the mesh calls it synchronously
    /// from its receive loop, the router in the caller's own turn); the
    /// returned future finishes the call.
    fn start(self, shard: &Rc<S>) -> LocalBoxFuture<'static, Self::Reply>;
}

/// The caller-side completion of a call, produced on the owner and run on
/// the caller's shard: it sends the typed reply into the caller's oneshot.
type Completion = Box<dyn FnOnce() + Send>;

/// A call with the oneshot its reply goes to, type-erased for the channel.
trait ErasedCall<S>: Send {
    fn start(self: Box<Self>, shard: &Rc<S>) -> LocalBoxFuture<'static, Completion>;
}

struct WithReply<C: ShardCall<S>, S> {
    call: C,
    reply: oneshot::Sender<C::Reply>,
    /// `fn(&S)` keeps the envelope `Send` whatever `S` is.
    _shard: PhantomData<fn(&S)>,
}

impl<S, C: ShardCall<S>> ErasedCall<S> for WithReply<C, S> {
    fn start(self: Box<Self>, shard: &Rc<S>) -> LocalBoxFuture<'static, Completion> {
        let WithReply { call, reply, .. } = *self;
        let running = call.start(shard);
        Box::pin(async move {
            let answer = running.await;
            Box::new(move || {
                // The caller may have given up (connection closed); fine.
                let _ = reply.send(answer);
            }) as Completion
        })
    }
}

/// What travels on the mesh.
pub struct Envelope<S> {
    kind: EnvelopeKind<S>,
}

enum EnvelopeKind<S> {
    Call {
        from: usize,
        call: Box<dyn ErasedCall<S>>,
    },
    Reply(Completion),
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum MeshError {
    /// The peer shard is gone (shutting down), or dropped the call.
    #[error("shard {0} is not reachable")]
    Unreachable(usize),
}

pub type MeshBuilderFor<S> = MeshBuilder<Envelope<S>, Full>;

/// Creates the builder every shard joins; clone it into each executor.
pub fn mesh_builder<S: 'static>(shard_count: usize) -> MeshBuilderFor<S> {
    MeshBuilder::full(shard_count, MESH_CHANNEL_CAPACITY)
}

/// One shard's end of the mesh.
pub struct Mesh<S: 'static> {
    shard_id: usize,
    senders: Senders<Envelope<S>>,
}

impl<S: 'static> Mesh<S> {
    /// Joins the mesh (waits until every shard joined) and starts one receive
    /// loop per peer, which runs incoming calls on `shard`.
    pub async fn join(builder: MeshBuilderFor<S>, shard: Rc<S>) -> std::io::Result<Rc<Self>> {
        let (senders, mut receivers) = builder.join().await.map_err(std::io::Error::from)?;
        let mesh = Rc::new(Mesh {
            shard_id: senders.peer_id(),
            senders,
        });
        for (_peer, receiver) in receivers.streams() {
            let mesh = Rc::clone(&mesh);
            let shard = Rc::clone(&shard);
            glommio::spawn_local(receive_loop(mesh, receiver, shard)).detach();
        }
        Ok(mesh)
    }

    /// This shard's id in the mesh.
    pub fn shard_id(&self) -> usize {
        self.shard_id
    }

    /// Sends `call` to shard `to` and returns the receiver of its reply.
    /// Awaiting this only waits for room in the channel, so callers can send
    /// several calls in order before waiting for any reply.
    pub async fn send<C: ShardCall<S>>(
        &self,
        to: usize,
        call: C,
    ) -> Result<oneshot::Receiver<C::Reply>, MeshError> {
        debug_assert_ne!(to, self.shard_id, "a shard calls itself directly");
        let (reply, receiver) = oneshot::channel();
        let envelope = Envelope {
            kind: EnvelopeKind::Call {
                from: self.shard_id,
                call: Box::new(WithReply {
                    call,
                    reply,
                    _shard: PhantomData,
                }),
            },
        };
        if self.senders.send_to(to, envelope).await.is_err() {
            return Err(MeshError::Unreachable(to));
        }
        Ok(receiver)
    }

    async fn send_reply(&self, to: usize, completion: Completion) {
        let envelope = Envelope {
            kind: EnvelopeKind::Reply(completion),
        };
        if self.senders.send_to(to, envelope).await.is_err() {
            tracing::debug!(to, "reply dropped: shard is gone");
        }
    }
}

async fn receive_loop<S: 'static>(
    mesh: Rc<Mesh<S>>,
    receiver: ConnectedReceiver<Envelope<S>>,
    shard: Rc<S>,
) {
    while let Some(envelope) = receiver.recv().await {
        match envelope.kind {
            EnvelopeKind::Call { from, call } => {
                // Synchronously, in arrival order (see the module docs).
                let running = call.start(&shard);
                let mesh = Rc::clone(&mesh);
                glommio::spawn_local(async move {
                    let completion = running.await;
                    mesh.send_reply(from, completion).await;
                })
                .detach();
            }
            EnvelopeKind::Reply(completion) => completion(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use futures::FutureExt;

    use super::*;

    /// A stand-in for the shard: what the calls it ran saw, in order.
    #[derive(Default)]
    struct Recorder {
        started: RefCell<Vec<u32>>,
    }

    /// Records its number synchronously in `start`, answers it doubled
    /// after yielding (so replies are produced out of start order).
    struct Record(u32);

    impl ShardCall<Recorder> for Record {
        type Reply = u64;
        fn start(self, shard: &Rc<Recorder>) -> LocalBoxFuture<'static, u64> {
            shard.started.borrow_mut().push(self.0);
            let number = self.0;
            async move {
                glommio::yield_if_needed().await;
                u64::from(number) * 2
            }
            .boxed_local()
        }
    }

    /// What the callee saw, as a call the caller can ask for.
    struct Started;

    impl ShardCall<Recorder> for Started {
        type Reply = Vec<u32>;
        fn start(self, shard: &Rc<Recorder>) -> LocalBoxFuture<'static, Vec<u32>> {
            let started = shard.started.borrow().clone();
            async move { started }.boxed_local()
        }
    }

    #[test]
    fn calls_start_in_send_order_and_get_their_own_typed_replies() {
        crate::runtime::memlock::raise_memlock_limit(64 << 20);
        let builder = mesh_builder::<Recorder>(2);
        let finished = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let shards: Vec<_> = (0..2)
            .map(|_| {
                let builder = builder.clone();
                let finished = std::sync::Arc::clone(&finished);
                glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
                    .io_memory(256 << 10)
                    .spawn(move || async move {
                        let shard = Rc::new(Recorder::default());
                        let mesh = Mesh::join(builder, Rc::clone(&shard)).await.expect("join");
                        let peer = 1 - mesh.shard_id();
                        let mut pending = Vec::new();
                        for number in 0..200 {
                            pending.push(mesh.send(peer, Record(number)).await.expect("send"));
                        }
                        for (number, reply) in (0..200u64).zip(pending) {
                            assert_eq!(reply.await.expect("reply"), number * 2);
                        }
                        let seen = mesh.send(peer, Started).await.expect("send");
                        let seen = seen.await.expect("reply");
                        assert_eq!(seen, (0..200).collect::<Vec<u32>>());
                        // Keep answering until the peer is done too (bounded poll).
                        finished.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        for _ in 0..10_000 {
                            if finished.load(std::sync::atomic::Ordering::SeqCst) == 2 {
                                break;
                            }
                            glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
                        }
                    })
                    .expect("executor starts")
            })
            .collect();
        for shard in shards {
            shard.join().expect("shard thread");
        }
    }
}
