"""Two subscribed consumers split a 6-partition topic 3/3 with the range assignor; when one
closes (LeaveGroup), the other is given all 6 partitions within the session timeout.

Both consumers run in this process, each in its own thread.
"""

import time

from kp_common import (
    SESSION_TIMEOUT_MS,
    Deadline,
    admin_client,
    create_topic,
    expect,
    parse_args,
    run,
    succeed,
)
from kp_members import MemberThread, owns_all, split_evenly, wait_settled

PARTITIONS = 6


def main():
    args = parse_args(__doc__)
    admin = admin_client(args.bootstrap)
    create_topic(admin, args.topic, PARTITIONS)
    admin.close()

    members = [
        MemberThread(f"kp-rebalance-{index}", args.bootstrap, args.group, args.topic)
        for index in range(2)
    ]
    for member in members:
        member.start()
    split, _ = wait_settled(Deadline(15), "a 3/3 split", members, split_evenly(PARTITIONS))
    # The range assignor gives each member a contiguous run of partitions.
    ranges = sorted(tuple(snapshot["assignment"]) for snapshot in split)
    expect(ranges == [(0, 1, 2), (3, 4, 5)], "the split is not the range assignor's", split=split)

    leaver, stayer = members
    leave_requested_at = time.monotonic()
    leaver.stop()
    after, took_over_at = wait_settled(
        Deadline(15), "the remaining consumer to own all partitions", [stayer], owns_all(PARTITIONS)
    )
    takeover_ms = int((took_over_at - leave_requested_at) * 1000)
    expect(
        takeover_ms < SESSION_TIMEOUT_MS,
        "the remaining consumer took over only after the session timeout: "
        "LeaveGroup did not start a rebalance",
        takeover_ms=takeover_ms,
    )
    expect(
        after[0]["generation_id"] > split[0]["generation_id"],
        "the takeover did not start a new generation",
        split=split,
        after=after,
    )
    stayer.stop()

    succeed(
        {
            "split": [snapshot["assignment"] for snapshot in split],
            "split_generation_id": split[0]["generation_id"],
            "member_ids": [snapshot["member_id"] for snapshot in split],
            "after_leave": after[0]["assignment"],
            "after_leave_generation_id": after[0]["generation_id"],
            "takeover_ms": takeover_ms,
        }
    )


if __name__ == "__main__":
    run(main)
