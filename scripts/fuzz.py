#!/usr/bin/env python3
"""Mutation fuzzer for bwanalyze and bwtrain: damages copies of activation files, shard indexes,
checkpoints and clip files, and checks that every command either succeeds or fails with one error line
naming the file.

Two levels of mutation (--structure sets the share of the second; the rest are byte-level):

  - byte level: a fixture with a few bytes flipped, overwritten or cut off, aimed mostly near HDF5
    structure signatures (object headers, B-trees, heaps, the superblock);
  - structure level: one object of the file (a root attribute, the tokens or attention of a layer,
    labels, positions, clip ids, the training curve, a virtual dataset of a shard index, a shard behind
    it, a checkpoint's arrays, a clip file's pixels) changed in one way, counted per object kind and
    per mutation kind:
      attr-value / attr-type   an attribute given a hostile value, or another type or shape (h5py)
      dtype / dataspace        a dataset re-created with another datatype, or other dims (h5py)
      layout / filter          re-created contiguous, compact, chunked oddly, external, or with a
                               filter pipeline (gzip, shuffle, fletcher32, lzf, scale-offset, n-bit,
                               an unknown optional filter), sometimes with a damaged filtered chunk
      values                   hostile values written in place (NaN, huge, negative, repeated ids, ...)
      links                    the object removed, replaced by a group, linked in a loop, aliased,
                               linked to another file, or an extra or missing layer
      vds-mapping              a virtual dataset of an index re-created with a hostile mapping
      attr-msg / dtype-msg / dataspace-msg / layout-msg / filter-msg
                               bytes of that message changed in the object's header in the file
      chunk-index              an entry of the dataset's chunk index (address, size, filter mask,
                               offsets) or its B-tree node (level, entry count, siblings) rewritten
      chunk-data               bytes of a stored chunk or contiguous data rewritten
    Checksummed metadata (superblock, object headers, fixed-array index blocks) damaged this way gets
    its checksum recomputed most of the time, so the damage reaches the parser behind the checksum.

Base files: the committed fixtures, h5py rewrites of three of them in the oldest file format (no
checksums), files written by the python/bwact package (float32 with gzip, string clip ids, attention
and a training curve; float16 with int clip ids), a shard index of three bwact shards (virtual
datasets; its mutants are a folder with the index and the shards, one of them damaged), and with
--bwtrain a finished quick run's checkpoint and a small clip file.

Every activation mutant is run through `validate` and through commands taken in turn from COMMANDS
(--commands-per-mutant, --all-commands), or with --rotate through one command each, validate taking
its turn with the others. A run is a failure when it

  - is killed by a signal (crash) or exits with a status other than 0 and 1 (abort exit),
  - runs longer than --timeout seconds (hang),
  - fails without exactly one line on standard error that starts with "bwanalyze: error:" and names the
    damaged file (validate lists its findings on standard output instead and must name the file there),
  - prints an HDF5 diagnostic trace, changes an input file, or leaves anything but a regular file at
    an -o path,
  - fails to read a file that `validate` passed (the rule: a file validate passes works with every command).

With --bwtrain, bwtrain's two readers are fuzzed too, every third mutant in turn: a damaged training
checkpoint (`checkpoint.h5` of a finished quick run, resumed with no steps left and no dumps, so a
checkpoint that still loads ends at once: the load-only path) and a damaged `--data` clip file (trained
for one step). Such a run fails the same ways, with "bwtrain: error:" as its error line, and also when a
failing resume changes the checkpoint.

Usage: fuzz.py --binary .build/debug/bwanalyze --fixtures Fixtures --mutants 500 --seed 11 [--bwtrain .build/debug/bwtrain]
Mutant M of a seed is the same whatever else runs: --only M,M2 regenerates and runs just those, and
--save-mutants DIR keeps them. Exit status 0 when no run failed, 1 otherwise; the summary gives the runs
per command, mutants and runs per object kind and per mutation kind, and the mutants per base file; a
line "fuzz: ..." ends the output.
"""
import argparse
import concurrent.futures
import hashlib
import json
import math
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

try:
    import h5py
    import numpy as np
except ImportError:  # byte-level mutants only
    h5py = None
    np = None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# HDF5 structure signatures: byte-level mutations are aimed near them most of the time.
SIGNATURES = [b"\x89HDF\r\n\x1a\n", b"OHDR", b"OCHK", b"TREE", b"HEAP", b"GCOL", b"SNOD", b"BTHD", b"BTLF",
              b"BTIN", b"FRHP", b"FHDB", b"FHIB", b"FSHD", b"FSSE", b"SMTB", b"SMLI", b"FAHD", b"FADB",
              b"EAHD", b"EAIB", b"EADB"]
INTERESTING = [0, 1, 0x7F, 0x80, 0xFF]
INTERESTING64 = [0, 1, 2**31 - 1, 2**32 - 1, 2**40, 2**63 - 1, 2**64 - 1, 0xFFFFFFFF00000000]

# Commands tried in turn (besides validate, which every mutant gets). FILE is the mutant (a shard
# index for shard mutants), PARTNER an undamaged file over the same clips, INPUT what `report` is given
# (the mutant, or the folder of an index and its shards), OUT a fresh path, OUTDIR a fresh folder.
COMMANDS = [
    ["inspect", "FILE"],
    ["cka", "FILE", "--depth", "layers"],
    ["spectrum", "FILE"],
    ["probe", "FILE"],
    ["retrieval", "FILE"],
    ["tokens", "FILE"],
    ["attention", "FILE"],
    ["occdrop", "FILE", "PARTNER"],
    ["cka", "FILE", "PARTNER", "--format", "csv", "-o", "OUT"],
    ["inspect", "FILE", "--json"],
    ["report", "INPUT", "--out", "OUTDIR", "--quick", "--quiet"],
    ["occdrop", "PARTNER", "FILE", "--protocol", "retrain"],
]


# ---------------------------------------------------------------------------------------------------
# Byte level

def signature_offsets(data):
    found = []
    for sig in SIGNATURES:
        start = 0
        while True:
            i = data.find(sig, start)
            if i < 0:
                break
            found.append(i)
            start = i + 1
    return sorted(found)


def mutate(data, rng):
    """A damaged copy of `data` and a short description of what was done."""
    data = bytearray(data)
    offsets = signature_offsets(data)
    steps = []
    for _ in range(rng.choice([1, 1, 1, 2, 3, 4])):
        def where():
            r = rng.random()
            if offsets and r < 0.6:
                return min(len(data) - 1, max(0, rng.choice(offsets) + rng.randrange(-16, 96)))
            if r < 0.8:
                return rng.randrange(min(len(data), 4096))
            return rng.randrange(len(data))
        kind = rng.choice(["bits", "bytes", "interesting", "word", "truncate", "zero-run"])
        if kind == "truncate" and len(data) > 64:
            cut = rng.randrange(len(data) // 8, len(data))
            del data[cut:]
            steps.append(f"truncate@{cut}")
            continue
        i = where()
        if kind == "bits":
            for _ in range(rng.randrange(1, 9)):
                j = min(len(data) - 1, i + rng.randrange(0, 8))
                data[j] ^= 1 << rng.randrange(8)
        elif kind == "bytes":
            for j in range(i, min(len(data), i + rng.randrange(1, 17))):
                data[j] = rng.randrange(256)
        elif kind == "interesting":
            v = rng.choice(INTERESTING)
            for j in range(i, min(len(data), i + rng.randrange(1, 9))):
                data[j] = v
        elif kind == "word":
            v = rng.choice(INTERESTING64)
            width = rng.choice([2, 4, 8])
            chunk = (v & ((1 << (8 * width)) - 1)).to_bytes(width, "little")
            data[i:i + width] = chunk[:max(0, len(data) - i)]
        else:
            n = rng.randrange(1, 64)
            data[i:i + n] = bytes(min(n, len(data) - i))
        steps.append(f"{kind}@{i}")
    return bytes(data), " ".join(steps)


# ---------------------------------------------------------------------------------------------------
# The HDF5 file format, as far as the structure-level mutations need it (HDF5 file format
# specification, version 2/3 superblocks, version 1 and 2 object headers, version 1 B-trees, fixed
# arrays; 8-byte addresses and lengths, as every file here has).

M32 = 0xFFFFFFFF


def u16(d, i):
    return int.from_bytes(d[i:i + 2], "little")


def u32(d, i):
    return int.from_bytes(d[i:i + 4], "little")


def u64(d, i):
    return int.from_bytes(d[i:i + 8], "little")


def put(d, i, value, width):
    """Writes `value` as a little-endian integer of `width` bytes at i (clipped at the end of d)."""
    if i < 0 or i >= len(d):
        return
    b = (value & ((1 << (8 * width)) - 1)).to_bytes(width, "little")
    d[i:i + width] = b[:len(d) - i]


def _rot(x, k):
    return ((x << k) | (x >> (32 - k))) & M32


def lookup3(key, initval=0):
    """Bob Jenkins' lookup3 hashlittle, the checksum of HDF5 metadata."""
    length = len(key)
    a = b = c = (0xDEADBEEF + length + initval) & M32
    i = 0
    while length > 12:
        a = (a + u32(key, i)) & M32
        b = (b + u32(key, i + 4)) & M32
        c = (c + u32(key, i + 8)) & M32
        a = (a - c) & M32; a ^= _rot(c, 4); c = (c + b) & M32
        b = (b - a) & M32; b ^= _rot(a, 6); a = (a + c) & M32
        c = (c - b) & M32; c ^= _rot(b, 8); b = (b + a) & M32
        a = (a - c) & M32; a ^= _rot(c, 16); c = (c + b) & M32
        b = (b - a) & M32; b ^= _rot(a, 19); a = (a + c) & M32
        c = (c - b) & M32; c ^= _rot(b, 4); b = (b + a) & M32
        length -= 12
        i += 12
    if length == 0:
        return c
    tail = bytes(key[i:i + length]) + bytes(12 - length)
    a = (a + u32(tail, 0)) & M32
    b = (b + u32(tail, 4)) & M32
    c = (c + u32(tail, 8)) & M32
    c ^= b; c = (c - _rot(b, 14)) & M32
    a ^= c; a = (a - _rot(c, 11)) & M32
    b ^= a; b = (b - _rot(a, 25)) & M32
    c ^= b; c = (c - _rot(b, 16)) & M32
    a ^= c; a = (a - _rot(c, 4)) & M32
    b ^= a; b = (b - _rot(a, 14)) & M32
    c ^= b; c = (c - _rot(b, 24)) & M32
    return c


def find_all(data, sig):
    out, start = [], 0
    while True:
        i = data.find(sig, start)
        if i < 0:
            return out
        out.append(i)
        start = i + 1


def checksummed_blocks(data):
    """[(start, end)] of metadata blocks whose lookup3 checksum is stored at data[end:end+4], each
    verified against the stored checksum: the v2/v3 superblock, v2 object headers and their
    continuation blocks, fixed-array headers and data blocks, v2 B-tree headers."""
    blocks = []

    def add(s, e):
        if 0 <= s < e and e + 4 <= len(data) and e - s < (1 << 20) and lookup3(data[s:e]) == u32(data, e):
            blocks.append((s, e))
            return True
        return False

    if data[:8] == SIGNATURES[0] and len(data) > 48 and data[8] in (2, 3):
        add(0, 44)
    for s in find_all(data, b"OHDR"):
        if s + 8 > len(data):
            continue
        flags = data[s + 5]
        p = s + 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
        w = 1 << (flags & 3)
        size = int.from_bytes(data[p:p + w], "little")
        if add(s, p + w + size):
            for t, at, n in header_messages(data, s):
                if t == 0x10 and n >= 16:
                    c, length = u64(data, at), u64(data, at + 8)
                    if length >= 8:
                        add(c, c + length - 4)
    for s in find_all(data, b"FAHD"):
        add(s, s + 24)
    for s in find_all(data, b"FADB"):
        h = u64(data, s + 6)
        if 0 <= h < len(data) - 24 and data[h:h + 4] == b"FAHD":
            entry, page_bits, n = data[h + 6], data[h + 7], u64(data, h + 8)
            if n <= (1 << page_bits) and n * entry < (1 << 20):
                add(s, s + 14 + n * entry)
    for s in find_all(data, b"BTHD"):
        add(s, s + 34)
    return blocks


def refresh_checksums(data, blocks):
    for s, e in blocks:
        if e + 4 <= len(data):
            put(data, e, lookup3(data[s:e]), 4)


def header_messages(data, addr):
    """[(type, start, size)] of the messages of the object header at addr (version 1 or 2), following
    continuation blocks; [] when there is no header there."""
    msgs = []
    n = len(data)
    if addr < 0 or addr + 16 > n:
        return msgs
    if data[addr:addr + 4] == b"OHDR":
        flags = data[addr + 5]
        p = addr + 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
        w = 1 << (flags & 3)
        size = int.from_bytes(data[p:p + w], "little")
        blocks = [(p + w, p + w + size)]
        extra = 2 if flags & 0x04 else 0
        while blocks and len(msgs) < 2000:
            s, e = blocks.pop(0)
            e = min(e, n)
            p = s
            while p + 4 + extra <= e:
                t, sz = data[p], u16(data, p + 1)
                p += 4 + extra
                if p + sz > e:
                    break
                msgs.append((t, p, sz))
                if t == 0x10 and sz >= 16:
                    c, length = u64(data, p), u64(data, p + 8)
                    if 0 < c < n and data[c:c + 4] == b"OCHK" and length > 8:
                        blocks.append((c + 4, c + length - 4))
                p += sz
    elif data[addr] == 1:
        size = u32(data, addr + 8)
        blocks = [(addr + 16, addr + 16 + size)]
        while blocks and len(msgs) < 2000:
            s, e = blocks.pop(0)
            e = min(e, n)
            p = s
            while p + 8 <= e:
                t, sz = u16(data, p), u16(data, p + 2)
                p += 8
                if p + sz > e:
                    break
                msgs.append((t, p, sz))
                if t == 0x10 and sz >= 16:
                    c, length = u64(data, p), u64(data, p + 8)
                    if 0 < c < n and length < n:
                        blocks.append((c, c + length))
                p += sz
    return msgs


MSG_DATASPACE, MSG_DATATYPE, MSG_LAYOUT, MSG_FILTERS, MSG_ATTRIBUTE = 0x01, 0x03, 0x08, 0x0B, 0x0C


def attribute_messages(data, name):
    """Start offsets of attribute messages (version 1 or 3) named `name` anywhere in the file (compact
    storage in an object header or dense storage in a fractal heap)."""
    key = name.encode() + b"\x00"
    out = []
    for i in find_all(data, key):
        if i >= 8 and data[i - 8] == 1 and u16(data, i - 6) == len(key):
            out.append((i - 8, 1))
        if i >= 9 and data[i - 9] == 3 and u16(data, i - 7) == len(key):
            out.append((i - 9, 3))
    return out


# ---------------------------------------------------------------------------------------------------
# Structure level

class Skip(Exception):
    """This mutation does not apply to this object."""


def kind_of(name):
    """The object kind of a dataset path."""
    parts = name.strip("/").split("/")
    if parts[0] == "layers" and len(parts) == 3:
        return {"tokens": "tokens", "attention": "attention"}.get(parts[2], "other")
    return {"labels": "labels", "positions": "positions", "clip_ids": "clip-ids", "training": "training",
            "clips": "pixels", "arrays": "arrays", "ints": "ints"}.get(parts[0], "other")


def objects_of(path):
    """Object kind -> dataset paths of a file, plus "root-attrs" -> root attribute names."""
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out.setdefault(kind_of(name), []).append(name)
        f.visititems(visit)
        out["root-attrs"] = sorted(f.attrs.keys())
    out.pop("other", None)
    return out


HOSTILE_STRINGS = ["", " ", "bwact ", "BWACT", "bwckpt", "e2e\x00junk", "evil\x1b[2J\x07name", "\u202egnirts",
                   "x" * 300, "{", "[" * 100_000, "{\"a\": " * 50_000, "null", "1e999", "\ud800", "caf\u00e9",
                   "external", "sequential", "a/b", "."]
HOSTILE_INTS = [0, 1, -1, 2, 7, 399, 2**31 - 1, 2**31, 2**32, 2**40, 2**62, 2**63 - 1, -2**63]
HOSTILE_FLOATS = [float("nan"), float("inf"), float("-inf"), 1e38, -1e38, 1e-45, -0.0, 0.5, 65504.0]


def hostile_same_type(rng, old):
    """A hostile value of the attribute's own type: (value, dtype or None, description)."""
    if isinstance(old, str) or (isinstance(old, bytes)):
        s = rng.choice(HOSTILE_STRINGS + ["huge"])
        if s == "huge":
            s = "y" * rng.choice([256, 257, 4 * 2**20 + 1, 6 * 2**20])
        if "\x00" in s:  # (a variable-length string cannot hold NUL; a fixed-length one can)
            return np.bytes_(s.encode()), None, f"fixed-length string {s!r}"
        return s, None, f"string of {len(s)} chars {s[:12]!r}"
    a = np.asarray(old)
    if a.dtype.kind in "iu":
        if a.ndim == 0:
            v = rng.choice(HOSTILE_INTS)
            return np.int64(v), None, f"int {v}"
        choice = rng.choice(["empty", "one", "decreasing", "repeat", "huge", "negative", "long", "beyond"])
        vals = {"empty": [], "one": [1], "decreasing": [4, 2], "repeat": [2, 2], "huge": [1, 2**62],
                "negative": [-1, 2], "beyond": list(a.tolist()[:-1]) + [a.max() + 7 if a.size else 9],
                "long": list(range(1, 70_001))}[choice]
        return np.asarray(vals, dtype=np.int64), None, f"int array {choice} ({len(vals)})"
    if a.dtype.kind == "f":
        v = rng.choice(HOSTILE_FLOATS)
        return np.full(a.shape, v, dtype=a.dtype), None, f"float {v}"
    raise Skip


def hostile_other_type(rng, f, old):
    """The attribute as another type or shape: (value, dtype or None, description)."""
    choice = rng.choice(["int64", "int32", "uint64", "int8", "float64", "float32-nan", "float16", "bool", "vlen-str",
                         "vlen-invalid-utf8", "fixed-ascii", "fixed-utf8", "fixed-1", "int-2d", "int-3",
                         "str-array", "empty-array", "null", "compound", "opaque", "enum", "vlen-int", "big-endian",
                         "reference", "float-array"])
    if choice == "int64":
        return np.int64(1), None, choice
    if choice == "int32":
        return np.int32(1), None, choice
    if choice == "uint64":
        return np.uint64(2**64 - 1), None, choice
    if choice == "int8":
        return np.int8(-1), None, choice
    if choice == "float64":
        return np.float64(1.0), None, choice
    if choice == "float32-nan":
        return np.float32("nan"), None, choice
    if choice == "float16":
        return np.float16(1.5), None, choice
    if choice == "bool":
        return np.bool_(True), None, choice
    if choice == "vlen-str":
        return str(old if not isinstance(old, np.ndarray) else old.tolist()), None, choice
    if choice == "vlen-invalid-utf8":
        return np.array(b"bw\xff\xfe\x80act", dtype=object), h5py.string_dtype("utf-8"), choice
    if choice == "fixed-ascii":
        return np.bytes_(b"bwact"), None, choice
    if choice == "fixed-utf8":
        return np.array("e2e".encode(), dtype="S7"), h5py.string_dtype("utf-8", 7), choice
    if choice == "fixed-1":
        return np.array(b"b", dtype="S1"), None, choice
    if choice == "int-2d":
        return np.arange(6, dtype=np.int64).reshape(2, 3), None, choice
    if choice == "int-3":
        return np.array([1, 1, 1], dtype=np.int64), None, choice
    if choice == "str-array":
        return np.array(["bwact", "e2e"], dtype=h5py.string_dtype()), None, choice
    if choice == "empty-array":
        return np.zeros(0, dtype=np.int64), None, choice
    if choice == "null":
        return h5py.Empty(rng.choice(["i8", "f4"])), None, choice
    if choice == "compound":
        return np.array((1, 2.5), dtype=[("a", "<i8"), ("b", "<f8")]), None, choice
    if choice == "opaque":
        return np.void(b"\x01" * 8), None, choice
    if choice == "enum":
        return np.int8(1), h5py.enum_dtype({"a": 0, "b": 1}, basetype="i1"), choice
    if choice == "vlen-int":
        a = np.empty(1, dtype=object)
        a[0] = np.arange(3, dtype=np.int64)
        return a, h5py.vlen_dtype(np.int64), choice
    if choice == "big-endian":
        return np.array([1, 2] if rng.random() < 0.5 else 1, dtype=">i8"), None, choice
    if choice == "reference":
        return f.ref, h5py.ref_dtype, choice
    return np.array([0.5, float("nan")], dtype="f8"), None, choice


def set_attr(obj, name, value, dtype):
    if name in obj.attrs:
        del obj.attrs[name]
    if dtype is None:
        obj.attrs[name] = value
    else:
        obj.attrs.create(name, value, dtype=dtype)


def mut_attr(path, target, rng, kind):
    """attr-value / attr-type on the root (target "/") or on a dataset."""
    with h5py.File(path, "a") as f:
        obj = f[target]
        names = sorted(obj.attrs.keys())
        extra = ["shard_rank", "shard_world", "shard_count", "format", "format_version", "s_config"]
        if kind == "attr-value":
            if not names:
                raise Skip
            name = rng.choice(names)
            if rng.random() < 0.12:
                del obj.attrs[name]
                return f"{target} attr {name} removed"
            old = obj.attrs[name]
            value, dtype, what = hostile_same_type(rng, old)
        else:
            name = rng.choice(names + extra[:2] if names else extra)
            old = obj.attrs[name] if name in obj.attrs else ""
            value, dtype, what = hostile_other_type(rng, f, old)
        set_attr(obj, name, value, dtype)
        return f"{target} attr {name} := {what}"


def _copy_plist(ds):
    """Keyword arguments that re-create ds's storage as it is (chunks, compression)."""
    kw = {}
    if ds.chunks is not None:
        kw["chunks"] = ds.chunks
        kw["maxshape"] = ds.maxshape
        if ds.compression in ("gzip", "lzf"):
            kw["compression"] = ds.compression
        if ds.shuffle:
            kw["shuffle"] = True
    return kw


def _recreate(f, name, data=None, shape=None, dtype=None, keep=True, **kw):
    """Replaces dataset `name` with a new one (old attributes kept)."""
    old = f[name]
    attrs = {k: old.attrs[k] for k in old.attrs}
    args = dict(_copy_plist(old)) if keep else {}
    args.update(kw)
    del f[name]
    if data is not None and shape is None:
        ds = f.create_dataset(name, data=data, dtype=dtype, **args)
    else:
        ds = f.create_dataset(name, shape=shape, dtype=dtype, data=data, **args)
    for k, v in attrs.items():
        ds.attrs[k] = v
    return ds


def _read(ds):
    if ds.shape is None:
        return None
    if ds.dtype.kind in "OS" or h5py.check_string_dtype(ds.dtype):
        return ds.asstr()[()] if h5py.check_string_dtype(ds.dtype) else ds[()]
    return ds[()]


DTYPES = ["<f2", "<f4", "<f8", ">f2", ">f4", ">f8", "i1", "u1", "<i2", "<i4", "<i8", ">i8", "<u2", "<u4", "<u8",
          ">u8", "bool", "complex", "compound", "vlen-str", "fixed-str", "opaque", "array", "enum", "vlen-f4"]


def mut_dtype(path, name, rng):
    """The dataset re-created with another datatype (values converted where they can be)."""
    with h5py.File(path, "a") as f:
        ds = f[name]
        data = _read(ds)
        if data is None:
            raise Skip
        choice = rng.choice(DTYPES)
        a = np.asarray(data)
        with np.errstate(all="ignore"):
            num = a.astype(np.float64) if a.dtype.kind in "iufb" else np.zeros(a.shape)
        keep = choice not in ("vlen-str", "vlen-f4", "array", "compound")
        if choice == "complex":
            new, dt = num.astype(np.complex64), None
        elif choice == "compound":
            dt = np.dtype([("value", "<f4"), ("index", "<i8")])
            new = np.zeros(a.shape, dtype=dt)
            new["value"] = num
        elif choice == "vlen-str":
            new, dt = np.array([str(x) for x in num.ravel()], dtype=object).reshape(a.shape), h5py.string_dtype()
        elif choice == "fixed-str":
            new, dt = np.array([str(x)[:8].encode() for x in num.ravel()], dtype="S8").reshape(a.shape), None
        elif choice == "opaque":
            new, dt = np.frombuffer(num.astype("<f4").tobytes(), dtype="V4").reshape(a.shape), None
        elif choice == "array":
            dt = np.dtype(("<f4", (2,)))
            new = np.repeat(num.astype("<f4")[..., None], 2, axis=-1)
        elif choice == "enum":
            dt = h5py.enum_dtype({"zero": 0, "one": 1}, basetype="i1")
            new = (num != 0).astype("i1")
        elif choice == "vlen-f4":
            dt = h5py.vlen_dtype(np.float32)
            new = np.empty(a.shape, dtype=object)
            for idx in np.ndindex(a.shape):
                new[idx] = np.array([num[idx]], dtype=np.float32)
        else:
            with np.errstate(all="ignore"):
                new, dt = num.astype(choice), None
        _recreate(f, name, data=new, dtype=dt, keep=keep)
        return f"{name} re-created as {choice}"


def mut_dataspace(path, name, rng):
    """The dataset re-created with other dims: zero, one more or less, huge (not stored), another rank,
    scalar, null, unlimited."""
    with h5py.File(path, "a") as f:
        ds = f[name]
        shape = ds.shape
        if shape is None or ds.dtype.kind == "V":
            raise Skip
        data = _read(ds)
        dtype = ds.dtype
        choice = rng.choice(["zero-first", "zero-last", "minus-one", "plus-one", "inner-plus-one", "transpose",
                             "extra-rank-last", "extra-rank-first", "drop-rank", "flatten", "scalar", "null",
                             "huge-sparse", "huge-contiguous", "unlimited", "rank-32"])
        s = list(shape)
        if choice in ("zero-first", "zero-last"):
            if not s:
                raise Skip
            s[0 if choice == "zero-first" else -1] = 0
            _recreate(f, name, shape=tuple(s), dtype=dtype, keep=False)
        elif choice in ("minus-one", "plus-one", "inner-plus-one"):
            if not s:
                raise Skip
            axis = 0 if choice != "inner-plus-one" else rng.randrange(len(s))
            s[axis] = max(0, s[axis] + (-1 if choice == "minus-one" else 1))
            new = np.resize(np.asarray(data), tuple(s)) if 0 not in s else None
            _recreate(f, name, data=new, shape=tuple(s), dtype=dtype, keep=False)
        elif choice == "transpose":
            if len(s) < 2:
                raise Skip
            _recreate(f, name, data=np.ascontiguousarray(np.asarray(data).T), dtype=dtype, keep=False)
        elif choice == "extra-rank-last":
            _recreate(f, name, data=np.asarray(data)[..., None], dtype=dtype, keep=False)
        elif choice == "extra-rank-first":
            _recreate(f, name, data=np.stack([np.asarray(data)] * 2), dtype=dtype, keep=False)
        elif choice == "drop-rank":
            if len(s) < 1:
                raise Skip
            _recreate(f, name, data=np.asarray(data)[..., 0] if len(s) > 1 else np.asarray(data)[0], dtype=dtype,
                      keep=False)
        elif choice == "flatten":
            _recreate(f, name, data=np.asarray(data).ravel(), dtype=dtype, keep=False)
        elif choice == "scalar":
            _recreate(f, name, data=np.asarray(data).ravel()[0] if np.asarray(data).size else 0, dtype=dtype,
                      keep=False)
        elif choice == "null":
            attrs = {k: ds.attrs[k] for k in ds.attrs}
            del f[name]
            f.create_dataset(name, data=h5py.Empty(dtype))
            for k, v in attrs.items():
                f[name].attrs[k] = v
        elif choice == "huge-sparse":
            if not s:
                raise Skip
            axis = rng.randrange(len(s))
            s[axis] = rng.choice([2**31, 2**40, 2**48])
            chunks = tuple(max(1, min(c, 64)) for c in shape)
            # (unlimited max dims: with fixed ones libhdf5 sizes a fixed-array index by the dims, and
            # crashes writing this file)
            new = _recreate(f, name, shape=tuple(s), dtype=dtype, keep=False, chunks=chunks,
                            maxshape=(None,) * len(s))
            if rng.random() < 0.5 and np.asarray(data).size:
                sel = tuple(slice(0, c) for c in chunks)
                new[sel] = np.resize(np.asarray(data), chunks)
        elif choice == "huge-contiguous":
            if not s:
                raise Skip
            s[0] = rng.choice([2**20, 2**31, 2**36])
            _recreate(f, name, shape=tuple(s), dtype=dtype, keep=False)
        elif choice == "unlimited":
            if not s:
                raise Skip
            _recreate(f, name, data=data, dtype=dtype, keep=False, maxshape=(None,) * len(s),
                      chunks=tuple(max(1, (c + 1) // 2) for c in s))
        else:
            _recreate(f, name, shape=(1,) * 32, dtype=dtype, keep=False)
        return f"{name} {shape} re-created {choice}"


def mut_layout(path, name, rng):
    """The dataset's storage re-created: contiguous, compact, tiny or whole chunks, unlimited, external
    raw storage, fill value with unwritten chunks, a committed datatype."""
    with h5py.File(path, "a") as f:
        ds = f[name]
        data = _read(ds)
        if data is None:
            raise Skip
        a = np.asarray(data)
        choice = rng.choice(["contiguous", "compact", "tiny-chunks", "whole-chunk", "odd-chunks", "external-missing",
                             "external-self", "external-dev-zero", "partly-written", "committed-type"])
        if choice == "contiguous":
            _recreate(f, name, data=data, dtype=ds.dtype, keep=False)
        elif choice == "compact":
            if a.nbytes > 60_000 or a.dtype.kind == "O":
                raise Skip
            attrs = {k: ds.attrs[k] for k in ds.attrs}
            del f[name]
            dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            dcpl.set_layout(h5py.h5d.COMPACT)
            space = h5py.h5s.create_simple(a.shape)
            tid = h5py.h5t.py_create(a.dtype, logical=True)
            dsid = h5py.h5d.create(f.id, name.encode(), tid, space, dcpl=dcpl)
            dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(a))
            for k, v in attrs.items():
                f[name].attrs[k] = v
        elif choice in ("tiny-chunks", "whole-chunk", "odd-chunks"):
            if a.ndim == 0 or 0 in a.shape:
                raise Skip
            if choice == "tiny-chunks":
                chunks = (1,) * a.ndim
                if a.size > 20_000:
                    chunks = (1,) + a.shape[1:]
            elif choice == "whole-chunk":
                chunks = a.shape
            else:
                chunks = tuple(rng.randrange(1, c + 1) for c in a.shape)
            _recreate(f, name, data=data, dtype=ds.dtype, keep=False, chunks=chunks,
                      compression=rng.choice([None, "gzip"]))
        elif choice.startswith("external"):
            if a.dtype.kind == "O":
                raise Skip
            target = {"external-missing": "missing-raw.bin", "external-self": os.path.basename(path),
                      "external-dev-zero": "/dev/zero"}[choice]
            _recreate(f, name, shape=a.shape, dtype=a.dtype, keep=False,
                      external=[(target, rng.choice([0, 1024]), max(1, a.nbytes))])
        elif choice == "partly-written":
            if a.ndim == 0 or a.shape[0] < 2:
                raise Skip
            fill = np.nan if a.dtype.kind == "f" else 0
            new = _recreate(f, name, shape=a.shape, dtype=a.dtype, keep=False,
                            chunks=(1,) + a.shape[1:], fillvalue=fill)
            new[0] = a[0]
        else:
            if a.dtype.kind == "O":
                raise Skip
            tname = "shared_type"
            if tname not in f:
                f[tname] = a.dtype
            _recreate(f, name, data=a, dtype=f[tname], keep=False)
        return f"{name} re-created {choice}"


def mut_filter(path, name, rng):
    """The dataset re-created with a filter pipeline, sometimes with a damaged filtered chunk."""
    with h5py.File(path, "a") as f:
        ds = f[name]
        data = _read(ds)
        if data is None:
            raise Skip
        a = np.asarray(data)
        if a.ndim == 0 or 0 in a.shape or a.dtype.kind == "O":
            raise Skip
        chunks = tuple(max(1, c // rng.choice([1, 1, 2])) for c in a.shape)
        choice = rng.choice(["gzip", "gzip-9", "shuffle-gzip", "fletcher32", "fletcher32-gzip", "lzf", "scaleoffset",
                             "nbit", "unknown-optional", "shuffle"])
        if choice in ("nbit", "unknown-optional"):
            attrs = {k: ds.attrs[k] for k in ds.attrs}
            del f[name]
            dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            dcpl.set_chunk(chunks)
            if choice == "nbit":
                dcpl.set_filter(h5py.h5z.FILTER_NBIT, 0, ())
            else:
                dcpl.set_filter(rng.choice([307, 32001, 32004, 32015, 40000]), h5py.h5z.FLAG_OPTIONAL, (1, 2))
            space = h5py.h5s.create_simple(a.shape)
            tid = h5py.h5t.py_create(a.dtype, logical=True)
            dsid = h5py.h5d.create(f.id, name.encode(), tid, space, dcpl=dcpl)
            dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(a))
            for k, v in attrs.items():
                f[name].attrs[k] = v
        else:
            kw = {"gzip": dict(compression="gzip"), "gzip-9": dict(compression="gzip", compression_opts=9),
                  "shuffle-gzip": dict(compression="gzip", shuffle=True), "fletcher32": dict(fletcher32=True),
                  "fletcher32-gzip": dict(fletcher32=True, compression="gzip"), "lzf": dict(compression="lzf"),
                  "scaleoffset": dict(scaleoffset=(0 if a.dtype.kind in "iu" else 2)),
                  "shuffle": dict(shuffle=True)}[choice]
            if choice == "scaleoffset" and a.dtype.kind not in "iuf":
                raise Skip
            _recreate(f, name, data=a, dtype=a.dtype, keep=False, chunks=chunks, **kw)
    how = f"{name} re-created with {choice} chunks {chunks}"
    if rng.random() < 0.5:
        how += "; " + damage_chunk(path, name, rng)
    return how


def damage_chunk(path, name, rng):
    """Rewrites bytes of one stored chunk (or of contiguous data) of dataset `name`."""
    with h5py.File(path, "r") as f:
        ds = f[name]
        spans = []
        if ds.chunks is not None:
            for i in range(min(ds.id.get_num_chunks(), 64)):
                info = ds.id.get_chunk_info(i)
                if info.byte_offset is not None and info.size:
                    spans.append((info.byte_offset, info.size))
            filtered = ds.id.get_create_plist().get_nfilters() > 0
        else:
            off = ds.id.get_offset()
            if off is not None and ds.id.get_storage_size():
                spans.append((off, ds.id.get_storage_size()))
            filtered = False
        itemsize = ds.dtype.itemsize
        is_float = ds.dtype.kind == "f"
        order = ">" if ds.dtype.byteorder == ">" else "<"
    if not spans:
        raise Skip
    off, size = rng.choice(spans)
    data = bytearray(open(path, "rb").read())
    choice = rng.choice(["random", "zeros", "ones", "head", "tail", "float-special" if is_float and not filtered
                         else "bits"])
    if choice == "float-special":
        v = rng.choice(HOSTILE_FLOATS)
        raw = np.array([v], dtype=f"{order}f{itemsize}").tobytes()
        for _ in range(rng.randrange(1, 5)):
            j = off + rng.randrange(max(1, size // itemsize)) * itemsize
            data[j:j + itemsize] = raw
        what = f"value {v}"
    else:
        if choice == "head":
            i, n = off, min(size, rng.choice([1, 2, 8]))
        elif choice == "tail":
            n = min(size, rng.choice([1, 4, 16, 64]))
            i = off + size - n
        else:
            i = off + rng.randrange(size)
            n = min(rng.choice([1, 4, 16, 256]), off + size - i)
        for j in range(i, i + n):
            data[j] = {"random": rng.randrange(256), "zeros": 0, "ones": 0xFF}.get(choice, data[j] ^ (1 << rng.randrange(8)))
        what = f"{choice} {n} bytes"
    open(path, "wb").write(bytes(data))
    return f"chunk at {off} ({size} bytes): {what}"


def mut_chunk_data(path, name, rng):
    return f"{name}: " + damage_chunk(path, name, rng)


def mut_chunk_index(path, name, rng):
    """Rewrites one entry of the dataset's chunk index: its address, size, filter mask or offsets, or a
    field of the version 1 B-tree node holding it. The dataset is first re-created chunked (a version 1
    B-tree, as h5py writes by default) unless it already is and a coin says keep its own index."""
    with h5py.File(path, "a") as f:
        ds = f[name]
        a = _read(ds)
        if a is None or np.asarray(a).ndim == 0 or 0 in np.asarray(a).shape or ds.is_virtual:
            raise Skip
        recreated = ""
        if ds.chunks is None or rng.random() < 0.5:
            a = np.asarray(a)
            chunks = tuple(max(1, c // rng.choice([1, 2, 3])) for c in a.shape)
            dt = h5py.string_dtype() if a.dtype.kind in "OU" else a.dtype
            ds = _recreate(f, name, data=a, dtype=dt, keep=False, chunks=chunks,
                           compression=rng.choice([None, None, "gzip"]), maxshape=(None,) * a.ndim)
            recreated = f" (re-created with chunks {chunks})"
        rank = len(ds.shape)
        infos = [ds.id.get_chunk_info(i) for i in range(min(ds.id.get_num_chunks(), 256))]
    infos = [i for i in infos if i.byte_offset is not None]
    if not infos:
        raise Skip
    data = bytearray(open(path, "rb").read())
    blocks = checksummed_blocks(data)
    entries = []        # (key start, address position) in version 1 B-tree nodes
    loose = []          # other places the address occurs (fixed arrays, single-chunk layout messages)
    for info in infos:
        addr = info.byte_offset.to_bytes(8, "little")
        for p in find_all(data, addr):
            key = p - 8 - 8 * (rank + 1)
            if key >= 24 and u32(data, key) == info.size and all(
                    u64(data, key + 8 + 8 * k) == info.chunk_offset[k] for k in range(rank)):
                entries.append((key, p, info))
            elif not (info.byte_offset <= p < info.byte_offset + info.size):
                loose.append((p, info))
    field = ""
    if entries:
        key, p, info = rng.choice(entries)
        node = data.rfind(b"TREE", 0, key)
        choice = rng.choice(["address", "address", "size", "size", "mask", "offset", "offset", "level", "entries",
                             "sibling", "cycle"])
        eof = len(data)
        if choice == "address":
            other = rng.choice(infos).byte_offset
            v = rng.choice([0, 1, eof, eof + 4096, 2**63, 2**64 - 1, info.byte_offset + rng.randrange(-16, 17),
                            other, node if node >= 0 else 0, 48])
            put(data, p, v, 8)
        elif choice == "size":
            v = rng.choice([0, 1, info.size - 1, info.size + 1, info.size * 1000, 2**31 - 1, 2**32 - 1])
            put(data, key, v, 4)
        elif choice == "mask":
            v = rng.choice([1, 2, 0xFFFFFFFF, 0x80000000])
            put(data, key + 4, v, 4)
        elif choice == "offset":
            k = rng.randrange(rank + 1)
            other = rng.choice(infos).chunk_offset
            v = rng.choice([1, 2**40, 2**63, 2**64 - 1, other[k] if k < rank else 0,
                            (info.chunk_offset[k] + 1) if k < rank else 8])
            put(data, key + 8 + 8 * k, v, 8)
        elif node < 0:
            raise Skip
        elif choice == "level":
            v = rng.choice([1, 2, 255])
            data[node + 5] = v
        elif choice == "entries":
            v = rng.choice([0, u16(data, node + 6) + 1, 64, 65535])
            put(data, node + 6, v, 2)
        elif choice == "sibling":
            v = rng.choice([node, 0, eof, 2**64 - 2])
            put(data, node + rng.choice([8, 16]), v, 8)
        else:
            data[node + 5] = 1
            put(data, p, node, 8)
            v = node
        field = f"v1 B-tree entry of chunk {info.chunk_offset}: {choice} := {v}"
    elif loose:
        p, info = rng.choice(loose)
        choice = rng.choice(["address", "size"])
        if choice == "address":
            v = rng.choice([0, len(data), 2**64 - 1, info.byte_offset + rng.randrange(-16, 17), 2**40])
            put(data, p, v, 8)
        else:
            v = rng.choice([0, 1, info.size * 2, 2**31, 0xFFFF])
            width = next((w for w in (8, 4, 3, 2, 1) if int.from_bytes(data[p + 8:p + 8 + w], "little") == info.size), 2)
            put(data, p + 8, v, width)
        field = f"index entry of chunk {info.chunk_offset} at {p}: {choice} := {v}"
    else:
        raise Skip
    fixed = ""
    if blocks and rng.random() < 0.8:
        refresh_checksums(data, blocks)
        fixed = " +checksums"
    open(path, "wb").write(bytes(data))
    return f"{name}{recreated}: {field}{fixed}"


def _mutate_message_bytes(data, t, p, sz, rng):
    """Changes a field of a message (type t, data at p, sz bytes); returns a description."""
    targeted = rng.random() < 0.65
    if targeted and t == MSG_DATASPACE:
        version = data[p]
        rank = data[p + 1]
        dims_at = p + (8 if version == 1 else 4)
        choice = rng.choice(["rank", "dim", "dim", "maxdims-flag", "type"])
        if choice == "rank":
            v = rng.choice([0, 1, 2, 5, 32, 33, 255])
            data[p + 1] = v
        elif choice == "dim" and rank:
            k = rng.randrange(rank)
            old = u64(data, dims_at + 8 * k)
            v = rng.choice([0, 1, old + 1, old - 1 if old else 2, old * 2, 2**31, 2**40, 2**63, 2**64 - 1])
            put(data, dims_at + 8 * k, v, 8)
        elif choice == "maxdims-flag":
            data[p + 2] ^= 1
            v = data[p + 2]
        else:
            v = rng.choice([0, 1, 2, 3, 255]) if version == 2 else rng.choice([0, 3, 255])
            data[p + (3 if version == 2 else 0)] = v
        return f"dataspace {choice} := {v}"
    if targeted and t == MSG_DATATYPE:
        choice = rng.choice(["class", "byte-order", "sign", "size", "size", "properties", "version"])
        if choice == "class":
            v = (data[p] & 0xF0) | rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 15])
            data[p] = v
        elif choice == "version":
            v = (data[p] & 0x0F) | (rng.choice([0, 2, 3, 4, 5, 15]) << 4)
            data[p] = v
        elif choice == "byte-order":
            data[p + 1] ^= 1
            v = data[p + 1]
        elif choice == "sign":
            data[p + 1] ^= 8
            v = data[p + 1]
        elif choice == "size":
            old = u32(data, p + 4)
            v = rng.choice([0, 1, 3, 5, 7, old * 2, old // 2, 2**31, 2**32 - 1])
            put(data, p + 4, v, 4)
        else:
            j = p + 8 + rng.randrange(max(1, sz - 8))
            v = rng.choice([0, 1, 0x7F, 0xFF, 64, 65])
            data[j] = v
        return f"datatype {choice} := {v}"
    if targeted and t == MSG_LAYOUT:
        version = data[p]
        choice = rng.choice(["class", "field", "field", "version"])
        if choice == "class":
            v = rng.choice([0, 1, 2, 3, 7])
            data[p + 1] = v
        elif choice == "version":
            v = rng.choice([1, 2, 5, 255])
            data[p] = v
        else:
            j = p + 2 + rng.randrange(max(1, sz - 2))
            w = rng.choice([1, 4, 8])
            v = rng.choice(INTERESTING64)
            put(data, j, v, w)
            return f"layout v{version} field @{j - p} := {v}"
        return f"layout {choice} := {v}"
    if targeted and t == MSG_FILTERS:
        version = data[p]
        first = p + (8 if version == 1 else 2)
        choice = rng.choice(["count", "id", "id", "flags", "cvalues", "name-length", "cvalue"])
        if choice == "count":
            v = rng.choice([0, 2, 32, 33, 255])
            data[p + 1] = v
        elif choice == "id":
            v = rng.choice([0, 1, 2, 3, 4, 5, 6, 307, 32000, 32001, 32015, 65535])
            put(data, first, v, 2)
        elif choice == "flags":
            data[first + (4 if version == 1 else 2)] ^= 1
            v = "toggled optional"
        elif choice == "cvalues":
            v = rng.choice([0, 1, 255, 65535])
            put(data, first + (6 if version == 1 else 4), v, 2)
        elif choice == "name-length":
            v = rng.choice([0, 7, 255, 65535])
            put(data, first + 2, v, 2)
        else:
            j = first + 8 + rng.randrange(max(1, sz - (first - p) - 8))
            v = rng.choice([0, 10, 255, 2**31, 2**32 - 1])
            put(data, j, v, 4)
        return f"filter pipeline v{version} {choice} := {v}"
    if targeted and t == MSG_ATTRIBUTE:
        version = data[p]
        choice = rng.choice(["name-size", "type-size", "space-size", "type-class", "type-size-field", "space-rank",
                             "space-dim", "encoding"])
        if choice in ("name-size", "type-size", "space-size"):
            j = p + {"name-size": 2, "type-size": 4, "space-size": 6}[choice]
            v = rng.choice([0, 1, u16(data, j) + 1, 255, 65535])
            put(data, j, v, 2)
            return f"attribute v{version} {choice} := {v}"
        name_len, type_len = u16(data, p + 2), u16(data, p + 4)
        pad = (lambda n: (n + 7) & ~7) if version == 1 else (lambda n: n)
        type_at = p + (8 if version == 1 else 9) + pad(name_len)
        space_at = type_at + pad(type_len)
        if choice == "type-class":
            v = (data[type_at] & 0xF0) | rng.choice([0, 1, 3, 6, 9, 10, 15])
            put(data, type_at, v, 1)
        elif choice == "type-size-field":
            v = rng.choice([0, 1, 2**31, 2**32 - 1, 3])
            put(data, type_at + 4, v, 4)
        elif choice == "space-rank":
            v = rng.choice([0, 1, 2, 32, 33, 255])
            put(data, space_at + 1, v, 1)
        elif choice == "space-dim":
            v = rng.choice([0, 2, 2**31, 2**40, 2**64 - 1])
            put(data, space_at + (8 if data[space_at] == 1 else 4), v, 8)
        else:
            v = rng.choice([1, 2, 255])
            put(data, p + 8, v, 1) if version == 3 else put(data, p + 1, v, 1)
        return f"attribute v{version} {choice} := {v}"
    j = p + rng.randrange(max(1, sz))
    w = rng.choice([1, 1, 2, 4, 8])
    v = rng.choice(INTERESTING64 + INTERESTING + [rng.randrange(256)])
    put(data, j, v, w)
    return f"byte @{j - p} of message 0x{t:x} := {v} ({w} bytes)"


MSG_KINDS = {"dtype-msg": MSG_DATATYPE, "dataspace-msg": MSG_DATASPACE, "layout-msg": MSG_LAYOUT,
             "filter-msg": MSG_FILTERS, "attr-msg": MSG_ATTRIBUTE}


def mut_message(path, target, rng, kind):
    """Bytes of one message of the object's header (or, for attributes, of the attribute message
    wherever it is stored) changed in the file; checksums recomputed most of the time."""
    t = MSG_KINDS[kind]
    if kind == "filter-msg":
        with h5py.File(path, "r") as f:
            has = f[target].id.get_create_plist().get_layout() == h5py.h5d.CHUNKED and \
                f[target].id.get_create_plist().get_nfilters() > 0
        if not has:
            mut_filter_plain(path, target, rng)
    with h5py.File(path, "r") as f:
        obj = f[target]
        addr = h5py.h5o.get_info(obj.id).addr
        names = sorted(obj.attrs.keys()) if kind == "attr-msg" else []
    data = bytearray(open(path, "rb").read())
    blocks = checksummed_blocks(data)
    if kind == "attr-msg":
        if not names:
            raise Skip
        name = rng.choice(names)
        found = attribute_messages(data, name)
        if not found:
            raise Skip
        start, version = rng.choice(found)
        what = f"attr {name}: " + _mutate_message_bytes(data, t, start, 64, rng)
    else:
        msgs = [m for m in header_messages(data, addr) if m[0] == t]
        if not msgs:
            raise Skip
        _, p, sz = rng.choice(msgs)
        what = _mutate_message_bytes(data, t, p, sz, rng)
    fixed = ""
    if blocks and rng.random() < 0.8:
        refresh_checksums(data, blocks)
        fixed = " +checksums"
    open(path, "wb").write(bytes(data))
    return f"{target} {what}{fixed}"


def mut_filter_plain(path, name, rng):
    """Re-creates the dataset with gzip and shuffle, so that it has a filter pipeline message."""
    with h5py.File(path, "a") as f:
        a = np.asarray(_read(f[name]))
        if a.ndim == 0 or 0 in a.shape or a.dtype.kind in "OSUV":
            raise Skip
        _recreate(f, name, data=a, dtype=a.dtype, keep=False, chunks=a.shape, compression="gzip", shuffle=True,
                  fletcher32=rng.random() < 0.3)


def mut_values(path, name, rng):
    """Hostile values written in place, by object kind."""
    kind = kind_of(name)
    with h5py.File(path, "a") as f:
        ds = f[name]
        if ds.is_virtual or ds.shape is None or ds.size == 0:
            raise Skip
        a = _read(ds)
        a = np.array(a, copy=True)
        flat = a.reshape(-1)
        i = rng.randrange(flat.size)
        if kind == "clip-ids":
            choice = rng.choice(["duplicate", "empty", "control", "long", "extreme"])
            if a.dtype.kind in "iu":
                if choice == "duplicate" and flat.size > 1:
                    flat[i] = flat[(i + 1) % flat.size]
                else:
                    flat[i] = rng.choice([-2**63, 2**63 - 1, -1])
                    choice = "extreme"
            else:
                flat = flat.astype(object)
                flat[i] = {"duplicate": flat[(i + 1) % flat.size], "empty": "", "control": "id\x1b[31m\n2",
                           "long": "c" * 100_000, "extreme": "\u202e" + str(flat[i])}[choice]
                ds[...] = flat.reshape(a.shape)
                return f"{name}[{i}] := {choice}"
        elif kind in ("labels", "ints"):
            choice = rng.choice(["negative", "huge", "min", "all-same", "all-distinct"])
            if choice == "all-same":
                flat[:] = flat[0]
            elif choice == "all-distinct":
                flat[:] = np.arange(flat.size) * 7
            else:
                flat[i] = {"negative": -1, "huge": 2**62, "min": -2**63}[choice]
                if a.dtype.kind != "i" or a.dtype.itemsize < 8:
                    with np.errstate(all="ignore"):
                        flat[i] = np.array([-1]).astype(a.dtype)[0]
        elif kind == "attention":
            choice = rng.choice(["row-sum-2", "negative", "nan", "zero-row", "near-one", "all-inf"])
            t = a.shape[-1] if a.ndim else 1
            row = (i // t) * t
            if choice == "row-sum-2":
                flat[row:row + t] *= 2
            elif choice == "negative":
                flat[row] = -0.5
                flat[row + 1 if t > 1 else row] += 0.5
            elif choice == "nan":
                flat[i] = np.nan
            elif choice == "zero-row":
                flat[row:row + t] = 0
            elif choice == "near-one":
                flat[row:row + t] *= 1.0009
            else:
                flat[:] = np.inf
        elif a.dtype.kind == "f":
            choice = rng.choice(["nan", "inf", "huge", "denormal", "zero-all", "constant-clips", "huge-all", "neg-zero"])
            if choice == "zero-all":
                flat[:] = 0
            elif choice == "constant-clips":
                a[...] = a[:1] if a.ndim else a
            elif choice == "huge-all":
                with np.errstate(all="ignore"):
                    flat[:] = np.finfo(a.dtype).max / 2
            else:
                flat[i] = {"nan": np.nan, "inf": -np.inf, "huge": np.finfo(a.dtype).max, "denormal": 1e-45,
                           "neg-zero": -0.0}[choice]
        elif a.dtype.kind == "u":
            choice = "max"
            flat[i] = np.iinfo(a.dtype).max
        else:
            raise Skip
        ds[...] = a
        return f"{name} values {choice}"


def mut_links(path, name, rng):
    """The object removed, replaced, aliased, linked in a loop or to another file; extra or missing layers."""
    kind = kind_of(name)
    with h5py.File(path, "a") as f:
        others = []
        f.visititems(lambda n, o: others.append(n) if isinstance(o, h5py.Dataset) and n != name else None)
        choice = rng.choice(["remove", "group", "soft-self", "soft-other", "dangling", "hard-alias", "external-missing",
                             "external-self", "external-dev-zero", "extra-layer", "layer-gap", "odd-layer-name",
                             "odd-target-name", "many-groups"])
        if choice in ("extra-layer", "layer-gap", "odd-layer-name", "many-groups") and "layers" not in f:
            choice = "remove"
        if choice == "odd-target-name" and kind != "labels":
            choice = "soft-other"
        if choice in ("soft-other", "hard-alias") and not others:
            choice = "remove"
        parent = name.rsplit("/", 1)[0] if "/" in name.strip("/") else "/"
        if choice == "remove":
            del f[name]
        elif choice == "group":
            del f[name]
            f.create_group(name)
        elif choice == "soft-self":
            del f[name]
            f[name] = h5py.SoftLink("/" + name.strip("/"))
        elif choice == "soft-other":
            del f[name]
            f[name] = h5py.SoftLink("/" + rng.choice(others))
        elif choice == "dangling":
            del f[name]
            f[name] = h5py.SoftLink("/no/such/object")
        elif choice == "hard-alias":
            other = rng.choice(others)
            del f[name]
            f[name] = f[other]
        elif choice.startswith("external"):
            target = {"external-missing": "missing-file.h5", "external-self": os.path.basename(path),
                      "external-dev-zero": "/dev/zero"}[choice]
            del f[name]
            f[name] = h5py.ExternalLink(target, "/" + name.strip("/"))
        elif choice == "extra-layer":
            last = sorted(f["layers"])[-1]
            new = rng.choice([f"{int(last) + 1:02d}" if last.isdigit() else "99", "99", "100"])
            f.create_group(f"layers/{new}")
            if rng.random() < 0.5:
                f[f"layers/{new}/tokens"] = f[f"layers/{last}/tokens"]
        elif choice == "layer-gap":
            layers = sorted(f["layers"])
            f.move(f"layers/{layers[-1]}", f"layers/{int(layers[-1]) + 2:02d}" if layers[-1].isdigit() else "layers/77")
        elif choice == "odd-layer-name":
            layers = sorted(f["layers"])
            new = rng.choice(["1", "001", "x1", "-1", "01 ", "\u00e9\u00e9", "99999999999999999999"])
            f.move(f"layers/{rng.choice(layers)}", f"layers/{new}")
        elif choice == "odd-target-name":
            new = rng.choice(["", "\x1b[31mred", "t" * 300, "\u202ename", " "])
            if new == "":
                new = "."
                f.move(name, f"{parent}/{new}x")
            else:
                f.move(name, f"{parent}/{new}")
        else:
            for k in range(rng.choice([300, 2000])):
                f.create_group(f"layers/g{k:05d}")
        return f"{name} {choice}"


def mut_vds_mapping(path, name, rng):
    """A virtual dataset of an index re-created with a hostile mapping."""
    with h5py.File(path, "a") as f:
        ds = f[name]
        if not ds.is_virtual:
            raise Skip
        sources = ds.virtual_sources()
        shape, dtype = ds.shape, ds.dtype
        attrs = {k: ds.attrs[k] for k in ds.attrs}
        files = sorted({s.file_name for s in sources})
        base_dir = os.path.dirname(path)
        choice = rng.choice(["missing-file", "absolute-path", "self-dataset", "index-file", "wrong-dataset",
                             "source-too-big", "overlap", "gap", "dtype-i8", "dtype-f8", "many-mappings", "printf-name",
                             "text-file", "directory", "shape-rank", "dev-zero"])
        n = shape[0]
        tail = shape[1:]
        layout_dtype = {"dtype-i8": np.int64, "dtype-f8": np.float64}.get(choice, dtype)
        layout = h5py.VirtualLayout(shape=shape if choice != "shape-rank" else shape + (1,), dtype=layout_dtype)
        if choice == "text-file":
            with open(os.path.join(base_dir, "notes.h5"), "w") as fh:
                fh.write("not hdf5\n")
        per = [(s.file_name, s.dset_name, s.vspace.get_select_bounds()) for s in sources]
        if choice in ("overlap", "gap", "source-too-big", "dtype-i8", "dtype-f8", "wrong-dataset", "many-mappings",
                      "shape-rank", "printf-name"):
            offset = 0
            for k, (fname, dname, bounds) in enumerate(per):
                lo, hi = bounds[0][0], bounds[1][0] + 1
                count = hi - lo
                if choice == "gap" and k == len(per) - 1:
                    break
                src_n = count + (5 if choice == "source-too-big" else 0)
                dn = dname if choice != "wrong-dataset" or k else "/no/such/dataset"
                fn = fname if choice != "printf-name" or k else "shard-rank%b.h5"
                src = h5py.VirtualSource(fn, dn, shape=(src_n,) + tail)
                if choice == "many-mappings":
                    for r in range(count):
                        layout[lo + r] = src[r]
                elif choice == "shape-rank":
                    layout[lo:hi, ..., 0] = src[0:count]
                else:
                    start = lo if choice != "overlap" else max(0, lo - 2)
                    stop = min(n, start + count)
                    layout[start:stop] = src[0:stop - start]
        else:
            target = {"missing-file": ("missing-shard.h5", name), "absolute-path": ("/nonexistent/shard.h5", name),
                      "self-dataset": (".", name), "index-file": (os.path.basename(path), name),
                      "text-file": ("notes.h5", name), "directory": ("..", name),
                      "dev-zero": ("/dev/zero", name)}[choice]
            src = h5py.VirtualSource(target[0], target[1], shape=shape)
            if rng.random() < 0.5 and per:
                lo, hi = per[0][2][0][0], per[0][2][1][0] + 1
                layout[lo:hi] = h5py.VirtualSource(per[0][0], per[0][1], shape=(hi - lo,) + tail)
                layout[hi:] = src[hi:]
            else:
                layout[...] = src
        del f[name]
        f.create_virtual_dataset(name, layout, fillvalue=rng.choice([None, 0, -1]) if dtype.kind in "iuf" else None)
        for k, v in attrs.items():
            f[name].attrs[k] = v
        return f"{name} virtual mapping {choice} (sources {', '.join(files)})"


DATASET_MUTATIONS = ["dtype", "dtype-msg", "dataspace", "dataspace-msg", "layout", "layout-msg", "chunk-index",
                     "chunk-data", "filter", "filter-msg", "values", "links"]
VIRTUAL_MUTATIONS = ["vds-mapping", "vds-mapping", "vds-mapping", "vds-mapping", "vds-mapping", "dtype", "dtype-msg", "dataspace", "dataspace-msg",
                     "layout-msg", "links"]
ATTR_MUTATIONS = ["attr-value", "attr-value", "attr-type", "attr-type", "attr-msg"]


MAX_MUTANT_BYTES = 64 * 2**20


def structure_mutation(path, objects, rng, virtual=()):
    """One structure-level mutation of the file at `path` (in place): (object kind, mutation kind, how)."""
    for _ in range(8):
        kind = rng.choice(sorted(objects))
        if kind == "root-attrs":
            mutation = rng.choice(ATTR_MUTATIONS)
            target = "/"
        else:
            target = rng.choice(objects[kind])
            mutation = rng.choice(VIRTUAL_MUTATIONS if target in virtual else DATASET_MUTATIONS)
        backup = open(path, "rb").read()
        try:
            if mutation in ("attr-value", "attr-type"):
                how = mut_attr(path, target, rng, mutation)
            elif mutation in MSG_KINDS:
                how = mut_message(path, target, rng, mutation)
            else:
                how = {"dtype": mut_dtype, "dataspace": mut_dataspace, "layout": mut_layout, "filter": mut_filter,
                       "chunk-index": mut_chunk_index, "chunk-data": mut_chunk_data, "values": mut_values,
                       "links": mut_links, "vds-mapping": mut_vds_mapping}[mutation](path, target, rng)
            if os.path.getsize(path) > MAX_MUTANT_BYTES:
                raise Skip
            return kind, mutation, how
        except (Skip, ValueError, TypeError, KeyError, OSError, RuntimeError, IndexError, OverflowError,
                AttributeError, MemoryError):
            with open(path, "wb") as fh:
                fh.write(backup)
    raise Skip


# ---------------------------------------------------------------------------------------------------
# Base files

class Base:
    """A base of mutants: one file (an activation file, a checkpoint, a clip file) or a shard index's
    folder (the index and its shards)."""

    def __init__(self, name, tool, path, partner=None):
        self.name, self.tool, self.path, self.partner = name, tool, path, partner
        self.data = open(path, "rb").read()
        self.blocks = checksummed_blocks(self.data) if h5py else []
        self.objects = objects_of(path) if h5py else {}
        self.virtual = set()
        self.folder = None
        self.shard_objects = {}
        if h5py and tool == "vds":
            self.folder = os.path.dirname(path)
            with h5py.File(path, "r") as f:
                f.visititems(lambda n, o: self.virtual.add(n) if isinstance(o, h5py.Dataset) and o.is_virtual else None)
            shard = next(os.path.join(self.folder, s) for s in sorted(os.listdir(self.folder)) if s.startswith("shard"))
            self.shard_objects = objects_of(shard)


def legacy_copies(fixtures, workdir):
    """h5py rewrites of some fixtures in the oldest HDF5 format (no metadata checksums), if h5py exists."""
    script = r'''
import sys, h5py
src, dst = sys.argv[1], sys.argv[2]
with h5py.File(src, "r") as a, h5py.File(dst, "w", libver="earliest") as b:
    for k, v in a.attrs.items():
        b.attrs[k] = v
    for name in a:
        a.copy(a[name], b, name=name)
'''
    out = []
    for name in ["run-a.h5", "attention.h5", "precision-f16.h5"]:
        src = os.path.join(fixtures, name)
        dst = os.path.join(workdir, "legacy-" + name)
        r = subprocess.run(["/usr/bin/python3", "-c", script, src, dst], capture_output=True)
        if r.returncode == 0:
            out.append(dst)
    return out


def bwact_bases(workdir):
    """Files written by the python/bwact package: float32 with gzip, string clip ids, attention and a
    training curve; float16 with int clip ids; three shards and their index (virtual datasets), and the
    same clips as one file (the index's partner)."""
    sys.path.insert(0, os.path.join(ROOT, "python"))
    import bwact
    rng = np.random.default_rng(5)
    n, t, d, depths, heads = 24, 8, 6, 4, 2
    layers = [rng.standard_normal((n, t, d)).astype(np.float32) + k for k in range(depths)]
    labels = {"cls": np.arange(n) % 3, "pair": (np.arange(n) // 2) % 2}
    logits = rng.standard_normal((n, heads, t, t))
    attention = (np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)).astype(np.float32)
    common = dict(run="fuzz-run", probe_set="toy", step=7, seed=3, block_ends=[1, 3], config={"depth": 3},
                  positions=bwact.grid_positions((1, 2, 2), (2, 4, 4)))

    def write(path, lo, hi, dtype="float32", ids="str", compression=None, attention_clips=0, shard=None):
        with bwact.Writer(path, dtype=dtype, compression=compression, attention_clips=attention_clips, shard=shard,
                          **common) as w:
            for i in range(lo, hi, 5):
                j = min(hi, i + 5)
                w.add([x[i:j] for x in layers], {k: v[i:j] for k, v in labels.items()},
                      clip_ids=[f"clip-{c:03d}" for c in range(i, j)] if ids == "str" else np.arange(i, j) + 1000,
                      attention={1: attention[i:j], 3: attention[i:j]} if attention_clips else None)
        return path

    f32 = write(os.path.join(workdir, "bwact-f32.h5"), 0, n, compression="gzip", attention_clips=6)
    with h5py.File(f32, "a") as f:
        f["training/step"] = np.arange(0, 50, 10, dtype=np.int64)
        f["training/loss"] = rng.random((5, 2)).astype(np.float32)
    f16 = write(os.path.join(workdir, "bwact-f16.h5"), 0, n, dtype="float16", ids="int")
    folder = os.path.join(workdir, "vds")
    os.mkdir(folder)
    shards = [write(os.path.join(folder, f"shard-rank{r}.h5"), lo, hi, attention_clips=4, shard=(r, 3))
              for r, (lo, hi) in enumerate([(0, 9), (9, 17), (17, 24)])]
    index = os.path.join(folder, "index.h5")
    bwact.index_shards(index, shards)
    whole = write(os.path.join(workdir, "vds-whole.h5"), 0, n, attention_clips=4)
    return f32, f16, index, whole


# bwtrain's readers: the options of the run that wrote the checkpoint (load-only resume) and of a
# one-step training on a clip file. RUNDIR is a fresh run folder holding the mutant as checkpoint.h5.
BWTRAIN_RUN = ["--preset", "quick", "--regime", "e2e", "--blocks", "2", "--run", "fuzz", "--steps", "2",
               "--dump-steps", "", "--probe-sets", "", "--training-clips", "16", "--batch-size", "4", "--quiet"]
BWTRAIN_COMMANDS = {
    "checkpoint": ["BWTRAIN"] + BWTRAIN_RUN + ["--out", "RUNDIR", "--resume"],
    "clips": ["BWTRAIN", "--preset", "quick", "--regime", "e2e", "--blocks", "2", "--run", "fuzz", "--steps", "1",
              "--dump-steps", "", "--probe-sets", "", "--batch-size", "4", "--data", "FILE", "--out", "RUNDIR", "--quiet"],
}


def bwtrain_bases(bwtrain, workdir):
    """A finished quick run's checkpoint and a small clip file, the bases of bwtrain's mutants."""
    run = os.path.join(workdir, "base-run")
    r = subprocess.run([bwtrain] + BWTRAIN_RUN + ["--out", run], capture_output=True)
    if r.returncode != 0:
        raise SystemExit(f"fuzz: cannot make the base checkpoint: {r.stderr.decode()[:300]}")
    clips = os.path.join(workdir, "base-clips.h5")
    script = r'''
import sys, h5py, numpy as np
rng = np.random.default_rng(0)
with h5py.File(sys.argv[1], "w") as f:
    f["clips"] = rng.integers(0, 256, (8, 8, 32, 32, 3), dtype=np.uint8)
    f["labels/kind"] = np.arange(8, dtype=np.int64) % 2
    f.attrs["note"] = "fuzz base"
'''
    r = subprocess.run(["/usr/bin/python3", "-c", script, clips], capture_output=True)
    if r.returncode != 0:
        raise SystemExit(f"fuzz: cannot make the base clip file: {r.stderr.decode()[:300]}")
    return os.path.join(run, "checkpoint.h5"), os.path.join(run, "config.json"), clips


# ---------------------------------------------------------------------------------------------------
# Mutants

GENERATOR_TIME_LIMIT = 30.0


def in_child(rng, fn):
    """fn(), run in a forked child: libhdf5 can crash or hang writing a hostile file, and must not take
    the fuzzer with it. Returns fn's JSON-able result and hands the child's random state back to rng
    (so that mutants stay reproducible); raises Skip if the child fails, crashes or runs too long."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        code, payload = 0, b""
        try:
            payload = json.dumps({"result": fn(), "state": rng.getstate()}).encode()
        except Skip:
            code = 3
        except BaseException:
            code = 4
        try:
            while payload:
                payload = payload[os.write(w, payload):]
        finally:
            os._exit(code)
    os.close(w)
    chunks, deadline = [], time.monotonic() + GENERATOR_TIME_LIMIT
    try:
        while True:
            ready, _, _ = select.select([r], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                break
            block = os.read(r, 1 << 16)
            if not block:
                break
            chunks.append(block)
    finally:
        os.close(r)
        _, status = os.waitpid(pid, 0)
    if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
        raise Skip
    out = json.loads(b"".join(chunks))
    state = out["state"]
    rng.setstate((state[0], tuple(state[1]), state[2]))
    return out["result"]


def damage(path, base_data, blocks, objects, rng, structure, virtual=()):
    """Mutates the file at `path` (a copy of base_data) in place: (object kind, mutation kind, how)."""
    if structure:
        try:
            try:
                kind, mutation, how = in_child(rng, lambda: structure_mutation(path, objects, rng, virtual))
            except Skip:
                with open(path, "wb") as fh:  # (a child that died may have left the file half written)
                    fh.write(base_data)
                raise
            if rng.random() < 0.1:
                data, more = mutate(open(path, "rb").read(), rng)
                with open(path, "wb") as fh:
                    fh.write(data)
                how += f"; then bytes {more}"
            return kind, mutation, how
        except Skip:
            pass
    data, how = mutate(base_data, rng)
    if blocks and rng.random() < 0.5 and len(data) == len(base_data):
        data = bytearray(data)
        refresh_checksums(data, blocks)
        how += " +checksums"
    with open(path, "wb") as fh:
        fh.write(bytes(data))
    return "file", "bytes", how


def build_mutant(ctx, m):
    """Writes mutant m of the run (the same for a seed whatever else runs) and says how to run it."""
    rng = random.Random(f"{ctx.seed}:{m}")
    structure = h5py is not None and rng.random() < ctx.structure
    spec = {"m": m}
    if ctx.trainer and m % ctx.bwtrain_every == ctx.bwtrain_every - 1:
        which = "checkpoint" if (m // ctx.bwtrain_every) % 2 == 0 else "clips"
        base = ctx.trainer[which]
        if which == "checkpoint":
            run_dir = os.path.join(ctx.workdir, f"m{m:05d}-run")
            os.makedirs(run_dir)
            with open(os.path.join(run_dir, "config.json"), "wb") as fh:
                fh.write(ctx.config_text)
            path = os.path.join(run_dir, "checkpoint.h5")
            spec["cleanup"] = run_dir
        else:
            path = os.path.join(ctx.workdir, f"m{m:05d}-clips.h5")
            spec["cleanup"] = path
        shutil.copyfile(base.path, path)
        kind, mutation, how = damage(path, base.data, base.blocks, base.objects, rng, structure)
        spec.update(path=path, input=path, partner=None, damaged=[path], inputs=[path], base=base.name,
                    object=("checkpoint/" if which == "checkpoint" else "clip-file/") + kind, mutation=mutation,
                    how=how, commands=[BWTRAIN_COMMANDS[which]])
        return spec
    k = m - (m + 1) // ctx.bwtrain_every if ctx.trainer else m
    # Commands go round exactly (every command the same number of mutants); when the rounds and the
    # bases have a common factor, the base moves on by one more after each round, so that every base
    # meets every command.
    rounds = len(COMMANDS) + 1 if ctx.rotate else len(COMMANDS)
    shift = k // rounds if math.gcd(rounds, len(ctx.bases)) > 1 else 0
    base = ctx.bases[(k + shift) % len(ctx.bases)]
    if base.tool == "vds":
        folder = os.path.join(ctx.workdir, f"m{m:05d}-vds")
        shutil.copytree(base.folder, folder)
        files = sorted(os.path.join(folder, n) for n in os.listdir(folder))
        index = os.path.join(folder, os.path.basename(base.path))
        if rng.random() < 0.6:
            target, objects, prefix, virtual, data, blocks = index, base.objects, "vds-index/", base.virtual, base.data, base.blocks
        else:
            target = rng.choice([f for f in files if os.path.basename(f).startswith("shard")])
            data = open(target, "rb").read()
            objects, prefix, virtual, blocks = base.shard_objects, "vds-shard/", (), []
        kind, mutation, how = damage(target, data, blocks, objects, rng, structure, virtual)
        how = f"{os.path.basename(target)}: {how}"
        spec.update(path=index, input=folder, partner=base.partner, damaged=[target], inputs=files, base=base.name,
                    object=prefix + kind, mutation=mutation, how=how, cleanup=folder)
    else:
        path = os.path.join(ctx.workdir, f"m{m:05d}-{base.name}")
        shutil.copyfile(base.path, path)
        kind, mutation, how = damage(path, base.data, base.blocks, base.objects, rng, structure)
        spec.update(path=path, input=path, partner=base.partner, damaged=[path], inputs=[path], base=base.name,
                    object=kind, mutation=mutation, how=how, cleanup=path)
    if ctx.rotate:
        everything = [["validate", "FILE"]] + COMMANDS
        spec["commands"] = [everything[k % len(everything)]]
    elif ctx.all_commands:
        spec["commands"] = [["validate", "FILE"]] + COMMANDS
    else:
        turn = k * ctx.per_mutant
        spec["commands"] = [["validate", "FILE"]] + [COMMANDS[(turn + j) % len(COMMANDS)] for j in range(ctx.per_mutant)]
    return spec


def sha(path):
    try:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()
    except OSError:
        return None


def run_one(binary, args, spec, timeout, workdir, tag, bwtrain=None):
    out_file = os.path.join(workdir, f"out-{tag}.csv")
    out_dir = os.path.join(workdir, f"report-{tag}")
    run_dir = os.path.join(workdir, f"run-{tag}")
    mutant = spec["path"]
    tool = "bwtrain" if args[0] == "BWTRAIN" else "bwanalyze"
    if args[0] == "BWTRAIN":
        argv = [bwtrain] + [mutant if a == "FILE" else run_dir if a == "RUNDIR" else a for a in args[1:]]
    else:
        subst = {"FILE": mutant, "INPUT": spec["input"], "PARTNER": spec["partner"], "OUT": out_file,
                 "OUTDIR": out_dir}
        argv = [binary] + [subst.get(a, a) for a in args]
    before = [sha(p) for p in spec["inputs"]]
    names = {os.path.basename(p) for p in spec["damaged"] + [mutant]}
    start = time.monotonic()
    try:
        r = subprocess.run(argv, capture_output=True, timeout=timeout, cwd=workdir)
        code, stdout, stderr = r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        code, stdout, stderr = None, "", ""
    elapsed = time.monotonic() - start
    problems = []
    if code is None:
        problems.append(f"hang (> {timeout} s)")
    elif code < 0:
        problems.append(f"crash (signal {-code})")
    elif code not in (0, 1):
        problems.append(f"abort exit (status {code})")
    elif code == 1:
        lines = [l for l in stderr.split("\n") if l]
        if args[0] == "validate" and not lines:
            if not any(n in stdout.split("\n", 1)[0] for n in names):
                problems.append("validate failed without naming the file")
        elif len(lines) != 1:
            problems.append(f"{len(lines)} lines on standard error")
        elif not lines[0].startswith(f"{tool}: error: ") or not any(n in lines[0] for n in names):
            problems.append("error line does not name the file")
    if "HDF5-DIAG" in stderr:
        problems.append("HDF5 diagnostic trace printed")
    if [sha(p) for p in spec["inputs"]] != before and not (tool == "bwtrain" and code == 0):
        # (a resume that succeeds goes on to write its checkpoint; one that fails must leave it as it was)
        problems.append("an input file changed")
    if os.path.lexists(out_file) and not (os.path.isfile(out_file) and not os.path.islink(out_file)):
        problems.append("-o left something other than a regular file")
    if os.path.lexists(out_file):
        os.unlink(out_file)
    shutil.rmtree(out_dir, ignore_errors=True)
    shutil.rmtree(run_dir, ignore_errors=True)
    name = "bwtrain " + ("--resume" if "--resume" in args else "--data") if tool == "bwtrain" else args[0]
    return {"command": " ".join(args), "name": name, "status": code, "seconds": round(elapsed, 3),
            "stderr": stderr.strip()[:400], "problems": problems}


class Tally:
    """Mutants, runs and outcomes per key."""

    def __init__(self):
        self.rows = {}

    def add(self, key, results):
        row = self.rows.setdefault(key, {"mutants": 0, "runs": 0, "ok": 0, "errors": 0, "failing": 0})
        row["mutants"] += 1
        for r in results:
            row["runs"] += 1
            row["failing" if r["problems"] else "ok" if r["status"] == 0 else "errors"] += 1

    def lines(self, title, with_mutants=True):
        out = [f"{title} ({'mutants, ' if with_mutants else ''}runs: ok / clean errors / failing):"]
        for key in sorted(self.rows):
            r = self.rows[key]
            lead = f"{r['mutants']:>6} mutants " if with_mutants else ""
            out.append(f"  {key:<28}{lead}{r['runs']:>6} runs: {r['ok']} / {r['errors']} / {r['failing']}")
        return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", required=True)
    ap.add_argument("--fixtures", default="Fixtures")
    ap.add_argument("--mutants", type=int, default=500)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds after which a run counts as a hang")
    ap.add_argument("--commands-per-mutant", type=int, default=1,
                    help="commands besides validate run on each mutant, taken in turn from the list")
    ap.add_argument("--all-commands", action="store_true", help="run every command on every mutant")
    ap.add_argument("--rotate", action="store_true",
                    help="one command per mutant, validate included in the turn (the bounded run of the test command)")
    ap.add_argument("--structure", type=float, default=0.7,
                    help="share of structure-level mutants (the rest are byte-level); needs h5py and numpy")
    ap.add_argument("--bwtrain-every", type=int, default=3,
                    help="with --bwtrain, every Nth mutant is a checkpoint or a clip file, in turn")
    ap.add_argument("--only", help="comma-separated mutant numbers: make and run only these (same seed)")
    ap.add_argument("--save-mutants", help="copy every mutant (a shard index's whole folder) into this folder")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--keep", help="copy failing mutants into this folder")
    ap.add_argument("--results", help="write every run as JSON lines here")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--bwtrain", help="also fuzz bwtrain's checkpoint and clip-file readers with this binary")
    a = ap.parse_args()

    binary = os.path.abspath(a.binary)
    bwtrain = os.path.abspath(a.bwtrain) if a.bwtrain else None
    workdir = tempfile.mkdtemp(prefix="bwssl-fuzz-")
    try:
        partners = os.path.join(workdir, "partners")
        os.mkdir(partners)

        def with_partner(name, tool, path):
            partner = os.path.join(partners, "partner-" + os.path.basename(path))
            shutil.copyfile(path, partner)
            return Base(name, tool, path, partner)

        bases = [with_partner(n, "activation", os.path.join(a.fixtures, n))
                 for n in sorted(os.listdir(a.fixtures)) if n.endswith(".h5")]
        bases += [with_partner(os.path.basename(p), "activation", p) for p in legacy_copies(a.fixtures, workdir)]
        if h5py is not None:
            f32, f16, index, whole = bwact_bases(workdir)
            bases += [with_partner("bwact-f32.h5", "activation", f32), with_partner("bwact-f16.h5", "activation", f16)]
            vds = Base("vds-index", "vds", index, whole)
            bases += [vds, vds]
        elif not a.quiet:
            print("fuzz: h5py and numpy are missing; byte-level mutants of the fixtures only")

        class Context:
            pass
        ctx = Context()
        ctx.seed, ctx.workdir, ctx.bases, ctx.rotate = a.seed, workdir, bases, a.rotate
        ctx.all_commands, ctx.per_mutant, ctx.structure = a.all_commands, a.commands_per_mutant, a.structure
        ctx.bwtrain_every = max(2, a.bwtrain_every)
        ctx.trainer = {}
        if bwtrain:
            checkpoint, config, clips = bwtrain_bases(bwtrain, workdir)
            ctx.trainer = {"checkpoint": Base("checkpoint.h5", "checkpoint", checkpoint),
                           "clips": Base("clips.h5", "clips", clips)}
            ctx.config_text = open(config, "rb").read()
        numbers = [int(x) for x in a.only.split(",")] if a.only else list(range(a.mutants))
        lock = threading.Lock()

        def work(m):
            with lock:  # h5py is not re-entrant across threads; runs happen outside the lock
                spec = build_mutant(ctx, m)
            if a.save_mutants:
                os.makedirs(a.save_mutants, exist_ok=True)
                src = spec["cleanup"]
                dst = os.path.join(a.save_mutants, os.path.basename(src))
                shutil.copytree(src, dst, dirs_exist_ok=True) if os.path.isdir(src) else shutil.copy(src, dst)
            results = []
            for i, args in enumerate(spec["commands"]):
                if args[-1] == "--resume":
                    # The checkpoint's own folder is the run folder.
                    args = [os.path.dirname(spec["path"]) if x == "RUNDIR" else x for x in args]
                results.append(run_one(binary, args, spec, a.timeout, workdir, f"{m}-{i}", bwtrain=bwtrain))
            valid = spec["commands"][0][0] == "validate" and results[0]["status"] == 0
            if valid:
                for r in results[1:]:
                    if r["status"] == 1 and any(w in r["stderr"] for w in ("damaged", "cannot read", "truncated")):
                        r["problems"].append("validate passed but the command could not read the file")
            return spec, results

        counts = {"runs": 0, "ok": 0, "clean errors": 0, "crash": 0, "hang": 0, "abort exit": 0, "other": 0}
        per_command, per_object, per_mutation, per_base = Tally(), Tally(), Tally(), {}
        failures = []
        start = time.monotonic()
        results_file = open(a.results, "w") if a.results else None
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, a.jobs)) as pool:
            for done, (spec, results) in enumerate(pool.map(work, numbers), 1):
                per_base[spec["base"]] = per_base.get(spec["base"], 0) + 1
                per_object.add(spec["object"], results)
                per_mutation.add(spec["mutation"], results)
                for r in results:
                    per_command.add(r["name"], [r])
                    counts["runs"] += 1
                    if not r["problems"]:
                        counts["ok" if r["status"] == 0 else "clean errors"] += 1
                    for p in r["problems"]:
                        key = next((k for k in ("crash", "hang", "abort exit") if p.startswith(k)), "other")
                        counts[key] += 1
                    if r["problems"]:
                        failures.append((spec, r))
                    if results_file:
                        results_file.write(json.dumps({"mutant": spec["m"], "base": spec["base"], "object": spec["object"],
                                                       "mutation": spec["mutation"], "how": spec["how"], **r}) + "\n")
                if any(r["problems"] for r in results) and a.keep:
                    os.makedirs(a.keep, exist_ok=True)
                    src = spec["cleanup"]
                    dst = os.path.join(a.keep, os.path.basename(src))
                    shutil.copytree(src, dst, dirs_exist_ok=True) if os.path.isdir(src) else shutil.copy(src, dst)
                if os.path.isdir(spec["cleanup"]):
                    shutil.rmtree(spec["cleanup"], ignore_errors=True)
                elif os.path.exists(spec["cleanup"]):
                    os.unlink(spec["cleanup"])
                if not a.quiet and done % 100 == 0:
                    print(f"  {done}/{len(numbers)} mutants, {counts['runs']} runs, {len(failures)} failing, "
                          f"{time.monotonic() - start:.0f} s", flush=True)
        if results_file:
            results_file.close()
        for spec, r in failures[:40]:
            print(f"FAIL mutant {spec['m']} ({spec['base']}, {spec['object']}, {spec['mutation']}: {spec['how'][:200]}) "
                  f"{r['command']}: {'; '.join(r['problems'])}\n    {r['stderr'][:300]}")
        print("\n".join(per_command.lines("runs per command", with_mutants=False)))
        print("\n".join(per_object.lines("per object kind")))
        print("\n".join(per_mutation.lines("per mutation kind")))
        print("mutants per base file: " + ", ".join(f"{k} {v}" for k, v in sorted(per_base.items())))
        print(f"fuzz: {len(numbers)} mutants (seed {a.seed}), {counts['runs']} runs: {counts['ok']} ok, "
              f"{counts['clean errors']} clean errors, {counts['crash']} crashes, {counts['hang']} hangs, "
              f"{counts['abort exit']} abort exits, {counts['other']} other failures "
              f"in {time.monotonic() - start:.0f} s")
        return 1 if failures else 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
