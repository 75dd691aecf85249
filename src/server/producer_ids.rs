//! Producer ids (KIP-98): unique for the life of the data directory (of
//! the cluster, when there is one: blocks then come from the active
//! controller), across restarts. The controller shard hands out blocks of ids (Kafka's
//! `ProducerIdManager`, blocks of 1000) and durably records the end of the
//! last block it gave before answering; every shard takes ids from its
//! current block and asks for a new block when it runs out. A restart
//! continues after the recorded end, so ids left unused in a block are
//! skipped, never reused.
//!
//! Also the InitProducerId handler for idempotent producers (no
//! transactional id); transactional ids go to their transaction
//! coordinator (`server::txn`).

use std::cell::Cell;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use futures::future::LocalBoxFuture;
use futures::FutureExt;

use super::routing::{self, ShardCall};
use super::shard::{Shard, CONTROLLER_SHARD};
use crate::cluster::control::{ControlOutcome, ControlRequest};
use crate::protocol::errors::KafkaError;
use crate::runtime::durable_file;

/// Ids per block, as Kafka's `ProducerIdManager.PidBlockSize`.
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;
/// File under the data dir recording the first id of the next block.
const NEXT_BLOCK_FILE: &str = "__producer_ids";
const FILE_MAGIC: &[u8; 4] = b"CLPI";

/// A shard's current block: `[next, end)`.
pub struct ProducerIdBlock {
    /// On the controller: one block allocation at a time.
    allocation: glommio::sync::Semaphore,
    next: Cell<i64>,
    end: Cell<i64>,
    /// The controller's view: first id of the next block (-1 until loaded).
    controller_next_block: Cell<i64>,
}

impl Default for ProducerIdBlock {
    fn default() -> Self {
        ProducerIdBlock {
            allocation: glommio::sync::Semaphore::new(1),
            next: Cell::new(0),
            end: Cell::new(0),
            controller_next_block: Cell::new(-1),
        }
    }
}

fn block_file(data_dir: &Path) -> PathBuf {
    data_dir.join(NEXT_BLOCK_FILE)
}

/// `magic, next block start (i64 BE), crc32c of the 12 bytes before`.
fn encode_next_block(next_block: i64) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(16);
    bytes.extend_from_slice(FILE_MAGIC);
    bytes.extend_from_slice(&next_block.to_be_bytes());
    let crc = crc32c::crc32c(&bytes);
    bytes.extend_from_slice(&crc.to_be_bytes());
    bytes
}

fn decode_next_block(bytes: &[u8]) -> Option<i64> {
    if bytes.len() != 16 || &bytes[..4] != FILE_MAGIC {
        return None;
    }
    let crc = u32::from_be_bytes(bytes[12..16].try_into().ok()?);
    if crc32c::crc32c(&bytes[..12]) != crc {
        return None;
    }
    let next = i64::from_be_bytes(bytes[4..12].try_into().ok()?);
    (next >= 0).then_some(next)
}

/// The recorded start of the next block (0 for a new data dir). A corrupt
/// file is an error: guessing could hand out ids already in use.
/// Runs on the controller shard, so it reads with glommio.
pub async fn read_next_block(data_dir: &Path) -> io::Result<i64> {
    // Anything longer than the 16-byte record is corrupt too.
    match durable_file::read_small(&block_file(data_dir), 64).await? {
        Some(bytes) => decode_next_block(&bytes).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is corrupt", block_file(data_dir).display()),
            )
        }),
        None => Ok(0),
    }
}

/// Durably records `next_block` (`runtime::durable_file::replace`).
async fn store_next_block(data_dir: &Path, next_block: i64) -> io::Result<()> {
    durable_file::replace(&block_file(data_dir), encode_next_block(next_block)).await
}

/// Any shard -> controller: a block of producer ids; the reply is `[start,
/// end)` of the block, or the error code.
pub struct AllocateProducerIdsCall;

impl ShardCall<Shard> for AllocateProducerIdsCall {
    type Reply = Result<(i64, i64), i16>;
    fn start(self, shard: &Rc<Shard>) -> LocalBoxFuture<'static, Self::Reply> {
        let shard = Rc::clone(shard);
        async move { allocate_block_on_controller(&shard).await }.boxed_local()
    }
}

/// On the controller: the next block, recorded durably before it is given.
async fn allocate_block_on_controller(shard: &Shard) -> Result<(i64, i64), i16> {
    assert_eq!(
        shard.id, CONTROLLER_SHARD,
        "producer id blocks come from the controller"
    );
    let block = &shard.producer_ids;
    let _permit = block.allocation.acquire_permit(1).await;
    if let Some(cluster) = shard.cluster() {
        return allocate_block_from_cluster(&cluster.node).await;
    }
    let start = if block.controller_next_block.get() >= 0 {
        block.controller_next_block.get()
    } else {
        read_next_block(&shard.config.data_dir)
            .await
            .map_err(|error| {
                tracing::error!(%error, "cannot read the producer id block file");
                KafkaError::UnknownServerError.code()
            })?
    };
    let end = start
        .checked_add(PRODUCER_ID_BLOCK_SIZE)
        .ok_or(KafkaError::UnknownServerError.code())?;
    if let Err(error) = store_next_block(&shard.config.data_dir, end).await {
        tracing::error!(%error, "cannot record the producer id block");
        return Err(KafkaError::KafkaStorageError.code());
    }
    block.controller_next_block.set(end);
    Ok((start, end))
}

/// In a cluster the active controller hands out blocks through the
/// metadata log (Kafka's AllocateProducerIds), so ids are unique across
/// every node and restart.
async fn allocate_block_from_cluster(
    node: &crate::cluster::node::ClusterNode,
) -> Result<(i64, i64), i16> {
    let Some(broker_epoch) = node.broker_epoch() else {
        return Err(KafkaError::CoordinatorNotAvailable.code());
    };
    let request = ControlRequest::AllocateProducerIds {
        broker_id: node.node_id,
        broker_epoch,
    };
    match node.call(request).await {
        Ok((ControlOutcome::ProducerIds { first, size }, _)) => first
            .checked_add(size)
            .map(|end| (first, end))
            .ok_or(KafkaError::UnknownServerError.code()),
        Ok((other, _)) => {
            tracing::error!(
                ?other,
                "the controller answered a producer id block request wrongly"
            );
            Err(KafkaError::UnknownServerError.code())
        }
        Err(error) => {
            tracing::warn!(%error, "no producer id block from the controller");
            Err(match error.kafka_error() {
                KafkaError::NotController | KafkaError::RequestTimedOut => {
                    KafkaError::CoordinatorNotAvailable.code()
                }
                other => other.code(),
            })
        }
    }
}

/// A fresh producer id from this shard's block, fetching a new block from
/// the controller when it is used up.
pub async fn next_producer_id(shard: &Rc<Shard>) -> Result<i64, i16> {
    loop {
        let block = &shard.producer_ids;
        if block.next.get() < block.end.get() {
            let id = block.next.get();
            block.next.set(id + 1);
            return Ok(id);
        }
        let (start, end) =
            match routing::call(shard, CONTROLLER_SHARD, AllocateProducerIdsCall).await {
                Ok(result) => result?,
                Err(_) => return Err(KafkaError::CoordinatorNotAvailable.code()),
            };
        // Another task may have installed a block while this one waited:
        // keep whichever has ids left (the other block's ids stay unused).
        let block = &shard.producer_ids;
        if block.next.get() >= block.end.get() {
            block.next.set(start);
            block.end.set(end);
        }
    }
}

/// InitProducerId without a transactional id: a new producer id with epoch
/// 0, every time (as Kafka: an idempotent producer asking again, KIP-360,
/// also gets a new id).
pub async fn init_idempotent_producer(shard: &Rc<Shard>) -> InitProducerIdResponse {
    match next_producer_id(shard).await {
        Ok(producer_id) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(0),
        Err(code) => failed_init(code),
    }
}

/// An InitProducerId answer carrying only an error.
pub fn failed_init(code: i16) -> InitProducerIdResponse {
    InitProducerIdResponse::default()
        .with_error_code(code)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1)
}

/// InitProducerId: idempotent producers here, transactional ones at their
/// transaction coordinator.
pub async fn handle_init_producer_id(
    shard: &Rc<Shard>,
    request: InitProducerIdRequest,
    version: i16,
) -> InitProducerIdResponse {
    if request.transactional_id.is_some() {
        // An empty id too: the coordinator refuses it (INVALID_REQUEST).
        return super::txn::apis::init_transactional_producer(shard, request, version).await;
    }
    match super::txn::apis::expected_producer(&request, version) {
        Ok(_) => init_idempotent_producer(shard).await,
        Err(code) => failed_init(code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_file_round_trips_and_refuses_garbage() {
        assert_eq!(decode_next_block(&encode_next_block(12_000)), Some(12_000));
        let mut bytes = encode_next_block(5_000);
        bytes[6] ^= 1;
        assert_eq!(decode_next_block(&bytes), None);
        assert_eq!(decode_next_block(b"CLPI"), None);
        assert_eq!(decode_next_block(&[0u8; 16]), None);
    }

    #[test]
    fn missing_file_starts_at_zero() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().to_path_buf();
        crate::runtime::memlock::run_on_test_executor(move || async move {
            assert_eq!(read_next_block(&data_dir).await.expect("read"), 0);
            std::fs::write(data_dir.join(NEXT_BLOCK_FILE), b"garbage").expect("write");
            assert!(read_next_block(&data_dir).await.is_err());
            store_next_block(&data_dir, 7_000).await.expect("store");
            assert_eq!(read_next_block(&data_dir).await.expect("read"), 7_000);
        });
    }
}
