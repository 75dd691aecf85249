//! The cross-shard mesh: request/reply messaging between shards over
//! glommio's lock-free channel mesh (one bounded SPSC ring per ordered pair of
//! shards). It exists on every shard when `--cores` > 1.
//!
//! Requests from one shard to another are delivered in the order they were
//! sent; the receive loop hands each request to the handler synchronously, so
//! a handler that appends to a log before its first `.await` keeps the
//! per-partition order of the requests that sender forwarded.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use futures::channel::oneshot;
use glommio::channels::channel_mesh::{Full, MeshBuilder, Senders};
use glommio::channels::shared_channel::ConnectedReceiver;
use thiserror::Error;

/// Messages in flight between two shards before a sender waits. Bounds the
/// memory one shard can push onto another.
pub const MESH_CHANNEL_CAPACITY: usize = 1024;

/// What travels on the mesh.
pub enum Envelope<Request: Send, Reply: Send> {
    Request { from: usize, id: u64, body: Request },
    Reply { id: u64, body: Reply },
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum MeshError {
    /// The peer shard is gone (shutting down).
    #[error("shard {0} is not reachable")]
    Unreachable(usize),
}

pub type MeshBuilderFor<Request, Reply> = MeshBuilder<Envelope<Request, Reply>, Full>;

/// Creates the builder every shard joins; clone it into each executor.
pub fn mesh_builder<Request: Send + 'static, Reply: Send + 'static>(
    shard_count: usize,
) -> MeshBuilderFor<Request, Reply> {
    MeshBuilder::full(shard_count, MESH_CHANNEL_CAPACITY)
}

/// One shard's end of the mesh.
pub struct Mesh<Request: Send + 'static, Reply: Send + 'static> {
    shard_id: usize,
    senders: Senders<Envelope<Request, Reply>>,
    pending: RefCell<HashMap<u64, oneshot::Sender<Reply>>>,
    next_id: Cell<u64>,
}

impl<Request: Send + 'static, Reply: Send + 'static> Mesh<Request, Reply> {
    /// Joins the mesh (waits until every shard joined) and starts one receive
    /// loop per peer. `handle` is called for every incoming request with the
    /// sender's id and the reply id to answer with.
    pub async fn join<H>(
        builder: MeshBuilderFor<Request, Reply>,
        handle: H,
    ) -> std::io::Result<Rc<Self>>
    where
        H: Fn(usize, u64, Request) + 'static,
    {
        let (senders, mut receivers) = builder.join().await.map_err(std::io::Error::from)?;
        let mesh = Rc::new(Mesh {
            shard_id: senders.peer_id(),
            senders,
            pending: RefCell::new(HashMap::new()),
            next_id: Cell::new(0),
        });
        let handle = Rc::new(handle);
        for (_peer, receiver) in receivers.streams() {
            let mesh = Rc::clone(&mesh);
            let handle = Rc::clone(&handle);
            glommio::spawn_local(receive_loop(mesh, receiver, handle)).detach();
        }
        Ok(mesh)
    }

    /// Sends a request and returns the receiver of its reply. Awaiting this
    /// only waits for room in the channel, so callers can send several
    /// requests in order before waiting for any reply.
    pub async fn send(
        &self,
        shard: usize,
        body: Request,
    ) -> Result<oneshot::Receiver<Reply>, MeshError> {
        let id = self.next_id.get();
        self.next_id.set(id.wrapping_add(1));
        let (reply_sender, reply_receiver) = oneshot::channel();
        self.pending.borrow_mut().insert(id, reply_sender);
        let envelope = Envelope::Request {
            from: self.shard_id,
            id,
            body,
        };
        if self.senders.send_to(shard, envelope).await.is_err() {
            self.pending.borrow_mut().remove(&id);
            return Err(MeshError::Unreachable(shard));
        }
        Ok(reply_receiver)
    }

    /// Answers request `id` from shard `to`.
    pub async fn reply(&self, to: usize, id: u64, body: Reply) {
        let envelope = Envelope::Reply { id, body };
        if self.senders.send_to(to, envelope).await.is_err() {
            tracing::debug!(to, "reply dropped: shard is gone");
        }
    }

    fn complete(&self, id: u64, body: Reply) {
        let sender = self.pending.borrow_mut().remove(&id);
        if let Some(sender) = sender {
            // The caller may have given up (connection closed); that is fine.
            let _ = sender.send(body);
        }
    }
}

async fn receive_loop<Request, Reply, H>(
    mesh: Rc<Mesh<Request, Reply>>,
    receiver: ConnectedReceiver<Envelope<Request, Reply>>,
    handle: Rc<H>,
) where
    Request: Send + 'static,
    Reply: Send + 'static,
    H: Fn(usize, u64, Request) + 'static,
{
    while let Some(envelope) = receiver.recv().await {
        match envelope {
            Envelope::Request { from, id, body } => handle(from, id, body),
            Envelope::Reply { id, body } => mesh.complete(id, body),
        }
    }
}
