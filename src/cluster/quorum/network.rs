//! openraft's network for the metadata quorum: the client side
//! (`QuorumNetwork`, one `PeerClient` per peer and purpose, each with one TCP
//! connection made lazily and dropped on any error) and the listener side
//! (`serve`, which answers peers' calls with the local Raft node). Both run on
//! the controller shard (shard 0) of voter nodes; learners (broker-only nodes)
//! run only the listener side.
//!
//! Timeouts come from openraft (`RPCOption::hard_ttl`). A call that fails or
//! times out drops its connection, because a half-read answer would
//! desynchronise the request/response stream; the next call reconnects.

use std::io::Cursor;
use std::rc::Rc;

use futures::future::LocalBoxFuture;
use futures::Future;
use openraft::error::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::v2::RaftNetworkV2;
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::storage::RaftStateMachine;
use openraft::{BasicNode, Raft};
use openraft_rt::AsyncRuntime;

use crate::cluster::metadata::frame;

use super::rpc::{self, RaftRequest, RaftResponse, KIND_REQUEST, KIND_RESPONSE};
use super::runtime::GlommioRuntime;
use super::transport::{self, Hello, TransportError};
use super::types::{MetadataRaft, SnapshotMeta, Vote};

/// Makes a client per peer; openraft asks for one per replication stream,
/// one for heartbeats and one for snapshots.
#[derive(Clone)]
pub struct QuorumNetwork {
    hello: Rc<Hello>,
}

impl QuorumNetwork {
    /// `hello` introduces this node on every connection it makes.
    pub fn new(hello: Hello) -> QuorumNetwork {
        QuorumNetwork {
            hello: Rc::new(hello),
        }
    }
}

impl RaftNetworkFactory<MetadataRaft> for QuorumNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> PeerClient {
        PeerClient {
            target,
            address: node.addr.clone(),
            hello: Rc::clone(&self.hello),
            stream: None,
        }
    }
}

/// One peer's client: at most one call in flight, on one connection.
pub struct PeerClient {
    target: u64,
    address: String,
    hello: Rc<Hello>,
    stream: Option<glommio::net::TcpStream>,
}

/// How a call failed, before openraft's error types.
enum CallError {
    /// Could not connect or introduce ourselves: openraft backs off.
    Unreachable(TransportError),
    /// Broke mid-call or timed out.
    Broken(TransportError),
}

impl PeerClient {
    async fn call(
        &mut self,
        request: &RaftRequest,
        option: &RPCOption,
    ) -> Result<RaftResponse, CallError> {
        let bytes = frame::encode(KIND_REQUEST, request)
            .map_err(|error| CallError::Broken(error.into()))?;
        let mut stream = match self.stream.take() {
            Some(stream) => stream,
            None => transport::connect(&self.address, &self.hello)
                .await
                .map_err(CallError::Unreachable)?,
        };
        let ttl = option.hard_ttl();
        let exchange = async {
            transport::write_frame(&mut stream, &bytes).await?;
            let answer = transport::read_frame(&mut stream).await?;
            Ok::<_, TransportError>(frame::decode::<RaftResponse>(KIND_RESPONSE, &answer)?)
        };
        let response = GlommioRuntime::timeout(ttl, exchange)
            .await
            .map_err(|_| CallError::Broken(TransportError::TimedOut(ttl)))?
            .map_err(CallError::Broken)?;
        // Only a complete exchange leaves the connection reusable.
        self.stream = Some(stream);
        if response == RaftResponse::Unavailable {
            return Err(CallError::Unreachable(TransportError::Refused));
        }
        Ok(response)
    }

    fn unexpected(&self, response: RaftResponse) -> RPCError<MetadataRaft> {
        tracing::warn!(
            peer = self.target,
            ?response,
            "quorum peer answered the wrong call"
        );
        self.stream_error(TransportError::Refused)
    }

    fn stream_error(&self, error: TransportError) -> RPCError<MetadataRaft> {
        RPCError::Network(NetworkError::new(&error))
    }
}

impl From<CallError> for RPCError<MetadataRaft> {
    fn from(error: CallError) -> Self {
        match error {
            CallError::Unreachable(error) => RPCError::Unreachable(Unreachable::new(&error)),
            CallError::Broken(error) => RPCError::Network(NetworkError::new(&error)),
        }
    }
}

impl From<CallError> for StreamingError<MetadataRaft> {
    fn from(error: CallError) -> Self {
        match error {
            CallError::Unreachable(error) => StreamingError::Unreachable(Unreachable::new(&error)),
            CallError::Broken(error) => StreamingError::Network(NetworkError::new(&error)),
        }
    }
}

impl RaftNetworkV2<MetadataRaft> for PeerClient {
    type SnapshotData = Cursor<Vec<u8>>;

    async fn append_entries(
        &mut self,
        request: AppendEntriesRequest<MetadataRaft>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<MetadataRaft>, RPCError<MetadataRaft>> {
        match self
            .call(&RaftRequest::append_entries(&request), &option)
            .await?
        {
            RaftResponse::AppendEntries(result) => Ok(result.into()),
            other => Err(self.unexpected(other)),
        }
    }

    async fn vote(
        &mut self,
        request: VoteRequest<MetadataRaft>,
        option: RPCOption,
    ) -> Result<VoteResponse<MetadataRaft>, RPCError<MetadataRaft>> {
        let wire = RaftRequest::Vote(RaftRequest::vote(&request));
        self.vote_call(wire, &option).await
    }

    async fn pre_vote(
        &mut self,
        request: VoteRequest<MetadataRaft>,
        option: RPCOption,
    ) -> Result<VoteResponse<MetadataRaft>, RPCError<MetadataRaft>> {
        let wire = RaftRequest::PreVote(RaftRequest::vote(&request));
        self.vote_call(wire, &option).await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: openraft::type_config::alias::SnapshotOf<MetadataRaft, Cursor<Vec<u8>>>,
        _cancel: impl Future<Output = ReplicationClosed> + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<MetadataRaft>, StreamingError<MetadataRaft>> {
        let meta: &SnapshotMeta = &snapshot.meta;
        let request = RaftRequest::full_snapshot(&vote, meta, snapshot.snapshot.into_inner());
        match self.call(&request, &option).await? {
            RaftResponse::Snapshot { vote } => Ok(SnapshotResponse::new(Vote::from(vote))),
            other => {
                tracing::warn!(
                    peer = self.target,
                    ?other,
                    "quorum peer answered the wrong call"
                );
                Err(StreamingError::Network(NetworkError::new(
                    &TransportError::Refused,
                )))
            }
        }
    }
}

impl PeerClient {
    async fn vote_call(
        &mut self,
        request: RaftRequest,
        option: &RPCOption,
    ) -> Result<VoteResponse<MetadataRaft>, RPCError<MetadataRaft>> {
        match self.call(&request, option).await? {
            RaftResponse::Vote {
                vote,
                vote_granted,
                last_log_id,
            } => Ok(rpc::vote_response(vote, vote_granted, last_log_id)),
            other => Err(self.unexpected(other)),
        }
    }
}

/// The control frame kind (`cluster::control`): answered by the slot's
/// handler, not by Raft.
pub const KIND_CONTROL_REQUEST: frame::FrameKind = frame::FrameKind::new(36);

/// Answers a control call: the request frame in, the response frame out
/// (`None` closes the connection). Set once the node's controller exists.
pub type ControlHandler = Rc<dyn Fn(Vec<u8>) -> LocalBoxFuture<'static, Option<Vec<u8>>>>;

/// Where the listener finds the control handler.
pub type ControlSlot = Rc<std::cell::RefCell<Option<ControlHandler>>>;

/// What an admitted peer may ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRole {
    /// Raft calls and control calls.
    Voter,
    /// Control calls only (a broker-only node, or a voter's broker side).
    Broker,
}

/// Answers one peer's calls on an accepted connection until it closes or
/// sends something undecodable (closed with a warning, never a panic).
pub async fn serve_connection<SM>(
    raft: Raft<MetadataRaft, SM>,
    mut stream: glommio::net::TcpStream,
    ours: &Hello,
    admit: impl Fn(&Hello) -> Result<PeerRole, TransportError>,
    control: ControlSlot,
) where
    SM: RaftStateMachine<MetadataRaft, SnapshotData = Cursor<Vec<u8>>>,
{
    let role = std::cell::Cell::new(PeerRole::Broker);
    let admit_and_remember = |hello: &Hello| {
        role.set(admit(hello)?);
        Ok(())
    };
    let peer = match transport::accept_handshake(&mut stream, ours, admit_and_remember).await {
        Ok(hello) => hello.node_id,
        Err(error) => {
            tracing::warn!(%error, "quorum connection refused");
            return;
        }
    };
    let role = role.get();
    loop {
        let limit = match role {
            PeerRole::Voter => frame::MAX_FRAME_BYTES,
            PeerRole::Broker => transport::MAX_BROKER_FRAME_BYTES,
        };
        let bytes = match transport::read_frame_within(&mut stream, limit).await {
            Ok(bytes) => bytes,
            Err(TransportError::Io(error)) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
                return;
            }
            Err(error) => {
                tracing::warn!(peer, %error, "closing quorum connection");
                return;
            }
        };
        if frame::read_header(&bytes).map(|header| header.kind) == Ok(KIND_CONTROL_REQUEST) {
            let handler = control.borrow().clone();
            let answer = match handler {
                Some(handler) => handler(bytes).await,
                None => None,
            };
            let Some(answer) = answer else {
                tracing::warn!(
                    peer,
                    "control call this node cannot answer; closing the connection"
                );
                return;
            };
            if let Err(error) = transport::write_frame(&mut stream, &answer).await {
                tracing::debug!(peer, %error, "quorum peer went away");
                return;
            }
            continue;
        }
        if role != PeerRole::Voter {
            tracing::warn!(
                peer,
                "Raft call from a node that is not a voter; closing the connection"
            );
            return;
        }
        let request = match frame::decode::<RaftRequest>(KIND_REQUEST, &bytes) {
            Ok(request) => request,
            Err(error) => {
                tracing::warn!(peer, %error, "undecodable quorum request; closing the connection");
                return;
            }
        };
        let response = match answer(&raft, request).await {
            Ok(response) => response,
            Err(error) => {
                tracing::warn!(peer, %error, "invalid quorum request; closing the connection");
                return;
            }
        };
        let encoded = match frame::encode(KIND_RESPONSE, &response) {
            Ok(encoded) => encoded,
            Err(error) => {
                tracing::error!(peer, %error, "cannot encode a quorum response");
                return;
            }
        };
        if let Err(error) = transport::write_frame(&mut stream, &encoded).await {
            tracing::debug!(peer, %error, "quorum peer went away");
            return;
        }
    }
}

/// Runs one call on the local Raft node.
async fn answer<SM>(
    raft: &Raft<MetadataRaft, SM>,
    request: RaftRequest,
) -> Result<RaftResponse, super::stored::StoredError>
where
    SM: RaftStateMachine<MetadataRaft, SnapshotData = Cursor<Vec<u8>>>,
{
    let response = match request {
        RaftRequest::AppendEntries {
            vote,
            prev_log_id,
            entries,
            leader_commit,
        } => {
            let request = rpc::into_append_entries(vote, prev_log_id, entries, leader_commit)?;
            match raft.append_entries(request).await {
                Ok(response) => RaftResponse::from(&response),
                Err(error) => unavailable(&error),
            }
        }
        RaftRequest::Vote(wire) => match raft.vote(wire.into()).await {
            Ok(response) => RaftResponse::from(&response),
            Err(error) => unavailable(&error),
        },
        RaftRequest::PreVote(wire) => match raft.pre_vote(wire.into()).await {
            Ok(response) => RaftResponse::from(&response),
            Err(error) => unavailable(&error),
        },
        RaftRequest::FullSnapshot { vote, meta, data } => {
            let snapshot = rpc::into_snapshot(meta, data)?;
            match raft.install_full_snapshot(Vote::from(vote), snapshot).await {
                Ok(response) => RaftResponse::from(&response),
                Err(error) => unavailable(&error),
            }
        }
    };
    Ok(response)
}

fn unavailable(error: &dyn std::fmt::Display) -> RaftResponse {
    tracing::warn!(%error, "local Raft node cannot answer a quorum call");
    RaftResponse::Unavailable
}
