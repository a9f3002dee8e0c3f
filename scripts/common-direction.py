#!/usr/bin/env python3
"""How much of the tokens' within-clip similarity is one direction shared by every token of every clip.

For each depth of an activation file (bwact/1), on the first --clips clips: each token is
layer-normalised over its features (no affine) and L2-normalised, as `patch_similarity` does
(docs/metrics.md); g is the mean of those unit tokens over all tokens of all clips. Prints
  patch_similarity        the metric itself (mean cosine over ordered pairs of a clip's tokens),
  |g|^2                   the share of a unit token that the common direction explains on average,
  without g               patch similarity after removing g from every unit token and renormalising,
  |mean token|, |token - mean token|   the same split on the raw tokens (the residual stream).
Used by the depth study (docs/depth-study.md). Needs numpy and h5py.

  /usr/bin/python3 scripts/common-direction.py runs/study/E19-objscale2/double-gratings-step001600.h5
"""
import argparse

import h5py
import numpy as np


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def patch_similarity(z):
    t = z.shape[1]
    return float(((np.linalg.norm(z.sum(1), axis=-1) ** 2 - t) / (t * (t - 1))).mean())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("file")
    ap.add_argument("--clips", type=int, default=300)
    a = ap.parse_args()
    with h5py.File(a.file, "r") as f:
        depths = sorted(f["layers"].keys(), key=int)
        print("depth  patch_similarity  |g|^2  without g  |mean token|  |token - mean token|")
        for d in depths:
            x = f[f"layers/{d}/tokens"][: a.clips].astype(np.float64)
            n = x - x.mean(-1, keepdims=True)
            z = unit(n / np.sqrt((n ** 2).mean(-1, keepdims=True) + 1e-12))
            g = z.reshape(-1, z.shape[-1]).mean(0)
            flat = x.reshape(-1, x.shape[-1])
            m = flat.mean(0)
            print(f"{int(d):5d}  {patch_similarity(z):16.2f}  {g @ g:5.2f}  {patch_similarity(unit(z - g)):9.2f}"
                  f"  {np.linalg.norm(m):12.1f}  {np.linalg.norm(flat - m, axis=1).mean():20.1f}")


if __name__ == "__main__":
    main()
