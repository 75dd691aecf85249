//! Producers and syncs: a leader appends records of its epoch (acks=all
//! only with enough of its committed ISR, min.insync.replicas), and answers
//! acks=all producers once its high watermark passes their record, each
//! answer checked against the ledger; an fdatasync moves a broker's
//! durable ends, which is what leaders count (`--flush always`) and what
//! followers wait for before they take a high watermark.

use super::broker::Role;
use super::invariants::Ledger;
use super::{Record, Simulation, ASSIGNMENTS};

impl Simulation {
    /// Answers the acks=all producers below a leader's high watermark.
    pub(super) fn acknowledge(&mut self, broker_id: i32, partition: usize) {
        let replica = &mut self.brokers[(broker_id - 1) as usize].replicas[partition];
        let Role::Leader(leading) = &mut replica.role else {
            return;
        };
        let high_watermark = replica.high_watermark;
        let leader_epoch = leading.view.leader_epoch;
        if self.tracing {
            let view = &leading.view;
            eprintln!(
                "{:>5} broker {broker_id} partition {partition} leader epoch {leader_epoch}: high \
                 watermark {high_watermark}, ISR {:?} (maximal {:?}, partition epoch {}), \
                 followers {:?}",
                self.now,
                view.isr,
                view.maximal_isr(),
                view.partition_epoch,
                view.followers()
            );
        }
        let (done, waiting): (Vec<_>, Vec<_>) = leading
            .waiting
            .drain(..)
            .partition(|(offset, _)| *offset < high_watermark);
        leading.waiting = waiting;
        for (offset, record) in done {
            let log = &self.brokers[(broker_id - 1) as usize].replicas[partition].log;
            assert_eq!(log[offset as usize], record, "leaders never truncate");
            self.ledger
                .acknowledged(partition, broker_id, leader_epoch, offset, record);
            self.stats.acknowledged += 1;
            for other in &self.brokers {
                if let Some(leading) = other.replicas[partition].leading() {
                    if leading.view.leader_epoch > leader_epoch {
                        Ledger::check_later_leader(
                            partition,
                            other.id,
                            leading.view.leader_epoch,
                            &other.replicas[partition].log,
                            offset,
                            record,
                        );
                    }
                }
            }
        }
    }

    /// A producer's record for `partition` reaches `broker_id`; it takes it
    /// if it leads (and, for acks=all, its ISR is large enough).
    pub(super) fn produce(&mut self, broker_id: i32, partition: usize, acks_all: bool) {
        let id = self.next_record_id;
        let broker = self.broker(broker_id);
        if !broker.up {
            return;
        }
        let replica = &mut broker.replicas[partition];
        let end = replica.log_end();
        let Role::Leader(leading) = &mut replica.role else {
            return;
        };
        if acks_all && !leading.view.enough_in_sync(leading.min_insync_replicas) {
            self.stats.not_enough_replicas += 1;
            return;
        }
        let record = Record {
            epoch: leading.view.leader_epoch,
            id,
        };
        if acks_all {
            leading.waiting.push((end, record));
        }
        replica.epochs.assign(record.epoch, end);
        replica.log.push(record);
        self.next_record_id += 1;
    }

    /// An fdatasync of every partition of a broker: leaders count their new
    /// durable end, followers apply the high watermark they held back.
    pub(super) fn sync(&mut self, broker_id: i32) {
        for partition in 0..ASSIGNMENTS.len() {
            let replica = &mut self.broker(broker_id).replicas[partition];
            replica.durable_end = replica.log_end();
            let end = replica.durable_end;
            match &mut replica.role {
                Role::Leader(leading) => {
                    if let Some(high_watermark) = leading.view.advance_high_watermark(end) {
                        replica.advance_high_watermark(high_watermark);
                        self.acknowledge(broker_id, partition);
                    }
                }
                Role::Follower(following) => {
                    if let Some(high_watermark) = following.unsynced_high_watermark.take() {
                        let before = replica.high_watermark;
                        replica.advance_high_watermark(high_watermark);
                        let after = replica.high_watermark;
                        if after != before {
                            self.trace(|| {
                                format!(
                                    "broker {broker_id} partition {partition} synced: high \
                                     watermark {before} -> {after}"
                                )
                            });
                        }
                    }
                }
                Role::None => {}
            }
        }
    }
}
