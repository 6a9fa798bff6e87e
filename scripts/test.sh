#!/usr/bin/env bash
# test.sh - every test of dfmdispatch, as `make test` runs it:
#
#   1. the Swift tests (swift test), and again under ThreadSanitizer
#   2. the C tests against the built library (Tests/c/run.sh), plain and
#      with AddressSanitizer + UBSan in the test programs
#   3. the shape unit test (the libffi shim, compiled directly)
#   4. the examples in their checking mode, plain and under valgrind memcheck
#   5. the reliability suite, short form (stress, faults, fuzzing)
#
# Ends with one line, "N passed, M failed", summed over everything, and
# exits non-zero on any failure.  DFM_SKIP_TSAN=1 skips the ThreadSanitizer
# run (it rebuilds the package and takes minutes on two cores).
set -u
cd "$(dirname "$0")/.."
root=$PWD
export PATH="$PATH:/opt/swift/usr/bin"
logs=$root/build/test-logs
mkdir -p "$logs"

passed=0
failed=0
failures=()

# tally NAME PASSED FAILED: adds one step's counts.
tally() {
    passed=$((passed + $2))
    failed=$((failed + $3))
    if [ "$3" -ne 0 ]; then failures+=("$1"); fi
    echo "== $1: $2 passed, $3 failed"
}

# counts_from_line LOG: the last "N passed, M failed" line of a log.
counts_from_line() {
    grep -E '^[0-9]+ passed, [0-9]+ failed' "$1" | tail -n 1 |
        sed -E 's/^([0-9]+) passed, ([0-9]+) failed.*/\1 \2/'
}

# run_counted NAME COMMAND...: a step that prints its own summary line; a
# non-zero exit without failures counts as one failure.
run_counted() {
    local name=$1 log=$logs/$1.log counts code
    shift
    "$@" >"$log" 2>&1
    code=$?
    counts=$(counts_from_line "$log")
    [ -n "$counts" ] || counts="0 0"
    set -- $counts
    if [ "$code" -ne 0 ] && [ "$2" -eq 0 ]; then
        set -- "$1" 1
        echo "$name exited with status $code; see $log"
        tail -n 20 "$log"
    fi
    [ "$2" -eq 0 ] || grep -E 'FAIL|failed|error' "$log" | head -n 20
    tally "$name" "$1" "$2"
}

# swift_tests NAME [FLAGS...]: swift test with an xunit report, counted
# per test case (Swift Testing and XCTest alike).
swift_tests() {
    local name=$1 log=$logs/$1.log xml=$logs/$1.xml counts code
    shift
    rm -f "$logs/$name"*.xml
    swift test "$@" --xunit-output "$xml" >"$log" 2>&1
    code=$?
    counts=$(python3 scripts/xunit_counts.py "$logs/$name"*.xml)
    set -- $counts
    if [ "$code" -ne 0 ] && [ "$2" -eq 0 ]; then
        set -- "$1" 1
        echo "$name exited with status $code; see $log"
        tail -n 30 "$log"
    fi
    [ "$2" -eq 0 ] || grep -E '✘|error:' "$log" | head -n 30
    tally "$name" "$1" "$2"
}

scripts/deps.sh || { echo "0 passed, 1 failed"; exit 1; }

swift_tests swift-tests
if [ "${DFM_SKIP_TSAN:-0}" != 1 ]; then
    swift_tests swift-tests-tsan --sanitize=thread
fi

if ! make -s lib examples >"$logs/build.log" 2>&1; then
    cat "$logs/build.log"
    tally build 0 1
else
    tally build 1 0
fi

run_counted library-dependencies Tests/c/abi/check_ldd.sh
run_counted library-tail-calls python3 Tests/c/abi/check_tailcalls.py build/lib/libdfmdispatch.so
run_counted library-layout python3 Tests/c/abi/check_layout.py build/lib/libdfmdispatch.so \
    scripts/hot-symbols.txt
run_counted c-tests Tests/c/run.sh
run_counted c-tests-asan env TEST_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer" \
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1 Tests/c/run.sh

mkdir -p build/tests
if cc -std=c99 -Wall -Wextra -pedantic -Werror -O1 -g -Iinclude -ISources/CDFMShim/include \
    Sources/CDFMShim/src/shaped*.c Tests/c/unit_shape.c -lffi -o build/tests/unit_shape \
    >"$logs/unit-shape-build.log" 2>&1; then
    run_counted unit-shape build/tests/unit_shape
else
    cat "$logs/unit-shape-build.log"
    tally unit-shape 0 1
fi

# Examples: each is one test, plain and under memcheck.  Valgrind 3.19
# cannot read the DWARF 5 of the Swift runtime, so memcheck loads a copy of
# the library without debug info (same code).
mkdir -p build/valgrind-lib
objcopy --strip-debug build/lib/libdfmdispatch.so build/valgrind-lib/libdfmdispatch.so
example_passed=0
example_failed=0
for example in build/examples/*; do
    name=$(basename "$example")
    if timeout 120 "$example" --check >"$logs/example-$name.log" 2>&1; then
        example_passed=$((example_passed + 1))
    else
        example_failed=$((example_failed + 1))
        echo "example $name failed:"; tail -n 20 "$logs/example-$name.log"
    fi
    if LD_LIBRARY_PATH=$root/build/valgrind-lib timeout 600 valgrind -q --error-exitcode=1 \
        --leak-check=full --errors-for-leak-kinds=definite,possible \
        --suppressions=Tests/c/valgrind.supp "$example" --check \
        >"$logs/valgrind-$name.log" 2>&1; then
        example_passed=$((example_passed + 1))
    else
        example_failed=$((example_failed + 1))
        echo "example $name failed under valgrind:"; tail -n 30 "$logs/valgrind-$name.log"
    fi
done
tally examples "$example_passed" "$example_failed"

# Reliability, short forms: stress with every runner configuration, fault
# injection, and a short fuzzing pass (make soak and make fuzz: long forms).
run_counted reliability scripts/reliability.sh --short

if [ ${#failures[@]} -gt 0 ]; then echo "failing steps: ${failures[*]}"; fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
