//! A group member's committed offsets: OffsetFetch for where to start and
//! OffsetCommit with the member id and generation, so the coordinator
//! refuses commits from a member a rebalance has fenced off.

use std::collections::HashMap;

use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{GroupId, OffsetCommitRequest, OffsetFetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::GroupMember;
use crate::cli::kafka::{KafkaClient, ToolError};

impl GroupMember {
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
}
