//! `corelog cluster describe`: the cluster as an operator sees it, over the
//! Kafka protocol like Kafka's `kafka-cluster` and `kafka-metadata-quorum
//! describe --status --replication`: the cluster id, every registered
//! broker and whether it is fenced (DescribeCluster v2 with
//! `include_fenced_brokers`, KIP-1073; older brokers list only the live
//! ones), the active controller, and the metadata quorum (DescribeQuorum:
//! leader, leader epoch, high watermark, each voter's log end offset and
//! lag). Runs on the CLI's main thread with the blocking client.

use clap::{Args, Subcommand};
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::describe_quorum_response::ReplicaState;
use kafka_protocol::messages::{
    ApiKey, DescribeClusterRequest, DescribeClusterResponse, DescribeQuorumRequest,
    DescribeQuorumResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use serde_json::{json, Value};

use crate::cli::common::{format_table, print_json, ConnectArgs};
use crate::cli::kafka::{KafkaClient, Node, ToolError};

const CLIENT_ID: &str = "corelog-cluster";
/// DescribeCluster v2 is the first with fenced brokers (KIP-1073).
const DESCRIBE_CLUSTER_VERSION_MAX: i16 = 2;
const DESCRIBE_QUORUM_VERSION_MAX: i16 = 2;
/// KRaft's metadata log, the partition DescribeQuorum describes.
const METADATA_TOPIC: &str = "__cluster_metadata";
const METADATA_PARTITION: i32 = 0;

#[derive(Debug, Args)]
pub struct ClusterArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(subcommand)]
    pub command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Show the cluster id, the brokers (fenced or not), the active controller and the metadata quorum.
    Describe {
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: ClusterArgs) -> Result<(), ToolError> {
    let mut client = args.connect.connect(CLIENT_ID)?;
    match args.command {
        ClusterCommand::Describe { json } => describe(&mut client, json),
    }
}

/// One broker as DescribeCluster lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BrokerView {
    id: i32,
    host: String,
    port: i32,
    rack: Option<String>,
    fenced: bool,
}

/// One voter of the metadata quorum.
#[derive(Debug, Clone, PartialEq, Eq)]
struct VoterView {
    id: i32,
    /// `None` while the leader has not heard from it (-1 on the wire).
    log_end_offset: Option<i64>,
}

/// The quorum as its leader reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct QuorumView {
    leader_id: i32,
    leader_epoch: i32,
    high_watermark: i64,
    voters: Vec<VoterView>,
    observers: Vec<VoterView>,
}

impl VoterView {
    /// Committed entries it does not have (Kafka's tool prints the same
    /// difference); `None` when its log end is unknown.
    fn lag(&self, high_watermark: i64) -> Option<i64> {
        self.log_end_offset
            .map(|log_end| high_watermark.saturating_sub(log_end).max(0))
    }
}

/// What DescribeCluster answers.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ClusterMembers {
    cluster_id: String,
    /// -1 while no controller is known.
    controller_id: i32,
    brokers: Vec<BrokerView>,
}

/// What `describe` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ClusterView {
    members: ClusterMembers,
    /// Or why there is none (no DescribeQuorum on the broker, or its error).
    quorum: Result<QuorumView, String>,
}

fn describe(client: &mut KafkaClient, json: bool) -> Result<(), ToolError> {
    let members = describe_cluster(client)?;
    let version = client.version(
        &Node::Any,
        ApiKey::DescribeQuorum,
        DESCRIBE_QUORUM_VERSION_MAX,
    );
    let (quorum, failure) = match version {
        Ok(version) => match describe_quorum(client, version) {
            Ok(quorum) => (Ok(quorum), None),
            Err(error) => (Err(error.to_string()), Some(error)),
        },
        // The broker does not offer DescribeQuorum: show the rest.
        Err(ToolError::Protocol(reason)) => (Err(reason), None),
        Err(other) => return Err(other),
    };
    let view = ClusterView { members, quorum };
    if json {
        print_json(&to_json(&view));
    } else {
        print!("{}", render(&view));
    }
    // A quorum that answered an error fails the command, after the rest is shown.
    failure.map_or(Ok(()), Err)
}

fn describe_cluster(client: &mut KafkaClient) -> Result<ClusterMembers, ToolError> {
    let version = client.version(
        &Node::Any,
        ApiKey::DescribeCluster,
        DESCRIBE_CLUSTER_VERSION_MAX,
    )?;
    let mut request = DescribeClusterRequest::default();
    if version >= 2 {
        request.include_fenced_brokers = true;
    }
    let response: DescribeClusterResponse = client.send(&Node::Any, version, &request)?;
    if response.error_code != 0 {
        let context = match response.error_message.as_deref() {
            Some(message) if !message.is_empty() => format!("describing the cluster ({message})"),
            _ => "describing the cluster".to_string(),
        };
        return Err(ToolError::kafka(context, response.error_code));
    }
    let mut brokers: Vec<BrokerView> = response
        .brokers
        .iter()
        .map(|broker| BrokerView {
            id: broker.broker_id.0,
            host: broker.host.to_string(),
            port: broker.port,
            rack: broker.rack.as_ref().map(|rack| rack.to_string()),
            fenced: broker.is_fenced,
        })
        .collect();
    brokers.sort_by_key(|broker| broker.id);
    Ok(ClusterMembers {
        cluster_id: response.cluster_id.to_string(),
        controller_id: response.controller_id.0,
        brokers,
    })
}

fn describe_quorum(client: &mut KafkaClient, version: i16) -> Result<QuorumView, ToolError> {
    let request = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str(METADATA_TOPIC)))
        .with_partitions(vec![
            PartitionData::default().with_partition_index(METADATA_PARTITION)
        ])]);
    let response = client.send(&Node::Any, version, &request)?;
    quorum_view(&response)
}

fn quorum_view(response: &DescribeQuorumResponse) -> Result<QuorumView, ToolError> {
    let context = |message: Option<&StrBytes>| match message.map(|message| message.as_str()) {
        Some(message) if !message.is_empty() => {
            format!("describing the metadata quorum ({message})")
        }
        _ => "describing the metadata quorum".to_string(),
    };
    if response.error_code != 0 {
        return Err(ToolError::kafka(
            context(response.error_message.as_ref()),
            response.error_code,
        ));
    }
    let partition = response
        .topics
        .iter()
        .filter(|topic| topic.topic_name.0.as_str() == METADATA_TOPIC)
        .flat_map(|topic| &topic.partitions)
        .find(|partition| partition.partition_index == METADATA_PARTITION)
        .ok_or_else(|| {
            ToolError::Protocol(format!(
                "DescribeQuorum answered no {METADATA_TOPIC}-{METADATA_PARTITION}"
            ))
        })?;
    if partition.error_code != 0 {
        return Err(ToolError::kafka(
            context(partition.error_message.as_ref()),
            partition.error_code,
        ));
    }
    let voter = |state: &ReplicaState| VoterView {
        id: state.replica_id.0,
        log_end_offset: Some(state.log_end_offset).filter(|offset| *offset >= 0),
    };
    let mut voters: Vec<VoterView> = partition.current_voters.iter().map(voter).collect();
    voters.sort_by_key(|voter| voter.id);
    Ok(QuorumView {
        leader_id: partition.leader_id.0,
        leader_epoch: partition.leader_epoch,
        high_watermark: partition.high_watermark,
        voters,
        observers: partition.observers.iter().map(voter).collect(),
    })
}

fn render(view: &ClusterView) -> String {
    let members = &view.members;
    let mut out = String::new();
    out.push_str(&format!("Cluster id: {}\n", members.cluster_id));
    out.push_str(&format!("Controller: {}\n\n", known(members.controller_id)));
    let rows: Vec<Vec<String>> = members
        .brokers
        .iter()
        .map(|broker| {
            vec![
                broker.id.to_string(),
                format!("{}:{}", broker.host, broker.port),
                broker.rack.clone().unwrap_or_else(|| "-".into()),
                if broker.fenced { "fenced" } else { "live" }.to_string(),
            ]
        })
        .collect();
    out.push_str(&format_table(
        &["BROKER", "HOST:PORT", "RACK", "STATUS"],
        &rows,
    ));
    out.push('\n');
    let quorum = match &view.quorum {
        Ok(quorum) => quorum,
        Err(reason) => {
            out.push_str(&format!("Quorum: unavailable ({reason})\n"));
            return out;
        }
    };
    out.push_str(&format!(
        "Quorum: leader {}  epoch {}  high watermark {}\n",
        known(quorum.leader_id),
        quorum.leader_epoch,
        quorum.high_watermark
    ));
    let unknown = || "unknown".to_string();
    let rows: Vec<Vec<String>> = quorum
        .voters
        .iter()
        .map(|voter| {
            let role = if voter.id == quorum.leader_id {
                "leader"
            } else {
                "follower"
            };
            vec![
                voter.id.to_string(),
                role.to_string(),
                voter
                    .log_end_offset
                    .map_or_else(unknown, |offset| offset.to_string()),
                voter
                    .lag(quorum.high_watermark)
                    .map_or_else(unknown, |lag| lag.to_string()),
            ]
        })
        .collect();
    out.push_str(&format_table(
        &["VOTER", "ROLE", "LOG END OFFSET", "LAG"],
        &rows,
    ));
    out
}

fn to_json(view: &ClusterView) -> Value {
    let members = &view.members;
    let brokers: Vec<Value> = members
        .brokers
        .iter()
        .map(|broker| {
            json!({
                "id": broker.id,
                "host": broker.host,
                "port": broker.port,
                "rack": broker.rack,
                "fenced": broker.fenced,
            })
        })
        .collect();
    let quorum = match &view.quorum {
        Ok(quorum) => {
            let replicas = |replicas: &[VoterView]| -> Vec<Value> {
                replicas
                    .iter()
                    .map(|replica| {
                        json!({
                            "id": replica.id,
                            "log_end_offset": replica.log_end_offset,
                            "lag": replica.lag(quorum.high_watermark),
                        })
                    })
                    .collect()
            };
            json!({
                "leader_id": (quorum.leader_id >= 0).then_some(quorum.leader_id),
                "leader_epoch": quorum.leader_epoch,
                "high_watermark": quorum.high_watermark,
                "voters": replicas(&quorum.voters),
                "observers": replicas(&quorum.observers),
            })
        }
        Err(reason) => json!({ "error": reason }),
    };
    json!({
        "cluster_id": members.cluster_id,
        "controller_id": (members.controller_id >= 0).then_some(members.controller_id),
        "brokers": brokers,
        "quorum": quorum,
    })
}

/// A node id, or `none` for Kafka's -1.
fn known(node_id: i32) -> String {
    if node_id >= 0 {
        node_id.to_string()
    } else {
        "none".to_string()
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::describe_quorum_response::{self, ReplicaState};
    use kafka_protocol::messages::BrokerId;

    use super::*;

    fn view() -> ClusterView {
        let members = ClusterMembers {
            cluster_id: "c-1".into(),
            controller_id: 1,
            brokers: vec![
                BrokerView {
                    id: 0,
                    host: "h0".into(),
                    port: 9092,
                    rack: Some("r1".into()),
                    fenced: false,
                },
                BrokerView {
                    id: 2,
                    host: "h2".into(),
                    port: 9092,
                    rack: None,
                    fenced: true,
                },
            ],
        };
        ClusterView {
            members,
            quorum: Ok(QuorumView {
                leader_id: 1,
                leader_epoch: 3,
                high_watermark: 20,
                voters: vec![
                    VoterView {
                        id: 1,
                        log_end_offset: Some(21),
                    },
                    VoterView {
                        id: 2,
                        log_end_offset: Some(15),
                    },
                    VoterView {
                        id: 3,
                        log_end_offset: None,
                    },
                ],
                observers: Vec::new(),
            }),
        }
    }

    #[test]
    fn the_table_shows_fencing_roles_and_lag() {
        let text = render(&view());
        assert!(
            text.starts_with("Cluster id: c-1\nController: 1\n"),
            "{text}"
        );
        assert!(text.contains("0       h0:9092    r1    live"), "{text}");
        assert!(text.contains("2       h2:9092    -     fenced"), "{text}");
        assert!(
            text.contains("Quorum: leader 1  epoch 3  high watermark 20"),
            "{text}"
        );
        assert!(
            text.contains("1      leader    21              0"),
            "{text}"
        );
        assert!(
            text.contains("2      follower  15              5"),
            "{text}"
        );
        assert!(
            text.contains("3      follower  unknown         unknown"),
            "{text}"
        );
    }

    #[test]
    fn json_has_nulls_for_what_is_unknown() {
        let value = to_json(&view());
        assert_eq!(value["controller_id"], 1);
        assert_eq!(value["brokers"][1]["fenced"], true);
        assert_eq!(value["brokers"][1]["rack"], Value::Null);
        assert_eq!(value["quorum"]["leader_id"], 1);
        assert_eq!(value["quorum"]["voters"][1]["lag"], 5);
        assert_eq!(value["quorum"]["voters"][2]["log_end_offset"], Value::Null);
        assert_eq!(value["quorum"]["voters"][2]["lag"], Value::Null);
        let mut without_quorum = view();
        without_quorum.members.controller_id = -1;
        without_quorum.quorum = Err("no DescribeQuorum".into());
        let value = to_json(&without_quorum);
        assert_eq!(value["controller_id"], Value::Null);
        assert_eq!(value["quorum"]["error"], "no DescribeQuorum");
        assert!(render(&without_quorum).contains("Quorum: unavailable (no DescribeQuorum)"));
    }

    #[test]
    fn a_quorum_answer_becomes_a_view_or_its_error() {
        let partition = describe_quorum_response::PartitionData::default()
            .with_partition_index(0)
            .with_leader_id(BrokerId(2))
            .with_leader_epoch(5)
            .with_high_watermark(9)
            .with_current_voters(vec![
                ReplicaState::default()
                    .with_replica_id(BrokerId(2))
                    .with_log_end_offset(9),
                ReplicaState::default()
                    .with_replica_id(BrokerId(0))
                    .with_log_end_offset(-1),
            ]);
        let response = DescribeQuorumResponse::default().with_topics(vec![
            describe_quorum_response::TopicData::default()
                .with_topic_name(TopicName(StrBytes::from_static_str(METADATA_TOPIC)))
                .with_partitions(vec![partition.clone()]),
        ]);
        let quorum = quorum_view(&response).expect("a quorum");
        assert_eq!(
            (quorum.leader_id, quorum.leader_epoch, quorum.high_watermark),
            (2, 5, 9)
        );
        assert_eq!(
            quorum.voters,
            vec![
                VoterView {
                    id: 0,
                    log_end_offset: None
                },
                VoterView {
                    id: 2,
                    log_end_offset: Some(9)
                },
            ]
        );
        let refused = DescribeQuorumResponse::default().with_topics(vec![
            describe_quorum_response::TopicData::default()
                .with_topic_name(TopicName(StrBytes::from_static_str(METADATA_TOPIC)))
                .with_partitions(vec![partition.with_error_code(41)]),
        ]);
        let error = quorum_view(&refused).expect_err("NOT_CONTROLLER");
        assert_eq!(error.kafka_code(), Some(41));
        assert!(quorum_view(&DescribeQuorumResponse::default()).is_err());
    }
}
