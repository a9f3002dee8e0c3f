"""Recording a PyTorch model's per-depth outputs into a bwact/1 file with forward hooks."""
import sys
from typing import Any, List, NamedTuple

import numpy as np

from .writer import BwactError, Writer, grid_positions


class Layers(NamedTuple):
    """What `layers_of` finds: the module whose output is depth 0, the L layers, and the count of
    leading tokens (CLS, registers) that are not grid tokens."""
    embedding: Any
    layers: List[Any]
    prefix_tokens: int


def _loaded(module, *names):
    """The classes `names` of `module` if that module has been imported (never imports it)."""
    m = sys.modules.get(module)
    return tuple(getattr(m, n) for n in names if m is not None and hasattr(m, n))


def layers_of(model):
    """(embedding, layers, prefix_tokens) of a model of a known family, for `record`:

        embedding, layers, prefix = layers_of(model)
        record(model, [embedding, *layers], ..., prefix_tokens=prefix)

    Known: Hugging Face VideoMAEModel, VideoMAEForPreTraining, VideoMAEForVideoClassification
    (prefix 0), ViTModel, ViTForImageClassification, ViTForMaskedImageModeling (prefix 1, the CLS
    token), and timm's VisionTransformer and its subclasses (prefix `model.num_prefix_tokens`).
    The embedding's output is the input to the first layer (patch embedding plus positions); the
    last layer's output is the residual stream before the final norm. Any other model raises
    BwactError: give `record` the modules yourself (docs/pytorch-recipes.md).
    """
    hf = "transformers.models."
    if isinstance(model, _loaded(hf + "videomae.modeling_videomae", "VideoMAEForPreTraining", "VideoMAEForVideoClassification")):
        return layers_of(model.videomae)
    if isinstance(model, _loaded(hf + "vit.modeling_vit", "ViTForImageClassification", "ViTForMaskedImageModeling")):
        return layers_of(model.vit)
    if isinstance(model, _loaded(hf + "videomae.modeling_videomae", "VideoMAEModel")):
        return Layers(model.embeddings, _hf_layers(model), 0)
    if isinstance(model, _loaded(hf + "vit.modeling_vit", "ViTModel")):
        return Layers(model.embeddings, _hf_layers(model), 1)
    if isinstance(model, _loaded("timm.models.vision_transformer", "VisionTransformer")):
        return Layers(model.norm_pre, list(model.blocks), int(model.num_prefix_tokens))
    cls = type(model)
    raise BwactError(f"layers_of: {cls.__module__}.{cls.__qualname__} is not a model it knows (Hugging Face "
                     "VideoMAEModel, VideoMAEForPreTraining, VideoMAEForVideoClassification, ViTModel, "
                     "ViTForImageClassification, ViTForMaskedImageModeling; timm VisionTransformer); give record() "
                     "the embedding and the layers yourself (docs/pytorch-recipes.md)")


def _hf_layers(model):
    """The layer list of a Hugging Face encoder: `encoder.layer` (transformers 4.x, VideoMAE in 5.x)
    or `layers` (ViT in 5.x)."""
    encoder = getattr(model, "encoder", None)
    for owner, name in ((encoder, "layer"), (encoder, "layers"), (model, "layers")):
        found = getattr(owner, name, None) if owner is not None else None
        if found is not None:
            return list(found)
    raise BwactError(f"layers_of: {type(model).__name__} has neither encoder.layer nor layers")


def _library(model):
    return type(model).__module__.split(".")[0]


def _attention_hint(model):
    """The one-line fix, for the model's library, when no attention weights were found."""
    lib = _library(model)
    if lib == "transformers":
        return ('Hugging Face: load the model with attn_implementation="eager" and call it with '
                'output_attentions=True, e.g. forward=lambda m, video: m(pixel_values=video, output_attentions=True)')
    if lib == "timm":
        return ("timm: set block.attn.fused_attn = False for every block and pass "
                "attention=[b.attn.attn_drop for b in model.blocks]")
    return ("pass attention=[...] with the L modules whose outputs are each layer's softmax weights "
            "(docs/pytorch-recipes.md)")


def _model_attentions(output):
    """The `attentions` of a model's output (a ModelOutput, an object or a dict), or None."""
    v = output.get("attentions") if isinstance(output, dict) else getattr(output, "attentions", None)
    if v is None:
        return None
    return list(v) if isinstance(v, (tuple, list)) else [v]


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


def _attention_by_depth(model, out, captured, captured_attention, attention, path):
    """Layer -> attention weights of one forward pass, wherever the model exposed them; a BwactError
    naming what was tried (and the fix for the model's library) when they are not all there."""
    import torch

    L = len(captured) - 1
    want = list(range(1, L + 1))
    if isinstance(attention, list):
        missing = [d for d in want if d not in captured_attention]
        if missing:
            raise BwactError(f"{path}: the attention modules of layers {missing} did not run in the forward pass")
        return dict(captured_attention)
    if all(d in captured_attention for d in want):
        return {d: captured_attention[d] for d in want}
    from_model = _model_attentions(out) or None   # transformers 5 gives () when the attention cannot return weights
    if from_model is not None and all(isinstance(a, torch.Tensor) and a.dim() == 4 for a in from_model):
        if len(from_model) != L:
            raise BwactError(f"{path}: the model's output holds attentions for {len(from_model)} layers, but the "
                             f"modules give L = {L}; record every layer, or pass attention=[...] with L modules")
        for d, a in zip(want, from_model):
            t = captured[d].shape[1]
            if a.shape[0] != captured[d].shape[0] or a.shape[-2:] != (t, t):
                raise BwactError(f"{path}: attention {d} of the model's output has shape {tuple(a.shape)}, "
                                 f"but layer {d} has {t} tokens")
        return dict(zip(want, from_model))
    partial = sorted(captured_attention)
    layers = f"only layers {partial} returned" if partial else "no layer returned"
    kind = type(out).__name__
    if from_model is not None:
        model_part = f"the model's output ({kind}) has attentions that are not [B, H, T, T] tensors"
    elif hasattr(out, "attentions") or (isinstance(out, dict) and "attentions" in out):
        model_part = f"the model's output ({kind}) has no attention weights in its attentions field"
    else:
        model_part = f"the model's output ({kind}) has no attentions"
    raise BwactError(f"{path}: attention was asked for but not found: {layers} a tuple with a [B, H, T, T] "
                     f"tensor, and {model_part}, and no attention modules were given. {_attention_hint(model)}")


def record(model, modules, batches, path, *, tubelet, input_size, run, probe_set, step=0, seed=0,
           regime="external", block_ends=None, config=None, forward=None, prefix_tokens=0,
           attention=None, attention_clips=0, dtype="float32", shard=None, device=None):
    """Runs `model` over `batches` and writes the outputs of `modules` as the depths of a bwact/1 file.

    - modules: L+1 modules whose outputs are depth 0 (the embedding, i.e. the input to layer 1)
      and layers 1..L, e.g. `[embedding, *layers]` from `layers_of(model)`. A module may return a
      tensor [B, T, D] or a tuple whose first element is one (Hugging Face 4.x layers).
    - batches: an iterable of (video, labels), (video, labels, clip_ids) or dicts with those keys;
      labels is a dict target -> [B] class indices.
    - tubelet = (t, h, w), input_size = (frames, height, width): the token grid, for /positions
      (positions cannot be read off a model). The tokens must be in frame, row, column order.
    - forward(model, video): how to call the model (default `model(video)`).
    - prefix_tokens: leading tokens to drop (e.g. 1 for a CLS token); bwact has no CLS token.
    - attention: None; "outputs" to take the attention weights [B, H, T, T] from where the model
      exposes them: the tuple outputs of layers 1..L (a layer returning (x, weights), Hugging Face
      transformers 4.x with output_attentions=True), else the `attentions` field of the model's
      output (one per layer, as transformers 4.x and 5.x return with output_attentions=True); or a
      list of L modules (or their names in `model.named_modules()`) whose outputs are each layer's
      softmax weights (or tuples holding them, such as (context, weights)). Stored for the first
      `attention_clips` clips. With prefix tokens dropped, rows are renormalised.
    - Other arguments are those of `bwact.Writer`.

    The model runs under torch.no_grad() in eval mode (its mode is restored afterwards); hooks are
    removed when recording ends, also on an error. Nothing is left under `path` on an error.
    Returns the number of clips written.
    """
    import torch

    modules = list(modules)
    if len(modules) < 2:
        raise BwactError(f"{path}: give at least two modules: the embedding (depth 0) and one layer")
    if isinstance(attention, str) and attention != "outputs":
        raise BwactError(f"{path}: attention must be None, \"outputs\" or a list of modules; got {attention!r}")
    if attention is not None and attention != "outputs":
        attention = list(attention)
        if any(isinstance(m, str) for m in attention):
            named = dict(model.named_modules())
            unknown = [m for m in attention if isinstance(m, str) and m not in named]
            if unknown:
                raise BwactError(f"{path}: attention names {unknown} are not modules of the model")
            attention = [named[m] if isinstance(m, str) else m for m in attention]
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
                out = call(model, video)
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
                    found = _attention_by_depth(model, out, captured, captured_attention, attention, path)
                    for d, a in found.items():
                        a = a.float()
                        if prefix_tokens:
                            a = a[:, :, prefix_tokens:, prefix_tokens:]
                            a = a / a.sum(dim=-1, keepdim=True).clamp_min(1e-30)
                        att[d] = a.cpu().numpy()
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

