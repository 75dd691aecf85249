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
//!
//! Test-only fault injection (`--fault-drop-produce-responses N`): every Nth
//! Produce with acks != 0 on a shard is appended as usual, then the connection
//! is closed instead of answering it, as if the network had lost the response.

use std::cell::Cell;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;

use bytes::{Buf, Bytes, BytesMut};
use futures::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::net::TcpStream;
use kafka_protocol::messages::ApiKey;

use super::api_versions::unsupported_version_response;
use super::dispatch::{dispatch, encode, Outgoing, PendingResponse};
use super::response_memory::ResponseMemory;
use super::shard::{Shard, REQUEST_MEMORY_BYTES_PER_SHARD};
use super::vectored_write;
use crate::protocol::request::{decode_request, DecodeError, Request, RequestBody};
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
    let fd = stream.as_raw_fd();
    let (reader, writer) = stream.split();
    let (queue_sender, queue_receiver) = local_channel::new_bounded(MAX_IN_FLIGHT_REQUESTS);
    let writer_task = glommio::spawn_local(write_responses(
        writer,
        fd,
        queue_receiver,
        Rc::clone(&shard.response_memory),
        peer,
    ));
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
    let mut frames = FrameReader::new();
    loop {
        if !frames.fill(&mut reader, 4).await {
            if frames.has_partial_frame() {
                tracing::warn!(?peer, "connection closed inside a request frame");
            }
            return;
        }
        let prefix = &frames.buffered[..4];
        let length = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
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
        // Held until this request's response is ready (or it needs none).
        let cost = (length as u64).clamp(1, REQUEST_MEMORY_BYTES_PER_SHARD);
        let Ok(memory) = shard.request_memory.acquire_static_permit(cost).await else {
            return;
        };
        let Some(frame) = frames.body(&mut reader, length).await else {
            tracing::warn!(?peer, "connection closed inside a request frame");
            return;
        };
        let pending = match decode_request(frame) {
            Ok(request) => {
                let drop_response =
                    drops_produce_response(shard.config.fault_drop_produce_responses, &request);
                let pending = dispatch(shard, request, peer).await;
                match drop_response {
                    false => pending,
                    true => close_instead_of_answering(pending, peer),
                }
            }
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
        let pending: PendingResponse = Box::pin(async move {
            let outgoing = pending.await;
            drop(memory);
            outgoing
        });
        if queue.send(pending).await.is_err() {
            return;
        }
    }
}

thread_local! {
    /// Produce requests with acks != 0 this shard has seen while fault
    /// injection is on (each shard is one thread, so this counts per shard).
    static FAULT_PRODUCE_REQUESTS_SEEN: Cell<u64> = const { Cell::new(0) };
}

/// Whether fault injection drops the answer to this request: every
/// `every`th Produce with acks != 0 on this shard. Off (`every == 0`) costs
/// one comparison.
fn drops_produce_response(every: u64, request: &Request) -> bool {
    if every == 0 {
        return false;
    }
    let RequestBody::Produce(produce) = &request.body else {
        return false;
    };
    if produce.acks == 0 {
        return false;
    }
    FAULT_PRODUCE_REQUESTS_SEEN.with(|seen| {
        let count = seen.get() + 1;
        seen.set(count);
        count % every == 0
    })
}

/// Lets the Produce finish (appended, and as durable as its acks asked), then
/// throws its response away and closes the connection, so the client retries
/// batches the log already holds.
fn close_instead_of_answering(
    pending: PendingResponse,
    peer: Option<SocketAddr>,
) -> PendingResponse {
    Box::pin(async move {
        let _discarded = pending.await;
        tracing::warn!(
            ?peer,
            "fault injection: Produce response dropped; closing connection"
        );
        Outgoing::Close
    })
}

/// Buffered reading of request frames. Small reads land in a scratch buffer
/// zeroed once per connection and only the bytes read are copied on, so a
/// 100-byte Fetch costs a 100-byte copy rather than zeroing a 64 KiB chunk;
/// the buffer is grown once to the announced frame size, never by doubling.
/// The rest of a large frame is read straight into its own buffer.
struct FrameReader {
    scratch: Box<[u8]>,
    buffered: BytesMut,
}

/// Frames at least this large skip the scratch copy: their remainder is read
/// directly into a zero-initialised buffer of exactly their size.
const DIRECT_READ_FRAME_BYTES: usize = 256 * 1024;

impl FrameReader {
    fn new() -> FrameReader {
        FrameReader {
            scratch: vec![0u8; READ_CHUNK_BYTES].into_boxed_slice(),
            buffered: BytesMut::with_capacity(READ_CHUNK_BYTES),
        }
    }

    /// Reads until at least `wanted` bytes are buffered. False on EOF or error.
    async fn fill(&mut self, reader: &mut ReadHalf<TcpStream>, wanted: usize) -> bool {
        if wanted > self.buffered.len() {
            self.buffered.reserve(wanted - self.buffered.len());
        }
        while self.buffered.len() < wanted {
            match reader.read(&mut self.scratch).await {
                Ok(0) | Err(_) => return false,
                Ok(read) => self.buffered.extend_from_slice(&self.scratch[..read]),
            }
        }
        true
    }

    /// The body of a frame whose 4-byte length prefix is buffered; `None` on
    /// EOF or error (which may be mid-frame).
    async fn body(&mut self, reader: &mut ReadHalf<TcpStream>, length: usize) -> Option<Bytes> {
        let total = 4 + length;
        if self.buffered.len() < total && length >= DIRECT_READ_FRAME_BYTES {
            self.buffered.advance(4);
            let have = self.buffered.len();
            let mut frame = BytesMut::zeroed(length);
            frame[..have].copy_from_slice(&self.buffered);
            self.buffered.clear();
            return reader
                .read_exact(&mut frame[have..])
                .await
                .ok()
                .map(|()| frame.freeze());
        }
        if !self.fill(reader, total).await {
            return None;
        }
        self.buffered.advance(4);
        Some(self.buffered.split_to(length).freeze())
    }

    fn has_partial_frame(&self) -> bool {
        !self.buffered.is_empty()
    }
}

async fn write_responses(
    mut writer: WriteHalf<TcpStream>,
    fd: RawFd,
    queue: LocalReceiver<PendingResponse>,
    response_memory: Rc<ResponseMemory>,
    peer: Option<SocketAddr>,
) {
    while let Some(pending) = queue.recv().await {
        match pending.await {
            Outgoing::Frame(frame) => {
                // Charged until the socket took it all: a client that stops
                // reading holds this one frame, and the next responses are
                // not built meanwhile.
                let _charge = response_memory.charge(frame.len());
                if let Err(error) = writer.write_all(&frame).await {
                    tracing::debug!(?peer, %error, "write failed; closing connection");
                    break;
                }
            }
            Outgoing::Chunks(chunks) => {
                let _charge = response_memory.charge(chunks.iter().map(Bytes::len).sum());
                if let Err(error) = vectored_write::write_chunks(&mut writer, fd, &chunks).await {
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
