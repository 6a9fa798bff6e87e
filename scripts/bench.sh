#!/usr/bin/env bash
# bench.sh - measure dfmdispatch beside its peers and write
# docs/PERFORMANCE.md.
#
#   scripts/bench.sh            # full suite: several minutes on 2 cores
#   REPS=1 N=200000 PY_N=20000 B2_N=2000 B3_N=1000000 scripts/bench.sh
#
# Steps: build the library and build/bench/dfm-bench; install the peers'
# packages if they are missing (root only); run the peers' run.sh with
# DFM_BENCH so the library is measured in the same run as its peers; run
# dfm-bench's own sweeps (producers, payload sizes, pump budget); run the
# two bare rings of bench/ceiling.cpp beside it; count instructions per
# call under callgrind; write docs/bench/*-DATE.jsonl,
# docs/PERFORMANCE.md and docs/bench/b1.png.
#
# Environment: REPS N PY_N B2_N B3_N PEERS go through to run.sh unchanged.
# SWEEP_N (default N) is the token count of the sweeps; DFM_SHARED (default
# ../shared beside the repository) is where bench/peers is found.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

# The command as typed, with the overrides that were set, for the report.
COMMAND="scripts/bench.sh"
for var in PEERS B3_N B2_N PY_N N REPS SWEEP_N; do
    if [ -n "${!var:-}" ]; then
        COMMAND="$var=${!var} $COMMAND"
    fi
done

REPS=${REPS:-3}
N=${N:-2000000}
SWEEP_N=${SWEEP_N:-$N}
DFM_SHARED=${DFM_SHARED:-$ROOT/../shared}
PEERS_SRC=$DFM_SHARED/bench/peers
DATE=$(date +%F)
BENCH=$ROOT/build/bench/dfm-bench
OUT=$ROOT/docs/bench
export REPS N

say() { echo "# bench.sh: $*" >&2; }

# The code measured: HEAD, marked dirty if anything but this script's own
# outputs differs from it.  Taken now, before those outputs are rewritten.
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain -- . ':!docs/bench' ':!docs/PERFORMANCE.md' \
        2>/dev/null)" ]; then
    COMMIT="$COMMIT-dirty"
fi

if [ ! -x "$PEERS_SRC/run.sh" ]; then
    echo "bench.sh: no peers harness at $PEERS_SRC (set DFM_SHARED)" >&2
    exit 1
fi

# ---- 1. build ---------------------------------------------------------
say "building the library and dfm-bench"
make lib >&2
mkdir -p build/bench
${CC:-cc} -std=c99 -O2 -Wall -Wextra -pedantic bench/dfm_bench.c \
    -Iinclude -Lbuild/lib -ldfmdispatch -Wl,-rpath,"$ROOT/build/lib" \
    -ldl -lpthread -o "$BENCH"

# ---- 2. the peers' packages --------------------------------------------
have_peer_deps() {
    pkg-config --exists glib-2.0 libuv libffi 2>/dev/null &&
        [ -f /usr/include/concurrentqueue/concurrentqueue.h ] &&
        [ -f /usr/include/boost/asio.hpp ] &&
        command -v g++ >/dev/null
}
if ! have_peer_deps; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "bench.sh: the peers' packages are missing; run" \
            "$PEERS_SRC/install-deps.sh as root" >&2
        exit 1
    fi
    say "installing the peers' packages"
    "$PEERS_SRC/install-deps.sh" >&2
fi

# The shared folder may be read-only (CI keeps a copy beside the clone),
# and run.sh builds into its own directory, so it runs from a copy.
WORK=$(mktemp -d /tmp/dfm-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cp -R "$PEERS_SRC" "$WORK/peers"
chmod -R u+w "$WORK/peers"
rm -rf "$WORK/peers/build" "$WORK/peers/__pycache__"

# ---- 3. the suite, the library beside its peers -------------------------
mkdir -p "$OUT"
RESULTS=$OUT/results-$DATE.jsonl
say "running the peers' suite (REPS=$REPS N=$N)"
if ! DFM_BENCH="$BENCH" "$WORK/peers/run.sh" >"$WORK/results.jsonl" \
    2> >(tee "$WORK/run.log" >&2); then
    echo "bench.sh: the peers' suite failed (see the lines above)" >&2
    exit 1
fi
cp "$WORK/results.jsonl" "$RESULTS"

# ---- 4. sweeps of dfm-bench alone --------------------------------------
SHIM=$WORK/peers/build/allocshim.so

# REPS timed runs, then one run under the allocation shim whose timing is
# discarded, as run.sh does for B1.
sweep() {
    local r
    for r in $(seq "$REPS"); do
        timeout 600 "$BENCH" "$@" >>"$WORK/sweep-timed.jsonl"
    done
    timeout 600 env LD_PRELOAD="$SHIM" "$BENCH" "$@" \
        >>"$WORK/sweep-allocs.jsonl"
}

# Rounds down to a multiple of 4 * 8, which every producer count divides.
round_n() { echo $(( $1 / 32 * 32 )); }

say "scaling sweep: producers 1 2 4 8, N=$SWEEP_N"
for P in 1 2 4 8; do
    say "B1 P=$P"
    sweep B1 "$P" "$(round_n "$SWEEP_N")"
done

# Payloads are copied at dispatch, and a producer can run ahead of the
# pump, so the token count is cut to keep at most 256 MiB of payload.
say "scaling sweep: payload sizes"
for BYTES in 8 64 512 4096 65536; do
    n=$(( 268435456 / BYTES ))
    if [ "$n" -gt "$SWEEP_N" ]; then n=$SWEEP_N; fi
    n=$(round_n "$n")
    for P in 1 2; do
        say "B1 P=$P payload=$BYTES tokens=$n"
        sweep B1 "$P" "$n" "$BYTES"
    done
done
python3 "$WORK/peers/aggregate.py" "$WORK/sweep-timed.jsonl" \
    "$WORK/sweep-allocs.jsonl" >"$OUT/scaling-$DATE.jsonl"

say "budget overshoot: 10 us, 100 us, 1 ms, 4 ms"
: >"$OUT/budget-$DATE.jsonl"
for BUDGET in 10000 100000 1000000 4000000; do
    for r in $(seq "$REPS"); do
        timeout 600 "$BENCH" BUDGET "$BUDGET" >>"$OUT/budget-$DATE.jsonl"
    done
done

# ---- 4a. the machine's ceiling ------------------------------------------
# Two bare rings (bench/ceiling.cpp) on the peers' harness: how fast one
# producer can go here with a ring and nothing else, with and without the
# compare-and-swap that one order across producers costs.  Each round runs
# both and dfm-bench, so the three share the machine's mood.
say "ceiling: bare rings beside dfm-bench, B1 with one producer"
for variant in spsc rmw; do
    flag=
    [ "$variant" = rmw ] && flag=-DCEILING_RMW
    g++ -O2 -std=c++17 -Wall -pthread $flag \
        -DCEILING_NAME="\"ceiling-$variant\"" -I"$WORK/peers" \
        bench/ceiling.cpp -o "$WORK/ceiling-$variant" -ldl >&2
done
# SIDES times the library's two sides on one thread, for the same rounds.
: >"$WORK/ceiling.jsonl"
: >"$OUT/sides-$DATE.jsonl"
for r in $(seq "$REPS"); do
    for program in "$WORK/ceiling-spsc" "$WORK/ceiling-rmw" "$BENCH"; do
        timeout 600 "$program" B1 1 "$N" >>"$WORK/ceiling.jsonl"
    done
    timeout 600 "$BENCH" SIDES "$N" >>"$OUT/sides-$DATE.jsonl"
done
python3 "$WORK/peers/aggregate.py" "$WORK/ceiling.jsonl" \
    >"$OUT/ceiling-$DATE.jsonl"

# ---- 4b. instructions per call, counted by callgrind ----------------------
# Unlike the timings above, these counts are the same on every run of the
# same build, whatever else the machine is doing.  Valgrind 3.19 cannot
# read the DWARF 5 of the Swift runtime, so it loads a copy of the library
# without debug sections (same code).
COSTS=$OUT/instructions-$DATE.jsonl
COST_N=200000
say "instructions per call under callgrind"
mkdir -p "$WORK/vg"
objcopy --strip-debug build/lib/libdfmdispatch.so "$WORK/vg/libdfmdispatch.so"
inclusive() {  # inclusive FILE FUNCTION: its instructions, callees included
    callgrind_annotate --inclusive=yes "$1" 2>/dev/null |
        awk -v f=":$2 [" 'index($0, f) { gsub(",", "", $1); print $1; exit }'
}
: >"$COSTS"
for variant in direct shaped variadic queued; do
    out=$WORK/callgrind.$variant
    LD_LIBRARY_PATH=$WORK/vg valgrind --tool=callgrind \
        --callgrind-out-file="$out" "$BENCH" COST "$variant" "$COST_N" \
        >/dev/null 2>&1 || { echo "bench.sh: callgrind run failed" >&2; exit 1; }
    dispatch=$(inclusive "$out" dfm_runner_dispatch)
    pump=$(inclusive "$out" dfm_process_pending)
    printf '{"variant":"%s","tokens":%d,"dispatch":%s,"pump":%s}\n' \
        "$variant" "$COST_N" "${dispatch:-null}" "${pump:-null}" >>"$COSTS"
done

# ---- 5, 6. the report and the plot --------------------------------------
if ! python3 -c 'import matplotlib' 2>/dev/null; then
    say "installing matplotlib for the plot"
    python3 -m pip install --quiet matplotlib >&2 ||
        say "matplotlib could not be installed; trying gnuplot"
fi
python3 scripts/bench_report.py \
    --results "$RESULTS" \
    --scaling "$OUT/scaling-$DATE.jsonl" \
    --budget "$OUT/budget-$DATE.jsonl" \
    --instructions "$COSTS" \
    --ceiling "$OUT/ceiling-$DATE.jsonl" \
    --sides "$OUT/sides-$DATE.jsonl" \
    --command "$COMMAND" \
    --date "$(date -Is)" \
    --commit "$COMMIT" \
    --out docs/PERFORMANCE.md \
    --plot "$OUT/b1.png"
say "wrote $RESULTS, docs/PERFORMANCE.md and $OUT/b1.png"
