#!/usr/bin/env python3
"""check_layout.py - the code a host runs sits together in the library.

The kernel maps a library's code into a process 64 KiB at a time around
each page the process runs, so a host's RSS grows with the number of 64 KiB
windows its hot functions touch, not with their size.  The Makefile links
with scripts/hot-symbols.txt as lld's symbol order to pack them.  This
check counts those windows in the built library and fails when they are
spread as an unordered link spreads them, which happens when the link
stops using the list or the list no longer names the library's functions
(then rerun scripts/hot_symbols.py).

Usage: check_layout.py LIBRARY HOT_SYMBOLS.  Ends with "N passed, M failed".
"""
import subprocess
import sys

WINDOW = 1 << 16
# An ordered link puts the ~500 listed functions (about 190 KB) in 18 to
# 20 windows: some of them live in sections that hold many other functions
# (the Swift runtime's objects are not all built with one section per
# function).  An unordered link spreads them over 35.
MOST_WINDOWS = 24
# A list that has drifted from the code names fewer of its functions.
LEAST_FOUND = 0.9


def main(library, hot_symbols):
    with open(hot_symbols) as f:
        wanted = {line.strip() for line in f if line.strip()}
    listing = subprocess.run(["nm", "-S", "--defined-only", library],
                             check=True, capture_output=True,
                             text=True).stdout
    found = {}
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[2] in "tTwW" and fields[3] in wanted:
            found[fields[3]] = (int(fields[0], 16), int(fields[1], 16))
    windows = set()
    for address, size in found.values():
        last = address + max(size, 1) - 1
        windows.update(range(address // WINDOW, last // WINDOW + 1))

    passed = failed = 0
    share = len(found) / max(len(wanted), 1)
    if share >= LEAST_FOUND:
        passed += 1
    else:
        failed += 1
        print("FAIL: the library defines %d of the %d functions in %s; "
              "rerun scripts/hot_symbols.py" % (len(found), len(wanted),
                                                hot_symbols))
    if len(windows) <= MOST_WINDOWS:
        passed += 1
    else:
        failed += 1
        print("FAIL: the listed functions span %d windows of 64 KiB (at "
              "most %d): is the library linked with lld and the symbol "
              "order?" % (len(windows), MOST_WINDOWS))
    print("%d functions of %d found, in %d windows of 64 KiB"
          % (len(found), len(wanted), len(windows)))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: check_layout.py LIBRARY HOT_SYMBOLS")
    sys.exit(main(sys.argv[1], sys.argv[2]))
