//! A real three-voter quorum over loopback TCP (see `cluster::test_cluster`):
//! election, replication, failover, catch-up, and no commit without a majority.

use std::time::Duration;

use crate::cluster::metadata::records::MetadataRecord;
use crate::cluster::quorum::node::ProposeError;
use crate::cluster::test_cluster::{wait_for, TestCluster, TestNode};

fn topic(name: &str, id: u8) -> Vec<MetadataRecord> {
    vec![MetadataRecord::TopicCreated {
        name: name.to_owned(),
        topic_id: [id; 16],
    }]
}

fn propose(node: &TestNode, records: Vec<MetadataRecord>) -> Option<Result<u64, ProposeError>> {
    node.run(move |handles| async move {
        handles
            .quorum
            .propose(records, Duration::from_secs(1))
            .await
            .map(|applied| applied.log_index)
    })
}

fn propose_on_leader(cluster: &TestCluster, records: Vec<MetadataRecord>) -> u64 {
    wait_for(Duration::from_secs(10), || {
        let leader = cluster.agreed_leader()?;
        propose(&cluster.nodes[&leader], records.clone())?.ok()
    })
    .expect("a proposal commits on the leader")
}

#[test]
fn three_voters_elect_replicate_fail_over_and_catch_up() {
    let mut cluster = TestCluster::start(3);
    let first_leader = cluster.wait_for_leader();
    propose_on_leader(&cluster, topic("orders", 1));
    cluster.wait_for_topics(&["orders"]);

    // A follower refuses proposals and names the leader.
    let follower = cluster
        .voters
        .keys()
        .copied()
        .find(|id| *id != first_leader)
        .expect("follower");
    assert_eq!(
        propose(&cluster.nodes[&follower], topic("x", 9)),
        Some(Err(ProposeError::NotController {
            leader: Some(first_leader)
        }))
    );

    // The leader goes away: the other two elect a new one and keep going.
    cluster.stop(first_leader);
    let second_leader = cluster.wait_for_leader();
    assert_ne!(second_leader, first_leader);
    propose_on_leader(&cluster, topic("payments", 2));
    cluster.wait_for_topics(&["orders", "payments"]);

    // The old leader restarts from its directory and catches up.
    cluster.restart(first_leader);
    cluster.wait_for_topics(&["orders", "payments"]);
    let names = cluster.nodes[&first_leader].topic_names();
    assert_eq!(
        names.len(),
        2,
        "no topic applied twice or invented: {names:?}"
    );
    cluster.wait_for_leader();
}

#[test]
fn a_minority_cannot_commit_and_a_restarted_majority_keeps_its_log() {
    let mut cluster = TestCluster::start(3);
    propose_on_leader(&cluster, topic("kept", 3));
    cluster.wait_for_topics(&["kept"]);
    // Stop two of three: the survivor can never commit alone.
    let ids: Vec<u64> = cluster.voters.keys().copied().collect();
    cluster.stop(ids[0]);
    cluster.stop(ids[1]);
    let survivor = &cluster.nodes[&ids[2]];
    let alone = wait_for(Duration::from_secs(2), || {
        propose(survivor, topic("lost", 4))?.ok()
    });
    assert_eq!(alone, None, "a minority committed a proposal");
    assert_eq!(
        survivor.topic_names(),
        vec!["kept".to_owned()],
        "nothing applied without a majority"
    );
    // Restart the others from disk: the committed topic is still there. (The
    // "lost" proposal may still commit now that a majority is back: its
    // outcome was unknown to the proposer, as after a Kafka request timeout.)
    cluster.restart(ids[0]);
    cluster.restart(ids[1]);
    propose_on_leader(&cluster, topic("after", 5));
    cluster.wait_for_topics(&["kept", "after"]);
}

#[test]
fn the_leader_reports_every_voters_progress_and_a_stopped_voter_lags() {
    let mut cluster = TestCluster::start(3);
    let leader = cluster.wait_for_leader();
    propose_on_leader(&cluster, topic("one", 6));
    cluster.wait_for_topics(&["one"]);
    let status = |node: &TestNode| node.run(|handles| async move { handles.quorum.status() });
    let caught_up = wait_for(Duration::from_secs(5), || {
        let status = status(&cluster.nodes[&leader])?;
        status
            .voters
            .iter()
            .all(|voter| voter.lag == Some(0))
            .then_some(status)
    })
    .expect("every voter catches up");
    assert_eq!(caught_up.leader, Some(leader));
    assert_eq!(caught_up.voters.len(), 3);
    assert!(
        caught_up.term >= 1 && caught_up.high_watermark >= 2,
        "{caught_up:?}"
    );

    let stopped = cluster
        .voters
        .keys()
        .copied()
        .find(|id| *id != leader)
        .expect("follower");
    cluster.stop(stopped);
    propose_on_leader(&cluster, topic("two", 7));
    let lagging = wait_for(Duration::from_secs(5), || {
        let status = status(&cluster.nodes[&leader])?;
        let voter = status
            .voters
            .iter()
            .find(|voter| voter.node_id == stopped)?;
        (voter.lag > Some(0)).then_some(status)
    });
    assert!(lagging.is_some(), "the stopped voter shows a lag");
}

#[test]
fn a_stranger_announcing_a_huge_hello_is_closed_and_the_quorum_goes_on() {
    use std::io::{Read, Write};

    let cluster = TestCluster::start(3);
    let leader = cluster.wait_for_leader();
    let mut stranger = std::net::TcpStream::connect(&cluster.voters[&leader]).expect("connects");
    stranger
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    // A header announcing the largest frame the format allows, as a Hello.
    let mut header = vec![crate::cluster::metadata::frame::FRAME_FORMAT_VERSION, 32];
    header.extend_from_slice(&(32u32 << 20).to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes());
    stranger.write_all(&header).expect("writes");
    let mut answer = [0u8; 1];
    let read = stranger.read(&mut answer);
    assert!(
        matches!(read, Ok(0)) || read.is_err(),
        "closed without an answer: {read:?}"
    );
    propose_on_leader(&cluster, topic("still", 8));
    cluster.wait_for_topics(&["still"]);
}

#[test]
fn a_node_that_is_not_a_voter_cannot_announce_a_large_frame() {
    use std::io::{Read, Write};

    use crate::cluster::metadata::frame;
    use crate::cluster::quorum::transport::{Hello, KIND_HELLO, MAX_BROKER_FRAME_BYTES};

    let cluster = TestCluster::start(3);
    let leader = cluster.wait_for_leader();
    let mut broker = std::net::TcpStream::connect(&cluster.voters[&leader]).expect("connects");
    broker
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    // Admitted: node 99 of this cluster may make control calls.
    let hello = frame::encode(KIND_HELLO, &Hello::new(99, "test-cluster".into())).expect("hello");
    broker.write_all(&hello).expect("writes hello");
    let mut header = [0u8; frame::FRAME_HEADER_BYTES];
    broker.read_exact(&mut header).expect("handshake answered");
    let accepted = frame::read_header(&header).expect("a frame header");
    let mut rest = vec![0u8; accepted.payload_bytes];
    broker.read_exact(&mut rest).expect("the accepted Hello");
    // A control frame one byte over the broker limit is refused before its body.
    let mut big = vec![frame::FRAME_FORMAT_VERSION, 36];
    big.extend_from_slice(&((MAX_BROKER_FRAME_BYTES + 1) as u32).to_le_bytes());
    big.extend_from_slice(&0u32.to_le_bytes());
    broker.write_all(&big).expect("writes header");
    let mut answer = [0u8; 1];
    let read = broker.read(&mut answer);
    assert!(
        matches!(read, Ok(0)) || read.is_err(),
        "closed without an answer: {read:?}"
    );
    propose_on_leader(&cluster, topic("still-here", 4));
    cluster.wait_for_topics(&["still-here"]);
}
