//! The membership lifecycle of a classic consumer group member: JoinGroup
//! (with KIP-394's MEMBER_ID_REQUIRED second step), the leader's range
//! assignment, SyncGroup, heartbeats and LeaveGroup. Retriable coordinator
//! and rebalance errors are retried until `JOIN_DEADLINE`.

use std::collections::HashMap;
use std::thread;
use std::time::Instant;

use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, SyncGroupRequest,
};
use kafka_protocol::protocol::StrBytes;

use super::{
    assignment_bytes, parse_assignment, parse_subscription, range_assign, subscription_bytes,
    GroupMember, ASSIGNOR, COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE,
    HEARTBEAT_INTERVAL, ILLEGAL_GENERATION, JOIN_DEADLINE, MEMBER_ID_REQUIRED, NOT_COORDINATOR,
    PROTOCOL_TYPE, REBALANCE_IN_PROGRESS, REBALANCE_TIMEOUT_MS, RETRY_BACKOFF, SESSION_TIMEOUT_MS,
    UNKNOWN_MEMBER_ID,
};
use crate::cli::kafka::{KafkaClient, ToolError};

impl GroupMember {
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
