#!/usr/bin/env bash
# Profile one `corelog bench` scenario under `perf record` and render two SVG flame graphs:
#   flamegraphs/<name>-broker.svg  broker threads only (comm `shard-*`)
#   flamegraphs/<name>-all.svg     the whole process (broker, load generator, io_uring workers)
#
# Usage: flamegraphs/record.sh [scenario-name-or-toml] [extra corelog bench flags...]
#   flamegraphs/record.sh max-throughput-1k-acks-all --consumer-groups 0 --warmup 2 --duration 8
#   flamegraphs/record.sh fan-out-3-groups --warmup 2 --duration 8
#
# Environment knobs (defaults in brackets):
#   NAME        output stem [scenario name]
#   PERF_FREQ   sampling frequency in Hz [999]
#   CALL_GRAPH  perf --call-graph mode [dwarf,16384]; "fp" needs frame pointers in every crate
#   MINWIDTH    inferno --minwidth, percent; hides thinner frames to keep the SVG small [0.05]
#   KEEP_TMP    1 keeps the temp dir with perf.data and the folded stacks [0]
#   REV         profile this git revision instead of the work tree: it is exported with
#               `git archive` to target/flamegraph/src and built there (target dir
#               target/flamegraph), so uncommitted edits in the tree do not leak in [unset]
#
# perf.data, the folded stacks and the bench reports go to a temp dir, never into the repo.
# The VM has no hardware PMU, so perf uses its default software event, cpu-clock.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out_dir="$repo_root/flamegraphs"
scenario="${1:-max-throughput-1k-acks-all}"
shift || true
# A scenario file given by path must survive the cd into the build root below.
[[ -f "$scenario" ]] && scenario="$(realpath "$scenario")"
name="${NAME:-$(basename "$scenario" .toml)}"
perf_freq="${PERF_FREQ:-999}"
call_graph="${CALL_GRAPH:-dwarf,16384}"
minwidth="${MINWIDTH:-0.05}"
perf_bin="${PERF:-perf}"

command -v "$perf_bin" >/dev/null || { echo "record.sh: perf not found (apt-get install linux-perf)" >&2; exit 1; }
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v inferno-collapse-perf >/dev/null || ! command -v inferno-flamegraph >/dev/null; then
    echo "record.sh: installing inferno (inferno-collapse-perf, inferno-flamegraph)" >&2
    cargo install --locked inferno
fi

# Where the binary is built and the bench runs (scenario names resolve against its bench/).
if [[ -n "${REV:-}" ]]; then
    build_root="$repo_root/target/flamegraph/src"
    rm -rf "$build_root" && mkdir -p "$build_root"
    git -C "$repo_root" archive "$REV" | tar -x -C "$build_root"
    export CARGO_TARGET_DIR="$repo_root/target/flamegraph"
    source_label="$(git -C "$repo_root" rev-parse --short "$REV")"
else
    build_root="$repo_root"
    export CARGO_TARGET_DIR="$repo_root/target"
    source_label="$(git -C "$repo_root" describe --always --dirty 2>/dev/null || echo unknown)"
fi
echo "record.sh: building release of $source_label" >&2
(cd "$build_root" && cargo build --release --quiet --bin corelog)
corelog="$CARGO_TARGET_DIR/release/corelog"

tmp_dir="$(mktemp -d -t corelog-flamegraph.XXXXXX)"
if [[ "${KEEP_TMP:-0}" == 1 ]]; then
    echo "record.sh: keeping $tmp_dir" >&2
else
    trap 'rm -rf "$tmp_dir"' EXIT
fi

# Bench reports are a by-product here; keep them out of bench/reports unless asked for.
bench_args=(bench --scenario "$scenario" --quiet)
[[ " $* " == *" --report-dir"* ]] || bench_args+=(--report-dir "$tmp_dir/reports")
bench_args+=("$@")

echo "record.sh: perf record -F $perf_freq --call-graph $call_graph -- corelog ${bench_args[*]}" >&2
(cd "$build_root" && "$perf_bin" record -F "$perf_freq" -g --call-graph "$call_graph" \
    -o "$tmp_dir/perf.data" -- "$corelog" "${bench_args[@]}")

echo "record.sh: symbolizing (perf script; dwarf stacks take a while)" >&2
"$perf_bin" script -i "$tmp_dir/perf.data" 2>/dev/null >"$tmp_dir/perf.script"
# --all tags kernel frames with _[k], so syscall and io_uring time is visible as such.
inferno-collapse-perf --all <"$tmp_dir/perf.script" >"$tmp_dir/all.folded"
grep '^shard-' "$tmp_dir/all.folded" >"$tmp_dir/broker.folded" || {
    echo "record.sh: no samples from shard-* threads" >&2; exit 1; }

recorded_on="$(date -u +%Y-%m-%d) on $(nproc) CPUs, $(uname -r)"
subtitle="corelog $source_label: bench --scenario $scenario --quiet $* | perf -F $perf_freq cpu-clock, $call_graph | $recorded_on"
render() { # folded-file title output
    inferno-flamegraph --title "$2" --subtitle "$subtitle" --countname ns \
        --colors rust --hash --minwidth "$minwidth" <"$1" >"$3"
}
render "$tmp_dir/broker.folded" "corelog $name: broker threads (shard-*)" "$out_dir/$name-broker.svg"
render "$tmp_dir/all.folded" "corelog $name: whole process" "$out_dir/$name-all.svg"

# A text summary of the hottest leaf functions on the broker, to go with the SVG.
echo "record.sh: top broker self time (leaf frame, % of shard-* samples)" >&2
awk '{ weight = $NF; sub(/ [0-9]+$/, ""); n = split($0, frames, ";");
       self[frames[n]] += weight; total += weight }
     END { for (f in self) printf "%6.2f%%  %s\n", 100 * self[f] / total, f }' \
    "$tmp_dir/broker.folded" | sort -rn | head -20 >&2

ls -l "$out_dir/$name-broker.svg" "$out_dir/$name-all.svg"
