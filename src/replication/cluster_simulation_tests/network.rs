//! The simulated network between the brokers and the controller: every
//! message is delivered late (up to `MAX_DELAY_TICKS`), out of order, or
//! never, and links are cut and healed. A message to a broker that
//! restarted after it was sent is dropped (its connection died with the old
//! process); a message from an old process may still arrive, as bytes
//! already on the wire do. Nothing is delivered twice: TCP does not, and
//! the protocol's own resends are modelled where they happen.

use crate::cluster::metadata::{AlterPartitionRequest, PartitionState};
use crate::protocol::errors::KafkaError;
use crate::replication::leader_epochs::EpochEndOffset;
use crate::replication::simulation_tests::Random;

use super::Record;

/// A participant: the active controller (it never fails here; the quorum
/// behind it is another simulation's business) or a broker by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Node {
    Controller,
    Broker(i32),
}

/// What one follower fetch answers for its partition.
#[derive(Debug, Clone)]
pub(super) enum FetchResult {
    /// Records from the fetch offset on, with the leader's high watermark.
    Records {
        records: Vec<Record>,
        high_watermark: i64,
    },
    /// The follower's last epoch diverges: where it ends on the leader.
    Diverging(EpochEndOffset),
    Error(KafkaError),
}

/// The messages of the protocol, one per request or answer that matters
/// to replication (Kafka's names).
#[derive(Debug)]
pub(super) enum Message {
    BrokerRegistration {
        incarnation: u64,
    },
    BrokerRegistered {
        incarnation: u64,
        result: Result<i64, KafkaError>,
    },
    BrokerHeartbeat {
        broker_epoch: i64,
    },
    BrokerHeartbeatAnswer {
        result: Result<(), KafkaError>,
    },
    ControlledShutdown {
        broker_epoch: i64,
    },
    ControlledShutdownAnswer {
        result: Result<(), KafkaError>,
    },
    AlterPartition {
        request: AlterPartitionRequest,
        /// Which leadership of the sender asked (the real leader keeps the
        /// `Rc` of its led partition for this).
        leadership: u64,
        /// This request among the leader's sends.
        request_id: u64,
    },
    AlterPartitionAnswer {
        partition: i32,
        leadership: u64,
        request_id: u64,
        result: Result<PartitionState, KafkaError>,
    },
    /// The metadata log up to `entries` entries (brokers replay it in order).
    Metadata {
        entries: usize,
    },
    Fetch {
        partition: i32,
        serial: u64,
        fetch_offset: i64,
        last_fetched_epoch: i32,
        current_leader_epoch: i32,
    },
    FetchAnswer {
        partition: i32,
        serial: u64,
        result: FetchResult,
    },
}

pub(super) struct Envelope {
    pub from: Node,
    pub to: Node,
    pub sent_tick: i64,
    /// The sending broker's process (0 for the controller).
    pub from_incarnation: u64,
    /// An answer goes back on the connection its request came on: only the
    /// broker process (incarnation) that asked may take it.
    pub to_incarnation: Option<u64>,
    due_tick: i64,
    order: u64,
    pub message: Message,
}

/// The longest a message stays in flight: a stalled connection, a long GC
/// pause on the way. After it a message is delivered or lost for good.
pub(super) const MAX_DELAY_TICKS: i64 = 230;

/// A link cut until `until_tick`.
struct Cut {
    between: (Node, Node),
    until_tick: i64,
}

/// Messages in flight and the links that are down.
pub(super) struct Network {
    in_flight: Vec<Envelope>,
    cuts: Vec<Cut>,
    /// Percent of messages lost (per seed).
    pub loss_percent: u64,
    /// Healing: nothing lost, nothing slow, no cut.
    pub reliable: bool,
    pub sent: u64,
    pub lost: u64,
}

fn link(a: Node, b: Node) -> (Node, Node) {
    (a.min(b), a.max(b))
}

impl Network {
    pub fn new(loss_percent: u64) -> Network {
        Network {
            in_flight: Vec::new(),
            cuts: Vec::new(),
            loss_percent,
            reliable: false,
            sent: 0,
            lost: 0,
        }
    }

    /// One to three ticks mostly; sometimes seconds, rarely tens of seconds
    /// (a stalled connection, a GC pause on the way).
    fn delay(&self, random: &mut Random) -> i64 {
        let roll = random.below(1000);
        let ticks = if self.reliable || roll < 900 {
            1 + random.below(3)
        } else if roll < 990 {
            4 + random.below(30)
        } else {
            30 + random.below(MAX_DELAY_TICKS as u64 - 30)
        };
        ticks as i64
    }

    pub fn send(
        &mut self,
        random: &mut Random,
        now: i64,
        (from, from_incarnation): (Node, u64),
        (to, to_incarnation): (Node, Option<u64>),
        message: Message,
    ) {
        self.sent += 1;
        if !self.reliable && (self.is_cut(from, to) || random.chance(self.loss_percent)) {
            self.lost += 1;
            return;
        }
        let due_tick = now + self.delay(random);
        self.in_flight.push(Envelope {
            from,
            to,
            sent_tick: now,
            from_incarnation,
            to_incarnation,
            due_tick,
            order: random.next(),
            message,
        });
    }

    /// The messages due by `now`, in delivery order (ties in random order);
    /// those over a link cut meanwhile are lost.
    pub fn deliver(&mut self, now: i64) -> Vec<Envelope> {
        let mut due = Vec::new();
        let mut index = 0;
        while index < self.in_flight.len() {
            if self.in_flight[index].due_tick <= now {
                due.push(self.in_flight.swap_remove(index));
            } else {
                index += 1;
            }
        }
        due.sort_by_key(|envelope| (envelope.due_tick, envelope.order));
        let before = due.len();
        due.retain(|envelope| !self.is_cut(envelope.from, envelope.to));
        self.lost += (before - due.len()) as u64;
        due
    }

    pub fn is_cut(&self, a: Node, b: Node) -> bool {
        let between = link(a, b);
        self.cuts.iter().any(|cut| cut.between == between)
    }

    /// Cuts the link between `a` and `b`; false if it was cut already.
    pub fn cut(&mut self, a: Node, b: Node, until_tick: i64) -> bool {
        assert_ne!(a, b);
        if self.is_cut(a, b) {
            return false;
        }
        self.cuts.push(Cut {
            between: link(a, b),
            until_tick,
        });
        true
    }

    /// Heals the cuts whose time is up.
    pub fn heal_due(&mut self, now: i64) {
        self.cuts.retain(|cut| cut.until_tick > now);
    }

    pub fn heal_all(&mut self) {
        self.cuts.clear();
    }
}
