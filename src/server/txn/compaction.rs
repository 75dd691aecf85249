//! Keeping a `__transaction_state` partition short so start-up replay
//! stays fast: every transaction writes three or four records, so the log
//! grows without bound while the live state is one record per transactional
//! id. When the records written since the last snapshot outnumber the live
//! ids by far, the coordinator appends the live state as a snapshot and
//! deletes the sealed segments wholly below it (the same scheme as the
//! offsets partitions, `groups/compaction.rs`; Kafka compacts the topic).
//!
//! Which cores: the owner of the state partition, from its timer task.
//!
//! Why this is correct: the snapshot re-writes every live id with its
//! current metadata in one synchronous step, and segments are deleted only
//! as a prefix below it, so replaying what is left ends in the same state:
//! older records of an id are overridden by the snapshot, and an id expired
//! before the snapshot had its tombstone after its surviving records.

use super::coordinator::TxnPartition;
use crate::protocol::batch_builder::{encode_batch, BatchProducer, KeyValue};
use crate::protocol::errors::KafkaError;
use crate::server::coordinator_log::{compact, SnapshotPolicy};
use crate::txn::records::{encode_key, encode_value};

/// Records written since the last snapshot before one is considered.
const SNAPSHOT_MIN_RECORDS: i64 = 100_000;
/// ... and only when they are this many times the live ids.
const SNAPSHOT_RATIO: i64 = 4;
/// Records per batch of a snapshot.
const SNAPSHOT_BATCH_RECORDS: usize = 1_000;

impl TxnPartition {
    /// Writes a snapshot if the partition has grown enough since the last
    /// one, then deletes the segments below the latest snapshot. Returns
    /// the segments deleted.
    pub async fn compact(&self, now_ms: i64) -> usize {
        self.compact_with(now_ms, SNAPSHOT_MIN_RECORDS, SNAPSHOT_RATIO)
            .await
    }

    pub(super) async fn compact_with(&self, now_ms: i64, min_records: i64, ratio: i64) -> usize {
        let live = self.transactions.borrow().len() as i64;
        compact(
            &self.log,
            super::state_topic::TRANSACTION_STATE_TOPIC,
            self.partition,
            &self.snapshot_offset,
            Some(live),
            SnapshotPolicy { min_records, ratio },
            self.write_snapshot(now_ms),
        )
        .await
    }

    /// Appends every live id's metadata in one synchronous step (no other
    /// append can land between its batches) and waits until it is durable.
    async fn write_snapshot(&self, now_ms: i64) -> Result<(), i16> {
        if self.is_retired() {
            return Err(KafkaError::NotCoordinator.code());
        }
        let records: Vec<KeyValue> = self
            .transactions
            .borrow()
            .iter()
            .map(|metadata| KeyValue {
                key: encode_key(&metadata.transactional_id),
                value: Some(encode_value(metadata)),
            })
            .collect();
        let first = self.log.log_end_offset();
        let mut last = first - 1;
        for chunk in records.chunks(SNAPSHOT_BATCH_RECORDS) {
            let batch = encode_batch(chunk, BatchProducer::NONE, now_ms);
            let info = self
                .log
                .append(&batch, now_ms)
                .map_err(|error| error.code())?;
            last = info.last_offset;
        }
        if last >= first {
            self.log
                .wait_committed(last)
                .await
                .map_err(|error| error.code())?;
        }
        self.snapshot_offset.set(first);
        tracing::info!(
            partition = self.partition,
            live_ids = records.len(),
            offset = first,
            "wrote transaction state snapshot"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use crate::config::TxnSettings;
    use crate::log::{LogConfig, PartitionLog};
    use crate::runtime::memlock::run_on_test_executor;
    use crate::server::txn::coordinator::TxnCoordinator;
    use crate::txn::{TransactionMetadata, TransactionState};

    fn metadata(id: &str, epoch: i16, state: TransactionState) -> TransactionMetadata {
        TransactionMetadata {
            transactional_id: id.to_string(),
            producer_id: 7,
            last_producer_id: -1,
            producer_epoch: epoch,
            last_producer_epoch: -1,
            timeout_ms: 60_000,
            state,
            partitions: BTreeSet::new(),
            start_timestamp_ms: -1,
            last_update_timestamp_ms: 1_000,
        }
    }

    #[test]
    fn snapshot_deletes_old_segments_and_replay_gives_the_same_state() {
        run_on_test_executor(|| async move {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("__transaction_state-0");
            let config = LogConfig {
                segment_bytes: 16 << 10,
                ..LogConfig::default()
            };
            let settings = TxnSettings::default();
            let log = PartitionLog::open(path.clone(), config.clone())
                .await
                .expect("open");
            let coordinator = TxnCoordinator::default();
            coordinator.load(&settings, 0, 0, log.clone()).await;
            let partition = coordinator.partition(0).expect("loaded");
            // 5 ids, each through 400 epochs; one id expired on the way.
            for epoch in 0..400 {
                for id in ["a", "b", "c", "d", "e"] {
                    let state = if epoch % 2 == 0 {
                        TransactionState::CompleteCommit
                    } else {
                        TransactionState::Empty
                    };
                    partition
                        .store(id, Some(metadata(id, epoch, state)), 0)
                        .expect("store");
                }
            }
            partition.store("e", None, 0).expect("tombstone");
            let deleted = partition.compact_with(0, 500, 4).await;
            assert!(deleted > 5, "only {deleted} segments deleted");
            assert!(partition.log.log_start_offset() > 1_000);
            partition
                .store("a", Some(metadata("a", 500, TransactionState::Empty)), 0)
                .expect("store");
            let end = partition.log.log_end_offset();
            partition
                .log
                .wait_committed(end - 1)
                .await
                .expect("durable");
            let live: Vec<TransactionMetadata> =
                partition.transactions.borrow().iter().cloned().collect();
            log.close().await.expect("close");
            drop(partition);
            drop(coordinator);

            let log = PartitionLog::open(path, config).await.expect("reopen");
            let coordinator = TxnCoordinator::default();
            coordinator.load(&settings, 0, 0, log.clone()).await;
            let partition = coordinator.partition(0).expect("loaded");
            let replayed: Vec<TransactionMetadata> =
                partition.transactions.borrow().iter().cloned().collect();
            assert_eq!(replayed, live);
            assert_eq!(replayed.len(), 4);
            assert_eq!(
                partition
                    .transactions
                    .borrow()
                    .get("a")
                    .map(|m| m.producer_epoch),
                Some(500)
            );
            log.close().await.expect("close");
        });
    }
}
