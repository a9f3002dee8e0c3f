#!/usr/bin/env bash
# One run of the depth-wise study (docs/depth-study.md): trains one configuration, dumps the final
# step's probe sets, and prints the numbers the study compares: linear-probe accuracy (mean over
# targets, and the best motion / relational target) at depth 1 and L, retrieval mAP at L, patch
# similarity per block end, and linear CKA(depth 0, depth L).
#
#   scripts/study.sh NAME [bwtrain options...]      e.g. scripts/study.sh e2e-base --regime e2e --seed 0
# Results in runs/study/NAME/ (summary.txt beside the dumps). Needs a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1; shift
out=runs/study/$name
train=.build/release/bwtrain
analyze=.build/release/bwanalyze
mkdir -p "$out"
$train --quiet --out "$out" --run "$name" --occluded-probe-set "" "$@"
steps=$(python3 -c "import json,sys; print(json.load(open('$out/config.json'))['steps'])")
summary=$out/summary.txt
: > "$summary"
for set in double-gratings actions gratings; do
  f=$(printf "%s/%s-step%06d.h5" "$out" "$set" "$steps")
  [ -f "$f" ] || continue
  $analyze probe "$f" --depth layers --format csv --quiet -o "$out/probe-$set.csv"
  $analyze tokens "$f" --depth layers --format csv --quiet -o "$out/tokens-$set.csv"
  $analyze cka "$f" --depth layers --pairs all --format csv --quiet -o "$out/cka-$set.csv"
  $analyze retrieval "$f" --depth layers --format csv --quiet -o "$out/retrieval-$set.csv"
done
python3 - "$out" "$name" >> "$summary" <<'PY'
import csv, sys, os, collections
out, name = sys.argv[1], sys.argv[2]
def rows(path):
    return list(csv.DictReader(open(path))) if os.path.exists(path) else []
for s in ["double-gratings", "actions", "gratings"]:
    p = rows(f"{out}/probe-{s}.csv")
    if not p: continue
    depths = sorted({int(r["depth"]) for r in p})
    L = depths[-1]
    mean = {int(r["depth"]): float(r["value"]) for r in p if r["metric"] == "probe_accuracy_mean_over_targets"}
    per = collections.defaultdict(dict)
    for r in p:
        if r["metric"] == "probe_accuracy": per[r["target"]][int(r["depth"])] = float(r["value"])
    tok = rows(f"{out}/tokens-{s}.csv")
    ps = {int(r["depth"]): float(r["value"]) for r in tok if r["metric"] == "patch_similarity"}
    ck = rows(f"{out}/cka-{s}.csv")
    c0L = [float(r["value"]) for r in ck if r["metric"] == "cka_linear_biased" and {int(r["depth"]), int(r["depth_b"] or -1)} == {0, L}]
    rt = rows(f"{out}/retrieval-{s}.csv")
    mp = [float(r["value"]) for r in rt if r["metric"] == "retrieval_map" and int(r["depth"]) == L]
    print(f"{name} [{s}] acc d1 {mean.get(1, float('nan')):.3f} -> d{L} {mean.get(L, float('nan')):.3f} (max {max(mean.values()):.3f} at d{max(mean, key=mean.get)})"
          f" | mAP d{L} {sum(mp)/max(1,len(mp)):.3f} | CKA(0,{L}) {c0L[0] if c0L else float('nan'):.3f}"
          f" | patchsim " + " ".join(f"{ps[d]:.2f}" for d in sorted(ps)))
    print("   per target d1->dL: " + ", ".join(f"{t} {v.get(1, float('nan')):.2f}->{v.get(L, float('nan')):.2f}" for t, v in sorted(per.items())))
PY
cat "$summary"
