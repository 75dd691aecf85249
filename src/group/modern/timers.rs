//! The group's timers: each member's session timeout (reset by every
//! heartbeat; expiry fences the member) and its rebalance timeout (started
//! when it must revoke partitions; if it is still at that epoch when the
//! timeout passes, it is fenced so its partitions go to others). Deadlines
//! in the group, not scheduled tasks: every event first fires, in time
//! order and each at its own time, the timers due by its `now_ms`.

use super::group::ConsumerGroup;
use super::records::ConsumerGroupRecord;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Timer {
    Session(String),
    Rebalance { member_id: String, epoch: i32 },
}

impl ConsumerGroup {
    /// Fire every timer due at `now_ms`; returns the records to persist.
    pub fn tick(&mut self, now_ms: i64) -> Vec<ConsumerGroupRecord> {
        let mut records = Vec::new();
        self.fire_due_timers(now_ms, &mut records);
        records
    }

    /// When `tick` has something to do next, for the shard's timer.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        self.next_timer().map(|(at, _)| at)
    }

    fn next_timer(&self) -> Option<(i64, Timer)> {
        let sessions = self
            .session_deadlines_ms
            .iter()
            .map(|(id, at)| (*at, Timer::Session(id.clone())));
        let rebalances = self.rebalance_deadlines_ms.iter().map(|(id, (at, epoch))| {
            let timer = Timer::Rebalance {
                member_id: id.clone(),
                epoch: *epoch,
            };
            (*at, timer)
        });
        sessions.chain(rebalances).min_by_key(|(at, _)| *at)
    }

    pub(super) fn fire_due_timers(&mut self, now_ms: i64, records: &mut Vec<ConsumerGroupRecord>) {
        // Every firing removes at least one timer, so this many is enough.
        let firings_max = self.session_deadlines_ms.len() + self.rebalance_deadlines_ms.len();
        for _ in 0..firings_max {
            let Some((at, timer)) = self.next_timer() else {
                return;
            };
            if at > now_ms {
                return;
            }
            match timer {
                Timer::Session(member_id) => {
                    self.session_deadlines_ms.remove(&member_id);
                    self.fence_member(&member_id, records);
                }
                Timer::Rebalance { member_id, epoch } => {
                    self.rebalance_deadlines_ms.remove(&member_id);
                    let still_there = self
                        .members
                        .get(&member_id)
                        .is_some_and(|m| m.member_epoch == epoch);
                    if still_there {
                        self.fence_member(&member_id, records);
                    }
                }
            }
        }
    }

    pub(super) fn forget_timers(&mut self, member_id: &str) {
        self.session_deadlines_ms.remove(member_id);
        self.rebalance_deadlines_ms.remove(member_id);
    }
}
