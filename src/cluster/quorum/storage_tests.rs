//! Tests of the quorum's storage: openraft's own storage suite against
//! `MetadataLogStore` and `MetadataStateMachine`, then what the suite does not
//! cover: reopening (entries, vote, purge, truncation, snapshots), torn tails
//! and corruption, and the image the state machine applies.

use std::collections::BTreeSet;
use std::future::Future;
use std::io::Cursor;
use std::path::Path;

use openraft::storage::{
    IOFlushed, RaftLogReader, RaftLogStorage, RaftSnapshotBuilder, RaftStateMachine,
};
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, Membership, StorageError};
use openraft_rt::AsyncRuntime;
use tempfile::TempDir;

use super::log_store::{MetadataLogStore, ENTRIES_FILE, PURGED_FILE};
use super::runtime::GlommioRuntime;
use super::state_machine::MetadataStateMachine;
use super::stored;
use super::types::{CommittedLeaderId, Entry, LogId, MetadataBatch, MetadataRaft, Vote};
use crate::cluster::metadata::image::MetadataImage;
use crate::cluster::metadata::records::{
    BrokerRegistrationRecord, MetadataRecord, PartitionRecord,
};

fn run<F: Future<Output = ()>>(test: F) {
    GlommioRuntime::new(1).block_on(test);
}

/// Each suite test gets stores in a fresh temporary directory.
struct TemporaryStores;

impl StoreBuilder<MetadataRaft, MetadataLogStore, MetadataStateMachine, TempDir>
    for TemporaryStores
{
    async fn build(
        &self,
    ) -> Result<(TempDir, MetadataLogStore, MetadataStateMachine), StorageError<MetadataRaft>> {
        let error =
            |error| StorageError::from_io_error(ErrorSubject::Store, ErrorVerb::Read, error);
        let dir = tempfile::tempdir().map_err(error)?;
        let log_store = MetadataLogStore::open(dir.path()).await.map_err(error)?;
        let state_machine = MetadataStateMachine::open(dir.path())
            .await
            .map_err(error)?;
        Ok((dir, log_store, state_machine))
    }
}

#[test]
fn stores_pass_openrafts_storage_suite() {
    run(async {
        Suite::test_all(TemporaryStores)
            .await
            .expect("openraft storage suite");
    });
}

fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term), index)
}

fn normal(term: u64, index: u64, records: Vec<MetadataRecord>) -> Entry {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(MetadataBatch { records }),
    }
}

fn membership(term: u64, index: u64) -> Entry {
    let voters = BTreeSet::from([0, 1, 2]);
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Membership(Membership::new_with_defaults(vec![voters], [])),
    }
}

fn cluster_id(index: u64) -> Vec<MetadataRecord> {
    vec![MetadataRecord::ClusterId {
        cluster_id: format!("cluster-{index}"),
    }]
}

/// Entries 0..count: a membership, then records.
fn entries(count: u64) -> Vec<Entry> {
    let first = std::iter::once(membership(1, 0));
    first
        .chain((1..count).map(|index| normal(1, index, cluster_id(0))))
        .collect()
}

async fn append(store: &mut MetadataLogStore, entries: Vec<Entry>) {
    store
        .append(entries, IOFlushed::noop())
        .await
        .expect("appends");
}

async fn all_entries(store: &mut MetadataLogStore) -> Vec<Entry> {
    store
        .get_log_reader()
        .await
        .try_get_log_entries(..)
        .await
        .expect("reads")
}

#[test]
fn entries_vote_and_committed_survive_reopening() {
    let dir = tempfile::tempdir().expect("temporary directory");
    run(async {
        let mut store = MetadataLogStore::open(dir.path()).await.expect("opens");
        append(&mut store, entries(3)).await;
        append(&mut store, vec![normal(2, 3, cluster_id(3))]).await;
        store
            .save_vote(&Vote::new_committed(2, 1))
            .await
            .expect("saves vote");
        store
            .save_committed(Some(log_id(2, 3)))
            .await
            .expect("saves committed");
        drop(store);

        let mut reopened = MetadataLogStore::open(dir.path()).await.expect("reopens");
        let mut expected = entries(3);
        expected.push(normal(2, 3, cluster_id(3)));
        assert_eq!(all_entries(&mut reopened).await, expected);
        let reader_vote = reopened
            .get_log_reader()
            .await
            .read_vote()
            .await
            .expect("vote");
        assert_eq!(reader_vote, Some(Vote::new_committed(2, 1)));
        assert_eq!(
            reopened.read_committed().await.expect("committed"),
            Some(log_id(2, 3))
        );
        let state = reopened.get_log_state().await.expect("state");
        assert_eq!(
            (state.last_purged_log_id, state.last_log_id),
            (None, Some(log_id(2, 3)))
        );
    });
}

#[test]
fn purge_and_truncation_survive_reopening() {
    let dir = tempfile::tempdir().expect("temporary directory");
    run(async {
        let mut store = MetadataLogStore::open(dir.path()).await.expect("opens");
        append(&mut store, entries(10)).await;
        store.purge(log_id(1, 3)).await.expect("purges");
        store
            .truncate_after(Some(log_id(1, 7)))
            .await
            .expect("truncates");
        append(&mut store, vec![normal(2, 8, cluster_id(8))]).await;
        drop(store);

        let mut reopened = MetadataLogStore::open(dir.path()).await.expect("reopens");
        let state = reopened.get_log_state().await.expect("state");
        assert_eq!(
            (state.last_purged_log_id, state.last_log_id),
            (Some(log_id(1, 3)), Some(log_id(2, 8)))
        );
        let mut expected: Vec<Entry> = entries(8).split_off(4);
        expected.push(normal(2, 8, cluster_id(8)));
        assert_eq!(all_entries(&mut reopened).await, expected);
    });
}

#[test]
fn a_crash_between_purged_file_and_log_rewrite_drops_the_purged_entries() {
    let dir = tempfile::tempdir().expect("temporary directory");
    run(async {
        let mut store = MetadataLogStore::open(dir.path()).await.expect("opens");
        append(&mut store, entries(6)).await;
        drop(store);
    });
    let purged = stored::encode_log_id(&log_id(1, 2)).expect("encodes");
    std::fs::write(dir.path().join(PURGED_FILE), purged).expect("writes purged");
    run(async {
        let mut reopened = MetadataLogStore::open(dir.path()).await.expect("reopens");
        assert_eq!(all_entries(&mut reopened).await, entries(6).split_off(3));
    });
}

#[test]
fn a_torn_last_frame_is_cut_off_and_the_log_goes_on() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join(ENTRIES_FILE);
    run(async {
        let mut store = MetadataLogStore::open(dir.path()).await.expect("opens");
        append(&mut store, entries(3)).await;
    });
    let intact = std::fs::metadata(&path).expect("log file").len();
    let frame = stored::encode_entry(&normal(1, 3, cluster_id(3))).expect("encodes");
    let mut bytes = std::fs::read(&path).expect("reads log");
    bytes.extend_from_slice(&frame[..frame.len() / 2]);
    std::fs::write(&path, &bytes).expect("tears the log");
    run(async {
        let mut reopened = MetadataLogStore::open(dir.path()).await.expect("reopens");
        assert_eq!(all_entries(&mut reopened).await, entries(3));
        append(&mut reopened, vec![normal(1, 3, cluster_id(3))]).await;
    });
    assert_eq!(
        std::fs::metadata(&path).expect("log file").len(),
        intact + frame.len() as u64
    );
    run(async {
        let mut reopened = MetadataLogStore::open(dir.path())
            .await
            .expect("reopens again");
        let mut expected = entries(3);
        expected.push(normal(1, 3, cluster_id(3)));
        assert_eq!(all_entries(&mut reopened).await, expected);
    });
}

#[test]
fn corruption_before_the_last_frame_is_an_error() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join(ENTRIES_FILE);
    run(async {
        let mut store = MetadataLogStore::open(dir.path()).await.expect("opens");
        append(&mut store, entries(3)).await;
    });
    let mut bytes = std::fs::read(&path).expect("reads log");
    bytes[12] ^= 0x40;
    std::fs::write(&path, &bytes).expect("corrupts the log");
    run(async {
        let error = MetadataLogStore::open(dir.path())
            .await
            .err()
            .expect("refuses to open");
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    });
}

fn broker_and_topic() -> Vec<MetadataRecord> {
    let topic_id = [5; 16];
    vec![
        MetadataRecord::BrokerRegistered(BrokerRegistrationRecord {
            broker_id: 1,
            incarnation_id: [1; 16],
            broker_epoch: 10,
            host: "127.0.0.1".to_string(),
            port: 9092,
            rack: None,
        }),
        MetadataRecord::BrokerUnfenced {
            broker_id: 1,
            broker_epoch: 10,
        },
        MetadataRecord::TopicCreated {
            name: "orders".to_string(),
            topic_id,
        },
        MetadataRecord::PartitionCreated(PartitionRecord {
            topic_id,
            partition: 0,
            replicas: vec![1],
            isr: vec![1],
            leader: 1,
            leader_epoch: 0,
            partition_epoch: 0,
            ..Default::default()
        }),
    ]
}

async fn apply(state_machine: &mut MetadataStateMachine, entries: Vec<Entry>) {
    let stream = futures::stream::iter(entries.into_iter().map(|entry| Ok((entry, None))));
    state_machine.apply(stream).await.expect("applies");
}

#[test]
fn the_state_machine_applies_records_and_its_snapshot_restores_the_image() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let follower_dir = tempfile::tempdir().expect("temporary directory");
    run(async {
        let mut state_machine = MetadataStateMachine::open(dir.path()).await.expect("opens");
        let view = state_machine.view();
        // A partition of an unknown topic does not replay: skipped, not fatal.
        let entries = vec![
            membership(1, 0),
            normal(1, 1, cluster_id(0)),
            normal(1, 2, broker_and_topic()[3..].to_vec()),
            normal(1, 3, broker_and_topic()),
        ];
        apply(&mut state_machine, entries).await;
        assert_eq!(view.last_applied_index(), Some(3));
        assert!(view.read(|image| image.topic_by_name("orders").is_some()));
        assert_eq!(view.read(|image| image.live_broker_ids()), vec![1]);
        let image = view.read(MetadataImage::clone);

        let snapshot = state_machine
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .expect("builds");
        assert_eq!(snapshot.meta.last_log_id, Some(log_id(1, 3)));
        drop(state_machine);

        let mut reopened = MetadataStateMachine::open(dir.path())
            .await
            .expect("reopens");
        assert_eq!(reopened.read(MetadataImage::clone), image);
        let (last_applied, stored_membership) = reopened.applied_state().await.expect("state");
        assert_eq!(last_applied, Some(log_id(1, 3)));
        assert_eq!(stored_membership.log_id(), &Some(log_id(1, 0)));
        let current = reopened
            .get_current_snapshot()
            .await
            .expect("reads")
            .expect("a snapshot");
        assert_eq!(current.meta, snapshot.meta);

        let mut follower = MetadataStateMachine::open(follower_dir.path())
            .await
            .expect("opens");
        let follower_view = follower.view();
        follower
            .install_snapshot(&current.meta, current.snapshot)
            .await
            .expect("installs");
        assert_eq!(follower_view.read(MetadataImage::clone), image);
        assert_eq!(*follower_view.applied_index_watch().borrow(), Some(3));
    });
    run(async {
        let follower = MetadataStateMachine::open(follower_dir.path())
            .await
            .expect("reopens");
        assert_eq!(
            follower.read(MetadataImage::clone),
            image_of(dir.path()).await
        );
    });
}

async fn image_of(dir: &Path) -> MetadataImage {
    MetadataStateMachine::open(dir)
        .await
        .expect("opens")
        .read(MetadataImage::clone)
}

#[test]
fn a_corrupt_snapshot_is_an_error() {
    let dir = tempfile::tempdir().expect("temporary directory");
    run(async {
        let mut state_machine = MetadataStateMachine::open(dir.path()).await.expect("opens");
        apply(
            &mut state_machine,
            vec![membership(1, 0), normal(1, 1, broker_and_topic())],
        )
        .await;
        state_machine
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .expect("builds");
        let bad = Cursor::new(vec![1, 2, 3]);
        let meta = state_machine
            .get_current_snapshot()
            .await
            .expect("reads")
            .expect("snapshot")
            .meta;
        assert!(state_machine.install_snapshot(&meta, bad).await.is_err());
    });
    let path = dir.path().join(super::state_machine::SNAPSHOT_FILE);
    let mut bytes = std::fs::read(&path).expect("reads snapshot");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).expect("corrupts snapshot");
    run(async {
        assert!(MetadataStateMachine::open(dir.path()).await.is_err());
    });
}
