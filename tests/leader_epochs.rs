//! OffsetForLeaderEpoch (KIP-101, KIP-320) as a consumer validating its position or a
//! follower finding its truncation point asks it: where a leader epoch ends in the
//! partition leader's log, with the asker's current leader epoch checked first. Raw
//! requests through the `kafka-protocol` codec at every version the broker advertises,
//! and librdkafka (which asks it after leader changes) still reading every record.

#[path = "common/codec.rs"]
mod codec;
mod common;

use std::time::Duration;

use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{BrokerId, OffsetForLeaderEpochRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use common::wire::connect;
use common::{
    consume_all, create_topic, producer, record, send, wait_for_successful_deliveries, Broker,
};

const CLIENT_ID: &str = "corelog-leader-epochs-test";

/// UNKNOWN_TOPIC_OR_PARTITION and UNKNOWN_LEADER_EPOCH. (FENCED_LEADER_EPOCH needs a
/// leader epoch above 0, which a single node never has.)
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const UNKNOWN_LEADER_EPOCH: i16 = 75;

/// (error, leader epoch, end offset) for each `(topic, partition, current, asked)`.
fn ask(
    bootstrap: &str,
    version: i16,
    partitions: &[(&str, i32, i32, i32)],
) -> Vec<(i16, i32, i64)> {
    let topics = partitions
        .iter()
        .map(|(topic, partition, current, asked)| {
            OffsetForLeaderTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![OffsetForLeaderPartition::default()
                    .with_partition(*partition)
                    .with_current_leader_epoch(*current)
                    .with_leader_epoch(*asked)])
        })
        .collect();
    let request = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(topics);
    let mut stream = connect(bootstrap);
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    let response = codec::call(&mut stream, version, &request);
    response
        .topics
        .iter()
        .flat_map(|topic| topic.partitions.iter())
        .map(|answer| (answer.error_code, answer.leader_epoch, answer.end_offset))
        .collect()
}

#[test]
fn offset_for_leader_epoch_answers_where_each_epoch_ends() {
    let broker = Broker::start(2, &[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "epochs", 2);
    let producer = producer(&bootstrap, &[]);
    for id in 0..7 {
        send(
            &producer,
            record("epochs", id, b"key", b"value").partition(0),
        );
    }
    wait_for_successful_deliveries(&producer, 7, Duration::from_secs(30));

    for version in 2..=4 {
        let answers = ask(
            &bootstrap,
            version,
            &[
                // The leader's current epoch ends at the log end.
                ("epochs", 0, 0, 0),
                ("epochs", 0, -1, 0),
                // An empty partition: its leader's epoch starts and ends at 0.
                ("epochs", 1, -1, 0),
                // An epoch newer than any in the log is undefined.
                ("epochs", 0, -1, 3),
                // The asker believes in a newer leader than this one knows.
                ("epochs", 0, 2, 0),
                ("missing", 0, -1, 0),
                ("epochs", 9, -1, 0),
            ],
        );
        assert_eq!(
            answers,
            vec![
                (0, 0, 7),
                (0, 0, 7),
                (0, 0, 0),
                (0, -1, -1),
                (UNKNOWN_LEADER_EPOCH, -1, -1),
                (UNKNOWN_TOPIC_OR_PARTITION, -1, -1),
                (UNKNOWN_TOPIC_OR_PARTITION, -1, -1),
            ],
            "v{version}"
        );
    }

    // librdkafka reads everything with the API advertised.
    let records = consume_all(&bootstrap, "epochs", 2, 7, Duration::from_secs(30));
    assert_eq!(records.len(), 7);
}

/// Fetch (v9+) and ListOffsets (v4+) carry the consumer's current leader epoch too, checked
/// the same way; ListOffsets answers the leader epoch.
#[test]
fn fetch_and_list_offsets_check_the_current_leader_epoch() {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::{FetchRequest, ListOffsetsRequest};

    let broker = Broker::start(1, &[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "fenced", 1);
    let mut stream = connect(&bootstrap);
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    let name = || TopicName(StrBytes::from_static_str("fenced"));

    let fetch = |current_leader_epoch: i32| {
        FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(0)
            .with_max_bytes(1 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic(name())
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_current_leader_epoch(current_leader_epoch)
                    .with_fetch_offset(0)
                    .with_partition_max_bytes(1 << 20)])])
    };
    for (current, expected) in [(-1, 0), (0, 0), (1, UNKNOWN_LEADER_EPOCH)] {
        let response = codec::call(&mut stream, 12, &fetch(current));
        assert_eq!(
            response.responses[0].partitions[0].error_code, expected,
            "Fetch with current leader epoch {current}"
        );
    }

    let list = |current_leader_epoch: i32| {
        ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(name())
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_current_leader_epoch(current_leader_epoch)
                    .with_timestamp(-1)])])
    };
    let answer = codec::call(&mut stream, 7, &list(0));
    let partition = &answer.topics[0].partitions[0];
    assert_eq!(
        (
            partition.error_code,
            partition.offset,
            partition.leader_epoch
        ),
        (0, 0, 0)
    );
    let answer = codec::call(&mut stream, 7, &list(4));
    assert_eq!(
        answer.topics[0].partitions[0].error_code,
        UNKNOWN_LEADER_EPOCH
    );
}
