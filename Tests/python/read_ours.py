"""Contract test: h5py reads a bwact/1 file that the Swift store wrote.

Usage: read_ours.py FIXTURES_DIR
Checks attribute types (str / int), shapes, dtypes, chunking and planted values of the
committed fixtures. Prints one line per check and exits non-zero on the first failure.
"""
import json
import math
import sys

import h5py
import numpy as np

fixtures = sys.argv[1]
checks = 0


def check(condition, what):
    global checks
    if not condition:
        print(f"FAIL: {what}")
        sys.exit(1)
    checks += 1


with h5py.File(f"{fixtures}/geometry.h5", "r") as f:
    a = f.attrs
    for key in ["format", "run", "regime", "probe_set", "config"]:
        check(isinstance(a[key], str), f"attr {key} is str (got {type(a[key]).__name__})")
    for key in ["format_version", "step", "seed"]:
        check(isinstance(a[key], (int, np.integer)) and a[key].dtype == np.int64, f"attr {key} is int64")
    check(a["format"] == "bwact" and int(a["format_version"]) == 1, "format and version")
    check(a["block_ends"].dtype == np.int64 and list(a["block_ends"]) == [1, 3, 5], "block_ends int64 [1,3,5]")
    check(json.loads(a["config"])["fixture"] == "geometry", "config is JSON")
    layers = sorted(f["layers"].keys())
    check(layers == ["00", "01", "02", "03", "04", "05"], f"layer names {layers}")
    x0 = f["layers/00/tokens"][...]
    check(x0.shape == (96, 8, 12) and x0.dtype == np.float32, f"tokens shape/dtype {x0.shape} {x0.dtype}")
    check(f["layers/00/tokens"].chunks[1:] == (8, 12), "chunked by clips")
    x1 = f["layers/01/tokens"][...].astype(np.float64)
    x2 = f["layers/02/tokens"][...].astype(np.float64)
    cos = (x0 * x1).sum(-1) / (np.linalg.norm(x0, axis=-1) * np.linalg.norm(x1, axis=-1))
    check(np.allclose(cos, math.cos(math.pi / 6), atol=1e-5), "depth 1 is depth 0 rotated by pi/6")
    check(np.allclose(x2, 2.5 * x0, rtol=1e-6, atol=1e-6), "depth 2 is 2.5 * depth 0")
    planted = f["labels/planted"][...]
    check(planted.dtype == np.int64 and (planted == np.arange(96) % 3).all(), "planted labels")
    check(f["positions"].shape == (8, 3) and f["positions"].dtype == np.float32, "positions [T,3] float32")

with h5py.File(f"{fixtures}/attention.h5", "r") as f:
    att = f["layers/02/attention"][...]
    check(att.shape == (4, 2, 8, 8), f"attention shape {att.shape}")
    check(np.allclose(att.sum(-1), 1), "attention rows sum to 1")

with h5py.File(f"{fixtures}/precision-f16.h5", "r") as f, h5py.File(f"{fixtures}/precision-f64.h5", "r") as g:
    h = f["layers/01/tokens"]
    check(h.dtype == np.float16, f"float16 dataset reads as numpy float16 (got {h.dtype})")
    check(g["layers/01/tokens"].dtype == np.float64, "float64 dataset")
    check(np.array_equal(h[...].astype(np.float64), g["layers/01/tokens"][...]), "float16 and float64 fixtures agree")

with h5py.File(f"{fixtures}/run-b.h5", "r") as f:
    check(f["training/step"].dtype == np.int64 and list(f["training/step"][...]) == [0, 10, 20, 30], "training steps")
    check(f["training/loss"].shape == (4, 2) and f["training/loss"].dtype == np.float32, "training loss [S,K]")

print(f"{checks} passed, 0 failed")
