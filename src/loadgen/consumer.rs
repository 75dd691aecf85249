//! One bench consumer: fetches its partitions from offset 0 with long-polls,
//! decodes every record (compressed or not), checks per-partition order and
//! loss from the payload's (producer, sequence), and records end-to-end
//! latency from each message's due time to its receipt. Partitions are split
//! statically among a group's consumers (round-robin by partition index):
//! the coordinator-based groups of the consumer-group issue are not needed
//! to measure the data path. Each connection keeps an incremental fetch
//! session (`fetch_session.rs`) unless the scenario turns them off, so a
//! fetch names only the partitions whose offset moved, and answers are
//! matched to partitions through a map: neither side of a fetch grows with
//! the partitions that have nothing new.

use std::collections::HashMap;
use std::io;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::RecordBatchDecoder;

use super::cluster::{ClusterView, PartitionLeader, FETCH_VERSION};
use super::fetch_session::{FetchSession, SessionOutcome};
use super::payload::read_payload;
use super::results::{record_latency, Measurements};
use super::shared::{CoreState, RunClock, Totals, DRAIN_TIMEOUT};
use crate::client::connection::Connection;
use crate::protocol::record_batch::{split_batches, BatchHeader, Compression, BATCH_HEADER_BYTES};
use crate::protocol::records::RecordIter;

/// Long-poll of one fetch.
const FETCH_MAX_WAIT_MS: i32 = 100;
/// Per-partition and per-response fetch sizes (librdkafka's defaults).
const PARTITION_MAX_BYTES: i32 = 1 << 20;
const RESPONSE_MAX_BYTES: i32 = 50 << 20;

pub struct ConsumerTask {
    pub group: usize,
    pub consumer: usize,
    pub partitions: Vec<PartitionLeader>,
    /// Incremental fetch sessions (KIP-227), or sessionless full fetches.
    pub fetch_sessions: bool,
    pub cluster: Rc<ClusterView>,
    pub clock: RunClock,
    pub core: Rc<CoreState>,
    pub totals: Arc<Totals>,
}

/// Per-partition read position and the order check's memory.
struct PartitionCursor {
    target: PartitionLeader,
    next_offset: i64,
    /// The fetch offset the broker's fetch session holds for the partition,
    /// as last sent; `None` before the partition was named.
    session_offset: Option<i64>,
    /// producer id -> next expected sequence.
    expected_sequence: HashMap<u32, u64>,
}

pub async fn run_consumer(task: ConsumerTask) {
    if task.partitions.is_empty() {
        return;
    }
    if let Err(error) = consume_until_done(&task).await {
        tracing::warn!(group = task.group, consumer = task.consumer, %error, "consumer stopped early");
        task.core.measurements.borrow_mut().consume_errors += 1;
    }
}

async fn consume_until_done(task: &ConsumerTask) -> io::Result<()> {
    // One connection per leader broker, each with the partitions it leads.
    let mut by_leader: HashMap<i32, Vec<PartitionCursor>> = HashMap::new();
    for target in &task.partitions {
        by_leader
            .entry(target.leader)
            .or_default()
            .push(PartitionCursor {
                target: target.clone(),
                next_offset: 0,
                session_offset: None,
                expected_sequence: HashMap::new(),
            });
    }
    let drain_deadline = task.clock.end_ns + DRAIN_TIMEOUT.as_nanos() as u64;
    let mut workers = Vec::new();
    for (leader, cursors) in by_leader {
        let connection = task
            .cluster
            .connect(
                leader,
                &format!("corelog-bench-consumer-{}-{}", task.group, task.consumer),
            )
            .await?;
        workers.push(fetch_loop(task, connection, cursors, drain_deadline));
    }
    for result in futures::future::join_all(workers).await {
        result?;
    }
    Ok(())
}

async fn fetch_loop(
    task: &ConsumerTask,
    connection: Rc<Connection>,
    mut cursors: Vec<PartitionCursor>,
    drain_deadline: u64,
) -> io::Result<()> {
    let positions = CursorPositions::new(&cursors);
    let mut session = FetchSession::new(task.fetch_sessions);
    loop {
        let now = task.clock.now_ns();
        if task.totals.group_caught_up(task.group) || now >= drain_deadline {
            return Ok(());
        }
        let request = fetch_request(&mut cursors, &session);
        let response: FetchResponse = connection
            .call(ApiKey::Fetch, FETCH_VERSION, &request)
            .await?;
        match session.on_answer(response.error_code, response.session_id) {
            SessionOutcome::Answered => {}
            SessionOutcome::Restarted => {
                task.core.measurements.borrow_mut().fetch_session_restarts += 1;
                continue;
            }
            SessionOutcome::Failed => {
                task.core.measurements.borrow_mut().consume_errors += 1;
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        }
        let mut unexpected_partitions = false;
        for topic in response.responses {
            for partition in topic.partitions {
                let Some(index) = positions.find(topic.topic.0.as_str(), partition.partition_index)
                else {
                    unexpected_partitions = true;
                    continue;
                };
                let cursor = &mut cursors[index];
                if partition.error_code != 0 {
                    task.core.measurements.borrow_mut().consume_errors += 1;
                    continue;
                }
                if let Some(records) = partition.records {
                    absorb_records(task, cursor, &records);
                }
            }
        }
        if unexpected_partitions {
            let mut measurements = task.core.measurements.borrow_mut();
            match session.on_unexpected_partitions() {
                SessionOutcome::Restarted => measurements.fetch_session_restarts += 1,
                _ => measurements.consume_errors += 1,
            }
        }
    }
}

/// Where each (topic, partition) of a fetch loop sits in its cursors, so an
/// answer's partitions are found in O(1) (a linear search compared topic
/// names for every partition of every answer: at 10,000 partitions that
/// was most of the load generator's time).
struct CursorPositions {
    by_topic: HashMap<String, HashMap<i32, usize>>,
}

impl CursorPositions {
    fn new(cursors: &[PartitionCursor]) -> CursorPositions {
        let mut by_topic: HashMap<String, HashMap<i32, usize>> = HashMap::new();
        for (index, cursor) in cursors.iter().enumerate() {
            by_topic
                .entry(cursor.target.topic.clone())
                .or_default()
                .insert(cursor.target.partition, index);
        }
        CursorPositions { by_topic }
    }

    fn find(&self, topic: &str, partition: i32) -> Option<usize> {
        self.by_topic.get(topic)?.get(&partition).copied()
    }
}

/// The next Fetch: every partition when the session's next request is full
/// (or without sessions); otherwise only those whose fetch offset moved
/// since it was last sent, as the Java `FetchSessionHandler` builds it. The
/// others stay in the broker's session at the offset it holds.
fn fetch_request(cursors: &mut [PartitionCursor], session: &FetchSession) -> FetchRequest {
    let full = session.is_full();
    let mut topics: Vec<FetchTopic> = Vec::new();
    for cursor in cursors.iter_mut() {
        if !full && cursor.session_offset == Some(cursor.next_offset) {
            continue;
        }
        cursor.session_offset = Some(cursor.next_offset);
        let partition = FetchPartition::default()
            .with_partition(cursor.target.partition)
            .with_fetch_offset(cursor.next_offset)
            .with_partition_max_bytes(PARTITION_MAX_BYTES);
        // Cursors come in topic order: the last topic is nearly always the one.
        let topic = match topics.last_mut() {
            Some(last) if last.topic.0.as_str() == cursor.target.topic => Some(last),
            _ => topics
                .iter_mut()
                .find(|t| t.topic.0.as_str() == cursor.target.topic),
        };
        match topic {
            Some(topic) => topic.partitions.push(partition),
            None => topics.push(
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(
                        cursor.target.topic.clone(),
                    )))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    FetchRequest::default()
        .with_session_id(session.session_id())
        .with_session_epoch(session.epoch())
        .with_max_wait_ms(FETCH_MAX_WAIT_MS)
        .with_min_bytes(1)
        .with_max_bytes(RESPONSE_MAX_BYTES)
        .with_topics(topics)
}

/// Decodes every whole batch, skipping records before the cursor (a fetch
/// returns the whole batch containing the asked offset). Uncompressed batches
/// are read in place; compressed ones are decompressed by the codec crate.
fn absorb_records(task: &ConsumerTask, cursor: &mut PartitionCursor, records: &bytes::Bytes) {
    let received_us = task.clock.wall_us(task.clock.now_ns());
    let mut seen = RecordTally::default();
    let mut measurements = task.core.measurements.borrow_mut();
    for batch in split_batches(records) {
        // A broker may end a response with a partial batch; the next fetch re-reads it.
        let Ok(batch) = batch else { break };
        let Ok(header) = BatchHeader::parse(&batch) else {
            measurements.consume_errors += 1;
            break;
        };
        if header.compression() == Compression::None {
            for record in RecordIter::new(&batch[BATCH_HEADER_BYTES..], header.records_count) {
                let offset = header.base_offset + record.offset_delta;
                let key_bytes = record.key.map(<[u8]>::len).unwrap_or(0);
                let value = record.value.unwrap_or(&[]);
                seen.absorb(
                    task,
                    cursor,
                    &mut measurements,
                    received_us,
                    offset,
                    key_bytes,
                    value,
                );
            }
        } else {
            let mut compressed = batch.clone();
            let Ok(record_set) = RecordBatchDecoder::decode(&mut compressed) else {
                measurements.consume_errors += 1;
                break;
            };
            for record in record_set.records {
                let key_bytes = record.key.as_ref().map(|k| k.len()).unwrap_or(0);
                let value = record.value.as_deref().unwrap_or(&[]);
                seen.absorb(
                    task,
                    cursor,
                    &mut measurements,
                    received_us,
                    record.offset,
                    key_bytes,
                    value,
                );
            }
        }
    }
    drop(measurements);
    let mut live = task.core.live.borrow_mut();
    live.consumed_messages += seen.messages;
    live.consumed_bytes += seen.bytes;
    if let Some(counter) = task.totals.consumed_by_group.get(task.group) {
        counter.fetch_add(seen.messages, Ordering::AcqRel);
    }
}

/// What one fetch response delivered.
#[derive(Default)]
struct RecordTally {
    messages: u64,
    bytes: u64,
}

impl RecordTally {
    /// Checks one record's order and records its latency.
    #[allow(clippy::too_many_arguments)]
    fn absorb(
        &mut self,
        task: &ConsumerTask,
        cursor: &mut PartitionCursor,
        measurements: &mut Measurements,
        received_us: u64,
        offset: i64,
        key_bytes: usize,
        value: &[u8],
    ) {
        if offset < cursor.next_offset {
            return;
        }
        cursor.next_offset = offset + 1;
        let size = (key_bytes + value.len()) as u64;
        self.messages += 1;
        self.bytes += size;
        let Some(payload) = read_payload(value) else {
            measurements.order_violations += 1;
            return;
        };
        let expected = cursor
            .expected_sequence
            .entry(payload.producer_id)
            .or_insert(0);
        if payload.sequence < *expected {
            measurements.duplicates += 1;
            return;
        }
        if payload.sequence > *expected {
            measurements.order_violations += 1;
        }
        *expected = payload.sequence + 1;
        let due_ns = task.clock.run_ns_of_wall_us(payload.due_time_us);
        if task.clock.is_measured(due_ns) {
            record_latency(
                &mut measurements.end_to_end_latency_us,
                received_us.saturating_sub(payload.due_time_us),
            );
            measurements.consumed_messages += 1;
            measurements.consumed_bytes += size;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursors(topic: &str, count: i32) -> Vec<PartitionCursor> {
        (0..count)
            .map(|partition| PartitionCursor {
                target: PartitionLeader {
                    topic: topic.into(),
                    partition,
                    leader: 1,
                },
                next_offset: 0,
                session_offset: None,
                expected_sequence: HashMap::new(),
            })
            .collect()
    }

    fn named(request: &FetchRequest) -> Vec<(String, i32, i64)> {
        request
            .topics
            .iter()
            .flat_map(|topic| {
                topic.partitions.iter().map(|partition| {
                    (
                        topic.topic.0.to_string(),
                        partition.partition,
                        partition.fetch_offset,
                    )
                })
            })
            .collect()
    }

    #[test]
    fn incremental_fetches_name_only_partitions_whose_offset_moved() {
        let mut cursors = cursors("a", 4);
        let mut session = FetchSession::new(true);
        let full = fetch_request(&mut cursors, &session);
        assert_eq!((full.session_id, full.session_epoch), (0, 0));
        assert_eq!(named(&full).len(), 4, "the first fetch is full");
        session.on_answer(0, 21);
        cursors[2].next_offset = 10;
        let incremental = fetch_request(&mut cursors, &session);
        assert_eq!((incremental.session_id, incremental.session_epoch), (21, 1));
        assert_eq!(named(&incremental), vec![("a".to_string(), 2, 10)]);
        session.on_answer(0, 21);
        let nothing_moved = fetch_request(&mut cursors, &session);
        assert_eq!(nothing_moved.session_epoch, 2);
        assert!(nothing_moved.topics.is_empty());
        // The broker lost the session: the next fetch is full again.
        session.on_answer(crate::loadgen::fetch_session::FETCH_SESSION_ID_NOT_FOUND, 0);
        let again = fetch_request(&mut cursors, &session);
        assert_eq!((again.session_id, again.session_epoch), (0, 0));
        assert_eq!(named(&again).len(), 4);
    }

    #[test]
    fn without_sessions_every_fetch_names_every_partition() {
        let mut cursors = cursors("a", 3);
        cursors.extend(self::cursors("b", 2));
        let mut session = FetchSession::new(false);
        for _ in 0..2 {
            let request = fetch_request(&mut cursors, &session);
            assert_eq!((request.session_id, request.session_epoch), (0, -1));
            assert_eq!(request.topics.len(), 2);
            assert_eq!(named(&request).len(), 5);
            session.on_answer(0, 0);
        }
    }

    #[test]
    fn answers_find_their_cursor_by_topic_and_partition() {
        let mut cursors = cursors("a", 3);
        cursors.extend(self::cursors("b", 2));
        let positions = CursorPositions::new(&cursors);
        assert_eq!(positions.find("b", 1), Some(4));
        assert_eq!(positions.find("a", 0), Some(0));
        assert_eq!(positions.find("a", 3), None);
        assert_eq!(positions.find("c", 0), None);
    }
}
