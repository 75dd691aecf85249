//! Tests of the controller's decisions: broker membership (duplicate
//! registration, stale epochs), producer-id blocks, topic decisions
//! (replication factors, manual assignments with KRaft's messages) and one
//! case per Kafka error code the controller answers with. AlterPartition and
//! elections are in `partition_control_tests.rs`.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::controller::{Controller, ControllerSettings, PRODUCER_ID_BLOCK_SIZE};
use super::errors::ControllerError;
use super::records::MetadataRecord;
use super::test_fixtures::{registration, topic, Cluster, SESSION_TIMEOUT_MS};
use super::topic_control::CreateTopic;
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
        .create_partitions("orders", 15, None, 11)
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
            controller.create_partitions("missing", 3, None, 0),
            KafkaError::UnknownTopicOrPartition,
        ),
        (
            controller.create_partitions("orders", 1, None, 0),
            KafkaError::InvalidPartitions,
        ),
        (
            controller.create_partitions("orders", 2, None, 0),
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

#[test]
fn replicated_topics_put_every_partition_on_distinct_live_brokers_all_in_sync() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3]);
    let topic_id = cluster.create_replicated_topic("orders", 12, 3);
    let created = cluster.image.topic(&topic_id).expect("exists");
    let mut leaders = BTreeMap::new();
    for partition in &created.partitions {
        let mut sorted = partition.replicas.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, vec![1, 2, 3], "{partition:?}");
        assert_eq!(partition.isr, partition.replicas, "all replicas in sync");
        assert_eq!(
            partition.leader, partition.replicas[0],
            "first replica leads"
        );
        assert_eq!((partition.leader_epoch, partition.partition_epoch), (0, 0));
        *leaders.entry(partition.leader).or_insert(0) += 1;
    }
    assert_eq!(leaders, BTreeMap::from([(1, 4), (2, 4), (3, 4)]));

    // CreatePartitions keeps the topic's replication factor.
    let records = cluster
        .controller()
        .create_partitions("orders", 14, None, 5)
        .expect("grows");
    cluster.commit(records);
    let grown = cluster.image.topic(&topic_id).expect("exists");
    for partition in &grown.partitions[12..] {
        assert_eq!(partition.replicas.len(), 3);
        assert_eq!(partition.isr, partition.replicas);
    }
}

#[test]
fn a_replication_factor_above_the_live_brokers_is_refused_with_kafkas_message() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3]);
    cluster.fence(3);
    let error = cluster
        .controller()
        .create_topic(&topic("orders", 1, 3), Uuid::from_u128(9), 0)
        .expect_err("two live brokers");
    assert_eq!(error.kafka_error(), KafkaError::InvalidReplicationFactor);
    assert_eq!(
        error.to_string(),
        "Unable to replicate the partition 3 time(s): The target replication factor of 3 \
         cannot be reached because only 2 broker(s) are registered."
    );
    let error = cluster
        .controller()
        .create_topic(&topic("orders", 1, -2), Uuid::from_u128(9), 0)
        .expect_err("negative");
    assert_eq!(
        error.to_string(),
        "Replication factor must be larger than 0."
    );
    cluster
        .controller()
        .create_topic(&topic("orders", 1, 2), Uuid::from_u128(9), 0)
        .expect("two replicas fit");
}

#[test]
fn replication_factor_minus_one_is_the_controllers_default() {
    let cluster = Cluster::with_brokers(&[1, 2, 3]);
    let settings = ControllerSettings {
        default_partitions: 2,
        default_replication_factor: 2,
        ..ControllerSettings::default()
    };
    let records = Controller::new(&cluster.image, settings)
        .create_topic(&topic("orders", -1, -1), Uuid::from_u128(9), 0)
        .expect("valid");
    let replicas: Vec<usize> = records
        .iter()
        .filter_map(|record| match record {
            MetadataRecord::PartitionCreated(partition) => Some(partition.replicas.len()),
            _ => None,
        })
        .collect();
    assert_eq!(replicas, vec![2, 2]);
}

#[test]
fn manual_assignments_give_the_live_replicas_as_isr_and_the_first_of_them_as_leader() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3]);
    cluster.fence(2);
    let topic_id = cluster.create_assigned_topic("orders", &[&[2, 3, 1], &[1, 2, 3]]);
    let created = cluster.image.topic(&topic_id).expect("exists");
    let states: Vec<(Vec<i32>, Vec<i32>, i32)> = created
        .partitions
        .iter()
        .map(|p| (p.replicas.clone(), p.isr.clone(), p.leader))
        .collect();
    assert_eq!(
        states,
        vec![
            (vec![2, 3, 1], vec![3, 1], 3),
            (vec![1, 2, 3], vec![1, 3], 1)
        ]
    );

    // CreatePartitions by hand, with the topic's replication factor.
    let records = cluster
        .controller()
        .create_partitions("orders", 3, Some(&[vec![3, 2, 1]]), 0)
        .expect("valid");
    cluster.commit(records);
    let grown = cluster.image.topic(&topic_id).expect("exists");
    assert_eq!(grown.partitions[2].replicas, vec![3, 2, 1]);
    assert_eq!(grown.partitions[2].isr, vec![3, 1]);
}

#[test]
fn manual_assignments_are_refused_as_kraft_refuses_them() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3]);
    cluster.register(4, 0); // registered, never unfenced
    cluster.create_assigned_topic("orders", &[&[1, 2]]);
    let assigned = |assignments: &[(i32, &[i32])]| {
        let mut request = topic("fresh", -1, -1);
        request.assignments = assignments
            .iter()
            .map(|(partition, replicas)| (*partition, replicas.to_vec()))
            .collect();
        request
    };
    let create = |request: CreateTopic| {
        cluster
            .controller()
            .create_topic(&request, Uuid::from_u128(77), 0)
    };
    let with_factor = CreateTopic {
        replication_factor: 2,
        ..assigned(&[(0, &[1, 2])])
    };
    let with_count = CreateTopic {
        num_partitions: 1,
        ..assigned(&[(0, &[1, 2])])
    };
    type Decided = Result<Vec<MetadataRecord>, ControllerError>;
    let cases: Vec<(Decided, KafkaError, &str)> = vec![
        (
            create(with_factor),
            KafkaError::InvalidRequest,
            "A manual partition assignment was specified, but replication factor was not set to -1.",
        ),
        (
            create(with_count),
            KafkaError::InvalidRequest,
            "A manual partition assignment was specified, but numPartitions was not set to -1.",
        ),
        (
            create(assigned(&[(0, &[1]), (0, &[2])])),
            KafkaError::InvalidReplicaAssignment,
            "Found multiple manual partition assignments for partition 0",
        ),
        (
            create(assigned(&[(0, &[1]), (2, &[2])])),
            KafkaError::InvalidReplicaAssignment,
            "partitions should be a consecutive 0-based integer sequence",
        ),
        (
            create(assigned(&[(-1, &[1])])),
            KafkaError::InvalidReplicaAssignment,
            "partitions should be a consecutive 0-based integer sequence",
        ),
        (
            create(assigned(&[(0, &[])])),
            KafkaError::InvalidReplicaAssignment,
            "The manual partition assignment includes an empty replica list.",
        ),
        (
            create(assigned(&[(0, &[1, 9])])),
            KafkaError::InvalidReplicaAssignment,
            "The manual partition assignment includes broker 9, but no such broker is registered.",
        ),
        (
            create(assigned(&[(0, &[2, 1, 2])])),
            KafkaError::InvalidReplicaAssignment,
            "The manual partition assignment includes the broker 2 more than once.",
        ),
        (
            create(assigned(&[(0, &[1, 2]), (1, &[3])])),
            KafkaError::InvalidReplicaAssignment,
            "The manual partition assignment includes a partition with 1 replica(s), but this is \
             not consistent with previous partitions, which have 2 replica(s).",
        ),
        (
            create(assigned(&[(0, &[4])])),
            KafkaError::InvalidReplicaAssignment,
            "All brokers specified in the manual partition assignment for partition 0 are fenced \
             or in controlled shutdown.",
        ),
        (
            cluster
                .controller()
                .create_partitions("orders", 3, Some(&[vec![1, 3]]), 0),
            KafkaError::InvalidReplicaAssignment,
            "Attempted to add 2 additional partition(s), but only 1 assignment(s) were specified.",
        ),
        (
            cluster
                .controller()
                .create_partitions("orders", 2, Some(&[vec![3]]), 0),
            KafkaError::InvalidReplicaAssignment,
            "The manual partition assignment includes a partition with 1 replica(s), but this is \
             not consistent with previous partitions, which have 2 replica(s).",
        ),
    ];
    for (index, (result, code, message)) in cases.into_iter().enumerate() {
        let error = result.expect_err("refused");
        assert_eq!(
            (error.kafka_error(), error.to_string().as_str()),
            (code, message),
            "case {index}"
        );
    }
}

#[test]
fn creations_past_a_brokers_partition_limit_are_a_policy_violation() {
    let mut cluster = Cluster::with_brokers(&[1, 2]);
    let settings = ControllerSettings {
        max_partitions_per_node: 10,
        ..ControllerSettings::default()
    };
    // Replication factor 2: every partition is a replica on both brokers.
    let records = Controller::new(&cluster.image, settings)
        .create_topic(&topic("fits", 8, 2), Uuid::from_u128(21), 0)
        .expect("8 replicas per broker fit");
    cluster.commit(records);

    let error = Controller::new(&cluster.image, settings)
        .create_topic(&topic("too-many", 3, 2), Uuid::from_u128(22), 0)
        .expect_err("8 + 3 > 10");
    assert_eq!(error.kafka_error(), KafkaError::PolicyViolation);
    assert_eq!(
        error.to_string(),
        "Broker 1 holds 8 partition replicas; 3 more would pass its limit of 10 \
         (--max-partitions-per-node)."
    );
    let error = Controller::new(&cluster.image, settings)
        .create_partitions("fits", 11, None, 0)
        .expect_err("11 > 10");
    assert_eq!(error.kafka_error(), KafkaError::PolicyViolation);

    // Exactly at the limit is allowed.
    let records = Controller::new(&cluster.image, settings)
        .create_partitions("fits", 10, None, 0)
        .expect("8 + 2 = 10 fits");
    assert_eq!(records.len(), 2);
}
