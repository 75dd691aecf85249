//! Transactional offset commits on the coordinator shard (KIP-98
//! TxnOffsetCommit, with KIP-447's member checks from v3): the offsets are
//! appended to the group's offsets partition as a transactional batch of
//! the producer and wait, invisible to OffsetFetch, until the transaction's
//! marker reaches this partition ([`OffsetsPartition::complete_transaction`],
//! called by the transaction coordinator's marker fan-out).
//!
//! Which cores: the owner of the offsets partition the group hashes to.
//!
//! Why this shape: as for plain commits, every change is "append, then
//! apply" in one synchronous step, and the log decides first: it fences a
//! producer whose epoch is older than one it has seen (the zombie of
//! KIP-98), and only what it accepted reaches the pending offsets. Replay
//! (`offsets_topic::replay`) feeds the same records and markers through the
//! same `CommittedOffsets` calls, so a restart in the middle of a
//! transaction brings its pending offsets back for a later marker.

use std::rc::Rc;

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::*;

use super::coordinator::{coordinator_error, record_bytes, OffsetsPartition};
use super::offsets::partition_exists;
use crate::group::offset_records::{OffsetCommitKey, OffsetCommitValue, OffsetsRecord};
use crate::group::pending_offsets::TransactionResult;
use crate::protocol::batch_builder::{self, BatchProducer, ControlType};
use crate::protocol::errors::{KafkaError, NONE};
use crate::runtime::clock::now_ms;
use crate::server::shard::Shard;

impl OffsetsPartition {
    /// Appends `records` as one transactional batch of `producer_id` at
    /// `producer_epoch` and adds them to that producer's pending offsets, in
    /// one synchronous step. Returns the last offset written, for
    /// [`wait_durable`](Self::wait_durable) (-1 when nothing was appended).
    /// Errors are the coordinator's (NOT_COORDINATOR,
    /// COORDINATOR_NOT_AVAILABLE), except the log's producer checks, which
    /// the producer must see (INVALID_PRODUCER_EPOCH: it was fenced).
    pub fn append_transactional(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        records: Vec<OffsetsRecord>,
        now_ms: i64,
    ) -> Result<i64, i16> {
        if records.is_empty() {
            return Ok(-1);
        }
        let encoded: Vec<_> = records.iter().map(record_bytes).collect();
        let producer = BatchProducer {
            producer_id,
            producer_epoch,
            transactional: true,
        };
        let batch = batch_builder::encode_batch(&encoded, producer, now_ms);
        let info = self.log.append(&batch, now_ms).map_err(|error| {
            let code = error.code();
            tracing::warn!(
                partition = self.partition,
                producer_id,
                producer_epoch,
                %error,
                "transactional offsets append failed"
            );
            producer_error(code).unwrap_or_else(|| coordinator_error(code))
        })?;
        let mut offsets = self.offsets.borrow_mut();
        for (index, record) in records.into_iter().enumerate() {
            offsets.apply_transactional_record(
                producer_id,
                record,
                info.base_offset + index as i64,
            );
        }
        Ok(info.last_offset)
    }

    /// Ends `producer_id`'s transaction on this offsets partition: appends
    /// the commit or abort marker and, in the same synchronous step,
    /// materialises (commit) or drops (abort) the producer's pending
    /// offsets. A producer with nothing pending still gets its marker, as
    /// in Kafka (the log's transaction state needs it either way). Returns
    /// the marker's offset for the caller to wait on with
    /// [`wait_durable`](Self::wait_durable); an error is the log's own code
    /// (a partition-level answer, as WriteTxnMarkers gives per partition),
    /// and then nothing changed.
    pub fn complete_transaction(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        control: ControlType,
        now_ms: i64,
    ) -> Result<i64, i16> {
        let appended = self.log.append_marker(
            producer_id,
            producer_epoch,
            coordinator_epoch,
            control,
            now_ms,
        );
        let info = appended.map_err(|error| {
            tracing::warn!(
                partition = self.partition,
                producer_id,
                producer_epoch,
                %error,
                "cannot write transaction marker to offsets partition"
            );
            error.code()
        })?;
        let result = transaction_result(control);
        self.offsets
            .borrow_mut()
            .complete_transaction(producer_id, result, info.base_offset);
        Ok(info.last_offset)
    }
}

/// The pending-offsets view of a marker's control type.
pub fn transaction_result(control: ControlType) -> TransactionResult {
    match control {
        ControlType::Commit => TransactionResult::Commit,
        ControlType::Abort => TransactionResult::Abort,
    }
}

/// Log errors about the producer itself, answered as they are.
fn producer_error(code: i16) -> Option<i16> {
    [
        KafkaError::InvalidProducerEpoch,
        KafkaError::ProducerFenced,
        KafkaError::InvalidTxnState,
    ]
    .iter()
    .any(|error| error.code() == code)
    .then_some(code)
}

/// TxnOffsetCommit for one group. Per partition, in Kafka's order: unknown
/// topic or partition (checked by `KafkaApis` before the coordinator), the
/// group's answer, metadata too large; the rest is written.
pub async fn txn_commit(
    shard: &Rc<Shard>,
    partition: &OffsetsPartition,
    request: TxnOffsetCommitRequest,
    version: i16,
) -> TxnOffsetCommitResponse {
    let group_id = request.group_id.0.as_str().to_string();
    let producer_id = request.producer_id.0;
    let producer_epoch = request.producer_epoch;
    // v0-2 carry no member; the decoder leaves these at -1, "" and null.
    let generation = request.generation_id;
    let member_id = request.member_id.as_str();
    let instance_id = request.group_instance_id.as_ref().map(|id| id.as_str());
    let named_member = generation >= 0 || !member_id.is_empty() || instance_id.is_some();
    let consumer_code =
        super::offsets::consumer_group_commit_check(partition, &group_id, |group| {
            group.validate_offset_commit(member_id, generation, true, version)
        });
    let classic_code = partition
        .with_group(&group_id, false, |slot| {
            slot.group
                .validate_txn_offset_commit(member_id, instance_id, generation)
        })
        // Kafka creates an Empty group for the commit; a member named in
        // it cannot be one of an Empty group's.
        .unwrap_or(if named_member {
            KafkaError::UnknownMemberId.code()
        } else {
            NONE
        });
    let group_code = consumer_code.unwrap_or(classic_code);
    let now = now_ms();
    let metadata_max = shard.config.groups.offset_metadata_max_bytes;
    let mut records = Vec::new();
    let mut results: Vec<(usize, usize, i16)> = Vec::new();
    for (t, topic) in request.topics.iter().enumerate() {
        let name = topic.name.0.as_str();
        for (p, part) in topic.partitions.iter().enumerate() {
            let metadata = part.committed_metadata.as_ref().map_or("", |m| m.as_str());
            let code = if !partition_exists(shard, name, part.partition_index) {
                KafkaError::UnknownTopicOrPartition.code()
            } else if group_code != NONE {
                group_code
            } else if metadata.len() > metadata_max {
                KafkaError::OffsetMetadataTooLarge.code()
            } else {
                records.push(OffsetsRecord::OffsetCommit {
                    key: OffsetCommitKey {
                        group: group_id.clone(),
                        topic: name.to_string(),
                        partition: part.partition_index,
                    },
                    value: Some(OffsetCommitValue {
                        offset: part.committed_offset,
                        leader_epoch: if version >= 2 {
                            part.committed_leader_epoch
                        } else {
                            -1
                        },
                        metadata: metadata.to_string(),
                        commit_timestamp_ms: now,
                        // Transactional commits never carry a retention.
                        expire_timestamp_ms: -1,
                    }),
                });
                NONE
            };
            results.push((t, p, code));
        }
    }
    let write_code = write(
        partition,
        &group_id,
        producer_id,
        producer_epoch,
        records,
        now,
    )
    .await;
    let mut topics: Vec<TxnOffsetCommitResponseTopic> = request
        .topics
        .iter()
        .map(|topic| TxnOffsetCommitResponseTopic::default().with_name(topic.name.clone()))
        .collect();
    for (t, p, code) in results {
        let code = if code == NONE { write_code } else { code };
        let index = request.topics[t].partitions[p].partition_index;
        topics[t].partitions.push(
            TxnOffsetCommitResponsePartition::default()
                .with_partition_index(index)
                .with_error_code(code),
        );
    }
    TxnOffsetCommitResponse::default().with_topics(topics)
}

/// Writes the accepted offsets and waits until they are durable: the code
/// for every partition that got this far.
async fn write(
    partition: &OffsetsPartition,
    group_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    records: Vec<OffsetsRecord>,
    now: i64,
) -> i16 {
    if records.is_empty() {
        return NONE;
    }
    // The group exists from now on (Kafka's `addGroup` of an Empty group).
    partition.with_group(group_id, true, |_| ());
    // Both Kafka coordinators treat a commit without a producer id
    // (-1, RecordBatch.NO_PRODUCER_ID) as a plain offset commit.
    let appended = if producer_id < 0 {
        partition.append(records, now)
    } else {
        partition.append_transactional(producer_id, producer_epoch, records, now)
    };
    match appended {
        Ok(last_offset) => partition
            .wait_durable(last_offset)
            .await
            .err()
            .unwrap_or(NONE),
        Err(code) => code,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::GroupSettings;
    use crate::group::offset_records::{OffsetCommitKey, OffsetCommitValue, OffsetsRecord};
    use crate::log::{LogConfig, PartitionLog};
    use crate::protocol::batch_builder::ControlType;
    use crate::protocol::errors::KafkaError;
    use crate::runtime::memlock::run_on_test_executor;
    use crate::server::groups::coordinator::GroupCoordinator;

    fn commit(group: &str, partition: i32, offset: i64) -> OffsetsRecord {
        OffsetsRecord::OffsetCommit {
            key: OffsetCommitKey {
                group: group.to_string(),
                topic: "orders".to_string(),
                partition,
            },
            value: Some(OffsetCommitValue {
                offset,
                leader_epoch: -1,
                metadata: format!("m{offset}"),
                commit_timestamp_ms: 1_700_000_000_000,
                expire_timestamp_ms: -1,
            }),
        }
    }

    fn committed(coordinator: &GroupCoordinator, group: &str, partition: i32) -> Option<i64> {
        let loaded = coordinator.partition(0).expect("loaded");
        let offsets = loaded.offsets.borrow();
        offsets
            .fetch(group, "orders", partition)
            .map(|value| value.offset)
    }

    /// Plain and transactional commits, a committed and an aborted
    /// transaction, one left open at the end of the log: a restart replays
    /// to exactly the live state, pending offsets included, and the open
    /// transaction's marker then completes it.
    #[test]
    fn replay_restores_pending_offsets_and_a_later_marker_completes_them() {
        run_on_test_executor(|| async move {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("__consumer_offsets-0");
            let settings = GroupSettings::default();
            let log = PartitionLog::open(path.clone(), LogConfig::default())
                .await
                .expect("open");
            let coordinator = GroupCoordinator::default();
            coordinator.load(&settings, 0, log.clone()).await;
            let partition = coordinator.partition(0).expect("loaded");
            partition
                .append(vec![commit("g", 0, 1), commit("g", 1, 1)], 0)
                .expect("plain");
            // Producer 10 commits, producer 11 aborts, producer 12 stays open.
            partition
                .append_transactional(10, 0, vec![commit("g", 0, 10)], 0)
                .expect("txn 10");
            partition
                .append_transactional(11, 0, vec![commit("g", 1, 11)], 0)
                .expect("txn 11");
            partition
                .append_transactional(12, 3, vec![commit("g", 2, 12), commit("h", 0, 12)], 0)
                .expect("txn 12");
            partition
                .complete_transaction(10, 0, 5, ControlType::Commit, 0)
                .expect("commit 10");
            partition
                .complete_transaction(11, 0, 5, ControlType::Abort, 0)
                .expect("abort 11");
            // A marker for a producer with nothing pending is still written.
            let last = partition
                .complete_transaction(13, 0, 5, ControlType::Abort, 0)
                .expect("abort 13");
            assert_eq!(last, partition.log.log_end_offset() - 1);
            assert_eq!(committed(&coordinator, "g", 0), Some(10));
            assert_eq!(committed(&coordinator, "g", 1), Some(1));
            assert_eq!(committed(&coordinator, "g", 2), None);
            assert!(partition.offsets.borrow().has_pending("h", "orders", 0));
            // No snapshot while producer 12 is open: nothing is appended.
            let end = partition.log.log_end_offset();
            assert_eq!(partition.compact_with(0, 0, 0).await, 0);
            assert_eq!(partition.log.log_end_offset(), end);
            partition.wait_durable(last).await.expect("durable");
            log.close().await.expect("close");
            drop(partition);

            let log = PartitionLog::open(path, LogConfig::default())
                .await
                .expect("reopen");
            let restarted = GroupCoordinator::default();
            restarted.load(&settings, 0, log.clone()).await;
            let partition = restarted.partition(0).expect("loaded");
            {
                let live = coordinator.partition(0).expect("loaded");
                assert_eq!(*partition.offsets.borrow(), *live.offsets.borrow());
            }
            // Group "h" has only pending offsets, and is loaded all the same.
            assert!(partition.groups.borrow().contains_key("h"));
            assert_eq!(
                partition
                    .offsets
                    .borrow()
                    .pending_producers()
                    .collect::<Vec<_>>(),
                vec![12]
            );
            partition
                .complete_transaction(12, 3, 6, ControlType::Commit, 0)
                .expect("commit 12");
            assert_eq!(committed(&restarted, "g", 2), Some(12));
            assert_eq!(committed(&restarted, "h", 0), Some(12));
            assert!(!partition.offsets.borrow().has_pending_transactions());
            // Nothing pending: a snapshot may be written now.
            let end = partition.log.log_end_offset();
            partition.compact_with(0, 0, 0).await;
            assert!(partition.log.log_end_offset() > end, "snapshot written");
            log.close().await.expect("close");
        });
    }

    /// KIP-98 zombie fencing: once the log has seen a producer epoch, an
    /// older one can neither add offsets nor end the transaction, and the
    /// refusal leaves the pending offsets as they were.
    #[test]
    fn an_older_producer_epoch_is_fenced_and_changes_nothing() {
        run_on_test_executor(|| async move {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("__consumer_offsets-0");
            let log = PartitionLog::open(path, LogConfig::default())
                .await
                .expect("open");
            let coordinator = GroupCoordinator::default();
            coordinator
                .load(&GroupSettings::default(), 0, log.clone())
                .await;
            let partition = coordinator.partition(0).expect("loaded");
            partition
                .append_transactional(7, 2, vec![commit("g", 0, 1)], 0)
                .expect("epoch 2");
            let fenced = KafkaError::InvalidProducerEpoch.code();
            assert_eq!(
                partition.append_transactional(7, 1, vec![commit("g", 0, 2)], 0),
                Err(fenced)
            );
            assert_eq!(
                partition.complete_transaction(7, 1, 0, ControlType::Commit, 0),
                Err(fenced)
            );
            {
                let offsets = partition.offsets.borrow();
                let pending = offsets.pending_offset(7, "g", "orders", 0);
                assert_eq!(pending.map(|p| p.value.offset), Some(1));
                assert_eq!(offsets.fetch("g", "orders", 0), None);
            }
            partition
                .complete_transaction(7, 2, 0, ControlType::Commit, 0)
                .expect("epoch 2 commits");
            assert_eq!(committed(&coordinator, "g", 0), Some(1));
            log.close().await.expect("close");
        });
    }
}
