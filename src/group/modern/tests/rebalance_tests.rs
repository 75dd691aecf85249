//! Rebalances: revocation before assignment, timeouts, topic changes and
//! regex subscriptions.

use super::*;

#[test]
fn a_new_member_gets_partitions_only_after_the_owner_revoked_them() {
    let mut h = Harness::new();
    let mut m1 = Client::new("m1", &["a"]);
    m1.beat(&mut h);
    let mut m2 = Client::new("m2", &["a"]);
    let response = m2.beat(&mut h);
    assert_eq!(h.group.group_epoch(), 2);
    // Its target partitions are still m1's: it waits for them at epoch 2.
    assert_eq!(response.member_epoch, 2);
    assert_eq!(response.assignment, Some(Assignment::new()));
    assert_eq!(h.member("m2").state, MemberState::UnreleasedPartitions);
    assert_eq!(h.group.state(), ConsumerGroupState::Reconciling);
    // m1 is asked to revoke half, staying at epoch 1.
    let response = m1.beat(&mut h);
    assert_eq!(response.member_epoch, 1);
    assert_eq!(response.assignment, Some(partitions(&[("a", &[0, 1, 2])])));
    assert_eq!(h.member("m1").state, MemberState::UnrevokedPartitions);
    // m2 still gets nothing: m1 has not confirmed the revocation.
    assert_eq!(m2.beat(&mut h).assignment, None);
    assert!(m2.owned.is_empty());
    // m1 confirms (it no longer reports them) and moves to epoch 2.
    let response = m1.beat(&mut h);
    assert_eq!(response.member_epoch, 2);
    assert_eq!(h.member("m1").state, MemberState::Stable);
    let response = m2.beat(&mut h);
    assert_eq!(response.assignment, Some(partitions(&[("a", &[3, 4, 5])])));
    assert_eq!(h.group.state(), ConsumerGroupState::Stable);
    assert_disjoint(&[m1, m2]);
    h.assert_replay_matches();
}

#[test]
fn three_members_never_own_a_partition_twice() {
    let mut h = Harness::new();
    let mut clients = vec![Client::new("m1", &["a", "b"])];
    settle(&mut h, &mut clients);
    clients.push(Client::new("m2", &["a", "b"]));
    clients.push(Client::new("m3", &["a", "b"]));
    for round in 0..10 {
        // Beat in a rotating order, checking after every response.
        for i in 0..clients.len() {
            let index = (i + round) % clients.len();
            clients[index].beat(&mut h);
            assert_disjoint(&clients);
        }
    }
    assert_eq!(h.group.state(), ConsumerGroupState::Stable);
    let counts: Vec<usize> = clients
        .iter()
        .map(|c| member::partition_count(&c.owned))
        .collect();
    assert_eq!(counts, [3, 3, 3]);
    h.assert_replay_matches();
}

#[test]
fn a_silent_member_expires_after_the_session_timeout() {
    let mut h = Harness::new();
    let mut clients = [Client::new("m1", &["a"]), Client::new("m2", &["a"])];
    settle(&mut h, &mut clients);
    let deadline = h.group.next_deadline_ms().unwrap();
    assert!(deadline <= h.now_ms + SESSION_MS);
    // m2 goes silent; m1 keeps beating every 5 s.
    for _ in 0..8 {
        h.advance(5_000);
        clients[0].beat(&mut h);
    }
    assert!(h.group.member("m1").is_some());
    h.advance(5_000);
    clients[0].beat(&mut h);
    assert!(h.group.member("m2").is_none());
    assert_eq!(clients[1].beat(&mut h).error_code, 25);
    assert_eq!(clients[1].beat(&mut h).error_code, 0, "m2 rejoins");
    assert_eq!(clients[1].epoch, h.group.group_epoch());
    h.assert_replay_matches();
}

#[test]
fn a_member_that_does_not_revoke_in_time_is_fenced() {
    let mut h = Harness::new();
    let mut m1 = Client::new("m1", &["a"]);
    m1.beat(&mut h);
    let all = m1.owned.clone();
    let mut m2 = Client::new("m2", &["a"]);
    m2.beat(&mut h);
    m1.beat(&mut h);
    assert_eq!(h.member("m1").state, MemberState::UnrevokedPartitions);
    // m1 keeps claiming everything (a stuck rebalance listener).
    let stuck = HeartbeatRequest {
        topic_partitions: Some(owned_list(&all)),
        ..m1.request()
    };
    for _ in 0..5 {
        h.advance(5_000);
        assert_eq!(h.send(&stuck).error_code, 0);
        m2.beat(&mut h);
        assert!(m2.owned.is_empty());
    }
    h.advance(i64::from(REBALANCE_MS));
    assert!(h.group.member("m1").is_none());
    assert_eq!(h.send(&stuck).error_code, 25);
    m2.beat(&mut h);
    m2.beat(&mut h);
    assert_eq!(m2.owned, all);
    h.assert_replay_matches();
}

#[test]
fn a_topic_that_grows_is_rebalanced_onto_its_new_partitions() {
    let mut h = Harness::new();
    let mut clients = [Client::new("m1", &["a"]), Client::new("m2", &["a"])];
    settle(&mut h, &mut clients);
    let epoch = h.group.group_epoch();
    h.topics.put("a", topic_id("a"), 8);
    settle(&mut h, &mut clients);
    assert_eq!(h.group.group_epoch(), epoch + 1);
    let total: usize = clients
        .iter()
        .map(|c| member::partition_count(&c.owned))
        .sum();
    assert_eq!(total, 8);
    assert_eq!(member::partition_count(&clients[0].owned), 4);
    h.assert_replay_matches();
}

#[test]
fn a_deleted_topic_leaves_the_assignment() {
    let mut h = Harness::new();
    let mut clients = [Client::new("m1", &["a", "b"])];
    settle(&mut h, &mut clients);
    h.topics.remove("b");
    settle(&mut h, &mut clients);
    assert_eq!(clients[0].owned, partitions(&[("a", &[0, 1, 2, 3, 4, 5])]));
    assert!(!h.group.subscription_metadata().contains_key("b"));
}

#[test]
fn changing_the_subscription_revokes_and_reassigns() {
    let mut h = Harness::new();
    let mut clients = [Client::new("m1", &["a"]), Client::new("m2", &["a"])];
    settle(&mut h, &mut clients);
    let epoch = h.group.group_epoch();
    let change = HeartbeatRequest {
        subscribed_topic_names: Some(vec!["b".into()]),
        ..clients[1].request()
    };
    let response = h.send(&change);
    clients[1].absorb(&response);
    assert_eq!(h.group.group_epoch(), epoch + 1);
    clients[1].topics = vec!["b".into()];
    settle(&mut h, &mut clients);
    assert_eq!(clients[0].owned, partitions(&[("a", &[0, 1, 2, 3, 4, 5])]));
    assert_eq!(clients[1].owned, partitions(&[("b", &[0, 1, 2])]));
    h.assert_replay_matches();
}

#[test]
fn a_regex_subscription_follows_new_topics() {
    let mut h = Harness::new();
    let mut c1 = Client::new("m1", &[]);
    c1.regex = Some("b|c.*".into());
    c1.beat(&mut h);
    assert_eq!(c1.owned, partitions(&[("b", &[0, 1, 2])]));
    let epoch = h.group.group_epoch();
    h.topics.put("c1", topic_id("c1"), 2);
    h.topics.put("xc", topic_id("xc"), 2);
    // Re-resolved at most every 10 s after the metadata changed.
    c1.beat(&mut h);
    assert_eq!(h.group.group_epoch(), epoch);
    h.advance(REGEX_REFRESH_INTERVAL_MS);
    let mut clients = [c1];
    settle(&mut h, &mut clients);
    assert_eq!(h.group.group_epoch(), epoch + 1);
    assert_eq!(
        clients[0].owned,
        partitions(&[("b", &[0, 1, 2]), ("c1", &[0, 1])])
    );
    // Dropping the regex tombstones its resolution.
    let names = HeartbeatRequest {
        subscribed_topic_names: Some(vec!["a".into()]),
        subscribed_topic_regex: Some(String::new()),
        ..clients[0].request()
    };
    let response = h.send(&names);
    clients[0].absorb(&response);
    assert!(h.log.iter().any(|r| matches!(
        r,
        ConsumerGroupRecord::RegularExpression { value: None, .. }
    )));
    clients[0].regex = None;
    clients[0].topics = vec!["a".into()];
    settle(&mut h, &mut clients);
    assert_eq!(clients[0].owned, partitions(&[("a", &[0, 1, 2, 3, 4, 5])]));
    h.assert_replay_matches();
}

#[test]
fn describe_reports_members_and_assignments() {
    let mut h = Harness::new();
    let mut clients = [Client::new("m1", &["a"]), Client::new("m2", &["a"])];
    clients[1].regex = Some("b".into());
    clients[1].assignor = Some("range".into());
    clients[0].beat(&mut h);
    clients[1].beat(&mut h);
    let described = h.group.describe(&h.topics);
    assert_eq!(described.group_id, "g1");
    assert_eq!(described.group_state, "Reconciling");
    assert_eq!(described.assignor_name, "range");
    assert_eq!(described.group_epoch, 2);
    assert_eq!(described.assignment_epoch, 2);
    let m2 = &described.members[1];
    assert_eq!(m2.member_id, "m2");
    assert_eq!(m2.subscribed_topic_regex.as_deref(), Some("b"));
    assert_eq!(m2.client_id, "client-m2");
    assert_eq!(m2.member_type, 1);
    assert!(m2.target_assignment.iter().any(|t| t.topic_name == "b"));
    settle(&mut h, &mut clients);
    assert_eq!(h.group.describe(&h.topics).group_state, "Stable");
}
