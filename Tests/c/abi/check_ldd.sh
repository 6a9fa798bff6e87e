#!/usr/bin/env bash
# check_ldd.sh - libdfmdispatch.so is self-contained: the Swift runtime and
# the parts of libstdc++ it calls are linked in statically, so a host
# machine needs only libc, libm, libgcc_s and libffi (and the dynamic
# loader), and a C host does not load libstdc++.  Ends with "N passed, M
# failed".
set -u
root=$(cd "$(dirname "$0")/../../.." && pwd)
lib=$root/build/lib/libdfmdispatch.so
allowed='^(linux-vdso|libc|libm|libgcc_s|libffi|ld-linux[-a-z0-9_]*)\.so'

unexpected=$(ldd "$lib" | awk '{print $1}' | sed 's|.*/||' |
    grep -Ev "$allowed" || true)
if [ -z "$unexpected" ]; then
    echo "check_ldd: $(ldd "$lib" | wc -l) dependencies, all expected"
    echo "1 passed, 0 failed"
else
    echo "check_ldd: unexpected dependencies of $lib:"
    echo "$unexpected"
    echo "0 passed, 1 failed"
    exit 1
fi
