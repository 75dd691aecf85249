//! Topics and the data path for one partition: CreateTopics (with the topic id Fetch v13+
//! needs), Produce of a hand-built record set, Fetch at any version and isolation level
//! without waiting, and ListOffsets "latest". Each builder sets only the fields its
//! version has.

use std::net::TcpStream;

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;

use crate::flows::{topic_name, transactional_id};
use crate::wire::call;
use crate::NONE;

pub(crate) fn create_topic(stream: &mut TcpStream, name: &str, partitions: i32) {
    let request = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(name))
            .with_num_partitions(partitions)
            .with_replication_factor(1)])
        .with_timeout_ms(10_000);
    let response = call(stream, 5, &request);
    assert_eq!(response.topics.len(), 1);
    assert_eq!(response.topics[0].error_code, NONE, "create topic {name}");
}

/// A topic as Fetch names it: by name before v13, by id from v13.
#[derive(Debug, Clone)]
pub(crate) struct Topic {
    pub(crate) name: String,
    pub(crate) id: uuid::Uuid,
}

/// Creates `name` and looks its topic id up (Metadata v12).
pub(crate) fn create_topic_with_id(stream: &mut TcpStream, name: &str, partitions: i32) -> Topic {
    create_topic(stream, name, partitions);
    let request = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(topic_name(name)))
        ]))
        .with_allow_auto_topic_creation(false);
    let response = call(stream, 12, &request);
    let topic = response
        .topics
        .iter()
        .find(|topic| topic.name.as_ref().map(|n| n.0.as_str()) == Some(name))
        .unwrap_or_else(|| panic!("Metadata does not list {name}"));
    assert_eq!(topic.error_code, NONE, "Metadata of {name}");
    Topic {
        name: name.to_string(),
        id: topic.topic_id,
    }
}

/// Produce v9 (acks all) of one record set to one partition: `(error, base offset)`.
pub(crate) fn produce(
    stream: &mut TcpStream,
    transactional: Option<&str>,
    topic: &str,
    partition: i32,
    records: Bytes,
) -> (i16, i64) {
    let request = ProduceRequest::default()
        .with_transactional_id(transactional.map(transactional_id))
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])]);
    let response = call(stream, 9, &request);
    assert_eq!(response.responses.len(), 1, "one topic answered");
    assert_eq!(response.responses[0].partition_responses.len(), 1);
    let answer = &response.responses[0].partition_responses[0];
    (answer.error_code, answer.base_offset)
}

/// Produce that must succeed; the base offset.
pub(crate) fn produce_ok(
    stream: &mut TcpStream,
    transactional: Option<&str>,
    topic: &str,
    partition: i32,
    records: Bytes,
) -> i64 {
    let (code, base_offset) = produce(stream, transactional, topic, partition, records);
    assert_eq!(code, NONE, "Produce to {topic}-{partition}");
    base_offset
}

/// Kafka's `isolation_level`.
pub(crate) const READ_UNCOMMITTED: i8 = 0;
pub(crate) const READ_COMMITTED: i8 = 1;

/// One partition's answer to a Fetch at `version` from `offset` (no waiting).
pub(crate) fn fetch(
    stream: &mut TcpStream,
    version: i16,
    topic: &Topic,
    partition: i32,
    offset: i64,
    isolation_level: i8,
) -> PartitionData {
    let fetch_topic = if version >= 13 {
        FetchTopic::default().with_topic_id(topic.id)
    } else {
        FetchTopic::default().with_topic(topic_name(&topic.name))
    };
    let request = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(1 << 20)
        .with_isolation_level(isolation_level)
        .with_topics(vec![fetch_topic.with_partitions(vec![
            FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20),
        ])]);
    let mut response = call(stream, version, &request);
    assert_eq!(response.error_code, NONE, "Fetch v{version}");
    assert_eq!(response.responses.len(), 1, "Fetch v{version}: one topic");
    let mut answered = response.responses.remove(0);
    if version >= 13 {
        assert_eq!(answered.topic_id, topic.id, "Fetch v{version} topic id");
    } else {
        assert_eq!(
            answered.topic.0.as_str(),
            topic.name,
            "Fetch v{version} topic"
        );
    }
    assert_eq!(
        answered.partitions.len(),
        1,
        "Fetch v{version}: one partition"
    );
    answered.partitions.remove(0)
}

/// ListOffsets "latest" (-1) at `version` for one partition: `(error, offset)`; the
/// isolation level is sent from v2 only.
pub(crate) fn latest_offset(
    stream: &mut TcpStream,
    version: i16,
    topic: &str,
    partition: i32,
    isolation_level: i8,
) -> (i16, i64) {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(if version >= 2 { isolation_level } else { 0 })
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_timestamp(-1)])]);
    let response = call(stream, version, &request);
    let answer = &response.topics[0].partitions[0];
    (answer.error_code, answer.offset)
}
