//! Well-formed requests written by hand, checking the exact bytes of the answers where
//! real clients are strict: ApiVersions (every client's first request), in-order answers
//! to pipelined requests, DescribeCluster, and the rack in Metadata; and
//! DescribeTopicPartitions' paging and Metadata by topic id, through the kafka-protocol
//! codec.

mod common;
// The kafka-protocol framing shared by the raw-protocol tests (it needs `CLIENT_ID` here).
#[path = "common/codec.rs"]
mod codec;

use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, MetadataRequest,
    MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use common::wire::{
    api_versions_body_v3, assert_core_apis_listed, connect, frame, header_v1, header_v2,
    parse_api_versions_v0, parse_api_versions_v3, read_frame, write_lenient, Reader,
    API_VERSIONS_KEY, DESCRIBE_CLUSTER_KEY,
};
use common::{create_topic, Broker};

/// Metadata's API key.
const METADATA_KEY: i16 = 3;
const CLIENT_ID: &str = "corelog-raw-protocol-test";
/// UNKNOWN_TOPIC_OR_PARTITION.
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
/// UNKNOWN_TOPIC_ID.
const UNKNOWN_TOPIC_ID: i16 = 100;
/// Every topic operation allowed (READ..ALTER_CONFIGS), as Kafka answers without ACLs.
const TOPIC_OPERATIONS_ALL: i32 = 3576;

#[test]
fn api_versions_v0_request_gets_exact_v0_answer() {
    let broker = Broker::start(1, &[]);
    let mut stream = connect(&broker.bootstrap());
    write_lenient(
        &mut stream,
        &frame(&header_v1(API_VERSIONS_KEY, 0, 9, "old-client")),
    );
    let payload = read_frame(&mut stream)
        .unwrap_or_else(|error| panic!("no answer to ApiVersions v0: {error}"));
    let correlation_id = i32::from_be_bytes(payload[..4].try_into().unwrap());
    assert_eq!(correlation_id, 9);
    let (error_code, ranges) = parse_api_versions_v0(&payload[4..]);
    assert_eq!(error_code, 0);
    assert_core_apis_listed(&ranges);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    // Kafka guarantees responses on one connection come back in request order.
    let broker = Broker::start(2, &[]);
    let mut stream = connect(&broker.bootstrap());
    let mut bytes = Vec::new();
    for correlation_id in 100..120 {
        let version = if correlation_id % 2 == 0 { 0 } else { 3 };
        let request = if version == 0 {
            header_v1(API_VERSIONS_KEY, 0, correlation_id, "pipeline")
        } else {
            let mut request = header_v2(API_VERSIONS_KEY, 3, correlation_id, "pipeline");
            request.extend(api_versions_body_v3());
            request
        };
        bytes.extend(frame(&request));
    }
    write_lenient(&mut stream, &bytes);
    for correlation_id in 100..120 {
        let payload = read_frame(&mut stream)
            .unwrap_or_else(|error| panic!("no answer for request {correlation_id}: {error}"));
        let answered = i32::from_be_bytes(payload[..4].try_into().unwrap());
        assert_eq!(answered, correlation_id, "responses out of order");
        if correlation_id % 2 == 0 {
            assert_eq!(parse_api_versions_v0(&payload[4..]).0, 0);
        } else {
            assert_eq!(parse_api_versions_v3(&payload[4..]).0, 0);
        }
    }
}

#[test]
fn describe_cluster_lists_this_broker() {
    let broker = Broker::start(2, &["--node-id", "0"]);
    let mut stream = connect(&broker.bootstrap());
    // DescribeCluster v0 (flexible): include_cluster_authorized_operations=false, no tags.
    let mut request = header_v2(DESCRIBE_CLUSTER_KEY, 0, 61, "describe");
    request.extend_from_slice(&[0, 0]);
    write_lenient(&mut stream, &frame(&request));
    let payload = read_frame(&mut stream)
        .unwrap_or_else(|error| panic!("no answer to DescribeCluster v0: {error}"));

    // Response header v1: correlation id and a tagged-field section.
    let mut reader = Reader::new(&payload);
    assert_eq!(reader.i32(), 61, "correlation id");
    reader.skip_tagged_fields();
    let _throttle_time_ms = reader.i32();
    let error_code = reader.i16();
    let error_message = reader.compact_nullable_string();
    assert_eq!(error_code, 0, "DescribeCluster error ({error_message:?})");
    let cluster_id = reader.compact_nullable_string();
    assert!(
        cluster_id.as_deref().is_some_and(|id| !id.is_empty()),
        "cluster id {cluster_id:?}"
    );
    let controller_id = reader.i32();
    assert_eq!(controller_id, 0, "controller id");
    let broker_count = reader
        .unsigned_varint()
        .checked_sub(1)
        .expect("non-null brokers");
    let mut brokers = Vec::new();
    for _ in 0..broker_count {
        let broker_id = reader.i32();
        let host = reader.compact_nullable_string();
        let port = reader.i32();
        let _rack = reader.compact_nullable_string();
        reader.skip_tagged_fields();
        brokers.push((broker_id, host, port));
    }
    assert_eq!(
        brokers,
        vec![(0, Some("127.0.0.1".to_string()), i32::from(broker.port()))]
    );
    // Not asked for: Kafka sends INT32_MIN, which strict clients rely on.
    let authorized_operations = reader.i32();
    assert_eq!(
        authorized_operations,
        i32::MIN,
        "cluster_authorized_operations"
    );
    reader.skip_tagged_fields();
    assert_eq!(reader.remaining(), 0, "trailing bytes: {payload:02x?}");
}

#[test]
fn describe_cluster_and_metadata_report_the_rack_given_with_rack() {
    let broker = Broker::start(1, &["--node-id", "3", "--rack", "rack-a"]);
    let expected = (
        3,
        Some("127.0.0.1".to_string()),
        i32::from(broker.port()),
        Some("rack-a".to_string()),
    );
    let mut stream = connect(&broker.bootstrap());

    let mut request = header_v2(DESCRIBE_CLUSTER_KEY, 0, 71, "rack");
    request.extend_from_slice(&[0, 0]);
    write_lenient(&mut stream, &frame(&request));
    let payload = read_frame(&mut stream)
        .unwrap_or_else(|error| panic!("no answer to DescribeCluster v0: {error}"));
    let mut reader = Reader::new(&payload);
    assert_eq!(reader.i32(), 71, "correlation id");
    reader.skip_tagged_fields();
    let _throttle_time_ms = reader.i32();
    assert_eq!(reader.i16(), 0, "error code");
    let _error_message = reader.compact_nullable_string();
    let _cluster_id = reader.compact_nullable_string();
    assert_eq!(reader.i32(), 3, "controller id");
    assert_eq!(read_brokers(&mut reader), vec![expected.clone()]);

    // Metadata v9 (flexible), no topics: brokers with their rack, controller.
    let mut request = header_v2(METADATA_KEY, 9, 72, "rack");
    // topics: empty compact array; allow auto-creation, no authorized ops; no tags.
    request.extend_from_slice(&[1, 1, 0, 0, 0]);
    write_lenient(&mut stream, &frame(&request));
    let payload =
        read_frame(&mut stream).unwrap_or_else(|error| panic!("no answer to Metadata v9: {error}"));
    let mut reader = Reader::new(&payload);
    assert_eq!(reader.i32(), 72, "correlation id");
    reader.skip_tagged_fields();
    let _throttle_time_ms = reader.i32();
    assert_eq!(read_brokers(&mut reader), vec![expected]);
    let _cluster_id = reader.compact_nullable_string();
    assert_eq!(reader.i32(), 3, "controller id");
}

/// A flexible brokers array: (id, host, port, rack) each.
fn read_brokers(reader: &mut Reader<'_>) -> Vec<(i32, Option<String>, i32, Option<String>)> {
    let count = reader
        .unsigned_varint()
        .checked_sub(1)
        .expect("non-null brokers");
    (0..count)
        .map(|_| {
            let broker_id = reader.i32();
            let host = reader.compact_nullable_string();
            let port = reader.i32();
            let rack = reader.compact_nullable_string();
            reader.skip_tagged_fields();
            (broker_id, host, port, rack)
        })
        .collect()
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// One DescribeTopicPartitions v0 page: `names` (empty: every topic), at most `limit`
/// partitions, from `cursor`.
fn describe_topic_partitions(
    stream: &mut std::net::TcpStream,
    names: &[&str],
    limit: i32,
    cursor: Option<(&str, i32)>,
) -> DescribeTopicPartitionsResponse {
    let request = DescribeTopicPartitionsRequest::default()
        .with_topics(
            names
                .iter()
                .map(|name| TopicRequest::default().with_name(topic_name(name)))
                .collect(),
        )
        .with_response_partition_limit(limit)
        .with_cursor(cursor.map(|(topic, partition)| {
            Cursor::default()
                .with_topic_name(topic_name(topic))
                .with_partition_index(partition)
        }));
    codec::call(stream, 0, &request)
}

/// `(topic, error code, partition indexes)` of a page, and its next cursor.
type Page = (Vec<(String, i16, Vec<i32>)>, Option<(String, i32)>);

fn page(response: &DescribeTopicPartitionsResponse) -> Page {
    let topics = response
        .topics
        .iter()
        .map(|topic| {
            let name = topic
                .name
                .as_ref()
                .map_or(String::new(), |name| name.0.to_string());
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

fn described(name: &str, partitions: &[i32]) -> (String, i16, Vec<i32>) {
    (name.to_string(), 0, partitions.to_vec())
}

#[test]
fn describe_topic_partitions_pages_through_named_topics_in_name_order() {
    let broker = Broker::start(2, &["--node-id", "0"]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "dtp-a", 3);
    create_topic(&bootstrap, "dtp-b", 2);
    create_topic(&bootstrap, "dtp-c", 1);
    let mut stream = connect(&bootstrap);
    // Asked in any order, with a duplicate and a topic that does not exist.
    let names = ["dtp-c", "dtp-missing", "dtp-a", "dtp-b", "dtp-a"];

    let first = describe_topic_partitions(&mut stream, &names, 2, None);
    assert_eq!(
        page(&first),
        (vec![described("dtp-a", &[0, 1])], Some(("dtp-a".into(), 2)))
    );
    let topic = &first.topics[0];
    assert!(!topic.topic_id.is_nil());
    assert!(!topic.is_internal);
    assert_eq!(topic.topic_authorized_operations, TOPIC_OPERATIONS_ALL);
    for partition in &topic.partitions {
        assert_eq!(partition.error_code, 0);
        assert_eq!(partition.leader_id.0, 0);
        assert!(partition.leader_epoch >= 0);
        assert_eq!(
            partition
                .replica_nodes
                .iter()
                .map(|id| id.0)
                .collect::<Vec<_>>(),
            vec![0]
        );
        assert_eq!(
            partition
                .isr_nodes
                .iter()
                .map(|id| id.0)
                .collect::<Vec<_>>(),
            vec![0]
        );
        assert_eq!(partition.eligible_leader_replicas, Some(Vec::new()));
        assert_eq!(partition.last_known_elr, Some(Vec::new()));
        assert!(partition.offline_replicas.is_empty());
    }

    let second = describe_topic_partitions(&mut stream, &names, 2, Some(("dtp-a", 2)));
    assert_eq!(
        page(&second),
        (
            vec![described("dtp-a", &[2]), described("dtp-b", &[0])],
            Some(("dtp-b".into(), 1))
        )
    );
    // A page that ends with a topic's last partition points at the next name, as Kafka
    // does, even one that does not exist.
    let third = describe_topic_partitions(&mut stream, &names, 2, Some(("dtp-b", 1)));
    assert_eq!(
        page(&third),
        (
            vec![described("dtp-b", &[1]), described("dtp-c", &[0])],
            Some(("dtp-missing".into(), 0))
        )
    );
    let last = describe_topic_partitions(&mut stream, &names, 2, Some(("dtp-missing", 0)));
    assert_eq!(
        page(&last),
        (
            vec![("dtp-missing".into(), UNKNOWN_TOPIC_OR_PARTITION, vec![])],
            None
        )
    );
    assert!(last.topics[0].topic_id.is_nil());

    // One page holds everything when the limit allows.
    let whole = describe_topic_partitions(&mut stream, &names, 2000, None);
    assert_eq!(
        page(&whole),
        (
            vec![
                described("dtp-a", &[0, 1, 2]),
                described("dtp-b", &[0, 1]),
                described("dtp-c", &[0]),
                ("dtp-missing".into(), UNKNOWN_TOPIC_OR_PARTITION, vec![]),
            ],
            None
        )
    );
}

#[test]
fn describe_topic_partitions_of_no_names_lists_every_topic() {
    let broker = Broker::start(1, &[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "every-b", 2);
    create_topic(&bootstrap, "every-a", 1);
    let mut stream = connect(&bootstrap);

    let all = describe_topic_partitions(&mut stream, &[], 100, None);
    let (topics, cursor) = page(&all);
    assert_eq!(cursor, None);
    let names: Vec<&str> = topics.iter().map(|(name, _, _)| name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "sorted by name");
    assert!(topics.contains(&described("every-a", &[0])), "{topics:?}");
    assert!(
        topics.contains(&described("every-b", &[0, 1])),
        "{topics:?}"
    );
    assert!(topics.iter().all(|(_, error, _)| *error == 0), "{topics:?}");

    // Paged one partition at a time, the same topics come back.
    let mut paged = Vec::new();
    let mut cursor: Option<(String, i32)> = None;
    // Bounded: one page per partition of every topic (internal ones included).
    for _ in 0..1000 {
        let response = describe_topic_partitions(
            &mut stream,
            &[],
            1,
            cursor
                .as_ref()
                .map(|(topic, partition)| (topic.as_str(), *partition)),
        );
        let (topics, next) = page(&response);
        for (name, _, partitions) in topics {
            paged.extend(partitions.into_iter().map(|index| (name.clone(), index)));
        }
        cursor = next;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(cursor, None, "paging ends");
    let expected: Vec<(String, i32)> = page(&all)
        .0
        .into_iter()
        .flat_map(|(name, _, partitions)| {
            partitions
                .into_iter()
                .map(move |index| (name.clone(), index))
        })
        .collect();
    assert_eq!(paged, expected);
}

#[test]
fn describe_topic_partitions_of_an_unknown_topic_answers_unknown_topic_or_partition() {
    let broker = Broker::start(1, &[]);
    let mut stream = connect(&broker.bootstrap());
    let response = describe_topic_partitions(&mut stream, &["no-such-topic"], 10, None);
    assert_eq!(
        page(&response),
        (
            vec![("no-such-topic".into(), UNKNOWN_TOPIC_OR_PARTITION, vec![])],
            None
        )
    );
    assert!(response.topics[0].topic_id.is_nil());
}

/// Metadata v12 for the topics asked as `(name, id)` pairs, without auto-creation.
fn metadata_v12(
    stream: &mut std::net::TcpStream,
    wanted: &[(Option<&str>, uuid::Uuid)],
) -> MetadataResponse {
    let request = MetadataRequest::default()
        .with_topics(Some(
            wanted
                .iter()
                .map(|(name, id)| {
                    MetadataRequestTopic::default()
                        .with_name(name.map(topic_name))
                        .with_topic_id(*id)
                })
                .collect(),
        ))
        .with_allow_auto_topic_creation(false);
    codec::call(stream, 12, &request)
}

/// `(name, error code, topic id, partition count)` of each answered topic.
fn metadata_topics(response: &MetadataResponse) -> Vec<(Option<String>, i16, uuid::Uuid, usize)> {
    response
        .topics
        .iter()
        .map(|topic| {
            (
                topic.name.as_ref().map(|name| name.0.to_string()),
                topic.error_code,
                topic.topic_id,
                topic.partitions.len(),
            )
        })
        .collect()
}

#[test]
fn metadata_looks_a_topic_up_by_id_when_the_id_is_set() {
    let broker = Broker::start(1, &[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "by-id", 3);
    let mut stream = connect(&bootstrap);
    let by_name = metadata_v12(&mut stream, &[(Some("by-id"), uuid::Uuid::nil())]);
    let id = by_name.topics[0].topic_id;
    assert!(!id.is_nil(), "a topic asked by name carries its id");
    let found = (Some("by-id".to_string()), 0, id, 3);

    // KIP-516: a null name with the id set.
    let null_name = metadata_v12(&mut stream, &[(None, id)]);
    assert_eq!(metadata_topics(&null_name), vec![found.clone()]);

    // The Java client (4.x) sends "" rather than null beside the id of a KIP-848
    // assignment's topic; Kafka still looks it up by id.
    let empty_name = metadata_v12(&mut stream, &[(Some(""), id)]);
    assert_eq!(metadata_topics(&empty_name), vec![found]);

    // An id nobody has: UNKNOWN_TOPIC_ID, the id echoed, no name.
    let unknown = uuid::Uuid::from_u128(0x1234_5678_9abc_def0_1234_5678_9abc_def0);
    let missing = metadata_v12(&mut stream, &[(Some(""), unknown)]);
    assert_eq!(
        metadata_topics(&missing),
        vec![(None, UNKNOWN_TOPIC_ID, unknown, 0)]
    );
}
