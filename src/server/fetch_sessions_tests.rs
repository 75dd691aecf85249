use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::fetch_response::{EpochEndOffset, FetchableTopicResponse};
use kafka_protocol::protocol::StrBytes;

use super::*;
use crate::config::FETCH_SESSION_CACHE_SLOTS_PER_SHARD_DEFAULT;

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

fn fetch(session_id: i32, epoch: i32, topics: &[(&str, &[(i32, i64)])]) -> FetchRequest {
    FetchRequest::default()
        .with_session_id(session_id)
        .with_session_epoch(epoch)
        .with_topics(
            topics
                .iter()
                .map(|(topic, partitions)| {
                    FetchTopic::default()
                        .with_topic(name(topic))
                        .with_partitions(
                            partitions
                                .iter()
                                .map(|&(partition, offset)| {
                                    FetchPartition::default()
                                        .with_partition(partition)
                                        .with_fetch_offset(offset)
                                        .with_partition_max_bytes(1 << 20)
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
}

/// What a partition's read found.
#[derive(Clone, Copy)]
struct Found {
    high_watermark: i64,
    records: bool,
    error: i16,
}

const NOTHING_NEW: Found = Found {
    high_watermark: 10,
    records: false,
    error: 0,
};
const NEW_RECORDS: Found = Found {
    high_watermark: 10,
    records: true,
    error: 0,
};

/// The full answer to `wanted` (as `assemble` gives it): `found` per
/// partition in order.
fn answer(wanted: &[WantedTopic], found: &[Found]) -> FetchResponse {
    let mut found = found.iter();
    let responses = wanted
        .iter()
        .map(|topic| {
            FetchableTopicResponse::default()
                .with_topic(topic.name.clone())
                .with_partitions(
                    topic
                        .partitions
                        .iter()
                        .map(|partition| {
                            let found = found.next().copied().unwrap_or(NOTHING_NEW);
                            PartitionData::default()
                                .with_partition_index(partition.partition)
                                .with_error_code(found.error)
                                .with_high_watermark(found.high_watermark)
                                .with_log_start_offset(0)
                                .with_records(Some(if found.records {
                                    Bytes::from_static(b"batch")
                                } else {
                                    Bytes::new()
                                }))
                        })
                        .collect(),
                )
        })
        .collect();
    FetchResponse::default().with_responses(responses)
}

/// The (topic, partition) pairs in `response`.
fn answered(response: &FetchResponse) -> Vec<(String, i32)> {
    response
        .responses
        .iter()
        .flat_map(|topic| {
            topic
                .partitions
                .iter()
                .map(|data| (topic.topic.0.to_string(), data.partition_index))
        })
        .collect()
}

/// Runs one fetch through the sessions: `found` per partition read.
fn round(
    sessions: &FetchSessions,
    request: &FetchRequest,
    found: &[Found],
) -> Result<(Vec<WantedTopic>, FetchResponse), SessionError> {
    let (context, wanted) = sessions.open(request, 12, false, 0)?;
    let mut response = answer(&wanted, found);
    sessions.conclude(context, &wanted, &mut response, None);
    Ok((wanted, response))
}

/// A session over a-0, a-1 and b-0, created by a full fetch; its id.
fn session_of_three(sessions: &FetchSessions) -> i32 {
    let request = fetch(0, 0, &[("a", &[(0, 5), (1, 5)]), ("b", &[(0, 5)])]);
    let (_, response) = round(sessions, &request, &[NOTHING_NEW; 3]).expect("a full fetch");
    assert_eq!(
        answered(&response).len(),
        3,
        "a full answer has every partition"
    );
    assert_ne!(response.session_id, 0, "a session is created");
    response.session_id
}

#[test]
fn a_sessionless_fetch_keeps_no_session() {
    let sessions = FetchSessions::new(0, 1, &FetchSessionSettings::default());
    let request = fetch(0, FINAL_EPOCH, &[("a", &[(0, 0)])]);
    let (_, response) = round(&sessions, &request, &[NOTHING_NEW]).expect("answered");
    assert_eq!(response.session_id, 0);
    assert_eq!(answered(&response), vec![("a".to_string(), 0)]);
    assert!(sessions.is_empty());
}

#[test]
fn an_incremental_fetch_answers_only_partitions_with_news() {
    let sessions = FetchSessions::new(0, 1, &FetchSessionSettings::default());
    let id = session_of_three(&sessions);
    let (wanted, response) = round(
        &sessions,
        &fetch(id, 1, &[]),
        &[NOTHING_NEW, NEW_RECORDS, NOTHING_NEW],
    )
    .expect("epoch 1");
    assert_eq!(wanted.iter().map(|t| t.partitions.len()).sum::<usize>(), 3);
    assert_eq!(response.session_id, id);
    assert_eq!(answered(&response), vec![("a".to_string(), 1)]);
    // Nothing new at all: an empty answer, still in the session; a-1 moved
    // to the end after its records (the next byte budget starts elsewhere).
    let (wanted, response) =
        round(&sessions, &fetch(id, 2, &[]), &[NOTHING_NEW; 3]).expect("epoch 2");
    assert_eq!(
        names(&wanted),
        vec![
            ("a".to_string(), 0),
            ("b".to_string(), 0),
            ("a".to_string(), 1)
        ]
    );
    assert_eq!(response.session_id, id);
    assert!(answered(&response).is_empty());
}

#[test]
fn a_new_high_watermark_or_an_error_is_news_and_an_error_is_repeated() {
    let sessions = FetchSessions::new(0, 1, &FetchSessionSettings::default());
    let id = session_of_three(&sessions);
    let moved = Found {
        high_watermark: 12,
        records: false,
        error: 0,
    };
    let failed = Found {
        high_watermark: -1,
        records: false,
        error: KafkaError::NotLeaderOrFollower.code(),
    };
    let (_, response) =
        round(&sessions, &fetch(id, 1, &[]), &[moved, failed, NOTHING_NEW]).expect("epoch 1");
    assert_eq!(
        answered(&response),
        vec![("a".to_string(), 0), ("a".to_string(), 1)]
    );
    // The same error again is answered again; the high watermark is known.
    let (_, response) =
        round(&sessions, &fetch(id, 2, &[]), &[moved, failed, NOTHING_NEW]).expect("epoch 2");
    assert_eq!(answered(&response), vec![("a".to_string(), 1)]);
    // Once the error is gone the partition comes back with its state.
    let (_, response) = round(
        &sessions,
        &fetch(id, 3, &[]),
        &[moved, NOTHING_NEW, NOTHING_NEW],
    )
    .expect("epoch 3");
    assert_eq!(answered(&response), vec![("a".to_string(), 1)]);
}

#[test]
fn a_diverging_epoch_is_news() {
    let sessions = FetchSessions::new(0, 1, &FetchSessionSettings::default());
    let id = session_of_three(&sessions);
    let (context, wanted) = sessions
        .open(&fetch(id, 1, &[]), 12, true, 0)
        .expect("epoch 1");
    let mut response = answer(&wanted, &[NOTHING_NEW; 3]);
    response.responses[1].partitions[0].diverging_epoch =
        EpochEndOffset::default().with_epoch(3).with_end_offset(4);
    sessions.conclude(context, &wanted, &mut response, None);
    assert_eq!(answered(&response), vec![("b".to_string(), 0)]);
}

#[test]
fn an_incremental_fetch_updates_adds_and_forgets_partitions() {
    let sessions = FetchSessions::new(0, 1, &FetchSessionSettings::default());
    let id = session_of_three(&sessions);
    let mut request = fetch(id, 1, &[("a", &[(1, 9)]), ("c", &[(0, 0)])]);
    request.forgotten_topics_data = vec![ForgottenTopic::default()
        .with_topic(name("b"))
        .with_partitions(vec![0])];
    let (wanted, response) = round(
        &sessions,
        &request,
        &[NOTHING_NEW, NOTHING_NEW, NOTHING_NEW],
    )
    .expect("epoch 1");
    let partitions: Vec<(String, i32, i64)> = wanted
        .iter()
        .flat_map(|topic| {
            topic
                .partitions
                .iter()
                .map(|p| (topic.name.0.to_string(), p.partition, p.fetch_offset))
        })
        .collect();
    assert_eq!(
        partitions,
        vec![
            ("a".to_string(), 0, 5),
            ("a".to_string(), 1, 9),
            ("c".to_string(), 0, 0)
        ]
    );
    // The added partition is news (its state was never sent).
    assert_eq!(answered(&response), vec![("c".to_string(), 0)]);
}

#[test]
fn session_errors_name_the_problem() {
    let sessions = FetchSessions::new(0, 1, &FetchSessionSettings::default());
    let id = session_of_three(&sessions);
    let wrong_epoch = sessions.open(&fetch(id, 5, &[]), 12, false, 0);
    assert_eq!(
        wrong_epoch.err(),
        Some(SessionError(KafkaError::InvalidFetchSessionEpoch))
    );
    let unknown = sessions.open(&fetch(id + 1, 1, &[]), 12, false, 0);
    assert_eq!(
        unknown.err(),
        Some(SessionError(KafkaError::FetchSessionIdNotFound))
    );
    let with_ids = sessions.open(&fetch(id, 1, &[]), 13, false, 0);
    assert_eq!(
        with_ids.err(),
        Some(SessionError(KafkaError::FetchSessionTopicIdError))
    );
    // None of these moved the session on: epoch 1 still works.
    assert!(round(&sessions, &fetch(id, 1, &[]), &[NOTHING_NEW; 3]).is_ok());
    // The same epoch twice is refused.
    assert_eq!(
        sessions.open(&fetch(id, 1, &[]), 12, false, 0).err(),
        Some(SessionError(KafkaError::InvalidFetchSessionEpoch))
    );
}

#[test]
fn a_full_fetch_naming_a_session_closes_it() {
    let sessions = FetchSessions::new(0, 1, &FetchSessionSettings::default());
    let id = session_of_three(&sessions);
    let (_, response) = round(
        &sessions,
        &fetch(id, FINAL_EPOCH, &[("a", &[(0, 0)])]),
        &[NOTHING_NEW],
    )
    .expect("sessionless");
    assert_eq!(response.session_id, 0);
    assert!(sessions.is_empty());
    let id = session_of_three(&sessions);
    let (_, response) = round(
        &sessions,
        &fetch(id, INITIAL_EPOCH, &[("a", &[(0, 0)])]),
        &[NOTHING_NEW],
    )
    .expect("a new session");
    assert_ne!(response.session_id, 0);
    assert_ne!(response.session_id, id);
    assert_eq!(sessions.len(), 1, "the old one is closed");
    assert_eq!(
        sessions.open(&fetch(id, 1, &[]), 12, false, 0).err(),
        Some(SessionError(KafkaError::FetchSessionIdNotFound))
    );
}

#[test]
fn forgetting_every_partition_ends_the_session() {
    let sessions = FetchSessions::new(0, 1, &FetchSessionSettings::default());
    let request = fetch(0, INITIAL_EPOCH, &[("a", &[(0, 0)])]);
    let (_, response) = round(&sessions, &request, &[NOTHING_NEW]).expect("full");
    let mut forget = fetch(response.session_id, 1, &[]);
    forget.forgotten_topics_data = vec![ForgottenTopic::default()
        .with_topic(name("a"))
        .with_partitions(vec![0])];
    let (_, response) = round(&sessions, &forget, &[]).expect("answered");
    assert_eq!(response.session_id, 0);
    assert!(sessions.is_empty());
}

#[test]
fn a_duplicate_request_racing_its_twin_is_refused() {
    let sessions = FetchSessions::new(0, 1, &FetchSessionSettings::default());
    let id = session_of_three(&sessions);
    let (first, wanted) = sessions
        .open(&fetch(id, 1, &[]), 12, false, 0)
        .expect("epoch 1");
    // The next fetch is served while the first still waits for data.
    assert!(round(&sessions, &fetch(id, 2, &[]), &[NOTHING_NEW; 3]).is_ok());
    let mut late = answer(&wanted, &[NEW_RECORDS; 3]);
    sessions.conclude(first, &wanted, &mut late, None);
    assert_eq!(late.error_code, KafkaError::InvalidFetchSessionEpoch.code());
    assert!(late.responses.is_empty());
}

#[test]
fn session_ids_fall_in_their_shards_range() {
    for shard in 0..4 {
        let sessions = FetchSessions::new(shard, 4, &FetchSessionSettings::default());
        let range = i32::MAX / 4;
        for _ in 0..50 {
            let id = session_of_three(&sessions);
            assert!(
                id >= 1 && id / range == shard as i32,
                "{id} in shard {shard}"
            );
        }
    }
}

#[test]
fn a_full_cache_evicts_stale_or_smaller_consumer_sessions_for_followers() {
    let sessions = FetchSessions::new(0, 1, &FetchSessionSettings::default());
    for _ in 0..sessions.slots() {
        session_of_three(&sessions);
    }
    // A consumer's session finds no room: it fetches without one.
    let request = fetch(0, INITIAL_EPOCH, &[("a", &[(0, 0)])]);
    let (_, response) = round(&sessions, &request, &[NOTHING_NEW]).expect("answered");
    assert_eq!(response.session_id, 0);
    // A follower's evicts a consumer's.
    let (context, wanted) = sessions.open(&request, 12, true, 0).expect("full");
    let mut response = answer(&wanted, &[NOTHING_NEW]);
    sessions.conclude(context, &wanted, &mut response, None);
    assert_ne!(response.session_id, 0);
    assert_eq!(sessions.len(), sessions.slots());
}

#[test]
fn epochs_wrap_to_one() {
    assert_eq!(next_epoch(0), 1);
    assert_eq!(next_epoch(41), 42);
    assert_eq!(next_epoch(i32::MAX), 1);
    assert_eq!(next_epoch(FINAL_EPOCH), FINAL_EPOCH);
}

#[test]
fn cached_partitions_are_bounded_per_shard() {
    let sessions = FetchSessions::new(0, 1, &FetchSessionSettings::default());
    let id = session_of_three(&sessions);
    let many: Vec<(i32, i64)> = (0..MAX_CACHED_PARTITIONS_PER_SHARD as i32)
        .map(|p| (p, 0))
        .collect();
    // A session growing past the bound is closed; the client starts over.
    assert_eq!(
        sessions
            .open(&fetch(id, 1, &[("x", &many)]), 12, false, 0)
            .err(),
        Some(SessionError(KafkaError::FetchSessionIdNotFound))
    );
    assert!(sessions.is_empty());
    // A full fetch that large is answered without a session.
    let request = fetch(0, INITIAL_EPOCH, &[("x", &many), ("y", &[(0, 0)])]);
    let (_, response) = round(&sessions, &request, &[]).expect("answered");
    assert_eq!(response.session_id, 0);
    assert!(sessions.is_empty());
}

/// One shard's sessions with `slots` slots and eviction age `eviction_age`.
fn with_slots(slots: usize, eviction_age: Duration) -> FetchSessions {
    let settings = FetchSessionSettings {
        cache_slots: Some(slots),
        eviction_age,
    };
    FetchSessions::new(0, 1, &settings)
}

/// A full fetch of partitions 0..`count` of `topic`, by a consumer or a
/// follower; the session id it was answered with.
fn full_fetch(sessions: &FetchSessions, topic: &str, count: i32, follower: bool) -> i32 {
    let partitions: Vec<(i32, i64)> = (0..count).map(|p| (p, 0)).collect();
    let request = fetch(0, INITIAL_EPOCH, &[(topic, &partitions)]);
    let (context, wanted) = sessions.open(&request, 12, follower, 0).expect("full");
    let mut response = answer(&wanted, &[]);
    sessions.conclude(context, &wanted, &mut response, None);
    assert_eq!(
        answered(&response).len(),
        count as usize,
        "a full fetch is answered in full, with or without a session"
    );
    response.session_id
}

/// Moves session `id`'s creation and last use `by` into the past.
fn age(sessions: &FetchSessions, id: i32, created_by: Duration, used_by: Duration) {
    let mut all = sessions.sessions.borrow_mut();
    let session = all.get_mut(&id).expect("session exists");
    let now = Instant::now();
    session.created = now.checked_sub(created_by).expect("past instant");
    session.last_used = now.checked_sub(used_by).expect("past instant");
}

#[test]
fn the_default_keeps_1000_sessions_per_shard() {
    let sessions = FetchSessions::new(1, 2, &FetchSessionSettings::default());
    assert_eq!(
        sessions.slots(),
        FETCH_SESSION_CACHE_SLOTS_PER_SHARD_DEFAULT
    );
    assert_eq!(sessions.slots(), 1_000);
}

#[test]
fn zero_slots_answer_every_fetch_without_a_session() {
    let sessions = with_slots(0, Duration::from_secs(120));
    for follower in [false, true] {
        assert_eq!(full_fetch(&sessions, "a", 3, follower), 0);
    }
    let (context, _) = sessions
        .open(&fetch(0, INITIAL_EPOCH, &[("a", &[(0, 0)])]), 12, false, 0)
        .expect("answered");
    assert_eq!(
        context,
        FetchContext::Sessionless,
        "nothing is cached for it"
    );
    assert!(sessions.is_empty());
    // No id was ever handed out, so any incremental fetch names an unknown one.
    assert_eq!(
        sessions.open(&fetch(12_345, 1, &[]), 12, false, 0).err(),
        Some(SessionError(KafkaError::FetchSessionIdNotFound))
    );
}

#[test]
fn one_slot_goes_to_a_larger_session_once_the_first_is_no_longer_new() {
    let eviction_age = Duration::from_secs(60);
    let sessions = with_slots(1, eviction_age);
    let first = full_fetch(&sessions, "a", 3, false);
    assert_ne!(first, 0);
    // A larger session does not evict one younger than the eviction age.
    assert_eq!(full_fetch(&sessions, "b", 5, false), 0);
    assert!(sessions.open(&fetch(first, 1, &[]), 12, false, 0).is_ok());
    // Once it is older, the larger one takes its slot, though it is in use.
    let in_use = Duration::ZERO;
    age(&sessions, first, eviction_age * 2, in_use);
    let second = full_fetch(&sessions, "b", 5, false);
    assert_ne!(second, 0);
    assert_eq!(sessions.len(), 1);
    // The evicted client learns it at its next incremental fetch ...
    assert_eq!(
        sessions.open(&fetch(first, 2, &[]), 12, false, 0).err(),
        Some(SessionError(KafkaError::FetchSessionIdNotFound))
    );
    // ... and its full fetch, smaller, evicts neither a new nor an old
    // session in use: it is answered without a session.
    assert_eq!(full_fetch(&sessions, "a", 3, false), 0);
    age(&sessions, second, eviction_age * 2, in_use);
    assert_eq!(full_fetch(&sessions, "a", 3, false), 0);
    // An equal size is not enough either (Kafka's EvictableKey order).
    assert_eq!(full_fetch(&sessions, "c", 5, false), 0);
    assert!(sessions.open(&fetch(second, 1, &[]), 12, false, 0).is_ok());
    // A stale session (unused for the eviction age) goes for any new one.
    age(&sessions, second, eviction_age * 2, eviction_age * 2);
    let third = full_fetch(&sessions, "a", 1, false);
    assert_ne!(third, 0);
    assert_eq!(sessions.len(), 1);
    assert_eq!(
        sessions.open(&fetch(second, 2, &[]), 12, false, 0).err(),
        Some(SessionError(KafkaError::FetchSessionIdNotFound))
    );
}

#[test]
fn a_follower_evicts_any_consumer_but_only_an_old_smaller_follower() {
    let eviction_age = Duration::from_secs(60);
    let sessions = with_slots(1, eviction_age);
    let consumer = full_fetch(&sessions, "a", 5, false);
    assert_ne!(consumer, 0);
    // A consumer's session, new and larger, still goes for a follower's.
    let follower = full_fetch(&sessions, "a", 1, true);
    assert_ne!(follower, 0);
    assert_eq!(sessions.len(), 1);
    // A consumer never evicts a follower that is in use, however old.
    age(&sessions, follower, eviction_age * 2, Duration::ZERO);
    assert_eq!(full_fetch(&sessions, "a", 5, false), 0);
    // Another follower evicts it once it is old, if larger.
    assert_eq!(full_fetch(&sessions, "a", 1, true), 0);
    let larger = full_fetch(&sessions, "a", 2, true);
    assert_ne!(larger, 0);
    assert_eq!(sessions.len(), 1);
}

#[test]
fn a_fetch_whose_session_was_evicted_while_it_waited_hears_it_was_not_found() {
    let eviction_age = Duration::from_secs(60);
    let sessions = with_slots(1, eviction_age);
    let first = full_fetch(&sessions, "a", 3, false);
    let (context, wanted) = sessions
        .open(&fetch(first, 1, &[]), 12, false, 0)
        .expect("epoch 1");
    // While it long-polls, a larger session takes the only slot.
    age(&sessions, first, eviction_age * 2, Duration::ZERO);
    assert_ne!(full_fetch(&sessions, "b", 5, false), 0);
    let mut response = answer(&wanted, &[NEW_RECORDS; 3]);
    sessions.conclude(context, &wanted, &mut response, None);
    assert_eq!(
        response.error_code,
        KafkaError::FetchSessionIdNotFound.code()
    );
    assert_eq!(response.session_id, 0);
    assert!(response.responses.is_empty());
}

/// The partitions read, the answer, and the quiet candidates offered (with watch ids).
type WatchedRound = (Vec<(String, i32)>, FetchResponse, Vec<(String, i32, u32)>);

/// One fetch of session `id` at `epoch` under partition `generation`,
/// `found` per partition read; the quiet candidates are watched (as a local
/// log at its high watermark would be) when `watch` is set. The partitions
/// read, the answer and the candidates offered.
fn watched_round(
    sessions: &FetchSessions,
    request: &FetchRequest,
    generation: u64,
    found: &[Found],
    watch: bool,
) -> WatchedRound {
    let (context, wanted) = sessions
        .open(request, 12, false, generation)
        .expect("opened");
    let read = names(&wanted);
    let mut response = answer(&wanted, found);
    let mut offered = Vec::new();
    let mut watch_quiet = |candidate: &QuietCandidate<'_>| {
        offered.push((
            candidate.topic.0.to_string(),
            candidate.partition,
            candidate.watch_id,
        ));
        true
    };
    let watch_quiet: Option<WatchQuiet<'_>> = watch.then_some(&mut watch_quiet);
    sessions.conclude(context, &wanted, &mut response, watch_quiet);
    (read, response, offered)
}

fn names(wanted: &[WantedTopic]) -> Vec<(String, i32)> {
    wanted
        .iter()
        .flat_map(|topic| {
            topic
                .partitions
                .iter()
                .map(|p| (topic.name.0.to_string(), p.partition))
        })
        .collect()
}

fn pair(topic: &str, partition: i32) -> (String, i32) {
    (topic.to_string(), partition)
}

/// A session over a-0 and a-1 (at their high watermark, 10) and b-0
/// (behind it, at 5); its id.
fn session_at_the_end(sessions: &FetchSessions) -> i32 {
    let request = fetch(0, 0, &[("a", &[(0, 10), (1, 10)]), ("b", &[(0, 5)])]);
    let (_, response) = round(sessions, &request, &[NOTHING_NEW; 3]).expect("a full fetch");
    response.session_id
}

#[test]
fn quiet_partitions_are_left_out_of_reads_until_their_watch_fires() {
    let sessions = FetchSessions::new(0, 1, &FetchSessionSettings::default());
    let id = session_at_the_end(&sessions);
    // Epoch 1 reads all three; a-0 and a-1 had nothing and their consumer
    // is at the high watermark: they are watched. b-0 is behind it.
    let (read, _, offered) =
        watched_round(&sessions, &fetch(id, 1, &[]), 7, &[NOTHING_NEW; 3], true);
    assert_eq!(read, vec![pair("a", 0), pair("a", 1), pair("b", 0)]);
    let offered_names: Vec<(String, i32)> = offered.iter().map(|(t, p, _)| pair(t, *p)).collect();
    assert_eq!(offered_names, vec![pair("a", 0), pair("a", 1)]);
    // Epoch 2 reads only b-0.
    let (read, response, _) = watched_round(&sessions, &fetch(id, 2, &[]), 7, &[NOTHING_NEW], true);
    assert_eq!(read, vec![pair("b", 0)]);
    assert!(answered(&response).is_empty());
    // a-1's log moves: its watch fires, and the fetch waiting hears it.
    let watch = sessions
        .watch_of(FetchContext::Incremental {
            session_id: id,
            next_epoch: 3,
        })
        .expect("a consumer session has a watch");
    assert!(!watch.any_moved());
    watch.fire(offered[1].2);
    assert!(watch.any_moved());
    let (read, response, _) = watched_round(
        &sessions,
        &fetch(id, 3, &[]),
        7,
        &[NEW_RECORDS, NOTHING_NEW],
        true,
    );
    assert_eq!(read, vec![pair("a", 1), pair("b", 0)]);
    assert_eq!(answered(&response), vec![pair("a", 1)]);
    assert!(!watch.any_moved(), "the session took the moves in");
}

#[test]
fn a_moved_position_or_new_partition_generation_reads_quiet_partitions_again() {
    let sessions = FetchSessions::new(0, 1, &FetchSessionSettings::default());
    let id = session_at_the_end(&sessions);
    watched_round(&sessions, &fetch(id, 1, &[]), 7, &[NOTHING_NEW; 3], true);
    // The consumer seeks a-0: the request names it, so it is read.
    let (read, _, _) = watched_round(
        &sessions,
        &fetch(id, 2, &[("a", &[(0, 3)])]),
        7,
        &[NOTHING_NEW; 2],
        true,
    );
    assert_eq!(read, vec![pair("a", 0), pair("b", 0)]);
    // Leaders, logs or topics changed on the shard: everything is read.
    let (read, _, _) = watched_round(&sessions, &fetch(id, 3, &[]), 8, &[NOTHING_NEW; 3], true);
    assert_eq!(read, vec![pair("a", 0), pair("a", 1), pair("b", 0)]);
}

#[test]
fn partitions_not_watched_stay_read_and_refresh_adds_the_ones_that_moved() {
    let sessions = FetchSessions::new(0, 1, &FetchSessionSettings::default());
    let id = session_at_the_end(&sessions);
    // Without a watch (the shard changed during the fetch), nothing is quiet.
    watched_round(&sessions, &fetch(id, 1, &[]), 7, &[NOTHING_NEW; 3], false);
    let (read, _, offered) =
        watched_round(&sessions, &fetch(id, 2, &[]), 7, &[NOTHING_NEW; 3], true);
    assert_eq!(read.len(), 3);
    // While epoch 3 waits, a-0 moves: the refresh reads it too.
    let (context, wanted) = sessions
        .open(&fetch(id, 3, &[]), 12, false, 7)
        .expect("epoch 3");
    assert_eq!(names(&wanted), vec![pair("b", 0)]);
    let watch = sessions.watch_of(context).expect("watch");
    watch.fire(offered[0].2);
    let refreshed = sessions.refresh(context, 7).expect("session still there");
    assert_eq!(names(&refreshed), vec![pair("a", 0), pair("b", 0)]);
    let mut response = answer(&refreshed, &[NEW_RECORDS, NOTHING_NEW]);
    sessions.conclude(context, &refreshed, &mut response, None);
    assert_eq!(answered(&response), vec![pair("a", 0)]);
    // A refresh for an epoch the session left behind finds nothing.
    sessions
        .open(&fetch(id, 4, &[]), 12, false, 7)
        .expect("epoch 4");
    assert!(sessions.refresh(context, 7).is_none());
}

#[test]
fn a_followers_session_never_leaves_partitions_out() {
    let sessions = FetchSessions::new(0, 1, &FetchSessionSettings::default());
    let request = fetch(0, 0, &[("a", &[(0, 10), (1, 10)])]);
    let (context, wanted) = sessions.open(&request, 12, true, 7).expect("full");
    let mut response = answer(&wanted, &[NOTHING_NEW; 2]);
    sessions.conclude(context, &wanted, &mut response, None);
    let id = response.session_id;
    let (context, wanted) = sessions
        .open(&fetch(id, 1, &[]), 12, true, 7)
        .expect("epoch 1");
    assert!(sessions.watch_of(context).is_none());
    let mut response = answer(&wanted, &[NOTHING_NEW; 2]);
    let mut offered = 0;
    let mut watch_quiet = |_: &QuietCandidate<'_>| {
        offered += 1;
        true
    };
    sessions.conclude(context, &wanted, &mut response, Some(&mut watch_quiet));
    assert_eq!(offered, 0, "a follower's fetch keeps it in the ISR");
    let (_, wanted) = sessions
        .open(&fetch(id, 2, &[]), 12, true, 7)
        .expect("epoch 2");
    assert_eq!(names(&wanted).len(), 2);
}

#[test]
fn many_partitions_answered_with_records_keep_their_order_at_the_end() {
    let sessions = FetchSessions::new(0, 1, &FetchSessionSettings::default());
    let partitions: Vec<(i32, i64)> = (0..6).map(|p| (p, 5)).collect();
    let (_, response) = round(
        &sessions,
        &fetch(0, 0, &[("a", &partitions)]),
        &[NOTHING_NEW; 6],
    )
    .expect("full");
    let id = response.session_id;
    let found = [
        NEW_RECORDS,
        NOTHING_NEW,
        NEW_RECORDS,
        NOTHING_NEW,
        NEW_RECORDS,
        NOTHING_NEW,
    ];
    round(&sessions, &fetch(id, 1, &[]), &found).expect("epoch 1");
    let (wanted, _) = round(&sessions, &fetch(id, 2, &[]), &[NOTHING_NEW; 6]).expect("epoch 2");
    let order: Vec<i32> = names(&wanted).into_iter().map(|(_, p)| p).collect();
    assert_eq!(order, vec![1, 3, 5, 0, 2, 4]);
}
