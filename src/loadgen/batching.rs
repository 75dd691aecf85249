//! One bench producer's record batches, one per partition, shaped so that a
//! scheduling pass costs what it touches, not what the topic has: with
//! 10,000 partitions the producer used to sum every batch's length and scan
//! every batch for linger on each pass, and that saturated its core.
//!
//! - A count of buffered messages replaces the sum.
//! - A queue of the batches holding messages, in the order they received
//!   their first message, replaces the linger scan. Due times only grow
//!   (open-loop schedules hand them out in order; closed loop stamps the
//!   clock), so that order is also the order of linger deadlines and the
//!   queue's front is always the next batch to linger. A batch sent early
//!   (full) leaves a stale entry behind, recognised by its serial number and
//!   skipped when it reaches the front; a linger period bounds how many
//!   there are.
//! - Batch buffers are allocated when a partition gets its first message,
//!   not up front (129 KiB x 10,000 partitions x 2 producers was 2.6 GB).
//!   Without idempotence a sent batch's builder goes back to a small spare
//!   pool for the next partition that needs one. An idempotent builder
//!   carries its partition's sequence numbers (`BatchBuilder` numbers its
//!   batches itself), so it stays with its partition once created.
//!
//! Lives on one load-generator core, owned by its producer task; plain data,
//! no I/O.

use std::collections::VecDeque;

use bytes::Bytes;

use super::cluster::PartitionLeader;
use super::scenario::CompressionCodec;
use crate::client::batch_builder::BatchBuilder;

/// First capacity of a new batch buffer: a partition of a keyed, low-rate
/// workload holds a few messages per linger, so buffers start small and
/// grow (by doubling) only in partitions that fill them.
const FIRST_BUFFER_BYTES: usize = 16 * 1024;
/// Spare builders kept for reuse: enough for the batches a producer sends
/// between two scheduling passes at max rate (one per request in flight and
/// then some), few enough to stay near 8 MiB with 128 KiB batches.
const SPARE_BUILDERS_MAX: usize = 64;
/// Bounds the due-time list reserved for a new batch (messages per batch
/// estimate), so a tiny message size cannot reserve megabytes.
const DUE_TIMES_RESERVED_MAX: usize = 1024;

/// One partition's open batch.
struct PartitionBatch {
    target: PartitionLeader,
    /// `None` until the partition gets a message (and again after a send,
    /// without idempotence).
    builder: Option<BatchBuilder>,
    /// Due time of each message in the batch, in order.
    due_ns: Vec<u64>,
    /// Key and value bytes of the batch's messages.
    payload_bytes: u64,
    /// Payload sequence of the partition's next message.
    next_sequence: u64,
    /// Batches started so far; names the current one in the linger queue.
    serial: u64,
}

/// A queued batch: partition index, its serial, its first due time.
#[derive(Debug, Clone, Copy)]
struct Lingering {
    index: usize,
    serial: u64,
    first_due_ns: u64,
}

/// A finished batch, ready for a Produce request.
pub struct SealedBatch {
    /// Partition index (see [`Batches::target`]).
    pub index: usize,
    pub records: Bytes,
    pub due_ns: Vec<u64>,
    pub payload_bytes: u64,
}

/// Every partition's batch of one producer.
pub struct Batches {
    partitions: Vec<PartitionBatch>,
    buffered_messages: usize,
    /// Batches holding messages (and stale entries), by first due time.
    lingering: VecDeque<Lingering>,
    spare_builders: Vec<BatchBuilder>,
    codec: CompressionCodec,
    /// Producer id and epoch when idempotent.
    idempotence: Option<(i64, i16)>,
    first_buffer_bytes: usize,
    due_times_reserved: usize,
}

impl Batches {
    /// Empty batches for `targets`; `messages_per_batch` sizes each batch's
    /// list of due times.
    pub fn new(
        targets: &[PartitionLeader],
        codec: CompressionCodec,
        batch_size_bytes: usize,
        messages_per_batch: usize,
    ) -> Batches {
        Batches {
            partitions: targets
                .iter()
                .map(|target| PartitionBatch {
                    target: target.clone(),
                    builder: None,
                    due_ns: Vec::new(),
                    payload_bytes: 0,
                    next_sequence: 0,
                    serial: 0,
                })
                .collect(),
            buffered_messages: 0,
            lingering: VecDeque::new(),
            spare_builders: Vec::new(),
            codec,
            idempotence: None,
            first_buffer_bytes: FIRST_BUFFER_BYTES.min(batch_size_bytes + 1024),
            due_times_reserved: messages_per_batch.clamp(1, DUE_TIMES_RESERVED_MAX),
        }
    }

    /// Numbers every batch from now on for this producer id and epoch. Call
    /// before the first message.
    pub fn set_idempotent(&mut self, producer_id: i64, producer_epoch: i16) {
        assert_eq!(self.buffered_messages, 0, "idempotence set mid-run");
        self.idempotence = Some((producer_id, producer_epoch));
    }

    pub fn partition_count(&self) -> usize {
        self.partitions.len()
    }

    pub fn target(&self, index: usize) -> &PartitionLeader {
        &self.partitions[index].target
    }

    /// Messages held in all batches, not yet sent.
    pub fn buffered_messages(&self) -> usize {
        self.buffered_messages
    }

    pub fn is_empty(&self, index: usize) -> bool {
        self.partitions[index].due_ns.is_empty()
    }

    /// Uncompressed record bytes in partition `index`'s batch.
    pub fn records_bytes(&self, index: usize) -> usize {
        self.partitions[index]
            .builder
            .as_ref()
            .map_or(0, BatchBuilder::records_bytes)
    }

    /// The payload sequence for partition `index`'s next message (and
    /// counts it as used).
    pub fn take_sequence(&mut self, index: usize) -> u64 {
        let partition = &mut self.partitions[index];
        let sequence = partition.next_sequence;
        partition.next_sequence += 1;
        sequence
    }

    /// Appends one message, due at `due_ns`, to partition `index`'s batch.
    pub fn push(
        &mut self,
        index: usize,
        due_ns: u64,
        timestamp_ms: i64,
        key: Option<&[u8]>,
        value: &[u8],
    ) {
        let partition = &mut self.partitions[index];
        if partition.due_ns.is_empty() {
            debug_assert!(
                self.lingering
                    .back()
                    .is_none_or(|last| last.first_due_ns <= due_ns),
                "due times go backwards: the linger queue would be out of order"
            );
            partition.serial += 1;
            partition.due_ns.reserve(self.due_times_reserved);
            self.lingering.push_back(Lingering {
                index,
                serial: partition.serial,
                first_due_ns: due_ns,
            });
        }
        let builder = partition.builder.get_or_insert_with(|| {
            self.spare_builders.pop().unwrap_or_else(|| {
                let mut builder = BatchBuilder::new(self.codec, self.first_buffer_bytes);
                if let Some((producer_id, producer_epoch)) = self.idempotence {
                    builder.set_idempotent(producer_id, producer_epoch);
                }
                builder
            })
        });
        builder.push(timestamp_ms, key, value);
        partition.due_ns.push(due_ns);
        partition.payload_bytes += (key.map_or(0, <[u8]>::len) + value.len()) as u64;
        self.buffered_messages += 1;
    }

    /// Finishes partition `index`'s batch (which must hold messages) and
    /// empties it.
    pub fn seal(&mut self, index: usize) -> anyhow::Result<SealedBatch> {
        let partition = &mut self.partitions[index];
        assert!(!partition.due_ns.is_empty(), "sealing an empty batch");
        let Some(builder) = partition.builder.as_mut() else {
            unreachable!("a batch holding messages has a builder");
        };
        debug_assert_eq!(builder.len(), partition.due_ns.len());
        let records = builder.finish()?;
        if self.idempotence.is_none() {
            if let Some(builder) = partition.builder.take() {
                if self.spare_builders.len() < SPARE_BUILDERS_MAX {
                    self.spare_builders.push(builder);
                }
            }
        }
        let due_ns = std::mem::take(&mut partition.due_ns);
        self.buffered_messages -= due_ns.len();
        Ok(SealedBatch {
            index,
            records,
            due_ns,
            payload_bytes: std::mem::replace(&mut partition.payload_bytes, 0),
        })
    }

    /// Drops queue entries of batches already sent from the front.
    fn skip_stale(&mut self) {
        while let Some(front) = self.lingering.front() {
            let partition = &self.partitions[front.index];
            if partition.serial == front.serial && !partition.due_ns.is_empty() {
                return;
            }
            self.lingering.pop_front();
        }
    }

    /// When the oldest batch lingers out, if any batch holds messages.
    pub fn next_linger_ns(&mut self, linger_ns: u64) -> Option<u64> {
        self.skip_stale();
        self.lingering
            .front()
            .map(|front| front.first_due_ns.saturating_add(linger_ns))
    }

    /// Moves the partitions whose batch has lingered `linger_ns` by `now_ns`
    /// out of the queue into `lingered`, oldest first.
    pub fn take_lingered(&mut self, now_ns: u64, linger_ns: u64, lingered: &mut Vec<usize>) {
        while let Some(deadline) = self.next_linger_ns(linger_ns) {
            if deadline > now_ns {
                return;
            }
            if let Some(front) = self.lingering.pop_front() {
                lingered.push(front.index);
            }
        }
    }

    /// Every partition holding messages, oldest batch first (for the final
    /// flush).
    pub fn take_all(&mut self, lingered: &mut Vec<usize>) {
        self.take_lingered(u64::MAX, 0, lingered);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(count: i32) -> Vec<PartitionLeader> {
        (0..count)
            .map(|partition| PartitionLeader {
                topic: "t".into(),
                partition,
                leader: partition % 2,
            })
            .collect()
    }

    fn batches(count: i32) -> Batches {
        Batches::new(&targets(count), CompressionCodec::None, 1024, 8)
    }

    #[test]
    fn counts_buffered_messages_across_pushes_and_seals() {
        let mut batches = batches(4);
        batches.push(1, 10, 0, None, b"a");
        batches.push(1, 11, 0, None, b"b");
        batches.push(3, 12, 0, Some(b"k"), b"c");
        assert_eq!(batches.buffered_messages(), 3);
        let sealed = batches.seal(1).expect("sealed");
        assert_eq!(sealed.due_ns, vec![10, 11]);
        assert_eq!(sealed.payload_bytes, 2);
        assert_eq!(batches.target(sealed.index).partition, 1);
        assert_eq!(batches.buffered_messages(), 1);
        assert!(batches.is_empty(1));
        assert_eq!(batches.records_bytes(1), 0);
    }

    #[test]
    fn lingered_batches_leave_in_first_due_order_and_sent_ones_are_skipped() {
        let mut batches = batches(5);
        batches.push(4, 100, 0, None, b"a");
        batches.push(2, 150, 0, None, b"b");
        batches.push(4, 160, 0, None, b"c");
        batches.push(0, 200, 0, None, b"d");
        assert_eq!(batches.next_linger_ns(50), Some(150));
        // Partition 4 fills and is sent early: its entry goes stale.
        batches.seal(4).expect("sealed");
        assert_eq!(batches.next_linger_ns(50), Some(200));
        // Partition 4 starts a new batch, behind the others.
        batches.push(4, 210, 0, None, b"e");
        let mut lingered = Vec::new();
        batches.take_lingered(199, 50, &mut lingered);
        assert!(lingered.is_empty(), "nothing lingers before 150 + 50");
        batches.take_lingered(255, 50, &mut lingered);
        assert_eq!(lingered, vec![2, 0]);
        for &index in &lingered {
            batches.seal(index).expect("sealed");
        }
        lingered.clear();
        batches.take_all(&mut lingered);
        assert_eq!(lingered, vec![4]);
        assert_eq!(batches.next_linger_ns(50), None);
    }

    #[test]
    fn builders_are_made_on_first_message_and_reused_after_a_send() {
        let mut batches = batches(1000);
        assert!(batches.spare_builders.is_empty());
        assert!(batches.partitions.iter().all(|p| p.builder.is_none()));
        batches.push(7, 1, 0, None, b"x");
        batches.seal(7).expect("sealed");
        assert!(batches.partitions[7].builder.is_none());
        assert_eq!(batches.spare_builders.len(), 1);
        batches.push(8, 2, 0, None, b"y");
        assert!(batches.spare_builders.is_empty(), "the spare one was taken");
    }

    #[test]
    fn idempotent_builders_stay_with_their_partition() {
        let mut batches = batches(2);
        batches.set_idempotent(42, 0);
        batches.push(0, 1, 0, None, b"x");
        batches.seal(0).expect("sealed");
        assert!(batches.partitions[0].builder.is_some());
        assert!(batches.spare_builders.is_empty());
    }

    #[test]
    fn sequences_count_per_partition() {
        let mut batches = batches(2);
        assert_eq!(batches.take_sequence(0), 0);
        assert_eq!(batches.take_sequence(0), 1);
        assert_eq!(batches.take_sequence(1), 0);
    }
}
