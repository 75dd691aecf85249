//! The API versions corelog implements and advertises in ApiVersions. One
//! table, so "what do we support" has one answer. Ranges follow Apache Kafka
//! 4.4's where we implement the API fully and the kafka-protocol codec has
//! the version: Produce starts at v3 because only RecordBatch v2 is stored
//! (KIP-896 removed older ones from Kafka too). Deliberately lower than Kafka:
//! EndTxn and TxnOffsetCommit (v5 means transaction version 2, see below).

use kafka_protocol::messages::ApiKey;

/// An API and the inclusive range of versions we answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupportedApi {
    pub key: ApiKey,
    pub min_version: i16,
    pub max_version: i16,
}

const fn api(key: ApiKey, min_version: i16, max_version: i16) -> SupportedApi {
    SupportedApi {
        key,
        min_version,
        max_version,
    }
}

/// Every API we answer. Anything not listed closes the connection.
pub const SUPPORTED_APIS: &[SupportedApi] = &[
    // v13 names topics by id (KIP-516): an unknown id is UNKNOWN_TOPIC_ID.
    api(ApiKey::Produce, 3, 13),
    // v18 adds the replica's high watermark (KIP-1166); as in Kafka's
    // broker, only the KRaft quorum reads it, so partition fetches ignore it.
    api(ApiKey::Fetch, 4, 18),
    // v10 adds a timeout for remote (tiered) lookups (KIP-1075); corelog
    // has no tiered storage, so every answer is immediate.
    api(ApiKey::ListOffsets, 1, 10),
    // v13: a top-level error code (KIP-1102), NONE from a working broker.
    api(ApiKey::Metadata, 0, 13),
    api(ApiKey::ApiVersions, 0, 4),
    api(ApiKey::CreateTopics, 2, 7),
    api(ApiKey::DeleteTopics, 1, 6),
    api(ApiKey::InitProducerId, 0, 5),
    api(ApiKey::DescribeConfigs, 1, 4),
    // v2: include_fenced_brokers / is_fenced (KIP-1073).
    api(ApiKey::DescribeCluster, 0, 2),
    // The metadata quorum (`__cluster_metadata`), answered by every broker
    // from the quorum leader; a single node answers as a quorum of one.
    api(ApiKey::DescribeQuorum, 0, 2),
    // Consumer groups (classic protocol). OffsetCommit/OffsetFetch start
    // where Kafka 4.0 starts them (KIP-896).
    // v5 only allows TRANSACTION_ABORTABLE; v6 adds the share-group key
    // type (KIP-932), answered INVALID_REQUEST: corelog has no share groups.
    api(ApiKey::FindCoordinator, 0, 6),
    api(ApiKey::JoinGroup, 0, 9),
    api(ApiKey::SyncGroup, 0, 5),
    api(ApiKey::Heartbeat, 0, 4),
    api(ApiKey::LeaveGroup, 0, 5),
    // v10 names topics by id only (KIP-848, Kafka 4.2); an unknown id is
    // UNKNOWN_TOPIC_ID per partition. Codecs by hand in `offsets_v10`.
    api(ApiKey::OffsetCommit, 2, 10),
    api(ApiKey::OffsetFetch, 1, 10),
    api(ApiKey::ListGroups, 0, 5),
    // v6: an unknown group is GROUP_ID_NOT_FOUND with a message (KIP-1043).
    api(ApiKey::DescribeGroups, 0, 6),
    api(ApiKey::DeleteGroups, 0, 2),
    // KIP-848, the consumer group protocol: v1 has the client pick its
    // member id (KIP-1082) and regex subscriptions.
    api(ApiKey::ConsumerGroupHeartbeat, 0, 1),
    api(ApiKey::ConsumerGroupDescribe, 0, 1),
    api(ApiKey::OffsetDelete, 0, 0),
    // Topic administration.
    api(ApiKey::AlterConfigs, 0, 2),
    api(ApiKey::IncrementalAlterConfigs, 0, 1),
    api(ApiKey::CreatePartitions, 0, 3),
    api(ApiKey::DeleteRecords, 0, 2),
    api(ApiKey::OffsetForLeaderEpoch, 2, 4),
    // Transactions (KIP-98; KIP-890 part 2 "transaction version 2" is not
    // offered, so clients add partitions explicitly and EndTxn keeps the epoch).
    // Kafka gives EndTxn v5 and TxnOffsetCommit v5 TV2 semantics by request
    // version alone (epoch bump, implicit add of the offsets partition), so
    // those stay at v4; AddPartitionsToTxn v5 is broker-to-broker only.
    api(ApiKey::AddPartitionsToTxn, 0, 4),
    api(ApiKey::AddOffsetsToTxn, 0, 4),
    api(ApiKey::EndTxn, 0, 4),
    api(ApiKey::TxnOffsetCommit, 0, 4),
    api(ApiKey::WriteTxnMarkers, 1, 1),
    api(ApiKey::DescribeTransactions, 0, 0),
    // v1: duration filter (KIP-994); v2: transactional id pattern (KIP-1152).
    api(ApiKey::ListTransactions, 0, 2),
    // Replication administration (KIP-460 election types, KIP-455
    // reassignments; v1's allow_replication_factor_change is KIP-860).
    api(ApiKey::ElectLeaders, 0, 2),
    api(ApiKey::AlterPartitionReassignments, 0, 1),
    api(ApiKey::ListPartitionReassignments, 0, 0),
    // Each replica's log size and offset lag (KIP-113), the volume's size
    // (v4, KIP-827). v0 is deprecated and gone from Kafka 4.0 (KIP-896).
    api(ApiKey::DescribeLogDirs, 1, 4),
    // Topics and their partitions a page at a time (KIP-966); the Java
    // Admin client's describeTopics uses it when offered.
    api(ApiKey::DescribeTopicPartitions, 0, 0),
];

/// The supported range for `key`, if we implement it.
pub fn supported_range(key: ApiKey) -> Option<SupportedApi> {
    SUPPORTED_APIS.iter().copied().find(|api| api.key == key)
}

/// Whether `version` of `key` is one we answer.
pub fn is_supported(key: ApiKey, version: i16) -> bool {
    supported_range(key)
        .map(|api| (api.min_version..=api.max_version).contains(&version))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::Message;

    fn crate_range(key: ApiKey) -> (i16, i16) {
        let range = match key {
            ApiKey::Produce => ProduceRequest::VERSIONS,
            ApiKey::Fetch => FetchRequest::VERSIONS,
            ApiKey::ListOffsets => ListOffsetsRequest::VERSIONS,
            ApiKey::Metadata => MetadataRequest::VERSIONS,
            ApiKey::ApiVersions => ApiVersionsRequest::VERSIONS,
            ApiKey::CreateTopics => CreateTopicsRequest::VERSIONS,
            ApiKey::DeleteTopics => DeleteTopicsRequest::VERSIONS,
            ApiKey::InitProducerId => InitProducerIdRequest::VERSIONS,
            ApiKey::DescribeConfigs => DescribeConfigsRequest::VERSIONS,
            ApiKey::DescribeCluster => DescribeClusterRequest::VERSIONS,
            ApiKey::DescribeQuorum => DescribeQuorumRequest::VERSIONS,
            ApiKey::FindCoordinator => FindCoordinatorRequest::VERSIONS,
            ApiKey::JoinGroup => JoinGroupRequest::VERSIONS,
            ApiKey::SyncGroup => SyncGroupRequest::VERSIONS,
            ApiKey::Heartbeat => HeartbeatRequest::VERSIONS,
            ApiKey::LeaveGroup => LeaveGroupRequest::VERSIONS,
            ApiKey::OffsetCommit => OffsetCommitRequest::VERSIONS,
            ApiKey::OffsetFetch => OffsetFetchRequest::VERSIONS,
            ApiKey::ListGroups => ListGroupsRequest::VERSIONS,
            ApiKey::DescribeGroups => DescribeGroupsRequest::VERSIONS,
            ApiKey::DeleteGroups => DeleteGroupsRequest::VERSIONS,
            ApiKey::ConsumerGroupDescribe => ConsumerGroupDescribeRequest::VERSIONS,
            ApiKey::ConsumerGroupHeartbeat => ConsumerGroupHeartbeatRequest::VERSIONS,
            ApiKey::OffsetDelete => OffsetDeleteRequest::VERSIONS,
            ApiKey::AlterConfigs => AlterConfigsRequest::VERSIONS,
            ApiKey::IncrementalAlterConfigs => IncrementalAlterConfigsRequest::VERSIONS,
            ApiKey::CreatePartitions => CreatePartitionsRequest::VERSIONS,
            ApiKey::DeleteRecords => DeleteRecordsRequest::VERSIONS,
            ApiKey::OffsetForLeaderEpoch => OffsetForLeaderEpochRequest::VERSIONS,
            ApiKey::AddPartitionsToTxn => AddPartitionsToTxnRequest::VERSIONS,
            ApiKey::AddOffsetsToTxn => AddOffsetsToTxnRequest::VERSIONS,
            ApiKey::EndTxn => EndTxnRequest::VERSIONS,
            ApiKey::TxnOffsetCommit => TxnOffsetCommitRequest::VERSIONS,
            ApiKey::WriteTxnMarkers => WriteTxnMarkersRequest::VERSIONS,
            ApiKey::DescribeTransactions => DescribeTransactionsRequest::VERSIONS,
            ApiKey::ListTransactions => ListTransactionsRequest::VERSIONS,
            ApiKey::ElectLeaders => ElectLeadersRequest::VERSIONS,
            ApiKey::AlterPartitionReassignments => AlterPartitionReassignmentsRequest::VERSIONS,
            ApiKey::ListPartitionReassignments => ListPartitionReassignmentsRequest::VERSIONS,
            ApiKey::DescribeLogDirs => DescribeLogDirsRequest::VERSIONS,
            ApiKey::DescribeTopicPartitions => DescribeTopicPartitionsRequest::VERSIONS,
            other => panic!("add {other:?} to the test"),
        };
        // v10 of the offset APIs (topic ids) has its own codec,
        // `protocol::offsets_v10`, on top of the crate's v0-9.
        let max = match key {
            ApiKey::OffsetCommit | ApiKey::OffsetFetch => range
                .max
                .max(crate::protocol::offsets_v10::TOPIC_ID_VERSION),
            _ => range.max,
        };
        (range.min, max)
    }

    #[test]
    fn every_advertised_version_has_a_codec() {
        for api in SUPPORTED_APIS {
            let (min, max) = crate_range(api.key);
            assert!(api.min_version >= min && api.max_version <= max, "{api:?}");
        }
    }

    /// Kafka's broker applies transaction version 2 (KIP-890 part 2) to
    /// EndTxn v5 and TxnOffsetCommit v5 whatever the finalized feature says;
    /// corelog implements TV1 only, so it must not offer them.
    #[test]
    fn transaction_version_2_requests_are_not_advertised() {
        assert!(is_supported(ApiKey::EndTxn, 4));
        assert!(!is_supported(ApiKey::EndTxn, 5));
        assert!(is_supported(ApiKey::TxnOffsetCommit, 4));
        assert!(!is_supported(ApiKey::TxnOffsetCommit, 5));
    }

    #[test]
    fn produce_below_v3_is_not_supported() {
        assert!(!is_supported(ApiKey::Produce, 2));
        assert!(is_supported(ApiKey::Produce, 3));
    }
}
