//! Disk full (issue 14): a broker on a small file system of its own (a 128 MiB ext4 image
//! on a loop device) is filled by acks=1 and acks=all producers until its free-space guard
//! (`--min-free-bytes`, `src/log/free_space.rs`) refuses Produce with KAFKA_STORAGE_ERROR.
//! Every acknowledged record must read back, in order, at its acknowledged offset, and
//! nothing refused may have been written. Deleting a topic frees space, and the same broker
//! process accepts writes again; a restart keeps everything. Without `--min-free-bytes`
//! the default reserve is a tenth of such a small volume, not the whole of it. With the
//! guard off, writes meet ENOSPC themselves (the test fills the image with a file of its
//! own): those partitions answer KAFKA_STORAGE_ERROR while the disk is full and are
//! reopened by the same process once the file is removed (`src/server/storage_recovery.rs`).
//!
//! Needs root and a loop device (`mount -o loop`); without them the test says so and
//! passes without running. The image is always unmounted and removed (`SmallFileSystem`'s
//! `Drop`), even when the test fails.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use corelog::log::free_space::volume_blocks;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use common::{
    consume_all, create_topic, producer, record, send, topic_metadata, try_delete_topic,
    wait_for_deliveries, Broker, TestProducer,
};

const IMAGE_BYTES: u64 = 128 << 20;
/// The reserve the broker keeps (`--min-free-bytes`).
const MIN_FREE_BYTES: u64 = 16 << 20;
const VALUE_BYTES: usize = 32 << 10;
/// Records per round to the filler topic (acks=1) and to the kept topic (acks=all).
const FILLER_PER_ROUND: usize = 16;
const KEPT_PER_ROUND: usize = 4;
/// More rounds than the file system can hold (128 MiB / 640 KiB per round is 205).
const ROUNDS_MAX: usize = 400;
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
const FILL_DEADLINE: Duration = Duration::from_secs(90);

/// An ext4 image mounted on a temporary directory; unmounted and removed on drop.
struct SmallFileSystem {
    /// Holds the image file and the mount point.
    dir: Option<tempfile::TempDir>,
    mount_point: PathBuf,
    mounted: bool,
    /// One small file system (and its broker) at a time in this binary. With both tests
    /// filling a disk at once on a 2-core machine, the resume check once saw produce
    /// refused again after space was freed (not seen in runs of the test alone; the cause
    /// is not known). Released after the unmount (fields drop after `Drop::drop`).
    _one_at_a_time: MutexGuard<'static, ()>,
}

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

impl SmallFileSystem {
    /// `None` (with the reason printed) when this host cannot mount one.
    fn mount(bytes: u64) -> Option<SmallFileSystem> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIPPED disk_full: mounting a test file system needs root");
            return None;
        }
        // A test that panicked poisons the lock; the next one still runs on its own image.
        let one_at_a_time = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
        let dir = tempfile::Builder::new()
            .prefix("corelog-disk-full-")
            .tempdir()
            .expect("create temporary directory");
        let image = dir.path().join("fs.img");
        let mount_point = dir.path().join("mnt");
        std::fs::create_dir(&mount_point).expect("create mount point");
        let mut small = SmallFileSystem {
            dir: Some(dir),
            mount_point: mount_point.clone(),
            mounted: false,
            _one_at_a_time: one_at_a_time,
        };
        std::fs::File::create(&image)
            .and_then(|file| file.set_len(bytes))
            .expect("create image file");
        // -m 0: no blocks reserved for root, so the broker (root here) sees the same free
        // space as statvfs's f_bavail, which the guard counts.
        let made = run("mkfs.ext4", &["-q", "-F", "-m", "0", path_str(&image)]);
        if let Err(reason) = made {
            eprintln!("SKIPPED disk_full: cannot make an ext4 image: {reason}");
            return None;
        }
        let mounted = run(
            "mount",
            &["-o", "loop", path_str(&image), path_str(&mount_point)],
        );
        if let Err(reason) = mounted {
            eprintln!("SKIPPED disk_full: cannot mount a loop device: {reason}");
            return None;
        }
        small.mounted = true;
        Some(small)
    }
}

impl Drop for SmallFileSystem {
    fn drop(&mut self) {
        if self.mounted {
            let mount_point = path_str(&self.mount_point);
            if let Err(reason) = run("umount", &[mount_point]) {
                eprintln!("umount {mount_point} failed ({reason}); detaching it lazily");
                let _ = run("umount", &["-l", mount_point]);
            }
        }
        // Removes the image and the mount point.
        self.dir.take();
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// Runs a command to completion: `Err` with its output when it fails.
fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|error| format!("{program}: {error}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{program} {args:?}: {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    ))
}

/// The value of record `id` of `topic`: its name and id, padded to `VALUE_BYTES`.
fn value(topic: &str, id: usize) -> Vec<u8> {
    let mut value = format!("{topic}-{id}-").into_bytes();
    value.resize(VALUE_BYTES, b'x');
    value
}

/// Producer settings without retries, so a refusal reaches the test: acks=all (the
/// default) as given, and with `acks=1` added by [`acks_one`].
const NO_RETRIES: [(&str, &str); 3] = [
    ("retries", "0"),
    ("enable.idempotence", "false"),
    ("message.timeout.ms", "20000"),
];

fn acks_one() -> Vec<(&'static str, &'static str)> {
    let mut settings = NO_RETRIES.to_vec();
    settings.push(("acks", "1"));
    settings
}

/// A small file system with an empty `data` directory on it for a broker; `None` when
/// this host cannot mount one.
fn small_data_dir() -> Option<(SmallFileSystem, PathBuf)> {
    let small = SmallFileSystem::mount(IMAGE_BYTES)?;
    let data_dir = small.mount_point.join("data");
    std::fs::create_dir(&data_dir).expect("create data dir");
    Some((small, data_dir))
}

/// Acknowledged records of one topic (single partition): offset -> id.
type Acked = BTreeMap<i64, usize>;

/// Sends ids `first..first + count` to `topic` and waits for their reports. Returns
/// whether any was refused; every refusal must be KAFKA_STORAGE_ERROR.
fn send_round(
    producer: &TestProducer,
    topic: &str,
    first: usize,
    count: usize,
    acked: &mut Acked,
) -> bool {
    for id in first..first + count {
        let key = id.to_string();
        let value = value(topic, id);
        send(
            producer,
            record(topic, id, key.as_bytes(), &value).partition(0),
        );
    }
    let mut refused = false;
    for delivery in wait_for_deliveries(producer, count, DELIVERY_TIMEOUT) {
        match delivery.outcome {
            Ok((partition, offset)) => {
                assert_eq!(partition, 0);
                assert!(
                    acked.insert(offset, delivery.id).is_none(),
                    "{topic}: offset {offset} acknowledged twice"
                );
            }
            Err(KafkaError::MessageProduction(RDKafkaErrorCode::KafkaStorageError)) => {
                refused = true;
            }
            Err(error) => panic!("{topic}: record {} failed with {error}", delivery.id),
        }
    }
    refused
}

/// Reads `topic` from the beginning and checks that it holds exactly the acknowledged
/// records, at their acknowledged offsets, in order: nothing acknowledged is lost and
/// nothing refused was written.
fn assert_log_is_exactly(bootstrap: &str, topic: &str, acked: &Acked) {
    let records = consume_all(bootstrap, topic, 1, acked.len(), Duration::from_secs(60));
    let read: Vec<(i64, usize)> = records
        .iter()
        .map(|record| {
            let key = record.key.as_deref().expect("every record has a key");
            let id: usize = std::str::from_utf8(key)
                .ok()
                .and_then(|key| key.parse().ok())
                .expect("keys are ids");
            assert_eq!(
                record.value.as_deref(),
                Some(&value(topic, id)[..]),
                "{topic}: the value of record {id} at offset {} differs",
                record.offset
            );
            (record.offset, id)
        })
        .collect();
    let expected: Vec<(i64, usize)> = acked.iter().map(|(offset, id)| (*offset, *id)).collect();
    assert_eq!(
        read.len(),
        expected.len(),
        "{topic}: {} records read, {} acknowledged",
        read.len(),
        expected.len()
    );
    assert_eq!(
        read, expected,
        "{topic}: the log differs from what was acknowledged"
    );
}

#[test]
fn disk_full_refuses_produce_keeps_acknowledged_records_and_resumes_once_space_is_freed() {
    let Some((small, data_dir)) = small_data_dir() else {
        return;
    };
    let min_free = MIN_FREE_BYTES.to_string();
    // Declared after `small`, so dropped (killed) before the file system is unmounted.
    let mut broker = Broker::start_in(
        &data_dir,
        1,
        &[
            "--min-free-bytes",
            &min_free,
            "--log-segment-bytes",
            "4194304",
        ],
    );
    let bootstrap = broker.bootstrap();
    let filler = "filler";
    let kept = "kept";
    create_topic(&bootstrap, filler, 1);
    create_topic(&bootstrap, kept, 1);
    let filler_producer = producer(&bootstrap, &acks_one());
    let kept_producer = producer(&bootstrap, &NO_RETRIES);

    // Fill the disk until both producers are refused.
    let mut filler_acked = Acked::new();
    let mut kept_acked = Acked::new();
    let (mut filler_refused, mut kept_refused) = (false, false);
    let (mut filler_next, mut kept_next) = (0, 0);
    let started = Instant::now();
    for _ in 0..ROUNDS_MAX {
        if filler_refused && kept_refused {
            break;
        }
        assert!(
            started.elapsed() < FILL_DEADLINE,
            "the disk did not fill within {FILL_DEADLINE:?}"
        );
        filler_refused |= send_round(
            &filler_producer,
            filler,
            filler_next,
            FILLER_PER_ROUND,
            &mut filler_acked,
        );
        filler_next += FILLER_PER_ROUND;
        kept_refused |= send_round(
            &kept_producer,
            kept,
            kept_next,
            KEPT_PER_ROUND,
            &mut kept_acked,
        );
        kept_next += KEPT_PER_ROUND;
    }
    assert!(
        filler_refused && kept_refused,
        "both producers refused with KAFKA_STORAGE_ERROR (acks=1: {filler_refused}, \
         acks=all: {kept_refused}) after {} + {} acknowledged records",
        filler_acked.len(),
        kept_acked.len()
    );
    assert!(
        !filler_acked.is_empty() && !kept_acked.is_empty(),
        "records were acknowledged before the disk filled"
    );
    assert!(
        broker.log_contains("disk full"),
        "the broker logs why it refuses\n{}",
        broker.recent_log()
    );
    broker.assert_alive();
    eprintln!(
        "refused after {} acks=1 and {} acks=all records in {:?}",
        filler_acked.len(),
        kept_acked.len(),
        started.elapsed()
    );

    // Fetches are served while the disk is full, and the logs hold exactly what was
    // acknowledged.
    assert_log_is_exactly(&bootstrap, filler, &filler_acked);
    assert_log_is_exactly(&bootstrap, kept, &kept_acked);

    // Free space: delete the filler topic. The same process accepts writes again once
    // its guard has read the free space (every 500 ms).
    try_delete_topic(&bootstrap, filler).expect("delete the filler topic");
    let resume_deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let refused = send_round(&kept_producer, kept, kept_next, 1, &mut kept_acked);
        kept_next += 1;
        if !refused {
            break;
        }
        assert!(
            Instant::now() < resume_deadline,
            "produce still refused 30 s after the filler topic was deleted"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let refused = send_round(&kept_producer, kept, kept_next, 40, &mut kept_acked);
    kept_next += 40;
    // The free space and the broker's log say, if this fails again, whether the
    // deletion had freed its space yet (the guard reads it every 500 ms).
    assert!(
        !refused,
        "produce keeps being accepted after space was freed ({:?} bytes free now; filler \
         directory left: {})\n{}",
        volume_blocks(&data_dir).map(|blocks| blocks.available_bytes()),
        data_dir.join(format!("{filler}-0")).exists(),
        broker.recent_log()
    );
    assert!(broker.log_contains("produce accepted again"));
    assert_log_is_exactly(&bootstrap, kept, &kept_acked);
    drop(filler_producer);
    drop(kept_producer);

    // A restart keeps everything.
    broker.restart();
    let bootstrap = broker.bootstrap();
    assert_log_is_exactly(&bootstrap, kept, &kept_acked);
    let filler_after = topic_metadata(&bootstrap, filler);
    assert!(
        filler_after
            .as_ref()
            .is_none_or(|metadata| metadata.error.is_some()),
        "the deleted topic stays deleted: {filler_after:?}"
    );
    let refused = send_round(
        &producer(&bootstrap, &NO_RETRIES),
        kept,
        kept_next,
        10,
        &mut kept_acked,
    );
    assert!(!refused, "produce accepted after the restart");
    assert_log_is_exactly(&bootstrap, kept, &kept_acked);
    broker.stop_graceful();
    drop(broker);
    drop(small);
}

#[test]
fn the_default_reserve_on_a_small_volume_is_a_tenth_of_it() {
    let Some((small, data_dir)) = small_data_dir() else {
        return;
    };
    // No --min-free-bytes: the 1 GiB default would refuse every Produce on a 128 MiB
    // volume; capped at a tenth of it, the broker takes about 100 MiB first.
    let broker = Broker::start_in(&data_dir, 1, &["--log-segment-bytes", "4194304"]);
    let bootstrap = broker.bootstrap();
    let topic = "small-volume";
    create_topic(&bootstrap, topic, 1);
    let producer = producer(&bootstrap, &acks_one());
    let mut acked = Acked::new();
    let mut next = 0;
    let started = Instant::now();
    let mut refused = false;
    for _ in 0..ROUNDS_MAX {
        assert!(
            started.elapsed() < FILL_DEADLINE,
            "the disk did not fill within {FILL_DEADLINE:?}"
        );
        if send_round(&producer, topic, next, FILLER_PER_ROUND, &mut acked) {
            refused = true;
            break;
        }
        next += FILLER_PER_ROUND;
    }
    assert!(refused, "the reserve was reached");
    let acked_bytes = acked.len() as u64 * VALUE_BYTES as u64;
    assert!(
        acked_bytes >= 64 << 20,
        "most of the volume was written before the refusal: {acked_bytes} bytes"
    );
    let available = volume_blocks(&data_dir)
        .expect("statvfs of the data directory")
        .available_bytes();
    assert!(
        available >= 4 << 20,
        "refused while a reserve is left, not at a full disk: {available} bytes free"
    );
    assert_log_is_exactly(&bootstrap, topic, &acked);
    // The broker stops before its file system is unmounted.
    drop(broker);
    drop(small);
}

/// Fills the file system under `dir` with one file, `dir/ballast`, until a write meets
/// ENOSPC; answers its path.
fn fill_with_ballast(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("ballast");
    let mut file = std::fs::File::create(&path).expect("create the ballast file");
    let chunk = vec![0x5a_u8; 1 << 20];
    // Far more than the image holds: the loop ends at ENOSPC.
    for _ in 0..((2 * IMAGE_BYTES) >> 20) {
        match file.write_all(&chunk) {
            Ok(()) => {}
            Err(error) if error.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(error) => panic!("writing the ballast file: {error}"),
        }
    }
    // The last partial chunk and the file's metadata reach the disk.
    let _ = file.sync_all();
    path
}

#[test]
fn a_write_that_meets_a_full_disk_fails_until_space_is_freed_then_resumes_without_a_restart() {
    let Some((small, data_dir)) = small_data_dir() else {
        return;
    };
    // The guard is off, so the broker's writes meet ENOSPC themselves: another process
    // fills the disk.
    let mut broker = Broker::start_in(
        &data_dir,
        1,
        &["--min-free-bytes", "0", "--log-segment-bytes", "4194304"],
    );
    let bootstrap = broker.bootstrap();
    // acks=1 to one topic, acks=all to the other.
    let (quick, kept) = ("quick", "kept");
    create_topic(&bootstrap, quick, 1);
    create_topic(&bootstrap, kept, 1);
    let quick_producer = producer(&bootstrap, &acks_one());
    let kept_producer = producer(&bootstrap, &NO_RETRIES);
    let (mut quick_acked, mut kept_acked) = (Acked::new(), Acked::new());
    let (mut quick_next, mut kept_next) = (0, 0);
    let mut round = |quick_count: usize, kept_count: usize| {
        let quick_refused = send_round(
            &quick_producer,
            quick,
            quick_next,
            quick_count,
            &mut quick_acked,
        );
        quick_next += quick_count;
        let kept_refused = send_round(&kept_producer, kept, kept_next, kept_count, &mut kept_acked);
        kept_next += kept_count;
        (quick_refused, kept_refused)
    };
    assert_eq!(
        round(8, 8),
        (false, false),
        "accepted before the disk is full"
    );

    let ballast = fill_with_ballast(&small.mount_point);
    // The active segments' preallocations still take a little; then the writes fail.
    let started = Instant::now();
    let (mut quick_refused, mut kept_refused) = (false, false);
    while !(quick_refused && kept_refused) {
        assert!(
            started.elapsed() < FILL_DEADLINE,
            "writes did not fail within {FILL_DEADLINE:?} of a full disk (acks=1: \
             {quick_refused}, acks=all: {kept_refused})\n{}",
            broker.recent_log()
        );
        let (quick_now, kept_now) = round(KEPT_PER_ROUND, KEPT_PER_ROUND);
        quick_refused |= quick_now;
        kept_refused |= kept_now;
    }
    assert!(
        broker.log_contains("partition log storage failure"),
        "the writes met ENOSPC themselves, not a guard\n{}",
        broker.recent_log()
    );
    // Still full: the partitions stay failed, the broker keeps running.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        round(1, 1),
        (true, true),
        "refused while the disk is still full"
    );
    broker.assert_alive();

    // Space comes back: the same process reopens each partition on a later write.
    std::fs::remove_file(&ballast).expect("remove the ballast file");
    let resume_deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if round(1, 1) == (false, false) {
            break;
        }
        assert!(
            Instant::now() < resume_deadline,
            "produce still refused 30 s after space was freed\n{}",
            broker.recent_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        round(40, 40),
        (false, false),
        "produce keeps being accepted once the partitions are reopened"
    );
    assert!(broker.log_contains("partition reopened"));
    // Everything acknowledged, before and after, is there at its offset; nothing
    // refused was written.
    assert_log_is_exactly(&bootstrap, quick, &quick_acked);
    assert_log_is_exactly(&bootstrap, kept, &kept_acked);
    drop(quick_producer);
    drop(kept_producer);

    broker.restart();
    let bootstrap = broker.bootstrap();
    assert_log_is_exactly(&bootstrap, quick, &quick_acked);
    assert_log_is_exactly(&bootstrap, kept, &kept_acked);
    assert!(
        !send_round(
            &producer(&bootstrap, &NO_RETRIES),
            kept,
            kept_next,
            10,
            &mut kept_acked
        ),
        "produce accepted after the restart"
    );
    assert_log_is_exactly(&bootstrap, kept, &kept_acked);
    broker.stop_graceful();
    drop(broker);
    drop(small);
}
