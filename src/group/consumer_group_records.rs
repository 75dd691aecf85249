//! The bytes of a KIP-848 consumer group's records in an offsets partition
//! (`modern::ConsumerGroupRecord`, keyed by group): the key and value
//! layouts, beside the classic records of `offset_records`.
//!
//! Which cores: pure code, used by the shard that owns an offsets partition
//! (to encode what a heartbeat or timer changed, and to decode while
//! replaying on start-up).
//!
//! Why this shape: the same layout rules as `offset_records` (big-endian,
//! `i32` length prefixes, `-1` for null, an `i16` value version, no
//! trailing bytes), and the key versions Kafka gives these records in its
//! `__consumer_offsets` (3 group epoch, 4 subscription metadata, 5 member
//! metadata, 6 target assignment epoch, 7 target assignment of a member,
//! 8 current assignment of a member, 16 resolved regular expression), so a
//! reader of the partition tells the record kinds apart the way Kafka's
//! does. Every count read from disk is bounded by the bytes left before
//! anything is allocated.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::modern::{
    Assignment, ConsumerGroupRecord, CurrentAssignmentValue, MemberMetadataValue, ResolvedRegex,
    TopicInfo,
};
use super::offset_records::{DecodeError, Reader, Writer};

pub const GROUP_EPOCH_KEY_VERSION: i16 = 3;
pub const SUBSCRIPTION_METADATA_KEY_VERSION: i16 = 4;
pub const MEMBER_METADATA_KEY_VERSION: i16 = 5;
pub const TARGET_ASSIGNMENT_EPOCH_KEY_VERSION: i16 = 6;
pub const TARGET_ASSIGNMENT_MEMBER_KEY_VERSION: i16 = 7;
pub const CURRENT_ASSIGNMENT_KEY_VERSION: i16 = 8;
pub const REGULAR_EXPRESSION_KEY_VERSION: i16 = 16;
/// Value version written for every consumer group record.
pub const CONSUMER_GROUP_VALUE_VERSION: i16 = 0;

/// Whether a key version is one of a consumer group's records.
pub fn is_consumer_group_key(key_version: i16) -> bool {
    matches!(key_version, 3..=8 | 16)
}

/// The smallest encoded topic of an assignment: a uuid and a count.
const ASSIGNED_TOPIC_BYTES_MIN: usize = 16 + 4;
/// The smallest encoded string: its length.
const STRING_BYTES_MIN: usize = 4;
/// The smallest encoded subscribed topic: name, uuid, partition count.
const SUBSCRIBED_TOPIC_BYTES_MIN: usize = 4 + 16 + 4;

/// A consumer group record's key and value bytes.
pub fn encode(group: &str, record: &ConsumerGroupRecord) -> (Vec<u8>, Option<Vec<u8>>) {
    let mut key = Writer::default();
    let value = match record {
        ConsumerGroupRecord::GroupEpoch(epoch) => {
            key_head(&mut key, GROUP_EPOCH_KEY_VERSION, group);
            epoch.map(|epoch| value_with(|writer| writer.put_i32(epoch)))
        }
        ConsumerGroupRecord::SubscriptionMetadata(topics) => {
            key_head(&mut key, SUBSCRIPTION_METADATA_KEY_VERSION, group);
            topics.as_ref().map(|topics| {
                value_with(|writer| {
                    writer.put_len(topics.len());
                    for (name, info) in topics {
                        writer.put_str(name);
                        writer.0.extend_from_slice(info.topic_id.as_bytes());
                        writer.put_i32(info.partition_count);
                    }
                })
            })
        }
        ConsumerGroupRecord::MemberMetadata { member_id, value } => {
            key_head(&mut key, MEMBER_METADATA_KEY_VERSION, group);
            key.put_str(member_id);
            value
                .as_ref()
                .map(|value| value_with(|w| put_member(w, value)))
        }
        ConsumerGroupRecord::TargetAssignmentEpoch(epoch) => {
            key_head(&mut key, TARGET_ASSIGNMENT_EPOCH_KEY_VERSION, group);
            epoch.map(|epoch| value_with(|writer| writer.put_i32(epoch)))
        }
        ConsumerGroupRecord::TargetAssignmentMember {
            member_id,
            partitions,
        } => {
            key_head(&mut key, TARGET_ASSIGNMENT_MEMBER_KEY_VERSION, group);
            key.put_str(member_id);
            partitions
                .as_ref()
                .map(|partitions| value_with(|w| put_assignment(w, partitions)))
        }
        ConsumerGroupRecord::CurrentAssignment { member_id, value } => {
            key_head(&mut key, CURRENT_ASSIGNMENT_KEY_VERSION, group);
            key.put_str(member_id);
            value.as_ref().map(|value| {
                value_with(|writer| {
                    writer.put_i32(value.member_epoch);
                    writer.put_i32(value.previous_member_epoch);
                    writer.put_i16(i16::from(value.state));
                    put_assignment(writer, &value.assigned_partitions);
                    put_assignment(writer, &value.partitions_pending_revocation);
                })
            })
        }
        ConsumerGroupRecord::RegularExpression { regex, value } => {
            key_head(&mut key, REGULAR_EXPRESSION_KEY_VERSION, group);
            key.put_str(regex);
            value.as_ref().map(|resolved| {
                value_with(|writer| {
                    writer.put_len(resolved.topics.len());
                    for topic in &resolved.topics {
                        writer.put_str(topic);
                    }
                    writer.put_i64(resolved.version as i64);
                    writer.put_i64(resolved.timestamp_ms);
                })
            })
        }
    };
    (key.0, value)
}

/// Decodes a consumer group record whose key version `key_version` the
/// caller has read (`reader` holds the rest of the key): the group it
/// belongs to and the record.
pub(super) fn decode(
    key_version: i16,
    mut key: Reader<'_>,
    value: Option<&[u8]>,
) -> Result<(String, ConsumerGroupRecord), DecodeError> {
    let group = key.string()?;
    let sub_key = match key_version {
        MEMBER_METADATA_KEY_VERSION
        | TARGET_ASSIGNMENT_MEMBER_KEY_VERSION
        | CURRENT_ASSIGNMENT_KEY_VERSION
        | REGULAR_EXPRESSION_KEY_VERSION => key.string()?,
        _ => String::new(),
    };
    key.finish()?;
    let mut reader = match value {
        Some(bytes) => {
            let mut reader = Reader(bytes);
            let version = reader.i16()?;
            if version != CONSUMER_GROUP_VALUE_VERSION {
                return Err(DecodeError::UnknownValueVersion {
                    key_version,
                    version,
                });
            }
            Some(reader)
        }
        None => None,
    };
    let record = match key_version {
        GROUP_EPOCH_KEY_VERSION => {
            ConsumerGroupRecord::GroupEpoch(reader_map(&mut reader, |r| r.i32())?)
        }
        SUBSCRIPTION_METADATA_KEY_VERSION => {
            ConsumerGroupRecord::SubscriptionMetadata(reader_map(&mut reader, read_topics)?)
        }
        MEMBER_METADATA_KEY_VERSION => ConsumerGroupRecord::MemberMetadata {
            member_id: sub_key,
            value: reader_map(&mut reader, read_member)?,
        },
        TARGET_ASSIGNMENT_EPOCH_KEY_VERSION => {
            ConsumerGroupRecord::TargetAssignmentEpoch(reader_map(&mut reader, |r| r.i32())?)
        }
        TARGET_ASSIGNMENT_MEMBER_KEY_VERSION => ConsumerGroupRecord::TargetAssignmentMember {
            member_id: sub_key,
            partitions: reader_map(&mut reader, read_assignment)?,
        },
        CURRENT_ASSIGNMENT_KEY_VERSION => ConsumerGroupRecord::CurrentAssignment {
            member_id: sub_key,
            value: reader_map(&mut reader, |r| {
                let member_epoch = r.i32()?;
                let previous_member_epoch = r.i32()?;
                let state = i8::try_from(r.i16()?).map_err(|_| DecodeError::InvalidLength(-1))?;
                Ok(CurrentAssignmentValue {
                    member_epoch,
                    previous_member_epoch,
                    state,
                    assigned_partitions: read_assignment(r)?,
                    partitions_pending_revocation: read_assignment(r)?,
                })
            })?,
        },
        REGULAR_EXPRESSION_KEY_VERSION => ConsumerGroupRecord::RegularExpression {
            regex: sub_key,
            value: reader_map(&mut reader, |r| {
                let count = bounded_count(r, STRING_BYTES_MIN)?;
                let mut topics = BTreeSet::new();
                for _ in 0..count {
                    topics.insert(r.string()?);
                }
                Ok(ResolvedRegex {
                    topics,
                    version: r.i64()? as u64,
                    timestamp_ms: r.i64()?,
                })
            })?,
        },
        other => return Err(DecodeError::UnknownKeyVersion(other)),
    };
    if let Some(reader) = reader {
        reader.finish()?;
    }
    Ok((group, record))
}

fn key_head(key: &mut Writer, version: i16, group: &str) {
    key.put_i16(version);
    key.put_str(group);
}

fn value_with(fill: impl FnOnce(&mut Writer)) -> Vec<u8> {
    let mut writer = Writer::default();
    writer.put_i16(CONSUMER_GROUP_VALUE_VERSION);
    fill(&mut writer);
    writer.0
}

/// Reads the value with `read` unless the record is a tombstone.
fn reader_map<T>(
    reader: &mut Option<Reader<'_>>,
    read: impl FnOnce(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<Option<T>, DecodeError> {
    reader.as_mut().map(read).transpose()
}

/// A count of items at least `item_bytes_min` each: refused when the bytes
/// left cannot hold that many, before anything is allocated.
fn bounded_count(reader: &mut Reader<'_>, item_bytes_min: usize) -> Result<usize, DecodeError> {
    let count = reader.length()?.ok_or(DecodeError::UnexpectedNull)?;
    if count.saturating_mul(item_bytes_min) > reader.0.len() {
        return Err(DecodeError::Truncated {
            needed: count.saturating_mul(item_bytes_min),
            remaining: reader.0.len(),
        });
    }
    Ok(count)
}

fn put_uuid(writer: &mut Writer, uuid: &Uuid) {
    writer.0.extend_from_slice(uuid.as_bytes());
}

fn read_uuid(reader: &mut Reader<'_>) -> Result<Uuid, DecodeError> {
    let bytes = reader.take(16)?;
    Uuid::from_slice(bytes).map_err(|_| DecodeError::InvalidLength(16))
}

fn put_assignment(writer: &mut Writer, assignment: &Assignment) {
    writer.put_len(assignment.len());
    for (topic_id, partitions) in assignment {
        put_uuid(writer, topic_id);
        writer.put_len(partitions.len());
        for partition in partitions {
            writer.put_i32(*partition);
        }
    }
}

fn read_assignment(reader: &mut Reader<'_>) -> Result<Assignment, DecodeError> {
    let topics = bounded_count(reader, ASSIGNED_TOPIC_BYTES_MIN)?;
    let mut assignment = Assignment::new();
    for _ in 0..topics {
        let topic_id = read_uuid(reader)?;
        let count = bounded_count(reader, 4)?;
        let mut partitions = BTreeSet::new();
        for _ in 0..count {
            partitions.insert(reader.i32()?);
        }
        assignment.insert(topic_id, partitions);
    }
    Ok(assignment)
}

fn read_topics(reader: &mut Reader<'_>) -> Result<BTreeMap<String, TopicInfo>, DecodeError> {
    let count = bounded_count(reader, SUBSCRIBED_TOPIC_BYTES_MIN)?;
    let mut topics = BTreeMap::new();
    for _ in 0..count {
        let name = reader.string()?;
        let topic_id = read_uuid(reader)?;
        let partition_count = reader.i32()?;
        topics.insert(
            name,
            TopicInfo {
                topic_id,
                partition_count,
            },
        );
    }
    Ok(topics)
}

fn put_member(writer: &mut Writer, value: &MemberMetadataValue) {
    writer.put_opt_str(value.instance_id.as_deref());
    writer.put_opt_str(value.rack_id.as_deref());
    writer.put_str(&value.client_id);
    writer.put_str(&value.client_host);
    writer.put_len(value.subscribed_topic_names.len());
    for name in &value.subscribed_topic_names {
        writer.put_str(name);
    }
    writer.put_opt_str(value.subscribed_topic_regex.as_deref());
    writer.put_i32(value.rebalance_timeout_ms);
    writer.put_opt_str(value.server_assignor.as_deref());
}

fn read_member(reader: &mut Reader<'_>) -> Result<MemberMetadataValue, DecodeError> {
    let instance_id = reader.opt_string()?;
    let rack_id = reader.opt_string()?;
    let client_id = reader.string()?;
    let client_host = reader.string()?;
    let count = bounded_count(reader, STRING_BYTES_MIN)?;
    let mut subscribed_topic_names = Vec::with_capacity(count);
    for _ in 0..count {
        subscribed_topic_names.push(reader.string()?);
    }
    Ok(MemberMetadataValue {
        instance_id,
        rack_id,
        client_id,
        client_host,
        subscribed_topic_names,
        subscribed_topic_regex: reader.opt_string()?,
        rebalance_timeout_ms: reader.i32()?,
        server_assignor: reader.opt_string()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::offset_records::{decode_record, OffsetsRecord};

    fn assignment() -> Assignment {
        let mut assignment = Assignment::new();
        assignment.insert(Uuid::from_u128(7), [0, 2, 5].into_iter().collect());
        assignment.insert(Uuid::from_u128(9), BTreeSet::new());
        assignment
    }

    fn every_record() -> Vec<ConsumerGroupRecord> {
        let mut topics = BTreeMap::new();
        topics.insert(
            "orders".to_string(),
            TopicInfo {
                topic_id: Uuid::from_u128(7),
                partition_count: 6,
            },
        );
        let mut records = vec![
            ConsumerGroupRecord::GroupEpoch(Some(4)),
            ConsumerGroupRecord::SubscriptionMetadata(Some(topics)),
            ConsumerGroupRecord::MemberMetadata {
                member_id: "m1".into(),
                value: Some(MemberMetadataValue {
                    instance_id: Some("i1".into()),
                    rack_id: None,
                    client_id: "client".into(),
                    client_host: "/127.0.0.1".into(),
                    subscribed_topic_names: vec!["orders".into(), "payments".into()],
                    subscribed_topic_regex: Some("orders.*".into()),
                    rebalance_timeout_ms: 300_000,
                    server_assignor: Some("range".into()),
                }),
            },
            ConsumerGroupRecord::TargetAssignmentEpoch(Some(4)),
            ConsumerGroupRecord::TargetAssignmentMember {
                member_id: "m1".into(),
                partitions: Some(assignment()),
            },
            ConsumerGroupRecord::CurrentAssignment {
                member_id: "m1".into(),
                value: Some(CurrentAssignmentValue {
                    member_epoch: 4,
                    previous_member_epoch: 3,
                    state: 1,
                    assigned_partitions: assignment(),
                    partitions_pending_revocation: Assignment::new(),
                }),
            },
            ConsumerGroupRecord::RegularExpression {
                regex: "orders.*".into(),
                value: Some(ResolvedRegex {
                    topics: ["orders".to_string()].into_iter().collect(),
                    version: 12,
                    timestamp_ms: 1_700_000_000_000,
                }),
            },
        ];
        let tombstones = vec![
            ConsumerGroupRecord::GroupEpoch(None),
            ConsumerGroupRecord::SubscriptionMetadata(None),
            ConsumerGroupRecord::MemberMetadata {
                member_id: "m1".into(),
                value: None,
            },
            ConsumerGroupRecord::TargetAssignmentEpoch(None),
            ConsumerGroupRecord::TargetAssignmentMember {
                member_id: "m1".into(),
                partitions: None,
            },
            ConsumerGroupRecord::CurrentAssignment {
                member_id: "m1".into(),
                value: None,
            },
            ConsumerGroupRecord::RegularExpression {
                regex: "orders.*".into(),
                value: None,
            },
        ];
        records.extend(tombstones);
        records
    }

    #[test]
    fn every_record_round_trips_through_the_offsets_record_decoder() {
        for record in every_record() {
            let (key, value) = encode("group-a", &record);
            let decoded = decode_record(&key, value.as_deref()).expect("decodes");
            assert_eq!(
                decoded,
                OffsetsRecord::ConsumerGroup {
                    group: "group-a".into(),
                    record: record.clone()
                }
            );
        }
    }

    #[test]
    fn truncated_keys_and_values_are_errors_not_panics() {
        for record in every_record() {
            let (key, value) = encode("g", &record);
            for cut in 0..key.len() {
                assert!(decode_record(&key[..cut], value.as_deref()).is_err());
            }
            if let Some(value) = value {
                for cut in 0..value.len() {
                    assert!(
                        decode_record(&key, Some(&value[..cut])).is_err(),
                        "{record:?} {cut}"
                    );
                }
                let mut longer = value.clone();
                longer.push(0);
                assert!(decode_record(&key, Some(&longer)).is_err());
            }
        }
    }

    #[test]
    fn a_huge_count_is_refused_before_allocating() {
        let mut value = Writer::default();
        value.put_i16(CONSUMER_GROUP_VALUE_VERSION);
        value.put_i32(i32::MAX);
        let (key, _) = encode("g", &ConsumerGroupRecord::SubscriptionMetadata(None));
        assert!(matches!(
            decode_record(&key, Some(&value.0)),
            Err(DecodeError::Truncated { .. })
        ));
    }
}
