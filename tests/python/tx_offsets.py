"""Consume-transform-produce with kafka-python: a group member reads an input topic
(2 partitions, 10 records each) and a transactional producer writes each record,
transformed, to an output topic and commits the consumer's offsets in the same
transaction with send_offsets_to_transaction (AddOffsetsToTxn, then TxnOffsetCommit).

Round 1 sends the offsets with the consumer's group metadata (member id and
generation, KIP-447) and commits: the admin client's OffsetFetch then answers them.
Round 2 sends later offsets and aborts: the group's offsets stay at round 1's.
Round 3 sends the end offsets with the bare group id (generation -1, no member id,
which Kafka accepts from a transaction even while the group has members) and
commits. read_committed sees round 1's and round 3's output only, read_uncommitted
round 2's as well.
"""

from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from kp_common import (
    Deadline,
    admin_client,
    create_topic,
    expect,
    fail,
    group_consumer,
    parse_args,
    poll_records,
    produce,
    run,
    subscribe,
    succeed,
)
from kp_transactions import (
    as_json,
    bounded,
    read_topic,
    send_all,
    transactional_producer,
    values_of,
)

PARTITIONS = 2
PER_PARTITION = 10
# Round ends: the offset of the first record each round does not process.
ROUNDS = {"commit": 4, "abort": 7, "commit_by_group_id": PER_PARTITION}
# How long committed() retries UNSTABLE_OFFSET_COMMIT while a transaction is open.
COMMITTED_TIMEOUT_MS = 500


def consume_everything(consumer, topic):
    """{partition: [(offset, value), ...]} of the whole input topic."""
    consumed = {p: [] for p in range(PARTITIONS)}
    deadline = Deadline(15)
    while sum(len(entries) for entries in consumed.values()) < PARTITIONS * PER_PARTITION:
        if deadline.expired():
            fail("the group member did not read the whole input topic", consumed=consumed)
        for partition, offset, value in poll_records(consumer):
            consumed[partition].append((offset, value))
    expect(
        {tp.topic for tp in consumer.assignment()} == {topic}
        and len(consumer.assignment()) == PARTITIONS,
        "the only member does not own both input partitions",
        assignment=[str(tp) for tp in consumer.assignment()],
    )
    return consumed


def group_offsets(admin, group, topic):
    """{partition: [offset, metadata]} the admin client's OffsetFetch answers."""
    fetched = admin.list_group_offsets(group)[group]
    return {
        str(tp.partition): [oam.offset, oam.metadata]
        for tp, oam in fetched.items()
        if tp.topic == topic
    }


def committed_or_error(consumer, tps):
    """The consumer's committed() for each partition, or the name of the error it raised.

    At read_committed kafka-python sets require_stable (KIP-447): while the group has
    pending transactional offsets for a partition the coordinator answers
    UNSTABLE_OFFSET_COMMIT, which the client retries until COMMITTED_TIMEOUT_MS.
    """
    view = {}
    for tp in tps:
        try:
            view[str(tp.partition)] = consumer.committed(tp, timeout_ms=COMMITTED_TIMEOUT_MS)
        except Exception as error:  # reported in the summary
            view[str(tp.partition)] = type(error).__name__
    return view


def transform_round(producer, consumed, output, start, end, offsets_for):
    """Begins a transaction with the output of input offsets [start, end) of each
    partition and the offsets `end` sent via send_offsets_to_transaction."""
    producer.begin_transaction()
    outgoing = [
        (partition, f"out-{value}")
        for partition, entries in consumed.items()
        for offset, value in entries
        if start <= offset < end
    ]
    sent = send_all(producer, output, outgoing)
    offsets = {tp: OffsetAndMetadata(end, f"round-to-{end}", -1) for tp in offsets_for}
    return sent, offsets


def main():
    args = parse_args(__doc__)
    topic, group = args.topic, args.group
    output = f"{topic}-out"
    admin = admin_client(args.bootstrap)
    create_topic(admin, topic, PARTITIONS)
    create_topic(admin, output, PARTITIONS)
    produce(
        args.bootstrap,
        topic,
        [(p, f"in-{p}-{i}".encode()) for i in range(PER_PARTITION) for p in range(PARTITIONS)],
    )
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]

    consumer = group_consumer(
        args.bootstrap, group, "kp-ctp-member", isolation_level="read_committed"
    )
    subscribe(consumer, topic)
    consumed = consume_everything(consumer, topic)
    producer = transactional_producer(args.bootstrap, f"{topic}-txn", "kp-ctp-producer")
    summary = {"before": group_offsets(admin, group, topic)}

    start = 0
    for name, end in ROUNDS.items():
        _, offsets = transform_round(producer, consumed, output, start, end, tps)
        if name == "commit_by_group_id":
            bounded("send_offsets_to_transaction", producer.send_offsets_to_transaction,
                    offsets, group)
        else:
            metadata = consumer.group_metadata()
            expect(
                metadata.generation_id > 0 and metadata.member_id,
                "the consumer has no generation to send",
                metadata=str(metadata),
            )
            bounded("send_offsets_to_transaction", producer.send_offsets_to_transaction,
                    offsets, metadata)
        # Pending transactional offsets are invisible to a plain OffsetFetch until the
        # transaction commits (Kafka answers require_stable fetches with
        # UNSTABLE_OFFSET_COMMIT meanwhile).
        summary[f"{name}_pending"] = group_offsets(admin, group, topic)
        summary[f"{name}_pending_consumer_view"] = committed_or_error(consumer, tps)
        if name == "abort":
            bounded("abort_transaction", producer.abort_transaction)
        else:
            bounded("commit_transaction", producer.commit_transaction)
            start = end
        summary[name] = group_offsets(admin, group, topic)
        # The consumer's own view (OffsetFetch through its coordinator) agrees.
        summary[f"{name}_consumer_view"] = committed_or_error(consumer, tps)

    producer.close(timeout=5)
    consumer.close()
    admin.close()
    summary["read_committed"] = as_json(
        values_of(read_topic(args.bootstrap, output, PARTITIONS, "read_committed"))
    )
    summary["read_uncommitted"] = as_json(
        values_of(read_topic(args.bootstrap, output, PARTITIONS, "read_uncommitted"))
    )
    succeed(summary)


if __name__ == "__main__":
    run(main)
