//! Fetch: read each partition on its owner (routed: in place or over the mesh),
//! long-poll until `min_bytes` or `max_wait_ms`, and assemble one response in
//! request order within `max_bytes` (KIP-74: the first batch is returned even
//! if larger, so consumers always progress).
//!
//! Fetch sessions (KIP-227, `fetch_sessions`): a session's fetch reads its
//! partitions but the quiet ones (watched instead, and read again once
//! their logs move), and the answer leaves out those with no news.
//!
//! Runs on the shard that accepted the connection; `WaitForDataCall` runs
//! on the partitions' owner. Data plane: imports nothing from the control
//! plane.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::future::{select, select_all, Either, LocalBoxFuture};
use futures::FutureExt;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::fetch_sessions::{QuietCandidate, SessionError, WantedTopic, WatchQuiet};
use super::partition_calls::{ReadCall, ReadOutcome, ReadPart, WaitForDataCall};
use super::partition_ops::{self, PartitionLookup};
use super::routing::{self, ShardCall};
use super::scatter::{scatter_gather, OwnerWork};
use super::shard::Shard;
use crate::log::{DataSignal, SessionWatch};
use crate::protocol::errors::KafkaError;

/// Longest long-poll we honour, whatever the client asks: bounds how long a
/// request can pin memory and a waiter on the partitions.
pub const MAX_FETCH_WAIT: Duration = Duration::from_secs(30);

/// Fetch `isolation_level` of transactional consumers (KIP-98).
const READ_COMMITTED: i8 = 1;

/// One requested partition: either readable, or already answered with an error.
enum Target {
    Read(ReadPart),
    Failed(i16),
}

struct RequestedTopic {
    name: TopicName,
    topic_id: uuid::Uuid,
    partitions: Vec<(i32, Target)>,
}

pub async fn handle_fetch(shard: &Rc<Shard>, request: FetchRequest, version: i16) -> FetchResponse {
    // A session lives on the shard that created it; a fetch naming it on
    // another connection is served there.
    let owner = shard.fetch_sessions.shard_of(request.session_id);
    if let Some(owner) = owner.filter(|owner| *owner != shard.id) {
        let call = SessionFetchCall { request, version };
        return routing::call(shard, owner, call).await.unwrap_or_else(|_| {
            FetchResponse::default()
                .with_error_code(KafkaError::FetchSessionIdNotFound.code())
                .with_session_id(0)
        });
    }
    serve_fetch(shard, request, version).await
}

/// Serves a fetch on the shard holding its session (if any).
async fn serve_fetch(shard: &Rc<Shard>, request: FetchRequest, version: i16) -> FetchResponse {
    // Followers name themselves in `replica_id` up to v14, in
    // `ReplicaState` from v15 (KIP-903).
    let replica_id = if version >= 15 {
        request.replica_state.replica_id.0
    } else {
        request.replica_id.0
    };
    let generation = shard.partition_generation();
    let (context, mut wanted) =
        match shard
            .fetch_sessions
            .open(&request, version, replica_id >= 0, generation)
        {
            Ok(opened) => opened,
            Err(SessionError(error)) => {
                return FetchResponse::default()
                    .with_error_code(error.code())
                    .with_session_id(0);
            }
        };
    // What it asked, shaped by the response bytes waiting for sockets.
    let response_max_bytes = shard.response_memory.fetch_allowance(request.max_bytes);
    let reading = Reading {
        version,
        replica_id,
        read_committed: request.isolation_level == READ_COMMITTED,
        max_bytes: response_max_bytes,
    };
    // The quiet partitions of a consumer's session, watched instead of read.
    let watch = shard.fetch_sessions.watch_of(context);
    let mut topics = resolve_targets(shard, &wanted, &reading);
    let mut parts = readable_parts(&topics);
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    let max_wait =
        Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0)).min(MAX_FETCH_WAIT);
    let deadline = Instant::now() + max_wait;
    let mut outcomes = read_all(shard, &parts).await;
    loop {
        let total: usize = outcomes.iter().map(ReadOutcome::total_bytes).sum();
        // A diverging epoch is news for a follower too: it must truncate.
        let any_error = outcomes
            .iter()
            .any(|o| o.error_code != 0 || o.diverging_epoch.is_some());
        let now = Instant::now();
        let nothing_to_wait_for = parts.is_empty() && watch.is_none();
        if nothing_to_wait_for || total >= min_bytes.max(1) || any_error || now >= deadline {
            break;
        }
        wait_for_news(shard, &parts, watch.as_ref(), deadline - now).await;
        if watch.as_ref().is_some_and(|watch| watch.any_moved()) {
            // Quiet partitions moved: read them too from now on.
            let Some(refreshed) = shard
                .fetch_sessions
                .refresh(context, shard.partition_generation())
            else {
                break;
            };
            wanted = refreshed;
            topics = resolve_targets(shard, &wanted, &reading);
            parts = readable_parts(&topics);
        }
        outcomes = read_all(shard, &parts).await;
    }
    let mut response = assemble(topics, outcomes, response_max_bytes, version);
    // Quiet marks hold only if the shard's partitions stayed as they were
    // while this fetch read them.
    let unchanged = shard.partition_generation() == generation;
    shard.with_partition_lookup(|lookup| {
        let mut watch_quiet = |candidate: &QuietCandidate<'_>| watch_while_quiet(lookup, candidate);
        let watch_quiet: Option<WatchQuiet<'_>> = unchanged.then_some(&mut watch_quiet);
        shard
            .fetch_sessions
            .conclude(context, &wanted, &mut response, watch_quiet);
    });
    response
}

/// The parts of `topics` to read (those not already answered with an error).
fn readable_parts(topics: &[RequestedTopic]) -> Vec<ReadPart> {
    topics
        .iter()
        .flat_map(|topic| topic.partitions.iter())
        .filter_map(|(_, target)| match target {
            Target::Read(part) => Some(part.clone()),
            Target::Failed(_) => None,
        })
        .collect()
}

/// Watches a session partition with nothing new if its log is on this
/// shard and still quiet (`PartitionLog::watch_while_quiet`).
fn watch_while_quiet(lookup: &mut PartitionLookup<'_>, candidate: &QuietCandidate<'_>) -> bool {
    let log = if candidate.topic_id.is_nil() {
        lookup.log(candidate.topic.0.as_str(), candidate.partition)
    } else {
        lookup.log_by_id(&candidate.topic_id, candidate.partition)
    };
    log.is_some_and(|log| {
        log.watch_while_quiet(
            candidate.fetch_offset,
            candidate.high_watermark,
            candidate.log_start_offset,
            candidate.watch,
            candidate.watch_id,
        )
    })
}

/// Waits until any of `parts` has data, or a quiet partition of the
/// session moved, or `timeout`.
async fn wait_for_news(
    shard: &Rc<Shard>,
    parts: &[ReadPart],
    watch: Option<&Rc<SessionWatch>>,
    timeout: Duration,
) {
    match watch {
        None => wait_for_any_data(shard, parts, timeout).await,
        Some(watch) if parts.is_empty() => {
            let timer = glommio::timer::sleep(timeout);
            let _ = select(Box::pin(watch.moved()), Box::pin(timer)).await;
        }
        Some(watch) => {
            let data = wait_for_any_data(shard, parts, timeout);
            let _ = select(Box::pin(watch.moved()), Box::pin(data)).await;
        }
    }
}

/// A fetch naming a session another shard holds, served on that shard.
pub struct SessionFetchCall {
    request: FetchRequest,
    version: i16,
}

impl ShardCall<Shard> for SessionFetchCall {
    type Reply = FetchResponse;
    fn start(self, shard: &Rc<Shard>) -> LocalBoxFuture<'static, FetchResponse> {
        let shard = Rc::clone(shard);
        async move { serve_fetch(&shard, self.request, self.version).await }.boxed_local()
    }
}

/// What every partition of one fetch reads with.
struct Reading {
    version: i16,
    /// The follower fetching, or -1 for a consumer.
    replica_id: i32,
    read_committed: bool,
    max_bytes: usize,
}

fn resolve_targets(
    shard: &Shard,
    wanted: &[WantedTopic],
    reading: &Reading,
) -> Vec<RequestedTopic> {
    let catalog = shard.catalog();
    wanted
        .iter()
        .map(|fetch_topic| {
            let (topic, missing_code) = if reading.version >= 13 {
                (
                    catalog.topic_by_id(&fetch_topic.topic_id),
                    KafkaError::UnknownTopicId.code(),
                )
            } else {
                (
                    catalog.topic(fetch_topic.name.0.as_str()),
                    KafkaError::UnknownTopicOrPartition.code(),
                )
            };
            let partitions = fetch_topic
                .partitions
                .iter()
                .map(|p| {
                    let target = match topic {
                        None => Target::Failed(missing_code),
                        Some(topic) if !topic.has_partition(p.partition) => {
                            Target::Failed(KafkaError::UnknownTopicOrPartition.code())
                        }
                        Some(topic) => Target::Read(ReadPart {
                            topic: topic.name.clone(),
                            partition: p.partition,
                            fetch_offset: p.fetch_offset,
                            max_bytes: usize::try_from(p.partition_max_bytes)
                                .unwrap_or(0)
                                .clamp(1, reading.max_bytes),
                            read_committed: reading.read_committed,
                            current_leader_epoch: p.current_leader_epoch,
                            replica_id: reading.replica_id,
                            last_fetched_epoch: p.last_fetched_epoch,
                        }),
                    };
                    (p.partition, target)
                })
                .collect();
            RequestedTopic {
                name: match topic {
                    Some(topic) => TopicName(StrBytes::from_string(topic.name.to_string())),
                    None => fetch_topic.name.clone(),
                },
                topic_id: topic.map(|t| t.topic_id).unwrap_or(fetch_topic.topic_id),
                partitions,
            }
        })
        .collect()
}

/// Reads every part on its owner, in parallel; results in `parts` order.
async fn read_all(shard: &Rc<Shard>, parts: &[ReadPart]) -> Vec<ReadOutcome> {
    scatter_gather::<ReadWork>(shard, parts).await
}

struct ReadWork;

impl OwnerWork for ReadWork {
    type Item = ReadPart;
    type Outcome = ReadOutcome;
    fn owner(shard: &Shard, part: &ReadPart) -> usize {
        shard.owner_of(&part.topic, part.partition)
    }
    type Call = ReadCall;
    fn call(parts: Vec<ReadPart>) -> ReadCall {
        ReadCall(parts)
    }
    fn unreachable() -> ReadOutcome {
        ReadOutcome::error(KafkaError::NotLeaderOrFollower.code())
    }
}

/// Waits until any part's owner reports new data, or `timeout`.
async fn wait_for_any_data(shard: &Rc<Shard>, parts: &[ReadPart], timeout: Duration) {
    let mut by_owner: BTreeMap<usize, Vec<ReadPart>> = BTreeMap::new();
    for part in parts {
        by_owner
            .entry(shard.owner_of(&part.topic, part.partition))
            .or_default()
            .push(part.clone());
    }
    let mut waits: Vec<LocalBoxFuture<'_, ()>> = Vec::with_capacity(by_owner.len());
    for (owner, parts) in by_owner {
        let pending = routing::start(shard, owner, WaitForDataCall { parts, timeout }).await;
        if let routing::Pending::Failed(_) = pending {
            return;
        }
        waits.push(
            async move {
                let _ = pending.reply().await;
            }
            .boxed_local(),
        );
    }
    if waits.is_empty() {
        return;
    }
    let timer = glommio::timer::sleep(timeout);
    let _ = select(select_all(waits), Box::pin(timer)).await;
}

impl ShardCall<Shard> for WaitForDataCall {
    type Reply = ();
    fn start(self, shard: &Rc<Shard>) -> LocalBoxFuture<'static, ()> {
        let shard = Rc::clone(shard);
        async move { wait_for_local_data(&shard, &self.parts, self.timeout).await }.boxed_local()
    }
}

/// On the owner: resolves when any local part has data past its fetch offset,
/// or after `timeout`.
async fn wait_for_local_data(shard: &Shard, parts: &[ReadPart], timeout: Duration) {
    if partition_ops::any_data_available(shard, parts) {
        return;
    }
    let signal = Rc::new(DataSignal::default());
    let registered = shard.with_partition_lookup(|lookup| {
        parts
            .iter()
            .filter_map(|part| lookup.log(&part.topic, part.partition))
            .map(|log| log.register_signal(&signal))
            .count()
    });
    if registered == 0 {
        return;
    }
    let timer = Box::pin(glommio::timer::sleep(timeout));
    match select(Box::pin(signal.fired()), timer).await {
        Either::Left(_) | Either::Right(_) => {}
    }
}

fn assemble(
    topics: Vec<RequestedTopic>,
    outcomes: Vec<ReadOutcome>,
    max_bytes: usize,
    version: i16,
) -> FetchResponse {
    let mut outcomes = outcomes.into_iter();
    let mut budget = max_bytes;
    let mut first_data = true;
    let responses = topics
        .into_iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .into_iter()
                .map(|(partition, target)| {
                    let (outcome, read_committed) = match target {
                        Target::Failed(code) => (ReadOutcome::error(code), false),
                        Target::Read(part) => (
                            outcomes.next().unwrap_or_else(|| {
                                ReadOutcome::error(KafkaError::NotLeaderOrFollower.code())
                            }),
                            part.read_committed,
                        ),
                    };
                    let ReadOutcome {
                        error_code,
                        high_watermark,
                        last_stable_offset,
                        log_start_offset,
                        batches,
                        aborted_transactions,
                        diverging_epoch,
                    } = outcome;
                    let records = take_within_budget(batches, &mut budget, &mut first_data);
                    // read_committed answers list the aborted transactions
                    // (possibly none); read_uncommitted ones carry null.
                    let aborted = read_committed.then(|| {
                        aborted_transactions
                            .into_iter()
                            .map(|aborted| {
                                AbortedTransaction::default()
                                    .with_producer_id(ProducerId(aborted.producer_id))
                                    .with_first_offset(aborted.first_offset)
                            })
                            .collect()
                    });
                    let data = PartitionData::default()
                        .with_partition_index(partition)
                        .with_error_code(error_code)
                        .with_high_watermark(high_watermark)
                        .with_last_stable_offset(last_stable_offset)
                        .with_aborted_transactions(aborted)
                        .with_records(Some(records));
                    let data = match diverging_epoch {
                        Some((epoch, end_offset)) if version >= 12 => data.with_diverging_epoch(
                            EpochEndOffset::default()
                                .with_epoch(epoch)
                                .with_end_offset(end_offset),
                        ),
                        _ => data,
                    };
                    // Fields a version lacks must stay at their default, or the codec refuses.
                    if version >= 5 {
                        data.with_log_start_offset(log_start_offset)
                    } else {
                        data
                    }
                })
                .collect();
            let response = FetchableTopicResponse::default().with_partitions(partitions);
            if version >= 13 {
                response.with_topic_id(topic.topic_id)
            } else {
                response.with_topic(topic.name)
            }
        })
        .collect();
    FetchResponse::default().with_responses(responses)
}

/// Concatenates whole batches while the response budget lasts; the very first
/// batch of the response is always taken (KIP-74).
fn take_within_budget(batches: Vec<Bytes>, budget: &mut usize, first_data: &mut bool) -> Bytes {
    let mut taken: Vec<Bytes> = Vec::new();
    for batch in batches {
        if batch.len() > *budget && !*first_data {
            break;
        }
        *budget = budget.saturating_sub(batch.len());
        *first_data = false;
        taken.push(batch);
    }
    match taken.len() {
        0 => Bytes::new(),
        1 => taken.pop().unwrap_or_default(),
        _ => {
            let mut joined = BytesMut::with_capacity(taken.iter().map(Bytes::len).sum());
            for batch in &taken {
                joined.extend_from_slice(batch);
            }
            joined.freeze()
        }
    }
}
