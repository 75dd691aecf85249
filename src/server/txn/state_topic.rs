//! The internal `__transaction_state` topic: its name and configs, which of
//! its partitions a transactional id belongs to, creating it on first use,
//! and replaying a partition into its transactions on load.
//!
//! Which cores: any shard maps an id to its partition and creates the topic
//! (through the controller); only a partition's owner writes and replays it.

use std::rc::Rc;
use std::sync::Arc;

use crate::log::{LogError, PartitionLog};
use crate::metadata::catalog::TopicMetadata;
use crate::protocol::record_batch::{Compression, BATCH_HEADER_BYTES};
use crate::protocol::records::RecordIter;
use crate::server::admin;
use crate::server::coordinator_log::{visit_batches, ReplayStats};
use crate::server::shard::Shard;
use crate::txn::Transactions;

pub use crate::metadata::topic_name::TRANSACTION_STATE_TOPIC;

/// Kafka's `transaction.state.log.segment.bytes` default; compacted in Kafka,
/// here records are never deleted by time or size.
const STATE_TOPIC_CONFIGS: &[(&str, &str)] = &[
    ("cleanup.policy", "compact"),
    ("retention.ms", "-1"),
    ("segment.bytes", "104857600"),
];

/// The state partition of `transactional_id`: Kafka's
/// `Utils.abs(transactionalId.hashCode) % partitions`.
pub fn partition_for(transactional_id: &str, partitions: i32) -> i32 {
    crate::txn::partition_for(transactional_id, partitions)
}

/// Applies every record of `log`, oldest first, to `transactions`.
pub async fn replay(
    log: &PartitionLog,
    transactions: &mut Transactions,
) -> Result<ReplayStats, LogError> {
    let mut stats = ReplayStats::default();
    visit_batches(log, "transaction state", |header, batch, next| {
        if header.compression() != Compression::None || header.is_control() {
            // Never written by this broker: skip it.
            stats.skipped += 1;
            return;
        }
        let records = batch.get(BATCH_HEADER_BYTES..).unwrap_or_default();
        for record in RecordIter::new(records, header.records_count) {
            let offset = header.base_offset + record.offset_delta;
            if offset < next {
                continue;
            }
            stats.records += 1;
            let replayed = match record.key {
                Some(key) => transactions
                    .replay(key, record.value)
                    .map_err(|e| e.to_string()),
                None => Err("record without a key".to_string()),
            };
            if let Err(error) = replayed {
                tracing::warn!(offset, %error, "skipping undecodable transaction state record");
                stats.skipped += 1;
            }
        }
    })
    .await?;
    Ok(stats)
}

/// The state topic, created with `--transaction-state-partitions` the first
/// time any shard needs it (Kafka creates it on the first FindCoordinator
/// for a transactional id).
pub async fn ensure(shard: &Rc<Shard>) -> Result<Arc<TopicMetadata>, i16> {
    admin::ensure_internal_topic(
        shard,
        TRANSACTION_STATE_TOPIC,
        shard.config.transactions.state_topic_partitions,
        STATE_TOPIC_CONFIGS,
    )
    .await
}
