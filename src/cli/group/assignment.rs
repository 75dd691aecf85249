//! Decoding the assignment a consumer group member holds, as DescribeGroups
//! returns it, so `describe` can show which member owns which partition.
//! The bytes come from other clients: every read is bounds-checked and a
//! bad assignment is an error, never a panic.

/// Decodes a consumer protocol assignment (`ConsumerProtocolAssignment`, any
/// version: i16 version, [topic string, [i32 partition]], user data bytes;
/// v1+ only add fields after these) into (topic, partitions).
pub fn decode_assignment(bytes: &[u8]) -> Result<Vec<(String, Vec<i32>)>, String> {
    let mut reader = Reader { bytes, position: 0 };
    let version = reader.i16()?;
    if version < 0 {
        return Err(format!("assignment version {version}"));
    }
    let topic_count = reader.array_length()?;
    let mut topics = Vec::new();
    for _ in 0..topic_count {
        let topic_length =
            usize::try_from(reader.i16()?).map_err(|_| "null topic name".to_string())?;
        let topic = String::from_utf8(reader.take(topic_length)?.to_vec())
            .map_err(|_| "topic name is not UTF-8".to_string())?;
        let partition_count = reader.array_length()?;
        let mut partitions = Vec::new();
        for _ in 0..partition_count {
            partitions.push(reader.i32()?);
        }
        topics.push((topic, partitions));
    }
    Ok(topics)
}

/// Bounds-checked big-endian reads over an untrusted byte slice.
struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], String> {
        let end = self
            .position
            .checked_add(count)
            .filter(|end| *end <= self.bytes.len());
        let end = end.ok_or_else(|| "assignment is truncated".to_string())?;
        let slice = &self.bytes[self.position..end];
        self.position = end;
        Ok(slice)
    }

    fn i16(&mut self) -> Result<i16, String> {
        let bytes = self.take(2)?;
        Ok(i16::from_be_bytes([bytes[0], bytes[1]]))
    }

    fn i32(&mut self) -> Result<i32, String> {
        let bytes = self.take(4)?;
        Ok(i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// An array length; null (-1) is an empty array.
    fn array_length(&mut self) -> Result<usize, String> {
        let length = self.i32()?;
        Ok(usize::try_from(length).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(version: i16, topics: &[(&str, &[i32])], user_data: Option<&[u8]>) -> Vec<u8> {
        let mut bytes = version.to_be_bytes().to_vec();
        bytes.extend((topics.len() as i32).to_be_bytes());
        for (topic, partitions) in topics {
            bytes.extend((topic.len() as i16).to_be_bytes());
            bytes.extend(topic.as_bytes());
            bytes.extend((partitions.len() as i32).to_be_bytes());
            for partition in *partitions {
                bytes.extend(partition.to_be_bytes());
            }
        }
        match user_data {
            Some(data) => {
                bytes.extend((data.len() as i32).to_be_bytes());
                bytes.extend(data);
            }
            None => bytes.extend((-1i32).to_be_bytes()),
        }
        bytes
    }

    #[test]
    fn consumer_assignments_decode_with_any_version_and_user_data() {
        let bytes = assignment(0, &[("orders", &[0, 2]), ("b", &[])], None);
        assert_eq!(
            decode_assignment(&bytes).unwrap(),
            vec![
                ("orders".to_string(), vec![0, 2]),
                ("b".to_string(), vec![])
            ]
        );
        let bytes = assignment(3, &[("t", &[5])], Some(b"sticky"));
        assert_eq!(
            decode_assignment(&bytes).unwrap(),
            vec![("t".to_string(), vec![5])]
        );
    }

    #[test]
    fn truncated_or_hostile_assignments_are_errors() {
        let bytes = assignment(0, &[("orders", &[0, 2])], None);
        for length in 0..bytes.len() - 4 {
            assert!(
                decode_assignment(&bytes[..length]).is_err(),
                "length {length}"
            );
        }
        let mut huge = 0i16.to_be_bytes().to_vec();
        huge.extend(i32::MAX.to_be_bytes());
        assert!(decode_assignment(&huge).is_err());
    }
}
