//! The coordinator's read-only views: DescribeTransactions (state names, partitions,
//! timeout, start time, producer id and epoch; unknown ids TRANSACTIONAL_ID_NOT_FOUND) and
//! ListTransactions (state filters, producer id filters, unknown state names reported, the
//! v1 duration filter) over transactional ids spread on both shards' `__transaction_state`
//! partitions.

use std::collections::BTreeSet;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::wire::connect;
use crate::common::Broker;
use crate::data::create_topic;
use crate::flows::{
    add_offsets, begin, describe, describe_one, end_txn_ok, find_transaction_coordinator,
    init_transactional, java_partition, list, retrying, wait_for_state, Described,
};
use crate::records::Producer;
use crate::{
    CORES, NONE, OFFSETS_TOPIC, OFFSETS_TOPIC_PARTITIONS, TRANSACTIONAL_ID_NOT_FOUND,
    TRANSACTION_STATE_PARTITIONS,
};

const TIMEOUT_MS: i32 = 45_000;

fn not_found() -> Described {
    Described {
        error_code: TRANSACTIONAL_ID_NOT_FOUND,
        state: String::new(),
        producer: Producer { id: -1, epoch: -1 },
        timeout_ms: 0,
        start_time_ms: 0,
        partitions: vec![],
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}

#[test]
fn describe_transactions_reports_each_state() {
    let broker = Broker::start(CORES, &[]);
    let mut stream = connect(&broker.bootstrap());
    // Before any transaction: the coordinator knows no id.
    assert_eq!(describe_one(&mut stream, "nobody"), not_found());
    create_topic(&mut stream, "board", 3);

    find_transaction_coordinator(&mut stream, "board-empty");
    let empty = init_transactional(&mut stream, 4, "board-empty", TIMEOUT_MS);
    let before_start = now_ms();
    let ongoing = begin(
        &mut stream,
        "board-ongoing",
        TIMEOUT_MS,
        &[("board", &[2, 0])],
    );
    let code = retrying(&mut stream, "AddOffsetsToTxn", |stream| {
        add_offsets(stream, 3, "board-ongoing", ongoing, "board-group")
    });
    assert_eq!(code, NONE);
    let mut ended = Vec::new();
    for (id, commit) in [("board-commit", true), ("board-abort", false)] {
        let producer = begin(&mut stream, id, TIMEOUT_MS, &[("board", &[1])]);
        end_txn_ok(&mut stream, 4, id, producer, commit);
        ended.push(producer);
    }
    wait_for_state(&mut stream, "board-commit", "CompleteCommit");
    wait_for_state(&mut stream, "board-abort", "CompleteAbort");

    let ids = [
        "board-empty",
        "nobody",
        "board-ongoing",
        "board-commit",
        "board-abort",
    ];
    let described = describe(&mut stream, &ids);
    assert_eq!(described[1], not_found(), "an unknown id among known ones");
    let expect = |state: &str, producer: Producer, partitions: Vec<(String, i32)>| {
        (state.to_string(), producer, TIMEOUT_MS, partitions)
    };
    let summary = |d: &Described| {
        (
            d.state.clone(),
            d.producer,
            d.timeout_ms,
            d.partitions.clone(),
        )
    };
    assert_eq!(described[0].error_code, NONE);
    assert_eq!(summary(&described[0]), expect("Empty", empty, vec![]));
    assert_eq!(described[0].start_time_ms, -1, "no transaction yet");
    let offsets_partition = java_partition("board-group", OFFSETS_TOPIC_PARTITIONS);
    assert_eq!(
        summary(&described[2]),
        expect(
            "Ongoing",
            ongoing,
            vec![
                (OFFSETS_TOPIC.to_string(), offsets_partition),
                ("board".to_string(), 0),
                ("board".to_string(), 2)
            ]
        )
    );
    let started = described[2].start_time_ms;
    assert!(
        (before_start - 1_000..=now_ms()).contains(&started),
        "start time {started} of the running transaction"
    );
    assert_eq!(
        summary(&described[3]),
        expect("CompleteCommit", ended[0], vec![])
    );
    assert_eq!(
        summary(&described[4]),
        expect("CompleteAbort", ended[1], vec![])
    );
    for index in [3, 4] {
        assert!(described[index].start_time_ms >= before_start - 1_000);
    }
}

#[test]
fn list_transactions_filters_ids_from_both_shards() {
    let broker = Broker::start(CORES, &[]);
    let mut stream = connect(&broker.bootstrap());
    create_topic(&mut stream, "listed", 2);
    // Enough ids to land on even and odd `__transaction_state` partitions, which
    // alternate between the two shards.
    let ids: Vec<String> = (0..40).map(|index| format!("listed-{index}")).collect();
    let parities: BTreeSet<i32> = ids
        .iter()
        .map(|id| java_partition(id, TRANSACTION_STATE_PARTITIONS) % 2)
        .collect();
    assert_eq!(parities.len(), 2, "test bug: ids on one shard only");

    // Every fourth id: Empty, Ongoing, CompleteCommit, CompleteAbort.
    let mut expected: Vec<(String, i64, String)> = Vec::new();
    for (index, id) in ids.iter().enumerate() {
        let (producer, state) = match index % 4 {
            0 => {
                find_transaction_coordinator(&mut stream, id);
                (init_transactional(&mut stream, 4, id, 60_000), "Empty")
            }
            1 => (
                begin(&mut stream, id, 60_000, &[("listed", &[0])]),
                "Ongoing",
            ),
            kind => {
                let producer = begin(&mut stream, id, 60_000, &[("listed", &[1])]);
                end_txn_ok(&mut stream, 4, id, producer, kind == 2);
                let state = if kind == 2 {
                    "CompleteCommit"
                } else {
                    "CompleteAbort"
                };
                wait_for_state(&mut stream, id, state);
                (producer, state)
            }
        };
        expected.push((id.clone(), producer.id, state.to_string()));
    }
    expected.sort();
    let in_states = |states: &[&str]| -> Vec<(String, i64, String)> {
        expected
            .iter()
            .filter(|row| states.contains(&row.2.as_str()))
            .cloned()
            .collect()
    };

    for version in [0, 1] {
        assert_eq!(
            list(&mut stream, version, &[], &[], None),
            (NONE, vec![], expected.clone()),
            "ListTransactions v{version} without filters"
        );
        assert_eq!(
            list(&mut stream, version, &["Ongoing"], &[], None),
            (NONE, vec![], in_states(&["Ongoing"])),
            "v{version} Ongoing"
        );
        let ended = ["CompleteCommit", "CompleteAbort"];
        assert_eq!(
            list(&mut stream, version, &ended, &[], None),
            (NONE, vec![], in_states(&ended)),
            "v{version} completed"
        );
        assert_eq!(
            list(&mut stream, version, &["Bogus", "Empty"], &[], None),
            (NONE, vec!["Bogus".to_string()], in_states(&["Empty"])),
            "v{version} an unknown state name is reported"
        );
        assert_eq!(
            list(&mut stream, version, &["Bogus"], &[], None),
            (NONE, vec!["Bogus".to_string()], vec![]),
            "v{version} only unknown state names match nothing"
        );
        let picked = [expected[1].clone(), expected[6].clone()];
        let producer_ids = [picked[0].1, picked[1].1, 987_654_321];
        assert_eq!(
            list(&mut stream, version, &[], &producer_ids, None),
            (NONE, vec![], picked.to_vec()),
            "v{version} producer id filter"
        );
        let both: Vec<_> = picked
            .iter()
            .filter(|row| row.2 == "Ongoing")
            .cloned()
            .collect();
        assert_eq!(
            list(&mut stream, version, &["Ongoing"], &producer_ids, None),
            (NONE, vec![], both),
            "v{version} state and producer id filters together"
        );
    }

    // v1 DurationFilter: transactions running longer than the duration. Kafka compares
    // with the start time, which is -1 for an id that never had a transaction, so
    // Empty ids always pass.
    let ongoing = in_states(&["Ongoing"]);
    assert_eq!(
        list(&mut stream, 1, &["Ongoing"], &[], Some(3_600_000)),
        (NONE, vec![], vec![]),
        "nothing has run for an hour"
    );
    let started = Instant::now();
    thread::sleep(Duration::from_millis(300));
    let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX) - 200;
    assert_eq!(
        list(&mut stream, 1, &["Ongoing"], &[], Some(duration_ms)),
        (NONE, vec![], ongoing),
        "every ongoing transaction has run longer than {duration_ms} ms"
    );
    assert_eq!(
        list(&mut stream, 1, &["Empty"], &[], Some(3_600_000)),
        (NONE, vec![], in_states(&["Empty"])),
        "Empty ids (start -1) pass any duration filter"
    );
}
