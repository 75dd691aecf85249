//! Producer ids (KIP-98) are unique for the life of the data directory: every
//! InitProducerId without a transactional id, on any connection and shard, gets an id no
//! one had; transactional ids keep theirs; and after a restart (graceful or kill -9) new ids
//! are larger than any handed out before, because each block of ids is recorded durably
//! before it is used.

use std::collections::BTreeSet;

use crate::common::wire::connect;
use crate::common::Broker;
use crate::flows::{find_transaction_coordinator, init_producer_id, init_transactional};
use crate::records::Producer;
use crate::{CORES, NONE, TXN_TIMEOUT_MS};

/// Connections per round: enough that both shards answer some of them.
const CONNECTIONS: usize = 4;
const IDS_PER_CONNECTION: usize = 30;
const TRANSACTIONAL_IDS: usize = 10;

/// Idempotent producer ids from several connections, at every InitProducerId version.
fn idempotent_ids(broker: &Broker) -> Vec<i64> {
    let mut ids = Vec::new();
    for _ in 0..CONNECTIONS {
        let mut stream = connect(&broker.bootstrap());
        for index in 0..IDS_PER_CONNECTION {
            let version = (index % 6) as i16;
            let (code, producer) = init_producer_id(&mut stream, version, None, 1, None);
            assert_eq!(
                (code, producer.epoch),
                (NONE, 0),
                "InitProducerId v{version}"
            );
            ids.push(producer.id);
        }
    }
    ids
}

fn transactional_ids(broker: &Broker) -> Vec<Producer> {
    let mut stream = connect(&broker.bootstrap());
    (0..TRANSACTIONAL_IDS)
        .map(|index| {
            let id = format!("durable-{index}");
            find_transaction_coordinator(&mut stream, &id);
            init_transactional(&mut stream, 4, &id, TXN_TIMEOUT_MS)
        })
        .collect()
}

/// Records `ids`, each new; after a restart each must be above every id seen before.
fn fresh(ids: Vec<i64>, seen: &mut BTreeSet<i64>, when: &str) {
    let floor = seen.iter().next_back().copied().unwrap_or(-1);
    for id in ids {
        assert!(id >= 0, "{when}: producer id {id}");
        assert!(seen.insert(id), "{when}: producer id {id} handed out twice");
        if when != "first run" {
            assert!(id > floor, "{when}: id {id} not above {floor}");
        }
    }
}

#[test]
fn producer_ids_are_unique_and_grow_across_restarts() {
    let mut broker = Broker::start(CORES, &[]);
    let mut seen = BTreeSet::new();
    let first = idempotent_ids(&broker);
    let transactional = transactional_ids(&broker);
    fresh(first, &mut seen, "first run");
    fresh(
        transactional.iter().map(|producer| producer.id).collect(),
        &mut seen,
        "first run",
    );
    assert!(transactional.iter().all(|producer| producer.epoch == 0));

    broker.restart();
    fresh(
        idempotent_ids(&broker),
        &mut seen,
        "after a graceful restart",
    );
    // The coordinator's state survived: same producer ids, next epoch.
    let again = transactional_ids(&broker);
    for (before, after) in transactional.iter().zip(&again) {
        assert_eq!(
            *after,
            Producer {
                id: before.id,
                epoch: 1
            },
            "a transactional id keeps its producer id across a restart"
        );
    }

    broker.kill9();
    broker.restart();
    fresh(idempotent_ids(&broker), &mut seen, "after kill -9");
    let once_more = transactional_ids(&broker);
    for (before, after) in transactional.iter().zip(&once_more) {
        assert_eq!(after.id, before.id, "kept after kill -9");
        assert_eq!(
            after.epoch, 2,
            "the epoch stored before kill -9 is not reused"
        );
    }
}
