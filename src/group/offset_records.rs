//! Records the group coordinator appends to its internal offsets partitions
//! (corelog's `__consumer_offsets`): committed offsets and group metadata,
//! as the key and value bytes of ordinary RecordBatch records.
//!
//! Which cores: pure code, used by the shard that owns an offsets partition
//! (to encode on commit / rebalance, and to decode while replaying on start-up).
//!
//! Why this shape: like Kafka, the key starts with an `i16` key version that
//! also names the record kind (1 = offset commit, 2 = group metadata), and
//! the value starts with its own `i16` value version, so either side can grow
//! without a flag day. A null value is a tombstone that deletes the key.
//! The layout is ours, not Kafka's binary one: plain big-endian fields, with
//! strings and byte arrays prefixed by an `i32` length (`-1` = null). We chose
//! this over rkyv because these records live on disk across versions and
//! are read from possibly torn or corrupt logs: a hand-written reader checks
//! every length against the bytes actually left before it allocates,
//! needs no aligned buffer, and its layout is visible in one file.
//! Decoding never panics; it returns a [`DecodeError`]. Trailing bytes after
//! a known version are an error rather than silently ignored.

use thiserror::Error;

use super::consumer_group_records;
use super::modern::ConsumerGroupRecord;

/// Key version of an [`OffsetCommitKey`] (also the record kind).
pub const OFFSET_COMMIT_KEY_VERSION: i16 = 1;
/// Key version of a [`GroupMetadataKey`] (also the record kind).
pub const GROUP_METADATA_KEY_VERSION: i16 = 2;
/// Value version written for [`OffsetCommitValue`].
pub const OFFSET_COMMIT_VALUE_VERSION: i16 = 0;
/// Value version written for [`GroupMetadataValue`].
pub const GROUP_METADATA_VALUE_VERSION: i16 = 0;

/// Smallest encoded member: three empty strings, one null string and two
/// empty byte arrays (an `i32` length each) plus two `i32` timeouts. Bounds
/// the member count read from a value by the bytes left, before allocating.
const MEMBER_BYTES_MIN: usize = 6 * 4 + 2 * 4;

/// Why a key or value could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("truncated: needed {needed} bytes, {remaining} left")]
    Truncated { needed: usize, remaining: usize },
    #[error("unknown key version {0}")]
    UnknownKeyVersion(i16),
    #[error("unknown value version {version} for key version {key_version}")]
    UnknownValueVersion { key_version: i16, version: i16 },
    #[error("invalid length {0}")]
    InvalidLength(i32),
    #[error("null where a value is required")]
    UnexpectedNull,
    #[error("string is not UTF-8")]
    InvalidUtf8,
    #[error("{0} trailing bytes")]
    TrailingBytes(usize),
}

/// Key of a committed offset: one partition's position for one group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OffsetCommitKey {
    pub group: String,
    pub topic: String,
    pub partition: i32,
}

/// A committed offset, as OffsetCommit carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitValue {
    pub offset: i64,
    /// `-1` when the client did not send one.
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
    /// Explicit expiry (OffsetCommit v1 retention); `-1` for none.
    pub expire_timestamp_ms: i64,
}

/// Key of a group's metadata record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupMetadataKey {
    pub group: String,
}

/// A group's membership after a rebalance (or on becoming Empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadataValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    /// When the group entered its current state; `-1` if unknown.
    pub state_timestamp_ms: i64,
    pub members: Vec<MemberMetadata>,
}

/// One member inside a [`GroupMetadataValue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMetadata {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Vec<u8>,
    pub assignment: Vec<u8>,
}

/// Any key of an offsets partition, told apart by its key version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKey {
    OffsetCommit(OffsetCommitKey),
    GroupMetadata(GroupMetadataKey),
}

/// A decoded record: its key and its value, `None` for a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetsRecord {
    OffsetCommit {
        key: OffsetCommitKey,
        value: Option<OffsetCommitValue>,
    },
    GroupMetadata {
        key: GroupMetadataKey,
        value: Option<GroupMetadataValue>,
    },
    /// One record of a KIP-848 consumer group (its layout is in
    /// `consumer_group_records`).
    ConsumerGroup {
        group: String,
        record: ConsumerGroupRecord,
    },
}

/// Decodes one record of an offsets partition from its key and value bytes.
pub fn decode_record(key: &[u8], value: Option<&[u8]>) -> Result<OffsetsRecord, DecodeError> {
    let mut reader = Reader(key);
    let key_version = reader.i16()?;
    if consumer_group_records::is_consumer_group_key(key_version) {
        let (group, record) = consumer_group_records::decode(key_version, reader, value)?;
        return Ok(OffsetsRecord::ConsumerGroup { group, record });
    }
    Ok(match RecordKey::decode(key)? {
        RecordKey::OffsetCommit(key) => OffsetsRecord::OffsetCommit {
            key,
            value: value.map(OffsetCommitValue::decode).transpose()?,
        },
        RecordKey::GroupMetadata(key) => OffsetsRecord::GroupMetadata {
            key,
            value: value.map(GroupMetadataValue::decode).transpose()?,
        },
    })
}

impl OffsetCommitKey {
    pub fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::default();
        writer.put_i16(OFFSET_COMMIT_KEY_VERSION);
        writer.put_str(&self.group);
        writer.put_str(&self.topic);
        writer.put_i32(self.partition);
        writer.0
    }
}

impl GroupMetadataKey {
    pub fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::default();
        writer.put_i16(GROUP_METADATA_KEY_VERSION);
        writer.put_str(&self.group);
        writer.0
    }
}

impl RecordKey {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            RecordKey::OffsetCommit(key) => key.encode(),
            RecordKey::GroupMetadata(key) => key.encode(),
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader(bytes);
        let key = match reader.i16()? {
            OFFSET_COMMIT_KEY_VERSION => RecordKey::OffsetCommit(OffsetCommitKey {
                group: reader.string()?,
                topic: reader.string()?,
                partition: reader.i32()?,
            }),
            GROUP_METADATA_KEY_VERSION => RecordKey::GroupMetadata(GroupMetadataKey {
                group: reader.string()?,
            }),
            other => return Err(DecodeError::UnknownKeyVersion(other)),
        };
        reader.finish()?;
        Ok(key)
    }
}

impl OffsetCommitValue {
    pub fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::default();
        writer.put_i16(OFFSET_COMMIT_VALUE_VERSION);
        writer.put_i64(self.offset);
        writer.put_i32(self.leader_epoch);
        writer.put_str(&self.metadata);
        writer.put_i64(self.commit_timestamp_ms);
        writer.put_i64(self.expire_timestamp_ms);
        writer.0
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader(bytes);
        let version = reader.i16()?;
        if version != OFFSET_COMMIT_VALUE_VERSION {
            return Err(DecodeError::UnknownValueVersion {
                key_version: OFFSET_COMMIT_KEY_VERSION,
                version,
            });
        }
        let value = OffsetCommitValue {
            offset: reader.i64()?,
            leader_epoch: reader.i32()?,
            metadata: reader.string()?,
            commit_timestamp_ms: reader.i64()?,
            expire_timestamp_ms: reader.i64()?,
        };
        reader.finish()?;
        Ok(value)
    }
}

impl GroupMetadataValue {
    pub fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::default();
        writer.put_i16(GROUP_METADATA_VALUE_VERSION);
        writer.put_str(&self.protocol_type);
        writer.put_i32(self.generation);
        writer.put_opt_str(self.protocol.as_deref());
        writer.put_opt_str(self.leader.as_deref());
        writer.put_i64(self.state_timestamp_ms);
        writer.put_len(self.members.len());
        for member in &self.members {
            writer.put_str(&member.member_id);
            writer.put_opt_str(member.group_instance_id.as_deref());
            writer.put_str(&member.client_id);
            writer.put_str(&member.client_host);
            writer.put_i32(member.rebalance_timeout_ms);
            writer.put_i32(member.session_timeout_ms);
            writer.put_bytes(&member.subscription);
            writer.put_bytes(&member.assignment);
        }
        writer.0
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader(bytes);
        let version = reader.i16()?;
        if version != GROUP_METADATA_VALUE_VERSION {
            return Err(DecodeError::UnknownValueVersion {
                key_version: GROUP_METADATA_KEY_VERSION,
                version,
            });
        }
        let protocol_type = reader.string()?;
        let generation = reader.i32()?;
        let protocol = reader.opt_string()?;
        let leader = reader.opt_string()?;
        let state_timestamp_ms = reader.i64()?;
        let count = reader.length()?.ok_or(DecodeError::UnexpectedNull)?;
        // A huge count cannot allocate more than the input could hold.
        let mut members = Vec::with_capacity(count.min(reader.0.len() / MEMBER_BYTES_MIN));
        for _ in 0..count {
            members.push(MemberMetadata {
                member_id: reader.string()?,
                group_instance_id: reader.opt_string()?,
                client_id: reader.string()?,
                client_host: reader.string()?,
                rebalance_timeout_ms: reader.i32()?,
                session_timeout_ms: reader.i32()?,
                subscription: reader.bytes()?,
                assignment: reader.bytes()?,
            });
        }
        reader.finish()?;
        Ok(GroupMetadataValue {
            protocol_type,
            generation,
            protocol,
            leader,
            state_timestamp_ms,
            members,
        })
    }
}

/// Big-endian writer; lengths are `i32`, `-1` is null.
#[derive(Default)]
pub(super) struct Writer(pub(super) Vec<u8>);

impl Writer {
    pub(super) fn put_i16(&mut self, value: i16) {
        self.0.extend_from_slice(&value.to_be_bytes());
    }
    pub(super) fn put_i32(&mut self, value: i32) {
        self.0.extend_from_slice(&value.to_be_bytes());
    }
    pub(super) fn put_i64(&mut self, value: i64) {
        self.0.extend_from_slice(&value.to_be_bytes());
    }
    pub(super) fn put_len(&mut self, len: usize) {
        // Request frames are bounded far below 2 GiB, so a field this long
        // can only come from a bug upstream.
        assert!(len <= i32::MAX as usize, "field too long to encode: {len}");
        self.put_i32(len as i32);
    }
    pub(super) fn put_bytes(&mut self, bytes: &[u8]) {
        self.put_len(bytes.len());
        self.0.extend_from_slice(bytes);
    }
    pub(super) fn put_str(&mut self, value: &str) {
        self.put_bytes(value.as_bytes());
    }
    pub(super) fn put_opt_str(&mut self, value: Option<&str>) {
        match value {
            Some(value) => self.put_str(value),
            None => self.put_i32(-1),
        }
    }
}

/// Big-endian reader over the bytes not yet consumed.
pub(super) struct Reader<'a>(pub(super) &'a [u8]);

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, needed: usize) -> Result<&'a [u8], DecodeError> {
        if needed > self.0.len() {
            return Err(DecodeError::Truncated {
                needed,
                remaining: self.0.len(),
            });
        }
        let (head, tail) = self.0.split_at(needed);
        self.0 = tail;
        Ok(head)
    }
    pub(super) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }
    pub(super) fn i16(&mut self) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.array()?))
    }
    pub(super) fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array()?))
    }
    pub(super) fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array()?))
    }
    /// A length prefix: `None` for null (`-1`), an error for other negatives.
    pub(super) fn length(&mut self) -> Result<Option<usize>, DecodeError> {
        match self.i32()? {
            -1 => Ok(None),
            len if len < 0 => Err(DecodeError::InvalidLength(len)),
            len => Ok(Some(len as usize)),
        }
    }
    pub(super) fn opt_bytes(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        match self.length()? {
            None => Ok(None),
            Some(len) => self.take(len).map(Some),
        }
    }
    pub(super) fn bytes(&mut self) -> Result<Vec<u8>, DecodeError> {
        let bytes = self.opt_bytes()?.ok_or(DecodeError::UnexpectedNull)?;
        Ok(bytes.to_vec())
    }
    pub(super) fn opt_string(&mut self) -> Result<Option<String>, DecodeError> {
        match self.opt_bytes()? {
            None => Ok(None),
            Some(bytes) => std::str::from_utf8(bytes)
                .map(|text| Some(text.to_owned()))
                .map_err(|_| DecodeError::InvalidUtf8),
        }
    }
    pub(super) fn string(&mut self) -> Result<String, DecodeError> {
        self.opt_string()?.ok_or(DecodeError::UnexpectedNull)
    }
    pub(super) fn finish(self) -> Result<(), DecodeError> {
        match self.0.len() {
            0 => Ok(()),
            trailing => Err(DecodeError::TrailingBytes(trailing)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn commit_key() -> OffsetCommitKey {
        OffsetCommitKey {
            group: "payments".into(),
            topic: "orders".into(),
            partition: 7,
        }
    }

    fn commit_value() -> OffsetCommitValue {
        OffsetCommitValue {
            offset: 4_200,
            leader_epoch: 3,
            metadata: "checkpoint ü".into(),
            commit_timestamp_ms: 1_700_000_000_000,
            expire_timestamp_ms: -1,
        }
    }

    fn group_value() -> GroupMetadataValue {
        let member = |id: &str, instance: Option<&str>| MemberMetadata {
            member_id: id.into(),
            group_instance_id: instance.map(Into::into),
            client_id: "rdkafka".into(),
            client_host: "/10.0.0.1".into(),
            rebalance_timeout_ms: 300_000,
            session_timeout_ms: 45_000,
            subscription: vec![0, 1, 2, 3],
            assignment: vec![],
        };
        GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation: 12,
            protocol: Some("range".into()),
            leader: Some("m-1".into()),
            state_timestamp_ms: 1_700_000_000_123,
            members: vec![member("m-1", Some("host-a")), member("m-2", None)],
        }
    }

    #[test]
    fn offset_commit_round_trips() {
        let key = commit_key().encode();
        assert_eq!(&key[..2], &OFFSET_COMMIT_KEY_VERSION.to_be_bytes());
        let value = commit_value().encode();
        assert_eq!(
            decode_record(&key, Some(&value)),
            Ok(OffsetsRecord::OffsetCommit {
                key: commit_key(),
                value: Some(commit_value()),
            })
        );
    }

    #[test]
    fn group_metadata_round_trips() {
        let key = GroupMetadataKey {
            group: "payments".into(),
        };
        assert_eq!(
            &key.encode()[..2],
            &GROUP_METADATA_KEY_VERSION.to_be_bytes()
        );
        for value in [
            group_value(),
            GroupMetadataValue {
                protocol_type: String::new(),
                generation: 0,
                protocol: None,
                leader: None,
                state_timestamp_ms: -1,
                members: vec![],
            },
        ] {
            assert_eq!(
                decode_record(&key.encode(), Some(&value.encode())),
                Ok(OffsetsRecord::GroupMetadata {
                    key: key.clone(),
                    value: Some(value),
                })
            );
        }
    }

    #[test]
    fn tombstones_decode_to_no_value() {
        let key = RecordKey::OffsetCommit(commit_key());
        assert_eq!(
            decode_record(&key.encode(), None),
            Ok(OffsetsRecord::OffsetCommit {
                key: commit_key(),
                value: None,
            })
        );
        let key = GroupMetadataKey { group: "g".into() };
        assert_eq!(
            decode_record(&key.encode(), None),
            Ok(OffsetsRecord::GroupMetadata { key, value: None })
        );
    }

    #[test]
    fn every_truncation_is_an_error() {
        let key = commit_key().encode();
        let commit = commit_value().encode();
        let group = group_value().encode();
        for len in 0..key.len() {
            assert!(RecordKey::decode(&key[..len]).is_err());
        }
        for len in 0..commit.len() {
            assert!(OffsetCommitValue::decode(&commit[..len]).is_err());
        }
        for len in 0..group.len() {
            assert!(GroupMetadataValue::decode(&group[..len]).is_err());
        }
    }

    #[test]
    fn bad_versions_lengths_and_trailing_bytes_are_errors() {
        assert_eq!(
            RecordKey::decode(&[0, 9]),
            Err(DecodeError::UnknownKeyVersion(9))
        );
        let mut value = commit_value().encode();
        value[1] = 5;
        assert_eq!(
            OffsetCommitValue::decode(&value),
            Err(DecodeError::UnknownValueVersion {
                key_version: 1,
                version: 5
            })
        );
        // Group id claiming i32::MAX bytes: rejected, nothing allocated.
        let huge = [&[0, 2][..], &i32::MAX.to_be_bytes()].concat();
        assert!(matches!(
            RecordKey::decode(&huge),
            Err(DecodeError::Truncated { .. })
        ));
        let negative = [&[0, 2][..], &(-2i32).to_be_bytes()].concat();
        assert_eq!(
            RecordKey::decode(&negative),
            Err(DecodeError::InvalidLength(-2))
        );
        let null_group = [&[0, 2][..], &(-1i32).to_be_bytes()].concat();
        assert_eq!(
            RecordKey::decode(&null_group),
            Err(DecodeError::UnexpectedNull)
        );
        let bad_utf8 = [&[0, 2][..], &1i32.to_be_bytes(), &[0xff]].concat();
        assert_eq!(RecordKey::decode(&bad_utf8), Err(DecodeError::InvalidUtf8));
        let mut trailing = commit_key().encode();
        trailing.push(0);
        assert_eq!(
            RecordKey::decode(&trailing),
            Err(DecodeError::TrailingBytes(1))
        );
    }

    #[test]
    fn huge_member_count_is_an_error_not_an_allocation() {
        let mut value = GroupMetadataValue {
            members: vec![],
            ..group_value()
        }
        .encode();
        let count_at = value.len() - 4;
        value[count_at..].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(
            GroupMetadataValue::decode(&value),
            Err(DecodeError::Truncated { .. })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_bytes_never_panic(key in proptest::collection::vec(any::<u8>(), 0..64),
                                       value in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_record(&key, Some(&value));
            let _ = OffsetCommitValue::decode(&value);
            let _ = GroupMetadataValue::decode(&value);
        }

        #[test]
        fn arbitrary_bytes_after_a_valid_prefix_never_panic(
            value in proptest::collection::vec(any::<u8>(), 0..256)) {
            // Reach past the version check into the field decoders.
            let group = [&GROUP_METADATA_VALUE_VERSION.to_be_bytes()[..], &value].concat();
            let _ = GroupMetadataValue::decode(&group);
            let commit = [&OFFSET_COMMIT_VALUE_VERSION.to_be_bytes()[..], &value].concat();
            let _ = OffsetCommitValue::decode(&commit);
            let key = [&OFFSET_COMMIT_KEY_VERSION.to_be_bytes()[..], &value].concat();
            let _ = RecordKey::decode(&key);
        }

        #[test]
        fn offset_commits_round_trip(group in ".{0,20}", topic in ".{0,20}", partition: i32,
                                     offset: i64, leader_epoch: i32, metadata in ".{0,40}",
                                     commit_timestamp_ms: i64, expire_timestamp_ms: i64) {
            let key = OffsetCommitKey { group, topic, partition };
            let value = OffsetCommitValue {
                offset, leader_epoch, metadata, commit_timestamp_ms, expire_timestamp_ms,
            };
            prop_assert_eq!(
                decode_record(&key.encode(), Some(&value.encode())),
                Ok(OffsetsRecord::OffsetCommit { key, value: Some(value) })
            );
        }
    }
}
