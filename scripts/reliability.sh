#!/usr/bin/env bash
# reliability.sh - the reliability suite of dfmdispatch: stress, fault
# injection and fuzzing, against the built library (build/lib, `make lib`).
#
#   scripts/reliability.sh --short          what `make test` runs (about two
#                                           minutes on two cores):
#                                           - stress, 8 x 50,000 tokens per
#                                             configuration
#                                           - stress and faults built with
#                                             ThreadSanitizer, small sizes
#                                           - faults
#                                           - faults --quick under valgrind
#                                           - each fuzzer for 15 s
#   scripts/reliability.sh --full           stress, 8 x 1,000,000 tokens per
#                                           configuration, and faults
#   scripts/reliability.sh --soak SECONDS   stress in rounds for SECONDS
#   scripts/reliability.sh --fuzz SECONDS   each fuzzer for SECONDS
#
# Every mode ends with one line, "N passed, M failed", summed over its
# steps, and exits non-zero on any failure: a failed check, a build error,
# a crash, a sanitizer or valgrind report, a timeout, a fuzzer finding.
#
# The programs run against a private copy of the library
# (build/reliability/lib), so a `make lib` during a long run cannot pull
# the code out from under them.  ThreadSanitizer instruments the test
# programs only: the library is Swift built without it, so TSan checks the
# programs' own synchronization and the calls the library makes into them,
# not the library's internals (its interceptors are ignored inside the
# library, whose atomics TSan cannot see).  Fuzzer crashes are written to
# build/reliability/artifacts/.
#
# Environment:
#   CC            compiler of the plain programs (cc)
#   TSAN_CC       compiler of the ThreadSanitizer builds (gcc)
#   FUZZ_CC       clang with libFuzzer (default: the Swift toolchain's)
#   DFM_RELIABILITY_NO_VALGRIND=1   skip the valgrind step
set -u
cd "$(dirname "$0")/.."
root=$PWD
out=$root/build/reliability
lib=$out/lib
logs=$out/logs
cc=${CC:-cc}
tsan_cc=${TSAN_CC:-gcc}
# The Swift toolchain's clang ships libFuzzer and lld; Debian's clang
# needs its libclang-rt package for -fsanitize=fuzzer.
swift_bin=$(dirname "$(readlink -f "$(command -v swift 2>/dev/null ||
    echo /opt/swift/usr/bin/swift)")")
if [ -n "${FUZZ_CC:-}" ]; then
    fuzz_cc=$FUZZ_CC
elif [ -x "$swift_bin/clang" ]; then
    fuzz_cc=$swift_bin/clang
elif [ -x /opt/swift/usr/bin/clang ]; then
    fuzz_cc=/opt/swift/usr/bin/clang
else
    fuzz_cc=clang
fi

mode=
seconds=0
case "${1:-}" in
    --short|--full) mode=${1#--} ;;
    --soak|--fuzz)
        mode=${1#--}
        seconds=${2:-}
        if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
            echo "usage: $0 $1 SECONDS"
            exit 2
        fi
        ;;
    *)
        echo "usage: $0 --short | --full | --soak SECONDS | --fuzz SECONDS"
        exit 2
        ;;
esac

passed=0
failed=0
failures=()
fuzzed_inputs=0

# tally NAME PASSED FAILED
tally() {
    passed=$((passed + $2))
    failed=$((failed + $3))
    if [ "$3" -ne 0 ]; then failures+=("$1"); fi
    echo "== $1: $2 passed, $3 failed"
}

# run_counted NAME TIMEOUT COMMAND...: a program that ends with "N passed,
# M failed"; a non-zero exit without failures counts as one failure.
run_counted() {
    local name=$1 limit=$2 log=$logs/$1.log line p=0 f=0 code
    shift 2
    timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1 </dev/null
    code=$?
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
    if [ -n "$line" ]; then
        p=${line%% passed*}
        f=${line#*passed, }
        f=${f%% failed*}
    fi
    grep -vE '^[0-9]+ passed, [0-9]+ failed$' "$log" | grep -E \
        '^(stress|faults|manual|direct|executor|soak|total|bad tokens|configuration|-- round|faults injected)' \
        || true
    if [ "$code" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
        if [ "$code" -eq 124 ] || [ "$code" -eq 137 ]; then
            echo "$name: timed out after ${limit}s"
        else
            echo "$name: exited with status $code"
        fi
    fi
    if [ "$f" -ne 0 ]; then
        grep -E 'FAILED|got |expected|ERROR|WARNING|SUMMARY|==[0-9]+==' \
            "$log" | head -n 40
        echo "(full log: $log)"
    fi
    tally "$name" "$p" "$f"
}

# build NAME COMMAND...: one step; a failed build is one failure.
build() {
    local name=$1 log=$logs/build-$1.log
    shift
    if "$@" >"$log" 2>&1; then
        return 0
    fi
    cat "$log"
    tally "build $name" 0 1
    return 1
}

# fuzz NAME SECONDS [RUNS]: runs a fuzzer on a fresh copy of its corpus.
fuzz() {
    local name=$1 limit=$2 runs=${3:--1} log=$logs/fuzz-$1.log corpus code
    local done_line inputs
    corpus=$out/corpus/$name
    rm -rf "$corpus"
    mkdir -p "$corpus" "$out/artifacts"
    cp "$root/Tests/fuzz/corpus/$name/"* "$corpus/"
    timeout --kill-after=10 $((limit + 120)) "$out/fuzz_$name" \
        -max_total_time="$limit" -runs="$runs" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$out/artifacts/$name-" "$corpus" \
        >"$log" 2>&1 </dev/null
    code=$?
    done_line=$(grep -E '^Done [0-9]+ runs' "$log" | tail -n 1)
    inputs=$(grep -E '^stat::number_of_executed_units:' "$log" |
        awk '{print $2}' | tail -n 1)
    [ -n "$inputs" ] || inputs=0
    fuzzed_inputs=$((fuzzed_inputs + inputs))
    echo "fuzz_$name: $inputs inputs in ${limit}s at most" \
        "(${done_line:-no final line}); corpus $(ls "$corpus" | wc -l) files"
    if [ "$code" -ne 0 ]; then
        grep -E 'ERROR|fuzz_|SUMMARY|artifact|Test unit' "$log" | head -n 30
        echo "(full log: $log)"
        tally "fuzz_$name" 0 1
    else
        tally "fuzz_$name" 1 0
    fi
}

mkdir -p "$out" "$logs"
if [ ! -f "$root/build/lib/libdfmdispatch.so" ]; then
    echo "reliability.sh: build/lib/libdfmdispatch.so is missing; run 'make lib'"
    echo "0 passed, 1 failed"
    exit 1
fi

# A copy with a new inode: `make lib` rewrites build/lib's file in place,
# and a program still mapped to it would die with SIGBUS.
mkdir -p "$lib"
rm -f "$lib/libdfmdispatch.so"
cp "$root/build/lib/libdfmdispatch.so" "$lib/libdfmdispatch.so"

cflags=(-std=c99 -Wall -Wextra -pedantic -Werror -g -Iinclude -ITests/c)
link=(-L"$lib" -ldfmdispatch -Wl,-rpath,"$lib" -pthread)

build_stress_and_faults() {
    build stress "$cc" "${cflags[@]}" -O2 -o "$out/stress" \
        Tests/stress/stress.c "${link[@]}" || return 1
    build faults "$cc" "${cflags[@]}" -O2 -o "$out/faults" \
        Tests/stress/faults.c "${link[@]}" || return 1
}

build_fuzzers() {
    # The shape fuzzer also compiles the parser's source, instrumented, so
    # that libFuzzer sees its branches (the library has no coverage).
    build fuzz_shape "$fuzz_cc" -g -O1 -fsanitize=fuzzer,address \
        -fuse-ld=lld -DDFM_FUZZ_WITH_SHIM -Iinclude \
        -ISources/CDFMShim/include -o "$out/fuzz_shape" \
        Tests/fuzz/fuzz_shape.c Sources/CDFMShim/src/shaped*.c -lffi \
        -L"$lib" -ldfmdispatch -Wl,-rpath,"$lib" || return 1
    build fuzz_tokens "$fuzz_cc" -g -O1 -fsanitize=fuzzer,address \
        -fuse-ld=lld -Iinclude -o "$out/fuzz_tokens" \
        Tests/fuzz/fuzz_tokens.c -L"$lib" -ldfmdispatch \
        -Wl,-rpath,"$lib" || return 1
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}

case "$mode" in
short)
    if build_stress_and_faults; then
        run_counted stress 300 "$out/stress" --short
        run_counted faults 300 "$out/faults"
    fi

    printf 'called_from_lib:libdfmdispatch.so\n' >"$out/tsan.supp"
    if build stress-tsan "$tsan_cc" "${cflags[@]}" -O1 -fsanitize=thread \
            -o "$out/stress-tsan" Tests/stress/stress.c "${link[@]}" &&
       build faults-tsan "$tsan_cc" "${cflags[@]}" -O1 -fsanitize=thread \
            -o "$out/faults-tsan" Tests/stress/faults.c "${link[@]}"; then
        export TSAN_OPTIONS="halt_on_error=1 exitcode=66 suppressions=$out/tsan.supp"
        run_counted stress-tsan 600 "$out/stress-tsan" --producers 4 \
            --tokens 5000
        run_counted faults-tsan 600 "$out/faults-tsan" --quick
        unset TSAN_OPTIONS
    fi

    # Valgrind 3.19 cannot read the library's DWARF 5: it gets a copy
    # without debug sections (same code).
    if [ "${DFM_RELIABILITY_NO_VALGRIND:-0}" != 1 ] && [ -x "$out/faults" ] &&
       command -v valgrind >/dev/null; then
        mkdir -p "$out/valgrind-lib"
        objcopy --strip-debug "$lib/libdfmdispatch.so" \
            "$out/valgrind-lib/libdfmdispatch.so"
        run_counted faults-valgrind 900 \
            env LD_LIBRARY_PATH="$out/valgrind-lib" valgrind -q --error-exitcode=99 --leak-check=full \
            --errors-for-leak-kinds=definite,possible \
            --suppressions=Tests/c/valgrind.supp "$out/faults" --quick
    fi

    if build_fuzzers; then
        fuzz shape 15 1000000
        fuzz tokens 15 1000000
        echo "inputs fuzzed: $fuzzed_inputs"
    fi
    ;;
full)
    if build_stress_and_faults; then
        run_counted stress 3600 "$out/stress"
        run_counted faults 600 "$out/faults"
    fi
    ;;
soak)
    if build_stress_and_faults; then
        run_counted stress-soak $((seconds + 1800)) "$out/stress" \
            --soak "$seconds"
    fi
    ;;
fuzz)
    if build_fuzzers; then
        fuzz shape "$seconds"
        fuzz tokens "$seconds"
        echo "inputs fuzzed: $fuzzed_inputs"
    fi
    ;;
esac

if [ "${#failures[@]}" -gt 0 ]; then
    echo "failing: ${failures[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
