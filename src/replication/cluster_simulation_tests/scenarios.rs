//! The two ISR rules the server formerly broke (`isr.rs`),
//! step by step with the real controller and `LeaderView`: what an
//! AlterPartition answer proves, and why a leader must keep counting a
//! joiner until it knows whether its expansion was committed (KIP-841).

use crate::cluster::metadata::AlterPartitionRequest;
use crate::protocol::errors::KafkaError;
use crate::replication::leader_view::{LeaderView, Leadership};

use super::controller::ControllerNode;

const SESSION_TIMEOUT: i64 = 90;

/// The cluster with partition 0 (replicas [1, 2, 3]) led by broker 1 with
/// ISR [1] (it dropped 2 and 3), and broker 1's view of it with `end`
/// records, all committed.
fn leader_alone(end: i64) -> (ControllerNode, Vec<i64>, LeaderView) {
    let (mut controller, broker_epochs) = ControllerNode::new(1, SESSION_TIMEOUT);
    let shrink = alter(&controller, &broker_epochs, 0, &[1]);
    let state = controller.alter_partition(&shrink).expect("shrinks");
    let leadership = Leadership {
        leader_id: 1,
        leader_epoch: state.leader_epoch,
        leader_epoch_start_offset: 0,
        replicas: vec![1, 2, 3],
        isr: state.isr,
        partition_epoch: state.partition_epoch,
    };
    let mut view = LeaderView::new(leadership, 0, 0);
    assert_eq!(view.advance_high_watermark(end), Some(end));
    (controller, broker_epochs, view)
}

/// Broker 1's AlterPartition for partition 0.
fn alter(
    controller: &ControllerNode,
    broker_epochs: &[i64],
    partition_epoch: i32,
    new_isr: &[i32],
) -> AlterPartitionRequest {
    AlterPartitionRequest {
        broker_id: 1,
        broker_epoch: broker_epochs[0],
        topic_id: controller.topic_id,
        partition: 0,
        leader_epoch: 0,
        partition_epoch,
        new_isr: new_isr.to_vec(),
    }
}

/// Sessions run out at `now` for every broker but `alive`.
fn expire_all_but(controller: &mut ControllerNode, broker_epochs: &[i64], alive: &[i32], now: i64) {
    for &broker_id in alive {
        let broker_epoch = broker_epochs[(broker_id - 1) as usize];
        controller
            .heartbeat(broker_id, broker_epoch, now)
            .expect("a live session");
    }
    controller.expire_sessions(now);
}

fn leader_and_isr(controller: &ControllerNode) -> (i32, Vec<i32>) {
    let partition = controller
        .image
        .partition(&controller.topic_id, 0)
        .expect("exists");
    (partition.leader, partition.isr.clone())
}

#[test]
fn a_committed_isr_expansion_whose_answer_is_lost_keeps_counting_the_joiner() {
    let (mut controller, broker_epochs, mut view) = leader_alone(10);
    // Follower 2 catches up; the leader asks for it back, the controller
    // commits, the answer is lost.
    view.follower_fetched(2, 10, 10, 1).expect("a replica");
    assert_eq!(view.isr_to_expand(|_| true), Some(2));
    view.propose_isr(vec![1, 2]);
    let expand = alter(&controller, &broker_epochs, view.partition_epoch, &[1, 2]);
    let committed = controller.alter_partition(&expand).expect("applies");
    assert_eq!(committed.isr, vec![1, 2]);
    // The leader writes 10..15; the pending ISR counts 2, which has 10.
    assert_eq!(view.advance_high_watermark(15), None);
    // The leader is cut off from the controller: fenced, and 2, in the
    // committed ISR, is elected with its 10 records.
    expire_all_but(
        &mut controller,
        &broker_epochs,
        &[2, 3],
        SESSION_TIMEOUT + 1,
    );
    assert_eq!(leader_and_isr(&controller), (2, vec![2]));
    assert_eq!(view.high_watermark, 10, "nothing acknowledged that 2 lacks");
    // What the server formerly did after ISR_CHANGE_PATIENCE_MS
    // (`replicas::forget_stale_isr_change`, now
    // `retry_stale_isr_change`): forget the change. The cut-off
    // leader then acknowledges 10..15 alone, which the new leader lacks.
    view.isr_refused();
    assert_eq!(view.advance_high_watermark(15), Some(15));
}

#[test]
fn only_ineligible_replica_proves_an_isr_expansion_was_not_applied() {
    let (mut controller, broker_epochs, view) = leader_alone(10);
    let expand = alter(&controller, &broker_epochs, view.partition_epoch, &[1, 2]);
    controller
        .alter_partition(&expand)
        .expect("applied; the answer is lost");
    // The same request again (a retry, a copy in flight): refused for its
    // partition epoch, or, once the leader is fenced, as not the leader;
    // the server formerly took the latter as "not applied". It was.
    assert_eq!(
        controller.alter_partition(&expand),
        Err(KafkaError::InvalidUpdateVersion)
    );
    expire_all_but(
        &mut controller,
        &broker_epochs,
        &[2, 3],
        SESSION_TIMEOUT + 1,
    );
    assert_eq!(
        controller.alter_partition(&expand),
        Err(KafkaError::NotLeaderOrFollower)
    );
    assert_eq!(leader_and_isr(&controller), (2, vec![2]));

    // INELIGIBLE_REPLICA comes after the leader and partition epoch checks:
    // the partition is still at the epoch the leader knows, nothing applied.
    let (mut controller, broker_epochs, view) = leader_alone(10);
    expire_all_but(
        &mut controller,
        &broker_epochs,
        &[1, 2],
        SESSION_TIMEOUT + 1,
    );
    let expand = alter(&controller, &broker_epochs, view.partition_epoch, &[1, 3]);
    assert_eq!(
        controller.alter_partition(&expand),
        Err(KafkaError::IneligibleReplica)
    );
    let partition = controller
        .image
        .partition(&controller.topic_id, 0)
        .expect("exists");
    assert_eq!(partition.partition_epoch, view.partition_epoch);
    assert_eq!(partition.isr, vec![1]);
}
