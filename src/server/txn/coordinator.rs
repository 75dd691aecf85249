//! One shard's transaction coordinator: the `__transaction_state`
//! partitions it owns and the transactional ids in them, and the calls
//! (InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn,
//! DescribeTransactions) run on it.
//!
//! Which cores: one `TxnCoordinator` per shard, holding only the state
//! partitions that shard owns; nothing here crosses cores (markers go to
//! partition owners through `markers`).
//!
//! Why this shape: the transaction logic (`crate::txn`) is pure; this file
//! feeds it requests with the current time and carries out its plans. Every
//! change is appended to the state partition and applied to the in-memory
//! view in one synchronous step, so the view always equals a replay of the
//! log and no `.await` can interleave two decisions on one id; the caller
//! then waits for durability before answering. Ending a transaction is
//! Kafka's two-phase commit: PrepareCommit/PrepareAbort durable, markers
//! written to every partition, then CompleteCommit/CompleteAbort. EndTxn is
//! answered after the markers are written (Kafka answers after the prepare
//! record), so a read_committed consumer sees a commit as soon as the
//! producer does; if a marker cannot be written the decision stands and
//! the timer task retries it.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use super::markers::{write_markers, Marker};
use super::state_topic;
use super::{DescribedTransaction, TxnAnswer, TxnCall};
use crate::config::TxnSettings;
use crate::log::PartitionLog;
use crate::metadata::topic_name::OFFSETS_TOPIC;
use crate::protocol::batch_builder::{encode_batch, BatchProducer, KeyValue};
use crate::protocol::errors::{KafkaError, NONE};
use crate::runtime::clock::now_ms;
use crate::server::groups::offsets_topic;
use crate::server::producer_ids::next_producer_id;
use crate::server::shard::Shard;
use crate::txn::records::{encode_key, encode_value};
use crate::txn::{
    EndPlan, InitProducerIdPlan, ListFilter, ListedTransaction, MarkerPlan, TransactionMetadata,
    Transactions, TxnConfig, TxnError,
};

/// A `__transaction_state` partition this shard owns and coordinates.
pub struct TxnPartition {
    pub partition: i32,
    /// The leader epoch of the partition when this node loaded it (Kafka's
    /// `coordinatorEpoch`), written into every marker: a partition that saw
    /// a marker of a newer coordinator for the producer refuses this one's
    /// with TRANSACTION_COORDINATOR_FENCED.
    pub coordinator_epoch: i32,
    pub log: PartitionLog,
    pub transactions: RefCell<Transactions>,
    /// Ids whose markers are being written right now (the timer task
    /// leaves them alone).
    completing: RefCell<HashSet<String>>,
    /// Where the latest snapshot of the live state starts (see
    /// `compaction.rs`); the log start offset until one is written.
    pub(super) snapshot_offset: Cell<i64>,
    /// Set once this shard stops coordinating the partition (another
    /// replica leads it, or it was reloaded at a newer epoch). A call that
    /// looked the partition up before an `.await` must not append to a log
    /// it no longer leads once it resumes (Kafka appends coordinator records
    /// only as the partition's leader): its records would diverge from the
    /// leader's, and its wait for the high watermark could last forever.
    retired: Cell<bool>,
}

impl TxnPartition {
    /// Appends the record of `transactional_id` (`None` = tombstone) and
    /// applies it, in one synchronous step. Returns the offset to wait on.
    pub fn store(
        &self,
        transactional_id: &str,
        metadata: Option<TransactionMetadata>,
        now_ms: i64,
    ) -> Result<i64, i16> {
        if self.is_retired() {
            return Err(KafkaError::NotCoordinator.code());
        }
        let record = KeyValue {
            key: encode_key(transactional_id),
            value: metadata.as_ref().map(encode_value),
        };
        let batch = encode_batch(&[record], BatchProducer::NONE, now_ms);
        let info = self.log.append(&batch, now_ms).map_err(|error| {
            tracing::error!(partition = self.partition, %error, "transaction state append failed");
            coordinator_error(error.code())
        })?;
        self.transactions
            .borrow_mut()
            .apply(transactional_id, metadata);
        Ok(info.last_offset)
    }

    /// [`store`](Self::store), then wait until it is durable.
    pub async fn store_durably(
        &self,
        transactional_id: &str,
        metadata: Option<TransactionMetadata>,
        now_ms: i64,
    ) -> Result<(), i16> {
        let offset = self.store(transactional_id, metadata, now_ms)?;
        self.log
            .wait_committed(offset)
            .await
            .map_err(|error| coordinator_error(error.code()))
    }

    /// Whether this shard stopped coordinating the partition since it was
    /// loaded (then nothing may be appended through it).
    pub fn is_retired(&self) -> bool {
        self.retired.get()
    }

    fn is_completing(&self, transactional_id: &str) -> bool {
        self.completing.borrow().contains(transactional_id)
    }
}

/// Errors of the state log, as a coordinator reports them: the client looks
/// the coordinator up again and retries.
fn coordinator_error(code: i16) -> i16 {
    if code == KafkaError::NotLeaderOrFollower.code() {
        KafkaError::NotCoordinator.code()
    } else {
        KafkaError::CoordinatorNotAvailable.code()
    }
}

/// The coordinator state of one shard.
#[derive(Default)]
pub struct TxnCoordinator {
    partitions: RefCell<HashMap<i32, Rc<TxnPartition>>>,
}

impl TxnCoordinator {
    pub fn partition(&self, partition: i32) -> Option<Rc<TxnPartition>> {
        self.partitions.borrow().get(&partition).cloned()
    }

    pub fn partitions(&self) -> Vec<Rc<TxnPartition>> {
        self.partitions.borrow().values().cloned().collect()
    }

    /// Replays `log` and takes over the transactional ids of `partition`
    /// as the coordinator of `coordinator_epoch` (the partition's leader
    /// epoch). Transactions whose end was decided but not completed get
    /// their markers (again) from the timer task.
    pub async fn load(
        &self,
        settings: &TxnSettings,
        partition: i32,
        coordinator_epoch: i32,
        log: PartitionLog,
    ) {
        let loaded = replay(settings, partition, coordinator_epoch, log).await;
        self.install(loaded);
    }

    /// Takes over a partition [`replay`]ed earlier, replacing whatever was
    /// loaded for it.
    pub fn install(&self, loaded: TxnPartition) {
        let replaced = self
            .partitions
            .borrow_mut()
            .insert(loaded.partition, Rc::new(loaded));
        if let Some(replaced) = replaced {
            replaced.retired.set(true);
        }
    }

    /// Forgets a partition (its log was deleted, or another node leads it);
    /// calls still holding it can no longer append through it.
    pub fn unload(&self, partition: i32) {
        let removed = self.partitions.borrow_mut().remove(&partition);
        if let Some(removed) = removed {
            removed.retired.set(true);
        }
    }
}

/// The state of `__transaction_state` partition `partition` read from `log`,
/// for the coordinator of `coordinator_epoch`; nothing is taken over until
/// [`TxnCoordinator::install`].
pub async fn replay(
    settings: &TxnSettings,
    partition: i32,
    coordinator_epoch: i32,
    log: PartitionLog,
) -> TxnPartition {
    let started = std::time::Instant::now();
    let mut transactions = Transactions::new(txn_config(settings));
    match state_topic::replay(&log, &mut transactions).await {
        Ok(stats) if stats.records > 0 => tracing::info!(
            partition,
            coordinator_epoch,
            records = stats.records,
            skipped = stats.skipped,
            transactional_ids = transactions.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "loaded transaction state partition"
        ),
        Ok(_) => {}
        Err(error) => tracing::error!(
            partition, %error,
            "cannot replay transaction state partition; its ids start empty"
        ),
    }
    TxnPartition {
        partition,
        coordinator_epoch,
        snapshot_offset: Cell::new(log.log_start_offset()),
        log,
        transactions: RefCell::new(transactions),
        completing: RefCell::new(HashSet::new()),
        retired: Cell::new(false),
    }
}

/// The pure coordinator's settings from the broker's.
pub fn txn_config(settings: &TxnSettings) -> TxnConfig {
    TxnConfig {
        transaction_max_timeout_ms: settings.max_timeout_ms.max(1),
        transactional_id_expiration_ms: settings.transactional_id_expiration_ms,
    }
}

/// Runs `call` on this shard, which owns state `partition`.
pub async fn coordinate(shard: &Rc<Shard>, partition: i32, call: TxnCall) -> TxnAnswer {
    shard.assert_owner(state_topic::TRANSACTION_STATE_TOPIC, partition);
    let Some(loaded) = shard.txns.partition(partition) else {
        return TxnAnswer::Unavailable(KafkaError::NotCoordinator.code());
    };
    match call {
        TxnCall::InitProducerId {
            transactional_id,
            timeout_ms,
            expected,
        } => init_producer_id(shard, &loaded, &transactional_id, timeout_ms, expected).await,
        TxnCall::AddPartitions {
            transactional_id,
            producer_id,
            producer_epoch,
            partitions,
        } => TxnAnswer::Code(
            add_partitions(
                &loaded,
                &transactional_id,
                producer_id,
                producer_epoch,
                &partitions,
            )
            .await,
        ),
        TxnCall::Verify {
            transactional_id,
            producer_id,
            producer_epoch,
            partitions,
        } => {
            let verified = loaded.transactions.borrow().verify_partitions(
                &transactional_id,
                producer_id,
                producer_epoch,
                &partitions,
            );
            match verified {
                Ok(missing) => TxnAnswer::Missing(missing),
                Err(error) => TxnAnswer::Code(error.code()),
            }
        }
        TxnCall::AddOffsets {
            transactional_id,
            producer_id,
            producer_epoch,
            group_id,
        } => {
            // Kafka adds the group's offsets partition to the transaction,
            // so EndTxn sends it a marker that completes TxnOffsetCommit.
            let code = match offsets_topic::ensure(shard).await {
                Ok(topic) => {
                    let partition = offsets_topic::partition_for(&group_id, topic.partition_count);
                    let partitions = [(OFFSETS_TOPIC.to_string(), partition)];
                    add_partitions(
                        &loaded,
                        &transactional_id,
                        producer_id,
                        producer_epoch,
                        &partitions,
                    )
                    .await
                }
                Err(code) => code,
            };
            TxnAnswer::Code(code)
        }
        TxnCall::EndTxn {
            transactional_id,
            producer_id,
            producer_epoch,
            commit,
        } => {
            let decided = loaded.transactions.borrow().end_txn(
                &transactional_id,
                producer_id,
                producer_epoch,
                commit,
                now_ms(),
            );
            let code = match decided {
                Ok(None) => NONE,
                Ok(Some(plan)) => match carry_out(shard, &loaded, plan).await {
                    Ok(()) => NONE,
                    Err(code) => code,
                },
                Err(error) => error.code(),
            };
            TxnAnswer::Code(code)
        }
        TxnCall::Describe { transactional_id } => {
            let transactions = loaded.transactions.borrow();
            TxnAnswer::Described(match transactions.describe(&transactional_id) {
                Ok(metadata) => DescribedTransaction {
                    error_code: NONE,
                    state: metadata.state.name().to_string(),
                    producer_id: metadata.producer_id,
                    producer_epoch: metadata.producer_epoch,
                    timeout_ms: metadata.timeout_ms,
                    start_timestamp_ms: metadata.start_timestamp_ms,
                    partitions: metadata.partitions.iter().cloned().collect(),
                },
                Err(error) => DescribedTransaction {
                    error_code: error.code(),
                    ..DescribedTransaction::default()
                },
            })
        }
    }
}

async fn init_producer_id(
    shard: &Rc<Shard>,
    loaded: &Rc<TxnPartition>,
    transactional_id: &str,
    timeout_ms: i32,
    expected: Option<(i64, i16)>,
) -> TxnAnswer {
    let failed = |code: i16| TxnAnswer::Initialized {
        error_code: code,
        producer_id: -1,
        producer_epoch: -1,
    };
    // A new producer id is fetched (possibly from the controller) only when
    // the decision needs one; then the decision is made again on the state
    // as it is after that wait.
    let mut fresh_id: Option<i64> = None;
    let plan = loop {
        let decided = loaded.transactions.borrow().init_producer_id(
            transactional_id,
            timeout_ms,
            expected,
            now_ms(),
            || fresh_id.ok_or(TxnError::CoordinatorLoadInProgress),
        );
        match decided {
            Err(TxnError::CoordinatorLoadInProgress) if fresh_id.is_none() => {
                match next_producer_id(shard).await {
                    Ok(id) => fresh_id = Some(id),
                    Err(code) => return failed(code),
                }
            }
            Err(error) => return failed(error.code()),
            Ok(plan) => break plan,
        }
    };
    match plan {
        InitProducerIdPlan::Initialized(metadata) => {
            let (producer_id, producer_epoch) = (metadata.producer_id, metadata.producer_epoch);
            match loaded
                .store_durably(transactional_id, Some(metadata), now_ms())
                .await
            {
                Ok(()) => TxnAnswer::Initialized {
                    error_code: NONE,
                    producer_id,
                    producer_epoch,
                },
                Err(code) => failed(code),
            }
        }
        InitProducerIdPlan::FenceOngoing(plan) => {
            // The old producer's transaction is aborted under a bumped
            // epoch; this producer retries once the abort is complete.
            match loaded
                .store_durably(transactional_id, Some(plan.metadata), now_ms())
                .await
            {
                Ok(()) => {
                    if let Some(markers) = plan.markers {
                        let shard = Rc::clone(shard);
                        let loaded = Rc::clone(loaded);
                        glommio::spawn_local(async move {
                            complete(&shard, &loaded, markers).await;
                        })
                        .detach();
                    }
                    failed(KafkaError::ConcurrentTransactions.code())
                }
                Err(code) => failed(code),
            }
        }
    }
}

async fn add_partitions(
    loaded: &TxnPartition,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    partitions: &[(String, i32)],
) -> i16 {
    let now = now_ms();
    let decided = loaded.transactions.borrow().add_partitions(
        transactional_id,
        producer_id,
        producer_epoch,
        partitions,
        now,
    );
    match decided {
        Ok(None) => NONE,
        Ok(Some(metadata)) => loaded
            .store_durably(transactional_id, Some(metadata), now)
            .await
            .err()
            .unwrap_or(NONE),
        Err(error) => error.code(),
    }
}

/// Persists an end decision (durably), then writes its markers and
/// completes it.
pub async fn carry_out(shard: &Rc<Shard>, loaded: &TxnPartition, plan: EndPlan) -> Result<(), i16> {
    let id = plan.metadata.transactional_id.clone();
    loaded
        .store_durably(&id, Some(plan.metadata), now_ms())
        .await?;
    if let Some(markers) = plan.markers {
        complete(shard, loaded, markers).await;
    }
    Ok(())
}

/// Writes the markers of a decided transaction to every partition and
/// stores its completion. Returns false when some marker could not be
/// written (the decision stays; the timer task tries again).
pub async fn complete(shard: &Rc<Shard>, loaded: &TxnPartition, plan: MarkerPlan) -> bool {
    if !loaded
        .completing
        .borrow_mut()
        .insert(plan.transactional_id.clone())
    {
        return false;
    }
    let marker = Marker {
        producer_id: plan.producer_id,
        producer_epoch: plan.producer_epoch,
        coordinator_epoch: loaded.coordinator_epoch,
        control: plan.control,
    };
    let codes = write_markers(shard, marker, &plan.partitions).await;
    if codes.contains(&KafkaError::TransactionCoordinatorFenced.code()) {
        // A newer coordinator of this state partition has written markers
        // for the producer: it owns the transaction now, and this one is
        // about to learn that it lost the partition (Kafka cancels the
        // markers, TransactionMarkerRequestCompletionHandler).
        tracing::info!(
            transactional_id = plan.transactional_id,
            partition = loaded.partition,
            coordinator_epoch = loaded.coordinator_epoch,
            "a newer transaction coordinator fenced these markers"
        );
        loaded
            .completing
            .borrow_mut()
            .remove(&plan.transactional_id);
        return false;
    }
    // A partition deleted since it joined the transaction has nothing to mark.
    let failed: Vec<_> = plan
        .partitions
        .iter()
        .zip(&codes)
        .filter(|(_, &code)| code != NONE && code != KafkaError::UnknownTopicOrPartition.code())
        .collect();
    let done = if failed.is_empty() {
        let now = now_ms();
        let completed = loaded
            .transactions
            .borrow()
            .complete(&plan.transactional_id, now);
        match completed {
            Ok(metadata) => loaded
                .store_durably(&plan.transactional_id, Some(metadata), now)
                .await
                .is_ok(),
            // Completed meanwhile (a retry from the timer task).
            Err(_) => true,
        }
    } else {
        tracing::warn!(
            transactional_id = plan.transactional_id,
            ?failed,
            "cannot write every transaction marker; will retry"
        );
        false
    };
    loaded
        .completing
        .borrow_mut()
        .remove(&plan.transactional_id);
    done
}

/// ListTransactions over the state partitions this shard owns.
pub fn list_local(shard: &Shard, filter: &ListFilter) -> Vec<ListedTransaction> {
    let now = now_ms();
    shard
        .txns
        .partitions()
        .iter()
        .flat_map(|loaded| loaded.transactions.borrow().list(filter, now))
        .collect()
}

/// The ids of `loaded` whose markers must be (re)written, skipping those
/// being written right now.
pub fn stuck_completions(loaded: &TxnPartition) -> Vec<MarkerPlan> {
    loaded
        .transactions
        .borrow()
        .pending_completion()
        .into_iter()
        .filter(|plan| !loaded.is_completing(&plan.transactional_id))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::log::LogConfig;
    use crate::runtime::memlock::run_on_test_executor;
    use crate::txn::TransactionState;

    fn empty(id: &str) -> TransactionMetadata {
        TransactionMetadata {
            transactional_id: id.to_string(),
            producer_id: 7,
            last_producer_id: -1,
            producer_epoch: 0,
            last_producer_epoch: -1,
            timeout_ms: 60_000,
            state: TransactionState::Empty,
            partitions: BTreeSet::new(),
            start_timestamp_ms: -1,
            last_update_timestamp_ms: 1_000,
        }
    }

    #[test]
    fn a_partition_carries_the_epoch_it_was_loaded_at_and_stops_appending_once_replaced() {
        run_on_test_executor(|| async move {
            let dir = tempfile::tempdir().expect("tempdir");
            let log = PartitionLog::open(
                dir.path().join("__transaction_state-3"),
                LogConfig::default(),
            )
            .await
            .expect("open");
            let settings = TxnSettings::default();
            let coordinator = TxnCoordinator::default();
            coordinator.load(&settings, 3, 4, log.clone()).await;
            let first = coordinator.partition(3).expect("loaded");
            assert_eq!(first.coordinator_epoch, 4);
            first
                .store_durably("a", Some(empty("a")), 0)
                .await
                .expect("appended while current");

            // Reloaded at the next leader epoch: a call still holding the old
            // one cannot append through it.
            coordinator.install(replay(&settings, 3, 5, log.clone()).await);
            let second = coordinator.partition(3).expect("reloaded");
            assert_eq!(second.coordinator_epoch, 5);
            assert!(second.transactions.borrow().get("a").is_some(), "replayed");
            let end = log.log_end_offset();
            assert_eq!(
                first.store("b", Some(empty("b")), 0),
                Err(KafkaError::NotCoordinator.code())
            );
            assert_eq!(log.log_end_offset(), end, "nothing appended");

            // Unloaded (another replica leads): the same.
            coordinator.unload(3);
            assert!(coordinator.partition(3).is_none());
            assert_eq!(
                second.store("b", Some(empty("b")), 0),
                Err(KafkaError::NotCoordinator.code())
            );
            assert_eq!(log.log_end_offset(), end, "nothing appended");
            log.close().await.expect("close");
        });
    }
}
