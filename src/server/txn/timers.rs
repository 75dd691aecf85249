//! The transaction coordinator's clock, one task per shard: every
//! `transaction.abort.timed.out.transaction.cleanup.interval.ms` it aborts
//! transactions past their timeout (fencing their producer) and re-sends
//! the markers of decided transactions not yet completed (after a restart,
//! or when a marker could not be written); every
//! `transaction.remove.expired.transaction.cleanup.interval.ms` it forgets
//! idle transactional ids; and it keeps each state partition short
//! (`compaction.rs`). A second task drops idle producers' state from
//! every local partition every `producer.id.expiration.check.interval.ms`.
//!
//! Which cores: each shard's tasks look only at that shard's partitions.

use std::rc::Rc;
use std::time::Duration;

use super::coordinator::{carry_out, complete, stuck_completions, TxnPartition};
use crate::runtime::clock::now_ms;
use crate::server::shard::Shard;

pub fn spawn_timers(shard: &Rc<Shard>) {
    let settings = shard.config.transactions.clone();
    let coordinator_shard = Rc::clone(shard);
    glommio::spawn_local(async move {
        let shard = coordinator_shard;
        let mut last_expiry_ms = now_ms();
        loop {
            // Soon after start-up, so a restart completes decided
            // transactions without waiting a whole interval.
            glommio::timer::sleep(Duration::from_millis(
                settings.abort_timed_out_check_ms.min(1_000),
            ))
            .await;
            for loaded in shard.txns.partitions() {
                finish_transactions(&shard, &loaded).await;
            }
            let now = now_ms();
            if now - last_expiry_ms >= settings.remove_expired_check_ms as i64 {
                last_expiry_ms = now;
                for loaded in shard.txns.partitions() {
                    forget_expired_ids(&loaded, now);
                }
            }
            for loaded in shard.txns.partitions() {
                loaded.compact(now).await;
            }
            glommio::timer::sleep(Duration::from_millis(
                settings
                    .abort_timed_out_check_ms
                    .saturating_sub(1_000)
                    .max(1),
            ))
            .await;
        }
    })
    .detach();

    let shard = Rc::clone(shard);
    glommio::spawn_local(async move {
        let every = Duration::from_millis(settings.producer_id_expiration_check_ms.max(1));
        loop {
            glommio::timer::sleep(every).await;
            let now = now_ms();
            let expired: usize = shard
                .local_logs()
                .iter()
                .map(|log| log.expire_producers(now, settings.producer_id_expiration_ms))
                .sum();
            if expired > 0 {
                tracing::debug!(expired, "expired idle producer ids");
            }
        }
    })
    .detach();
}

/// Aborts timed-out transactions and completes decided ones.
async fn finish_transactions(shard: &Rc<Shard>, loaded: &Rc<TxnPartition>) {
    let now = now_ms();
    let timed_out = loaded.transactions.borrow().timed_out(now);
    for plan in timed_out {
        tracing::info!(
            transactional_id = plan.metadata.transactional_id,
            "aborting transaction past its timeout"
        );
        let shard = Rc::clone(shard);
        let loaded = Rc::clone(loaded);
        glommio::spawn_local(async move {
            if let Err(code) = carry_out(&shard, &loaded, plan).await {
                tracing::warn!(code, "cannot abort a timed-out transaction");
            }
        })
        .detach();
    }
    for plan in stuck_completions(loaded) {
        let shard = Rc::clone(shard);
        let loaded = Rc::clone(loaded);
        glommio::spawn_local(async move {
            complete(&shard, &loaded, plan).await;
        })
        .detach();
    }
}

/// transactional.id.expiration.ms: tombstones for idle ids.
fn forget_expired_ids(loaded: &TxnPartition, now: i64) {
    let expired = loaded.transactions.borrow().expired(now);
    for transactional_id in expired {
        if let Err(code) = loaded.store(&transactional_id, None, now) {
            tracing::warn!(transactional_id, code, "cannot expire transactional id");
            return;
        }
        tracing::info!(transactional_id, "expired idle transactional id");
    }
}
