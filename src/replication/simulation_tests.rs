//! A simulation of one partition replicated on three brokers, run over many
//! random seeds: a leader appending, followers fetching (with their last
//! epoch, truncating on a diverging epoch), the leader shrinking and
//! expanding the ISR through a controller that checks partition epochs, and
//! the controller fencing brokers that crash or are cut off and electing
//! leaders cleanly. Messages are lost, metadata reaches brokers late, and
//! cut-off leaders keep appending. After every step it checks Kafka's
//! guarantees:
//!
//! - two replicas never hold different records below both their high
//!   watermarks;
//! - every record acknowledged to an acks=all producer (below the leader's
//!   high watermark) is in the elected leader's log at its offset;
//! - high watermarks never pass their own log end.
//!
//! Logs are modelled durable (`--flush always`: a fetch offset is a durable
//! end), so a crash loses nothing a broker reported.

use super::election::{self, LeaderAndIsr, NO_LEADER};
use super::leader_epochs::LeaderEpochCache;
use super::leader_view::{LeaderView, Leadership};
use super::truncation;

const BROKERS: usize = 3;
const REPLICAS: [i32; 3] = [0, 1, 2];
const LAG_MAX: i64 = 25;

/// xorshift64*: deterministic per seed, no dependency (also drives
/// `cluster_simulation_tests`).
pub(super) struct Random(pub(super) u64);

impl Random {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub(super) fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    pub(super) fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Record {
    epoch: i32,
    id: u64,
}

/// The partition as the controller's metadata has it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PartitionState {
    leader: i32,
    leader_epoch: i32,
    isr: Vec<i32>,
    partition_epoch: i32,
}

struct Broker {
    id: i32,
    log: Vec<Record>,
    epochs: LeaderEpochCache,
    high_watermark: i64,
    up: bool,
    /// Cut off from everyone (the controller included) but still running.
    isolated: bool,
    /// The metadata this broker has seen.
    known: PartitionState,
    /// While it believes it leads `known.leader_epoch`.
    leading: Option<LeaderView>,
}

impl Broker {
    fn log_end(&self) -> i64 {
        self.log.len() as i64
    }

    fn reachable(&self) -> bool {
        self.up && !self.isolated
    }

    fn append(&mut self, record: Record) {
        self.epochs.assign(record.epoch, self.log_end());
        self.log.push(record);
    }

    fn truncate(&mut self, offset: i64) {
        let offset = offset.clamp(0, self.log_end());
        self.log.truncate(offset as usize);
        self.epochs.truncate_from_end(offset);
        self.high_watermark = self.high_watermark.min(offset);
    }

    /// Takes metadata `state`: starts leading a new epoch it leads, stops
    /// leading otherwise.
    fn learn(&mut self, state: &PartitionState, now: i64) {
        if state.leader_epoch < self.known.leader_epoch
            || (state.leader_epoch == self.known.leader_epoch
                && state.partition_epoch <= self.known.partition_epoch)
        {
            return;
        }
        let new_epoch = state.leader_epoch != self.known.leader_epoch;
        self.known = state.clone();
        if state.leader != self.id {
            self.leading = None;
            return;
        }
        let end = self.log_end();
        match (&mut self.leading, new_epoch) {
            (Some(view), false) => {
                if let Some(high_watermark) =
                    view.isr_committed(state.isr.clone(), state.partition_epoch, end)
                {
                    self.high_watermark = high_watermark;
                }
            }
            _ => {
                self.leading = Some(LeaderView::new(
                    Leadership {
                        leader_id: self.id,
                        leader_epoch: state.leader_epoch,
                        leader_epoch_start_offset: self.log_end(),
                        replicas: REPLICAS.to_vec(),
                        isr: state.isr.clone(),
                        partition_epoch: state.partition_epoch,
                    },
                    self.high_watermark,
                    now,
                ));
            }
        }
    }
}

struct Simulation {
    random: Random,
    now: i64,
    brokers: Vec<Broker>,
    controller: PartitionState,
    next_record_id: u64,
    /// (offset, id) of every record acknowledged to acks=all producers.
    acknowledged: Vec<(i64, u64)>,
    /// Off while healing: no message is lost.
    lossy: bool,
    stats: Stats,
}

#[derive(Debug, Default)]
struct Stats {
    acknowledged: usize,
    elections: usize,
    truncations: usize,
    isr_shrinks: usize,
    isr_expansions: usize,
}

impl Simulation {
    fn new(seed: u64) -> Simulation {
        let state = PartitionState {
            leader: 0,
            leader_epoch: 0,
            isr: REPLICAS.to_vec(),
            partition_epoch: 0,
        };
        let brokers = REPLICAS
            .iter()
            .map(|&id| Broker {
                id,
                log: Vec::new(),
                epochs: LeaderEpochCache::default(),
                high_watermark: 0,
                up: true,
                isolated: false,
                known: PartitionState {
                    leader: NO_LEADER,
                    leader_epoch: -1,
                    isr: Vec::new(),
                    partition_epoch: -1,
                },
                leading: None,
            })
            .collect();
        let mut simulation = Simulation {
            random: Random(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
            now: 0,
            brokers,
            controller: state.clone(),
            next_record_id: 0,
            acknowledged: Vec::new(),
            lossy: true,
            stats: Stats::default(),
        };
        for broker in &mut simulation.brokers {
            broker.learn(&state, 0);
        }
        simulation
    }

    fn run(&mut self, steps: usize) {
        for _ in 0..steps {
            self.now += 1;
            match self.random.below(100) {
                0..=29 => self.produce(),
                30..=64 => self.fetch(),
                65..=74 => self.check_isr(),
                75..=86 => self.propagate_metadata(),
                87..=90 => self.crash_or_cut_off(),
                91..=96 => self.recover(),
                _ => self.fence_unreachable(),
            }
            self.check_invariants();
        }
    }

    /// Every broker that believes it leads (reachable or not) takes a record.
    fn produce(&mut self) {
        let leader = self.random.below(BROKERS as u64) as usize;
        let id = self.next_record_id;
        let broker = &mut self.brokers[leader];
        let Some(view) = &broker.leading else {
            return;
        };
        if !broker.up {
            return;
        }
        let record = Record {
            epoch: view.leader_epoch,
            id,
        };
        self.next_record_id += 1;
        broker.append(record);
        let end = broker.log_end();
        if let Some(view) = &mut broker.leading {
            if let Some(high_watermark) = view.advance_high_watermark(end) {
                broker.high_watermark = high_watermark;
            }
        }
        self.collect_acknowledged(leader);
    }

    /// Records below a leader's new high watermark are acknowledged.
    fn collect_acknowledged(&mut self, leader: usize) {
        let broker = &self.brokers[leader];
        let already = self
            .acknowledged
            .iter()
            .map(|(offset, _)| *offset)
            .max()
            .map_or(0, |offset| offset + 1);
        for offset in already..broker.high_watermark {
            self.acknowledged
                .push((offset, broker.log[offset as usize].id));
            self.stats.acknowledged += 1;
        }
    }

    /// A random follower fetches once from the leader it knows.
    fn fetch(&mut self) {
        let follower = self.random.below(BROKERS as u64) as usize;
        let (leader_id, known_epoch) = {
            let broker = &self.brokers[follower];
            if !broker.reachable() || broker.leading.is_some() || broker.known.leader == NO_LEADER {
                return;
            }
            (broker.known.leader, broker.known.leader_epoch)
        };
        let leader = leader_id as usize;
        if !self.brokers[leader].reachable() {
            return;
        }
        let fetch_offset = self.brokers[follower].log_end();
        let last_epoch = self.brokers[follower]
            .log
            .last()
            .map_or(-1, |record| record.epoch);
        let follower_id = self.brokers[follower].id;
        // The leader checks the epoch (FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH).
        let leader_broker = &mut self.brokers[leader];
        let leader_end = leader_broker.log_end();
        let Some(view) = &mut leader_broker.leading else {
            return;
        };
        if view.leader_epoch != known_epoch {
            return;
        }
        let diverging = truncation::diverging_epoch(
            &leader_broker.epochs,
            leader_end,
            fetch_offset,
            last_epoch,
        );
        let mut sent = Vec::new();
        if diverging.is_none() {
            let fetched = view.follower_fetched(follower_id, fetch_offset, leader_end, self.now);
            if let Ok(Some(high_watermark)) = fetched {
                leader_broker.high_watermark = high_watermark;
            }
            let batch = 1 + self.random.below(4) as usize;
            let from = fetch_offset as usize;
            let to = (from + batch).min(leader_broker.log.len());
            sent = leader_broker.log[from.min(to)..to].to_vec();
        }
        let leader_high_watermark = leader_broker.high_watermark;
        self.collect_acknowledged(leader);
        if self.lossy && self.random.chance(10) {
            return; // the answer is lost
        }
        let follower_broker = &mut self.brokers[follower];
        if let Some(leader_end) = diverging {
            let cut = truncation::truncation_point(
                &follower_broker.epochs,
                follower_broker.log_end(),
                follower_broker.high_watermark,
                leader_end,
            );
            follower_broker.truncate(cut.offset);
            self.stats.truncations += 1;
            return;
        }
        for record in sent {
            follower_broker.append(record);
        }
        follower_broker.high_watermark = follower_broker
            .high_watermark
            .max(leader_high_watermark.min(follower_broker.log_end()));
    }

    /// A reachable leader sends an ISR change, which the controller checks
    /// as AlterPartition does; the answer may be lost.
    fn check_isr(&mut self) {
        let leader = self.random.below(BROKERS as u64) as usize;
        let now = self.now;
        let controller = self.controller.clone();
        let up: Vec<bool> = self.brokers.iter().map(Broker::reachable).collect();
        let broker = &mut self.brokers[leader];
        if !broker.reachable() {
            return;
        }
        let end = broker.log_end();
        let Some(view) = &mut broker.leading else {
            return;
        };
        if view.has_pending_isr_change() {
            // An answer was lost: the change may or may not be committed, so
            // the leader keeps counting the larger ISR until the metadata says.
            return;
        }
        let shrink = view.isr_to_shrink(end, now, LAG_MAX);
        let proposed: Vec<i32> = if !shrink.is_empty() {
            view.isr
                .iter()
                .copied()
                .filter(|broker| !shrink.contains(broker))
                .collect()
        } else if let Some(joining) = view.isr_to_expand(|broker| up[broker as usize]) {
            let mut isr = view.isr.clone();
            isr.push(joining);
            isr
        } else {
            return;
        };
        view.propose_isr(proposed.clone());
        let accepted = controller.leader == leader as i32
            && controller.leader_epoch == view.leader_epoch
            && controller.partition_epoch == view.partition_epoch
            && proposed.iter().all(|broker| up[*broker as usize]);
        if !accepted {
            view.isr_refused();
            return;
        }
        if proposed.len() < controller.isr.len() {
            self.stats.isr_shrinks += 1;
        } else {
            self.stats.isr_expansions += 1;
        }
        self.controller.isr = proposed.clone();
        self.controller.partition_epoch += 1;
        let partition_epoch = self.controller.partition_epoch;
        if self.lossy && self.random.chance(15) {
            return; // the answer is lost; the metadata will tell
        }
        if let Some(view) = &mut broker.leading {
            if let Some(high_watermark) = view.isr_committed(proposed, partition_epoch, end) {
                broker.high_watermark = high_watermark;
            }
        }
        broker.known.isr = self.controller.isr.clone();
        broker.known.partition_epoch = partition_epoch;
        self.collect_acknowledged(leader);
    }

    fn propagate_metadata(&mut self) {
        let target = self.random.below(BROKERS as u64) as usize;
        let state = self.controller.clone();
        let now = self.now;
        let broker = &mut self.brokers[target];
        if broker.reachable() {
            broker.learn(&state, now);
        }
        if let Ok(leader) = usize::try_from(self.controller.leader) {
            self.collect_acknowledged(leader);
        }
    }

    fn crash_or_cut_off(&mut self) {
        let target = self.random.below(BROKERS as u64) as usize;
        let down = self
            .brokers
            .iter()
            .filter(|broker| !broker.reachable())
            .count();
        if down >= BROKERS - 1 || !self.brokers[target].reachable() {
            return;
        }
        let broker = &mut self.brokers[target];
        if self.random.chance(50) {
            broker.up = false;
            broker.leading = None;
        } else {
            broker.isolated = true;
        }
    }

    /// A crashed broker restarts (its durable log intact, its metadata
    /// forgotten), or a cut-off one is reconnected.
    fn recover(&mut self) {
        let target = self.random.below(BROKERS as u64) as usize;
        let broker = &mut self.brokers[target];
        if !broker.up {
            broker.up = true;
            broker.known = PartitionState {
                leader: NO_LEADER,
                leader_epoch: -1,
                isr: Vec::new(),
                partition_epoch: -1,
            };
        } else {
            broker.isolated = false;
        }
        self.unfence();
    }

    /// The controller fences brokers it cannot reach and elects leaders.
    fn fence_unreachable(&mut self) {
        let reachable: Vec<bool> = self.brokers.iter().map(Broker::reachable).collect();
        let current = LeaderAndIsr {
            leader: self.controller.leader,
            isr: self.controller.isr.clone(),
        };
        let eligible = |broker: i32| reachable[broker as usize];
        if let Some(next) = election::after_brokers_left(&REPLICAS, &current, &eligible, false) {
            self.change(next);
        }
    }

    fn unfence(&mut self) {
        let reachable: Vec<bool> = self.brokers.iter().map(Broker::reachable).collect();
        let current = LeaderAndIsr {
            leader: self.controller.leader,
            isr: self.controller.isr.clone(),
        };
        let eligible = |broker: i32| reachable[broker as usize];
        if let Some(next) = election::after_broker_returned(&REPLICAS, &current, &eligible) {
            self.change(next);
        }
    }

    fn change(&mut self, next: LeaderAndIsr) {
        if next.leader != self.controller.leader {
            self.controller.leader_epoch += 1;
            self.stats.elections += 1;
        }
        self.controller.leader = next.leader;
        self.controller.isr = next.isr;
        self.controller.partition_epoch += 1;
    }

    /// Every broker back and reachable, no more loss, the metadata
    /// everywhere: the replicas must converge on the leader's log, all in
    /// sync, everything committed.
    fn heal(&mut self) {
        self.lossy = false;
        for broker in &mut self.brokers {
            if !broker.up {
                broker.up = true;
                broker.known.leader_epoch = -1;
                broker.known.partition_epoch = -1;
            }
            broker.isolated = false;
        }
        self.unfence();
        for _ in 0..500 {
            self.now += 1;
            let state = self.controller.clone();
            for broker in &mut self.brokers {
                broker.learn(&state, self.now);
            }
            for _ in 0..BROKERS * 4 {
                self.fetch();
                self.check_isr();
            }
            self.check_invariants();
        }
        let leader = usize::try_from(self.controller.leader).expect("a leader after healing");
        let expected = &self.brokers[leader].log;
        for broker in &self.brokers {
            assert_eq!(
                &broker.log, expected,
                "broker {} did not converge",
                broker.id
            );
            assert_eq!(
                broker.high_watermark,
                broker.log_end(),
                "broker {}",
                broker.id
            );
        }
        let mut isr = self.controller.isr.clone();
        isr.sort_unstable();
        assert_eq!(isr, REPLICAS.to_vec(), "everyone back in sync");
    }

    fn check_invariants(&self) {
        for broker in &self.brokers {
            assert!(
                broker.high_watermark <= broker.log_end(),
                "broker {} high watermark {} past its end {}",
                broker.id,
                broker.high_watermark,
                broker.log_end()
            );
        }
        for a in &self.brokers {
            for b in &self.brokers {
                let committed = a.high_watermark.min(b.high_watermark) as usize;
                assert_eq!(
                    a.log[..committed],
                    b.log[..committed],
                    "brokers {} and {} differ below {committed}",
                    a.id,
                    b.id
                );
            }
        }
        if let Ok(leader) = usize::try_from(self.controller.leader) {
            let log = &self.brokers[leader].log;
            for (offset, id) in &self.acknowledged {
                assert_eq!(
                    log.get(*offset as usize).map(|record| record.id),
                    Some(*id),
                    "acknowledged record {id} at {offset} missing on the elected leader {leader}"
                );
            }
        }
    }
}

#[test]
fn acknowledged_records_survive_random_crashes_cuts_and_lost_messages() {
    let mut totals = Stats::default();
    for seed in 0..400 {
        let mut simulation = Simulation::new(seed);
        simulation.run(3_000);
        simulation.heal();
        totals.acknowledged += simulation.stats.acknowledged;
        totals.elections += simulation.stats.elections;
        totals.truncations += simulation.stats.truncations;
        totals.isr_shrinks += simulation.stats.isr_shrinks;
        totals.isr_expansions += simulation.stats.isr_expansions;
    }
    // The runs must exercise what they claim to check.
    assert!(totals.acknowledged > 10_000, "{totals:?}");
    assert!(totals.elections > 1_000, "{totals:?}");
    assert!(totals.truncations > 100, "{totals:?}");
    assert!(totals.isr_shrinks > 100, "{totals:?}");
    assert!(totals.isr_expansions > 100, "{totals:?}");
}
