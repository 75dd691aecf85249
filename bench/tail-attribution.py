#!/usr/bin/env python3
"""Who held the CPUs while the slowest messages of a bench run waited.

Lines up the slow publishes a run wrote (`corelog bench --trace-slow-publishes US`,
`<report>-slow-publishes.csv`, CLOCK_MONOTONIC ns) with a system-wide trace of the same
run taken with the same clock, and says for each slow message what took the time:

  * "host stall on CPU n": the virtual CPU did not run at all. The trace's cpu-clock
    samples (a timer that fires every 250 us on every CPU, busy or idle) stop; a gap of
    more than 1 ms between two samples on a CPU is time the hypervisor gave the CPU to
    someone else (or interrupts were off that long).
  * "<task> on CPU n": a task that is not corelog's (not shard-*, loadgen-*, iou-wrk-*,
    bench-*, corelog, nor idle) ran on that CPU, per the scheduler's sched_switch events.
  * "every CPU idle (waiting on the disk)": no task ran on any CPU, so everyone was
    waiting on something outside them: at this load, a write or fdatasync the
    (virtual) disk took long to complete (the io_uring workers sit in D state meanwhile).
  * "corelog's own threads": none of the above covers a quarter of the message's
    latency, so the time went in the broker, the load generator or the io_uring workers.

Each message is charged to the single largest cause inside [due, acked]. Usage:

  perf record -k CLOCK_MONOTONIC -a -e sched:sched_switch -e cpu-clock/freq=4000/ \\
      -o /tmp/tail.data -- target/release/corelog bench --scenario low-rate-latency-1k-acks1 \\
      --trace-slow-publishes 2000 --report-dir /tmp/tail
  perf script -i /tmp/tail.data -F comm,cpu,time,event,trace > /tmp/tail.txt
  bench/tail-attribution.py /tmp/tail.txt /tmp/tail/low-rate-latency-1k-acks1-*-slow-publishes.csv
"""

import bisect
import collections
import csv
import re
import sys

OURS = re.compile(r"^(shard-|loadgen-|iou-wrk|bench-|corelog|swapper)")
LINE = re.compile(r"^\s*(.+?)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s*(.*)$")
STALL_NS = 1_000_000


def read_trace(path):
    """Per CPU: sorted cpu-clock sample times, and (start, end, comm) runs of tasks."""
    samples = collections.defaultdict(list)
    switches = collections.defaultdict(list)
    for line in open(path, errors="replace"):
        match = LINE.match(line)
        if not match:
            continue
        _, cpu, seconds, event, trace = match.groups()
        cpu, at = int(cpu), int(round(float(seconds) * 1e9))
        if event.startswith("cpu-clock"):
            samples[cpu].append(at)
        elif event == "sched:sched_switch":
            prev = re.search(r"prev_comm=(.+?) prev_pid=", trace)
            nxt = re.search(r"next_comm=(.+?) next_pid=", trace)
            if prev and nxt:
                switches[cpu].append((at, prev.group(1), nxt.group(1)))
    runs = {}
    for cpu, events in switches.items():
        events.sort()
        runs[cpu] = [(start, end, comm) for (start, _, comm), (end, _, _) in zip(events, events[1:])]
    stalls = {}
    for cpu, times in samples.items():
        times.sort()
        stalls[cpu] = [(a, b) for a, b in zip(times, times[1:]) if b - a > STALL_NS]
    return stalls, runs


def overlap(start, end, lo, hi):
    return max(0, min(end, hi) - max(start, lo))


def idle_spans(spans, lo, hi):
    index = bisect.bisect_left(spans, (lo - 1_000_000_000,))
    out = []
    for start, end, comm in spans[index:]:
        if start > hi:
            break
        if comm.startswith("swapper") and end > lo:
            out.append((max(start, lo), min(end, hi)))
    return out


def intersect(first, second):
    out, i, j = [], 0, 0
    while i < len(first) and j < len(second):
        start, end = max(first[i][0], second[j][0]), min(first[i][1], second[j][1])
        if start < end:
            out.append((start, end))
        if first[i][1] < second[j][1]:
            i += 1
        else:
            j += 1
    return out


def causes_in(window, stalls, runs):
    lo, hi = window
    found = collections.Counter()
    all_idle = None
    for spans in runs.values():
        idle = idle_spans(spans, lo, hi)
        all_idle = idle if all_idle is None else intersect(all_idle, idle)
    if all_idle:
        found["every CPU idle (waiting on the disk)"] = sum(end - start for start, end in all_idle)
    for cpu, gaps in stalls.items():
        for start, end in gaps[bisect.bisect_left(gaps, (lo - 1_000_000_000,)):]:
            if start > hi:
                break
            found[f"host stall on CPU {cpu}"] += overlap(start, end, lo, hi)
    for cpu, spans in runs.items():
        index = bisect.bisect_left(spans, (lo - 1_000_000_000,))
        for start, end, comm in spans[index:]:
            if start > hi:
                break
            if not OURS.match(comm):
                found[f"{comm} on CPU {cpu}"] += overlap(start, end, lo, hi)
    return found


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    stalls, runs = read_trace(sys.argv[1])
    if not stalls:
        sys.exit("no cpu-clock samples in the trace: record with -e cpu-clock/freq=4000/")
    slow = [
        (int(row["due_ns"]), int(row["acked_ns"]), int(row["latency_us"]))
        for row in csv.DictReader(open(sys.argv[2]))
    ]
    charged = collections.Counter()
    latency_sum = collections.Counter()
    for due, acked, latency_us in slow:
        found = causes_in((due, acked), stalls, runs)
        cause, taken = found.most_common(1)[0] if found else ("", 0)
        if taken * 4 < acked - due:
            cause = "corelog's own threads"
        charged[cause] += 1
        latency_sum[cause] += latency_us
    print(f"{len(slow)} slow publishes (threshold in the CSV's run)")
    print(f"{'cause':<40} {'messages':>9} {'share':>7} {'mean latency':>13}")
    for cause, count in charged.most_common():
        share = 100.0 * count / max(1, len(slow))
        print(f"{cause:<40} {count:>9} {share:>6.1f}% {latency_sum[cause] / count / 1000:>10.2f} ms")
    print()
    print("over the whole trace:")
    for cpu in sorted(stalls):
        gaps = stalls[cpu]
        print(f"  CPU {cpu}: {len(gaps)} host stalls over 1 ms, {sum(b - a for a, b in gaps) / 1e6:.1f} ms in all")
    for cpu in sorted(runs):
        long_runs = collections.Counter()
        long_time = collections.Counter()
        for start, end, comm in runs[cpu]:
            if end - start > 500_000 and not OURS.match(comm):
                long_runs[comm] += 1
                long_time[comm] += end - start
        for comm, count in long_runs.most_common(5):
            print(f"  CPU {cpu}: {comm} ran {count} times for over 0.5 ms, {long_time[comm] / 1e6:.1f} ms in all")


if __name__ == "__main__":
    main()
