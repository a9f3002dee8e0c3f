#!/usr/bin/env bash
# The main job on built-in defaults (for now): build release, regenerate the fixtures into a
# temporary directory, validate and inspect them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release --product bwanalyze
bin=.build/release/bwanalyze
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
$bin fixtures --out "$out"
$bin validate "$out"/*.h5
$bin inspect "$out"/*.h5
