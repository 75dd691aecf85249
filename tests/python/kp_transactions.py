"""Helpers for the kafka-python transaction scenarios (tx_*.py): a transactional producer,
transaction calls with a deadline, and reading a whole topic at either isolation level.

kafka-python's commit_transaction() and abort_transaction() wait without a timeout, so
every transaction call here runs in a helper thread and the scenario fails (with all
threads' stacks) when it has not returned within TXN_CALL_TIMEOUT_S.
"""

import threading

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from kp_common import REQUEST_TIMEOUT_MS, Deadline, expect, fail

# How long one transaction call (init, commit, abort, send offsets) may take. Kafka
# answers CONCURRENT_TRANSACTIONS while the markers of the previous transaction are
# written, and clients retry; a few seconds covers that many times over.
TXN_CALL_TIMEOUT_S = 10
# The producers' transaction timeout: long enough that the broker never aborts a
# transaction of these scenarios by itself.
TRANSACTION_TIMEOUT_MS = 20000
# After a reader reached the end offsets, it polls this long more to catch records
# the end offsets did not account for.
QUIET_S = 0.5


def transactional_producer(bootstrap, transactional_id, client_id):
    """A producer with `transactional_id` (idempotent, acks=all) after init_transactions()."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        transactional_id=transactional_id,
        transaction_timeout_ms=TRANSACTION_TIMEOUT_MS,
        request_timeout_ms=REQUEST_TIMEOUT_MS,
        max_block_ms=TXN_CALL_TIMEOUT_S * 1000,
    )
    bounded(f"{client_id}: init_transactions", producer.init_transactions)
    return producer


def bounded(what, call, *args):
    """Runs call(*args) in a thread; returns its result or re-raises its exception.

    Fails the scenario when the call has not returned within TXN_CALL_TIMEOUT_S.
    """
    outcome = {}

    def target():
        try:
            outcome["result"] = call(*args)
        except BaseException as error:  # noqa: B036 -- handed to the caller
            outcome["error"] = error

    thread = threading.Thread(target=target, name=what, daemon=True)
    thread.start()
    thread.join(TXN_CALL_TIMEOUT_S)
    if thread.is_alive():
        fail(f"{what} did not return within {TXN_CALL_TIMEOUT_S} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")


def send_all(producer, topic, records):
    """Sends (partition, value str) pairs, flushes, and returns (partition, offset, value)
    for each in send order; every record must be acknowledged."""
    futures = [
        (value, producer.send(topic, value=value.encode(), partition=partition))
        for partition, value in records
    ]
    bounded("flush", producer.flush)
    sent = []
    for value, future in futures:
        expect(future.is_done, "a record is not done after flush()", value=value)
        expect(
            future.succeeded(),
            "a transactional record was not acknowledged",
            value=value,
            error=repr(future.exception),
        )
        sent.append((future.value.partition, future.value.offset, value))
    return sent


def reader(bootstrap, isolation_level, client_id):
    """A consumer without a group, for assign() and reading from the beginning."""
    return KafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level=isolation_level,
        request_timeout_ms=REQUEST_TIMEOUT_MS,
    )


def end_offsets(bootstrap, topic, partitions, isolation_level):
    """ListOffsets latest at `isolation_level`: the last stable offset for
    read_committed, the high watermark for read_uncommitted."""
    consumer = reader(bootstrap, isolation_level, f"end-offsets-{isolation_level}")
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    ends = consumer.end_offsets(tps)
    consumer.close()
    return {tp.partition: offset for tp, offset in ends.items()}


def read_topic(bootstrap, topic, partitions, isolation_level, timeout_s=10):
    """Every record of `topic` a fresh consumer at `isolation_level` gets, as
    {partition: [(offset, value str), ...]} in the order received.

    Reads until its position in each partition reaches the end offset ListOffsets gives
    at the same isolation level, then QUIET_S more.
    """
    consumer = reader(bootstrap, isolation_level, f"reader-{isolation_level}")
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    ends = consumer.end_offsets(tps)
    records = {p: [] for p in range(partitions)}
    deadline = Deadline(timeout_s)
    quiet_deadline = None
    while quiet_deadline is None or not quiet_deadline.expired():
        if deadline.expired():
            positions = {tp.partition: consumer.position(tp) for tp in tps}
            fail(
                f"{isolation_level} reader did not reach the end offsets",
                ends={tp.partition: offset for tp, offset in ends.items()},
                positions=positions,
                records=records,
            )
        for tp_records in consumer.poll(timeout_ms=100).values():
            for record in tp_records:
                records[record.partition].append((record.offset, record.value.decode()))
        if quiet_deadline is None and all(consumer.position(tp) >= ends[tp] for tp in tps):
            quiet_deadline = Deadline(QUIET_S)
    consumer.close()
    return records


def values_of(records):
    """{partition: [value, ...]} from read_topic's result."""
    return {p: [value for _, value in entries] for p, entries in records.items()}


def by_partition(sent, partitions):
    """{partition: [(offset, value), ...]} from send_all's result."""
    grouped = {p: [] for p in range(partitions)}
    for partition, offset, value in sent:
        grouped[partition].append((offset, value))
    return grouped


def as_json(grouped):
    """JSON keys must be strings; tuples become lists."""
    return {str(p): [list(entry) if isinstance(entry, tuple) else entry for entry in entries]
            for p, entries in grouped.items()}
