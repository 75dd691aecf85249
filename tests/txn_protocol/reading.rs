//! Transactional record batches produced by hand and read back at every Fetch version
//! (4-17) with both isolation levels (KIP-98): read_committed answers carry the last stable
//! offset and the aborted transactions `(producer id, first offset)` overlapping the data,
//! read_uncommitted ones the last stable offset and a null list; an open transaction holds
//! read_committed readers and ListOffsets (v2+, isolation_level 1) at its first offset; and
//! Produce refuses control batches from clients (INVALID_RECORD) and plain batches from a
//! producer whose transaction is open on the partition (INVALID_TXN_STATE).

use std::net::TcpStream;

use kafka_protocol::messages::fetch_response::PartitionData;

use crate::common::wire::connect;
use crate::common::Broker;
use crate::data::{
    create_topic_with_id, fetch, latest_offset, produce, produce_ok, Topic, READ_COMMITTED,
    READ_UNCOMMITTED,
};
use crate::flows::{begin, end_txn_ok};
use crate::records::{batches, control_batch, data_batch, Producer};
use crate::{CORES, INVALID_RECORD, INVALID_TXN_STATE, NONE, TXN_TIMEOUT_MS};

const FETCH_VERSIONS: std::ops::RangeInclusive<i16> = 4..=17;
const NO_PRODUCER: Producer = Producer { id: -1, epoch: -1 };

/// What one partition answered to a Fetch, reduced to what these tests check.
#[derive(Debug, PartialEq, Eq)]
struct Read {
    error_code: i16,
    high_watermark: i64,
    last_stable_offset: i64,
    /// `None` is the null list of read_uncommitted answers.
    aborted: Option<Vec<(i64, i64)>>,
    /// Base offset of every returned batch, with its marker (Some(true) commit).
    batches: Vec<(i64, Option<bool>)>,
}

fn read(data: PartitionData) -> Read {
    Read {
        error_code: data.error_code,
        high_watermark: data.high_watermark,
        last_stable_offset: data.last_stable_offset,
        aborted: data.aborted_transactions.map(|list| {
            list.iter()
                .map(|aborted| (aborted.producer_id.0, aborted.first_offset))
                .collect()
        }),
        batches: batches(&data.records.unwrap_or_default())
            .iter()
            .map(|batch| (batch.base_offset, batch.marker))
            .collect(),
    }
}

fn fetch_read(
    stream: &mut TcpStream,
    version: i16,
    topic: &Topic,
    offset: i64,
    isolation_level: i8,
) -> Read {
    let data = fetch(stream, version, topic, 0, offset, isolation_level);
    let log_start_offset = data.log_start_offset;
    // log_start_offset exists from v5; v4 answers leave it at the codec's default.
    assert_eq!(
        log_start_offset,
        if version >= 5 { 0 } else { -1 },
        "Fetch v{version} log start offset"
    );
    read(data)
}

/// A transaction of `id` on partition 0 with one batch of `records` records, ended
/// (commit or abort) when `end` says so. Returns the producer.
fn transaction(
    stream: &mut TcpStream,
    id: &str,
    topic: &str,
    records: usize,
    end: Option<bool>,
) -> Producer {
    let producer = begin(stream, id, TXN_TIMEOUT_MS, &[(topic, &[0])]);
    let values: Vec<&[u8]> = (0..records).map(|_| b"txn".as_slice()).collect();
    produce_ok(
        stream,
        Some(id),
        topic,
        0,
        data_batch(producer, 0, true, &values),
    );
    if let Some(commit) = end {
        end_txn_ok(stream, 4, id, producer, commit);
    }
    producer
}

#[test]
fn every_fetch_version_reports_aborted_transactions_to_read_committed_consumers() {
    let broker = Broker::start(CORES, &[]);
    let mut stream = connect(&broker.bootstrap());
    let topic = create_topic_with_id(&mut stream, "ledger", 1);
    // 0-1 plain, 2-4 aborted + marker 5, 6-7 committed + marker 8, 9 plain.
    let plain = data_batch(NO_PRODUCER, -1, false, &[b"a", b"b"]);
    assert_eq!(produce_ok(&mut stream, None, "ledger", 0, plain), 0);
    let aborted = transaction(&mut stream, "reader-abort", "ledger", 3, Some(false));
    transaction(&mut stream, "reader-commit", "ledger", 2, Some(true));
    let plain = data_batch(NO_PRODUCER, -1, false, &[b"c"]);
    assert_eq!(produce_ok(&mut stream, None, "ledger", 0, plain), 9);

    let all_batches = vec![
        (0, None),
        (2, None),
        (5, Some(false)),
        (6, None),
        (8, Some(true)),
        (9, None),
    ];
    for version in FETCH_VERSIONS {
        assert_eq!(
            fetch_read(&mut stream, version, &topic, 0, READ_COMMITTED),
            Read {
                error_code: NONE,
                high_watermark: 10,
                last_stable_offset: 10,
                aborted: Some(vec![(aborted.id, 2)]),
                batches: all_batches.clone(),
            },
            "Fetch v{version} read_committed from 0"
        );
        assert_eq!(
            fetch_read(&mut stream, version, &topic, 0, READ_UNCOMMITTED),
            Read {
                error_code: NONE,
                high_watermark: 10,
                last_stable_offset: 10,
                aborted: None,
                batches: all_batches.clone(),
            },
            "Fetch v{version} read_uncommitted from 0"
        );
        // From inside the aborted batch: that whole batch, and its transaction.
        assert_eq!(
            fetch_read(&mut stream, version, &topic, 3, READ_COMMITTED),
            Read {
                error_code: NONE,
                high_watermark: 10,
                last_stable_offset: 10,
                aborted: Some(vec![(aborted.id, 2)]),
                batches: all_batches[1..].to_vec(),
            },
            "Fetch v{version} read_committed from 3"
        );
        // Past the aborted transaction's marker: an empty (not null) list.
        assert_eq!(
            fetch_read(&mut stream, version, &topic, 6, READ_COMMITTED),
            Read {
                error_code: NONE,
                high_watermark: 10,
                last_stable_offset: 10,
                aborted: Some(vec![]),
                batches: all_batches[3..].to_vec(),
            },
            "Fetch v{version} read_committed from 6"
        );
    }
}

#[test]
fn an_open_transaction_holds_read_committed_readers_at_its_first_offset() {
    let broker = Broker::start(CORES, &[]);
    let mut stream = connect(&broker.bootstrap());
    let topic = create_topic_with_id(&mut stream, "pending", 1);
    // 0-1 plain, 2-3 an open transaction, 4 plain.
    let plain = data_batch(NO_PRODUCER, -1, false, &[b"a", b"b"]);
    produce_ok(&mut stream, None, "pending", 0, plain);
    let open = transaction(&mut stream, "holder", "pending", 2, None);
    let plain = data_batch(NO_PRODUCER, -1, false, &[b"c"]);
    assert_eq!(produce_ok(&mut stream, None, "pending", 0, plain), 4);

    let held = |aborted: Option<Vec<(i64, i64)>>, batches: Vec<(i64, Option<bool>)>| Read {
        error_code: NONE,
        high_watermark: 5,
        last_stable_offset: 2,
        aborted,
        batches,
    };
    for version in FETCH_VERSIONS {
        assert_eq!(
            fetch_read(&mut stream, version, &topic, 0, READ_COMMITTED),
            held(Some(vec![]), vec![(0, None)]),
            "Fetch v{version} read_committed from 0"
        );
        for offset in [2, 4] {
            assert_eq!(
                fetch_read(&mut stream, version, &topic, offset, READ_COMMITTED),
                held(Some(vec![]), vec![]),
                "Fetch v{version} read_committed from {offset}, at or past the LSO"
            );
        }
        assert_eq!(
            fetch_read(&mut stream, version, &topic, 0, READ_UNCOMMITTED),
            held(None, vec![(0, None), (2, None), (4, None)]),
            "Fetch v{version} read_uncommitted from 0"
        );
    }
    for version in 1..=9 {
        assert_eq!(
            latest_offset(&mut stream, version, "pending", 0, READ_UNCOMMITTED),
            (NONE, 5),
            "ListOffsets v{version} latest, read_uncommitted"
        );
        let stable = if version >= 2 { 2 } else { 5 };
        assert_eq!(
            latest_offset(&mut stream, version, "pending", 0, READ_COMMITTED),
            (NONE, stable),
            "ListOffsets v{version} latest, read_committed"
        );
    }

    // A plain batch from the producer whose transaction is open here (in sequence after
    // its two transactional records), and a marker written by a client: both refused,
    // nothing appended.
    let plain_from_open = data_batch(open, 2, false, &[b"outside"]);
    assert_eq!(
        produce(&mut stream, Some("holder"), "pending", 0, plain_from_open).0,
        INVALID_TXN_STATE,
        "non-transactional batch during the producer's transaction"
    );
    for commit in [true, false] {
        let marker = control_batch(open, commit, 0);
        assert_eq!(
            produce(&mut stream, Some("holder"), "pending", 0, marker).0,
            INVALID_RECORD,
            "control batch (commit={commit}) from a client"
        );
    }
    assert_eq!(
        latest_offset(&mut stream, 9, "pending", 0, READ_UNCOMMITTED),
        (NONE, 5)
    );

    // The abort's marker releases the readers; the transaction is listed as aborted.
    end_txn_ok(&mut stream, 4, "holder", open, false);
    for version in FETCH_VERSIONS {
        assert_eq!(
            fetch_read(&mut stream, version, &topic, 2, READ_COMMITTED),
            Read {
                error_code: NONE,
                high_watermark: 6,
                last_stable_offset: 6,
                aborted: Some(vec![(open.id, 2)]),
                batches: vec![(2, None), (4, None), (5, Some(false))],
            },
            "Fetch v{version} read_committed from 2 after the abort"
        );
    }
    assert_eq!(
        latest_offset(&mut stream, 9, "pending", 0, READ_COMMITTED),
        (NONE, 6)
    );
}
