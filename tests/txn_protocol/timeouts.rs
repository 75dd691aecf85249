//! A transaction open longer than its timeout is aborted by the coordinator
//! (`transaction.abort.timed.out.transaction.cleanup.interval.ms`, here 200 ms), under a
//! bumped epoch so its producer is fenced, as Kafka's `abortTimedOutTransactions` does: the
//! coordinator shows CompleteAbort at epoch + 1, the old producer's EndTxn is
//! PRODUCER_FENCED (INVALID_PRODUCER_EPOCH before v2), its late data INVALID_PRODUCER_EPOCH,
//! and read_committed readers see the transaction aborted. A transaction with a long
//! timeout on the same broker is left alone.

use std::thread;
use std::time::Duration;

use crate::common::wire::connect;
use crate::common::Broker;
use crate::data::{create_topic_with_id, fetch, produce, produce_ok, READ_COMMITTED};
use crate::flows::{begin, describe_one, end_txn, end_txn_ok, wait_for_state};
use crate::records::{data_batch, Producer};
use crate::{CORES, INVALID_PRODUCER_EPOCH, NONE, PRODUCER_FENCED, TXN_TIMEOUT_MS};

const SHORT_TIMEOUT_MS: i32 = 1_000;

#[test]
fn a_transaction_past_its_timeout_is_aborted_and_its_producer_fenced() {
    let broker = Broker::start(CORES, &["--transaction-abort-check-interval-ms", "200"]);
    let mut stream = connect(&broker.bootstrap());
    let topic = create_topic_with_id(&mut stream, "slow", 2);
    let slow = begin(&mut stream, "slow", SHORT_TIMEOUT_MS, &[("slow", &[0])]);
    produce_ok(
        &mut stream,
        Some("slow"),
        "slow",
        0,
        data_batch(slow, 0, true, &[b"late", b"again"]),
    );
    let patient = begin(&mut stream, "patient", TXN_TIMEOUT_MS, &[("slow", &[1])]);
    produce_ok(
        &mut stream,
        Some("patient"),
        "slow",
        1,
        data_batch(patient, 0, true, &[b"fine"]),
    );

    let aborted = wait_for_state(&mut stream, "slow", "CompleteAbort");
    assert_eq!(
        aborted.producer,
        Producer {
            id: slow.id,
            epoch: slow.epoch + 1
        },
        "the abort bumps the epoch"
    );
    assert!(aborted.partitions.is_empty());

    for version in 0..=4 {
        let expected = if version >= 2 {
            PRODUCER_FENCED
        } else {
            INVALID_PRODUCER_EPOCH
        };
        assert_eq!(
            end_txn(&mut stream, version, "slow", slow, true),
            expected,
            "EndTxn v{version} from the timed-out producer"
        );
    }
    let late = data_batch(slow, 2, true, &[b"too late"]);
    assert_eq!(
        produce(&mut stream, Some("slow"), "slow", 0, late).0,
        INVALID_PRODUCER_EPOCH,
        "data from the timed-out epoch"
    );
    let read = fetch(&mut stream, 17, &topic, 0, 0, READ_COMMITTED);
    let aborted_list: Vec<(i64, i64)> = read
        .aborted_transactions
        .unwrap_or_default()
        .iter()
        .map(|a| (a.producer_id.0, a.first_offset))
        .collect();
    assert_eq!(
        (read.high_watermark, read.last_stable_offset, aborted_list),
        (3, 3, vec![(slow.id, 0)]),
        "two records and the abort marker"
    );

    // Several check intervals later the long transaction is still running, and ends
    // normally.
    thread::sleep(Duration::from_millis(600));
    let still = describe_one(&mut stream, "patient");
    assert_eq!((still.state.as_str(), still.producer), ("Ongoing", patient));
    end_txn_ok(&mut stream, 4, "patient", patient, true);
    let read = fetch(&mut stream, 17, &topic, 1, 0, READ_COMMITTED);
    assert_eq!(
        (read.error_code, read.last_stable_offset),
        (NONE, 2),
        "the patient transaction committed"
    );
}
