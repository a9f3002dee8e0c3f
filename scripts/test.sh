#!/usr/bin/env bash
# Runs every test: installs missing system packages, builds, then the Swift test suite
# (which includes the h5py/numpy interop tests, made mandatory here). Ends with one
# "N passed, N failed" line counted from XCTest's per-test results.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export BWSSL_REQUIRE_PYTHON=1
swift build --build-tests
# The MPI builds of bwtrain and bwanalyze (package trait MPI, their own build folder);
# DataParallelTests and DistributedAnalysisTests run them under mpirun against one process of the
# same build.
swift build --traits MPI --scratch-path .build/mpi --product bwtrain
swift build --traits MPI --scratch-path .build/mpi --product bwanalyze
export BWSSL_MPI_BWTRAIN="$PWD/.build/mpi/debug/bwtrain" BWSSL_MPI_BWANALYZE="$PWD/.build/mpi/debug/bwanalyze" BWSSL_REQUIRE_MPI=1
# The bwact Python package is installed with pip into a venv that sees Debian's numpy, h5py and
# torch (Debian refuses a system-wide pip install; its h5py is registered under another
# distribution name, hence --no-deps). The Swift suite runs the package's tests with it.
venv=.build/bwact-venv
[ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv --system-site-packages "$venv"
"$venv/bin/pip" install --quiet --no-build-isolation --no-index --no-deps --force-reinstall ./python
rm -rf python/build python/bwact.egg-info
export BWACT_PYTHON="$PWD/$venv/bin/python"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
swift test --skip-build --disable-swift-testing 2>&1 | tee "$log" || status=$?
passed=$(grep -cE "^Test Case '.*' passed" "$log" || true)
failed=$(grep -cE "^Test Case '.*' failed" "$log" || true)
skipped=$(grep -cE "^Test Case '.*' skipped" "$log" || true)
echo "tests: $passed passed, $failed failed, $skipped skipped"
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ]; then exit 1; fi
