"""Recompute bwanalyze's bootstrap intervals independently with numpy.

Usage: bootstrap_check.py CASE.json
CASE.json (written by the Swift test BootstrapTests) holds the seed, N, B and level, per-clip values,
per-query average precisions (null for queries without positives), two clip-vector matrices X and Y,
and the intervals our code computed. Here the resampled clip indices are drawn by an independent
SplitMix64 with rejection sampling, each resample is formed explicitly (rows gathered), the statistic
recomputed from scratch, and the interval taken with np.percentile. Prints one line per check and a
final "bootstrap: N passed, N failed" line; exits 1 on any failure.
"""
import json
import sys

import numpy as np

from checklist import finish, report
from splitmix import SplitMix64

case = json.load(open(sys.argv[1]))


def linear_cka(x, y):
    x = x - x.mean(0)
    y = y - y.mean(0)
    return np.linalg.norm(x.T @ y) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))


n, b, level = case["n"], case["resamples"], case["level"]
g = SplitMix64(case["seed"])
indices = [[g.below(n) for _ in range(n)] for _ in range(b)]
report(indices[:len(case["indices"])] == case["indices"], "resampled clip indices equal an independent SplitMix64")

q = [100 * (1 - level) / 2, 100 - 100 * (1 - level) / 2]


def close(a, b, tol=1e-12):
    return all(abs(u - v) <= tol * max(1, abs(u)) for u, v in zip(a, b))


values = np.array(case["values"])
ci = np.percentile([values[i].mean() for i in indices], q)
report(close(ci, case["mean_ci"]), f"percentile interval of a per-clip mean {list(ci)} vs {case['mean_ci']}")

ap = case["ap"]
reps = []
for i in indices:
    defined = [ap[j] for j in i if ap[j] is not None]
    reps.append(np.mean(defined))
ci = np.percentile(reps, q)
report(close(ci, case["ap_ci"]), f"interval of mAP over resampled queries {list(ci)} vs {case['ap_ci']}")

x, y = np.array(case["x"]), np.array(case["y"])
ci = np.percentile([linear_cka(x[i], y[i]) for i in indices], q)
report(close(ci, case["cka_ci"], 1e-9), f"interval of linear CKA over resampled rows {list(ci)} vs {case['cka_ci']}")

finish("bootstrap")
