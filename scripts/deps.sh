#!/usr/bin/env bash
# deps.sh - makes sure the system packages dfmdispatch needs are present.
#
# Installs them with apt-get when run as root on Debian; otherwise names
# what is missing and how to install it, and fails.  Needs: a C compiler,
# libffi-dev (the shaped callbacks call through libffi), valgrind (memcheck
# over the examples), python3 (the test tally), objdump (the tail-call check
# of the library), libstdc++.a (linked into the library; it comes with g++),
# and Swift 6.3 on PATH or in /opt/swift, with its lld.
set -u

missing=()
have_header() { echo "#include <$1>" | cc -E -x c - >/dev/null 2>&1; }

command -v cc >/dev/null 2>&1 || missing+=(gcc)
command -v make >/dev/null 2>&1 || missing+=(make)
have_header ffi.h || missing+=(libffi-dev)
command -v valgrind >/dev/null 2>&1 || missing+=(valgrind)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
command -v objdump >/dev/null 2>&1 || missing+=(binutils)
# cc prints the bare name when it has no such file.
case "$(cc -print-file-name=libstdc++.a 2>/dev/null)" in
    /*) ;;
    *) missing+=(g++) ;;
esac

if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "deps: installing ${missing[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2 &&
            apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
            { echo "deps: apt-get install ${missing[*]} failed" >&2; exit 1; }
    else
        echo "deps: missing packages: ${missing[*]}" >&2
        echo "deps: install them first, e.g.: sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
fi

if ! command -v swift >/dev/null 2>&1 && [ ! -x /opt/swift/usr/bin/swift ]; then
    echo "deps: Swift 6.3 is needed: put it on PATH (or install it in /opt/swift)" >&2
    exit 1
fi
# The library is linked with the toolchain's lld (see the Makefile).
swift_bin=$(dirname "$(readlink -f "$(command -v swift 2>/dev/null ||
    echo /opt/swift/usr/bin/swift)")")
if [ ! -x "$swift_bin/ld.lld" ] && ! command -v ld.lld >/dev/null 2>&1; then
    echo "deps: ld.lld is missing: the Swift toolchain ships it beside swift" >&2
    exit 1
fi
