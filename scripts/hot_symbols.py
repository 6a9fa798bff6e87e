#!/usr/bin/env python3
"""Writes scripts/hot-symbols.txt: the library's functions that a host runs.

The Makefile links libdfmdispatch.so with lld and this list as its symbol
ordering file, so that the functions a process runs sit together at the
start of .text.  The kernel maps a shared library's code 64 KiB at a time
around each page that is run (fault-around), so code spread over the 4 MiB
of the statically linked Swift runtime costs RSS in every host; packed
together it costs less (docs/KNOWN_ISSUES.md has the figures).

The list is what callgrind sees run in the library over the examples and
the benchmark's workloads, sorted by name.  Rerun after changes that
rename or add hot functions; Tests/c/abi/check_layout.py fails when the
list has drifted far enough to spread the code again.

    make lib examples && cc ... -o build/bench/dfm-bench   (scripts/bench.sh)
    python3 scripts/hot_symbols.py
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "scripts", "hot-symbols.txt")
RUNS = [
    ["build/examples/kit_loop", "--check"],
    ["build/examples/executor", "--check"],
    ["build/examples/direct", "--check"],
    ["build/examples/shaped", "--check"],
    ["build/bench/dfm-bench", "B1", "2", "20000"],
    ["build/bench/dfm-bench", "B2", "2000"],
    ["build/bench/dfm-bench", "B3", "20000"],
]
NAME = re.compile(r"^(c?fn|c?ob)=\((\d+)\)(?: (.*))?$")


def functions_run(profile):
    """Names of the functions run in libdfmdispatch.so, first run first."""
    objects, functions, current, seen = {}, {}, None, []
    with open(profile) as f:
        for line in f:
            m = NAME.match(line.rstrip("\n"))
            if not m:
                continue
            kind, key, name = m.groups()
            table = objects if kind.endswith("ob") else functions
            if name:
                table[key] = name.strip()
            if kind == "ob":
                current = objects.get(key, "")
            elif kind == "fn" and "libdfmdispatch" in (current or ""):
                symbol = functions.get(key)
                if symbol and not symbol.startswith("0x"):
                    seen.append(symbol)
    return seen


def main():
    if not shutil.which("valgrind"):
        sys.exit("hot_symbols.py: valgrind is needed")
    work = tempfile.mkdtemp(prefix="dfm-hot.")
    try:
        # Valgrind 3.19 cannot read the Swift runtime's DWARF 5.
        subprocess.run(["objcopy", "--strip-debug",
                        os.path.join(ROOT, "build/lib/libdfmdispatch.so"),
                        os.path.join(work, "libdfmdispatch.so")], check=True)
        env = dict(os.environ, LD_LIBRARY_PATH=work)
        order, known = [], set()
        for index, command in enumerate(RUNS):
            profile = os.path.join(work, "callgrind.%d" % index)
            subprocess.run(["valgrind", "--tool=callgrind", "--demangle=no",
                            "--callgrind-out-file=" + profile] + command,
                           cwd=ROOT, env=env, check=True,
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            for symbol in functions_run(profile):
                if symbol not in known:
                    known.add(symbol)
                    order.append(symbol)
    finally:
        shutil.rmtree(work)
    # Sorted, so that a rerun changes the file only where the code did (the
    # order inside the hot region does not change what it costs).
    with open(OUT, "w") as f:
        f.write("".join(symbol + "\n" for symbol in sorted(order)))
    print("hot_symbols.py: %d functions in %s" % (len(order),
                                                  os.path.relpath(OUT)))


if __name__ == "__main__":
    main()
