//! The newest API versions corelog advertises (Apache Kafka 4.4's, as far as the
//! `kafka-protocol` codec goes), each driven with raw requests through the codec and
//! checked for the field or rule that version adds, answered as the Java broker does:
//!
//! | API              | version | what it adds                                          |
//! |------------------|---------|-------------------------------------------------------|
//! | Produce          | 13      | topics named by id; unknown id: UNKNOWN_TOPIC_ID      |
//! | Fetch            | 18      | the replica's high watermark (read by KRaft only)     |
//! | ListOffsets      | 10      | a timeout for remote-storage lookups                  |
//! | Metadata         | 13      | a top-level error code, NONE                          |
//! | OffsetCommit     | 10      | topics by id (own codec); unknown id: UNKNOWN_TOPIC_ID |
//! | OffsetFetch      | 10      | topics by id (own codec); unknown id: UNKNOWN_TOPIC_ID |
//! | FindCoordinator  | 6       | share-group keys (not offered: INVALID_REQUEST)       |
//! | DescribeGroups   | 6       | unknown group: GROUP_ID_NOT_FOUND with a message      |
//! | ConsumerGroupDescribe | 1  | classic or unknown group: GROUP_ID_NOT_FOUND          |
//! | ListTransactions | 2       | a transactional id pattern, matched whole             |

#[path = "common/codec.rs"]
mod codec;
mod common;

use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ConsumerGroupDescribeRequest, CreateTopicsRequest,
    DescribeGroupsRequest, FetchRequest, FindCoordinatorRequest, GroupId, InitProducerIdRequest,
    ListOffsetsRequest, ListTransactionsRequest, MetadataRequest, OffsetCommitRequest,
    ProduceRequest, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use common::wire::{connect, frame, read_frame, record_batch_v2};
use common::{poll_until, unique_topic, Broker};
use corelog::protocol::offsets_v10::{
    CommitPartitionV10, CommitTopicV10, FetchGroupV10, FetchTopicV10, OffsetCommitRequestV10,
    OffsetCommitResponseV10, OffsetFetchRequestV10, OffsetFetchResponseV10,
};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};
use std::io::Write;

const CLIENT_ID: &str = "corelog-newest-versions-test";

/// Error codes of the Kafka protocol guide.
const NONE: i16 = 0;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_REQUEST: i16 = 42;
const INVALID_GROUP_ID: i16 = 24;
const GROUP_ID_NOT_FOUND: i16 = 69;
const UNKNOWN_TOPIC_ID: i16 = 100;
const INVALID_REGULAR_EXPRESSION: i16 = 128;

/// ListOffsets' "latest" timestamp.
const LATEST_TIMESTAMP: i64 = -1;
/// FindCoordinator key types: consumer group, transactional id, share group (KIP-932).
const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;
const KEY_TYPE_SHARE: i8 = 2;

/// How long a created topic or a coordinator may take to be ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

fn str_bytes(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn topic_name(name: &str) -> TopicName {
    TopicName(str_bytes(name))
}

struct Fixture {
    broker: Broker,
    stream: TcpStream,
}

impl Fixture {
    fn start() -> Fixture {
        let broker = Broker::start(1, &[]);
        let stream = connect(&broker.bootstrap());
        Fixture { broker, stream }
    }

    /// The range ApiVersions v3 advertises for `api_key`.
    fn advertised(&mut self, api_key: ApiKey) -> (i16, i16) {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(str_bytes("corelog-tests"))
            .with_client_software_version(str_bytes("0.1.0"));
        let answer = codec::call(&mut self.stream, 3, &request);
        let api = answer
            .api_keys
            .iter()
            .find(|api| api.api_key == api_key as i16)
            .unwrap_or_else(|| panic!("{api_key:?} advertised"));
        (api.min_version, api.max_version)
    }

    /// CreateTopics v7, then Metadata v12 until every partition has a leader; returns
    /// the topic's name and id.
    fn create_topic(&mut self, prefix: &str, partitions: i32) -> (String, Uuid) {
        let name = unique_topic(prefix);
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(vec![CreatableTopic::default()
                .with_name(topic_name(&name))
                .with_num_partitions(partitions)
                .with_replication_factor(1)]);
        let created = codec::call(&mut self.stream, 7, &request);
        assert_eq!(created.topics[0].error_code, NONE, "{created:?}");
        let stream = &mut self.stream;
        let id = poll_until(READY_TIMEOUT, "topic has leaders", || {
            let request = MetadataRequest::default().with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(topic_name(&name))),
            ]));
            let metadata = codec::call(stream, 12, &request);
            let topic = metadata.topics.first()?;
            let ready = topic.error_code == NONE
                && topic.partitions.len() == usize::try_from(partitions).ok()?
                && topic.partitions.iter().all(|p| p.leader_id.0 >= 0);
            (ready && !topic.topic_id.is_nil()).then_some(topic.topic_id)
        });
        (name, id)
    }

    /// Produce v13 of one record to each `(topic id, partition)`.
    fn produce_v13(&mut self, targets: &[(Uuid, i32)]) -> Vec<(Uuid, String, i32, i16, i64)> {
        let topic_data = targets
            .iter()
            .map(|(topic_id, partition)| {
                let batch = record_batch_v2(&[(b"key", b"value")], 1_700_000_000_000);
                TopicProduceData::default()
                    .with_topic_id(*topic_id)
                    .with_partition_data(vec![PartitionProduceData::default()
                        .with_index(*partition)
                        .with_records(Some(Bytes::from(batch)))])
            })
            .collect();
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(10_000)
            .with_topic_data(topic_data);
        let answer = codec::call(&mut self.stream, 13, &request);
        answer
            .responses
            .iter()
            .flat_map(|topic| {
                topic.partition_responses.iter().map(|partition| {
                    (
                        topic.topic_id,
                        topic.name.0.to_string(),
                        partition.index,
                        partition.error_code,
                        partition.base_offset,
                    )
                })
            })
            .collect()
    }
}

#[test]
fn produce_v13_names_topics_by_id_and_answers_an_unknown_id_with_unknown_topic_id() {
    let mut fixture = Fixture::start();
    assert!(fixture.advertised(ApiKey::Produce).1 >= 13);
    let (_, topic_id) = fixture.create_topic("produce-v13", 2);
    let unknown_id = Uuid::from_u128(0x5eed_0000_0000_0000_0000_0000_0000_0001);

    let answers = fixture.produce_v13(&[(topic_id, 1), (topic_id, 7), (unknown_id, 0)]);
    // The answer names each topic by the id asked for, never by name (Kafka's
    // handleProduceRequest, version > 12).
    assert_eq!(
        answers,
        vec![
            (topic_id, String::new(), 1, NONE, 0),
            (topic_id, String::new(), 7, UNKNOWN_TOPIC_OR_PARTITION, -1),
            (unknown_id, String::new(), 0, UNKNOWN_TOPIC_ID, -1),
        ]
    );
    let again = fixture.produce_v13(&[(topic_id, 1)]);
    assert_eq!(again, vec![(topic_id, String::new(), 1, NONE, 1)]);
    fixture.broker.stop_graceful();
}

#[test]
fn fetch_v18_takes_the_replica_high_watermark_and_reads_as_before() {
    let mut fixture = Fixture::start();
    assert!(fixture.advertised(ApiKey::Fetch).1 >= 18);
    let (_, topic_id) = fixture.create_topic("fetch-v18", 1);
    fixture.produce_v13(&[(topic_id, 0), (topic_id, 0)]);

    // A consumer's fetch with the field at its "not supported" value, and a
    // follower-style value behind the leader's: both read the log as v17 does.
    for known_high_watermark in [i64::MAX, 0] {
        let request = FetchRequest::default()
            .with_max_wait_ms(0)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic_id(topic_id)
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(0)
                    .with_partition_max_bytes(1 << 20)
                    .with_high_watermark(known_high_watermark)])]);
        let answer = codec::call(&mut fixture.stream, 18, &request);
        assert_eq!(answer.error_code, NONE, "{answer:?}");
        let topic = &answer.responses[0];
        assert_eq!(topic.topic_id, topic_id);
        let partition = &topic.partitions[0];
        assert_eq!((partition.error_code, partition.high_watermark), (NONE, 2));
        assert!(partition.records.as_ref().is_some_and(|r| !r.is_empty()));
    }
    fixture.broker.stop_graceful();
}

#[test]
fn list_offsets_v10_answers_at_once_whatever_the_timeout() {
    let mut fixture = Fixture::start();
    assert!(fixture.advertised(ApiKey::ListOffsets).1 >= 10);
    let (name, topic_id) = fixture.create_topic("list-offsets-v10", 1);
    fixture.produce_v13(&[(topic_id, 0), (topic_id, 0), (topic_id, 0)]);

    let request = ListOffsetsRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_timeout_ms(1)
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name(&name))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_current_leader_epoch(-1)
                .with_timestamp(LATEST_TIMESTAMP)])]);
    let answer = codec::call(&mut fixture.stream, 10, &request);
    let partition = &answer.topics[0].partitions[0];
    assert_eq!((partition.error_code, partition.offset), (NONE, 3));
    fixture.broker.stop_graceful();
}

#[test]
fn metadata_v13_answers_the_top_level_error_code_none() {
    let mut fixture = Fixture::start();
    assert!(fixture.advertised(ApiKey::Metadata).1 >= 13);
    let (name, topic_id) = fixture.create_topic("metadata-v13", 1);
    let request = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(topic_name(&name))),
    ]));
    let answer = codec::call(&mut fixture.stream, 13, &request);
    assert_eq!(answer.error_code, NONE);
    assert_eq!(answer.topics[0].topic_id, topic_id);
    assert_eq!(answer.topics[0].error_code, NONE);
    fixture.broker.stop_graceful();
}

#[test]
fn find_coordinator_v6_refuses_share_group_keys_with_invalid_request() {
    let mut fixture = Fixture::start();
    assert!(fixture.advertised(ApiKey::FindCoordinator).1 >= 6);
    let group = unique_topic("find-coordinator-v6");
    let stream = &mut fixture.stream;
    for version in [5, 6] {
        let coordinator = poll_until(READY_TIMEOUT, "group coordinator", || {
            let request = FindCoordinatorRequest::default()
                .with_key_type(KEY_TYPE_GROUP)
                .with_coordinator_keys(vec![str_bytes(&group)]);
            let answer = codec::call(stream, version, &request);
            let coordinator = answer.coordinators.into_iter().next()?;
            (coordinator.error_code == NONE).then_some(coordinator)
        });
        assert!(coordinator.node_id.0 >= 0 && coordinator.port > 0);
    }
    // A well-formed share key ("group:topicId:partition"): corelog has no share groups.
    let share_key = format!("{group}:{}:0", Uuid::from_u128(7));
    let request = FindCoordinatorRequest::default()
        .with_key_type(KEY_TYPE_SHARE)
        .with_coordinator_keys(vec![str_bytes(&share_key)]);
    let answer = codec::call(&mut fixture.stream, 6, &request);
    let refused = &answer.coordinators[0];
    assert_eq!(refused.key.as_str(), share_key);
    assert_eq!(
        (refused.error_code, refused.node_id.0, refused.port),
        (INVALID_REQUEST, -1, -1)
    );
    fixture.broker.stop_graceful();
}

#[test]
fn describe_groups_v6_reports_an_unknown_group_as_group_id_not_found() {
    let mut fixture = Fixture::start();
    assert!(fixture.advertised(ApiKey::DescribeGroups).1 >= 6);
    let (name, _) = fixture.create_topic("describe-groups-v6", 1);
    let known = unique_topic("known-group");
    let unknown = unique_topic("unknown-group");
    // A simple commit (generation -1) creates an Empty group, as in Kafka.
    let stream = &mut fixture.stream;
    poll_until(READY_TIMEOUT, "offset commit", || {
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(str_bytes(&known)))
            .with_generation_id_or_member_epoch(-1)
            .with_member_id(str_bytes(""))
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(topic_name(&name))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(0)])]);
        let answer = codec::call(stream, 9, &request);
        (answer.topics[0].partitions[0].error_code == NONE).then_some(())
    });

    let describe = |stream: &mut TcpStream, version: i16| {
        let request = DescribeGroupsRequest::default()
            .with_groups(vec![
                GroupId(str_bytes(&known)),
                GroupId(str_bytes(&unknown)),
            ])
            .with_include_authorized_operations(true);
        codec::call(stream, version, &request).groups
    };
    let groups = describe(&mut fixture.stream, 6);
    assert_eq!(
        (
            groups[0].error_code,
            groups[0].group_state.as_str(),
            groups[0].error_message.as_ref().map(|m| m.to_string())
        ),
        (NONE, "Empty", None)
    );
    assert_ne!(groups[0].authorized_operations, i32::MIN);
    let expected_message = format!("Group {unknown} not found.");
    assert_eq!(
        (
            groups[1].error_code,
            groups[1].group_state.as_str(),
            groups[1].error_message.as_ref().map(|m| m.as_str())
        ),
        (GROUP_ID_NOT_FOUND, "Dead", Some(expected_message.as_str()))
    );
    // Kafka fills the operations in only for groups described without error.
    assert_eq!(groups[1].authorized_operations, i32::MIN);

    // Before v6 an unknown group is Dead without an error.
    let groups = describe(&mut fixture.stream, 5);
    assert_eq!(
        (groups[1].error_code, groups[1].group_state.as_str()),
        (NONE, "Dead")
    );

    // ConsumerGroupDescribe (KIP-848) answers a classic group and an unknown one as
    // Kafka 4.4 does: GROUP_ID_NOT_FOUND, each with its message; an empty id is
    // INVALID_GROUP_ID. The Java Admin client then falls back to DescribeGroups.
    assert_eq!(fixture.advertised(ApiKey::ConsumerGroupDescribe), (0, 1));
    let request = ConsumerGroupDescribeRequest::default().with_group_ids(vec![
        GroupId(str_bytes(&known)),
        GroupId(str_bytes(&unknown)),
        GroupId(str_bytes("")),
    ]);
    let answered: Vec<(String, i16, Option<String>)> =
        codec::call(&mut fixture.stream, 1, &request)
            .groups
            .iter()
            .map(|group| {
                (
                    group.group_id.0.to_string(),
                    group.error_code,
                    group.error_message.as_ref().map(|m| m.to_string()),
                )
            })
            .collect();
    assert_eq!(
        answered,
        vec![
            (
                known.clone(),
                GROUP_ID_NOT_FOUND,
                Some(format!("Group {known} is not a consumer group."))
            ),
            (unknown.clone(), GROUP_ID_NOT_FOUND, Some(expected_message)),
            (
                String::new(),
                INVALID_GROUP_ID,
                Some("Group ID can't be empty.".to_string())
            ),
        ]
    );
    fixture.broker.stop_graceful();
}

#[test]
fn list_transactions_v2_lists_only_ids_the_whole_pattern_matches() {
    let mut fixture = Fixture::start();
    assert!(fixture.advertised(ApiKey::ListTransactions).1 >= 2);
    let prefix = unique_topic("txn-pattern");
    let ids = [
        format!("{prefix}-orders-1"),
        format!("{prefix}-orders-22"),
        format!("{prefix}-payments-1"),
    ];
    let stream = &mut fixture.stream;
    for id in &ids {
        poll_until(READY_TIMEOUT, "transaction coordinator", || {
            let request = FindCoordinatorRequest::default()
                .with_key_type(KEY_TYPE_TRANSACTION)
                .with_coordinator_keys(vec![str_bytes(id)]);
            let answer = codec::call(stream, 6, &request);
            (answer.coordinators[0].error_code == NONE).then_some(())
        });
        poll_until(READY_TIMEOUT, "producer id", || {
            let request = InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(str_bytes(id))))
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(kafka_protocol::messages::ProducerId(-1))
                .with_producer_epoch(-1);
            let answer = codec::call(stream, 4, &request);
            (answer.error_code == NONE).then_some(())
        });
    }

    let list = |stream: &mut TcpStream, pattern: &str| {
        let request = ListTransactionsRequest::default()
            .with_transactional_id_pattern(Some(str_bytes(pattern)));
        let answer = codec::call(stream, 2, &request);
        let mut listed: Vec<String> = answer
            .transaction_states
            .iter()
            .map(|txn| txn.transactional_id.0.to_string())
            .collect();
        listed.sort();
        (answer.error_code, listed)
    };
    // Matched as a whole: "orders-\d" is neither "orders-22" nor a prefix search.
    assert_eq!(
        list(&mut fixture.stream, &format!(r"{prefix}-orders-\d")),
        (NONE, vec![ids[0].clone()])
    );
    assert_eq!(
        list(&mut fixture.stream, &format!("{prefix}-orders-.*")),
        (NONE, vec![ids[0].clone(), ids[1].clone()])
    );
    // An empty pattern filters nothing.
    let (code, everything) = list(&mut fixture.stream, "");
    assert_eq!(code, NONE);
    assert!(
        ids.iter().all(|id| everything.contains(id)),
        "{everything:?}"
    );
    // Not a regular expression: only the error (Kafka's InvalidRegularExpression).
    assert_eq!(
        list(&mut fixture.stream, "orders-("),
        (INVALID_REGULAR_EXPRESSION, vec![])
    );
    fixture.broker.stop_graceful();
}

/// One v10 request written with our own codec (kafka-protocol 0.18 stops at v9): request
/// header v2, the body, then the answer's body after response header v1.
fn call_v10(
    stream: &mut TcpStream,
    api_key: ApiKey,
    body: &bytes::BytesMut,
    correlation_id: i32,
) -> Bytes {
    let header = RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(10)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(str_bytes(CLIENT_ID)));
    let mut payload = Vec::new();
    header
        .encode(&mut payload, 2)
        .expect("encode request header");
    payload.extend_from_slice(body);
    stream
        .write_all(&frame(&payload))
        .expect("send v10 request");
    let mut answer = Bytes::from(read_frame(stream).expect("v10 answer"));
    let header = ResponseHeader::decode(&mut answer, 1).expect("response header v1");
    assert_eq!(header.correlation_id, correlation_id);
    answer
}

#[test]
fn offset_commit_and_fetch_v10_name_topics_by_id_and_refuse_unknown_ids() {
    let mut fixture = Fixture::start();
    assert_eq!(fixture.advertised(ApiKey::OffsetCommit).1, 10);
    assert_eq!(fixture.advertised(ApiKey::OffsetFetch).1, 10);
    let (_, topic_id) = fixture.create_topic("offsets-v10", 2);
    let unknown_id = Uuid::from_u128(0xdead_beef);
    let group = unique_topic("offsets-v10-group");
    let commit = OffsetCommitRequestV10 {
        group_id: group.clone(),
        generation_id_or_member_epoch: -1,
        member_id: String::new(),
        group_instance_id: None,
        topics: [(topic_id, 0, 17), (topic_id, 1, 18), (unknown_id, 0, 5)]
            .iter()
            .map(|(id, partition, offset)| CommitTopicV10 {
                topic_id: *id,
                partitions: vec![CommitPartitionV10 {
                    partition_index: *partition,
                    committed_offset: *offset,
                    committed_leader_epoch: -1,
                    committed_metadata: Some("m".into()),
                }],
            })
            .collect(),
    };
    let mut body = bytes::BytesMut::new();
    commit.encode(&mut body);
    let stream = &mut fixture.stream;
    let committed = poll_until(READY_TIMEOUT, "offset commit v10", || {
        let mut answer = call_v10(stream, ApiKey::OffsetCommit, &body, 1_001);
        let response = OffsetCommitResponseV10::decode(&mut answer).expect("decodes");
        assert!(answer.is_empty(), "trailing bytes");
        let errors: Vec<(Uuid, i32, i16)> = response
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.topic_id, p.partition_index, p.error_code))
            })
            .collect();
        errors
            .iter()
            .all(|(id, _, code)| *id == unknown_id || *code == NONE)
            .then_some(errors)
    });
    assert_eq!(
        committed,
        vec![
            (topic_id, 0, NONE),
            (topic_id, 1, NONE),
            (unknown_id, 0, UNKNOWN_TOPIC_ID)
        ]
    );

    let fetch = |stream: &mut TcpStream, topics: Option<Vec<FetchTopicV10>>| {
        let request = OffsetFetchRequestV10 {
            groups: vec![FetchGroupV10 {
                group_id: group.clone(),
                member_id: None,
                member_epoch: -1,
                topics,
            }],
            require_stable: false,
        };
        let mut body = bytes::BytesMut::new();
        request.encode(&mut body);
        let mut answer = call_v10(stream, ApiKey::OffsetFetch, &body, 1_002);
        let response = OffsetFetchResponseV10::decode(&mut answer).expect("decodes");
        assert!(answer.is_empty(), "trailing bytes");
        assert_eq!(response.groups.len(), 1);
        assert_eq!(response.groups[0].error_code, NONE);
        let mut offsets: Vec<(Uuid, i32, i64, i16)> = response.groups[0]
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| {
                    (
                        t.topic_id,
                        p.partition_index,
                        p.committed_offset,
                        p.error_code,
                    )
                })
            })
            .collect();
        offsets.sort();
        offsets
    };
    let named = fetch(
        &mut fixture.stream,
        Some(vec![
            FetchTopicV10 {
                topic_id,
                partition_indexes: vec![0, 1],
            },
            FetchTopicV10 {
                topic_id: unknown_id,
                partition_indexes: vec![3],
            },
        ]),
    );
    let mut expected = vec![
        (topic_id, 0, 17, NONE),
        (topic_id, 1, 18, NONE),
        (unknown_id, 3, -1, UNKNOWN_TOPIC_ID),
    ];
    expected.sort();
    assert_eq!(named, expected);
    assert_eq!(
        fetch(&mut fixture.stream, None),
        vec![(topic_id, 0, 17, NONE), (topic_id, 1, 18, NONE)]
    );
    fixture.broker.stop_graceful();
}
