//! DescribeTopicPartitions (API 75, KIP-966): topics and their partitions,
//! a page at a time, as Kafka 4.4's `DescribeTopicPartitionsRequestHandler`
//! answers it. The Java Admin client (4.x) describes topics with it when
//! the broker offers it. Answered on any shard from its catalog, with the
//! per-partition view Metadata uses (`metadata::partition_views`).
//!
//! Paging: topics are taken in name order from the cursor's topic on (an
//! empty topic list means every topic), the cursor's topic from its
//! partition on, until `response_partition_limit` partitions (at most
//! [`PARTITIONS_PER_RESPONSE_MAX`], at least 1) are in the answer;
//! `next_cursor` then names where the next page starts. corelog has no
//! eligible leader replicas (KIP-966's ELR): those lists are empty.

use std::collections::BTreeSet;
use std::rc::Rc;

use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::metadata::{partition_views, TOPIC_OPERATIONS_ALL};
use super::shard::Shard;
use crate::metadata::catalog::Catalog;
use crate::metadata::topic_name::{is_internal_topic, validate_topic_name};
use crate::protocol::errors::KafkaError;

/// Most partitions in one answer: Kafka's `max.request.partition.size.limit`
/// default, which bounds the response a client can make the broker build.
pub const PARTITIONS_PER_RESPONSE_MAX: i32 = 2000;

pub fn describe_topic_partitions(
    shard: &Rc<Shard>,
    request: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    describe(&shard.catalog(), &request)
}

fn describe(
    catalog: &Catalog,
    request: &DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let fetch_all = request.topics.is_empty();
    let (cursor_topic, cursor_partition) = match &request.cursor {
        Some(cursor) => (cursor.topic_name.0.as_str(), cursor.partition_index),
        None => ("", 0),
    };
    // Sorted and without duplicates, from the cursor's topic on.
    let topics: BTreeSet<&str> = if fetch_all {
        catalog
            .topics()
            .map(|topic| &*topic.name)
            .filter(|name| *name >= cursor_topic)
            .collect()
    } else {
        request
            .topics
            .iter()
            .map(|topic| topic.name.0.as_str())
            .filter(|name| *name >= cursor_topic)
            .collect()
    };
    // Kafka refuses a cursor outside the named topics, or before partition 0.
    let cursor_outside = !fetch_all && request.cursor.is_some() && !topics.contains(cursor_topic);
    if cursor_outside || cursor_partition < 0 {
        return refused(request, KafkaError::InvalidRequest);
    }
    let limit = request
        .response_partition_limit
        .clamp(1, PARTITIONS_PER_RESPONSE_MAX);
    let mut remaining = limit;
    let mut response = DescribeTopicPartitionsResponse::default();
    for name in topics {
        if remaining == 0 {
            // The next page starts at this topic (which may not exist).
            response.next_cursor = Some(cursor(name, 0));
            break;
        }
        let first = if name == cursor_topic {
            cursor_partition
        } else {
            0
        };
        match describe_topic(catalog, name, first, remaining) {
            Some((topic, next_partition)) => {
                let count = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
                response.topics.push(topic);
                if let Some(next_partition) = next_partition {
                    response.next_cursor = Some(cursor(name, next_partition));
                    break;
                }
                remaining -= count;
            }
            // Asked for by name: say why it is not there. Listing every
            // topic skips one deleted meanwhile.
            None if !fetch_all => response.topics.push(missing_topic(name)),
            None => {}
        }
    }
    response
}

/// `name`'s partitions from `first`, at most `room` of them, and the index
/// of the first one left out, if any; `None` if there is no such topic.
fn describe_topic(
    catalog: &Catalog,
    name: &str,
    first: i32,
    room: i32,
) -> Option<(DescribeTopicPartitionsResponseTopic, Option<i32>)> {
    let topic = catalog.topic(name)?;
    let count = i32::try_from(catalog.partitions(name).len()).unwrap_or(i32::MAX);
    let end = count.min(first.saturating_add(room));
    let partitions = partition_views(catalog, name)
        .filter(|(index, _, _)| (first..end).contains(index))
        .map(|(index, assignment, offline)| {
            let brokers = |ids: &[i32]| ids.iter().copied().map(BrokerId).collect::<Vec<_>>();
            DescribeTopicPartitionsResponsePartition::default()
                .with_partition_index(index)
                .with_leader_id(BrokerId(assignment.leader))
                .with_leader_epoch(assignment.leader_epoch)
                .with_replica_nodes(brokers(&assignment.replicas))
                .with_isr_nodes(brokers(&assignment.isr))
                .with_eligible_leader_replicas(Some(Vec::new()))
                .with_last_known_elr(Some(Vec::new()))
                .with_offline_replicas(brokers(&offline))
        })
        .collect();
    let described = DescribeTopicPartitionsResponseTopic::default()
        .with_name(Some(topic_name(name)))
        .with_topic_id(topic.topic_id)
        .with_is_internal(topic.is_internal())
        .with_partitions(partitions)
        .with_topic_authorized_operations(TOPIC_OPERATIONS_ALL);
    Some((described, (end < count).then_some(end)))
}

fn missing_topic(name: &str) -> DescribeTopicPartitionsResponseTopic {
    let error = match validate_topic_name(name) {
        Ok(()) => KafkaError::UnknownTopicOrPartition,
        Err(_) => KafkaError::InvalidTopicException,
    };
    DescribeTopicPartitionsResponseTopic::default()
        .with_error_code(error.code())
        .with_name(Some(topic_name(name)))
        .with_is_internal(is_internal_topic(name))
        .with_topic_authorized_operations(TOPIC_OPERATIONS_ALL)
}

/// Kafka's error answer for a request it refuses as a whole: every named
/// topic with `error`, nothing else.
fn refused(
    request: &DescribeTopicPartitionsRequest,
    error: KafkaError,
) -> DescribeTopicPartitionsResponse {
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            DescribeTopicPartitionsResponseTopic::default()
                .with_error_code(error.code())
                .with_name(Some(topic.name.clone()))
        })
        .collect();
    DescribeTopicPartitionsResponse::default().with_topics(topics)
}

fn cursor(topic: &str, partition_index: i32) -> Cursor {
    Cursor::default()
        .with_topic_name(topic_name(topic))
        .with_partition_index(partition_index)
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use kafka_protocol::messages::describe_topic_partitions_request::{self, TopicRequest};

    use super::*;
    use crate::metadata::catalog::test_fixtures::{broker, topic};
    use crate::metadata::catalog::PartitionAssignment;

    fn catalog(topics: &[(&str, i32)]) -> Catalog {
        let topics = topics.iter().map(|(name, count)| {
            let partitions = (0..*count)
                .map(|_| PartitionAssignment::led_by(1))
                .collect();
            (topic(name, *count), partitions)
        });
        Catalog::new(Arc::from("c"), 1, vec![broker(1)], topics)
    }

    fn request(
        topics: &[&str],
        limit: i32,
        cursor: Option<(&str, i32)>,
    ) -> DescribeTopicPartitionsRequest {
        DescribeTopicPartitionsRequest::default()
            .with_topics(
                topics
                    .iter()
                    .map(|name| TopicRequest::default().with_name(topic_name(name)))
                    .collect(),
            )
            .with_response_partition_limit(limit)
            .with_cursor(cursor.map(|(topic, partition)| {
                describe_topic_partitions_request::Cursor::default()
                    .with_topic_name(topic_name(topic))
                    .with_partition_index(partition)
            }))
    }

    /// `(topic, error, [partition indexes])` and the next cursor.
    type Page = (Vec<(String, i16, Vec<i32>)>, Option<(String, i32)>);

    fn page(response: &DescribeTopicPartitionsResponse) -> Page {
        let topics = response
            .topics
            .iter()
            .map(|topic| {
                let name = topic
                    .name
                    .as_ref()
                    .map(|n| n.0.to_string())
                    .unwrap_or_default();
                let partitions = topic.partitions.iter().map(|p| p.partition_index).collect();
                (name, topic.error_code, partitions)
            })
            .collect();
        let cursor = response
            .next_cursor
            .as_ref()
            .map(|cursor| (cursor.topic_name.0.to_string(), cursor.partition_index));
        (topics, cursor)
    }

    fn entry(name: &str, partitions: &[i32]) -> (String, i16, Vec<i32>) {
        (name.to_string(), 0, partitions.to_vec())
    }

    #[test]
    fn pages_through_every_topic_in_name_order() {
        let catalog = catalog(&[("b", 3), ("a", 2), ("c", 1)]);
        let first = page(&describe(&catalog, &request(&[], 4, None)));
        assert_eq!(
            first,
            (
                vec![entry("a", &[0, 1]), entry("b", &[0, 1])],
                Some(("b".to_string(), 2))
            )
        );
        let second = page(&describe(&catalog, &request(&[], 4, Some(("b", 2)))));
        assert_eq!(second, (vec![entry("b", &[2]), entry("c", &[0])], None));
    }

    #[test]
    fn a_page_ending_with_a_topic_points_at_the_next_one() {
        let catalog = catalog(&[("a", 2), ("b", 1)]);
        let first = page(&describe(&catalog, &request(&["b", "a", "nope"], 2, None)));
        assert_eq!(
            first,
            (vec![entry("a", &[0, 1])], Some(("b".to_string(), 0)))
        );
        let second = page(&describe(
            &catalog,
            &request(&["b", "a", "nope"], 2, Some(("b", 0))),
        ));
        let unknown = KafkaError::UnknownTopicOrPartition.code();
        assert_eq!(
            second,
            (
                vec![entry("b", &[0]), ("nope".to_string(), unknown, vec![])],
                None
            )
        );
    }

    #[test]
    fn topics_are_described_with_ids_and_operations_and_no_elr() {
        let catalog = catalog(&[("a", 1)]);
        let response = describe(&catalog, &request(&["a", "bad name"], 10, None));
        let [a, bad] = response.topics.as_slice() else {
            panic!("two topics: {response:?}")
        };
        assert_eq!(a.topic_id, catalog.topic("a").expect("a").topic_id);
        assert_eq!(a.topic_authorized_operations, TOPIC_OPERATIONS_ALL);
        assert!(!a.is_internal);
        let partition = &a.partitions[0];
        assert_eq!(partition.leader_id, BrokerId(1));
        assert_eq!(partition.replica_nodes, vec![BrokerId(1)]);
        assert_eq!(partition.eligible_leader_replicas, Some(Vec::new()));
        assert_eq!(bad.error_code, KafkaError::InvalidTopicException.code());
        assert!(bad.topic_id.is_nil());
    }

    #[test]
    fn a_limit_below_one_still_answers_one_partition() {
        let catalog = catalog(&[("a", 2)]);
        let first = page(&describe(&catalog, &request(&["a"], 0, None)));
        assert_eq!(first, (vec![entry("a", &[0])], Some(("a".to_string(), 1))));
    }

    #[test]
    fn a_cursor_outside_the_named_topics_is_refused() {
        let catalog = catalog(&[("a", 1), ("b", 1)]);
        let response = describe(&catalog, &request(&["b"], 10, Some(("a", 0))));
        assert_eq!(
            page(&response).0,
            vec![("b".to_string(), KafkaError::InvalidRequest.code(), vec![])]
        );
        let response = describe(&catalog, &request(&["a"], 10, Some(("a", -1))));
        assert_eq!(
            response.topics[0].error_code,
            KafkaError::InvalidRequest.code()
        );
    }
}
