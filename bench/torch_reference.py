#!/usr/bin/env python3
"""Side-by-side training throughput: bwtrain beside a PyTorch CPU implementation of the same model.

The PyTorch side is the model `bwtrain` trains (Sources/BlockwiseTraining), written the way a careful
PyTorch user would on CPU:
  tubelet linear embedding of the visible tokens + fixed 3D sin-cos positions; tube masking with the
  masked tokens dropped before the encoder; L pre-LN layers (LayerNorm eps 1e-6, qkv linear,
  F.scaled_dot_product_attention without attention weights, projection, MLP ratio 4 with exact GELU);
  a final LayerNorm; per-block decoders (LN, linear without bias to the decoder width, visible tokens
  scattered into all T tokens with a learned mask token, + fixed positions, decoder layers, LN and a
  linear head on the masked tokens) and the MSE on masked tokens (raw patch targets); AdamW (fused,
  betas 0.9/0.95, weight decay on weight matrices only). e2e: one decoder after the final LayerNorm;
  simultaneous: K decoders, one per block, with a stop-gradient (detach) at every block boundary and
  the losses summed. Both sides run 2 threads (torch.set_num_threads(2); bwtrain uses OpenBLAS's 2).

Each configuration is timed as bwtrain's own `bwtrain bench` (10 timed steps after a warm-up step,
clips/s = steps x batch / seconds, data loading and masking included) and as the PyTorch loop (same
step count, random clips drawn from a pool, patchify and masking inside the timed loop), in one run,
and the ratio bwtrain / PyTorch is printed. The four configurations are frozen (issue 9): every model
option is passed to bwtrain explicitly, so later changes to the presets do not move them.

Usage (from the repository root; `make bench-torch` builds bwtrain in release first):
  python3 bench/torch_reference.py [--bwtrain .build/release/bwtrain] [--configs default,t128]
                                   [--steps 10] [--repeat 1] [--torch-only]
"""
import argparse
import math
import os
import re
import subprocess
import sys
import time

# OpenMP threads sleep instead of spinning when idle: on the shared 2-core machine, spinning workers
# made PyTorch steps 3-10x slower and erratic whenever another process ran; passive waiting is
# PyTorch's best case there (set OMP_WAIT_POLICY=ACTIVE to override).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402  (after the environment is set)
import torch.nn as nn
import torch.nn.functional as F  # noqa: E402

# name -> (description, options); every model option explicit (frozen for the comparison).
CONFIGS = {
    "default": dict(frames=8, size=32, tubelet=2, patch=8, dim=96, heads=3, layers=12, blocks=4,
                    decoder_depth=1, decoder_dim=64, decoder_heads=2, mask_ratio=0.75, batch=32,
                    channels=3, mlp_ratio=4),
    "t128": dict(frames=16, size=64, tubelet=2, patch=16, dim=192, heads=3, layers=12, blocks=4,
                 decoder_depth=2, decoder_dim=96, decoder_heads=2, mask_ratio=0.75, batch=16,
                 channels=3, mlp_ratio=4),
}
REGIMES = ["e2e", "simultaneous"]


def geometry(c):
    slots = c["frames"] // c["tubelet"]
    grid = c["size"] // c["patch"]
    spatial = grid * grid
    visible_spatial = max(1, round((1 - c["mask_ratio"]) * spatial))
    patch_dim = c["tubelet"] * c["patch"] * c["patch"] * c["channels"]
    return slots, grid, spatial, visible_spatial, patch_dim


def sincos_positions(c, dim):
    """bwtrain's fixed 3D sin-cos table [T, dim] (VideoTokens.positionEmbedding)."""
    slots, grid, _, _, _ = geometry(c)
    dt = (dim // 6) * 2
    dy = dt
    dx = ((dim - dt - dy) // 2) * 2
    table = torch.zeros(slots * grid * grid, dim)

    def fill(row, start, width, pos):
        half = width // 2
        for i in range(half):
            omega = 10000.0 ** (-(2 * i) / max(1, width))
            table[row, start + i] = math.sin(pos * omega)
            table[row, start + half + i] = math.cos(pos * omega)

    n = 0
    for s in range(slots):
        for gy in range(grid):
            for gx in range(grid):
                fill(n, 0, dt, s)
                fill(n, dt, dy, gy)
                fill(n, dt + dy, dx, gx)
                n += 1
    return table


class Layer(nn.Module):
    """Pre-LN transformer layer: x + proj(attn(LN(x))), then + fc2(GELU(fc1(LN(x))))."""

    def __init__(self, dim, heads, mlp_ratio):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.fc1 = nn.Linear(dim, mlp_ratio * dim)
        self.fc2 = nn.Linear(mlp_ratio * dim, dim)

    def forward(self, x):
        b, n, d = x.shape
        qkv = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        x = x + self.proj(a.transpose(1, 2).reshape(b, n, d))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class Decoder(nn.Module):
    def __init__(self, c, positions):
        super().__init__()
        dd = c["decoder_dim"]
        self.in_norm = nn.LayerNorm(c["dim"], eps=1e-6)
        self.embed = nn.Linear(c["dim"], dd, bias=False)
        self.mask_token = nn.Parameter(0.02 * torch.randn(dd))
        self.layers = nn.ModuleList(Layer(dd, c["decoder_heads"], c["mlp_ratio"]) for _ in range(c["decoder_depth"]))
        self.norm = nn.LayerNorm(dd, eps=1e-6)
        self.head = nn.Linear(dd, geometry(c)[4])
        self.register_buffer("pos", positions)

    def forward(self, x, visible, masked, tokens):
        b = x.shape[0]
        e = self.embed(self.in_norm(x))
        dd = e.shape[-1]
        z = self.mask_token.expand(b, tokens, dd).clone()
        z = z.scatter(1, visible[..., None].expand(-1, -1, dd), e) + self.pos
        for layer in self.layers:
            z = layer(z)
        zm = z.gather(1, masked[..., None].expand(-1, -1, dd))
        return self.head(self.norm(zm))


class Model(nn.Module):
    def __init__(self, c, regime):
        super().__init__()
        self.c, self.regime = c, regime
        _, _, _, _, patch_dim = geometry(c)
        self.embed = nn.Linear(patch_dim, c["dim"])
        self.register_buffer("pos", sincos_positions(c, c["dim"]))
        self.layers = nn.ModuleList(Layer(c["dim"], c["heads"], c["mlp_ratio"]) for _ in range(c["layers"]))
        self.norm = nn.LayerNorm(c["dim"], eps=1e-6)
        dec_pos = sincos_positions(c, c["decoder_dim"])
        self.decoders = nn.ModuleList(Decoder(c, dec_pos) for _ in range(1 if regime == "e2e" else c["blocks"]))

    def patchify(self, clips):
        """[B, F, H, W, C] -> [B, T, P], tokens (slot, row, col), patch values (dt, dy, dx, c)."""
        c = self.c
        slots, grid, _, _, patch_dim = geometry(c)
        b = clips.shape[0]
        x = clips.view(b, slots, c["tubelet"], grid, c["patch"], grid, c["patch"], c["channels"])
        return x.permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(b, slots * grid * grid, patch_dim)

    def tube_mask(self, b):
        slots, _, spatial, vs, _ = geometry(self.c)
        order = torch.rand(b, spatial).argsort(dim=1)
        kept = order[:, :vs].sort(dim=1).values
        dropped = order[:, vs:].sort(dim=1).values
        offsets = (torch.arange(slots) * spatial)[None, :, None]
        visible = (offsets + kept[:, None, :]).reshape(b, -1)
        masked = (offsets + dropped[:, None, :]).reshape(b, -1)
        return visible, masked

    def loss(self, clips):
        c = self.c
        patches = self.patchify(clips)
        b, tokens, p = patches.shape
        visible, masked = self.tube_mask(b)
        targets = patches.gather(1, masked[..., None].expand(-1, -1, p))
        x = self.embed(patches.gather(1, visible[..., None].expand(-1, -1, p))) + self.pos[visible]
        per = c["layers"] // c["blocks"]
        total = 0.0
        for k in range(c["blocks"]):
            if self.regime != "e2e" and k > 0:
                x = x.detach()  # stop-gradient at the block boundary
            for layer in self.layers[k * per:(k + 1) * per]:
                x = layer(x)
            last = k == c["blocks"] - 1
            if self.regime == "e2e" and not last:
                continue
            out = self.norm(x) if last else x
            decoder = self.decoders[0 if self.regime == "e2e" else k]
            total = total + F.mse_loss(decoder(out, visible, masked, tokens), targets)
        return total


def optimizer(model):
    decay = [p for n, p in model.named_parameters() if p.ndim == 2]
    rest = [p for n, p in model.named_parameters() if p.ndim != 2]
    groups = [{"params": decay, "weight_decay": 0.05}, {"params": rest, "weight_decay": 0.0}]
    try:
        return torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.95), eps=1e-8, fused=True), "fused"
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.95), eps=1e-8, foreach=True), "foreach"


def torch_clips_per_second(c, regime, steps):
    torch.manual_seed(0)
    model = Model(c, regime)
    opt, kind = optimizer(model)
    pool = torch.rand(4 * c["batch"], c["frames"], c["size"], c["size"], c["channels"])

    def step(i):
        idx = torch.randint(0, pool.shape[0], (c["batch"],))
        loss = model.loss(pool[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    step(0)  # warm-up
    start = time.perf_counter()
    for i in range(steps):
        step(i + 1)
    seconds = time.perf_counter() - start
    return steps * c["batch"] / seconds, kind


def bwtrain_clips_per_second(binary, c, steps):
    """Runs `bwtrain bench` with every model option explicit; returns {regime: clips/s}."""
    args = [binary, "bench", "--timed-steps", str(steps), "--preset", "default",
            "--frames", str(c["frames"]), "--size", str(c["size"]), "--tubelet", str(c["tubelet"]),
            "--patch", str(c["patch"]), "--dim", str(c["dim"]), "--heads", str(c["heads"]),
            "--layers", str(c["layers"]), "--blocks", str(c["blocks"]),
            "--decoder-depth", str(c["decoder_depth"]), "--decoder-dim", str(c["decoder_dim"]),
            "--decoder-heads", str(c["decoder_heads"]), "--mask-ratio", str(c["mask_ratio"]),
            "--batch-size", str(c["batch"]), "--training-clips", str(4 * c["batch"]),
            # Frozen as when the comparison was set up: raw inputs and raw-pixel targets on action
            # clips, whatever the preset's defaults have become since.
            "--data", "actions", "--no-normalize-targets", "--input-mean", "0", "--input-std", "1",
            "--position-base", "10000", "--no-textured-backgrounds"]
    run = subprocess.run(args, capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{run.stderr}")
    out = run.stdout
    rates = {}
    for line in out.splitlines():
        m = re.match(r"^(e2e|simultaneous|sequential)\s+([\d.]+)\s+([\d.]+)", line)
        if m:
            # From the seconds per step (3 decimals) rather than the rounded clips/s column.
            rates[m.group(1)] = c["batch"] / float(m.group(2))
        if line.startswith("machine:") or line.startswith("model:"):
            print("  bwtrain " + line, flush=True)
    return rates


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bwtrain", default=".build/release/bwtrain")
    ap.add_argument("--configs", default="default,t128")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=1, help="run the whole comparison this many times")
    ap.add_argument("--torch-only", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(2)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}; "
          f"{a.steps} timed steps after one warm-up step", flush=True)
    rows = []
    for r in range(a.repeat):
        for name in a.configs.split(","):
            c = CONFIGS[name]
            slots, grid, spatial, vs, _ = geometry(c)
            print(f"{name}: {c['frames']}x{c['size']}x{c['size']}, tubelet {c['tubelet']}, patch {c['patch']}: "
                  f"T = {slots * spatial} ({slots * vs} visible), D = {c['dim']}, {c['heads']} heads, L = {c['layers']}, "
                  f"K = {c['blocks']}, decoder {c['decoder_depth']} x {c['decoder_dim']}, batch {c['batch']}", flush=True)
            bw = {} if a.torch_only else bwtrain_clips_per_second(a.bwtrain, c, a.steps)
            for regime in REGIMES:
                tc, kind = torch_clips_per_second(c, regime, a.steps)
                b = bw.get(regime, float("nan"))
                rows.append((r + 1, name, regime, b, tc, b / tc))
                print(f"  {regime:<13} bwtrain {b:7.1f} clips/s   torch ({kind} AdamW) {tc:7.1f} clips/s   ratio {b / tc:5.2f}x", flush=True)
    print()
    print("run  config   regime         bwtrain clips/s  torch clips/s  ratio")
    for r, name, regime, b, tc, ratio in rows:
        print(f"{r:>3}  {name:<7}  {regime:<13}  {b:15.1f}  {tc:13.1f}  {ratio:5.2f}x")


if __name__ == "__main__":
    sys.exit(main())
