//! Follower fetches as `server::replica_fetcher` sends them and
//! `partition_ops::read_for_follower` answers them: the follower's fetch
//! offset is its log end (durable first, `--flush always`) and its last
//! epoch the latest of its epoch cache; the leader checks the current
//! leader epoch, answers a diverging epoch (`truncation::diverging_epoch`)
//! or records with its high watermark, and counts the fetch in its
//! `LeaderView`; the follower cuts its log at `truncation::truncation_point`
//! (never below its high watermark), or appends, syncs, and only then
//! takes the high watermark.
//!
//! A follower fetches only once its log end is durable
//! (`replica_fetcher::wait_for_durable_ends`; `FormerRules::fetch_offset`
//! switches back to the former rule). The server always waited for the
//! sync before the next fetch of the same fetcher, but a leader change
//! started another fetcher at once, whose first fetch offset was the
//! written end; the new leader counted records the follower had not
//! synced, and a power cut on the follower could then lose records below
//! the high watermark (seed 16909 of
//! `CLUSTER_SIMULATION_FORMER_RULES=fetch-offset`: the follower is elected
//! as the last ISR member after it lost them).

use crate::protocol::errors::KafkaError;
use crate::replication::election::NO_LEADER;
use crate::replication::truncation;

use super::broker::Role;
use super::network::{FetchResult, Message, Node};
use super::Simulation;

impl Simulation {
    /// A follower with nothing in flight (or a fetch timed out) fetches.
    pub(super) fn fetch_if_due(&mut self, broker_id: i32, partition: usize) {
        let now = self.now;
        let fetch_timeout = self.timing.fetch_timeout;
        self.next_fetch_serial += 1;
        let serial = self.next_fetch_serial;
        let fetch_unsynced = self.former_rules.fetch_offset;
        let replica = &mut self.broker(broker_id).replicas[partition];
        let fetch_offset = replica.log_end();
        let last_fetched_epoch = replica.epochs.latest_epoch();
        let unsynced = replica.durable_end < fetch_offset;
        let Role::Follower(following) = &mut replica.role else {
            return;
        };
        if unsynced && !fetch_unsynced {
            return;
        }
        let waiting_answer = following
            .in_flight
            .is_some_and(|(_, sent, _)| now - sent < fetch_timeout);
        if following.leader == NO_LEADER
            || waiting_answer
            || now < following.retry_tick
            || following.unsynced_high_watermark.is_some()
        {
            return;
        }
        following.in_flight = Some((serial, now, fetch_offset));
        let (leader, current_leader_epoch) = (following.leader, following.leader_epoch);
        self.send(
            Node::Broker(broker_id),
            Node::Broker(leader),
            Message::Fetch {
                partition: partition as i32,
                serial,
                fetch_offset,
                last_fetched_epoch,
                current_leader_epoch,
            },
        );
    }

    /// `partition_ops::read_for_follower` behind `leader_log`'s epoch check.
    pub(super) fn answer_fetch(
        &mut self,
        leader_id: i32,
        follower_id: i32,
        partition: i32,
        fetch_offset: i64,
        last_fetched_epoch: i32,
        current_leader_epoch: i32,
    ) -> FetchResult {
        let now = self.now;
        let batch = 1 + self.random.below(8) as i64;
        let topic_id = self.controller.topic_id;
        let index = partition as usize;
        let broker = self.broker(leader_id);
        let leader_epoch = broker
            .image
            .partition(&topic_id, partition)
            .map_or(0, |assignment| assignment.leader_epoch);
        if current_leader_epoch < leader_epoch {
            return FetchResult::Error(KafkaError::FencedLeaderEpoch);
        }
        if current_leader_epoch > leader_epoch {
            return FetchResult::Error(KafkaError::UnknownLeaderEpoch);
        }
        let replica = &mut broker.replicas[index];
        let (log_end, durable_end) = (replica.log_end(), replica.durable_end);
        let Role::Leader(leading) = &mut replica.role else {
            return FetchResult::Error(KafkaError::NotLeaderOrFollower);
        };
        if let Some(end) =
            truncation::diverging_epoch(&replica.epochs, log_end, fetch_offset, last_fetched_epoch)
        {
            return FetchResult::Diverging(end);
        }
        if fetch_offset > log_end {
            return FetchResult::Error(KafkaError::OffsetOutOfRange);
        }
        match leading
            .view
            .follower_fetched(follower_id, fetch_offset, durable_end, now)
        {
            Err(_) => return FetchResult::Error(KafkaError::NotLeaderOrFollower),
            Ok(Some(high_watermark)) => {
                replica.advance_high_watermark(high_watermark);
                self.acknowledge(leader_id, index);
            }
            Ok(None) => {}
        }
        self.expand_isr_if_caught_up(leader_id, index);
        let replica = &self.broker(leader_id).replicas[index];
        let to = (fetch_offset + batch).min(replica.log_end());
        FetchResult::Records {
            records: replica.log[fetch_offset as usize..to as usize].to_vec(),
            high_watermark: replica.high_watermark,
        }
    }

    /// `replica_fetcher`'s handling of one partition's answer.
    pub(super) fn fetch_answered(
        &mut self,
        broker_id: i32,
        leader: i32,
        partition: i32,
        serial: u64,
        result: FetchResult,
    ) {
        let now = self.now;
        let backoff = self.timing.retry_backoff;
        let replica = &mut self.broker(broker_id).replicas[partition as usize];
        let log_end = replica.log_end();
        let Role::Follower(following) = &mut replica.role else {
            return;
        };
        let current = following.leader == leader
            && following
                .in_flight
                .is_some_and(|(sent, _, offset)| sent == serial && offset == log_end);
        if !current {
            return;
        }
        following.in_flight = None;
        match result {
            FetchResult::Error(error) => {
                following.retry_tick = now
                    + if error == KafkaError::OffsetOutOfRange {
                        10
                    } else {
                        backoff
                    };
                self.stats.fetch_errors += 1;
            }
            FetchResult::Diverging(leader_end) => {
                let point = truncation::truncation_point(
                    &replica.epochs,
                    log_end,
                    replica.high_watermark,
                    leader_end,
                );
                let epoch_past_cut = replica
                    .epochs
                    .latest()
                    .is_some_and(|latest| latest.start_offset >= point.offset);
                if point.offset >= log_end && !epoch_past_cut {
                    following.retry_tick = now + 10;
                    return;
                }
                assert!(
                    point.offset >= replica.high_watermark,
                    "broker {broker_id} partition {partition}: truncating to {} below its high \
                     watermark {} (leader {leader}'s diverging epoch {leader_end:?}, follower \
                     epochs {:?}, log end {log_end})",
                    point.offset,
                    replica.high_watermark,
                    replica.epochs.entries(),
                );
                replica.truncate(point.offset);
                self.trace(|| {
                    format!("broker {broker_id} partition {partition} truncates to {point:?}")
                });
                self.stats.truncations += 1;
                self.stats.truncated_records += (log_end - point.offset) as usize;
            }
            FetchResult::Records {
                records,
                high_watermark,
            } => {
                if records.is_empty() {
                    // The real fetch long-polls; here the next one waits a tick.
                    following.retry_tick = now + 1;
                    replica.advance_high_watermark(high_watermark);
                    return;
                }
                following.unsynced_high_watermark = Some(high_watermark);
                for record in records {
                    let offset = replica.log_end();
                    replica.epochs.assign(record.epoch, offset);
                    replica.log.push(record);
                }
            }
        }
    }
}
