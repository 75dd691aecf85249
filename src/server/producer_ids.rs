//! InitProducerId for idempotent producers (KIP-98; the Java client enables
//! idempotence by default since 3.0). Any shard answers: ids are made unique
//! without coordination by mixing the wall clock, the shard id and a
//! per-millisecond counter, and are monotonic per shard. Transactions
//! (a transactional id) are not supported and are refused.

use std::rc::Rc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::partition_ops::now_ms;
use super::shard::Shard;
use crate::protocol::errors::KafkaError;

/// Ids per shard per millisecond before the id clock runs ahead of the wall clock.
const IDS_PER_MILLISECOND: i64 = 1024;
/// Shards the id layout leaves room for.
const SHARD_SLOTS: i64 = 64;

/// A fresh producer id: `((millis * 64 + shard) * 1024 + counter)`, never
/// below the last one this shard handed out, so ids stay unique across
/// restarts as long as the clock does not go back further than it ran ahead.
pub fn allocate_producer_id(shard: &Shard, now_ms: i64) -> i64 {
    let shard_slot = (shard.id as i64) % SHARD_SLOTS;
    let from_clock = (now_ms.max(0) * SHARD_SLOTS + shard_slot) * IDS_PER_MILLISECOND;
    let last = shard.last_producer_id.get();
    let next = if from_clock > last {
        from_clock
    } else if (last + 1) % IDS_PER_MILLISECOND == 0 {
        // This millisecond's counter is used up: borrow the next millisecond.
        last + 1 + (SHARD_SLOTS - 1) * IDS_PER_MILLISECOND
    } else {
        last + 1
    };
    shard.last_producer_id.set(next);
    next
}

pub fn handle_init_producer_id(
    shard: &Rc<Shard>,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    if request.transactional_id.is_some() {
        // No transaction coordinator: say so rather than pretend.
        return InitProducerIdResponse::default()
            .with_error_code(KafkaError::TransactionalIdAuthorizationFailed.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
    }
    // KIP-360: a producer that hit an error re-initialises with its id and
    // epoch and gets the same id with the next epoch.
    let (producer_id, epoch) = if request.producer_id.0 >= 0 && request.producer_epoch >= 0 {
        if request.producer_epoch < i16::MAX - 1 {
            (request.producer_id.0, request.producer_epoch + 1)
        } else {
            (allocate_producer_id(shard, now_ms()), 0)
        }
    } else {
        (allocate_producer_id(shard, now_ms()), 0)
    };
    InitProducerIdResponse::default()
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(epoch)
}
