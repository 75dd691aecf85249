//! Tests of the controller's partition decisions: AlterPartition's changes
//! and each of its refusals in order, and the elections when brokers are
//! fenced, unregistered, registered again or unfenced (clean, unclean, and
//! the ISR's last member kept, KIP-841).

use uuid::Uuid;

use super::errors::ControllerError;
use super::image::{MetadataImage, PartitionRegistration, NO_LEADER};
use super::partition_control::{AlterPartitionRequest, PartitionState};
use super::records::{MetadataRecord, PartitionChangeRecord};
use super::test_fixtures::{registration, Cluster, SESSION_TIMEOUT_MS};
use crate::protocol::errors::KafkaError;

fn partition(image: &MetadataImage, topic_id: Uuid, index: i32) -> PartitionRegistration {
    image.partition(&topic_id, index).expect("exists").clone()
}

/// (leader, ISR, leader epoch, partition epoch) of a partition.
fn state(image: &MetadataImage, topic_id: Uuid, index: i32) -> (i32, Vec<i32>, i32, i32) {
    let partition = partition(image, topic_id, index);
    (
        partition.leader,
        partition.isr,
        partition.leader_epoch,
        partition.partition_epoch,
    )
}

/// An AlterPartition from the partition's leader with its current epochs.
fn alter(cluster: &Cluster, topic_id: Uuid, index: i32, new_isr: &[i32]) -> AlterPartitionRequest {
    let current = partition(&cluster.image, topic_id, index);
    AlterPartitionRequest {
        broker_id: current.leader,
        broker_epoch: cluster
            .image
            .broker(current.leader)
            .map_or(-1, |broker| broker.broker_epoch()),
        topic_id,
        partition: index,
        leader_epoch: current.leader_epoch,
        partition_epoch: current.partition_epoch,
        new_isr: new_isr.to_vec(),
    }
}

fn set_unclean(cluster: &mut Cluster, name: &str) {
    let records = cluster
        .controller()
        .alter_topic_configs(
            name,
            &[("unclean.leader.election.enable".into(), Some("true".into()))],
        )
        .expect("valid");
    cluster.commit(records);
}

#[test]
fn the_leader_shrinks_and_expands_its_isr_and_each_change_bumps_the_partition_epoch() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3]);
    let topic_id = cluster.create_assigned_topic("orders", &[&[1, 2, 3]]);
    let shrink = alter(&cluster, topic_id, 0, &[1, 3]);
    let altered = cluster
        .controller()
        .alter_partition(&shrink)
        .expect("valid");
    assert_eq!(
        altered.records,
        vec![MetadataRecord::PartitionChanged(PartitionChangeRecord {
            topic_id: *topic_id.as_bytes(),
            partition: 0,
            leader: None,
            isr: Some(vec![1, 3]),
            replicas: None,
            ..Default::default()
        })]
    );
    assert_eq!(
        altered.state,
        PartitionState {
            leader: 1,
            leader_epoch: 0,
            isr: vec![1, 3],
            partition_epoch: 1,
        }
    );
    cluster.commit(altered.records);
    assert_eq!(state(&cluster.image, topic_id, 0), (1, vec![1, 3], 0, 1));

    // The follower caught up: the leader adds it back, from the new epoch.
    let expand = alter(&cluster, topic_id, 0, &[1, 3, 2]);
    let altered = cluster
        .controller()
        .alter_partition(&expand)
        .expect("valid");
    cluster.commit(altered.records);
    assert_eq!(state(&cluster.image, topic_id, 0), (1, vec![1, 3, 2], 0, 2));
    let catalog = cluster.image.to_catalog(1, 1);
    let assignment = catalog.partition("orders", 0).expect("exists");
    assert_eq!(
        (assignment.partition_epoch, assignment.leader_epoch),
        (2, 0)
    );
    assert_eq!(assignment.isr, vec![1, 3, 2]);
}

#[test]
fn an_unchanged_isr_writes_nothing_and_answers_the_current_state() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3]);
    let topic_id = cluster.create_assigned_topic("orders", &[&[2, 1, 3]]);
    let same = alter(&cluster, topic_id, 0, &[3, 2, 1]);
    let altered = cluster.controller().alter_partition(&same).expect("valid");
    assert!(altered.records.is_empty());
    assert_eq!(
        altered.state,
        PartitionState {
            leader: 2,
            leader_epoch: 0,
            isr: vec![2, 1, 3],
            partition_epoch: 0,
        }
    );
}

#[test]
fn alter_partition_refusals_come_in_order_with_the_java_controllers_codes() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3, 4]);
    let topic_id = cluster.create_assigned_topic("orders", &[&[1, 2, 3], &[2, 3, 1]]);
    cluster.fence(4);
    let valid = alter(&cluster, topic_id, 0, &[1, 2]);
    let with = |change: &dyn Fn(&mut AlterPartitionRequest)| {
        let mut request = valid.clone();
        change(&mut request);
        cluster.controller().alter_partition(&request)
    };
    let cases: Vec<(&str, Result<_, ControllerError>, KafkaError)> = vec![
        (
            "unregistered broker",
            with(&|r| r.broker_id = 9),
            KafkaError::StaleBrokerEpoch,
        ),
        (
            "stale epoch (before an unknown topic)",
            with(&|r| {
                r.broker_epoch -= 1;
                r.topic_id = Uuid::from_u128(5);
            }),
            KafkaError::StaleBrokerEpoch,
        ),
        (
            "unknown topic id",
            with(&|r| r.topic_id = Uuid::from_u128(5)),
            KafkaError::UnknownTopicId,
        ),
        (
            "unknown partition",
            with(&|r| r.partition = 2),
            KafkaError::UnknownTopicOrPartition,
        ),
        (
            "negative partition",
            with(&|r| r.partition = -1),
            KafkaError::UnknownTopicOrPartition,
        ),
        (
            "a follower asks (before its epochs are looked at)",
            with(&|r| {
                r.broker_id = 2;
                r.broker_epoch = cluster.image.broker(2).map_or(0, |b| b.broker_epoch());
                r.leader_epoch = 7;
            }),
            KafkaError::NotLeaderOrFollower,
        ),
        (
            "an older leader epoch",
            with(&|r| r.leader_epoch = -1),
            KafkaError::FencedLeaderEpoch,
        ),
        (
            "a newer leader epoch",
            with(&|r| r.leader_epoch = 1),
            KafkaError::FencedLeaderEpoch,
        ),
        (
            "another partition epoch",
            with(&|r| r.partition_epoch = 3),
            KafkaError::InvalidUpdateVersion,
        ),
        (
            "an empty ISR",
            with(&|r| r.new_isr.clear()),
            KafkaError::InvalidRequest,
        ),
        (
            "a member twice",
            with(&|r| r.new_isr = vec![1, 2, 1]),
            KafkaError::InvalidRequest,
        ),
        (
            "without the leader",
            with(&|r| r.new_isr = vec![2, 3]),
            KafkaError::IneligibleReplica,
        ),
        (
            "a broker that is no replica",
            with(&|r| r.new_isr = vec![1, 4]),
            KafkaError::IneligibleReplica,
        ),
    ];
    for (case, result, expected) in cases {
        let error = result.expect_err(case);
        assert_eq!(error.kafka_error(), expected, "{case}: {error}");
    }

    // A fenced replica cannot join the ISR.
    let records = cluster.fence(3);
    assert!(!records.is_empty());
    let rejoin = alter(&cluster, topic_id, 0, &[1, 2, 3]);
    let error = cluster
        .controller()
        .alter_partition(&rejoin)
        .expect_err("fenced");
    assert_eq!(error.kafka_error(), KafkaError::IneligibleReplica);
}

#[test]
fn a_fenced_leader_is_replaced_by_the_next_isr_member_in_assignment_order() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3]);
    let topic_id = cluster.create_assigned_topic("orders", &[&[1, 2, 3], &[2, 3, 1]]);
    let other_id = cluster.create_assigned_topic("other", &[&[2, 3]]);
    let records = cluster.fence(1);
    // The other topic does not involve broker 1: no record for it.
    assert_eq!(records.len(), 3, "{records:?}");
    // Partition 0: broker 2 leads, one leader epoch and partition epoch on.
    assert_eq!(state(&cluster.image, topic_id, 0), (2, vec![2, 3], 1, 1));
    // Partition 1: its follower left the ISR; same leader, same leader epoch.
    assert_eq!(state(&cluster.image, topic_id, 1), (2, vec![2, 3], 0, 1));
    assert_eq!(state(&cluster.image, other_id, 0), (2, vec![2, 3], 0, 0));
    // Metadata lists broker 1 as an offline replica now.
    let catalog = cluster.image.to_catalog(1, 2);
    let assignment = catalog.partition("orders", 0).expect("exists");
    assert_eq!(catalog.offline_replicas(assignment), vec![1]);
    assert_eq!(catalog.partition_leader("orders", 0), Some(2));

    // Broker 1 is back: partitions with a leader keep it; the leader adds
    // broker 1 to the ISR once it has caught up (AlterPartition).
    cluster.heartbeat(1);
    assert_eq!(state(&cluster.image, topic_id, 0), (2, vec![2, 3], 1, 1));
}

#[test]
fn two_brokers_fenced_at_once_are_both_left_out_of_the_election() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3]);
    let topic_id = cluster.create_assigned_topic("orders", &[&[1, 2, 3]]);
    cluster.fence_all(&[1, 2]);
    assert_eq!(state(&cluster.image, topic_id, 0), (3, vec![3], 1, 1));
}

#[test]
fn a_single_replica_keeps_its_isr_and_leads_again_when_unfenced() {
    let mut cluster = Cluster::with_brokers(&[1, 2]);
    let topic_id = cluster.create_assigned_topic("orders", &[&[1], &[2]]);
    cluster.fence(1);
    // KIP-841: the ISR keeps its last member; no leader while it is fenced,
    // which clients see as before (leader -1, LEADER_NOT_AVAILABLE).
    assert_eq!(
        state(&cluster.image, topic_id, 0),
        (NO_LEADER, vec![1], 1, 1)
    );
    assert_eq!(cluster.image.partition_leader(&topic_id, 0), None);
    let catalog = cluster.image.to_catalog(1, 2);
    let assignment = catalog.partition("orders", 0).expect("exists");
    assert_eq!(
        (assignment.leader, assignment.isr.clone()),
        (NO_LEADER, vec![1])
    );
    assert_eq!(catalog.partition_leader("orders", 1), Some(2));

    cluster.heartbeat(1);
    assert_eq!(state(&cluster.image, topic_id, 0), (1, vec![1], 2, 2));
    assert_eq!(cluster.image.partition_leader(&topic_id, 0), Some(1));
    assert_eq!(state(&cluster.image, topic_id, 1), (2, vec![2], 0, 0));
}

#[test]
fn without_unclean_elections_a_partition_waits_for_its_last_isr_member() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3]);
    let topic_id = cluster.create_assigned_topic("clean", &[&[1, 2, 3]]);
    let shrink = alter(&cluster, topic_id, 0, &[1]);
    let altered = cluster
        .controller()
        .alter_partition(&shrink)
        .expect("valid");
    cluster.commit(altered.records);
    cluster.fence(1);
    assert_eq!(
        state(&cluster.image, topic_id, 0),
        (NO_LEADER, vec![1], 1, 2)
    );
    // Another replica returning from a fence cannot lead: it is not in sync.
    cluster.fence(2);
    cluster.heartbeat(2);
    assert_eq!(
        cluster.image.partition(&topic_id, 0).map(|p| p.leader),
        Some(NO_LEADER)
    );
    cluster.heartbeat(1);
    assert_eq!(state(&cluster.image, topic_id, 0), (1, vec![1], 2, 3));
}

#[test]
fn unclean_elections_take_a_live_replica_outside_the_isr_when_the_topic_allows_them() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3]);
    let topic_id = cluster.create_assigned_topic("unclean", &[&[1, 2, 3]]);
    set_unclean(&mut cluster, "unclean");
    let shrink = alter(&cluster, topic_id, 0, &[1]);
    let altered = cluster
        .controller()
        .alter_partition(&shrink)
        .expect("valid");
    cluster.commit(altered.records);
    cluster.fence(1);
    // The ISR becomes the new leader alone: what it lacks is lost.
    assert_eq!(state(&cluster.image, topic_id, 0), (2, vec![2], 1, 2));

    // With every replica away the partition waits; the first one back leads.
    cluster.fence_all(&[2, 3]);
    assert_eq!(
        state(&cluster.image, topic_id, 0),
        (NO_LEADER, vec![2], 2, 3)
    );
    cluster.heartbeat(3);
    assert_eq!(state(&cluster.image, topic_id, 0), (3, vec![3], 3, 4));
}

#[test]
fn an_unregistered_broker_leaves_every_isr() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3]);
    let topic_id = cluster.create_assigned_topic("orders", &[&[3, 1]]);
    let single_id = cluster.create_assigned_topic("single", &[&[3]]);
    let records = cluster
        .controller()
        .unregister_broker(3)
        .expect("registered");
    assert!(matches!(
        records[0],
        MetadataRecord::BrokerUnregistered { broker_id: 3, .. }
    ));
    cluster.commit(records);
    assert_eq!(state(&cluster.image, topic_id, 0), (1, vec![1], 1, 1));
    // Its only replica is gone: the ISR keeps it, no leader.
    assert_eq!(
        state(&cluster.image, single_id, 0),
        (NO_LEADER, vec![3], 1, 1)
    );
    let catalog = cluster.image.to_catalog(1, 1);
    let assignment = catalog.partition("single", 0).expect("exists");
    assert_eq!(catalog.offline_replicas(assignment), vec![3]);
}

#[test]
fn a_new_process_of_a_live_broker_leaves_every_isr_as_for_a_fence() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3]);
    let topic_id = cluster.create_assigned_topic("orders", &[&[1, 2, 3]]);
    let pair_id = cluster.create_assigned_topic("pair", &[&[2, 1]]);
    // Broker 1 stopped uncleanly: its session ran out before the session
    // timer fenced it, and a new process registers.
    cluster.now_ms += SESSION_TIMEOUT_MS + 1;
    let registered = cluster
        .controller()
        .register_broker(
            &registration(1, 5),
            cluster.now_ms,
            SESSION_TIMEOUT_MS,
            &cluster.heartbeats_ms,
        )
        .expect("the old session expired");
    assert!(matches!(
        registered.records[0],
        MetadataRecord::BrokerRegistered(_)
    ));
    assert_eq!(registered.records.len(), 3, "{:?}", registered.records);
    cluster.commit(registered.records);
    assert_eq!(state(&cluster.image, topic_id, 0), (2, vec![2, 3], 1, 1));
    assert_eq!(state(&cluster.image, pair_id, 0), (2, vec![2], 0, 1));
    // Its first heartbeat unfences it; it rejoins ISRs through AlterPartition.
    cluster.heartbeat(1);
    assert_eq!(state(&cluster.image, topic_id, 0), (2, vec![2, 3], 1, 1));
}

#[test]
fn preferred_replicas_take_their_leadership_back_once_in_sync() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3]);
    let topic_id = cluster.create_assigned_topic("orders", &[&[1, 2, 3], &[2, 3, 1]]);
    assert!(cluster.controller().preferred_elections().is_empty());
    cluster.fence(1);
    assert_eq!(state(&cluster.image, topic_id, 0).0, 2, "2 took over");
    // Back, but not yet in the ISR again: nothing moves.
    cluster.heartbeat(1);
    assert!(cluster.controller().preferred_elections().is_empty());
    let rejoin = alter(&cluster, topic_id, 0, &[2, 3, 1]);
    let altered = cluster
        .controller()
        .alter_partition(&rejoin)
        .expect("valid");
    cluster.commit(altered.records);
    let (_, _, epoch_before, _) = state(&cluster.image, topic_id, 0);
    let records = cluster.controller().preferred_elections();
    assert_eq!(
        records.len(),
        1,
        "only partition 0 is off its preferred leader"
    );
    cluster.commit(records);
    let (leader, isr, epoch, _) = state(&cluster.image, topic_id, 0);
    assert_eq!(leader, 1);
    assert_eq!(isr, vec![2, 3, 1], "the ISR is kept");
    assert_eq!(epoch, epoch_before + 1, "a new leader epoch");
    assert_eq!(state(&cluster.image, topic_id, 1).0, 2);
    assert!(cluster.controller().preferred_elections().is_empty());
}
