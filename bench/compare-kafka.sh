#!/usr/bin/env bash
# corelog and the reference Apache Kafka broker side by side, on the same cores (issue 14).
#
# For each run: waits for a quiet machine (optional), starts a fresh single-node Kafka
# (tests/reference_kafka/kafka.sh) pinned with taskset to the CPUs corelog's embedded broker
# gets, runs `corelog bench --compare embedded $BOOTSTRAP` (corelog first, then Kafka, same
# load generator on the same CPUs), records how busy the broker's and the load generator's
# CPUs were while each target was measured, then stops Kafka and deletes its data.
#
#   bench/compare-kafka.sh                          the standard runs (below)
#   bench/compare-kafka.sh max-throughput-1k-acks1@1000 fixed-rate-latency
#                                                   any subset: <scenario>[@<partitions>]
#
# Standard runs: max-throughput-1k-acks1 at 6, 1,000 and 9,999 partitions,
# max-throughput-1k-acks-all at 6, fixed-rate-latency at 6 (the scenario files' own count).
# 9,999, not 10,000: Kafka's KRaft controller refuses a CreateTopics that needs more than
# 10,000 metadata records (one per partition plus one for the topic) with POLICY_VIOLATION
# "Unable to perform excessively large batch operation".
#
# Everything goes to bench/reports/kafka-compare-<UTC time>/: each target's usual report
# files, bench's <scenario>-<time>-compare.md, the stamped bench output (*.log) and the
# per-second CPU samples (*.cpu), and summary.md with one section per run (command, table,
# CPU use). Exits non-zero if any run failed or saw problems; the other runs still happen.
#
# Environment:
#   COMPARE_BROKER_CPUS   CPU list of both brokers; default 0
#   COMPARE_LOADGEN_CPUS  CPU list of the load generator; default 1
#   COMPARE_DURATION_S    measured seconds per target; default 10
#   COMPARE_WARMUP_S      warm-up seconds per target; default 3
#   COMPARE_QUIET_WAIT_S  before each run wait up to this long for a quiet machine (no cargo,
#                         rustc, other java or corelog processes, 1-min load below
#                         COMPARE_QUIET_LOAD); 0: do not wait; default 1200
#   COMPARE_QUIET_LOAD    load average counted as quiet; default 1.0
#   COMPARE_REPORT_DIR    default bench/reports/kafka-compare-<UTC time>
#   CORELOG_BIN           default target/release/corelog (build it first:
#                         cargo build --release --bin corelog)
#   CORELOG_KAFKA_HEAP_OPTS  Kafka's heap; default here -Xmx1g -Xms1g, the default of Kafka's
#                         own kafka-server-start.sh (kafka.sh alone uses 512 MiB)
#   COMPARE_BENCH_ARGS    extra flags for every `corelog bench`, e.g. "--flush never"
set -euo pipefail

readonly ROOT=$(cd "$(dirname "$0")/.." && pwd)
readonly KAFKA_SH=$ROOT/tests/reference_kafka/kafka.sh
readonly STANDARD_RUNS=(
    max-throughput-1k-acks1@6
    max-throughput-1k-acks1@1000
    max-throughput-1k-acks1@9999
    max-throughput-1k-acks-all@6
    fixed-rate-latency
)
BROKER_CPUS=${COMPARE_BROKER_CPUS:-0}
LOADGEN_CPUS=${COMPARE_LOADGEN_CPUS:-1}
DURATION_S=${COMPARE_DURATION_S:-10}
WARMUP_S=${COMPARE_WARMUP_S:-3}
QUIET_WAIT_S=${COMPARE_QUIET_WAIT_S:-1200}
QUIET_LOAD=${COMPARE_QUIET_LOAD:-1.0}
CORELOG_BIN=${CORELOG_BIN:-$ROOT/target/release/corelog}
export CORELOG_KAFKA_HEAP_OPTS=${CORELOG_KAFKA_HEAP_OPTS:--Xmx1g -Xms1g}
export CORELOG_KAFKA_CPUS=$BROKER_CPUS
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
REPORT_DIR=${COMPARE_REPORT_DIR:-$ROOT/bench/reports/kafka-compare-$STAMP}
SUMMARY=$REPORT_DIR/summary.md

log() { printf 'compare-kafka: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2
    exit 2
}

KAFKA_DIR=
SAMPLER_PID=
cleanup() {
    if [[ -n "$SAMPLER_PID" ]]; then
        kill "$SAMPLER_PID" 2>/dev/null || true
        wait "$SAMPLER_PID" 2>/dev/null || true
        SAMPLER_PID=
    fi
    if [[ -n "$KAFKA_DIR" ]]; then
        "$KAFKA_SH" stop "$KAFKA_DIR" || true
        rm -rf "$KAFKA_DIR"
        KAFKA_DIR=
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Processes that would disturb a measurement: builds, tests, other brokers and benches.
# Called before this script starts its own Kafka and corelog.
disturbances() {
    local found=()
    pgrep -x cargo >/dev/null && found+=(cargo)
    pgrep -x rustc >/dev/null && found+=(rustc)
    pgrep -x java >/dev/null && found+=(java)
    pgrep -x corelog >/dev/null && found+=(corelog)
    local load
    load=$(cut -d' ' -f1 /proc/loadavg)
    awk -v load="$load" -v quiet="$QUIET_LOAD" 'BEGIN { exit !(load >= quiet) }' &&
        found+=("load $load")
    echo "${found[*]}"
}

# Waits up to QUIET_WAIT_S for no disturbances; records the machine's state either way.
wait_for_quiet() {
    local run=$1 busy deadline=$((SECONDS + QUIET_WAIT_S))
    busy=$(disturbances)
    while [[ -n "$busy" ]] && ((QUIET_WAIT_S > 0 && SECONDS < deadline)); do
        log "$run: waiting for a quiet machine ($busy)"
        sleep 10
        busy=$(disturbances)
    done
    if [[ -n "$busy" ]]; then
        log "$run: machine NOT quiet ($busy); measuring anyway"
        MACHINE_STATE="busy at start: $busy"
    else
        MACHINE_STATE="quiet at start (no cargo, rustc, java or corelog; 1-min load $(cut -d' ' -f1 /proc/loadavg))"
    fi
}

# One line a second: epoch seconds, then busy % of each CPU (user+nice+system+irq+softirq
# +steal over all but idle and iowait) over the last second.
sample_cpus() {
    # exec: the background job is python itself, so killing its PID stops the sampling.
    exec python3 -u - <<'EOF'
import time
def read():
    cpus = {}
    with open("/proc/stat") as f:
        for line in f:
            parts = line.split()
            if parts[0].startswith("cpu") and parts[0] != "cpu":
                v = list(map(int, parts[1:9]))
                idle = v[3] + v[4]
                cpus[parts[0]] = (sum(v), idle)
    return cpus
before = read()
while True:
    time.sleep(1.0)
    now = read()
    fields = []
    for cpu in sorted(now, key=lambda c: int(c[3:])):
        total = now[cpu][0] - before[cpu][0]
        idle = now[cpu][1] - before[cpu][1]
        fields.append(f"{cpu}={100.0 * (total - idle) / max(total, 1):.0f}")
    print(f"{time.time():.1f} " + " ".join(fields), flush=True)
    before = now
EOF
}

# Mean busy % of each CPU while each target was measured (between its first and last
# "measure" progress line), as a Markdown table.
cpu_table() {
    local stamped_log=$1 samples=$2
    python3 - "$stamped_log" "$samples" "$BROKER_CPUS" "$LOADGEN_CPUS" <<'EOF'
import re, sys
log_path, samples_path, broker_cpus, loadgen_cpus = sys.argv[1:5]
windows, target = [], None
for line in open(log_path):
    stamp, _, text = line.partition(" ")
    m = re.search(r"corelog bench: scenario \S+ against (\S+);", text)
    if m:
        target = m.group(1)
        windows.append([target, None, None])
    elif " measure]" in text and windows:
        t = float(stamp)
        if windows[-1][1] is None:
            windows[-1][1] = t
        windows[-1][2] = t
samples = []
for line in open(samples_path):
    parts = line.split()
    samples.append((float(parts[0]), dict(p.split("=") for p in parts[1:])))
def cpus(spec):
    return ["cpu" + c for c in spec.split(",")]
print(f"| target | broker CPUs ({broker_cpus}) busy | load generator CPUs ({loadgen_cpus}) busy | samples |")
print("|---|---:|---:|---:|")
for target, start, end in windows:
    if start is None:
        continue
    # A sample covers the second before its stamp; keep those inside the window.
    inside = [s for t, s in samples if start < t - 0.5 and t <= end + 0.5]
    def mean(names):
        values = [float(s[n]) for s in inside for n in names if n in s]
        return f"{sum(values) / len(values):.0f}%" if values else "-"
    print(f"| {target} | {mean(cpus(broker_cpus))} | {mean(cpus(loadgen_cpus))} | {len(inside)} |")
EOF
}

one_run() {
    local run=$1 scenario partitions
    scenario=${run%@*}
    partitions=
    [[ "$run" == *@* ]] && partitions=${run#*@}
    local name=$scenario${partitions:+-p$partitions}
    wait_for_quiet "$run"

    KAFKA_DIR=$(mktemp -d /tmp/corelog-compare-kafka.XXXXXX)
    log "$run: starting Kafka on CPUs $BROKER_CPUS ($CORELOG_KAFKA_HEAP_OPTS)"
    "$KAFKA_SH" start "$KAFKA_DIR" >/dev/null
    local bootstrap kafka_version
    bootstrap=$(sed -n 's/^BOOTSTRAP=//p' "$KAFKA_DIR/kafka.env")
    kafka_version=$(sed -n 's/^KAFKA_VERSION=//p' "$KAFKA_DIR/kafka.env")

    local command=("$CORELOG_BIN" bench --scenario "$scenario"
        ${partitions:+--partitions "$partitions"}
        --duration "$DURATION_S" --warmup "$WARMUP_S"
        --broker-cores "$BROKER_CPUS" --loadgen-cores "$LOADGEN_CPUS"
        --report-dir "$REPORT_DIR")
    # shellcheck disable=SC2206
    [[ -n "${COMPARE_BENCH_ARGS:-}" ]] && command+=(${COMPARE_BENCH_ARGS})
    command+=(--compare embedded "$bootstrap")
    log "$run: ${command[*]}"

    sample_cpus >"$REPORT_DIR/$name.cpu" &
    SAMPLER_PID=$!
    local status=0
    # Each line of bench's stderr stamped with the time, to find the measured windows.
    "${command[@]}" 2> >(while IFS= read -r line; do
        printf '%s %s\n' "$EPOCHREALTIME" "$line"
        printf '%s\n' "$line" >&2
    done >"$REPORT_DIR/$name.log") >"$REPORT_DIR/$name.out" || status=$?
    sleep 0.5 # let the stamping loop finish
    kill "$SAMPLER_PID" 2>/dev/null || true
    wait "$SAMPLER_PID" 2>/dev/null || true
    SAMPLER_PID=
    cleanup

    local table
    table=$(sed -n 's/^[0-9.]* wrote \(.*-compare\.md\)$/\1/p' "$REPORT_DIR/$name.log" | tail -n 1)
    {
        printf '## %s%s\n\n' "$scenario" "${partitions:+, $partitions partitions}"
        printf 'Kafka %s (JVM under taskset -c %s, %s), corelog embedded on CPUs %s; ' \
            "$kafka_version" "$BROKER_CPUS" "$CORELOG_KAFKA_HEAP_OPTS" "$BROKER_CPUS"
        printf 'load generator on CPUs %s. Machine %s. Exit status %s.\n\n' \
            "$LOADGEN_CPUS" "$MACHINE_STATE" "$status"
        printf '```sh\n%s\n```\n\n' "${command[*]/#$ROOT\//}"
        if [[ -n "$table" && -f "$table" ]]; then
            printf 'Table from %s:\n\n' "${table##*/}"
            cat "$table"
        else
            printf 'No comparison table (see %s.log).\n' "$name"
        fi
        printf '\nMean CPU use while measured (per-second samples of /proc/stat):\n\n'
        cpu_table "$REPORT_DIR/$name.log" "$REPORT_DIR/$name.cpu"
        printf '\n'
    } >>"$SUMMARY"
    return "$status"
}

main() {
    [[ "${1:-}" == -h || "${1:-}" == --help ]] && usage
    [[ -x "$CORELOG_BIN" ]] || die "no $CORELOG_BIN: cargo build --release --bin corelog"
    local runs=("$@")
    ((${#runs[@]} > 0)) || runs=("${STANDARD_RUNS[@]}")
    local run
    for run in "${runs[@]}"; do
        [[ -f "$ROOT/bench/scenarios/${run%@*}.toml" ]] || die "no scenario bench/scenarios/${run%@*}.toml"
    done
    "$KAFKA_SH" fetch
    mkdir -p "$REPORT_DIR"
    {
        printf '# corelog and Kafka side by side, %s\n\n' "$STAMP"
        printf 'Host %s, %s CPUs, kernel %s; corelog %s.\n' "$(hostname)" "$(nproc)" \
            "$(uname -r)" "$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
        printf 'Command: bench/compare-kafka.sh %s\n\n' "${runs[*]}"
    } >"$SUMMARY"
    cd "$ROOT"
    local failed=0
    for run in "${runs[@]}"; do
        one_run "$run" || { failed=1; log "$run: failed or saw problems (see $SUMMARY)"; }
    done
    log "wrote $SUMMARY"
    return "$failed"
}

main "$@"
