//! A small blocking Kafka client for the command-line tools (`corelog topic`,
//! `group`, `produce`, `consume`). It speaks the Kafka protocol through the
//! `kafka-protocol` crate, so the tools work against any Kafka-compatible
//! broker, not only corelog. Runs on the CLI's main thread with std sockets:
//! no executor, one request in flight per connection, every wait bounded.
//!
//! Connections are opened lazily, one per broker id learnt from Metadata; the
//! bootstrap connection is kept under a negative id (as the Java client does).

pub mod connection;
pub mod error;
pub mod offsets;

use std::collections::HashMap;
use std::thread;
use std::time::{Duration, Instant};

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, FindCoordinatorRequest, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};

use connection::Connection;
pub use error::ToolError;

/// Which broker a request goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// Any reachable broker (the bootstrap connection first).
    Any,
    /// The broker with this node id.
    Broker(i32),
    /// The coordinator of this consumer group (FindCoordinator, cached).
    Coordinator(String),
}

/// Id under which the bootstrap connection is kept; broker ids are >= 0.
const BOOTSTRAP_ID: i32 = -1;
/// Highest Metadata version asked for (corelog serves 0-12; v13 adds nothing the tools use).
const METADATA_VERSION_MAX: i16 = 12;
const FIND_COORDINATOR_VERSION_MAX: i16 = 4;
/// How long FindCoordinator is retried while the coordinator is not available
/// (a fresh broker creates `__consumer_offsets` on the first request).
const COORDINATOR_WAIT: Duration = Duration::from_secs(10);
const RETRY_BACKOFF: Duration = Duration::from_millis(100);
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const LEADER_NOT_AVAILABLE: i16 = 5;

/// A blocking client over a few broker connections.
pub struct KafkaClient {
    bootstrap: String,
    client_id: String,
    /// Broker id -> `host:port`, from the latest Metadata.
    brokers: HashMap<i32, String>,
    connections: HashMap<i32, Connection>,
    /// Group id -> coordinator broker id.
    coordinators: HashMap<String, i32>,
}

impl KafkaClient {
    /// Tries each comma-separated bootstrap host:port (timeout ~5 s each), ApiVersions on each connection.
    pub fn connect(bootstrap: &str, client_id: &str) -> Result<KafkaClient, ToolError> {
        let mut client = KafkaClient {
            bootstrap: bootstrap.to_string(),
            client_id: client_id.to_string(),
            brokers: HashMap::new(),
            connections: HashMap::new(),
            coordinators: HashMap::new(),
        };
        let connection = client.open_bootstrap()?;
        client.connections.insert(BOOTSTRAP_ID, connection);
        Ok(client)
    }

    fn open_bootstrap(&self) -> Result<Connection, ToolError> {
        let addresses = self
            .bootstrap
            .split(',')
            .map(str::trim)
            .filter(|address| !address.is_empty())
            .map(str::to_string)
            .chain(self.brokers.values().cloned());
        let mut last_protocol_error = None;
        for address in addresses {
            match Connection::open(&address, &self.client_id) {
                Ok(connection) => return Ok(connection),
                Err(error @ (ToolError::Protocol(_) | ToolError::Kafka { .. })) => {
                    last_protocol_error = Some(error)
                }
                Err(_) => {}
            }
        }
        // A broker that answered but made no sense says more than "unreachable".
        Err(last_protocol_error.unwrap_or_else(|| ToolError::Unreachable(self.bootstrap.clone())))
    }

    /// Highest version of `key` both this node and the caller (`max`) support; error if none.
    pub fn version(&mut self, node: &Node, key: ApiKey, max: i16) -> Result<i16, ToolError> {
        let id = self.resolve(node)?;
        self.connection(id)?.version(key, max)
    }

    /// Sends one request at `version` to `node` and returns its decoded response (connections per broker id from Metadata, opened lazily).
    pub fn send<R: Request + Encodable>(
        &mut self,
        node: &Node,
        version: i16,
        request: &R,
    ) -> Result<R::Response, ToolError>
    where
        R::Response: Decodable,
    {
        let id = self.resolve(node)?;
        let result = self.connection(id)?.send(version, request);
        if let Err(ToolError::Io { .. } | ToolError::Protocol(_)) = result {
            // The stream may be out of step; the next request reconnects.
            self.connections.remove(&id);
        }
        result
    }

    /// Metadata for these topics (None = all), version negotiated; refreshes the broker list.
    pub fn metadata(&mut self, topics: Option<&[String]>) -> Result<MetadataResponse, ToolError> {
        let version = self.version(&Node::Any, ApiKey::Metadata, METADATA_VERSION_MAX)?;
        let topics = match topics {
            Some(names) => Some(
                names
                    .iter()
                    .map(|name| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(name.clone()))))
                    })
                    .collect(),
            ),
            // v0 has no null array: an empty one means "all topics".
            None if version == 0 => Some(Vec::new()),
            None => None,
        };
        let mut request = MetadataRequest::default().with_topics(topics);
        if version >= 4 {
            request.allow_auto_topic_creation = false;
        }
        let response = self.send(&Node::Any, version, &request)?;
        self.brokers = response
            .brokers
            .iter()
            .map(|broker| (broker.node_id.0, format!("{}:{}", broker.host, broker.port)))
            .collect();
        Ok(response)
    }

    /// Leader broker id of topic/partition (from metadata, refreshed on miss).
    pub fn leader(&mut self, topic: &str, partition: i32) -> Result<i32, ToolError> {
        let context = format!("topic {topic} partition {partition}");
        let deadline = Instant::now() + COORDINATOR_WAIT;
        loop {
            let response = self.metadata(Some(&[topic.to_string()]))?;
            let topic_metadata = response
                .topics
                .iter()
                .find(|candidate| candidate.name.as_ref().map(|name| &*name.0) == Some(topic));
            let code = match topic_metadata {
                None => UNKNOWN_TOPIC_OR_PARTITION,
                Some(found) if found.error_code != 0 => found.error_code,
                Some(found) => match found
                    .partitions
                    .iter()
                    .find(|candidate| candidate.partition_index == partition)
                {
                    None => UNKNOWN_TOPIC_OR_PARTITION,
                    Some(found) if found.error_code != 0 => found.error_code,
                    Some(found) if found.leader_id.0 < 0 => LEADER_NOT_AVAILABLE,
                    Some(found) => return Ok(found.leader_id.0),
                },
            };
            // A leader being elected is worth a short wait; anything else is the answer.
            if code != LEADER_NOT_AVAILABLE || Instant::now() >= deadline {
                return Err(ToolError::kafka(context, code));
            }
            thread::sleep(RETRY_BACKOFF);
        }
    }

    /// The connection id for `node`, finding the coordinator if needed.
    fn resolve(&mut self, node: &Node) -> Result<i32, ToolError> {
        match node {
            Node::Broker(id) => Ok(*id),
            Node::Any => Ok(self
                .connections
                .keys()
                .min()
                .copied()
                .unwrap_or(BOOTSTRAP_ID)),
            Node::Coordinator(group) => match self.coordinators.get(group) {
                Some(id) => Ok(*id),
                None => {
                    let id = self.find_coordinator(group)?;
                    self.coordinators.insert(group.clone(), id);
                    Ok(id)
                }
            },
        }
    }

    fn find_coordinator(&mut self, group: &str) -> Result<i32, ToolError> {
        let context = format!("finding the coordinator of group {group}");
        let version = self.version(
            &Node::Any,
            ApiKey::FindCoordinator,
            FIND_COORDINATOR_VERSION_MAX,
        )?;
        let key = StrBytes::from_string(group.to_string());
        let request = if version >= 4 {
            FindCoordinatorRequest::default().with_coordinator_keys(vec![key])
        } else {
            FindCoordinatorRequest::default().with_key(key)
        };
        let deadline = Instant::now() + COORDINATOR_WAIT;
        loop {
            let response = self.send(&Node::Any, version, &request)?;
            let (code, node_id, host, port) = if version >= 4 {
                let coordinator = response.coordinators.first().ok_or_else(|| {
                    ToolError::Protocol("FindCoordinator answered no coordinator".into())
                })?;
                (
                    coordinator.error_code,
                    coordinator.node_id.0,
                    coordinator.host.clone(),
                    coordinator.port,
                )
            } else {
                (
                    response.error_code,
                    response.node_id.0,
                    response.host.clone(),
                    response.port,
                )
            };
            if code == 0 {
                self.brokers.insert(node_id, format!("{host}:{port}"));
                return Ok(node_id);
            }
            if code != COORDINATOR_NOT_AVAILABLE || Instant::now() >= deadline {
                return Err(ToolError::kafka(context, code));
            }
            thread::sleep(RETRY_BACKOFF);
        }
    }

    /// The open connection with this id, opening it if needed.
    fn connection(&mut self, id: i32) -> Result<&mut Connection, ToolError> {
        if !self.connections.contains_key(&id) {
            let connection = if id == BOOTSTRAP_ID {
                self.open_bootstrap()?
            } else {
                if !self.brokers.contains_key(&id) {
                    self.metadata(Some(&[]))?;
                }
                let address = self.brokers.get(&id).cloned().ok_or_else(|| {
                    ToolError::Protocol(format!("broker {id} is not in the cluster metadata"))
                })?;
                Connection::open(&address, &self.client_id)?
            };
            self.connections.insert(id, connection);
        }
        self.connections
            .get_mut(&id)
            .ok_or_else(|| ToolError::Protocol(format!("no connection to broker {id}")))
    }
}

#[cfg(test)]
mod tests;
