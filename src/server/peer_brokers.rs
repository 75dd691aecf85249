//! Calls from this broker to another broker of the cluster, over Kafka's own
//! protocol, as the Java broker makes them: WriteTxnMarkers to the leaders
//! of a transaction's partitions, and AddPartitionsToTxn (v4, verify only)
//! to a transactional id's coordinator when a Produce must be verified. The
//! peer is found by broker id in the shard's catalog (its advertised
//! address); this is `routing`'s third hop, another node.
//!
//! Each shard keeps at most one connection per peer, made on first use and
//! dropped on any error; calls to one peer take turns on it (these are
//! control calls, a handful per transaction). Every call is bounded by
//! `PEER_CALL_TIMEOUT`, and a malformed answer is an error, never a panic.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Request, StrBytes};

use super::shard::Shard;
use crate::protocol::client_frames::{decode_response, encode_request};
use crate::protocol::errors::KafkaError;

/// How long one call to a peer may take, connecting included.
pub const PEER_CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer accepted from a peer.
const MAX_PEER_RESPONSE_BYTES: usize = 64 << 20;
/// The client id peers see in their logs.
const CLIENT_ID: &str = "corelog-broker";

/// One shard's connections to other brokers.
#[derive(Default)]
pub struct PeerBrokers {
    connections: RefCell<HashMap<i32, Rc<PeerConnection>>>,
}

/// One connection to a peer; calls on it take turns.
pub struct PeerConnection {
    stream: RefCell<Option<TcpStream>>,
    turn: glommio::sync::Semaphore,
    next_correlation_id: std::cell::Cell<i32>,
}

/// Why a call to a peer failed; every case is retriable for the caller.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("broker {0} is not in the cluster metadata")]
    UnknownBroker(i32),
    #[error("broker {broker}: {reason}")]
    Failed { broker: i32, reason: String },
}

impl PeerError {
    /// The code a caller answers its client with.
    pub fn kafka_error(&self) -> KafkaError {
        match self {
            PeerError::UnknownBroker(_) => KafkaError::NotLeaderOrFollower,
            PeerError::Failed { .. } => KafkaError::RequestTimedOut,
        }
    }
}

/// The advertised address of `broker` in the shard's catalog.
pub fn broker_address(shard: &Shard, broker: i32) -> Result<String, PeerError> {
    shard
        .read_catalog(|catalog| {
            catalog
                .brokers()
                .iter()
                .find(|known| known.node_id == broker)
                .map(|known| format!("{}:{}", known.host, known.port))
        })
        .ok_or(PeerError::UnknownBroker(broker))
}

/// Sends `request` at `version` to broker `broker` and answers its response.
pub async fn call<R: Request>(
    shard: &Shard,
    broker: i32,
    version: i16,
    request: &R,
) -> Result<R::Response, PeerError> {
    let address = broker_address(shard, broker)?;
    let connection = {
        let mut connections = shard.peer_brokers.connections.borrow_mut();
        Rc::clone(
            connections
                .entry(broker)
                .or_insert_with(|| Rc::new(PeerConnection::default())),
        )
    };
    connection
        .call(broker, &address, version, request, PEER_CALL_TIMEOUT)
        .await
}

impl Default for PeerConnection {
    fn default() -> Self {
        PeerConnection {
            stream: RefCell::new(None),
            turn: glommio::sync::Semaphore::new(1),
            next_correlation_id: std::cell::Cell::new(1),
        }
    }
}

impl PeerConnection {
    /// One exchange on this connection (connecting first if needed), bounded
    /// by `timeout`; any failure drops the connection.
    pub async fn call<R: Request>(
        &self,
        broker: i32,
        address: &str,
        version: i16,
        request: &R,
        timeout: Duration,
    ) -> Result<R::Response, PeerError> {
        let failed = |reason: String| PeerError::Failed { broker, reason };
        let _turn = self
            .turn
            .acquire_permit(1)
            .await
            .map_err(|error| failed(error.to_string()))?;
        let api_key = ApiKey::try_from(R::KEY).map_err(|_| failed("unknown API key".into()))?;
        let correlation_id = self.next_correlation_id.get();
        self.next_correlation_id.set(correlation_id.wrapping_add(1));
        let frame = encode_request(
            api_key,
            version,
            correlation_id,
            &StrBytes::from_static_str(CLIENT_ID),
            request,
        )
        .map_err(failed)?;
        let existing = self.stream.borrow_mut().take();
        let exchange = async {
            let mut stream = match existing {
                Some(stream) => stream,
                None => {
                    let stream = TcpStream::connect(address)
                        .await
                        .map_err(|error| format!("cannot connect to {address}: {error}"))?;
                    stream
                        .set_nodelay(true)
                        .map_err(|error| error.to_string())?;
                    stream
                }
            };
            stream
                .write_all(&frame)
                .await
                .map_err(|error| error.to_string())?;
            let mut size = [0u8; 4];
            stream
                .read_exact(&mut size)
                .await
                .map_err(|error| error.to_string())?;
            let size = usize::try_from(i32::from_be_bytes(size))
                .ok()
                .filter(|size| *size <= MAX_PEER_RESPONSE_BYTES)
                .ok_or_else(|| "answer of an impossible size".to_string())?;
            let mut body = vec![0u8; size];
            stream
                .read_exact(&mut body)
                .await
                .map_err(|error| error.to_string())?;
            Ok::<_, String>((stream, Bytes::from(body)))
        };
        let (stream, mut body) = glommio::timer::timeout(timeout, async { Ok(exchange.await) })
            .await
            .map_err(|_| failed(format!("no answer within {timeout:?}")))?
            .map_err(failed)?;
        let response = decode_response::<R::Response>(api_key, version, correlation_id, &mut body)
            .map_err(failed)?;
        // Only a complete exchange leaves the connection reusable.
        *self.stream.borrow_mut() = Some(stream);
        Ok(response)
    }
}
