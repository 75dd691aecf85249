//! One client connection, living on the shard that accepted it. A read loop
//! frames and decodes requests and dispatches them in order; a write loop
//! awaits their responses in the same order and writes them. Between the two,
//! a bounded queue caps how many requests one client can have in flight.
//!
//! Bad input closes only this connection, with a warning: a length prefix
//! over `--max-request-bytes` (refused before reading the body, so a 2 GB
//! prefix or an HTTP request costs nothing), an undecodable request, an
//! unknown API key or an unsupported version (except ApiVersions, which gets
//! its KIP-511 answer).

use std::net::SocketAddr;
use std::rc::Rc;

use bytes::{Buf, BytesMut};
use futures::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::net::TcpStream;
use kafka_protocol::messages::ApiKey;

use super::api_versions::unsupported_version_response;
use super::dispatch::{dispatch, encode, Outgoing, PendingResponse};
use super::shard::Shard;
use crate::protocol::request::{decode_request, DecodeError};
use crate::protocol::response::ResponseBody;

/// Requests one connection may have in flight (read but not yet answered).
/// librdkafka pipelines up to `max.in.flight` (default 1,000,000, capped by
/// us here); the Java client up to 5 per connection.
pub const MAX_IN_FLIGHT_REQUESTS: usize = 64;
/// Bytes read from the socket at a time when no larger frame is expected.
const READ_CHUNK_BYTES: usize = 64 * 1024;

pub async fn serve_connection(shard: Rc<Shard>, stream: TcpStream) {
    let peer = stream.peer_addr().ok();
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "cannot set TCP_NODELAY");
    }
    let (reader, writer) = stream.split();
    let (queue_sender, queue_receiver) = local_channel::new_bounded(MAX_IN_FLIGHT_REQUESTS);
    let writer_task = glommio::spawn_local(write_responses(writer, queue_receiver, peer));
    read_requests(&shard, reader, queue_sender, peer).await;
    writer_task.await;
}

async fn read_requests(
    shard: &Rc<Shard>,
    mut reader: ReadHalf<TcpStream>,
    queue: LocalSender<PendingResponse>,
    peer: Option<SocketAddr>,
) {
    let max_request_bytes = shard.config.max_request_bytes;
    let mut buffer = BytesMut::with_capacity(READ_CHUNK_BYTES);
    loop {
        if !fill(&mut reader, &mut buffer, 4).await {
            return;
        }
        let length = i32::from_be_bytes([buffer[0], buffer[1], buffer[2], buffer[3]]);
        let Some(length) = usize::try_from(length)
            .ok()
            .filter(|l| *l <= max_request_bytes)
        else {
            tracing::warn!(
                ?peer,
                length,
                max_request_bytes,
                "request size out of bounds; closing connection"
            );
            return;
        };
        if !fill(&mut reader, &mut buffer, 4 + length).await {
            if !buffer.is_empty() {
                tracing::warn!(?peer, "connection closed inside a request frame");
            }
            return;
        }
        buffer.advance(4);
        let frame = buffer.split_to(length).freeze();
        let pending = match decode_request(frame) {
            Ok(request) => dispatch(shard, request).await,
            Err(DecodeError::UnsupportedApiVersionsVersion {
                version,
                correlation_id,
            }) => {
                tracing::debug!(?peer, version, "ApiVersions version unknown; answering v0");
                let body = ResponseBody::ApiVersions(unsupported_version_response());
                let outgoing = encode(ApiKey::ApiVersions, 0, correlation_id, body);
                Box::pin(async move { outgoing })
            }
            Err(error) => {
                tracing::warn!(?peer, %error, "bad request; closing connection");
                Box::pin(async { Outgoing::Close })
            }
        };
        if queue.send(pending).await.is_err() {
            return;
        }
    }
}

/// Reads until `buffer` holds at least `wanted` bytes. False on EOF or error.
async fn fill(reader: &mut ReadHalf<TcpStream>, buffer: &mut BytesMut, wanted: usize) -> bool {
    while buffer.len() < wanted {
        let start = buffer.len();
        let grow = (wanted - start).max(READ_CHUNK_BYTES);
        buffer.resize(start + grow, 0);
        match reader.read(&mut buffer[start..]).await {
            Ok(0) | Err(_) => {
                buffer.truncate(start);
                return false;
            }
            Ok(read) => buffer.truncate(start + read),
        }
    }
    true
}

async fn write_responses(
    mut writer: WriteHalf<TcpStream>,
    queue: LocalReceiver<PendingResponse>,
    peer: Option<SocketAddr>,
) {
    while let Some(pending) = queue.recv().await {
        match pending.await {
            Outgoing::Frame(frame) => {
                if let Err(error) = writer.write_all(&frame).await {
                    tracing::debug!(?peer, %error, "write failed; closing connection");
                    break;
                }
            }
            Outgoing::Nothing => {}
            Outgoing::Close => break,
        }
    }
    let _ = writer.close().await;
}
