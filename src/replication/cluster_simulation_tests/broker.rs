//! The brokers of the simulation, as `server::replicas` drives the pure
//! replication logic around a partition log: roles from the replayed
//! metadata (`sync_partition`: a new leader epoch starts at the log end,
//! with a fresh `LeaderView`), acks=all producers answered below the
//! leader's high watermark, `--flush always` (a leader counts its durable
//! end; a crash keeps only what was synced and the last high-watermark
//! checkpoint), registration and heartbeats. Producers and syncs are in
//! `produce.rs`, fetches in `fetch.rs`, ISR changes in `isr.rs`.

use crate::cluster::metadata::{MetadataImage, PartitionRegistration};
use crate::protocol::errors::KafkaError;
use crate::replication::leader_epochs::LeaderEpochCache;
use crate::replication::leader_view::{LeaderView, Leadership};

use super::network::{Message, Node};
use super::{Record, Simulation, ASSIGNMENTS};

/// One replica of one partition on one broker.
pub(super) struct Replica {
    pub log: Vec<Record>,
    /// What an fdatasync covered; a crash keeps only this.
    pub durable_end: i64,
    pub epochs: LeaderEpochCache,
    pub high_watermark: i64,
    /// The high-watermark checkpoint file (written now and then).
    pub high_watermark_checkpoint: i64,
    /// Records below this were checked against the ledger.
    pub verified_end: i64,
    pub role: Role,
}

pub(super) enum Role {
    None,
    Leader(Box<Leading>),
    Follower(Following),
}

pub(super) struct Leading {
    pub view: LeaderView,
    /// Identifies this leadership (the real code compares `Rc`s).
    pub leadership: u64,
    pub min_insync_replicas: usize,
    /// The pending ISR change, its latest request and when it was sent.
    pub proposed_isr: Vec<i32>,
    pub isr_request_id: u64,
    pub isr_change_sent_tick: i64,
    /// acks=all producers waiting: (offset, record).
    pub waiting: Vec<(i64, Record)>,
    /// The high watermark seen last (never goes back within the epoch).
    pub last_high_watermark: i64,
}

pub(super) struct Following {
    pub leader: i32,
    pub leader_epoch: i32,
    /// The fetch in flight: (serial, tick sent, fetch offset).
    pub in_flight: Option<(u64, i64, i64)>,
    pub retry_tick: i64,
    /// Records appended but not synced yet, with the high watermark the
    /// answer carried (applied once they are durable).
    pub unsynced_high_watermark: Option<i64>,
}

impl Replica {
    fn new() -> Replica {
        Replica {
            log: Vec::new(),
            durable_end: 0,
            epochs: LeaderEpochCache::default(),
            high_watermark: 0,
            high_watermark_checkpoint: 0,
            verified_end: 0,
            role: Role::None,
        }
    }

    pub fn log_end(&self) -> i64 {
        self.log.len() as i64
    }

    /// The log's `advance_high_watermark`: never past the written end,
    /// never backwards.
    pub fn advance_high_watermark(&mut self, high_watermark: i64) {
        self.high_watermark = self.high_watermark.max(high_watermark.min(self.log_end()));
    }

    pub fn truncate(&mut self, offset: i64) {
        let offset = offset.clamp(0, self.log_end());
        self.log.truncate(offset as usize);
        self.durable_end = self.durable_end.min(offset);
        self.epochs.truncate_from_end(offset);
        self.high_watermark = self.high_watermark.min(offset);
        self.verified_end = self.verified_end.min(offset);
    }

    pub fn leading(&self) -> Option<&Leading> {
        match &self.role {
            Role::Leader(leading) => Some(leading),
            _ => None,
        }
    }
}

pub(super) struct BrokerNode {
    pub id: i32,
    pub up: bool,
    pub down_until_tick: i64,
    /// Bumped on every start; registration sends it.
    pub incarnation: u64,
    pub started_tick: i64,
    pub broker_epoch: Option<i64>,
    last_registration_tick: i64,
    last_heartbeat_tick: i64,
    pub shutting_down_since: Option<i64>,
    /// The metadata log replayed so far.
    pub image: MetadataImage,
    pub applied_entries: usize,
    pub replicas: Vec<Replica>,
}

impl BrokerNode {
    pub fn new(id: i32, broker_epoch: i64) -> BrokerNode {
        BrokerNode {
            id,
            up: true,
            down_until_tick: 0,
            incarnation: 0,
            started_tick: 0,
            broker_epoch: Some(broker_epoch),
            last_registration_tick: 0,
            last_heartbeat_tick: 0,
            shutting_down_since: None,
            image: MetadataImage::default(),
            applied_entries: 0,
            replicas: ASSIGNMENTS.iter().map(|_| Replica::new()).collect(),
        }
    }

    /// Roles follow the metadata only once it holds this process's
    /// registration (a restarted broker must not act on what its previous
    /// process was told, as Kafka's brokers wait to catch up first).
    fn ready(&self) -> bool {
        self.broker_epoch.is_some()
            && self
                .image
                .broker(self.id)
                .map(|broker| broker.broker_epoch())
                == self.broker_epoch
    }

    /// A crash that takes the page cache too (a power cut): everything not
    /// synced is gone, with the process's state.
    pub fn crash(&mut self, until_tick: i64) {
        for replica in &mut self.replicas {
            replica.truncate(replica.durable_end);
            replica.high_watermark = replica.high_watermark_checkpoint.min(replica.durable_end);
            replica.verified_end = replica.verified_end.min(replica.high_watermark);
            replica.role = Role::None;
        }
        self.up = false;
        self.down_until_tick = until_tick;
        self.broker_epoch = None;
        self.shutting_down_since = None;
        self.image = MetadataImage::default();
        self.applied_entries = 0;
    }

    /// A clean stop: everything synced and checkpointed first.
    pub fn stop(&mut self, until_tick: i64) {
        for replica in &mut self.replicas {
            replica.durable_end = replica.log_end();
            if let Role::Follower(following) = &mut replica.role {
                if let Some(high_watermark) = following.unsynced_high_watermark.take() {
                    replica.advance_high_watermark(high_watermark);
                }
            }
            replica.high_watermark_checkpoint = replica.high_watermark;
        }
        self.crash(until_tick);
    }

    pub fn start(&mut self, now: i64) {
        self.up = true;
        self.incarnation += 1;
        self.started_tick = now;
        self.last_registration_tick = i64::MIN / 2;
    }
}

impl Simulation {
    pub(super) fn broker(&mut self, broker_id: i32) -> &mut BrokerNode {
        &mut self.brokers[(broker_id - 1) as usize]
    }

    /// A broker takes one message (it is up and the message was not sent
    /// to an earlier process).
    pub(super) fn broker_receives(&mut self, to: i32, from: Node, message: Message) {
        match (from, message) {
            (_, Message::Metadata { entries }) => self.replay_metadata(to, entries),
            (
                _,
                Message::BrokerRegistered {
                    incarnation,
                    result,
                },
            ) => {
                let broker = self.broker(to);
                if incarnation == broker.incarnation && broker.broker_epoch.is_none() {
                    if let Ok(broker_epoch) = result {
                        broker.broker_epoch = Some(broker_epoch);
                        broker.last_heartbeat_tick = i64::MIN / 2;
                        self.sync_roles(to);
                    }
                }
            }
            (_, Message::BrokerHeartbeatAnswer { result }) => {
                let broker = self.broker(to);
                let refused = [
                    KafkaError::StaleBrokerEpoch,
                    KafkaError::BrokerIdNotRegistered,
                ];
                if result.is_err_and(|error| refused.contains(&error)) {
                    broker.broker_epoch = None;
                }
            }
            (_, Message::ControlledShutdownAnswer { result }) => {
                let broker = self.broker(to);
                if broker.shutting_down_since.is_some() && result.is_ok() {
                    self.stop_broker(to);
                }
            }
            (
                _,
                Message::AlterPartitionAnswer {
                    partition,
                    leadership,
                    request_id,
                    result,
                },
            ) => self.alter_partition_answered(to, partition, (leadership, request_id), result),
            (
                Node::Broker(follower),
                Message::Fetch {
                    partition,
                    serial,
                    fetch_offset,
                    last_fetched_epoch,
                    current_leader_epoch,
                },
            ) => {
                let result = self.answer_fetch(
                    to,
                    follower,
                    partition,
                    fetch_offset,
                    last_fetched_epoch,
                    current_leader_epoch,
                );
                self.send(
                    Node::Broker(to),
                    Node::Broker(follower),
                    Message::FetchAnswer {
                        partition,
                        serial,
                        result,
                    },
                );
            }
            (
                Node::Broker(leader),
                Message::FetchAnswer {
                    partition,
                    serial,
                    result,
                },
            ) => self.fetch_answered(to, leader, partition, serial, result),
            (from, message) => panic!("broker {to} does not take {message:?} from {from:?}"),
        }
    }

    fn replay_metadata(&mut self, broker_id: i32, entries: usize) {
        let broker = &mut self.brokers[(broker_id - 1) as usize];
        if entries <= broker.applied_entries {
            return;
        }
        for (offset, records) in &self.controller.log[broker.applied_entries..entries] {
            broker
                .image
                .apply_all(*offset, records)
                .expect("brokers replay the controller's log");
        }
        broker.applied_entries = entries;
        self.sync_roles(broker_id);
    }

    /// `replicas::sync_partition` for every partition of the topic.
    fn sync_roles(&mut self, broker_id: i32) {
        if !self.broker(broker_id).ready() {
            return;
        }
        let topic_id = self.controller.topic_id;
        for partition in 0..ASSIGNMENTS.len() {
            let assignment = self
                .broker(broker_id)
                .image
                .partition(&topic_id, partition as i32)
                .expect("the topic exists")
                .clone();
            self.sync_partition(broker_id, partition, &assignment);
        }
    }

    fn sync_partition(&mut self, me: i32, partition: usize, assignment: &PartitionRegistration) {
        let now = self.now;
        let min_insync_replicas = self.min_insync_replicas;
        let replica = &mut self.brokers[(me - 1) as usize].replicas[partition];
        if assignment.leader == me {
            if let Role::Leader(leading) = &mut replica.role {
                if leading.view.leader_epoch == assignment.leader_epoch {
                    if assignment.partition_epoch > leading.view.partition_epoch {
                        let end = replica.durable_end;
                        leading.view.replicas_changed(&assignment.replicas);
                        if let Some(high_watermark) = leading.view.isr_committed(
                            assignment.isr.clone(),
                            assignment.partition_epoch,
                            end,
                        ) {
                            replica.advance_high_watermark(high_watermark);
                        }
                        self.acknowledge(me, partition);
                    }
                    return;
                }
            }
            replica.role = Role::None;
            // `set_leader_epoch`: the epoch starts at the log end, records or not.
            replica
                .epochs
                .assign(assignment.leader_epoch, replica.log_end());
            if !assignment.isr.contains(&me) {
                return;
            }
            let leadership = Leadership {
                leader_id: me,
                leader_epoch: assignment.leader_epoch,
                leader_epoch_start_offset: replica.log_end(),
                replicas: assignment.replicas.clone(),
                isr: assignment.isr.clone(),
                partition_epoch: assignment.partition_epoch,
            };
            let mut view = LeaderView::new(leadership, replica.high_watermark, now);
            if let Some(high_watermark) = view.advance_high_watermark(replica.durable_end) {
                replica.advance_high_watermark(high_watermark);
            }
            self.next_leadership += 1;
            replica.role = Role::Leader(Box::new(Leading {
                last_high_watermark: view.high_watermark,
                view,
                leadership: self.next_leadership,
                min_insync_replicas,
                proposed_isr: Vec::new(),
                isr_request_id: 0,
                isr_change_sent_tick: now,
                waiting: Vec::new(),
            }));
            self.ledger
                .check_leader(partition, me, assignment.leader_epoch, &replica.log);
            let (end, high_watermark) = (replica.log_end(), replica.high_watermark);
            self.trace(|| {
                format!(
                    "broker {me} leads partition {partition} epoch {} (log end {end}, high \
                     watermark {high_watermark}, ISR {:?})",
                    assignment.leader_epoch, assignment.isr
                )
            });
            self.stats.leaderships += 1;
            return;
        }
        let wanted = (assignment.leader, assignment.leader_epoch);
        if let Role::Follower(following) = &replica.role {
            if (following.leader, following.leader_epoch) == wanted {
                return;
            }
        }
        replica.role = if assignment.replicas.contains(&me) {
            Role::Follower(Following {
                leader: assignment.leader,
                leader_epoch: assignment.leader_epoch,
                in_flight: None,
                retry_tick: now,
                unsynced_high_watermark: None,
            })
        } else {
            Role::None
        };
    }

    /// Registration, heartbeats, follower fetches and ISR checks that are
    /// due on `broker_id`.
    pub(super) fn broker_tick(&mut self, broker_id: i32) {
        let now = self.now;
        let timing = self.timing;
        let broker = self.broker(broker_id);
        if !broker.up {
            return;
        }
        let broker_epoch = broker.broker_epoch;
        match broker_epoch {
            None if now - broker.last_registration_tick >= timing.registration_retry => {
                broker.last_registration_tick = now;
                let incarnation = broker.incarnation;
                self.send(
                    Node::Broker(broker_id),
                    Node::Controller,
                    Message::BrokerRegistration { incarnation },
                );
            }
            Some(broker_epoch)
                if broker.shutting_down_since.is_none()
                    && now - broker.last_heartbeat_tick >= timing.heartbeat_interval =>
            {
                broker.last_heartbeat_tick = now;
                self.send(
                    Node::Broker(broker_id),
                    Node::Controller,
                    Message::BrokerHeartbeat { broker_epoch },
                );
            }
            _ => {}
        }
        for partition in 0..ASSIGNMENTS.len() {
            self.fetch_if_due(broker_id, partition);
            let shrink_period = (timing.replica_lag_max / 2).max(1);
            if (now + i64::from(broker_id) * 7) % shrink_period == 0 {
                self.shrink_isr_if_lagging(broker_id, partition);
            }
        }
    }

    /// A controlled shutdown's end: the broker stops cleanly.
    pub(super) fn stop_broker(&mut self, broker_id: i32) {
        let until = self.now + self.downtime();
        self.broker(broker_id).stop(until);
        self.stats.clean_stops += 1;
    }
}
