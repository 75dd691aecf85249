//! Tests of AlterPartitionReassignments' decisions and of the AlterPartition
//! that completes a reassignment: replicas added, caught up, the old ones
//! dropped and a removed leader replaced; cancels; and each refusal.

use uuid::Uuid;

use super::image::PartitionRegistration;
use super::partition_control::AlterPartitionRequest;
use super::reassignments::ReassignmentRefusal;
use super::test_fixtures::Cluster;
use crate::protocol::errors::KafkaError;

fn partition(cluster: &Cluster, topic_id: Uuid, index: i32) -> PartitionRegistration {
    cluster
        .image
        .partition(&topic_id, index)
        .expect("exists")
        .clone()
}

/// Reassigns `orders` partition 0 (or cancels with `None`) and commits.
fn reassign(cluster: &mut Cluster, target: Option<&[i32]>) -> Result<(), ReassignmentRefusal> {
    let decided = cluster.controller().alter_partition_reassignments(
        &[("orders".into(), vec![(0, target.map(<[i32]>::to_vec))])],
        true,
    );
    cluster.commit(decided.records);
    decided.topics[0].1[0].1.clone()
}

/// The partition's leader sets its ISR to `isr` and the change commits.
fn leader_sets_isr(cluster: &mut Cluster, topic_id: Uuid, isr: &[i32]) {
    let current = partition(cluster, topic_id, 0);
    let request = AlterPartitionRequest {
        broker_id: current.leader,
        broker_epoch: cluster
            .image
            .broker(current.leader)
            .expect("registered")
            .broker_epoch(),
        topic_id,
        partition: 0,
        leader_epoch: current.leader_epoch,
        partition_epoch: current.partition_epoch,
        new_isr: isr.to_vec(),
    };
    let altered = cluster
        .controller()
        .alter_partition(&request)
        .expect("valid");
    cluster.commit(altered.records);
}

#[test]
fn moving_a_partition_to_new_brokers_adds_them_then_drops_the_old_ones_once_in_sync() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3, 4, 5]);
    let topic_id = cluster.create_assigned_topic("orders", &[&[1, 2, 3]]);
    reassign(&mut cluster, Some(&[4, 5, 3])).expect("accepted");
    let moving = partition(&cluster, topic_id, 0);
    assert_eq!(moving.replicas, vec![4, 5, 3, 1, 2]);
    assert_eq!(
        (
            moving.adding_replicas.clone(),
            moving.removing_replicas.clone()
        ),
        (vec![4, 5], vec![1, 2])
    );
    assert_eq!((moving.leader, moving.isr.clone()), (1, vec![1, 2, 3]));
    let listing = cluster.image.to_catalog(1, 1);
    let assignment = listing.partition("orders", 0).expect("exists");
    assert_eq!(assignment.adding_replicas, vec![4, 5]);

    // Broker 4 catches up: still waiting for 5.
    leader_sets_isr(&mut cluster, topic_id, &[1, 2, 3, 4]);
    assert!(partition(&cluster, topic_id, 0).is_reassigning());
    // Broker 5 too: the reassignment completes in the same change, and
    // leadership leaves broker 1 for the first target replica in sync.
    let epoch_before = partition(&cluster, topic_id, 0).leader_epoch;
    leader_sets_isr(&mut cluster, topic_id, &[1, 2, 3, 4, 5]);
    let done = partition(&cluster, topic_id, 0);
    assert_eq!(done.replicas, vec![4, 5, 3]);
    assert!(!done.is_reassigning());
    assert_eq!((done.leader, done.isr.clone()), (4, vec![3, 4, 5]));
    assert_eq!(done.leader_epoch, epoch_before + 1);
}

#[test]
fn cancelling_goes_back_to_the_original_replicas() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3]);
    let topic_id = cluster.create_assigned_topic("orders", &[&[1, 2]]);
    reassign(&mut cluster, Some(&[3, 2])).expect("accepted");
    leader_sets_isr(&mut cluster, topic_id, &[1, 2]);
    reassign(&mut cluster, None).expect("cancelled");
    let back = partition(&cluster, topic_id, 0);
    assert_eq!(back.replicas, vec![2, 1]);
    assert!(!back.is_reassigning());
    assert_eq!((back.leader, back.isr), (1, vec![1, 2]));
    assert_eq!(
        reassign(&mut cluster, None),
        Err(ReassignmentRefusal::NoReassignmentInProgress)
    );
}

#[test]
fn a_reordering_completes_at_once_and_keeps_the_leader() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3]);
    let topic_id = cluster.create_assigned_topic("orders", &[&[1, 2, 3]]);
    reassign(&mut cluster, Some(&[3, 2, 1])).expect("accepted");
    let reordered = partition(&cluster, topic_id, 0);
    assert_eq!(reordered.replicas, vec![3, 2, 1]);
    assert!(!reordered.is_reassigning());
    assert_eq!(reordered.leader, 1);
}

#[test]
fn invalid_targets_are_refused_with_kafkas_codes() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3]);
    cluster.create_assigned_topic("orders", &[&[1, 2]]);
    let code = |result: Result<(), ReassignmentRefusal>| result.map_err(|r| r.kafka_error());
    assert_eq!(
        code(reassign(&mut cluster, Some(&[]))),
        Err(KafkaError::InvalidReplicaAssignment)
    );
    assert_eq!(
        code(reassign(&mut cluster, Some(&[1, 1]))),
        Err(KafkaError::InvalidReplicaAssignment)
    );
    assert_eq!(
        code(reassign(&mut cluster, Some(&[1, 9]))),
        Err(KafkaError::InvalidReplicaAssignment)
    );
    let decided = cluster.controller().alter_partition_reassignments(
        &[
            ("orders".into(), vec![(7, Some(vec![1, 2]))]),
            ("missing".into(), vec![(0, Some(vec![1, 2]))]),
            ("orders".into(), vec![(0, Some(vec![1, 2, 3]))]),
        ],
        false,
    );
    let codes: Vec<_> = decided
        .topics
        .iter()
        .map(|(_, partitions)| partitions[0].1.clone().map_err(|r| r.kafka_error()))
        .collect();
    assert_eq!(
        codes,
        vec![
            Err(KafkaError::UnknownTopicOrPartition),
            Err(KafkaError::UnknownTopicOrPartition),
            Err(KafkaError::InvalidReplicationFactor),
        ]
    );
    assert!(decided.records.is_empty());
}
