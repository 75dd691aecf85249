"""A "simple consumer": assign() without subscribing, but with a group_id, so its commits
carry generation -1 and an empty member id. Kafka stores them for a group with no
members; committed() reads them back, a later assign-only consumer in the group starts
at them, and the group is listed as Empty with an empty protocol type.
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
    succeed,
)

PARTITIONS = 2
MESSAGES = 10


def main():
    args = parse_args(__doc__)
    topic, group = args.topic, args.group
    admin = admin_client(args.bootstrap)
    create_topic(admin, topic, PARTITIONS)
    produce(args.bootstrap, topic, [(i % PARTITIONS, f"m-{i}".encode()) for i in range(MESSAGES)])
    tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)

    first = group_consumer(args.bootstrap, group, "kp-simple-first")
    first.assign([tp0, tp1])
    before = {tp.partition: first.committed(tp) for tp in (tp0, tp1)}
    expect(before == {0: None, 1: None}, "committed offsets before any commit", before=before)
    consumed = 0
    deadline = Deadline(15)
    while consumed < MESSAGES:
        if deadline.expired():
            fail("the assign-only consumer did not read every message", consumed=consumed)
        consumed += len(poll_records(first))
    expect(first.group_metadata().generation_id == -1, "an assign-only consumer joined a group")

    commits = {
        tp0: OffsetAndMetadata(2, "simple-0", -1),
        tp1: OffsetAndMetadata(4, "simple-1", -1),
    }
    first.commit(commits)
    read_back = {}
    for tp in (tp0, tp1):
        committed = first.committed(tp, metadata=True)
        expect(committed is not None, f"committed({tp}) is None after commit")
        read_back[tp.partition] = [committed.offset, committed.metadata]
    expect(
        read_back == {0: [2, "simple-0"], 1: [4, "simple-1"]},
        "committed() differs from what was committed",
        read_back=read_back,
    )
    first.close()

    # A new assign-only consumer starts each partition at its committed offset.
    second = group_consumer(args.bootstrap, group, "kp-simple-second")
    second.assign([tp0, tp1])
    first_offsets = {}
    deadline = Deadline(15)
    while len(first_offsets) < PARTITIONS:
        if deadline.expired():
            fail("the second consumer did not read both partitions", first_offsets=first_offsets)
        for partition, offset, _ in poll_records(second):
            first_offsets.setdefault(partition, offset)
    second.close()
    expect(
        first_offsets == {0: 2, 1: 4},
        "the second consumer did not start at the commits",
        first_offsets=first_offsets,
    )

    # Kafka keeps such a group as Empty, with the empty protocol type of "offsets only".
    listed = [entry for entry in admin.list_groups() if entry["group_id"] == group]
    expect(len(listed) == 1, "ListGroups does not list the simple consumer's group", listed=listed)
    expect(
        listed[0]["protocol_type"] == "",
        "protocol_type of an offsets-only group",
        listed=listed,
    )
    expect(
        listed[0].get("group_state") in (None, "Empty"),
        "state of an offsets-only group",
        listed=listed,
    )
    description = admin.describe_groups([group])[group]
    expect(
        description["group_state"] == "Empty" and description["members"] == [],
        "DescribeGroups of an offsets-only group",
        description=description,
    )
    fetched = admin.list_group_offsets(group)[group]
    fetched = {tp.partition: [oam.offset, oam.metadata] for tp, oam in fetched.items()}
    expect(fetched == read_back, "admin OffsetFetch differs from committed()", fetched=fetched)
    admin.close()

    succeed(
        {
            "committed": {str(p): value for p, value in read_back.items()},
            "second_first_offsets": {str(p): offset for p, offset in first_offsets.items()},
            "listed": listed[0],
            "described_state": description["group_state"],
        }
    )


if __name__ == "__main__":
    run(main)
