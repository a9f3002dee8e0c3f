"""Recording a PyTorch model's per-depth outputs into a bwact/1 file with forward hooks."""
import numpy as np

from .writer import BwactError, Writer, grid_positions


def _first_tensor(output, what):
    import torch

    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    for name in ("last_hidden_state", "hidden_states"):
        v = getattr(output, name, None)
        if isinstance(v, torch.Tensor):
            return v
    raise BwactError(f"{what}: output is {type(output).__name__}; expected a tensor [B, T, D] or a tuple starting with one")


def _attention_tensor(output, what):
    """The attention weights in a depth module's tuple output (the element of rank 4), or None."""
    import torch

    if isinstance(output, (tuple, list)):
        for v in output[1:]:
            if isinstance(v, torch.Tensor) and v.dim() == 4:
                return v
    v = getattr(output, "attentions", None)
    if isinstance(v, torch.Tensor):
        return v
    return None


def _weights_tensor(output, what):
    """Attention weights [B, H, T, T] from an attention module's output: the tensor itself, or the
    first rank-4 tensor of a tuple (e.g. (context, weights))."""
    import torch

    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)):
        for v in output:
            if isinstance(v, torch.Tensor) and v.dim() == 4:
                return v
    raise BwactError(f"{what}: output is {type(output).__name__} without a [B, H, T, T] tensor")


def _split_batch(batch):
    """(inputs, labels, clip_ids) from a dict {'video', 'labels', 'clip_ids'} or a tuple (video, labels[, clip_ids])."""
    if isinstance(batch, dict):
        if "video" not in batch or "labels" not in batch:
            raise BwactError("a batch dict needs the keys 'video' and 'labels' (and optionally 'clip_ids')")
        return batch["video"], batch["labels"], batch.get("clip_ids")
    if isinstance(batch, (tuple, list)) and len(batch) in (2, 3):
        return batch[0], batch[1], (batch[2] if len(batch) == 3 else None)
    raise BwactError("each batch must be (video, labels), (video, labels, clip_ids) or a dict with 'video' and 'labels'")


def record(model, modules, batches, path, *, tubelet, input_size, run, probe_set, step=0, seed=0,
           regime="external", block_ends=None, config=None, forward=None, prefix_tokens=0,
           attention=None, attention_clips=0, dtype="float32", shard=None, device=None):
    """Runs `model` over `batches` and writes the outputs of `modules` as the depths of a bwact/1 file.

    - modules: L+1 modules whose outputs are depth 0 (the embedding, i.e. the input to layer 1)
      and layers 1..L, e.g. `[model.videomae.embeddings, *model.videomae.encoder.layer]`. A module
      may return a tensor [B, T, D] or a tuple whose first element is one (Hugging Face layers).
    - batches: an iterable of (video, labels), (video, labels, clip_ids) or dicts with those keys;
      labels is a dict target -> [B] class indices.
    - tubelet = (t, h, w), input_size = (frames, height, width): the token grid, for /positions
      (positions cannot be read off a model). The tokens must be in frame, row, column order.
    - forward(model, video): how to call the model (default `model(video)`).
    - prefix_tokens: leading tokens to drop (e.g. 1 for a CLS token); bwact has no CLS token.
    - attention: None; "outputs" to take the attention weights from the tuple outputs of layers
      1..L (Hugging Face with output_attentions=True, or a layer returning (x, weights)); or a
      list of L modules whose outputs are each layer's softmax weights [B, H, T, T] (or tuples
      holding them, such as (context, weights)). Stored for
      the first `attention_clips` clips. With prefix tokens dropped, rows are renormalised.
    - Other arguments are those of `bwact.Writer`.

    The model runs under torch.no_grad() in eval mode (its mode is restored afterwards); hooks are
    removed when recording ends, also on an error. Nothing is left under `path` on an error.
    Returns the number of clips written.
    """
    import torch

    modules = list(modules)
    if len(modules) < 2:
        raise BwactError(f"{path}: give at least two modules: the embedding (depth 0) and one layer")
    if attention is not None and attention != "outputs":
        attention = list(attention)
        if len(attention) != len(modules) - 1:
            raise BwactError(f"{path}: attention lists {len(attention)} modules; give one per layer (L = {len(modules) - 1})")
    positions = grid_positions(tubelet, input_size)
    call = forward or (lambda m, x: m(x))
    captured = {}
    captured_attention = {}

    def depth_hook(depth):
        def hook(module, inputs, output):
            if depth in captured:
                raise BwactError(f"{path}: the module of depth {depth} ran twice in one forward pass; give modules that run once")
            captured[depth] = _first_tensor(output, f"{path}: depth {depth} ({type(module).__name__})")
            if attention == "outputs" and depth >= 1:
                a = _attention_tensor(output, f"depth {depth}")
                if a is not None:
                    captured_attention[depth] = a
        return hook

    def attention_hook(depth):
        def hook(module, inputs, output):
            captured_attention[depth] = _weights_tensor(output, f"{path}: attention of layer {depth}")
        return hook

    handles = []
    was_training = model.training
    written = 0
    try:
        for d, m in enumerate(modules):
            handles.append(m.register_forward_hook(depth_hook(d)))
        if isinstance(attention, list):
            for d, m in enumerate(attention, start=1):
                handles.append(m.register_forward_hook(attention_hook(d)))
        model.eval()
        with Writer(path, run=run, probe_set=probe_set, step=step, seed=seed, regime=regime, block_ends=block_ends,
                    positions=positions, config=config, dtype=dtype, attention_clips=attention_clips,
                    shard=shard) as w, torch.no_grad():
            for batch in batches:
                video, labels, ids = _split_batch(batch)
                if device is not None:
                    video = video.to(device)
                captured.clear()
                captured_attention.clear()
                call(model, video)
                missing = [d for d in range(len(modules)) if d not in captured]
                if missing:
                    raise BwactError(f"{path}: the modules of depths {missing} did not run in the forward pass")
                layers = []
                for d in range(len(modules)):
                    x = captured[d]
                    if x.dim() != 3:
                        raise BwactError(f"{path}: depth {d} output has shape {tuple(x.shape)}; expected [B, T, D]")
                    x = x[:, prefix_tokens:, :]
                    if x.shape[1] != len(positions):
                        raise BwactError(f"{path}: depth {d} has {x.shape[1]} tokens after dropping {prefix_tokens}, "
                                         f"but tubelet {tuple(tubelet)} on input {tuple(input_size)} gives {len(positions)}")
                    layers.append(x.float().cpu().numpy())
                att = {}
                if attention is not None and w.clips < attention_clips:
                    for d, a in captured_attention.items():
                        a = a.float()
                        if prefix_tokens:
                            a = a[:, :, prefix_tokens:, prefix_tokens:]
                            a = a / a.sum(dim=-1, keepdim=True).clamp_min(1e-30)
                        att[d] = a.cpu().numpy()
                    if not att:
                        raise BwactError(f"{path}: attention was asked for but the model exposed none "
                                         "(Hugging Face: pass output_attentions=True in forward; timm: see docs/pytorch-recipes.md)")
                w.add(layers, {k: np.asarray(v.cpu() if hasattr(v, "cpu") else v) for k, v in labels.items()},
                      clip_ids=ids, attention=att)
            written = w.clips
    finally:
        for h in handles:
            h.remove()
        captured.clear()
        captured_attention.clear()
        model.train(was_training)
    return written

