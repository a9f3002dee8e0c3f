"""A shard index: one bwact/1 file whose datasets are HDF5 virtual datasets over the shards' clips."""
import os
import tempfile

import h5py
import numpy as np

from .reader import ATTRIBUTES, _attr
from .writer import BwactError, publish

SHARD_ATTRIBUTES = ("shard_rank", "shard_world")


def _describe(path):
    """What must agree between shards, read from one shard (raises BwactError naming it)."""
    if not os.path.isfile(path):
        raise BwactError(f"{path}: no such shard")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise BwactError(f"{path}: cannot open as HDF5 ({e})") from None
    with f:
        if _attr(f.attrs.get("format")) != "bwact" or _attr(f.attrs.get("format_version")) != 1:
            raise BwactError(f"{path}: not a bwact/1 file (root attributes format, format_version)")
        for name in ("layers/00/tokens",) + tuple(f"layers/{d}/tokens" for d in sorted(f.get("layers", {}))):
            if name not in f:
                raise BwactError(f"{path}: /{name} is missing")
            ds = f[name]
            if ds.is_virtual:
                raise BwactError(f"{path}: /{name} is itself a virtual dataset; index the shards, not an index")
        depths = sorted(f["layers"])
        tokens = [f[f"layers/{d}/tokens"] for d in depths]
        n, t, dim = tokens[0].shape
        attention = {d: f[f"layers/{d}/attention"].shape for d in depths if f"layers/{d}/attention" in f}
        ids = f["clip_ids"] if "clip_ids" in f else None
        info = {
            "path": path,
            "attrs": {k: _attr(f.attrs[k]) for k in ATTRIBUTES if k in f.attrs},
            "rank": _attr(f.attrs["shard_rank"]) if "shard_rank" in f.attrs else None,
            "world": _attr(f.attrs["shard_world"]) if "shard_world" in f.attrs else None,
            "depths": depths,
            "n": n, "t": t, "d": dim,
            "dtypes": [str(ds.dtype) for ds in tokens],
            "shapes": [ds.shape for ds in tokens],
            "targets": sorted(f["labels"]) if "labels" in f else [],
            "ids_kind": None if ids is None else ("int" if ids.dtype.kind in "iu" else "str"),
            "ids": None if ids is None else ([int(i) for i in ids[()]] if ids.dtype.kind in "iu"
                                              else list(ids.asstr()[()])),
            "positions": f["positions"][()] if "positions" in f else None,
            "attention": attention,
        }
        for name, shape in zip(depths, info["shapes"]):
            if shape[0] != n or shape[1:] != (t, dim):
                raise BwactError(f"{path}: /layers/{name}/tokens has shape {shape}; /layers/00/tokens has {(n, t, dim)}")
        return info


def _check_agree(first, s):
    p = s["path"]
    for k in ATTRIBUTES:
        a, b = first["attrs"].get(k), s["attrs"].get(k)
        if a != b:
            raise BwactError(f"{p}: attribute {k} is {b!r}; shard {first['path']} has {a!r}")
    if s["depths"] != first["depths"]:
        raise BwactError(f"{p}: layers {s['depths'][0]}..{s['depths'][-1]} differ from shard {first['path']}'s "
                         f"{first['depths'][0]}..{first['depths'][-1]}")
    if (s["t"], s["d"]) != (first["t"], first["d"]):
        raise BwactError(f"{p}: T, D = {s['t']}, {s['d']}; shard {first['path']} has {first['t']}, {first['d']}")
    if s["dtypes"] != first["dtypes"]:
        raise BwactError(f"{p}: token dtypes {sorted(set(s['dtypes']))} differ from shard {first['path']}'s {sorted(set(first['dtypes']))}")
    if s["targets"] != first["targets"]:
        raise BwactError(f"{p}: label targets {s['targets']} differ from shard {first['path']}'s {first['targets']}")
    if s["ids_kind"] != first["ids_kind"]:
        raise BwactError(f"{p}: clip ids are {s['ids_kind'] or 'absent'}; shard {first['path']} has {first['ids_kind'] or 'none'}")
    pa, pb = first["positions"], s["positions"]
    if (pa is None) != (pb is None) or (pa is not None and not np.array_equal(pa, pb)):
        raise BwactError(f"{p}: /positions differ from shard {first['path']}'s")


def index_shards(out, shards):
    """Writes `out`, a bwact/1 file whose datasets are virtual datasets over `shards`.

    The shards must agree in their run attributes, layers, T, D, token dtypes, label targets,
    positions and kind of clip ids; clip ids must be unique across shards. Shards written with
    `shard=(rank, world)` are ordered by rank and must be exactly ranks 0..world-1; otherwise
    they keep the order given. Paths to the shards are stored relative to the index's folder,
    so the folder can be moved as a whole. Raises BwactError naming the offending shard.
    Returns the shard paths in index order.
    """
    out = os.fspath(out)
    shards = [os.fspath(s) for s in shards]
    if not shards:
        raise BwactError(f"{out}: give at least one shard")
    infos = [_describe(s) for s in shards]
    ranked = [i["rank"] is not None for i in infos]
    if any(ranked) and not all(ranked):
        bad = infos[ranked.index(False)]["path"]
        raise BwactError(f"{bad}: has no shard_rank attribute while other shards do")
    if all(ranked):
        world = infos[0]["world"]
        for i in infos:
            if i["world"] != world:
                raise BwactError(f"{i['path']}: shard_world is {i['world']}; shard {infos[0]['path']} has {world}")
        infos.sort(key=lambda i: i["rank"])
        for expected, i in enumerate(infos):
            if i["rank"] != expected:
                what = "twice" if i["rank"] < expected else f"but rank {expected} is missing"
                raise BwactError(f"{i['path']}: shard_rank {i['rank']} {what} (world {world})")
        if len(infos) != world:
            raise BwactError(f"{out}: {len(infos)} shards given for shard_world {world}; rank {len(infos)} is missing")
    first = infos[0]
    seen = {}
    for s in infos:
        _check_agree(first, s)
        for clip_id in s["ids"] or []:
            if clip_id in seen:
                raise BwactError(f"{s['path']}: clip id {clip_id!r} also occurs in shard {seen[clip_id]}")
            seen[clip_id] = s["path"]

    out_dir = os.path.dirname(os.path.abspath(out))
    rel = [os.path.relpath(os.path.abspath(s["path"]), out_dir) for s in infos]
    total = sum(s["n"] for s in infos)
    t, dim = first["t"], first["d"]
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(out) + ".", suffix=".partial", dir=out_dir)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            def concat(name, shape_tail, dtype):
                layout = h5py.VirtualLayout(shape=(total,) + shape_tail, dtype=dtype)
                offset = 0
                for s, r in zip(infos, rel):
                    layout[offset:offset + s["n"]] = h5py.VirtualSource(r, name, shape=(s["n"],) + shape_tail)
                    offset += s["n"]
                f.create_virtual_dataset(name, layout)

            for d, dt in zip(first["depths"], first["dtypes"]):
                concat(f"layers/{d}/tokens", (t, dim), np.dtype(dt))
            for target in first["targets"]:
                concat(f"labels/{target}", (), np.int64)
            if first["ids_kind"] == "int":
                concat("clip_ids", (), np.int64)
            elif first["ids_kind"] == "str":
                concat("clip_ids", (), h5py.string_dtype(encoding="utf-8"))
            # Attention covers the first clips of the run: those of the first shard.
            for d, shape in first["attention"].items():
                layout = h5py.VirtualLayout(shape=shape, dtype=np.float32)
                layout[...] = h5py.VirtualSource(rel[0], f"layers/{d}/attention", shape=shape)
                f.create_virtual_dataset(f"layers/{d}/attention", layout)
            with h5py.File(first["path"], "r") as src:
                for k, v in src.attrs.items():
                    if k not in SHARD_ATTRIBUTES:
                        f.attrs[k] = v
                f.attrs["shard_count"] = np.int64(len(infos))
                for name in ("positions", "training/step", "training/loss"):
                    if name in src:
                        f.create_dataset(name, data=src[name][()])
        publish(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return [s["path"] for s in infos]
