//! Scatter-gather over owning shards: split a request's partition items by
//! owner, run the local share directly and send each remote share over the
//! mesh in one message, then put the answers back in item order. Used by
//! Fetch and ListOffsets on whichever shard received the request.

use std::collections::BTreeMap;
use std::rc::Rc;

use futures::future::join_all;

use super::forward::{ShardReply, ShardRequest};
use super::shard::Shard;

/// How one kind of item is answered on its owner.
/// (`async fn` in the trait is fine: everything here is shard-local, never `Send`.)
#[allow(async_fn_in_trait)]
pub trait OwnerWork {
    type Item: Clone;
    type Outcome: Clone;
    fn owner(shard: &Shard, item: &Self::Item) -> usize;
    /// Runs on the owner for its items (here, or on the remote shard).
    async fn run_local(shard: &Rc<Shard>, items: Vec<Self::Item>) -> Vec<Self::Outcome>;
    fn request(items: Vec<Self::Item>) -> ShardRequest;
    fn unpack(reply: ShardReply) -> Option<Vec<Self::Outcome>>;
    /// The answer for an item whose owner did not answer.
    fn unreachable() -> Self::Outcome;
}

/// Answers every item on its owner; results in `items` order.
pub async fn scatter_gather<W: OwnerWork>(shard: &Rc<Shard>, items: &[W::Item]) -> Vec<W::Outcome> {
    let mut by_owner: BTreeMap<usize, (Vec<usize>, Vec<W::Item>)> = BTreeMap::new();
    for (index, item) in items.iter().enumerate() {
        let (indexes, owned) = by_owner.entry(W::owner(shard, item)).or_default();
        indexes.push(index);
        owned.push(item.clone());
    }
    let groups = join_all(
        by_owner
            .into_iter()
            .map(|(owner, (indexes, owned))| async move {
                let outcomes = if owner == shard.id {
                    W::run_local(shard, owned).await
                } else {
                    match shard.call_shard(owner, W::request(owned)).await {
                        Ok(reply) => W::unpack(reply).unwrap_or_default(),
                        Err(_) => Vec::new(),
                    }
                };
                (indexes, outcomes)
            }),
    )
    .await;
    let mut results = vec![W::unreachable(); items.len()];
    for (indexes, outcomes) in groups {
        for (index, outcome) in indexes.into_iter().zip(outcomes) {
            results[index] = outcome;
        }
    }
    results
}
