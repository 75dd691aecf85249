//! Every advertised version of every group API in a real flow: ApiVersions advertises
//! Kafka's ranges, FindCoordinator answers at v0-6, and ten groups each go through join,
//! sync, heartbeat, commit, fetch, describe, list, leave and delete at version `flow`
//! (clamped to each API's range), so every version's answer must decode. The steps after
//! the commit live in `versions/teardown.rs`.

mod teardown;

use std::net::TcpStream;

use bytes::Bytes;
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::*;

use crate::common::wire::connect;
use crate::common::Broker;
use crate::flows::{create_topic, heartbeat, join_new_member};
use crate::requests::{
    commit_errors, commit_request, consumer_subscription, group_id, sync_request, text, topic_name,
};
use crate::wire::call;
use crate::{BROKER_FLAGS, GROUP_APIS, NONE};

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
    // v5 adds nothing a group sees, v6 share-group keys (refused elsewhere).
    for version in 4..=6 {
        let response = call(
            &mut stream,
            version,
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
            "FindCoordinator v{version} batch"
        );
    }

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
}
