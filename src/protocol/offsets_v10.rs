//! OffsetCommit v10 and OffsetFetch v10 (KIP-848, Kafka 4.2): the same
//! messages as v9 except that every topic is named by its id only
//! ("Version 10 adds support for topic ids and removes support for topic
//! names"). The kafka-protocol 0.18 codecs stop at v9, so these four bodies
//! are decoded and encoded here by hand. Both versions are flexible: compact
//! strings and arrays, and a tagged-field section after every struct (we
//! skip unknown tags on input and write none). Pure code over bytes; used on
//! every shard. The group handlers map ids to names through the catalog.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use thiserror::Error;
use uuid::Uuid;

/// The first OffsetCommit and OffsetFetch version that names topics by id.
pub const TOPIC_ID_VERSION: i16 = 10;

/// Why a v10 body did not decode. Every failure is an error, never a panic.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum WireError {
    #[error("the body ends inside {0}")]
    Truncated(&'static str),
    #[error("{field} declares {length} entries or bytes, more than the {remaining} left")]
    LengthExceedsBody {
        field: &'static str,
        length: u64,
        remaining: usize,
    },
    #[error("{0} is null where the schema does not allow it")]
    UnexpectedNull(&'static str),
    #[error("{0} is not UTF-8")]
    NotUtf8(&'static str),
    #[error("an unsigned varint is longer than 5 bytes")]
    VarintTooLong,
}

/// A bounds-checked reader over one request body.
struct Reader<'a>(&'a mut Bytes);

impl Reader<'_> {
    fn need(&self, bytes: usize, field: &'static str) -> Result<(), WireError> {
        if self.0.remaining() < bytes {
            return Err(WireError::Truncated(field));
        }
        Ok(())
    }
    fn bool(&mut self, field: &'static str) -> Result<bool, WireError> {
        self.need(1, field)?;
        Ok(self.0.get_u8() != 0)
    }
    fn i16(&mut self, field: &'static str) -> Result<i16, WireError> {
        self.need(2, field)?;
        Ok(self.0.get_i16())
    }
    fn i32(&mut self, field: &'static str) -> Result<i32, WireError> {
        self.need(4, field)?;
        Ok(self.0.get_i32())
    }
    fn i64(&mut self, field: &'static str) -> Result<i64, WireError> {
        self.need(8, field)?;
        Ok(self.0.get_i64())
    }
    fn uuid(&mut self, field: &'static str) -> Result<Uuid, WireError> {
        self.need(16, field)?;
        let mut raw = [0u8; 16];
        self.0.copy_to_slice(&mut raw);
        Ok(Uuid::from_bytes(raw))
    }
    fn unsigned_varint(&mut self, field: &'static str) -> Result<u32, WireError> {
        let mut value = 0u32;
        for shift in 0..5 {
            self.need(1, field)?;
            let byte = self.0.get_u8();
            value |= u32::from(byte & 0x7f) << (shift * 7);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(WireError::VarintTooLong)
    }
    /// A compact length (N+1, 0 = null) checked against the bytes left, so
    /// a hostile length is an error before anything is allocated. Every
    /// entry and byte takes at least one byte on the wire.
    fn compact_length(&mut self, field: &'static str) -> Result<Option<usize>, WireError> {
        let raw = self.unsigned_varint(field)?;
        let Some(length) = raw.checked_sub(1) else {
            return Ok(None);
        };
        let length = length as usize;
        if length > self.0.remaining() {
            return Err(WireError::LengthExceedsBody {
                field,
                length: u64::from(raw - 1),
                remaining: self.0.remaining(),
            });
        }
        Ok(Some(length))
    }
    fn nullable_string(&mut self, field: &'static str) -> Result<Option<String>, WireError> {
        let Some(length) = self.compact_length(field)? else {
            return Ok(None);
        };
        let raw = self.0.split_to(length);
        String::from_utf8(raw.to_vec())
            .map(Some)
            .map_err(|_| WireError::NotUtf8(field))
    }
    fn string(&mut self, field: &'static str) -> Result<String, WireError> {
        self.nullable_string(field)?
            .ok_or(WireError::UnexpectedNull(field))
    }
    fn nullable_array<T>(
        &mut self,
        field: &'static str,
        mut entry: impl FnMut(&mut Self) -> Result<T, WireError>,
    ) -> Result<Option<Vec<T>>, WireError> {
        let Some(length) = self.compact_length(field)? else {
            return Ok(None);
        };
        (0..length)
            .map(|_| entry(self))
            .collect::<Result<_, _>>()
            .map(Some)
    }
    fn array<T>(
        &mut self,
        field: &'static str,
        entry: impl FnMut(&mut Self) -> Result<T, WireError>,
    ) -> Result<Vec<T>, WireError> {
        self.nullable_array(field, entry)?
            .ok_or(WireError::UnexpectedNull(field))
    }
    /// Skips a tagged-field section: none of these structs defines a tag.
    fn tagged_fields(&mut self) -> Result<(), WireError> {
        let count = self.unsigned_varint("tagged fields")?;
        for _ in 0..count {
            self.unsigned_varint("tag")?;
            let size = self.unsigned_varint("tag size")? as usize;
            self.need(size, "tagged field")?;
            self.0.advance(size);
        }
        Ok(())
    }
}

/// Writers for the flexible encodings.
fn put_unsigned_varint(out: &mut BytesMut, mut value: u32) {
    while value >= 0x80 {
        out.put_u8((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.put_u8(value as u8);
}
fn put_compact_length(out: &mut BytesMut, length: Option<usize>) {
    // Lengths come from Vecs and Strings far below u32::MAX (frames are
    // bounded by `client_frames`), so the cast cannot truncate.
    put_unsigned_varint(out, length.map_or(0, |length| length as u32 + 1));
}
fn put_nullable_string(out: &mut BytesMut, value: Option<&str>) {
    put_compact_length(out, value.map(str::len));
    if let Some(value) = value {
        out.put_slice(value.as_bytes());
    }
}
fn put_no_tagged_fields(out: &mut BytesMut) {
    put_unsigned_varint(out, 0);
}

/// OffsetCommit v10 request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetCommitRequestV10 {
    pub group_id: String,
    pub generation_id_or_member_epoch: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub topics: Vec<CommitTopicV10>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommitTopicV10 {
    pub topic_id: Uuid,
    pub partitions: Vec<CommitPartitionV10>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommitPartitionV10 {
    pub partition_index: i32,
    pub committed_offset: i64,
    pub committed_leader_epoch: i32,
    pub committed_metadata: Option<String>,
}

impl OffsetCommitRequestV10 {
    pub fn decode(body: &mut Bytes) -> Result<Self, WireError> {
        let mut reader = Reader(body);
        let group_id = reader.string("group id")?;
        let generation_id_or_member_epoch = reader.i32("generation id or member epoch")?;
        let member_id = reader.string("member id")?;
        let group_instance_id = reader.nullable_string("group instance id")?;
        let topics = reader.array("topics", |reader| {
            let topic_id = reader.uuid("topic id")?;
            let partitions = reader.array("partitions", |reader| {
                let partition = CommitPartitionV10 {
                    partition_index: reader.i32("partition index")?,
                    committed_offset: reader.i64("committed offset")?,
                    committed_leader_epoch: reader.i32("committed leader epoch")?,
                    committed_metadata: reader.nullable_string("committed metadata")?,
                };
                reader.tagged_fields()?;
                Ok(partition)
            })?;
            reader.tagged_fields()?;
            Ok(CommitTopicV10 {
                topic_id,
                partitions,
            })
        })?;
        reader.tagged_fields()?;
        Ok(Self {
            group_id,
            generation_id_or_member_epoch,
            member_id,
            group_instance_id,
            topics,
        })
    }

    /// The client side, for tests and tools.
    pub fn encode(&self, out: &mut BytesMut) {
        put_nullable_string(out, Some(&self.group_id));
        out.put_i32(self.generation_id_or_member_epoch);
        put_nullable_string(out, Some(&self.member_id));
        put_nullable_string(out, self.group_instance_id.as_deref());
        put_compact_length(out, Some(self.topics.len()));
        for topic in &self.topics {
            out.put_slice(topic.topic_id.as_bytes());
            put_compact_length(out, Some(topic.partitions.len()));
            for partition in &topic.partitions {
                out.put_i32(partition.partition_index);
                out.put_i64(partition.committed_offset);
                out.put_i32(partition.committed_leader_epoch);
                put_nullable_string(out, partition.committed_metadata.as_deref());
                put_no_tagged_fields(out);
            }
            put_no_tagged_fields(out);
        }
        put_no_tagged_fields(out);
    }
}

/// OffsetCommit v10 response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetCommitResponseV10 {
    pub throttle_time_ms: i32,
    pub topics: Vec<CommitResponseTopicV10>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommitResponseTopicV10 {
    pub topic_id: Uuid,
    pub partitions: Vec<CommitResponsePartitionV10>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommitResponsePartitionV10 {
    pub partition_index: i32,
    pub error_code: i16,
}

impl OffsetCommitResponseV10 {
    /// The client side, for tests and tools.
    pub fn decode(body: &mut Bytes) -> Result<Self, WireError> {
        let mut reader = Reader(body);
        let throttle_time_ms = reader.i32("throttle time")?;
        let topics = reader.array("topics", |reader| {
            let topic_id = reader.uuid("topic id")?;
            let partitions = reader.array("partitions", |reader| {
                let partition = CommitResponsePartitionV10 {
                    partition_index: reader.i32("partition index")?,
                    error_code: reader.i16("error code")?,
                };
                reader.tagged_fields()?;
                Ok(partition)
            })?;
            reader.tagged_fields()?;
            Ok(CommitResponseTopicV10 {
                topic_id,
                partitions,
            })
        })?;
        reader.tagged_fields()?;
        Ok(Self {
            throttle_time_ms,
            topics,
        })
    }

    pub fn encode(&self, out: &mut BytesMut) {
        out.put_i32(self.throttle_time_ms);
        put_compact_length(out, Some(self.topics.len()));
        for topic in &self.topics {
            out.put_slice(topic.topic_id.as_bytes());
            put_compact_length(out, Some(topic.partitions.len()));
            for partition in &topic.partitions {
                out.put_i32(partition.partition_index);
                out.put_i16(partition.error_code);
                put_no_tagged_fields(out);
            }
            put_no_tagged_fields(out);
        }
        put_no_tagged_fields(out);
    }
}

/// OffsetFetch v10 request (the v8+ batch-of-groups form).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetFetchRequestV10 {
    pub groups: Vec<FetchGroupV10>,
    pub require_stable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchGroupV10 {
    pub group_id: String,
    pub member_id: Option<String>,
    pub member_epoch: i32,
    /// `None` asks for every committed offset of the group.
    pub topics: Option<Vec<FetchTopicV10>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchTopicV10 {
    pub topic_id: Uuid,
    pub partition_indexes: Vec<i32>,
}

impl OffsetFetchRequestV10 {
    pub fn decode(body: &mut Bytes) -> Result<Self, WireError> {
        let mut reader = Reader(body);
        let groups = reader.array("groups", |reader| {
            let group_id = reader.string("group id")?;
            let member_id = reader.nullable_string("member id")?;
            let member_epoch = reader.i32("member epoch")?;
            let topics = reader.nullable_array("topics", |reader| {
                let topic_id = reader.uuid("topic id")?;
                let partition_indexes =
                    reader.array("partition indexes", |reader| reader.i32("partition index"))?;
                reader.tagged_fields()?;
                Ok(FetchTopicV10 {
                    topic_id,
                    partition_indexes,
                })
            })?;
            reader.tagged_fields()?;
            Ok(FetchGroupV10 {
                group_id,
                member_id,
                member_epoch,
                topics,
            })
        })?;
        let require_stable = reader.bool("require stable")?;
        reader.tagged_fields()?;
        Ok(Self {
            groups,
            require_stable,
        })
    }

    /// The client side, for tests and tools.
    pub fn encode(&self, out: &mut BytesMut) {
        put_compact_length(out, Some(self.groups.len()));
        for group in &self.groups {
            put_nullable_string(out, Some(&group.group_id));
            put_nullable_string(out, group.member_id.as_deref());
            out.put_i32(group.member_epoch);
            put_compact_length(out, group.topics.as_ref().map(Vec::len));
            for topic in group.topics.iter().flatten() {
                out.put_slice(topic.topic_id.as_bytes());
                put_compact_length(out, Some(topic.partition_indexes.len()));
                for index in &topic.partition_indexes {
                    out.put_i32(*index);
                }
                put_no_tagged_fields(out);
            }
            put_no_tagged_fields(out);
        }
        out.put_u8(u8::from(self.require_stable));
        put_no_tagged_fields(out);
    }
}

/// OffsetFetch v10 response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetFetchResponseV10 {
    pub throttle_time_ms: i32,
    pub groups: Vec<FetchResponseGroupV10>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchResponseGroupV10 {
    pub group_id: String,
    pub topics: Vec<FetchResponseTopicV10>,
    pub error_code: i16,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchResponseTopicV10 {
    pub topic_id: Uuid,
    pub partitions: Vec<FetchResponsePartitionV10>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchResponsePartitionV10 {
    pub partition_index: i32,
    pub committed_offset: i64,
    pub committed_leader_epoch: i32,
    pub metadata: Option<String>,
    pub error_code: i16,
}

impl OffsetFetchResponseV10 {
    /// The client side, for tests and tools.
    pub fn decode(body: &mut Bytes) -> Result<Self, WireError> {
        let mut reader = Reader(body);
        let throttle_time_ms = reader.i32("throttle time")?;
        let groups = reader.array("groups", |reader| {
            let group_id = reader.string("group id")?;
            let topics = reader.array("topics", |reader| {
                let topic_id = reader.uuid("topic id")?;
                let partitions = reader.array("partitions", |reader| {
                    let partition = FetchResponsePartitionV10 {
                        partition_index: reader.i32("partition index")?,
                        committed_offset: reader.i64("committed offset")?,
                        committed_leader_epoch: reader.i32("committed leader epoch")?,
                        metadata: reader.nullable_string("metadata")?,
                        error_code: reader.i16("error code")?,
                    };
                    reader.tagged_fields()?;
                    Ok(partition)
                })?;
                reader.tagged_fields()?;
                Ok(FetchResponseTopicV10 {
                    topic_id,
                    partitions,
                })
            })?;
            let error_code = reader.i16("error code")?;
            reader.tagged_fields()?;
            Ok(FetchResponseGroupV10 {
                group_id,
                topics,
                error_code,
            })
        })?;
        reader.tagged_fields()?;
        Ok(Self {
            throttle_time_ms,
            groups,
        })
    }

    pub fn encode(&self, out: &mut BytesMut) {
        out.put_i32(self.throttle_time_ms);
        put_compact_length(out, Some(self.groups.len()));
        for group in &self.groups {
            put_nullable_string(out, Some(&group.group_id));
            put_compact_length(out, Some(group.topics.len()));
            for topic in &group.topics {
                out.put_slice(topic.topic_id.as_bytes());
                put_compact_length(out, Some(topic.partitions.len()));
                for partition in &topic.partitions {
                    out.put_i32(partition.partition_index);
                    out.put_i64(partition.committed_offset);
                    out.put_i32(partition.committed_leader_epoch);
                    put_nullable_string(out, partition.metadata.as_deref());
                    out.put_i16(partition.error_code);
                    put_no_tagged_fields(out);
                }
                put_no_tagged_fields(out);
            }
            out.put_i16(group.error_code);
            put_no_tagged_fields(out);
        }
        put_no_tagged_fields(out);
    }
}

#[cfg(test)]
#[path = "offsets_v10_tests.rs"]
mod tests;
