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

from checklist import finish, report

BW, FIX = sys.argv[1], sys.argv[2]


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


# --- covariance spectrum (paper's eval-code conventions) and RankMe ----------------------------
def spectrum_reference(x):
    lam = np.clip(np.linalg.eigvalsh(np.cov(x, rowvar=False))[::-1], 0, None)
    p = lam / lam.sum()
    nz = p[p > 0]
    s = np.linalg.svd(x, compute_uv=False)
    q = s / s.sum() + 1e-7
    return {
        "effective_rank": float(np.exp(-(nz * np.log(nz)).sum())),
        "participation_ratio": float(lam.sum() ** 2 / (lam ** 2).sum()),
        "isotropy": float(lam.max() / lam.mean()),
        "k90": float(np.searchsorted(np.cumsum(lam), 0.9 * lam.sum() * (1 - 1e-12)) + 1),
        "rankme": float(np.exp(-(q * np.log(q)).sum())),
    }


for fixture, pool in [("run-a.h5", "mean"), ("geometry.h5", "tokens"), ("geometry.h5", "mean")]:
    path = f"{FIX}/{fixture}"
    out = bwanalyze("spectrum", path, "--depth", "layers", "--pool", pool)
    worst, count = 0.0, 0
    for r in out["records"]:
        if r.get("value") is None or r["metric"] not in ("effective_rank", "participation_ratio", "isotropy", "k90", "rankme"):
            continue
        ref = spectrum_reference(rows(path, r["depth"], pool))[r["metric"]]
        worst = max(worst, abs(r["value"] - ref) / abs(ref))
        count += 1
    report(count > 0 and worst <= 1e-6, f"spectrum {pool} {fixture}: {count} values, max relative difference {worst:.1e}")

# --- linear probe vs scikit-learn on an identical train/test split ----------------------------
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score
from sklearn.preprocessing import StandardScaler
import os
import tempfile

for fixture, n_train in [("geometry.h5", 64), ("run-a.h5", 56)]:
    src = f"{FIX}/{fixture}"
    tmp = tempfile.mkdtemp()
    with h5py.File(src, "r") as f:
        for name, sl in [("train", slice(0, n_train)), ("test", slice(n_train, None))]:
            with h5py.File(f"{tmp}/{name}.h5", "w") as g:
                for k, v in f.attrs.items():
                    g.attrs[k] = v
                for layer in f["layers"]:
                    g.create_dataset(f"layers/{layer}/tokens", data=f[f"layers/{layer}/tokens"][sl])
                g.create_dataset("positions", data=f["positions"][...])
                for t in f["labels"]:
                    g.create_dataset(f"labels/{t}", data=f[f"labels/{t}"][sl])
    out = bwanalyze("probe", "--train", f"{tmp}/train.h5", "--test", f"{tmp}/test.h5", "--depth", "layers")
    worst = 0.0
    for r in out["records"]:
        if r["metric"] != "probe_accuracy":
            continue
        xtr, xte = rows(f"{tmp}/train.h5", r["depth"]), rows(f"{tmp}/test.h5", r["depth"])
        with h5py.File(f"{tmp}/train.h5", "r") as f, h5py.File(f"{tmp}/test.h5", "r") as g:
            ytr, yte = f[f"labels/{r['target']}"][...], g[f"labels/{r['target']}"][...]
        scaler = StandardScaler().fit(xtr)
        clf = LogisticRegression(max_iter=1000).fit(scaler.transform(xtr), ytr)
        ref = clf.score(scaler.transform(xte), yte)
        worst = max(worst, abs(r["value"] - ref))
    report(worst <= 0.01, f"probe train/test {fixture}: max accuracy difference to scikit-learn {100 * worst:.2f} pp")

# --- retrieval: AP per query by scikit-learn ---------------------------------------------------
for fixture in ["geometry.h5", "run-a.h5"]:
    path = f"{FIX}/{fixture}"
    out = bwanalyze("retrieval", path, "--depth", "layers")
    worst = 0.0
    chance_worst, chance_se = 0.0, 0.0
    for r in out["records"]:
        if r["metric"] == "retrieval_map_chance":
            # Monte Carlo: every query's positives at uniformly random ranks among the other clips.
            with h5py.File(path, "r") as f:
                y = f[f"labels/{r['target']}"][...]
            rng = np.random.default_rng(0)
            m, per_query = len(y) - 1, []
            for q in range(len(y)):
                p = int((y == y[q]).sum()) - 1
                if p == 0:
                    continue
                keys = rng.random((5000, m))
                ranks = np.sort(np.argpartition(keys, p - 1, axis=1)[:, :p] + 1, axis=1) if p < m else np.tile(np.arange(1, m + 1), (5000, 1))
                per_query.append((np.arange(1, p + 1) / ranks).mean(axis=1))
            draws = np.mean(per_query, axis=0)
            chance_worst = max(chance_worst, abs(r["value"] - draws.mean()))
            chance_se = max(chance_se, draws.std() / np.sqrt(len(draws)))
            continue
        x = rows(path, r["depth"])
        z = x / np.linalg.norm(x, axis=1, keepdims=True)
        sim = z @ z.T
        with h5py.File(path, "r") as f:
            y = f[f"labels/{r['target']}"][...]
        aps, hits = [], {1: [], 5: [], 10: []}
        for q in range(len(y)):
            others = np.array([i for i in range(len(y)) if i != q])
            rel = (y[others] == y[q]).astype(int)
            if rel.sum() == 0:
                continue
            aps.append(average_precision_score(rel, sim[q, others]))
            order = others[np.argsort(-sim[q, others], kind="stable")]
            for k in hits:
                hits[k].append(float((y[order[:k]] == y[q]).any()))
        ref = np.mean(aps) if r["metric"] == "retrieval_map" else np.mean(hits[int(r["metric"].removeprefix("retrieval_top"))])
        worst = max(worst, abs(r["value"] - ref))
    report(worst <= 1e-9, f"retrieval {fixture}: max difference to scikit-learn/numpy {worst:.1e}")
    report(0 < chance_se and chance_worst <= 5 * chance_se,
           f"retrieval chance {fixture}: max difference to 5000 random rankings per query {chance_worst:.1e} (standard error {chance_se:.1e})")

# --- patch similarity and token shift -----------------------------------------------------------
path = f"{FIX}/geometry.h5"
out = bwanalyze("tokens", path, "--depth", "layers")
worst = 0.0
for r in out["records"]:
    with h5py.File(path, "r") as f:
        a = f[f"layers/{r['depth']:02d}/tokens"][...].astype(np.float64)
        b = f[f"layers/{r['depth_b']:02d}/tokens"][...].astype(np.float64) if r.get("depth_b") is not None else None
    if r["metric"] == "patch_similarity":
        ln = (a - a.mean(-1, keepdims=True)) / np.sqrt(a.var(-1, keepdims=True) + 1e-12)
        z = ln / np.linalg.norm(ln, axis=-1, keepdims=True)
        g = np.einsum("ntd,nsd->nts", z, z)
        t = a.shape[1]
        ref = ((g.sum((1, 2)) - np.trace(g, axis1=1, axis2=2)) / (t * (t - 1))).mean()
    elif r["metric"] == "token_shift_cosine":
        ref = (1 - (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))).mean()
    else:
        ref = (np.linalg.norm(b - a, axis=-1) / np.linalg.norm(a, axis=-1)).mean()
    worst = max(worst, abs(r["value"] - ref) / max(abs(ref), 1e-12))
report(worst <= 1e-6, f"tokens geometry.h5: patch similarity and token shift, max relative difference {worst:.1e}")

# --- similarity beyond CKA: the command's pairing and orientation against the numpy reference ------
import similarity_reference as sim  # noqa: E402  (Tests/python, beside this script)

measures = {
    "procrustes_angle": lambda x, y: float(np.arccos(sim.procrustes_similarity(x, y, 1.0))),
    "procrustes_distance": lambda x, y: float(np.sqrt(2 - 2 * sim.procrustes_similarity(x, y, 1.0))),
    "svcca": lambda x, y: float(sim.svcca(x, y)),
    "pwcca": sim.pwcca,
    "rsa": lambda x, y: sim.spearman(sim.rdm(x, "correlation"), sim.rdm(y, "correlation")),
    "mutual_knn": sim.mutual_knn,
}
for args, label in [(("similarity", f"{FIX}/run-a.h5", "--depth", "layers", "--pairs", "all"), "run-a.h5 all pairs"),
                    (("similarity", f"{FIX}/run-a.h5", f"{FIX}/run-b.h5", "--depth", "layers"), "run-a.h5 x run-b.h5")]:
    out = bwanalyze(*args)
    pb = args[2] if args[2].endswith(".h5") else args[1]
    worst, count = 0.0, 0
    for r in out["records"]:
        ref = measures[r["metric"]](rows(args[1], r["depth"]), rows(pb, r["depth_b"]))
        worst = max(worst, abs(r["value"] - ref) / max(abs(ref), 1e-12))
        count += 1
    report(count > 0 and worst <= 1e-6, f"similarity {label}: {count} values, max relative difference {worst:.1e}")

finish("crosscheck")
