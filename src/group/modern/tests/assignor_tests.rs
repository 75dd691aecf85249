//! The `uniform` and `range` assignors on their own.

use std::collections::{BTreeMap, BTreeSet};

use super::super::assignor::{assign, AssignorName, MemberSpec};
use super::*;

fn spec(member_id: &str, topics: &[&str], previous: &Assignment) -> MemberSpec {
    MemberSpec {
        member_id: member_id.to_string(),
        instance_id: None,
        topic_ids: topics.iter().map(|t| topic_id(t)).collect(),
        previous: previous.clone(),
    }
}

fn counts(result: &BTreeMap<String, Assignment>) -> Vec<usize> {
    result.values().map(member::partition_count).collect()
}

fn assert_complete(result: &BTreeMap<String, Assignment>, topics: &BTreeMap<Uuid, i32>) {
    let mut seen = BTreeSet::new();
    for assignment in result.values() {
        for (topic_id, partitions) in assignment {
            for partition in partitions {
                assert!(seen.insert((*topic_id, *partition)), "assigned twice");
            }
        }
    }
    let expected: usize = topics.values().map(|c| *c as usize).sum();
    assert_eq!(seen.len(), expected);
}

fn topic_counts(entries: &[(&str, i32)]) -> BTreeMap<Uuid, i32> {
    entries.iter().map(|(t, c)| (topic_id(t), *c)).collect()
}

#[test]
fn uniform_balances_equal_subscriptions_within_one() {
    let topics = topic_counts(&[("a", 7), ("b", 4)]);
    let none = Assignment::new();
    let members: Vec<MemberSpec> = (0..3)
        .map(|i| spec(&format!("m{i}"), &["a", "b"], &none))
        .collect();
    let result = assign(AssignorName::Uniform, &members, &topics);
    assert_complete(&result, &topics);
    let mut counts = counts(&result);
    counts.sort();
    assert_eq!(counts, [3, 4, 4]);
    // Deterministic: the same input gives the same output.
    assert_eq!(assign(AssignorName::Uniform, &members, &topics), result);
}

#[test]
fn uniform_is_sticky_when_a_member_joins_or_leaves() {
    let topics = topic_counts(&[("a", 12)]);
    let none = Assignment::new();
    let two = vec![spec("m1", &["a"], &none), spec("m2", &["a"], &none)];
    let first = assign(AssignorName::Uniform, &two, &topics);
    // A third member: each old member gives up exactly two, keeps four.
    let three = vec![
        spec("m1", &["a"], &first["m1"]),
        spec("m2", &["a"], &first["m2"]),
        spec("m3", &["a"], &none),
    ];
    let second = assign(AssignorName::Uniform, &three, &topics);
    assert_complete(&second, &topics);
    assert_eq!(counts(&second), [4, 4, 4]);
    for member in ["m1", "m2"] {
        let kept = &second[member][&topic_id("a")];
        assert!(
            kept.is_subset(&first[member][&topic_id("a")]),
            "{member} moved"
        );
    }
    // m2 leaves: m1 and m3 keep theirs and share m2's.
    let after_leave = vec![
        spec("m1", &["a"], &second["m1"]),
        spec("m3", &["a"], &second["m3"]),
    ];
    let third = assign(AssignorName::Uniform, &after_leave, &topics);
    assert_eq!(counts(&third), [6, 6]);
    for member in ["m1", "m3"] {
        assert!(second[member][&topic_id("a")].is_subset(&third[member][&topic_id("a")]));
    }
}

#[test]
fn uniform_balances_different_subscriptions() {
    // m1 only "a"; m2 and m3 "a" and "b": m1 should not starve.
    let topics = topic_counts(&[("a", 6), ("b", 6)]);
    let none = Assignment::new();
    let members = vec![
        spec("m1", &["a"], &none),
        spec("m2", &["a", "b"], &none),
        spec("m3", &["a", "b"], &none),
    ];
    let result = assign(AssignorName::Uniform, &members, &topics);
    assert_complete(&result, &topics);
    assert_eq!(counts(&result), [4, 4, 4]);
    assert!(result["m1"].keys().all(|t| *t == topic_id("a")));
    // A skewed previous assignment is rebalanced with few moves.
    let skewed = vec![
        spec("m1", &["a"], &partitions(&[("a", &[0, 1, 2, 3, 4, 5])])),
        spec(
            "m2",
            &["a", "b"],
            &partitions(&[("b", &[0, 1, 2, 3, 4, 5])]),
        ),
        spec("m3", &["a", "b"], &none),
    ];
    let result = assign(AssignorName::Uniform, &skewed, &topics);
    assert_complete(&result, &topics);
    assert_eq!(counts(&result), [4, 4, 4]);
}

#[test]
fn uniform_drops_partitions_of_unsubscribed_or_shrunk_topics() {
    let topics = topic_counts(&[("a", 2)]);
    let previous = partitions(&[("a", &[0, 1, 5]), ("b", &[0])]);
    let result = assign(
        AssignorName::Uniform,
        &[spec("m1", &["a"], &previous)],
        &topics,
    );
    assert_eq!(result["m1"], partitions(&[("a", &[0, 1])]));
}

#[test]
fn range_gives_contiguous_ranges_in_member_order() {
    let topics = topic_counts(&[("a", 7), ("b", 2)]);
    let none = Assignment::new();
    let mut members = vec![
        spec("m2", &["a", "b"], &none),
        spec("m1", &["a", "b"], &none),
        spec("m3", &["a"], &none),
    ];
    members[0].instance_id = Some("z".into());
    let result = assign(AssignorName::Range, &members, &topics);
    assert_complete(&result, &topics);
    // Static m2 comes first, then m1, m3 by member id.
    assert_eq!(result["m2"], partitions(&[("a", &[0, 1, 2]), ("b", &[0])]));
    assert_eq!(result["m1"], partitions(&[("a", &[3, 4]), ("b", &[1])]));
    assert_eq!(result["m3"], partitions(&[("a", &[5, 6])]));
}

#[test]
fn the_group_uses_the_assignor_most_members_ask_for() {
    let mut h = Harness::new();
    let mut clients = [Client::new("m1", &["a"]), Client::new("m2", &["a"])];
    clients[0].assignor = Some("range".into());
    settle(&mut h, &mut clients);
    assert_eq!(h.group.preferred_assignor(), AssignorName::Range);
    assert_eq!(clients[0].owned, partitions(&[("a", &[0, 1, 2])]));
    assert_eq!(clients[1].owned, partitions(&[("a", &[3, 4, 5])]));
}
