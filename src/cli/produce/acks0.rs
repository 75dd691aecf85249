//! `corelog produce --acks 0`: the broker sends no Produce response, which
//! `KafkaClient::send` would wait for, so frames go over one stream of our
//! own per leader and nothing is read from it until the end. Then one
//! ApiVersions round trip per stream proves every frame before it was taken.

use std::collections::hash_map::Entry;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, ProduceRequest};
use kafka_protocol::protocol::StrBytes;

use super::{Producer, CLIENT_ID};
use crate::cli::kafka::connection::{decode_response, encode_request};
use crate::cli::kafka::ToolError;

/// How long the acks=0 streams may take to answer the final ApiVersions.
const UNACKNOWLEDGED_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

impl Producer {
    /// acks=0: the broker sends no answer, which `KafkaClient::send` would
    /// wait for, so the frame goes over a stream of our own.
    pub(super) fn send_unacknowledged(
        &mut self,
        leader: i32,
        version: i16,
        request: &ProduceRequest,
    ) -> Result<(), ToolError> {
        let address = self.layout.brokers.get(&leader).cloned().ok_or_else(|| {
            ToolError::Protocol(format!("leader {leader} is not in the cluster metadata"))
        })?;
        let io_error = |source| ToolError::Io {
            peer: address.clone(),
            source,
        };
        let frame = encode_request(
            ApiKey::Produce,
            version,
            0,
            &StrBytes::from_static_str(CLIENT_ID),
            request,
        )?;
        let stream = match self.unacknowledged.entry(leader) {
            Entry::Occupied(open) => open.into_mut(),
            Entry::Vacant(absent) => {
                let stream = TcpStream::connect(&address).map_err(io_error)?;
                stream.set_nodelay(true).map_err(io_error)?;
                stream
                    .set_read_timeout(Some(UNACKNOWLEDGED_DRAIN_TIMEOUT))
                    .map_err(io_error)?;
                absent.insert(stream)
            }
        };
        stream.write_all(&frame).map_err(io_error)
    }

    /// acks=0 streams: an ApiVersions round trip after the last Produce.
    /// Brokers answer a connection's requests in order (corelog after the
    /// writes before it), so the answer means every frame was taken.
    pub(super) fn drain_unacknowledged(&mut self) -> Result<(), ToolError> {
        const CORRELATION_ID: i32 = 1;
        for (leader, mut stream) in self.unacknowledged.drain() {
            let io_error = |source| ToolError::Io {
                peer: format!("broker {leader}"),
                source,
            };
            let frame = encode_request(
                ApiKey::ApiVersions,
                0,
                CORRELATION_ID,
                &StrBytes::from_static_str(CLIENT_ID),
                &ApiVersionsRequest::default(),
            )?;
            stream.write_all(&frame).map_err(io_error)?;
            let mut size = [0u8; 4];
            stream.read_exact(&mut size).map_err(io_error)?;
            let size = usize::try_from(i32::from_be_bytes(size))
                .ok()
                .filter(|size| *size < 1 << 20)
                .ok_or_else(|| ToolError::Protocol("bad ApiVersions frame after acks=0".into()))?;
            let mut body = vec![0u8; size];
            stream.read_exact(&mut body).map_err(io_error)?;
            let _: ApiVersionsResponse = decode_response(
                ApiKey::ApiVersions,
                0,
                CORRELATION_ID,
                &mut Bytes::from(body),
            )?;
        }
        Ok(())
    }
}
