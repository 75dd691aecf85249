use std::sync::Arc;

use super::*;

fn key(topic: &str, partition: i32) -> PartitionKey {
    (Arc::from(topic), partition)
}

fn at(fetch_offset: i64) -> FetchPosition {
    FetchPosition {
        leader_epoch: 3,
        fetch_offset,
        last_fetched_epoch: 3,
        log_start_offset: 0,
    }
}

fn wanted(positions: &[(&str, i32, i64)]) -> BTreeMap<PartitionKey, FetchPosition> {
    positions
        .iter()
        .map(|&(topic, partition, offset)| (key(topic, partition), at(offset)))
        .collect()
}

fn sent(fetch: &SessionFetch) -> Vec<(PartitionKey, i64)> {
    fetch
        .send
        .iter()
        .map(|(key, at)| (key.clone(), at.fetch_offset))
        .collect()
}

#[test]
fn the_first_fetch_is_full_and_the_next_name_only_changes() {
    let mut session = FetchSessionHandler::default();
    let first = session.prepare(wanted(&[("a", 0, 5), ("a", 1, 7)]));
    assert_eq!((first.session_id, first.epoch), (0, 0));
    assert_eq!(first.send.len(), 2);
    session.answered(first, NONE, 77);

    let second = session.prepare(wanted(&[("a", 0, 5), ("a", 1, 9)]));
    assert_eq!((second.session_id, second.epoch), (77, 1));
    assert_eq!(sent(&second), vec![(key("a", 1), 9)]);
    assert!(second.forget.is_empty());
    assert_eq!(second.wanted.len(), 2, "the leader reads both");
    session.answered(second, NONE, 77);

    // Nothing changed: an empty incremental fetch.
    let third = session.prepare(wanted(&[("a", 0, 5), ("a", 1, 9)]));
    assert_eq!(third.epoch, 2);
    assert!(third.send.is_empty() && third.forget.is_empty());
}

#[test]
fn partitions_leaving_are_forgotten_and_joining_ones_sent() {
    let mut session = FetchSessionHandler::default();
    let first = session.prepare(wanted(&[("a", 0, 5), ("b", 0, 1)]));
    session.answered(first, NONE, 5);
    let next = session.prepare(wanted(&[("a", 0, 5), ("c", 2, 0)]));
    assert_eq!(sent(&next), vec![(key("c", 2), 0)]);
    assert_eq!(next.forget, vec![key("b", 0)]);
    session.answered(next, NONE, 5);
    // b-0 comes back (unparked): sent again in full.
    let next = session.prepare(wanted(&[("a", 0, 5), ("b", 0, 1), ("c", 2, 0)]));
    assert_eq!(sent(&next), vec![(key("b", 0), 1)]);
}

#[test]
fn a_session_error_or_a_lost_answer_starts_over_with_a_full_fetch() {
    let mut session = FetchSessionHandler::default();
    let first = session.prepare(wanted(&[("a", 0, 5)]));
    session.answered(first, NONE, 9);

    let next = session.prepare(wanted(&[("a", 0, 6)]));
    session.answered(next, KafkaError::InvalidFetchSessionEpoch.code(), 0);
    let retry = session.prepare(wanted(&[("a", 0, 6)]));
    assert_eq!(
        (retry.session_id, retry.epoch),
        (9, 0),
        "full, closing session 9"
    );
    assert_eq!(retry.send.len(), 1);
    session.answered(retry, NONE, 10);

    let next = session.prepare(wanted(&[("a", 0, 6)]));
    session.failed();
    drop(next);
    let retry = session.prepare(wanted(&[("a", 0, 6)]));
    assert_eq!((retry.session_id, retry.epoch), (10, 0));

    session.answered(retry, NONE, 11);
    let next = session.prepare(wanted(&[("a", 0, 6)]));
    session.answered(next, KafkaError::FetchSessionIdNotFound.code(), 0);
    let retry = session.prepare(wanted(&[("a", 0, 6)]));
    assert_eq!(
        (retry.session_id, retry.epoch),
        (0, 0),
        "an unknown session is not closed"
    );
}

#[test]
fn a_leader_keeping_no_session_gets_full_fetches() {
    let mut session = FetchSessionHandler::default();
    let first = session.prepare(wanted(&[("a", 0, 5)]));
    session.answered(first, NONE, 0);
    let next = session.prepare(wanted(&[("a", 0, 5)]));
    assert_eq!((next.session_id, next.epoch), (0, 0));
    assert_eq!(next.send.len(), 1);
}

#[test]
fn a_session_the_leader_ended_starts_anew() {
    let mut session = FetchSessionHandler::default();
    let first = session.prepare(wanted(&[("a", 0, 5)]));
    session.answered(first, NONE, 4);
    // Everything forgotten: the leader drops the session, answers id 0.
    let next = session.prepare(BTreeMap::new());
    assert_eq!(next.forget, vec![key("a", 0)]);
    session.answered(next, NONE, 0);
    let again = session.prepare(wanted(&[("a", 0, 5)]));
    assert_eq!((again.session_id, again.epoch), (0, 0));
}
