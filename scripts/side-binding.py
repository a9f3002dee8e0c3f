#!/usr/bin/env python3
"""Whether the clip vectors of a double-gratings dump tell the left half's grating from the right one's.

A representation that says which orientations (or speeds) a clip holds but not on which side is
"side-blind". Mean-pooled over all tokens, it gives the unordered pair {left, right}. From that pair
the left orientation is certain when the halves match and a coin toss between two when they do not,
so a side-blind representation scores 1.0 on matched clips and at most 0.5 on the others (0.75
overall, since half of the clips match). The same holds for speed (3 classes, speed_match).

For each depth this prints the out-of-fold accuracy of the linear probe of docs/metrics.md
(standardised clip vectors, multinomial logistic regression, C = 1, 3 stratified folds) for
left_orientation, right_orientation, left_speed and right_speed, split into matched and mismatched
clips. Mismatched accuracy near 0.5 means side-blind; near the matched accuracy means the sides are
bound. The folds are scikit-learn's StratifiedKFold (shuffled, seed 0), not bwanalyze's, so the
overall numbers differ from `bwanalyze probe` in the last digits. Used by the depth study
(docs/depth-study.md). Needs numpy, h5py and scikit-learn.

  /usr/bin/python3 scripts/side-binding.py runs/default/default-e2e-k4/double-gratings-step001600.h5

With --pool halves the clip vector is instead the mean over the left half's tokens beside the mean over
the right half's (token centres from /positions), 2D features that keep the sides apart, and a last
column gives the mean accuracy over every target of the file. This is a diagnostic, not the suite's
probe protocol (which mean-pools over all tokens): it asks whether the tokens hold side-specific
information that mean pooling removes.
"""
import argparse

import h5py
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

TARGETS = [("left_orientation", "orientation_match"), ("right_orientation", "orientation_match"),
           ("left_speed", "speed_match"), ("right_speed", "speed_match")]


def out_of_fold(x, y):
    pred = np.empty_like(y)
    for train, test in StratifiedKFold(3, shuffle=True, random_state=0).split(x, y):
        scaler = StandardScaler().fit(x[train])
        model = LogisticRegression(C=1.0, max_iter=1000).fit(scaler.transform(x[train]), y[train])
        pred[test] = model.predict(scaler.transform(x[test]))
    return pred


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("file")
    ap.add_argument("--depths", default="all", help="comma-separated depths, or 'all'")
    ap.add_argument("--pool", choices=["mean", "halves"], default="mean",
                    help="mean over all tokens (the suite's clip vector) or per half, side by side")
    a = ap.parse_args()
    with h5py.File(a.file, "r") as f:
        labels = {k: f[f"labels/{k}"][:] for k in f["labels"].keys()}
        depths = sorted(f["layers"].keys(), key=int)
        if a.depths != "all":
            depths = [d for d in depths if int(d) in {int(s) for s in a.depths.split(",")}]
        left = None
        if a.pool == "halves":
            cols = f["positions"][:, 2]
            left = cols < np.median(cols)
            assert left.any() and (~left).any(), "the token centres do not split into two halves"
        print("depth  " + "  ".join(f"{t} matched/mismatched" for t, _ in TARGETS) + ("  mean over all targets" if left is not None else ""))
        for d in depths:
            tokens = f[f"layers/{d}/tokens"][...].astype(np.float64)
            if left is None:
                x = tokens.mean(axis=1)
            else:
                x = np.concatenate([tokens[:, left].mean(axis=1), tokens[:, ~left].mean(axis=1)], axis=1)
            cells = []
            for target, match in TARGETS:
                y, m = labels[target], labels[match] == 1
                hit = out_of_fold(x, y) == y
                cells.append(f"{hit[m].mean():.3f}/{hit[~m].mean():.3f}")
            line = f"{int(d):5d}  " + "  ".join(f"{c:>{len(t) + 19}}" for c, (t, _) in zip(cells, TARGETS))
            if left is not None:
                line += f"  {np.mean([(out_of_fold(x, y) == y).mean() for y in labels.values()]):22.3f}"
            print(line)


if __name__ == "__main__":
    main()
