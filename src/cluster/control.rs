//! Calls from a broker to the active controller (Kafka's BrokerRegistration,
//! BrokerHeartbeat, AllocateProducerIds, AlterPartition and the admin
//! requests a broker forwards), and the metadata image a broker-only node
//! fetches from a voter.
//! They travel on the quorum's connections (`--controller-listen`, frame
//! kinds 36-37) after the same `Hello`; any node of the cluster may send
//! them, while Raft's own calls stay reserved to voters.
//!
//! DescribeQuorum travels the same way: only the quorum leader knows every
//! voter's progress, so the others answer NOT_CONTROLLER and the caller
//! retries at the leader.
//!
//! `answer` runs a call against this node's `ActiveController`; a node that
//! is not the leader answers NOT_CONTROLLER with the leader it knows, and the
//! caller (`cluster::node`) tries that one next. Every answer carries the
//! answering node's last applied metadata offset, so the caller can wait
//! until its own image has caught up before it answers its client.

use std::rc::Rc;
use std::time::Duration;

use openraft_rt::AsyncRuntime;

use super::active_controller::{ActiveController, ControllerCallError};
use super::metadata::frame::{self, FrameKind};
use super::metadata::leader_elections::ElectionType;
use super::metadata::reassignments::PartitionTargetAsked;
use super::metadata::records::MetadataRecord;
use super::metadata::{AlterPartitionRequest, BrokerRegistrationRequest, CreateTopic};
use super::quorum::node::QuorumStatus;
use super::quorum::runtime::GlommioRuntime;
use super::quorum::transport::{self, Hello, TransportError};
use crate::protocol::errors::{error_from_code, KafkaError};

/// A call frame (`ControlRequest`); the quorum listener hands these to the
/// control handler.
pub use super::quorum::network::KIND_CONTROL_REQUEST;
/// Its answer (`ControlResponse`).
pub const KIND_CONTROL_RESPONSE: FrameKind = FrameKind::new(37);

/// What a broker asks of the active controller (or, for `FetchImage`, of any
/// voter).
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq)]
pub enum ControlRequest {
    /// CreateTopics for one topic (see `metadata::CreateTopic`).
    CreateTopic {
        name: String,
        num_partitions: i32,
        replication_factor: i16,
        configs: Vec<(String, String)>,
        /// Replicas by partition index; empty: the controller assigns them
        /// (then `num_partitions` and `replication_factor` must be -1).
        assignments: Vec<(i32, Vec<i32>)>,
        /// Decide but write nothing (CreateTopics' `validateOnly`).
        validate_only: bool,
    },
    DeleteTopic {
        name: String,
    },
    CreatePartitions {
        name: String,
        count: i32,
        /// One replica list per new partition; `None`: assigned by the
        /// controller with the topic's replication factor.
        assignments: Option<Vec<Vec<i32>>>,
        /// Decide but write nothing (CreatePartitions' `validateOnly`).
        validate_only: bool,
    },
    /// `None` removes an override.
    AlterTopicConfigs {
        name: String,
        changes: Vec<(String, Option<String>)>,
    },
    RegisterBroker {
        cluster_id: String,
        broker_id: i32,
        incarnation_id: [u8; 16],
        host: String,
        port: u16,
        rack: Option<String>,
    },
    BrokerHeartbeat {
        broker_id: i32,
        broker_epoch: i64,
    },
    /// The broker stops cleanly: fence it now and move its leaderships
    /// (Kafka's controlled shutdown).
    ControlledShutdown {
        broker_id: i32,
        broker_epoch: i64,
    },
    AllocateProducerIds {
        broker_id: i32,
        broker_epoch: i64,
    },
    /// The whole image as records if the voter has applied past `known`
    /// (a broker-only node's copy of the metadata).
    FetchImage {
        known: Option<u64>,
    },
    /// The quorum's leader, term, high watermark and each voter's progress
    /// (Kafka's DescribeQuorum). Only the leader knows every voter's
    /// progress, so only it answers, as in KRaft; others say NOT_CONTROLLER.
    DescribeQuorum,
    /// Kafka's AlterPartition (KIP-497) for one partition: its leader
    /// proposes a new ISR, computed from the partition state with these
    /// epochs. Answered with `PartitionAltered`; refused with the Java
    /// controller's codes (`metadata::Controller::alter_partition`), which
    /// `ControlError::kafka_error` gives back.
    AlterPartition {
        broker_id: i32,
        broker_epoch: i64,
        topic_id: [u8; 16],
        partition: i32,
        leader_epoch: i32,
        partition_epoch: i32,
        new_isr: Vec<i32>,
    },
    /// ElectLeaders (KIP-460): `unclean` is election type 1; `partitions`
    /// `None` asks for every partition.
    ElectLeaders {
        unclean: bool,
        partitions: Option<Vec<(String, Vec<i32>)>>,
    },
    /// AlterPartitionReassignments (KIP-455): by topic, each partition's
    /// target replicas, or `None` to cancel its reassignment.
    AlterPartitionReassignments {
        topics: Vec<(String, Vec<PartitionTargetAsked>)>,
        allow_replication_factor_change: bool,
    },
}

/// A successful call's value.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq)]
pub enum ControlOutcome {
    Done,
    TopicCreated {
        topic_id: [u8; 16],
    },
    BrokerEpoch(i64),
    ProducerIds {
        first: i64,
        size: i64,
    },
    /// The image after offset `applied`, as snapshot records.
    Image {
        applied: u64,
        records: Vec<MetadataRecord>,
    },
    /// The caller's copy is current.
    ImageUnchanged,
    /// The answer to `DescribeQuorum`.
    Quorum(QuorumReport),
    /// The answer to `AlterPartition`: the partition as committed (its
    /// current state when the ISR was unchanged).
    PartitionAltered {
        leader: i32,
        leader_epoch: i32,
        isr: Vec<i32>,
        partition_epoch: i32,
    },
    /// The answer to `ElectLeaders`, by topic.
    LeadersElected(Vec<TopicElectionAnswer>),
    /// The answer to `AlterPartitionReassignments`, by topic.
    ReassignmentsAltered(Vec<TopicElectionAnswer>),
}

/// One topic's per-partition answers (ElectLeaders,
/// AlterPartitionReassignments): (partition, error code, message).
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct TopicElectionAnswer {
    pub topic: String,
    pub partitions: Vec<(i32, i16, Option<String>)>,
}

/// The metadata quorum as its leader sees it (`QuorumNode::status` on the
/// leader): what DescribeQuorum answers.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct QuorumReport {
    /// The leader (the active controller), which made this report.
    pub leader: u64,
    /// The Raft term: Kafka's leader epoch of `__cluster_metadata`.
    pub term: u64,
    /// The offset after the last committed entry.
    pub high_watermark: u64,
    /// Every voter, by id.
    pub voters: Vec<VoterProgress>,
}

/// One voter's replication progress.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct VoterProgress {
    pub node_id: u64,
    /// The offset after its last replicated entry; `None` while the leader
    /// has not heard from it since it took over.
    pub log_end: Option<u64>,
}

impl QuorumReport {
    /// The report of a leader's `status`; `None` unless `status` names
    /// `node_id` as the leader (only the leader knows the voters' progress).
    pub fn from_leader_status(node_id: u64, status: QuorumStatus) -> Option<QuorumReport> {
        if status.leader != Some(node_id) {
            return None;
        }
        Some(QuorumReport {
            leader: node_id,
            term: status.term,
            high_watermark: status.high_watermark,
            voters: status
                .voters
                .into_iter()
                .map(|voter| VoterProgress {
                    node_id: voter.node_id,
                    log_end: voter.log_end,
                })
                .collect(),
        })
    }
}

/// Why a call failed, as it travels back.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq)]
pub enum ControlFailure {
    NotController {
        leader: Option<u64>,
    },
    /// Refused with this Kafka error code and message.
    Refused {
        code: i16,
        message: String,
    },
    TimedOut {
        millis: u64,
    },
    Stopped {
        reason: String,
    },
}

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq)]
pub struct ControlResponse {
    pub result: ControlResult,
    /// The answering node's last applied metadata offset.
    pub applied: Option<u64>,
}

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq)]
pub enum ControlResult {
    Ok(ControlOutcome),
    Failed(ControlFailure),
}

/// A failed call as the caller sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("no active controller reachable (last known leader: {leader:?})")]
    NotController { leader: Option<u64> },
    #[error("{message}")]
    Refused { error: KafkaError, message: String },
    #[error("the metadata quorum did not answer within {0:?}")]
    TimedOut(Duration),
    #[error("the metadata quorum is not running: {0}")]
    Stopped(String),
}

impl ControlError {
    /// The Kafka error a client gets.
    pub fn kafka_error(&self) -> KafkaError {
        match self {
            ControlError::NotController { .. } | ControlError::Stopped(_) => {
                KafkaError::NotController
            }
            ControlError::Refused { error, .. } => *error,
            ControlError::TimedOut(_) => KafkaError::RequestTimedOut,
        }
    }
}

impl From<ControllerCallError> for ControlFailure {
    fn from(error: ControllerCallError) -> Self {
        match error {
            ControllerCallError::NotController { leader } => {
                ControlFailure::NotController { leader }
            }
            ControllerCallError::Refused(refusal) => ControlFailure::Refused {
                code: refusal.kafka_error().code(),
                message: refusal.to_string(),
            },
            ControllerCallError::TimedOut(timeout) => ControlFailure::TimedOut {
                millis: timeout.as_millis() as u64,
            },
            ControllerCallError::Stopped(reason) => ControlFailure::Stopped { reason },
        }
    }
}

impl From<ControlFailure> for ControlError {
    fn from(failure: ControlFailure) -> Self {
        match failure {
            ControlFailure::NotController { leader } => ControlError::NotController { leader },
            ControlFailure::Refused { code, message } => ControlError::Refused {
                error: if code == 0 {
                    KafkaError::UnknownServerError
                } else {
                    error_from_code(code)
                },
                message,
            },
            ControlFailure::TimedOut { millis } => {
                ControlError::TimedOut(Duration::from_millis(millis))
            }
            ControlFailure::Stopped { reason } => ControlError::Stopped(reason),
        }
    }
}

/// Runs one call on this node's controller (the listener side).
pub async fn answer(controller: &ActiveController, request: ControlRequest) -> ControlResponse {
    let result = match request {
        ControlRequest::CreateTopic {
            name,
            num_partitions,
            replication_factor,
            configs,
            assignments,
            validate_only,
        } => controller
            .create_topic(
                &CreateTopic {
                    name,
                    num_partitions,
                    replication_factor,
                    configs: configs.into_iter().collect(),
                    assignments,
                },
                validate_only,
            )
            .await
            .map(|topic_id| ControlOutcome::TopicCreated {
                topic_id: *topic_id.as_bytes(),
            }),
        ControlRequest::DeleteTopic { name } => controller
            .delete_topic(&name)
            .await
            .map(|()| ControlOutcome::Done),
        ControlRequest::CreatePartitions {
            name,
            count,
            assignments,
            validate_only,
        } => controller
            .create_partitions(&name, count, assignments.as_deref(), validate_only)
            .await
            .map(|()| ControlOutcome::Done),
        ControlRequest::AlterTopicConfigs { name, changes } => controller
            .alter_topic_configs(&name, &changes)
            .await
            .map(|()| ControlOutcome::Done),
        ControlRequest::RegisterBroker {
            cluster_id,
            broker_id,
            incarnation_id,
            host,
            port,
            rack,
        } => controller
            .register_broker(&BrokerRegistrationRequest {
                cluster_id,
                broker_id,
                incarnation_id,
                host,
                port,
                rack,
            })
            .await
            .map(ControlOutcome::BrokerEpoch),
        ControlRequest::BrokerHeartbeat {
            broker_id,
            broker_epoch,
        } => controller
            .broker_heartbeat(broker_id, broker_epoch)
            .await
            .map(|()| ControlOutcome::Done),
        ControlRequest::ControlledShutdown {
            broker_id,
            broker_epoch,
        } => controller
            .controlled_shutdown(broker_id, broker_epoch)
            .await
            .map(|()| ControlOutcome::Done),
        ControlRequest::AllocateProducerIds {
            broker_id,
            broker_epoch,
        } => controller
            .allocate_producer_ids(broker_id, broker_epoch)
            .await
            .map(|(first, size)| ControlOutcome::ProducerIds { first, size }),
        ControlRequest::FetchImage { known } => Ok(controller.image_since(known).await),
        ControlRequest::DescribeQuorum => controller.quorum_report().map(ControlOutcome::Quorum),
        ControlRequest::AlterPartition {
            broker_id,
            broker_epoch,
            topic_id,
            partition,
            leader_epoch,
            partition_epoch,
            new_isr,
        } => controller
            .alter_partition(&AlterPartitionRequest {
                broker_id,
                broker_epoch,
                topic_id: uuid::Uuid::from_bytes(topic_id),
                partition,
                leader_epoch,
                partition_epoch,
                new_isr,
            })
            .await
            .map(|state| ControlOutcome::PartitionAltered {
                leader: state.leader,
                leader_epoch: state.leader_epoch,
                isr: state.isr,
                partition_epoch: state.partition_epoch,
            }),
        ControlRequest::ElectLeaders {
            unclean,
            partitions,
        } => {
            let election = if unclean {
                ElectionType::Unclean
            } else {
                ElectionType::Preferred
            };
            controller
                .elect_leaders(election, partitions.as_deref())
                .await
                .map(|topics| {
                    ControlOutcome::LeadersElected(
                        topics
                            .into_iter()
                            .map(|topic| TopicElectionAnswer {
                                topic: topic.topic,
                                partitions: topic
                                    .partitions
                                    .into_iter()
                                    .map(|answer| match answer.result {
                                        Ok(()) => (answer.partition, 0, None),
                                        Err(refusal) => (
                                            answer.partition,
                                            refusal.kafka_error().code(),
                                            Some(refusal.to_string()),
                                        ),
                                    })
                                    .collect(),
                            })
                            .collect(),
                    )
                })
        }
        ControlRequest::AlterPartitionReassignments {
            topics,
            allow_replication_factor_change,
        } => controller
            .alter_partition_reassignments(&topics, allow_replication_factor_change)
            .await
            .map(|topics| {
                ControlOutcome::ReassignmentsAltered(
                    topics
                        .into_iter()
                        .map(|(topic, partitions)| TopicElectionAnswer {
                            topic,
                            partitions: partitions
                                .into_iter()
                                .map(|(partition, result)| match result {
                                    Ok(()) => (partition, 0, None),
                                    Err(refusal) => (
                                        partition,
                                        refusal.kafka_error().code(),
                                        Some(refusal.to_string()),
                                    ),
                                })
                                .collect(),
                        })
                        .collect(),
                )
            }),
    };
    ControlResponse {
        result: match result {
            Ok(outcome) => ControlResult::Ok(outcome),
            Err(error) => ControlResult::Failed(error.into()),
        },
        applied: controller.image_offset(),
    }
}

/// One connection to one voter for control calls, made lazily and dropped
/// on any error; one call at a time.
pub struct ControlClient {
    address: String,
    hello: Rc<Hello>,
    stream: std::cell::RefCell<Option<glommio::net::TcpStream>>,
    busy: glommio::sync::Semaphore,
}

impl ControlClient {
    pub fn new(address: String, hello: Rc<Hello>) -> ControlClient {
        ControlClient {
            address,
            hello,
            stream: std::cell::RefCell::new(None),
            busy: glommio::sync::Semaphore::new(1),
        }
    }

    /// Sends `request` and reads its answer within `timeout`.
    pub async fn call(
        &self,
        request: &ControlRequest,
        timeout: Duration,
    ) -> Result<ControlResponse, TransportError> {
        let _turn = self
            .busy
            .acquire_permit(1)
            .await
            .map_err(|_| TransportError::Refused)?;
        let bytes = frame::encode(KIND_CONTROL_REQUEST, request)?;
        let existing = self.stream.borrow_mut().take();
        let exchange = async {
            let mut stream = match existing {
                Some(stream) => stream,
                None => transport::connect(&self.address, &self.hello).await?,
            };
            transport::write_frame(&mut stream, &bytes).await?;
            let answer = transport::read_frame(&mut stream).await?;
            let response = frame::decode::<ControlResponse>(KIND_CONTROL_RESPONSE, &answer)?;
            Ok::<_, TransportError>((stream, response))
        };
        let (stream, response) = GlommioRuntime::timeout(timeout, exchange)
            .await
            .map_err(|_| TransportError::TimedOut(timeout))??;
        // Only a complete exchange leaves the connection reusable.
        *self.stream.borrow_mut() = Some(stream);
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::quorum::node::VoterStatus;

    fn status(leader: Option<u64>) -> QuorumStatus {
        QuorumStatus {
            leader,
            term: 4,
            high_watermark: 10,
            voters: vec![
                VoterStatus {
                    node_id: 1,
                    log_end: Some(10),
                    lag: Some(0),
                },
                VoterStatus {
                    node_id: 2,
                    log_end: Some(7),
                    lag: Some(3),
                },
                VoterStatus {
                    node_id: 3,
                    log_end: None,
                    lag: None,
                },
            ],
        }
    }

    #[test]
    fn only_the_leader_reports_the_quorum() {
        assert_eq!(QuorumReport::from_leader_status(2, status(Some(1))), None);
        assert_eq!(QuorumReport::from_leader_status(1, status(None)), None);
        let report = QuorumReport::from_leader_status(1, status(Some(1))).expect("leader");
        assert_eq!(
            (report.leader, report.term, report.high_watermark),
            (1, 4, 10)
        );
        let voters: Vec<(u64, Option<u64>)> = report
            .voters
            .iter()
            .map(|voter| (voter.node_id, voter.log_end))
            .collect();
        assert_eq!(voters, vec![(1, Some(10)), (2, Some(7)), (3, None)]);
    }

    #[test]
    fn alter_partition_travels_as_control_frames_and_refusals_keep_their_code() {
        let request = ControlRequest::AlterPartition {
            broker_id: 2,
            broker_epoch: 41,
            topic_id: [7; 16],
            partition: 3,
            leader_epoch: 5,
            partition_epoch: 9,
            new_isr: vec![2, 1],
        };
        let bytes = frame::encode(KIND_CONTROL_REQUEST, &request).expect("encodes");
        assert_eq!(
            frame::decode::<ControlRequest>(KIND_CONTROL_REQUEST, &bytes).expect("decodes"),
            request
        );
        let answer = ControlOutcome::PartitionAltered {
            leader: 2,
            leader_epoch: 5,
            isr: vec![2, 1],
            partition_epoch: 10,
        };
        let response = ControlResponse {
            result: ControlResult::Ok(answer),
            applied: Some(12),
        };
        let bytes = frame::encode(KIND_CONTROL_RESPONSE, &response).expect("encodes");
        assert_eq!(
            frame::decode::<ControlResponse>(KIND_CONTROL_RESPONSE, &bytes).expect("decodes"),
            response
        );
        use crate::cluster::metadata::ControllerError;
        for (refusal, code) in [
            (
                ControllerError::StaleBrokerEpoch {
                    broker_id: 2,
                    current: 42,
                    request: 41,
                },
                KafkaError::StaleBrokerEpoch,
            ),
            (
                ControllerError::FencedLeaderEpoch {
                    current: 6,
                    request: 5,
                },
                KafkaError::FencedLeaderEpoch,
            ),
            (
                ControllerError::InvalidUpdateVersion {
                    current: 10,
                    request: 9,
                },
                KafkaError::InvalidUpdateVersion,
            ),
            (
                ControllerError::IneligibleReplica("fenced".into()),
                KafkaError::IneligibleReplica,
            ),
        ] {
            let failure = ControlFailure::from(ControllerCallError::Refused(refusal));
            assert_eq!(ControlError::from(failure).kafka_error(), code);
        }
    }

    #[test]
    fn describe_quorum_travels_as_control_frames() {
        let request =
            frame::encode(KIND_CONTROL_REQUEST, &ControlRequest::DescribeQuorum).expect("encodes");
        assert_eq!(
            frame::decode::<ControlRequest>(KIND_CONTROL_REQUEST, &request).expect("decodes"),
            ControlRequest::DescribeQuorum
        );
        let report = QuorumReport::from_leader_status(1, status(Some(1))).expect("leader");
        let response = ControlResponse {
            result: ControlResult::Ok(ControlOutcome::Quorum(report)),
            applied: Some(9),
        };
        let bytes = frame::encode(KIND_CONTROL_RESPONSE, &response).expect("encodes");
        assert_eq!(
            frame::decode::<ControlResponse>(KIND_CONTROL_RESPONSE, &bytes).expect("decodes"),
            response
        );
    }
}
