//! The second half of each version flow: the Stable group as DescribeGroups and
//! ListGroups show it, then LeaveGroup, OffsetDelete and DeleteGroups take it apart, each at
//! the flow's version clamped to the API's advertised range.

use std::net::TcpStream;

use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::*;

use super::Flow;
use crate::flows::{delete_groups, describe_group, fetch_offsets, offset_delete};
use crate::requests::{group_id, offset_delete_errors, text};
use crate::wire::call;
use crate::{CLIENT_ID, NONE};

impl Flow {
    pub(super) fn describe(&self, stream: &mut TcpStream) {
        let version = self.flow.min(6);
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
    pub(super) fn list(&self, stream: &mut TcpStream) {
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
    pub(super) fn leave(&self, stream: &mut TcpStream) {
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
    pub(super) fn delete_offsets_and_group(&self, stream: &mut TcpStream) {
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
