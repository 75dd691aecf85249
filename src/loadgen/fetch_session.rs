//! The client side of one incremental fetch session (KIP-227), as the Java
//! consumer's `FetchSessionHandler` keeps one per broker: the first fetch is
//! full (session id 0, epoch 0) and asks the broker for a session; after
//! that each fetch carries the session id and the next epoch and names only
//! the partitions whose fetch offset moved since the previous request. The
//! others stay in the broker's session at the offset it holds, and the
//! broker answers only partitions with news. Without sessions every fetch
//! names every partition and every answer repeats every partition, which at
//! 10,000 partitions is most of both sides' work.
//!
//! Pure state, owned by one consumer's fetch loop for one broker on one
//! load-generator core; `consumer.rs` does the I/O.

/// Error codes of a fetch answer that concern the session.
pub const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
pub const INVALID_FETCH_SESSION_EPOCH: i16 = 71;

/// The session id that names no session.
const NO_SESSION_ID: i32 = 0;
/// Epoch of a full fetch that asks for a new session.
const INITIAL_EPOCH: i32 = 0;
/// Epoch of a full fetch that wants no session (sessionless fetching).
const FINAL_EPOCH: i32 = -1;

/// What the next request carries and what the broker's session holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchSession {
    /// Whether to use sessions at all (`fetch_sessions` in the scenario).
    enabled: bool,
    session_id: i32,
    /// Epoch of the next request.
    epoch: i32,
}

/// How an answer left the session, for the caller's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionOutcome {
    /// The answer is good: use its partitions.
    Answered,
    /// The broker lost or refused the session (evicted, a wrong epoch, an
    /// answer that does not fit it); the next fetch is full and starts a new
    /// one. Not an error of the data path: the Java client logs it at info.
    Restarted,
    /// Another top-level error: counted as a consume error by the caller.
    Failed,
}

/// Kafka's `FetchMetadata.nextEpoch`: epochs count from 1 and wrap from
/// `i32::MAX` back to 1 (0 and -1 mean full fetches).
pub fn next_epoch(epoch: i32) -> i32 {
    if epoch < 0 {
        FINAL_EPOCH
    } else if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

impl FetchSession {
    pub fn new(enabled: bool) -> FetchSession {
        FetchSession {
            enabled,
            session_id: NO_SESSION_ID,
            epoch: if enabled { INITIAL_EPOCH } else { FINAL_EPOCH },
        }
    }

    /// Session id of the next request.
    pub fn session_id(&self) -> i32 {
        self.session_id
    }

    /// Session epoch of the next request.
    pub fn epoch(&self) -> i32 {
        self.epoch
    }

    /// Whether the next request must name every partition.
    pub fn is_full(&self) -> bool {
        self.epoch == INITIAL_EPOCH || self.epoch == FINAL_EPOCH
    }

    /// Takes the broker's answer (top-level `error_code` and `session_id`)
    /// to the request built from this state, as `FetchSessionHandler.
    /// handleResponse` does.
    pub fn on_answer(&mut self, error_code: i16, answered_session_id: i32) -> SessionOutcome {
        if !self.enabled {
            return if error_code == 0 {
                SessionOutcome::Answered
            } else {
                SessionOutcome::Failed
            };
        }
        if error_code != 0 {
            let outcome = match error_code {
                FETCH_SESSION_ID_NOT_FOUND | INVALID_FETCH_SESSION_EPOCH => {
                    SessionOutcome::Restarted
                }
                _ => SessionOutcome::Failed,
            };
            if error_code == FETCH_SESSION_ID_NOT_FOUND {
                // Nothing to close: ask for a new session.
                self.restart_fresh();
            } else {
                self.restart_closing_current();
            }
            return outcome;
        }
        if self.is_full() {
            // Session id 0: the broker keeps no session for us (its cache is
            // full); the next fetch is full again and asks again, as Kafka's
            // client does.
            self.session_id = answered_session_id;
            self.epoch = if answered_session_id == NO_SESSION_ID {
                INITIAL_EPOCH
            } else {
                next_epoch(INITIAL_EPOCH)
            };
        } else if answered_session_id == NO_SESSION_ID {
            // The broker closed the session.
            self.restart_fresh();
        } else {
            self.epoch = next_epoch(self.epoch);
        }
        SessionOutcome::Answered
    }

    /// The answer named a partition the session does not hold (or a full
    /// answer left one out): start over, closing the session (Kafka's
    /// `nextCloseExistingAttemptNew`).
    pub fn on_unexpected_partitions(&mut self) -> SessionOutcome {
        if !self.enabled {
            return SessionOutcome::Failed;
        }
        self.restart_closing_current();
        SessionOutcome::Restarted
    }

    /// A full fetch with no session id: a new session.
    fn restart_fresh(&mut self) {
        self.session_id = NO_SESSION_ID;
        self.epoch = INITIAL_EPOCH;
    }

    /// A full fetch naming the current session, which the broker closes
    /// before it opens a new one.
    fn restart_closing_current(&mut self) {
        self.epoch = INITIAL_EPOCH;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_fetch_is_full_then_incremental_with_counting_epochs() {
        let mut session = FetchSession::new(true);
        assert_eq!((session.session_id(), session.epoch()), (0, 0));
        assert!(session.is_full());
        assert_eq!(session.on_answer(0, 77), SessionOutcome::Answered);
        assert_eq!((session.session_id(), session.epoch()), (77, 1));
        assert!(!session.is_full());
        assert_eq!(session.on_answer(0, 77), SessionOutcome::Answered);
        assert_eq!((session.session_id(), session.epoch()), (77, 2));
    }

    #[test]
    fn epochs_wrap_from_max_to_one() {
        assert_eq!(next_epoch(0), 1);
        assert_eq!(next_epoch(41), 42);
        assert_eq!(next_epoch(i32::MAX), 1);
        assert_eq!(next_epoch(-1), -1);
        let mut session = FetchSession {
            enabled: true,
            session_id: 5,
            epoch: i32::MAX,
        };
        session.on_answer(0, 5);
        assert_eq!(session.epoch(), 1);
    }

    #[test]
    fn unknown_session_starts_fresh_and_wrong_epoch_closes_the_old_one() {
        let mut session = FetchSession::new(true);
        session.on_answer(0, 9);
        session.on_answer(0, 9);
        assert_eq!(
            session.on_answer(FETCH_SESSION_ID_NOT_FOUND, 0),
            SessionOutcome::Restarted
        );
        assert_eq!((session.session_id(), session.epoch()), (0, 0));

        session.on_answer(0, 12);
        assert_eq!(
            session.on_answer(INVALID_FETCH_SESSION_EPOCH, 0),
            SessionOutcome::Restarted
        );
        assert_eq!((session.session_id(), session.epoch()), (12, 0));
        assert!(session.is_full());
        session.on_answer(0, 13);
        assert_eq!((session.session_id(), session.epoch()), (13, 1));
    }

    #[test]
    fn other_errors_fail_and_restart() {
        let mut session = FetchSession::new(true);
        session.on_answer(0, 3);
        assert_eq!(session.on_answer(7, 0), SessionOutcome::Failed);
        assert!(session.is_full());
    }

    #[test]
    fn no_session_granted_keeps_asking_with_full_fetches() {
        let mut session = FetchSession::new(true);
        session.on_answer(0, 0);
        assert_eq!((session.session_id(), session.epoch()), (0, 0));
        // An incremental answer with session id 0: the broker closed it.
        session.on_answer(0, 4);
        session.on_answer(0, 0);
        assert_eq!((session.session_id(), session.epoch()), (0, 0));
    }

    #[test]
    fn disabled_sessions_always_fetch_sessionless() {
        let mut session = FetchSession::new(false);
        assert_eq!((session.session_id(), session.epoch()), (0, -1));
        assert_eq!(session.on_answer(0, 0), SessionOutcome::Answered);
        assert_eq!(
            session.on_answer(FETCH_SESSION_ID_NOT_FOUND, 0),
            SessionOutcome::Failed
        );
        assert_eq!((session.session_id(), session.epoch()), (0, -1));
        assert!(session.is_full());
    }

    #[test]
    fn an_unexpected_partition_restarts_the_session() {
        let mut session = FetchSession::new(true);
        session.on_answer(0, 8);
        assert_eq!(
            session.on_unexpected_partitions(),
            SessionOutcome::Restarted
        );
        assert_eq!((session.session_id(), session.epoch()), (8, 0));
    }
}
