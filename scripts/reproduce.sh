#!/usr/bin/env bash
# The main job: build release, train the paper's comparison (e2e, simultaneous and sequential at K = A,
# and simultaneous at K = B) on built-in synthetic video, dump activations, and write the report.
# Runs already complete are skipped; interrupted ones resume from their checkpoints.
#
#   PRESET=default (K = 4 and 6, 12 layers; the committed notebooks-export/ comes from this)
#   PRESET=quick   (K = 2 and 4, 4 layers; a few minutes; report under runs/quick/report)
#   SEEDS="0 1 2"  (the training seeds, default 0 1 2; other seeds report under runs/<preset>/report-seeds-*)
#   REPORT=dir NOTEBOOK=file  (override where the report and the notebook go)
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${PRESET:-default}
# Training seeds: every regime is trained once per seed; the report treats the runs of one (regime, K)
# as replicates (docs/report.md). The first seed also dumps the intermediate steps (learning dynamics);
# the others dump the final step only.
default_seeds="0 1 2"
seeds=${SEEDS:-$default_seeds}
seeds=$(echo $seeds)
bash scripts/setup.sh
swift build -c release --product bwtrain
swift build -c release --product bwanalyze
train=.build/release/bwtrain
analyze=.build/release/bwanalyze
runs=${RUNS:-runs/$preset}
case "$preset" in
  default) ka=4; kb=6; steps=1600; report=notebooks-export/report; notebook=notebooks-export/bwssl-report.ipynb ;;
  quick)   ka=2; kb=4; steps=120; report=$runs/report; notebook=$runs/report/report.ipynb ;;
  *) echo "reproduce: unknown PRESET '$preset' (default or quick)" >&2; exit 2 ;;
esac
for s in $seeds; do
  case "$s" in ''|*[!0-9]*) echo "reproduce: SEEDS must be non-negative integers, got '$s'" >&2; exit 2 ;; esac
done
# Other seeds than the default ones report beside the runs, leaving the committed export alone.
if [ "$seeds" != "$default_seeds" ]; then
  report=$runs/report-seeds-${seeds// /-}; notebook=$report/report.ipynb
fi
report=${REPORT:-$report}
notebook=${NOTEBOOK:-$notebook}
mkdir -p "$runs"
start=$(date +%s)
dirs=()
first=1
for seed in $seeds; do
  dumps=()
  [ "$first" = 1 ] || dumps=(--dump-steps "$steps")
  for spec in "e2e $ka" "simultaneous $ka" "sequential $ka" "simultaneous $kb"; do
    set -- $spec
    regime=$1; k=$2
    name="$preset-$regime-k$k-s$seed"
    echo "== $name" >&2
    $train --preset "$preset" --regime "$regime" --blocks "$k" --seed "$seed" --run "$name" --out "$runs/$name" --resume "${dumps[@]}"
    dirs+=("$runs/$name")
  done
  first=0
done
echo "== report (seeds: $seeds)" >&2
$analyze report "${dirs[@]}" --out "$report" --notebook "$notebook" --title "bwssl-suite reproduction ($preset preset, seeds $seeds)"
echo "reproduce: done in $(( $(date +%s) - start )) s; report in $report/index.html, notebook $notebook" >&2
