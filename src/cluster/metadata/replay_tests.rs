//! Replay equals live: a random sequence of controller operations (with
//! fences, unfences and AlterPartition, so elections too) is decided and
//! applied as a log; replaying the log into a fresh image, and loading the
//! image's snapshot (`to_records`), must both give an equal image.

use proptest::prelude::*;
use uuid::Uuid;

use super::controller::{Controller, ControllerSettings};
use super::image::MetadataImage;
use super::partition_control::AlterPartitionRequest;
use super::records::{MetadataRecord, PartitionChangeRecord};
use super::test_fixtures::{registration, topic, Cluster, SESSION_TIMEOUT_MS};

/// One controller operation of the replay proptest.
#[derive(Debug, Clone)]
enum Operation {
    Register {
        broker_id: i32,
        incarnation: u8,
    },
    Heartbeat {
        broker_id: i32,
        stale: bool,
    },
    Unregister {
        broker_id: i32,
    },
    AdvanceClock {
        ms: i64,
    },
    CreateTopic {
        name: u8,
        partitions: i32,
        replication_factor: i16,
        retention: Option<u8>,
    },
    DeleteTopic {
        name: u8,
    },
    CreatePartitions {
        name: u8,
        count: i32,
    },
    AlterConfig {
        name: u8,
        value: Option<u8>,
    },
    AllocateProducerIds {
        broker_id: i32,
    },
    ChangeLeader {
        name: u8,
        partition: i32,
        leader: Option<i32>,
    },
    /// AlterPartition from the partition's leader: the replicas whose bit
    /// is set in `keep`, with the leader; `stale` sends an old partition epoch.
    AlterIsr {
        name: u8,
        partition: i32,
        keep: u8,
        stale: bool,
    },
}

fn operation() -> impl Strategy<Value = Operation> {
    prop_oneof![
        1 => (0i32..4, 0u8..3).prop_map(|(broker_id, incarnation)| Operation::Register { broker_id, incarnation }),
        4 => (0i32..4, prop::bool::weighted(0.1)).prop_map(|(broker_id, stale)| Operation::Heartbeat { broker_id, stale }),
        1 => (0i32..4).prop_map(|broker_id| Operation::Unregister { broker_id }),
        2 => (0i64..6_000).prop_map(|ms| Operation::AdvanceClock { ms }),
        3 => (0u8..4, -1i32..6, -1i16..3, proptest::option::of(0u8..3)).prop_map(
            |(name, partitions, replication_factor, retention)| Operation::CreateTopic {
                name, partitions, replication_factor, retention,
            }
        ),
        1 => (0u8..4).prop_map(|name| Operation::DeleteTopic { name }),
        2 => (0u8..4, 0i32..9).prop_map(|(name, count)| Operation::CreatePartitions { name, count }),
        2 => (0u8..4, proptest::option::of(0u8..3)).prop_map(|(name, value)| Operation::AlterConfig { name, value }),
        1 => (0i32..4).prop_map(|broker_id| Operation::AllocateProducerIds { broker_id }),
        2 => (0u8..4, 0i32..4, proptest::option::of(-1i32..4)).prop_map(|(name, partition, leader)| {
            Operation::ChangeLeader { name, partition, leader }
        }),
        3 => (0u8..4, 0i32..4, any::<u8>(), prop::bool::weighted(0.1)).prop_map(|(name, partition, keep, stale)| {
            Operation::AlterIsr { name, partition, keep, stale }
        }),
    ]
}

/// The records an operation decides on (empty when refused).
fn decide(cluster: &mut Cluster, operation: &Operation, step: usize) -> Vec<MetadataRecord> {
    let controller = Controller::new(&cluster.image, ControllerSettings::default());
    let epoch = |broker_id| {
        cluster
            .image
            .broker(broker_id)
            .map_or(0, |b| b.broker_epoch())
    };
    let topic_name = |name: &u8| format!("topic-{name}");
    let decided = match operation {
        Operation::Register {
            broker_id,
            incarnation,
        } => controller
            .register_broker(
                &registration(*broker_id, *incarnation),
                cluster.now_ms,
                SESSION_TIMEOUT_MS,
                &cluster.heartbeats_ms,
            )
            .map(|registered| registered.records),
        Operation::Heartbeat { broker_id, stale } => {
            let result = controller.broker_heartbeat(*broker_id, epoch(*broker_id) - *stale as i64);
            if result.is_ok() {
                cluster.heartbeats_ms.insert(*broker_id, cluster.now_ms);
            }
            result
        }
        Operation::Unregister { broker_id } => controller.unregister_broker(*broker_id),
        Operation::AdvanceClock { ms } => {
            cluster.now_ms += ms;
            Ok(controller.expire_sessions(
                cluster.now_ms,
                SESSION_TIMEOUT_MS,
                &cluster.heartbeats_ms,
            ))
        }
        Operation::CreateTopic {
            name,
            partitions,
            replication_factor,
            retention,
        } => {
            let mut request = topic(&topic_name(name), *partitions, *replication_factor);
            if let Some(retention) = retention {
                request
                    .configs
                    .insert("retention.ms".into(), format!("{}", *retention as i64 - 2));
            }
            let topic_id = Uuid::from_u128(step as u128 + 1);
            controller.create_topic(&request, topic_id, step as u64 * 31)
        }
        Operation::DeleteTopic { name } => controller.delete_topic(&topic_name(name)),
        Operation::CreatePartitions { name, count } => {
            controller.create_partitions(&topic_name(name), *count, None, step as u64)
        }
        Operation::AlterConfig { name, value } => {
            let value = value.map(|value| format!("{}", value as i64 * 1000 - 1000));
            controller.alter_topic_configs(&topic_name(name), &[("retention.ms".into(), value)])
        }
        Operation::AllocateProducerIds { broker_id } => controller
            .allocate_producer_ids(*broker_id, epoch(*broker_id))
            .map(|block| block.records),
        Operation::ChangeLeader {
            name,
            partition,
            leader,
        } => {
            // What the replication issue's elections will write: a leader
            // from the replicas (or none), the ISR kept.
            let Some(topic) = cluster.image.topic_by_name(&topic_name(name)) else {
                return Vec::new();
            };
            let Some(state) = topic.partitions.get(*partition as usize) else {
                return Vec::new();
            };
            let leader = leader.map(|leader| match leader {
                -1 => -1,
                index => state.replicas[index as usize % state.replicas.len()],
            });
            Ok(vec![MetadataRecord::PartitionChanged(
                PartitionChangeRecord {
                    topic_id: *topic.topic_id.as_bytes(),
                    partition: *partition,
                    leader,
                    isr: Some(state.replicas.clone()),
                    replicas: None,
                    ..Default::default()
                },
            )])
        }
        Operation::AlterIsr {
            name,
            partition,
            keep,
            stale,
        } => {
            let Some(topic) = cluster.image.topic_by_name(&topic_name(name)) else {
                return Vec::new();
            };
            let Some(state) = topic.partitions.get(*partition as usize) else {
                return Vec::new();
            };
            let new_isr = state
                .replicas
                .iter()
                .enumerate()
                .filter(|(index, replica)| **replica == state.leader || keep & (1 << index) != 0)
                .map(|(_, replica)| *replica)
                .collect();
            let request = AlterPartitionRequest {
                broker_id: state.leader,
                broker_epoch: epoch(state.leader),
                topic_id: topic.topic_id,
                partition: *partition,
                leader_epoch: state.leader_epoch,
                partition_epoch: state.partition_epoch - i32::from(*stale),
                new_isr,
            };
            controller
                .alter_partition(&request)
                .map(|altered| altered.records)
        }
    };
    decided.unwrap_or_default()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn replay_and_snapshot_equal_live(operations in prop::collection::vec(operation(), 1..80)) {
        let mut cluster = Cluster::with_brokers(&[0, 1, 2]);
        for (step, operation) in operations.iter().enumerate() {
            let records = decide(&mut cluster, operation, step);
            cluster.commit(records);
        }
        let mut replayed = MetadataImage::default();
        for (offset, records) in &cluster.log {
            replayed.apply_all(*offset, records).expect("replays");
        }
        prop_assert_eq!(&replayed, &cluster.image);
        let last = cluster.image.last_offset().expect("bootstrapped");
        let snapshot = MetadataImage::from_snapshot(last, &cluster.image.to_records())?;
        prop_assert_eq!(&snapshot, &cluster.image);
        prop_assert_eq!(snapshot.to_records(), cluster.image.to_records());
    }
}
