#!/usr/bin/env bash
# check_symbols.sh - the functions libdfmdispatch.so exports are exactly
# the functions include/dfmdispatch.h declares (after DFM_API): nothing
# internal leaks out, nothing declared is missing.  Prints both
# differences and ends with "N passed, M failed".
#
#   Tests/c/abi/check_symbols.sh [path/to/libdfmdispatch.so]
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
library=${1:-$root/build/lib/libdfmdispatch.so}
header=$root/include/dfmdispatch.h
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ ! -f "$library" ]; then
    echo "check_symbols: no library at $library" >&2
    echo "0 passed, 1 failed"
    exit 1
fi

# Declared: join the header into one line without comments or preprocessor
# lines, cut it at ';', and take the first `dfm_name(` after DFM_API.
sed -e '/^[[:space:]]*#/d' "$header" \
    | tr '\n' ' ' \
    | sed -e 's:/\*[^*]*\*\+\([^/*][^*]*\*\+\)*/: :g' \
    | tr ';' '\n' \
    | grep 'DFM_API' \
    | sed -n -e 's/.*DFM_API[^(]*\<\(dfm_[a-z0-9_]*\)[[:space:]]*(.*/\1/p' \
    | sort -u >"$work/declared"

# Exported: defined dynamic symbols with global binding (nm prints local
# ones in lower case; `i` and `u` are global), version suffixes removed.
# Functions are compared with the header; a global data symbol is a leak
# too, since the header declares none.
nm -D --defined-only "$library" \
    | awk '$2 ~ /^[A-Ziu]$/ && $2 != "A" { print $3 }' \
    | sed -e 's/@.*//' \
    | sort -u >"$work/exported"

comm -23 "$work/exported" "$work/declared" >"$work/undeclared"
comm -13 "$work/exported" "$work/declared" >"$work/missing"

declared=$(wc -l <"$work/declared")
exported=$(wc -l <"$work/exported")
echo "check_symbols: $declared functions declared, $exported symbols exported"

status=0
if [ -s "$work/undeclared" ]; then
    echo "check_symbols: exported but not declared in the header:"
    sed -e 's/^/    /' "$work/undeclared"
    status=1
fi
if [ -s "$work/missing" ]; then
    echo "check_symbols: declared in the header but not exported:"
    sed -e 's/^/    /' "$work/missing"
    status=1
fi

if [ "$status" -eq 0 ]; then
    echo "1 passed, 0 failed"
else
    echo "0 passed, 1 failed"
fi
exit "$status"
