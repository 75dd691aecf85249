//! One consumer group member driven by hand with ConsumerGroupHeartbeat v1: it chooses its
//! member id, joins at epoch 0 with its subscription, then heartbeats with its epoch and the
//! partitions it owns, taking every new assignment at once (a member with nothing to commit
//! revokes instantly), and leaves with epoch -1.

use std::collections::BTreeSet;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::requests::{group_id, text, topic_name};
use crate::wire::call;
use crate::{HEARTBEAT_VERSION, NONE, PARTITIONS, REBALANCE_TIMEOUT_MS};

/// How long members may take to converge on a split of the topic.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(20);

/// A new member id as the Java client makes it: a random UUID in URL-safe base64 without
/// padding (22 characters), which ConsumerGroupHeartbeat v1 requires on join.
pub(crate) fn new_member_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = Uuid::new_v4().into_bytes();
    let mut bits = 0u32;
    let mut bit_count = 0;
    let mut encoded = String::new();
    for byte in bytes {
        bits = (bits << 8) | u32::from(byte);
        bit_count += 8;
        while bit_count >= 6 {
            bit_count -= 6;
            encoded.push(ALPHABET[((bits >> bit_count) & 0x3f) as usize] as char);
        }
    }
    encoded.push(ALPHABET[((bits << (6 - bit_count)) & 0x3f) as usize] as char);
    assert_eq!(encoded.len(), 22);
    encoded
}

pub(crate) struct RawMember {
    pub(crate) group: String,
    pub(crate) id: String,
    pub(crate) epoch: i32,
    /// `(topic id, partitions)` as the last assignment gave them.
    pub(crate) owned: Vec<(Uuid, Vec<i32>)>,
}

impl RawMember {
    /// Joins `group` at epoch 0 subscribed to `topic`; asserts success.
    pub(crate) fn join(stream: &mut TcpStream, group: &str, topic: &str) -> RawMember {
        let mut member = RawMember {
            group: group.to_string(),
            id: new_member_id(),
            epoch: 0,
            owned: Vec::new(),
        };
        let request = member
            .request(0)
            .with_rebalance_timeout_ms(REBALANCE_TIMEOUT_MS)
            .with_subscribed_topic_names(Some(vec![topic_name(topic)]))
            .with_topic_partitions(Some(Vec::new()));
        let response = call(stream, HEARTBEAT_VERSION, &request);
        member.take(&response);
        assert!(member.epoch > 0, "joined member has epoch 0: {response:?}");
        member
    }

    /// A heartbeat at `epoch` with only the group, member id and epoch set.
    pub(crate) fn request(&self, epoch: i32) -> ConsumerGroupHeartbeatRequest {
        ConsumerGroupHeartbeatRequest::default()
            .with_group_id(group_id(&self.group))
            .with_member_id(text(&self.id))
            .with_member_epoch(epoch)
            .with_rebalance_timeout_ms(-1)
    }

    /// A regular heartbeat (current epoch, owned partitions); asserts NONE and takes the
    /// answer's epoch and assignment.
    pub(crate) fn heartbeat(&mut self, stream: &mut TcpStream) -> ConsumerGroupHeartbeatResponse {
        let owned = self
            .owned
            .iter()
            .map(|(topic_id, partitions)| {
                TopicPartitions::default()
                    .with_topic_id(*topic_id)
                    .with_partitions(partitions.clone())
            })
            .collect();
        let request = self.request(self.epoch).with_topic_partitions(Some(owned));
        let response = call(stream, HEARTBEAT_VERSION, &request);
        self.take(&response);
        response
    }

    /// Leaves the group (epoch -1); asserts the answer is NONE with epoch -1.
    pub(crate) fn leave(self, stream: &mut TcpStream) {
        let response = call(stream, HEARTBEAT_VERSION, &self.request(-1));
        assert_eq!(response.error_code, NONE, "leave: {response:?}");
        assert_eq!(response.member_epoch, -1, "leave answers epoch -1");
    }

    fn take(&mut self, response: &ConsumerGroupHeartbeatResponse) {
        assert_eq!(
            response.error_code, NONE,
            "heartbeat of {} at epoch {}: {response:?}",
            self.id, self.epoch
        );
        let answered_id = response.member_id.as_ref().map(StrBytes::to_string);
        assert_eq!(answered_id.as_deref(), Some(self.id.as_str()), "member id");
        assert!(response.heartbeat_interval_ms > 0, "{response:?}");
        self.epoch = response.member_epoch;
        if let Some(assignment) = &response.assignment {
            self.owned = assignment
                .topic_partitions
                .iter()
                .map(|topic| (topic.topic_id, topic.partitions.clone()))
                .collect();
        }
    }

    /// The partitions this member owns (tests use one topic per group).
    pub(crate) fn partitions(&self) -> BTreeSet<i32> {
        self.owned
            .iter()
            .flat_map(|(_, partitions)| partitions.iter().copied())
            .collect()
    }
}

/// Heartbeats every member in turn until all are at one epoch and own disjoint, non-empty
/// parts that together cover the topic (bounded by [`SETTLE_TIMEOUT`]).
pub(crate) fn settle(stream: &mut TcpStream, members: &mut [RawMember]) {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        for member in members.iter_mut() {
            member.heartbeat(stream);
        }
        let epochs: BTreeSet<i32> = members.iter().map(|member| member.epoch).collect();
        let owned: Vec<BTreeSet<i32>> = members.iter().map(RawMember::partitions).collect();
        let total: usize = owned.iter().map(BTreeSet::len).sum();
        let union: BTreeSet<i32> = owned.iter().flatten().copied().collect();
        let all: BTreeSet<i32> = (0..PARTITIONS).collect();
        if epochs.len() == 1
            && total == all.len()
            && union == all
            && owned.iter().all(|p| !p.is_empty())
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "members did not settle within {SETTLE_TIMEOUT:?}: epochs {epochs:?}, owned {owned:?}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}
