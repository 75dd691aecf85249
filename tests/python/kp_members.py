"""Subscribed group members the rebalance scenarios watch, in a thread or in a child process.

Both kinds publish the same snapshot (assignment, generation id, member id, error), so a
scenario can wait for a condition over members of either kind. A KafkaConsumer is only
touched by the thread that polls it (it is not thread-safe).

Run as a script, this file is the child-process member: it polls and prints a JSON
snapshot line whenever its assignment or generation changes, until it is killed.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time

from kp_common import (
    POLL_TIMEOUT_MS,
    expect,
    fail,
    group_consumer,
    parse_args,
    partitions_of,
    run,
    subscribe,
)

# A condition must hold this long before it counts as settled.
SETTLED_S = 1.0


def empty_snapshot():
    return {"assignment": [], "generation_id": -1, "member_id": "", "error": None}


def poll_snapshots(consumer, keep_going, publish):
    """Polls `consumer` while keep_going(), publishing each new snapshot."""
    last = None
    while keep_going():
        consumer.poll(timeout_ms=POLL_TIMEOUT_MS)
        metadata = consumer.group_metadata()
        snapshot = {
            "assignment": partitions_of(consumer.assignment()),
            "generation_id": metadata.generation_id,
            "member_id": metadata.member_id,
            "error": None,
        }
        if snapshot != last:
            publish(snapshot)
            last = snapshot


class MemberThread(threading.Thread):
    """A member in this process; stop() makes it close its consumer (sending LeaveGroup)."""

    def __init__(self, client_id, bootstrap, group, topic):
        super().__init__(name=client_id, daemon=True)
        self.client_id = client_id
        self.bootstrap = bootstrap
        self.group = group
        self.topic = topic
        self.lock = threading.Lock()
        self.latest = empty_snapshot()
        self.stop_requested = threading.Event()

    def run(self):
        try:
            consumer = group_consumer(self.bootstrap, self.group, self.client_id)
            subscribe(consumer, self.topic)
            poll_snapshots(consumer, lambda: not self.stop_requested.is_set(), self.publish)
            consumer.close()
        except Exception as error:  # reported through the snapshot
            with self.lock:
                self.latest = dict(self.latest, error=repr(error))

    def publish(self, snapshot):
        with self.lock:
            self.latest = snapshot

    def snapshot(self):
        with self.lock:
            return dict(self.latest)

    def stop(self, timeout_s=10):
        self.stop_requested.set()
        self.join(timeout=timeout_s)
        expect(not self.is_alive(), f"{self.client_id}: close() did not return in {timeout_s} s")
        expect(self.latest["error"] is None, f"{self.client_id} failed", error=self.latest["error"])


class MemberProcess:
    """A member in a child process (this file run as a script), so it can be SIGKILLed:
    it then sends no LeaveGroup and only the session timeout removes it."""

    def __init__(self, client_id, bootstrap, group, topic, timeout_s):
        self.client_id = client_id
        self.lock = threading.Lock()
        self.latest = empty_snapshot()
        self.killed = False
        self.process = subprocess.Popen(
            [
                sys.executable,
                os.path.abspath(__file__),
                "--bootstrap", bootstrap,
                "--topic", topic,
                "--group", group,
                "--client-id", client_id,
                "--timeout-s", str(timeout_s),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.reader = threading.Thread(target=self.read_snapshots, daemon=True)
        self.reader.start()

    def read_snapshots(self):
        for line in self.process.stdout:
            snapshot = json.loads(line)
            with self.lock:
                self.latest = snapshot
        self.process.wait()
        with self.lock:
            if not self.killed:
                self.latest = dict(
                    self.latest, error=f"exited with {self.process.returncode} before the kill"
                )

    def snapshot(self):
        with self.lock:
            return dict(self.latest)

    def kill(self):
        """SIGKILL by pid: no LeaveGroup, no close."""
        with self.lock:
            self.killed = True
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


def wait_settled(deadline, what, members, condition):
    """Waits until condition(snapshots) holds for SETTLED_S.

    Returns the snapshots and the monotonic time the condition first held.
    """
    held_since = None
    while not deadline.expired():
        snapshots = [member.snapshot() for member in members]
        errors = [snapshot["error"] for snapshot in snapshots if snapshot["error"]]
        expect(not errors, "a member failed", snapshots=snapshots)
        if condition(snapshots):
            held_since = held_since or time.monotonic()
            if time.monotonic() - held_since >= SETTLED_S:
                return snapshots, held_since
        else:
            held_since = None
        time.sleep(0.05)
    fail(f"timed out waiting for {what}", snapshots=[m.snapshot() for m in members])


def split_evenly(partitions):
    """Condition: two members own half of `partitions` each, in the same generation."""

    def condition(snapshots):
        first, second = snapshots[0]["assignment"], snapshots[1]["assignment"]
        return (
            len(first) == len(second) == partitions // 2
            and sorted(first + second) == list(range(partitions))
            and snapshots[0]["generation_id"] == snapshots[1]["generation_id"]
        )

    return condition


def owns_all(partitions):
    """Condition: the only watched member owns every partition."""
    return lambda snapshots: snapshots[0]["assignment"] == list(range(partitions))


def child_main():
    def add_arguments(parser):
        parser.add_argument("--client-id", required=True)

    args = parse_args(__doc__, add_arguments)
    consumer = group_consumer(args.bootstrap, args.group, args.client_id)
    subscribe(consumer, args.topic)

    def publish(snapshot):
        print(json.dumps(snapshot), flush=True)

    poll_snapshots(consumer, lambda: True, publish)


if __name__ == "__main__":
    run(child_main)
