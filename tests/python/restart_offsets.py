"""Offsets kafka-python committed survive a broker crash: phase "commit" creates the topic,
has a subscribed consumer read part of it, commit with metadata and leave; the test then
kill -9s and restarts the broker; phase "verify" reads the offsets back with the admin
client, finds the group Empty (not forgotten) and has a new member resume exactly there.
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

PARTITIONS = 2
MESSAGES = 20
COMMITS = {0: (4, "crash-0"), 1: (7, "crash-1")}


def commit_phase(args, tps):
    admin = admin_client(args.bootstrap)
    create_topic(admin, args.topic, PARTITIONS)
    admin.close()
    records = [(i % PARTITIONS, f"m-{i}".encode()) for i in range(MESSAGES)]
    produce(args.bootstrap, args.topic, records)
    consumer = group_consumer(args.bootstrap, args.group, "kp-restart-before")
    subscribe(consumer, args.topic)
    consumed = 0
    deadline = Deadline(15)
    while consumed < MESSAGES:
        if deadline.expired():
            fail("the consumer did not read every message", consumed=consumed)
        consumed += len(poll_records(consumer))
    consumer.commit({tps[p]: OffsetAndMetadata(o, m, -1) for p, (o, m) in COMMITS.items()})
    consumer.close()
    return {"consumed": consumed}


def verify_phase(args, tps):
    admin = admin_client(args.bootstrap)
    fetched = admin.list_group_offsets(args.group)[args.group]
    fetched = {tp.partition: (oam.offset, oam.metadata) for tp, oam in fetched.items()}
    expect(fetched == COMMITS, "committed offsets after the restart", fetched=fetched)
    description = admin.describe_groups([args.group])[args.group]
    expect(
        description["group_state"] == "Empty" and description["protocol_type"] == "consumer",
        "the group after the restart (Kafka: Empty, protocol type kept)",
        description=description,
    )

    consumer = group_consumer(args.bootstrap, args.group, "kp-restart-after")
    subscribe(consumer, args.topic)
    first_offsets = {}
    deadline = Deadline(15)
    while len(first_offsets) < PARTITIONS:
        if deadline.expired():
            fail("the new member did not read both partitions", first_offsets=first_offsets)
        for partition, offset, _ in poll_records(consumer):
            first_offsets.setdefault(partition, offset)
    consumer.close()
    admin.close()
    expected = {p: offset for p, (offset, _) in COMMITS.items()}
    expect(
        first_offsets == expected,
        "the new member did not resume at the commits",
        first_offsets=first_offsets,
    )
    return {
        "offsets": {str(p): list(value) for p, value in fetched.items()},
        "state": description["group_state"],
        "resumed_at": {str(p): offset for p, offset in first_offsets.items()},
    }


def main():
    def add_arguments(parser):
        parser.add_argument("--phase", choices=["commit", "verify"], required=True)

    args = parse_args(__doc__, add_arguments)
    tps = {p: TopicPartition(args.topic, p) for p in range(PARTITIONS)}
    phase = commit_phase if args.phase == "commit" else verify_phase
    succeed(dict(phase(args, tps), phase=args.phase))


if __name__ == "__main__":
    run(main)
