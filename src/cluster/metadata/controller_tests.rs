//! Tests of the controller's decisions: broker membership (duplicate
//! registration, stale epochs), producer-id blocks, topic decisions and one
//! case per Kafka error code the controller answers with.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::controller::PRODUCER_ID_BLOCK_SIZE;
use super::errors::ControllerError;
use super::records::MetadataRecord;
use super::test_fixtures::{registration, topic, Cluster, SESSION_TIMEOUT_MS};
use crate::protocol::errors::KafkaError;

#[test]
fn a_second_live_process_with_the_same_id_is_refused() {
    let mut cluster = Cluster::with_brokers(&[1]);
    let first_epoch = cluster.image.broker(1).expect("registered").broker_epoch();
    let register = |cluster: &Cluster, incarnation| {
        cluster.controller().register_broker(
            &registration(1, incarnation),
            cluster.now_ms,
            SESSION_TIMEOUT_MS,
            &cluster.heartbeats_ms,
        )
    };
    let error = register(&cluster, 9).expect_err("duplicate");
    assert_eq!(
        error,
        ControllerError::DuplicateBrokerRegistration { broker_id: 1 }
    );
    assert_eq!(error.kafka_error(), KafkaError::DuplicateBrokerRegistration);

    let retry = register(&cluster, 0).expect("same incarnation");
    assert_eq!((retry.broker_epoch, retry.records.len()), (first_epoch, 0));

    // Once the first process's session has expired, a new one takes over.
    cluster.now_ms += SESSION_TIMEOUT_MS + 1;
    let second_epoch = cluster.register(1, 9);
    assert!(second_epoch > first_epoch);
    let broker = cluster.image.broker(1).expect("registered");
    assert!(
        broker.fenced,
        "a new registration waits for its first heartbeat"
    );
    assert_eq!(broker.record.incarnation_id, [9; 16]);
    let stale = cluster.controller().broker_heartbeat(1, first_epoch);
    assert_eq!(
        stale.map_err(|e| e.kafka_error()),
        Err(KafkaError::StaleBrokerEpoch)
    );
    cluster.heartbeat(1);
    assert!(cluster.image.is_live(1));
}

#[test]
fn broker_epochs_increase_across_brokers_and_registrations() {
    let mut cluster = Cluster::new();
    let epochs: Vec<i64> = (0..4).map(|id| cluster.register(id, 0)).collect();
    assert!(
        epochs.windows(2).all(|pair| pair[0] < pair[1]),
        "{epochs:?}"
    );
    assert_eq!(
        cluster.image.live_broker_ids(),
        Vec::<i32>::new(),
        "fenced until heartbeat"
    );
    for id in [3, 1] {
        cluster.heartbeat(id);
    }
    assert_eq!(cluster.image.live_broker_ids(), vec![1, 3]);
    assert_eq!(
        cluster.controller().broker_heartbeat(1, epochs[1]),
        Ok(Vec::new())
    );
}

#[test]
fn producer_id_blocks_are_consecutive() {
    let mut cluster = Cluster::with_brokers(&[1, 2]);
    let mut firsts = Vec::new();
    for broker_id in [1, 2, 1] {
        let epoch = cluster
            .image
            .broker(broker_id)
            .expect("registered")
            .broker_epoch();
        let block = cluster
            .controller()
            .allocate_producer_ids(broker_id, epoch)
            .expect("allocates");
        assert_eq!(block.size, PRODUCER_ID_BLOCK_SIZE);
        firsts.push(block.first_producer_id);
        cluster.commit(block.records);
    }
    assert_eq!(firsts, vec![0, 1000, 2000]);
    assert_eq!(cluster.image.next_producer_id(), 3000);
}

#[test]
fn create_topic_assigns_partitions_with_epoch_zero_and_configs() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3]);
    let mut request = topic("orders", 12, 1);
    request
        .configs
        .insert("retention.ms".into(), "60000".into());
    let topic_id = Uuid::from_u128(5);
    let records = cluster
        .controller()
        .create_topic(&request, topic_id, 3)
        .expect("valid");
    assert!(matches!(records[0], MetadataRecord::TopicCreated { .. }));
    cluster.commit(records);
    let created = cluster.image.topic_by_name("orders").expect("exists");
    assert_eq!(
        created.configs.get("retention.ms").map(String::as_str),
        Some("60000")
    );
    let mut leaders = BTreeMap::new();
    for partition in &created.partitions {
        assert_eq!(partition.replicas.len(), 1);
        assert_eq!(partition.isr, partition.replicas);
        assert_eq!((partition.leader_epoch, partition.partition_epoch), (0, 0));
        *leaders.entry(partition.leader).or_insert(0) += 1;
    }
    assert_eq!(leaders, BTreeMap::from([(1, 4), (2, 4), (3, 4)]));

    let records = cluster
        .controller()
        .create_partitions("orders", 15, 11)
        .expect("grows");
    assert_eq!(records.len(), 3);
    cluster.commit(records);
    let grown = cluster.image.topic(&topic_id).expect("exists");
    let new_leaders: Vec<i32> = grown.partitions[12..].iter().map(|p| p.leader).collect();
    let mut sorted = new_leaders.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        vec![1, 2, 3],
        "the spread continues: {new_leaders:?}"
    );

    cluster.commit(cluster.controller().delete_topic("orders").expect("exists"));
    assert!(cluster.image.topic_by_name("orders").is_none());
    assert!(cluster.image.topic(&topic_id).is_none());
}

#[test]
fn replacing_configs_writes_only_the_differences() {
    let mut cluster = Cluster::with_brokers(&[1]);
    let mut request = topic("orders", 1, -1);
    request.configs.insert("retention.ms".into(), "1000".into());
    request
        .configs
        .insert("segment.bytes".into(), "4096".into());
    let records = cluster
        .controller()
        .create_topic(&request, Uuid::from_u128(1), 0)
        .expect("valid");
    cluster.commit(records);
    let next = BTreeMap::from([
        ("retention.ms".to_string(), "1000".to_string()),
        ("retention.bytes".to_string(), "10".to_string()),
    ]);
    let records = cluster
        .controller()
        .replace_topic_configs("orders", &next)
        .expect("valid");
    assert_eq!(
        records.len(),
        2,
        "segment.bytes removed, retention.bytes set: {records:?}"
    );
    cluster.commit(records);
    assert_eq!(
        cluster
            .image
            .topic_by_name("orders")
            .expect("exists")
            .configs,
        next
    );
}

#[test]
fn every_refusal_has_its_kafka_error_code() {
    let mut cluster = Cluster::with_brokers(&[1]);
    let topic_id = cluster.create_topic("orders", 2);
    let controller = cluster.controller();
    let id = Uuid::from_u128(77);
    let create = |request| controller.create_topic(&request, id, 0);
    let with_config = |key: &str, value: &str| {
        let mut request = topic("fresh", 1, 1);
        request.configs.insert(key.into(), value.into());
        create(request)
    };
    let cases: Vec<(Result<Vec<MetadataRecord>, ControllerError>, KafkaError)> = vec![
        (
            create(topic("orders", 1, 1)),
            KafkaError::TopicAlreadyExists,
        ),
        (
            create(topic("bad name", 1, 1)),
            KafkaError::InvalidTopicException,
        ),
        (create(topic("fresh", 0, 1)), KafkaError::InvalidPartitions),
        (create(topic("fresh", -2, 1)), KafkaError::InvalidPartitions),
        (
            create(topic("fresh", 10_001, 1)),
            KafkaError::InvalidPartitions,
        ),
        (
            create(topic("fresh", 1, 0)),
            KafkaError::InvalidReplicationFactor,
        ),
        (
            create(topic("fresh", 1, 2)),
            KafkaError::InvalidReplicationFactor,
        ),
        (
            with_config("no.such.config", "1"),
            KafkaError::InvalidConfig,
        ),
        (
            with_config("retention.ms", "soon"),
            KafkaError::InvalidConfig,
        ),
        (
            with_config("cleanup.policy", "compact"),
            KafkaError::InvalidConfig,
        ),
        (
            controller.create_topic(&topic("fresh", 1, 1), topic_id, 0),
            KafkaError::UnknownServerError,
        ),
        (
            controller.delete_topic("missing"),
            KafkaError::UnknownTopicOrPartition,
        ),
        (
            controller.delete_topic_by_id(id),
            KafkaError::UnknownTopicId,
        ),
        (
            controller.create_partitions("missing", 3, 0),
            KafkaError::UnknownTopicOrPartition,
        ),
        (
            controller.create_partitions("orders", 1, 0),
            KafkaError::InvalidPartitions,
        ),
        (
            controller.create_partitions("orders", 2, 0),
            KafkaError::InvalidPartitions,
        ),
        (
            controller.alter_topic_configs("orders", &[("segment.bytes".into(), Some("1".into()))]),
            KafkaError::InvalidConfig,
        ),
        (
            controller.alter_topic_configs("missing", &[]),
            KafkaError::UnknownTopicOrPartition,
        ),
        (
            controller.broker_heartbeat(5, 1),
            KafkaError::BrokerIdNotRegistered,
        ),
        (
            controller.broker_heartbeat(1, -1),
            KafkaError::StaleBrokerEpoch,
        ),
        (
            controller.unregister_broker(5),
            KafkaError::BrokerIdNotRegistered,
        ),
        (
            controller.allocate_producer_ids(1, -1).map(|b| b.records),
            KafkaError::StaleBrokerEpoch,
        ),
    ];
    for (index, (result, expected)) in cases.into_iter().enumerate() {
        let error = result.expect_err("refused");
        assert_eq!(error.kafka_error(), expected, "case {index}: {error}");
    }
    let mut other_cluster = registration(2, 0);
    other_cluster.cluster_id = "other".into();
    let error = controller
        .register_broker(
            &other_cluster,
            cluster.now_ms,
            SESSION_TIMEOUT_MS,
            &cluster.heartbeats_ms,
        )
        .expect_err("another cluster");
    assert_eq!(error.kafka_error(), KafkaError::InconsistentClusterId);

    // With every broker fenced there is nowhere to put a partition.
    let mut fenced = Cluster::new();
    fenced.register(1, 0);
    let error = fenced
        .controller()
        .create_topic(&topic("t", 1, 1), id, 0)
        .expect_err("no brokers");
    assert_eq!(error.kafka_error(), KafkaError::InvalidReplicationFactor);
}
