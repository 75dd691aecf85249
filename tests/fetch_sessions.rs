//! Fetch sessions (KIP-227) as the Java broker keeps them, driven with raw Fetch requests
//! through the `kafka-protocol` codec: v12 names topics, v13+ carries topic ids (read
//! from Metadata v12), and the newest version the broker advertises in ApiVersions.
//!
//! The rules and the exact answers come from Kafka's
//! `core/src/main/scala/kafka/server/FetchSession.scala` (`FetchManager.newContext`,
//! `SessionlessFetchContext`, `FullFetchContext`, `IncrementalFetchContext`,
//! `SessionErrorContext`, `CachedPartition.maybeUpdateResponseData`) and
//! `clients/src/main/java/org/apache/kafka/common/requests/FetchMetadata.java`:
//!
//! | request session id | epoch  | meaning                                               |
//! |--------------------|--------|-------------------------------------------------------|
//! | 0                  | -1     | full fetch, no session (answered with session id 0)   |
//! | 0                  | 0      | full fetch, creates a session that expects epoch 1    |
//! | X                  | 0      | closes X, full fetch, creates a new session           |
//! | X                  | -1     | closes X, full fetch, no session                      |
//! | X                  | n > 0  | incremental fetch if X exists and expects epoch n     |
//!
//! An incremental answer holds only the partitions with news: records, an error, a
//! changed high watermark or log start offset, a diverging epoch, a preferred replica.
//! Sessions belong to the broker, not to a connection, so every broker here runs two
//! shards and one test moves a session between connections.

#[path = "common/codec.rs"]
mod codec;
mod common;

use std::collections::{BTreeMap, HashMap};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, CreateTopicsRequest, DeleteRecordsRequest, DeleteTopicsRequest,
    FetchRequest, FetchResponse, MetadataRequest, ProduceRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use common::wire::{connect, record_batch_v2};
use common::{poll_until, unique_topic, Broker};

const CLIENT_ID: &str = "corelog-fetch-sessions-test";

/// Shards per broker: two, so a session's connections and partitions may live on
/// different shards while Kafka keeps one session cache per broker.
const SHARDS: usize = 2;

/// Error codes of the Kafka protocol guide.
const NONE: i16 = 0;
const OFFSET_OUT_OF_RANGE: i16 = 1;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const UNKNOWN_TOPIC_ID: i16 = 100;
const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
const INVALID_FETCH_SESSION_EPOCH: i16 = 71;
const FETCH_SESSION_TOPIC_ID_ERROR: i16 = 106;

/// `FetchMetadata.INVALID_SESSION_ID`, `INITIAL_EPOCH` and `FINAL_EPOCH`.
const NO_SESSION: i32 = 0;
const INITIAL_EPOCH: i32 = 0;
const FINAL_EPOCH: i32 = -1;

/// The last Fetch version that names topics; v13 replaced names with ids (KIP-516).
const LAST_VERSION_WITH_NAMES: i16 = 12;
const FIRST_VERSION_WITH_IDS: i16 = 13;

/// Long-poll of a fetch that expects data already there: the answer comes at once, and
/// this only bounds a broken broker.
const DATA_WAIT_MS: i32 = 5_000;
/// Long-poll of a fetch that expects nothing new: the broker answers after this.
const IDLE_WAIT_MS: i32 = 300;
const PARTITION_MAX_BYTES: i32 = 1 << 20;
const RESPONSE_MAX_BYTES: i32 = 4 << 20;
/// How long a created topic may take to show every partition with a leader.
const TOPIC_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A topic as a fetch request names it: by name up to v12, by id from v13.
#[derive(Debug, Clone)]
struct Topic {
    name: String,
    id: Uuid,
}

/// One Fetch request as a test describes it.
#[derive(Debug, Clone)]
struct Fetch {
    session_id: i32,
    session_epoch: i32,
    max_wait_ms: i32,
    max_bytes: i32,
    /// `(topic, partition, fetch offset)` in request order.
    partitions: Vec<(Topic, i32, i64)>,
    forgotten: Vec<(Topic, i32)>,
}

impl Fetch {
    /// `session_id` and `session_epoch` as given; no partitions, no long-poll.
    fn session(session_id: i32, session_epoch: i32) -> Fetch {
        Fetch {
            session_id,
            session_epoch,
            max_wait_ms: 0,
            max_bytes: RESPONSE_MAX_BYTES,
            partitions: Vec::new(),
            forgotten: Vec::new(),
        }
    }

    /// Session id 0, epoch -1: a full fetch that neither uses nor creates a session.
    fn sessionless() -> Fetch {
        Fetch::session(NO_SESSION, FINAL_EPOCH)
    }

    /// Session id 0, epoch 0: a full fetch that asks for a new session.
    fn new_session() -> Fetch {
        Fetch::session(NO_SESSION, INITIAL_EPOCH)
    }

    fn partition(mut self, topic: &Topic, partition: i32, fetch_offset: i64) -> Fetch {
        self.partitions
            .push((topic.clone(), partition, fetch_offset));
        self
    }

    fn forget(mut self, topic: &Topic, partition: i32) -> Fetch {
        self.forgotten.push((topic.clone(), partition));
        self
    }

    fn max_wait_ms(mut self, max_wait_ms: i32) -> Fetch {
        self.max_wait_ms = max_wait_ms;
        self
    }

    fn max_bytes(mut self, max_bytes: i32) -> Fetch {
        self.max_bytes = max_bytes;
        self
    }

    fn encode(&self, version: i16) -> FetchRequest {
        let mut topics: Vec<FetchTopic> = Vec::new();
        for (topic, partition, fetch_offset) in &self.partitions {
            let entry = FetchPartition::default()
                .with_partition(*partition)
                .with_fetch_offset(*fetch_offset)
                .with_partition_max_bytes(PARTITION_MAX_BYTES);
            match topics.last_mut() {
                Some(last) if names(last, topic, version) => last.partitions.push(entry),
                _ => topics.push(topic_field(
                    FetchTopic::default().with_partitions(vec![entry]),
                    topic,
                    version,
                )),
            }
        }
        let forgotten = self
            .forgotten
            .iter()
            .map(|(topic, partition)| {
                let forgotten = ForgottenTopic::default().with_partitions(vec![*partition]);
                if version >= FIRST_VERSION_WITH_IDS {
                    forgotten.with_topic_id(topic.id)
                } else {
                    forgotten.with_topic(topic_name(&topic.name))
                }
            })
            .collect();
        FetchRequest::default()
            .with_max_wait_ms(self.max_wait_ms)
            .with_min_bytes(1)
            .with_max_bytes(self.max_bytes)
            .with_session_id(self.session_id)
            .with_session_epoch(self.session_epoch)
            .with_topics(topics)
            .with_forgotten_topics_data(forgotten)
    }
}

/// Whether a request's `FetchTopic` entry is `topic` in the form `version` uses.
fn names(entry: &FetchTopic, topic: &Topic, version: i16) -> bool {
    if version >= FIRST_VERSION_WITH_IDS {
        entry.topic_id == topic.id
    } else {
        entry.topic.0.as_str() == topic.name
    }
}

fn topic_field(entry: FetchTopic, topic: &Topic, version: i16) -> FetchTopic {
    if version >= FIRST_VERSION_WITH_IDS {
        entry.with_topic_id(topic.id)
    } else {
        entry.with_topic(topic_name(&topic.name))
    }
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// One partition of a Fetch answer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PartitionAnswer {
    error_code: i16,
    high_watermark: i64,
    log_start_offset: i64,
    /// The offset of every record in the returned batches, in order.
    offsets: Vec<i64>,
}

/// A Fetch answer, partitions keyed by `(topic name, partition)`.
#[derive(Debug)]
struct Answer {
    error_code: i16,
    session_id: i32,
    partitions: BTreeMap<(String, i32), PartitionAnswer>,
}

impl Answer {
    /// The `(topic, partition)` pairs answered, sorted.
    fn keys(&self) -> Vec<(String, i32)> {
        self.partitions.keys().cloned().collect()
    }

    fn partition(&self, topic: &Topic, partition: i32) -> &PartitionAnswer {
        self.partitions
            .get(&(topic.name.clone(), partition))
            .unwrap_or_else(|| panic!("{}/{partition} not answered: {self:#?}", topic.name))
    }

    /// A top-level session error: Kafka's `SessionErrorContext` answers `error`, session
    /// id 0 and no partitions ("we don't know what partitions were supposed to be in
    /// this request").
    fn assert_session_error(&self, error: i16, what: &str) {
        assert_eq!(
            (self.error_code, self.session_id, self.keys()),
            (error, NO_SESSION, vec![]),
            "{what}: {self:#?}"
        );
    }

    /// A successful answer in session `session_id` (0: no session).
    fn assert_ok_in(&self, session_id: i32, what: &str) {
        assert_eq!(
            (self.error_code, self.session_id),
            (NONE, session_id),
            "{what}: {self:#?}"
        );
    }
}

/// Produces `count` records to one partition on `stream`, one batch (one Produce v9
/// request) per record; returns the new high watermark.
fn produce_on(stream: &mut TcpStream, topic: &Topic, partition: i32, count: usize) -> i64 {
    let mut high_watermark = -1;
    for id in 0..count {
        let value = format!("{}-{partition}-{id}", topic.name);
        let batch = record_batch_v2(&[(b"key", value.as_bytes())], 1_700_000_000_000);
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(10_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(topic_name(&topic.name))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(Bytes::from(batch)))])]);
        let answer = codec::call(stream, 9, &request);
        let written = &answer.responses[0].partition_responses[0];
        assert_eq!(written.error_code, NONE, "Produce: {answer:?}");
        high_watermark = written.base_offset + 1;
    }
    high_watermark
}

/// `(topic, partition)` keys for comparing against [`Answer::keys`].
fn keys(pairs: &[(&Topic, i32)]) -> Vec<(String, i32)> {
    let mut keys: Vec<(String, i32)> = pairs
        .iter()
        .map(|(topic, partition)| (topic.name.clone(), *partition))
        .collect();
    keys.sort();
    keys
}

/// The offset of every record in a Fetch answer's record batches, from each batch
/// header (base offset at byte 0, batch length at 8, last offset delta at 23).
fn record_offsets(records: Option<&Bytes>) -> Vec<i64> {
    let Some(mut rest) = records.map(|records| &records[..]) else {
        return Vec::new();
    };
    let mut offsets = Vec::new();
    while rest.len() >= 27 {
        let base_offset = i64::from_be_bytes(rest[0..8].try_into().expect("8 bytes"));
        let batch_length = i32::from_be_bytes(rest[8..12].try_into().expect("4 bytes"));
        let last_offset_delta = i32::from_be_bytes(rest[23..27].try_into().expect("4 bytes"));
        let end = 12 + usize::try_from(batch_length).expect("non-negative batch length");
        if end > rest.len() {
            break; // A partial trailing batch carries no whole record.
        }
        offsets.extend(base_offset..=base_offset + i64::from(last_offset_delta));
        rest = &rest[end..];
    }
    offsets
}

/// A broker with [`SHARDS`] shards, one connection to it, and the topics a test made.
struct Fixture {
    broker: Broker,
    stream: TcpStream,
    newest_fetch_version: i16,
    names_by_id: HashMap<Uuid, String>,
}

impl Fixture {
    fn start() -> Fixture {
        let broker = Broker::start(SHARDS, &[]);
        let mut stream = connect(&broker.bootstrap());
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("corelog-tests"))
            .with_client_software_version(StrBytes::from_static_str("0.1.0"));
        let answer = codec::call(&mut stream, 3, &request);
        let fetch = answer
            .api_keys
            .iter()
            .find(|api| api.api_key == ApiKey::Fetch as i16)
            .expect("Fetch advertised in ApiVersions");
        assert!(
            fetch.min_version <= LAST_VERSION_WITH_NAMES
                && fetch.max_version >= FIRST_VERSION_WITH_IDS,
            "Fetch v{}-{} advertised; these tests need v12 and v13",
            fetch.min_version,
            fetch.max_version
        );
        Fixture {
            broker,
            stream,
            newest_fetch_version: fetch.max_version,
            names_by_id: HashMap::new(),
        }
    }

    /// v12 (topic names), v13 (topic ids) and the newest advertised version.
    fn versions(&self) -> Vec<i16> {
        let mut versions = vec![
            LAST_VERSION_WITH_NAMES,
            FIRST_VERSION_WITH_IDS,
            self.newest_fetch_version,
        ];
        versions.dedup();
        versions
    }

    fn bootstrap(&self) -> String {
        self.broker.bootstrap()
    }

    /// CreateTopics v7, then Metadata v12 until every partition has a leader; the
    /// topic's id comes from Metadata.
    fn create_topic(&mut self, prefix: &str, partitions: i32) -> Topic {
        let name = unique_topic(prefix);
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(vec![CreatableTopic::default()
                .with_name(topic_name(&name))
                .with_num_partitions(partitions)
                .with_replication_factor(1)]);
        let created = codec::call(&mut self.stream, 7, &request);
        assert_eq!(
            created.topics[0].error_code, NONE,
            "CreateTopics {name}: {created:?}"
        );
        let stream = &mut self.stream;
        let id = poll_until(TOPIC_READY_TIMEOUT, "topic has leaders", || {
            let request = MetadataRequest::default().with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(topic_name(&name))),
            ]));
            let metadata = codec::call(stream, 12, &request);
            let topic = metadata.topics.first()?;
            let ready = topic.error_code == NONE
                && topic.partitions.len() == usize::try_from(partitions).expect("positive")
                && topic.partitions.iter().all(|p| p.leader_id.0 >= 0);
            (ready && !topic.topic_id.is_nil()).then_some(topic.topic_id)
        });
        self.names_by_id.insert(id, name.clone());
        Topic { name, id }
    }

    /// Produces `count` records to one partition, one batch (one Produce v9 request) per
    /// record so a fetch from any offset starts at that offset; returns the new high
    /// watermark.
    fn produce(&mut self, topic: &Topic, partition: i32, count: usize) -> i64 {
        produce_on(&mut self.stream, topic, partition, count)
    }

    /// DeleteTopics v4, by name.
    fn delete_topic(&mut self, topic: &Topic) {
        let request = DeleteTopicsRequest::default()
            .with_timeout_ms(10_000)
            .with_topic_names(vec![topic_name(&topic.name)]);
        let answer = codec::call(&mut self.stream, 4, &request);
        assert_eq!(
            answer.responses[0].error_code, NONE,
            "DeleteTopics: {answer:?}"
        );
    }

    /// DeleteRecords v2: moves the partition's log start offset to `offset`.
    fn delete_records(&mut self, topic: &Topic, partition: i32, offset: i64) {
        let request = DeleteRecordsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(vec![DeleteRecordsTopic::default()
                .with_name(topic_name(&topic.name))
                .with_partitions(vec![DeleteRecordsPartition::default()
                    .with_partition_index(partition)
                    .with_offset(offset)])]);
        let answer = codec::call(&mut self.stream, 2, &request);
        let deleted = &answer.topics[0].partitions[0];
        assert_eq!(
            (deleted.error_code, deleted.low_watermark),
            (NONE, offset),
            "DeleteRecords: {answer:?}"
        );
    }

    /// Sends `fetch` at `version` on the fixture's connection.
    fn fetch(&mut self, version: i16, fetch: &Fetch) -> Answer {
        let response = codec::call(&mut self.stream, version, &fetch.encode(version));
        self.answer(response, version)
    }

    /// Sends `fetch` at `version` on another connection.
    fn fetch_on(&self, stream: &mut TcpStream, version: i16, fetch: &Fetch) -> Answer {
        let response = codec::call(stream, version, &fetch.encode(version));
        self.answer(response, version)
    }

    fn answer(&self, response: FetchResponse, version: i16) -> Answer {
        let mut partitions = BTreeMap::new();
        for topic in &response.responses {
            let name = if version >= FIRST_VERSION_WITH_IDS {
                self.names_by_id
                    .get(&topic.topic_id)
                    .cloned()
                    .unwrap_or_else(|| format!("unknown topic id {}", topic.topic_id))
            } else {
                topic.topic.0.to_string()
            };
            for partition in &topic.partitions {
                let answer = PartitionAnswer {
                    error_code: partition.error_code,
                    high_watermark: partition.high_watermark,
                    log_start_offset: partition.log_start_offset,
                    offsets: record_offsets(partition.records.as_ref()),
                };
                let previous = partitions.insert((name.clone(), partition.partition_index), answer);
                assert!(
                    previous.is_none(),
                    "{name}/{} answered twice: {response:?}",
                    partition.partition_index
                );
            }
        }
        Answer {
            error_code: response.error_code,
            session_id: response.session_id,
            partitions,
        }
    }

    /// Creates a session over every `(topic, partition)` at offset 0 and returns its id.
    fn open_session(&mut self, version: i16, partitions: &[(&Topic, i32)]) -> i32 {
        let fetch = partitions
            .iter()
            .fold(Fetch::new_session(), |fetch, (topic, partition)| {
                fetch.partition(topic, *partition, 0)
            });
        let answer = self.fetch(version, &fetch);
        assert_eq!(
            answer.error_code, NONE,
            "v{version} new session: {answer:#?}"
        );
        assert_ne!(
            answer.session_id, NO_SESSION,
            "v{version} new session: {answer:#?}"
        );
        assert_eq!(answer.keys(), keys(partitions), "v{version} new session");
        answer.session_id
    }

    fn stop(mut self) {
        self.broker.stop_graceful();
    }
}

/// Session id 0 with epoch -1 is a sessionless full fetch (`SessionlessFetchContext`):
/// answered with session id 0 and every requested partition, every time.
#[test]
fn sessionless_full_fetch_answers_session_id_zero_and_every_partition() {
    let mut fixture = Fixture::start();
    for version in fixture.versions() {
        let topic = fixture.create_topic("sessionless", 2);
        fixture.produce(&topic, 0, 2);
        let fetch = Fetch::sessionless()
            .partition(&topic, 0, 0)
            .partition(&topic, 1, 0);
        for attempt in 0..2 {
            let answer = fixture.fetch(version, &fetch);
            let what = format!("v{version} sessionless fetch {attempt}");
            answer.assert_ok_in(NO_SESSION, &what);
            assert_eq!(answer.keys(), keys(&[(&topic, 0), (&topic, 1)]), "{what}");
            let with_data = answer.partition(&topic, 0);
            assert_eq!(
                (
                    with_data.error_code,
                    with_data.high_watermark,
                    &with_data.offsets[..]
                ),
                (NONE, 2, &[0, 1][..]),
                "{what}"
            );
            let empty = answer.partition(&topic, 1);
            assert_eq!(
                (empty.error_code, empty.high_watermark, empty.offsets.len()),
                (NONE, 0, 0),
                "{what}"
            );
        }
    }
    fixture.stop();
}

/// Session id 0 with epoch 0 creates a session (`FullFetchContext`): a new id, positive
/// and unique on the broker (`FetchSessionCacheShard.newSessionId`), and a full answer.
#[test]
fn full_fetch_with_epoch_zero_creates_a_session_answering_every_partition() {
    let mut fixture = Fixture::start();
    let mut seen_ids = Vec::new();
    for version in fixture.versions() {
        let topic = fixture.create_topic("new-session", 3);
        fixture.produce(&topic, 1, 3);
        let answer = fixture.fetch(
            version,
            &Fetch::new_session()
                .partition(&topic, 0, 0)
                .partition(&topic, 1, 0)
                .partition(&topic, 2, 0),
        );
        let what = format!("v{version} full fetch with epoch 0");
        assert_eq!(answer.error_code, NONE, "{what}: {answer:#?}");
        assert!(
            answer.session_id > 0,
            "{what}: session id {}",
            answer.session_id
        );
        assert!(
            !seen_ids.contains(&answer.session_id),
            "{what}: session id {} given twice ({seen_ids:?})",
            answer.session_id
        );
        seen_ids.push(answer.session_id);
        assert_eq!(
            answer.keys(),
            keys(&[(&topic, 0), (&topic, 1), (&topic, 2)]),
            "{what}"
        );
        assert_eq!(answer.partition(&topic, 1).offsets, vec![0, 1, 2], "{what}");
        assert_eq!(answer.partition(&topic, 1).high_watermark, 3, "{what}");
        assert_eq!(answer.partition(&topic, 2).high_watermark, 0, "{what}");
    }
    fixture.stop();
}

/// An incremental fetch lists no partitions when the client's positions did not move,
/// and is answered with only the partitions that have news
/// (`CachedPartition.maybeUpdateResponseData`); with nothing new it long-polls for
/// `max_wait_ms` and answers no partitions, no error, the same session.
#[test]
fn incremental_fetch_answers_only_partitions_with_new_records() {
    let mut fixture = Fixture::start();
    for version in fixture.versions() {
        let topic = fixture.create_topic("incremental", 3);
        let all = [(&topic, 0), (&topic, 1), (&topic, 2)];
        let session = fixture.open_session(version, &all);

        let high_watermark = fixture.produce(&topic, 1, 3);
        let answer = fixture.fetch(
            version,
            &Fetch::session(session, 1).max_wait_ms(DATA_WAIT_MS),
        );
        let what = format!("v{version} epoch 1 after producing to partition 1");
        answer.assert_ok_in(session, &what);
        assert_eq!(answer.keys(), keys(&[(&topic, 1)]), "{what}");
        let news = answer.partition(&topic, 1);
        assert_eq!(
            (news.error_code, news.high_watermark, &news.offsets[..]),
            (NONE, high_watermark, &[0, 1, 2][..]),
            "{what}"
        );

        // The client moves partition 1 to its new position; nothing else changes.
        let asked = Instant::now();
        let answer = fixture.fetch(
            version,
            &Fetch::session(session, 2)
                .partition(&topic, 1, high_watermark)
                .max_wait_ms(IDLE_WAIT_MS),
        );
        let waited = asked.elapsed();
        let what = format!("v{version} epoch 2 with nothing new");
        answer.assert_ok_in(session, &what);
        assert_eq!(answer.keys(), vec![], "{what}");
        // Kafka parks the fetch in purgatory until max_wait_ms: a lower bound, not speed.
        assert!(
            waited >= Duration::from_millis(u64::try_from(IDLE_WAIT_MS * 8 / 10).unwrap()),
            "{what}: answered after {waited:?}, max_wait_ms is {IDLE_WAIT_MS}"
        );

        // The session still works after an empty answer.
        let high_watermark_0 = fixture.produce(&topic, 0, 1);
        let answer = fixture.fetch(
            version,
            &Fetch::session(session, 3).max_wait_ms(DATA_WAIT_MS),
        );
        let what = format!("v{version} epoch 3 after producing to partition 0");
        answer.assert_ok_in(session, &what);
        assert_eq!(answer.keys(), keys(&[(&topic, 0)]), "{what}");
        assert_eq!(answer.partition(&topic, 0).offsets, vec![0], "{what}");
        assert_eq!(
            answer.partition(&topic, 0).high_watermark,
            high_watermark_0,
            "{what}"
        );
    }
    fixture.stop();
}

/// Partitions listed in an incremental fetch update the cached fetch position or join
/// the session; `forgotten_topics_data` removes them (`FetchSession.update`). A newly
/// added partition is always answered, even without records: its cached high watermark
/// starts at -1.
#[test]
fn incremental_fetch_updates_adds_and_forgets_partitions() {
    let mut fixture = Fixture::start();
    for version in fixture.versions() {
        let first = fixture.create_topic("update-first", 2);
        let second = fixture.create_topic("update-second", 1);
        let first_end = fixture.produce(&first, 0, 5);
        fixture.produce(&second, 0, 2);
        let session = fixture.open_session(version, &[(&first, 0)]);

        // A new fetch offset for a cached partition is honoured.
        let answer = fixture.fetch(version, &Fetch::session(session, 1).partition(&first, 0, 3));
        let what = format!("v{version} epoch 1 moving {}/0 to offset 3", first.name);
        answer.assert_ok_in(session, &what);
        assert_eq!(answer.keys(), keys(&[(&first, 0)]), "{what}");
        assert_eq!(answer.partition(&first, 0).offsets, vec![3, 4], "{what}");

        // Two partitions join: one with records, one empty; the cached one has caught up.
        let answer = fixture.fetch(
            version,
            &Fetch::session(session, 2)
                .partition(&first, 0, first_end)
                .partition(&first, 1, 0)
                .partition(&second, 0, 0),
        );
        let what = format!("v{version} epoch 2 adding two partitions");
        answer.assert_ok_in(session, &what);
        assert_eq!(answer.keys(), keys(&[(&first, 1), (&second, 0)]), "{what}");
        assert_eq!(answer.partition(&second, 0).offsets, vec![0, 1], "{what}");
        let empty = answer.partition(&first, 1);
        assert_eq!(
            (empty.error_code, empty.high_watermark, empty.offsets.len()),
            (NONE, 0, 0),
            "{what}"
        );

        // Forgotten, the second topic's partition is not answered even with new records
        // past its cached position; the first topic's new record is.
        fixture.produce(&second, 0, 1);
        fixture.produce(&first, 0, 1);
        let answer = fixture.fetch(
            version,
            &Fetch::session(session, 3)
                .forget(&second, 0)
                .max_wait_ms(DATA_WAIT_MS),
        );
        let what = format!("v{version} epoch 3 forgetting {}/0", second.name);
        answer.assert_ok_in(session, &what);
        assert_eq!(answer.keys(), keys(&[(&first, 0)]), "{what}");
        assert_eq!(
            answer.partition(&first, 0).offsets,
            vec![first_end],
            "{what}"
        );

        // Still forgotten later: more records there change nothing.
        fixture.produce(&second, 0, 1);
        let answer = fixture.fetch(
            version,
            &Fetch::session(session, 4)
                .partition(&first, 0, first_end + 1)
                .max_wait_ms(IDLE_WAIT_MS),
        );
        let what = format!("v{version} epoch 4 after the forgotten partition got data");
        answer.assert_ok_in(session, &what);
        assert_eq!(answer.keys(), vec![], "{what}");
    }
    fixture.stop();
}

/// `FetchManager.newContext`: an incremental fetch whose epoch is not the one the session
/// expects gets INVALID_FETCH_SESSION_EPOCH, one for an unknown session id gets
/// FETCH_SESSION_ID_NOT_FOUND; both through `SessionErrorContext` (session id 0, no
/// partitions). The session itself is untouched: its expected epoch does not move.
#[test]
fn wrong_epoch_and_unknown_session_id_are_top_level_errors() {
    let mut fixture = Fixture::start();
    for version in fixture.versions() {
        let topic = fixture.create_topic("epochs", 2);
        let session = fixture.open_session(version, &[(&topic, 0), (&topic, 1)]);
        let answer = fixture.fetch(version, &Fetch::session(session, 1));
        answer.assert_ok_in(session, &format!("v{version} epoch 1"));

        for wrong in [1, 5, 3] {
            let answer = fixture.fetch(version, &Fetch::session(session, wrong));
            answer.assert_session_error(
                INVALID_FETCH_SESSION_EPOCH,
                &format!("v{version} epoch {wrong} when 2 is expected"),
            );
        }

        // The expected epoch did not move; the right one still fetches.
        fixture.produce(&topic, 1, 1);
        let answer = fixture.fetch(
            version,
            &Fetch::session(session, 2).max_wait_ms(DATA_WAIT_MS),
        );
        let what = format!("v{version} epoch 2 after the errors");
        answer.assert_ok_in(session, &what);
        assert_eq!(answer.keys(), keys(&[(&topic, 1)]), "{what}");

        let unknown = if session == i32::MAX { 1 } else { i32::MAX };
        for epoch in [1, 3] {
            let answer = fixture.fetch(version, &Fetch::session(unknown, epoch));
            answer.assert_session_error(
                FETCH_SESSION_ID_NOT_FOUND,
                &format!("v{version} unknown session {unknown} epoch {epoch}"),
            );
        }
    }
    fixture.stop();
}

/// A session created with topic names (v12) cannot continue with topic ids (v13+), nor
/// the other way round: FETCH_SESSION_TOPIC_ID_ERROR through `SessionErrorContext`.
#[test]
fn session_keeps_the_topic_form_it_started_with() {
    let mut fixture = Fixture::start();
    let newest = fixture.newest_fetch_version;
    let topic = fixture.create_topic("topic-form", 1);
    for (created_with, continued_with) in [
        (LAST_VERSION_WITH_NAMES, FIRST_VERSION_WITH_IDS),
        (LAST_VERSION_WITH_NAMES, newest),
        (newest, LAST_VERSION_WITH_NAMES),
    ] {
        let session = fixture.open_session(created_with, &[(&topic, 0)]);
        let answer = fixture.fetch(continued_with, &Fetch::session(session, 1));
        answer.assert_session_error(
            FETCH_SESSION_TOPIC_ID_ERROR,
            &format!("session from v{created_with} continued at v{continued_with}"),
        );
        // The error left the session as it was.
        let answer = fixture.fetch(created_with, &Fetch::session(session, 1));
        answer.assert_ok_in(session, &format!("v{created_with} epoch 1 after the error"));
    }
    fixture.stop();
}

/// A full fetch naming a session closes it (`FetchManager.newContext`: "Any session
/// specified in a FULL fetch request will be closed"). With epoch -1 the fetch is then
/// sessionless; with epoch 0 a new session replaces the old one. A full fetch naming an
/// unknown session is not an error.
#[test]
fn full_fetch_naming_a_session_closes_it() {
    let mut fixture = Fixture::start();
    for version in fixture.versions() {
        let topic = fixture.create_topic("close", 2);
        fixture.produce(&topic, 0, 2);
        let full = |session_id: i32, session_epoch: i32| {
            Fetch::session(session_id, session_epoch)
                .partition(&topic, 0, 0)
                .partition(&topic, 1, 0)
        };
        let both = keys(&[(&topic, 0), (&topic, 1)]);

        // Epoch -1: closed, answered as a sessionless full fetch.
        let closing = fixture.open_session(version, &[(&topic, 0), (&topic, 1)]);
        let answer = fixture.fetch(version, &full(closing, FINAL_EPOCH));
        let what = format!("v{version} session {closing} with epoch -1");
        answer.assert_ok_in(NO_SESSION, &what);
        assert_eq!(answer.keys(), both, "{what}");
        assert_eq!(answer.partition(&topic, 0).offsets, vec![0, 1], "{what}");
        let answer = fixture.fetch(version, &Fetch::session(closing, 1));
        answer.assert_session_error(
            FETCH_SESSION_ID_NOT_FOUND,
            &format!("v{version} incremental on session {closing} closed with epoch -1"),
        );

        // Epoch 0: closed, and a new session starts at epoch 1 with a full answer.
        let replaced = fixture.open_session(version, &[(&topic, 0), (&topic, 1)]);
        let answer = fixture.fetch(version, &full(replaced, INITIAL_EPOCH));
        let what = format!("v{version} session {replaced} with epoch 0");
        assert_eq!(answer.error_code, NONE, "{what}: {answer:#?}");
        let replacement = answer.session_id;
        assert!(
            replacement > 0 && replacement != replaced,
            "{what}: new session id {replacement}"
        );
        assert_eq!(answer.keys(), both, "{what}");
        let answer = fixture.fetch(version, &Fetch::session(replaced, 1));
        answer.assert_session_error(
            FETCH_SESSION_ID_NOT_FOUND,
            &format!("v{version} incremental on session {replaced} replaced with epoch 0"),
        );
        let answer = fixture.fetch(version, &Fetch::session(replacement, 1));
        answer.assert_ok_in(replacement, &format!("v{version} replacement epoch 1"));
        // Its partitions came from the full fetch that created it, at offset 0: the
        // records are answered again.
        assert_eq!(
            answer.keys(),
            keys(&[(&topic, 0)]),
            "v{version} replacement"
        );

        // An unknown session in a full fetch: nothing to close, the fetch goes on.
        let unknown = i32::MAX - 7;
        let answer = fixture.fetch(version, &full(unknown, FINAL_EPOCH));
        answer.assert_ok_in(NO_SESSION, &format!("v{version} unknown session, epoch -1"));
        assert_eq!(answer.keys(), both, "v{version} unknown session, epoch -1");
        let answer = fixture.fetch(version, &full(unknown, INITIAL_EPOCH));
        let what = format!("v{version} unknown session, epoch 0");
        assert_eq!(answer.error_code, NONE, "{what}: {answer:#?}");
        assert!(answer.session_id > 0, "{what}: {answer:#?}");
        assert_eq!(answer.keys(), both, "{what}");
    }
    fixture.stop();
}

/// An incremental fetch that forgets every partition of its session closes the session
/// and is answered as a sessionless fetch (`FetchManager.newContext`: "there are no
/// more partitions left").
#[test]
fn forgetting_every_partition_closes_the_session() {
    let mut fixture = Fixture::start();
    for version in fixture.versions() {
        let topic = fixture.create_topic("forget-all", 2);
        let session = fixture.open_session(version, &[(&topic, 0), (&topic, 1)]);
        let answer = fixture.fetch(
            version,
            &Fetch::session(session, 1)
                .forget(&topic, 0)
                .forget(&topic, 1),
        );
        let what = format!("v{version} epoch 1 forgetting every partition");
        answer.assert_ok_in(NO_SESSION, &what);
        assert_eq!(answer.keys(), vec![], "{what}");
        let answer = fixture.fetch(version, &Fetch::session(session, 2));
        answer.assert_session_error(
            FETCH_SESSION_ID_NOT_FOUND,
            &format!("v{version} epoch 2 on the emptied session"),
        );
    }
    fixture.stop();
}

/// A changed high watermark alone puts a partition in the incremental answer. On one
/// node the high watermark moves with every produce; with the response limited to one
/// batch (KIP-74: the first batch is always returned, then the limit is spent), one
/// partition comes with records and the other with none but its new high watermark.
#[test]
fn high_watermark_change_alone_brings_a_partition_back() {
    let mut fixture = Fixture::start();
    for version in fixture.versions() {
        let topic = fixture.create_topic("high-watermark", 3);
        let all = [(&topic, 0), (&topic, 1), (&topic, 2)];
        let session = fixture.open_session(version, &all);

        let high_watermark = fixture.produce(&topic, 2, 1);
        let answer = fixture.fetch(
            version,
            &Fetch::session(session, 1).max_wait_ms(DATA_WAIT_MS),
        );
        let what = format!("v{version} epoch 1 after one record");
        answer.assert_ok_in(session, &what);
        assert_eq!(answer.keys(), keys(&[(&topic, 2)]), "{what}");
        let news = answer.partition(&topic, 2);
        assert_eq!(
            (news.high_watermark, &news.offsets[..]),
            (high_watermark, &[0][..]),
            "{what}"
        );

        fixture.produce(&topic, 0, 1);
        fixture.produce(&topic, 1, 1);
        let answer = fixture.fetch(
            version,
            &Fetch::session(session, 2)
                .partition(&topic, 2, high_watermark)
                .max_bytes(1)
                .max_wait_ms(DATA_WAIT_MS),
        );
        let what = format!("v{version} epoch 2 with max_bytes 1");
        answer.assert_ok_in(session, &what);
        assert_eq!(answer.keys(), keys(&[(&topic, 0), (&topic, 1)]), "{what}");
        let with_records: Vec<i32> = [0, 1]
            .into_iter()
            .filter(|partition| !answer.partition(&topic, *partition).offsets.is_empty())
            .collect();
        assert_eq!(with_records.len(), 1, "{what}: one batch fits: {answer:#?}");
        for partition in [0, 1] {
            assert_eq!(
                answer.partition(&topic, partition).high_watermark,
                1,
                "{what}: partition {partition}"
            );
        }

        // The partition answered without records had its cached high watermark updated:
        // next time it comes for its records, and the other one (caught up) stays out.
        let served = with_records[0];
        let starved = 1 - served;
        let answer = fixture.fetch(
            version,
            &Fetch::session(session, 3)
                .partition(&topic, served, 1)
                .max_wait_ms(DATA_WAIT_MS),
        );
        let what = format!("v{version} epoch 3");
        answer.assert_ok_in(session, &what);
        assert_eq!(answer.keys(), keys(&[(&topic, starved)]), "{what}");
        assert_eq!(answer.partition(&topic, starved).offsets, vec![0], "{what}");
    }
    fixture.stop();
}

/// A changed log start offset alone (DeleteRecords) puts a partition in the incremental
/// answer (`localLogStartOffset` in `CachedPartition`).
#[test]
fn log_start_offset_change_alone_brings_a_partition_back() {
    let mut fixture = Fixture::start();
    for version in fixture.versions() {
        let topic = fixture.create_topic("log-start", 2);
        let high_watermark = fixture.produce(&topic, 0, 3);
        let answer = fixture.fetch(
            version,
            &Fetch::new_session()
                .partition(&topic, 0, high_watermark)
                .partition(&topic, 1, 0),
        );
        let what = format!("v{version} new session at the end of partition 0");
        assert_eq!(answer.error_code, NONE, "{what}: {answer:#?}");
        let session = answer.session_id;
        assert_ne!(session, NO_SESSION, "{what}");
        assert_eq!(answer.partition(&topic, 0).log_start_offset, 0, "{what}");

        fixture.delete_records(&topic, 0, high_watermark);
        let answer = fixture.fetch(
            version,
            &Fetch::session(session, 1).max_wait_ms(IDLE_WAIT_MS),
        );
        let what = format!("v{version} epoch 1 after DeleteRecords");
        answer.assert_ok_in(session, &what);
        assert_eq!(answer.keys(), keys(&[(&topic, 0)]), "{what}");
        assert_eq!(
            answer.partition(&topic, 0),
            &PartitionAnswer {
                error_code: NONE,
                high_watermark,
                log_start_offset: high_watermark,
                offsets: vec![],
            },
            "{what}"
        );

        let answer = fixture.fetch(
            version,
            &Fetch::session(session, 2).max_wait_ms(IDLE_WAIT_MS),
        );
        let what = format!("v{version} epoch 2, nothing changed");
        answer.assert_ok_in(session, &what);
        assert_eq!(answer.keys(), vec![], "{what}");
    }
    fixture.stop();
}

/// A session's partitions at their log end with nothing new go quiet: the broker watches
/// them instead of reading them on every fetch (`fetch_sessions`). Each way a quiet
/// partition can have news must still reach the consumer: records arriving while an
/// incremental fetch waits (it is woken, not left to its max_wait), a new log start
/// offset, the topic deleted. Eight partitions over two shards, so some are on the
/// session's shard (watched) and some on the other (read every time).
#[test]
fn quiet_partitions_wake_a_waiting_fetch_and_report_log_start_and_deletion() {
    const PARTITIONS: i32 = 8;
    const LONG_WAIT_MS: i32 = 20_000;
    let mut fixture = Fixture::start();
    for version in fixture.versions() {
        let topic = fixture.create_topic("quiet", PARTITIONS);
        for partition in 0..PARTITIONS {
            fixture.produce(&topic, partition, 1);
        }
        let fetch = (0..PARTITIONS).fold(Fetch::new_session(), |fetch, partition| {
            fetch.partition(&topic, partition, 1)
        });
        let answer = fixture.fetch(version, &fetch);
        let session = answer.session_id;
        assert_ne!(session, NO_SESSION, "v{version}: {answer:#?}");
        for epoch in [1, 2] {
            let answer = fixture.fetch(
                version,
                &Fetch::session(session, epoch).max_wait_ms(IDLE_WAIT_MS),
            );
            let what = format!("v{version} epoch {epoch}, nothing new");
            answer.assert_ok_in(session, &what);
            assert_eq!(answer.keys(), vec![], "{what}");
        }

        // Every partition in turn gets a record while a fetch waits for it.
        let mut epoch = 3;
        for partition in 0..PARTITIONS {
            let bootstrap = fixture.bootstrap();
            let producing_topic = topic.clone();
            let producer = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                let mut stream = connect(&bootstrap);
                produce_on(&mut stream, &producing_topic, partition, 1)
            });
            let mut fetch = Fetch::session(session, epoch).max_wait_ms(LONG_WAIT_MS);
            if partition > 0 {
                // The consumer moves past the record it got last time.
                fetch = fetch.partition(&topic, partition - 1, 2);
            }
            let answer = fixture.fetch(version, &fetch);
            let high_watermark = producer.join().expect("producer thread");
            let what = format!("v{version} epoch {epoch}, record to partition {partition}");
            answer.assert_ok_in(session, &what);
            assert_eq!(answer.keys(), keys(&[(&topic, partition)]), "{what}");
            assert_eq!(
                answer.partition(&topic, partition).offsets,
                vec![1],
                "{what}"
            );
            assert_eq!(high_watermark, 2, "{what}");
            epoch += 1;
        }
        let answer = fixture.fetch(
            version,
            &Fetch::session(session, epoch)
                .partition(&topic, PARTITIONS - 1, 2)
                .max_wait_ms(IDLE_WAIT_MS),
        );
        assert_eq!(
            answer.keys(),
            vec![],
            "v{version} epoch {epoch}: all caught up"
        );
        epoch += 1;

        // A new log start offset on every quiet partition.
        for partition in 0..PARTITIONS {
            fixture.delete_records(&topic, partition, 1);
        }
        let answer = fixture.fetch(
            version,
            &Fetch::session(session, epoch).max_wait_ms(IDLE_WAIT_MS),
        );
        let what = format!("v{version} epoch {epoch} after DeleteRecords");
        answer.assert_ok_in(session, &what);
        let all: Vec<(&Topic, i32)> = (0..PARTITIONS).map(|p| (&topic, p)).collect();
        assert_eq!(answer.keys(), keys(&all), "{what}");
        for partition in 0..PARTITIONS {
            assert_eq!(
                answer.partition(&topic, partition).log_start_offset,
                1,
                "{what}: partition {partition}"
            );
        }
        epoch += 1;

        // The topic goes away: every partition is answered with the error.
        fixture.delete_topic(&topic);
        let missing = if version >= FIRST_VERSION_WITH_IDS {
            UNKNOWN_TOPIC_ID
        } else {
            UNKNOWN_TOPIC_OR_PARTITION
        };
        let answer = fixture.fetch(
            version,
            &Fetch::session(session, epoch).max_wait_ms(IDLE_WAIT_MS),
        );
        let what = format!("v{version} epoch {epoch} after DeleteTopics");
        answer.assert_ok_in(session, &what);
        assert_eq!(answer.keys(), keys(&all), "{what}");
        for partition in 0..PARTITIONS {
            assert_eq!(
                answer.partition(&topic, partition).error_code,
                missing,
                "{what}: partition {partition}"
            );
        }
    }
    fixture.stop();
}

/// A partition with an error is always in the answer, and its cached high watermark is
/// reset to -1 so it is answered again once the error clears, records or not.
#[test]
fn partition_errors_are_answered_and_the_partition_returns_once_cleared() {
    let mut fixture = Fixture::start();
    for version in fixture.versions() {
        let topic = fixture.create_topic("partition-error", 2);
        let high_watermark = fixture.produce(&topic, 0, 2);
        let session = fixture.open_session(version, &[(&topic, 0), (&topic, 1)]);

        for epoch in [1, 2] {
            // Epoch 1 moves partition 0 past its log end; epoch 2 leaves it there.
            let fetch = if epoch == 1 {
                Fetch::session(session, epoch).partition(&topic, 0, 1_000)
            } else {
                Fetch::session(session, epoch)
            };
            let answer = fixture.fetch(version, &fetch.max_wait_ms(DATA_WAIT_MS));
            let what = format!("v{version} epoch {epoch} at offset 1000");
            answer.assert_ok_in(session, &what);
            assert_eq!(answer.keys(), keys(&[(&topic, 0)]), "{what}");
            assert_eq!(
                answer.partition(&topic, 0).error_code,
                OFFSET_OUT_OF_RANGE,
                "{what}"
            );
        }

        let answer = fixture.fetch(
            version,
            &Fetch::session(session, 3)
                .partition(&topic, 0, high_watermark)
                .max_wait_ms(IDLE_WAIT_MS),
        );
        let what = format!("v{version} epoch 3 back at the log end");
        answer.assert_ok_in(session, &what);
        assert_eq!(answer.keys(), keys(&[(&topic, 0)]), "{what}");
        let cleared = answer.partition(&topic, 0);
        assert_eq!(
            (
                cleared.error_code,
                cleared.high_watermark,
                cleared.offsets.len()
            ),
            (NONE, high_watermark, 0),
            "{what}"
        );
    }
    fixture.stop();
}

/// Kafka keeps one session cache per broker; a session is not tied to the connection
/// that created it. Each step here continues the session on a fresh connection (which
/// may land on either shard), after the creating connection has closed.
#[test]
fn session_continues_on_other_connections() {
    let mut fixture = Fixture::start();
    let version = fixture.newest_fetch_version;
    let topic = fixture.create_topic("connections", 2);
    let session = {
        let mut creating = connect(&fixture.bootstrap());
        let answer = fixture.fetch_on(
            &mut creating,
            version,
            &Fetch::new_session()
                .partition(&topic, 0, 0)
                .partition(&topic, 1, 0),
        );
        assert_eq!(answer.error_code, NONE, "new session: {answer:#?}");
        assert_ne!(answer.session_id, NO_SESSION, "new session: {answer:#?}");
        answer.session_id
    };

    // Each step lists both partitions at the client's positions, as a consumer does
    // once its positions moved, so only the partition just produced to has news.
    let mut positions = [0i64, 0];
    let mut connections = Vec::new();
    for epoch in 1..=6 {
        let partition = epoch % 2;
        let slot = usize::try_from(partition).expect("0 or 1");
        fixture.produce(&topic, partition, 1);
        let mut stream = connect(&fixture.bootstrap());
        let answer = fixture.fetch_on(
            &mut stream,
            version,
            &Fetch::session(session, epoch)
                .partition(&topic, 0, positions[0])
                .partition(&topic, 1, positions[1])
                .max_wait_ms(DATA_WAIT_MS),
        );
        let what = format!("epoch {epoch} on connection {}", connections.len() + 1);
        answer.assert_ok_in(session, &what);
        assert_eq!(answer.keys(), keys(&[(&topic, partition)]), "{what}");
        assert_eq!(
            answer.partition(&topic, partition).offsets,
            vec![positions[slot]],
            "{what}"
        );
        positions[slot] += 1;
        // A wrong epoch is refused on whichever connection it comes, and changes nothing.
        let refused = fixture.fetch_on(&mut stream, version, &Fetch::session(session, epoch));
        refused.assert_session_error(INVALID_FETCH_SESSION_EPOCH, &format!("{what}, repeated"));
        connections.push(stream);
    }

    // Back on the first of these connections, both partitions get a record.
    fixture.produce(&topic, 0, 1);
    fixture.produce(&topic, 1, 1);
    let answer = fixture.fetch_on(
        &mut connections[0],
        version,
        &Fetch::session(session, 7)
            .partition(&topic, 0, positions[0])
            .partition(&topic, 1, positions[1])
            .max_wait_ms(DATA_WAIT_MS),
    );
    answer.assert_ok_in(session, "epoch 7 on connection 1");
    assert_eq!(answer.keys(), keys(&[(&topic, 0), (&topic, 1)]), "epoch 7");
    assert_eq!(answer.partition(&topic, 0).offsets, vec![3], "epoch 7");
    assert_eq!(answer.partition(&topic, 1).offsets, vec![3], "epoch 7");
    fixture.stop();
}
