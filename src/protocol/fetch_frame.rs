//! A Fetch response frame whose record batches are not copied: the frame is
//! a list of chunks, the encoded fields in small buffers and every records
//! field of `ZERO_COPY_MIN_BYTES` or more as the `Bytes` the log returned
//! (tail cache or disk read). The connection writes the chunks with one
//! `sendmsg` (`server::connection`). Before, each fetched byte was copied
//! into a frame buffer allocated for the response, and the kernel zeroed
//! those fresh pages first: a third of the broker's CPU at 1,000 partitions.
//!
//! The bytes are exactly what `kafka-protocol` encodes (see the tests, every
//! version 4 to 18). Responses with fields this encoder leaves to the codec
//! (partition tagged fields: a follower's diverging epoch, a current leader,
//! a snapshot id; node endpoints; unknown tagged fields; fields set that the
//! version lacks) return `None`, and the caller encodes them the usual way.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{
    EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, PartitionData, SnapshotId,
};
use kafka_protocol::messages::FetchResponse;

/// Records at least this long are sent from where they are; shorter ones
/// are copied into the surrounding chunk (an iovec costs more than that).
pub const ZERO_COPY_MIN_BYTES: usize = 4096;

/// The first version with flexible fields (compact arrays, tagged fields).
const FLEXIBLE_VERSION: i16 = 12;

/// Encodes a whole response frame (length prefix, header, body) as chunks,
/// or `None` for a response the codec must encode.
pub fn encode_fetch_frame(
    version: i16,
    correlation_id: i32,
    response: &FetchResponse,
) -> Option<Vec<Bytes>> {
    if !(4..=18).contains(&version) || !encodable(version, response) {
        return None;
    }
    let flexible = version >= FLEXIBLE_VERSION;
    let mut frame = FrameChunks::default();
    // The length prefix is the first chunk, filled in at the end.
    frame.head.put_i32(0);
    frame.cut();
    frame.head.put_i32(correlation_id);
    if flexible {
        put_unsigned_varint(&mut frame.head, 0);
    }
    frame.head.put_i32(response.throttle_time_ms);
    if version >= 7 {
        frame.head.put_i16(response.error_code);
        frame.head.put_i32(response.session_id);
    }
    put_array_len(&mut frame.head, flexible, response.responses.len());
    for topic in &response.responses {
        put_topic(&mut frame, version, topic);
    }
    if flexible {
        put_unsigned_varint(&mut frame.head, 0);
    }
    frame.cut();
    let mut chunks = frame.chunks;
    let length = chunks.iter().skip(1).map(Bytes::len).sum::<usize>();
    let length = i32::try_from(length).ok()?;
    chunks[0] = Bytes::copy_from_slice(&length.to_be_bytes());
    Some(chunks)
}

/// The chunks of one frame: finished ones, and the buffer being filled.
#[derive(Default)]
struct FrameChunks {
    chunks: Vec<Bytes>,
    head: BytesMut,
}

impl FrameChunks {
    /// Ends the chunk being filled (if it holds anything).
    fn cut(&mut self) {
        if !self.head.is_empty() {
            self.chunks.push(self.head.split().freeze());
        }
    }

    fn put_records(&mut self, records: &Bytes) {
        if records.len() >= ZERO_COPY_MIN_BYTES {
            self.cut();
            self.chunks.push(records.clone());
        } else {
            self.head.put_slice(records);
        }
    }
}

fn put_topic(frame: &mut FrameChunks, version: i16, topic: &FetchableTopicResponse) {
    let flexible = version >= FLEXIBLE_VERSION;
    if version <= 12 {
        let name = topic.topic.0.as_bytes();
        if flexible {
            put_unsigned_varint(&mut frame.head, len_u32(name.len()) + 1);
        } else {
            frame
                .head
                .put_i16(i16::try_from(name.len()).unwrap_or(i16::MAX));
        }
        frame.head.put_slice(name);
    }
    if version >= 13 {
        frame.head.put_slice(topic.topic_id.as_bytes());
    }
    put_array_len(&mut frame.head, flexible, topic.partitions.len());
    for partition in &topic.partitions {
        put_partition(frame, version, partition);
    }
    if flexible {
        put_unsigned_varint(&mut frame.head, 0);
    }
}

fn put_partition(frame: &mut FrameChunks, version: i16, partition: &PartitionData) {
    let flexible = version >= FLEXIBLE_VERSION;
    let head = &mut frame.head;
    head.put_i32(partition.partition_index);
    head.put_i16(partition.error_code);
    head.put_i64(partition.high_watermark);
    head.put_i64(partition.last_stable_offset);
    if version >= 5 {
        head.put_i64(partition.log_start_offset);
    }
    match &partition.aborted_transactions {
        None if flexible => put_unsigned_varint(head, 0),
        None => head.put_i32(-1),
        Some(aborted) => {
            put_array_len(head, flexible, aborted.len());
            for transaction in aborted {
                head.put_i64(transaction.producer_id.0);
                head.put_i64(transaction.first_offset);
                if flexible {
                    put_unsigned_varint(head, 0);
                }
            }
        }
    }
    if version >= 11 {
        head.put_i32(partition.preferred_read_replica.0);
    }
    match &partition.records {
        None if flexible => put_unsigned_varint(head, 0),
        None => head.put_i32(-1),
        Some(records) => {
            if flexible {
                put_unsigned_varint(head, len_u32(records.len()) + 1);
            } else {
                head.put_i32(i32::try_from(records.len()).unwrap_or(i32::MAX));
            }
            frame.put_records(records);
        }
    }
    if flexible {
        put_unsigned_varint(&mut frame.head, 0);
    }
}

/// Whether every field set is one this encoder writes for `version`.
fn encodable(version: i16, response: &FetchResponse) -> bool {
    if !response.unknown_tagged_fields.is_empty() || !response.node_endpoints.is_empty() {
        return false;
    }
    // The codec refuses a session id before v7 (and drops the error code).
    if version < 7 && response.session_id != 0 {
        return false;
    }
    response.responses.iter().all(|topic| {
        topic.unknown_tagged_fields.is_empty()
            && (version > 12 || topic.topic.0.len() <= i16::MAX as usize)
            && topic
                .partitions
                .iter()
                .all(|partition| partition_encodable(version, partition))
    })
}

fn partition_encodable(version: i16, partition: &PartitionData) -> bool {
    let untagged = partition.unknown_tagged_fields.is_empty()
        && partition.diverging_epoch == EpochEndOffset::default()
        && partition.current_leader == LeaderIdAndEpoch::default()
        && partition.snapshot_id == SnapshotId::default()
        && partition
            .aborted_transactions
            .as_ref()
            .is_none_or(|aborted| {
                aborted
                    .iter()
                    .all(|transaction| transaction.unknown_tagged_fields.is_empty())
            });
    let records_fit = partition
        .records
        .as_ref()
        .is_none_or(|records| records.len() < i32::MAX as usize);
    // The codec refuses a preferred replica before v11.
    let versioned = version >= 11 || partition.preferred_read_replica.0 == -1;
    untagged && records_fit && versioned
}

fn put_array_len(out: &mut BytesMut, flexible: bool, len: usize) {
    if flexible {
        put_unsigned_varint(out, len_u32(len) + 1);
    } else {
        out.put_i32(i32::try_from(len).unwrap_or(i32::MAX));
    }
}

fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX - 1)
}

fn put_unsigned_varint(out: &mut BytesMut, mut value: u32) {
    while value >= 0x80 {
        out.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    out.put_u8(value as u8);
}

#[cfg(test)]
#[path = "fetch_frame_tests.rs"]
mod tests;
