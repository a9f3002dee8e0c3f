#!/usr/bin/env bash
# Runs every test: installs missing system packages, builds, then the Swift test suite
# (which includes the h5py/numpy interop tests, made mandatory here).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export BWSSL_REQUIRE_PYTHON=1
swift build --build-tests
swift test --skip-build
