"""A kafka-python transactional producer commits, aborts and commits again across two
partitions. The aborted transaction's records are flushed (acknowledged, so they are in
the log) before abort_transaction(). While it is open, ListOffsets at read_committed
answers its first offsets (the last stable offset) and at read_uncommitted the high
watermark. Afterwards a read_committed consumer sees exactly the committed records, in
order and at the offsets they were acknowledged at; a read_uncommitted consumer sees
every record. Each transaction ends in one control record (the marker) per partition,
so the end offset is one past the last marker.
"""

from kp_common import admin_client, create_topic, expect, parse_args, run, succeed
from kp_transactions import (
    as_json,
    bounded,
    by_partition,
    end_offsets,
    read_topic,
    send_all,
    transactional_producer,
)

PARTITIONS = 2
PER_TRANSACTION = 6


def records(prefix):
    """PER_TRANSACTION values, alternating between the partitions."""
    return [(i % PARTITIONS, f"{prefix}-{i}") for i in range(PER_TRANSACTION)]


def main():
    args = parse_args(__doc__)
    topic = args.topic
    admin = admin_client(args.bootstrap)
    create_topic(admin, topic, PARTITIONS)
    admin.close()

    producer = transactional_producer(args.bootstrap, f"{topic}-txn", "kp-txn-producer")
    producer.begin_transaction()
    first = send_all(producer, topic, records("committed-a"))
    bounded("commit_transaction", producer.commit_transaction)

    producer.begin_transaction()
    aborted = send_all(producer, topic, records("aborted"))
    open_ends = {
        "read_committed": end_offsets(args.bootstrap, topic, PARTITIONS, "read_committed"),
        "read_uncommitted": end_offsets(args.bootstrap, topic, PARTITIONS, "read_uncommitted"),
    }
    bounded("abort_transaction", producer.abort_transaction)

    producer.begin_transaction()
    second = send_all(producer, topic, records("committed-b"))
    bounded("commit_transaction", producer.commit_transaction)
    producer.close(timeout=5)

    committed = by_partition(first + second, PARTITIONS)
    everything = by_partition(first + aborted + second, PARTITIONS)
    aborted = by_partition(aborted, PARTITIONS)
    read_committed = read_topic(args.bootstrap, topic, PARTITIONS, "read_committed")
    read_uncommitted = read_topic(args.bootstrap, topic, PARTITIONS, "read_uncommitted")
    final_ends = {
        "read_committed": end_offsets(args.bootstrap, topic, PARTITIONS, "read_committed"),
        "read_uncommitted": end_offsets(args.bootstrap, topic, PARTITIONS, "read_uncommitted"),
    }

    expect(
        read_committed == committed,
        "read_committed did not see exactly the committed records, in order",
        read_committed=read_committed,
        committed=committed,
    )
    expect(
        read_uncommitted == everything,
        "read_uncommitted did not see every acknowledged record, in order",
        read_uncommitted=read_uncommitted,
        everything=everything,
    )
    succeed(
        {
            "committed": as_json(committed),
            "aborted": as_json(aborted),
            "read_committed": as_json(read_committed),
            "read_uncommitted": as_json(read_uncommitted),
            "open_transaction_end_offsets": {
                level: {str(p): offset for p, offset in ends.items()}
                for level, ends in open_ends.items()
            },
            "final_end_offsets": {
                level: {str(p): offset for p, offset in ends.items()}
                for level, ends in final_ends.items()
            },
        }
    )


if __name__ == "__main__":
    run(main)
