//! Kafka's `range` assignor and the consumer protocol's embedded bytes:
//! the subscription a member sends in JoinGroup and the assignment the
//! leader hands out through SyncGroup (`ConsumerProtocolSubscription` and
//! `ConsumerProtocolAssignment`). Pure functions: no requests, no state.

use std::collections::{BTreeMap, HashMap};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::cli::kafka::ToolError;

/// Kafka's RangeAssignor: per topic, its subscribers sorted by member id each
/// get a contiguous range; the first `partitions % members` get one extra.
/// Returns every member (even with nothing assigned) -> topic -> partitions.
pub fn range_assign(
    members: &[(String, Vec<String>)],
    partition_counts: &HashMap<String, i32>,
) -> BTreeMap<String, BTreeMap<String, Vec<i32>>> {
    let mut assignments: BTreeMap<String, BTreeMap<String, Vec<i32>>> = members
        .iter()
        .map(|(member_id, _)| (member_id.clone(), BTreeMap::new()))
        .collect();
    let mut topics: Vec<&String> = members.iter().flat_map(|(_, topics)| topics).collect();
    topics.sort_unstable();
    topics.dedup();
    for topic in topics {
        let Some(&partitions) = partition_counts.get(topic) else {
            continue;
        };
        let mut subscribers: Vec<&String> = members
            .iter()
            .filter(|(_, topics)| topics.contains(topic))
            .map(|(member_id, _)| member_id)
            .collect();
        subscribers.sort_unstable();
        let count = subscribers.len() as i32;
        let (per_member, with_extra) = (partitions / count, partitions % count);
        for (index, member_id) in subscribers.into_iter().enumerate() {
            let index = index as i32;
            let start = per_member * index + index.min(with_extra);
            let length = per_member + i32::from(index < with_extra);
            if length > 0 {
                if let Some(assigned) = assignments.get_mut(member_id) {
                    assigned.insert(topic.clone(), (start..start + length).collect());
                }
            }
        }
    }
    assignments
}

fn encode_error(error: anyhow::Error) -> ToolError {
    ToolError::Protocol(format!("cannot encode consumer protocol data: {error}"))
}

/// ConsumerProtocolSubscription v0: int16 version, topics, null user data.
pub fn subscription_bytes(topics: &[String]) -> Result<Bytes, ToolError> {
    let subscription = ConsumerProtocolSubscription::default().with_topics(
        topics
            .iter()
            .map(|t| StrBytes::from_string(t.clone()))
            .collect(),
    );
    let mut bytes = BytesMut::new();
    bytes.put_i16(0);
    subscription.encode(&mut bytes, 0).map_err(encode_error)?;
    Ok(bytes.freeze())
}

/// Topics of another member's subscription, any version (newer fields ignored).
pub fn parse_subscription(metadata: &Bytes) -> Result<Vec<String>, ToolError> {
    let mut bytes = metadata.clone();
    if bytes.remaining() < 2 {
        return Err(ToolError::Protocol(
            "member subscription shorter than its version".into(),
        ));
    }
    let version = bytes.get_i16().clamp(0, 3);
    let subscription =
        ConsumerProtocolSubscription::decode(&mut bytes, version).map_err(|error| {
            ToolError::Protocol(format!("member subscription does not decode: {error}"))
        })?;
    Ok(subscription.topics.iter().map(|t| t.to_string()).collect())
}

/// ConsumerProtocolAssignment v0: int16 version, (topic, partitions) list, null user data.
pub fn assignment_bytes(assigned: &BTreeMap<String, Vec<i32>>) -> Result<Bytes, ToolError> {
    let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(
        assigned
            .iter()
            .map(|(topic, partitions)| {
                AssignedTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(topic.clone())))
                    .with_partitions(partitions.clone())
            })
            .collect(),
    );
    let mut bytes = BytesMut::new();
    bytes.put_i16(0);
    assignment.encode(&mut bytes, 0).map_err(encode_error)?;
    Ok(bytes.freeze())
}

/// Topic -> partitions from SyncGroup's answer; empty bytes assign nothing.
pub fn parse_assignment(assignment: &Bytes) -> Result<BTreeMap<String, Vec<i32>>, ToolError> {
    let mut bytes = assignment.clone();
    if bytes.is_empty() {
        return Ok(BTreeMap::new());
    }
    if bytes.remaining() < 2 {
        return Err(ToolError::Protocol(
            "assignment shorter than its version".into(),
        ));
    }
    let version = bytes.get_i16().clamp(0, 3);
    let decoded = ConsumerProtocolAssignment::decode(&mut bytes, version)
        .map_err(|error| ToolError::Protocol(format!("assignment does not decode: {error}")))?;
    Ok(decoded
        .assigned_partitions
        .into_iter()
        .map(|topic| (topic.topic.0.to_string(), topic.partitions))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(list: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
        list.iter()
            .map(|(id, topics)| {
                (
                    id.to_string(),
                    topics.iter().map(|t| t.to_string()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn range_gives_the_first_members_the_extra_partitions() {
        let counts = HashMap::from([("orders".to_string(), 5), ("audit".to_string(), 1)]);
        let assigned = range_assign(
            &members(&[
                ("b", &["orders"]),
                ("a", &["orders", "audit"]),
                ("c", &["orders"]),
            ]),
            &counts,
        );
        assert_eq!(assigned["a"]["orders"], vec![0, 1]);
        assert_eq!(assigned["b"]["orders"], vec![2, 3]);
        assert_eq!(assigned["c"]["orders"], vec![4]);
        assert_eq!(assigned["a"]["audit"], vec![0]);
        assert!(!assigned["b"].contains_key("audit"));
    }

    #[test]
    fn members_beyond_the_partition_count_get_nothing_but_are_listed() {
        let counts = HashMap::from([("orders".to_string(), 1)]);
        let assigned = range_assign(
            &members(&[("m1", &["orders"]), ("m2", &["orders"])]),
            &counts,
        );
        assert_eq!(assigned["m1"]["orders"], vec![0]);
        assert!(assigned["m2"].is_empty());
        let unknown = range_assign(&members(&[("m1", &["missing"])]), &counts);
        assert!(unknown["m1"].is_empty());
    }

    #[test]
    fn subscriptions_and_assignments_round_trip() {
        let bytes = subscription_bytes(&["orders".to_string()]).expect("encodes");
        assert_eq!(&bytes[..2], &[0, 0], "version 0");
        assert_eq!(
            parse_subscription(&bytes).expect("decodes"),
            vec!["orders".to_string()]
        );
        let assigned = BTreeMap::from([("orders".to_string(), vec![0, 2])]);
        let bytes = assignment_bytes(&assigned).expect("encodes");
        assert_eq!(parse_assignment(&bytes).expect("decodes"), assigned);
        assert!(parse_assignment(&Bytes::new()).expect("empty").is_empty());
        assert!(parse_subscription(&Bytes::from_static(&[0])).is_err());
    }
}
