//! Offset commits and fetches against member epochs, and deleting a group.

use super::*;

#[test]
fn commits_need_a_member_at_its_current_epoch_once_the_group_has_members() {
    let mut h = Harness::new();
    // An empty group takes commits from anyone (Admin client, assign()).
    assert_eq!(h.group.validate_offset_commit("", -1, false, 9), Ok(()));
    let mut c1 = Client::new("m1", &["a"]);
    c1.beat(&mut h);
    assert_eq!(h.group.validate_offset_commit("m1", 1, false, 9), Ok(()));
    assert_eq!(h.group.validate_offset_commit("m1", 1, true, 5), Ok(()));
    let stale = h.group.validate_offset_commit("m1", 0, false, 9);
    assert_eq!(stale.map_err(|e| e.code()), Err(113));
    let unknown = h.group.validate_offset_commit("", -1, false, 9);
    assert_eq!(unknown.map_err(|e| e.code()), Err(25));
    let old_version = h.group.validate_offset_commit("m1", 1, false, 8);
    assert_eq!(old_version.map_err(|e| e.code()), Err(35));
}

#[test]
fn fetches_without_a_member_are_allowed_and_members_must_be_current() {
    let mut h = Harness::new();
    let mut c1 = Client::new("m1", &["a"]);
    c1.beat(&mut h);
    assert_eq!(h.group.validate_offset_fetch(None, -1), Ok(()));
    assert_eq!(h.group.validate_offset_fetch(Some("m1"), 1), Ok(()));
    let stale = h.group.validate_offset_fetch(Some("m1"), 7);
    assert_eq!(stale.map_err(|e| e.code()), Err(113));
    let unknown = h.group.validate_offset_fetch(Some("m9"), 1);
    assert_eq!(unknown.map_err(|e| e.code()), Err(25));
}

#[test]
fn only_an_empty_group_has_tombstones_and_replaying_them_deletes_it() {
    let mut h = Harness::new();
    let mut c1 = Client::new("m1", &["a"]);
    c1.beat(&mut h);
    assert_eq!(h.group.tombstones(), None, "a group with members stays");
    c1.leave(&mut h);
    let tombstones = h.group.tombstones().expect("empty group");
    assert_eq!(
        tombstones.last(),
        Some(&ConsumerGroupRecord::GroupEpoch(None))
    );
    for record in &tombstones {
        h.group.replay(record).expect("tombstones apply in order");
    }
    assert!(h.group.is_deleted());
    assert_eq!(h.group.state(), ConsumerGroupState::Dead);
}
