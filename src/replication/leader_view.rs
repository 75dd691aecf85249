//! A partition leader's view of its followers: how far each has fetched, the
//! high watermark that follows from it, and which followers drop out of or
//! come back into the in-sync replica set (Kafka's `Partition` and
//! `ReplicaState` on the leader, KIP-841 for the "maximal ISR").
//!
//! Pure data, kept by the shard that owns the leader replica beside its log:
//! every follower Fetch is reported with `follower_fetched`, every append of
//! the leader's own with a new `leader_end`, and the shard acts on what comes
//! back (answer acks=all producers below the new high watermark, send an
//! AlterPartition with `isr_to_shrink` / `isr_to_expand`). "End" here is what
//! counts for acks=all: the log end offset, or under `--flush always` the
//! durable end (followers fetch only after syncing, so their fetch offset is
//! their durable end).

use thiserror::Error;

/// Kafka's `LogOffsetMetadata.UnknownOffset`: a follower not heard from since
/// this leadership started.
pub const UNKNOWN_OFFSET: i64 = -1;

/// What the leader knows of one follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerProgress {
    pub broker_id: i32,
    /// The follower's end, from its last fetch offset.
    pub log_end_offset: i64,
    /// Last time the follower had everything the leader had at some fetch
    /// (Kafka's `lastCaughtUpTimeMs`).
    pub last_caught_up_ms: i64,
    last_fetch_ms: i64,
    /// The leader's end at the follower's previous fetch.
    last_fetch_leader_end: i64,
}

/// A fetch from a broker that is not a follower of this partition.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("broker {0} is not a replica of this partition")]
pub struct NotAReplica(pub i32);

/// One leadership of a partition, as the metadata assigns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leadership {
    pub leader_id: i32,
    pub leader_epoch: i32,
    /// The leader's log end when the leadership began.
    pub leader_epoch_start_offset: i64,
    /// Broker ids of the replicas, preferred leader first.
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub partition_epoch: i32,
}

/// The leader's side of one partition for one leadership (one leader epoch).
#[derive(Debug, Clone)]
pub struct LeaderView {
    pub leader_id: i32,
    pub leader_epoch: i32,
    /// The first offset this leadership wrote: a follower below it cannot
    /// rejoin the ISR (it may still hold an older leader's tail).
    pub leader_epoch_start_offset: i64,
    /// Committed by the controller, with its partition epoch.
    pub isr: Vec<i32>,
    pub partition_epoch: i32,
    /// An ISR change sent to the controller and not answered yet.
    pending_isr: Option<Vec<i32>>,
    pub high_watermark: i64,
    followers: Vec<FollowerProgress>,
}

impl LeaderView {
    /// `leadership` starting at `now_ms` with the high watermark the replica
    /// had: followers in the ISR count as caught up now (so they get
    /// `replica.lag.time.max.ms` to fetch), the others as never; nobody's end
    /// is known yet.
    pub fn new(leadership: Leadership, high_watermark: i64, now_ms: i64) -> LeaderView {
        let Leadership {
            leader_id,
            leader_epoch,
            leader_epoch_start_offset,
            replicas,
            isr,
            partition_epoch,
        } = leadership;
        assert!(
            replicas.contains(&leader_id) && isr.contains(&leader_id),
            "leader {leader_id} is one of its replicas {replicas:?} and of its ISR {isr:?}"
        );
        let followers = replicas
            .iter()
            .filter(|broker_id| **broker_id != leader_id)
            .map(|&broker_id| FollowerProgress {
                broker_id,
                log_end_offset: UNKNOWN_OFFSET,
                last_caught_up_ms: if isr.contains(&broker_id) { now_ms } else { 0 },
                last_fetch_ms: 0,
                last_fetch_leader_end: UNKNOWN_OFFSET,
            })
            .collect();
        LeaderView {
            leader_id,
            leader_epoch,
            leader_epoch_start_offset,
            isr,
            partition_epoch,
            pending_isr: None,
            high_watermark,
            followers,
        }
    }

    pub fn followers(&self) -> &[FollowerProgress] {
        &self.followers
    }

    /// The ISR the high watermark waits for: the committed one, or the
    /// pending one while it is larger (KIP-841: a follower being added
    /// counts at once, one being removed until the controller agrees).
    pub fn maximal_isr(&self) -> &[i32] {
        match &self.pending_isr {
            Some(pending) if pending.len() > self.isr.len() => pending,
            _ => &self.isr,
        }
    }

    /// The ISR change sent to the controller and not yet settled.
    pub fn pending_isr(&self) -> Option<&[i32]> {
        self.pending_isr.as_deref()
    }

    pub fn has_pending_isr_change(&self) -> bool {
        self.pending_isr.is_some()
    }

    /// Follower `broker_id` fetched at `fetch_offset` while the leader's end
    /// was `leader_end` (Kafka's `ReplicaState.updateFetchState`). Returns
    /// the new high watermark if it moved.
    pub fn follower_fetched(
        &mut self,
        broker_id: i32,
        fetch_offset: i64,
        leader_end: i64,
        now_ms: i64,
    ) -> Result<Option<i64>, NotAReplica> {
        let follower = self
            .followers
            .iter_mut()
            .find(|follower| follower.broker_id == broker_id)
            .ok_or(NotAReplica(broker_id))?;
        if fetch_offset >= leader_end {
            follower.last_caught_up_ms = follower.last_caught_up_ms.max(now_ms);
        } else if fetch_offset >= follower.last_fetch_leader_end {
            follower.last_caught_up_ms = follower.last_caught_up_ms.max(follower.last_fetch_ms);
        }
        follower.log_end_offset = fetch_offset;
        follower.last_fetch_ms = now_ms;
        follower.last_fetch_leader_end = leader_end;
        Ok(self.advance_high_watermark(leader_end))
    }

    /// The high watermark after the leader's end became `leader_end`: the
    /// smallest end over the leader and the maximal ISR, never lower than
    /// before (Kafka's `maybeIncrementLeaderHW`). `Some` if it moved.
    pub fn advance_high_watermark(&mut self, leader_end: i64) -> Option<i64> {
        let mut candidate = leader_end;
        for follower in &self.followers {
            if self.maximal_isr().contains(&follower.broker_id) {
                candidate = candidate.min(follower.log_end_offset);
            }
        }
        (candidate > self.high_watermark).then(|| {
            self.high_watermark = candidate;
            candidate
        })
    }

    /// ISR followers that have not been caught up for `lag_max_ms` (Kafka's
    /// `getOutOfSyncReplicas`); the leader itself never is.
    pub fn isr_to_shrink(&self, leader_end: i64, now_ms: i64, lag_max_ms: i64) -> Vec<i32> {
        self.followers
            .iter()
            .filter(|follower| self.isr.contains(&follower.broker_id))
            .filter(|follower| {
                follower.log_end_offset != leader_end
                    && follower.last_caught_up_ms < now_ms.saturating_sub(lag_max_ms)
            })
            .map(|follower| follower.broker_id)
            .collect()
    }

    /// A follower outside the ISR that has caught up with the high watermark
    /// and this leadership's first offset, so it may rejoin (Kafka's
    /// `isFollowerInSync`); `eligible` says whether the controller would take
    /// it (registered and not fenced, not shutting down).
    pub fn isr_to_expand(&self, eligible: impl Fn(i32) -> bool) -> Option<i32> {
        self.followers
            .iter()
            .filter(|follower| !self.maximal_isr().contains(&follower.broker_id))
            .find(|follower| {
                follower.log_end_offset >= self.high_watermark
                    && follower.log_end_offset >= self.leader_epoch_start_offset
                    && eligible(follower.broker_id)
            })
            .map(|follower| follower.broker_id)
    }

    /// An AlterPartition with `isr` was sent; nothing else may be sent
    /// until it is answered.
    pub fn propose_isr(&mut self, isr: Vec<i32>) {
        assert!(
            self.pending_isr.is_none(),
            "one ISR change in flight at a time"
        );
        assert!(isr.contains(&self.leader_id), "the leader stays in its ISR");
        self.pending_isr = Some(isr);
    }

    /// The controller committed `isr` at `partition_epoch` (the answer to
    /// the pending change, or a change the leader reads from the metadata).
    /// Returns the high watermark if it moved (a smaller ISR can let it).
    pub fn isr_committed(
        &mut self,
        isr: Vec<i32>,
        partition_epoch: i32,
        leader_end: i64,
    ) -> Option<i64> {
        if partition_epoch < self.partition_epoch {
            return None;
        }
        self.isr = isr;
        self.partition_epoch = partition_epoch;
        self.pending_isr = None;
        self.advance_high_watermark(leader_end)
    }

    /// The partition's replicas changed under the same leadership (a
    /// reassignment starting or completing, KIP-455): new followers are
    /// tracked from now, as never caught up; removed ones are forgotten.
    pub fn replicas_changed(&mut self, replicas: &[i32]) {
        self.followers
            .retain(|follower| replicas.contains(&follower.broker_id));
        for &broker_id in replicas {
            let known = broker_id == self.leader_id
                || self
                    .followers
                    .iter()
                    .any(|follower| follower.broker_id == broker_id);
            if !known {
                self.followers.push(FollowerProgress {
                    broker_id,
                    log_end_offset: UNKNOWN_OFFSET,
                    last_caught_up_ms: 0,
                    last_fetch_ms: 0,
                    last_fetch_leader_end: UNKNOWN_OFFSET,
                });
            }
        }
    }

    /// The pending change was refused and certainly not applied (Kafka's
    /// OPERATION_NOT_ATTEMPTED, INELIGIBLE_REPLICA): the committed ISR stands.
    /// A lost answer or INVALID_UPDATE_VERSION leave it pending instead: it
    /// may be committed, so the larger ISR keeps counting until the metadata
    /// shows the outcome (`isr_committed`).
    pub fn isr_refused(&mut self) {
        self.pending_isr = None;
    }

    /// Whether acks=all may append now: the committed ISR holds at least
    /// `min_insync_replicas` (else NOT_ENOUGH_REPLICAS, Kafka's check before
    /// append, which counts the committed ISR).
    pub fn enough_in_sync(&self, min_insync_replicas: usize) -> bool {
        self.isr.len() >= min_insync_replicas
    }
}

#[cfg(test)]
#[path = "leader_view_tests.rs"]
mod tests;
