"""Shared tally for the numpy/scikit-learn check scripts in this folder.

`report(ok, what)` prints one "ok"/"FAIL" line per check; `finish(name)` prints the closing
"NAME: N passed, N failed" line and exits 1 on any failure.
"""
import sys

passed = failed = 0


def report(ok, what):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok    {what}")
    else:
        failed += 1
        print(f"FAIL  {what}")


def finish(name):
    print(f"{name}: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
