#!/usr/bin/env python3
"""The analysis suite of `bwanalyze report` on one bwact/1 file, in numpy/h5py/scikit-learn (issue 10).

Written by this team from the definitions in docs/metrics.md, the way a researcher computes the
paper's metrics today, as the fixed reference of bench/analysis_benchmark.py. Every depth 0..L is
analysed; statistics are computed in float64. What each timed family does:

  load       read every depth's tokens once with h5py ([N, T, D] float32) and mean-pool them to
             float64 clip vectors [N, D]; the tokens are then dropped (only the clip vectors stay)
  cka        linear CKA (biased estimator, clip vectors) between every pair of depths i < j,
             ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F) with centred columns
  spectrum   per depth: covariance eigenvalues (eigvalsh), effective rank, participation ratio,
             isotropy, k90, condition number, RankMe (SVD of the uncentred rows), uniformity and the
             mean/std of norms, pairwise cosines and distances (all rows: N <= 4096)
  probe      per depth and target: 3-fold stratified CV (docs/metrics.md's fold scheme: per class a
             SplitMix64-seeded Fisher-Yates shuffle dealt round-robin into folds, seed 0),
             StandardScaler fitted on the training folds + LogisticRegression(C=1, max_iter=1000);
             mean and population std of the fold accuracies
  retrieval  per depth: cosine similarities of the clip vectors, each query's ranking (self excluded,
             ties by lower index) sorted once and scored for every target: top-1/5/10 and mAP
  tokens     per depth, the tokens read again (they were not kept after load): patch similarity
             (tokens layer-normalised, eps 1e-12, then L2-normalised; mean cosine over ordered pairs
             i != j, as (||sum u||^2 - T) / (T (T - 1)) per clip; mean over clips) and token shift
             between consecutive depths (1 - cos and ||h_l+1 - h_l|| / ||h_l||, mean over tokens, clips)
  attention  per layer and head with stored attention: mean attention distance (spatial in pixels,
             temporal in frames) and entropy in nats, averaged over queries and clips

It prints wall seconds and CPU seconds (user + system, all threads) per family, the total and the
peak RSS (ru_maxrss of this process). Nothing is
cached: every run reads the file again. `--values OUT.json` also writes every computed value (for
the agreement check with bwanalyze). Two other modes, each timed as a whole:

  --read FILE          read every token dataset once (h5py), nothing else: h5py's read GB/s
  --cka-pair A B       load both files and compute linear CKA at matching depths (= `bwanalyze cka A B
                       --depth layers`)
  --similarity M FILE  load the clip vectors and compute measure M (procrustes_angle, svcca, pwcca, rsa,
                       mutual_knn) between every pair of depths (= `bwanalyze similarity FILE --depth
                       layers --pairs all --measure M`), each depth's SVD / RDM ranks / neighbours once,
                       as a numpy user would write it (docs/metrics.md's conventions); --values writes
                       them

Usage: /usr/bin/python3 bench/numpy_reference.py FILE [--families cka,probe,...] [--values OUT.json]
       /usr/bin/python3 bench/numpy_reference.py --similarity MEASURE FILE [--values OUT.json]
       /usr/bin/python3 bench/numpy_reference.py --read FILE
       /usr/bin/python3 bench/numpy_reference.py --cka-pair A B
"""
import argparse
import json
import os
import resource
import sys
import time

import h5py
import numpy as np

# The SplitMix64 stream of docs/metrics.md, shared with the cross-check scripts in Tests/python.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "python"))
from splitmix import SplitMix64  # noqa: E402

FAMILIES = ["cka", "spectrum", "probe", "retrieval", "tokens", "attention"]
TOPK = (1, 5, 10)
BATCH = 64          # clips per float64 batch in the token metrics


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0      # KiB on Linux


def depth_names(f):
    return sorted(f["layers"], key=int)


def token_bytes(f):
    return sum(f[f"layers/{d}/tokens"].id.get_storage_size() for d in depth_names(f))


# load

def load_clip_vectors(f):
    """{depth: float64 [N, D]} mean over tokens, one full read per depth."""
    out = {}
    for d in depth_names(f):
        x = f[f"layers/{d}/tokens"][...]
        out[int(d)] = x.mean(axis=1, dtype=np.float64)
        del x
    return out


# cka

def linear_cka(x, y):
    xc = x - x.mean(axis=0)
    yc = y - y.mean(axis=0)
    num = np.linalg.norm(yc.T @ xc) ** 2
    return float(num / (np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc)))


def cka_all_pairs(vecs):
    depths = sorted(vecs)
    centred = {d: vecs[d] - vecs[d].mean(axis=0) for d in depths}
    self_norm = {d: np.linalg.norm(centred[d].T @ centred[d]) for d in depths}
    out = {}
    for i, a in enumerate(depths):
        for b in depths[i + 1:]:
            cross = np.linalg.norm(centred[b].T @ centred[a]) ** 2
            out[f"{a}-{b}"] = float(cross / (self_norm[a] * self_norm[b]))
    return out


# spectrum

def spectrum(x):
    n, dim = x.shape
    xc = x - x.mean(axis=0)
    lam = np.linalg.eigvalsh(xc.T @ xc / (n - 1))[::-1]
    lam = np.clip(lam, 0.0, None)
    total = lam.sum()
    p = lam[lam > 0] / total
    out = {"effective_rank": float(np.exp(-(p * np.log(p)).sum())),
           "participation_ratio": float(total ** 2 / (lam ** 2).sum()),
           "isotropy": float(lam[0] / lam.mean()),
           "k90": int(np.searchsorted(np.cumsum(lam) / total, 0.9 - 1e-12) + 1)}
    eps = np.finfo(np.float64).eps
    out["condition_number"] = float(lam[0] / lam[-1]) if lam[-1] > lam[0] * max(n, dim) * eps else None
    s = np.linalg.svd(x, compute_uv=False)
    q = s / s.sum() + 1e-7
    out["rankme"] = float(np.exp(-(q * np.log(q)).sum()))
    norms = np.linalg.norm(x, axis=1)
    z = x / norms[:, None]
    cos = z @ z.T
    iu = np.triu_indices(n, 1)
    zsq = np.clip(2.0 - 2.0 * cos[iu], 0.0, None)                       # ||zi - zj||^2, i < j
    out["uniformity"] = float(np.log(np.exp(-2.0 * zsq).mean()))        # pairs i != j: symmetric
    sq = (x * x).sum(axis=1)
    dist = np.sqrt(np.clip(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0, None))[iu]
    c = cos[iu]
    out.update(mean_norm=float(norms.mean()), std_norm=float(norms.std()), mean_cosine=float(c.mean()),
               std_cosine=float(c.std()), mean_distance=float(dist.mean()), std_distance=float(dist.std()))
    return out


# probe


def stratified_folds(y, folds=3, seed=0):
    """Per class (in increasing label order) a Fisher-Yates shuffle, dealt round-robin into folds."""
    g = SplitMix64(seed)
    out = [[] for _ in range(folds)]
    pos = 0
    for label in sorted(set(y.tolist())):
        members = list(np.flatnonzero(y == label))
        for i in range(len(members) - 1, 0, -1):
            j = g.below(i + 1)
            members[i], members[j] = members[j], members[i]
        for idx in members:
            out[pos].append(idx)
            pos = (pos + 1) % folds
    return [np.array(sorted(f), dtype=np.int64) for f in out]


def probe(x, y, folds):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    accs = []
    n = len(y)
    for test in folds:
        train = np.setdiff1d(np.arange(n), test)
        scaler = StandardScaler().fit(x[train])
        model = LogisticRegression(C=1.0, max_iter=1000).fit(scaler.transform(x[train]), y[train])
        accs.append(float((model.predict(scaler.transform(x[test])) == y[test]).mean()))
    return {"mean": float(np.mean(accs)), "std": float(np.std(accs)), "folds": accs}


# retrieval

def retrieval(x, targets):
    n = x.shape[0]
    z = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = z @ z.T
    np.fill_diagonal(s, -np.inf)
    order = np.argsort(-s, axis=1, kind="stable")[:, :n - 1]        # self (at -inf) sorts last
    out = {}
    ranks = np.arange(1, n)
    for name, y in targets.items():
        rel = y[order] == y[:, None]
        has = rel.any(axis=1)
        r = {f"top{k}": float(rel[has, :k].any(axis=1).mean()) for k in TOPK}
        hits = np.cumsum(rel, axis=1)
        ap = (hits / ranks * rel).sum(axis=1)[has] / rel[has].sum(axis=1)
        r["map"] = float(ap.mean())
        out[name] = r
    return out


# tokens

def unit_rows(h):
    return h / np.linalg.norm(h, axis=-1, keepdims=True)


def token_metrics(f):
    depths = depth_names(f)
    patch, shift_cos, shift_rel = {}, {}, {}
    prev = None
    for d in depths:
        cur = f[f"layers/{d}/tokens"][...]
        n, t, _ = cur.shape
        ps, sc, sr = 0.0, 0.0, 0.0
        for a in range(0, n, BATCH):
            h = cur[a:a + BATCH].astype(np.float64)
            mu = h.mean(axis=-1, keepdims=True)
            var = h.var(axis=-1, keepdims=True)
            u = unit_rows((h - mu) / np.sqrt(var + 1e-12))
            total = u.sum(axis=1)
            ps += (((total * total).sum(axis=1) - t) / (t * (t - 1))).sum()
            if prev is not None:
                g = prev[a:a + BATCH].astype(np.float64)
                sc += (1.0 - (unit_rows(g) * unit_rows(h)).sum(axis=-1)).sum()
                sr += (np.linalg.norm(h - g, axis=-1) / np.linalg.norm(g, axis=-1)).sum()
        patch[int(d)] = ps / n
        if prev is not None:
            key = f"{int(prev_name)}-{int(d)}"
            shift_cos[key] = sc / (n * t)
            shift_rel[key] = sr / (n * t)
        prev, prev_name = cur, d
    return {"patch_similarity": patch, "token_shift_cosine": shift_cos, "token_shift_relative": shift_rel}


# attention

def attention_metrics(f):
    pos = f["positions"][...].astype(np.float64)
    spatial = np.sqrt(((pos[:, None, 1:] - pos[None, :, 1:]) ** 2).sum(-1))
    temporal = np.abs(pos[:, None, 0] - pos[None, :, 0])
    out = {}
    for d in depth_names(f):
        if "attention" not in f[f"layers/{d}"]:
            continue
        a = f[f"layers/{d}/attention"][...].astype(np.float64)          # [M, H, T, T]
        with np.errstate(divide="ignore", invalid="ignore"):
            plogp = np.where(a > 0, a * np.log(a), 0.0)
        out[int(d)] = {
            "spatial": ((a * spatial).sum(-1).mean(axis=(0, 2))).tolist(),
            "temporal": ((a * temporal).sum(-1).mean(axis=(0, 2))).tolist(),
            "entropy": ((-plogp.sum(-1)).mean(axis=(0, 2))).tolist()}
    return out


# modes

class Clock:
    """Wall and CPU seconds (this process, every thread: BLAS included) of one family."""

    def __init__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self):
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def run_suite(path, families, values_path):
    seconds, values = {}, {}
    t_all = Clock()
    with h5py.File(path, "r") as f:
        t = Clock()
        vecs = load_clip_vectors(f)
        targets = {k: f[f"labels/{k}"][...] for k in sorted(f["labels"])}
        seconds["load"] = t.stop()
        def probes():
            folds = {k: stratified_folds(y) for k, y in targets.items()}
            return {d: {k: probe(x, y, folds[k]) for k, y in targets.items()} for d, x in vecs.items()}

        work = {
            "cka": lambda: cka_all_pairs(vecs),
            "spectrum": lambda: {d: spectrum(x) for d, x in vecs.items()},
            "probe": probes,
            "retrieval": lambda: {d: retrieval(x, targets) for d, x in vecs.items()},
            "tokens": lambda: token_metrics(f),
            "attention": lambda: attention_metrics(f),
        }
        for name in FAMILIES:  # the order they were always timed in
            if name in families:
                t = Clock()
                values[name] = work[name]()
                seconds[name] = t.stop()
    seconds["total"] = t_all.stop()
    for k, (wall, cpu) in seconds.items():
        print(f"{k:10s} {wall:8.2f} s {cpu:8.2f} cpu-s")
    print(f"peak RSS {peak_rss_mb():.0f} MB")
    if values_path:
        with open(values_path, "w") as fh:
            json.dump(values, fh)
    return seconds


def run_read(path):
    t = time.perf_counter()
    with h5py.File(path, "r") as f:
        nbytes = token_bytes(f)
        for d in depth_names(f):
            x = f[f"layers/{d}/tokens"][...]
            del x
    s = time.perf_counter() - t
    print(f"read {nbytes / 1e9:.2f} GB in {s:.2f} s: {nbytes / 1e9 / s:.2f} GB/s")
    print(f"peak RSS {peak_rss_mb():.0f} MB")


def run_cka_pair(a, b):
    t = time.perf_counter()
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        va = load_clip_vectors(fa)
        vb = load_clip_vectors(fb)
    loaded = time.perf_counter() - t
    values = {d: linear_cka(va[d], vb[d]) for d in sorted(va)}
    s = time.perf_counter() - t
    print(" ".join(f"{d}:{v:.6f}" for d, v in values.items()))
    print(f"load {loaded:.2f} s, total {s:.2f} s")
    print(f"peak RSS {peak_rss_mb():.0f} MB")


# similarity beyond CKA (the conventions of docs/metrics.md)

def similarity_prepare(measure, x, k=10):
    """The per-depth fit: centred SVD basis, centred unit-norm RDM ranks, or sorted neighbour lists."""
    if measure in ("procrustes_angle", "svcca", "pwcca"):
        xc = x - x.mean(axis=0)
        u, s, vt = np.linalg.svd(xc, full_matrices=False)
        r = int(np.sum(s > np.sqrt(max(x.shape) * np.finfo(float).eps) * s[0]))
        return u[:, :r], s[:r], vt[:r]
    if measure == "rsa":
        z = x - x.mean(axis=1, keepdims=True)
        z /= np.linalg.norm(z, axis=1, keepdims=True)
        rdm = (1 - z @ z.T)[np.triu_indices(len(x), k=1)]
        order = np.argsort(rdm, kind="stable")
        ranks = np.empty(len(rdm))
        ranks[order] = np.arange(1, len(rdm) + 1)
        # average ranks over ties
        sv = rdm[order]
        starts = np.flatnonzero(np.r_[True, sv[1:] != sv[:-1]])
        ends = np.r_[starts[1:], len(sv)]
        for a, b in zip(starts, ends):
            if b - a > 1:
                ranks[order[a:b]] = (a + b - 1) / 2 + 1
        ranks -= ranks.mean()
        return ranks / np.linalg.norm(ranks)
    if measure == "mutual_knn":
        z = x / np.linalg.norm(x, axis=1, keepdims=True)
        sim = z @ z.T
        np.fill_diagonal(sim, -np.inf)
        return np.sort(np.argsort(-sim, axis=1, kind="stable")[:, :k], axis=1)
    raise ValueError(measure)


def similarity_pair(measure, fa, fb, k=10):
    if measure == "procrustes_angle":
        (ua, sa, _), (ub, sb, _) = fa, fb
        m = (ua * (sa / np.linalg.norm(sa))).T @ (ub * (sb / np.linalg.norm(sb)))
        return float(np.arccos(min(1.0, np.linalg.svd(m, compute_uv=False).sum())))
    if measure == "svcca":
        def keep(s):
            return int(np.argmax(np.cumsum(s ** 2) / np.sum(s ** 2) >= 0.99 * (1 - 1e-12))) + 1
        (ua, sa, _), (ub, sb, _) = fa, fb
        rho = np.clip(np.linalg.svd(ua[:, :keep(sa)].T @ ub[:, :keep(sb)], compute_uv=False), 0, 1)
        return float(rho.mean())
    if measure == "pwcca":
        (ua, sa, va), (ub, _, _) = fa, fb
        w, rho, _ = np.linalg.svd(ua.T @ ub, full_matrices=False)
        m = min(len(sa), ub.shape[1])
        alpha = np.abs(w[:, :m].T @ (sa[:, None] * va)).sum(axis=1)
        return float((alpha * np.clip(rho[:m], 0, 1)).sum() / alpha.sum())
    if measure == "rsa":
        return float(fa @ fb)
    if measure == "mutual_knn":
        return float(np.mean([len(np.intersect1d(a, b, assume_unique=True)) for a, b in zip(fa, fb)]) / k)
    raise ValueError(measure)


def run_similarity(measure, path, values_path):
    t = time.perf_counter()
    with h5py.File(path, "r") as f:
        vecs = load_clip_vectors(f)
    loaded = time.perf_counter() - t
    depths = sorted(vecs)
    fits = {d: similarity_prepare(measure, vecs[d]) for d in depths}
    out = {f"{a}-{b}": similarity_pair(measure, fits[a], fits[b]) for i, a in enumerate(depths) for b in depths[i + 1:]}
    s = time.perf_counter() - t
    print(f"{measure}: {len(out)} pairs; load {loaded:.2f} s, total {s:.2f} s")
    print(f"peak RSS {peak_rss_mb():.0f} MB")
    if values_path:
        with open(values_path, "w") as fh:
            json.dump(out, fh)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("file", nargs="*")
    p.add_argument("--families", default=",".join(FAMILIES))
    p.add_argument("--values", help="write every computed value to this JSON file")
    p.add_argument("--read", action="store_true", help="only read every token dataset once")
    p.add_argument("--cka-pair", action="store_true", help="linear CKA between two files at matching depths")
    p.add_argument("--similarity", help="one similarity measure between every pair of depths")
    a = p.parse_args()
    if a.similarity:
        run_similarity(a.similarity, a.file[0], a.values)
    elif a.read:
        run_read(a.file[0])
    elif a.cka_pair:
        if len(a.file) != 2:
            sys.exit("--cka-pair needs two files")
        run_cka_pair(*a.file)
    else:
        families = [x for x in a.families.split(",") if x]
        unknown = set(families) - set(FAMILIES)
        if unknown or len(a.file) != 1:
            sys.exit(f"one file and families from {FAMILIES}")
        run_suite(a.file[0], families, a.values)


if __name__ == "__main__":
    main()
