"""Cross-check bwanalyze against independent numpy / scikit-learn implementations.

Usage: crosscheck.py BWANALYZE FIXTURES_DIR
Each check computes a metric here from the raw activations (read with h5py) and compares it with
bwanalyze's JSON output. Prints one line per check and a final "N passed, N failed" line; exits 1
on any failure.
"""
import json
import subprocess
import sys

import h5py
import numpy as np

BW, FIX = sys.argv[1], sys.argv[2]
passed = failed = 0


def report(ok, what):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok    {what}")
    else:
        failed += 1
        print(f"FAIL  {what}")


def close(a, b, rel):
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-300)


def bwanalyze(*args):
    out = subprocess.run([BW, *args, "--format", "json", "--quiet"], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def rows(path, depth, pool="mean"):
    with h5py.File(path, "r") as f:
        x = f[f"layers/{depth:02d}/tokens"][...].astype(np.float64)
    return x.mean(axis=1) if pool == "mean" else x.reshape(-1, x.shape[-1])


# --- CKA (Kornblith et al. 2019 feature-space form; Song et al. 2012 U-statistic) -------------
def linear_cka(x, y):
    x = x - x.mean(0)
    y = y - y.mean(0)
    return np.linalg.norm(x.T @ y) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))


def hsic_u(k, l):
    n = k.shape[0]
    k = k.copy()
    l = l.copy()
    np.fill_diagonal(k, 0)
    np.fill_diagonal(l, 0)
    return (np.sum(k * l) + k.sum() * l.sum() / ((n - 1) * (n - 2)) - 2 / (n - 2) * k.sum(0) @ l.sum(0)) / (n * (n - 3))


def debiased_cka(x, y):
    k, l = x @ x.T, y @ y.T
    return hsic_u(k, l) / np.sqrt(hsic_u(k, k) * hsic_u(l, l))


for fixture, pool, estimator, fn in [("run-a.h5", "mean", "biased", linear_cka), ("run-a.h5", "mean", "debiased", debiased_cka),
                                     ("geometry.h5", "tokens", "biased", linear_cka)]:
    path = f"{FIX}/{fixture}"
    out = bwanalyze("cka", path, "--depth", "layers", "--pairs", "all", "--pool", pool, "--estimator", estimator)
    worst = 0.0
    for r in out["records"]:
        ref = fn(rows(path, r["depth"], pool), rows(path, r["depth_b"], pool))
        worst = max(worst, abs(r["value"] - ref) / abs(ref))
    report(worst <= 1e-6, f"cka {estimator} {pool} {fixture}: {len(out['records'])} pairs, max relative difference {worst:.1e}")

path = f"{FIX}/run-a.h5"
out = bwanalyze("cka", path, f"{FIX}/run-b.h5", "--depth", "layers")
worst = max(abs(r["value"] - linear_cka(rows(path, r["depth"]), rows(f"{FIX}/run-b.h5", r["depth_b"]))) for r in out["records"])
report(worst <= 1e-6, f"cka across run-a/run-b: max absolute difference {worst:.1e}")

print(f"crosscheck: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
