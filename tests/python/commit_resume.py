"""A consumer reads about half of 100 messages (part of every partition), commits its
positions and closes; a new consumer in the same group starts exactly at the committed
offsets, so every message is consumed once over the two consumers.
"""

from kafka import TopicPartition

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

PARTITIONS = 3
MESSAGES = 100
# The first consumer pauses a partition once it has read this many of its ~33 messages,
# so it stops in the middle of every partition, about 50 messages in all.
FIRST_PART_PER_PARTITION = 17
# After the second consumer has everything, it keeps polling this long to catch
# re-deliveries of the first consumer's part.
QUIET_S = 1.5


def consume_until(consumer, wanted, deadline, what):
    """Polls (10 records at a time) until `wanted` records came or the deadline passed."""
    records = []
    while len(records) < wanted:
        if deadline.expired():
            fail(f"timed out waiting for {what}", received=len(records), wanted=wanted)
        records.extend(poll_records(consumer, max_records=10))
    return records


def consume_part_of_each(consumer, topic_partitions, deadline):
    """Polls (5 records at a time), pausing each partition once it gave FIRST_PART_PER_PARTITION."""
    records = []
    counts = {tp.partition: 0 for tp in topic_partitions}
    while len(consumer.paused()) < len(topic_partitions):
        if deadline.expired():
            fail("timed out reading part of every partition", counts=counts)
        for record in poll_records(consumer, max_records=5):
            records.append(record)
            counts[record[0]] += 1
        for tp in topic_partitions:
            if counts[tp.partition] >= FIRST_PART_PER_PARTITION and tp not in consumer.paused():
                consumer.pause(tp)
    return records


def main():
    args = parse_args(__doc__)
    admin = admin_client(args.bootstrap)
    create_topic(admin, args.topic, PARTITIONS)
    admin.close()
    produced = produce(
        args.bootstrap,
        args.topic,
        [(index % PARTITIONS, f"message-{index}".encode()) for index in range(MESSAGES)],
    )
    topic_partitions = [TopicPartition(args.topic, p) for p in range(PARTITIONS)]

    first = group_consumer(args.bootstrap, args.group, "kp-resume-first")
    subscribe(first, args.topic)
    first_part = consume_part_of_each(first, topic_partitions, Deadline(15))
    positions = {tp.partition: first.position(tp) for tp in topic_partitions}
    first.commit()
    committed_by_first = {tp.partition: first.committed(tp) for tp in topic_partitions}
    first.close()
    # commit() without offsets commits the consumed positions of every assigned partition.
    expect(
        committed_by_first == positions,
        "committed offsets differ from the consumer's positions",
        positions=positions,
        committed=committed_by_first,
    )

    sizes = {p: sum(1 for partition, _, _ in produced if partition == p) for p in range(PARTITIONS)}
    expect(
        all(0 < committed_by_first[p] < sizes[p] for p in range(PARTITIONS)),
        "the first consumer did not stop in the middle of every partition",
        committed=committed_by_first,
        sizes=sizes,
    )

    second = group_consumer(args.bootstrap, args.group, "kp-resume-second")
    subscribe(second, args.topic)
    rest = consume_until(second, MESSAGES - len(first_part), Deadline(15), "the rest")
    quiet = Deadline(QUIET_S)
    while not quiet.expired():
        rest.extend(poll_records(second))
    committed_seen_by_second = {tp.partition: second.committed(tp) for tp in topic_partitions}
    second.close()

    expect(
        committed_seen_by_second == committed_by_first,
        "a new consumer in the group does not see the committed offsets",
        committed_by_first=committed_by_first,
        committed_seen_by_second=committed_seen_by_second,
    )
    # The second consumer's first record in each partition is the committed offset.
    first_offsets = {}
    for partition, offset, _ in rest:
        first_offsets.setdefault(partition, offset)
    for partition, offset in first_offsets.items():
        expect(
            offset == committed_by_first[partition],
            f"partition {partition} resumed at {offset}, not at its committed offset",
            first_offsets=first_offsets,
            committed=committed_by_first,
        )
    consumed = [value for _, _, value in first_part + rest]
    duplicates = sorted({value for value in consumed if consumed.count(value) > 1})
    expect(not duplicates, "messages consumed twice", duplicates=duplicates)
    missing = sorted({value for _, _, value in produced} - set(consumed))
    expect(not missing, "messages never consumed", missing=missing)

    succeed(
        {
            "produced": len(produced),
            "first_consumed": len(first_part),
            "second_consumed": len(rest),
            "committed": {str(p): offset for p, offset in committed_by_first.items()},
            "second_first_offsets": {str(p): offset for p, offset in first_offsets.items()},
            "duplicates": len(duplicates),
            "missing": len(missing),
        }
    )


if __name__ == "__main__":
    run(main)
