//! Tests of the image: fencing and leaders, replay's refusals, partition
//! epochs, and the `Catalog` view.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::errors::ReplayError;
use super::image::MetadataImage;
use super::records::{MetadataRecord, PartitionChangeRecord, PartitionRecord};
use super::test_fixtures::{Cluster, CLUSTER_ID, SESSION_TIMEOUT_MS};

#[test]
fn fencing_makes_leaders_unavailable_and_unfencing_restores_them() {
    let mut cluster = Cluster::with_brokers(&[1, 2]);
    let topic_id = cluster.create_topic("orders", 4);
    let leaders = |image: &MetadataImage| -> Vec<Option<i32>> {
        (0..4)
            .map(|partition| image.partition_leader(&topic_id, partition))
            .collect()
    };
    let before = leaders(&cluster.image);
    assert!(before.iter().all(Option::is_some));
    cluster.heartbeats_ms.insert(2, cluster.now_ms + 5_000);
    cluster.now_ms += SESSION_TIMEOUT_MS + 1;
    let fenced = cluster.controller().expire_sessions(
        cluster.now_ms,
        SESSION_TIMEOUT_MS,
        &cluster.heartbeats_ms,
    );
    let epoch = cluster.image.broker(1).expect("registered").broker_epoch();
    assert_eq!(
        fenced[0],
        MetadataRecord::BrokerFenced {
            broker_id: 1,
            broker_epoch: epoch
        }
    );
    // One election per partition broker 1 led (one replica each: no leader).
    let elections = before.iter().filter(|leader| **leader == Some(1)).count();
    assert_eq!(fenced.len(), 1 + elections);
    cluster.commit(fenced);
    assert_eq!(cluster.image.live_broker_ids(), vec![2]);
    let during = leaders(&cluster.image);
    for (old, new) in before.iter().zip(&during) {
        assert_eq!(*new, old.filter(|leader| *leader != 1));
    }
    assert!(during.contains(&None), "broker 1 led some partitions");
    cluster.heartbeat(1);
    assert_eq!(leaders(&cluster.image), before);
}

#[test]
fn replay_refuses_records_that_break_invariants_and_changes_nothing() {
    let mut cluster = Cluster::with_brokers(&[1]);
    let topic_id = cluster.create_topic("orders", 1);
    let image = cluster.image.clone();
    let offset = image.last_offset().expect("applied") + 1;
    let unknown = Uuid::from_u128(99);
    let partition = |topic_id: Uuid, partition, leader| {
        MetadataRecord::PartitionCreated(PartitionRecord {
            topic_id: *topic_id.as_bytes(),
            partition,
            replicas: vec![1],
            isr: vec![1],
            leader,
            leader_epoch: 0,
            partition_epoch: 0,
            ..Default::default()
        })
    };
    let cases = [
        (partition(unknown, 0, 1), ReplayError::UnknownTopic(unknown)),
        (
            partition(topic_id, 5, 1),
            ReplayError::PartitionOutOfOrder {
                topic_id,
                partition: 5,
                expected: 1,
            },
        ),
        (
            partition(topic_id, 1, 2),
            ReplayError::InvalidPartition {
                topic_id,
                partition: 1,
                reason: "the leader must be in the ISR",
            },
        ),
        (
            MetadataRecord::TopicCreated {
                name: "orders".into(),
                topic_id: [7; 16],
            },
            ReplayError::DuplicateTopicName("orders".into()),
        ),
        (
            MetadataRecord::BrokerFenced {
                broker_id: 1,
                broker_epoch: -5,
            },
            ReplayError::StaleBrokerEpoch {
                broker_id: 1,
                current: image.broker(1).expect("b").broker_epoch(),
                record: -5,
            },
        ),
        (
            MetadataRecord::BrokerUnfenced {
                broker_id: 8,
                broker_epoch: 1,
            },
            ReplayError::UnknownBroker(8),
        ),
        (
            MetadataRecord::ClusterId {
                cluster_id: "other".into(),
            },
            ReplayError::ClusterIdChanged {
                current: CLUSTER_ID.into(),
                record: "other".into(),
            },
        ),
        (
            MetadataRecord::ProducerIdsAllocated {
                broker_id: 1,
                broker_epoch: 1,
                next_producer_id: 0,
            },
            ReplayError::ProducerIdWentBackwards {
                current: 0,
                record: 0,
            },
        ),
    ];
    let mut replaying = image.clone();
    for (record, expected) in cases {
        assert_eq!(replaying.apply(offset, &record), Err(expected));
        assert_eq!(replaying, image, "a refused record changes nothing");
    }
    let config = MetadataRecord::TopicConfigChanged {
        topic_id: *topic_id.as_bytes(),
        key: "no.such.config".into(),
        value: Some("1".into()),
    };
    assert!(matches!(
        replaying.apply(offset, &config),
        Err(ReplayError::InvalidConfig { .. })
    ));
    let backwards = replaying.apply(
        0,
        &MetadataRecord::ClusterId {
            cluster_id: CLUSTER_ID.into(),
        },
    );
    assert!(matches!(
        backwards,
        Err(ReplayError::OffsetWentBackwards { .. })
    ));
}

#[test]
fn partition_changes_bump_leader_epoch_only_when_the_leader_changes() {
    let mut cluster = Cluster::with_brokers(&[1]);
    let topic_id = cluster.create_topic("orders", 1);
    let change = |leader, isr: Option<Vec<i32>>| {
        vec![MetadataRecord::PartitionChanged(PartitionChangeRecord {
            topic_id: *topic_id.as_bytes(),
            partition: 0,
            leader,
            isr,
            replicas: None,
            ..Default::default()
        })]
    };
    cluster.commit(change(None, Some(vec![1])));
    let state = cluster
        .image
        .partition(&topic_id, 0)
        .expect("exists")
        .clone();
    assert_eq!(
        (state.leader, state.leader_epoch, state.partition_epoch),
        (1, 0, 1)
    );
    cluster.commit(change(Some(-1), Some(vec![])));
    let state = cluster
        .image
        .partition(&topic_id, 0)
        .expect("exists")
        .clone();
    assert_eq!(
        (state.leader, state.leader_epoch, state.partition_epoch),
        (-1, 1, 2)
    );
    assert_eq!(cluster.image.partition_leader(&topic_id, 0), None);
}

#[test]
fn the_catalog_view_has_every_topic_with_its_configs() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3]);
    let topic_id = cluster.create_topic("orders", 12);
    let records = cluster
        .controller()
        .alter_topic_configs("orders", &[("retention.ms".into(), Some("1000".into()))])
        .expect("valid");
    cluster.commit(records);
    let catalog = cluster.image.to_catalog(42, 1);
    assert_eq!(catalog.version, 42);
    assert_eq!(&*catalog.cluster_id, CLUSTER_ID);
    let orders = catalog.topic("orders").expect("exists");
    assert_eq!((orders.topic_id, orders.partition_count), (topic_id, 12));
    assert_eq!(orders.configs.retention_ms, 1000);
    let defaults = BTreeMap::from([("retention.bytes".to_string(), "5000".to_string())]);
    let with_defaults = cluster.image.to_catalog_with(43, 1, &defaults);
    let orders = with_defaults.topic_by_id(&topic_id).expect("exists");
    assert_eq!(
        (orders.configs.retention_ms, orders.configs.retention_bytes),
        (1000, 5000)
    );
}

#[test]
fn the_catalog_view_lists_live_brokers_and_the_leaders_the_image_reports() {
    let mut cluster = Cluster::with_brokers(&[1, 2]);
    let topic_id = cluster.create_topic("orders", 4);
    let catalog = cluster.image.to_catalog(7, 2);
    assert_eq!(catalog.controller_id(), 2);
    let listed: Vec<i32> = catalog.brokers().iter().map(|b| b.node_id).collect();
    assert_eq!(listed, vec![1, 2]);
    for broker in catalog.brokers() {
        let registered = &cluster
            .image
            .broker(broker.node_id)
            .expect("registered")
            .record;
        assert_eq!(
            (&*broker.host, broker.port),
            (registered.host.as_str(), registered.port)
        );
        assert_eq!(broker.rack.as_deref(), registered.rack.as_deref());
    }
    for partition in 0..4 {
        let registration = cluster
            .image
            .partition(&topic_id, partition)
            .expect("exists");
        let assignment = catalog.partition("orders", partition).expect("exists");
        assert_eq!(assignment.replicas, registration.replicas);
        assert_eq!(assignment.isr, registration.isr);
        assert_eq!(assignment.leader_epoch, registration.leader_epoch);
        assert_eq!(
            catalog.partition_leader("orders", partition),
            cluster.image.partition_leader(&topic_id, partition)
        );
    }
    // Broker 1 stops heartbeating and is fenced: it is no longer listed and
    // its partitions have no leader (-1) in the catalog.
    let led_before: Vec<i32> = (0..4)
        .map(|partition| {
            cluster
                .image
                .partition(&topic_id, partition)
                .expect("exists")
                .leader
        })
        .collect();
    cluster.heartbeats_ms.insert(2, cluster.now_ms + 5_000);
    cluster.now_ms += SESSION_TIMEOUT_MS + 1;
    let fenced = cluster.controller().expire_sessions(
        cluster.now_ms,
        SESSION_TIMEOUT_MS,
        &cluster.heartbeats_ms,
    );
    cluster.commit(fenced);
    let catalog = cluster.image.to_catalog(8, 2);
    let listed: Vec<i32> = catalog.brokers().iter().map(|b| b.node_id).collect();
    assert_eq!(listed, vec![2]);
    let mut leaderless = 0;
    for partition in 0..4 {
        let assignment = catalog.partition("orders", partition).expect("exists");
        if led_before[partition as usize] == 1 {
            leaderless += 1;
            assert_eq!(assignment.leader, super::image::NO_LEADER);
            assert_eq!(catalog.partition_leader("orders", partition), None);
        } else {
            assert_eq!(catalog.partition_leader("orders", partition), Some(2));
        }
    }
    assert!(leaderless > 0, "broker 1 led some partitions");
}
