"""The PyTorch recorder on real model classes: Hugging Face VideoMAE (plain, for pre-training, for
classification) and ViT, and timm's ViT-Tiny, built small with random weights (tests/small_models.py).

Every recorded depth must equal the model's own hidden states (Hugging Face) or its blocks run by hand
(timm) exactly in float32, with eager attention on both sides, and the recorded attention the model's
own weights. `make test` runs this with the transformers 4.x and timm pinned in scripts/test.sh on
Debian's torch 1.13; `make test-models` with torch 2.x and transformers 5.x (scripts/test-models.sh).
With BWANALYZE set, the files also go through `bwanalyze validate` and `bwanalyze cka`.
"""
import os
import unittest

import numpy as np

import bwact
import small_models as sm
from test_bwact import BWANALYZE, REQUIRE, TempDir, cka_csv, linear_cka, run_bwanalyze

try:
    import timm
    import torch
    import transformers
except ImportError:  # pragma: no cover - depends on the machine
    torch = transformers = timm = None


def need_models(test):
    if transformers is None and not REQUIRE:
        return unittest.skip("torch, transformers or timm is not installed")(test)
    return test


def renormalised(a, prefix):
    """What the recorder stores for attention `a` with `prefix` leading tokens dropped."""
    a = a.float()
    if prefix:
        a = a[:, :, prefix:, prefix:]
        a = a / a.sum(dim=-1, keepdim=True).clamp_min(1e-30)
    return a.numpy()


@need_models
class HuggingFaceTests(TempDir):
    def record_hf(self, model, name, data, *, forward, image=False, clips=4, **kw):
        from bwact.torch import layers_of, record
        embedding, layers, prefix = layers_of(model)
        c = model.config
        if image:
            tubelet, size = (1, c.patch_size, c.patch_size), (1, c.image_size, c.image_size)
        else:
            tubelet, size = (c.tubelet_size, c.patch_size, c.patch_size), (c.num_frames, c.image_size, c.image_size)
        n = record(model, [embedding, *layers], data, self.path(name), tubelet=tubelet, input_size=size,
                   prefix_tokens=prefix, forward=forward, attention="outputs", attention_clips=clips,
                   run=name, probe_set="toy", **kw)
        self.assertEqual(n, sum(len(b[0]) for b in data))
        return self.path(name), prefix

    def assert_matches(self, path, data, reference, prefix, clips):
        """Every depth and every layer's attention in `path` equal the model's own, batch by batch."""
        hidden, attentions = [], []
        with torch.no_grad():
            for video, _, _ in data:
                out = reference(video)
                hidden.append([h[:, prefix:].numpy() for h in out.hidden_states])
                attentions.append([renormalised(a, prefix) for a in out.attentions])
        with bwact.open(path) as f:
            self.assertEqual(f.depths, list(range(len(hidden[0]))))
            for d in f.depths:
                np.testing.assert_array_equal(f.tokens(d), np.concatenate([h[d] for h in hidden]), err_msg=f"depth {d}")
            for d in f.depths[1:]:
                want = np.concatenate([a[d - 1] for a in attentions])[:clips]
                np.testing.assert_array_equal(f.attention(d), want, err_msg=f"attention {d}")

    def test_videomae_classes_record_their_own_hidden_states(self):
        data = sm.batches(6, 4, sm.video_shape(), seed=1)
        for cls_name in ("VideoMAEModel", "VideoMAEForVideoClassification", "VideoMAEForPreTraining"):
            with self.subTest(cls_name):
                model = sm.videomae(cls_name, seed=2)
                if cls_name == "VideoMAEForPreTraining":
                    # the documented call: the encoder alone, bool_masked_pos unset (every tubelet seen)
                    forward = lambda m, video: m.videomae(pixel_values=video, output_attentions=True)
                    reference = lambda v: model.videomae(pixel_values=v, output_hidden_states=True, output_attentions=True)
                else:
                    forward = lambda m, video: m(pixel_values=video, output_attentions=True)
                    reference = lambda v: model(pixel_values=v, output_hidden_states=True, output_attentions=True)
                path, prefix = self.record_hf(model, f"{cls_name}.h5", data, forward=forward, clips=5)
                self.assertEqual(prefix, 0)
                with bwact.open(path) as f:
                    self.assertEqual(f.shape, (6, 32, 32))
                    np.testing.assert_array_equal(f.clip_ids(), np.arange(500, 506))
                self.assert_matches(path, data, reference, prefix, clips=5)
                if cls_name == "VideoMAEForPreTraining":
                    # an all-false mask is the same clip: the same tokens through the encoder
                    zeros = [model.videomae(pixel_values=v, bool_masked_pos=torch.zeros(len(v), 32, dtype=torch.bool),
                                            output_hidden_states=True).hidden_states for v, _, _ in data]
                    with bwact.open(path) as f:
                        np.testing.assert_array_equal(f.tokens(2), np.concatenate([z[2].detach().numpy() for z in zeros]))
                if BWANALYZE:
                    r = run_bwanalyze("validate", path)
                    self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_vit_drops_the_cls_token_and_renormalises_attention(self):
        data = sm.batches(5, 3, sm.image_shape(sm.VIT["image_size"]), seed=3)
        for cls_name in ("ViTModel", "ViTForImageClassification"):
            with self.subTest(cls_name):
                model = sm.vit(cls_name, seed=4)
                path, prefix = self.record_hf(model, f"{cls_name}.h5", data, image=True, clips=5,
                                              forward=lambda m, x: m(pixel_values=x, output_attentions=True))
                self.assertEqual(prefix, 1)
                self.assert_matches(path, data, lambda x: model(pixel_values=x, output_hidden_states=True,
                                                                output_attentions=True), prefix, clips=5)
                with bwact.open(path) as f:
                    self.assertEqual(f.shape, (5, 16, 32))
                    np.testing.assert_allclose(f.attention(2).sum(-1), 1, atol=1e-6)

    def test_without_weights_the_error_says_what_was_tried_and_the_fix(self):
        from bwact.torch import layers_of, record
        model = sm.videomae(seed=5)
        embedding, layers, _ = layers_of(model)
        for forward in (lambda m, v: m(pixel_values=v), lambda m, v: m(pixel_values=v).last_hidden_state):
            with self.assertRaises(bwact.BwactError) as cm:
                record(model, [embedding, *layers], sm.batches(2, 2, sm.video_shape()), self.path("x.h5"),
                       tubelet=(2, 8, 8), input_size=(4, 32, 32), forward=forward, attention="outputs",
                       attention_clips=2, run="x", probe_set="toy")
            message = str(cm.exception)
            self.assertIn("no layer returned a tuple with a [B, H, T, T] tensor", message)
            self.assertIn("the model's output", message)
            self.assertIn('attn_implementation="eager"', message)
            self.assertIn("output_attentions=True", message)
            self.assertNotIn("\n", message)
        self.assertEqual(os.listdir(self.dir), [])
        self.assertFalse(any(m._forward_hooks for m in model.modules()))

    def test_layers_of_refuses_models_it_does_not_know(self):
        from bwact.torch import layers_of
        for model in (torch.nn.Linear(2, 2), transformers.BertModel(transformers.BertConfig(
                hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8, vocab_size=10))):
            with self.assertRaises(bwact.BwactError) as cm:
                layers_of(model)
            self.assertIn(f"{type(model).__name__} is not a model it knows", str(cm.exception))
            self.assertIn("give record() the embedding and the layers yourself", str(cm.exception))


@need_models
class TimmTests(TempDir):
    def reference(self, model, images):
        """Depths and attention weights of the model's blocks run by hand, outside the recorder."""
        with torch.no_grad():
            x = model.norm_pre(model.patch_drop(model._pos_embed(model.patch_embed(images))))
            xs, ws = [x], []
            for b in model.blocks:
                a = b.attn
                h = b.norm1(x)
                q, k, _ = a.qkv(h).reshape(len(h), h.shape[1], 3, a.num_heads, a.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
                q, k = a.q_norm(q), a.k_norm(k)
                ws.append(((q * a.scale) @ k.transpose(-2, -1)).softmax(dim=-1))
                x = b(x)
                xs.append(x)
        return xs, ws

    def test_vit_tiny_depths_and_attention_equal_the_blocks_run_by_hand(self):
        from bwact.torch import layers_of, record
        model = sm.timm_vit(seed=6)
        embedding, blocks, prefix = layers_of(model)
        self.assertIs(embedding, model.norm_pre)
        self.assertEqual((len(blocks), prefix), (12, 1))
        for b in blocks:
            b.attn.fused_attn = False
        data = sm.batches(5, 3, sm.image_shape(sm.TIMM_SIZE), seed=7)
        # attention modules by name: the same as [b.attn.attn_drop for b in blocks]
        n = record(model, [embedding, *blocks], data, self.path("vit.h5"), tubelet=(1, 16, 16), input_size=(1, 64, 64),
                   prefix_tokens=prefix, forward=lambda m, x: m.forward_features(x),
                   attention=[f"blocks.{i}.attn.attn_drop" for i in range(12)], attention_clips=4,
                   run="vit", probe_set="toy")
        self.assertEqual(n, 5)
        refs = [self.reference(model, x) for x, _, _ in data]
        with bwact.open(self.path("vit.h5")) as f:
            self.assertEqual(f.shape, (5, 16, 192))
            for d in f.depths:
                np.testing.assert_array_equal(f.tokens(d), np.concatenate([r[0][d][:, 1:].numpy() for r in refs]),
                                              err_msg=f"depth {d}")
                if d:
                    want = np.concatenate([renormalised(r[1][d - 1], 1) for r in refs])[:4]
                    np.testing.assert_array_equal(f.attention(d), want, err_msg=f"attention {d}")
        if BWANALYZE:
            r = run_bwanalyze("validate", self.path("vit.h5"))
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_fused_attention_gives_the_timm_fix(self):
        from bwact.torch import layers_of, record
        model = sm.timm_vit(seed=8)
        embedding, blocks, prefix = layers_of(model)
        with self.assertRaises(bwact.BwactError) as cm:
            record(model, [embedding, *blocks], sm.batches(2, 2, sm.image_shape(64)), self.path("x.h5"),
                   tubelet=(1, 16, 16), input_size=(1, 64, 64), prefix_tokens=prefix,
                   forward=lambda m, x: m.forward_features(x), attention="outputs", attention_clips=2,
                   run="x", probe_set="toy")
        self.assertIn("timm: set block.attn.fused_attn = False", str(cm.exception))
        self.assertIn("attention=[b.attn.attn_drop for b in model.blocks]", str(cm.exception))


@need_models
class ModelCkaTests(TempDir):
    """bwanalyze cka on two recorded VideoMAE models against numpy (with BWANALYZE only)."""

    def test_cka_of_two_videomae_models_matches_numpy(self):
        if not BWANALYZE:
            return  # the recording itself is checked above; this is bwanalyze's half
        from bwact.torch import layers_of, record
        data = sm.batches(12, 4, sm.video_shape(), seed=9)
        paths = []
        for seed in (10, 11):
            model = sm.videomae(seed=seed)
            embedding, layers, _ = layers_of(model)
            paths.append(self.path(f"m{seed}.h5"))
            record(model, [embedding, *layers], data, paths[-1], tubelet=(2, 8, 8), input_size=(4, 32, 32),
                   run=f"m{seed}", probe_set="toy")
        got = cka_csv(*paths)
        a, b = bwact.read(paths[0]), bwact.read(paths[1])
        self.assertEqual(len(got), 9)
        for (da, db), value in got.items():
            want = linear_cka(a["layers"][da].astype(np.float64).mean(1), b["layers"][db].astype(np.float64).mean(1))
            self.assertAlmostEqual(value, want, delta=1e-10, msg=f"depths {da}, {db}")


if __name__ == "__main__":
    unittest.main()
