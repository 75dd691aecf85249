//! Losing voters: with one of three voters gone the cluster goes on; with two gone there is
//! no majority, so metadata changes stop (CreateTopics sent to the survivor itself answers
//! a retriable REQUEST_TIMED_OUT or NOT_CONTROLLER, never success) while produce and fetch
//! to the partitions the survivor leads go on.

use std::time::{Duration, Instant};

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::{CreateTopicsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::codec;
use crate::common::wire::connect;
use crate::common::{producer, record, send, try_create_topic, wait_for_successful_deliveries};
use rdkafka::consumer::Consumer;
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::common::assign_consumer;
use crate::poll::poll_until_ok;
use crate::{leaders_agreed_by, serial, three_voters, DATA_TIMEOUT};

/// REQUEST_TIMED_OUT (7) and NOT_CONTROLLER (41): what Kafka answers an admin request
/// while its quorum has no majority; clients retry both.
const NO_QUORUM_CODES: &[i16] = &[7, 41];

#[test]
fn without_a_majority_admin_requests_fail_retriably_while_live_leaders_serve() {
    const PARTITIONS: i32 = 3;
    let _serial = serial();
    let mut cluster = three_voters();
    let topic = "majority-lost";
    if let Err(code) = try_create_topic(&cluster.bootstrap(0), topic, PARTITIONS) {
        panic!("CreateTopics {topic}: {code:?}");
    }
    let leaders = leaders_agreed_by(&cluster, &[0, 1, 2], topic, PARTITIONS);

    // One voter down (the controller, as likely as not): a majority is left, and a
    // CreateTopics sent to a survivor itself succeeds once a controller is elected.
    cluster.kill9(2);
    poll_until_ok(
        Duration::from_secs(30),
        Duration::from_millis(200),
        "no topic created with two of three voters up",
        || {
            let code = create_through(&cluster.bootstrap(0), "minority-lost");
            if code == Some(0) {
                return Ok(());
            }
            assert!(
                code.is_some_and(|code| NO_QUORUM_CODES.contains(&code)),
                "CreateTopics with two of three voters answered {code:?}"
            );
            Err(format!("the last CreateTopics answered {code:?}"))
        },
    );

    // Two voters down: CreateTopics to the survivor itself fails, retriably.
    cluster.kill9(1);
    let asked = Instant::now();
    let code = create_through(&cluster.bootstrap(0), "no-quorum");
    assert!(
        code.is_some_and(|code| NO_QUORUM_CODES.contains(&code)),
        "CreateTopics without a majority answered {code:?} after {:?}\n{}",
        asked.elapsed(),
        cluster.recent_log(0)
    );
    println!(
        "CreateTopics without a majority answered {code:?} after {:?}",
        asked.elapsed()
    );

    // Produce and fetch to what the survivor leads go on.
    let led_here: Vec<i32> = leaders
        .iter()
        .filter(|(_, leader)| **leader == 0)
        .map(|(partition, _)| *partition)
        .collect();
    let partition = *led_here.first().expect("node 0 leads a partition");
    let producer = producer(&cluster.bootstrap(0), &[]);
    for id in 0..20 {
        let mut message = record(topic, id, b"key", b"value");
        message = message.partition(partition);
        send(&producer, message);
    }
    let placed = wait_for_successful_deliveries(&producer, 20, DATA_TIMEOUT);
    assert!(placed.iter().all(|(p, _)| *p == partition), "{placed:?}");
    // Only the survivor's partition: the others' leaders are gone.
    let consumer = assign_consumer(&cluster.bootstrap(0), &[]);
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, partition, Offset::Beginning)
        .expect("add partition");
    consumer.assign(&assignment).expect("assign");
    let deadline = Instant::now() + DATA_TIMEOUT;
    let mut read = 0;
    while read < 20 {
        assert!(
            Instant::now() < deadline,
            "read {read} of 20 records back from the survivor"
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                assert_eq!(message.partition(), partition);
                read += 1;
            }
            Some(Err(error)) => eprintln!("poll error: {error}"),
            None => {}
        }
    }
}

/// A raw CreateTopics (1 partition) answered by the node at `bootstrap` itself (librdkafka
/// would send it to the controller Metadata names, which may be a killed node): the
/// topic's error code.
fn create_through(bootstrap: &str, topic: &str) -> Option<i16> {
    let mut stream = connect(bootstrap);
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("read timeout");
    let request = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_num_partitions(1)
            .with_replication_factor(1)])
        .with_timeout_ms(30_000);
    let response = codec::call(&mut stream, 4, &request);
    response.topics.first().map(|result| result.error_code)
}
