"""Fencing with kafka-python: a producer ("zombie") opens a transaction on two partitions
and flushes its records; a second producer with the same transactional id then calls
init_transactions(). As in Kafka, that aborts the zombie's open transaction (the last
stable offset moves past it) and bumps the producer epoch. The successor commits its own
transaction. The zombie's commit_transaction() then fails with ProducerFencedError
(Kafka answers EndTxn from the old epoch with PRODUCER_FENCED).

With --late-send the zombie first sends another record, which the partition refuses with
INVALID_PRODUCER_EPOCH. kafka-python treats that as recoverable and bumps its epoch
(KIP-360: InitProducerId with its producer id and old epoch); the coordinator must
answer PRODUCER_FENCED (answering INVALID_PRODUCER_EPOCH would make kafka-python fall
back to a fresh producer id and fence the successor in turn), after which the zombie's
abort_transaction() fails with that error. read_committed sees only the successor's
records, read_uncommitted the zombie's flushed ones as well, never the late one.
"""

import time

from kp_common import Deadline, admin_client, create_topic, expect, fail, parse_args, run, succeed
from kp_transactions import (
    TXN_CALL_TIMEOUT_S,
    as_json,
    bounded,
    by_partition,
    end_offsets,
    read_topic,
    send_all,
    transactional_producer,
    values_of,
)

PARTITIONS = 2
PER_TRANSACTION = 4


def records(prefix):
    return [(i % PARTITIONS, f"{prefix}-{i}") for i in range(PER_TRANSACTION)]


def error_name(error):
    return type(error).__name__ if error is not None else None


def await_epoch_bump(producer):
    """Waits until the producer's KIP-360 epoch bump has been answered; returns the name
    of the error the producer ended up with (None if the bump succeeded).

    kafka-python 3.0.12 refuses abort_transaction() while the bump is in flight ("Invalid
    transition attempted from state BUMPING_PRODUCER_EPOCH to state
    ABORTING_TRANSACTION", a client-side KafkaError that never reaches the broker), so
    this watches its transaction manager (a private attribute) instead of racing it.
    """
    manager = producer._transaction_manager
    deadline = Deadline(TXN_CALL_TIMEOUT_S)
    while manager.is_bumping_epoch():
        if deadline.expired():
            fail("the zombie's epoch bump (InitProducerId) was not answered")
        time.sleep(0.02)
    return error_name(manager.last_error)


def main():
    def add_arguments(parser):
        parser.add_argument(
            "--late-send",
            action="store_true",
            help="the zombie sends one more record after being fenced, before committing",
        )

    args = parse_args(__doc__, add_arguments)
    topic = args.topic
    admin = admin_client(args.bootstrap)
    create_topic(admin, topic, PARTITIONS)
    admin.close()
    transactional_id = f"{topic}-txn"

    zombie = transactional_producer(args.bootstrap, transactional_id, "kp-fence-zombie")
    zombie.begin_transaction()
    zombie_sent = send_all(zombie, topic, records("zombie"))
    summary = {
        "zombie_open_end_offsets": end_offsets(args.bootstrap, topic, PARTITIONS, "read_committed")
    }

    successor = transactional_producer(args.bootstrap, transactional_id, "kp-fence-successor")
    summary["after_fencing_end_offsets"] = {
        level: end_offsets(args.bootstrap, topic, PARTITIONS, level)
        for level in ("read_committed", "read_uncommitted")
    }
    successor.begin_transaction()
    successor_sent = send_all(successor, topic, records("successor"))
    bounded("successor commit_transaction", successor.commit_transaction)

    if args.late_send:
        # The rejected record is an abortable error for the client; aborting then bumps
        # the epoch (KIP-360: InitProducerId with the zombie's producer id and epoch),
        # which the coordinator refuses as fenced.
        late = zombie.send(topic, value=b"zombie-late", partition=0)
        bounded("zombie flush", zombie.flush)
        summary["late_send_error"] = error_name(late.exception)
        summary["zombie_epoch_bump"] = await_epoch_bump(zombie)
        end_call = ("abort", zombie.abort_transaction)
    else:
        end_call = ("commit", zombie.commit_transaction)
    summary["zombie_end_call"] = end_call[0]
    try:
        bounded(f"zombie {end_call[0]}_transaction", end_call[1])
        summary["zombie_end_error"] = None
    except Exception as error:  # the expected outcome, reported by name
        summary["zombie_end_error"] = error_name(error)
        summary["zombie_end_error_text"] = str(error)
    zombie.close(timeout=5)
    successor.close(timeout=5)

    read_committed = read_topic(args.bootstrap, topic, PARTITIONS, "read_committed")
    read_uncommitted = read_topic(args.bootstrap, topic, PARTITIONS, "read_uncommitted")
    expect(
        read_committed == by_partition(successor_sent, PARTITIONS),
        "read_committed did not see exactly the successor's records",
        read_committed=read_committed,
        successor=successor_sent,
    )
    summary.update(
        zombie=as_json(by_partition(zombie_sent, PARTITIONS)),
        successor=as_json(by_partition(successor_sent, PARTITIONS)),
        read_committed=as_json(values_of(read_committed)),
        read_uncommitted=as_json(values_of(read_uncommitted)),
    )
    succeed(summary)


if __name__ == "__main__":
    run(main)
