//! The value layout every bench message carries, so consumers can measure
//! end-to-end latency with microsecond precision and check order and loss
//! without trusting the broker: `[due time µs since the epoch: u64]
//! [producer id: u32][sequence within (producer, partition): u64][filler]`.

use bytes::{Buf, BufMut};

/// Bytes of the header; smaller configured sizes are raised to this.
pub const PAYLOAD_HEADER_BYTES: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadHeader {
    pub due_time_us: u64,
    pub producer_id: u32,
    pub sequence: u64,
}

/// Writes a value of `size` bytes (at least the header) into `out`.
pub fn write_payload(out: &mut Vec<u8>, header: PayloadHeader, size: usize) {
    out.clear();
    out.put_u64(header.due_time_us);
    out.put_u32(header.producer_id);
    out.put_u64(header.sequence);
    out.resize(size.max(PAYLOAD_HEADER_BYTES), b'x');
}

/// Reads the header back, or `None` for a value that is not a bench payload.
pub fn read_payload(mut value: &[u8]) -> Option<PayloadHeader> {
    if value.len() < PAYLOAD_HEADER_BYTES {
        return None;
    }
    Some(PayloadHeader {
        due_time_us: value.get_u64(),
        producer_id: value.get_u32(),
        sequence: value.get_u64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_and_has_the_requested_size() {
        let header = PayloadHeader {
            due_time_us: 123_456,
            producer_id: 7,
            sequence: 99,
        };
        let mut value = Vec::new();
        write_payload(&mut value, header, 1024);
        assert_eq!(value.len(), 1024);
        assert_eq!(read_payload(&value), Some(header));
        write_payload(&mut value, header, 4);
        assert_eq!(value.len(), PAYLOAD_HEADER_BYTES);
        assert_eq!(read_payload(b"short"), None);
    }
}
