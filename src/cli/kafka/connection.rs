//! One blocking connection to one broker (std `TcpStream`, one request in
//! flight): frames a request with its header, reads the size-prefixed
//! response, checks the correlation id and decodes the body. The CLI tools run
//! on the main thread with no executor, so plain blocking I/O with timeouts is
//! the simplest thing that cannot hang forever.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::{Decodable, Request, StrBytes};

use super::error::ToolError;
use crate::protocol::client_frames;

/// How long a TCP connect may take before the next address is tried.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one read or write may block: long enough for a broker's slowest
/// admin answer (topic creation, a join round), short enough that a stuck
/// broker does not hang a script.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response frame accepted. Fetch answers are bounded by the request's
/// max_bytes (Kafka's default fetch.max.bytes is 50 MiB); anything larger is a
/// broken stream, not a response.
pub const MAX_RESPONSE_BYTES: usize = 128 << 20;

/// The ApiVersions version tried first (flexible, KIP-511); brokers that do not
/// know it answer v0 with UNSUPPORTED_VERSION and we retry with v0.
const API_VERSIONS_VERSION: i16 = 3;
const UNSUPPORTED_VERSION: i16 = 35;

/// A connection with the API version ranges its broker advertised.
pub struct Connection {
    stream: TcpStream,
    /// `host:port` as given, for error messages.
    pub peer: String,
    client_id: StrBytes,
    next_correlation_id: i32,
    /// API key -> (min, max) version the broker supports.
    pub api_versions: HashMap<i16, (i16, i16)>,
}

impl Connection {
    /// Connects to `address` (any of its resolved socket addresses), sets
    /// timeouts and asks for the broker's API versions.
    pub fn open(address: &str, client_id: &str) -> Result<Connection, ToolError> {
        let io_error = |source| ToolError::Io {
            peer: address.to_string(),
            source,
        };
        let socket_addresses: Vec<SocketAddr> =
            address.to_socket_addrs().map_err(io_error)?.collect();
        let mut last_error = std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "the address resolved to nothing",
        );
        let mut stream = None;
        for socket_address in socket_addresses {
            match TcpStream::connect_timeout(&socket_address, CONNECT_TIMEOUT) {
                Ok(connected) => {
                    stream = Some(connected);
                    break;
                }
                Err(error) => last_error = error,
            }
        }
        let stream = stream.ok_or_else(|| io_error(last_error))?;
        stream.set_nodelay(true).map_err(io_error)?;
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .map_err(io_error)?;
        stream
            .set_write_timeout(Some(IO_TIMEOUT))
            .map_err(io_error)?;
        let mut connection = Connection {
            stream,
            peer: address.to_string(),
            client_id: StrBytes::from_string(client_id.to_string()),
            next_correlation_id: 1,
            api_versions: HashMap::new(),
        };
        connection.fetch_api_versions()?;
        Ok(connection)
    }

    fn fetch_api_versions(&mut self) -> Result<(), ToolError> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("corelog-cli"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let response: ApiVersionsResponse = match self.send(API_VERSIONS_VERSION, &request) {
            Ok(response) if response.error_code != UNSUPPORTED_VERSION => response,
            // KIP-511: an older broker answers v0 (or we cannot decode its answer).
            Ok(_) | Err(ToolError::Protocol(_)) => self.send(0, &ApiVersionsRequest::default())?,
            Err(error) => return Err(error),
        };
        if response.error_code != 0 {
            return Err(ToolError::kafka(
                format!("ApiVersions from {}", self.peer),
                response.error_code,
            ));
        }
        self.api_versions = response
            .api_keys
            .iter()
            .map(|api| (api.api_key, (api.min_version, api.max_version)))
            .collect();
        Ok(())
    }

    /// Highest version of `key` that the broker, this build of
    /// `kafka-protocol` and the caller (`max`) all support.
    pub fn version(&self, key: ApiKey, max: i16) -> Result<i16, ToolError> {
        let ours = key.valid_versions();
        let unsupported = || {
            ToolError::Protocol(format!(
                "broker {} does not support {key:?} (this tool speaks it up to v{max})",
                self.peer
            ))
        };
        let (broker_min, broker_max) = *self
            .api_versions
            .get(&(key as i16))
            .ok_or_else(unsupported)?;
        let version = broker_max.min(max).min(ours.max);
        if version < broker_min || version < ours.min {
            return Err(unsupported());
        }
        Ok(version)
    }

    /// Sends `request` at `version` and waits for its response.
    pub fn send<R: Request>(
        &mut self,
        version: i16,
        request: &R,
    ) -> Result<R::Response, ToolError> {
        let api_key = ApiKey::try_from(R::KEY)
            .map_err(|()| ToolError::Protocol(format!("unknown API key {}", R::KEY)))?;
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let frame = encode_request(api_key, version, correlation_id, &self.client_id, request)?;
        self.stream
            .write_all(&frame)
            .map_err(|source| self.io(source))?;
        let mut body = self.read_frame()?;
        decode_response::<R::Response>(api_key, version, correlation_id, &mut body)
    }

    fn read_frame(&mut self) -> Result<Bytes, ToolError> {
        let mut size_bytes = [0u8; 4];
        self.stream
            .read_exact(&mut size_bytes)
            .map_err(|source| self.io(source))?;
        let size = i32::from_be_bytes(size_bytes);
        let size = usize::try_from(size)
            .ok()
            .filter(|size| *size <= MAX_RESPONSE_BYTES)
            .ok_or_else(|| {
                ToolError::Protocol(format!("response frame of {size} bytes from {}", self.peer))
            })?;
        let mut body = vec![0u8; size];
        self.stream
            .read_exact(&mut body)
            .map_err(|source| self.io(source))?;
        Ok(Bytes::from(body))
    }

    fn io(&self, source: std::io::Error) -> ToolError {
        ToolError::Io {
            peer: self.peer.clone(),
            source,
        }
    }
}

/// The size-prefixed bytes of one request (`protocol::client_frames`).
pub fn encode_request<R: Request>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: &StrBytes,
    request: &R,
) -> Result<Bytes, ToolError> {
    client_frames::encode_request(api_key, version, correlation_id, client_id, request)
        .map_err(ToolError::Protocol)
}

/// Decodes a response frame's header and body; a malformed body is a
/// `Protocol` error, never a panic (`protocol::client_frames`).
pub fn decode_response<T: Decodable>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &mut Bytes,
) -> Result<T, ToolError> {
    client_frames::decode_response(api_key, version, correlation_id, body)
        .map_err(ToolError::Protocol)
}
