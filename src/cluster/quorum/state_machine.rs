//! `MetadataStateMachine`: openraft's state machine for the metadata quorum.
//! It applies committed entries to the node's `MetadataImage` and keeps its
//! snapshots, on shard 0 of the node (voters and, later, learners alike).
//!
//! The image lives in memory only; what makes it durable is the log plus a
//! snapshot. A snapshot is the image as records (`MetadataImage::to_records`,
//! a `METADATA_SNAPSHOT` frame: the bytes openraft sends to a lagging
//! follower) behind a frame of its meta, in one `snapshot` file of the log's
//! directory, replaced durably. On open the image is restored from it, and
//! openraft replays the log entries after it (up to the saved committed id).
//!
//! A record that fails replay is a controller bug: it is logged at error and
//! skipped, and the rest of the entry still applies, because a quorum that
//! stops applying would wedge the whole cluster. The broker reads the image
//! through a [`MetadataView`], whose borrows cannot outlive a closure (never
//! across an `.await`), and waits for its own proposals with the
//! last-applied watch.

use std::cell::RefCell;
use std::io::{self, Cursor};
use std::path::PathBuf;
use std::rc::Rc;

use futures::{Stream, StreamExt};
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::EntryPayload;
use tokio::sync::{watch, Mutex};

use super::stored;
use super::types::{BatchApplied, Entry, LogId, MetadataRaft, SnapshotMeta, StoredMembership};
use crate::cluster::metadata::frame::{
    self, FrameError, FrameKind, FRAME_HEADER_BYTES, MAX_FRAME_BYTES,
};
use crate::cluster::metadata::image::MetadataImage;
use crate::cluster::metadata::records::MetadataRecord;
use crate::runtime::durable_file;

/// The current snapshot: its meta frame, then its records' frame.
pub const SNAPSHOT_FILE: &str = "snapshot";
/// A snapshot file holds one records frame and one small meta frame.
const SNAPSHOT_FILE_BYTES_MAX: u64 = 2 * (MAX_FRAME_BYTES + FRAME_HEADER_BYTES) as u64;

/// A snapshot as openraft sees it.
pub type MetadataSnapshot = openraft::type_config::alias::SnapshotOf<MetadataRaft, Cursor<Vec<u8>>>;

/// What has been applied.
struct Applied {
    image: MetadataImage,
    last_applied: Option<LogId>,
    membership: StoredMembership,
}

/// The newest snapshot on disk, kept in memory to serve followers.
struct CurrentSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

/// The broker's read access to the applied image (cheap to clone).
#[derive(Clone)]
pub struct MetadataView {
    applied: Rc<RefCell<Applied>>,
    last_applied_index: watch::Receiver<Option<u64>>,
}

impl MetadataView {
    /// Runs `read` against the image; the borrow ends with the closure.
    pub fn read<T>(&self, read: impl FnOnce(&MetadataImage) -> T) -> T {
        read(&self.applied.borrow().image)
    }

    /// The index of the last applied log entry (`None` before the first).
    pub fn last_applied_index(&self) -> Option<u64> {
        *self.last_applied_index.borrow()
    }

    /// A watch of the last applied index, e.g. to wait until a proposed batch
    /// is applied here: `applied.wait_for(|i| i.is_some_and(|i| i >= index))`.
    pub fn applied_index_watch(&self) -> watch::Receiver<Option<u64>> {
        self.last_applied_index.clone()
    }
}

/// openraft's state machine for the metadata quorum (see the module header).
/// Clones share the same state: keep one to read the image while openraft
/// owns another.
#[derive(Clone)]
pub struct MetadataStateMachine {
    dir: PathBuf,
    applied: Rc<RefCell<Applied>>,
    last_applied_index: Rc<watch::Sender<Option<u64>>>,
    /// Serialises snapshot writes (a build may race an install).
    snapshot: Rc<Mutex<Option<CurrentSnapshot>>>,
}

/// Builds a snapshot of the image as it was when the builder was made.
pub struct MetadataSnapshotBuilder {
    dir: PathBuf,
    meta: SnapshotMeta,
    records: Vec<MetadataRecord>,
    snapshot: Rc<Mutex<Option<CurrentSnapshot>>>,
}

impl MetadataStateMachine {
    /// Opens the state machine of the log in `dir` (the directory of
    /// `MetadataLogStore::open`), restoring the image from its snapshot.
    pub async fn open(dir: impl Into<PathBuf>) -> io::Result<MetadataStateMachine> {
        let dir = dir.into();
        durable_file::ensure_directory(&dir).await?;
        let mut applied = Applied {
            image: MetadataImage::default(),
            last_applied: None,
            membership: StoredMembership::default(),
        };
        let mut current = None;
        if let Some(bytes) =
            durable_file::read_small(&dir.join(SNAPSHOT_FILE), SNAPSHOT_FILE_BYTES_MAX).await?
        {
            let (meta_frame, data) = stored::split_first_frame(&bytes).map_err(invalid)?;
            let meta = stored::decode_snapshot_meta(meta_frame)?;
            let records = decode_records(data)?;
            applied = Applied {
                image: image_from_snapshot(&meta, &records),
                last_applied: meta.last_log_id,
                membership: meta.last_membership.clone(),
            };
            current = Some(CurrentSnapshot {
                meta,
                data: data.to_vec(),
            });
        }
        let (last_applied_index, _) = watch::channel(applied.last_applied.map(|id| id.index));
        Ok(MetadataStateMachine {
            dir,
            applied: Rc::new(RefCell::new(applied)),
            last_applied_index: Rc::new(last_applied_index),
            snapshot: Rc::new(Mutex::new(current)),
        })
    }

    /// Runs `read` against the image (see [`MetadataView::read`]).
    pub fn read<T>(&self, read: impl FnOnce(&MetadataImage) -> T) -> T {
        read(&self.applied.borrow().image)
    }

    /// Read access to the image for the broker, without the state machine.
    pub fn view(&self) -> MetadataView {
        MetadataView {
            applied: self.applied.clone(),
            last_applied_index: self.last_applied_index.subscribe(),
        }
    }

    fn apply_entry(&self, entry: Entry) {
        let mut applied = self.applied.borrow_mut();
        let index = entry.log_id.index;
        match entry.payload {
            EntryPayload::Blank => {}
            EntryPayload::Normal(batch) => {
                for record in &batch.records {
                    if let Err(error) = applied.image.apply(index, record) {
                        tracing::error!(index, %error, ?record, "metadata record does not replay; skipped (a controller bug)");
                    }
                }
            }
            EntryPayload::Membership(membership) => {
                applied.membership = StoredMembership::new(Some(entry.log_id), membership);
            }
        }
        applied.last_applied = Some(entry.log_id);
    }
}

impl RaftStateMachine<MetadataRaft> for MetadataStateMachine {
    type SnapshotData = Cursor<Vec<u8>>;
    type SnapshotBuilder = MetadataSnapshotBuilder;

    async fn applied_state(&mut self) -> io::Result<(Option<LogId>, StoredMembership)> {
        let applied = self.applied.borrow();
        Ok((applied.last_applied, applied.membership.clone()))
    }

    async fn apply<S>(&mut self, mut entries: S) -> io::Result<()>
    where
        S: Stream<Item = io::Result<EntryResponder<MetadataRaft>>> + Unpin,
    {
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            let log_index = entry.log_id.index;
            self.apply_entry(entry);
            self.last_applied_index.send_replace(Some(log_index));
            if let Some(responder) = responder {
                responder.send(BatchApplied { log_index });
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> MetadataSnapshotBuilder {
        let applied = self.applied.borrow();
        MetadataSnapshotBuilder {
            dir: self.dir.clone(),
            meta: SnapshotMeta {
                last_log_id: applied.last_applied,
                last_membership: applied.membership.clone(),
            },
            records: applied.image.to_records(),
            snapshot: self.snapshot.clone(),
        }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Cursor<Vec<u8>>,
    ) -> io::Result<()> {
        let data = snapshot.into_inner();
        let records = decode_records(&data)?;
        let image = image_from_snapshot(meta, &records);
        store_snapshot(&self.dir, &self.snapshot, meta, data, false).await?;
        *self.applied.borrow_mut() = Applied {
            image,
            last_applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
        };
        self.last_applied_index
            .send_replace(meta.last_log_id.map(|id| id.index));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> io::Result<Option<MetadataSnapshot>> {
        let current = self.snapshot.lock().await;
        Ok(current.as_ref().map(|current| MetadataSnapshot {
            meta: current.meta.clone(),
            snapshot: Cursor::new(current.data.clone()),
        }))
    }
}

impl RaftSnapshotBuilder<MetadataRaft> for MetadataSnapshotBuilder {
    type SnapshotData = Cursor<Vec<u8>>;

    async fn build_snapshot(&mut self) -> io::Result<MetadataSnapshot> {
        let data = frame::encode(FrameKind::METADATA_SNAPSHOT, &self.records).map_err(invalid)?;
        store_snapshot(&self.dir, &self.snapshot, &self.meta, data.clone(), true).await?;
        Ok(MetadataSnapshot {
            meta: self.meta.clone(),
            snapshot: Cursor::new(data),
        })
    }
}

/// Makes `meta` and `data` the current snapshot, on disk first. A built
/// snapshot (`only_if_newer`) never replaces a newer one installed while it
/// was being built: the log may already be purged up to the newer one.
async fn store_snapshot(
    dir: &std::path::Path,
    snapshot: &Mutex<Option<CurrentSnapshot>>,
    meta: &SnapshotMeta,
    data: Vec<u8>,
    only_if_newer: bool,
) -> io::Result<()> {
    let mut current = snapshot.lock().await;
    if only_if_newer
        && current
            .as_ref()
            .is_some_and(|current| current.meta.last_log_id > meta.last_log_id)
    {
        return Ok(());
    }
    let mut bytes = stored::encode_snapshot_meta(meta).map_err(invalid)?;
    bytes.extend_from_slice(&data);
    durable_file::replace(&dir.join(SNAPSHOT_FILE), bytes).await?;
    *current = Some(CurrentSnapshot {
        meta: meta.clone(),
        data,
    });
    Ok(())
}

fn decode_records(data: &[u8]) -> io::Result<Vec<MetadataRecord>> {
    frame::decode::<Vec<MetadataRecord>>(FrameKind::METADATA_SNAPSHOT, data).map_err(invalid)
}

/// The image a snapshot's records replay to. Records that do not replay are
/// logged and skipped, as in `apply`.
fn image_from_snapshot(meta: &SnapshotMeta, records: &[MetadataRecord]) -> MetadataImage {
    let Some(last) = meta.last_log_id else {
        return MetadataImage::default();
    };
    MetadataImage::from_snapshot(last.index, records).unwrap_or_else(|error| {
        tracing::error!(index = last.index, %error, "metadata snapshot does not replay cleanly; skipping the bad records");
        let mut image = MetadataImage::default();
        for record in records {
            if let Err(error) = image.apply(last.index, record) {
                tracing::error!(index = last.index, %error, ?record, "snapshot record skipped");
            }
        }
        image
    })
}

fn invalid(error: FrameError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}
