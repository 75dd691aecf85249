//! Request decoding: one frame (without its length prefix) in, a typed request
//! out, or a reason the connection must answer specially or close. Never
//! panics on any input; the fuzz/proptest targets drive this function.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Decodable;
use thiserror::Error;

use super::offsets_v10::{OffsetCommitRequestV10, OffsetFetchRequestV10, TOPIC_ID_VERSION};
use super::versions;

/// A decoded request: its header and its body.
#[derive(Debug)]
pub struct Request {
    pub header: RequestHeader,
    pub api_key: ApiKey,
    pub body: RequestBody,
}

impl Request {
    pub fn version(&self) -> i16 {
        self.header.request_api_version
    }
    pub fn correlation_id(&self) -> i32 {
        self.header.correlation_id
    }
}

/// The request bodies corelog understands (see `versions::SUPPORTED_APIS`).
#[derive(Debug)]
pub enum RequestBody {
    Produce(ProduceRequest),
    Fetch(FetchRequest),
    ListOffsets(ListOffsetsRequest),
    Metadata(MetadataRequest),
    ApiVersions(ApiVersionsRequest),
    CreateTopics(CreateTopicsRequest),
    DeleteTopics(DeleteTopicsRequest),
    InitProducerId(InitProducerIdRequest),
    DescribeConfigs(DescribeConfigsRequest),
    DescribeCluster(DescribeClusterRequest),
    DescribeQuorum(DescribeQuorumRequest),
    FindCoordinator(FindCoordinatorRequest),
    JoinGroup(JoinGroupRequest),
    SyncGroup(SyncGroupRequest),
    Heartbeat(HeartbeatRequest),
    LeaveGroup(LeaveGroupRequest),
    OffsetCommit(OffsetCommitRequest),
    OffsetFetch(OffsetFetchRequest),
    /// v10+: topics by id, which the kafka-protocol codec cannot decode.
    OffsetCommitV10(OffsetCommitRequestV10),
    /// v10+: topics by id, which the kafka-protocol codec cannot decode.
    OffsetFetchV10(OffsetFetchRequestV10),
    ListGroups(ListGroupsRequest),
    DescribeGroups(DescribeGroupsRequest),
    DeleteGroups(DeleteGroupsRequest),
    ConsumerGroupDescribe(ConsumerGroupDescribeRequest),
    ConsumerGroupHeartbeat(ConsumerGroupHeartbeatRequest),
    OffsetDelete(OffsetDeleteRequest),
    AlterConfigs(AlterConfigsRequest),
    IncrementalAlterConfigs(IncrementalAlterConfigsRequest),
    CreatePartitions(CreatePartitionsRequest),
    DeleteRecords(DeleteRecordsRequest),
    OffsetForLeaderEpoch(OffsetForLeaderEpochRequest),
    AddPartitionsToTxn(AddPartitionsToTxnRequest),
    AddOffsetsToTxn(AddOffsetsToTxnRequest),
    EndTxn(EndTxnRequest),
    TxnOffsetCommit(TxnOffsetCommitRequest),
    WriteTxnMarkers(WriteTxnMarkersRequest),
    DescribeTransactions(DescribeTransactionsRequest),
    ListTransactions(ListTransactionsRequest),
    ElectLeaders(ElectLeadersRequest),
    AlterPartitionReassignments(AlterPartitionReassignmentsRequest),
    ListPartitionReassignments(ListPartitionReassignmentsRequest),
    DescribeLogDirs(DescribeLogDirsRequest),
    DescribeTopicPartitions(DescribeTopicPartitionsRequest),
}

/// Why a frame did not become a `Request`.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than the fixed header fields (api key, version, correlation id).
    #[error("frame of {0} bytes is shorter than a request header")]
    TooShort(usize),
    /// An API key we do not implement: Kafka closes the connection.
    #[error("unknown or unsupported api key {0}")]
    UnknownApiKey(i16),
    /// ApiVersions at a version we do not know: answer v0 with UNSUPPORTED_VERSION
    /// so the client can retry lower (KIP-511 behaviour of the Java broker).
    #[error("ApiVersions v{version} is not supported")]
    UnsupportedApiVersionsVersion { version: i16, correlation_id: i32 },
    /// A version of another API we do not implement: the connection is closed.
    #[error("{api_key:?} v{version} is not supported")]
    UnsupportedVersion { api_key: ApiKey, version: i16 },
    /// The bytes do not decode as the announced request.
    #[error("malformed {api_key:?} v{version} request: {reason}")]
    Malformed {
        api_key: ApiKey,
        version: i16,
        reason: String,
    },
}

/// Decodes a request frame. `frame` excludes the 4-byte length prefix.
pub fn decode_request(mut frame: Bytes) -> Result<Request, DecodeError> {
    if frame.len() < 8 {
        return Err(DecodeError::TooShort(frame.len()));
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let api_key = ApiKey::try_from(raw_key).map_err(|_| DecodeError::UnknownApiKey(raw_key))?;
    if versions::supported_range(api_key).is_none() {
        return Err(DecodeError::UnknownApiKey(raw_key));
    }
    if !versions::is_supported(api_key, version) {
        if api_key == ApiKey::ApiVersions {
            return Err(DecodeError::UnsupportedApiVersionsVersion {
                version,
                correlation_id,
            });
        }
        return Err(DecodeError::UnsupportedVersion { api_key, version });
    }
    let malformed = |reason: String| DecodeError::Malformed {
        api_key,
        version,
        reason,
    };
    let header_version = api_key.request_header_version(version);
    let header = RequestHeader::decode(&mut frame, header_version)
        .map_err(|error| malformed(format!("header: {error}")))?;
    let body =
        decode_body(api_key, version, &mut frame).map_err(|error| malformed(error.to_string()))?;
    // Kafka ignores trailing bytes after the body; so do we, but they are
    // usually a sign of a client bug worth a debug line.
    if frame.has_remaining() {
        tracing::debug!(
            ?api_key,
            version,
            trailing = frame.remaining(),
            "trailing bytes after request body"
        );
    }
    Ok(Request {
        header,
        api_key,
        body,
    })
}

fn decode_body(api_key: ApiKey, version: i16, frame: &mut Bytes) -> anyhow::Result<RequestBody> {
    Ok(match api_key {
        ApiKey::Produce => RequestBody::Produce(ProduceRequest::decode(frame, version)?),
        ApiKey::Fetch => RequestBody::Fetch(FetchRequest::decode(frame, version)?),
        ApiKey::ListOffsets => {
            RequestBody::ListOffsets(ListOffsetsRequest::decode(frame, version)?)
        }
        ApiKey::Metadata => RequestBody::Metadata(MetadataRequest::decode(frame, version)?),
        ApiKey::ApiVersions => {
            RequestBody::ApiVersions(ApiVersionsRequest::decode(frame, version)?)
        }
        ApiKey::CreateTopics => {
            RequestBody::CreateTopics(CreateTopicsRequest::decode(frame, version)?)
        }
        ApiKey::DeleteTopics => {
            RequestBody::DeleteTopics(DeleteTopicsRequest::decode(frame, version)?)
        }
        ApiKey::InitProducerId => {
            RequestBody::InitProducerId(InitProducerIdRequest::decode(frame, version)?)
        }
        ApiKey::DescribeConfigs => {
            RequestBody::DescribeConfigs(DescribeConfigsRequest::decode(frame, version)?)
        }
        ApiKey::DescribeCluster => {
            RequestBody::DescribeCluster(DescribeClusterRequest::decode(frame, version)?)
        }
        ApiKey::DescribeQuorum => {
            RequestBody::DescribeQuorum(DescribeQuorumRequest::decode(frame, version)?)
        }
        ApiKey::FindCoordinator => {
            RequestBody::FindCoordinator(FindCoordinatorRequest::decode(frame, version)?)
        }
        ApiKey::JoinGroup => RequestBody::JoinGroup(JoinGroupRequest::decode(frame, version)?),
        ApiKey::SyncGroup => RequestBody::SyncGroup(SyncGroupRequest::decode(frame, version)?),
        ApiKey::Heartbeat => RequestBody::Heartbeat(HeartbeatRequest::decode(frame, version)?),
        ApiKey::LeaveGroup => RequestBody::LeaveGroup(LeaveGroupRequest::decode(frame, version)?),
        ApiKey::OffsetCommit if version >= TOPIC_ID_VERSION => {
            RequestBody::OffsetCommitV10(OffsetCommitRequestV10::decode(frame)?)
        }
        ApiKey::OffsetCommit => {
            RequestBody::OffsetCommit(OffsetCommitRequest::decode(frame, version)?)
        }
        ApiKey::OffsetFetch if version >= TOPIC_ID_VERSION => {
            RequestBody::OffsetFetchV10(OffsetFetchRequestV10::decode(frame)?)
        }
        ApiKey::OffsetFetch => {
            RequestBody::OffsetFetch(OffsetFetchRequest::decode(frame, version)?)
        }
        ApiKey::ListGroups => RequestBody::ListGroups(ListGroupsRequest::decode(frame, version)?),
        ApiKey::DescribeGroups => {
            RequestBody::DescribeGroups(DescribeGroupsRequest::decode(frame, version)?)
        }
        ApiKey::DeleteGroups => {
            RequestBody::DeleteGroups(DeleteGroupsRequest::decode(frame, version)?)
        }
        ApiKey::ConsumerGroupDescribe => RequestBody::ConsumerGroupDescribe(
            ConsumerGroupDescribeRequest::decode(frame, version)?,
        ),
        ApiKey::ConsumerGroupHeartbeat => RequestBody::ConsumerGroupHeartbeat(
            ConsumerGroupHeartbeatRequest::decode(frame, version)?,
        ),
        ApiKey::OffsetDelete => {
            RequestBody::OffsetDelete(OffsetDeleteRequest::decode(frame, version)?)
        }
        ApiKey::AlterConfigs => {
            RequestBody::AlterConfigs(AlterConfigsRequest::decode(frame, version)?)
        }
        ApiKey::IncrementalAlterConfigs => RequestBody::IncrementalAlterConfigs(
            IncrementalAlterConfigsRequest::decode(frame, version)?,
        ),
        ApiKey::CreatePartitions => {
            RequestBody::CreatePartitions(CreatePartitionsRequest::decode(frame, version)?)
        }
        ApiKey::OffsetForLeaderEpoch => {
            RequestBody::OffsetForLeaderEpoch(OffsetForLeaderEpochRequest::decode(frame, version)?)
        }
        ApiKey::DeleteRecords => {
            RequestBody::DeleteRecords(DeleteRecordsRequest::decode(frame, version)?)
        }
        ApiKey::AddPartitionsToTxn => {
            RequestBody::AddPartitionsToTxn(AddPartitionsToTxnRequest::decode(frame, version)?)
        }
        ApiKey::AddOffsetsToTxn => {
            RequestBody::AddOffsetsToTxn(AddOffsetsToTxnRequest::decode(frame, version)?)
        }
        ApiKey::EndTxn => RequestBody::EndTxn(EndTxnRequest::decode(frame, version)?),
        ApiKey::TxnOffsetCommit => {
            RequestBody::TxnOffsetCommit(TxnOffsetCommitRequest::decode(frame, version)?)
        }
        ApiKey::WriteTxnMarkers => {
            RequestBody::WriteTxnMarkers(WriteTxnMarkersRequest::decode(frame, version)?)
        }
        ApiKey::DescribeTransactions => {
            RequestBody::DescribeTransactions(DescribeTransactionsRequest::decode(frame, version)?)
        }
        ApiKey::ListTransactions => {
            RequestBody::ListTransactions(ListTransactionsRequest::decode(frame, version)?)
        }
        ApiKey::ElectLeaders => {
            RequestBody::ElectLeaders(ElectLeadersRequest::decode(frame, version)?)
        }
        ApiKey::AlterPartitionReassignments => RequestBody::AlterPartitionReassignments(
            AlterPartitionReassignmentsRequest::decode(frame, version)?,
        ),
        ApiKey::ListPartitionReassignments => RequestBody::ListPartitionReassignments(
            ListPartitionReassignmentsRequest::decode(frame, version)?,
        ),
        ApiKey::DescribeLogDirs => {
            RequestBody::DescribeLogDirs(DescribeLogDirsRequest::decode(frame, version)?)
        }
        ApiKey::DescribeTopicPartitions => RequestBody::DescribeTopicPartitions(
            DescribeTopicPartitionsRequest::decode(frame, version)?,
        ),
        other => anyhow::bail!("no decoder wired for {other:?}"),
    })
}

/// Property tests for the "never panics, hangs or aborts" promise above, plus
/// round trips of a valid request for every advertised API version. The fuzz
/// target in `fuzz/` drives the same function with coverage guidance.
#[cfg(test)]
pub(crate) mod proptests {
    use super::*;
    use crate::protocol::record_batch::proptests::arbitrary_bytes;
    use crate::protocol::record_batch::{split_batches, tests::sample_batch, validate_batch};
    use bytes::BytesMut;
    use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
    use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::protocol::{Encodable, StrBytes};
    use proptest::prelude::*;
    use proptest::sample::Index;

    /// Cases per property: enough to hit every API version with every kind of
    /// mutation many times, while the whole module stays within a few seconds.
    const CASES: u32 = 3_000;

    /// Array and string lengths that ask for absurd allocations: `i32::MAX`,
    /// `-1` (null), `i32::MIN`, and `u32::MAX - 1` as seen by compact lengths.
    const HOSTILE_WORDS: [u32; 4] = [0x7fff_ffff, 0xffff_ffff, 0x8000_0000, 0xffff_fffe];
    /// `u32::MAX` as an unsigned varint: the largest compact array or string length.
    const HOSTILE_VARINT: [u8; 5] = [0xff, 0xff, 0xff, 0xff, 0x0f];

    /// Every (api key, version) pair corelog advertises.
    pub(crate) fn supported_versions() -> Vec<(ApiKey, i16)> {
        versions::SUPPORTED_APIS
            .iter()
            .flat_map(|api| {
                (api.min_version..=api.max_version).map(move |version| (api.key, version))
            })
            .collect()
    }

    fn name(text: &'static str) -> StrBytes {
        StrBytes::from_static_str(text)
    }

    fn topic(text: &'static str) -> TopicName {
        TopicName(name(text))
    }

    /// A small but non-trivial body of `api_key` that encodes at `version`:
    /// only fields that exist at that version are set (the codecs refuse to
    /// encode a non-default field the version does not have).
    pub(crate) fn sample_body(api_key: ApiKey, version: i16) -> RequestBody {
        match api_key {
            ApiKey::Produce => RequestBody::Produce(
                ProduceRequest::default()
                    .with_acks(-1)
                    .with_timeout_ms(30_000)
                    .with_topic_data(vec![if version >= 13 {
                        // v13 names the topic by id (KIP-516).
                        TopicProduceData::default()
                            .with_topic_id(uuid::Uuid::from_u128(0x0123_4567_89ab_cdef))
                    } else {
                        TopicProduceData::default().with_name(topic("orders"))
                    }
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(Bytes::from(sample_batch(0, 3, 1_000)))),
                        PartitionProduceData::default()
                            .with_index(1)
                            .with_records(Some(Bytes::from(sample_batch(0, 1, 2_000)))),
                    ])]),
            ),
            ApiKey::Fetch => {
                let mut fetch_topic = FetchTopic::default().with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(42)
                        .with_partition_max_bytes(1 << 20),
                    FetchPartition::default()
                        .with_partition(3)
                        .with_fetch_offset(7)
                        .with_partition_max_bytes(4096),
                ]);
                if version >= 13 {
                    fetch_topic.topic_id = uuid::Uuid::from_u128(0x0123_4567_89ab_cdef);
                } else {
                    fetch_topic.topic = topic("orders");
                }
                if version >= 18 {
                    // The follower's known high watermark (KIP-1166).
                    for partition in &mut fetch_topic.partitions {
                        partition.high_watermark = 40;
                    }
                }
                RequestBody::Fetch(
                    FetchRequest::default()
                        .with_max_wait_ms(500)
                        .with_min_bytes(1)
                        .with_max_bytes(1 << 20)
                        .with_topics(vec![fetch_topic]),
                )
            }
            ApiKey::ListOffsets => RequestBody::ListOffsets(
                ListOffsetsRequest::default()
                    .with_replica_id(BrokerId(-1))
                    .with_topics(vec![ListOffsetsTopic::default()
                        .with_name(topic("orders"))
                        .with_partitions(vec![
                            ListOffsetsPartition::default()
                                .with_partition_index(0)
                                .with_timestamp(-1),
                            ListOffsetsPartition::default()
                                .with_partition_index(1)
                                .with_timestamp(-2),
                        ])]),
            ),
            ApiKey::Metadata => {
                RequestBody::Metadata(MetadataRequest::default().with_topics(Some(vec![
                    MetadataRequestTopic::default().with_name(Some(topic("orders"))),
                    MetadataRequestTopic::default().with_name(Some(topic("payments"))),
                ])))
            }
            ApiKey::ApiVersions => {
                let mut request = ApiVersionsRequest::default();
                if version >= 3 {
                    request.client_software_name = name("corelog-proptest");
                    request.client_software_version = name("1.0");
                }
                RequestBody::ApiVersions(request)
            }
            ApiKey::CreateTopics => RequestBody::CreateTopics(
                CreateTopicsRequest::default()
                    .with_timeout_ms(5_000)
                    .with_topics(vec![CreatableTopic::default()
                        .with_name(topic("orders"))
                        .with_num_partitions(3)
                        .with_replication_factor(1)
                        .with_configs(vec![CreatableTopicConfig::default()
                            .with_name(name("retention.ms"))
                            .with_value(Some(name("60000")))])]),
            ),
            ApiKey::DeleteTopics => {
                let request = DeleteTopicsRequest::default().with_timeout_ms(5_000);
                RequestBody::DeleteTopics(if version >= 6 {
                    request.with_topics(vec![
                        DeleteTopicState::default().with_name(Some(topic("orders")))
                    ])
                } else {
                    request.with_topic_names(vec![topic("orders"), topic("payments")])
                })
            }
            ApiKey::InitProducerId => RequestBody::InitProducerId(
                InitProducerIdRequest::default().with_transaction_timeout_ms(60_000),
            ),
            ApiKey::DescribeConfigs => RequestBody::DescribeConfigs(
                DescribeConfigsRequest::default().with_resources(vec![
                    DescribeConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(name("orders"))
                        .with_configuration_keys(Some(vec![
                            name("retention.ms"),
                            name("segment.bytes"),
                        ])),
                ]),
            ),
            ApiKey::DescribeCluster => {
                let request = DescribeClusterRequest::default()
                    .with_include_cluster_authorized_operations(true);
                RequestBody::DescribeCluster(if version >= 2 {
                    request.with_include_fenced_brokers(true)
                } else {
                    request
                })
            }
            ApiKey::DescribeQuorum => {
                use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
                RequestBody::DescribeQuorum(DescribeQuorumRequest::default().with_topics(vec![
                    TopicData::default()
                        .with_topic_name(topic("__cluster_metadata"))
                        .with_partitions(vec![PartitionData::default().with_partition_index(0)]),
                ]))
            }
            ApiKey::FindCoordinator => {
                let request = if version >= 4 {
                    FindCoordinatorRequest::default()
                        .with_coordinator_keys(vec![name("orders-group"), name("billing")])
                } else {
                    FindCoordinatorRequest::default().with_key(name("orders-group"))
                };
                RequestBody::FindCoordinator(request)
            }
            ApiKey::JoinGroup => {
                use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
                let mut request = JoinGroupRequest::default()
                    .with_group_id(GroupId(name("orders-group")))
                    .with_session_timeout_ms(45_000)
                    .with_protocol_type(name("consumer"))
                    .with_protocols(vec![JoinGroupRequestProtocol::default()
                        .with_name(name("range"))
                        .with_metadata(Bytes::from_static(b"\0\x01\0\0\0\x01\0\x06orders"))]);
                if version >= 1 {
                    request.rebalance_timeout_ms = 300_000;
                }
                if version >= 5 {
                    request.group_instance_id = Some(name("instance-1"));
                }
                RequestBody::JoinGroup(request)
            }
            ApiKey::SyncGroup => {
                use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
                RequestBody::SyncGroup(
                    SyncGroupRequest::default()
                        .with_group_id(GroupId(name("orders-group")))
                        .with_generation_id(3)
                        .with_member_id(name("member-1"))
                        .with_assignments(vec![SyncGroupRequestAssignment::default()
                            .with_member_id(name("member-1"))
                            .with_assignment(Bytes::from_static(b"\0\x01"))]),
                )
            }
            ApiKey::Heartbeat => RequestBody::Heartbeat(
                HeartbeatRequest::default()
                    .with_group_id(GroupId(name("orders-group")))
                    .with_generation_id(3)
                    .with_member_id(name("member-1")),
            ),
            ApiKey::LeaveGroup => {
                use kafka_protocol::messages::leave_group_request::MemberIdentity;
                let request =
                    LeaveGroupRequest::default().with_group_id(GroupId(name("orders-group")));
                RequestBody::LeaveGroup(if version >= 3 {
                    request.with_members(vec![
                        MemberIdentity::default().with_member_id(name("member-1"))
                    ])
                } else {
                    request.with_member_id(name("member-1"))
                })
            }
            ApiKey::OffsetCommit if version >= TOPIC_ID_VERSION => {
                use crate::protocol::offsets_v10::{CommitPartitionV10, CommitTopicV10};
                RequestBody::OffsetCommitV10(OffsetCommitRequestV10 {
                    group_id: "orders-group".into(),
                    generation_id_or_member_epoch: 3,
                    member_id: "member-1".into(),
                    group_instance_id: None,
                    topics: vec![CommitTopicV10 {
                        topic_id: uuid::Uuid::from_u128(0x0123_4567_89ab_cdef),
                        partitions: vec![CommitPartitionV10 {
                            partition_index: 2,
                            committed_offset: 1_234,
                            committed_leader_epoch: -1,
                            committed_metadata: Some("meta".into()),
                        }],
                    }],
                })
            }
            ApiKey::OffsetFetch if version >= TOPIC_ID_VERSION => {
                use crate::protocol::offsets_v10::{FetchGroupV10, FetchTopicV10};
                RequestBody::OffsetFetchV10(OffsetFetchRequestV10 {
                    groups: vec![FetchGroupV10 {
                        group_id: "orders-group".into(),
                        member_id: None,
                        member_epoch: -1,
                        topics: Some(vec![FetchTopicV10 {
                            topic_id: uuid::Uuid::from_u128(0x0123_4567_89ab_cdef),
                            partition_indexes: vec![0, 2],
                        }]),
                    }],
                    require_stable: false,
                })
            }
            ApiKey::OffsetCommit => {
                use kafka_protocol::messages::offset_commit_request::{
                    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
                };
                RequestBody::OffsetCommit(
                    OffsetCommitRequest::default()
                        .with_group_id(GroupId(name("orders-group")))
                        .with_generation_id_or_member_epoch(3)
                        .with_member_id(name("member-1"))
                        .with_topics(vec![OffsetCommitRequestTopic::default()
                            .with_name(topic("orders"))
                            .with_partitions(vec![OffsetCommitRequestPartition::default()
                                .with_partition_index(2)
                                .with_committed_offset(1_234)
                                .with_committed_metadata(Some(name("meta")))])]),
                )
            }
            ApiKey::OffsetFetch => {
                use kafka_protocol::messages::offset_fetch_request::{
                    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
                };
                RequestBody::OffsetFetch(if version >= 8 {
                    OffsetFetchRequest::default().with_groups(vec![
                        OffsetFetchRequestGroup::default()
                            .with_group_id(GroupId(name("orders-group")))
                            .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                                .with_name(topic("orders"))
                                .with_partition_indexes(vec![0, 2])])),
                    ])
                } else {
                    OffsetFetchRequest::default()
                        .with_group_id(GroupId(name("orders-group")))
                        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                            .with_name(topic("orders"))
                            .with_partition_indexes(vec![0, 2])]))
                })
            }
            ApiKey::ListGroups => RequestBody::ListGroups(if version >= 4 {
                ListGroupsRequest::default().with_states_filter(vec![name("Stable")])
            } else {
                ListGroupsRequest::default()
            }),
            ApiKey::DescribeGroups => {
                RequestBody::DescribeGroups(DescribeGroupsRequest::default().with_groups(vec![
                    GroupId(name("orders-group")),
                    GroupId(name("billing")),
                ]))
            }
            ApiKey::ConsumerGroupDescribe => RequestBody::ConsumerGroupDescribe(
                ConsumerGroupDescribeRequest::default()
                    .with_group_ids(vec![GroupId(name("orders-group"))]),
            ),
            ApiKey::ConsumerGroupHeartbeat => RequestBody::ConsumerGroupHeartbeat(
                ConsumerGroupHeartbeatRequest::default()
                    .with_group_id(GroupId(name("orders-group")))
                    .with_member_id(name("member-1"))
                    .with_rebalance_timeout_ms(300_000)
                    .with_subscribed_topic_names(Some(vec![TopicName(name("orders"))]))
                    .with_topic_partitions(Some(Vec::new())),
            ),
            ApiKey::DeleteGroups => RequestBody::DeleteGroups(
                DeleteGroupsRequest::default()
                    .with_groups_names(vec![GroupId(name("orders-group"))]),
            ),
            ApiKey::OffsetDelete => {
                use kafka_protocol::messages::offset_delete_request::{
                    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
                };
                RequestBody::OffsetDelete(
                    OffsetDeleteRequest::default()
                        .with_group_id(GroupId(name("orders-group")))
                        .with_topics(vec![OffsetDeleteRequestTopic::default()
                            .with_name(topic("orders"))
                            .with_partitions(vec![
                                OffsetDeleteRequestPartition::default().with_partition_index(1)
                            ])]),
                )
            }
            ApiKey::AlterConfigs => {
                use kafka_protocol::messages::alter_configs_request::{
                    AlterConfigsResource, AlterableConfig,
                };
                RequestBody::AlterConfigs(AlterConfigsRequest::default().with_resources(vec![
                    AlterConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(name("orders"))
                        .with_configs(vec![AlterableConfig::default()
                            .with_name(name("retention.ms"))
                            .with_value(Some(name("60000")))]),
                ]))
            }
            ApiKey::IncrementalAlterConfigs => {
                use kafka_protocol::messages::incremental_alter_configs_request::{
                    AlterConfigsResource, AlterableConfig,
                };
                RequestBody::IncrementalAlterConfigs(
                    IncrementalAlterConfigsRequest::default().with_resources(vec![
                        AlterConfigsResource::default()
                            .with_resource_type(2)
                            .with_resource_name(name("orders"))
                            .with_configs(vec![AlterableConfig::default()
                                .with_name(name("retention.ms"))
                                .with_config_operation(0)
                                .with_value(Some(name("60000")))]),
                    ]),
                )
            }
            ApiKey::CreatePartitions => {
                use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
                RequestBody::CreatePartitions(
                    CreatePartitionsRequest::default()
                        .with_timeout_ms(30_000)
                        .with_topics(vec![CreatePartitionsTopic::default()
                            .with_name(topic("orders"))
                            .with_count(6)]),
                )
            }
            ApiKey::OffsetForLeaderEpoch => {
                use kafka_protocol::messages::offset_for_leader_epoch_request::{
                    OffsetForLeaderPartition, OffsetForLeaderTopic,
                };
                RequestBody::OffsetForLeaderEpoch(
                    OffsetForLeaderEpochRequest::default()
                        .with_replica_id(BrokerId(-1))
                        .with_topics(vec![OffsetForLeaderTopic::default()
                            .with_topic(topic("orders"))
                            .with_partitions(vec![OffsetForLeaderPartition::default()
                                .with_partition(0)
                                .with_current_leader_epoch(3)
                                .with_leader_epoch(2)])]),
                )
            }
            ApiKey::DeleteRecords => {
                use kafka_protocol::messages::delete_records_request::{
                    DeleteRecordsPartition, DeleteRecordsTopic,
                };
                RequestBody::DeleteRecords(
                    DeleteRecordsRequest::default()
                        .with_timeout_ms(30_000)
                        .with_topics(vec![DeleteRecordsTopic::default()
                            .with_name(topic("orders"))
                            .with_partitions(vec![DeleteRecordsPartition::default()
                                .with_partition_index(0)
                                .with_offset(42)])]),
                )
            }
            ApiKey::AddPartitionsToTxn => {
                use kafka_protocol::messages::add_partitions_to_txn_request::{
                    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
                };
                let topics = vec![AddPartitionsToTxnTopic::default()
                    .with_name(topic("orders"))
                    .with_partitions(vec![0, 1])];
                let request = AddPartitionsToTxnRequest::default();
                RequestBody::AddPartitionsToTxn(if version >= 4 {
                    request.with_transactions(vec![AddPartitionsToTxnTransaction::default()
                        .with_transactional_id(TransactionalId(name("txn-1")))
                        .with_producer_id(ProducerId(7))
                        .with_producer_epoch(1)
                        .with_verify_only(true)
                        .with_topics(topics)])
                } else {
                    request
                        .with_v3_and_below_transactional_id(TransactionalId(name("txn-1")))
                        .with_v3_and_below_producer_id(ProducerId(7))
                        .with_v3_and_below_producer_epoch(1)
                        .with_v3_and_below_topics(topics)
                })
            }
            ApiKey::AddOffsetsToTxn => RequestBody::AddOffsetsToTxn(
                AddOffsetsToTxnRequest::default()
                    .with_transactional_id(TransactionalId(name("txn-1")))
                    .with_producer_id(ProducerId(7))
                    .with_producer_epoch(1)
                    .with_group_id(GroupId(name("group-1"))),
            ),
            ApiKey::EndTxn => RequestBody::EndTxn(
                EndTxnRequest::default()
                    .with_transactional_id(TransactionalId(name("txn-1")))
                    .with_producer_id(ProducerId(7))
                    .with_producer_epoch(1)
                    .with_committed(true),
            ),
            ApiKey::TxnOffsetCommit => {
                use kafka_protocol::messages::txn_offset_commit_request::{
                    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
                };
                let request = TxnOffsetCommitRequest::default()
                    .with_transactional_id(TransactionalId(name("txn-1")))
                    .with_group_id(GroupId(name("group-1")))
                    .with_producer_id(ProducerId(7))
                    .with_producer_epoch(1)
                    .with_topics(vec![TxnOffsetCommitRequestTopic::default()
                        .with_name(topic("orders"))
                        .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(42)])]);
                RequestBody::TxnOffsetCommit(if version >= 3 {
                    request
                        .with_generation_id(3)
                        .with_member_id(name("member-1"))
                } else {
                    request
                })
            }
            ApiKey::WriteTxnMarkers => {
                use kafka_protocol::messages::write_txn_markers_request::{
                    WritableTxnMarker, WritableTxnMarkerTopic,
                };
                RequestBody::WriteTxnMarkers(WriteTxnMarkersRequest::default().with_markers(
                    vec![WritableTxnMarker::default()
                        .with_producer_id(ProducerId(7))
                        .with_producer_epoch(1)
                        .with_transaction_result(true)
                        .with_coordinator_epoch(0)
                        .with_topics(vec![WritableTxnMarkerTopic::default()
                            .with_name(topic("orders"))
                            .with_partition_indexes(vec![0, 1])])],
                ))
            }
            ApiKey::DescribeTransactions => RequestBody::DescribeTransactions(
                DescribeTransactionsRequest::default()
                    .with_transactional_ids(vec![TransactionalId(name("txn-1"))]),
            ),
            ApiKey::ListTransactions => {
                let request = ListTransactionsRequest::default()
                    .with_state_filters(vec![name("Ongoing")])
                    .with_producer_id_filters(vec![ProducerId(7)]);
                let request = if version >= 1 {
                    request.with_duration_filter(60_000)
                } else {
                    request
                };
                RequestBody::ListTransactions(if version >= 2 {
                    request.with_transactional_id_pattern(Some(name("orders-.*")))
                } else {
                    request
                })
            }
            ApiKey::ElectLeaders => {
                use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
                let request = ElectLeadersRequest::default()
                    .with_topic_partitions(Some(vec![TopicPartitions::default()
                        .with_topic(topic("orders"))
                        .with_partitions(vec![0, 1])]))
                    .with_timeout_ms(30_000);
                RequestBody::ElectLeaders(if version >= 1 {
                    request.with_election_type(1)
                } else {
                    request
                })
            }
            ApiKey::AlterPartitionReassignments => {
                use kafka_protocol::messages::alter_partition_reassignments_request::{
                    ReassignablePartition, ReassignableTopic,
                };
                RequestBody::AlterPartitionReassignments(
                    AlterPartitionReassignmentsRequest::default()
                        .with_timeout_ms(30_000)
                        .with_topics(vec![ReassignableTopic::default()
                            .with_name(topic("orders"))
                            .with_partitions(vec![
                                ReassignablePartition::default()
                                    .with_partition_index(0)
                                    .with_replicas(Some(vec![BrokerId(2), BrokerId(3)])),
                                ReassignablePartition::default().with_partition_index(1),
                            ])]),
                )
            }
            ApiKey::ListPartitionReassignments => {
                use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
                RequestBody::ListPartitionReassignments(
                    ListPartitionReassignmentsRequest::default()
                        .with_timeout_ms(30_000)
                        .with_topics(Some(vec![ListPartitionReassignmentsTopics::default()
                            .with_name(topic("orders"))
                            .with_partition_indexes(vec![0])])),
                )
            }
            ApiKey::DescribeLogDirs => {
                use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
                RequestBody::DescribeLogDirs(DescribeLogDirsRequest::default().with_topics(Some(
                    vec![DescribableLogDirTopic::default()
                        .with_topic(topic("orders"))
                        .with_partitions(vec![0, 1])],
                )))
            }
            ApiKey::DescribeTopicPartitions => {
                use kafka_protocol::messages::describe_topic_partitions_request::{
                    Cursor, TopicRequest,
                };
                RequestBody::DescribeTopicPartitions(
                    DescribeTopicPartitionsRequest::default()
                        .with_topics(vec![TopicRequest::default().with_name(topic("orders"))])
                        .with_response_partition_limit(100)
                        .with_cursor(Some(
                            Cursor::default()
                                .with_topic_name(topic("orders"))
                                .with_partition_index(1),
                        )),
                )
            }
            other => panic!("add {other:?} to sample_body"),
        }
    }

    fn encode_body(body: &RequestBody, version: i16, buf: &mut BytesMut) -> anyhow::Result<()> {
        match body {
            RequestBody::Produce(body) => body.encode(buf, version),
            RequestBody::Fetch(body) => body.encode(buf, version),
            RequestBody::ListOffsets(body) => body.encode(buf, version),
            RequestBody::Metadata(body) => body.encode(buf, version),
            RequestBody::ApiVersions(body) => body.encode(buf, version),
            RequestBody::CreateTopics(body) => body.encode(buf, version),
            RequestBody::DeleteTopics(body) => body.encode(buf, version),
            RequestBody::InitProducerId(body) => body.encode(buf, version),
            RequestBody::DescribeConfigs(body) => body.encode(buf, version),
            RequestBody::DescribeCluster(body) => body.encode(buf, version),
            RequestBody::DescribeQuorum(body) => body.encode(buf, version),
            RequestBody::FindCoordinator(body) => body.encode(buf, version),
            RequestBody::JoinGroup(body) => body.encode(buf, version),
            RequestBody::SyncGroup(body) => body.encode(buf, version),
            RequestBody::Heartbeat(body) => body.encode(buf, version),
            RequestBody::LeaveGroup(body) => body.encode(buf, version),
            RequestBody::OffsetCommit(body) => body.encode(buf, version),
            RequestBody::OffsetFetch(body) => body.encode(buf, version),
            RequestBody::OffsetCommitV10(body) => {
                body.encode(buf);
                Ok(())
            }
            RequestBody::OffsetFetchV10(body) => {
                body.encode(buf);
                Ok(())
            }
            RequestBody::ListGroups(body) => body.encode(buf, version),
            RequestBody::DescribeGroups(body) => body.encode(buf, version),
            RequestBody::DeleteGroups(body) => body.encode(buf, version),
            RequestBody::ConsumerGroupDescribe(body) => body.encode(buf, version),
            RequestBody::ConsumerGroupHeartbeat(body) => body.encode(buf, version),
            RequestBody::OffsetDelete(body) => body.encode(buf, version),
            RequestBody::AlterConfigs(body) => body.encode(buf, version),
            RequestBody::IncrementalAlterConfigs(body) => body.encode(buf, version),
            RequestBody::CreatePartitions(body) => body.encode(buf, version),
            RequestBody::DeleteRecords(body) => body.encode(buf, version),
            RequestBody::OffsetForLeaderEpoch(body) => body.encode(buf, version),
            RequestBody::AddPartitionsToTxn(body) => body.encode(buf, version),
            RequestBody::AddOffsetsToTxn(body) => body.encode(buf, version),
            RequestBody::EndTxn(body) => body.encode(buf, version),
            RequestBody::TxnOffsetCommit(body) => body.encode(buf, version),
            RequestBody::WriteTxnMarkers(body) => body.encode(buf, version),
            RequestBody::DescribeTransactions(body) => body.encode(buf, version),
            RequestBody::ListTransactions(body) => body.encode(buf, version),
            RequestBody::ElectLeaders(body) => body.encode(buf, version),
            RequestBody::AlterPartitionReassignments(body) => body.encode(buf, version),
            RequestBody::ListPartitionReassignments(body) => body.encode(buf, version),
            RequestBody::DescribeLogDirs(body) => body.encode(buf, version),
            RequestBody::DescribeTopicPartitions(body) => body.encode(buf, version),
        }
    }

    fn sample_header(api_key: ApiKey, version: i16, correlation_id: i32) -> RequestHeader {
        RequestHeader::default()
            .with_request_api_key(api_key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(name("corelog-proptest")))
    }

    /// Header and body as a client puts them on the wire, minus the length prefix.
    fn encode_frame(header: &RequestHeader, api_key: ApiKey, body: &RequestBody) -> Bytes {
        let version = header.request_api_version;
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, api_key.request_header_version(version))
            .expect("header encodes");
        encode_body(body, version, &mut buf)
            .unwrap_or_else(|error| panic!("{api_key:?} v{version} sample encodes: {error}"));
        buf.freeze()
    }

    /// A valid frame for one advertised API version: what the seed corpus of
    /// the fuzz target is made of, too.
    pub(crate) fn sample_frame(api_key: ApiKey, version: i16, correlation_id: i32) -> Bytes {
        let header = sample_header(api_key, version, correlation_id);
        encode_frame(&header, api_key, &sample_body(api_key, version))
    }

    /// Decodes `frame`, which must not panic, and checks that a success
    /// describes the api key, version and correlation id the frame starts with.
    fn decode_checked(frame: &[u8]) -> Result<Request, DecodeError> {
        let result = decode_request(Bytes::copy_from_slice(frame));
        if let Ok(request) = &result {
            assert_eq!(
                request.api_key as i16,
                i16::from_be_bytes([frame[0], frame[1]])
            );
            assert_eq!(request.version(), i16::from_be_bytes([frame[2], frame[3]]));
            assert_eq!(
                request.correlation_id(),
                i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]])
            );
            assert!(versions::is_supported(request.api_key, request.version()));
        }
        result
    }

    /// One way a client (or an attacker) can get a frame wrong.
    #[derive(Debug, Clone)]
    enum Mutation {
        Truncate(Index),
        Flip { at: Index, mask: u8 },
        HostileLength { at: Index, word: u32 },
        HostileVarint { at: Index },
        Insert { at: Index, bytes: Vec<u8> },
        Remove { at: Index, count: usize },
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            any::<Index>().prop_map(Mutation::Truncate),
            (any::<Index>(), 1..=u8::MAX).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
            (any::<Index>(), prop::sample::select(HOSTILE_WORDS.to_vec()))
                .prop_map(|(at, word)| Mutation::HostileLength { at, word }),
            any::<Index>().prop_map(|at| Mutation::HostileVarint { at }),
            (any::<Index>(), prop::collection::vec(any::<u8>(), 1..16))
                .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
            (any::<Index>(), 1..16usize).prop_map(|(at, count)| Mutation::Remove { at, count }),
        ]
    }

    fn apply(frame: &mut Vec<u8>, mutation: &Mutation) {
        if frame.is_empty() {
            return;
        }
        match mutation {
            Mutation::Truncate(at) => frame.truncate(at.index(frame.len())),
            Mutation::Flip { at, mask } => {
                let at = at.index(frame.len());
                frame[at] ^= mask;
            }
            Mutation::HostileLength { at, word } => {
                let at = at.index(frame.len());
                overwrite(frame, at, &word.to_be_bytes());
            }
            Mutation::HostileVarint { at } => {
                let at = at.index(frame.len());
                overwrite(frame, at, &HOSTILE_VARINT);
            }
            Mutation::Insert { at, bytes } => {
                let at = at.index(frame.len() + 1);
                frame.splice(at..at, bytes.iter().copied());
            }
            Mutation::Remove { at, count } => {
                let at = at.index(frame.len());
                let end = (at + count).min(frame.len());
                frame.drain(at..end);
            }
        }
    }

    /// Overwrites in place; a word running past the end is cut off there.
    fn overwrite(frame: &mut [u8], at: usize, bytes: &[u8]) {
        let end = (at + bytes.len()).min(frame.len());
        frame[at..end].copy_from_slice(&bytes[..end - at]);
    }

    fn api_version() -> impl Strategy<Value = (ApiKey, i16)> {
        prop::sample::select(supported_versions())
    }

    fn raw_prefix(api_key: i16, version: i16, correlation_id: i32) -> Vec<u8> {
        let mut prefix = Vec::with_capacity(8);
        prefix.extend_from_slice(&api_key.to_be_bytes());
        prefix.extend_from_slice(&version.to_be_bytes());
        prefix.extend_from_slice(&correlation_id.to_be_bytes());
        prefix
    }

    #[test]
    fn every_advertised_version_round_trips() {
        for (api_key, version) in supported_versions() {
            let header = sample_header(api_key, version, 7);
            let frame = encode_frame(&header, api_key, &sample_body(api_key, version));
            let request = decode_checked(&frame)
                .unwrap_or_else(|error| panic!("{api_key:?} v{version} rejected: {error}"));
            assert_eq!(request.api_key, api_key);
            assert_eq!(request.header, header, "{api_key:?} v{version}");
            // Re-encoding what we decoded gives the client's bytes back: no
            // field was dropped or misread.
            assert_eq!(
                encode_frame(&request.header, api_key, &request.body),
                frame,
                "{api_key:?} v{version}"
            );
            if let RequestBody::Produce(produce) = &request.body {
                for partition in produce
                    .topic_data
                    .iter()
                    .flat_map(|topic| &topic.partition_data)
                {
                    let records = partition.records.as_ref().expect("sample has records");
                    for batch in split_batches(records) {
                        validate_batch(&batch.expect("whole batch")).expect("valid batch");
                    }
                }
            }
        }
    }

    #[test]
    fn a_hostile_array_length_is_malformed_not_an_abort() {
        // Produce v3: header (8 + client id), transactional id (-1), acks,
        // timeout, then the topic array length, which we make i32::MAX.
        let mut frame = raw_prefix(ApiKey::Produce as i16, 3, 11);
        frame.extend_from_slice(&(-1i16).to_be_bytes()); // client id: null
        frame.extend_from_slice(&(-1i16).to_be_bytes()); // transactional id: null
        frame.extend_from_slice(&(-1i16).to_be_bytes()); // acks
        frame.extend_from_slice(&1_000i32.to_be_bytes()); // timeout
        frame.extend_from_slice(&i32::MAX.to_be_bytes()); // topic count
        assert!(matches!(
            decode_checked(&frame),
            Err(DecodeError::Malformed {
                api_key: ApiKey::Produce,
                version: 3,
                ..
            })
        ));
    }

    #[test]
    fn produce_v2_is_unsupported() {
        let frame = raw_prefix(ApiKey::Produce as i16, 2, 5);
        assert_eq!(
            decode_checked(&frame).unwrap_err(),
            DecodeError::UnsupportedVersion {
                api_key: ApiKey::Produce,
                version: 2
            }
        );
    }

    #[test]
    fn a_short_frame_is_too_short() {
        for length in 0..8 {
            assert_eq!(
                decode_checked(&vec![0; length]).unwrap_err(),
                DecodeError::TooShort(length)
            );
        }
    }

    /// Writes one valid frame per advertised API version as the seed corpus
    /// of the `decode_request` fuzz target (see `fuzz/README.md`).
    #[test]
    #[ignore = "writes fuzz/corpus/decode_request; run by hand before fuzzing"]
    fn write_fuzz_seed_corpus() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/decode_request");
        std::fs::create_dir_all(&dir).expect("create the corpus directory");
        for (api_key, version) in supported_versions() {
            let path = dir.join(format!("seed-{api_key:?}-v{version}"));
            std::fs::write(path, sample_frame(api_key, version, 1)).expect("write a seed");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]

        #[test]
        fn arbitrary_bytes_never_panic(frame in arbitrary_bytes(4096)) {
            let _ = decode_checked(&frame);
        }

        /// Random bytes rarely name a supported API, so also feed arbitrary
        /// bodies behind a valid api key, version and correlation id.
        #[test]
        fn arbitrary_bodies_never_panic(
            (api_key, version) in api_version(),
            correlation_id in any::<i32>(),
            body in arbitrary_bytes(1024),
        ) {
            let mut frame = raw_prefix(api_key as i16, version, correlation_id);
            frame.extend_from_slice(&body);
            let _ = decode_checked(&frame);
        }

        #[test]
        fn valid_requests_decode_to_their_header(
            (api_key, version) in api_version(),
            correlation_id in any::<i32>(),
        ) {
            let frame = sample_frame(api_key, version, correlation_id);
            let request = decode_checked(&frame).map_err(|error| TestCaseError::fail(error.to_string()))?;
            prop_assert_eq!(request.api_key, api_key);
            prop_assert_eq!(request.version(), version);
            prop_assert_eq!(request.correlation_id(), correlation_id);
        }

        #[test]
        fn mutated_requests_never_panic(
            (api_key, version) in api_version(),
            correlation_id in any::<i32>(),
            mutations in prop::collection::vec(mutation(), 1..4),
        ) {
            let mut frame = sample_frame(api_key, version, correlation_id).to_vec();
            for mutation in &mutations {
                apply(&mut frame, mutation);
            }
            let _ = decode_checked(&frame);
        }

        #[test]
        fn api_versions_above_our_max_names_the_correlation_id(
            version in (versions::supported_range(ApiKey::ApiVersions).expect("advertised").max_version + 1)..=i16::MAX,
            correlation_id in any::<i32>(),
            tail in prop::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut frame = raw_prefix(ApiKey::ApiVersions as i16, version, correlation_id);
            frame.extend_from_slice(&tail);
            prop_assert_eq!(
                decode_checked(&frame).unwrap_err(),
                DecodeError::UnsupportedApiVersionsVersion { version, correlation_id }
            );
        }

        #[test]
        fn unadvertised_api_keys_are_unknown(
            raw_key in any::<i16>().prop_filter("not advertised", |raw_key| {
                !versions::SUPPORTED_APIS.iter().any(|api| api.key as i16 == *raw_key)
            }),
            version in any::<i16>(),
            correlation_id in any::<i32>(),
        ) {
            let frame = raw_prefix(raw_key, version, correlation_id);
            prop_assert_eq!(decode_checked(&frame).unwrap_err(), DecodeError::UnknownApiKey(raw_key));
        }
    }
}
