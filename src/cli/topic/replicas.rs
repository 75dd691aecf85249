//! `corelog topic elect-leaders`, `reassign` and `reassignments`: the
//! replication admin requests (ElectLeaders, AlterPartitionReassignments,
//! ListPartitionReassignments), like Kafka's `kafka-leader-election` and
//! `kafka-reassign-partitions`. Sent to the controller; runs on the CLI's
//! main thread with the blocking client.

use std::time::{Duration, Instant};

use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, ApiKey, BrokerId, ElectLeadersRequest,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};

use super::{controller, topic_metadata, topic_name, with_message};
use crate::cli::kafka::error::error_name;
use crate::cli::kafka::{KafkaClient, ToolError};

/// How long the controller may take to decide.
const ADMIN_TIMEOUT_MS: i32 = 30_000;
/// ELECTION_NOT_NEEDED: the partition already has the leader asked for.
const ELECTION_NOT_NEEDED: i16 = 84;
/// How often `reassign --wait` looks again.
const WAIT_POLL: Duration = Duration::from_millis(500);

/// `elect-leaders`: a preferred (or unclean) election for `partitions` of
/// `topics`, or for every partition when `topics` is empty.
pub(super) fn elect_leaders(
    client: &mut KafkaClient,
    topics: &[String],
    partitions: &[i32],
    unclean: bool,
) -> Result<(), ToolError> {
    let asked = if topics.is_empty() {
        None
    } else {
        let mut asked = Vec::with_capacity(topics.len());
        for topic in topics {
            let indexes = if partitions.is_empty() {
                (0..topic_metadata(client, topic)?.partitions.len() as i32).collect()
            } else {
                partitions.to_vec()
            };
            asked.push(
                TopicPartitions::default()
                    .with_topic(topic_name(topic))
                    .with_partitions(indexes),
            );
        }
        Some(asked)
    };
    let node = controller(client)?;
    let version = client.version(&node, ApiKey::ElectLeaders, 2)?;
    if unclean && version < 1 {
        return Err(ToolError::Usage(
            "the broker knows only preferred elections (ElectLeaders v0)".into(),
        ));
    }
    let request = ElectLeadersRequest::default()
        .with_election_type(i8::from(unclean))
        .with_topic_partitions(asked)
        .with_timeout_ms(ADMIN_TIMEOUT_MS);
    let response = client.send(&node, version, &request)?;
    if response.error_code != 0 {
        return Err(ToolError::kafka("electing leaders", response.error_code));
    }
    let kind = if unclean { "unclean" } else { "preferred" };
    let mut failed = 0;
    for topic in &response.replica_election_results {
        for partition in &topic.partition_result {
            let name = format!("{}-{}", &*topic.topic.0, partition.partition_id);
            match partition.error_code {
                0 => println!("Elected a new leader ({kind}) for {name}."),
                ELECTION_NOT_NEEDED => println!("{name} already has its {kind} leader."),
                code => {
                    failed += 1;
                    let context = with_message(name, &partition.error_message);
                    eprintln!("corelog: {context}: {}", error_name(code));
                }
            }
        }
    }
    if failed > 0 {
        return Err(ToolError::Usage(format!(
            "{failed} partition(s) got no new leader"
        )));
    }
    Ok(())
}

/// What `reassign` asks for.
pub(super) enum ReassignTarget {
    /// These replicas for `partition`.
    Replicas { partition: i32, replicas: Vec<i32> },
    /// Every partition spread over `brokers`, keeping its replica count.
    Spread { brokers: Vec<i32> },
    /// Cancel the reassignment of these partitions (every one if empty).
    Cancel { partitions: Vec<i32> },
}

/// Kafka's round robin of each partition's `count` replicas over
/// `brokers`, starting one further along for each partition.
fn spread(brokers: &[i32], partition: usize, count: usize) -> Vec<i32> {
    (0..count.min(brokers.len()))
        .map(|replica| brokers[(partition + replica) % brokers.len()])
        .collect()
}

/// `reassign`: moves `topic`'s replicas; with `wait`, until done.
pub(super) fn reassign(
    client: &mut KafkaClient,
    topic: &str,
    target: ReassignTarget,
    wait: Option<Duration>,
) -> Result<(), ToolError> {
    let metadata = topic_metadata(client, topic)?;
    let mut partitions: Vec<ReassignablePartition> = match target {
        ReassignTarget::Replicas {
            partition,
            replicas,
        } => vec![ReassignablePartition::default()
            .with_partition_index(partition)
            .with_replicas(Some(replicas.into_iter().map(BrokerId).collect()))],
        ReassignTarget::Spread { brokers } => {
            if brokers.is_empty() {
                return Err(ToolError::Usage("--onto needs at least one broker".into()));
            }
            metadata
                .partitions
                .iter()
                .map(|partition| {
                    let index = partition.partition_index;
                    let count = partition.replica_nodes.len();
                    let replicas = spread(&brokers, index as usize, count);
                    ReassignablePartition::default()
                        .with_partition_index(index)
                        .with_replicas(Some(replicas.into_iter().map(BrokerId).collect()))
                })
                .collect()
        }
        ReassignTarget::Cancel { partitions } => {
            let indexes: Vec<i32> = if partitions.is_empty() {
                ongoing(client, topic)?
            } else {
                partitions
            };
            indexes
                .into_iter()
                .map(|index| ReassignablePartition::default().with_partition_index(index))
                .collect()
        }
    };
    partitions.sort_by_key(|partition| partition.partition_index);
    if partitions.is_empty() {
        println!("No reassignment of {topic} to cancel.");
        return Ok(());
    }
    let node = controller(client)?;
    let version = client.version(&node, ApiKey::AlterPartitionReassignments, 1)?;
    let request = AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(ADMIN_TIMEOUT_MS)
        .with_allow_replication_factor_change(true)
        .with_topics(vec![ReassignableTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(partitions)]);
    let response = client.send(&node, version, &request)?;
    if response.error_code != 0 {
        let context = with_message(format!("reassigning {topic}"), &response.error_message);
        return Err(ToolError::kafka(context, response.error_code));
    }
    let mut failed = 0;
    for result in response
        .responses
        .iter()
        .flat_map(|topic| &topic.partitions)
    {
        let name = format!("{topic}-{}", result.partition_index);
        if result.error_code == 0 {
            println!("Reassignment of {name} accepted.");
        } else {
            failed += 1;
            let context = with_message(name, &result.error_message);
            eprintln!("corelog: {context}: {}", error_name(result.error_code));
        }
    }
    if failed > 0 {
        return Err(ToolError::Usage(format!(
            "{failed} partition reassignment(s) refused"
        )));
    }
    let Some(wait) = wait else {
        return Ok(());
    };
    let deadline = Instant::now() + wait;
    loop {
        let left = ongoing(client, topic)?;
        if left.is_empty() {
            println!("Every reassignment of {topic} is complete.");
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(ToolError::Usage(format!(
                "reassignment of {topic} still under way for partitions {left:?} after {}s",
                wait.as_secs()
            )));
        }
        std::thread::sleep(WAIT_POLL);
    }
}

fn list(
    client: &mut KafkaClient,
    topics: Option<Vec<ListPartitionReassignmentsTopics>>,
) -> Result<ListPartitionReassignmentsResponse, ToolError> {
    let node = controller(client)?;
    let version = client.version(&node, ApiKey::ListPartitionReassignments, 0)?;
    let request = ListPartitionReassignmentsRequest::default()
        .with_timeout_ms(ADMIN_TIMEOUT_MS)
        .with_topics(topics);
    let response = client.send(&node, version, &request)?;
    if response.error_code != 0 {
        let context = with_message("listing reassignments".into(), &response.error_message);
        return Err(ToolError::kafka(context, response.error_code));
    }
    Ok(response)
}

/// The partitions of `topic` under reassignment.
fn ongoing(client: &mut KafkaClient, topic: &str) -> Result<Vec<i32>, ToolError> {
    let count = topic_metadata(client, topic)?.partitions.len() as i32;
    let asked = ListPartitionReassignmentsTopics::default()
        .with_name(topic_name(topic))
        .with_partition_indexes((0..count).collect());
    let response = list(client, Some(vec![asked]))?;
    Ok(response
        .topics
        .iter()
        .flat_map(|topic| &topic.partitions)
        .map(|partition| partition.partition_index)
        .collect())
}

/// `reassignments`: every partition under reassignment.
pub(super) fn reassignments(client: &mut KafkaClient) -> Result<(), ToolError> {
    let response = list(client, None)?;
    if response.topics.is_empty() {
        println!("No reassignment under way.");
        return Ok(());
    }
    let ids = |brokers: &[BrokerId]| {
        brokers
            .iter()
            .map(|broker| broker.0.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    println!("TOPIC\tPARTITION\tREPLICAS\tADDING\tREMOVING");
    for topic in &response.topics {
        for partition in &topic.partitions {
            println!(
                "{}\t{}\t{}\t{}\t{}",
                &*topic.name.0,
                partition.partition_index,
                ids(&partition.replicas),
                ids(&partition.adding_replicas),
                ids(&partition.removing_replicas)
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreading_starts_one_broker_further_for_each_partition() {
        let brokers = [1, 2, 3, 4];
        assert_eq!(spread(&brokers, 0, 3), vec![1, 2, 3]);
        assert_eq!(spread(&brokers, 1, 3), vec![2, 3, 4]);
        assert_eq!(spread(&brokers, 3, 3), vec![4, 1, 2]);
        assert_eq!(
            spread(&brokers, 2, 9),
            vec![3, 4, 1, 2],
            "at most every broker"
        );
    }
}
