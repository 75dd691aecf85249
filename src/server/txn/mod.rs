//! The transaction coordinator in the server (KIP-98): InitProducerId with a
//! transactional id, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn,
//! WriteTxnMarkers, DescribeTransactions and ListTransactions, routing each
//! transactional id's requests to its coordinator shard, and the per-shard
//! coordinator state.
//!
//! Which cores: a transactional id's coordinator is the shard owning the
//! partition of `__transaction_state` the id hashes to (Kafka's hash); its
//! state lives only there, as a log replayed at start-up. The connection's
//! shard decodes a request and routes a [`TxnCall`] to the coordinator shard
//! ([`CoordinateTxn`] through `server::routing`); the coordinator answers with a
//! [`TxnAnswer`] and the connection's shard shapes the response for the
//! request's version. Markers go from the coordinator to each partition's
//! owner (`markers`).
//!
//! Inside:
//! - `state_topic`: the internal topic, id -> partition, records, replay
//! - `coordinator`: per-shard state and the calls run on the coordinator
//! - `markers`: commit / abort markers to every partition of a transaction
//! - `compaction`: snapshots that keep a state partition short
//! - `verification`: Produce's check that transactional data belongs to a
//!   running transaction (KIP-890)
//! - `timers`: aborting timed-out transactions, expiring idle ids
//! - `apis`: the request handlers on the connection's shard

pub mod apis;
mod compaction;
pub mod coordinator;
pub mod markers;
pub mod state_topic;
pub mod timers;
pub mod verification;

use std::rc::Rc;

use futures::future::LocalBoxFuture;
use futures::FutureExt;

pub use crate::txn::{ListFilter, ListedTransaction};
pub use coordinator::TxnCoordinator;

use crate::protocol::errors::{KafkaError, NONE};
use crate::server::routing::{self, ShardCall};
use crate::server::shard::Shard;

/// One transactional id's part of a request, run on its coordinator shard.
#[derive(Debug, Clone)]
pub enum TxnCall {
    InitProducerId {
        transactional_id: String,
        timeout_ms: i32,
        /// KIP-360: the id and epoch the producer had, if any.
        expected: Option<(i64, i16)>,
    },
    AddPartitions {
        transactional_id: String,
        producer_id: i64,
        producer_epoch: i16,
        partitions: Vec<(String, i32)>,
    },
    /// Which of these partitions are not in the producer's running
    /// transaction (AddPartitionsToTxn v4 `verify_only`, and the check a
    /// partition makes before the first transactional batch, KIP-890).
    Verify {
        transactional_id: String,
        producer_id: i64,
        producer_epoch: i16,
        partitions: Vec<(String, i32)>,
    },
    AddOffsets {
        transactional_id: String,
        producer_id: i64,
        producer_epoch: i16,
        group_id: String,
    },
    EndTxn {
        transactional_id: String,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    },
    Describe {
        transactional_id: String,
    },
}

impl TxnCall {
    pub fn transactional_id(&self) -> &str {
        match self {
            TxnCall::InitProducerId {
                transactional_id, ..
            }
            | TxnCall::AddPartitions {
                transactional_id, ..
            }
            | TxnCall::Verify {
                transactional_id, ..
            }
            | TxnCall::AddOffsets {
                transactional_id, ..
            }
            | TxnCall::EndTxn {
                transactional_id, ..
            }
            | TxnCall::Describe { transactional_id } => transactional_id,
        }
    }
}

/// A transaction as DescribeTransactions reports it.
#[derive(Debug, Clone, Default)]
pub struct DescribedTransaction {
    pub error_code: i16,
    pub state: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub start_timestamp_ms: i64,
    pub partitions: Vec<(String, i32)>,
}

/// The coordinator's answer to a [`TxnCall`].
#[derive(Debug)]
pub enum TxnAnswer {
    /// The coordinator could not take the call (partition not loaded here,
    /// shard stopping): the client looks the coordinator up again.
    Unavailable(i16),
    Initialized {
        error_code: i16,
        producer_id: i64,
        producer_epoch: i16,
    },
    /// AddPartitions, AddOffsets, EndTxn: one error code for the call.
    Code(i16),
    /// Verify: the partitions not in the transaction.
    Missing(Vec<(String, i32)>),
    Described(DescribedTransaction),
}

impl TxnAnswer {
    /// The error code of any answer (Unavailable included).
    pub fn code(&self) -> i16 {
        match self {
            TxnAnswer::Unavailable(code) | TxnAnswer::Code(code) => *code,
            TxnAnswer::Missing(_) => NONE,
            TxnAnswer::Initialized { error_code, .. } => *error_code,
            TxnAnswer::Described(described) => described.error_code,
        }
    }
}

/// Sends `call` to the coordinator of its transactional id (creating the
/// state topic on first use) and returns the answer.
pub async fn route(shard: &Rc<Shard>, call: TxnCall) -> TxnAnswer {
    let topic = match state_topic::ensure(shard).await {
        Ok(topic) => topic,
        Err(code) => return TxnAnswer::Unavailable(code),
    };
    let partition = state_topic::partition_for(call.transactional_id(), topic.partition_count);
    let owner = shard.owner_of(state_topic::TRANSACTION_STATE_TOPIC, partition);
    routing::call(shard, owner, CoordinateTxn { partition, call })
        .await
        .unwrap_or(TxnAnswer::Unavailable(
            KafkaError::CoordinatorNotAvailable.code(),
        ))
}

/// Any shard -> the coordinator shard of a transactional id (the owner of
/// its `__transaction_state` partition `partition`).
pub struct CoordinateTxn {
    pub partition: i32,
    pub call: TxnCall,
}

impl ShardCall<Shard> for CoordinateTxn {
    type Reply = TxnAnswer;
    fn start(self, shard: &Rc<Shard>) -> LocalBoxFuture<'static, TxnAnswer> {
        let shard = Rc::clone(shard);
        async move { coordinator::coordinate(&shard, self.partition, self.call).await }
            .boxed_local()
    }
}

/// Any shard -> every shard: the transactions it coordinates.
#[derive(Clone)]
pub struct ListTransactionsCall(pub ListFilter);

impl ShardCall<Shard> for ListTransactionsCall {
    type Reply = Vec<ListedTransaction>;
    fn start(self, shard: &Rc<Shard>) -> LocalBoxFuture<'static, Vec<ListedTransaction>> {
        let listed = coordinator::list_local(shard, &self.0);
        async move { listed }.boxed_local()
    }
}
