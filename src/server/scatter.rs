//! Scatter-gather over owning shards: split a request's partition items by
//! owner, route each owner's share as one typed call (`routing`: in place
//! for this shard, one mesh message for another), then put the answers back
//! in item order. Used by Fetch, ListOffsets and DeleteRecords on whichever
//! shard received the request.

use std::collections::BTreeMap;
use std::rc::Rc;

use futures::future::join_all;

use super::routing::{self, ShardCall};
use super::shard::Shard;

/// How one kind of item is answered on its owner.
pub trait OwnerWork {
    type Item: Clone;
    type Outcome: Clone;
    /// The call carrying one owner's items; its reply has one outcome per
    /// item, in order.
    type Call: ShardCall<Shard, Reply = Vec<Self::Outcome>>;
    fn owner(shard: &Shard, item: &Self::Item) -> usize;
    fn call(items: Vec<Self::Item>) -> Self::Call;
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
                let outcomes = routing::call(shard, owner, W::call(owned))
                    .await
                    .unwrap_or_default();
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
