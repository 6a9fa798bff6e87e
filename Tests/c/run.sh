#!/usr/bin/env bash
# run.sh - build every Tests/c/test_*.c (and test_*.cpp, a C++ host)
# against build/lib/libdfmdispatch.so, run each one, run the header and symbol checks of Tests/c/abi, and end
# with one line "N passed, M failed" that sums them all.  Exits non-zero
# on any failure (a failed check, a build error, a crash, a timeout).
#
#   Tests/c/run.sh [test_name ...]     all programs, or only those named
#
# Environment:
#   CC, CXX          compilers (cc, c++)
#   TEST_CFLAGS      extra flags for the test programs, e.g.
#                    "-fsanitize=address,undefined"
#   TEST_WRAPPER     a command to run each program under, e.g.
#                    "valgrind --error-exitcode=1 --leak-check=full";
#                    a valgrind wrapper gets Tests/c/valgrind.supp added
#   TEST_TIMEOUT     seconds per program (60)
#   DFM_TEST_TOKENS, DFM_TEST_PRODUCERS   sizes of test_concurrency
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
libdir=$root/build/lib
outdir=$root/build/tests/c
cc=${CC:-cc}
cxx=${CXX:-c++}
timeout_seconds=${TEST_TIMEOUT:-60}
read -r -a extra_cflags <<<"${TEST_CFLAGS:-}"
read -r -a wrapper <<<"${TEST_WRAPPER:-}"

total_passed=0
total_failed=0
broken=()

# Adds the "N passed, M failed" line of a log to the totals; a program
# that failed without saying so (crash, timeout, sanitizer, valgrind)
# counts as one more failure.
add_result() {
    local name=$1 log=$2 code=$3
    local line passed=0 failed=0

    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
    if [ -n "$line" ]; then
        passed=${line%% passed*}
        failed=${line#*passed, }
        failed=${failed%% failed*}
    fi
    if [ "$code" -ne 0 ] && [ "$failed" -eq 0 ]; then
        failed=1
        if [ "$code" -eq 124 ] || [ "$code" -eq 137 ]; then
            echo "$name: timed out after ${timeout_seconds}s"
        elif [ -z "$line" ]; then
            echo "$name: exited with status $code before its summary"
        else
            echo "$name: exited with status $code after its summary"
        fi
    fi
    total_passed=$((total_passed + passed))
    total_failed=$((total_failed + failed))
    if [ "$failed" -ne 0 ]; then
        broken+=("$name")
    fi
}

if [ ! -f "$libdir/libdfmdispatch.so" ]; then
    echo "run.sh: $libdir/libdfmdispatch.so is missing; run 'make lib'"
    echo "0 passed, 1 failed"
    exit 1
fi

mkdir -p "$outdir"

# Sanitizers (TEST_CFLAGS) must fail the program, not only print.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}

# Under valgrind: add the suppressions of the Swift runtime's one-time
# allocations, and run against a copy of the library without its debug
# sections, which valgrind 3.19 cannot read (DWARF 5 from the Swift
# toolchain's clang: "debuginfo reader: Possibly corrupted debuginfo
# file").  Same code, same symbols; the programs' RUNPATH yields to
# LD_LIBRARY_PATH.
run_env=()
if [ "${#wrapper[@]}" -gt 0 ] && [[ "${wrapper[0]}" == *valgrind ]]; then
    if [ -f "$here/valgrind.supp" ]; then
        wrapper=("${wrapper[0]}" "--suppressions=$here/valgrind.supp"
                 "${wrapper[@]:1}")
    fi
    mkdir -p "$outdir/valgrind-lib"
    if objcopy --strip-debug "$libdir/libdfmdispatch.so" \
        "$outdir/valgrind-lib/libdfmdispatch.so"; then
        search=$outdir/valgrind-lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
        run_env=("LD_LIBRARY_PATH=$search")
    fi
fi

if [ "$#" -gt 0 ]; then
    sources=()
    for name in "$@"; do
        name=${name%.c}
        name=${name%.cpp}
        if [ -f "$here/$name.cpp" ]; then
            sources+=("$here/$name.cpp")
        else
            sources+=("$here/$name.c")
        fi
    done
else
    sources=("$here"/test_*.c "$here"/test_*.cpp)
fi

for source in "${sources[@]}"; do
    name=$(basename "$source")
    name=${name%.*}
    binary=$outdir/$name
    log=$outdir/$name.log

    echo "== $name"
    if [[ "$source" == *.cpp ]]; then
        compiler=("$cxx" -std=c++17)
    else
        compiler=("$cc" -std=c99)
    fi
    if ! "${compiler[@]}" -Wall -Wextra -pedantic -Werror -O1 -g \
        "${extra_cflags[@]}" -I"$root/include" -o "$binary" "$source" \
        -L"$libdir" -ldfmdispatch -Wl,-rpath,"$libdir" -pthread 2>"$log"
    then
        cat "$log"
        echo "$name: does not build"
        add_result "$name" /dev/null 1
        continue
    fi

    env "${run_env[@]}" timeout --kill-after=10 "$timeout_seconds" \
        "${wrapper[@]}" "$binary" >"$log" 2>&1 </dev/null
    code=$?
    cat "$log"
    add_result "$name" "$log" "$code"
done

if [ "$#" -eq 0 ]; then
    for script in "$here"/abi/check_*.sh; do
        name=abi/$(basename "$script" .sh)
        log=$outdir/$(basename "$script" .sh).log

        echo "== $name"
        bash "$script" >"$log" 2>&1 </dev/null
        code=$?
        cat "$log"
        add_result "$name" "$log" "$code"
    done
fi

if [ "${#broken[@]}" -gt 0 ]; then
    echo "failing: ${broken[*]}"
fi
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
