//! Tests of ElectLeaders' decisions: preferred and unclean elections, each
//! refusal, and the "every partition" form leaving out partitions that
//! already have their leader.

use uuid::Uuid;

use super::leader_elections::{ElectionRefusal, ElectionType, PartitionElection, TopicElections};
use super::test_fixtures::Cluster;
use crate::protocol::errors::KafkaError;

/// (leader, ISR) of a partition.
fn leader_and_isr(cluster: &Cluster, topic_id: Uuid, index: i32) -> (i32, Vec<i32>) {
    let partition = cluster.image.partition(&topic_id, index).expect("exists");
    (partition.leader, partition.isr.clone())
}

fn asked(topic: &str, partitions: &[i32]) -> Vec<(String, Vec<i32>)> {
    vec![(topic.to_string(), partitions.to_vec())]
}

#[test]
fn a_preferred_election_moves_leadership_back_to_the_first_replica_once_it_returns() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3]);
    let topic_id = cluster.create_assigned_topic("orders", &[&[1, 2, 3], &[2, 3, 1]]);
    cluster.fence(1);
    cluster.heartbeat(1);
    // Broker 1 is back but out of the ISR: it cannot lead yet.
    assert_eq!(leader_and_isr(&cluster, topic_id, 0), (2, vec![2, 3]));
    let refused = cluster
        .controller()
        .elect_leaders(ElectionType::Preferred, Some(&asked("orders", &[0, 1])));
    assert!(refused.records.is_empty());
    assert_eq!(
        refused.topics,
        vec![TopicElections {
            topic: "orders".into(),
            partitions: vec![
                PartitionElection {
                    partition: 0,
                    result: Err(ElectionRefusal::PreferredLeaderNotAvailable),
                },
                PartitionElection {
                    partition: 1,
                    result: Err(ElectionRefusal::NotNeeded),
                },
            ],
        }]
    );

    // Its leader takes it back into the ISR; now the election moves it.
    let mut isr_back = cluster
        .image
        .partition(&topic_id, 0)
        .expect("exists")
        .clone();
    isr_back.isr = vec![2, 3, 1];
    let request = super::partition_control::AlterPartitionRequest {
        broker_id: 2,
        broker_epoch: cluster.image.broker(2).expect("registered").broker_epoch(),
        topic_id,
        partition: 0,
        leader_epoch: isr_back.leader_epoch,
        partition_epoch: isr_back.partition_epoch,
        new_isr: isr_back.isr,
    };
    let altered = cluster
        .controller()
        .alter_partition(&request)
        .expect("valid");
    cluster.commit(altered.records);
    let elected = cluster
        .controller()
        .elect_leaders(ElectionType::Preferred, Some(&asked("orders", &[0])));
    assert_eq!(elected.topics[0].partitions[0].result, Ok(()));
    let epoch_before = cluster
        .image
        .partition(&topic_id, 0)
        .expect("exists")
        .leader_epoch;
    cluster.commit(elected.records);
    let after = cluster.image.partition(&topic_id, 0).expect("exists");
    assert_eq!((after.leader, after.leader_epoch), (1, epoch_before + 1));
}

#[test]
fn electing_every_partition_leaves_out_those_that_already_have_their_leader() {
    let mut cluster = Cluster::with_brokers(&[1, 2]);
    cluster.create_assigned_topic("orders", &[&[1, 2], &[2, 1]]);
    let elected = cluster
        .controller()
        .elect_leaders(ElectionType::Preferred, None);
    assert!(elected.records.is_empty());
    assert_eq!(
        elected.topics,
        vec![TopicElections {
            topic: "orders".into(),
            partitions: vec![],
        }]
    );
}

#[test]
fn unknown_topics_and_partitions_are_answered_unknown_topic_or_partition() {
    let mut cluster = Cluster::with_brokers(&[1]);
    cluster.create_assigned_topic("orders", &[&[1]]);
    let mut partitions = asked("orders", &[0, 5, -1]);
    partitions.extend(asked("missing", &[0]));
    let elected = cluster
        .controller()
        .elect_leaders(ElectionType::Preferred, Some(&partitions));
    let results: Vec<_> = elected
        .topics
        .iter()
        .flat_map(|topic| topic.partitions.iter())
        .map(|answer| {
            answer
                .result
                .clone()
                .map_err(|refusal| refusal.kafka_error())
        })
        .collect();
    assert_eq!(
        results,
        vec![
            Err(KafkaError::ElectionNotNeeded),
            Err(KafkaError::UnknownTopicOrPartition),
            Err(KafkaError::UnknownTopicOrPartition),
            Err(KafkaError::UnknownTopicOrPartition),
        ]
    );
    assert_eq!(
        elected.topics[1].partitions[0].result,
        Err(ElectionRefusal::UnknownTopic("missing".into()))
    );
}

#[test]
fn an_unclean_election_gives_a_leaderless_partition_any_live_replica() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3]);
    let topic_id = cluster.create_assigned_topic("orders", &[&[1, 2, 3]]);
    // The ISR shrinks to broker 1 alone, then broker 1 dies.
    let current = cluster
        .image
        .partition(&topic_id, 0)
        .expect("exists")
        .clone();
    let request = super::partition_control::AlterPartitionRequest {
        broker_id: 1,
        broker_epoch: cluster.image.broker(1).expect("registered").broker_epoch(),
        topic_id,
        partition: 0,
        leader_epoch: current.leader_epoch,
        partition_epoch: current.partition_epoch,
        new_isr: vec![1],
    };
    let altered = cluster
        .controller()
        .alter_partition(&request)
        .expect("valid");
    cluster.commit(altered.records);
    cluster.fence(1);
    assert_eq!(leader_and_isr(&cluster, topic_id, 0), (-1, vec![1]));

    // A preferred election cannot help: broker 1 is fenced.
    let preferred = cluster
        .controller()
        .elect_leaders(ElectionType::Preferred, Some(&asked("orders", &[0])));
    assert_eq!(
        preferred.topics[0].partitions[0].result,
        Err(ElectionRefusal::PreferredLeaderNotAvailable)
    );
    // An unclean one takes broker 2, the first live replica, as the ISR.
    let unclean = cluster
        .controller()
        .elect_leaders(ElectionType::Unclean, Some(&asked("orders", &[0])));
    assert_eq!(unclean.topics[0].partitions[0].result, Ok(()));
    cluster.commit(unclean.records);
    assert_eq!(leader_and_isr(&cluster, topic_id, 0), (2, vec![2]));
    // With a leader, another unclean election is not needed.
    let again = cluster
        .controller()
        .elect_leaders(ElectionType::Unclean, Some(&asked("orders", &[0])));
    assert_eq!(
        again.topics[0].partitions[0].result,
        Err(ElectionRefusal::NotNeeded)
    );
}

#[test]
fn an_unclean_election_without_any_live_replica_is_refused() {
    let mut cluster = Cluster::with_brokers(&[1, 2]);
    let topic_id = cluster.create_assigned_topic("orders", &[&[1]]);
    cluster.fence(1);
    assert_eq!(leader_and_isr(&cluster, topic_id, 0), (-1, vec![1]));
    let unclean = cluster
        .controller()
        .elect_leaders(ElectionType::Unclean, Some(&asked("orders", &[0])));
    assert_eq!(
        unclean.topics[0].partitions[0].result,
        Err(ElectionRefusal::EligibleLeadersNotAvailable)
    );
    assert!(unclean.records.is_empty());
}
