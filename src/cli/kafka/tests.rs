//! The client against a scripted fake broker on a loopback socket: version
//! negotiation, metadata and leaders, coordinator lookup and caching, and
//! broken responses turned into errors rather than panics.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{decode_request_header_from_buffer, Encodable, StrBytes};

use super::*;

/// What the fake broker does with requests other than ApiVersions.
#[derive(Clone, Copy)]
enum Script {
    Normal,
    /// Answers Metadata with bytes that do not decode.
    GarbageMetadata,
    /// Answers Metadata with a frame claiming 2 GiB.
    HugeFrame,
}

struct FakeBroker {
    port: u16,
    find_coordinator_calls: Arc<AtomicUsize>,
}

impl FakeBroker {
    fn start(script: Script) -> FakeBroker {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let find_coordinator_calls = Arc::new(AtomicUsize::new(0));
        let calls = Arc::clone(&find_coordinator_calls);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let calls = Arc::clone(&calls);
                thread::spawn(move || serve(stream, port, script, &calls));
            }
        });
        FakeBroker {
            port,
            find_coordinator_calls,
        }
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

fn serve(mut stream: TcpStream, port: u16, script: Script, find_coordinator_calls: &AtomicUsize) {
    loop {
        let mut size = [0u8; 4];
        if stream.read_exact(&mut size).is_err() {
            return;
        }
        let mut frame = vec![0u8; i32::from_be_bytes(size) as usize];
        stream.read_exact(&mut frame).unwrap();
        let mut frame = Bytes::from(frame);
        let header = decode_request_header_from_buffer(&mut frame).unwrap();
        let key = ApiKey::try_from(header.request_api_key).unwrap();
        let version = header.request_api_version;
        let mut body = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(header.correlation_id)
            .encode(&mut body, key.response_header_version(version))
            .unwrap();
        match (key, script) {
            (ApiKey::ApiVersions, _) => api_versions().encode(&mut body, version).unwrap(),
            (ApiKey::Metadata, Script::GarbageMetadata) => body.extend_from_slice(&[0xff; 7]),
            (ApiKey::Metadata, Script::HugeFrame) => {
                stream.write_all(&i32::MAX.to_be_bytes()).unwrap();
                continue;
            }
            (ApiKey::Metadata, Script::Normal) => {
                metadata(port).encode(&mut body, version).unwrap()
            }
            (ApiKey::FindCoordinator, _) => {
                let attempt = find_coordinator_calls.fetch_add(1, Ordering::SeqCst);
                // The first answer is "not available yet", as from a fresh broker.
                let code = if attempt == 0 {
                    COORDINATOR_NOT_AVAILABLE
                } else {
                    0
                };
                FindCoordinatorResponse::default()
                    .with_coordinators(vec![Coordinator::default()
                        .with_key(StrBytes::from_static_str("g"))
                        .with_error_code(code)
                        .with_node_id(BrokerId(7))
                        .with_host(StrBytes::from_static_str("127.0.0.1"))
                        .with_port(i32::from(port))])
                    .encode(&mut body, version)
                    .unwrap()
            }
            _ => return,
        }
        stream
            .write_all(&(body.len() as i32).to_be_bytes())
            .unwrap();
        stream.write_all(&body).unwrap();
    }
}

fn api_versions() -> ApiVersionsResponse {
    let range = |key: ApiKey, min, max| {
        ApiVersion::default()
            .with_api_key(key as i16)
            .with_min_version(min)
            .with_max_version(max)
    };
    ApiVersionsResponse::default().with_api_keys(vec![
        range(ApiKey::ApiVersions, 0, 3),
        range(ApiKey::Metadata, 1, 9),
        range(ApiKey::FindCoordinator, 0, 4),
        range(ApiKey::ListGroups, 3, 4),
    ])
}

fn metadata(port: u16) -> MetadataResponse {
    let partition = |index, leader| {
        MetadataResponsePartition::default()
            .with_partition_index(index)
            .with_leader_id(BrokerId(leader))
            .with_replica_nodes(vec![BrokerId(7)])
    };
    MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(7))
            .with_host(StrBytes::from_static_str("127.0.0.1"))
            .with_port(i32::from(port))])
        .with_topics(vec![MetadataResponseTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str("orders"))))
            .with_partitions(vec![partition(0, 7), partition(1, 7)])])
}

#[test]
fn versions_are_the_highest_both_sides_support() {
    let broker = FakeBroker::start(Script::Normal);
    let mut client = KafkaClient::connect(&broker.address(), "test").unwrap();
    assert_eq!(client.version(&Node::Any, ApiKey::Metadata, 12).unwrap(), 9);
    assert_eq!(client.version(&Node::Any, ApiKey::Metadata, 5).unwrap(), 5);
    assert_eq!(
        client.version(&Node::Any, ApiKey::ListGroups, 4).unwrap(),
        4
    );
    // The caller's max below the broker's min, and an API the broker lacks.
    assert!(client.version(&Node::Any, ApiKey::ListGroups, 2).is_err());
    assert!(client.version(&Node::Any, ApiKey::CreateTopics, 7).is_err());
}

#[test]
fn leaders_come_from_metadata_and_broker_connections_open_lazily() {
    let broker = FakeBroker::start(Script::Normal);
    let mut client = KafkaClient::connect(&broker.address(), "test").unwrap();
    assert_eq!(client.leader("orders", 1).unwrap(), 7);
    let error = client.leader("orders", 5).unwrap_err();
    assert_eq!(error.kafka_code(), Some(UNKNOWN_TOPIC_OR_PARTITION));
    assert!(error.to_string().contains("UNKNOWN_TOPIC_OR_PARTITION"));
    assert!(client.leader("missing", 0).is_err());
    // Broker 7 is reached at the address Metadata gave.
    assert_eq!(
        client
            .version(&Node::Broker(7), ApiKey::Metadata, 12)
            .unwrap(),
        9
    );
    assert!(client
        .version(&Node::Broker(8), ApiKey::Metadata, 12)
        .is_err());
}

#[test]
fn coordinators_are_found_after_not_available_and_cached() {
    let broker = FakeBroker::start(Script::Normal);
    let mut client = KafkaClient::connect(&broker.address(), "test").unwrap();
    let node = Node::Coordinator("g".to_string());
    assert_eq!(client.version(&node, ApiKey::ListGroups, 4).unwrap(), 4);
    assert_eq!(client.version(&node, ApiKey::Metadata, 12).unwrap(), 9);
    assert_eq!(broker.find_coordinator_calls.load(Ordering::SeqCst), 2);
}

#[test]
fn undecodable_and_oversized_responses_are_errors_not_panics() {
    let broker = FakeBroker::start(Script::GarbageMetadata);
    let mut client = KafkaClient::connect(&broker.address(), "test").unwrap();
    assert!(matches!(client.metadata(None), Err(ToolError::Protocol(_))));
    // The connection was dropped and a fresh one opens for the next request.
    assert!(matches!(client.metadata(None), Err(ToolError::Protocol(_))));

    let broker = FakeBroker::start(Script::HugeFrame);
    let mut client = KafkaClient::connect(&broker.address(), "test").unwrap();
    let error = client.metadata(None).unwrap_err();
    assert!(error.to_string().contains("response frame"), "{error}");
}

#[test]
fn a_closed_port_is_unreachable_and_later_bootstrap_hosts_are_tried() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_address = closed.local_addr().unwrap().to_string();
    drop(closed);
    let error = KafkaClient::connect(&closed_address, "test").err().unwrap();
    assert!(matches!(error, ToolError::Unreachable(_)), "{error}");

    let broker = FakeBroker::start(Script::Normal);
    let bootstrap = format!("{closed_address}, {}", broker.address());
    let mut client = KafkaClient::connect(&bootstrap, "test").unwrap();
    assert_eq!(client.leader("orders", 0).unwrap(), 7);
}

#[test]
fn a_request_round_trips_through_the_frame_codec() {
    let request = MetadataRequest::default().with_topics(None);
    let client_id = StrBytes::from_static_str("me");
    let mut frame =
        connection::encode_request(ApiKey::Metadata, 9, 42, &client_id, &request).unwrap();
    let size = i32::from_be_bytes(frame[..4].try_into().unwrap());
    assert_eq!(size as usize, frame.len() - 4);
    let mut body = frame.split_off(4);
    let header = decode_request_header_from_buffer(&mut body).unwrap();
    assert_eq!(header.correlation_id, 42);
    assert_eq!(header.client_id.as_deref(), Some("me"));

    let mut response = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(41)
        .encode(&mut response, ApiKey::Metadata.response_header_version(9))
        .unwrap();
    MetadataResponse::default()
        .encode(&mut response, 9)
        .unwrap();
    let error = connection::decode_response::<MetadataResponse>(
        ApiKey::Metadata,
        9,
        42,
        &mut response.freeze(),
    )
    .unwrap_err();
    assert!(error.to_string().contains("correlation id 41"), "{error}");
}
