//! Who is in the cluster and who leads what: every node lists every broker and the same
//! controller in Metadata and DescribeCluster; a topic's partitions are spread over the
//! nodes by Kafka's round robin, the same as seen from every node; a broker-only node (not
//! a voter) joins, is listed by every node, and leads partitions created after it joined,
//! both of a new topic and of an older topic grown with CreatePartitions.

use std::collections::{BTreeMap, BTreeSet};

use rdkafka::admin::{AdminOptions, NewPartitions};

use crate::common::cluster_view::{describe_cluster, expected_brokers, wait_for_full_view};
use crate::common::{admin, produce_simple, try_create_topic, ADMIN_TIMEOUT};
use crate::{
    agreed_controller, assert_round_robin, leader_counts, leaders_agreed_by, read_positions,
    serial, three_voters, MEMBERSHIP_TIMEOUT,
};

/// The id given to the broker-only node; voters have 0, 1 and 2.
const BROKER_ONLY: i32 = 3;

#[test]
fn every_node_lists_all_three_brokers_and_the_same_controller() {
    let _serial = serial();
    let cluster = three_voters();
    let node_ids = cluster.node_ids();
    let brokers = expected_brokers(&cluster);
    let controller = agreed_controller(&cluster, &node_ids, "a controller", |id| {
        brokers.contains_key(&id)
    });

    let mut cluster_ids = BTreeSet::new();
    for node_id in &node_ids {
        let view = wait_for_full_view(&cluster, *node_id, MEMBERSHIP_TIMEOUT);
        assert_eq!(
            view.controller_id, controller,
            "node {node_id}'s Metadata controller"
        );

        let described = describe_cluster(&cluster.bootstrap(*node_id))
            .unwrap_or_else(|error| panic!("DescribeCluster through node {node_id}: {error}"));
        let listed: BTreeMap<i32, (String, i32)> = described
            .nodes
            .iter()
            .map(|(id, node)| (*id, (node.host.clone(), i32::from(node.port))))
            .collect();
        let expected: BTreeMap<i32, (String, i32)> = brokers
            .iter()
            .map(|(id, port)| (*id, ("127.0.0.1".to_string(), *port)))
            .collect();
        assert_eq!(listed, expected, "DescribeCluster through node {node_id}");
        assert_eq!(
            described.controller_id, controller,
            "DescribeCluster controller through node {node_id}: {described:?}"
        );
        let cluster_id = described
            .cluster_id
            .unwrap_or_else(|| panic!("DescribeCluster through node {node_id}: no cluster id"));
        assert!(!cluster_id.is_empty(), "node {node_id}: empty cluster id");
        cluster_ids.insert(cluster_id);
    }
    assert_eq!(
        cluster_ids.len(),
        1,
        "every node names the same cluster id: {cluster_ids:?}"
    );
}

#[test]
fn twelve_partitions_created_through_one_node_are_led_four_by_each_node() {
    let _serial = serial();
    let cluster = three_voters();
    let node_ids = cluster.node_ids();
    let controller = agreed_controller(&cluster, &node_ids, "a controller", |id| id >= 0);
    // Bootstrapped at a node that is not the controller: the client finds the controller
    // from that node's Metadata.
    let through = node_ids
        .iter()
        .copied()
        .find(|id| *id != controller)
        .expect("three voters, one controller");
    let topic = "spread-twelve";
    if let Err(code) = try_create_topic(&cluster.bootstrap(through), topic, 12) {
        panic!("CreateTopics {topic} through node {through}: {code:?}");
    }

    let leaders = leaders_agreed_by(&cluster, &node_ids, topic, 12);
    assert_eq!(
        leader_counts(&leaders),
        BTreeMap::from([(0, 4), (1, 4), (2, 4)]),
        "partitions led per node; leaders: {leaders:?}"
    );
    assert_round_robin(&leaders, &node_ids, topic);
}

#[test]
fn broker_only_node_joins_is_listed_by_every_node_and_leads_new_partitions() {
    let _serial = serial();
    let mut cluster = three_voters();
    let voters = cluster.node_ids();
    let grown = "grown-after-join";
    if let Err(code) = try_create_topic(&cluster.bootstrap(0), grown, 3) {
        panic!("CreateTopics {grown}: {code:?}");
    }
    let leaders_before_join = leaders_agreed_by(&cluster, &voters, grown, 3);

    cluster.add_broker_only(BROKER_ONLY);
    assert_eq!(cluster.controller_port(BROKER_ONLY), None, "not a voter");
    let node_ids = cluster.node_ids();
    for node_id in &node_ids {
        wait_for_full_view(&cluster, *node_id, MEMBERSHIP_TIMEOUT);
    }
    agreed_controller(&cluster, &node_ids, "a voter as controller", |id| {
        voters.contains(&id)
    });

    // A topic created after the join is spread over all four brokers, through the new node.
    let fresh = "created-after-join";
    if let Err(code) = try_create_topic(&cluster.bootstrap(BROKER_ONLY), fresh, 8) {
        panic!("CreateTopics {fresh} through node {BROKER_ONLY}: {code:?}");
    }
    let leaders = leaders_agreed_by(&cluster, &node_ids, fresh, 8);
    assert_eq!(
        leader_counts(&leaders),
        BTreeMap::from([(0, 2), (1, 2), (2, 2), (3, 2)]),
        "partitions of {fresh} led per node; leaders: {leaders:?}"
    );
    assert_round_robin(&leaders, &node_ids, fresh);

    // CreatePartitions continues the older topic's round robin from its partition 0's
    // leader over the four live brokers: partitions 3..=6 go to four different brokers.
    let admin = admin(&cluster.bootstrap(1));
    let options = AdminOptions::new()
        .request_timeout(Some(ADMIN_TIMEOUT))
        .operation_timeout(Some(ADMIN_TIMEOUT));
    let results = futures::executor::block_on(
        admin.create_partitions([&NewPartitions::new(grown, 7)], &options),
    )
    .unwrap_or_else(|error| panic!("CreatePartitions {grown}: {error}"));
    assert!(
        matches!(results.as_slice(), [Ok(_)]),
        "CreatePartitions {grown} to 7: {results:?}"
    );
    let leaders = leaders_agreed_by(&cluster, &node_ids, grown, 7);
    for (partition, leader) in &leaders_before_join {
        assert_eq!(leaders[partition], *leader, "{grown}/{partition} moved");
    }
    let start = node_ids
        .iter()
        .position(|id| *id == leaders[&0])
        .expect("partition 0 led by a node");
    for partition in 3..7 {
        let expected = node_ids[(start + partition as usize) % node_ids.len()];
        assert_eq!(
            leaders[&partition], expected,
            "{grown}/{partition}: Kafka's CreatePartitions continues the round robin from \
             partition 0's leader; all leaders: {leaders:?}"
        );
    }

    // The new node serves the partitions it leads: written through a voter, read through
    // the new node.
    let fresh_leaders = leaders_agreed_by(&cluster, &node_ids, fresh, 8);
    let mut expected = BTreeMap::new();
    for partition in 0..8 {
        let offsets = produce_simple(&cluster.bootstrap(0), fresh, partition, 5);
        for (id, offset) in offsets.into_iter().enumerate() {
            let record = (Some(format!("key-{id}")), format!("value-{id}"));
            expected.insert((partition, offset), record);
        }
    }
    let read = read_positions(&cluster.bootstrap(BROKER_ONLY), fresh, 8, 40, &[]);
    assert_eq!(
        read, expected,
        "{fresh} read through node {BROKER_ONLY} (leaders {fresh_leaders:?})"
    );
}
