"""Independent numpy implementations of the similarity measures of `bwanalyze similarity`, written from
the published formulas (Williams et al. 2021; Raghu et al. 2017; Morcos et al. 2018; Kriegeskorte et al.
2008; Huh et al. 2024), for the Swift tests.

Usage: similarity_reference.py SEED N DX DY MODE (or import it: Tests/python/crosscheck.py does)
MODE is random (Y = X A + noise), lowrank (X of rank 4 padded to DX columns), wide (N < D) or
duplicates (X and Y with repeated rows). Prints JSON: the matrices and every measure's value.
"""
import json
import sys

import numpy as np

def centre(a):
    return a - a.mean(axis=0)


def rank_tol(a, s):
    """Singular values kept: s^2 > max(N, D) * eps * s_1^2 (docs/metrics.md)."""
    return np.sqrt(max(a.shape) * np.finfo(float).eps) * s[0]


# --- Procrustes with partial whitening (netrep's whitening transform, covariance eigendecomposition) ---
def whiten(a, alpha):
    if alpha == 1:
        return a
    lam, v = np.linalg.eigh(a.T @ a)
    # Directions with (numerically) zero variance are dropped, as the Swift side states; eigenvalues of
    # the covariance carry absolute errors near eps * max, so the cut here sits in the gap at 1e-10.
    keep = lam > 1e-10 * lam.max()
    s = np.sqrt(np.where(keep, lam, 1.0))
    d = alpha + (1 - alpha) / s
    z = (v[:, keep] * d[keep]) @ v[:, keep].T
    return a @ z


def procrustes_similarity(a, b, alpha):
    a, b = whiten(centre(a), alpha), whiten(centre(b), alpha)
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    return min(1.0, np.linalg.svd(a.T @ b, compute_uv=False).sum())


# --- CCA through the covariance route: Sxx^-1/2 Sxy Syy^-1/2 (pseudo-inverse square roots) ---
def inv_sqrt(c):
    lam, v = np.linalg.eigh(c)
    keep = lam > 1e-10 * lam.max()
    s = np.sqrt(lam[keep])
    return (v[:, keep] / s) @ v[:, keep].T, v[:, keep]


def cca(a, b):
    a, b = centre(a), centre(b)
    wa, _ = inv_sqrt(a.T @ a)
    wb, _ = inv_sqrt(b.T @ b)
    u, rho, _ = np.linalg.svd(wa @ (a.T @ b) @ wb)
    m = min(np.linalg.matrix_rank(a), np.linalg.matrix_rank(b))
    return np.clip(rho[:m], 0, 1), wa @ u[:, :m], a


def svcca(a, b, variance=0.99):
    def reduce(z):
        z = centre(z)
        u, s, _ = np.linalg.svd(z, full_matrices=False)
        s = s[s > rank_tol(z, s)]
        share = np.cumsum(s ** 2) / np.sum(s ** 2)
        k = int(np.argmax(share >= variance * (1 - 1e-12))) + 1
        return u[:, :k] * s[:k]
    rho, _, _ = cca(reduce(a), reduce(b))
    return rho.mean()


def pwcca(a, b):
    rho, weights_a, ac = cca(a, b)
    h = ac @ weights_a                      # canonical variates of A, one per column
    h = h / np.linalg.norm(h, axis=0)
    alpha = np.abs(h.T @ ac).sum(axis=1)    # sum over A's centred neurons of |<h_i, x_j>|
    return float((alpha * rho).sum() / alpha.sum())


# --- RSA ---
def quantized(v, scale):
    """Values on a grid of scale * 2**-40, ties to even (docs/metrics.md: equal up to rounding ties)."""
    q = scale * 2.0 ** -40
    return np.round(v / q) * q


def rdm(a, kind):
    if kind == "correlation":
        d = 1 - np.corrcoef(a)
    elif kind == "cosine":
        z = a / np.linalg.norm(a, axis=1, keepdims=True)
        d = 1 - z @ z.T
    else:
        d = np.sqrt(((a[:, None, :] - a[None, :, :]) ** 2).sum(-1))
    v = d[np.triu_indices(len(a), k=1)]
    return quantized(v, np.abs(v).max())


def average_ranks(v):
    order = np.argsort(v, kind="stable")
    ranks = np.empty(len(v))
    sv = v[order]
    i = 0
    while i < len(v):
        j = i
        while j + 1 < len(v) and sv[j + 1] == sv[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(u, v):
    return float(np.corrcoef(average_ranks(u), average_ranks(v))[0, 1])


def tau_a(u, v):
    m = len(u)
    s = 0
    for i in range(m - 1):
        s += int(np.sum(np.sign(u[i] - u[i + 1:]) * np.sign(v[i] - v[i + 1:])))
    return s / (m * (m - 1) / 2)


# --- mutual k-NN (cosine, self excluded, ties to the lower index) ---
def knn(a, k):
    z = a / np.linalg.norm(a, axis=1, keepdims=True)
    s = quantized(z @ z.T, 1.0)
    np.fill_diagonal(s, -np.inf)
    return np.argsort(-s, axis=1, kind="stable")[:, :k]


def mutual_knn(a, b, k=10):
    ka, kb = knn(a, k), knn(b, k)
    return float(np.mean([len(set(ka[i]) & set(kb[i])) / k for i in range(len(a))]))


def linear_cka(a, b):
    a, b = centre(a), centre(b)
    return np.linalg.norm(a.T @ b) ** 2 / (np.linalg.norm(a.T @ a) * np.linalg.norm(b.T @ b))


def main():
    seed, n, dx, dy, mode = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    rng = np.random.default_rng(seed)
    if mode == "lowrank":
        x = rng.standard_normal((n, 4)) @ rng.standard_normal((4, dx))
    else:
        x = rng.standard_normal((n, dx)) * np.linspace(3, 0.5, dx)
    y = x @ rng.standard_normal((dx, dy)) + 0.7 * rng.standard_normal((n, dy))
    if mode == "duplicates":
        x[n // 2:] = x[: n - n // 2]
        y[n // 2:] = y[: n - n // 2]


    out = {"n": n, "dx": dx, "dy": dy, "x": x.ravel().tolist(), "y": y.ravel().tolist(), "values": {}}
    v = out["values"]
    for alpha in (1.0, 0.5, 0.0):
        if alpha < 1 and mode in ("lowrank", "wide"):
            continue
        s = procrustes_similarity(x, y, alpha)
        v[f"procrustes_distance_alpha{alpha}"] = float(np.sqrt(2 - 2 * s))
        v[f"procrustes_angle_alpha{alpha}"] = float(np.arccos(s))
    v["svcca"] = float(svcca(x, y))
    v["svcca_0.9"] = float(svcca(x, y, 0.9))
    v["pwcca"] = pwcca(x, y)
    v["pwcca_yx"] = pwcca(y, x)
    for kind in ("correlation", "cosine", "euclidean"):
        v[f"rsa_{kind}_spearman"] = spearman(rdm(x, kind), rdm(y, kind))
    v["rsa_correlation_kendall"] = tau_a(rdm(x, "correlation"), rdm(y, "correlation"))
    for k in (1, 5, 10):
        v[f"mutual_knn_{k}"] = mutual_knn(x, y, k)
    v["cka_linear_biased"] = float(linear_cka(x, y))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
