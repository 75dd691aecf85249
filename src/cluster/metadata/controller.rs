//! The active controller's decisions (Kafka's `QuorumController` in
//! miniature): each turns one request into the records to propose, judged
//! against the current image, or into a typed error that maps one-to-one to
//! the Kafka error code of the answer. Broker membership and producer ids are
//! here; topics, partitions and configs in `topic_control.rs`.
//!
//! Pure: no I/O, time passed in as `now_ms`, randomness as `rng`, topic ids
//! chosen by the caller. It runs on shard 0 of the active controller. Because
//! every decision reads the image, the caller must apply (or speculatively
//! apply, as Kafka's controller does) the records of one decision before
//! making the next; otherwise two CreateTopics of one name would both pass.
//! Broker session times are the controller's soft state (Kafka's
//! `BrokerHeartbeatManager`), never in the log, so they are passed in too.
//!
//! A broker that leaves (fenced, unregistered, or registering again as a new
//! process after an unclean stop) and one that returns (unfenced) change
//! partition leaders and ISRs in the same decision, as Kafka's
//! `ReplicationControlManager` does (see `partition_control.rs`).

use std::collections::BTreeMap;

use super::errors::ControllerError;
use super::image::MetadataImage;
use super::records::{BrokerRegistrationRecord, MetadataRecord};

/// Producer ids per block handed to a broker (Kafka's
/// `ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE`): one metadata record per 1000
/// idempotent producers started on that broker.
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

/// Most partitions one topic may have: every partition costs a directory,
/// open segment files and memory on its shard, so a typo such as 1000000
/// must not take a broker down.
pub const MAX_PARTITIONS_PER_TOPIC: i32 = 10_000;

/// Settings the controller's decisions depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControllerSettings {
    /// Partitions of a topic created with `num_partitions = -1` (Kafka's
    /// `num.partitions`).
    pub default_partitions: i32,
    /// Replicas per partition of a topic created with
    /// `replication_factor = -1` (Kafka's `default.replication.factor`);
    /// brokers resolve -1 with their own flag before they forward, so this
    /// is the voter's flag for requests that still carry -1.
    pub default_replication_factor: i16,
    /// Partition replicas one broker may hold (`--max-partitions-per-node`
    /// of the voters); creations past it are refused with POLICY_VIOLATION.
    pub max_partitions_per_node: u32,
}

impl Default for ControllerSettings {
    fn default() -> Self {
        ControllerSettings {
            default_partitions: 1,
            default_replication_factor: 1,
            max_partitions_per_node: crate::limits::PARTITIONS_PER_NODE_DEFAULT,
        }
    }
}

/// Kafka's BrokerRegistrationRequest, as far as corelog uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerRegistrationRequest {
    /// The cluster id in the broker's data directory.
    pub cluster_id: String,
    /// The broker id.
    pub broker_id: i32,
    /// Random per process start.
    pub incarnation_id: [u8; 16],
    /// Advertised host.
    pub host: String,
    /// Advertised Kafka port.
    pub port: u16,
    /// Rack, if any.
    pub rack: Option<String>,
}

/// An accepted registration: the epoch to answer with and the records to
/// propose (none for a retry of the same incarnation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerRegistered {
    /// The broker epoch the broker must send in heartbeats.
    pub broker_epoch: i64,
    /// Records to propose.
    pub records: Vec<MetadataRecord>,
}

/// A producer-id block handed to a broker: ids `first..first + size`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerIdBlock {
    /// The first id of the block.
    pub first_producer_id: i64,
    /// How many ids.
    pub size: i64,
    /// Records to propose.
    pub records: Vec<MetadataRecord>,
}

/// The first records of a new metadata log.
pub fn bootstrap_records(cluster_id: &str) -> Vec<MetadataRecord> {
    vec![MetadataRecord::ClusterId {
        cluster_id: cluster_id.to_string(),
    }]
}

/// Decisions against one image. Cheap: borrow the image per request.
#[derive(Debug, Clone, Copy)]
pub struct Controller<'a> {
    pub(super) image: &'a MetadataImage,
    pub(super) settings: ControllerSettings,
}

fn session_live(last_heartbeat_ms: Option<i64>, now_ms: i64, session_timeout_ms: i64) -> bool {
    // No heartbeat known: the caller seeds every broker with `now_ms` when it
    // becomes the active controller (as Kafka does), so this is a broker the
    // controller has not had time to hear from.
    last_heartbeat_ms.is_none_or(|last| now_ms.saturating_sub(last) <= session_timeout_ms)
}

impl<'a> Controller<'a> {
    /// A controller deciding against `image`.
    pub fn new(image: &'a MetadataImage, settings: ControllerSettings) -> Controller<'a> {
        Controller { image, settings }
    }

    /// BrokerRegistration: a new broker id, or a new process of a known one
    /// whose previous process is gone (fenced or session expired), gets a new
    /// registration, fenced until its first heartbeat; a retry of the same
    /// process gets its epoch back; a second live process is refused.
    pub fn register_broker(
        &self,
        request: &BrokerRegistrationRequest,
        now_ms: i64,
        session_timeout_ms: i64,
        last_heartbeat_ms: &BTreeMap<i32, i64>,
    ) -> Result<BrokerRegistered, ControllerError> {
        if let Some(expected) = self.image.cluster_id() {
            if expected != request.cluster_id {
                return Err(ControllerError::InconsistentClusterId {
                    expected: expected.to_string(),
                    found: request.cluster_id.clone(),
                });
            }
        }
        let broker_id = request.broker_id;
        let mut broker_epoch = self.next_broker_epoch();
        if let Some(current) = self.image.broker(broker_id) {
            if current.record.incarnation_id == request.incarnation_id {
                return Ok(BrokerRegistered {
                    broker_epoch: current.broker_epoch(),
                    records: Vec::new(),
                });
            }
            let last = last_heartbeat_ms.get(&broker_id).copied();
            if !current.fenced && session_live(last, now_ms, session_timeout_ms) {
                return Err(ControllerError::DuplicateBrokerRegistration { broker_id });
            }
            broker_epoch = broker_epoch.max(current.broker_epoch().saturating_add(1));
        }
        // A new process of a registered broker: whatever the old one had not
        // flushed may be gone, so it leaves every ISR and leads nothing, as
        // for a fence (Kafka's `handleBrokerUncleanShutdown`).
        let mut records = if self.image.broker(broker_id).is_some() {
            self.elections_after_brokers_left(&[broker_id])
        } else {
            Vec::new()
        };
        let record = BrokerRegistrationRecord {
            broker_id,
            incarnation_id: request.incarnation_id,
            broker_epoch,
            host: request.host.clone(),
            port: request.port,
            rack: request.rack.clone(),
        };
        records.insert(0, MetadataRecord::BrokerRegistered(record));
        Ok(BrokerRegistered {
            broker_epoch,
            records,
        })
    }

    /// A broker epoch above every epoch handed out so far: one past the last
    /// applied offset (Kafka uses the registration record's offset), since
    /// every earlier registration was applied at or below it.
    fn next_broker_epoch(&self) -> i64 {
        let last = self.image.last_offset().unwrap_or(0);
        i64::try_from(last)
            .unwrap_or(i64::MAX - 1)
            .saturating_add(1)
    }

    fn current_epoch(&self, broker_id: i32, broker_epoch: i64) -> Result<bool, ControllerError> {
        let broker = self
            .image
            .broker(broker_id)
            .ok_or(ControllerError::BrokerIdNotRegistered { broker_id })?;
        if broker.broker_epoch() != broker_epoch {
            return Err(ControllerError::StaleBrokerEpoch {
                broker_id,
                current: broker.broker_epoch(),
                request: broker_epoch,
            });
        }
        Ok(broker.fenced)
    }

    /// BrokerHeartbeat: unfences a fenced broker (records), which then leads
    /// the partitions left without a leader whose ISR it is in; nothing for
    /// a live one. The caller records `now_ms` as its last heartbeat.
    pub fn broker_heartbeat(
        &self,
        broker_id: i32,
        broker_epoch: i64,
    ) -> Result<Vec<MetadataRecord>, ControllerError> {
        let fenced = self.current_epoch(broker_id, broker_epoch)?;
        if !fenced {
            return Ok(Vec::new());
        }
        let mut records = vec![MetadataRecord::BrokerUnfenced {
            broker_id,
            broker_epoch,
        }];
        records.extend(self.elections_after_broker_returned(broker_id));
        Ok(records)
    }

    /// A broker stopping cleanly (Kafka's controlled shutdown, asked with
    /// BrokerHeartbeat's `want_shut_down`): it is fenced now, so it leaves
    /// every ISR and the partitions it led get new leaders before it goes,
    /// instead of after its session expires. Nothing for a fenced broker.
    pub fn controlled_shutdown(
        &self,
        broker_id: i32,
        broker_epoch: i64,
    ) -> Result<Vec<MetadataRecord>, ControllerError> {
        let fenced = self.current_epoch(broker_id, broker_epoch)?;
        if fenced {
            return Ok(Vec::new());
        }
        let mut records = vec![MetadataRecord::BrokerFenced {
            broker_id,
            broker_epoch,
        }];
        records.extend(self.elections_after_brokers_left(&[broker_id]));
        Ok(records)
    }

    /// Removes a broker from the cluster (Kafka's UnregisterBroker): it
    /// leaves every ISR and new leaders are elected for what it led.
    pub fn unregister_broker(
        &self,
        broker_id: i32,
    ) -> Result<Vec<MetadataRecord>, ControllerError> {
        let broker = self
            .image
            .broker(broker_id)
            .ok_or(ControllerError::BrokerIdNotRegistered { broker_id })?;
        let mut records = vec![MetadataRecord::BrokerUnregistered {
            broker_id,
            broker_epoch: broker.broker_epoch(),
        }];
        records.extend(self.elections_after_brokers_left(&[broker_id]));
        Ok(records)
    }

    /// Fences every unfenced broker whose last heartbeat is more than
    /// `session_timeout_ms` old (Kafka's broker.session.timeout.ms), and
    /// elects new leaders and shrinks the ISRs of their partitions. A
    /// partition whose ISR has no one else keeps its last member and has no
    /// leader until that broker is back (KIP-841), unless its topic allows
    /// unclean elections.
    pub fn expire_sessions(
        &self,
        now_ms: i64,
        session_timeout_ms: i64,
        last_heartbeat_ms: &BTreeMap<i32, i64>,
    ) -> Vec<MetadataRecord> {
        let mut records: Vec<MetadataRecord> = self
            .image
            .live_brokers()
            .filter(|broker| {
                let last = last_heartbeat_ms.get(&broker.broker_id()).copied();
                !session_live(last, now_ms, session_timeout_ms)
            })
            .map(|broker| MetadataRecord::BrokerFenced {
                broker_id: broker.broker_id(),
                broker_epoch: broker.broker_epoch(),
            })
            .collect();
        let fenced: Vec<i32> = records
            .iter()
            .filter_map(|record| match record {
                MetadataRecord::BrokerFenced { broker_id, .. } => Some(*broker_id),
                _ => None,
            })
            .collect();
        if !fenced.is_empty() {
            records.extend(self.elections_after_brokers_left(&fenced));
        }
        records
    }

    /// AllocateProducerIds: the next block of [`PRODUCER_ID_BLOCK_SIZE`] ids.
    pub fn allocate_producer_ids(
        &self,
        broker_id: i32,
        broker_epoch: i64,
    ) -> Result<ProducerIdBlock, ControllerError> {
        self.current_epoch(broker_id, broker_epoch)?;
        let first_producer_id = self.image.next_producer_id();
        let next_producer_id = first_producer_id
            .checked_add(PRODUCER_ID_BLOCK_SIZE)
            .ok_or(ControllerError::ProducerIdsExhausted)?;
        Ok(ProducerIdBlock {
            first_producer_id,
            size: PRODUCER_ID_BLOCK_SIZE,
            records: vec![MetadataRecord::ProducerIdsAllocated {
                broker_id,
                broker_epoch,
                next_producer_id,
            }],
        })
    }
}
