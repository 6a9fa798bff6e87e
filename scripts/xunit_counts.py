#!/usr/bin/env python3
"""Prints "PASSED FAILED" summed over xunit reports (swift test --xunit-output).

A test case fails when it has a <failure> or <error> child; skipped cases
count as neither.  A missing or unreadable report counts as one failure.
"""
import sys
import xml.etree.ElementTree as ElementTree


def main(paths):
    passed = failed = 0
    for path in paths:
        try:
            root = ElementTree.parse(path).getroot()
        except (OSError, ElementTree.ParseError):
            failed += 1
            continue
        for case in root.iter("testcase"):
            if case.find("skipped") is not None:
                continue
            if case.find("failure") is not None or case.find("error") is not None:
                failed += 1
            else:
                passed += 1
    if not paths:
        failed += 1
    print(passed, failed)


if __name__ == "__main__":
    main(sys.argv[1:])
