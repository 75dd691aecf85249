//! ISR changes as `server::replicas` makes them: the leader drops
//! followers that stopped catching up (`LeaderView::isr_to_shrink`, every
//! half of the lag limit) and adds caught-up ones (`isr_to_expand`, after a
//! fetch), one AlterPartition at a time; the controller's answer commits
//! the change (`isr_committed`) or, for a definite refusal, drops it
//! (`isr_refused`); anything else leaves it pending until the metadata
//! shows the outcome.
//!
//! The server's former rules lost acknowledged records; the server and the
//! simulation now follow Kafka's (`FormerRules` switches back to the old):
//! only OPERATION_NOT_ATTEMPTED and INELIGIBLE_REPLICA drop a pending
//! change (`DEFINITE_REFUSALS`), a pending expansion is never forgotten but
//! sent again once the earlier request can no longer arrive
//! (`stale_isr_change`), and only the latest request's answer counts.
//! `scenarios.rs` shows the first two step by step.

use crate::cluster::metadata::{AlterPartitionRequest, PartitionState};
use crate::protocol::errors::KafkaError;
// The answers that prove a change was not applied: the server's own list.
use crate::server::replicas::DEFINITE_ISR_REFUSALS as DEFINITE_REFUSALS;

use super::broker::Role;
use super::network::{Message, Node, MAX_DELAY_TICKS};
use super::Simulation;

/// Answers to AlterPartition the server formerly took as "certainly not applied"
/// (`replicas::propose_isr`).
const FORMER_DEFINITE_REFUSALS: [KafkaError; 8] = [
    KafkaError::InvalidRequest,
    KafkaError::NotLeaderOrFollower,
    KafkaError::FencedLeaderEpoch,
    KafkaError::StaleBrokerEpoch,
    KafkaError::UnknownTopicId,
    KafkaError::UnknownTopicOrPartition,
    KafkaError::IneligibleReplica,
    KafkaError::OperationNotAttempted,
];

impl Simulation {
    /// `replicas::shrink_isr_if_lagging`.
    pub(super) fn shrink_isr_if_lagging(&mut self, broker_id: i32, partition: usize) {
        self.stale_isr_change(broker_id, partition);
        let (now, timing) = (self.now, self.timing);
        let replica = &mut self.broker(broker_id).replicas[partition];
        let end = replica.durable_end;
        let Role::Leader(leading) = &mut replica.role else {
            return;
        };
        if leading.view.has_pending_isr_change() {
            return;
        }
        let lagging = leading.view.isr_to_shrink(end, now, timing.replica_lag_max);
        if lagging.is_empty() {
            return;
        }
        let isr = leading
            .view
            .isr
            .iter()
            .copied()
            .filter(|member| !lagging.contains(member))
            .collect();
        self.propose_isr(broker_id, partition, isr);
    }

    /// `replicas::expand_isr_if_caught_up`.
    pub(super) fn expand_isr_if_caught_up(&mut self, broker_id: i32, partition: usize) {
        self.stale_isr_change(broker_id, partition);
        let broker = self.broker(broker_id);
        let image = &broker.image;
        let Role::Leader(leading) = &mut broker.replicas[partition].role else {
            return;
        };
        if leading.view.has_pending_isr_change() {
            return;
        }
        let Some(joining) = leading.view.isr_to_expand(|member| image.is_live(member)) else {
            return;
        };
        let mut isr = leading.view.isr.clone();
        isr.push(joining);
        self.propose_isr(broker_id, partition, isr);
    }

    /// `replicas::propose_isr`: the change is pending from now on.
    fn propose_isr(&mut self, broker_id: i32, partition: usize, isr: Vec<i32>) {
        let now = self.now;
        let tracing = self.tracing;
        let broker = self.broker(broker_id);
        let registered = broker.broker_epoch.is_some();
        let Role::Leader(leading) = &mut broker.replicas[partition].role else {
            return;
        };
        leading.view.propose_isr(isr.clone());
        leading.proposed_isr = isr.clone();
        if tracing {
            eprintln!("{now:>5} broker {broker_id} partition {partition} proposes ISR {isr:?}");
        }
        if !registered {
            // STALE_BROKER_EPOCH without asking: a definite refusal.
            leading.view.isr_refused();
            return;
        }
        self.stats.isr_changes_proposed += 1;
        self.send_isr_change(broker_id, partition);
    }

    /// One AlterPartition request for the pending change.
    fn send_isr_change(&mut self, broker_id: i32, partition: usize) {
        let now = self.now;
        let topic_id = self.controller.topic_id;
        self.next_request_id += 1;
        let request_id = self.next_request_id;
        let broker = self.broker(broker_id);
        let Some(broker_epoch) = broker.broker_epoch else {
            return;
        };
        let Role::Leader(leading) = &mut broker.replicas[partition].role else {
            return;
        };
        leading.isr_change_sent_tick = now;
        leading.isr_request_id = request_id;
        let request = AlterPartitionRequest {
            broker_id,
            broker_epoch,
            topic_id,
            partition: partition as i32,
            leader_epoch: leading.view.leader_epoch,
            partition_epoch: leading.view.partition_epoch,
            new_isr: leading.proposed_isr.clone(),
        };
        let leadership = leading.leadership;
        self.send(
            Node::Broker(broker_id),
            Node::Controller,
            Message::AlterPartition {
                request,
                leadership,
                request_id,
            },
        );
    }

    /// `propose_isr`'s handling of the answer.
    pub(super) fn alter_partition_answered(
        &mut self,
        broker_id: i32,
        partition: i32,
        (leadership, request_id): (u64, u64),
        result: Result<PartitionState, KafkaError>,
    ) {
        let rules = self.former_rules;
        let partition = partition as usize;
        let replica = &mut self.broker(broker_id).replicas[partition];
        let end = replica.durable_end;
        let Role::Leader(leading) = &mut replica.role else {
            return;
        };
        // The former rule matched the leadership only: an answer to a request
        // it gave up on settles whatever is pending now.
        let superseded = !rules.isr_answers && leading.isr_request_id != request_id;
        if leading.leadership != leadership || superseded {
            return;
        }
        match result {
            Ok(state) => {
                if state.leader_epoch != leading.view.leader_epoch {
                    return;
                }
                if let Some(high_watermark) =
                    leading
                        .view
                        .isr_committed(state.isr, state.partition_epoch, end)
                {
                    replica.advance_high_watermark(high_watermark);
                    self.acknowledge(broker_id, partition);
                }
            }
            Err(error) => {
                let definite = if rules.isr_refusals {
                    FORMER_DEFINITE_REFUSALS.contains(&error)
                } else {
                    DEFINITE_REFUSALS.contains(&error)
                };
                if definite {
                    leading.view.isr_refused();
                }
            }
        }
    }

    /// A change left unanswered (`replicas::retry_stale_isr_change`). The
    /// server formerly forgot any after ISR_CHANGE_PATIENCE_MS and decided
    /// again. That is safe for a shrink (the larger, committed ISR counts
    /// again), not for an expansion: the controller may have committed it,
    /// and the joiner, now in the ISR and electable, lacks what the leader
    /// acknowledges without it (KIP-841's reason to count the pending ISR).
    /// So a shrink is forgotten, and an expansion sent again once the
    /// earlier request can no longer arrive (a second copy in flight could
    /// be applied after the first was refused).
    fn stale_isr_change(&mut self, broker_id: i32, partition: usize) {
        let now = self.now;
        let patience = self.timing.isr_change_patience;
        let forget_expansions = self.former_rules.isr_patience;
        let Role::Leader(leading) = &mut self.broker(broker_id).replicas[partition].role else {
            return;
        };
        let view = &mut leading.view;
        let waited = now - leading.isr_change_sent_tick;
        if !view.has_pending_isr_change() {
            return;
        }
        let expanding = view.maximal_isr().len() > view.isr.len();
        if (forget_expansions || !expanding) && waited > patience {
            view.isr_refused();
        } else if !forget_expansions && expanding && waited > MAX_DELAY_TICKS {
            self.send_isr_change(broker_id, partition);
        }
    }
}
