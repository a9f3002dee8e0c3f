"""A streaming writer of bwact/1 files: one batch of clips at a time, atomically."""
import json
import os
import tempfile

import h5py
import numpy as np

FORMAT = "bwact"
FORMAT_VERSION = 1
REGIMES = ("e2e", "simultaneous", "sequential", "external")
TOKEN_DTYPES = {"float32": np.float32, "float16": np.float16}
CHUNK_BYTES = 2 ** 20


class BwactError(ValueError):
    """Input that cannot be written as (or read from) a bwact/1 file; the message is one line."""


def _str_dtype():
    return h5py.string_dtype(encoding="utf-8")


def _as_int64(values, what):
    """Integer labels as int64; whole-valued floats (e.g. float tensors of class indices) are accepted."""
    a = np.asarray(values)
    whole_floats = a.dtype.kind == "f" and np.all(np.isfinite(a)) and np.all(a == np.round(a))
    if a.dtype.kind not in "iub" and not whole_floats:
        raise BwactError(f"{what}: expected integers, got dtype {a.dtype}")
    return a.astype(np.int64)


def publish(tmp, path):
    """Gives the finished temporary file the mode a new file would get (mkstemp makes it 0600),
    syncs it to disk and renames it to `path`."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _to_numpy(x):
    """numpy array from a numpy array, a list, or a torch tensor (detached, moved to the CPU)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu()
        if hasattr(x, "float") and str(getattr(x, "dtype", "")) == "torch.bfloat16":
            x = x.float()
        x = x.numpy()
    return np.asarray(x)


class Writer:
    """Writes one bwact/1 file (one run, one probe set, one step) batch by batch.

    Use it as a context manager. Everything is written to a hidden temporary file beside `path`,
    which is renamed to `path` when the block ends without an exception; on an exception the
    temporary file is removed and nothing appears under `path`.

    Parameters
    - path: the file to write (replaced if it exists, once the write has succeeded).
    - run, probe_set: names (str). step, seed: ints. regime: e2e, simultaneous, sequential or
      external (the default, for models trained by your own code).
    - block_ends: last layer of each block (int list); default [L] once L is known.
    - positions: [T, 3] token centres (frame, row, col); see `grid_positions`.
    - config: a dict (stored as JSON) or a JSON string; default "{}".
    - dtype: "float32" (default) or "float16" for the token datasets.
    - attention_clips: store attention for at most this many clips (the first ones); 0 = none.
    - shard: (rank, world) when this file is one of `world` shards of a run (see `bwact.index_shards`).
    - compression: None (default) or "gzip".
    """

    def __init__(self, path, *, run, probe_set, step=0, seed=0, regime="external", block_ends=None,
                 positions=None, config=None, dtype="float32", attention_clips=0, shard=None,
                 compression=None):
        self.path = os.fspath(path)
        if not isinstance(run, str) or not run:
            raise BwactError(f"{self.path}: run must be a non-empty str, got {run!r}")
        if not isinstance(probe_set, str) or not probe_set:
            raise BwactError(f"{self.path}: probe_set must be a non-empty str, got {probe_set!r}")
        if regime not in REGIMES:
            raise BwactError(f"{self.path}: regime must be one of {', '.join(REGIMES)}, got {regime!r}")
        for name, v in (("step", step), ("seed", seed)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise BwactError(f"{self.path}: {name} must be an int, got {v!r}")
        if dtype not in TOKEN_DTYPES:
            raise BwactError(f"{self.path}: dtype must be 'float32' or 'float16', got {dtype!r}")
        if config is None:
            config = "{}"
        elif not isinstance(config, str):
            config = json.dumps(config)
        else:
            try:
                json.loads(config)
            except ValueError as e:
                raise BwactError(f"{self.path}: config is not JSON text ({e})") from None
        if shard is not None:
            try:
                rank, world = (int(shard[0]), int(shard[1]))
            except (TypeError, ValueError, IndexError):
                raise BwactError(f"{self.path}: shard must be (rank, world), got {shard!r}") from None
            if not (world >= 1 and 0 <= rank < world):
                raise BwactError(f"{self.path}: shard (rank, world) needs 0 <= rank < world, got {shard!r}")
            shard = (rank, world)
        if positions is None:
            raise BwactError(f"{self.path}: positions are required ([T, 3] token centres; see bwact.grid_positions)")
        self.attrs = {"run": run, "regime": regime, "probe_set": probe_set, "step": int(step), "seed": int(seed),
                      "config": config}
        self.block_ends = None if block_ends is None else [int(b) for b in block_ends]
        self.positions = None if positions is None else np.asarray(positions, dtype=np.float32)
        self.dtype = np.dtype(TOKEN_DTYPES[dtype])
        self.attention_clips = int(attention_clips)
        self.shard = shard
        self.compression = compression
        self.clips = 0
        self._file = None
        self._tmp = None
        self._shape = None          # (L, T, D) after the first batch
        self._targets = None
        self._ids_kind = None        # None before the first batch, then "int", "str" or "none"
        self._ids_seen = set()
        self._attention = {}         # depth -> clips stored

    # context manager

    def __enter__(self):
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise BwactError(f"{self.path}: the folder {directory} does not exist")
        fd, self._tmp = tempfile.mkstemp(prefix="." + os.path.basename(self.path) + ".", suffix=".partial",
                                         dir=directory)
        os.close(fd)
        self._file = h5py.File(self._tmp, "w", track_order=False)
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            try:
                self._finish()
            except BaseException:
                self._discard()
                raise
            self._file.close()
            self._file = None
            publish(self._tmp, self.path)
            self._tmp = None
        else:
            self._discard()
        return False

    def _discard(self):
        if self._file is not None:
            try:
                self._file.close()
            except Exception:
                pass
            self._file = None
        if self._tmp is not None and os.path.exists(self._tmp):
            os.remove(self._tmp)
        self._tmp = None

    # batches

    def add(self, layers, labels, clip_ids=None, attention=None):
        """Appends one batch of B clips.

        - layers: a list of L+1 arrays [B, T, D] (depth 0 = the embedding output, then each layer's
          output), numpy arrays or torch tensors, floating point.
        - labels: dict target name -> B non-negative integers. Every batch has the same targets.
        - clip_ids: B ints or B strs, unique within the file; either every batch has them or none.
        - attention: dict depth (1..L) -> [B, H, T, T] softmax attention; stored for the first
          `attention_clips` clips only.
        """
        if self._file is None:
            raise BwactError(f"{self.path}: add() is only allowed inside the `with Writer(...)` block")
        where = f"{self.path}: batch starting at clip {self.clips}"
        if not isinstance(layers, (list, tuple)) or len(layers) < 2:
            raise BwactError(f"{where}: layers must be a list of L+1 >= 2 arrays [B, T, D] (depth 0 and layers 1..L)")
        arrays = [_to_numpy(x) for x in layers]
        for d, a in enumerate(arrays):
            if a.ndim != 3:
                raise BwactError(f"{where}: depth {d} has shape {a.shape}; expected [B, T, D]")
            if a.dtype.kind != "f":
                raise BwactError(f"{where}: depth {d} has dtype {a.dtype}; expected floating point tokens")
        b, t, dim = arrays[0].shape
        if b == 0:
            raise BwactError(f"{where}: the batch is empty")
        for d, a in enumerate(arrays):
            if a.shape != (b, t, dim):
                raise BwactError(f"{where}: depth {d} has shape {a.shape}; depth 0 has {(b, t, dim)}")
            if not np.all(np.isfinite(a)):
                raise BwactError(f"{where}: depth {d} holds NaN or Inf")
        shape = (len(arrays) - 1, t, dim)
        if self._shape is None:
            self._create(shape)
        elif shape != self._shape:
            raise BwactError(f"{where}: got L, T, D = {shape}; earlier batches had {self._shape}")

        if not isinstance(labels, dict) or not labels:
            raise BwactError(f"{where}: labels must be a dict target -> [B] class indices, with at least one target")
        ys = {}
        for name, y in labels.items():
            if not isinstance(name, str) or not name or "/" in name:
                raise BwactError(f"{where}: label target names are non-empty strs without '/', got {name!r}")
            y = _as_int64(_to_numpy(y), f"{where}: labels {name!r}")
            if y.shape != (b,):
                raise BwactError(f"{where}: labels {name!r} have shape {y.shape}; expected ({b},)")
            if y.size and y.min() < 0:
                raise BwactError(f"{where}: labels {name!r} hold a negative class index ({y.min()})")
            ys[name] = y
        if self._targets is None:
            self._targets = sorted(ys)
        elif sorted(ys) != self._targets:
            raise BwactError(f"{where}: targets {sorted(ys)} differ from earlier batches' {self._targets}")

        ids = self._check_ids(clip_ids, b, where)
        atts = self._check_attention(attention, b, where)

        n0, n1 = self.clips, self.clips + b
        f = self._file
        for d, a in enumerate(arrays):
            ds = f[f"layers/{d:02d}/tokens"]
            ds.resize(n1, axis=0)
            ds[n0:n1] = a.astype(self.dtype, copy=False)
        for name, y in ys.items():
            ds = f[f"labels/{name}"] if f"labels/{name}" in f else f.create_dataset(
                f"labels/{name}", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(4096,))
            ds.resize(n1, axis=0)
            ds[n0:n1] = y
        if ids is not None:
            ds = f["clip_ids"]
            ds.resize(n1, axis=0)
            ds[n0:n1] = ids
        for depth, a in atts.items():
            have = self._attention.get(depth, 0)
            take = min(b, self.attention_clips - have)
            ds = f.get(f"layers/{depth:02d}/attention")
            if ds is None:
                ds = f.create_dataset(f"layers/{depth:02d}/attention", shape=(0,) + a.shape[1:],
                                      maxshape=(None,) + a.shape[1:], dtype=np.float32, chunks=(1,) + a.shape[1:])
            elif ds.shape[1:] != a.shape[1:]:
                raise BwactError(f"{where}: attention of depth {depth} has shape {a.shape}; earlier batches had {ds.shape[1:]} per clip")
            ds.resize(have + take, axis=0)
            ds[have:have + take] = a[:take].astype(np.float32)
            self._attention[depth] = have + take
        self.clips = n1

    def _create(self, shape):
        L, t, dim = shape
        f = self._file
        per_clip = t * dim * self.dtype.itemsize
        chunk = max(1, CHUNK_BYTES // per_clip)
        for d in range(L + 1):
            f.create_dataset(f"layers/{d:02d}/tokens", shape=(0, t, dim), maxshape=(None, t, dim), dtype=self.dtype,
                             chunks=(chunk, t, dim), compression=self.compression)
        if self.block_ends is None:
            self.block_ends = [L]
        be = self.block_ends
        if not be or any(b2 <= b1 for b1, b2 in zip(be, be[1:])) or be[0] < 1 or be[-1] != L:
            raise BwactError(f"{self.path}: block_ends {be} must be strictly increasing within 1..L and end at L = {L}")
        if self.positions.shape != (t, 3):
            raise BwactError(f"{self.path}: positions have shape {self.positions.shape}; expected ({t}, 3) for T = {t} tokens")
        self._shape = shape

    def _check_ids(self, clip_ids, b, where):
        kind = "none"
        ids = None
        if clip_ids is not None:
            raw = _to_numpy(clip_ids) if not isinstance(clip_ids, (list, tuple)) else clip_ids
            if isinstance(raw, (list, tuple)) and raw and all(isinstance(s, str) for s in raw):
                kind, ids = "str", list(raw)
            else:
                a = np.asarray(raw)
                if a.dtype.kind in "US":
                    kind, ids = "str", [str(s) for s in a.tolist()]
                elif a.dtype.kind in "iu":
                    kind, ids = "int", a.astype(np.int64)
                else:
                    raise BwactError(f"{where}: clip_ids must be ints or strs, got dtype {a.dtype}")
            if len(ids) != b:
                raise BwactError(f"{where}: {len(ids)} clip_ids for {b} clips")
        if self._ids_kind is None:
            self._ids_kind = kind
            if kind != "none":
                dt = np.int64 if kind == "int" else _str_dtype()
                self._file.create_dataset("clip_ids", shape=(0,), maxshape=(None,), dtype=dt, chunks=(4096,))
        elif kind != self._ids_kind:
            raise BwactError(f"{where}: clip_ids are {kind} here but {self._ids_kind} in earlier batches; give every batch ids of one kind, or none")
        if ids is not None:
            keys = [int(i) for i in ids] if kind == "int" else ids
            for k in keys:
                if k in self._ids_seen:
                    raise BwactError(f"{where}: clip id {k!r} occurs twice; clip ids are unique within a file")
                self._ids_seen.add(k)
        return ids

    def _check_attention(self, attention, b, where):
        if not attention:
            return {}
        L, t, _ = self._shape
        out = {}
        for depth, a in attention.items():
            depth = int(depth)
            if not 1 <= depth <= L:
                raise BwactError(f"{where}: attention for depth {depth}; layers are 1..{L}")
            have = self._attention.get(depth, 0)
            if have >= self.attention_clips:
                continue
            if have != self.clips:
                raise BwactError(f"{where}: attention of depth {depth} must cover the first clips without gaps; earlier batches stored it for {have} of {self.clips} clips")
            a = _to_numpy(a)
            if a.ndim != 4 or a.shape[0] != b or a.shape[2:] != (t, t):
                raise BwactError(f"{where}: attention of depth {depth} has shape {a.shape}; expected [B={b}, H, T={t}, T={t}]")
            if a.dtype.kind != "f" or not np.all(np.isfinite(a)):
                raise BwactError(f"{where}: attention of depth {depth} must be finite floating point")
            out[depth] = a
        return out

    def _finish(self):
        if self._shape is None:
            raise BwactError(f"{self.path}: no clips were added; a bwact file holds at least one clip")
        f = self._file
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = np.int64(FORMAT_VERSION)
        f.attrs["run"] = self.attrs["run"]
        f.attrs["regime"] = self.attrs["regime"]
        f.attrs["block_ends"] = np.asarray(self.block_ends, dtype=np.int64)
        f.attrs["probe_set"] = self.attrs["probe_set"]
        f.attrs["step"] = np.int64(self.attrs["step"])
        f.attrs["seed"] = np.int64(self.attrs["seed"])
        f.attrs["config"] = self.attrs["config"]
        if self.shard is not None:
            f.attrs["shard_rank"] = np.int64(self.shard[0])
            f.attrs["shard_world"] = np.int64(self.shard[1])
        f.create_dataset("positions", data=self.positions)
        f.flush()


def grid_positions(tubelet, input_size):
    """Token centres [T, 3] (frame, row, col) of a grid of tubelets, in the order frames, rows, columns.

    tubelet = (t, h, w) and input_size = (frames, height, width), as given to a Conv3d tubelet
    embedding with stride = kernel = tubelet. An 8x16x16 tubelet over frames 0-7 and pixels 0-15
    has centre (3.5, 7.5, 7.5). This is the order of `conv(x).flatten(2).transpose(1, 2)`.
    """
    t, h, w = (int(v) for v in tubelet)
    frames, height, width = (int(v) for v in input_size)
    if min(t, h, w) < 1 or frames % t or height % h or width % w:
        raise BwactError(f"input size {tuple(input_size)} is not a whole number of tubelets {tuple(tubelet)}")
    ft, fr, fc = np.meshgrid(np.arange(frames // t), np.arange(height // h), np.arange(width // w), indexing="ij")
    pos = np.stack([ft * t + (t - 1) / 2, fr * h + (h - 1) / 2, fc * w + (w - 1) / 2], axis=-1)
    return pos.reshape(-1, 3).astype(np.float32)
