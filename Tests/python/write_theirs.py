"""Contract test, other direction: write a bwact/1 file the way a PyTorch user would with h5py.

Usage: write_theirs.py OUT.h5 {float16|float32|float64}
Token values are a closed form, tokens[i, j, k] at depth l = 0.5*i + 0.25*j - k/8 + l, which
the Swift test recomputes; the file is gzip-compressed and chunked by clips.
"""
import json
import sys

import h5py
import numpy as np

out, dtype = sys.argv[1], sys.argv[2]
N, T, D, L = 12, 4, 6, 3
i, j, k = np.meshgrid(np.arange(N), np.arange(T), np.arange(D), indexing="ij")
with h5py.File(out, "w") as f:
    f.attrs["format"] = "bwact"
    f.attrs["format_version"] = np.int64(1)
    f.attrs["run"] = "torch-run"
    f.attrs["regime"] = "external"
    f.attrs["block_ends"] = np.array([1, 3], dtype=np.int64)
    f.attrs["probe_set"] = "gratings"
    f.attrs["step"] = np.int64(5000)
    f.attrs["seed"] = np.int64(3)
    f.attrs["config"] = json.dumps({"model": "vit-tiny", "depth": L})
    for layer in range(L + 1):
        x = 0.5 * i + 0.25 * j - k / 8 + layer
        f.create_dataset(f"layers/{layer:02d}/tokens", data=x.astype(dtype), chunks=(5, T, D), compression="gzip")
    att = np.full((2, 3, T, T), 1.0 / T, dtype=np.float32)
    f.create_dataset("layers/02/attention", data=att)
    f.create_dataset("positions", data=np.array([[0, r * 16 + 7.5, c * 16 + 7.5] for r in range(2) for c in range(2)], dtype=np.float32))
    f.create_dataset("labels/direction", data=np.arange(N, dtype=np.int64) % 3)
    f.create_dataset("labels/speed", data=(np.arange(N) // 6).astype(np.int64))
print("wrote", out)
