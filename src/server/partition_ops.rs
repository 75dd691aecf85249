//! Operations on partitions this shard owns: append, wait for acks, read,
//! offset lookups, and how the data-plane calls of `partition_calls` run.
//! Runs only on the owning shard (asserted), whether the call came from a
//! local connection or over the mesh; the API handlers (`produce.rs`,
//! `fetch.rs`, `list_offsets.rs`) split requests and route these per owner.
//!
//! Data plane: imports nothing from the control plane (admin,
//! topic_changes, groups, txn); coordinators call in here, never back.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use futures::future::{join_all, LocalBoxFuture};
use futures::FutureExt;

use super::partition_calls::{
    EndOffsetForEpochCall, EpochOutcome, EpochQuery, ListOffsetsCall, OffsetOutcome, OffsetQuery,
    ProduceCall, ProduceOutcome, ProducePart, ReadCall, ReadOutcome, ReadPart,
};
use super::replicas::{self, LedPartition};
use super::routing::ShardCall;
use super::shard::{LocalLogTable, Shard};
use super::storage_recovery;
use crate::log::{LogError, PartitionLog, ReadResult};
use crate::metadata::catalog::{Catalog, PartitionAssignment};
use crate::protocol::errors::{KafkaError, NONE};
use crate::runtime::clock::now_ms;

impl ShardCall<Shard> for ProduceCall {
    type Reply = Vec<ProduceOutcome>;
    fn start(self, shard: &Rc<Shard>) -> LocalBoxFuture<'static, Self::Reply> {
        // The appends happen here, before any `.await` (see `routing::start`).
        let appended = append_parts(shard, self.parts, self.acks);
        let shard = Rc::clone(shard);
        let acks = self.acks;
        let timeout = Duration::from_millis(u64::try_from(self.timeout_ms).unwrap_or(0));
        async move { await_acks(&shard, appended, acks, timeout).await }.boxed_local()
    }
}

impl ShardCall<Shard> for ReadCall {
    type Reply = Vec<ReadOutcome>;
    fn start(self, shard: &Rc<Shard>) -> LocalBoxFuture<'static, Self::Reply> {
        let shard = Rc::clone(shard);
        async move { read_parts(&shard, &self.0).await }.boxed_local()
    }
}

impl ShardCall<Shard> for ListOffsetsCall {
    type Reply = Vec<OffsetOutcome>;
    fn start(self, shard: &Rc<Shard>) -> LocalBoxFuture<'static, Self::Reply> {
        let shard = Rc::clone(shard);
        async move { list_offsets(&shard, &self.0).await }.boxed_local()
    }
}

impl ShardCall<Shard> for EndOffsetForEpochCall {
    type Reply = Vec<EpochOutcome>;
    fn start(self, shard: &Rc<Shard>) -> LocalBoxFuture<'static, Self::Reply> {
        let outcomes = self
            .0
            .iter()
            .map(|query| end_offset_for_epoch(shard, query))
            .collect();
        async move { outcomes }.boxed_local()
    }
}

/// Where `query.leader_epoch` ends in this leader's log (Kafka's
/// `Partition.lastOffsetForLeaderEpoch`): the asker's idea of the current
/// leader epoch is checked first, an older one FENCED_LEADER_EPOCH, a newer
/// one UNKNOWN_LEADER_EPOCH (this node has not caught up with the metadata).
pub fn end_offset_for_epoch(shard: &Shard, query: &EpochQuery) -> EpochOutcome {
    let log = match leader_log(
        shard,
        &query.topic,
        query.partition,
        query.current_leader_epoch,
    ) {
        Ok((log, _)) => log,
        Err(code) => return EpochOutcome::error(code),
    };
    let end = log.end_offset_for_epoch(query.leader_epoch);
    EpochOutcome {
        error_code: NONE,
        leader_epoch: end.epoch,
        end_offset: end.end_offset,
    }
}

/// A produce part after its append: the offsets and what to wait on.
pub struct Appended {
    outcome: ProduceOutcome,
    wait: Option<(PartitionLog, i64)>,
    /// For acks=all on a partition with followers: its leader state, whose
    /// ISR must still hold min.insync.replicas once the records are in.
    led: Option<Rc<LedPartition>>,
}

/// Why this node may not serve `topic`/`partition` now: the catalog names
/// another leader (or none), as Kafka's `ReplicaManager` answers
/// NOT_LEADER_OR_FOLLOWER so that the client refreshes its metadata and
/// goes to the leader. `None` when this node leads it or the catalog does
/// not know it (the caller then answers for the missing log). Pure and
/// allocation-free: it runs for every partition of every data request.
pub fn leadership_error(
    catalog: &Catalog,
    node_id: i32,
    topic: &str,
    partition: i32,
) -> Option<KafkaError> {
    let known = catalog.partition(topic, partition)?;
    (known.leader != node_id).then_some(KafkaError::NotLeaderOrFollower)
}

/// The error for a partition this shard has no log for.
fn missing_partition_code(catalog: &Catalog, topic: &str, partition: i32) -> i16 {
    let known = catalog
        .topic(topic)
        .map(|t| t.has_partition(partition))
        .unwrap_or(false);
    if known {
        KafkaError::NotLeaderOrFollower.code()
    } else {
        KafkaError::UnknownTopicOrPartition.code()
    }
}

/// The log of `topic`/`partition` if this node leads it, or the Kafka
/// error to answer with. The one leadership check of the data plane: every
/// produce, read, offset lookup and DeleteRecords on the owning shard goes
/// through here (or through [`PartitionLookup`] for many partitions).
pub fn local_log(shard: &Shard, topic: &str, partition: i32) -> Result<PartitionLog, i16> {
    shard.assert_owner(topic, partition);
    shard.with_partition_lookup(|lookup| lookup.local_log(topic, partition).cloned())
}

/// The log of a partition this node leads, with its current leader epoch,
/// for a client that believes the epoch is `current_leader_epoch` (KIP-320;
/// -1 skips the check): an older one is FENCED_LEADER_EPOCH (the client's
/// metadata is stale), a newer one UNKNOWN_LEADER_EPOCH (this node's is).
pub fn leader_log(
    shard: &Shard,
    topic: &str,
    partition: i32,
    current_leader_epoch: i32,
) -> Result<(PartitionLog, i32), i16> {
    shard.assert_owner(topic, partition);
    shard.with_partition_lookup(|lookup| {
        lookup
            .leader_log(topic, partition, current_leader_epoch)
            .map(|(log, epoch)| (log.clone(), epoch))
    })
}

/// Resolves partitions to this shard's logs with the leadership checks of
/// [`local_log`] and [`leader_log`], for requests naming many partitions:
/// the image and the log table are borrowed once
/// (`Shard::with_partition_lookup`) and a topic's name is hashed once for a
/// run of its partitions, not once per partition and table.
pub struct PartitionLookup<'a> {
    node_id: i32,
    catalog: &'a Catalog,
    logs: &'a LocalLogTable,
    /// The topic of the previous lookup: its assignments and its logs.
    topic: Option<TopicEntry<'a>>,
}

struct TopicEntry<'a> {
    name: Box<str>,
    assignments: &'a [PartitionAssignment],
    logs: Option<&'a HashMap<i32, PartitionLog>>,
}

impl<'a> PartitionLookup<'a> {
    pub fn new(node_id: i32, catalog: &'a Catalog, logs: &'a LocalLogTable) -> PartitionLookup<'a> {
        PartitionLookup {
            node_id,
            catalog,
            logs,
            topic: None,
        }
    }

    fn topic_entry(&mut self, topic: &str) -> &TopicEntry<'a> {
        let cached = self
            .topic
            .as_ref()
            .is_some_and(|entry| &*entry.name == topic);
        if !cached {
            self.topic = Some(TopicEntry {
                name: Box::from(topic),
                assignments: self.catalog.partitions(topic),
                logs: self.logs.get(topic),
            });
        }
        match &self.topic {
            Some(entry) => entry,
            None => unreachable!("set above"),
        }
    }

    /// The partition's log, whoever leads it (fetch waits subscribe to it).
    pub fn log(&mut self, topic: &str, partition: i32) -> Option<&'a PartitionLog> {
        self.topic_entry(topic)
            .logs
            .and_then(|logs| logs.get(&partition))
    }

    /// [`log`](Self::log) of a topic named by its id (Fetch v13+).
    pub fn log_by_id(&mut self, topic_id: &uuid::Uuid, partition: i32) -> Option<&'a PartitionLog> {
        let catalog = self.catalog;
        let topic = catalog.topic_by_id(topic_id)?;
        self.log(&topic.name, partition)
    }

    /// [`local_log`] for one of many partitions.
    pub fn local_log(&mut self, topic: &str, partition: i32) -> Result<&'a PartitionLog, i16> {
        let node_id = self.node_id;
        let catalog = self.catalog;
        let entry = self.topic_entry(topic);
        let assignment = usize::try_from(partition)
            .ok()
            .and_then(|index| entry.assignments.get(index));
        // The image names another leader (or none): the client must refresh
        // its metadata and go there, as Kafka's ReplicaManager answers.
        if assignment.is_some_and(|known| known.leader != node_id) {
            return Err(KafkaError::NotLeaderOrFollower.code());
        }
        match entry.logs.and_then(|logs| logs.get(&partition)) {
            Some(log) => Ok(log),
            None => Err(missing_partition_code(catalog, topic, partition)),
        }
    }

    /// [`leader_log`] for one of many partitions: the log and the current
    /// leader epoch.
    pub fn leader_log(
        &mut self,
        topic: &str,
        partition: i32,
        current_leader_epoch: i32,
    ) -> Result<(&'a PartitionLog, i32), i16> {
        let log = self.local_log(topic, partition)?;
        let leader_epoch = self
            .topic
            .as_ref()
            .and_then(|entry| entry.assignments.get(usize::try_from(partition).ok()?))
            .map_or(0, |assignment| assignment.leader_epoch);
        if current_leader_epoch >= 0 && current_leader_epoch < leader_epoch {
            return Err(KafkaError::FencedLeaderEpoch.code());
        }
        if current_leader_epoch > leader_epoch {
            return Err(KafkaError::UnknownLeaderEpoch.code());
        }
        Ok((log, leader_epoch))
    }
}

/// Appends every part (synchronously, in order). Batches were validated by the
/// receiving shard.
pub fn append_parts(shard: &Rc<Shard>, parts: Vec<ProducePart>, acks: i16) -> Vec<Appended> {
    let now = now_ms();
    parts
        .into_iter()
        .map(|part| append_part(shard, part, acks, now))
        .collect()
}

/// Kafka's check before an acks=all append: the ISR must hold at least the
/// topic's min.insync.replicas, or NOT_ENOUGH_REPLICAS. Answers the leader
/// state of a partition with followers.
fn check_min_insync(
    shard: &Shard,
    topic: &str,
    partition: i32,
) -> Result<Option<Rc<LedPartition>>, i16> {
    if let Some(led) = shard.replicas.led(topic, partition) {
        if led.isr_len() < led.min_insync_replicas() {
            return Err(KafkaError::NotEnoughReplicas.code());
        }
        return Ok(Some(led));
    }
    // One replica: an ISR of one.
    let min_insync = shard.read_catalog(|catalog| {
        catalog
            .topic(topic)
            .map_or(1, |topic| topic.configs.min_insync_replicas)
    });
    if min_insync > 1 {
        return Err(KafkaError::NotEnoughReplicas.code());
    }
    Ok(None)
}

fn append_part(shard: &Rc<Shard>, part: ProducePart, acks: i16, now: i64) -> Appended {
    let failed = |code: i16| Appended {
        outcome: ProduceOutcome::error(code),
        wait: None,
        led: None,
    };
    let log = match local_log(shard, &part.topic, part.partition) {
        Ok(log) => log,
        Err(code) => return failed(code),
    };
    let led = if acks == -1 {
        match check_min_insync(shard, &part.topic, part.partition) {
            Ok(led) => led,
            Err(code) => return failed(code),
        }
    } else {
        None
    };
    // Below the free-space reserve nothing is appended, so no offset is
    // taken and the log stays writable once space is freed.
    let bytes: usize = part.batches.iter().map(|batch| batch.len()).sum();
    if let Err(full) = shard
        .free_space
        .admit(u64::try_from(bytes).unwrap_or(u64::MAX))
    {
        return Appended {
            outcome: ProduceOutcome::disk_full(full),
            wait: None,
            led: None,
        };
    }
    let mut outcome: Option<ProduceOutcome> = None;
    let mut last_offset = -1;
    // Batches were validated by the receiving shard (`produce.rs`).
    for batch in &part.batches {
        // The log checks idempotent producers (KIP-98): a retried duplicate
        // answers with its original offsets, gaps and fenced epochs fail.
        match log.append_from_producer(batch, now) {
            Ok(info) => {
                last_offset = last_offset.max(info.last_offset);
                outcome.get_or_insert(ProduceOutcome {
                    error_code: NONE,
                    base_offset: info.base_offset,
                    log_append_time_ms: info.log_append_time_ms,
                    log_start_offset: info.log_start_offset,
                    disk_full: None,
                });
            }
            Err(error) => {
                if matches!(
                    error,
                    LogError::Io(_)
                        | LogError::Closed
                        | LogError::QueueFull
                        | LogError::InvalidBatch(_)
                ) {
                    tracing::warn!(topic = %part.topic, partition = part.partition, %error, "append failed");
                    storage_recovery::reopen_if_full(shard, &part.topic, part.partition, &log);
                } else {
                    // A producer's own mistake (fenced epoch, sequence gap),
                    // answered with its error code, as Kafka does quietly.
                    tracing::debug!(topic = %part.topic, partition = part.partition, %error, "batch refused");
                }
                return failed(error.code());
            }
        }
    }
    match outcome {
        Some(outcome) => Appended {
            outcome,
            wait: Some((log, last_offset)),
            led,
        },
        None => failed(KafkaError::InvalidRecord.code()),
    }
}

/// Waits until each appended part satisfies `acks` (0: not at all, 1: written,
/// -1/all: durable under the flush policy, and on a partition with
/// followers below the high watermark, so on every in-sync replica), in
/// parallel. acks=all gives up after `timeout` (REQUEST_TIMED_OUT).
pub async fn await_acks(
    _shard: &Shard,
    appended: Vec<Appended>,
    acks: i16,
    timeout: Duration,
) -> Vec<ProduceOutcome> {
    let waits = appended.into_iter().map(|part| async move {
        let Some((log, last_offset)) = part.wait else {
            return part.outcome;
        };
        // acks=0 gets no answer, but its connection still waits for the write
        // before answering later requests: that is its backpressure.
        let result = match (acks, &part.led) {
            (0 | 1, _) => log.wait_written(last_offset).await,
            (_, None) => log.wait_durable(last_offset).await,
            (_, Some(led)) => {
                let replicated = glommio::timer::timeout(timeout, async {
                    Ok(log.wait_high_watermark(last_offset).await)
                })
                .await;
                match replicated {
                    Err(_) => return ProduceOutcome::error(KafkaError::RequestTimedOut.code()),
                    Ok(Err(error)) => Err(error),
                    // Kafka's check once the records are in: the ISR may
                    // have shrunk while they were on their way.
                    Ok(Ok(())) if led.isr_len() < led.min_insync_replicas() => {
                        return ProduceOutcome::error(
                            KafkaError::NotEnoughReplicasAfterAppend.code(),
                        )
                    }
                    Ok(Ok(())) => Ok(()),
                }
            }
        };
        match result {
            Ok(()) => part.outcome,
            Err(error) => ProduceOutcome::error(error.code()),
        }
    });
    join_all(waits).await
}

/// Reads each part now (no waiting for new data). Parts at their end or
/// still in the tail cache are answered in one synchronous pass (a
/// caught-up consumer over many partitions costs no future per partition);
/// disk reads and followers' fetches then run in parallel.
pub async fn read_parts(shard: &Rc<Shard>, parts: &[ReadPart]) -> Vec<ReadOutcome> {
    let mut outcomes = Vec::with_capacity(parts.len());
    let mut later: Vec<(usize, LocalBoxFuture<'_, ReadOutcome>)> = Vec::new();
    shard.with_partition_lookup(|lookup| {
        for (index, part) in parts.iter().enumerate() {
            shard.assert_owner(&part.topic, part.partition);
            let log =
                match lookup.leader_log(&part.topic, part.partition, part.current_leader_epoch) {
                    Ok((log, _)) => log,
                    Err(code) => {
                        outcomes.push(ReadOutcome::error(code));
                        continue;
                    }
                };
            if part.from_follower() {
                outcomes.push(ReadOutcome::error(NONE));
                later.push((
                    index,
                    read_for_follower(shard, part, log.clone()).boxed_local(),
                ));
                continue;
            }
            match log.read_now(part.fetch_offset, part.max_bytes, part.read_committed) {
                Ok(Some(result)) => outcomes.push(read_outcome(result)),
                Ok(None) => {
                    outcomes.push(ReadOutcome::error(NONE));
                    later.push((index, read_from_disk(part, log.clone()).boxed_local()));
                }
                Err(error) => outcomes.push(failed_read(log, error.code())),
            }
        }
    });
    if !later.is_empty() {
        let (indexes, reads): (Vec<usize>, Vec<_>) = later.into_iter().unzip();
        for (index, outcome) in indexes.into_iter().zip(join_all(reads).await) {
            outcomes[index] = outcome;
        }
    }
    outcomes
}

/// A read the tail cache could not answer.
async fn read_from_disk(part: &ReadPart, log: PartitionLog) -> ReadOutcome {
    let read = if part.read_committed {
        log.read_committed(part.fetch_offset, part.max_bytes).await
    } else {
        log.read(part.fetch_offset, part.max_bytes).await
    };
    match read {
        Ok(result) => read_outcome(result),
        Err(error) => failed_read(&log, error.code()),
    }
}

fn read_outcome(result: ReadResult) -> ReadOutcome {
    ReadOutcome {
        error_code: NONE,
        high_watermark: result.high_watermark,
        last_stable_offset: result.last_stable_offset,
        log_start_offset: result.log_start_offset,
        batches: result.batches,
        aborted_transactions: result.aborted_transactions,
        diverging_epoch: None,
    }
}

fn failed_read(log: &PartitionLog, error_code: i16) -> ReadOutcome {
    ReadOutcome {
        error_code,
        high_watermark: log.high_watermark(),
        last_stable_offset: log.last_stable_offset(),
        log_start_offset: log.log_start_offset(),
        batches: Vec::new(),
        aborted_transactions: Vec::new(),
        diverging_epoch: None,
    }
}

/// A follower's fetch on the leader (Kafka's `Partition.fetchRecords` for a
/// replica): a follower whose last epoch diverges from this log gets the
/// diverging epoch and no records; otherwise its fetch offset is its end
/// (the high watermark may move, it may rejoin the ISR), and it gets
/// everything written, past the high watermark too.
async fn read_for_follower(shard: &Rc<Shard>, part: &ReadPart, log: PartitionLog) -> ReadOutcome {
    let Some(led) = shard.replicas.led(&part.topic, part.partition) else {
        // One replica, or this leadership is not set up yet.
        return ReadOutcome::error(KafkaError::NotLeaderOrFollower.code());
    };
    if let Some(end) = log.diverging_epoch(part.fetch_offset, part.last_fetched_epoch) {
        return ReadOutcome {
            diverging_epoch: Some((end.epoch, end.end_offset)),
            ..failed_read(&log, NONE)
        };
    }
    if part.fetch_offset <= log.log_end_offset() {
        if led
            .follower_fetched(part.replica_id, part.fetch_offset)
            .is_err()
        {
            return ReadOutcome::error(KafkaError::NotLeaderOrFollower.code());
        }
        replicas::expand_isr_if_caught_up(shard, &led);
    }
    match log
        .read_for_replica(part.fetch_offset, part.max_bytes)
        .await
    {
        Ok(result) => ReadOutcome {
            error_code: NONE,
            high_watermark: log.high_watermark(),
            last_stable_offset: result.last_stable_offset,
            log_start_offset: result.log_start_offset,
            batches: result.batches,
            aborted_transactions: Vec::new(),
            diverging_epoch: None,
        },
        Err(error) => failed_read(&log, error.code()),
    }
}

/// Whether any part already has data at or past its fetch offset (below the
/// last stable offset for read_committed parts).
pub fn any_data_available(shard: &Shard, parts: &[ReadPart]) -> bool {
    shard.with_partition_lookup(|lookup| {
        parts
            .iter()
            .any(|part| match lookup.local_log(&part.topic, part.partition) {
                Ok(log) if part.read_committed => log.last_stable_offset() > part.fetch_offset,
                // A follower copies everything written, and a diverging one
                // must hear so at once.
                Ok(log) if part.from_follower() => {
                    log.written_end_offset() > part.fetch_offset
                        || log
                            .diverging_epoch(part.fetch_offset, part.last_fetched_epoch)
                            .is_some()
                }
                Ok(log) => log.high_watermark() > part.fetch_offset,
                // A vanished or no longer led partition is news too: let the
                // fetch answer with its error.
                Err(_) => true,
            })
    })
}

/// Answers ListOffsets lookups for local partitions.
pub async fn list_offsets(shard: &Shard, queries: &[OffsetQuery]) -> Vec<OffsetOutcome> {
    join_all(queries.iter().map(|query| list_offset(shard, query))).await
}

async fn list_offset(shard: &Shard, query: &OffsetQuery) -> OffsetOutcome {
    let failed = OffsetOutcome::error;
    let (log, leader_epoch) = match leader_log(
        shard,
        &query.topic,
        query.partition,
        query.current_leader_epoch,
    ) {
        Ok(found) => found,
        Err(code) => return failed(code),
    };
    let found = |offset| OffsetOutcome {
        error_code: NONE,
        timestamp: -1,
        offset,
        leader_epoch,
    };
    let lookup = |result: Result<Option<(i64, i64)>, LogError>| match result {
        Ok(Some((offset, timestamp))) => OffsetOutcome {
            error_code: NONE,
            timestamp,
            offset,
            leader_epoch,
        },
        Ok(None) => found(-1),
        Err(error) => failed(error.code()),
    };
    match query.timestamp {
        LATEST_TIMESTAMP if query.read_committed => found(log.last_stable_offset()),
        LATEST_TIMESTAMP => found(log.high_watermark()),
        EARLIEST_TIMESTAMP | EARLIEST_LOCAL_TIMESTAMP => found(log.log_start_offset()),
        // Tiered storage is not used: nothing is pending upload or tiered.
        EARLIEST_PENDING_UPLOAD_TIMESTAMP | LATEST_TIERED_TIMESTAMP => found(-1),
        MAX_TIMESTAMP => lookup(log.max_timestamp_offset().await),
        timestamp if timestamp >= 0 => lookup(log.offset_for_timestamp(timestamp).await),
        _ => failed(KafkaError::InvalidRequest.code()),
    }
}

/// ListOffsets special timestamps (KIP-79, KIP-734, KIP-1005).
pub const LATEST_TIMESTAMP: i64 = -1;
pub const EARLIEST_TIMESTAMP: i64 = -2;
pub const MAX_TIMESTAMP: i64 = -3;
pub const EARLIEST_LOCAL_TIMESTAMP: i64 = -4;
pub const LATEST_TIERED_TIMESTAMP: i64 = -5;
pub const EARLIEST_PENDING_UPLOAD_TIMESTAMP: i64 = -6;

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::metadata::catalog::test_fixtures::{broker, topic};
    use crate::metadata::catalog::{PartitionAssignment, NO_BROKER};

    #[test]
    fn partitions_led_by_another_broker_or_none_are_not_served_here() {
        let mut leaderless = PartitionAssignment::led_by(2);
        leaderless.leader = NO_BROKER;
        let catalog = Catalog::new(
            Arc::from("cluster"),
            1,
            vec![broker(1), broker(2)],
            [(
                topic("orders", 3),
                vec![
                    PartitionAssignment::led_by(1),
                    PartitionAssignment::led_by(2),
                    leaderless,
                ],
            )],
        );
        assert_eq!(leadership_error(&catalog, 1, "orders", 0), None);
        assert_eq!(
            leadership_error(&catalog, 1, "orders", 1),
            Some(KafkaError::NotLeaderOrFollower)
        );
        assert_eq!(
            leadership_error(&catalog, 1, "orders", 2),
            Some(KafkaError::NotLeaderOrFollower)
        );
        // Broker 2 serves its own partition.
        assert_eq!(leadership_error(&catalog, 2, "orders", 1), None);
        // Unknown partitions are the missing-log path's to answer.
        assert_eq!(leadership_error(&catalog, 1, "orders", 3), None);
        assert_eq!(leadership_error(&catalog, 1, "missing", 0), None);
    }

    #[test]
    fn a_single_node_leads_every_partition() {
        let catalog = Catalog::single_node(Arc::from("cluster"), broker(0), [topic("orders", 4)]);
        for partition in 0..4 {
            assert_eq!(leadership_error(&catalog, 0, "orders", partition), None);
        }
    }
}
