#!/usr/bin/env python3
"""Writes a paper-scale bwact/1 file for the analysis benchmark (issue 10), with plain h5py.

Layout (defaults): N = 1100 clips, T = 128 tokens (a 2 x 8 x 8 grid of 8x16x16 tubelets), D = 384,
depths 0..12 (block_ends 3, 6, 9, 12), three integer targets (direction: 8 classes, speed: 3,
scene: 5), softmax attention of the first 32 clips x 6 heads for every layer 1..12, and /positions:
about 2.97 GB. The token datasets are float32, uncompressed and chunked as h5py does by default
(`chunks=True`, i.e. h5py's own chunk-shape guess, which for [1100, 128, 384] is (69, 8, 48)), as
the issue's file was; `--chunks clips` writes the layout docs/activation-format.md recommends instead
(1 MiB chunks of whole clips, what the bwact Writer does).

The tokens have structure, so probes, retrieval and CKA are not degenerate: each clip has a clip
vector made of class means of every target plus clip noise; its tokens are that vector plus a fixed
per-token pattern plus token noise; each depth mixes the previous depth with fresh noise and a slowly
growing class signal. Everything comes from one seed (`--seed`); `--variant K` keeps the labels and
class means but draws the noise from another stream (a second "run" over the same clips, for
`cka A B`).

Nothing is timed here. Usage:
  python3 bench/make_paper_scale.py OUT.h5 [--clips 1100] [--tokens 128] [--width 384] [--layers 12]
                                    [--variant 0] [--chunks h5py|clips]
"""
import argparse
import json
import os

import h5py
import numpy as np

TARGETS = {"direction": 8, "speed": 3, "scene": 5}


def positions(tokens):
    """Token centres (frame, row, col): 8x16x16 tubelets on a grid of g x g patches per frame slot."""
    slots = 2
    grid = int(round((tokens // slots) ** 0.5))
    if slots * grid * grid != tokens:
        slots, grid = tokens, 1          # any T: one token per frame slot
    return np.array([(8 * t + 3.5, 16 * r + 7.5, 16 * c + 7.5)
                     for t in range(slots) for r in range(grid) for c in range(grid)], dtype=np.float32)


def attention(rng, clips, heads, pos):
    """Softmax attention [clips, heads, T, T]: random logits minus a head-dependent distance penalty,
    so the heads have different mean distances and entropies."""
    d = np.sqrt(((pos[:, None, :] - pos[None, :, :]) ** 2).sum(-1))      # [T, T] in pixels
    scale = 1.0 / (8.0 * (1 + np.arange(heads)))                        # head h: penalty 1/(8(h+1)) per px
    logits = rng.standard_normal((clips, heads) + d.shape) - scale[None, :, None, None] * d
    logits -= logits.max(axis=-1, keepdims=True)
    a = np.exp(logits)
    a /= a.sum(axis=-1, keepdims=True)
    return a.astype(np.float32)


def write(path, clips=1100, tokens=128, width=384, layers=12, heads=6, attention_clips=32, seed=0,
          variant=0, chunks="h5py"):
    rng_labels = np.random.default_rng(seed)              # labels and class means: shared by variants
    labels = {k: rng_labels.integers(0, c, clips) for k, c in TARGETS.items()}
    means = {k: rng_labels.standard_normal((c, width)).astype(np.float32) for k, c in TARGETS.items()}
    rng = np.random.default_rng([seed, 1 + variant])      # noise: one stream per variant
    pos = positions(tokens)
    signal = sum(means[k][labels[k]] for k in TARGETS) / np.sqrt(len(TARGETS))          # [N, D]
    clip_noise = rng.standard_normal((clips, width), dtype=np.float32)
    pattern = rng.standard_normal((tokens, width), dtype=np.float32)
    c = max(1, min(clips, 2 ** 20 // (tokens * width * 4)))
    layout = True if chunks == "h5py" else (c, tokens, width)
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "bwact"
        f.attrs["format_version"] = np.int64(1)
        f.attrs["run"] = f"paper-scale-v{variant}"
        f.attrs["regime"] = "external"
        f.attrs["block_ends"] = np.array([b for b in range(3, layers + 1, 3)] if layers % 3 == 0 else [layers],
                                         dtype=np.int64)
        f.attrs["probe_set"] = "synthetic"
        f.attrs["step"] = np.int64(0)
        f.attrs["seed"] = np.int64(seed)
        f.attrs["config"] = json.dumps({"generator": "bench/make_paper_scale.py", "clips": clips, "tokens": tokens,
                                        "width": width, "layers": layers, "heads": heads, "seed": seed,
                                        "variant": variant})
        x = None
        for depth in range(layers + 1):
            w = depth / layers                                  # class signal grows with depth
            clip_part = (0.3 + 0.7 * w) * signal + clip_noise    # [N, D]
            noise = rng.standard_normal((clips, tokens, width), dtype=np.float32)
            fresh = clip_part[:, None, :] + (1.0 - 0.5 * w) * pattern[None] + 2.0 * noise
            x = fresh if x is None else (0.6 * x + 0.8 * fresh)
            del noise, fresh
            f.create_dataset(f"layers/{depth:02d}/tokens", data=x, chunks=layout)
            if depth >= 1 and attention_clips > 0:
                f.create_dataset(f"layers/{depth:02d}/attention",
                                 data=attention(rng, min(attention_clips, clips), heads, pos), chunks=True)
        f.create_dataset("positions", data=pos)
        for k, y in labels.items():
            f.create_dataset(f"labels/{k}", data=y.astype(np.int64))
    return os.path.getsize(path)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--clips", type=int, default=1100)
    p.add_argument("--tokens", type=int, default=128)
    p.add_argument("--width", type=int, default=384)
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--heads", type=int, default=6)
    p.add_argument("--attention-clips", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variant", type=int, default=0)
    p.add_argument("--chunks", choices=["h5py", "clips"], default="h5py")
    a = p.parse_args()
    size = write(a.out, a.clips, a.tokens, a.width, a.layers, a.heads, a.attention_clips, a.seed, a.variant,
                 a.chunks)
    print(f"{a.out}: {size / 1e9:.2f} GB")


if __name__ == "__main__":
    main()
