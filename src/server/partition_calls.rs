//! The data plane's calls: what any shard asks of a partition's owner
//! (append, read, wait for data, offset lookups) and the typed reply of
//! each. Plain `Send` data (owned bytes, `Arc` names) with no dependency on
//! `Shard` or on any control-plane module: the calls cross cores over the
//! mesh today and will cross nodes once the cluster exists (see
//! `routing`). How each runs on the owner is in `partition_ops` (produce,
//! read, list offsets) and `fetch` (wait for data).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::log::free_space::DiskFull;
use crate::log::AbortedTransaction;
use crate::protocol::errors::KafkaError;

/// Validated batches for one partition, for its owner.
#[derive(Debug)]
pub struct ProducePart {
    pub topic: Arc<str>,
    pub partition: i32,
    pub batches: Vec<Bytes>,
}

/// Append these parts (all owned by the callee), then answer per part, in
/// order, once `acks` is satisfied. The appends start synchronously when
/// the call starts, so calls keep their order per partition.
#[derive(Debug)]
pub struct ProduceCall {
    pub parts: Vec<ProducePart>,
    pub acks: i16,
    /// How long acks=all may wait for the in-sync replicas (Produce
    /// `timeout_ms`): REQUEST_TIMED_OUT after it.
    pub timeout_ms: i32,
}

/// One partition read, for its owner.
#[derive(Debug, Clone)]
pub struct ReadPart {
    pub topic: Arc<str>,
    pub partition: i32,
    pub fetch_offset: i64,
    pub max_bytes: usize,
    /// Fetch isolation_level=1: only up to the last stable offset, with the
    /// aborted transactions of the range.
    pub read_committed: bool,
    /// The leader epoch the consumer believes current (Fetch v9+, KIP-320);
    /// -1 unchecked.
    pub current_leader_epoch: i32,
    /// A follower's broker id (Fetch `replica_id` / `ReplicaState`), or -1
    /// for a consumer.
    pub replica_id: i32,
    /// A follower's epoch of its last record (Fetch v12+), -1 unknown.
    pub last_fetched_epoch: i32,
}

impl ReadPart {
    /// Whether a follower replica is fetching.
    pub fn from_follower(&self) -> bool {
        self.replica_id >= 0
    }
}

/// Read these parts now, no waiting; one [`ReadOutcome`] per part, in order.
#[derive(Debug)]
pub struct ReadCall(pub Vec<ReadPart>);

/// Answer when any of these partitions has data past its fetch offset, or
/// after `timeout`.
#[derive(Debug)]
pub struct WaitForDataCall {
    pub parts: Vec<ReadPart>,
    pub timeout: Duration,
}

/// ListOffsets lookups; one [`OffsetOutcome`] per query, in order.
#[derive(Debug)]
pub struct ListOffsetsCall(pub Vec<OffsetQuery>);

/// Per-partition result of a produce, in Kafka's response terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProduceOutcome {
    pub error_code: i16,
    pub base_offset: i64,
    pub log_append_time_ms: i64,
    pub log_start_offset: i64,
    /// Set when the free-space guard refused the append (the error code is
    /// then KAFKA_STORAGE_ERROR): the response's error message (v8+).
    pub disk_full: Option<DiskFull>,
}

impl ProduceOutcome {
    pub fn error(code: i16) -> ProduceOutcome {
        ProduceOutcome {
            error_code: code,
            base_offset: -1,
            log_append_time_ms: -1,
            log_start_offset: -1,
            disk_full: None,
        }
    }

    /// Refused by the free-space guard: nothing was appended.
    pub fn disk_full(full: DiskFull) -> ProduceOutcome {
        ProduceOutcome {
            disk_full: Some(full),
            ..ProduceOutcome::error(KafkaError::KafkaStorageError.code())
        }
    }
}

/// Per-partition result of a read.
#[derive(Debug, Clone, Default)]
pub struct ReadOutcome {
    pub error_code: i16,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    pub batches: Vec<Bytes>,
    /// Only for read_committed reads.
    pub aborted_transactions: Vec<AbortedTransaction>,
    /// For a follower whose log diverges: where its last epoch ends on the
    /// leader, `(epoch, end offset)`, and no batches.
    pub diverging_epoch: Option<(i32, i64)>,
}

impl ReadOutcome {
    pub fn error(code: i16) -> ReadOutcome {
        ReadOutcome {
            error_code: code,
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            batches: Vec::new(),
            aborted_transactions: Vec::new(),
            diverging_epoch: None,
        }
    }
    pub fn total_bytes(&self) -> usize {
        self.batches.iter().map(Bytes::len).sum()
    }
}

/// One ListOffsets lookup: `timestamp` is a time or one of Kafka's specials
/// (-1 latest, -2 earliest, -3 max timestamp, -4 earliest local, -5 earliest pending upload).
#[derive(Debug, Clone)]
pub struct OffsetQuery {
    pub topic: Arc<str>,
    pub partition: i32,
    pub timestamp: i64,
    /// isolation_level=1: "latest" is the last stable offset.
    pub read_committed: bool,
    /// The leader epoch the client believes current (v4+); -1 unchecked.
    pub current_leader_epoch: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetOutcome {
    pub error_code: i16,
    pub timestamp: i64,
    pub offset: i64,
    /// The partition's current leader epoch (-1 with an error).
    pub leader_epoch: i32,
}

/// OffsetForLeaderEpoch lookups; one [`EpochOutcome`] per query, in order.
pub struct EndOffsetForEpochCall(pub Vec<EpochQuery>);

/// One OffsetForLeaderEpoch partition: where `leader_epoch` ends, asked by
/// a client (or follower) that believes the leader is at
/// `current_leader_epoch` (-1: unchecked).
#[derive(Debug, Clone)]
pub struct EpochQuery {
    pub topic: Arc<str>,
    pub partition: i32,
    pub current_leader_epoch: i32,
    pub leader_epoch: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochOutcome {
    pub error_code: i16,
    pub leader_epoch: i32,
    pub end_offset: i64,
}

impl EpochOutcome {
    pub fn error(code: i16) -> EpochOutcome {
        EpochOutcome {
            error_code: code,
            leader_epoch: -1,
            end_offset: -1,
        }
    }
}

impl OffsetOutcome {
    pub fn error(code: i16) -> OffsetOutcome {
        OffsetOutcome {
            error_code: code,
            timestamp: -1,
            offset: -1,
            leader_epoch: -1,
        }
    }
}
