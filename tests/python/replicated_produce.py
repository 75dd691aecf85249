"""kafka-python's idempotent acks=all producer while a partition leader dies.

Sends --records numbered values (kp-n00000000, kp-n00000001, ...) to an existing topic,
number n to partition n % --partitions, paced (--pace-ms between sends, at most WINDOW
unacknowledged) so that the run spans the leader kill the calling test makes. Prints one
line per acknowledged record as soon as its future completes, in send order:

    ack <partition> <offset> <value>

A send whose future fails with a retriable error (kafka-python gave up on it, e.g. after
delivery_timeout_ms) is sent again with the same value, after a line
`retry <value> <error name>`; a non-retriable error fails the script. The last line is the
JSON summary. kafka-python retries inside one idempotent producer session (same producer
id and sequence numbers) on its own, so a resend here is rare; when it happens the value
may be in the log twice, which the test tolerates only for values reported here.

The test (tests/cluster/replication.rs, kafka_python_acks_all_survives_a_leader_kill)
reads the topic back and checks that every acknowledged value is there once, at its offset.
"""

import collections
import time

from kafka import KafkaProducer
from kafka.errors import KafkaError

from kp_common import expect, fail, parse_args, run, succeed

# Unacknowledged sends allowed before the script waits for the oldest: enough to keep
# batches flowing, few enough that a failover stalls a bounded backlog.
WINDOW = 200
# Per-request bound: a dead leader's connection is reset at once, but a request that a
# leader never answers is only given up after this.
PRODUCE_REQUEST_TIMEOUT_MS = 5000
# How long kafka-python keeps retrying one record (a failover takes seconds).
DELIVERY_TIMEOUT_MS = 60000


def add_arguments(parser):
    parser.add_argument("--records", type=int, required=True, help="how many values to send")
    parser.add_argument("--partitions", type=int, default=1, help="partitions of the topic")
    parser.add_argument("--pace-ms", type=float, default=5.0, help="pause between sends")


def value_of(number):
    return f"kp-n{number:08d}"


def main():
    args = parse_args(__doc__, add_arguments)
    producer = KafkaProducer(
        bootstrap_servers=args.bootstrap.split(","),
        client_id="kp-replicated-produce",
        acks="all",
        enable_idempotence=True,
        max_in_flight_requests_per_connection=5,
        linger_ms=5,
        retry_backoff_ms=100,
        reconnect_backoff_ms=50,
        reconnect_backoff_max_ms=1000,
        request_timeout_ms=PRODUCE_REQUEST_TIMEOUT_MS,
        delivery_timeout_ms=DELIVERY_TIMEOUT_MS,
    )
    pending = collections.deque()  # (number, future) in send order
    retried = []
    acknowledged = 0
    started = time.monotonic()

    def send(number):
        partition = number % args.partitions
        future = producer.send(args.topic, value=value_of(number).encode(), partition=partition)
        pending.append((number, future))

    def settle(wait_for_oldest):
        """Reports the completed futures at the front of the window, in send order."""
        nonlocal acknowledged
        while pending:
            number, future = pending[0]
            if not (future.is_done or wait_for_oldest):
                return
            wait_for_oldest = False
            pending.popleft()
            try:
                # Longer than delivery_timeout_ms: kafka-python fails the future first.
                metadata = future.get(timeout=DELIVERY_TIMEOUT_MS / 1000 + 10)
            except KafkaError as error:
                if not error.retriable:
                    fail(
                        "a send failed with a non-retriable error",
                        value=value_of(number),
                        error=f"{type(error).__name__}: {error}",
                        acknowledged=acknowledged,
                    )
                retried.append([value_of(number), type(error).__name__])
                print(f"retry {value_of(number)} {type(error).__name__}", flush=True)
                send(number)
                continue
            print(f"ack {metadata.partition} {metadata.offset} {value_of(number)}", flush=True)
            acknowledged += 1

    for number in range(args.records):
        send(number)
        settle(wait_for_oldest=False)
        while len(pending) >= WINDOW:
            settle(wait_for_oldest=True)
        time.sleep(args.pace_ms / 1000)
    while pending:
        settle(wait_for_oldest=True)
    producer.close(timeout=5)
    expect(
        acknowledged == args.records,
        "not every value was acknowledged",
        acknowledged=acknowledged,
        records=args.records,
    )
    succeed(
        {
            "acknowledged": acknowledged,
            "retried": retried,
            "elapsed_ms": int((time.monotonic() - started) * 1000),
        }
    )


if __name__ == "__main__":
    run(main)
