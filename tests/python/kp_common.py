"""Shared helpers for the kafka-python scenarios that tests/kafka_python.rs runs.

kafka-python is a second, independent client (pure Python, its own group coordinator
and assignors), so the consumer-group APIs are checked against more than librdkafka.

Every scenario script takes --bootstrap, --topic and --group, prints one JSON object
on stdout and exits 0 on success; on failure it prints "FAIL: <what>" and the context
on stderr and exits 1 (KP_LOG=DEBUG adds kafka-python's own log). Every wait has a
deadline, and a faulthandler watchdog dumps all threads' stacks and exits if a script
still runs after --timeout-s, so a broker that never answers fails the scenario instead
of hanging it.
"""

import argparse
import faulthandler
import json
import logging
import os
import sys
import threading
import time
import traceback

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

# The scenarios' session timeout: the broker's default group.min.session.timeout.ms,
# so it is accepted without broker flags, and short enough that a scenario that must
# wait for it stays quick.
SESSION_TIMEOUT_MS = 6000
HEARTBEAT_INTERVAL_MS = 1000
# Also the rebalance timeout kafka-python sends in JoinGroup: how long the coordinator
# may wait for members to rejoin. Kept short so a broker that waits for a member that
# will never come back fails the scenario quickly; the scripts poll every 100 ms.
MAX_POLL_INTERVAL_MS = 15000
# Per-request bound for kafka-python (its default is 30 s).
REQUEST_TIMEOUT_MS = 10000
POLL_TIMEOUT_MS = 100


def parse_args(description, add_arguments=None):
    """Common arguments, plus the watchdog that bounds the whole script."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--bootstrap", required=True, help="host:port of the broker")
    parser.add_argument("--topic", required=True, help="topic to create and use")
    parser.add_argument("--group", required=True, help="consumer group id to use")
    parser.add_argument(
        "--timeout-s", type=float, default=30.0, help="hard limit for the whole script"
    )
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args()
    faulthandler.dump_traceback_later(args.timeout_s, exit=True)
    # KP_LOG=DEBUG (or INFO, ...) shows kafka-python's own log on stderr when debugging.
    if os.environ.get("KP_LOG"):
        logging.basicConfig(
            level=os.environ["KP_LOG"].upper(),
            format="%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s",
        )
    return args


class Deadline:
    """A point in time that waits are bounded by."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def expired(self):
        return time.monotonic() >= self.end

    def left_s(self):
        return max(0.0, self.end - time.monotonic())


def fail(message, **context):
    """Reports a failed expectation and exits 1.

    With other threads alive (kafka-python's I/O threads, member threads), their stacks
    follow: a wait that timed out is usually a thread stuck somewhere.
    """
    print(f"FAIL: {message}", file=sys.stderr)
    if context:
        print(json.dumps(context, sort_keys=True, default=str, indent=1), file=sys.stderr)
    if threading.active_count() > 1:
        print("---- Python threads ----", file=sys.stderr)
        sys.stderr.flush()
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    sys.stderr.flush()
    sys.exit(1)


def expect(condition, message, **context):
    if not condition:
        fail(message, **context)


def run(main):
    """Runs a scenario's main(); an unexpected exception is a failure with its traceback."""
    try:
        main()
    except SystemExit:
        raise
    except BaseException as error:  # noqa: B036 -- any escape is a failed scenario
        traceback.print_exc()
        fail(f"unexpected {type(error).__name__}: {error}")


def succeed(summary):
    """Prints the JSON summary the Rust test parses, and exits 0."""
    print(json.dumps(summary, sort_keys=True, default=str))
    sys.stdout.flush()
    sys.exit(0)


def admin_client(bootstrap, client_id="corelog-test-admin"):
    return KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        request_timeout_ms=REQUEST_TIMEOUT_MS,
    )


def create_topic(admin, topic, partitions):
    """CreateTopics with replication factor 1; the topic must not exist yet."""
    response = admin.create_topics([NewTopic(topic, partitions, 1)], timeout_ms=REQUEST_TIMEOUT_MS)
    errors = [t for t in response["topics"] if t["error_code"] != 0]
    expect(not errors, f"CreateTopics {topic} failed", response=response)


def produce(bootstrap, topic, records):
    """Sends (partition, value bytes) pairs with acks=all, waiting for each ack.

    Returns a list of (partition, offset, value str), in send order.
    """
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="corelog-test-producer",
        acks="all",
        request_timeout_ms=REQUEST_TIMEOUT_MS,
    )
    futures = [
        (value, producer.send(topic, value=value, partition=partition))
        for partition, value in records
    ]
    produced = []
    for value, future in futures:
        metadata = future.get(timeout=REQUEST_TIMEOUT_MS / 1000)
        produced.append((metadata.partition, metadata.offset, value.decode()))
    producer.close(timeout=5)
    return produced


def group_consumer(bootstrap, group, client_id, **overrides):
    """A consumer in `group` with the scenarios' timeouts and manual commits."""
    config = dict(
        bootstrap_servers=bootstrap,
        group_id=group,
        client_id=client_id,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
        max_poll_interval_ms=MAX_POLL_INTERVAL_MS,
        request_timeout_ms=REQUEST_TIMEOUT_MS,
    )
    config.update(overrides)
    return KafkaConsumer(**config)


def subscribe(consumer, topic):
    """subscribe(), then a blocking metadata fetch, before the first poll().

    Works around a kafka-python 3.0.12 race. A consumer records a "metadata snapshot" of
    its subscribed topics on each metadata update, and rejoins when it differs from the
    snapshot it assigned with. Joining before any update after subscribe() (the usual
    case) gives an empty snapshot, so the first metadata response triggers a rejoin. If
    a poll() times out during that rejoin after the leader has assigned, need_rejoin()
    turns False while the JoinGroup/SyncGroup task is still in flight, and the task's
    result is never applied: stale partitions, no heartbeats, and the coordinator
    rightly expires the member after the session timeout. With the snapshot taken
    before the first join, only the coordinator (REBALANCE_IN_PROGRESS) starts rejoins.
    """
    consumer.subscribe([topic])
    expect(topic in consumer.topics(), f"the consumer does not see topic {topic}")


def partitions_of(assignment):
    """Sorted partition numbers of a set of TopicPartitions."""
    return sorted(tp.partition for tp in assignment)


def poll_records(consumer, timeout_ms=POLL_TIMEOUT_MS, max_records=None):
    """One poll, flattened to (partition, offset, value str) tuples."""
    batches = consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
    records = []
    for tp_records in batches.values():
        for record in tp_records:
            records.append((record.partition, record.offset, record.value.decode()))
    return records
