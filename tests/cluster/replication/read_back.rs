//! Reading a replicated topic back after a failover and checking it against what the
//! producer was told: every partition from the beginning to the high watermark its leader
//! answers, then offsets and numbers strictly increasing (nothing duplicated, nothing
//! reordered) and every acknowledged record at the offset its delivery report gave. This is
//! the "no acknowledged write lost" half of the scenarios that run a `numbered_stream`;
//! `replica_logs` is the "replicas agree" half.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;

use super::numbered_stream::{number_of, Report};
use crate::common::{assign_consumer, assign_from_beginning, metadata_consumer, ADMIN_TIMEOUT};
use crate::DATA_TIMEOUT;

/// Partition -> (number -> acknowledged offset) of the successful reports.
pub(crate) fn acknowledged(
    reports: &[Report],
    partitions: i32,
) -> BTreeMap<i32, BTreeMap<usize, i64>> {
    let mut acked: BTreeMap<i32, BTreeMap<usize, i64>> = BTreeMap::new();
    for report in reports {
        if let Ok(offset) = report.outcome {
            let partition = (report.id % partitions as usize) as i32;
            acked
                .entry(partition)
                .or_default()
                .insert(report.id / partitions as usize, offset);
        }
    }
    acked
}

/// Reads every partition of `topic` from the beginning to its high watermark (asked of
/// `bootstrap` first); partition -> (offset, number) in the order read. Panics on a value
/// that `numbered_stream::numbered_value` did not write.
pub(crate) fn read_numbered(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
) -> BTreeMap<i32, Vec<(i64, usize)>> {
    read_values(bootstrap, topic, partitions)
        .into_iter()
        .map(|(partition, records)| {
            let numbers = records
                .iter()
                .map(|(offset, value)| (*offset, number_of(partition, value)))
                .collect();
            (partition, numbers)
        })
        .collect()
}

/// Reads every partition of `topic` from the beginning to its high watermark (asked of
/// `bootstrap` first); partition -> (offset, value as text) in the order read.
pub(crate) fn read_values(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
) -> BTreeMap<i32, Vec<(i64, String)>> {
    let ends: BTreeMap<i32, i64> = (0..partitions)
        .map(|partition| {
            let (_, high) = metadata_consumer(bootstrap)
                .fetch_watermarks(topic, partition, ADMIN_TIMEOUT)
                .unwrap_or_else(|error| panic!("ListOffsets {topic}/{partition}: {error}"));
            (partition, high)
        })
        .collect();
    eprintln!("{topic}: high watermarks {ends:?}");
    let consumer = assign_consumer(bootstrap, &[]);
    assign_from_beginning(&consumer, topic, partitions);
    let mut read: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
    let reached_end = |read: &BTreeMap<i32, Vec<(i64, String)>>| {
        ends.iter().all(|(partition, end)| {
            *end == 0
                || read
                    .get(partition)
                    .and_then(|records| records.last())
                    .is_some_and(|(offset, _)| *offset >= end - 1)
        })
    };
    let deadline = Instant::now() + DATA_TIMEOUT;
    let mut errors = Vec::new();
    while !reached_end(&read) {
        assert!(
            Instant::now() < deadline,
            "{topic}: did not read up to the high watermarks {ends:?} within {DATA_TIMEOUT:?}; \
             read {:?} records per partition; consumer errors: {errors:?}",
            read.iter()
                .map(|(partition, records)| (*partition, records.len()))
                .collect::<BTreeMap<_, _>>()
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let value = String::from_utf8_lossy(message.payload().unwrap_or_default());
                read.entry(message.partition())
                    .or_default()
                    .push((message.offset(), value.into_owned()));
            }
            Some(Err(KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(error)) if errors.len() < 10 => errors.push(error.to_string()),
            Some(Err(_)) => {}
        }
    }
    read
}

/// Checks one partition's log against the acknowledgements: offsets and numbers strictly
/// increase (nothing read twice, nothing reordered), and every acknowledged number is at
/// the offset its delivery report gave. Returns the problems found.
pub(crate) fn check_partition(
    partition: i32,
    read: &[(i64, usize)],
    acked: &BTreeMap<usize, i64>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for pair in read.windows(2) {
        let ((offset_a, number_a), (offset_b, number_b)) = (pair[0], pair[1]);
        if offset_b <= offset_a || number_b <= number_a {
            problems.push(format!(
                "partition {partition}: number {number_a} at offset {offset_a} is followed by \
                 number {number_b} at offset {offset_b} (a duplicate or reordering)"
            ));
        }
    }
    let by_offset: BTreeMap<i64, usize> = read.iter().copied().collect();
    let mut missing = Vec::new();
    for (number, offset) in acked {
        match by_offset.get(offset) {
            Some(found) if found == number => {}
            found => missing.push(format!("n{number}@{offset} (read there: {found:?})")),
        }
    }
    if !missing.is_empty() {
        problems.push(format!(
            "partition {partition}: {} of {} acknowledged records are not where their \
             delivery report put them; first: {:?}",
            missing.len(),
            acked.len(),
            &missing[..missing.len().min(10)]
        ));
    }
    problems
}
