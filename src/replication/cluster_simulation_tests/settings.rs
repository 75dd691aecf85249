//! The simulation's settings: corelog's timings in ticks, the rules where
//! the server's former rules that lost acknowledged records (to show that
//! the simulation catches them), and what each run counts.

/// Timings in ticks of 100 ms.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timing {
    /// --broker-heartbeat-interval-ms 2000.
    pub heartbeat_interval: i64,
    /// --broker-session-timeout-ms 9000.
    pub session_timeout: i64,
    /// --replica-lag-time-max-ms 30000 (some seeds: 4000, for ISR churn).
    pub replica_lag_max: i64,
    /// `replicas::ISR_CHANGE_PATIENCE_MS` 10000.
    pub isr_change_patience: i64,
    /// The replica fetcher's request timeout (500 ms wait + 10 s).
    pub fetch_timeout: i64,
    /// The replica fetcher's RETRY_BACKOFF 200 ms.
    pub retry_backoff: i64,
    pub registration_retry: i64,
    /// --leader-imbalance-check-interval-ms, shortened (default 300 s).
    pub preferred_election_interval: i64,
    pub high_watermark_checkpoint_interval: i64,
    pub controlled_shutdown_timeout: i64,
}

impl Timing {
    pub fn corelog_defaults() -> Timing {
        Timing {
            heartbeat_interval: 20,
            session_timeout: 90,
            replica_lag_max: 300,
            isr_change_patience: 100,
            fetch_timeout: 105,
            retry_backoff: 2,
            registration_retry: 10,
            preferred_election_interval: 600,
            high_watermark_checkpoint_interval: 50,
            controlled_shutdown_timeout: 150,
        }
    }
}

/// Where the simulation follows the server's former rules rather than the
/// that fix it (each loses committed records; see `isr.rs`, `fetch.rs` and
/// `scenarios.rs`). `CLUSTER_SIMULATION_FORMER_RULES` names those to follow,
/// comma-separated, or `all`.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct FormerRules {
    /// `isr-patience`: `replicas::forget_stale_isr_change` forgets a
    /// pending expansion after ISR_CHANGE_PATIENCE_MS.
    pub isr_patience: bool,
    /// `isr-refusals`: `replicas::propose_isr` drops a pending change on
    /// NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH and four more errors
    /// that do not prove it was not applied.
    pub isr_refusals: bool,
    /// `isr-answers`: an answer to a request the leader gave up on settles
    /// the change pending now (the server matches the leadership only).
    pub isr_answers: bool,
    /// `fetch-offset`: `replica_fetcher::build_request` sends the written
    /// end, so a follower that starts fetching from a new leader while its
    /// last sync is under way reports records that are not durable.
    pub fetch_offset: bool,
}

impl FormerRules {
    pub fn from_environment() -> FormerRules {
        let named = std::env::var("CLUSTER_SIMULATION_FORMER_RULES").unwrap_or_default();
        let follows = |rule: &str| named.split(',').any(|name| name == rule || name == "all");
        FormerRules {
            isr_patience: follows("isr-patience"),
            isr_refusals: follows("isr-refusals"),
            isr_answers: follows("isr-answers"),
            fetch_offset: follows("fetch-offset"),
        }
    }
}

#[derive(Debug, Default, Clone)]
pub(super) struct Stats {
    pub acknowledged: usize,
    pub not_enough_replicas: usize,
    pub leaderships: usize,
    pub elections: usize,
    pub isr_changes: usize,
    pub isr_changes_proposed: usize,
    pub isr_changes_refused: usize,
    pub truncations: usize,
    pub truncated_records: usize,
    pub fetch_errors: usize,
    pub crashes: usize,
    pub clean_stops: usize,
    pub link_cuts: usize,
    pub messages: u64,
    pub messages_lost: u64,
}

impl Stats {
    pub fn add(&mut self, other: &Stats) {
        self.acknowledged += other.acknowledged;
        self.not_enough_replicas += other.not_enough_replicas;
        self.leaderships += other.leaderships;
        self.elections += other.elections;
        self.isr_changes += other.isr_changes;
        self.isr_changes_proposed += other.isr_changes_proposed;
        self.isr_changes_refused += other.isr_changes_refused;
        self.truncations += other.truncations;
        self.truncated_records += other.truncated_records;
        self.fetch_errors += other.fetch_errors;
        self.crashes += other.crashes;
        self.clean_stops += other.clean_stops;
        self.link_cuts += other.link_cuts;
        self.messages += other.messages;
        self.messages_lost += other.messages_lost;
    }
}
