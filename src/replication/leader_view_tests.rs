use super::*;

const LAG_MAX_MS: i64 = 30_000;

/// Leader 1 of replicas [1, 2, 3], all in sync, high watermark 0, at t = 1000.
fn three_in_sync() -> LeaderView {
    LeaderView::new(
        Leadership {
            leader_id: 1,
            leader_epoch: 4,
            leader_epoch_start_offset: 0,
            replicas: vec![1, 2, 3],
            isr: vec![1, 2, 3],
            partition_epoch: 7,
        },
        0,
        1_000,
    )
}

#[test]
fn high_watermark_is_the_smallest_end_in_the_isr() {
    let mut view = three_in_sync();
    // Nobody has fetched: the leader's appends alone move nothing.
    assert_eq!(view.advance_high_watermark(10), None);
    assert_eq!(view.follower_fetched(2, 10, 10, 1_100), Ok(None));
    // Follower 3 has 6 of 10.
    assert_eq!(view.follower_fetched(3, 6, 10, 1_100), Ok(Some(6)));
    assert_eq!(view.follower_fetched(3, 10, 10, 1_200), Ok(Some(10)));
    // A follower's report never lowers it.
    assert_eq!(view.follower_fetched(2, 4, 12, 1_300), Ok(None));
    assert_eq!(view.high_watermark, 10);
    assert_eq!(view.follower_fetched(9, 0, 12, 1_300), Err(NotAReplica(9)));
}

#[test]
fn a_lagging_follower_leaves_the_isr_and_the_high_watermark_goes_on_without_it() {
    let mut view = three_in_sync();
    view.follower_fetched(2, 0, 0, 1_000).expect("replica");
    view.follower_fetched(3, 0, 0, 1_000).expect("replica");
    // Leader appends up to 50; 2 keeps up, 3 stops fetching.
    let mut now = 1_000;
    for end in (10..=50).step_by(10) {
        now += 1_000;
        view.follower_fetched(2, end, end, now).expect("replica");
    }
    assert_eq!(view.high_watermark, 0, "3 is still in the ISR at 0");
    assert!(view.isr_to_shrink(50, now, LAG_MAX_MS).is_empty());
    let late = 1_000 + LAG_MAX_MS + 1;
    assert_eq!(view.isr_to_shrink(50, late, LAG_MAX_MS), vec![3]);
    // While the removal is pending, 3 still holds the high watermark back.
    view.propose_isr(vec![1, 2]);
    assert_eq!(view.maximal_isr(), &[1, 2, 3]);
    assert_eq!(view.advance_high_watermark(50), None);
    assert_eq!(view.isr_committed(vec![1, 2], 8, 50), Some(50));
    assert!(!view.has_pending_isr_change());
    assert!(view.enough_in_sync(2));
    assert!(!view.enough_in_sync(3));
}

#[test]
fn a_follower_fetching_slowly_but_steadily_stays_in_sync() {
    let mut view = three_in_sync();
    let mut now = 1_000;
    // Each fetch reaches the leader's end as of the previous fetch, never the current one.
    let mut previous_leader_end = 0;
    for round in 1..=100 {
        now += 10_000;
        let leader_end = round * 100;
        view.follower_fetched(2, previous_leader_end, leader_end, now)
            .expect("replica");
        view.follower_fetched(3, leader_end, leader_end, now)
            .expect("replica");
        previous_leader_end = leader_end;
    }
    assert!(view.isr_to_shrink(10_000, now, LAG_MAX_MS).is_empty());
}

#[test]
fn a_caught_up_follower_rejoins_once_past_the_high_watermark_and_the_epoch_start() {
    let mut view = LeaderView::new(
        Leadership {
            leader_id: 1,
            leader_epoch: 4,
            leader_epoch_start_offset: 20,
            replicas: vec![1, 2, 3],
            isr: vec![1, 2],
            partition_epoch: 7,
        },
        15,
        1_000,
    );
    view.follower_fetched(2, 30, 30, 1_100).expect("replica");
    assert_eq!(view.high_watermark, 30);
    view.follower_fetched(3, 18, 30, 1_100).expect("replica");
    assert_eq!(view.isr_to_expand(|_| true), None, "below the epoch start");
    view.follower_fetched(3, 28, 30, 1_200).expect("replica");
    assert_eq!(
        view.isr_to_expand(|_| true),
        None,
        "below the high watermark"
    );
    view.follower_fetched(3, 30, 30, 1_300).expect("replica");
    assert_eq!(view.isr_to_expand(|broker| broker != 3), None, "fenced");
    assert_eq!(view.isr_to_expand(|_| true), Some(3));
    // Once proposed it counts for the high watermark at once.
    view.propose_isr(vec![1, 2, 3]);
    assert_eq!(view.isr_to_expand(|_| true), None);
    view.follower_fetched(2, 40, 40, 1_400).expect("replica");
    assert_eq!(view.high_watermark, 30, "3 is at 30");
    view.isr_refused();
    assert_eq!(view.advance_high_watermark(40), Some(40));
}

#[test]
fn a_stale_isr_commit_is_ignored() {
    let mut view = three_in_sync();
    assert_eq!(view.isr_committed(vec![1], 6, 0), None);
    assert_eq!(view.isr, vec![1, 2, 3]);
    assert_eq!(view.partition_epoch, 7);
}

#[test]
fn a_leader_alone_in_its_isr_commits_its_own_end() {
    let mut view = LeaderView::new(
        Leadership {
            leader_id: 2,
            leader_epoch: 1,
            leader_epoch_start_offset: 0,
            replicas: vec![1, 2],
            isr: vec![2],
            partition_epoch: 3,
        },
        0,
        0,
    );
    assert_eq!(view.advance_high_watermark(5), Some(5));
    // The follower outside the ISR does not hold it back.
    view.follower_fetched(1, 0, 5, 10).expect("replica");
    assert_eq!(view.advance_high_watermark(9), Some(9));
}
