#!/usr/bin/env bash
# The main job: build release, train the paper's comparison (e2e, simultaneous and sequential at K = A,
# and simultaneous at K = B) on built-in synthetic video, dump activations, and write the report.
# Runs already complete are skipped; interrupted ones resume from their checkpoints.
#
#   PRESET=default (K = 4 and 6, 12 layers; the committed notebooks-export/ comes from this)
#   PRESET=quick   (K = 2 and 4, 4 layers; a few minutes; report under runs/quick/report)
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${PRESET:-default}
bash scripts/setup.sh
swift build -c release --product bwtrain
swift build -c release --product bwanalyze
train=.build/release/bwtrain
analyze=.build/release/bwanalyze
runs=${RUNS:-runs/$preset}
case "$preset" in
  default) ka=4; kb=6; report=notebooks-export/report; notebook=notebooks-export/bwssl-report.ipynb ;;
  quick)   ka=2; kb=4; report=$runs/report; notebook=$runs/report/report.ipynb ;;
  *) echo "reproduce: unknown PRESET '$preset' (default or quick)" >&2; exit 2 ;;
esac
mkdir -p "$runs"
start=$(date +%s)
for spec in "e2e $ka" "simultaneous $ka" "sequential $ka" "simultaneous $kb"; do
  set -- $spec
  regime=$1; k=$2
  name="$preset-$regime-k$k"
  echo "== $name" >&2
  $train --preset "$preset" --regime "$regime" --blocks "$k" --run "$name" --out "$runs/$name" --resume
done
echo "== report" >&2
$analyze report "$runs" --out "$report" --notebook "$notebook" --title "bwssl-suite reproduction ($preset preset)"
echo "reproduce: done in $(( $(date +%s) - start )) s; report in $report/index.html, notebook $notebook" >&2
