"""One kafka-python consumer reads a topic of many partitions from the beginning (assign,
no group): two records per partition, every one once and in offset order per partition.

--sessions on is kafka-python's default (3.x fetches with incremental fetch sessions,
KIP-227); --sessions off sets enable_incremental_fetch_sessions=False, so every Fetch names
every partition with session epoch -1, as librdkafka always does. The summary counts the
fetch session decisions kafka-python logged (its fetcher's DEBUG lines): a session created
and incremental answers with sessions on, none with them off.
"""

import logging

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from kp_common import (
    REQUEST_TIMEOUT_MS,
    Deadline,
    admin_client,
    create_topic,
    expect,
    fail,
    parse_args,
    run,
    succeed,
)

RECORDS_PER_PARTITION = 2


class SessionLines(logging.Handler):
    """Counts kafka-python's fetch session log lines (kafka.consumer.fetcher at DEBUG)."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.created = 0
        self.incremental = 0

    def emit(self, record):
        message = record.getMessage()
        if "created a new incremental fetch session" in message:
            self.created += 1
        elif "sent an incremental fetch response" in message:
            self.incremental += 1


def add_arguments(parser):
    parser.add_argument("--partitions", type=int, default=1000)
    parser.add_argument("--sessions", choices=["on", "off"], required=True)


def main():
    args = parse_args(__doc__, add_arguments)
    topic, partitions = args.topic, args.partitions
    create_topic(admin_client(args.bootstrap), topic, partitions)
    producer = KafkaProducer(
        bootstrap_servers=args.bootstrap,
        client_id="corelog-test-producer",
        acks="all",
        linger_ms=20,
        request_timeout_ms=REQUEST_TIMEOUT_MS,
    )
    for i in range(RECORDS_PER_PARTITION):
        for partition in range(partitions):
            producer.send(topic, value=f"{partition}-{i}".encode(), partition=partition)
    producer.flush(timeout=20)
    producer.close(timeout=5)

    lines = SessionLines()
    fetcher_log = logging.getLogger("kafka.consumer.fetcher")
    fetcher_log.setLevel(logging.DEBUG)
    fetcher_log.addHandler(lines)
    consumer = KafkaConsumer(
        bootstrap_servers=args.bootstrap,
        client_id=f"kp-many-{args.sessions}",
        enable_auto_commit=False,
        request_timeout_ms=REQUEST_TIMEOUT_MS,
        fetch_max_wait_ms=100,
        enable_incremental_fetch_sessions=args.sessions == "on",
    )
    assigned = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(assigned)
    consumer.seek_to_beginning(*assigned)
    next_offset = {p: 0 for p in range(partitions)}
    deadline = Deadline(20)
    polls = 0
    # Past the last record, a few more polls: incremental answers (with sessions) or full
    # sessionless ones keep coming while nothing changes.
    while min(next_offset.values()) < RECORDS_PER_PARTITION or polls < 10:
        if deadline.expired():
            laggards = {p: o for p, o in next_offset.items() if o < RECORDS_PER_PARTITION}
            fail("not every record arrived", laggards=dict(list(laggards.items())[:20]))
        if min(next_offset.values()) >= RECORDS_PER_PARTITION:
            polls += 1
        for tp, records in consumer.poll(timeout_ms=100).items():
            for record in records:
                expected = next_offset[tp.partition]
                expect(
                    record.offset == expected,
                    "a partition skipped or repeated an offset",
                    partition=tp.partition,
                    expected=expected,
                    got=record.offset,
                )
                value = record.value.decode()
                expect(value == f"{tp.partition}-{expected}", "wrong value", value=value)
                next_offset[tp.partition] = expected + 1
    consumer.close()
    succeed(
        {
            "partitions": partitions,
            "records": sum(next_offset.values()),
            "sessions_created": lines.created,
            "incremental_responses": lines.incremental,
        }
    )


if __name__ == "__main__":
    run(main)
