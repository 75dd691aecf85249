//! InitProducerId and Produce over a raw socket with the `kafka-protocol` codec, carrying
//! record batches stamped by hand with a producer id, epoch and base sequence
//! (`common::wire::idempotent_record_batch_v2`), so each test chooses exactly which
//! sequence numbers the broker sees.

use std::net::TcpStream;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{
    InitProducerIdRequest, InitProducerIdResponse, ProduceRequest, ProducerId, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::common::wire::{connect, idempotent_record_batch_v2};
use crate::wire::call;

/// The Produce version the raw tests speak (flexible, with log_start_offset and
/// record errors in the answer).
pub const PRODUCE_VERSION: i16 = 9;

/// Kafka error codes (protocol guide, "Error Codes").
pub const NONE: i16 = 0;
pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
pub const INVALID_PRODUCER_EPOCH: i16 = 47;

/// One producer's view of one partition, over its own connection.
pub struct RawProducer {
    stream: TcpStream,
    pub topic: String,
    pub producer_id: i64,
    pub epoch: i16,
}

impl RawProducer {
    /// Connects and asks for a producer id (InitProducerId v4, no transactional id).
    pub fn init(bootstrap: &str, topic: &str) -> RawProducer {
        let mut stream = connect(bootstrap);
        let answer = init_producer_id(&mut stream, 4);
        assert_eq!(answer.error_code, NONE, "InitProducerId: {answer:?}");
        RawProducer {
            stream,
            topic: topic.to_string(),
            producer_id: answer.producer_id.0,
            epoch: answer.producer_epoch,
        }
    }

    /// Reconnects (after a broker restart) keeping the producer id and epoch.
    pub fn reconnect(&mut self, bootstrap: &str) {
        self.stream = connect(bootstrap);
    }

    /// A batch of `count` records (values `"<first_sequence + i>"`) with this producer's
    /// id, `epoch` and `first_sequence`.
    pub fn batch(&self, epoch: i16, first_sequence: i32, count: i32) -> Vec<u8> {
        // i64: a batch may run past i32::MAX, where sequence numbers wrap to 0.
        let values: Vec<String> = (0..i64::from(count))
            .map(|index| (i64::from(first_sequence) + index).to_string())
            .collect();
        let records: Vec<(&[u8], &[u8])> = values
            .iter()
            .map(|value| (&b"k"[..], value.as_bytes()))
            .collect();
        idempotent_record_batch_v2(&records, now_ms(), self.producer_id, epoch, first_sequence)
    }

    /// Produces `batch` to `partition` with acks=all; the partition's answer.
    pub fn produce(&mut self, partition: i32, batch: &[u8]) -> PartitionProduceResponse {
        produce(&mut self.stream, &self.topic, partition, batch)
    }

    /// `(error code, base offset)` of producing `batch` to `partition`.
    pub fn produce_outcome(&mut self, partition: i32, batch: &[u8]) -> (i16, i64) {
        let answer = self.produce(partition, batch);
        (answer.error_code, answer.base_offset)
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// InitProducerId without a transactional id, at `version`, the way a client of that
/// version asks (v3+ carry producer id and epoch -1 for a new producer).
pub fn init_producer_id(stream: &mut TcpStream, version: i16) -> InitProducerIdResponse {
    init_producer_id_for(stream, version, -1, -1)
}

/// InitProducerId without a transactional id carrying an existing producer id and epoch
/// (v3+, KIP-360: what an idempotent producer sends to get going again after an error).
pub fn init_producer_id_for(
    stream: &mut TcpStream,
    version: i16,
    producer_id: i64,
    producer_epoch: i16,
) -> InitProducerIdResponse {
    let mut request = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000);
    if version >= 3 {
        request = request
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(producer_epoch);
    }
    call(stream, version, &request)
}

/// One Produce (acks=all) of `batch` to `topic`/`partition`; that partition's answer.
pub fn produce(
    stream: &mut TcpStream,
    topic: &str,
    partition: i32,
    batch: &[u8],
) -> PartitionProduceResponse {
    let request = ProduceRequest::default()
        .with_transactional_id(None)
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(Bytes::copy_from_slice(batch)))])]);
    let response = call(stream, PRODUCE_VERSION, &request);
    let [topic_response] = response.responses.as_slice() else {
        panic!("one topic expected in {response:?}");
    };
    let [partition_response] = topic_response.partition_responses.as_slice() else {
        panic!("one partition expected in {response:?}");
    };
    partition_response.clone()
}
