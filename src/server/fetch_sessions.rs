//! Fetch sessions (KIP-227): a client that fetches the same partitions over
//! and over names them once, then sends only what changed (a moved fetch
//! offset, a partition added or forgotten), and the broker answers only the
//! partitions with news (records, an error, a new high watermark or log
//! start offset, a diverging epoch). Followers and the Java consumer use
//! them; librdkafka fetches without one.
//!
//! Each shard keeps the sessions created by fetches it served, as Kafka's
//! sharded `FetchSessionCache` does: a session id falls in its shard's range
//! of ids, and an incremental fetch naming it on another shard (a second
//! connection) is served by its shard. A shard keeps at most its share of
//! the broker's `max.incremental.fetch.session.cache.slots`
//! (`config::FetchSessionSettings`); a full cache evicts by Kafka's rules
//! (`evict_one`), and a client whose session was evicted gets
//! FETCH_SESSION_ID_NOT_FOUND and starts a new one with a full fetch.
//! With 0 slots every fetch is answered without a session.
//!
//! A consumer's session also spares the broker reading partitions with
//! nothing new: a partition answered with no records and no news, whose
//! consumer is at its high watermark, is marked quiet and watched
//! (`log::SessionWatch`); the session's next fetches leave it out of the
//! read until its log moves, the request moves its position, or the
//! shard's partitions change (`Shard::partition_generation`). So a fetch
//! over 10,000 partitions of which 50 moved reads 50, where Kafka reads
//! every partition of the session. A follower's session reads everything:
//! its fetches are what keeps it in the ISR.
//!
//! The request metadata (session id, epoch) picks the context, as Kafka's
//! `FetchManager.newContext`:
//! - epoch -1: sessionless, a full fetch answered with session id 0 (a
//!   session named is closed first);
//! - epoch 0: full, and a new session holds the partitions once answered
//!   (a session named is closed first);
//! - epoch n > 0: incremental on that session, which must expect epoch n
//!   (else INVALID_FETCH_SESSION_EPOCH; unknown: FETCH_SESSION_ID_NOT_FOUND;
//!   topic ids used inconsistently with it: FETCH_SESSION_TOPIC_ID_ERROR).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::fetch_request::FetchPartition;
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::config::FetchSessionSettings;
use crate::log::SessionWatch;
use crate::protocol::errors::{KafkaError, NONE};

/// The epoch of a full fetch that creates a session.
const INITIAL_EPOCH: i32 = 0;
/// The epoch of a full fetch that wants no session (and closes one named).
const FINAL_EPOCH: i32 = -1;
/// Partitions cached over all of a shard's sessions: a client adding
/// partitions (real or not) to its sessions cannot grow memory without
/// bound. Past it, new sessions are refused (the client fetches in full)
/// and a session growing past it is closed (FETCH_SESSION_ID_NOT_FOUND).
const MAX_CACHED_PARTITIONS_PER_SHARD: usize = 200_000;
/// Watch ids are renumbered once the next one passes twice the session's
/// partitions plus this (partitions forgotten and added again use new
/// ids), so a session's moved-bits stay proportional to its partitions.
const WATCH_ID_SLACK: u32 = 1024;
/// An incremental fetch naming at most this many partitions updates its
/// session by searching it; more, through an index built for the request.
const LINEAR_UPDATE_MAX: usize = 8;
/// The high watermark a cached partition starts with, and takes after an
/// error: the next answer includes the partition whatever it holds.
const UNKNOWN_HIGH_WATERMARK: i64 = -1;

/// One partition a fetch reads, as the request (or its session) states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedPartition {
    pub partition: i32,
    pub fetch_offset: i64,
    pub partition_max_bytes: i32,
    pub current_leader_epoch: i32,
    pub last_fetched_epoch: i32,
    pub log_start_offset: i64,
}

/// One topic's partitions of a fetch: by name up to Fetch v12, by id from
/// v13 (the other field stays at its default).
#[derive(Debug, Clone)]
pub struct WantedTopic {
    pub name: TopicName,
    pub topic_id: Uuid,
    pub partitions: Vec<WantedPartition>,
}

/// How a fetch's answer relates to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchContext {
    /// No session: answered in full with session id 0.
    Sessionless,
    /// Answered in full; a new session then holds its partitions.
    Full {
        uses_topic_ids: bool,
        follower: bool,
    },
    /// An existing session, now expecting `next_epoch`: only partitions
    /// with news are answered.
    Incremental { session_id: i32, next_epoch: i32 },
}

/// A fetch refused as a whole: the answer carries only this error and
/// session id 0 (Kafka's `SessionErrorContext`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionError(pub KafkaError);

/// This shard's fetch sessions.
pub struct FetchSessions {
    sessions: RefCell<HashMap<i32, Session>>,
    /// Ids `first_id..first_id + id_range` are this shard's; shard n has
    /// those from n * per_shard (Kafka's `FetchSessionCacheShard` ranges).
    first_id: i32,
    id_range: i32,
    per_shard: i32,
    shard_count: usize,
    /// Counts sessions created, to vary the ids handed out.
    created: Cell<u32>,
    /// Sessions this shard keeps at most (its share of the broker's
    /// slots); 0: none, every fetch is sessionless.
    slots: usize,
    /// A session unused this long may be evicted for any new one, and a
    /// session younger than this is not evicted for a larger one (Kafka's
    /// min.incremental.fetch.session.eviction.ms).
    eviction_age: Duration,
}

struct Session {
    uses_topic_ids: bool,
    /// From a follower: evicted only for another follower's session.
    follower: bool,
    /// The epoch the next incremental fetch must carry.
    next_epoch: i32,
    /// In fetch order; partitions answered with records move to the end,
    /// so a response's byte budget goes round all of them.
    partitions: Vec<CachedPartition>,
    /// Positions in `partitions` of those the fetch in flight reads (the
    /// ones not quiet), in order: its answer lists them so.
    reading: Vec<usize>,
    /// Which quiet partitions moved.
    watch: Rc<SessionWatch>,
    /// The shard's partition generation the quiet marks were made under.
    quiet_generation: u64,
    /// The watch id the next partition added gets.
    next_watch_id: u32,
    created: Instant,
    last_used: Instant,
}

#[derive(Debug, Clone)]
struct CachedPartition {
    topic: TopicName,
    topic_id: Uuid,
    wanted: WantedPartition,
    /// What the client was last told.
    high_watermark: i64,
    log_start_offset: i64,
    /// This partition in the session's `watch`.
    watch_id: u32,
    /// Read nothing new at the last fetch and is watched since: left out
    /// of reads until the watch says it moved.
    quiet: bool,
    /// Answered with records by the fetch being concluded: moves to the end.
    answered: bool,
}

/// A partition answered with nothing new, whose consumer is at its high
/// watermark: what `FetchSessions::conclude`'s caller needs to watch it
/// (`PartitionLog::watch_while_quiet`).
pub struct QuietCandidate<'a> {
    pub topic: &'a TopicName,
    pub topic_id: Uuid,
    pub partition: i32,
    pub fetch_offset: i64,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub watch: &'a Rc<SessionWatch>,
    pub watch_id: u32,
}

/// Watches a quiet candidate's log; true if it is quiet and now watched.
pub type WatchQuiet<'a> = &'a mut dyn FnMut(&QuietCandidate<'_>) -> bool;

impl CachedPartition {
    /// The request moved this partition (position, epochs, size): read it.
    fn moved_to(&mut self, wanted: WantedPartition) {
        self.wanted = wanted;
        self.quiet = false;
    }

    /// Whether `data` is news to the client (Kafka's
    /// `CachedPartition.maybeUpdateResponseData`); remembers what it is told.
    fn must_answer(&mut self, data: &PartitionData) -> bool {
        let mut news = has_records(data);
        if self.high_watermark != data.high_watermark {
            self.high_watermark = data.high_watermark;
            news = true;
        }
        if self.log_start_offset != data.log_start_offset {
            self.log_start_offset = data.log_start_offset;
            news = true;
        }
        if data.error_code != NONE {
            self.high_watermark = UNKNOWN_HIGH_WATERMARK;
            news = true;
        }
        news || data.diverging_epoch.epoch >= 0
    }
}

impl FetchSessions {
    /// The sessions of shard `shard` of `shard_count`, keeping this shard's
    /// share of the broker's slots.
    pub fn new(shard: usize, shard_count: usize, settings: &FetchSessionSettings) -> FetchSessions {
        let count = i32::try_from(shard_count.max(1)).unwrap_or(i32::MAX);
        let index = i32::try_from(shard).unwrap_or(0).min(count - 1);
        let per_shard = i32::MAX / count;
        // Kafka's ranges: max(1, shard * range) <= id < (shard + 1) * range.
        let first_id = (index * per_shard).max(1);
        FetchSessions {
            sessions: RefCell::new(HashMap::new()),
            first_id,
            id_range: (index + 1) * per_shard - first_id,
            per_shard,
            shard_count: shard_count.max(1),
            created: Cell::new(0),
            slots: settings.slots_of_shard(shard, shard_count),
            eviction_age: settings.eviction_age,
        }
    }

    /// The shard holding session `session_id` (0: none).
    pub fn shard_of(&self, session_id: i32) -> Option<usize> {
        let shard = usize::try_from(session_id / self.per_shard.max(1)).ok()?;
        (session_id > 0).then_some(shard.min(self.shard_count - 1))
    }

    pub fn len(&self) -> usize {
        self.sessions.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.borrow().is_empty()
    }

    /// Sessions this shard keeps at most.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Picks the context of `request` (at `version`) and the partitions it
    /// reads: the request's own, or for an incremental fetch the session's
    /// after the request's changes.
    /// `generation`: the shard's partition generation now.
    pub fn open(
        &self,
        request: &FetchRequest,
        version: i16,
        follower: bool,
        generation: u64,
    ) -> Result<(FetchContext, Vec<WantedTopic>), SessionError> {
        let uses_topic_ids = version >= 13;
        let (session_id, epoch) = (request.session_id, request.session_epoch);
        // Sessions need Fetch v7; older requests carry neither field.
        if version < 7 || epoch == FINAL_EPOCH || epoch == INITIAL_EPOCH {
            if session_id != 0 {
                self.sessions.borrow_mut().remove(&session_id);
            }
            // Without slots a full fetch could create no session: answer it
            // as sessionless, without caching its partitions first.
            let context = if version < 7 || epoch == FINAL_EPOCH || self.slots == 0 {
                FetchContext::Sessionless
            } else {
                FetchContext::Full {
                    uses_topic_ids,
                    follower,
                }
            };
            return Ok((context, wanted_in_request(request)));
        }
        let mut sessions = self.sessions.borrow_mut();
        let session = sessions
            .get_mut(&session_id)
            .ok_or(SessionError(KafkaError::FetchSessionIdNotFound))?;
        if session.next_epoch != epoch {
            return Err(SessionError(KafkaError::InvalidFetchSessionEpoch));
        }
        if session.uses_topic_ids != uses_topic_ids {
            return Err(SessionError(KafkaError::FetchSessionTopicIdError));
        }
        let before = session.partitions.len();
        session.update(request);
        let grew = session.partitions.len() > before;
        if grew && cached_partitions(&sessions) > MAX_CACHED_PARTITIONS_PER_SHARD {
            sessions.remove(&session_id);
            return Err(SessionError(KafkaError::FetchSessionIdNotFound));
        }
        let Some(session) = sessions.get_mut(&session_id) else {
            return Err(SessionError(KafkaError::FetchSessionIdNotFound));
        };
        if session.partitions.is_empty() {
            sessions.remove(&session_id);
            return Ok((FetchContext::Sessionless, Vec::new()));
        }
        session.last_used = Instant::now();
        session.next_epoch = next_epoch(epoch);
        let context = FetchContext::Incremental {
            session_id,
            next_epoch: session.next_epoch,
        };
        Ok((context, session.wanted(generation)))
    }

    /// For an incremental fetch still waiting: the partitions it should
    /// read now, with those whose watch fired since; `None` when the
    /// session ended or moved on (the answer will say so).
    pub fn refresh(&self, context: FetchContext, generation: u64) -> Option<Vec<WantedTopic>> {
        let FetchContext::Incremental {
            session_id,
            next_epoch,
        } = context
        else {
            return None;
        };
        let mut sessions = self.sessions.borrow_mut();
        let session = sessions
            .get_mut(&session_id)
            .filter(|session| session.next_epoch == next_epoch)?;
        Some(session.wanted(generation))
    }

    /// The watch an incremental consumer fetch also waits on: its session's
    /// quiet partitions.
    pub fn watch_of(&self, context: FetchContext) -> Option<Rc<SessionWatch>> {
        let FetchContext::Incremental { session_id, .. } = context else {
            return None;
        };
        self.sessions
            .borrow()
            .get(&session_id)
            .filter(|session| !session.follower)
            .map(|session| Rc::clone(&session.watch))
    }

    /// Completes `response`, the full answer to the partitions `open`
    /// returned (in that order), for `context`: sets its session id, keeps
    /// a new session, or leaves out what an incremental one already knows.
    ///
    /// `watch_quiet` (`None`: mark nothing quiet, as when the shard's
    /// partitions changed during the fetch) watches the partitions of an
    /// incremental consumer fetch that had nothing new.
    pub fn conclude(
        &self,
        context: FetchContext,
        wanted: &[WantedTopic],
        response: &mut FetchResponse,
        watch_quiet: Option<WatchQuiet<'_>>,
    ) {
        match context {
            FetchContext::Sessionless => response.session_id = 0,
            FetchContext::Full {
                uses_topic_ids,
                follower,
            } => {
                let partitions = cache_answered(wanted, response);
                response.session_id = self.create(uses_topic_ids, follower, partitions);
            }
            FetchContext::Incremental {
                session_id,
                next_epoch,
            } => {
                let mut sessions = self.sessions.borrow_mut();
                match sessions.get_mut(&session_id) {
                    Some(session) if session.next_epoch == next_epoch => {
                        session.leave_out_known(response, watch_quiet);
                        response.session_id = session_id;
                    }
                    // Moved on while this fetch waited (a duplicate
                    // request): Kafka answers the same.
                    Some(_) => {
                        *response = FetchResponse::default()
                            .with_error_code(KafkaError::InvalidFetchSessionEpoch.code());
                    }
                    // Evicted or closed while this fetch waited: what the
                    // client's next fetch would hear, so that it starts a
                    // new session (Kafka, which holds the session object,
                    // answers this one and refuses the next).
                    None => {
                        *response = FetchResponse::default()
                            .with_error_code(KafkaError::FetchSessionIdNotFound.code());
                    }
                }
            }
        }
    }

    /// Keeps a new session if there is room (evicting one if Kafka would);
    /// its id, or 0 when none was kept.
    fn create(
        &self,
        uses_topic_ids: bool,
        follower: bool,
        partitions: Vec<CachedPartition>,
    ) -> i32 {
        if partitions.is_empty() {
            return 0;
        }
        let now = Instant::now();
        let mut sessions = self.sessions.borrow_mut();
        if cached_partitions(&sessions) + partitions.len() > MAX_CACHED_PARTITIONS_PER_SHARD {
            return 0;
        }
        if sessions.len() >= self.slots
            && !evict_one(
                &mut sessions,
                follower,
                partitions.len(),
                now,
                self.eviction_age,
            )
        {
            return 0;
        }
        let id = self.new_session_id(&sessions);
        let next_watch_id = u32::try_from(partitions.len()).unwrap_or(u32::MAX);
        sessions.insert(
            id,
            Session {
                uses_topic_ids,
                follower,
                next_epoch: next_epoch(INITIAL_EPOCH),
                partitions,
                reading: Vec::new(),
                watch: Rc::default(),
                quiet_generation: 0,
                next_watch_id,
                created: now,
                last_used: now,
            },
        );
        id
    }

    fn new_session_id(&self, sessions: &HashMap<i32, Session>) -> i32 {
        loop {
            let created = self.created.get().wrapping_add(1);
            self.created.set(created);
            let spread = rand::random::<u32>() ^ created;
            let range = u32::try_from(self.id_range.max(1)).unwrap_or(1);
            let offset = i32::try_from(spread % range).unwrap_or(0);
            let id = self.first_id + offset;
            if id != 0 && !sessions.contains_key(&id) {
                return id;
            }
        }
    }
}

fn has_records(data: &PartitionData) -> bool {
    data.records
        .as_ref()
        .is_some_and(|records| !records.is_empty())
}

fn cached_partitions(sessions: &HashMap<i32, Session>) -> usize {
    sessions
        .values()
        .map(|session| session.partitions.len())
        .sum()
}

/// Makes room for a new session of `size` partitions (Kafka's
/// `FetchSessionCacheShard.tryEvict`): the least recently used session if
/// it is stale (unused for `eviction_age`); otherwise the least valuable
/// session older than `eviction_age` (a consumer's before a follower's,
/// then the smallest) if the new one is worth more: a follower's session
/// is worth more than a consumer's, and between two of a kind the larger is.
/// A follower's session also evicts a consumer's however young it is.
fn evict_one(
    sessions: &mut HashMap<i32, Session>,
    follower: bool,
    size: usize,
    now: Instant,
    eviction_age: Duration,
) -> bool {
    let stale = sessions
        .iter()
        .min_by_key(|(_, session)| session.last_used)
        .filter(|(_, session)| now.duration_since(session.last_used) > eviction_age)
        .map(|(id, _)| *id);
    let evicted = stale.or_else(|| {
        sessions
            .iter()
            .filter(|(_, session)| {
                let old = now.duration_since(session.created) > eviction_age;
                (follower && !session.follower) || old
            })
            .min_by_key(|(_, session)| {
                (
                    session.follower,
                    session.partitions.len(),
                    session.last_used,
                )
            })
            .filter(|(_, session)| (follower, size) > (session.follower, session.partitions.len()))
            .map(|(id, _)| *id)
    });
    evicted.is_some_and(|id| sessions.remove(&id).is_some())
}

impl Session {
    /// Applies an incremental request: its partitions are added or updated,
    /// then its forgotten ones removed (Kafka's `FetchSession.update`).
    fn update(&mut self, request: &FetchRequest) {
        let listed: usize = request.topics.iter().map(|t| t.partitions.len()).sum();
        if listed <= LINEAR_UPDATE_MAX {
            // The common incremental fetch names the few partitions whose
            // position moved: find them in place instead of indexing the
            // whole session for each request.
            for (topic, topic_id, wanted) in flattened(request) {
                let found = self.partitions.iter().position(|cached| {
                    cached.wanted.partition == wanted.partition
                        && cached.topic_id == topic_id
                        && cached.topic == topic
                });
                match found {
                    Some(position) => self.partitions[position].moved_to(wanted),
                    None => self.add(owned(&topic), topic_id, wanted),
                }
            }
            self.forget(request);
            return;
        }
        let mut positions: HashMap<(TopicName, Uuid, i32), usize> = self
            .partitions
            .iter()
            .enumerate()
            .map(|(position, cached)| {
                let key = (
                    cached.topic.clone(),
                    cached.topic_id,
                    cached.wanted.partition,
                );
                (key, position)
            })
            .collect();
        for (topic, topic_id, wanted) in flattened(request) {
            let key = (topic, topic_id, wanted.partition);
            match positions.get(&key) {
                Some(&position) => self.partitions[position].moved_to(wanted),
                None => {
                    positions.insert(key.clone(), self.partitions.len());
                    self.add(owned(&key.0), topic_id, wanted);
                }
            }
        }
        self.forget(request);
    }

    fn add(&mut self, topic: TopicName, topic_id: Uuid, wanted: WantedPartition) {
        self.partitions.push(CachedPartition {
            topic,
            topic_id,
            wanted,
            high_watermark: UNKNOWN_HIGH_WATERMARK,
            log_start_offset: -1,
            watch_id: self.next_watch_id,
            quiet: false,
            answered: false,
        });
        self.next_watch_id = self.next_watch_id.saturating_add(1);
    }

    /// Removes the request's forgotten partitions.
    fn forget(&mut self, request: &FetchRequest) {
        for forgotten in &request.forgotten_topics_data {
            self.partitions.retain(|cached| {
                !(cached.topic == forgotten.topic
                    && cached.topic_id == forgotten.topic_id
                    && forgotten.partitions.contains(&cached.wanted.partition))
            });
        }
    }

    /// The partitions the next read covers, grouped into topics, in session
    /// order: all but the quiet ones whose logs did not move, under
    /// `generation` (another generation than the marks': none is quiet).
    fn wanted(&mut self, generation: u64) -> Vec<WantedTopic> {
        let count = u32::try_from(self.partitions.len()).unwrap_or(u32::MAX);
        if self.next_watch_id > count.saturating_mul(2).saturating_add(WATCH_ID_SLACK) {
            for (id, cached) in (0..).zip(self.partitions.iter_mut()) {
                cached.watch_id = id;
                cached.quiet = false;
            }
            self.next_watch_id = count;
        }
        if generation != self.quiet_generation {
            self.partitions
                .iter_mut()
                .for_each(|cached| cached.quiet = false);
            self.quiet_generation = generation;
        }
        if self.watch.any_moved() {
            for cached in self.partitions.iter_mut().filter(|cached| cached.quiet) {
                cached.quiet = !self.watch.has_moved(cached.watch_id);
            }
        }
        self.watch.clear();
        self.reading.clear();
        let mut topics: Vec<WantedTopic> = Vec::new();
        for (position, cached) in self.partitions.iter().enumerate() {
            if cached.quiet {
                continue;
            }
            self.reading.push(position);
            match topics.last_mut() {
                Some(last) if last.name == cached.topic && last.topic_id == cached.topic_id => {
                    last.partitions.push(cached.wanted.clone());
                }
                _ => topics.push(WantedTopic {
                    name: cached.topic.clone(),
                    topic_id: cached.topic_id,
                    partitions: vec![cached.wanted.clone()],
                }),
            }
        }
        topics
    }

    /// Drops from `response` (the partitions `reading` names, in that
    /// order) what the client already knows, watches those with nothing new
    /// (`watch_quiet`), and moves partitions answered with records to the
    /// end of the session.
    fn leave_out_known(
        &mut self,
        response: &mut FetchResponse,
        mut watch_quiet: Option<WatchQuiet<'_>>,
    ) {
        let mut read = self.reading.iter();
        let mut any_answered = false;
        let follower = self.follower;
        for topic in &mut response.responses {
            topic.partitions.retain(|data| {
                let Some(cached) = read.next().and_then(|&at| self.partitions.get_mut(at)) else {
                    return true;
                };
                if has_records(data) {
                    cached.answered = true;
                    any_answered = true;
                }
                let news = cached.must_answer(data);
                if let Some(watch_quiet) = watch_quiet.as_mut() {
                    let nothing_new = !has_records(data)
                        && data.error_code == NONE
                        && data.diverging_epoch.epoch < 0
                        && cached.wanted.fetch_offset >= cached.high_watermark;
                    if nothing_new && !follower {
                        cached.quiet = watch_quiet(&QuietCandidate {
                            topic: &cached.topic,
                            topic_id: cached.topic_id,
                            partition: cached.wanted.partition,
                            fetch_offset: cached.wanted.fetch_offset,
                            high_watermark: cached.high_watermark,
                            log_start_offset: cached.log_start_offset,
                            watch: &self.watch,
                            watch_id: cached.watch_id,
                        });
                    }
                }
                news
            });
        }
        response
            .responses
            .retain(|topic| !topic.partitions.is_empty());
        if any_answered {
            // One pass that moves only what follows the first answered
            // partition, not a removal per partition: thousands of
            // partitions with records would otherwise move the rest each
            // time. The answered ones keep their order among themselves.
            let answered: Vec<CachedPartition> = self
                .partitions
                .extract_if(.., |cached| std::mem::take(&mut cached.answered))
                .collect();
            self.partitions.extend(answered);
        }
        self.reading.clear();
    }
}

/// The partitions of a full answer (`response`, in `wanted` order), as a
/// new session caches them.
fn cache_answered(wanted: &[WantedTopic], response: &FetchResponse) -> Vec<CachedPartition> {
    let answered = response
        .responses
        .iter()
        .flat_map(|topic| topic.partitions.iter());
    let asked = wanted.iter().flat_map(|topic| {
        topic
            .partitions
            .iter()
            .map(move |partition| (topic, partition))
    });
    asked
        .zip(answered)
        .zip(0..)
        .map(|(((topic, wanted), data), watch_id)| CachedPartition {
            topic: owned(&topic.name),
            topic_id: topic.topic_id,
            wanted: wanted.clone(),
            high_watermark: if data.error_code == NONE {
                data.high_watermark
            } else {
                UNKNOWN_HIGH_WATERMARK
            },
            log_start_offset: data.log_start_offset,
            watch_id,
            quiet: false,
            answered: false,
        })
        .collect()
}

/// A topic name the session may keep: decoded names share the request's
/// buffer, which a cached slice would keep alive.
fn owned(name: &TopicName) -> TopicName {
    TopicName(StrBytes::from_string(name.0.to_string()))
}

/// Every partition of `request`, with its topic's name and id.
fn flattened(
    request: &FetchRequest,
) -> impl Iterator<Item = (TopicName, Uuid, WantedPartition)> + '_ {
    request.topics.iter().flat_map(|topic| {
        topic.partitions.iter().map(move |partition| {
            (
                topic.topic.clone(),
                topic.topic_id,
                wanted_partition(partition),
            )
        })
    })
}

/// The request's partitions, grouped as it groups them.
fn wanted_in_request(request: &FetchRequest) -> Vec<WantedTopic> {
    request
        .topics
        .iter()
        .map(|topic| WantedTopic {
            name: topic.topic.clone(),
            topic_id: topic.topic_id,
            partitions: topic.partitions.iter().map(wanted_partition).collect(),
        })
        .collect()
}

fn wanted_partition(partition: &FetchPartition) -> WantedPartition {
    WantedPartition {
        partition: partition.partition,
        fetch_offset: partition.fetch_offset,
        partition_max_bytes: partition.partition_max_bytes,
        current_leader_epoch: partition.current_leader_epoch,
        last_fetched_epoch: partition.last_fetched_epoch,
        log_start_offset: partition.log_start_offset,
    }
}

/// The epoch after `epoch`: 1 after the last positive one (Kafka's
/// `FetchMetadata.nextEpoch`).
fn next_epoch(epoch: i32) -> i32 {
    if epoch < 0 {
        FINAL_EPOCH
    } else if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

#[cfg(test)]
#[path = "fetch_sessions_tests.rs"]
mod tests;
