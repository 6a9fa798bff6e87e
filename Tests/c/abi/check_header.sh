#!/usr/bin/env bash
# check_header.sh - include/dfmdispatch.h compiles as C99 and as C++, with
# -Wall -Wextra -pedantic -Werror, and keeps the numbers API.md pins
# (Tests/c/abi/header.c).  Ends with "N passed, M failed".
#
#   Tests/c/abi/check_header.sh          CC and CXX may name the compilers
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
cc=${CC:-cc}
cxx=${CXX:-c++}
warnings=(-Wall -Wextra -pedantic -Werror)
passed=0
failed=0

check() {
    local what=$1
    shift
    if "$@" -I"$root/include" -c "$here/header.c" -o /dev/null; then
        passed=$((passed + 1))
    else
        echo "check_header: the header does not compile as $what" >&2
        failed=$((failed + 1))
    fi
}

check "C99" "$cc" -std=c99 "${warnings[@]}"
check "C11" "$cc" -std=c11 "${warnings[@]}"
check "C++11" "$cxx" -x c++ -std=c++11 "${warnings[@]}"
check "C++17" "$cxx" -x c++ -std=c++17 "${warnings[@]}"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
