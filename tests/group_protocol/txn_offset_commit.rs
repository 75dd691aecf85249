//! TxnOffsetCommit (KIP-98; member checks from v3, KIP-447) at every advertised version:
//! the offsets are accepted but stay pending until their transaction's marker, so
//! OffsetFetch with require_stable (v7+) answers UNSTABLE_OFFSET_COMMIT for them while a
//! plain OffsetFetch still answers the last committed offset; the pending state survives a
//! restart (replay of the offsets partition); and the per-partition errors match Kafka's.
//!
//! Most producer ids here are made up (the group coordinator does not ask the transaction
//! coordinator about them), so no marker ever arrives and those commits stay pending; one
//! test runs real transactions (InitProducerId, AddOffsetsToTxn, TxnOffsetCommit, EndTxn)
//! whose commit marker makes the offsets visible and whose abort marker drops them.

use std::net::TcpStream;
use std::time::Duration;

use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;

use crate::common::wire::connect;
use crate::common::{poll_until, Broker};
use crate::flows::{
    create_topic, delete_groups, find_group_coordinator, stable_single_member_group,
};
use crate::requests::{
    commit_errors, commit_request, consumer_subscription, group_id, sync_request, text, topic_name,
};
use crate::wire::call;
use crate::{
    BROKER_FLAGS, ILLEGAL_GENERATION, INVALID_GROUP_ID, NONE, OFFSET_METADATA_MAX_BYTES,
    OFFSET_METADATA_TOO_LARGE, SESSION_TIMEOUT_MS, UNKNOWN_MEMBER_ID, UNKNOWN_TOPIC_OR_PARTITION,
};

const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
const NOT_COORDINATOR: i16 = 16;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const CONCURRENT_TRANSACTIONS: i16 = 51;
const FENCED_INSTANCE_ID: i16 = 82;
const UNSTABLE_OFFSET_COMMIT: i16 = 88;

/// The TxnOffsetCommit versions the broker must advertise.
const TXN_OFFSET_COMMIT_VERSIONS: (i16, i16) = (0, 4);

/// The member a v3+ request names: `(member id, generation, group instance id)`.
type NamedMember<'a> = (&'a str, i32, Option<&'a str>);

/// A TxnOffsetCommit as a client of `version` sends it: the member fields only from v3,
/// the leader epoch only from v2.
fn txn_commit_request(
    version: i16,
    group: &str,
    producer: (i64, i16),
    member: Option<NamedMember<'_>>,
    topic: &str,
    partitions: &[(i32, i64, &str)],
) -> TxnOffsetCommitRequest {
    let partitions = partitions
        .iter()
        .map(|&(index, offset, metadata)| {
            let partition = TxnOffsetCommitRequestPartition::default()
                .with_partition_index(index)
                .with_committed_offset(offset)
                .with_committed_metadata(Some(text(metadata)));
            if version >= 2 {
                partition.with_committed_leader_epoch(4)
            } else {
                partition
            }
        })
        .collect();
    let request = TxnOffsetCommitRequest::default()
        .with_transactional_id(TransactionalId(text(&format!("txn-{group}"))))
        .with_group_id(group_id(group))
        .with_producer_id(ProducerId(producer.0))
        .with_producer_epoch(producer.1)
        .with_topics(vec![TxnOffsetCommitRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(partitions)]);
    match member {
        Some((member_id, generation_id, instance_id)) => {
            assert!(version >= 3, "test bug: members are named from v3");
            request
                .with_member_id(text(member_id))
                .with_generation_id(generation_id)
                .with_group_instance_id(instance_id.map(text))
        }
        None => request,
    }
}

/// `(topic, partition, error_code)` for every partition of a TxnOffsetCommit answer.
fn txn_commit_errors(response: &TxnOffsetCommitResponse) -> Vec<(String, i32, i16)> {
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

/// `(partition, committed offset, error)` as OffsetFetch answers one group's partitions
/// of `topic` at `version` (v7 single-group form, v8+ groups form), with require_stable.
fn fetch(
    stream: &mut TcpStream,
    version: i16,
    group: &str,
    topic: &str,
    partitions: &[i32],
    require_stable: bool,
) -> Vec<(i32, i64, i16)> {
    let request = if version >= 8 {
        OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(group_id(group))
            .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                .with_name(topic_name(topic))
                .with_partition_indexes(partitions.to_vec())]))])
    } else {
        OffsetFetchRequest::default()
            .with_group_id(group_id(group))
            .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                .with_name(topic_name(topic))
                .with_partition_indexes(partitions.to_vec())]))
    };
    let request = if version >= 7 {
        request.with_require_stable(require_stable)
    } else {
        assert!(!require_stable, "test bug: require_stable is v7+");
        request
    };
    let response = call(stream, version, &request);
    let (code, rows): (i16, Vec<(i32, i64, i16)>) = if version >= 8 {
        assert_eq!(response.groups.len(), 1, "one group fetched: {response:?}");
        let group = &response.groups[0];
        let rows = group
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .map(|p| (p.partition_index, p.committed_offset, p.error_code))
            .collect();
        (group.error_code, rows)
    } else {
        let rows = response
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .map(|p| (p.partition_index, p.committed_offset, p.error_code))
            .collect();
        (response.error_code, rows)
    };
    assert_eq!(code, NONE, "OffsetFetch v{version} of {group}: group error");
    rows
}

#[test]
fn txn_offset_commit_stays_pending_at_every_version() {
    let mut broker = Broker::start(2, BROKER_FLAGS);
    let mut stream = connect(&broker.bootstrap());

    let versions = call(&mut stream, 3, &ApiVersionsRequest::default());
    let advertised = versions
        .api_keys
        .iter()
        .find(|api| api.api_key == ApiKey::TxnOffsetCommit as i16)
        .map(|api| (api.min_version, api.max_version));
    assert_eq!(advertised, Some(TXN_OFFSET_COMMIT_VERSIONS));

    create_topic(&mut stream, "ledger", 2);
    let (first, last) = TXN_OFFSET_COMMIT_VERSIONS;
    for version in first..=last {
        let group = format!("txn-v{version}");
        find_group_coordinator(&mut stream, &group);
        // Partition 0 has a plain commit from before the transaction.
        let response = call(
            &mut stream,
            8,
            &commit_request(8, &group, -1, "", "ledger", &[(0, 7, "before")]),
        );
        assert_eq!(commit_errors(&response), vec![(0, NONE)]);

        let producer = (1_000 + i64::from(version), 0);
        let request = txn_commit_request(
            version,
            &group,
            producer,
            None,
            "ledger",
            &[(0, 42, "in txn"), (1, 43, "")],
        );
        let response = call(&mut stream, version, &request);
        assert_eq!(
            txn_commit_errors(&response),
            vec![("ledger".into(), 0, NONE), ("ledger".into(), 1, NONE)],
            "TxnOffsetCommit v{version}"
        );

        // Not committed until the marker: plain fetches see the last committed offsets,
        // stable fetches are told to retry.
        for fetch_version in [6, 7, 8] {
            assert_eq!(
                fetch(&mut stream, fetch_version, &group, "ledger", &[0, 1], false),
                vec![(0, 7, NONE), (1, -1, NONE)],
                "OffsetFetch v{fetch_version} after TxnOffsetCommit v{version}"
            );
        }
        for fetch_version in [7, 8, 9] {
            assert_eq!(
                fetch(&mut stream, fetch_version, &group, "ledger", &[0, 1], true),
                vec![
                    (0, -1, UNSTABLE_OFFSET_COMMIT),
                    (1, -1, UNSTABLE_OFFSET_COMMIT)
                ],
                "OffsetFetch v{fetch_version} (require_stable) after TxnOffsetCommit v{version}"
            );
        }
    }

    // The pending offsets are in the offsets partition: a restart brings them back.
    broker.restart();
    let mut stream = connect(&broker.bootstrap());
    for version in first..=last {
        let group = format!("txn-v{version}");
        assert_eq!(
            fetch(&mut stream, 8, &group, "ledger", &[0, 1], true),
            vec![
                (0, -1, UNSTABLE_OFFSET_COMMIT),
                (1, -1, UNSTABLE_OFFSET_COMMIT)
            ],
            "after restart, TxnOffsetCommit v{version} is still pending"
        );
        assert_eq!(
            fetch(&mut stream, 8, &group, "ledger", &[0, 1], false),
            vec![(0, 7, NONE), (1, -1, NONE)],
            "after restart, group of v{version}"
        );
    }
}

#[test]
fn txn_offset_commit_errors_match_kafka() {
    let broker = Broker::start(2, BROKER_FLAGS);
    let mut stream = connect(&broker.bootstrap());
    create_topic(&mut stream, "ledger", 2);
    find_group_coordinator(&mut stream, "txn-errors");
    let producer = (2_000, 0);
    let row = |topic: &str, partition: i32, code: i16| (topic.to_string(), partition, code);

    // Unknown topics and partitions fail alone; metadata too large fails alone.
    for version in 0..=4 {
        let long_metadata = "m".repeat(OFFSET_METADATA_MAX_BYTES + 1);
        let request = txn_commit_request(
            version,
            "txn-errors",
            producer,
            None,
            "ledger",
            &[(0, 1, &long_metadata), (1, 2, "fits"), (9, 3, "")],
        );
        let response = call(&mut stream, version, &request);
        assert_eq!(
            txn_commit_errors(&response),
            vec![
                row("ledger", 0, OFFSET_METADATA_TOO_LARGE),
                row("ledger", 1, NONE),
                row("ledger", 9, UNKNOWN_TOPIC_OR_PARTITION)
            ],
            "TxnOffsetCommit v{version}"
        );
        let request = txn_commit_request(
            version,
            "txn-errors",
            producer,
            None,
            "no-such-topic",
            &[(0, 1, "")],
        );
        let response = call(&mut stream, version, &request);
        assert_eq!(
            txn_commit_errors(&response),
            vec![row("no-such-topic", 0, UNKNOWN_TOPIC_OR_PARTITION)],
            "TxnOffsetCommit v{version} to an unknown topic"
        );
        // Only OffsetCommit accepts the empty group id.
        let request = txn_commit_request(version, "", producer, None, "ledger", &[(0, 1, "")]);
        let response = call(&mut stream, version, &request);
        assert_eq!(
            txn_commit_errors(&response),
            vec![row("ledger", 0, INVALID_GROUP_ID)],
            "TxnOffsetCommit v{version} with an empty group id"
        );
    }
    assert_eq!(
        fetch(&mut stream, 8, "txn-errors", "ledger", &[0, 1], true),
        vec![(0, -1, NONE), (1, -1, UNSTABLE_OFFSET_COMMIT)]
    );

    // v3+ (KIP-447): a named member must be the group's current one.
    find_group_coordinator(&mut stream, "txn-members");
    let (member_id, generation_id) =
        stable_single_member_group(&mut stream, "txn-members", &["ledger"]);
    for version in 3..=4 {
        let cases: [(NamedMember<'_>, i16); 4] = [
            ((&member_id, generation_id, None), NONE),
            ((&member_id, generation_id + 1, None), ILLEGAL_GENERATION),
            (("someone-else", generation_id, None), UNKNOWN_MEMBER_ID),
            // No member and no generation: a producer outside the group, as before v3.
            (("", -1, None), NONE),
        ];
        for (member, expected) in cases {
            let request = txn_commit_request(
                version,
                "txn-members",
                producer,
                Some(member),
                "ledger",
                &[(0, 5, "")],
            );
            let response = call(&mut stream, version, &request);
            assert_eq!(
                txn_commit_errors(&response),
                vec![row("ledger", 0, expected)],
                "TxnOffsetCommit v{version} as {member:?}"
            );
        }
        // A group that does not exist has no members (Kafka creates it Empty).
        let request = txn_commit_request(
            version,
            &format!("txn-unknown-v{version}"),
            producer,
            Some(("ghost", 1, None)),
            "ledger",
            &[(0, 5, "")],
        );
        let response = call(&mut stream, version, &request);
        assert_eq!(
            txn_commit_errors(&response),
            vec![row("ledger", 0, UNKNOWN_MEMBER_ID)],
            "TxnOffsetCommit v{version} naming a member of an unknown group"
        );
    }

    // KIP-345: an older incarnation of a static member is fenced.
    find_group_coordinator(&mut stream, "txn-static");
    let (old_member, _) = join_static(&mut stream, "txn-static", "pod-1");
    let (new_member, generation_id) = join_static(&mut stream, "txn-static", "pod-1");
    assert_ne!(old_member, new_member);
    for version in 3..=4 {
        for (member, expected) in [(&old_member, FENCED_INSTANCE_ID), (&new_member, NONE)] {
            let request = txn_commit_request(
                version,
                "txn-static",
                producer,
                Some((member, generation_id, Some("pod-1"))),
                "ledger",
                &[(1, 8, "")],
            );
            let response = call(&mut stream, version, &request);
            assert_eq!(
                txn_commit_errors(&response),
                vec![row("ledger", 1, expected)],
                "TxnOffsetCommit v{version} as {member} of pod-1"
            );
        }
    }

    // DeleteGroups takes the offsets pending in transactions along (Kafka's KIP-848
    // coordinator), so no later commit marker can bring the group back.
    find_group_coordinator(&mut stream, "txn-deleted");
    let request = txn_commit_request(3, "txn-deleted", producer, None, "ledger", &[(0, 5, "")]);
    let response = call(&mut stream, 3, &request);
    assert_eq!(txn_commit_errors(&response), vec![row("ledger", 0, NONE)]);
    assert_eq!(
        delete_groups(&mut stream, 2, &["txn-deleted"]),
        vec![("txn-deleted".to_string(), NONE)]
    );
    assert_eq!(
        fetch(&mut stream, 8, "txn-deleted", "ledger", &[0], true),
        vec![(0, -1, NONE)]
    );

    // A producer fenced by a newer epoch of its id (KIP-98 zombie) is refused by the
    // offsets partition's log.
    let group = "txn-fenced";
    find_group_coordinator(&mut stream, group);
    for (epoch, expected) in [(1, NONE), (0, INVALID_PRODUCER_EPOCH)] {
        let request = txn_commit_request(2, group, (3_000, epoch), None, "ledger", &[(0, 1, "")]);
        let response = call(&mut stream, 2, &request);
        assert_eq!(
            txn_commit_errors(&response),
            vec![row("ledger", 0, expected)],
            "TxnOffsetCommit at producer epoch {epoch}"
        );
    }
}

/// Joins `group` as the static member `instance_id` (JoinGroup v5: static members get
/// their member id at once) and syncs it: `(member_id, generation_id)`. A second call
/// replaces the first incarnation, which is then fenced.
fn join_static(stream: &mut TcpStream, group: &str, instance_id: &str) -> (String, i32) {
    let request = JoinGroupRequest::default()
        .with_group_id(group_id(group))
        .with_session_timeout_ms(SESSION_TIMEOUT_MS)
        .with_rebalance_timeout_ms(SESSION_TIMEOUT_MS)
        .with_member_id(text(""))
        .with_group_instance_id(Some(text(instance_id)))
        .with_protocol_type(text("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(text("range"))
            .with_metadata(consumer_subscription(&["ledger"]))]);
    let joined = call(stream, 5, &request);
    assert_eq!(joined.error_code, NONE, "static JoinGroup: {joined:?}");
    let member_id = joined.member_id.to_string();
    if joined.leader == joined.member_id {
        let assignment = bytes::Bytes::from_static(b"assignment");
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
        assert_eq!(synced.error_code, NONE, "static SyncGroup: {synced:?}");
    }
    (member_id, joined.generation_id)
}

#[test]
fn end_txn_commits_or_drops_the_pending_offsets() {
    let broker = Broker::start(2, BROKER_FLAGS);
    let mut stream = connect(&broker.bootstrap());
    create_topic(&mut stream, "ledger", 2);
    let (transactional_id, group) = ("txn-offsets-producer", "txn-end");
    find_group_coordinator(&mut stream, group);
    let producer = init_transactional_producer(&mut stream, transactional_id);

    // A committed transaction's offset becomes the group's; an aborted one's is dropped and
    // the group keeps the offset it had.
    for (offset, commit, expected) in [(10, true, 10), (20, false, 10)] {
        let added = retry_transaction_call(&mut stream, "AddOffsetsToTxn", |stream| {
            let request = AddOffsetsToTxnRequest::default()
                .with_transactional_id(TransactionalId(text(transactional_id)))
                .with_producer_id(ProducerId(producer.0))
                .with_producer_epoch(producer.1)
                .with_group_id(group_id(group));
            call(stream, 3, &request).error_code
        });
        assert_eq!(added, NONE, "AddOffsetsToTxn");
        let request =
            txn_commit_request(3, group, producer, None, "ledger", &[(0, offset, "in txn")]);
        let response = call(&mut stream, 3, &request);
        assert_eq!(
            txn_commit_errors(&response),
            vec![("ledger".into(), 0, NONE)]
        );
        assert_eq!(
            fetch(&mut stream, 8, group, "ledger", &[0], true),
            vec![(0, -1, UNSTABLE_OFFSET_COMMIT)]
        );
        let ended = retry_transaction_call(&mut stream, "EndTxn", |stream| {
            let request = EndTxnRequest::default()
                .with_transactional_id(TransactionalId(text(transactional_id)))
                .with_producer_id(ProducerId(producer.0))
                .with_producer_epoch(producer.1)
                .with_committed(commit);
            call(stream, 3, &request).error_code
        });
        assert_eq!(ended, NONE, "EndTxn commit={commit}");
        // Kafka writes the markers after answering EndTxn: the client retries until stable.
        let stable = poll_until(Duration::from_secs(10), "stable offsets", || {
            let rows = fetch(&mut stream, 8, group, "ledger", &[0], true);
            (rows[0].2 != UNSTABLE_OFFSET_COMMIT).then_some(rows)
        });
        assert_eq!(
            stable,
            vec![(0, expected, NONE)],
            "after EndTxn commit={commit}"
        );
        assert_eq!(
            fetch(&mut stream, 8, group, "ledger", &[0], false),
            vec![(0, expected, NONE)]
        );
    }
}

/// FindCoordinator (key type 1) and InitProducerId for `transactional_id`:
/// `(producer_id, producer_epoch)`.
fn init_transactional_producer(stream: &mut TcpStream, transactional_id: &str) -> (i64, i16) {
    let found = call(
        stream,
        3,
        &FindCoordinatorRequest::default()
            .with_key(text(transactional_id))
            .with_key_type(1),
    );
    assert_eq!(
        found.error_code, NONE,
        "FindCoordinator for {transactional_id}"
    );
    let mut producer = (-1, -1);
    let code = retry_transaction_call(stream, "InitProducerId", |stream| {
        let request = InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(text(transactional_id))))
            .with_transaction_timeout_ms(60_000);
        let response = call(stream, 3, &request);
        producer = (response.producer_id.0, response.producer_epoch);
        response.error_code
    });
    assert_eq!(code, NONE, "InitProducerId for {transactional_id}");
    producer
}

/// Sends a transaction coordinator request until it is not told to retry (the coordinator
/// loading, or the previous transaction still completing), as clients do.
fn retry_transaction_call(
    stream: &mut TcpStream,
    what: &str,
    mut attempt: impl FnMut(&mut TcpStream) -> i16,
) -> i16 {
    poll_until(Duration::from_secs(10), what, || {
        let code = attempt(stream);
        let retriable = [
            COORDINATOR_LOAD_IN_PROGRESS,
            NOT_COORDINATOR,
            CONCURRENT_TRANSACTIONS,
        ];
        (!retriable.contains(&code)).then_some(code)
    })
}
