//! The ConsumerGroupDescribe view of a group (Kafka's `asDescribedGroup`):
//! state, epochs, the assignor in use and every member with its
//! subscription, current and target assignment. Topic names come from the
//! topic view; partitions of topics it no longer knows are left out, as
//! Kafka does.

use uuid::Uuid;

use super::group::ConsumerGroup;
use super::member::ConsumerMember;
use super::messages::TopicView;
use super::Assignment;

/// `member_type` of a member using the consumer protocol (KIP-1099).
pub const MEMBER_TYPE_CONSUMER: i8 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedTopicPartitions {
    pub topic_id: Uuid,
    pub topic_name: String,
    pub partitions: Vec<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub member_epoch: i32,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub assignment: Vec<DescribedTopicPartitions>,
    pub target_assignment: Vec<DescribedTopicPartitions>,
    pub member_type: i8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedGroup {
    pub group_id: String,
    /// "Empty", "Assigning", "Reconciling", "Stable" or "Dead".
    pub group_state: &'static str,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor_name: String,
    pub members: Vec<DescribedMember>,
}

impl ConsumerGroup {
    pub fn describe(&self, topics: &dyn TopicView) -> DescribedGroup {
        let empty = Assignment::new();
        DescribedGroup {
            group_id: self.group_id.clone(),
            group_state: self.state().name(),
            group_epoch: self.group_epoch,
            assignment_epoch: self.target_assignment_epoch,
            assignor_name: self.preferred_assignor().name().to_string(),
            members: self
                .members
                .values()
                .map(|member| {
                    let target = self
                        .target_assignment
                        .get(&member.member_id)
                        .unwrap_or(&empty);
                    describe_member(member, target, topics)
                })
                .collect(),
        }
    }
}

fn describe_member(
    member: &ConsumerMember,
    target: &Assignment,
    topics: &dyn TopicView,
) -> DescribedMember {
    DescribedMember {
        member_id: member.member_id.clone(),
        instance_id: member.instance_id.clone(),
        rack_id: member.rack_id.clone(),
        member_epoch: member.member_epoch,
        client_id: member.client_id.clone(),
        client_host: member.client_host.clone(),
        subscribed_topic_names: member.subscribed_topic_names.iter().cloned().collect(),
        subscribed_topic_regex: member.subscribed_topic_regex.clone(),
        assignment: described(&member.assigned_partitions, topics),
        target_assignment: described(target, topics),
        member_type: MEMBER_TYPE_CONSUMER,
    }
}

fn described(assignment: &Assignment, topics: &dyn TopicView) -> Vec<DescribedTopicPartitions> {
    assignment
        .iter()
        .filter_map(|(topic_id, partitions)| {
            Some(DescribedTopicPartitions {
                topic_id: *topic_id,
                topic_name: topics.topic_name(topic_id)?,
                partitions: partitions.iter().copied().collect(),
            })
        })
        .collect()
}
