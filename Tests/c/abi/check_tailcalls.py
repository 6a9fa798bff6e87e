#!/usr/bin/env python3
"""check_tailcalls.py - no function a host calls ends in a tail call to a
synchronisation function.

The C stress tests run under ThreadSanitizer against the uninstrumented
library, whose own calls the sanitizer ignores (`called_from_lib`).  It
decides whose call it is by the return address.  If an entry point the host
called ends in a chain of tail calls that reaches `pthread_mutex_unlock`,
the return address is the host's: the sanitizer sees an unlock without the
lock before it and reports a bug that is not there.  This check follows the
direct `jmp`s from every `dfm_` entry point and from the work function the
library hands to a host's executor, and fails if one reaches such a call.

Usage: check_tailcalls.py LIBRARY.  Ends with "N passed, M failed".
"""
import re
import subprocess
import sys

# What ThreadSanitizer models as synchronisation.
WATCHED = re.compile(r"^(pthread_|sem_|eventfd$|read$|write$|close$)")
FUNCTION = re.compile(r"^[0-9a-f]+ <(?P<name>[^>]+)>:$")
# A jump to the start of a symbol (not to an offset inside one).
JUMP = re.compile(r"\sjmp\s+[0-9a-f]+ <(?P<target>[^+>]+)>$")
# Functions the host calls through a pointer the library gave it.
HANDED_OUT = ("runExecutorWorkItem",)


def tail_jumps(library):
    listing = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", library],
        check=True, capture_output=True, text=True).stdout
    jumps = {}
    current = None
    for line in listing.splitlines():
        match = FUNCTION.match(line)
        if match:
            current = match.group("name")
            jumps.setdefault(current, set())
            continue
        match = JUMP.search(line)
        if match and current is not None:
            target = match.group("target")
            if target != current:
                jumps[current].add(target)
    return jumps


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[-1])
        return 2
    jumps = tail_jumps(sys.argv[1])
    entries = [name for name in jumps
               if name.startswith("dfm_")
               or any(part in name for part in HANDED_OUT)]
    if not any(name.startswith("dfm_") for name in entries):
        print("check_tailcalls: found no dfm_ functions to follow")
        print("0 passed, 1 failed")
        return 1

    failures = []
    for entry in entries:
        seen = {entry}
        path = {entry: [entry]}
        todo = [entry]
        while todo:
            name = todo.pop()
            for target in jumps.get(name, ()):
                if target.endswith("@plt"):
                    if WATCHED.match(target[:-4]):
                        failures.append(path[name] + [target])
                    continue
                if target not in seen:
                    seen.add(target)
                    path[target] = path[name] + [target]
                    todo.append(target)

    for chain in failures:
        print("check_tailcalls: a host call ends in a tail call to "
              + chain[-1] + ":")
        print("    " + "\n    -> ".join(chain))
    print(f"check_tailcalls: followed the tail calls of {len(entries)} "
          "entry points")
    if failures:
        print(f"0 passed, {len(failures)} failed")
        return 1
    print(f"{len(entries)} passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
