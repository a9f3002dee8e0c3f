"""Reading bwact/1 files (and shard indexes) into numpy arrays, for notebooks."""
import os

import h5py
import numpy as np

from .writer import BwactError

ATTRIBUTES = ("run", "regime", "block_ends", "probe_set", "step", "seed", "config")


def _attr(v):
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.integer):
        return int(v)
    return v


class File:
    """An open bwact/1 file. Arrays are read on demand, so a file larger than memory is fine.

    Attributes: `attrs` (dict of the root attributes, as Python values), `depths` (0..L), `shape`
    (N, T, D), `targets`. Methods: `tokens(depth, clips=slice(None))`, `clip_vectors(depth)`,
    `labels(target=None)`, `clip_ids()`, `positions()`, `attention(depth)`. Close it or use `with`.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise BwactError(f"{self.path}: no such file")
        self._f = h5py.File(self.path, "r")
        f = self._f
        if _attr(f.attrs.get("format")) != "bwact":
            self._f.close()
            raise BwactError(f"{self.path}: not a bwact activation file (no root attribute format = 'bwact')")
        self.attrs = {k: _attr(v) for k, v in f.attrs.items()}
        names = sorted(f["layers"]) if "layers" in f else []
        self.depths = list(range(len(names)))
        if names != [f"{d:02d}" for d in self.depths]:
            self._f.close()
            raise BwactError(f"{self.path}: /layers: layers must be 00, 01, ... without gaps, got {names}")
        self.shape = tuple(f["layers/00/tokens"].shape)
        self.targets = sorted(f["labels"]) if "labels" in f else []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        self._f.close()

    def tokens(self, depth, clips=slice(None)):
        """Tokens [n, T, D] of depth `depth` (0 = embedding) for `clips` (a slice), as stored."""
        return self._f[f"layers/{int(depth):02d}/tokens"][clips]

    def clip_vectors(self, depth, batch=256):
        """Clip vectors [N, D] at `depth`: the mean over each clip's tokens, in float64."""
        ds = self._f[f"layers/{int(depth):02d}/tokens"]
        n = ds.shape[0]
        out = np.empty((n, ds.shape[2]), dtype=np.float64)
        for i in range(0, n, batch):
            out[i:i + batch] = ds[i:i + batch].astype(np.float64).mean(axis=1)
        return out

    def labels(self, target=None):
        """One target's class indices [N] (int64), or a dict of all targets when `target` is None."""
        if target is None:
            return {t: self._f[f"labels/{t}"][()] for t in self.targets}
        return self._f[f"labels/{target}"][()]

    def clip_ids(self):
        """The clip ids [N] (int64 array or list of str), or None when the file has none."""
        if "clip_ids" not in self._f:
            return None
        ds = self._f["clip_ids"]
        if ds.dtype.kind in "iu":
            return ds[()].astype(np.int64)
        return [s.decode("utf-8") if isinstance(s, bytes) else s for s in ds.asstr()[()]]

    def positions(self):
        return self._f["positions"][()] if "positions" in self._f else None

    def attention(self, depth):
        """Attention [M, H, T, T] of layer `depth`, or None when that layer stores none."""
        key = f"layers/{int(depth):02d}/attention"
        return self._f[key][()] if key in self._f else None


def open(path):  # noqa: A001 - the natural name in `bwact.open(path)`
    """Opens a bwact/1 file (or a shard index) for reading; see `File`."""
    return File(path)


def read(path, depths=None):
    """Reads a whole file into memory: a dict with 'attrs', 'layers' (list of [N, T, D] arrays for
    `depths`, default all), 'labels' (dict), 'clip_ids' (or None), 'positions' and 'attention'
    (dict depth -> [M, H, T, T])."""
    with File(path) as f:
        chosen = f.depths if depths is None else list(depths)
        attention = {}
        for d in f.depths:
            a = f.attention(d)
            if a is not None:
                attention[d] = a
        return {
            "attrs": dict(f.attrs),
            "layers": [f.tokens(d) for d in chosen],
            "labels": f.labels(),
            "clip_ids": f.clip_ids(),
            "positions": f.positions(),
            "attention": attention,
        }
