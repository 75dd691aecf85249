//! Records and their replay: a group rebuilt from its records is the
//! group, and records that break Kafka's order rules are refused.

use super::*;

/// A group mid-rebalance: a static member, a regex member, a member
/// revoking partitions and one waiting for them.
fn busy_harness() -> (Harness, Vec<Client>) {
    let mut h = Harness::new();
    let mut clients = vec![
        Client::new("m1", &["a", "b"]).with_instance("i1"),
        Client::new("m2", &[]),
    ];
    clients[1].regex = Some("a|b".into());
    settle(&mut h, &mut clients);
    let mut m3 = Client::new("m3", &["a"]);
    m3.assignor = Some("uniform".into());
    m3.beat(&mut h);
    clients[0].beat(&mut h);
    clients.push(m3);
    (h, clients)
}

#[test]
fn a_group_rebuilt_from_its_snapshot_records_is_the_same_group() {
    let (h, _) = busy_harness();
    assert_eq!(h.group.state(), ConsumerGroupState::Reconciling);
    let records = h.group.to_records();
    let mut rebuilt = ConsumerGroup::new("g1", ConsumerGroupConfig::default());
    for record in &records {
        rebuilt.replay(record).unwrap();
    }
    rebuilt.assert_consistent();
    assert_eq!(rebuilt.to_records(), records);
    assert_eq!(rebuilt.state(), h.group.state());
    assert_eq!(rebuilt.group_epoch(), h.group.group_epoch());
    let live: Vec<&ConsumerMember> = h.group.members().collect();
    let back: Vec<&ConsumerMember> = rebuilt.members().collect();
    assert_eq!(live, back);
    assert_eq!(
        rebuilt.describe(&h.topics),
        h.group.describe(&h.topics),
        "describe differs"
    );
    h.assert_replay_matches();
}

#[test]
fn a_rebuilt_group_carries_on_and_expires_members_that_do_not_return() {
    let (h, mut clients) = busy_harness();
    let mut rebuilt = Harness {
        group: h.replayed(),
        ..Harness::new()
    };
    rebuilt.log = h.log.clone();
    rebuilt.now_ms = h.now_ms + 1_000;
    rebuilt.group.on_loaded(rebuilt.now_ms);
    // m1 and m2 keep going; m3 never comes back.
    let mut alive = clients.drain(..2).collect::<Vec<_>>();
    for _ in 0..12 {
        rebuilt.advance(5_000);
        for index in 0..alive.len() {
            alive[index].beat(&mut rebuilt);
            assert_disjoint(&alive);
        }
    }
    assert!(rebuilt.group.member("m3").is_none());
    settle(&mut rebuilt, &mut alive);
    rebuilt.assert_replay_matches();
}

#[test]
fn replay_refuses_records_out_of_kafkas_order() {
    let (h, _) = busy_harness();
    let mut group = h.replayed();
    let before = group.to_records();
    let delete_member = ConsumerGroupRecord::MemberMetadata {
        member_id: "m1".into(),
        value: None,
    };
    assert_eq!(
        group.replay(&delete_member),
        Err(ReplayError::MemberDeletedWhileAssigned("m1".into()))
    );
    assert_eq!(
        group.replay(&ConsumerGroupRecord::GroupEpoch(None)),
        Err(ReplayError::GroupDeletedWhileInUse)
    );
    // m3 claiming m1's partitions would make two owners.
    let m1 = group.member("m1").unwrap().clone();
    let steal = ConsumerGroupRecord::CurrentAssignment {
        member_id: "m3".into(),
        value: Some(CurrentAssignmentValue {
            member_epoch: 9,
            previous_member_epoch: 8,
            state: 0,
            assigned_partitions: m1.assigned_partitions.clone(),
            partitions_pending_revocation: Assignment::new(),
        }),
    };
    assert!(matches!(
        group.replay(&steal),
        Err(ReplayError::PartitionHeldTwice(..))
    ));
    assert_eq!(
        group.to_records(),
        before,
        "a refused record changed the group"
    );
    group.assert_consistent();
}

#[test]
fn a_group_is_deleted_by_tombstones_in_order() {
    let mut h = Harness::new();
    let mut c1 = Client::new("m1", &["a"]);
    c1.beat(&mut h);
    c1.leave(&mut h);
    let mut group = h.replayed();
    for record in [
        ConsumerGroupRecord::TargetAssignmentEpoch(None),
        ConsumerGroupRecord::SubscriptionMetadata(None),
        ConsumerGroupRecord::GroupEpoch(None),
    ] {
        group.replay(&record).unwrap();
    }
    assert_eq!(group.state(), ConsumerGroupState::Dead);
    // A heartbeat to a deleted group: not found; a join starts it afresh.
    let mut h2 = Harness {
        group,
        ..Harness::new()
    };
    let beat = HeartbeatRequest {
        member_epoch: 1,
        ..c1.request()
    };
    assert_eq!(h2.send(&beat).error_code, 69);
    assert_eq!(c1.beat(&mut h2).member_epoch, 1);
}

#[test]
fn unknown_member_states_read_back_as_unknown_and_force_a_rejoin() {
    let mut h = Harness::new();
    let mut c1 = Client::new("m1", &["a"]);
    c1.beat(&mut h);
    let record = ConsumerGroupRecord::CurrentAssignment {
        member_id: "m1".into(),
        value: Some(CurrentAssignmentValue {
            member_epoch: 1,
            previous_member_epoch: 0,
            state: 42,
            assigned_partitions: c1.owned.clone(),
            partitions_pending_revocation: Assignment::new(),
        }),
    };
    h.group.replay(&record).unwrap();
    assert_eq!(h.member("m1").state, MemberState::Unknown);
    assert_eq!(c1.beat(&mut h).error_code, 110);
    let response = c1.beat(&mut h);
    assert_eq!(response.error_code, 0);
    assert_eq!(
        response.assignment,
        Some(partitions(&[("a", &[0, 1, 2, 3, 4, 5])]))
    );
}
