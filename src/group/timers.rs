//! The group's timers: session expiry of members and of members in their
//! first join step, the rebalance timeout and the initial rebalance delay.
//! They are deadlines stored in the `Group`, not scheduled tasks; every
//! event first fires, in time order and each at its own time, the timers
//! due by its `now_ms`, so outcomes depend only on events and their times.

use super::messages::{Effect, RemovalReason, Reply};
use super::state_machine::Group;
use super::state_machine::GroupState;

impl Group {
    pub(super) fn next_timer(&self) -> Option<(i64, Timer)> {
        let pending = self
            .pending_members
            .iter()
            .enumerate()
            .map(|(i, p)| (p.deadline_ms, Timer::PendingExpiry(i)));
        let sessions = self
            .members
            .iter()
            .enumerate()
            .filter_map(|(i, m)| m.expires_at().map(|at| (at, Timer::SessionExpiry(i))));
        let join = self.join_deadline_ms.map(|at| (at, Timer::JoinRound));
        // Expiries sort before the join round at the same instant, so a dead
        // member never makes it into the next generation.
        pending
            .chain(sessions)
            .chain(join)
            .min_by_key(|(at, timer)| (*at, matches!(timer, Timer::JoinRound)))
    }

    /// Fire due timers one at a time, in time order, each at its own time.
    pub(super) fn fire_due_timers(&mut self, now_ms: i64, effects: &mut Vec<Effect>) {
        if self.state == GroupState::Dead {
            return;
        }
        // Each firing removes a member or ends or shortens a join round, so
        // this many firings is more than enough; more would be a bug.
        let firings_max = 4 * (self.members.len() + self.pending_members.len()) + 8;
        for _ in 0..firings_max {
            let Some((at, timer)) = self.next_timer() else {
                return;
            };
            if at > now_ms {
                return;
            }
            match timer {
                Timer::PendingExpiry(i) => {
                    let member_id = self.pending_members[i].member_id.clone();
                    self.remove_pending_member(&member_id, at, effects);
                }
                Timer::SessionExpiry(i) => {
                    let member_id = self.members[i].member_id.clone();
                    self.remove_member_and_update(
                        &member_id,
                        RemovalReason::SessionExpired,
                        at,
                        effects,
                    );
                }
                Timer::JoinRound => self.join_deadline_passed(at, effects),
            }
        }
        debug_assert!(false, "group {} timers did not settle", self.group_id);
    }

    /// Kafka's `InitialDelayedJoin.onExpiration` / `DelayedJoin.onExpiration`.
    fn join_deadline_passed(&mut self, at_ms: i64, effects: &mut Vec<Effect>) {
        if let Some(remaining_ms) = self.initial_delay_remaining_ms {
            if self.new_member_added && remaining_ms > 0 {
                let delay_ms = i64::from(self.config.initial_rebalance_delay_ms).min(remaining_ms);
                self.new_member_added = false;
                self.join_deadline_ms = Some(at_ms + delay_ms);
                self.initial_delay_remaining_ms = Some((remaining_ms - delay_ms).max(0));
                return;
            }
        }
        self.complete_join(at_ms, effects);
    }

    /// Run timers due at `now_ms`, apply `event`, then run timers again (a
    /// zero initial delay completes the round within the event itself).
    pub(super) fn with_timers<T>(
        &mut self,
        now_ms: i64,
        event: impl FnOnce(&mut Group, &mut Vec<Effect>) -> T,
    ) -> Reply<T> {
        let mut effects = Vec::new();
        self.fire_due_timers(now_ms, &mut effects);
        let outcome = event(self, &mut effects);
        self.fire_due_timers(now_ms, &mut effects);
        Reply { outcome, effects }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    PendingExpiry(usize),
    SessionExpiry(usize),
    JoinRound,
}
