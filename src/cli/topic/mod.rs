//! `corelog topic ...`: create, list, describe, delete, grow and reconfigure
//! topics over the Kafka admin APIs (CreateTopics, Metadata, ListOffsets,
//! DescribeConfigs, DeleteTopics, CreatePartitions, IncrementalAlterConfigs),
//! so it works against any Kafka-compatible broker, like `kafka-topics` and
//! `kafka-configs`. Runs on the CLI's main thread with the blocking client.
//!
//! This file owns the flags, the dispatch and what every subcommand shares:
//! routing admin requests to the controller and looking up one topic.
//!
//! Inside:
//! - `create_delete`: `create`, `delete` and `add-partitions` (CreateTopics,
//!   DeleteTopics, CreatePartitions): the requests that change what exists
//! - `describe`: `list` and `describe` (Metadata, ListOffsets, DescribeConfigs)
//! - `configs`: DescribeConfigs and `alter-config` (IncrementalAlterConfigs)
//! - `replicas`: `elect-leaders`, `reassign` and `reassignments`
//!   (ElectLeaders, AlterPartitionReassignments, ListPartitionReassignments)

mod configs;
mod create_delete;
mod describe;
mod replicas;

use clap::{Args, Subcommand};
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;

use crate::cli::common::{parse_key_value, ConnectArgs, TopicArg};
use crate::cli::kafka::{KafkaClient, Node, ToolError};
use configs::alter_config;
use create_delete::{add_partitions, create, delete};
use describe::{describe, list};

const CLIENT_ID: &str = "corelog-topic";
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

#[derive(Debug, Args)]
pub struct TopicArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(subcommand)]
    pub command: TopicCommand,
}

#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    Create {
        #[command(flatten)]
        topic: TopicArg,
        /// Partitions (the broker's default when omitted).
        #[arg(short = 'p', long)]
        partitions: Option<i32>,
        /// Replicas per partition (the broker's default when omitted).
        #[arg(short = 'r', long)]
        replication_factor: Option<i16>,
        /// Topic config, key=value (repeatable), e.g. retention.ms=3600000.
        #[arg(long = "config", value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
    },
    /// List topics.
    List {
        /// Include internal topics such as __consumer_offsets.
        #[arg(long)]
        internal: bool,
        #[arg(long)]
        json: bool,
    },
    /// Show a topic's partitions, leaders, offsets and configs.
    Describe {
        #[command(flatten)]
        topic: TopicArg,
        /// Show every config, not only those that differ from the defaults.
        #[arg(long)]
        all_configs: bool,
        #[arg(long)]
        json: bool,
    },
    /// Delete topics and their data.
    Delete {
        #[arg(required_unless_present = "topic_flags")]
        names: Vec<String>,
        /// A topic to delete, as Kafka's tools spell it (repeatable).
        #[arg(long = "topic", id = "topic_flags", value_name = "TOPIC")]
        topic_flags: Vec<String>,
    },
    /// Grow a topic to a total number of partitions (partitions are never removed).
    AddPartitions {
        #[command(flatten)]
        topic: TopicArg,
        /// The new total number of partitions.
        #[arg(long)]
        total: i32,
    },
    /// Set or remove topic config overrides.
    AlterConfig {
        #[command(flatten)]
        topic: TopicArg,
        /// key=value to set (repeatable).
        #[arg(long = "set", value_parser = parse_key_value)]
        set: Vec<(String, String)>,
        /// Key to reset to the default (repeatable).
        #[arg(long = "delete")]
        delete: Vec<String>,
    },
    /// Move leaderships back to the preferred (first) replicas, or, with
    /// --unclean, give leaderless partitions any live replica.
    ElectLeaders {
        /// Topics (every partition of the cluster when none).
        topics: Vec<String>,
        /// Only these partitions of the topics (repeatable).
        #[arg(long = "partition", requires = "topics")]
        partitions: Vec<i32>,
        /// An unclean election: records only the old leaders had may be lost.
        #[arg(long)]
        unclean: bool,
    },
    /// Move a topic's replicas to other brokers (added, caught up, then the
    /// old ones dropped), or cancel a move.
    Reassign {
        #[command(flatten)]
        topic: TopicArg,
        /// Spread every partition over these brokers (comma-separated),
        /// keeping each partition's replica count.
        #[arg(long, value_delimiter = ',', conflicts_with_all = ["replicas", "cancel"])]
        onto: Vec<i32>,
        /// The partition whose replicas --replicas sets (or --cancel cancels).
        #[arg(long)]
        partition: Option<i32>,
        /// The new replicas of --partition, preferred leader first.
        #[arg(
            long,
            value_delimiter = ',',
            requires = "partition",
            conflicts_with = "cancel"
        )]
        replicas: Vec<i32>,
        /// Cancel the topic's reassignments (or --partition's).
        #[arg(long)]
        cancel: bool,
        /// Wait up to this many seconds for the reassignment to complete.
        #[arg(long)]
        wait_secs: Option<u64>,
    },
    /// List the partitions whose replicas are being reassigned.
    Reassignments,
}

pub fn run(args: TopicArgs) -> Result<(), ToolError> {
    let mut client = args.connect.connect(CLIENT_ID)?;
    match args.command {
        TopicCommand::Create {
            topic,
            partitions,
            replication_factor,
            configs,
        } => create(
            &mut client,
            topic.name(),
            partitions,
            replication_factor,
            &configs,
        ),
        TopicCommand::List { internal, json } => list(&mut client, internal, json),
        TopicCommand::Describe {
            topic,
            all_configs,
            json,
        } => describe(&mut client, topic.name(), all_configs, json),
        TopicCommand::Delete {
            mut names,
            topic_flags,
        } => {
            names.extend(topic_flags);
            delete(&mut client, &names)
        }
        TopicCommand::AddPartitions { topic, total } => {
            add_partitions(&mut client, topic.name(), total)
        }
        TopicCommand::AlterConfig { topic, set, delete } => {
            alter_config(&mut client, topic.name(), &set, &delete)
        }
        TopicCommand::ElectLeaders {
            topics,
            partitions,
            unclean,
        } => replicas::elect_leaders(&mut client, &topics, &partitions, unclean),
        TopicCommand::Reassign {
            topic,
            onto,
            partition,
            replicas,
            cancel,
            wait_secs,
        } => {
            let target = if cancel {
                replicas::ReassignTarget::Cancel {
                    partitions: partition.into_iter().collect(),
                }
            } else if !onto.is_empty() {
                replicas::ReassignTarget::Spread { brokers: onto }
            } else {
                match partition {
                    Some(partition) if !replicas.is_empty() => replicas::ReassignTarget::Replicas {
                        partition,
                        replicas,
                    },
                    _ => {
                        return Err(ToolError::Usage(
                            "say where: --onto, --partition with --replicas, or --cancel".into(),
                        ))
                    }
                }
            };
            replicas::reassign(
                &mut client,
                topic.name(),
                target,
                wait_secs.map(std::time::Duration::from_secs),
            )
        }
        TopicCommand::Reassignments => replicas::reassignments(&mut client),
    }
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// `context` followed by the broker's explanation, when it gave one.
fn with_message(context: String, message: &Option<StrBytes>) -> String {
    match message.as_deref() {
        Some(message) if !message.is_empty() => format!("{context} ({message})"),
        _ => context,
    }
}

/// Admin requests go to the controller, as Kafka's admin client sends them.
fn controller(client: &mut KafkaClient) -> Result<Node, ToolError> {
    let metadata = client.metadata(Some(&[]))?;
    Ok(match metadata.controller_id.0 {
        id if id >= 0 => Node::Broker(id),
        _ => Node::Any,
    })
}

/// The topic's metadata, or a clear UNKNOWN_TOPIC_OR_PARTITION error.
pub fn topic_metadata(
    client: &mut KafkaClient,
    name: &str,
) -> Result<MetadataResponseTopic, ToolError> {
    let metadata = client.metadata(Some(&[name.to_string()]))?;
    let topic = metadata
        .topics
        .into_iter()
        .find(|topic| topic.name.as_ref().map(|topic_name| &*topic_name.0) == Some(name));
    match topic {
        Some(topic) if topic.error_code == 0 => Ok(topic),
        Some(topic) if topic.error_code != UNKNOWN_TOPIC_OR_PARTITION => {
            Err(ToolError::kafka(format!("topic {name}"), topic.error_code))
        }
        _ => Err(ToolError::kafka(
            format!("topic {name} does not exist"),
            UNKNOWN_TOPIC_OR_PARTITION,
        )),
    }
}
