//! The quorum's own connections between voter nodes (the only inter-node
//! traffic that is not Kafka's protocol): TCP on `--controller-listen`,
//! carrying the frames of `cluster::metadata::frame` (versioned, crc32c,
//! bounded by `MAX_FRAME_BYTES`, checked rkyv).
//!
//! A connection starts with a `Hello` naming the sender's node id and cluster
//! id; the listener refuses (closes, with a warning) a node outside the voter
//! set or of another cluster, so a misconfigured node cannot vote or append.
//! After that, the caller sends one request frame and reads one response
//! frame at a time: openraft keeps one client per peer and per purpose and
//! never has two calls in flight on one, so no request ids are needed.
//! Lives on the controller shard (shard 0) of voter nodes.

use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use openraft_rt::AsyncRuntime;
use thiserror::Error;

use super::network::PeerRole;
use super::runtime::GlommioRuntime;

use crate::cluster::metadata::frame::{self, FrameError, FrameKind, FRAME_HEADER_BYTES};

/// A connection's first frame, from the connecting side.
pub const KIND_HELLO: FrameKind = FrameKind::new(32);
/// The listener's answer to an accepted `Hello`.
pub const KIND_HELLO_ACCEPTED: FrameKind = FrameKind::new(33);

/// How long a new connection may take to connect and finish its handshake.
/// Peers are on a LAN; a voter that cannot answer in this time is treated as
/// unreachable for this attempt, and openraft retries on its own schedule.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);

/// The version of everything sent on quorum connections (Raft calls,
/// control calls, metadata records). rkyv layouts are fixed, so two builds
/// with different types would misread each other: bump this whenever one of
/// those types changes, and nodes of different builds refuse each other at
/// the handshake instead.
pub const WIRE_VERSION: u32 = 4;

/// Who is calling. `cluster_id` is empty while the sender has not yet
/// learned the cluster id from the metadata log (a brand-new node).
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub node_id: u64,
    pub cluster_id: String,
    /// The sender's [`WIRE_VERSION`].
    pub wire_version: u32,
}

impl Hello {
    /// This build's introduction.
    pub fn new(node_id: u64, cluster_id: String) -> Hello {
        Hello {
            node_id,
            cluster_id,
            wire_version: WIRE_VERSION,
        }
    }

    fn check_wire_version(&self) -> Result<(), TransportError> {
        if self.wire_version == WIRE_VERSION {
            Ok(())
        } else {
            Err(TransportError::WireVersion {
                node_id: self.node_id,
                theirs: self.wire_version,
            })
        }
    }
}

/// Why a connection was refused or broke.
#[derive(Debug, Error)]
pub enum TransportError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("bad frame: {0}")]
    Frame(#[from] FrameError),
    #[error("node {0} is not a voter of the metadata quorum")]
    NotAVoter(u64),
    #[error("node {node_id} belongs to cluster {theirs}, this node to {ours}")]
    ClusterIdMismatch {
        node_id: u64,
        ours: String,
        theirs: String,
    },
    #[error("node {node_id} speaks quorum wire version {theirs}, this build {}: every node of a cluster must run the same corelog release", WIRE_VERSION)]
    WireVersion { node_id: u64, theirs: u32 },
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
    #[error("the peer refused the handshake")]
    Refused,
}

impl From<glommio::GlommioError<()>> for TransportError {
    fn from(error: glommio::GlommioError<()>) -> Self {
        TransportError::Io(error.into())
    }
}

/// Largest `Hello` frame: a node id and a cluster id. A connection that has
/// not introduced itself yet cannot make this node allocate more.
pub const MAX_HELLO_FRAME_BYTES: usize = 4 << 10;

/// Largest frame a node that is not a voter may send: its control calls
/// (a registration, a forwarded CreateTopics with its configs) are small,
/// so a broker-only peer cannot make a voter allocate `MAX_FRAME_BYTES`
/// per connection. Voters' Raft calls carry log batches and snapshots and
/// keep the frame format's limit.
pub const MAX_BROKER_FRAME_BYTES: usize = 1 << 20;

/// Quorum connections one node serves at once (a voter keeps a few per
/// peer: replication, heartbeats, snapshots). Past it, new connections are
/// closed at once, so a flood of connects cannot grow memory.
pub const MAX_QUORUM_CONNECTIONS: usize = 64;

/// Reads one whole frame (header, then exactly the payload it announces).
/// The length is checked before the payload buffer is allocated, so a peer
/// announcing 2 GB costs nothing.
pub async fn read_frame(stream: &mut TcpStream) -> Result<Vec<u8>, TransportError> {
    read_frame_within(stream, frame::MAX_FRAME_BYTES).await
}

/// `read_frame` with a smaller payload limit than the frame format's.
pub async fn read_frame_within(
    stream: &mut TcpStream,
    max_payload_bytes: usize,
) -> Result<Vec<u8>, TransportError> {
    let mut header = [0u8; FRAME_HEADER_BYTES];
    stream.read_exact(&mut header).await?;
    let parsed = frame::read_header(&header)?;
    if parsed.payload_bytes > max_payload_bytes {
        return Err(FrameError::TooLarge(parsed.payload_bytes).into());
    }
    let mut bytes = vec![0u8; parsed.frame_bytes()];
    bytes[..FRAME_HEADER_BYTES].copy_from_slice(&header);
    stream.read_exact(&mut bytes[FRAME_HEADER_BYTES..]).await?;
    Ok(bytes)
}

/// Writes one frame and flushes it.
pub async fn write_frame(stream: &mut TcpStream, bytes: &[u8]) -> Result<(), TransportError> {
    stream.write_all(bytes).await?;
    stream.flush().await?;
    Ok(())
}

/// Binds the controller listener. Unlike the Kafka listener (one socket per
/// shard with SO_REUSEPORT), exactly one socket may own this address, so a
/// second node configured with the same port fails here instead of silently
/// sharing it.
pub fn bind_listener(address: SocketAddr) -> std::io::Result<TcpListener> {
    let listener = std::net::TcpListener::bind(address)?;
    listener.set_nonblocking(true)?;
    // SAFETY: the descriptor comes from a listening socket we own and hand
    // over whole; nothing else keeps or closes it.
    Ok(unsafe { TcpListener::from_raw_fd(listener.into_raw_fd()) })
}

/// Connects to a voter and introduces this node; bounded by
/// `HANDSHAKE_TIMEOUT`.
pub async fn connect(address: &str, hello: &Hello) -> Result<TcpStream, TransportError> {
    let handshake = async {
        let mut stream = TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        write_frame(&mut stream, &frame::encode(KIND_HELLO, hello)?).await?;
        let answer = read_frame(&mut stream).await?;
        let accepted: Hello = frame::decode(KIND_HELLO_ACCEPTED, &answer)?;
        accepted.check_wire_version()?;
        tracing::debug!(peer = accepted.node_id, "quorum connection established");
        Ok::<_, TransportError>(stream)
    };
    GlommioRuntime::timeout(HANDSHAKE_TIMEOUT, handshake)
        .await
        .map_err(|_| TransportError::TimedOut(HANDSHAKE_TIMEOUT))?
}

/// The listener's side of the handshake: reads the peer's `Hello`, checks it
/// with `admit`, answers with this node's own `Hello`.
pub async fn accept_handshake(
    stream: &mut TcpStream,
    ours: &Hello,
    admit: impl Fn(&Hello) -> Result<(), TransportError>,
) -> Result<Hello, TransportError> {
    let first = GlommioRuntime::timeout(
        HANDSHAKE_TIMEOUT,
        read_frame_within(stream, MAX_HELLO_FRAME_BYTES),
    )
    .await
    .map_err(|_| TransportError::TimedOut(HANDSHAKE_TIMEOUT))??;
    let theirs: Hello = frame::decode(KIND_HELLO, &first)?;
    theirs.check_wire_version()?;
    admit(&theirs)?;
    write_frame(stream, &frame::encode(KIND_HELLO_ACCEPTED, ours)?).await?;
    Ok(theirs)
}

/// The usual admission rule: two known cluster ids must be equal; voters
/// may make Raft calls, any other node of the cluster only control calls
/// (`network::PeerRole`).
pub fn admit_peer(
    voters: &[u64],
    our_cluster_id: &str,
    hello: &Hello,
) -> Result<PeerRole, TransportError> {
    admit_cluster(our_cluster_id, hello)?;
    Ok(if voters.contains(&hello.node_id) {
        PeerRole::Voter
    } else {
        PeerRole::Broker
    })
}

/// Admits voters only (a quorum without brokers: the quorum's own tests).
pub fn admit_voter(
    voters: &[u64],
    our_cluster_id: &str,
    hello: &Hello,
) -> Result<PeerRole, TransportError> {
    if !voters.contains(&hello.node_id) {
        return Err(TransportError::NotAVoter(hello.node_id));
    }
    admit_cluster(our_cluster_id, hello)?;
    Ok(PeerRole::Voter)
}

fn admit_cluster(our_cluster_id: &str, hello: &Hello) -> Result<(), TransportError> {
    if !our_cluster_id.is_empty()
        && !hello.cluster_id.is_empty()
        && our_cluster_id != hello.cluster_id
    {
        return Err(TransportError::ClusterIdMismatch {
            node_id: hello.node_id,
            ours: our_cluster_id.to_owned(),
            theirs: hello.cluster_id.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_of_another_build_is_refused_at_the_handshake() {
        let ours = Hello::new(1, "cluster".into());
        assert!(ours.check_wire_version().is_ok());
        let other_build = Hello {
            wire_version: WIRE_VERSION + 1,
            ..ours.clone()
        };
        let refusal = other_build.check_wire_version().expect_err("refused");
        assert!(
            refusal.to_string().contains("same corelog release"),
            "{refusal}"
        );
        // Its Hello still decodes (the check needs its node id for the message).
        let bytes = frame::encode(KIND_HELLO, &other_build).expect("encodes");
        let decoded: Hello = frame::decode(KIND_HELLO, &bytes).expect("decodes");
        assert_eq!(decoded, other_build);
    }
}
