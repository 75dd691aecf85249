//! How `corelog produce` sends what it read: each record goes to a
//! partition (`--partition`, the murmur2 hash of its key as Kafka's default
//! partitioner, or one partition per send for unkeyed records), each
//! partition's records become one RecordBatch v2, and each leader gets one
//! Produce request. Keeps the per-partition tally the summary reports.

use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::Producer;
use crate::cli::kafka::{Node, ToolError};
use crate::cli::partitioner::partition_for_key;
use crate::cli::records::{encode_batch, OutgoingRecord};

/// Produce v3 is the first with RecordBatch v2; v13 switches to topic ids.
const PRODUCE_VERSION_MAX: i16 = 12;
/// How long the broker may take to meet `acks` (Kafka's request.timeout.ms default).
const PRODUCE_TIMEOUT_MS: i32 = 30_000;

impl Producer {
    fn partition_of(&self, record: &OutgoingRecord, unkeyed: i32) -> i32 {
        match (self.partition, &record.key) {
            (Some(partition), _) => partition,
            (None, Some(key)) => {
                let index = partition_for_key(key, self.layout.partitions.len() as i32);
                self.layout.partitions[index as usize].partition
            }
            (None, None) => unkeyed,
        }
    }

    /// Partitions `records`, then one Produce request per leader.
    pub(super) fn send(&mut self, records: Vec<OutgoingRecord>) -> Result<(), ToolError> {
        let count = self.layout.partitions.len();
        let unkeyed = self.layout.partitions[self.next_unkeyed % count].partition;
        self.next_unkeyed = self.next_unkeyed.wrapping_add(1);
        let mut by_partition: BTreeMap<i32, Vec<OutgoingRecord>> = BTreeMap::new();
        for record in records {
            let partition = self.partition_of(&record, unkeyed);
            by_partition.entry(partition).or_default().push(record);
        }
        let timestamp_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis() as i64);
        let mut by_leader: BTreeMap<i32, Vec<(i32, usize, Bytes)>> = BTreeMap::new();
        for (partition, records) in by_partition {
            let batch = encode_batch(&records, &self.headers, timestamp_ms, self.codec)
                .map_err(|error| ToolError::Protocol(error.to_string()))?;
            let leader = self
                .layout
                .partitions
                .iter()
                .find(|p| p.partition == partition)
                .map_or(-1, |p| p.leader);
            by_leader
                .entry(leader)
                .or_default()
                .push((partition, records.len(), batch));
        }
        for (leader, batches) in by_leader {
            self.send_to_leader(leader, batches)?;
        }
        Ok(())
    }

    fn send_to_leader(
        &mut self,
        leader: i32,
        batches: Vec<(i32, usize, Bytes)>,
    ) -> Result<(), ToolError> {
        let node = Node::Broker(leader);
        let version = self
            .client
            .version(&node, ApiKey::Produce, PRODUCE_VERSION_MAX)?;
        let counts: HashMap<i32, usize> = batches.iter().map(|(p, n, _)| (*p, *n)).collect();
        let partition_data = batches
            .into_iter()
            .map(|(partition, _, batch)| {
                PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(batch))
            })
            .collect();
        let request = ProduceRequest::default()
            .with_acks(self.acks)
            .with_timeout_ms(PRODUCE_TIMEOUT_MS)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(self.topic.clone())))
                .with_partition_data(partition_data)]);
        if self.acks == 0 {
            self.send_unacknowledged(leader, version, &request)?;
            for (partition, count) in counts {
                *self.written.entry(partition).or_default() += count as u64;
            }
            return Ok(());
        }
        let response = self.client.send(&node, version, &request)?;
        for answered in response
            .responses
            .iter()
            .flat_map(|t| t.partition_responses.iter())
        {
            let count = counts.get(&answered.index).copied().unwrap_or(0) as u64;
            if answered.error_code == 0 {
                *self.written.entry(answered.index).or_default() += count;
                continue;
            }
            let error = ToolError::kafka(
                format!(
                    "topic {} partition {}: {count} records not written",
                    self.topic, answered.index
                ),
                answered.error_code,
            );
            match &answered.error_message {
                Some(message) => eprintln!("corelog produce: {error}: {message}"),
                None => eprintln!("corelog produce: {error}"),
            }
            self.failed_records += count;
            self.first_error.get_or_insert(answered.error_code);
        }
        Ok(())
    }

    /// Prints the summary; an error if any record was not written.
    pub(super) fn finish(mut self) -> Result<(), ToolError> {
        self.drain_unacknowledged()?;
        let total: u64 = self.written.values().sum();
        let per_partition: Vec<String> = self
            .written
            .iter()
            .map(|(partition, count)| format!("{partition}: {count}"))
            .collect();
        let verb = if self.acks == 0 {
            "sent (acks=0)"
        } else {
            "produced"
        };
        eprintln!(
            "{verb} {total} records to topic {} in {} partitions ({})",
            self.topic,
            self.written.len(),
            per_partition.join(", ")
        );
        match self.first_error {
            None => Ok(()),
            Some(code) => Err(ToolError::kafka(
                format!(
                    "{} of {} records to topic {} were not written",
                    self.failed_records,
                    self.failed_records + total,
                    self.topic
                ),
                code,
            )),
        }
    }
}
