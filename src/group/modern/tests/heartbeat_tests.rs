//! Joining, heartbeating, leaving, validation and static membership.

use super::*;

#[test]
fn first_member_joins_and_gets_every_partition() {
    let mut h = Harness::new();
    let mut c1 = Client::new("m1", &["a", "b"]);
    let response = c1.beat(&mut h);
    assert_eq!(response.error_code, 0);
    assert_eq!(response.member_id.as_deref(), Some("m1"));
    assert_eq!(response.member_epoch, 1);
    assert_eq!(response.heartbeat_interval_ms, 5_000);
    let all = partitions(&[("a", &[0, 1, 2, 3, 4, 5]), ("b", &[0, 1, 2])]);
    assert_eq!(response.assignment, Some(all.clone()));
    assert_eq!(h.group.group_epoch(), 1);
    assert_eq!(h.group.assignment_epoch(), 1);
    assert_eq!(h.group.state(), ConsumerGroupState::Stable);
    let kinds: Vec<&str> = h
        .log
        .iter()
        .map(|r| match r {
            ConsumerGroupRecord::MemberMetadata { .. } => "member",
            ConsumerGroupRecord::SubscriptionMetadata(_) => "subscription",
            ConsumerGroupRecord::GroupEpoch(_) => "epoch",
            ConsumerGroupRecord::TargetAssignmentMember { .. } => "target",
            ConsumerGroupRecord::TargetAssignmentEpoch(_) => "target-epoch",
            ConsumerGroupRecord::CurrentAssignment { .. } => "current",
            ConsumerGroupRecord::RegularExpression { .. } => "regex",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "member",
            "subscription",
            "epoch",
            "target",
            "target-epoch",
            "current"
        ]
    );
    h.assert_replay_matches();
}

#[test]
fn a_quiet_heartbeat_carries_no_assignment_and_writes_nothing() {
    let mut h = Harness::new();
    let mut c1 = Client::new("m1", &["a"]);
    c1.beat(&mut h);
    let written = h.log.len();
    h.advance(5_000);
    let response = c1.beat(&mut h);
    assert_eq!(response.error_code, 0);
    assert_eq!(response.member_epoch, 1);
    assert_eq!(response.assignment, None);
    assert_eq!(h.log.len(), written);
    // A full request (everything resent) gets the assignment again.
    let full = HeartbeatRequest {
        member_epoch: 1,
        ..c1.join_request()
    };
    let full = HeartbeatRequest {
        topic_partitions: Some(owned_list(&c1.owned)),
        ..full
    };
    assert_eq!(h.send(&full).assignment, Some(c1.owned.clone()));
}

#[test]
fn v0_join_without_member_id_gets_one_and_v1_must_send_one() {
    let mut h = Harness::new();
    let request = HeartbeatRequest {
        api_version: 0,
        member_id: String::new(),
        ..Client::new("", &["a"]).join_request()
    };
    let response = h.send(&request);
    assert_eq!(response.error_code, 0);
    assert_eq!(response.member_id.as_deref(), Some("generated-1"));
    assert!(h.group.member("generated-1").is_some());

    let response = h.send(&HeartbeatRequest {
        api_version: 1,
        ..request
    });
    assert_eq!(response.error_code, 42);
    assert_eq!(
        response.error_message.as_deref(),
        Some("MemberId can't be empty.")
    );
}

#[test]
fn invalid_requests_are_refused_like_kafka() {
    let join = Client::new("m1", &["a"]).join_request();
    let cases: Vec<(HeartbeatRequest, i16, &str)> = vec![
        (
            HeartbeatRequest {
                group_id: " ".into(),
                ..join.clone()
            },
            42,
            "GroupId can't be empty.",
        ),
        (
            HeartbeatRequest {
                instance_id: Some(String::new()),
                ..join.clone()
            },
            42,
            "InstanceId can't be empty.",
        ),
        (
            HeartbeatRequest {
                rack_id: Some("\t".into()),
                ..join.clone()
            },
            42,
            "RackId can't be empty.",
        ),
        (
            HeartbeatRequest {
                rebalance_timeout_ms: -1,
                ..join.clone()
            },
            42,
            "RebalanceTimeoutMs must be provided in first request.",
        ),
        (
            HeartbeatRequest {
                topic_partitions: None,
                ..join.clone()
            },
            42,
            "TopicPartitions must be empty when (re-)joining.",
        ),
        (
            HeartbeatRequest {
                topic_partitions: Some(vec![OwnedTopicPartitions::default()]),
                ..join.clone()
            },
            42,
            "TopicPartitions must be empty when (re-)joining.",
        ),
        (
            HeartbeatRequest {
                subscribed_topic_names: None,
                ..join.clone()
            },
            42,
            "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when \
             (re-)joining.",
        ),
        (
            HeartbeatRequest {
                member_epoch: -2,
                ..join.clone()
            },
            42,
            "InstanceId can't be null.",
        ),
        (
            HeartbeatRequest {
                member_epoch: -3,
                ..join.clone()
            },
            42,
            "MemberEpoch is invalid.",
        ),
        (
            HeartbeatRequest {
                server_assignor: Some("sticky".into()),
                ..join.clone()
            },
            112,
            "ServerAssignor sticky is not supported. Supported assignors: uniform, range.",
        ),
        (
            HeartbeatRequest {
                subscribed_topic_regex: Some("a(".into()),
                ..join.clone()
            },
            128,
            "",
        ),
    ];
    for (request, code, message) in cases {
        let mut h = Harness::new();
        let response = h.send(&request);
        assert_eq!(response.error_code, code, "{request:?}");
        if !message.is_empty() {
            assert_eq!(response.error_message.as_deref(), Some(message));
        }
        assert_eq!(response.member_id, None);
        assert!(h.log.is_empty(), "a refused request wrote {:?}", h.log);
        assert!(h.group.is_unborn());
    }
}

#[test]
fn joining_with_empty_subscription_is_a_member_without_partitions() {
    let mut h = Harness::new();
    let mut c1 = Client::new("m1", &[]);
    let response = c1.beat(&mut h);
    assert_eq!(response.error_code, 0);
    assert_eq!(response.assignment, Some(Assignment::new()));
    assert_eq!(h.group.state(), ConsumerGroupState::Stable);
}

#[test]
fn unknown_group_and_unknown_member() {
    let mut h = Harness::new();
    let c1 = Client::new("m1", &["a"]);
    let beat = HeartbeatRequest {
        member_epoch: 1,
        ..c1.request()
    };
    assert_eq!(h.send(&beat).error_code, 69);
    let leave = HeartbeatRequest {
        member_epoch: -1,
        ..c1.request()
    };
    assert_eq!(h.send(&leave).error_code, 69);
    Client::new("m2", &["a"]).beat(&mut h);
    assert_eq!(h.send(&beat).error_code, 25);
    assert_eq!(h.send(&leave).error_code, 25);
}

#[test]
fn member_epoch_is_fenced_unless_current_or_previous_with_owned_subset() {
    let mut h = Harness::new();
    let mut clients = [Client::new("m1", &["a"]), Client::new("m2", &["a"])];
    clients[0].beat(&mut h);
    // The second member moves m1 from epoch 1 to 2 (it keeps a subset).
    settle(&mut h, &mut clients);
    let [c1, _] = clients;
    let m1 = h.member("m1").clone();
    assert_eq!((m1.previous_member_epoch, m1.member_epoch), (1, 2));
    let ahead = HeartbeatRequest {
        member_epoch: m1.member_epoch + 1,
        ..c1.request()
    };
    let response = h.send(&ahead);
    assert_eq!(response.error_code, 110);
    assert!(response
        .error_message
        .unwrap()
        .contains("greater member epoch"));
    // The previous epoch with owned partitions inside the assignment: the
    // response with the bump was lost, accept it.
    let previous = HeartbeatRequest {
        member_epoch: m1.previous_member_epoch,
        topic_partitions: Some(owned_list(&m1.assigned_partitions)),
        ..c1.request()
    };
    let response = h.send(&previous);
    assert_eq!(response.error_code, 0);
    assert_eq!(response.member_epoch, m1.member_epoch);
    // ... but not when it owns something it is no longer assigned.
    let extra = HeartbeatRequest {
        member_epoch: m1.previous_member_epoch,
        topic_partitions: Some(owned_list(&partitions(&[("a", &[0, 1, 2, 3, 4, 5])]))),
        ..c1.request()
    };
    let response = h.send(&extra);
    assert_eq!(response.error_code, 110);
    assert!(response
        .error_message
        .unwrap()
        .contains("smaller member epoch"));
    // Not reporting owned partitions is not a subset either.
    let silent = HeartbeatRequest {
        member_epoch: m1.previous_member_epoch,
        topic_partitions: None,
        ..c1.request()
    };
    assert_eq!(h.send(&silent).error_code, 110);
    h.assert_replay_matches();
}

#[test]
fn a_member_rejoining_with_epoch_zero_gets_its_assignment_back() {
    let mut h = Harness::new();
    let mut c1 = Client::new("m1", &["a"]);
    c1.beat(&mut h);
    let epoch = h.group.group_epoch();
    // KAFKA-19233: a fenced (or confused) member rejoins with its id.
    let response = h.send(&c1.join_request());
    assert_eq!(response.error_code, 0);
    assert_eq!(response.member_epoch, 1);
    assert_eq!(response.assignment, Some(c1.owned.clone()));
    assert_eq!(h.group.group_epoch(), epoch);
}

#[test]
fn leaving_removes_the_member_and_bumps_the_group_epoch() {
    let mut h = Harness::new();
    let mut clients = [Client::new("m1", &["a"]), Client::new("m2", &["a"])];
    settle(&mut h, &mut clients);
    let epoch = h.group.group_epoch();
    let response = clients[0].leave(&mut h);
    assert_eq!(response.error_code, 0);
    assert_eq!(response.member_epoch, -1);
    assert_eq!(response.member_id.as_deref(), Some("m1"));
    assert!(h.group.member("m1").is_none());
    assert_eq!(h.group.group_epoch(), epoch + 1);
    assert_eq!(h.group.state(), ConsumerGroupState::Assigning);
    settle(&mut h, &mut clients[1..]);
    assert_eq!(clients[1].owned, partitions(&[("a", &[0, 1, 2, 3, 4, 5])]));
    clients[1].leave(&mut h);
    assert_eq!(h.group.state(), ConsumerGroupState::Empty);
    assert!(h.group.next_deadline_ms().is_none());
    h.assert_replay_matches();
}

#[test]
fn the_group_refuses_members_beyond_its_max_size() {
    let config = ConsumerGroupConfig {
        group_size_max: 2,
        ..ConsumerGroupConfig::default()
    };
    let mut h = Harness::with_config(config);
    let mut clients = [Client::new("m1", &["a"]), Client::new("m2", &["a"])];
    settle(&mut h, &mut clients);
    let response = h.send(&Client::new("m3", &["a"]).join_request());
    assert_eq!(response.error_code, 81);
    assert_eq!(
        response.error_message.as_deref(),
        Some("The consumer group has reached its maximum capacity of 2 members.")
    );
    // Members already in keep heartbeating and may rejoin.
    assert_eq!(clients[0].beat(&mut h).error_code, 0);
    assert_eq!(h.send(&clients[1].join_request()).error_code, 0);
}

#[test]
fn static_member_leaves_temporarily_and_its_new_incarnation_takes_over() {
    let mut h = Harness::new();
    let mut clients = [
        Client::new("s1-a", &["a"]).with_instance("s1"),
        Client::new("m2", &["a"]),
    ];
    settle(&mut h, &mut clients);
    let owned = clients[0].owned.clone();
    let epoch = h.group.group_epoch();
    // Leave with -2: the member stays, its partitions stay with it.
    let leave = HeartbeatRequest {
        member_epoch: LEAVE_GROUP_STATIC_MEMBER_EPOCH,
        ..clients[0].request()
    };
    let response = h.send(&leave);
    assert_eq!(response.error_code, 0);
    assert_eq!(response.member_epoch, -2);
    assert_eq!(h.member("s1-a").member_epoch, -2);
    assert_eq!(h.group.group_epoch(), epoch);
    for (topic_id, parts) in &owned {
        for partition in parts {
            assert_eq!(h.group.partition_epoch(*topic_id, *partition), -2);
        }
    }
    // Another member id for the same instance: no rebalance, same partitions.
    let mut back = Client::new("s1-b", &["a"]).with_instance("s1");
    let response = back.beat(&mut h);
    assert_eq!(response.error_code, 0);
    assert_eq!(response.assignment, Some(owned));
    assert_eq!(h.group.group_epoch(), epoch);
    assert!(h.group.member("s1-a").is_none());
    // The old incarnation is fenced.
    let old = HeartbeatRequest {
        member_epoch: 1,
        ..clients[0].request()
    };
    assert_eq!(h.send(&old).error_code, 82);
    // A third incarnation while s1-b is active cannot join.
    let response = h.send(
        &Client::new("s1-c", &["a"])
            .with_instance("s1")
            .join_request(),
    );
    assert_eq!(response.error_code, 111);
    let unknown = HeartbeatRequest {
        member_epoch: 1,
        ..Client::new("x", &["a"]).with_instance("s9").request()
    };
    assert_eq!(h.send(&unknown).error_code, 25);
    h.assert_replay_matches();
}

#[test]
fn a_static_member_that_does_not_come_back_expires_with_its_session() {
    let mut h = Harness::new();
    let mut clients = [
        Client::new("s1-a", &["a"]).with_instance("s1"),
        Client::new("m2", &["a"]),
    ];
    settle(&mut h, &mut clients);
    let leave = HeartbeatRequest {
        member_epoch: LEAVE_GROUP_STATIC_MEMBER_EPOCH,
        ..clients[0].request()
    };
    h.send(&leave);
    for _ in 0..10 {
        h.advance(5_000);
        clients[1].beat(&mut h);
    }
    assert!(h.group.member("s1-a").is_none());
    settle(&mut h, &mut clients[1..]);
    assert_eq!(clients[1].owned, partitions(&[("a", &[0, 1, 2, 3, 4, 5])]));
    h.assert_replay_matches();
}

#[test]
fn a_static_member_that_left_rejoins_with_its_own_member_id() {
    let mut h = Harness::new();
    let mut c1 = Client::new("s1-a", &["a"]).with_instance("s1");
    c1.beat(&mut h);
    let leave = HeartbeatRequest {
        member_epoch: LEAVE_GROUP_STATIC_MEMBER_EPOCH,
        ..c1.request()
    };
    h.send(&leave);
    let response = h.send(&c1.join_request());
    assert_eq!(response.error_code, 0);
    assert_eq!(response.member_epoch, 1);
    assert_eq!(
        response.assignment,
        Some(partitions(&[("a", &[0, 1, 2, 3, 4, 5])]))
    );
    h.assert_replay_matches();
}
