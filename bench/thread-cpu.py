import os, time, sys
# Every second: per-thread CPU (% of one CPU) of our bench process and our Kafka JVM, grouped by thread name prefix.
def procs():
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit(): continue
        try:
            cmd = open(f"/proc/{pid}/cmdline","rb").read().replace(b"\0", b" ").decode(errors="replace")
        except Exception: continue
        if cmd.startswith("/tmp/corelog-compare-bin bench"): out[pid] = "bench"
        elif "corelog-compare-kafka" in cmd and "kafka.Kafka" in cmd: out[pid] = "kafka"
    return out
def ticks(pid):
    res = {}
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                s = open(f"/proc/{pid}/task/{tid}/stat").read()
            except Exception: continue
            comm = s[s.index("(")+1:s.rindex(")")]
            f = s[s.rindex(")")+2:].split()
            res[tid] = (comm, int(f[11]) + int(f[12]), int(f[36]))
    except Exception: pass
    return res
hz = os.sysconf("SC_CLK_TCK")
prev = {}
while True:
    now = {}
    for pid, kind in procs().items():
        now[pid] = (kind, ticks(pid))
    t = time.time()
    for pid, (kind, th) in now.items():
        if pid not in prev: continue
        groups = {}
        for tid, (comm, tk, cpu) in th.items():
            old = prev[pid][1].get(tid)
            d = tk - (old[1] if old else 0) if old else 0
            key = f"{comm.rstrip('0123456789-')}@cpu{cpu}"
            groups[key] = groups.get(key, 0) + d
        total = sum(groups.values())
        top = sorted(groups.items(), key=lambda kv: -kv[1])[:6]
        print(f"{t:.1f} {kind} total={100*total/hz:.0f}% " + " ".join(f"{k}={100*v/hz:.0f}%" for k, v in top if v), flush=True)
    prev = now
    time.sleep(1.0)
