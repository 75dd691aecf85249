//! The consumer-group APIs driven over a raw TCP socket, one request at a time, encoded and
//! decoded with the `kafka-protocol` crate at an exact version: every advertised version of
//! every group API answers a real join/sync/commit/fetch/describe/list/leave/delete flow
//! with a response that decodes at that version (a field a version lacks would make the
//! broker's encoder fail and the connection close); the error codes Kafka gives for the
//! classic group protocol's mistakes; session expiry; a broken JoinGroup frame; and a join
//! round that waits for every known member.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};

use common::wire::{
    connect, frame, parse_produce_response_v3, produce_request_v3, read_frame, record_batch_v2,
    wait_for_close, write_lenient, Hangup,
};
use common::{poll_until, Broker};

// Kafka error codes (protocol guide, "Error Codes").
const NONE: i16 = 0;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const OFFSET_METADATA_TOO_LARGE: i16 = 12;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const INVALID_TOPIC_EXCEPTION: i16 = 17;
const ILLEGAL_GENERATION: i16 = 22;
const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
const INVALID_GROUP_ID: i16 = 24;
const UNKNOWN_MEMBER_ID: i16 = 25;
const INVALID_SESSION_TIMEOUT: i16 = 26;
const REBALANCE_IN_PROGRESS: i16 = 27;
const INVALID_REQUEST: i16 = 42;
const NON_EMPTY_GROUP: i16 = 68;
const GROUP_ID_NOT_FOUND: i16 = 69;
const MEMBER_ID_REQUIRED: i16 = 79;
const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;

const BROKER_FLAGS: &[&str] = &["--group-initial-rebalance-delay-ms", "0"];
const CLIENT_ID: &str = "group-protocol-tests";
const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Kafka's `offsets.topic.num.partitions` default, which the broker keeps.
const OFFSETS_TOPIC_PARTITIONS: usize = 50;
/// Kafka's `group.min.session.timeout.ms` default, which the broker keeps.
const MIN_SESSION_TIMEOUT_MS: i32 = 6_000;
const SESSION_TIMEOUT_MS: i32 = 10_000;
const REBALANCE_TIMEOUT_MS: i32 = 30_000;
/// Kafka's `offset.metadata.max.bytes` default.
const OFFSET_METADATA_MAX_BYTES: usize = 4096;

/// The group APIs and the version ranges the broker must advertise for them.
const GROUP_APIS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
];

// ---- framing with the kafka-protocol codec ----

static NEXT_CORRELATION_ID: AtomicI32 = AtomicI32::new(1);

fn api_name<R: Request>() -> String {
    ApiKey::try_from(R::KEY).map_or_else(|_| format!("api {}", R::KEY), |key| format!("{key:?}"))
}

/// Writes `request` at `version` with the header that version uses; returns the
/// correlation id to pass to [`receive`].
fn send<R: Request>(stream: &mut TcpStream, version: i16, request: &R) -> i32 {
    let api_key = ApiKey::try_from(R::KEY).expect("known api key");
    let correlation_id = NEXT_CORRELATION_ID.fetch_add(1, Ordering::Relaxed);
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
    let mut payload = Vec::new();
    header
        .encode(&mut payload, api_key.request_header_version(version))
        .expect("encode request header");
    request
        .encode(&mut payload, version)
        .unwrap_or_else(|error| {
            panic!(
                "test bug: {} v{version} request does not encode: {error}",
                api_name::<R>()
            )
        });
    stream
        .write_all(&frame(&payload))
        .unwrap_or_else(|error| panic!("send {} v{version}: {error}", api_name::<R>()));
    correlation_id
}

/// Reads the answer to the request [`send`] numbered `correlation_id`, decoded at
/// `version`; an error if the connection closed, stayed silent, or the answer does not
/// decode exactly (no trailing bytes).
fn receive<R: Request>(
    stream: &mut TcpStream,
    version: i16,
    correlation_id: i32,
) -> Result<R::Response, String> {
    let api_key = ApiKey::try_from(R::KEY).expect("known api key");
    let what = format!("{} v{version}", api_name::<R>());
    let mut payload = Bytes::from(read_frame(stream).map_err(|error| format!("{what}: {error}"))?);
    let header = ResponseHeader::decode(&mut payload, api_key.response_header_version(version))
        .map_err(|error| format!("{what}: response header does not decode: {error}"))?;
    if header.correlation_id != correlation_id {
        return Err(format!(
            "{what}: correlation id {} answered, {correlation_id} expected",
            header.correlation_id
        ));
    }
    let response = R::Response::decode(&mut payload, version)
        .map_err(|error| format!("{what}: response does not decode: {error}"))?;
    if payload.has_remaining() {
        return Err(format!(
            "{what}: {} trailing bytes after the response",
            payload.remaining()
        ));
    }
    Ok(response)
}

/// One request, one decoded answer; panics (naming the API and version) otherwise.
fn call<R: Request>(stream: &mut TcpStream, version: i16, request: &R) -> R::Response {
    let correlation_id = send(stream, version, request);
    receive::<R>(stream, version, correlation_id).unwrap_or_else(|error| panic!("{error}"))
}

// ---- request builders and small flows ----

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

fn group_id(value: &str) -> GroupId {
    GroupId(text(value))
}

fn topic_name(value: &str) -> TopicName {
    TopicName(text(value))
}

/// A ConsumerProtocolSubscription v0 (the classic consumer's JoinGroup metadata): int16
/// version, int32 topic count, int16-length topic names, null user data (int32 -1).
fn consumer_subscription(topics: &[&str]) -> Bytes {
    let mut metadata = Vec::new();
    metadata.extend_from_slice(&0i16.to_be_bytes());
    let count = i32::try_from(topics.len()).expect("few topics");
    metadata.extend_from_slice(&count.to_be_bytes());
    for topic in topics {
        let length = i16::try_from(topic.len()).expect("short topic name");
        metadata.extend_from_slice(&length.to_be_bytes());
        metadata.extend_from_slice(topic.as_bytes());
    }
    metadata.extend_from_slice(&(-1i32).to_be_bytes());
    Bytes::from(metadata)
}

/// FindCoordinator v3 for a group; also creates `__consumer_offsets` on first use.
fn find_group_coordinator(stream: &mut TcpStream, group: &str) {
    let response = call(
        stream,
        3,
        &FindCoordinatorRequest::default()
            .with_key(text(group))
            .with_key_type(0),
    );
    assert_eq!(response.error_code, NONE, "FindCoordinator for {group}");
}

fn create_topic(stream: &mut TcpStream, name: &str, partitions: i32) {
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

fn join_request(
    version: i16,
    group: &str,
    member_id: &str,
    metadata: &Bytes,
    session_timeout_ms: i32,
) -> JoinGroupRequest {
    let request = JoinGroupRequest::default()
        .with_group_id(group_id(group))
        .with_session_timeout_ms(session_timeout_ms)
        .with_member_id(text(member_id))
        .with_protocol_type(text("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(text("range"))
            .with_metadata(metadata.clone())]);
    // v0 has no rebalance timeout (Kafka uses the session timeout).
    if version >= 1 {
        request.with_rebalance_timeout_ms(REBALANCE_TIMEOUT_MS)
    } else {
        request
    }
}

/// Joins `group` as a new member the way a client of `version` does: v0-3 in one step,
/// v4+ (KIP-394) first getting MEMBER_ID_REQUIRED with a member id, then joining with it.
/// Returns the successful JoinGroup answer.
fn join_new_member(
    stream: &mut TcpStream,
    version: i16,
    group: &str,
    metadata: &Bytes,
) -> JoinGroupResponse {
    let member_id = if version >= 4 {
        let first = call(
            stream,
            version,
            &join_request(version, group, "", metadata, SESSION_TIMEOUT_MS),
        );
        assert_eq!(
            first.error_code, MEMBER_ID_REQUIRED,
            "JoinGroup v{version} without a member id: {first:?}"
        );
        assert!(
            !first.member_id.is_empty(),
            "JoinGroup v{version}: MEMBER_ID_REQUIRED without a member id"
        );
        first.member_id.to_string()
    } else {
        String::new()
    };
    let response = call(
        stream,
        version,
        &join_request(version, group, &member_id, metadata, SESSION_TIMEOUT_MS),
    );
    assert_eq!(
        response.error_code, NONE,
        "JoinGroup v{version} of {group}: {response:?}"
    );
    assert!(
        !response.member_id.is_empty(),
        "JoinGroup v{version}: no member id"
    );
    if version >= 4 {
        assert_eq!(response.member_id.as_str(), member_id, "member id kept");
    }
    response
}

fn sync_request(
    version: i16,
    group: &str,
    generation_id: i32,
    member_id: &str,
    assignments: &[(&str, &Bytes)],
) -> SyncGroupRequest {
    let request = SyncGroupRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id(generation_id)
        .with_member_id(text(member_id))
        .with_assignments(
            assignments
                .iter()
                .map(|(member, assignment)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(text(member))
                        .with_assignment((*assignment).clone())
                })
                .collect(),
        );
    if version >= 5 {
        request
            .with_protocol_type(Some(text("consumer")))
            .with_protocol_name(Some(text("range")))
    } else {
        request
    }
}

fn heartbeat(
    stream: &mut TcpStream,
    version: i16,
    group: &str,
    generation_id: i32,
    member_id: &str,
) -> i16 {
    let request = HeartbeatRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id(generation_id)
        .with_member_id(text(member_id));
    call(stream, version, &request).error_code
}

/// A one-member consumer group, Stable: joined (JoinGroup v9) and synced as leader.
/// Returns `(member_id, generation_id)`.
fn stable_single_member_group(
    stream: &mut TcpStream,
    group: &str,
    topics: &[&str],
) -> (String, i32) {
    let joined = join_new_member(stream, 9, group, &consumer_subscription(topics));
    let member_id = joined.member_id.to_string();
    let assignment = Bytes::from_static(b"assignment");
    let synced = call(
        stream,
        5,
        &sync_request(
            5,
            group,
            joined.generation_id,
            &member_id,
            &[(&member_id, &assignment)],
        ),
    );
    assert_eq!(synced.error_code, NONE, "SyncGroup of {group}: {synced:?}");
    (member_id, joined.generation_id)
}

fn commit_request(
    version: i16,
    group: &str,
    generation_id: i32,
    member_id: &str,
    topic: &str,
    partitions: &[(i32, i64, &str)],
) -> OffsetCommitRequest {
    let partitions = partitions
        .iter()
        .map(|&(index, offset, metadata)| {
            let partition = OffsetCommitRequestPartition::default()
                .with_partition_index(index)
                .with_committed_offset(offset)
                .with_committed_metadata(Some(text(metadata)));
            if version >= 6 {
                partition.with_committed_leader_epoch(3)
            } else {
                partition
            }
        })
        .collect();
    OffsetCommitRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id_or_member_epoch(generation_id)
        .with_member_id(text(member_id))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(partitions)])
}

/// `(partition, error_code)` for every partition of an OffsetCommit answer.
fn commit_errors(response: &OffsetCommitResponse) -> Vec<(i32, i16)> {
    response
        .topics
        .iter()
        .flat_map(|topic| topic.partitions.iter())
        .map(|partition| (partition.partition_index, partition.error_code))
        .collect()
}

/// OffsetFetch v8 for one group: `(group error, [(partition, offset, metadata, error)])`.
fn fetch_offsets(
    stream: &mut TcpStream,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> (i16, Vec<(i32, i64, String, i16)>) {
    let request =
        OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(group_id(group))
            .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                .with_name(topic_name(topic))
                .with_partition_indexes(partitions.to_vec())]))]);
    let response = call(stream, 8, &request);
    assert_eq!(response.groups.len(), 1, "one group fetched: {response:?}");
    let group = &response.groups[0];
    let offsets = group
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| {
            let metadata = p
                .metadata
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default();
            (
                p.partition_index,
                p.committed_offset,
                metadata,
                p.error_code,
            )
        })
        .collect();
    (group.error_code, offsets)
}

fn describe_group(stream: &mut TcpStream, version: i16, group: &str) -> DescribedGroup {
    let mut response = call(
        stream,
        version,
        &DescribeGroupsRequest::default().with_groups(vec![group_id(group)]),
    );
    assert_eq!(
        response.groups.len(),
        1,
        "DescribeGroups v{version} of {group}"
    );
    response.groups.remove(0)
}

fn delete_groups(stream: &mut TcpStream, version: i16, groups: &[&str]) -> Vec<(String, i16)> {
    let request = DeleteGroupsRequest::default()
        .with_groups_names(groups.iter().map(|g| group_id(g)).collect());
    call(stream, version, &request)
        .results
        .iter()
        .map(|result| (result.group_id.to_string(), result.error_code))
        .collect()
}

fn offset_delete(
    stream: &mut TcpStream,
    group: &str,
    topics: &[(&str, &[i32])],
) -> OffsetDeleteResponse {
    let request = OffsetDeleteRequest::default()
        .with_group_id(group_id(group))
        .with_topics(
            topics
                .iter()
                .map(|(topic, partitions)| {
                    OffsetDeleteRequestTopic::default()
                        .with_name(topic_name(topic))
                        .with_partitions(
                            partitions
                                .iter()
                                .map(|&index| {
                                    OffsetDeleteRequestPartition::default()
                                        .with_partition_index(index)
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    call(stream, 0, &request)
}

/// `(topic, partition, error_code)` for every partition of an OffsetDelete answer.
fn offset_delete_errors(response: &OffsetDeleteResponse) -> Vec<(String, i32, i16)> {
    response
        .topics
        .iter()
        .flat_map(|topic| {
            topic
                .partitions
                .iter()
                .map(|p| (topic.name.to_string(), p.partition_index, p.error_code))
        })
        .collect()
}

// ---- 1. every advertised version ----

#[test]
fn every_advertised_group_api_version_answers_a_real_flow() {
    let broker = Broker::start(2, BROKER_FLAGS);
    let mut stream = connect(&broker.bootstrap());

    let versions = call(&mut stream, 3, &ApiVersionsRequest::default());
    assert_eq!(versions.error_code, NONE);
    for &(api_key, min_version, max_version) in GROUP_APIS {
        let advertised = versions
            .api_keys
            .iter()
            .find(|api| api.api_key == api_key as i16)
            .map(|api| (api.min_version, api.max_version));
        assert_eq!(
            advertised,
            Some((min_version, max_version)),
            "{api_key:?} versions advertised"
        );
    }

    // FindCoordinator: v0-3 one key, v4 (KIP-699) a batch of keys.
    for version in 0..=3 {
        let request = FindCoordinatorRequest::default().with_key(text("coordinated"));
        let request = if version >= 1 {
            request.with_key_type(0)
        } else {
            request
        };
        let response = call(&mut stream, version, &request);
        assert_eq!(response.error_code, NONE, "FindCoordinator v{version}");
        assert_eq!(
            response.host.as_str(),
            "127.0.0.1",
            "FindCoordinator v{version}"
        );
        assert_eq!(
            response.port,
            i32::from(broker.port()),
            "FindCoordinator v{version}"
        );
        assert!(response.node_id.0 >= 0, "FindCoordinator v{version}");
    }
    let response = call(
        &mut stream,
        4,
        &FindCoordinatorRequest::default()
            .with_key_type(0)
            .with_coordinator_keys(vec![text("first"), text("second")]),
    );
    let keys: Vec<(String, i16, i32)> = response
        .coordinators
        .iter()
        .map(|c| (c.key.to_string(), c.error_code, c.port))
        .collect();
    let port = i32::from(broker.port());
    assert_eq!(
        keys,
        vec![("first".into(), NONE, port), ("second".into(), NONE, port)],
        "FindCoordinator v4 batch"
    );

    create_topic(&mut stream, "orders", 2);
    // Flow i uses version i of every API, clamped to its advertised range, so the ten
    // flows cover every version of every group API.
    for flow in 0..=9i16 {
        group_flow(&mut stream, flow);
    }
}

/// `(partition, committed offset, committed leader epoch, error code)` from OffsetFetch.
type FetchedPartition = (i32, i64, i32, i16);

/// One group driven through every group API, each at version `flow` clamped to the API's
/// advertised range.
struct Flow {
    flow: i16,
    group: String,
    subscription: Bytes,
    assignment: Bytes,
    member_id: String,
    generation_id: i32,
    /// The offset committed for partition 0 (partition 1 gets the next one).
    offset: i64,
    metadata: String,
    /// The leader epoch the commit carried (-1 before OffsetCommit v6).
    committed_epoch: i32,
}

/// Join, sync, heartbeat, commit, fetch, describe, list, leave, delete offsets and delete
/// the group `flow-<flow>`.
fn group_flow(stream: &mut TcpStream, flow: i16) {
    let mut state = Flow {
        flow,
        group: format!("flow-{flow}"),
        subscription: consumer_subscription(&["orders"]),
        assignment: Bytes::from(format!("assignment-{flow}")),
        member_id: String::new(),
        generation_id: -1,
        offset: 10 + i64::from(flow),
        metadata: format!("meta-{flow}"),
        committed_epoch: -1,
    };
    state.join(stream);
    state.sync_and_heartbeat(stream);
    state.commit(stream);
    if flow.max(1) <= 7 {
        state.fetch_one_group(stream);
    } else {
        state.fetch_two_groups(stream);
    }
    state.describe(stream);
    state.list(stream);
    state.leave(stream);
    state.delete_offsets_and_group(stream);
}

impl Flow {
    fn join(&mut self, stream: &mut TcpStream) {
        let version = self.flow;
        let joined = join_new_member(stream, version, &self.group, &self.subscription);
        self.member_id = joined.member_id.to_string();
        self.generation_id = joined.generation_id;
        assert_eq!(
            self.generation_id, 1,
            "JoinGroup v{version}: first generation"
        );
        assert_eq!(
            joined.leader.as_str(),
            self.member_id,
            "JoinGroup v{version} leader"
        );
        let members: Vec<(String, Bytes)> = joined
            .members
            .iter()
            .map(|m| (m.member_id.to_string(), m.metadata.clone()))
            .collect();
        assert_eq!(
            members,
            vec![(self.member_id.clone(), self.subscription.clone())],
            "JoinGroup v{version}: the leader sees the members"
        );
        assert_eq!(
            joined.protocol_name.as_deref(),
            Some("range"),
            "JoinGroup v{version}"
        );
        if version >= 7 {
            assert_eq!(joined.protocol_type.as_deref(), Some("consumer"));
        }
    }

    fn sync_and_heartbeat(&self, stream: &mut TcpStream) {
        let version = self.flow.min(5);
        let request = sync_request(
            version,
            &self.group,
            self.generation_id,
            &self.member_id,
            &[(&self.member_id, &self.assignment)],
        );
        let synced = call(stream, version, &request);
        assert_eq!(synced.error_code, NONE, "SyncGroup v{version}: {synced:?}");
        assert_eq!(synced.assignment, self.assignment, "SyncGroup v{version}");
        if version >= 5 {
            assert_eq!(synced.protocol_type.as_deref(), Some("consumer"));
            assert_eq!(synced.protocol_name.as_deref(), Some("range"));
        }
        let version = self.flow.min(4);
        let code = heartbeat(
            stream,
            version,
            &self.group,
            self.generation_id,
            &self.member_id,
        );
        assert_eq!(code, NONE, "Heartbeat v{version}");
    }

    fn commit(&mut self, stream: &mut TcpStream) {
        let version = self.flow.max(2);
        let request = commit_request(
            version,
            &self.group,
            self.generation_id,
            &self.member_id,
            "orders",
            &[
                (0, self.offset, &self.metadata),
                (1, self.offset + 1, &self.metadata),
            ],
        );
        let response = call(stream, version, &request);
        assert_eq!(
            commit_errors(&response),
            vec![(0, NONE), (1, NONE)],
            "OffsetCommit v{version}"
        );
        self.committed_epoch = if version >= 6 { 3 } else { -1 };
    }

    /// OffsetFetch v1-7: one group per request.
    fn fetch_one_group(&self, stream: &mut TcpStream) {
        let version = self.flow.max(1);
        let request = OffsetFetchRequest::default()
            .with_group_id(group_id(&self.group))
            .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                .with_name(topic_name("orders"))
                .with_partition_indexes(vec![0, 1])]));
        let response = call(stream, version, &request);
        assert_eq!(response.error_code, NONE, "OffsetFetch v{version}");
        let fetched: Vec<(i32, i64, i32, Option<String>, i16)> = response
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .map(|p| {
                // The leader epoch is in the answer from v5 on.
                let epoch = if version >= 5 {
                    p.committed_leader_epoch
                } else {
                    self.committed_epoch
                };
                let metadata = p.metadata.as_ref().map(|m| m.to_string());
                (
                    p.partition_index,
                    p.committed_offset,
                    epoch,
                    metadata,
                    p.error_code,
                )
            })
            .collect();
        let (offset, epoch, metadata) = (self.offset, self.committed_epoch, &self.metadata);
        assert_eq!(
            fetched,
            vec![
                (0, offset, epoch, Some(metadata.clone()), NONE),
                (1, offset + 1, epoch, Some(metadata.clone()), NONE)
            ],
            "OffsetFetch v{version}"
        );
    }

    /// OffsetFetch v8-9 (KIP-709): a batch of groups; the unknown one has no offsets.
    fn fetch_two_groups(&self, stream: &mut TcpStream) {
        let version = self.flow;
        let unknown = format!("{}-never-joined", self.group);
        let group = |id: &str| {
            OffsetFetchRequestGroup::default()
                .with_group_id(group_id(id))
                .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                    .with_name(topic_name("orders"))
                    .with_partition_indexes(vec![0, 1])]))
        };
        let request =
            OffsetFetchRequest::default().with_groups(vec![group(&self.group), group(&unknown)]);
        let response = call(stream, version, &request);
        let fetched: Vec<(String, i16, Vec<FetchedPartition>)> = response
            .groups
            .iter()
            .map(|g| {
                let partitions = g
                    .topics
                    .iter()
                    .flat_map(|t| t.partitions.iter())
                    .map(|p| {
                        let epoch = p.committed_leader_epoch;
                        (p.partition_index, p.committed_offset, epoch, p.error_code)
                    })
                    .collect();
                (g.group_id.to_string(), g.error_code, partitions)
            })
            .collect();
        let (offset, epoch) = (self.offset, self.committed_epoch);
        let committed = vec![(0, offset, epoch, NONE), (1, offset + 1, epoch, NONE)];
        let nothing = vec![(0, -1, -1, NONE), (1, -1, -1, NONE)];
        assert_eq!(
            fetched,
            vec![
                (self.group.clone(), NONE, committed),
                (unknown, NONE, nothing)
            ],
            "OffsetFetch v{version} of two groups"
        );
    }

    fn describe(&self, stream: &mut TcpStream) {
        let version = self.flow.min(5);
        let request = DescribeGroupsRequest::default().with_groups(vec![group_id(&self.group)]);
        let request = if version >= 3 {
            request.with_include_authorized_operations(true)
        } else {
            request
        };
        let response = call(stream, version, &request);
        assert_eq!(response.groups.len(), 1);
        let described = &response.groups[0];
        let summary = (
            described.error_code,
            described.group_id.to_string(),
            described.group_state.to_string(),
            described.protocol_type.to_string(),
            described.protocol_data.to_string(),
        );
        let expected = (
            NONE,
            self.group.clone(),
            "Stable".into(),
            "consumer".into(),
            "range".into(),
        );
        assert_eq!(summary, expected, "DescribeGroups v{version}");
        let members: Vec<_> = described
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.client_id.to_string(),
                    m.client_host.to_string(),
                    m.member_metadata.clone(),
                    m.member_assignment.clone(),
                )
            })
            .collect();
        let member = (
            self.member_id.clone(),
            CLIENT_ID.to_string(),
            "/127.0.0.1".to_string(),
            self.subscription.clone(),
            self.assignment.clone(),
        );
        assert_eq!(members, vec![member], "DescribeGroups v{version} members");
        if version >= 3 {
            assert_ne!(
                described.authorized_operations,
                i32::MIN,
                "DescribeGroups v{version}: authorized operations were asked for"
            );
        }
    }

    /// ListGroups: v4 filters by state (KIP-518), v5 by type (KIP-848).
    fn list(&self, stream: &mut TcpStream) {
        let version = self.flow.min(5);
        let request = match version {
            4 => ListGroupsRequest::default().with_states_filter(vec![text("Stable")]),
            5 => ListGroupsRequest::default().with_types_filter(vec![text("classic")]),
            _ => ListGroupsRequest::default(),
        };
        let response = call(stream, version, &request);
        assert_eq!(response.error_code, NONE, "ListGroups v{version}");
        let listed = response
            .groups
            .iter()
            .find(|g| g.group_id.as_str() == self.group)
            .unwrap_or_else(|| panic!("ListGroups v{version} lacks {}: {response:?}", self.group));
        assert_eq!(listed.protocol_type.as_str(), "consumer");
        if version >= 4 {
            assert_eq!(
                listed.group_state.as_str(),
                "Stable",
                "ListGroups v{version}"
            );
        }
        if version >= 5 {
            assert_eq!(
                listed.group_type.as_str(),
                "classic",
                "ListGroups v{version}"
            );
        }
        if version == 4 {
            let request = ListGroupsRequest::default().with_states_filter(vec![text("Empty")]);
            let empty_only = call(stream, 4, &request);
            assert!(
                empty_only
                    .groups
                    .iter()
                    .all(|g| g.group_id.as_str() != self.group),
                "ListGroups v4 filtered on Empty lists the Stable {}",
                self.group
            );
        }
    }

    /// LeaveGroup: v0-2 one member id, v3+ (KIP-345) a batch of members.
    fn leave(&self, stream: &mut TcpStream) {
        let version = self.flow.min(5);
        let request = LeaveGroupRequest::default().with_group_id(group_id(&self.group));
        let request = if version >= 3 {
            let member = MemberIdentity::default().with_member_id(text(&self.member_id));
            request.with_members(vec![member])
        } else {
            request.with_member_id(text(&self.member_id))
        };
        let response = call(stream, version, &request);
        assert_eq!(
            response.error_code, NONE,
            "LeaveGroup v{version}: {response:?}"
        );
        if version >= 3 {
            let members: Vec<(String, i16)> = response
                .members
                .iter()
                .map(|m| (m.member_id.to_string(), m.error_code))
                .collect();
            assert_eq!(
                members,
                vec![(self.member_id.clone(), NONE)],
                "LeaveGroup v{version}"
            );
        }
        let state = describe_group(stream, 5, &self.group).group_state;
        assert_eq!(state.as_str(), "Empty", "after LeaveGroup v{version}");
    }

    /// OffsetDelete (v0) on the now Empty group, then DeleteGroups.
    fn delete_offsets_and_group(&self, stream: &mut TcpStream) {
        let group = self.group.as_str();
        let response = offset_delete(stream, group, &[("orders", &[0])]);
        assert_eq!(response.error_code, NONE, "OffsetDelete: {response:?}");
        assert_eq!(
            offset_delete_errors(&response),
            vec![("orders".to_string(), 0, NONE)]
        );
        let (code, offsets) = fetch_offsets(stream, group, "orders", &[0, 1]);
        assert_eq!(code, NONE);
        let offsets: Vec<(i32, i64)> = offsets.iter().map(|o| (o.0, o.1)).collect();
        assert_eq!(
            offsets,
            vec![(0, -1), (1, self.offset + 1)],
            "after OffsetDelete"
        );

        let version = self.flow.min(2);
        assert_eq!(
            delete_groups(stream, version, &[group]),
            vec![(group.to_string(), NONE)],
            "DeleteGroups v{version}"
        );
        // Kafka answers an unknown group Dead with no error before DescribeGroups v6.
        let described = describe_group(stream, 5, group);
        assert_eq!(
            (described.error_code, described.group_state.as_str()),
            (NONE, "Dead"),
            "deleted group"
        );
        let (_, offsets) = fetch_offsets(stream, group, "orders", &[0, 1]);
        assert!(
            offsets.iter().all(|o| o.1 == -1),
            "offsets of a deleted group: {offsets:?}"
        );
    }
}

// ---- 2. errors as Kafka gives them ----

#[test]
fn join_sync_and_heartbeat_errors_match_kafka() {
    let broker = Broker::start(2, BROKER_FLAGS);
    let mut stream = connect(&broker.bootstrap());
    find_group_coordinator(&mut stream, "errors");
    let subscription = consumer_subscription(&["orders"]);

    for version in [0, 4, 9] {
        let response = call(
            &mut stream,
            version,
            &join_request(version, "", "", &subscription, SESSION_TIMEOUT_MS),
        );
        assert_eq!(
            response.error_code, INVALID_GROUP_ID,
            "JoinGroup v{version} empty group id"
        );
    }
    for session_timeout_ms in [MIN_SESSION_TIMEOUT_MS - 1, 1_800_001] {
        for version in [0, 9] {
            let response = call(
                &mut stream,
                version,
                &join_request(version, "errors", "", &subscription, session_timeout_ms),
            );
            assert_eq!(
                response.error_code, INVALID_SESSION_TIMEOUT,
                "JoinGroup v{version} with session timeout {session_timeout_ms}"
            );
        }
    }

    let (member_id, generation_id) = stable_single_member_group(&mut stream, "errors", &["orders"]);
    assert_eq!(
        heartbeat(&mut stream, 4, "errors", generation_id, "nobody"),
        UNKNOWN_MEMBER_ID,
        "Heartbeat of an unknown member"
    );
    let assignment = Bytes::from_static(b"x");
    let synced = call(
        &mut stream,
        5,
        &sync_request(
            5,
            "errors",
            generation_id,
            "nobody",
            &[("nobody", &assignment)],
        ),
    );
    assert_eq!(
        synced.error_code, UNKNOWN_MEMBER_ID,
        "SyncGroup of an unknown member"
    );
    assert_eq!(
        heartbeat(&mut stream, 4, "errors", generation_id + 1, &member_id),
        ILLEGAL_GENERATION,
        "Heartbeat with a wrong generation"
    );
    let synced = call(
        &mut stream,
        5,
        &sync_request(5, "errors", generation_id + 1, &member_id, &[]),
    );
    assert_eq!(
        synced.error_code, ILLEGAL_GENERATION,
        "SyncGroup with a wrong generation"
    );
    assert_eq!(
        heartbeat(&mut stream, 4, "errors", generation_id, &member_id),
        NONE
    );

    // A second member joins: the group rebalances, and the first learns it by heartbeat.
    let mut second = connect(&broker.bootstrap());
    let first_try = call(
        &mut second,
        9,
        &join_request(9, "errors", "", &subscription, SESSION_TIMEOUT_MS),
    );
    assert_eq!(first_try.error_code, MEMBER_ID_REQUIRED);
    let second_id = first_try.member_id.to_string();
    let pending_join = send(
        &mut second,
        9,
        &join_request(9, "errors", &second_id, &subscription, SESSION_TIMEOUT_MS),
    );
    poll_until(
        Duration::from_secs(5),
        "first member told to rejoin",
        || {
            let code = heartbeat(&mut stream, 4, "errors", generation_id, &member_id);
            (code == REBALANCE_IN_PROGRESS).then_some(())
        },
    );
    // The first member rejoins; the round completes for both.
    let rejoined = call(
        &mut stream,
        9,
        &join_request(9, "errors", &member_id, &subscription, SESSION_TIMEOUT_MS),
    );
    assert_eq!(rejoined.error_code, NONE, "rejoin: {rejoined:?}");
    assert_eq!(rejoined.generation_id, generation_id + 1);
    let second_joined = receive::<JoinGroupRequest>(&mut second, 9, pending_join)
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(
        second_joined.error_code, NONE,
        "second join: {second_joined:?}"
    );
    assert_eq!(second_joined.generation_id, generation_id + 1);
}

#[test]
fn oversized_join_metadata_is_refused_and_broker_keeps_serving() {
    let mut broker = Broker::start(2, BROKER_FLAGS);
    let mut stream = connect(&broker.bootstrap());
    find_group_coordinator(&mut stream, "big");
    let huge = Bytes::from(vec![7u8; 2 * 1024 * 1024]);
    for version in [0, 9] {
        let response = call(
            &mut stream,
            version,
            &join_request(version, "big", "", &huge, SESSION_TIMEOUT_MS),
        );
        assert_eq!(
            response.error_code, INVALID_REQUEST,
            "JoinGroup v{version} with 2 MiB of metadata: {:?}",
            response.error_code
        );
    }
    broker.assert_alive();
    // The same connection and a new one still get served.
    let (member_id, generation_id) = stable_single_member_group(&mut stream, "big", &["orders"]);
    let mut other = connect(&broker.bootstrap());
    assert_eq!(
        heartbeat(&mut other, 4, "big", generation_id, &member_id),
        NONE
    );
}

#[test]
fn offset_commit_errors_match_kafka() {
    let broker = Broker::start(2, BROKER_FLAGS);
    let mut stream = connect(&broker.bootstrap());
    create_topic(&mut stream, "ledger", 2);
    find_group_coordinator(&mut stream, "committer");
    let (member_id, generation_id) =
        stable_single_member_group(&mut stream, "committer", &["ledger"]);

    // Too long metadata fails only its own partition.
    let long_metadata = "m".repeat(OFFSET_METADATA_MAX_BYTES + 1);
    let response = call(
        &mut stream,
        8,
        &commit_request(
            8,
            "committer",
            generation_id,
            &member_id,
            "ledger",
            &[(0, 5, &long_metadata), (1, 6, "fits")],
        ),
    );
    assert_eq!(
        commit_errors(&response),
        vec![(0, OFFSET_METADATA_TOO_LARGE), (1, NONE)]
    );
    let (code, offsets) = fetch_offsets(&mut stream, "committer", "ledger", &[0, 1]);
    assert_eq!(code, NONE);
    assert_eq!(
        offsets,
        vec![
            (0, -1, String::new(), NONE),
            (1, 6, "fits".to_string(), NONE)
        ]
    );

    let response = call(
        &mut stream,
        8,
        &commit_request(
            8,
            "committer",
            generation_id,
            &member_id,
            "no-such-topic",
            &[(0, 1, "")],
        ),
    );
    assert_eq!(
        commit_errors(&response),
        vec![(0, UNKNOWN_TOPIC_OR_PARTITION)]
    );

    // A generation for a group that does not exist: Kafka answers ILLEGAL_GENERATION
    // before v9 (v9 is checked in its own test below).
    for version in 2..=8 {
        let response = call(
            &mut stream,
            version,
            &commit_request(version, "never-formed", 5, "ghost", "ledger", &[(0, 1, "")]),
        );
        assert_eq!(
            commit_errors(&response),
            vec![(0, ILLEGAL_GENERATION)],
            "OffsetCommit v{version} with generation 5 to an unknown group"
        );
    }

    // A standalone consumer (assign(), no group management): generation -1, no member.
    for version in [2, 9] {
        let group = format!("standalone-v{version}");
        let response = call(
            &mut stream,
            version,
            &commit_request(version, &group, -1, "", "ledger", &[(1, 42, "solo")]),
        );
        assert_eq!(
            commit_errors(&response),
            vec![(1, NONE)],
            "standalone OffsetCommit v{version}"
        );
        let (code, offsets) = fetch_offsets(&mut stream, &group, "ledger", &[1]);
        assert_eq!(code, NONE);
        assert_eq!(offsets, vec![(1, 42, "solo".to_string(), NONE)]);
    }
}

#[test]
fn offset_commit_v9_with_a_generation_to_an_unknown_group_is_group_id_not_found() {
    // Kafka 4's coordinator (OffsetMetadataManager.validateOffsetCommit): "Starting from
    // version 9 of the OffsetCommit API, we return GROUP_ID_NOT_FOUND if the group does
    // not exist"; older versions keep ILLEGAL_GENERATION.
    let broker = Broker::start(2, BROKER_FLAGS);
    let mut stream = connect(&broker.bootstrap());
    create_topic(&mut stream, "ledger", 1);
    find_group_coordinator(&mut stream, "never-formed");
    let response = call(
        &mut stream,
        9,
        &commit_request(9, "never-formed", 5, "ghost", "ledger", &[(0, 1, "")]),
    );
    assert_eq!(commit_errors(&response), vec![(0, GROUP_ID_NOT_FOUND)]);
}

#[test]
fn offset_commit_checks_member_generation_and_group_state() {
    // Kafka's ClassicGroup.validateOffsetCommit: the member and generation must match;
    // a commit without them is only taken while the group is Empty; a valid member in
    // CompletingRebalance is told REBALANCE_IN_PROGRESS.
    let broker = Broker::start(2, BROKER_FLAGS);
    let mut stream = connect(&broker.bootstrap());
    create_topic(&mut stream, "ledger", 1);
    find_group_coordinator(&mut stream, "checked");
    let joined = join_new_member(
        &mut stream,
        9,
        "checked",
        &consumer_subscription(&["ledger"]),
    );
    let member_id = joined.member_id.to_string();
    let generation_id = joined.generation_id;
    let commit = |stream: &mut TcpStream, generation_id: i32, member_id: &str| {
        let request = commit_request(
            8,
            "checked",
            generation_id,
            member_id,
            "ledger",
            &[(0, 1, "")],
        );
        commit_errors(&call(stream, 8, &request))
    };

    // Joined, not yet synced: CompletingRebalance. Heartbeats are fine meanwhile.
    assert_eq!(
        commit(&mut stream, generation_id, &member_id),
        vec![(0, REBALANCE_IN_PROGRESS)],
        "commit in CompletingRebalance"
    );
    assert_eq!(
        heartbeat(&mut stream, 4, "checked", generation_id, &member_id),
        NONE
    );

    let assignment = Bytes::from_static(b"a");
    let mismatched = sync_request(5, "checked", generation_id, &member_id, &[])
        .with_protocol_name(Some(text("roundrobin")));
    let synced = call(&mut stream, 5, &mismatched);
    assert_eq!(
        synced.error_code, INCONSISTENT_GROUP_PROTOCOL,
        "SyncGroup v5 naming another protocol"
    );
    let synced = call(
        &mut stream,
        5,
        &sync_request(
            5,
            "checked",
            generation_id,
            &member_id,
            &[(&member_id, &assignment)],
        ),
    );
    assert_eq!(synced.error_code, NONE);

    // Stable.
    assert_eq!(
        commit(&mut stream, generation_id, "ghost"),
        vec![(0, UNKNOWN_MEMBER_ID)]
    );
    assert_eq!(
        commit(&mut stream, generation_id + 1, &member_id),
        vec![(0, ILLEGAL_GENERATION)]
    );
    assert_eq!(
        commit(&mut stream, -1, ""),
        vec![(0, UNKNOWN_MEMBER_ID)],
        "a commit without member and generation while the group has members"
    );
    assert_eq!(
        commit(&mut stream, generation_id, &member_id),
        vec![(0, NONE)]
    );

    // Another protocol type cannot join a group with members.
    let mut connect_join = join_request(
        9,
        "checked",
        "",
        &Bytes::from_static(b"w"),
        SESSION_TIMEOUT_MS,
    );
    connect_join.protocol_type = text("connect");
    let refused = call(&mut stream, 9, &connect_join);
    assert_eq!(
        refused.error_code, INCONSISTENT_GROUP_PROTOCOL,
        "JoinGroup of another protocol type"
    );

    // Empty again: a standalone commit is taken, and OffsetFetch with null topics lists it.
    let left = call(
        &mut stream,
        1,
        &LeaveGroupRequest::default()
            .with_group_id(group_id("checked"))
            .with_member_id(text(&member_id)),
    );
    assert_eq!(left.error_code, NONE);
    let request = commit_request(8, "checked", -1, "", "ledger", &[(0, 9, "after")]);
    assert_eq!(
        commit_errors(&call(&mut stream, 8, &request)),
        vec![(0, NONE)]
    );
    for version in [2, 7] {
        let response = call(
            &mut stream,
            version,
            &OffsetFetchRequest::default()
                .with_group_id(group_id("checked"))
                .with_topics(None),
        );
        let all: Vec<(String, i32, i64)> = response
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.name.to_string(), p.partition_index, p.committed_offset))
            })
            .collect();
        assert_eq!(
            all,
            vec![("ledger".to_string(), 0, 9)],
            "OffsetFetch v{version} of all topics"
        );
    }
}

#[test]
fn group_and_offset_deletion_errors_match_kafka() {
    let broker = Broker::start(2, BROKER_FLAGS);
    let mut stream = connect(&broker.bootstrap());
    create_topic(&mut stream, "subscribed", 1);
    create_topic(&mut stream, "unsubscribed", 1);
    find_group_coordinator(&mut stream, "deleting");
    let (member_id, generation_id) =
        stable_single_member_group(&mut stream, "deleting", &["subscribed"]);
    for topic in ["subscribed", "unsubscribed"] {
        let response = call(
            &mut stream,
            8,
            &commit_request(
                8,
                "deleting",
                generation_id,
                &member_id,
                topic,
                &[(0, 3, "")],
            ),
        );
        assert_eq!(
            commit_errors(&response),
            vec![(0, NONE)],
            "commit to {topic}"
        );
    }

    for version in 0..=2 {
        assert_eq!(
            delete_groups(&mut stream, version, &["deleting", "no-such-group"]),
            vec![
                ("deleting".to_string(), NON_EMPTY_GROUP),
                ("no-such-group".to_string(), GROUP_ID_NOT_FOUND)
            ],
            "DeleteGroups v{version}"
        );
    }

    // KIP-496: a Stable consumer group keeps the offsets of topics it subscribes to.
    let response = offset_delete(
        &mut stream,
        "deleting",
        &[("subscribed", &[0]), ("unsubscribed", &[0])],
    );
    assert_eq!(response.error_code, NONE, "OffsetDelete: {response:?}");
    assert_eq!(
        offset_delete_errors(&response),
        vec![
            ("subscribed".to_string(), 0, GROUP_SUBSCRIBED_TO_TOPIC),
            ("unsubscribed".to_string(), 0, NONE)
        ]
    );
    let (_, offsets) = fetch_offsets(&mut stream, "deleting", "subscribed", &[0]);
    assert_eq!(offsets[0].1, 3, "subscribed topic's offset kept");
    let (_, offsets) = fetch_offsets(&mut stream, "deleting", "unsubscribed", &[0]);
    assert_eq!(offsets[0].1, -1, "unsubscribed topic's offset deleted");

    let response = offset_delete(&mut stream, "no-such-group", &[("subscribed", &[0])]);
    assert_eq!(
        response.error_code, GROUP_ID_NOT_FOUND,
        "OffsetDelete of an unknown group"
    );
}

#[test]
fn coordinator_key_types_and_the_offsets_topic_follow_kafka() {
    let broker = Broker::start(2, BROKER_FLAGS);
    let mut stream = connect(&broker.bootstrap());

    // No transaction coordinator here.
    for version in 1..=3 {
        let response = call(
            &mut stream,
            version,
            &FindCoordinatorRequest::default()
                .with_key(text("a-transactional-id"))
                .with_key_type(1),
        );
        assert_eq!(
            response.error_code, COORDINATOR_NOT_AVAILABLE,
            "FindCoordinator v{version} for a transaction"
        );
    }
    let response = call(
        &mut stream,
        4,
        &FindCoordinatorRequest::default()
            .with_key_type(1)
            .with_coordinator_keys(vec![text("a-transactional-id")]),
    );
    let codes: Vec<i16> = response.coordinators.iter().map(|c| c.error_code).collect();
    assert_eq!(
        codes,
        vec![COORDINATOR_NOT_AVAILABLE],
        "FindCoordinator v4 for a transaction"
    );

    create_topic(&mut stream, "plain", 1);
    find_group_coordinator(&mut stream, "any-group");
    for version in [1, 12] {
        let response = call(
            &mut stream,
            version,
            &MetadataRequest::default().with_topics(None),
        );
        let topic = |name: &str| {
            response
                .topics
                .iter()
                .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == name))
                .unwrap_or_else(|| panic!("Metadata v{version} lacks {name}: {response:?}"))
        };
        let offsets = topic(OFFSETS_TOPIC);
        assert!(
            offsets.is_internal,
            "Metadata v{version}: {OFFSETS_TOPIC} is internal"
        );
        assert_eq!(offsets.partitions.len(), OFFSETS_TOPIC_PARTITIONS);
        assert!(
            !topic("plain").is_internal,
            "Metadata v{version}: plain is not internal"
        );
    }

    // Clients may not write to the internal topic (Kafka: "Cannot append to internal topic").
    let batch = record_batch_v2(&[(b"k".as_slice(), b"v".as_slice())], 1_700_000_000_000);
    write_lenient(
        &mut stream,
        &frame(&produce_request_v3(77, OFFSETS_TOPIC, 0, 1, &batch)),
    );
    let payload = read_frame(&mut stream).unwrap_or_else(|error| panic!("Produce: {error}"));
    let (code, _) = parse_produce_response_v3(&payload, 77);
    assert_eq!(code, INVALID_TOPIC_EXCEPTION, "Produce to {OFFSETS_TOPIC}");
}

// ---- 3. session timeout ----

#[test]
fn silent_member_is_removed_after_its_session_timeout() {
    let broker = Broker::start(2, BROKER_FLAGS);
    let mut stream = connect(&broker.bootstrap());
    find_group_coordinator(&mut stream, "silent");
    let subscription = consumer_subscription(&["orders"]);
    let first = call(
        &mut stream,
        9,
        &join_request(9, "silent", "", &subscription, MIN_SESSION_TIMEOUT_MS),
    );
    let member_id = first.member_id.to_string();
    let joined = call(
        &mut stream,
        9,
        &join_request(
            9,
            "silent",
            &member_id,
            &subscription,
            MIN_SESSION_TIMEOUT_MS,
        ),
    );
    assert_eq!(joined.error_code, NONE);
    let assignment = Bytes::from_static(b"a");
    let synced = call(
        &mut stream,
        5,
        &sync_request(
            5,
            "silent",
            joined.generation_id,
            &member_id,
            &[(&member_id, &assignment)],
        ),
    );
    assert_eq!(synced.error_code, NONE);
    let last_heard = Instant::now();
    assert_eq!(
        describe_group(&mut stream, 5, "silent")
            .group_state
            .as_str(),
        "Stable"
    );

    poll_until(Duration::from_secs(15), "silent member removed", || {
        let described = describe_group(&mut stream, 5, "silent");
        (described.group_state.as_str() == "Empty" && described.members.is_empty()).then_some(())
    });
    let waited = last_heard.elapsed();
    assert!(
        waited >= Duration::from_millis(5_000),
        "member removed after {waited:?}, before its {MIN_SESSION_TIMEOUT_MS} ms session timeout"
    );
    assert_eq!(
        heartbeat(&mut stream, 4, "silent", joined.generation_id, &member_id),
        UNKNOWN_MEMBER_ID,
        "heartbeat of the expired member"
    );
}

// ---- 4. a broken JoinGroup frame ----

#[test]
fn broken_join_group_frame_closes_only_that_connection() {
    let mut broker = Broker::start(2, BROKER_FLAGS);
    let mut stream = connect(&broker.bootstrap());
    find_group_coordinator(&mut stream, "survivor");
    let (member_id, generation_id) =
        stable_single_member_group(&mut stream, "survivor", &["orders"]);

    // A JoinGroup v5 whose body stops inside the group id string.
    let mut truncated = Vec::new();
    RequestHeader::default()
        .with_request_api_key(ApiKey::JoinGroup as i16)
        .with_request_api_version(5)
        .with_correlation_id(1)
        .with_client_id(Some(text("truncating")))
        .encode(&mut truncated, ApiKey::JoinGroup.request_header_version(5))
        .expect("encode header");
    truncated.extend_from_slice(&100i16.to_be_bytes());
    truncated.extend_from_slice(b"sur");
    // A flexible JoinGroup v9 header followed by bytes that are no JoinGroup at all.
    let mut garbage = Vec::new();
    RequestHeader::default()
        .with_request_api_key(ApiKey::JoinGroup as i16)
        .with_request_api_version(9)
        .with_correlation_id(2)
        .with_client_id(Some(text("garbage")))
        .encode(&mut garbage, ApiKey::JoinGroup.request_header_version(9))
        .expect("encode header");
    garbage.extend_from_slice(&[0xff; 64]);

    for (what, payload) in [("truncated", truncated), ("garbage", garbage)] {
        let mut broken = connect(&broker.bootstrap());
        write_lenient(&mut broken, &frame(&payload));
        let hangup = wait_for_close(&mut broken);
        assert!(
            matches!(
                hangup,
                Hangup::Closed {
                    bytes_before_close: 0
                }
            ),
            "{what} JoinGroup: expected the connection closed without an answer, got {hangup:?}"
        );
        broker.assert_alive();
        assert_eq!(
            heartbeat(&mut stream, 4, "survivor", generation_id, &member_id),
            NONE,
            "the other connection's member after a {what} JoinGroup"
        );
    }
}

// ---- 5. a join round waits for every known member ----

#[test]
fn join_round_waits_until_every_member_rejoins() {
    let broker = Broker::start(2, BROKER_FLAGS);
    let mut first = connect(&broker.bootstrap());
    let mut second = connect(&broker.bootstrap());
    find_group_coordinator(&mut first, "waiting");
    let subscription = consumer_subscription(&["orders"]);

    // Round 1: the first member alone and Stable, then the second joins, the first
    // learns it by heartbeat and rejoins.
    let (first_id, first_generation) =
        stable_single_member_group(&mut first, "waiting", &["orders"]);
    let step = call(
        &mut second,
        9,
        &join_request(9, "waiting", "", &subscription, SESSION_TIMEOUT_MS),
    );
    assert_eq!(step.error_code, MEMBER_ID_REQUIRED);
    let second_id = step.member_id.to_string();
    let second_join = send(
        &mut second,
        9,
        &join_request(9, "waiting", &second_id, &subscription, SESSION_TIMEOUT_MS),
    );
    poll_until(
        Duration::from_secs(5),
        "first member told to rejoin",
        || {
            let code = heartbeat(&mut first, 4, "waiting", first_generation, &first_id);
            (code == REBALANCE_IN_PROGRESS).then_some(())
        },
    );
    let rejoined = call(
        &mut first,
        9,
        &join_request(9, "waiting", &first_id, &subscription, SESSION_TIMEOUT_MS),
    );
    let second_joined = receive::<JoinGroupRequest>(&mut second, 9, second_join)
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(
        (rejoined.error_code, second_joined.error_code),
        (NONE, NONE)
    );
    let generation_id = rejoined.generation_id;
    assert_eq!(generation_id, first_generation + 1);
    assert_eq!(second_joined.generation_id, generation_id);
    let leader = rejoined.leader.to_string();
    assert_eq!(rejoined.members.len(), 2, "the leader sees both members");

    // Sync: the follower waits for the leader's assignment.
    let (leader_stream, follower_stream, leader_id, follower_id) = if leader == first_id {
        (&mut first, &mut second, first_id.clone(), second_id.clone())
    } else {
        (&mut second, &mut first, second_id.clone(), first_id.clone())
    };
    let follower_assignment = Bytes::from_static(b"follower");
    let leader_assignment = Bytes::from_static(b"leader");
    let follower_sync = send(
        follower_stream,
        5,
        &sync_request(5, "waiting", generation_id, &follower_id, &[]),
    );
    let synced = call(
        leader_stream,
        5,
        &sync_request(
            5,
            "waiting",
            generation_id,
            &leader_id,
            &[
                (&leader_id, &leader_assignment),
                (&follower_id, &follower_assignment),
            ],
        ),
    );
    assert_eq!(synced.error_code, NONE);
    assert_eq!(synced.assignment, leader_assignment);
    let followed = receive::<SyncGroupRequest>(follower_stream, 5, follower_sync)
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(followed.error_code, NONE);
    assert_eq!(followed.assignment, follower_assignment);

    // Round 2: the first member's JoinGroup waits for the second to rejoin.
    let mut waiting_stream = first.try_clone().expect("clone socket");
    let (answer_sender, answer_receiver) = mpsc::channel();
    let rejoin = join_request(9, "waiting", &first_id, &subscription, SESSION_TIMEOUT_MS);
    let waiter = thread::spawn(move || {
        let answer = call(&mut waiting_stream, 9, &rejoin);
        let _ = answer_sender.send(answer);
    });
    assert!(
        answer_receiver
            .recv_timeout(Duration::from_secs(1))
            .is_err(),
        "JoinGroup answered before the other member rejoined"
    );
    poll_until(
        Duration::from_secs(5),
        "second member told to rejoin",
        || {
            let code = heartbeat(&mut second, 4, "waiting", generation_id, &second_id);
            (code == REBALANCE_IN_PROGRESS).then_some(())
        },
    );
    assert!(
        answer_receiver.try_recv().is_err(),
        "JoinGroup answered before the other member rejoined"
    );
    let second_rejoined = call(
        &mut second,
        9,
        &join_request(9, "waiting", &second_id, &subscription, SESSION_TIMEOUT_MS),
    );
    let first_rejoined = answer_receiver
        .recv_timeout(Duration::from_secs(10))
        .expect("the waiting JoinGroup is answered once every member rejoined");
    waiter.join().expect("join thread");
    assert_eq!(
        (first_rejoined.error_code, second_rejoined.error_code),
        (NONE, NONE)
    );
    assert_eq!(first_rejoined.generation_id, generation_id + 1);
    assert_eq!(second_rejoined.generation_id, generation_id + 1);
    let leader_answer = if first_rejoined.leader.as_str() == first_id {
        &first_rejoined
    } else {
        &second_rejoined
    };
    assert_eq!(
        leader_answer.members.len(),
        2,
        "both members in the new generation"
    );
}
