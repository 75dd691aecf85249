//! One pipelined Kafka connection. Requests are framed and queued to a writer
//! task in call order and their response slots registered in the same
//! synchronous step, so the reader task can match responses (which Kafka
//! sends in request order) to callers by position; the correlation id is
//! checked as a guard. Many requests may be in flight; the caller bounds them.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use bytes::{BufMut, Bytes, BytesMut};
use futures::channel::oneshot;
use futures::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::net::TcpStream;
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// Largest response frame accepted (a Fetch can be large; Kafka's default
/// fetch.max.bytes is 50 MiB, plus headroom).
pub const MAX_RESPONSE_BYTES: usize = 128 << 20;

type ResponseSlot = oneshot::Sender<io::Result<Bytes>>;

struct Pending {
    correlation_id: i32,
    response_header_version: i16,
    slot: ResponseSlot,
}

/// A connection to one broker.
pub struct Connection {
    client_id: StrBytes,
    next_correlation_id: Cell<i32>,
    pending: Rc<RefCell<VecDeque<Pending>>>,
    frames: LocalSender<Bytes>,
    closed: Rc<Cell<bool>>,
    pub peer: SocketAddr,
}

fn broken(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, message.to_string())
}

impl Connection {
    pub async fn connect(peer: SocketAddr, client_id: &str) -> io::Result<Rc<Connection>> {
        let stream = TcpStream::connect(peer).await.map_err(io::Error::from)?;
        stream.set_nodelay(true).map_err(io::Error::from)?;
        let (reader, writer) = stream.split();
        // Unbounded so that queueing a frame never waits: the response slot is
        // registered in the same synchronous step, which keeps slots and frames
        // in one order. Callers bound what they keep in flight.
        let (frames, frame_receiver) = local_channel::new_unbounded();
        let pending = Rc::new(RefCell::new(VecDeque::new()));
        let closed = Rc::new(Cell::new(false));
        glommio::spawn_local(write_frames(writer, frame_receiver, Rc::clone(&closed))).detach();
        glommio::spawn_local(read_responses(
            reader,
            Rc::clone(&pending),
            Rc::clone(&closed),
        ))
        .detach();
        Ok(Rc::new(Connection {
            client_id: StrBytes::from_string(client_id.to_string()),
            next_correlation_id: Cell::new(1),
            pending,
            frames,
            closed,
            peer,
        }))
    }

    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Queues `request`; returns the receiver of the raw response body, or
    /// `None` when the request expects no response (Produce with acks=0).
    pub fn send<R: Encodable>(
        &self,
        api_key: ApiKey,
        version: i16,
        request: &R,
        expects_response: bool,
    ) -> io::Result<Option<oneshot::Receiver<io::Result<Bytes>>>> {
        if self.closed.get() {
            return Err(broken("connection closed"));
        }
        let correlation_id = self.next_correlation_id.get();
        self.next_correlation_id.set(correlation_id.wrapping_add(1));
        let header = RequestHeader::default()
            .with_request_api_key(api_key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(self.client_id.clone()));
        let mut frame = BytesMut::with_capacity(256);
        frame.put_i32(0);
        header
            .encode(&mut frame, api_key.request_header_version(version))
            .map_err(io::Error::other)?;
        request
            .encode(&mut frame, version)
            .map_err(io::Error::other)?;
        let length = i32::try_from(frame.len() - 4).map_err(io::Error::other)?;
        frame[..4].copy_from_slice(&length.to_be_bytes());
        let receiver = if expects_response {
            let (slot, receiver) = oneshot::channel();
            self.pending.borrow_mut().push_back(Pending {
                correlation_id,
                response_header_version: api_key.response_header_version(version),
                slot,
            });
            Some(receiver)
        } else {
            None
        };
        self.frames
            .try_send(frame.freeze())
            .map_err(|_| broken("connection writer stopped"))?;
        Ok(receiver)
    }

    /// Sends `request` and decodes its response.
    pub async fn call<Req: Encodable, Resp: Decodable>(
        &self,
        api_key: ApiKey,
        version: i16,
        request: &Req,
    ) -> io::Result<Resp> {
        let receiver = self
            .send(api_key, version, request, true)?
            .ok_or_else(|| broken("no response slot"))?;
        let mut body = receiver.await.map_err(|_| broken("connection closed"))??;
        Resp::decode(&mut body, version).map_err(io::Error::other)
    }
}

async fn write_frames(
    mut writer: WriteHalf<TcpStream>,
    frames: LocalReceiver<Bytes>,
    closed: Rc<Cell<bool>>,
) {
    while let Some(frame) = frames.recv().await {
        if writer.write_all(&frame).await.is_err() {
            break;
        }
    }
    closed.set(true);
    let _ = writer.close().await;
}

async fn read_responses(
    mut reader: ReadHalf<TcpStream>,
    pending: Rc<RefCell<VecDeque<Pending>>>,
    closed: Rc<Cell<bool>>,
) {
    let failure = loop {
        let mut length = [0u8; 4];
        if let Err(error) = reader.read_exact(&mut length).await {
            break error;
        }
        let length = i32::from_be_bytes(length);
        let Some(length) = usize::try_from(length)
            .ok()
            .filter(|l| *l >= 4 && *l <= MAX_RESPONSE_BYTES)
        else {
            break io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad response length {length}"),
            );
        };
        let mut frame = BytesMut::zeroed(length);
        if let Err(error) = reader.read_exact(&mut frame).await {
            break error;
        }
        let mut frame = frame.freeze();
        let Some(waiting) = pending.borrow_mut().pop_front() else {
            break io::Error::new(io::ErrorKind::InvalidData, "response without a request");
        };
        let header = match ResponseHeader::decode(&mut frame, waiting.response_header_version) {
            Ok(header) => header,
            Err(error) => break io::Error::new(io::ErrorKind::InvalidData, error.to_string()),
        };
        if header.correlation_id != waiting.correlation_id {
            let message = format!(
                "correlation id {} answered where {} was expected",
                header.correlation_id, waiting.correlation_id
            );
            let _ = waiting.slot.send(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                message.clone(),
            )));
            break io::Error::new(io::ErrorKind::InvalidData, message);
        }
        let _ = waiting.slot.send(Ok(frame));
    };
    closed.set(true);
    let waiting: Vec<Pending> = pending.borrow_mut().drain(..).collect();
    for request in waiting {
        let _ = request
            .slot
            .send(Err(io::Error::new(failure.kind(), failure.to_string())));
    }
}
