//! Messages between shards: what one shard asks of another over the mesh
//! (`runtime::mesh`) and what comes back, and the receiving side's dispatch.
//! Every payload is `Send` (owned bytes, `Arc` metadata) because it crosses
//! cores; nothing here is shared mutable state.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
};

use super::admin::TopicSpec;
use super::delete_records::{self, DeleteRecordsItem, DeleteRecordsOutcome};
use super::groups::{self, GroupAnswer, GroupCall, ListGroupsFilter, ListedGroup};
use super::partition_ops::{self, OffsetOutcome, OffsetQuery, ProduceOutcome, ReadOutcome};
use super::shard::Shard;
use super::topic_changes::{self, TopicChange, TopicChangeAnswer};
use super::txn::markers::Marker;
use super::txn::{self, ListFilter, ListedTransaction, TxnAnswer, TxnCall};
use super::{admin, fetch, producer_ids};
use crate::metadata::catalog::{Catalog, TopicMetadata};

/// Validated batches for one partition, forwarded to its owner.
#[derive(Debug)]
pub struct ProducePart {
    pub topic: Arc<str>,
    pub partition: i32,
    pub batches: Vec<Bytes>,
}

/// One partition read, forwarded to its owner.
#[derive(Debug, Clone)]
pub struct ReadPart {
    pub topic: Arc<str>,
    pub partition: i32,
    pub fetch_offset: i64,
    pub max_bytes: usize,
    /// Fetch isolation_level=1: only up to the last stable offset, with the
    /// aborted transactions of the range.
    pub read_committed: bool,
}

/// A request from one shard to another.
pub enum ShardRequest {
    /// Controller -> every shard: replace your metadata image.
    ApplyCatalog(Arc<Catalog>),
    /// Controller -> owner: open (creating) these partition logs.
    OpenPartitions {
        topic: Arc<TopicMetadata>,
        partitions: Vec<i32>,
    },
    /// Controller -> owner: close and delete these partition logs.
    DeletePartitions {
        topic: Arc<str>,
        partitions: Vec<i32>,
    },
    /// Any shard -> controller.
    CreateTopics {
        request: CreateTopicsRequest,
        version: i16,
    },
    /// Any shard -> controller.
    DeleteTopics {
        request: DeleteTopicsRequest,
        version: i16,
    },
    /// Any shard -> controller: create a topic with broker defaults
    /// (auto-creation, internal topics); answered with `AutoCreated`.
    AutoCreateTopic(TopicSpec),
    /// Any shard -> the coordinator shard of a group (owner of the group's
    /// offsets partition).
    Group { partition: i32, call: GroupCall },
    /// Any shard -> every shard: the groups it coordinates (ListGroups).
    ListGroups(ListGroupsFilter),
    /// Any shard -> controller: AlterConfigs, IncrementalAlterConfigs,
    /// CreatePartitions.
    TopicChange(TopicChange),
    /// Any shard -> owner: DeleteRecords.
    DeleteRecords(Vec<DeleteRecordsItem>),
    /// Any shard -> owner: append, then answer when `acks` is satisfied.
    Produce { parts: Vec<ProducePart>, acks: i16 },
    /// Any shard -> owner: read now, no waiting.
    Read(Vec<ReadPart>),
    /// Any shard -> owner: answer when any of these partitions has data past
    /// the given offset, or after `timeout`.
    WaitForData {
        parts: Vec<ReadPart>,
        timeout: Duration,
    },
    /// Any shard -> owner: ListOffsets lookups.
    ListOffsets(Vec<OffsetQuery>),
    /// Any shard -> controller: a block of producer ids.
    AllocateProducerIds,
    /// Any shard -> the coordinator shard of a transactional id (owner of
    /// its `__transaction_state` partition).
    Txn { partition: i32, call: TxnCall },
    /// Any shard -> every shard: the transactions it coordinates.
    ListTransactions(ListFilter),
    /// Coordinator -> owner: append this marker to these partitions and
    /// answer per partition once durable.
    WriteMarkers {
        marker: Marker,
        partitions: Vec<(String, i32)>,
    },
}

/// The answer to a `ShardRequest`.
pub enum ShardReply {
    Done,
    CreateTopics(CreateTopicsResponse),
    DeleteTopics(DeleteTopicsResponse),
    /// Auto-create result: Kafka error code (0 = created or already there).
    AutoCreated(i16),
    Produced(Vec<ProduceOutcome>),
    Read(Vec<ReadOutcome>),
    Offsets(Vec<OffsetOutcome>),
    Group(GroupAnswer),
    ListedGroups(Vec<ListedGroup>),
    TopicChange(TopicChangeAnswer),
    RecordsDeleted(Vec<DeleteRecordsOutcome>),
    /// `[start, end)` of a producer id block, or the error code.
    ProducerIds(Result<(i64, i64), i16>),
    Txn(TxnAnswer),
    ListedTransactions(Vec<ListedTransaction>),
    /// Per-partition error codes of `WriteMarkers`, in request order.
    MarkersWritten(Vec<i16>),
}

/// Entry point of the mesh receive loops on the owning shard. Called
/// synchronously in arrival order: produce appends happen here, before any
/// `.await`, which keeps the sender's per-partition order.
pub fn handle_shard_request(shard: &Rc<Shard>, from: usize, id: u64, request: ShardRequest) {
    if let ShardRequest::Produce { parts, acks } = request {
        let appended = partition_ops::append_parts(shard, parts);
        let shard = Rc::clone(shard);
        glommio::spawn_local(async move {
            let outcomes = partition_ops::await_acks(&shard, appended, acks).await;
            shard.reply(from, id, ShardReply::Produced(outcomes)).await;
        })
        .detach();
        return;
    }
    let shard = Rc::clone(shard);
    glommio::spawn_local(async move {
        let reply = match request {
            ShardRequest::ApplyCatalog(catalog) => {
                shard.apply_catalog(catalog);
                ShardReply::Done
            }
            ShardRequest::OpenPartitions { topic, partitions } => {
                shard.open_partitions(&topic, &partitions).await;
                ShardReply::Done
            }
            ShardRequest::DeletePartitions { topic, partitions } => {
                shard.delete_partitions(&topic, &partitions).await;
                ShardReply::Done
            }
            ShardRequest::CreateTopics { request, version } => ShardReply::CreateTopics(
                admin::create_topics_on_controller(&shard, request, version).await,
            ),
            ShardRequest::DeleteTopics { request, version } => ShardReply::DeleteTopics(
                admin::delete_topics_on_controller(&shard, request, version).await,
            ),
            ShardRequest::AutoCreateTopic(spec) => {
                ShardReply::AutoCreated(admin::auto_create_on_controller(&shard, spec).await)
            }
            ShardRequest::Group { partition, call } => {
                ShardReply::Group(groups::coordinate(&shard, partition, call).await)
            }
            ShardRequest::ListGroups(filter) => {
                ShardReply::ListedGroups(groups::list_local_groups(&shard, &filter))
            }
            ShardRequest::TopicChange(change) => {
                ShardReply::TopicChange(topic_changes::run_on_controller(&shard, change).await)
            }
            ShardRequest::DeleteRecords(items) => {
                ShardReply::RecordsDeleted(delete_records::delete_local(&shard, &items).await)
            }
            ShardRequest::Produce { .. } => unreachable!("handled above"),
            ShardRequest::Read(parts) => {
                ShardReply::Read(partition_ops::read_parts(&shard, &parts).await)
            }
            ShardRequest::WaitForData { parts, timeout } => {
                fetch::wait_for_local_data(&shard, &parts, timeout).await;
                ShardReply::Done
            }
            ShardRequest::ListOffsets(queries) => {
                ShardReply::Offsets(partition_ops::list_offsets(&shard, &queries).await)
            }
            ShardRequest::AllocateProducerIds => {
                ShardReply::ProducerIds(producer_ids::allocate_block_on_controller(&shard).await)
            }
            ShardRequest::Txn { partition, call } => {
                ShardReply::Txn(txn::coordinator::coordinate(&shard, partition, call).await)
            }
            ShardRequest::ListTransactions(filter) => {
                ShardReply::ListedTransactions(txn::coordinator::list_local(&shard, &filter))
            }
            ShardRequest::WriteMarkers { marker, partitions } => ShardReply::MarkersWritten(
                txn::markers::write_local(&shard, marker, &partitions).await,
            ),
        };
        shard.reply(from, id, reply).await;
    })
    .detach();
}
