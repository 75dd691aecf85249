//! A follower's copying from one leader node (Kafka's
//! `ReplicaFetcherThread`): one task per (shard, leader node) that sends
//! Kafka's own Fetch, as a replica (replica id = this node, current leader
//! epoch and last fetched epoch per partition), for every partition this
//! shard follows on that leader, and appends the answers unchanged
//! (`PartitionLog::append_replicated`: the leader's offsets, epochs,
//! producer state and transaction markers).
//!
//! - The fetcher keeps a fetch session with its leader (KIP-227,
//!   `replica_fetch_session`): after the first fetch it states only the
//!   partitions whose position moved, and the leader answers only those
//!   with news, so an idle follower of many partitions sends and receives
//!   next to nothing.
//! - A diverging epoch in the answer (KIP-595's Fetch v12 field, the leader's
//!   `lastOffsetForLeaderEpoch`) cuts this replica's tail where it differs
//!   from the leader's (`replication::truncation::truncation_point`) before
//!   it copies on, so two replicas never hold different records below the
//!   high watermark.
//! - The fetch offset tells the leader how far this replica is, and the
//!   leader counts it towards acks=all, so it must be durable: under
//!   `--flush always` the batches of a round are fdatasynced before the next
//!   fetch, and a fetcher waits for a partition's earlier appends (another
//!   fetcher's, before the leader changed) to be durable before it sends
//!   that partition's first fetch.
//! - The high watermark and log start offset follow the leader's answers.
//! - Errors that mean the metadata moved on (NOT_LEADER_OR_FOLLOWER, the
//!   leader epoch fences) park the partition briefly; the new catalog moves
//!   it to another fetcher. An unreachable leader is retried every
//!   `RETRY_BACKOFF` until the controller elects another.
//!
//! Runs on the shard that owns the follower partitions; its connection is
//! its own (long polls would hold up `peer_brokers`' control calls).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::channel::oneshot;
use futures::future::{join_all, select, Either};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, FetchResponse, ListOffsetsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::peer_brokers::{self, broker_address, PeerConnection};
use super::replica_fetch_session::{FetchPosition, FetchSessionHandler, SessionFetch};
use super::replicas::{sync_partition, PartitionKey};
use super::shard::Shard;
use super::storage_recovery;
use crate::log::PartitionLog;
use crate::protocol::errors::{KafkaError, NONE};
use crate::protocol::record_batch::{split_batches, validate_batch};
use crate::replication::leader_epochs::EpochEndOffset;
use crate::replication::truncation::truncation_point;
use crate::runtime::clock::now_ms;

/// The Fetch version followers send: v12 carries last fetched epochs and
/// answers diverging epochs, with topic names.
const FETCH_VERSION: i16 = 12;
/// How long the leader may hold a follower's fetch (Kafka's
/// replica.fetch.wait.max.ms).
const FETCH_MAX_WAIT_MS: i32 = 500;

/// ListOffsets for the leader's log start: v1 has `replica_id` and one
/// offset per partition.
const LIST_OFFSETS_VERSION: i16 = 1;
/// ListOffsets' EARLIEST timestamp.
const EARLIEST_TIMESTAMP: i64 = -2;
/// Bytes per partition and per answer (Kafka's replica.fetch.max.bytes and
/// replica.fetch.response.max.bytes, larger: a catching-up follower copies
/// in big batches).
const PARTITION_MAX_BYTES: i32 = 8 << 20;
const RESPONSE_MAX_BYTES: i32 = 32 << 20;
/// Wait after a failed round or a partition error before trying again.
const RETRY_BACKOFF: Duration = Duration::from_millis(200);

/// One partition being fetched.
struct FetchState {
    leader_epoch: i32,
    /// Parked after an error until then.
    retry_at: Option<Instant>,
}

/// The fetcher for one leader node on one shard.
pub struct ReplicaFetcher {
    leader: i32,
    partitions: RefCell<BTreeMap<PartitionKey, FetchState>>,
    /// Its fetch session with the leader.
    session: RefCell<FetchSessionHandler>,
    /// Wakes an idle fetcher when a partition is added.
    wake: RefCell<Option<oneshot::Sender<()>>>,
    connection: PeerConnection,
}

impl ReplicaFetcher {
    /// A fetcher for `leader`, not running yet (`spawn`).
    pub fn new(leader: i32) -> Rc<ReplicaFetcher> {
        Rc::new(ReplicaFetcher {
            leader,
            partitions: RefCell::new(BTreeMap::new()),
            session: RefCell::new(FetchSessionHandler::default()),
            wake: RefCell::new(None),
            connection: PeerConnection::default(),
        })
    }

    /// Runs the fetcher on this shard until it has no partitions left. The
    /// task may start running inside this call (glommio runs a spawned
    /// task at once), so callers hold no borrow of the shard's replicas.
    pub fn spawn(self: &Rc<Self>, shard: &Rc<Shard>) {
        let shard = Rc::clone(shard);
        let running = Rc::clone(self);
        glommio::spawn_local(async move { run(shard, running).await }).detach();
    }

    pub fn add(&self, key: PartitionKey, leader_epoch: i32) {
        self.partitions.borrow_mut().insert(
            key,
            FetchState {
                leader_epoch,
                retry_at: None,
            },
        );
        if let Some(wake) = self.wake.borrow_mut().take() {
            let _ = wake.send(());
        }
    }

    pub fn remove(&self, key: &PartitionKey) {
        self.partitions.borrow_mut().remove(key);
    }

    fn park(&self, key: &PartitionKey, leader_epoch: i32, backoff: Duration) {
        if let Some(state) = self.partitions.borrow_mut().get_mut(key) {
            if state.leader_epoch == leader_epoch {
                state.retry_at = Some(Instant::now() + backoff);
            }
        }
    }

    /// Whether `key` is still fetched here at `leader_epoch`.
    fn fetches(&self, key: &PartitionKey, leader_epoch: i32) -> bool {
        self.partitions
            .borrow()
            .get(key)
            .is_some_and(|state| state.leader_epoch == leader_epoch)
    }
}

/// One partition of a request, as sent.
struct Sent {
    key: PartitionKey,
    leader_epoch: i32,
    fetch_offset: i64,
}

async fn run(shard: Rc<Shard>, fetcher: Rc<ReplicaFetcher>) {
    let mut last_failure: Option<String> = None;
    loop {
        if fetcher.partitions.borrow().is_empty() {
            shard.replicas.fetcher_stopped(fetcher.leader, &fetcher);
            return;
        }
        wait_for_durable_ends(&shard, &fetcher).await;
        let (fetch, next_retry) = positions(&shard, &fetcher);
        if fetch.is_empty() {
            idle(&fetcher, next_retry.unwrap_or(RETRY_BACKOFF)).await;
            continue;
        }
        let fetch = fetcher.session.borrow().prepare(fetch);
        let request = build_request(&shard, &fetch);
        let sent: Vec<Sent> = fetch
            .wanted
            .iter()
            .map(|(key, at)| Sent {
                key: key.clone(),
                leader_epoch: at.leader_epoch,
                fetch_offset: at.fetch_offset,
            })
            .collect();
        let answer = match broker_address(&shard, fetcher.leader) {
            Ok(address) => {
                let timeout =
                    Duration::from_millis(FETCH_MAX_WAIT_MS as u64) + Duration::from_secs(10);
                fetcher
                    .connection
                    .call(fetcher.leader, &address, FETCH_VERSION, &request, timeout)
                    .await
                    .map_err(|error| error.to_string())
            }
            Err(error) => Err(error.to_string()),
        };
        let response: FetchResponse = match answer {
            Ok(response) if response.error_code == NONE => {
                let session_id = response.session_id;
                fetcher
                    .session
                    .borrow_mut()
                    .answered(fetch, NONE, session_id);
                response
            }
            Ok(response) => {
                let (code, session_id) = (response.error_code, response.session_id);
                fetcher
                    .session
                    .borrow_mut()
                    .answered(fetch, code, session_id);
                failed_round(
                    &mut last_failure,
                    format!("fetch error {}", response.error_code),
                    fetcher.leader,
                )
                .await;
                continue;
            }
            Err(reason) => {
                fetcher.session.borrow_mut().failed();
                failed_round(&mut last_failure, reason, fetcher.leader).await;
                continue;
            }
        };
        if last_failure.take().is_some() {
            tracing::info!(leader = fetcher.leader, "replica fetching resumed");
        }
        tracing::trace!(
            leader = fetcher.leader,
            partitions = sent.len(),
            "replica fetch answered"
        );
        let mut answers: Vec<(Sent, PartitionData)> = Vec::with_capacity(sent.len());
        let mut by_key: BTreeMap<(String, i32), PartitionData> = BTreeMap::new();
        for topic in response.responses {
            for partition in topic.partitions {
                by_key.insert(
                    (topic.topic.0.to_string(), partition.partition_index),
                    partition,
                );
            }
        }
        for part in sent {
            if let Some(data) = by_key.remove(&(part.key.0.to_string(), part.key.1)) {
                answers.push((part, data));
            }
        }
        join_all(
            answers
                .into_iter()
                .map(|(part, data)| handle_partition(&shard, &fetcher, part, data)),
        )
        .await;
    }
}

/// Waits until every partition's log end is durable (the written end, or
/// under `--flush always` the fdatasynced end), so the fetch offsets sent
/// count only what survives a crash. Usually nothing to wait for: a
/// fetcher syncs its own appends before its next fetch.
async fn wait_for_durable_ends(shard: &Shard, fetcher: &ReplicaFetcher) {
    // Only the partitions with something unsynced, collected before any
    // wait (the borrow must not cross an await).
    let unsynced: Vec<(PartitionKey, PartitionLog)> = fetcher
        .partitions
        .borrow()
        .keys()
        .filter_map(|key| {
            let log = shard.partition_log(&key.0, key.1)?;
            (log.replica_end_offset() < log.log_end_offset()).then(|| (key.clone(), log))
        })
        .collect();
    let waits = unsynced.into_iter().map(|(key, log)| async move {
        let end = log.log_end_offset();
        (key, log.wait_durable(end - 1).await)
    });
    for (key, waited) in join_all(waits).await {
        if let Err(error) = waited {
            tracing::warn!(topic = %key.0, partition = key.1, %error, "replicated write failed");
        }
    }
}

/// Logs a failed round (once per distinct reason) and backs off.
async fn failed_round(last_failure: &mut Option<String>, reason: String, leader: i32) {
    if last_failure.as_deref() != Some(reason.as_str()) {
        tracing::warn!(leader, %reason, "replica fetch failed; retrying");
        *last_failure = Some(reason);
    }
    glommio::timer::sleep(RETRY_BACKOFF).await;
}

/// Waits for a new partition or `timeout`.
async fn idle(fetcher: &ReplicaFetcher, timeout: Duration) {
    let (sender, receiver) = oneshot::channel();
    *fetcher.wake.borrow_mut() = Some(sender);
    let timer = Box::pin(glommio::timer::sleep(timeout));
    match select(receiver, timer).await {
        Either::Left(_) | Either::Right(_) => {}
    }
    fetcher.wake.borrow_mut().take();
}

/// The position of every partition not parked, and when the earliest
/// parked one may go again.
fn positions(
    shard: &Shard,
    fetcher: &ReplicaFetcher,
) -> (BTreeMap<PartitionKey, FetchPosition>, Option<Duration>) {
    let now = Instant::now();
    let mut next_retry: Option<Duration> = None;
    let mut wanted = BTreeMap::new();
    for (key, state) in fetcher.partitions.borrow_mut().iter_mut() {
        if let Some(retry_at) = state.retry_at {
            if retry_at > now {
                let wait = retry_at - now;
                next_retry = Some(next_retry.map_or(wait, |known| known.min(wait)));
                continue;
            }
            state.retry_at = None;
        }
        if shard.replicas.is_truncating(key) {
            next_retry = Some(RETRY_BACKOFF);
            continue;
        }
        let Some(log) = shard.partition_log(&key.0, key.1) else {
            continue;
        };
        let fetch_offset = log.log_end_offset();
        if log.replica_end_offset() < fetch_offset {
            // Its sync failed (`wait_for_durable_ends`): not counted as
            // replicated until it is durable.
            let backoff = Duration::from_secs(1);
            state.retry_at = Some(now + backoff);
            next_retry = Some(next_retry.map_or(backoff, |known| known.min(backoff)));
            continue;
        }
        let position = FetchPosition {
            leader_epoch: state.leader_epoch,
            fetch_offset,
            last_fetched_epoch: log.latest_epoch(),
            log_start_offset: log.log_start_offset(),
        };
        wanted.insert(key.clone(), position);
    }
    (wanted, next_retry)
}

/// The Fetch request of one session fetch.
fn build_request(shard: &Shard, fetch: &SessionFetch) -> FetchRequest {
    let mut topics: BTreeMap<&str, Vec<FetchPartition>> = BTreeMap::new();
    for (key, at) in &fetch.send {
        topics.entry(&key.0).or_default().push(
            FetchPartition::default()
                .with_partition(key.1)
                .with_current_leader_epoch(at.leader_epoch)
                .with_fetch_offset(at.fetch_offset)
                .with_last_fetched_epoch(at.last_fetched_epoch)
                .with_log_start_offset(at.log_start_offset)
                .with_partition_max_bytes(PARTITION_MAX_BYTES),
        );
    }
    let mut forgotten: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for key in &fetch.forget {
        forgotten.entry(&key.0).or_default().push(key.1);
    }
    let topic_name = |name: &str| TopicName(StrBytes::from_string(name.to_string()));
    FetchRequest::default()
        .with_replica_id(BrokerId(shard.config.node_id))
        .with_max_wait_ms(FETCH_MAX_WAIT_MS)
        .with_min_bytes(1)
        .with_max_bytes(RESPONSE_MAX_BYTES)
        .with_isolation_level(0)
        .with_session_id(fetch.session_id)
        .with_session_epoch(fetch.epoch)
        .with_topics(
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    FetchTopic::default()
                        .with_topic(topic_name(name))
                        .with_partitions(partitions)
                })
                .collect(),
        )
        .with_forgotten_topics_data(
            forgotten
                .into_iter()
                .map(|(name, partitions)| {
                    ForgottenTopic::default()
                        .with_topic(topic_name(name))
                        .with_partitions(partitions)
                })
                .collect(),
        )
}

async fn handle_partition(
    shard: &Rc<Shard>,
    fetcher: &ReplicaFetcher,
    part: Sent,
    data: PartitionData,
) {
    if !fetcher.fetches(&part.key, part.leader_epoch) {
        return;
    }
    let Some(log) = shard.partition_log(&part.key.0, part.key.1) else {
        return;
    };
    if log.log_end_offset() != part.fetch_offset {
        // Cut or replaced meanwhile; the next round starts afresh.
        return;
    }
    if data.error_code != NONE {
        let code = data.error_code;
        let backoff = if code == KafkaError::OffsetOutOfRange.code() {
            // Below the leader's log start (retention or DeleteRecords ran
            // there while this replica was away, or it is new): what this
            // replica has is older than anything the leader keeps.
            match leader_log_start(shard, fetcher.leader, &part.key).await {
                Ok(start) if start > part.fetch_offset => {
                    restart_at(shard, fetcher, &part, log, start).await;
                    return;
                }
                Ok(start) => tracing::warn!(
                    topic = %part.key.0, partition = part.key.1, fetch_offset = part.fetch_offset,
                    leader_log_start = start, "the leader has no such offset; retrying"
                ),
                Err(reason) => tracing::warn!(
                    topic = %part.key.0, partition = part.key.1, fetch_offset = part.fetch_offset,
                    %reason, "the leader has no such offset and no log start; retrying"
                ),
            }
            Duration::from_secs(1)
        } else {
            tracing::debug!(topic = %part.key.0, partition = part.key.1, code, "replica fetch refused");
            RETRY_BACKOFF
        };
        fetcher.park(&part.key, part.leader_epoch, backoff);
        return;
    }
    if data.diverging_epoch.epoch >= 0 {
        let leader_end = EpochEndOffset {
            epoch: data.diverging_epoch.epoch,
            end_offset: data.diverging_epoch.end_offset,
        };
        truncate(shard, fetcher, &part, log, leader_end).await;
        return;
    }
    let records = data.records.unwrap_or_default();
    tracing::trace!(
        topic = %part.key.0, partition = part.key.1, fetch_offset = part.fetch_offset,
        bytes = records.len(), high_watermark = data.high_watermark, "fetched"
    );
    let appended = match append_all(&log, &records) {
        Ok(appended) => appended,
        Err(reason) => {
            tracing::warn!(topic = %part.key.0, partition = part.key.1, %reason, "cannot append the leader's batches");
            storage_recovery::reopen_if_full(shard, &part.key.0, part.key.1, &log);
            fetcher.park(&part.key, part.leader_epoch, Duration::from_secs(1));
            return;
        }
    };
    if let Some(last_offset) = appended {
        // Under `--flush always` this syncs: the next fetch offset is durable.
        let waited = log.wait_durable(last_offset).await;
        if let Err(error) = waited {
            tracing::warn!(topic = %part.key.0, partition = part.key.1, %error, "replicated write failed");
            storage_recovery::reopen_if_full(shard, &part.key.0, part.key.1, &log);
            fetcher.park(&part.key, part.leader_epoch, Duration::from_secs(1));
            return;
        }
    }
    if data.high_watermark >= 0 {
        log.advance_high_watermark(data.high_watermark);
    }
    if data.log_start_offset > log.log_start_offset()
        && data.log_start_offset <= log.high_watermark()
    {
        if let Err(error) = log.delete_records(data.log_start_offset).await {
            tracing::warn!(topic = %part.key.0, partition = part.key.1, %error, "cannot follow the leader's log start offset");
        }
    }
}

/// Appends every whole, valid batch of `records` past this log's end;
/// answers the last offset appended.
fn append_all(log: &PartitionLog, records: &Bytes) -> Result<Option<i64>, String> {
    let mut last = None;
    let now = now_ms();
    for batch in split_batches(records) {
        // A trailing partial batch (a leader cutting at max bytes) is
        // fetched again next round.
        let Ok(batch) = batch else {
            break;
        };
        let header = validate_batch(&batch).map_err(|error| error.to_string())?;
        if header.last_offset() < log.log_end_offset() {
            continue;
        }
        let info = log
            .append_replicated(batch, now)
            .map_err(|error| error.to_string())?;
        last = Some(info.last_offset);
    }
    Ok(last)
}

/// The leader's log start offset for `key` (ListOffsets EARLIEST as a
/// replica, Kafka's `fetchEarliestOffsetFromLeader`).
async fn leader_log_start(shard: &Shard, leader: i32, key: &PartitionKey) -> Result<i64, String> {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(shard.config.node_id))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_string(key.0.to_string())))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(key.1)
                .with_timestamp(EARLIEST_TIMESTAMP)])]);
    let response = peer_brokers::call(shard, leader, LIST_OFFSETS_VERSION, &request)
        .await
        .map_err(|error| error.to_string())?;
    let partition = response
        .topics
        .iter()
        .flat_map(|topic| &topic.partitions)
        .find(|partition| partition.partition_index == key.1)
        .ok_or_else(|| "no answer for the partition".to_string())?;
    if partition.error_code != NONE {
        return Err(format!("ListOffsets error {}", partition.error_code));
    }
    Ok(partition.offset)
}

/// Empties this replica and restarts it at the leader's log start.
async fn restart_at(
    shard: &Rc<Shard>,
    fetcher: &ReplicaFetcher,
    part: &Sent,
    log: PartitionLog,
    start_offset: i64,
) {
    tracing::info!(
        topic = %part.key.0, partition = part.key.1, from = log.log_end_offset(),
        to = start_offset, "below the leader's log start: restarting the replica there"
    );
    shard.replicas.set_truncating(&part.key, true);
    let result = log.truncate_fully_and_start_at(start_offset).await;
    shard.replicas.set_truncating(&part.key, false);
    match result {
        Ok(new_log) => {
            shard.replace_partition_log(&part.key.0, part.key.1, new_log.clone());
            let catalog = shard.catalog();
            sync_partition(shard, &catalog, part.key.clone(), new_log);
        }
        Err(error) => {
            tracing::error!(topic = %part.key.0, partition = part.key.1, %error, "cannot restart the replica");
            fetcher.park(&part.key, part.leader_epoch, Duration::from_secs(5));
        }
    }
}

/// Cuts this replica's divergent tail at the leader's diverging epoch.
async fn truncate(
    shard: &Rc<Shard>,
    fetcher: &ReplicaFetcher,
    part: &Sent,
    log: PartitionLog,
    leader_end: EpochEndOffset,
) {
    let epochs = log.leader_epochs();
    let point = truncation_point(
        &epochs,
        log.log_end_offset(),
        log.high_watermark(),
        leader_end,
    );
    let epoch_past_cut = epochs
        .latest()
        .is_some_and(|latest| latest.start_offset >= point.offset);
    if point.offset >= log.log_end_offset() && !epoch_past_cut {
        tracing::warn!(
            topic = %part.key.0, partition = part.key.1, ?leader_end,
            "diverging epoch with nothing to cut; retrying"
        );
        fetcher.park(&part.key, part.leader_epoch, Duration::from_secs(1));
        return;
    }
    tracing::info!(
        topic = %part.key.0, partition = part.key.1, from = log.log_end_offset(),
        to = point.offset, ?leader_end, "truncating to the leader's log"
    );
    shard.replicas.set_truncating(&part.key, true);
    let result = log.truncate_to(point.offset).await;
    match result {
        Ok(new_log) => {
            shard.replace_partition_log(&part.key.0, part.key.1, new_log.clone());
            shard.replicas.set_truncating(&part.key, false);
            let catalog = shard.catalog();
            sync_partition(shard, &catalog, part.key.clone(), new_log);
        }
        Err(error) => {
            shard.replicas.set_truncating(&part.key, false);
            tracing::error!(topic = %part.key.0, partition = part.key.1, %error, "truncation failed");
            fetcher.park(&part.key, part.leader_epoch, Duration::from_secs(5));
        }
    }
}
