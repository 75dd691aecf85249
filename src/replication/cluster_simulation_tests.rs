//! A simulation of a whole cluster, run over many random seeds: three
//! brokers holding a topic of three partitions (replicas [1, 2, 3],
//! [2, 3, 1] and [3, 1, 2]) and the active controller, exchanging their
//! messages through a network that delays, reorders and loses them and
//! whose links are cut and healed. Brokers crash (losing what they had not
//! synced: `--flush always` against a power cut), restart and register
//! again, or stop cleanly through a controlled shutdown; producers write
//! with acks=all and acks=1 to whichever broker they pick.
//!
//! Real code decides wherever it can. The controller is
//! `cluster::metadata::Controller` over a `MetadataImage` (registration,
//! heartbeats, session expiry, controlled shutdown, AlterPartition with its
//! epoch checks, preferred elections, and `replication::election` behind
//! them), and brokers replay its records. Leaders keep a `LeaderView`,
//! followers cut their logs with `truncation`, both keep a
//! `LeaderEpochCache`. What the shards do around those (`server::replicas`,
//! `partition_ops`, `replica_fetcher`) is mirrored rule by rule in
//! `broker.rs`, `produce.rs`, `fetch.rs` and `isr.rs`. The simulation found
//! four rules of the server that lost acknowledged records; the server now
//! follows the ones that fix them (Kafka's, for the ISR), and
//! `settings::FormerRules` switches back to the old ones to show the
//! failures. `scenarios.rs` walks through the ISR ones step by step.
//!
//! Checked after every step (`invariants.rs`) and at every metadata commit
//! (`controller.rs`):
//! - no two replicas differ below their high watermarks, and a follower
//!   never truncates below its high watermark;
//! - at most one broker leads, and one acknowledges acks=all writes, per
//!   leader epoch;
//! - every acks=all-acknowledged record is in the log of every later
//!   leader;
//! - a leader's high watermark never goes backwards within its epoch, and
//!   no high watermark passes its replica's durable end;
//! - the ISR never empties, and the controller elects only live members of
//!   the ISR (no unclean election).
//!
//! Every run ends healed (all brokers up, no loss): each partition must
//! then have a leader, every replica back in the ISR and identical logs.
//!
//! Not modelled: the metadata quorum (the controller never fails or
//! moves), fetch sessions (one fetch per partition, answered at once
//! rather than long-polled), log start offsets and retention, producer
//! state and transactions, reassignments, unclean elections, and the
//! `interval` and `never` flush policies (with them an acknowledged record
//! may be lost when every replica loses its page cache, as in Kafka).
//!
//! Time is in ticks of 100 ms with corelog's default timings. Environment:
//! `CLUSTER_SIMULATION_SEED=n` runs one seed, `CLUSTER_SIMULATION_SEEDS=a..b`
//! a range, `CLUSTER_SIMULATION_ALL_SEEDS=1` goes on past failures and
//! lists them, `CLUSTER_SIMULATION_TRACE=1` prints every event,
//! `CLUSTER_SIMULATION_FORMER_RULES=all` (or some of `isr-patience`,
//! `isr-refusals`, `isr-answers`, `fetch-offset`) follows the server's
//! former rules, which lose acknowledged records.

mod broker;
mod controller;
mod fetch;
mod invariants;
mod isr;
mod network;
mod produce;
mod scenarios;
mod settings;

use super::simulation_tests::Random;
use broker::BrokerNode;
use controller::ControllerNode;
use invariants::Ledger;
use network::{Envelope, Message, Network, Node};
use settings::{FormerRules, Stats, Timing};

const BROKER_IDS: [i32; 3] = [1, 2, 3];
/// Replicas of each partition, preferred leader first.
const ASSIGNMENTS: [&[i32]; 3] = [&[1, 2, 3], &[2, 3, 1], &[3, 1, 2]];
const TOPIC: &str = "simulated";

const SEEDS: u64 = 1_000;
const CHAOS_TICKS: i64 = 6_000;
const HEAL_TICKS: i64 = 1_000;

/// One record: the leader epoch it was written in and a unique id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Record {
    epoch: i32,
    id: u64,
}

struct Simulation {
    random: Random,
    now: i64,
    timing: Timing,
    former_rules: FormerRules,
    min_insync_replicas: usize,
    /// Chance per tick that a broker's fdatasync completes (per seed: fast
    /// or slow disks).
    sync_percent: u64,
    network: Network,
    controller: ControllerNode,
    /// Metadata entries announced to the brokers so far.
    published_entries: usize,
    brokers: Vec<BrokerNode>,
    ledger: Ledger,
    next_record_id: u64,
    next_leadership: u64,
    next_fetch_serial: u64,
    next_request_id: u64,
    stats: Stats,
    /// Crashes, stops and cuts happen (off while healing).
    faults: bool,
    producing: bool,
    /// Every event to stderr.
    tracing: bool,
    /// The broker process whose message is being handled.
    answering: Option<(i32, u64)>,
}

impl Simulation {
    fn new(seed: u64) -> Simulation {
        let mut random = Random(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut timing = Timing::corelog_defaults();
        if random.chance(40) {
            timing.replica_lag_max = 40;
        }
        let min_insync_replicas = 1 + random.below(2) as usize;
        let sync_percent = if random.chance(30) { 8 } else { 40 };
        let network = Network::new(random.below(11));
        let (controller, broker_epochs) =
            ControllerNode::new(min_insync_replicas as i32, timing.session_timeout);
        let brokers = BROKER_IDS
            .iter()
            .zip(broker_epochs)
            .map(|(&id, broker_epoch)| BrokerNode::new(id, broker_epoch))
            .collect();
        let mut simulation = Simulation {
            random,
            now: 0,
            timing,
            former_rules: FormerRules::from_environment(),
            min_insync_replicas,
            sync_percent,
            network,
            published_entries: controller.log.len(),
            controller,
            brokers,
            ledger: Ledger::new(ASSIGNMENTS.len()),
            next_record_id: 0,
            next_leadership: 0,
            next_fetch_serial: 0,
            next_request_id: 0,
            stats: Stats::default(),
            faults: true,
            producing: true,
            tracing: std::env::var_os("CLUSTER_SIMULATION_TRACE").is_some(),
            answering: None,
        };
        if simulation.tracing {
            simulation.controller.changes = Some(Vec::new());
        }
        let entries = simulation.controller.log.len();
        for broker_id in BROKER_IDS {
            simulation.broker_receives(broker_id, Node::Controller, Message::Metadata { entries });
        }
        simulation
    }

    fn trace(&self, event: impl FnOnce() -> String) {
        if self.tracing {
            eprintln!("{:>5} {}", self.now, event());
        }
    }

    /// Sends `message`; to the broker whose request is being handled, as
    /// an answer on that request's connection.
    fn send(&mut self, from: Node, to: Node, message: Message) {
        let to_incarnation = self
            .answering
            .filter(|(broker_id, _)| to == Node::Broker(*broker_id))
            .map(|(_, incarnation)| incarnation);
        let from_incarnation = match from {
            Node::Broker(broker_id) => self.brokers[(broker_id - 1) as usize].incarnation,
            Node::Controller => 0,
        };
        self.network.send(
            &mut self.random,
            self.now,
            (from, from_incarnation),
            (to, to_incarnation),
            message,
        );
    }

    /// How long a crashed or stopped broker stays down.
    fn downtime(&mut self) -> i64 {
        if !self.faults {
            1
        } else if self.random.chance(50) {
            5 + self.random.below(40) as i64
        } else {
            50 + self.random.below(400) as i64
        }
    }

    fn run(&mut self, ticks: i64) {
        for _ in 0..ticks {
            self.step();
        }
    }

    fn step(&mut self) {
        self.now += 1;
        let now = self.now;
        self.network.heal_due(now);
        if self.faults {
            self.inject_fault();
        }
        for index in 0..self.brokers.len() {
            let broker = &mut self.brokers[index];
            if !broker.up && broker.down_until_tick <= now {
                broker.start(now);
                let id = broker.id;
                self.trace(|| format!("broker {id} starts"));
            }
        }
        for envelope in self.network.deliver(now) {
            self.deliver(envelope);
        }
        self.controller.expire_sessions(now);
        if now % self.timing.preferred_election_interval == 0 {
            self.controller.preferred_elections();
        }
        self.publish_metadata();
        if now % 10 == 0 {
            // The brokers' metadata fetches repair lost announcements.
            self.published_entries = 0;
            self.publish_metadata();
        }
        for broker_id in BROKER_IDS {
            self.broker_tick(broker_id);
            self.maintain(broker_id);
        }
        if self.producing {
            for _ in 0..self.random.below(3) {
                let partition = self.random.below(ASSIGNMENTS.len() as u64) as usize;
                let broker_id = BROKER_IDS[self.random.below(BROKER_IDS.len() as u64) as usize];
                let acks_all = self.random.chance(80);
                self.produce(broker_id, partition, acks_all);
            }
        }
        if let Some(changes) = &mut self.controller.changes {
            for change in std::mem::take(changes) {
                eprintln!("{:>5} {change}", self.now);
            }
        }
        self.check_invariants();
    }

    fn deliver(&mut self, envelope: Envelope) {
        self.trace(|| {
            format!(
                "{:?} -> {:?} (sent {}): {:?}",
                envelope.from, envelope.to, envelope.sent_tick, envelope.message
            )
        });
        self.answering = match envelope.from {
            Node::Broker(from) => Some((from, envelope.from_incarnation)),
            Node::Controller => None,
        };
        match (envelope.from, envelope.to) {
            (Node::Broker(from), Node::Controller) => {
                self.controller_receives(from, envelope.message);
            }
            (from, Node::Broker(to)) => {
                let broker = &self.brokers[(to - 1) as usize];
                let same_process = envelope
                    .to_incarnation
                    .is_none_or(|incarnation| incarnation == broker.incarnation);
                if broker.up && envelope.sent_tick >= broker.started_tick && same_process {
                    self.broker_receives(to, from, envelope.message);
                }
            }
            (from, to) => panic!("no route from {from:?} to {to:?}"),
        }
        self.answering = None;
    }

    /// Syncs, high-watermark checkpoints and controlled-shutdown timeouts.
    fn maintain(&mut self, broker_id: i32) {
        let now = self.now;
        let timing = self.timing;
        let index = (broker_id - 1) as usize;
        if !self.brokers[index].up {
            return;
        }
        let sync_percent = if self.faults { self.sync_percent } else { 100 };
        if self.random.chance(sync_percent) {
            self.sync(broker_id);
        }
        let broker = &mut self.brokers[index];
        if (now + i64::from(broker_id) * 13) % timing.high_watermark_checkpoint_interval == 0 {
            for replica in &mut broker.replicas {
                replica.high_watermark_checkpoint = replica.high_watermark;
            }
        }
        if broker
            .shutting_down_since
            .is_some_and(|since| now - since > timing.controlled_shutdown_timeout)
        {
            self.stop_broker(broker_id);
        }
    }

    /// Now and then a broker crashes, starts a controlled shutdown, or
    /// loses its link to another node for a while.
    fn inject_fault(&mut self) {
        let now = self.now;
        let roll = self.random.below(10_000);
        let broker_id = BROKER_IDS[self.random.below(BROKER_IDS.len() as u64) as usize];
        let index = (broker_id - 1) as usize;
        if roll < 25 {
            if self.brokers[index].up {
                let until = now + self.downtime();
                self.trace(|| format!("broker {broker_id} crashes until {until}"));
                self.brokers[index].crash(until);
                self.stats.crashes += 1;
            }
        } else if roll < 32 {
            let broker = &mut self.brokers[index];
            if let (true, Some(broker_epoch), None) =
                (broker.up, broker.broker_epoch, broker.shutting_down_since)
            {
                broker.shutting_down_since = Some(now);
                self.trace(|| format!("broker {broker_id} shuts down"));
                self.send(
                    Node::Broker(broker_id),
                    Node::Controller,
                    Message::ControlledShutdown { broker_epoch },
                );
            }
        } else if roll < 62 {
            let others = [
                Node::Controller,
                Node::Broker(broker_id % 3 + 1),
                Node::Broker((broker_id + 1) % 3 + 1),
            ];
            let other = others[self.random.below(others.len() as u64) as usize];
            let until = now + 20 + self.random.below(600) as i64;
            if self.network.cut(Node::Broker(broker_id), other, until) {
                self.trace(|| format!("link broker {broker_id} - {other:?} cut until {until}"));
                self.stats.link_cuts += 1;
            }
        }
    }

    /// Every broker back, every link up, nothing lost, no more writes: the
    /// cluster must converge.
    fn heal(&mut self, ticks: i64) {
        self.faults = false;
        self.producing = false;
        self.network.reliable = true;
        self.network.heal_all();
        for broker in &mut self.brokers {
            if !broker.up {
                broker.down_until_tick = self.now;
            }
        }
        self.run(ticks);
        for broker_id in BROKER_IDS {
            self.sync(broker_id);
        }
        self.check_converged();
    }
}

fn run_seed(seed: u64) -> Stats {
    let mut simulation = Simulation::new(seed);
    simulation.run(CHAOS_TICKS);
    simulation.heal(HEAL_TICKS);
    let mut stats = simulation.stats.clone();
    stats.elections = simulation.controller.elections;
    stats.isr_changes = simulation.controller.isr_changes;
    stats.messages = simulation.network.sent;
    stats.messages_lost = simulation.network.lost;
    assert_eq!(stats.acknowledged, simulation.ledger.acknowledged_count());
    stats
}

fn seeds_from_environment() -> Vec<u64> {
    if let Ok(seed) = std::env::var("CLUSTER_SIMULATION_SEED") {
        return vec![seed.parse().expect("CLUSTER_SIMULATION_SEED=n")];
    }
    if let Ok(range) = std::env::var("CLUSTER_SIMULATION_SEEDS") {
        let parsed = range
            .split_once("..")
            .and_then(|(start, end)| Some((start.parse().ok()?, end.parse().ok()?)));
        let (start, end): (u64, u64) = parsed.expect("CLUSTER_SIMULATION_SEEDS=a..b");
        return (start..end).collect();
    }
    (0..SEEDS).collect()
}

#[test]
fn acknowledged_records_survive_a_cluster_and_its_controller_under_random_faults() {
    let seeds = seeds_from_environment();
    // CLUSTER_SIMULATION_ALL_SEEDS=1: run every seed, then list the failures.
    let all_seeds = std::env::var_os("CLUSTER_SIMULATION_ALL_SEEDS").is_some();
    let mut totals = Stats::default();
    let mut failures = Vec::new();
    for seed in seeds.iter().copied() {
        match std::panic::catch_unwind(|| run_seed(seed)) {
            Ok(stats) => totals.add(&stats),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|text| text.to_string()))
                    .unwrap_or_default();
                let failure = format!("seed {seed} (CLUSTER_SIMULATION_SEED={seed}): {message}");
                if !all_seeds {
                    panic!("{failure}");
                }
                failures.push(failure);
            }
        }
    }
    eprintln!("{} seeds: {totals:?}", seeds.len());
    assert!(
        failures.is_empty(),
        "{} of {} seeds failed:\n{}",
        failures.len(),
        seeds.len(),
        failures.join("\n")
    );
    if seeds.len() as u64 == SEEDS {
        // The runs must exercise what they claim to check.
        let per_seed = |total: usize| total as u64 / SEEDS;
        assert!(per_seed(totals.acknowledged) > 500, "{totals:?}");
        assert!(per_seed(totals.elections) > 10, "{totals:?}");
        assert!(per_seed(totals.isr_changes) > 20, "{totals:?}");
        assert!(per_seed(totals.truncations) > 3, "{totals:?}");
        assert!(per_seed(totals.crashes) > 5, "{totals:?}");
        assert!(totals.clean_stops as u64 > SEEDS, "{totals:?}");
        assert!(totals.isr_changes_refused as u64 > SEEDS / 2, "{totals:?}");
    }
}
