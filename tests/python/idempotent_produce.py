"""kafka-python's idempotent producer against a broker that loses Produce answers.

The test starts the broker with the hidden test flag --fault-drop-produce-responses, so
every Nth Produce is appended and then its connection closed instead of answered. An
idempotent KafkaProducer (enable_idempotence=True, acks=all, 5 requests in flight, small
batches) resends those batches with the same sequence numbers. Every send must succeed
at offset n for the nth message of its partition, and a read_uncommitted consumer must
find every partition holding exactly 0, 1, 2, ... once, in order. The summary counts the
retries kafka-python logged, to show the answers really were lost.
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

PARTITIONS = 3
MESSAGES = 10000


class RetryCounter(logging.Handler):
    """Counts the sender's "retrying" warnings (one per batch sent again)."""

    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.retries = 0

    def emit(self, record):
        if "retrying" in record.getMessage():
            self.retries += 1


def produce_numbered(bootstrap, topic):
    """Sends value str(n) as the nth message of each partition, round-robin; returns the
    (partition, sequence, offset) of every acknowledged message."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="kp-idempotent",
        enable_idempotence=True,
        acks="all",
        max_in_flight_requests_per_connection=5,
        retries=1_000_000,
        linger_ms=1,
        # A few dozen records per batch, so there are many batches and requests.
        batch_size=512,
        retry_backoff_ms=20,
        reconnect_backoff_ms=10,
        reconnect_backoff_max_ms=50,
        request_timeout_ms=REQUEST_TIMEOUT_MS,
        delivery_timeout_ms=25_000,
    )
    sent = []
    for index in range(MESSAGES):
        partition = index % PARTITIONS
        sequence = index // PARTITIONS
        future = producer.send(topic, value=str(sequence).encode(), partition=partition)
        sent.append((partition, sequence, future))
    acknowledged = []
    for partition, sequence, future in sent:
        try:
            metadata = future.get(timeout=25)
        except Exception as error:  # noqa: BLE001 -- any failed send fails the scenario
            fail(
                "a send failed",
                partition=partition,
                sequence=sequence,
                error=f"{type(error).__name__}: {error}",
            )
        acknowledged.append((metadata.partition, sequence, metadata.offset))
    producer.close(timeout=5)
    return acknowledged


def read_all(bootstrap, topic, expected_per_partition):
    """Every record of every partition from the beginning: partition -> [(offset, value)]."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id="kp-idempotent-reader",
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_uncommitted",
        request_timeout_ms=REQUEST_TIMEOUT_MS,
    )
    tps = [TopicPartition(topic, partition) for partition in range(PARTITIONS)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    read = {partition: [] for partition in range(PARTITIONS)}
    deadline = Deadline(15)
    while any(len(read[p]) < expected_per_partition[p] for p in read):
        if deadline.expired():
            fail("the consumer did not read every message", read={p: len(r) for p, r in read.items()})
        for tp_records in consumer.poll(timeout_ms=100).values():
            for record in tp_records:
                read[record.partition].append((record.offset, record.value.decode()))
    # Anything beyond the expected count (a duplicate at the end) shows up in one more poll.
    for tp_records in consumer.poll(timeout_ms=500).values():
        for record in tp_records:
            read[record.partition].append((record.offset, record.value.decode()))
    consumer.close()
    return read


def main():
    args = parse_args(__doc__)
    counter = RetryCounter()
    logging.getLogger("kafka.producer").addHandler(counter)
    logging.getLogger("kafka.producer").setLevel(logging.WARNING)
    admin = admin_client(args.bootstrap)
    create_topic(admin, args.topic, PARTITIONS)
    admin.close()

    acknowledged = produce_numbered(args.bootstrap, args.topic)
    misplaced = [
        (partition, sequence, offset)
        for partition, sequence, offset in acknowledged
        if offset != sequence
    ]
    expect(
        not misplaced,
        "messages acknowledged at an offset other than their sequence number",
        count=len(misplaced),
        first=misplaced[:10],
    )

    expected = {p: len([a for a in acknowledged if a[0] == p]) for p in range(PARTITIONS)}
    read = read_all(args.bootstrap, args.topic, expected)
    problems = {}
    for partition, records in read.items():
        wanted = [(n, str(n)) for n in range(expected[partition])]
        if records != wanted:
            first = next(
                (i for i, (got, want) in enumerate(zip(records, wanted)) if got != want),
                min(len(records), len(wanted)),
            )
            problems[partition] = {
                "read": len(records),
                "expected": len(wanted),
                "first_difference": first,
                "around": records[max(0, first - 2) : first + 3],
            }
    expect(not problems, "partitions do not hold 0..n exactly once in order", problems=problems)
    succeed(
        {
            "acknowledged": len(acknowledged),
            "per_partition": {str(p): len(r) for p, r in read.items()},
            "retries_logged": counter.retries,
        }
    )


if __name__ == "__main__":
    run(main)
