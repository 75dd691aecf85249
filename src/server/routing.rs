//! The one routing layer: every call from one part of the broker to the
//! owner of a partition, a group, a transactional id or the metadata goes
//! through [`call`] or [`start`], which pick the hop and hide it.
//!
//! A call has three possible hops ([`Hop`]):
//! - the same shard: the call runs in place, no copy, no message;
//! - another shard of this node: the call travels over the mesh
//!   (`runtime::mesh`) and its typed reply comes back the same way;
//! - another node: a partition led by another broker of the cluster
//!   ([`partition_hop`] says so from the catalog). Clients are sent there
//!   themselves (NOT_LEADER_OR_FOLLOWER, NOT_COORDINATOR); only the
//!   broker-to-broker calls Kafka makes cross nodes, over Kafka's protocol
//!   (`peer_brokers`): WriteTxnMarkers to partition leaders and
//!   AddPartitionsToTxn verification at a remote transaction coordinator.
//!
//! Calls are small typed values (`ShardCall`), each with its own reply type,
//! and each API family implements how its calls run on the owner in its own
//! module. Which cores: every shard routes its own calls; the router holds
//! no state of its own.

use std::rc::Rc;

use futures::channel::oneshot;
use futures::future::LocalBoxFuture;

use super::shard::Shard;
pub use crate::runtime::mesh::{MeshError, ShardCall};

/// The way a call takes to the shard that owns its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hop {
    /// The owner is this shard.
    Local,
    /// Another shard of this node, over the mesh.
    Shard(usize),
}

/// The hop from `shard` to the shard `owner`.
pub fn hop(shard: &Shard, owner: usize) -> Hop {
    debug_assert!(owner < shard.shard_count, "owner {owner} out of range");
    if owner == shard.id {
        Hop::Local
    } else {
        Hop::Shard(owner)
    }
}

/// Where a partition's leader is, seen from `shard`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionHop {
    /// This node leads it; `owner` is the shard that holds its log.
    ThisNode { owner: usize },
    /// Another broker leads it.
    Node(i32),
    /// No live leader (or no such partition) in this shard's catalog.
    NoLeader,
}

/// The hop to `topic`/`partition`'s leader.
pub fn partition_hop(shard: &Shard, topic: &str, partition: i32) -> PartitionHop {
    match shard.read_catalog(|catalog| catalog.partition_leader(topic, partition)) {
        Some(leader) if leader == shard.config.node_id => PartitionHop::ThisNode {
            owner: shard.owner_of(topic, partition),
        },
        Some(leader) => PartitionHop::Node(leader),
        None => PartitionHop::NoLeader,
    }
}

/// A started call whose reply has not been awaited yet.
pub enum Pending<Reply> {
    Local(LocalBoxFuture<'static, Reply>),
    Remote {
        owner: usize,
        reply: oneshot::Receiver<Reply>,
    },
    Failed(MeshError),
}

impl<Reply> Pending<Reply> {
    /// Waits for the reply. An error means the owner could not be reached
    /// (shutting down); each caller answers that with its API's retriable
    /// error.
    pub async fn reply(self) -> Result<Reply, MeshError> {
        match self {
            Pending::Local(running) => Ok(running.await),
            Pending::Remote { owner, reply } => {
                reply.await.map_err(|_| MeshError::Unreachable(owner))
            }
            Pending::Failed(error) => Err(error),
        }
    }
}

/// Starts `call` on shard `owner` without waiting for its reply. A local
/// call's synchronous part runs now; a remote call is queued on the mesh
/// behind the calls this shard sent to `owner` before it. So calls started
/// one after another, in one task, reach each owner in that order; Produce
/// relies on it for per-partition order.
pub async fn start<C: ShardCall<Shard>>(
    shard: &Rc<Shard>,
    owner: usize,
    call: C,
) -> Pending<C::Reply> {
    match hop(shard, owner) {
        Hop::Local => Pending::Local(call.start(shard)),
        Hop::Shard(owner) => match shard.mesh() {
            Some(mesh) => match mesh.send(owner, call).await {
                Ok(reply) => Pending::Remote { owner, reply },
                Err(error) => Pending::Failed(error),
            },
            None => Pending::Failed(MeshError::Unreachable(owner)),
        },
    }
}

/// Runs `call` on shard `owner` and waits for its reply.
pub async fn call<C: ShardCall<Shard>>(
    shard: &Rc<Shard>,
    owner: usize,
    call: C,
) -> Result<C::Reply, MeshError> {
    start(shard, owner, call).await.reply().await
}

/// Runs a copy of `call` on every shard (this one included) and returns the
/// replies in shard order; `Err` for shards that could not be reached.
pub async fn call_every_shard<C: ShardCall<Shard> + Clone>(
    shard: &Rc<Shard>,
    call: C,
) -> Vec<Result<C::Reply, MeshError>> {
    let mut pending = Vec::with_capacity(shard.shard_count);
    for owner in 0..shard.shard_count {
        pending.push(start(shard, owner, call.clone()).await);
    }
    futures::future::join_all(pending.into_iter().map(Pending::reply)).await
}
