//! Where a follower's log stops agreeing with its leader's, and what it
//! truncates (KIP-101, KIP-279; the diverging epoch of Fetch v12+, KIP-595).
//!
//! A follower fetches with the offset it wants next and the epoch of its last
//! record. The leader looks that epoch up in its own epoch cache: if its log
//! has no such epoch up to that offset, the follower's tail diverges and the
//! answer carries, instead of records, where that epoch ends on the leader
//! (`diverging_epoch`). The follower then cuts its log at the first offset
//! where the two can differ (`truncation_point`) and fetches again. Pure
//! functions: the leader's shard calls the first, the follower's shard the
//! second, each beside its own partition log.

use super::leader_epochs::{EpochEndOffset, LeaderEpochCache, UNDEFINED_EPOCH_OFFSET};

/// Leader side: the diverging epoch to answer a follower fetching at
/// `fetch_offset` whose last record has `last_fetched_epoch`, or `None` when
/// the follower's log agrees with this one up to `fetch_offset` (Kafka's
/// `Partition.fetchRecords` with a last fetched epoch).
pub fn diverging_epoch(
    leader_epochs: &LeaderEpochCache,
    leader_log_end_offset: i64,
    fetch_offset: i64,
    last_fetched_epoch: i32,
) -> Option<EpochEndOffset> {
    if last_fetched_epoch < 0 {
        return None;
    }
    let end = leader_epochs.end_offset_for(last_fetched_epoch, leader_log_end_offset);
    (end.epoch < last_fetched_epoch || end.end_offset < fetch_offset).then_some(end)
}

/// Follower side: what to do with a diverging epoch `leader_end` from the
/// leader (Kafka's `AbstractFetcherThread.getOffsetTruncationState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncation {
    /// Truncate the log to this offset (its new log end).
    pub offset: i64,
    /// False when the follower has not the epoch the leader named: after
    /// truncating it must fetch again with its new last epoch, which may
    /// diverge further back.
    pub completed: bool,
}

/// Where a follower with `follower_epochs`, log end `follower_log_end_offset`
/// and high watermark `follower_high_watermark` cuts its log on the leader's
/// diverging epoch `leader_end`.
pub fn truncation_point(
    follower_epochs: &LeaderEpochCache,
    follower_log_end_offset: i64,
    follower_high_watermark: i64,
    leader_end: EpochEndOffset,
) -> Truncation {
    if leader_end.end_offset == UNDEFINED_EPOCH_OFFSET {
        // The leader knows nothing that old: keep only what was committed.
        return Truncation {
            offset: follower_high_watermark.min(follower_log_end_offset),
            completed: true,
        };
    }
    let follower_end = follower_epochs.end_offset_for(leader_end.epoch, follower_log_end_offset);
    if follower_end.end_offset == UNDEFINED_EPOCH_OFFSET {
        return Truncation {
            offset: leader_end.end_offset.min(follower_log_end_offset),
            completed: true,
        };
    }
    if follower_end.epoch != leader_end.epoch {
        // This log never had the leader's epoch: cut where our older epoch
        // ends, then ask again with it.
        return Truncation {
            offset: follower_end.end_offset.min(follower_log_end_offset),
            completed: false,
        };
    }
    Truncation {
        offset: leader_end
            .end_offset
            .min(follower_end.end_offset)
            .min(follower_log_end_offset),
        completed: true,
    }
}

#[cfg(test)]
mod tests {
    use super::super::leader_epochs::EpochEntry;
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> LeaderEpochCache {
        LeaderEpochCache::from_entries(
            entries
                .iter()
                .map(|&(epoch, start_offset)| EpochEntry {
                    epoch,
                    start_offset,
                })
                .collect(),
        )
        .expect("increasing entries")
    }

    #[test]
    fn an_agreeing_follower_gets_records() {
        let leader = cache(&[(0, 0), (2, 10)]);
        assert_eq!(diverging_epoch(&leader, 15, 15, 2), None);
        assert_eq!(diverging_epoch(&leader, 15, 8, 0), None);
        assert_eq!(diverging_epoch(&leader, 15, 10, 0), None);
        // A new follower has no last epoch.
        assert_eq!(diverging_epoch(&leader, 15, 0, -1), None);
    }

    #[test]
    fn a_follower_with_an_unknown_tail_is_told_where_its_epoch_ends() {
        // Old leader (epoch 1) wrote 10..14 that the new leader (epoch 2) never got.
        let leader = cache(&[(0, 0), (2, 10)]);
        let follower = cache(&[(0, 0), (1, 10)]);
        let diverging = diverging_epoch(&leader, 20, 14, 1).expect("diverges");
        assert_eq!(
            diverging,
            EpochEndOffset {
                epoch: 0,
                end_offset: 10
            }
        );
        let cut = truncation_point(&follower, 14, 10, diverging);
        assert_eq!(
            cut,
            Truncation {
                offset: 10,
                completed: true
            }
        );
    }

    #[test]
    fn a_follower_ahead_in_the_same_epoch_is_cut_to_the_leaders_end() {
        // Both had epoch 1, but the leader's epoch 1 ended at 12 and the follower has up to 15.
        let leader = cache(&[(0, 0), (1, 5), (3, 12)]);
        let follower = cache(&[(0, 0), (1, 5)]);
        let diverging = diverging_epoch(&leader, 30, 15, 1).expect("diverges");
        assert_eq!(diverging.epoch, 1);
        assert_eq!(diverging.end_offset, 12);
        assert_eq!(truncation_point(&follower, 15, 5, diverging).offset, 12);
    }

    #[test]
    fn a_follower_missing_the_leaders_epoch_truncates_in_steps() {
        let leader = cache(&[(0, 0), (4, 20)]);
        // The follower's epochs 1 and 3 never reached the leader.
        let follower = cache(&[(0, 0), (1, 8), (3, 12)]);
        let first = diverging_epoch(&leader, 25, 16, 3).expect("diverges");
        assert_eq!(first.epoch, 0);
        assert_eq!(first.end_offset, 20);
        let cut = truncation_point(&follower, 16, 4, first);
        // Epoch 0 ends at 8 here: cut there, done (the leader's epoch 0 is longer).
        assert_eq!(
            cut,
            Truncation {
                offset: 8,
                completed: true
            }
        );
        // A leader naming an epoch this follower never had: step back, then ask again.
        let leader_epoch_2 = EpochEndOffset {
            epoch: 2,
            end_offset: 11,
        };
        assert_eq!(
            truncation_point(&follower, 16, 4, leader_epoch_2),
            Truncation {
                offset: 12,
                completed: false
            }
        );
    }

    #[test]
    fn an_undefined_leader_end_keeps_only_the_high_watermark() {
        let follower = cache(&[(0, 0)]);
        assert_eq!(
            truncation_point(&follower, 9, 6, EpochEndOffset::UNDEFINED),
            Truncation {
                offset: 6,
                completed: true
            }
        );
    }
}
