//! `corelog consume --group`: membership of a classic consumer group, as
//! Kafka's Java consumer does it with the `range` assignor. JoinGroup (with
//! the MEMBER_ID_REQUIRED second step of KIP-394), the leader's range
//! assignment over every member's subscription, SyncGroup, heartbeats,
//! OffsetFetch/OffsetCommit with the generation and member id, LeaveGroup.
//!
//! Runs on the CLI's main thread; requests go to `Node::Coordinator(group)`.
//! The consume loop calls `heartbeat_if_due` between fetches, so fetches wait
//! at most `FETCH_MAX_WAIT` and heartbeats stay near `HEARTBEAT_INTERVAL`.

use std::collections::{BTreeMap, HashMap};
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, ConsumerProtocolAssignment, ConsumerProtocolSubscription, GroupId, HeartbeatRequest,
    JoinGroupRequest, LeaveGroupRequest, OffsetCommitRequest, OffsetFetchRequest, SyncGroupRequest,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::cli::kafka::{KafkaClient, Node, ToolError};

/// How often the consume loop heartbeats (Java's heartbeat.interval.ms is 3 s;
/// 1 s notices a rebalance sooner).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// Within corelog's default [6 s, 30 min] session timeout bounds.
const SESSION_TIMEOUT_MS: i32 = 10_000;
/// How long the coordinator waits for members to rejoin; below the client's
/// 30 s read timeout, since JoinGroup answers only when the round ends.
const REBALANCE_TIMEOUT_MS: i32 = 20_000;
/// How long joining may keep failing with retriable errors.
const JOIN_DEADLINE: Duration = Duration::from_secs(60);
const RETRY_BACKOFF: Duration = Duration::from_millis(200);
const PROTOCOL_TYPE: &str = "consumer";
const ASSIGNOR: &str = "range";

pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
pub const NOT_COORDINATOR: i16 = 16;
pub const ILLEGAL_GENERATION: i16 = 22;
pub const UNKNOWN_MEMBER_ID: i16 = 25;
pub const REBALANCE_IN_PROGRESS: i16 = 27;
pub const MEMBER_ID_REQUIRED: i16 = 79;

/// Whether an error means "join again" rather than "give up".
pub fn needs_rejoin(error: &ToolError) -> bool {
    matches!(
        error.kafka_code(),
        Some(ILLEGAL_GENERATION | UNKNOWN_MEMBER_ID | REBALANCE_IN_PROGRESS)
    )
}

/// Versions negotiated with the coordinator once.
struct Versions {
    join: i16,
    sync: i16,
    heartbeat: i16,
    leave: i16,
    commit: i16,
    fetch: i16,
}

/// This process as a member of one group, subscribed to one topic.
pub struct GroupMember {
    group: String,
    node: Node,
    topic: String,
    member_id: String,
    generation: i32,
    versions: Versions,
    last_heartbeat: Instant,
}

impl GroupMember {
    /// Joins `group` subscribed to `topic`; returns the member and the
    /// partitions of `topic` assigned to it.
    pub fn join(
        client: &mut KafkaClient,
        group: &str,
        topic: &str,
    ) -> Result<(GroupMember, Vec<i32>), ToolError> {
        let node = Node::Coordinator(group.to_string());
        let versions = Versions {
            join: client.version(&node, ApiKey::JoinGroup, 7)?,
            sync: client.version(&node, ApiKey::SyncGroup, 5)?,
            heartbeat: client.version(&node, ApiKey::Heartbeat, 4)?,
            leave: client.version(&node, ApiKey::LeaveGroup, 5)?,
            commit: client.version(&node, ApiKey::OffsetCommit, 8)?,
            fetch: client.version(&node, ApiKey::OffsetFetch, 7)?,
        };
        let mut member = GroupMember {
            group: group.to_string(),
            node,
            topic: topic.to_string(),
            member_id: String::new(),
            generation: -1,
            versions,
            last_heartbeat: Instant::now(),
        };
        let assigned = member.rejoin(client)?;
        Ok((member, assigned))
    }

    pub fn generation(&self) -> i32 {
        self.generation
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    /// JoinGroup then SyncGroup until a generation is Stable with us in it.
    pub fn rejoin(&mut self, client: &mut KafkaClient) -> Result<Vec<i32>, ToolError> {
        let deadline = Instant::now() + JOIN_DEADLINE;
        loop {
            let outcome = self.join_round(client);
            match outcome {
                Ok(assigned) => {
                    self.last_heartbeat = Instant::now();
                    return Ok(assigned);
                }
                Err(error) if Instant::now() < deadline && retriable_join_error(&error) => {
                    if error.kafka_code() == Some(UNKNOWN_MEMBER_ID) {
                        self.member_id.clear();
                    }
                    thread::sleep(RETRY_BACKOFF);
                }
                Err(error) => return Err(error),
            }
        }
    }

    fn join_round(&mut self, client: &mut KafkaClient) -> Result<Vec<i32>, ToolError> {
        let context = || format!("joining group {}", self.group);
        let mut request = JoinGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.group.clone())))
            .with_session_timeout_ms(SESSION_TIMEOUT_MS)
            .with_member_id(StrBytes::from_string(self.member_id.clone()))
            .with_protocol_type(StrBytes::from_static_str(PROTOCOL_TYPE))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(StrBytes::from_static_str(ASSIGNOR))
                .with_metadata(subscription_bytes(std::slice::from_ref(&self.topic))?)]);
        if self.versions.join >= 1 {
            request.rebalance_timeout_ms = REBALANCE_TIMEOUT_MS;
        }
        let mut response = client.send(&self.node, self.versions.join, &request)?;
        if response.error_code == MEMBER_ID_REQUIRED {
            // KIP-394: the coordinator names us; join again with that id.
            self.member_id = response.member_id.to_string();
            request.member_id = response.member_id.clone();
            response = client.send(&self.node, self.versions.join, &request)?;
        }
        if response.error_code != 0 {
            return Err(ToolError::kafka(context(), response.error_code));
        }
        self.member_id = response.member_id.to_string();
        self.generation = response.generation_id;
        let assignments = if response.leader == response.member_id {
            let members: Vec<(String, Vec<String>)> = response
                .members
                .iter()
                .map(|member| {
                    Ok((
                        member.member_id.to_string(),
                        parse_subscription(&member.metadata)?,
                    ))
                })
                .collect::<Result<_, ToolError>>()?;
            self.leader_assignments(client, &members)?
        } else {
            Vec::new()
        };
        let mut sync = SyncGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.group.clone())))
            .with_generation_id(self.generation)
            .with_member_id(response.member_id.clone())
            .with_assignments(assignments);
        if self.versions.sync >= 5 {
            sync.protocol_type = Some(StrBytes::from_static_str(PROTOCOL_TYPE));
            sync.protocol_name = Some(StrBytes::from_static_str(ASSIGNOR));
        }
        let synced = client.send(&self.node, self.versions.sync, &sync)?;
        if synced.error_code != 0 {
            return Err(ToolError::kafka(context(), synced.error_code));
        }
        let assigned = parse_assignment(&synced.assignment)?;
        Ok(assigned.get(&self.topic).cloned().unwrap_or_default())
    }

    /// The leader's job: range-assign every member's subscribed topics.
    fn leader_assignments(
        &self,
        client: &mut KafkaClient,
        members: &[(String, Vec<String>)],
    ) -> Result<Vec<SyncGroupRequestAssignment>, ToolError> {
        let mut topics: Vec<String> = members
            .iter()
            .flat_map(|(_, topics)| topics.clone())
            .collect();
        topics.sort_unstable();
        topics.dedup();
        let metadata = client.metadata(Some(&topics))?;
        let partition_counts: HashMap<String, i32> = metadata
            .topics
            .iter()
            .filter(|topic| topic.error_code == 0)
            .filter_map(|topic| {
                let name = topic.name.as_ref()?.0.to_string();
                Some((name, topic.partitions.len() as i32))
            })
            .collect();
        range_assign(members, &partition_counts)
            .into_iter()
            .map(|(member_id, assigned)| {
                Ok(SyncGroupRequestAssignment::default()
                    .with_member_id(StrBytes::from_string(member_id))
                    .with_assignment(assignment_bytes(&assigned)?))
            })
            .collect()
    }

    /// Heartbeats if `HEARTBEAT_INTERVAL` has passed. An error for which
    /// `needs_rejoin` holds means: commit, then `rejoin`.
    pub fn heartbeat_if_due(&mut self, client: &mut KafkaClient) -> Result<(), ToolError> {
        if self.last_heartbeat.elapsed() < HEARTBEAT_INTERVAL {
            return Ok(());
        }
        self.last_heartbeat = Instant::now();
        let request = HeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.group.clone())))
            .with_generation_id(self.generation)
            .with_member_id(StrBytes::from_string(self.member_id.clone()));
        let response = client.send(&self.node, self.versions.heartbeat, &request)?;
        if response.error_code == UNKNOWN_MEMBER_ID {
            self.member_id.clear();
        }
        if response.error_code != 0 {
            return Err(ToolError::kafka(
                format!("heartbeat to group {}", self.group),
                response.error_code,
            ));
        }
        Ok(())
    }

    /// Committed offsets of `partitions` of our topic (those with none are absent).
    pub fn committed(
        &self,
        client: &mut KafkaClient,
        partitions: &[i32],
    ) -> Result<HashMap<i32, i64>, ToolError> {
        let request = OffsetFetchRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.group.clone())))
            .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                .with_name(TopicName(StrBytes::from_string(self.topic.clone())))
                .with_partition_indexes(partitions.to_vec())]));
        let response = client.send(&self.node, self.versions.fetch, &request)?;
        let context = || format!("fetching committed offsets of group {}", self.group);
        if response.error_code != 0 {
            return Err(ToolError::kafka(context(), response.error_code));
        }
        let mut committed = HashMap::new();
        for partition in response
            .topics
            .iter()
            .flat_map(|topic| topic.partitions.iter())
        {
            if partition.error_code != 0 {
                return Err(ToolError::kafka(context(), partition.error_code));
            }
            if partition.committed_offset >= 0 {
                committed.insert(partition.partition_index, partition.committed_offset);
            }
        }
        Ok(committed)
    }

    /// Commits `offsets` (partition, next offset to read) for this generation.
    pub fn commit(
        &self,
        client: &mut KafkaClient,
        offsets: &[(i32, i64)],
    ) -> Result<(), ToolError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let partitions = offsets
            .iter()
            .map(|(partition, offset)| {
                OffsetCommitRequestPartition::default()
                    .with_partition_index(*partition)
                    .with_committed_offset(*offset)
            })
            .collect();
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.group.clone())))
            .with_generation_id_or_member_epoch(self.generation)
            .with_member_id(StrBytes::from_string(self.member_id.clone()))
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_string(self.topic.clone())))
                .with_partitions(partitions)]);
        let response = client.send(&self.node, self.versions.commit, &request)?;
        for partition in response
            .topics
            .iter()
            .flat_map(|topic| topic.partitions.iter())
        {
            if partition.error_code != 0 {
                return Err(ToolError::kafka(
                    format!("committing offsets of group {}", self.group),
                    partition.error_code,
                ));
            }
        }
        Ok(())
    }

    /// Leaves the group so the others rebalance now, not after our session timeout.
    pub fn leave(self, client: &mut KafkaClient) -> Result<(), ToolError> {
        let member_id = StrBytes::from_string(self.member_id.clone());
        let mut request = LeaveGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.group.clone())));
        if self.versions.leave >= 3 {
            request.members = vec![MemberIdentity::default().with_member_id(member_id)];
        } else {
            request.member_id = member_id;
        }
        let response = client.send(&self.node, self.versions.leave, &request)?;
        if response.error_code != 0 {
            return Err(ToolError::kafka(
                format!("leaving group {}", self.group),
                response.error_code,
            ));
        }
        Ok(())
    }
}

fn retriable_join_error(error: &ToolError) -> bool {
    matches!(
        error.kafka_code(),
        Some(
            COORDINATOR_LOAD_IN_PROGRESS
                | COORDINATOR_NOT_AVAILABLE
                | NOT_COORDINATOR
                | ILLEGAL_GENERATION
                | UNKNOWN_MEMBER_ID
                | REBALANCE_IN_PROGRESS
        )
    )
}

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
