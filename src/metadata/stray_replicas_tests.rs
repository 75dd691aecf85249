//! Which local logs are stray, as Kafka's `LogManagerTest.testIsStrayKraftReplica*`
//! checks them, plus the names of partition and stray directories.

use std::collections::HashMap;
use std::sync::Arc;

use uuid::Uuid;

use super::*;
use crate::metadata::catalog::test_fixtures::{broker, topic};
use crate::metadata::catalog::{Catalog, PartitionAssignment, TopicMetadata};

const ME: i32 = 1;

fn replicas(replicas: &[i32]) -> PartitionAssignment {
    PartitionAssignment {
        replicas: replicas.to_vec(),
        isr: replicas.to_vec(),
        leader: replicas[0],
        leader_epoch: 0,
        partition_epoch: 0,
        adding_replicas: Vec::new(),
        removing_replicas: Vec::new(),
    }
}

fn image(topics: Vec<(TopicMetadata, Vec<PartitionAssignment>)>) -> Catalog {
    Catalog::new(
        Arc::from("cluster"),
        0,
        vec![broker(0), broker(1), broker(2)],
        topics,
    )
}

/// Local logs: `partitions` directories, `manifests` recording (topic, id).
fn local(partitions: &[(&str, i32)], manifests: &[(&str, Uuid)]) -> LocalLogs {
    let mut topic_ids: HashMap<Arc<str>, Vec<Uuid>> = HashMap::new();
    for (name, topic_id) in manifests {
        topic_ids
            .entry(Arc::from(*name))
            .or_default()
            .push(*topic_id);
    }
    LocalLogs {
        partitions: partitions
            .iter()
            .map(|(name, partition)| (Arc::from(*name), *partition))
            .collect(),
        topic_ids,
        stray_dirs: Vec::new(),
    }
}

fn reasons(strays: &[StrayReplica]) -> Vec<(&str, i32, &StrayReason)> {
    strays
        .iter()
        .map(|stray| (&*stray.topic, stray.partition, &stray.reason))
        .collect()
}

#[test]
fn replicas_the_image_assigns_here_are_kept() {
    let orders = topic("orders", 2);
    let id = orders.topic_id;
    let image = image(vec![(
        orders,
        vec![replicas(&[0, 1, 2]), replicas(&[1, 2, 0])],
    )]);
    let local = local(&[("orders", 0), ("orders", 1)], &[("orders", id)]);
    assert!(find_stray_replicas(ME, &image, &local).is_empty());
}

#[test]
fn every_log_is_stray_against_an_empty_image() {
    // Why the caller must wait for a complete image before asking.
    let id = Uuid::new_v4();
    let local = local(&[("orders", 0), ("orders", 1)], &[("orders", id)]);
    let strays = find_stray_replicas(ME, &image(Vec::new()), &local);
    assert_eq!(strays.len(), 2);
    assert!(strays
        .iter()
        .all(|stray| stray.reason == StrayReason::TopicDeleted { topic_id: id }));
}

#[test]
fn a_deleted_topic_is_stray() {
    let old_id = Uuid::new_v4();
    let other = topic("other", 1);
    let other_id = other.topic_id;
    let image = image(vec![(other, vec![replicas(&[1])])]);
    let local = local(
        &[("gone", 0), ("other", 0)],
        &[("gone", old_id), ("other", other_id)],
    );
    assert_eq!(
        reasons(&find_stray_replicas(ME, &image, &local)),
        vec![("gone", 0, &StrayReason::TopicDeleted { topic_id: old_id })]
    );
}

#[test]
fn a_topic_recreated_under_the_same_name_leaves_its_old_logs_stray() {
    let old_id = Uuid::new_v4();
    let recreated = topic("orders", 1);
    let new_id = recreated.topic_id;
    let image = image(vec![(recreated, vec![replicas(&[0, 1, 2])])]);
    let local = local(&[("orders", 0)], &[("orders", old_id)]);
    assert_eq!(
        reasons(&find_stray_replicas(ME, &image, &local)),
        vec![(
            "orders",
            0,
            &StrayReason::TopicRecreated {
                local_topic_id: old_id,
                topic_id: new_id
            }
        )]
    );
}

#[test]
fn a_partition_reassigned_away_is_stray_and_its_siblings_are_kept() {
    let orders = topic("orders", 2);
    let id = orders.topic_id;
    let image = image(vec![(orders, vec![replicas(&[0, 2]), replicas(&[1, 2])])]);
    let local = local(&[("orders", 0), ("orders", 1)], &[("orders", id)]);
    assert_eq!(
        reasons(&find_stray_replicas(ME, &image, &local)),
        vec![(
            "orders",
            0,
            &StrayReason::NotAReplica {
                replicas: vec![0, 2]
            }
        )]
    );
}

#[test]
fn replicas_a_reassignment_adds_or_removes_are_kept_until_it_completes() {
    let orders = topic("orders", 2);
    let id = orders.topic_id;
    // Partition 0 moves from [0, 2] onto [1, 2]: this node is being added.
    let mut adding = replicas(&[1, 2, 0]);
    adding.adding_replicas = vec![1];
    adding.removing_replicas = vec![0];
    // Partition 1 moves from [1, 2] onto [0, 2]: this node is being removed.
    let mut removing = replicas(&[0, 2, 1]);
    removing.adding_replicas = vec![0];
    removing.removing_replicas = vec![1];
    let image = image(vec![(orders, vec![adding, removing])]);
    let local = local(&[("orders", 0), ("orders", 1)], &[("orders", id)]);
    assert!(find_stray_replicas(ME, &image, &local).is_empty());
}

#[test]
fn a_log_without_a_recorded_topic_id_is_stray_even_if_assigned_here() {
    // Kafka: a log without partition.metadata never had a record appended.
    let orders = topic("orders", 1);
    let image = image(vec![(orders, vec![replicas(&[1])])]);
    let local = local(&[("orders", 0)], &[]);
    assert_eq!(
        reasons(&find_stray_replicas(ME, &image, &local)),
        vec![("orders", 0, &StrayReason::UnknownTopicId)]
    );
}

#[test]
fn a_partition_the_topic_does_not_have_is_stray() {
    let orders = topic("orders", 1);
    let id = orders.topic_id;
    let image = image(vec![(orders, vec![replicas(&[1])])]);
    let local = local(&[("orders", 0), ("orders", 5)], &[("orders", id)]);
    assert_eq!(
        reasons(&find_stray_replicas(ME, &image, &local)),
        vec![("orders", 5, &StrayReason::PartitionMissing { topic_id: id })]
    );
}

#[test]
fn a_left_over_manifest_of_an_older_topic_does_not_make_the_current_one_stray() {
    // Removing the old manifest failed once; the current topic's is there too.
    let orders = topic("orders", 1);
    let id = orders.topic_id;
    let image = image(vec![(orders, vec![replicas(&[1])])]);
    let local = local(
        &[("orders", 0)],
        &[("orders", Uuid::new_v4()), ("orders", id)],
    );
    assert!(find_stray_replicas(ME, &image, &local).is_empty());
}

#[test]
fn partition_directory_names_parse_only_in_their_canonical_form() {
    assert_eq!(parse_partition_dir_name("orders-0"), Some(("orders", 0)));
    assert_eq!(
        parse_partition_dir_name("my-topic-12"),
        Some(("my-topic", 12))
    );
    assert_eq!(
        parse_partition_dir_name("__consumer_offsets-49"),
        Some(("__consumer_offsets", 49))
    );
    assert_eq!(parse_partition_dir_name("orders--1"), Some(("orders-", 1)));
    for not_a_partition in [
        "__manifests",
        "orders",
        "orders-",
        "orders-01",
        "orders-+1",
        "orders-x",
        "-0",
        "lost+found-0",
        "orders-99999999999",
    ] {
        assert_eq!(
            parse_partition_dir_name(not_a_partition),
            None,
            "{not_a_partition}"
        );
    }
}

#[test]
fn stray_directory_names_follow_kafka_and_are_never_partition_directories() {
    let unique_id = Uuid::new_v4();
    let name = stray_dir_name("orders", 3, unique_id);
    assert_eq!(name, format!("orders-3.{}-stray", unique_id.as_simple()));
    assert!(is_stray_dir_name(&name));
    assert_eq!(parse_partition_dir_name(&name), None);
    // A topic whose own name ends in "-stray" is a partition directory.
    assert!(!is_stray_dir_name("orders-stray"));
    assert_eq!(
        parse_partition_dir_name("orders-stray-0"),
        Some(("orders-stray", 0))
    );
    assert!(!is_stray_dir_name("orders-3.nothex-stray"));
}

#[test]
fn a_stray_name_of_the_longest_topic_fits_a_file_name() {
    let topic = "t".repeat(249);
    let name = stray_dir_name(&topic, i32::MAX, Uuid::new_v4());
    assert_eq!(name.len(), 255);
    assert!(is_stray_dir_name(&name));
    assert!(name.ends_with("-stray"));
}

#[test]
fn scanning_a_data_directory_finds_partitions_and_earlier_strays() {
    let data_dir = tempfile::tempdir().expect("temporary directory");
    let earlier = stray_dir_name("old", 0, Uuid::new_v4());
    for dir in [
        "orders-0",
        "orders-1",
        "__cluster_metadata-0",
        "__manifests",
        earlier.as_str(),
    ] {
        std::fs::create_dir(data_dir.path().join(dir)).expect("create directory");
    }
    std::fs::write(data_dir.path().join("meta.properties"), "").expect("write file");
    std::fs::write(data_dir.path().join("file-0"), "").expect("write file");
    let manifest = topic("orders", 2);
    let scanned = LocalLogs::scan(data_dir.path(), std::slice::from_ref(&manifest))
        .expect("scan the data directory");
    assert_eq!(
        scanned.partitions,
        vec![(Arc::from("orders"), 0), (Arc::from("orders"), 1)]
    );
    assert_eq!(scanned.stray_dirs, vec![earlier]);
    assert_eq!(
        scanned.topic_ids.get("orders").map(Vec::as_slice),
        Some(&[manifest.topic_id][..])
    );
}
