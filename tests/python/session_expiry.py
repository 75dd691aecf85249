"""A member that dies without a word (SIGKILL: no LeaveGroup, only a closed socket) stays in
the group until its session times out, as in Kafka, whose coordinator does not watch
connections; then the survivor is given all 6 partitions.

The survivor polls in a thread of this process; the victim is a child process
(kp_members.py run as a script) so that it can be killed by its pid.
"""

import time

from kp_common import (
    HEARTBEAT_INTERVAL_MS,
    SESSION_TIMEOUT_MS,
    Deadline,
    admin_client,
    create_topic,
    expect,
    parse_args,
    run,
    succeed,
)
from kp_members import MemberProcess, MemberThread, owns_all, split_evenly, wait_settled

PARTITIONS = 6
# The victim's last heartbeat was at most one interval before the kill, so Kafka expires
# it no sooner than this after the kill; a much quicker takeover means the broker dropped
# the member when its connection closed.
EARLIEST_TAKEOVER_MS = SESSION_TIMEOUT_MS - 2 * HEARTBEAT_INTERVAL_MS
# Expiry, then the survivor's next heartbeat (REBALANCE_IN_PROGRESS) and its rejoin.
LATEST_TAKEOVER_MS = 2 * SESSION_TIMEOUT_MS


def main():
    args = parse_args(__doc__)
    admin = admin_client(args.bootstrap)
    create_topic(admin, args.topic, PARTITIONS)
    admin.close()

    survivor = MemberThread("kp-expiry-survivor", args.bootstrap, args.group, args.topic)
    survivor.start()
    victim = MemberProcess(
        "kp-expiry-victim", args.bootstrap, args.group, args.topic, timeout_s=args.timeout_s
    )
    members = [survivor, victim]
    split, _ = wait_settled(Deadline(15), "a 3/3 split", members, split_evenly(PARTITIONS))

    victim.kill()
    killed_at = time.monotonic()
    after, took_over_at = wait_settled(
        Deadline(LATEST_TAKEOVER_MS / 1000 + 5),
        "the survivor to own all partitions",
        [survivor],
        owns_all(PARTITIONS),
    )
    takeover_ms = int((took_over_at - killed_at) * 1000)
    expect(
        takeover_ms >= EARLIEST_TAKEOVER_MS,
        "the killed member was removed before its session timed out",
        takeover_ms=takeover_ms,
        session_timeout_ms=SESSION_TIMEOUT_MS,
    )
    expect(
        takeover_ms <= LATEST_TAKEOVER_MS,
        "the killed member was removed long after its session timed out",
        takeover_ms=takeover_ms,
        session_timeout_ms=SESSION_TIMEOUT_MS,
    )
    expect(
        after[0]["generation_id"] > split[0]["generation_id"],
        "the takeover did not start a new generation",
        split=split,
        after=after,
    )
    survivor.stop()

    succeed(
        {
            "split": [snapshot["assignment"] for snapshot in split],
            "split_generation_id": split[0]["generation_id"],
            "after_expiry": after[0]["assignment"],
            "after_expiry_generation_id": after[0]["generation_id"],
            "takeover_ms": takeover_ms,
        }
    )


if __name__ == "__main__":
    run(main)
