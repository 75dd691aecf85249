//! A follower's side of its fetch session with one leader (KIP-227,
//! Kafka's `FetchSessionHandler`): the first fetch names every partition
//! and starts a session; each next one names only the partitions whose
//! position changed (new fetch offset, leader epoch, ...) or that joined,
//! and forgets those that left (moved, parked after an error). Any failure
//! (an error answer, a lost connection) starts over with a full fetch that
//! also closes the old session on the leader.

use std::collections::BTreeMap;

use super::replicas::PartitionKey;
use crate::protocol::errors::{KafkaError, NONE};

/// Where a partition fetches from: what a fetch request states for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchPosition {
    pub leader_epoch: i32,
    pub fetch_offset: i64,
    pub last_fetched_epoch: i32,
    pub log_start_offset: i64,
}

/// The session with one leader, as the follower knows it.
#[derive(Debug, Default)]
pub struct FetchSessionHandler {
    /// 0 before the leader gave one (or when it keeps none).
    id: i32,
    /// The next request's epoch: 0 for a full fetch that starts a session.
    epoch: i32,
    /// The positions the leader's session holds.
    known: BTreeMap<PartitionKey, FetchPosition>,
}

/// One fetch of the session: what to send, and the partitions the leader
/// will read (all of `wanted`).
#[derive(Debug)]
pub struct SessionFetch {
    pub session_id: i32,
    pub epoch: i32,
    /// Partitions to state in the request.
    pub send: Vec<(PartitionKey, FetchPosition)>,
    /// Partitions to put in `forgotten_topics_data`.
    pub forget: Vec<PartitionKey>,
    /// Every partition fetched, with its position.
    pub wanted: BTreeMap<PartitionKey, FetchPosition>,
}

impl SessionFetch {
    fn is_full(&self) -> bool {
        self.epoch == 0
    }
}

impl FetchSessionHandler {
    /// The fetch of `wanted` (each partition's position now).
    pub fn prepare(&self, wanted: BTreeMap<PartitionKey, FetchPosition>) -> SessionFetch {
        if self.epoch == 0 {
            return SessionFetch {
                session_id: self.id,
                epoch: 0,
                send: wanted.iter().map(|(key, at)| (key.clone(), *at)).collect(),
                forget: Vec::new(),
                wanted,
            };
        }
        let send = wanted
            .iter()
            .filter(|(key, at)| self.known.get(*key) != Some(*at))
            .map(|(key, at)| (key.clone(), *at))
            .collect();
        let forget = self
            .known
            .keys()
            .filter(|key| !wanted.contains_key(*key))
            .cloned()
            .collect();
        SessionFetch {
            session_id: self.id,
            epoch: self.epoch,
            send,
            forget,
            wanted,
        }
    }

    /// The leader answered `fetch` with `error_code` and `session_id`.
    pub fn answered(&mut self, fetch: SessionFetch, error_code: i16, session_id: i32) {
        if error_code != NONE {
            if error_code == KafkaError::FetchSessionIdNotFound.code() {
                self.id = 0;
            }
            self.restart();
            return;
        }
        if fetch.is_full() {
            self.id = session_id;
            self.epoch = i32::from(session_id != 0);
        } else if session_id != self.id {
            // The leader ended the session (it emptied): start anew.
            self.id = session_id;
            self.restart();
            return;
        } else {
            self.epoch = if self.epoch == i32::MAX {
                1
            } else {
                self.epoch + 1
            };
        }
        self.known = fetch.wanted;
    }

    /// The fetch got no answer: it may or may not have reached the leader,
    /// so the next one is full (and closes this session there).
    pub fn failed(&mut self) {
        self.restart();
    }

    fn restart(&mut self) {
        self.epoch = 0;
        self.known.clear();
    }
}

#[cfg(test)]
#[path = "replica_fetch_session_tests.rs"]
mod tests;
